//! What the controller checks in an agency's repository itself instead of
//! believing the agent (SECURITY.md, "What the controller believes"): a
//! replication the agent reports as kept counts only if the snapshot it
//! names is in the store, authenticates and belongs to the reporting
//! server (with the agency's maintenance key), reached the store after the
//! run was queued, and no other run had it confirmed first. Without it a
//! compromised server could keep itself green (RPO met, Pasal 9 report)
//! while it replicated nothing.

use pulih_core::Error as CoreError;
use pulih_core::id::SnapshotId;
use pulih_core::keys::MaintenanceKeyFile;
use pulih_core::layout;
use pulih_core::maintenance::check_snapshot;
use pulih_core::repo::Repo;
use pulih_model::api::RunResult;

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

/// How far the store's clock may be behind the controller's before a
/// snapshot looks older than the run that reported it.
const CLOCK_SLACK_S: i64 = 300;

/// Checks the snapshot a replication of `server` (run `run_key`, queued by
/// the controller at `queued_at` when it queued it) reports as kept.
///
/// With the agency's maintenance key (the `[maintenance]` keys dir) the
/// snapshot must authenticate, be written in a space bound to `server`
/// (or, where no binding names `server`, be tagged for it in a space bound
/// to no other), and have reached the store after the run was queued.
/// Without it, only that the store holds it. Either way no other run may
/// have had it confirmed before.
pub async fn reported_snapshot(
    st: &Shared,
    server: &str,
    run_key: &str,
    queued_at: Option<i64>,
    res: &RunResult,
) -> Check {
    let Some(hex) = res.snapshot_id.as_deref() else {
        return Check::Refuted("it names no snapshot".into());
    };
    let Ok(id) = hex.parse::<SnapshotId>() else {
        return Check::Refuted(format!("`{hex}` is not a snapshot id"));
    };
    // A refuted run confirms nothing: only confirmed ones count here.
    match st.store.snapshot_reported(hex, run_key) {
        Ok(Some((other, rk))) => {
            return Check::Refuted(format!(
                "snapshot {hex} was already reported by run {rk} of {other}"
            ));
        }
        Ok(None) => {}
        Err(e) => return Check::Unchecked(format!("the controller's database: {e}")),
    }
    let (url, pd) = {
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
            Some(u) => (u, pd),
            None => return Check::Unchecked(format!("{pd} has no DRC target in the manifests")),
        }
    };
    let store = match st.config.open_store(&url) {
        Ok(s) => s,
        Err(e) => return Check::Unchecked(format!("cannot open {url}: {e:#}")),
    };
    let key_path = st
        .config
        .maintenance
        .as_ref()
        .map(|m| m.keys_dir.join(format!("{pd}.key")))
        .filter(|p| p.exists());
    match key_path {
        Some(path) => with_key(st, store, &path, &id, server, run_key, queued_at).await,
        None => match store.exists(&layout::snapshot(&id)).await {
            Ok(true) => Check::Confirmed,
            Ok(false) => Check::Refuted(format!("the repository {url} holds no snapshot {hex}")),
            Err(e) => Check::Unchecked(format!("cannot read {url}: {e}")),
        },
    }
}

/// The checks the agency's maintenance key allows (see
/// [`reported_snapshot`]); a confirmed run is then measured for the
/// ransomware signals (`anomaly.rs`).
async fn with_key(
    st: &Shared,
    store: pulih_core::storage::Store,
    key_path: &std::path::Path,
    id: &SnapshotId,
    server: &str,
    run_key: &str,
    queued_at: Option<i64>,
) -> Check {
    let key = match MaintenanceKeyFile::load(key_path) {
        Ok(k) => k,
        Err(e) => {
            return Check::Unchecked(format!("the maintenance key {}: {e}", key_path.display()));
        }
    };
    let repo = match Repo::open(store).await {
        Ok(r) => r,
        Err(e) => return Check::Unchecked(format!("cannot open the repository: {e}")),
    };
    // The server's previous confirmed snapshot: what "new" is measured
    // against (its packs), not the parent the agent names.
    let previous = st
        .store
        .previous_snapshot(server, run_key)
        .ok()
        .flatten()
        .and_then(|(_, p)| p.parse::<SnapshotId>().ok());
    let c = match check_snapshot(&repo, &key, id, server, previous.as_ref()).await {
        Ok(Some(c)) => c,
        Ok(None) => return Check::Refuted(format!("the repository holds no snapshot {id}")),
        Err(
            e @ (CoreError::Store { .. } | CoreError::Io { .. } | CoreError::KeyMismatch { .. }),
        ) => {
            return Check::Unchecked(format!("{e}"));
        }
        Err(e) => {
            return Check::Refuted(format!(
                "snapshot {id} does not authenticate with the agency's maintenance key: {e}"
            ));
        }
    };
    let space = c.space.to_hex();
    match (&c.bound_to, c.server_bound) {
        (Some(other), _) if other != server => {
            return Check::Refuted(format!(
                "snapshot {id} was written in space {space}, which is bound to server {other}"
            ));
        }
        (Some(_), _) => {}
        (None, true) => {
            return Check::Refuted(format!(
                "snapshot {id} was written in space {space}, which is not one of {server}'s bound spaces"
            ));
        }
        (None, false) if c.tagged.as_deref() != Some(server) => {
            return Check::Refuted(format!(
                "snapshot {id} is tagged for {}, not {server}",
                c.tagged.as_deref().unwrap_or("no server")
            ));
        }
        (None, false) => {}
    }
    if let Some(q) = queued_at
        && c.stored_at < q - CLOCK_SLACK_S
    {
        return Check::Refuted(format!(
            "snapshot {id} reached the store at {} (Unix time), before this run was queued at {q}",
            c.stored_at
        ));
    }
    crate::anomaly::observe(st, server, run_key, &repo.store, &c).await;
    Check::Confirmed
}
