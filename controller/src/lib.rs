//! pulih-controller: the control plane in the Pusat Data (DESIGN.md §1, §7, §8).
//!
//! The shared state ([`state`]: store, desired manifests, tokens, tasks,
//! clock); the recovery state machines without HTTP ([`recovery`]: drills,
//! plan runs, plan steps); every background loop ([`workers`]); and a thin
//! axum HTTP API under `/api/v1` ([`api`]) over a state store ([`store`],
//! SQLite by default): manifests applied with their history, one-time
//! enrolment tokens, agents' heartbeats and facts, runs and their results,
//! and the Pasal 9 inventory ([`compliance`]). Agents pull: the controller
//! never dials them, and it never reads agency data.

pub mod anomaly;
pub mod api;
pub mod compliance;
pub mod config;
pub mod desired;
pub mod error;
pub mod maintenance;
pub mod openapi;
pub mod received;
pub mod recovery;
pub mod repo_check;
pub mod state;
pub mod store;
pub mod workers;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio_util::sync::CancellationToken;

pub use config::ControllerConfig;

/// How long a shutdown waits for the HTTP connections, and then for the
/// background tasks.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// A started controller.
pub struct Running {
    pub addr: SocketAddr,
    /// `http://ADDR`, or `https://ADDR` with TLS configured.
    pub url: String,
    pub admin_token: String,
    /// The shared state (its `tasks` show the workers).
    pub state: state::Shared,
    /// Ends once the API stopped and every background task with it.
    pub task: tokio::task::JoinHandle<Result<()>>,
}

/// Reads the admin token file, or creates it (mode 0600) with a new token.
fn admin_token(path: &Path) -> Result<String> {
    if path.exists() {
        let t = pulih_core::storage::read_secret_file(path)
            .with_context(|| format!("admin token file {}", path.display()))?;
        return Ok(t.trim().to_string());
    }
    let token = state::new_token();
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create admin token file {}", path.display()))?;
    writeln!(f, "{token}")?;
    Ok(token)
}

/// The state dir holds the database, tokens and keys: made (or
/// tightened to) 0700.
fn private_dir(dir: &std::path::Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create state dir {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot make state dir {} private (0700)", dir.display()))
}

/// The database made (or tightened to) 0600 before SQLite opens it;
/// SQLite gives its -wal and -shm files the database's mode.
fn private_file(path: &std::path::Path) -> Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot make {} private (0600)", path.display()))
}

