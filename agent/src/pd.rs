//! A PD server's agent (DESIGN.md §1): on the pull loop it receives its
//! assignment (what to back up, to which repository, on which schedule)
//! and jobs. The assignment is cached in the state dir, so the agent keeps
//! replicating on schedule while the controller is down; results wait in
//! the outbox until the controller acknowledges them. Runs are keyed
//! (`sched-<server>-<unix time>` for scheduled ones), so redelivery never
//! duplicates.
//!
//! A new job kind goes in `jobs.rs` (`PdRole::run_job`); a new kind of
//! source in the assignment's Docker sources in `capture.rs`.

pub mod capture;
pub mod config;
mod failback;
mod jobs;
mod replicate;
pub mod schedule;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use chrono::{DateTime, Utc};
use pulih_client::{AgentClient as Client, ClientError};
use pulih_model::api::{Assignment, Facts, HeartbeatResponse, Job, RunResult, RunStartRequest};
use pulih_model::state::JobKind;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::pull::outbox::Delivery;
use crate::pull::{Link, Pull, Role, Settings, facts};
use crate::state::{read_json, write_atomic};
use config::AgentConfig;

const ASSIGNMENT: &str = "assignment.json";
const SCHEDULE_STATE: &str = "schedule.json";

/// A PD server's agent (`pulih agent`).
pub struct Agent(Pull<PdRole>);

impl Agent {
    pub fn new(config: AgentConfig) -> Result<Agent> {
        let hostname = config.hostname.clone().unwrap_or_else(facts::hostname);
        let settings = Settings {
            controller: &config.controller,
            name: &config.server,
            bind_address: config.bind_address,
            ca_file: config.ca_file.as_deref(),
            insecure_http: config.insecure_http,
            state_dir: &config.state_dir,
            enroll_token_file: config.enroll_token_file.clone(),
            no_token: format!(
                "this agent is not enrolled: set enroll_token_file (a token from `pulih servers enroll-token {}`)",
                config.server
            ),
            heartbeat_interval: config.heartbeat_interval,
            hostname: hostname.clone(),
            disk_dir: config.state_dir.clone(),
        };
        let role = PdRole::new(config.clone(), hostname);
        let pull = Pull::new(settings, Results, role)?;
        Ok(Agent(pull))
    }

