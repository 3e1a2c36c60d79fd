//! The DRC executor (`pulih agent --role drc`, DESIGN.md §1, §6): runs at
//! the DRC beside its store and a Docker engine, enrols with the
//! controller as `drc:<target>`, and runs the drills queued for its DRC
//! target one at a time. It holds one `drc-drill` age identity; an agency's
//! repository opens with it only where the walidata granted the slot
//! (`pulih repo grant-drill`), and the controller queues drills only for
//! agencies whose manifest consents. Each report goes to the DRC store
//! (`reports/drills/<server>/<id>.json`) and to the controller; reports the
//! controller did not take yet wait in the state dir's outbox.
//!
//! The pull loop is [`crate::pull`]'s; what a drill, failover or failback
//! does is `drill.rs` (a new step of a recovery goes in `drill/recover.rs`).

pub mod config;
pub mod drill;

use anyhow::{Context, Result};
use bytes::Bytes;
use pulih_client::{AgentClient as Client, ClientError};
use pulih_core::repo::{DRC_DRILL_SLOT, ReaderKey};
use pulih_model::api::{DrcHeartbeatResponse, DrillJob, Facts};
use pulih_model::drill::{DrillReport, RecoveryKind};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use config::DrcConfig;
use drill::DrillPlan;

use crate::pull::outbox::Delivery;
use crate::pull::{Link, Pull, Role, Settings, facts};

/// The DRC executor (`pulih agent --role drc`).
pub struct DrcExecutor(Pull<DrcRole>);

impl DrcExecutor {
    pub fn new(config: DrcConfig) -> Result<DrcExecutor> {
        let identity = pulih_core::keys::load_identity(&config.identity_file)
            .context("the drc-drill identity (identity_file)")?;
        let name = format!("drc:{}", config.target);
        let settings = Settings {
            controller: &config.controller,
            name: &name,
            bind_address: config.bind_address,
            ca_file: config.ca_file.as_deref(),
            insecure_http: config.insecure_http,
            state_dir: &config.state_dir,
            enroll_token_file: config.enroll_token_file.clone(),
            no_token: format!(
                "this DRC executor is not enrolled: set enroll_token_file (a token from `pulih drc enroll-token {}`)",
                config.target
            ),
            heartbeat_interval: config.heartbeat_interval,
            hostname: facts::hostname(),
            disk_dir: config.scratch(),
        };
        let delivery = Reports {
            target: config.target.clone(),
        };
        let role = DrcRole {
            key: ReaderKey::Identity {
                slot: DRC_DRILL_SLOT.to_string(),
                identity,
            },
            config: config.clone(),
        };
        Ok(DrcExecutor(Pull::new(settings, delivery, role)?))
    }

    /// The executor's main loop, until `cancel`.
    pub async fn run(self, cancel: CancellationToken) -> Result<()> {
        self.0.run(cancel).await
    }
}

/// Drill reports, delivered to `/drc/{target}/drills/{id}/report`.
struct Reports {
    target: String,
}

impl Delivery for Reports {
    type Item = DrillReport;
    const WHAT: &'static str = "report";

    fn id(r: &DrillReport) -> &str {
        &r.id
    }

    async fn deliver(&self, client: &Client, r: &DrillReport) -> Result<(), ClientError> {
        client.drill_report(&self.target, r).await
    }
}

/// What only the DRC executor does on the pull loop.
struct DrcRole {
    config: DrcConfig,
    key: ReaderKey,
}

impl Role for DrcRole {
    type Work = DrcHeartbeatResponse;
    type Delivery = Reports;

    async fn start(&mut self) -> Result<()> {
        // Drills run one at a time, so at start none of ours is running:
        // whatever one left behind (a crash mid-drill) goes now.
        let owner = self.owner();
        match drill::sweep_orphaned_drills(&owner, &self.config.scratch()).await {
            Ok(ids) if !ids.is_empty() => {
                tracing::warn!(?ids, "removed what interrupted drills left behind")
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %format!("{e:#}"), "cannot sweep orphaned drills"),
        }
        Ok(())
    }

    async fn heartbeat(
        &self,
        client: &Client,
        facts: Facts,
    ) -> Result<DrcHeartbeatResponse, ClientError> {
        client.drc_heartbeat(&self.config.target, facts).await
    }

    async fn work(
        &mut self,
        link: &Link<Reports>,
        work: Option<DrcHeartbeatResponse>,
        cancel: &CancellationToken,
    ) -> Result<Option<Instant>> {
        let Some(resp) = work else {
            return Ok(None);
        };
        for job in &resp.drills {
            if cancel.is_cancelled() {
                return Ok(None);
            }
            if let Err(e) = self.drill(link, job).await {
                tracing::error!(id = %job.id, error = %format!("{e:#}"), "recovery job not completed");
            }
        }
        for run in &resp.plan_teardowns {
            self.teardown_plan_run(link, run).await;
        }
        Ok(None)
    }
}