/// Opens the state, binds the listener and serves until `cancel`.
pub async fn start(config: ControllerConfig, cancel: CancellationToken) -> Result<Running> {
    private_dir(&config.state_dir)?;
    let db = config.state_dir.join("controller.db");
    private_file(&db)?;
    let store = Arc::new(store::sqlite::SqliteStore::open(&db)?);
    let token = admin_token(&config.admin_token_path())?;
    let objects = store::StateStore::objects(store.as_ref())?;
    let revision = store::StateStore::revisions(store.as_ref(), 1)?
        .first()
        .map(|r| r.id);
    let set = desired::from_stored(&objects).map_err(|d| {
        anyhow::anyhow!(
            "the applied manifests in {} no longer parse: {}",
            db.display(),
            d[0]
        )
    })?;
    let tls = match (&config.tls_cert_file, &config.tls_key_file) {
        (None, None) => None,
        (Some(cert), Some(key)) => {
            let cert_pem = std::fs::read(cert)
                .with_context(|| format!("cannot read TLS certificate {}", cert.display()))?;
            let key_pem = pulih_core::storage::read_secret_file(key)
                .with_context(|| format!("TLS key {}", key.display()))?;
            Some(
                axum_server::tls_rustls::RustlsConfig::from_pem(cert_pem, key_pem.into_bytes())
                    .await
                    .with_context(|| {
                        format!(
                            "TLS certificate {} or key {} is not usable PEM",
                            cert.display(),
                            key.display()
                        )
                    })?,
            )
        }
        _ => anyhow::bail!("set both tls_cert_file and tls_key_file, or neither"),
    };
    // Plain HTTP carries the admin token, agents' credentials and
    // enrolment secrets in clear: loopback only, unless asked (and logged).
    if tls.is_none() && !config.listen.ip().is_loopback() {
        anyhow::ensure!(
            config.insecure_http,
            "refusing to serve plain HTTP on {} (not a loopback address): tokens would cross the network in clear; set tls_cert_file and tls_key_file, or insecure_http = true to accept that",
            config.listen
        );
        tracing::warn!(listen = %config.listen, "serving plain HTTP off loopback (insecure_http): tokens cross the network in clear");
    }
    let listener = std::net::TcpListener::bind(config.listen)
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let failover_token = config
        .failover_token_file
        .as_ref()
        .map(|f| {
            pulih_core::storage::read_secret_file(f)
                .map(|t| t.trim().to_string())
                .with_context(|| format!("failover token file {}", f.display()))
        })
        .transpose()?;
    if let Some(t) = &failover_token {
        anyhow::ensure!(
            t.len() >= 16 && *t != token,
            "the failover token must be at least 16 characters and differ from the admin token"
        );
    }
    let mut approvers: std::collections::BTreeMap<_, String> = Default::default();
    for (role, f) in &config.approvers {
        let t = pulih_core::storage::read_secret_file(f)
            .map(|t| t.trim().to_string())
            .with_context(|| format!("approver token file of {} {}", role.as_str(), f.display()))?;
        anyhow::ensure!(
            t.len() >= 16
                && t != token
                && failover_token.as_deref() != Some(t.as_str())
                && !approvers.values().any(|o| *o == t),
            "the approver token of {} must be at least 16 characters and differ from the admin token, the failover token and every other approver's",
            role.as_str()
        );
        approvers.insert(*role, t);
    }
    let tokens = state::Tokens {
        admin: &token,
        failover: failover_token.as_deref(),
        approvers: approvers.iter().map(|(r, t)| (*r, t.as_str())).collect(),
    };
    // The tasks stop with the controller, and also when the API fails.
    let tasks_cancel = cancel.child_token();
    let shared = Arc::new(state::AppState::new(
        store,
        config,
        &tokens,
        state::Desired { set, revision },
        tasks_cancel.clone(),
    ));
    workers::start(&shared);
    let app = api::router(shared.clone());
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(%addr, scheme, "controller listening");
    let handle = axum_server::Handle::new();
    let service = app.into_make_service_with_connect_info::<SocketAddr>();
    let st = shared.clone();
    let task = tokio::spawn(async move {
        let serve = async {
            match tls {
                Some(tls) => {
                    axum_server::from_tcp_rustls(listener, tls)?
                        .handle(handle.clone())
                        .serve(service)
                        .await
                }
                None => {
                    axum_server::from_tcp(listener)?
                        .handle(handle.clone())
                        .serve(service)
                        .await
                }
            }
        };
        tokio::pin!(serve);
        let served = tokio::select! {
            r = &mut serve => r,
            _ = tasks_cancel.cancelled() => {
                handle.graceful_shutdown(Some(SHUTDOWN_GRACE));
                serve.await
            }
        };
        if !st.tasks.shutdown(SHUTDOWN_GRACE).await {
            tracing::warn!(
                left = st.tasks.len(),
                "background tasks still running after the shutdown grace period"
            );
        }
        served.context("controller API server")
    });
    Ok(Running {
        addr,
        url: format!("{scheme}://{addr}"),
        admin_token: token,
        state: shared,
        task,
    })
}

#[cfg(test)]
mod private_state_tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    /// Review finding (issue 20, 8): the state dir and the database were
    /// created 0755/0644. A fresh start makes them 0700/0600 (the -wal
    /// and -shm files follow the database), and a start over an older,
    /// looser state dir tightens it.
    #[tokio::test]
    async fn controller_state_is_readable_by_its_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        for loose in [false, true] {
            if loose {
                std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).unwrap();
                let db = state.join("controller.db");
                std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
            }
            let mut config = ControllerConfig::new(state.clone());
            config.listen = "127.0.0.1:0".parse().unwrap();
            let cancel = CancellationToken::new();
            let running = start(config, cancel.clone()).await.unwrap();
            assert_eq!(mode(&state), 0o700, "state dir (loose before: {loose})");
            for f in [
                "controller.db",
                "controller.db-wal",
                "controller.db-shm",
                "admin.token",
            ] {
                let p = state.join(f);
                if p.exists() {
                    assert_eq!(mode(&p), 0o600, "{f} (loose before: {loose})");
                } else {
                    assert_ne!(f, "controller.db", "the database exists");
                }
            }
            cancel.cancel();
            running.task.await.unwrap().unwrap();
        }
    }

    /// Hardening (issue 20): one address's requests over the rate limit
    /// get 429 `rate_limited` with a Retry-After, without a token check.
    #[tokio::test]
    async fn requests_over_an_addresss_rate_are_refused_with_429() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = ControllerConfig::new(dir.path().join("state"));
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.rate_limit_per_second = 0.5;
        config.rate_limit_burst = 3.0;
        let cancel = CancellationToken::new();
        let running = start(config, cancel.clone()).await.unwrap();
        let client = reqwest::Client::new();
        let url = format!("{}/api/v1/servers", running.url);
        let mut codes = Vec::new();
        for _ in 0..4 {
            let r = client
                .get(&url)
                .bearer_auth(&running.admin_token)
                .send()
                .await
                .unwrap();
            codes.push(r.status().as_u16());
            if r.status().as_u16() == 429 {
                assert!(r.headers().get("retry-after").is_some());
                let body: serde_json::Value = r.json().await.unwrap();
                assert_eq!(body["error"]["code"], "rate_limited");
            }
        }
        assert_eq!(codes, [200, 200, 200, 429]);
        cancel.cancel();
        running.task.await.unwrap().unwrap();
    }
}
