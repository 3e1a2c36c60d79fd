//! The DRC executor's recovery (DESIGN.md §6): restore a server's snapshot
//! from the DRC store, load the replicated images, start the recovery
//! spec's containers in their start order on a network of their own, run
//! the health checks, and measure RTO (start → all healthy) and RPO (start
//! − snapshot time). A drill's network is `internal` (no route out; the
//! executor reaches the containers over the bridge from the Docker host)
//! and everything it made is torn down afterwards, whatever happened; the
//! teardown then counts what is left by the drill's label.
//!
//! The executor runs on the DRC's Docker host: bind mounts of restored
//! data name paths on this machine.
//!
//! Here: what a recovery is (`DrillPlan`), its run with its timed steps
//! (`Run`), and its report. The steps are in `recover.rs` (a new step goes
//! there), `images.rs`, `containers.rs`, `checks.rs`, `switch.rs`; the end
//! in `teardown.rs`; the DRC's side of a failback in `failback.rs`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;
use bollard::Docker;
use chrono::{DateTime, Utc};
use pulih_core::repo::ReaderKey;
use pulih_core::storage::Store;
use pulih_model::drill::{DrillReport, DrillState, DrillStep, RecoveryKind, Teardown};
use pulih_model::manifest::RecoverySpec;
use tracing::Instrument;

use crate::docker;

pub mod checks;
mod containers;
pub mod failback;
mod images;
pub mod isolation;
mod recover;
mod restored;
mod switch;
mod teardown;

pub use teardown::{left_behind, sweep_orphaned_drills, teardown_plan_run};

/// Label on everything a recovery creates, valued with its id.
pub const LABEL: &str = "io.pulih.recovery";
/// Label naming who ran a recovery (`drc:<target>` for the executor).
pub const OWNER_LABEL: &str = "io.pulih.owner";
/// Label on the DRC's service network when Pulih made it.
pub const SERVICE_LABEL: &str = "io.pulih.service";
/// Label on the containers of a drill plan's run (valued with the run id):
/// they stay up for the run's later groups until the run's teardown.
pub const PLAN_LABEL: &str = "io.pulih.plan-run";

/// What to recover, and how.
#[derive(Debug, Clone)]
pub struct DrillPlan {
    pub id: String,
    pub kind: RecoveryKind,
    pub server: String,
    pub perangkat_daerah: String,
    pub recovery: RecoverySpec,
    /// `latest` or a snapshot id (prefix).
    pub snapshot: String,
    pub rto_target_seconds: Option<u64>,
    pub rpo_target_seconds: Option<u64>,
    /// Where restored data goes (`<scratch_root>/<id>/`).
    pub scratch_root: PathBuf,
    /// Failover only: the DRC's service network (made if absent, kept).
    pub service_network: String,
    /// Failover only: the command that switches DNS/IP to the DRC once
    /// every check passed (empty: none configured; the report says so).
    pub switch_hook: Vec<String>,
    /// Who runs it (`drc:<target>@<state dir>` for the executor), labelled on what it
    /// makes, so the executor can sweep its own orphans after a crash.
    pub owner: Option<String>,
    /// A drill of a recovery plan's run: on the run's shared internal
    /// network, and left up once passed (the run's teardown removes it).
    pub plan_run: Option<String>,
}

impl DrillPlan {
    fn labels(&self) -> HashMap<String, String> {
        let mut l = HashMap::from([(LABEL.to_string(), self.id.clone())]);
        if let Some(o) = &self.owner {
            l.insert(OWNER_LABEL.to_string(), o.clone());
        }
        if let Some(r) = &self.plan_run {
            l.insert(PLAN_LABEL.to_string(), r.clone());
        }
        l
    }

    /// A drill of a plan's run (not a failover: those share the service
    /// network anyway).
    fn plan_drill(&self) -> Option<&str> {
        self.plan_run
            .as_deref()
            .filter(|_| self.kind == RecoveryKind::Drill)
    }

    fn name(&self, container: &str) -> String {
        format!("pulih-{}-{}", self.id, container)
    }

    fn network(&self) -> String {
        match self.kind {
            RecoveryKind::Drill => format!("pulih-{}", self.plan_drill().unwrap_or(&self.id)),
            RecoveryKind::Failover | RecoveryKind::Failback => self.service_network.clone(),
        }
    }

    fn scratch(&self) -> PathBuf {
        self.scratch_root.join(&self.id)
    }
}

/// A new recovery id: the kind, the UTC time, and a random suffix.
pub fn new_id(kind: RecoveryKind) -> String {
    let word = kind.as_str();
    let suffix: u32 = rand_suffix();
    format!("{word}-{}-{suffix:06x}", Utc::now().format("%Y%m%dT%H%M%S"))
}

fn rand_suffix() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    (nanos ^ std::process::id().rotate_left(12)) & 0xff_ffff
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn label_filter(id: &str) -> HashMap<String, Vec<String>> {
    HashMap::from([("label".to_string(), vec![format!("{LABEL}={id}")])])
}

/// Free bytes where `dir` (or its nearest existing parent) lives.
fn free_bytes(dir: &Path) -> Option<u64> {
    let mut d = dir;
    while !d.exists() {
        d = d.parent()?;
    }
    crate::pull::facts::free_disk(d)
}

