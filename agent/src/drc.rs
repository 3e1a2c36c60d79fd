//! The DRC executor (`pulih agent --role drc`, DESIGN.md §1, §6): runs at
//! the DRC beside its store and a Docker engine, enrols with the
//! controller as `drc:<target>`, and runs the drills queued for its DRC
//! target one at a time. It holds one `drc-drill` age identity; an agency's
//! repository opens with it only where the walidata granted the slot
//! (`pulih repo grant-drill`), and the controller queues drills only for
//! agencies whose manifest consents. Each report goes to the DRC store
//! (`reports/drills/<server>/<id>.json`) and to the controller; reports the
//! controller did not take yet wait in the state dir's outbox.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use pulih_core::repo::{DRC_DRILL_SLOT, ReaderKey};
use pulih_core::storage::Store;
use pulih_model::api::DrillJob;
use pulih_model::drill::{DrillReport, RecoveryKind};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use drill::DrillPlan;
use crate::{enrol, host_facts, hostname, outbox_files, read_json, reject, write_atomic};
use pulih_client::AgentClient as Client;

pub mod drill;

const CREDENTIAL: &str = "credential";
const OUTBOX: &str = "outbox";

/// The DRC executor's configuration (TOML).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrcConfig {
    /// The controller's base URL.
    pub controller: String,
    /// The `DrcTarget` (manifest name) this executor serves.
    pub target: String,
    /// Credential and undelivered reports.
    pub state_dir: PathBuf,
    /// The `drc-drill` age identity (`pulih drc keygen`), mode 0600.
    pub identity_file: PathBuf,
    /// A one-time token from `pulih drc enroll-token TARGET`.
    #[serde(default)]
    pub enroll_token_file: Option<PathBuf>,
    /// Where drills restore data on this Docker host (default
    /// `<state_dir>/drills`).
    #[serde(default)]
    pub scratch_dir: Option<PathBuf>,
    /// Default 15s.
    #[serde(default = "default_heartbeat", with = "crate::pd::config::duration")]
    pub heartbeat_interval: Duration,
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    #[serde(default)]
    pub bind_address: Option<std::net::IpAddr>,
    /// Failover: the Docker network services run on at the DRC (made if
    /// absent). Default `pulih-service`.
    #[serde(default = "default_service_network")]
    pub service_network: String,
    /// Failover: the command that moves DNS/IP to the DRC once every check
    /// passed, e.g. `["/usr/local/bin/pulih-switch-dns"]`; it gets
    /// PULIH_SERVER, PULIH_RECOVERY_ID, PULIH_NETWORK and PULIH_ADDRESSES
    /// (`name=ip,…`) in its environment. Empty: switch by hand.
    #[serde(default)]
    pub switch_hook: Vec<String>,
}

fn default_service_network() -> String {
    "pulih-service".into()
}

fn default_heartbeat() -> Duration {
    Duration::from_secs(15)
}

impl DrcConfig {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            anyhow::anyhow!("cannot read DRC executor config {}: {e}", path.display())
        })?;
        toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("DRC executor config {}: {e}", path.display()))
    }

    fn scratch(&self) -> PathBuf {
        self.scratch_dir
            .clone()
            .unwrap_or_else(|| self.state_dir.join("drills"))
    }
}

pub struct DrcExecutor {
    config: DrcConfig,
    client: Client,
    key: ReaderKey,
    hostname: String,
    enrolled: bool,
}

impl DrcExecutor {
    pub fn new(config: DrcConfig) -> Result<DrcExecutor> {
        std::fs::create_dir_all(config.state_dir.join(OUTBOX))
            .with_context(|| format!("cannot create state dir {}", config.state_dir.display()))?;
        let identity = pulih_core::keys::load_identity(&config.identity_file)
            .context("the drc-drill identity (identity_file)")?;
        let name = format!("drc:{}", config.target);
        let mut client = Client::new(
            &config.controller,
            &name,
            config.bind_address,
            config.ca_file.as_deref(),
        )?;
        let cred = config.state_dir.join(CREDENTIAL);
        let enrolled = cred.exists();
        if enrolled {
            client.set_credential(
                pulih_core::storage::read_secret_file(&cred)?
                    .trim()
                    .to_string(),
            );
        }
        Ok(DrcExecutor {
            key: ReaderKey::Identity {
                slot: DRC_DRILL_SLOT.to_string(),
                identity,
            },
            hostname: hostname(),
            config,
            client,
            enrolled,
        })
    }

