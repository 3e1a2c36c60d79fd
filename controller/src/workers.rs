//! Every background loop of the controller, named and started here, in
//! one place ([`start`]), tracked by the state's [`crate::state::Tasks`]
//! and stopped by its cancellation token (one shutdown path):
//!
//! - `recovery-schedule`, every 30 s: fails recoveries whose DRC executor
//!   went silent, moves every open plan run on, queues the scheduled
//!   drills that are due, flags servers that stopped replicating
//!   ([`crate::anomaly::stopped_sweep`]).
//! - `gone-sweep`, every 10 minutes: confirmed snapshots that left the
//!   store ([`crate::anomaly::gone_sweep`]).
//! - `maintenance-schedule`, on the `[maintenance]` cron (when
//!   configured): retention and prune of every agency repository.
//!
//! One-shot tasks a request starts (a plan's pre/post steps, a manual
//! maintenance run) go through the same tracker (`Tasks::spawn`).

use std::time::Duration;

use crate::maintenance;
use crate::recovery::{drill, plan};
use crate::state::Shared;
use crate::state::tasks::Worker;

/// How often the recovery schedule runs.
pub const RECOVERY_INTERVAL: Duration = Duration::from_secs(30);

/// Starts every worker on `st`'s tracker.
pub fn start(st: &Shared) {
    let s = st.clone();
    st.tasks
        .start_worker("recovery-schedule", |w| recovery_schedule(s, w));
    let s = st.clone();
    st.tasks.start_worker("gone-sweep", |w| gone_sweep(s, w));
    if let Some(cfg) = st.config.maintenance.clone() {
        let s = st.clone();
        st.tasks
            .start_worker("maintenance-schedule", |w| maintenance_schedule(s, cfg, w));
    }
}

/// Expire, advance, queue: every [`RECOVERY_INTERVAL`] until shutdown.
async fn recovery_schedule(st: Shared, w: Worker) {
    loop {
        w.begin();
        let t = st.now();
        if let Err(e) = drill::expire_stale(&st, t) {
            tracing::error!(error = %e, "cannot expire stale recoveries");
        }
        plan::advance_all(&st, t);
        drill::queue_scheduled(&st, t);
        crate::anomaly::stopped_sweep(&st, t);
        w.end(t);
        if !w.sleep(RECOVERY_INTERVAL).await {
            return;
        }
    }
}

/// Confirmed snapshots that left the store, every
/// [`crate::anomaly::GONE_SWEEP_INTERVAL_S`] until shutdown: a worker of
/// its own, so a slow store never holds up the recovery schedule.
async fn gone_sweep(st: Shared, w: Worker) {
    let every = Duration::from_secs(crate::anomaly::GONE_SWEEP_INTERVAL_S as u64);
    loop {
        w.begin();
        let t = st.now();
        crate::anomaly::gone_sweep(&st, t).await;
        w.end(t);
        if !w.sleep(every).await {
            return;
        }
    }
}

/// Fires the configured maintenance schedule until shutdown.
async fn maintenance_schedule(st: Shared, cfg: crate::config::MaintenanceConfig, w: Worker) {
    loop {
        let now_tz = chrono::Utc::now().with_timezone(&cfg.timezone.0);
        let Some(next) = cfg.schedule.schedule().after(&now_tz).next() else {
            tracing::warn!("the maintenance schedule never fires again");
            return;
        };
        let wait = (next.with_timezone(&chrono::Utc) - chrono::Utc::now())
            .to_std()
            .unwrap_or_default();
        if !w.sleep(wait).await {
            return;
        }
        w.begin();
        match maintenance::queue(&st, "schedule", None) {
            Ok(ids) => {
                // A shutdown ends the run between (or within) agencies;
                // an unfinished prune is safe to leave (FORMAT.md §12).
                tokio::select! {
                    _ = maintenance::execute(st.clone(), ids) => {}
                    _ = w.stopped() => return,
                }
            }
            Err(e) => tracing::error!(error = %e, "maintenance: cannot queue"),
        }
        w.end(st.now());
    }
}

#[cfg(test)]
mod tests;