    /// The agent's main loop, until `cancel`.
    pub async fn run(self, cancel: CancellationToken) -> Result<()> {
        self.0.run(cancel).await
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct ScheduleState {
    /// The newest scheduled time a run was fired for.
    last_fired: Option<DateTime<Utc>>,
}

/// A run's result as it waits in the outbox.
#[derive(Debug, Serialize, Deserialize)]
struct Outgoing {
    run_key: String,
    result: RunResult,
}

/// Run results, delivered to `/agents/{server}/runs/{key}/result`.
struct Results;

impl Delivery for Results {
    type Item = Outgoing;
    const WHAT: &'static str = "result";

    fn id(o: &Outgoing) -> &str {
        &o.run_key
    }

    async fn deliver(&self, client: &Client, o: &Outgoing) -> Result<(), ClientError> {
        client.result(&o.run_key, &o.result).await
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    Go,
    /// Ask again in this many seconds.
    Wait(u64),
    Done,
}

/// What only a PD server's agent does on the pull loop.
struct PdRole {
    config: AgentConfig,
    hostname: String,
    /// Jobs handed out and not run yet, in order.
    pending_jobs: Vec<Job>,
    schedule: ScheduleState,
}

impl Role for PdRole {
    type Work = HeartbeatResponse;
    type Delivery = Results;

    async fn start(&mut self) -> Result<()> {
        let sched_path = self.path(SCHEDULE_STATE);
        self.schedule = read_json(&sched_path)?.unwrap_or_default();
        if self.schedule.last_fired.is_none() {
            // First start: nothing in the past is owed.
            self.schedule.last_fired = Some(Utc::now());
            write_atomic(&sched_path, &serde_json::to_vec(&self.schedule)?)?;
        }
        Ok(())
    }

    async fn heartbeat(
        &self,
        client: &Client,
        facts: Facts,
    ) -> Result<HeartbeatResponse, ClientError> {
        client.heartbeat(facts).await
    }

    async fn work(
        &mut self,
        link: &Link<Results>,
        work: Option<HeartbeatResponse>,
        _cancel: &CancellationToken,
    ) -> Result<Option<Instant>> {
        if let Some(resp) = work {
            self.take(resp)?;
        }
        let assignment = self.assignment()?;
        let Some(a) = &assignment else {
            return Ok(None);
        };
        // Jobs (replicate now) first.
        self.run_pending(link, a).await?;
        // Then the schedule.
        self.scheduled(link, a).await
    }
}

impl PdRole {
    fn new(config: AgentConfig, hostname: String) -> PdRole {
        PdRole {
            config,
            hostname,
            pending_jobs: Vec::new(),
            schedule: ScheduleState::default(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.config.state_dir.join(name)
    }

    fn assignment(&self) -> Result<Option<Assignment>> {
        read_json(&self.path(ASSIGNMENT))
    }

    /// What a heartbeat brought: the assignment (cached) and new jobs.
    fn take(&mut self, resp: HeartbeatResponse) -> Result<()> {
        match &resp.assignment {
            Some(a) => {
                if self.assignment()?.as_ref() != Some(a) {
                    tracing::info!(revision = a.revision, cron = %a.cron, "new assignment");
                }
                write_atomic(&self.path(ASSIGNMENT), &serde_json::to_vec_pretty(a)?)?;
            }
            None => {
                tracing::warn!(server = %self.config.server, "the controller has no Server of this name in its manifests")
            }
        }
        for j in resp.jobs {
            if !self.pending_jobs.iter().any(|p| p.run_key == j.run_key) {
                self.pending_jobs.push(j);
            }
        }
        Ok(())
    }

    /// Runs the pending jobs in order, until the controller says wait.
    async fn run_pending(&mut self, link: &Link<Results>, a: &Assignment) -> Result<()> {
        while let Some(job) = self.pending_jobs.first().cloned() {
            match self.may_start(link, &job.run_key, "manual", None).await? {
                Start::Go if job.kind == JobKind::Replicate => {
                    self.replicate(link, a, &job.run_key, "manual", None)
                        .await?
                }
                Start::Go => self.run_job(link, a, &job).await?,
                Start::Wait(_) => break,
                Start::Done => {}
            }
            self.pending_jobs.remove(0);
        }
        Ok(())
    }

    /// Fires the scheduled run that is due, if any. Returns when to look
    /// again: at once after a run, shortly when capped, else at the next
    /// fire time.
    async fn scheduled(&mut self, link: &Link<Results>, a: &Assignment) -> Result<Option<Instant>> {
        let plan = match schedule::Plan::new(&a.cron, &a.timezone, a.jitter_seconds) {
            Ok(plan) => plan,
            Err(e) => {
                tracing::error!(error = %e, "the cached assignment has a bad schedule");
                return Ok(None);
            }
        };
        let last = self.schedule.last_fired.unwrap_or_else(Utc::now);
        let now = Utc::now();
        if let Some(due) = plan.due(last, now) {
            let run_key = format!("sched-{}-{}", a.server, due.timestamp());
            let start = self
                .may_start(link, &run_key, "schedule", Some(due))
                .await?;
            if let Start::Wait(secs) = start {
                // Capped: ask again shortly.
                let secs = secs.clamp(1, 300);
                return Ok(Some(Instant::now() + Duration::from_secs(secs)));
            }
            self.schedule.last_fired = Some(due);
            write_atomic(
                &self.path(SCHEDULE_STATE),
                &serde_json::to_vec(&self.schedule)?,
            )?;
            if start == Start::Go {
                self.replicate(link, a, &run_key, "schedule", Some(due))
                    .await?;
            }
            return Ok(Some(Instant::now()));
        }
        Ok(plan.next_after(last.max(now)).map(|next| {
            let until = (plan.fire_time(next) - now).to_std().unwrap_or_default();
            Instant::now() + until
        }))
    }

    /// Asks the controller to start a run. Unreachable: go ahead anyway
    /// (autonomy).
    async fn may_start(
        &self,
        link: &Link<Results>,
        run_key: &str,
        trigger: &str,
        scheduled_for: Option<DateTime<Utc>>,
    ) -> Result<Start> {
        let req = RunStartRequest {
            trigger: trigger.to_string(),
            scheduled_for: scheduled_for.map(rfc3339),
        };
        match link.client.start_run(run_key, &req).await {
            Ok(r) if r.proceed => Ok(Start::Go),
            Ok(r) if r.retry_after_seconds > 0 => {
                tracing::info!(
                    run_key,
                    retry_after = r.retry_after_seconds,
                    "the controller says wait (a concurrency cap, or outside the replication window)"
                );
                Ok(Start::Wait(r.retry_after_seconds))
            }
            Ok(_) => {
                tracing::info!(run_key, "the controller has this run finished already");
                Ok(Start::Done)
            }
            Err(e) if e.is_retryable() => Ok(Start::Go),
            Err(e) => {
                // Replication is never held hostage by the control plane.
                tracing::warn!(run_key, error = %e, "the controller refused the run start; running anyway");
                Ok(Start::Go)
            }
        }
    }

    /// Queues a run's result in the outbox and tries to deliver it.
    async fn report(&self, link: &Link<Results>, run_key: &str, result: RunResult) -> Result<()> {
        let name = format!("{}-{run_key}.json", Utc::now().timestamp_millis());
        let out = Outgoing {
            run_key: run_key.to_string(),
            result,
        };
        link.send(&name, &out).await
    }
}

/// A run's result before its outcome is known: failed, nothing stored,
/// timed from `started` to `finished`.
fn failed_result(
    trigger: &str,
    scheduled_for: Option<DateTime<Utc>>,
    started: DateTime<Utc>,
    finished: DateTime<Utc>,
) -> RunResult {
    RunResult {
        trigger: trigger.to_string(),
        scheduled_for: scheduled_for.map(rfc3339),
        started_at: rfc3339(started),
        finished_at: rfc3339(finished),
        state: pulih_model::state::RunState::Failed,
        snapshot_id: None,
        files: 0,
        bytes_read: 0,
        bytes_new: 0,
        bytes_stored: 0,
        duration_s: (finished - started).num_milliseconds() as f64 / 1000.0,
        errors: Vec::new(),
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
