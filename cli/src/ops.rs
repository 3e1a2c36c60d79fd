//! Ops commands that talk to the controller, one file each under `ops/`:
//! `apply`, `servers`, `status`, `compliance`, `replicate`/`verify`/`restore`
//! (`jobs`), `runs`, `maintenance`. Tables for people (`format`), `--json`
//! for scripts. This file: where the controller is ([`Conn`]) and the API
//! client with the CLI's error shape ([`Api`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use pulih_model::api::*;
use pulih_model::routes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::exit;

mod apply;
mod compliance;
mod format;
mod jobs;
mod maintenance;
mod runs;
mod servers;
mod status;

pub use apply::*;
pub use compliance::*;
pub use format::*;
pub use jobs::*;
pub use maintenance::*;
pub use runs::*;
pub use servers::*;
pub use status::*;

/// Where the controller is and how to authenticate.
#[derive(Args, Clone)]
pub struct Conn {
    /// Controller URL (default: the one `pulih dev` wrote, else http://127.0.0.1:7300).
    #[arg(long, env = "PULIH_CONTROLLER", value_name = "URL", global = true)]
    pub controller: Option<String>,
    /// File holding the admin token (default: PULIH_TOKEN, else `pulih dev`'s STATE_DIR/admin.token).
    #[arg(long, env = "PULIH_TOKEN_FILE", value_name = "FILE", global = true)]
    pub token_file: Option<PathBuf>,
    /// PEM certificates to trust for the controller's HTTPS (its own CA).
    #[arg(long, env = "PULIH_CA_FILE", value_name = "FILE", global = true)]
    pub ca_file: Option<PathBuf>,
    /// Allow plain http:// to a controller that is not on loopback (the
    /// token then crosses the network in clear).
    #[arg(long, env = "PULIH_INSECURE_HTTP", global = true)]
    pub insecure_http: bool,
}

/// `pulih dev`'s default state dir.
pub fn default_dev_state_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("XDG_STATE_HOME") {
        return PathBuf::from(d).join("pulih/dev");
    }
    match std::env::var_os("HOME") {
        Some(h) => PathBuf::from(h).join(".local/state/pulih/dev"),
        None => PathBuf::from(".pulih-dev"),
    }
}

/// The controller API with the admin token (or another secret), its
/// refusals as [`ApiFailure`].
pub struct Api(pulih_client::Client);

#[derive(Debug, thiserror::Error)]
#[error("{message} ({code})")]
pub struct ApiFailure {
    pub code: String,
    pub message: String,
    pub diagnostics: Vec<pulih_model::manifest::Diagnostic>,
}

impl Conn {
    fn options(&self) -> pulih_client::Options<'_> {
        pulih_client::Options {
            ca_file: self.ca_file.as_deref(),
            insecure_http: self.insecure_http,
            ..Default::default()
        }
    }

    fn base(&self) -> String {
        match &self.controller {
            Some(c) => c.clone(),
            None => std::fs::read_to_string(default_dev_state_dir().join("controller.url"))
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "http://127.0.0.1:7300".into()),
        }
    }

    /// The controller with another secret than the admin token (e.g. the
    /// failover authorization).
    pub fn connect_with(&self, token_file: &Path) -> Result<Api> {
        let token = pulih_core::storage::read_secret_file(token_file)
            .with_context(|| format!("token file {}", token_file.display()))?;
        Api::with_ca(&self.base(), token.trim(), self.options())
    }

    pub fn connect(&self) -> Result<Api> {
        let dev = default_dev_state_dir();
        let base = self.base();
        let token = if let Ok(t) = std::env::var("PULIH_TOKEN") {
            t
        } else {
            let file = self
                .token_file
                .clone()
                .unwrap_or_else(|| dev.join("admin.token"));
            pulih_core::storage::read_secret_file(&file).map_err(|e| {
                anyhow::anyhow!(
                    "no admin token: set PULIH_TOKEN or --token-file, or start `pulih dev` ({e})"
                )
            })?
        };
        Api::with_ca(&base, token.trim(), self.options())
    }
}

impl Api {
    pub fn new(base: &str, token: &str) -> Result<Api> {
        Self::with_ca(base, token, Default::default())
    }

    pub fn with_ca(base: &str, token: &str, options: pulih_client::Options<'_>) -> Result<Api> {
        Ok(Api(pulih_client::Client::new(base, Some(token), options)?))
    }

    pub async fn get<R: DeserializeOwned>(&self, path: &str) -> Result<R> {
        self.0.get(path).await.map_err(failure)
    }

    pub async fn post<B: Serialize, R: DeserializeOwned>(&self, path: &str, body: &B) -> Result<R> {
        self.0.post(path, body).await.map_err(failure)
    }
}

/// The controller's refusals as [`ApiFailure`] (its code and message, as
/// the CLI prints them); anything else as it is.
fn failure(e: pulih_client::ClientError) -> anyhow::Error {
    match e {
        pulih_client::ClientError::Rejected {
            code,
            message,
            diagnostics,
            ..
        } => ApiFailure {
            code,
            message,
            diagnostics,
        }
        .into(),
        pulih_client::ClientError::Failed { code, message, .. } => ApiFailure {
            code,
            message,
            diagnostics: Vec::new(),
        }
        .into(),
        e => e.into(),
    }
}