    async fn ensure_enrolled(&mut self) -> Result<bool> {
        if self.enrolled {
            return Ok(true);
        }
        let Some(token_file) = &self.config.enroll_token_file else {
            anyhow::bail!(
                "this DRC executor is not enrolled: set enroll_token_file (a token from `pulih drc enroll-token {}`)",
                self.config.target
            );
        };
        let facts = self.facts().await;
        let cred = self.config.state_dir.join(CREDENTIAL);
        self.enrolled = enrol(&mut self.client, token_file, facts, &cred).await?;
        Ok(self.enrolled)
    }

    async fn facts(&self) -> pulih_model::api::Facts {
        host_facts(
            &self.hostname,
            &self.config.controller,
            self.config.bind_address,
            &self.config.scratch(),
        )
        .await
    }

    /// Sends the reports the controller has not taken yet.
    async fn flush_outbox(&self) -> Result<()> {
        let dir = self.config.state_dir.join(OUTBOX);
        for p in outbox_files(&dir)? {
            let report = match read_json::<DrillReport>(&p) {
                Ok(Some(r)) => r,
                Ok(None) => continue,
                Err(e) => {
                    // One bad file must not stop the executor for good.
                    tracing::error!(file = %p.display(), error = %format!("{e:#}"), "unreadable report; moved to outbox/rejected");
                    reject(&dir, &p)?;
                    continue;
                }
            };
            match self.client.drill_report(&self.config.target, &report).await {
                Ok(()) => std::fs::remove_file(&p)?,
                Err(e) if e.is_retryable() => {
                    tracing::debug!(error = %e, "controller unreachable; reports stay in the outbox");
                    return Ok(());
                }
                Err(e) => {
                    tracing::error!(drill = %report.id, error = %e, "report refused; moved to outbox/rejected");
                    reject(&dir, &p)?;
                }
            }
        }
        Ok(())
    }

    /// Runs one drill the controller handed out, if it still may start.
    async fn drill(&self, job: &DrillJob) -> Result<()> {
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
        match self.client.drill_start(&self.config.target, &job.id).await {
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
        let store = Store::open(&job.repository, false);
        let report = match (&store, job.kind) {
            _ if let Err(e) = &scratch_ok => drill::not_started(&plan, format!("{e:#}")),
            (Ok(store), RecoveryKind::Failback) => {
                // A failback works on its failover's containers and data.
                let mut of = plan.clone();
                of.id = job.snapshot.clone();
                drill::failback::run(store.clone(), &self.key, &of, &job.id).await
            }
            (Ok(store), _) => drill::run(store.clone(), &self.key, &plan).await,
            (Err(e), _) => {
                drill::not_started(&plan, format!("cannot open the DRC store: {e}"))
            }
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
        let out = self
            .config
            .state_dir
            .join(OUTBOX)
            .join(format!("{}.json", report.id));
        write_atomic(&out, &serde_json::to_vec(&report)?)?;
        tracing::info!(drill = %report.id, state = %report.state, rto = ?report.rto_seconds, "drill finished");
        self.flush_outbox().await
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

    pub async fn run(mut self, cancel: CancellationToken) -> Result<()> {
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
        loop {
            if cancel.is_cancelled() {
                return Ok(());
            }
            if self.ensure_enrolled().await? {
                if let Err(e) = self.flush_outbox().await {
                    tracing::error!(error = %format!("{e:#}"), "cannot deliver the reports in the outbox");
                }
                let facts = self.facts().await;
                match self.client.drc_heartbeat(&self.config.target, facts).await {
                    Ok(resp) => {
                        for job in &resp.drills {
                            if cancel.is_cancelled() {
                                return Ok(());
                            }
                            if let Err(e) = self.drill(job).await {
                                tracing::error!(id = %job.id, error = %format!("{e:#}"), "recovery job not completed");
                            }
                        }
                        for run in &resp.plan_teardowns {
                            // It names labels and scratch directories here.
                            if !run.starts_with("plan-drill-")
                                || !run.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                            {
                                tracing::error!(%run, "refusing a plan teardown whose id is not a drill plan run's");
                                continue;
                            }
                            let t =
                                drill::teardown_plan_run(run, &self.config.scratch()).await;
                            tracing::info!(%run, clean = t.clean(), "drill plan run torn down");
                            if let Err(e) = self
                                .client
                                .plan_teardown(&self.config.target, run, &t)
                                .await
                            {
                                tracing::warn!(%run, error = %e, "cannot report a plan run's teardown; will retry");
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "heartbeat failed; will retry"),
                }
            }
            tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                _ = tokio::time::sleep(self.config.heartbeat_interval) => {}
            }
        }
    }
}
