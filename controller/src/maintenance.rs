//! Retention on the controller's own schedule (DESIGN.md §4, FORMAT.md §12):
//! for each agency repository, forget by each server's `retention` and
//! prune whole unused packs, with the maintenance key the walidata gave and
//! the controller's own storage credentials. No reader key is involved, so
//! the controller still reads no agency data.

use std::collections::HashMap;

use chrono::{Offset, TimeZone as _};
use pulih_core::forget::KeepPolicy;
use pulih_core::keys::MaintenanceKeyFile;
use pulih_core::maintenance::MaintenanceReport;
use pulih_core::prune::PruneOptions;
use pulih_core::repo::Repo;
use pulih_model::api::MaintenanceRun;
use pulih_model::state::MaintenanceState;

use crate::compliance::rfc3339;
use crate::config::MaintenanceConfig;
use crate::desired::pd_repository;
use crate::error::ApiError;
use crate::state::Shared;
use crate::store::MaintenanceRow;

/// Queue one run per agency (all, or `only`); returns (row id, agency).
pub fn queue(
    st: &Shared,
    trigger: &str,
    only: Option<&str>,
) -> Result<Vec<(i64, String)>, ApiError> {
    if st.config.maintenance.is_none() {
        return Err(ApiError::Conflict(
            "maintenance is not configured: add a [maintenance] section (keys_dir, schedule) to the controller config".into(),
        ));
    }
    let pds: Vec<String> = {
        let d = st.desired();
        match only {
            Some(pd) if !d.set.perangkat_daerah.contains_key(pd) => {
                return Err(ApiError::NotFound(format!(
                    "no PerangkatDaerah `{pd}` in the applied manifests"
                )));
            }
            Some(pd) => vec![pd.to_string()],
            None => d.set.perangkat_daerah.keys().cloned().collect(),
        }
    };
    let ids = st
        .store
        .queue_maintenance(&pds, trigger, st.now())
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(ids.into_iter().zip(pds).collect())
}

/// Run queued rows, one agency after another (one maintenance at a time).
pub async fn execute(st: Shared, queued: Vec<(i64, String)>) {
    let _one_at_a_time = st.maintenance_lock.lock().await;
    for (id, pd) in queued {
        let _ = st
            .store
            .set_maintenance_state(id, MaintenanceState::Running);
        let outcome = run_pd(&st, &pd).await;
        let t = st.now();
        let (state, json, detail) = match &outcome {
            Ok(r) => (
                MaintenanceState::Succeeded,
                serde_json::to_string(r).unwrap_or_default(),
                format!(
                    "{pd}: {} of {} snapshots forgotten, {} packs condemned, {} deleted, {} bytes freed{}",
                    r.forgotten,
                    r.snapshots,
                    r.condemned_packs,
                    r.deleted_packs,
                    r.bytes_deleted,
                    if r.held_back.is_empty() {
                        String::new()
                    } else {
                        format!("; held back: {}", r.held_back.join("; "))
                    }
                ),
            ),
            Err(Skip(why)) => (
                MaintenanceState::Skipped,
                serde_json::json!({ "error": why }).to_string(),
                format!("{pd}: skipped: {why}"),
            ),
            Err(Fail(e)) => (
                MaintenanceState::Failed,
                serde_json::json!({ "error": e }).to_string(),
                format!("{pd}: failed: {e}"),
            ),
        };
        match &outcome {
            Err(Fail(_)) => tracing::warn!(%detail, "maintenance"),
            Ok(r) if !r.held_back.is_empty() => tracing::warn!(%detail, "maintenance"),
            _ => tracing::info!(%detail, "maintenance"),
        }
        if let Err(e) = st.store.finish_maintenance(id, state, &json, t) {
            tracing::error!(error = %e, "maintenance: cannot record a result");
        }
        let _ = st.store.audit("maintenance", "maintenance.run", &detail, t);
    }
}