impl DrcRole {
    /// Runs one drill the controller handed out, if it still may start.
    async fn drill(&self, link: &Link<Reports>, job: &DrillJob) -> Result<()> {
        // The id names containers, a network and a scratch directory. The
        // longest the controller makes: a plan member's
        // `plan-drill-<time>-<rand>-g<i>-<63-char server>-<attempt>`.
        let plain = |s: &str| {
            !s.is_empty()
                && s.len() <= 160
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        // A plan drill's network is `pulih-<plan_run>`: only a drill plan
        // run's id, and only for its own members.
        let plan_ok = job.plan_run.as_deref().is_none_or(|r| {
            plain(r)
                && r.starts_with("plan-drill-")
                && job.kind == RecoveryKind::Drill
                && job.id.starts_with(&format!("{r}-"))
        });
        if !plain(&job.id)
            || !plan_ok
            || !plain(&job.server)
            || (job.kind == RecoveryKind::Failback && !plain(&job.snapshot))
        {
            tracing::error!(drill = %job.id, server = %job.server, "refusing a drill whose id or server is not a plain name");
            return Ok(());
        }
        match link.client.drill_start(&self.config.target, &job.id).await {
            Ok(r) if r.proceed => {}
            Ok(_) => return Ok(()),
            Err(e) => {
                tracing::warn!(drill = %job.id, error = %e, "cannot start the drill now");
                return Ok(());
            }
        }
        let scratch = self.config.scratch();
        let scratch_ok = std::fs::create_dir_all(&scratch)
            .with_context(|| format!("cannot create scratch dir {}", scratch.display()));
        let plan = DrillPlan {
            id: job.id.clone(),
            kind: job.kind,
            service_network: self.config.service_network.clone(),
            switch_hook: self.config.switch_hook.clone(),
            owner: Some(self.owner()),
            plan_run: job.plan_run.clone(),
            server: job.server.clone(),
            perangkat_daerah: job.perangkat_daerah.clone(),
            recovery: job.recovery.clone(),
            snapshot: job.snapshot.clone(),
            rto_target_seconds: job.rto_target_seconds,
            rpo_target_seconds: job.rpo_target_seconds,
            scratch_root: scratch,
        };
        tracing::info!(id = %job.id, server = %job.server, kind = ?job.kind, "drc-drill key used");
        let store = crate::pull::enrol::open_store(&self.config.state_dir, &job.repository);
        let report = match (&store, job.kind) {
            _ if let Err(e) = &scratch_ok => drill::not_started(&plan, format!("{e:#}")),
            (Ok(store), RecoveryKind::Failback) => {
                // A failback works on its failover's containers and data.
                let mut of = plan.clone();
                of.id = job.snapshot.clone();
                drill::failback::run(store.clone(), &self.key, &of, &job.id).await
            }
            (Ok(store), _) => drill::run(store.clone(), &self.key, &plan).await,
            (Err(e), _) => drill::not_started(&plan, format!("cannot open the DRC store: {e}")),
        };
        if let Ok(store) = &store {
            let key = report.store_key();
            if let Err(e) = store
                .put(&key, Bytes::from(serde_json::to_vec_pretty(&report)?))
                .await
            {
                tracing::error!(drill = %report.id, error = %e, "the report could not be stored in the DRC store");
            }
        }
        tracing::info!(drill = %report.id, state = %report.state, rto = ?report.rto_seconds, "drill finished");
        link.send(&format!("{}.json", report.id), &report).await
    }

    /// The label value that marks what this executor makes: its target and
    /// its state directory, so two executors sharing one Docker engine (two
    /// DRC targets, or a test beside another) never sweep each other's
    /// running drills.
    fn owner(&self) -> String {
        format!(
            "drc:{}@{}",
            self.config.target,
            self.config.state_dir.display()
        )
    }

    /// Removes what a drill plan run's drills left up, and reports it.
    async fn teardown_plan_run(&self, link: &Link<Reports>, run: &str) {
        // It names labels and scratch directories here.
        if !run.starts_with("plan-drill-")
            || !run.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            tracing::error!(%run, "refusing a plan teardown whose id is not a drill plan run's");
            return;
        }
        let t = drill::teardown_plan_run(run, &self.config.scratch()).await;
        tracing::info!(%run, clean = t.clean(), "drill plan run torn down");
        if let Err(e) = link
            .client
            .plan_teardown(&self.config.target, run, &t)
            .await
        {
            tracing::warn!(%run, error = %e, "cannot report a plan run's teardown; will retry");
        }
    }
}
