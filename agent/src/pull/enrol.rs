//! Enrolment: once, a one-time token (`enroll_token_file`) buys the
//! agent's credential, kept at `<state_dir>/credential` (mode 0600) and
//! used for every later call.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use pulih_client::AgentClient as Client;

use super::facts::Host;
use crate::state::write_atomic;

const CREDENTIAL: &str = "credential";
/// The gateway credential enrolment may bring (JSON, mode 0600).
const STORE_CREDENTIAL: &str = "store-credential";

/// Opens a repository's store with the gateway credential enrolment
/// brought, if it brought one (docs/GATEWAY.md); otherwise with the
/// environment's S3 credentials, as before.
pub fn open_store(state_dir: &Path, url: &str) -> Result<pulih_core::storage::Store> {
    let path = state_dir.join(STORE_CREDENTIAL);
    if !path.exists() || !url.starts_with("s3://") {
        return Ok(pulih_core::storage::Store::open(url, false)?);
    }
    let text = pulih_core::storage::read_secret_file(&path)?;
    let c: pulih_model::api::StoreCredential = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a store credential", path.display()))?;
    Ok(pulih_core::storage::Store::open_with(
        url,
        false,
        Some((&c.access_key_id, &c.secret_access_key)),
    )?)
}

pub(crate) struct Enrolment {
    credential: PathBuf,
    token_file: Option<PathBuf>,
    /// Why the agent cannot start when it has neither credential nor token.
    no_token: String,
    enrolled: bool,
}

impl Enrolment {
    /// Gives `client` the credential in `state_dir` if there is one.
    pub fn load(
        state_dir: &Path,
        token_file: Option<PathBuf>,
        no_token: String,
        client: &mut Client,
    ) -> Result<Enrolment> {
        let credential = state_dir.join(CREDENTIAL);
        let enrolled = credential.exists();
        if enrolled {
            client.set_credential(
                pulih_core::storage::read_secret_file(&credential)?
                    .trim()
                    .to_string(),
            );
        }
        Ok(Enrolment {
            credential,
            token_file,
            no_token,
            enrolled,
        })
    }

    /// Enrols with the one-time token if there is no credential yet. False:
    /// the controller is not reachable yet (try again later).
    pub async fn ensure(&mut self, client: &mut Client, host: &Host) -> Result<bool> {
        if self.enrolled {
            return Ok(true);
        }
        let Some(token_file) = &self.token_file else {
            anyhow::bail!("{}", self.no_token);
        };
        let token = pulih_core::storage::read_secret_file(token_file)?;
        match client.enroll(token.trim(), host.facts().await).await {
            Ok(r) => {
                if let Some(c) = &r.store_credential {
                    let path = self.credential.with_file_name(STORE_CREDENTIAL);
                    write_atomic(&path, &serde_json::to_vec(c)?)?;
                    tracing::info!(access_key_id = %c.access_key_id, "gateway credential kept");
                }
                write_atomic(&self.credential, r.credential.as_bytes())?;
                client.set_credential(r.credential);
                tracing::info!(as_ = %r.server, "enrolled");
                self.enrolled = true;
                Ok(true)
            }
            Err(e) if e.is_retryable() => {
                tracing::warn!(error = %e, "cannot enrol yet; will retry");
                Ok(false)
            }
            Err(e) => Err(e).context("enrolment refused"),
        }
    }
}
