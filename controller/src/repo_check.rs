//! What the controller checks in an agency's repository itself instead of
//! believing the agent (SECURITY.md, "What the controller believes"): a
//! replication the agent reports as kept counts only if the snapshot it
//! names is in the store and no other run reported it first. Without it a
//! compromised server could keep itself green (RPO met, Pasal 9 report)
//! while it replicated nothing.

use pulih_core::id::SnapshotId;
use pulih_core::layout;
use pulih_core::storage::{Store, read_secret_file};
use pulih_model::api::RunResult;

use crate::config::ControllerConfig;
use crate::desired::pd_repository;
use crate::state::Shared;

/// What the store said of a reported snapshot.
#[derive(Debug)]
pub enum Check {
    /// It is there, and no other run reported it.
    Confirmed,
    /// The report is false: why.
    Refuted(String),
    /// The store could not be asked: why (the report is recorded as it is).
    Unchecked(String),
}

/// Opens a repository's store with the controller's own credentials: the
/// `[maintenance]` S3 credential files if set, otherwise the environment's.
pub fn open_store(config: &ControllerConfig, url: &str) -> anyhow::Result<Store> {
    let files = config.maintenance.as_ref().and_then(|m| {
        Some((
            m.s3_access_key_id_file.as_ref()?,
            m.s3_secret_access_key_file.as_ref()?,
        ))
    });
    let creds = match files {
        Some((a, s)) => Some((read_secret_file(a)?, read_secret_file(s)?)),
        None => None,
    };
    Ok(Store::open_with(
        url,
        false,
        creds.as_ref().map(|(a, s)| (a.as_str(), s.as_str())),
    )?)
}

/// Checks the snapshot a replication of `server` (run `run_key`) reports
/// as kept.
pub async fn reported_snapshot(st: &Shared, server: &str, run_key: &str, res: &RunResult) -> Check {
    let Some(hex) = res.snapshot_id.as_deref() else {
        return Check::Refuted("it names no snapshot".into());
    };
    let Ok(id) = hex.parse::<SnapshotId>() else {
        return Check::Refuted(format!("`{hex}` is not a snapshot id"));
    };
    match st.store.snapshot_reported(hex, run_key) {
        Ok(Some((other, rk))) => {
            return Check::Refuted(format!(
                "snapshot {hex} was already reported by run {rk} of {other}"
            ));
        }
        Ok(None) => {}
        Err(e) => return Check::Unchecked(format!("the controller's database: {e}")),
    }
    let url = {
        let d = st.desired();
        let Some(pd) = d
            .set
            .servers
            .get(server)
            .map(|s| s.spec().perangkat_daerah.clone())
        else {
            return Check::Unchecked(format!("{server} is not in the applied manifests"));
        };
        match pd_repository(&d.set, &pd, &st.config) {
            Some(u) => u,
            None => return Check::Unchecked(format!("{pd} has no DRC target in the manifests")),
        }
    };
    let store = match open_store(&st.config, &url) {
        Ok(s) => s,
        Err(e) => return Check::Unchecked(format!("cannot open {url}: {e:#}")),
    };
    match store.exists(&layout::snapshot(&id)).await {
        Ok(true) => Check::Confirmed,
        Ok(false) => Check::Refuted(format!("the repository {url} holds no snapshot {hex}")),
        Err(e) => Check::Unchecked(format!("cannot read {url}: {e}")),
    }
}