struct Run<'a> {
    plan: &'a DrillPlan,
    docker: Docker,
    t0: Instant,
    started: DateTime<Utc>,
    report: DrillReport,
    /// Manifest container name → (engine name, address on the network).
    running: HashMap<String, (String, Option<IpAddr>)>,
    /// The scratch dir is this run's own (teardown removes only that).
    made_scratch: bool,
    /// The recovery network's bridge, once its isolation rules are in.
    bridge: Option<String>,
    /// Images loaded from the snapshot that the engine did not hold
    /// before, with what their tag named then.
    loaded_images: Vec<(String, Option<String>)>,
}

impl Run<'_> {
    fn at(&self) -> f64 {
        self.t0.elapsed().as_secs_f64()
    }

    fn step(&mut self, name: &str, began: f64, ok: bool, detail: String) {
        let took = self.at() - began;
        tracing::info!(drill = %self.plan.id, step = name, ok, took_s = took, "{detail}");
        self.report.steps.push(DrillStep {
            name: name.to_string(),
            at_s: began,
            duration_s: took,
            ok,
            detail,
        });
    }

    /// Runs `f` as a named step; its Ok value is the step's detail.
    async fn timed<T>(
        &mut self,
        name: &str,
        f: impl std::future::Future<Output = Result<(T, String)>>,
    ) -> Result<T> {
        let began = self.at();
        match f.await {
            Ok((v, detail)) => {
                self.step(name, began, true, detail);
                Ok(v)
            }
            Err(e) => {
                self.step(name, began, false, format!("{e:#}"));
                Err(e)
            }
        }
    }
}

/// Runs a drill (or failover) of `plan` on the repository in `store`,
/// opened with `key`, and returns its report; never panics on the way, and
/// a drill is always torn down.
pub async fn run(store: Store, key: &ReaderKey, plan: &DrillPlan) -> DrillReport {
    let started = Utc::now();
    let mut report = empty_report(plan, started);
    let docker = match docker::connect() {
        Ok(d) => d,
        Err(e) => {
            report.error = Some(format!("{e:#}"));
            report.finished_at = rfc3339(Utc::now());
            return report;
        }
    };
    let span = tracing::info_span!("drill", id = %plan.id, server = %plan.server);
    let mut run = Run {
        plan,
        docker,
        t0: Instant::now(),
        started,
        report,
        running: HashMap::new(),
        made_scratch: false,
        bridge: None,
        loaded_images: Vec::new(),
    };
    async {
        match run.recover(store, key).await {
            Ok(()) => run.report.state = DrillState::Passed,
            Err(e) => {
                run.report.error = Some(format!("{e:#}"));
                run.collect_logs().await;
            }
        }
        // A drill always ends torn down (a plan's drill once its run ends,
        // as later groups may depend on it); a failover only when it failed
        // (a half-started service is no service, and a retry starts clean).
        if let (Some(r), true) = (plan.plan_drill(), run.report.passed()) {
            let began = run.at();
            // What it loaded goes with the run's teardown; unrecorded, it
            // could not: the drill fails and is torn down now instead.
            match run.record_loaded_images() {
                Ok(()) => run.step(
                    "kept up",
                    began,
                    true,
                    format!(
                        "on {} for the later groups of plan run {r}; removed, with the {} images it loaded, when the run ends",
                        plan.network(),
                        run.loaded_images.len()
                    ),
                ),
                Err(e) => {
                    run.step("kept up", began, false, format!("{e:#}"));
                    run.report.state = DrillState::Failed;
                    run.report.error = Some(format!("{e:#}"));
                    run.teardown().await;
                }
            }
        } else if plan.kind == RecoveryKind::Drill || !run.report.passed() {
            run.teardown().await;
            if run.report.passed() && !run.report.teardown.as_ref().is_some_and(Teardown::clean) {
                run.report.state = DrillState::Failed;
                run.report.error =
                    Some("the drill passed but its teardown left things behind".into());
            }
        }
    }
    .instrument(span)
    .await;
    run.report.finished_at = rfc3339(Utc::now());
    run.report
}

/// The report of a drill that could not even start (e.g. its store does
/// not open): failed, with `reason`, nothing made so nothing to tear down.
pub fn not_started(plan: &DrillPlan, reason: String) -> DrillReport {
    let now = Utc::now();
    let mut r = empty_report(plan, now);
    r.error = Some(reason);
    r.finished_at = rfc3339(now);
    r
}

fn empty_report(plan: &DrillPlan, started: DateTime<Utc>) -> DrillReport {
    DrillReport {
        id: plan.id.clone(),
        kind: plan.kind,
        server: plan.server.clone(),
        perangkat_daerah: plan.perangkat_daerah.clone(),
        state: DrillState::Failed,
        error: None,
        started_at: rfc3339(started),
        finished_at: String::new(),
        snapshot_id: None,
        snapshot_time: None,
        rto_seconds: None,
        rpo_seconds: None,
        rto_target_seconds: plan.rto_target_seconds,
        rpo_target_seconds: plan.rpo_target_seconds,
        files_restored: 0,
        bytes_restored: 0,
        steps: Vec::new(),
        checks: Vec::new(),
        logs: Default::default(),
        teardown: None,
        order: None,
    }
}