fn keep_policy(r: &pulih_model::manifest::Retention) -> KeepPolicy {
    KeepPolicy {
        last: r.keep_last.unwrap_or(0),
        hourly: r.keep_hourly.unwrap_or(0),
        daily: r.keep_daily.unwrap_or(0),
        weekly: r.keep_weekly.unwrap_or(0),
        monthly: r.keep_monthly.unwrap_or(0),
        yearly: r.keep_yearly.unwrap_or(0),
    }
}

/// Why a run did not happen or failed: `Skip` when retention is simply not
/// set up for the agency (no maintenance key yet), `Fail` otherwise.
enum NotDone {
    Skip(String),
    Fail(String),
}
use NotDone::{Fail, Skip};

impl<E: std::fmt::Display> From<E> for NotDone {
    fn from(e: E) -> Self {
        Fail(e.to_string())
    }
}

async fn run_pd(st: &Shared, pd: &str) -> Result<MaintenanceReport, NotDone> {
    let cfg: &MaintenanceConfig = st
        .config
        .maintenance
        .as_ref()
        .ok_or_else(|| Fail("maintenance is not configured".into()))?;
    // Each server's retention, by the `server=` tag its agent puts on snapshots.
    let (url, policies) = {
        let d = st.desired();
        let url = pd_repository(&d.set, pd, &st.config)
            .ok_or_else(|| Fail(format!("{pd} is no longer in the applied manifests")))?;
        let policies: HashMap<String, KeepPolicy> = d
            .set
            .servers
            .iter()
            .filter(|(_, s)| s.spec().perangkat_daerah == pd)
            .filter_map(|(name, s)| {
                s.spec()
                    .retention
                    .as_ref()
                    .map(|r| (name.clone(), keep_policy(r)))
            })
            .collect();
        (url, policies)
    };
    let key_path = cfg.keys_dir.join(format!("{pd}.key"));
    if !key_path.exists() {
        return Err(Skip(format!(
            "no maintenance key at {}: the walidata of {pd} makes one with `pulih repo add-maintenance-key --out FILE`",
            key_path.display()
        )));
    }
    let key = MaintenanceKeyFile::load(&key_path)?;
    let store = st
        .config
        .open_store(&url)
        .map_err(|e| Fail(format!("{e:#}")))?;
    let repo = Repo::open(store).await?;
    let offset = utc_offset(cfg.timezone);
    // By the server each space is bound to (FORMAT.md §13).
    let policy_for = move |server: Option<&str>| server.and_then(|n| policies.get(n).cloned());
    let opts = PruneOptions {
        grace_s: cfg.grace.as_secs() as i64,
        ..Default::default()
    };
    Ok(pulih_core::maintenance::run(&repo, &key, &policy_for, offset, true, &opts).await?)
}

/// The zone's offset now (keep-daily etc. count days in it).
fn utc_offset(tz: pulih_model::manifest::values::TimeZone) -> time::UtcOffset {
    let secs =
        tz.0.offset_from_utc_datetime(&chrono::Utc::now().naive_utc())
            .fix()
            .local_minus_utc();
    time::UtcOffset::from_whole_seconds(secs).unwrap_or(time::UtcOffset::UTC)
}

/// The API view of a row.
pub fn view(r: MaintenanceRow) -> MaintenanceRun {
    let report: serde_json::Value = r
        .report_json
        .as_deref()
        .and_then(|j| serde_json::from_str(j).ok())
        .unwrap_or_default();
    let n = |k: &str| report[k].as_u64().unwrap_or(0);
    MaintenanceRun {
        id: r.id,
        perangkat_daerah: r.perangkat_daerah,
        trigger: r.trigger,
        state: r.state,
        created_at: rfc3339(r.created_at),
        finished_at: r.finished_at.map(rfc3339),
        snapshots: n("snapshots"),
        forgotten: n("forgotten"),
        condemned_packs: n("condemned_packs"),
        deleted_packs: n("deleted_packs"),
        rescued_packs: n("rescued_packs"),
        bytes_deleted: n("bytes_deleted"),
        held_back: report["held_back"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        error: report["error"].as_str().map(str::to_string),
    }
}
