//! pulih-agent: runs on a PD server (DESIGN.md §1).
//!
//! It enrols once with a one-time token, then heartbeats with facts and
//! receives its assignment (what to back up, to which repository, on which
//! schedule) and jobs. The assignment is cached in the state dir, so the
//! agent keeps replicating on schedule while the controller is down; results
//! wait in an outbox until the controller acknowledges them. Runs are keyed
//! (`sched-<server>-<unix time>` for scheduled ones), so redelivery never duplicates.

pub mod capture;
pub mod config;
pub mod docker;
pub mod drc;
pub mod drill;
mod failback;
pub mod schedule;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use pulih_model::api::{Assignment, Facts, Job, RestoreRequest, RunResult, RunStartRequest};
use pulih_model::state::{JobKind, RunState};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

pub use config::AgentConfig;
use pulih_client::AgentClient as Client;

const CREDENTIAL: &str = "credential";
const ASSIGNMENT: &str = "assignment.json";
const SCHEDULE_STATE: &str = "schedule.json";
const OUTBOX: &str = "outbox";

#[derive(Debug, Default, Serialize, Deserialize)]
struct ScheduleState {
    /// The newest scheduled time a run was fired for.
    last_fired: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Outgoing {
    run_key: String,
    result: RunResult,
}

/// Writes `bytes` to `path` atomically (temp file + rename), mode 0600.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(serde_json::from_slice(&b).with_context(|| {
            format!("corrupt state file {}", path.display())
        })?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into())
}

fn os_name() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.strip_prefix("PRETTY_NAME=")
                    .map(|v| v.trim_matches('"').to_string())
            })
        })
        .unwrap_or_else(|| std::env::consts::OS.to_string())
}

/// Free bytes where `dir` lives (from `df`; None when it cannot tell).
pub(crate) fn free_disk(dir: &Path) -> Option<u64> {
    let out = std::process::Command::new("df")
        .arg("-Pk")
        .arg(dir)
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let kib: u64 = text
        .lines()
        .nth(1)?
        .split_whitespace()
        .nth(3)?
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// Enrols with the one-time token in `token_file`, keeps the credential
/// (mode 0600) at `cred` and in `client`. False: the controller is not
/// reachable yet (try again later).
pub(crate) async fn enrol(
    client: &mut Client,
    token_file: &Path,
    facts: Facts,
    cred: &Path,
) -> Result<bool> {
    let token = pulih_core::storage::read_secret_file(token_file)?;
    match client.enroll(token.trim(), facts).await {
        Ok(r) => {
            write_atomic(cred, r.credential.as_bytes())?;
            client.set_credential(r.credential);
            tracing::info!(as_ = %r.server, "enrolled");
            Ok(true)
        }
        Err(e) if e.is_retryable() => {
            tracing::warn!(error = %e, "cannot enrol yet; will retry");
            Ok(false)
        }
        Err(e) => Err(e).context("enrolment refused"),
    }
}

/// The snapshots of `server` (tagged `server=<name>`); an error when there
/// is none.
pub(crate) async fn own_snapshots(
    reader: &pulih_core::repo::Reader,
    server: &str,
) -> Result<Vec<pulih_core::repo::ListedSnapshot>> {
    let tag = format!("server={server}");
    let own: Vec<_> = reader
        .snapshots()
        .await?
        .into_iter()
        .filter(|s| s.snapshot.tags.contains(&tag))
        .collect();
    if own.is_empty() {
        anyhow::bail!("the repository holds no snapshot of server {server}");
    }
    Ok(own)
}

/// An outbox's files, oldest first.
pub(crate) fn outbox_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    entries.sort();
    Ok(entries)
}

/// Moves an outbox file the controller refused (or that cannot be read)
/// to `outbox/rejected`, so it is kept but not retried forever.
pub(crate) fn reject(dir: &Path, p: &Path) -> Result<()> {
    let rej = dir.join("rejected");
    std::fs::create_dir_all(&rej)?;
    std::fs::rename(p, rej.join(p.file_name().unwrap_or_default()))?;
    Ok(())
}

/// What an agent reports of its host: `disk_dir`'s free space among it.
pub(crate) async fn host_facts(
    hostname: &str,
    controller: &str,
    bind: Option<std::net::IpAddr>,
    disk_dir: &Path,
) -> Facts {
    let (docker_containers, docker_volumes) = docker::facts().await.unwrap_or_default();
    Facts {
        hostname: hostname.to_string(),
        ips: local_ip(controller, bind),
        os: os_name(),
        agent_version: env!("CARGO_PKG_VERSION").to_string(),
        free_disk_bytes: free_disk(disk_dir),
        docker_containers,
        docker_volumes,
    }
}

/// The address this host uses to reach `controller` (no packet is sent).
fn local_ip(controller: &str, bind: Option<std::net::IpAddr>) -> Vec<String> {
    if let Some(ip) = bind {
        return vec![ip.to_string()];
    }
    let host = reqwest::Url::parse(controller)
        .ok()
        .and_then(|u| Some(format!("{}:{}", u.host_str()?, u.port_or_known_default()?)));
    host.and_then(|h| {
        use std::net::ToSocketAddrs;
        let addr = h.to_socket_addrs().ok()?.next()?;
        let sock = std::net::UdpSocket::bind(if addr.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        })
        .ok()?;
        sock.connect(addr).ok()?;
        Some(vec![sock.local_addr().ok()?.ip().to_string()])
    })
    .unwrap_or_default()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    Go,
    /// Ask again in this many seconds.
    Wait(u64),
    Done,
}

pub struct Agent {
    config: AgentConfig,
    client: Client,
    hostname: String,
    enrolled: bool,
}

impl Agent {
    pub fn new(config: AgentConfig) -> Result<Agent> {
        std::fs::create_dir_all(config.state_dir.join(OUTBOX))
            .with_context(|| format!("cannot create state dir {}", config.state_dir.display()))?;
        let mut client = Client::new(
            &config.controller,
            &config.server,
            config.bind_address,
            config.ca_file.as_deref(),
        )?;
        let cred_path = config.state_dir.join(CREDENTIAL);
        let enrolled = cred_path.exists();
        if enrolled {
            client.set_credential(
                pulih_core::storage::read_secret_file(&cred_path)?
                    .trim()
                    .to_string(),
            );
        }
        let hostname = config.hostname.clone().unwrap_or_else(hostname);
        Ok(Agent {
            config,
            client,
            hostname,
            enrolled,
        })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.config.state_dir.join(name)
    }

    async fn facts(&self) -> Facts {
        host_facts(
            &self.hostname,
            &self.config.controller,
            self.config.bind_address,
            &self.config.state_dir,
        )
        .await
    }

    /// Enrols with the one-time token if there is no credential yet.
    async fn ensure_enrolled(&mut self) -> Result<bool> {
        if self.enrolled {
            return Ok(true);
        }
        let Some(token_file) = &self.config.enroll_token_file else {
            anyhow::bail!(
                "this agent is not enrolled: set enroll_token_file (a token from `pulih servers enroll-token {}`)",
                self.config.server
            );
        };
        let facts = self.facts().await;
        let cred = self.path(CREDENTIAL);
        self.enrolled = enrol(&mut self.client, token_file, facts, &cred).await?;
        Ok(self.enrolled)
    }

    fn assignment(&self) -> Result<Option<Assignment>> {
        read_json(&self.path(ASSIGNMENT))
    }

    /// Sends undelivered results; stops at the first that cannot be sent.
    async fn flush_outbox(&self) -> Result<()> {
        let dir = self.path(OUTBOX);
        for p in outbox_files(&dir)? {
            let Some(o) = read_json::<Outgoing>(&p)? else {
                continue;
            };
            match self.client.result(&o.run_key, &o.result).await {
                Ok(()) => {
                    std::fs::remove_file(&p)?;
                    tracing::info!(run_key = %o.run_key, "result delivered");
                }
                Err(e) if e.is_retryable() => {
                    tracing::debug!(error = %e, "controller unreachable; results stay in the outbox");
                    return Ok(());
                }
                Err(e) => {
                    // Refused for good: keep it aside rather than retry forever.
                    tracing::error!(run_key = %o.run_key, error = %e, "result refused; moved to outbox/rejected");
                    reject(&dir, &p)?;
                }
            }
        }
        Ok(())
    }

    /// One heartbeat: facts out, assignment and jobs in. Returns the jobs,
    /// or None when the controller is unreachable.
    async fn heartbeat(&self) -> Result<Option<Vec<Job>>> {
        match self.client.heartbeat(self.facts().await).await {
            Ok(resp) => {
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
                Ok(Some(resp.jobs))
            }
            Err(e) if e.is_retryable() => {
                tracing::warn!(error = %e, "heartbeat failed; working from the cached assignment");
                Ok(None)
            }
            Err(e) => {
                tracing::error!(error = %e, "heartbeat refused; working from the cached assignment");
                Ok(None)
            }
        }
    }

    /// Runs one replication and queues its result for delivery.
    async fn replicate(
        &self,
        a: &Assignment,
        run_key: &str,
        trigger: &str,
        scheduled_for: Option<DateTime<Utc>>,
    ) -> Result<()> {
        let started = Utc::now();
        let span = tracing::info_span!("run", run_key, server = %a.server);
        let repo = self
            .config
            .repository
            .clone()
            .unwrap_or_else(|| a.repository.clone());
        let outcome = async {
            let key = pulih_core::keys::AgentKey::load(&self.config.agent_key_file)?;
            let store = pulih_core::storage::Store::open(&repo, false)?;
            let mut opts =
                pulih_core::backup::BackupOptions::new(self.hostname.clone(), self.path("cache"));
            opts.tags = vec![format!("server={}", a.server), format!("run={run_key}")];
            let mut paths: Vec<PathBuf> = a.paths.iter().map(PathBuf::from).collect();
            let capture = if a.docker.is_empty() {
                None
            } else if a.docker.images_only() && crate::docker::connect().is_err() {
                // A server that is no Docker host (its data is all paths)
                // cannot save the recovery spec's images: the DRC starts
                // its own copy (the drill report says so). Not a failure of
                // this server's replication.
                tracing::warn!(images = ?a.docker.images, "no Docker engine here: the recovery images are not saved with this server's data");
                None
            } else {
                let staging = self.path("docker");
                let c = capture::start(&a.docker, &a.server, &staging).await?;
                paths.extend(c.paths.iter().cloned());
                opts.tags.push(format!(
                    "{}={}",
                    pulih_model::drill::CAPTURE_TAG,
                    staging.display()
                ));
                Some(c)
            };
            let progress = Arc::new(pulih_core::backup::Progress::default());
            let out = pulih_core::backup::backup(store, &key, &paths, &opts, progress).await;
            let mut capture_errors = Vec::new();
            if let Some(c) = capture {
                capture_errors.extend(c.errors.iter().cloned());
                capture_errors.extend(c.finish().await);
            }
            let mut out = out?;
            out.errors.extend(capture_errors);
            anyhow::Ok(out)
        }
        .instrument(span)
        .await;
        let finished = Utc::now();
        let mut result = RunResult {
            trigger: trigger.to_string(),
            scheduled_for: scheduled_for.map(rfc3339),
            started_at: rfc3339(started),
            finished_at: rfc3339(finished),
            state: RunState::Failed,
            snapshot_id: None,
            files: 0,
            bytes_read: 0,
            bytes_new: 0,
            bytes_stored: 0,
            duration_s: (finished - started).num_milliseconds() as f64 / 1000.0,
            errors: Vec::new(),
        };
        match outcome {
            Ok(out) => {
                let s = &out.snapshot.summary;
                result.state = if out.errors.is_empty() {
                    RunState::Succeeded
                } else {
                    RunState::Partial
                };
                result.snapshot_id = Some(out.snapshot_id.to_hex());
                result.files = s.files;
                result.bytes_read = s.bytes_read;
                result.bytes_new = s.bytes_new;
                result.bytes_stored = s.bytes_stored;
                result.duration_s = s.duration_s;
                result.errors = out.errors;
                tracing::info!(snapshot = %out.snapshot_id, files = s.files, bytes_new = s.bytes_new, "replication done");
            }
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "replication failed");
                result.errors = vec![format!("{e:#}")];
            }
        }
        self.report(run_key, result).await
    }

    /// Queues a run's result in the outbox and tries to deliver it.
    async fn report(&self, run_key: &str, result: RunResult) -> Result<()> {
        let name = format!("{}-{run_key}.json", Utc::now().timestamp_millis());
        let out = Outgoing {
            run_key: run_key.to_string(),
            result,
        };
        write_atomic(&self.path(OUTBOX).join(name), &serde_json::to_vec(&out)?)?;
        self.flush_outbox().await
    }

    /// Runs a verify or restore job and reports it. Neither reads the
    /// server's sources; a restore needs the reader key the walidata gave
    /// this agent (`reader_passphrase_file`).
    async fn run_job(&self, a: &Assignment, job: &Job) -> Result<()> {
        let started = Utc::now();
        let span = tracing::info_span!("job", run_key = %job.run_key, kind = %job.kind);
        let repo_url = self
            .config
            .repository
            .clone()
            .unwrap_or_else(|| a.repository.clone());
        let outcome: Result<(Option<String>, u64, u64, Vec<String>)> = async {
            let store = pulih_core::storage::Store::open(&repo_url, false)?;
            match (job.kind, &job.restore) {
                (JobKind::Verify, _) => {
                    let key = pulih_core::keys::AgentKey::load(&self.config.agent_key_file)?;
                    let repo = pulih_core::repo::Repo::open(store).await?;
                    let r = pulih_core::verify::check_space(&repo, &key).await?;
                    tracing::info!(
                        snapshots = r.snapshots,
                        packs = r.packs,
                        problems = r.problems.len(),
                        "verify done"
                    );
                    Ok((None, 0, 0, r.problems))
                }
                (JobKind::Restore, Some(req)) => self.restore(store, &a.server, req).await,
                (JobKind::Restore, None) => anyhow::bail!("a restore job without its target"),
                (JobKind::Failback, Some(req)) => self.fail_back(store, a, req).await,
                (JobKind::Failback, None) => anyhow::bail!("a failback job without its snapshot"),
                (other, _) => {
                    anyhow::bail!("this agent does not know the job kind `{other}`; upgrade it")
                }
            }
        }
        .instrument(span)
        .await;
        let finished = Utc::now();
        let mut result = RunResult {
            trigger: "manual".into(),
            scheduled_for: None,
            started_at: rfc3339(started),
            finished_at: rfc3339(finished),
            state: RunState::Failed,
            snapshot_id: None,
            files: 0,
            bytes_read: 0,
            bytes_new: 0,
            bytes_stored: 0,
            duration_s: (finished - started).num_milliseconds() as f64 / 1000.0,
            errors: Vec::new(),
        };
        match outcome {
            Ok((snapshot, files, bytes, problems)) => {
                result.state = if problems.is_empty() {
                    RunState::Succeeded
                } else {
                    RunState::Failed
                };
                result.snapshot_id = snapshot;
                result.files = files;
                result.bytes_read = bytes;
                result.errors = problems;
            }
            Err(e) => {
                tracing::error!(run_key = %job.run_key, error = %format!("{e:#}"), "job failed");
                result.errors = vec![format!("{e:#}")];
            }
        }
        self.report(&job.run_key, result).await
    }

    /// Restores one of this server's snapshots under an absolute target
    /// that is absent or empty.
    async fn restore(
        &self,
        store: pulih_core::storage::Store,
        server: &str,
        req: &RestoreRequest,
    ) -> Result<(Option<String>, u64, u64, Vec<String>)> {
        let Some(pass_file) = &self.config.reader_passphrase_file else {
            anyhow::bail!(
                "this agent holds no reader key (it is write-only by design): the walidata must consent by setting reader_passphrase_file in the agent's config, or restore with `pulih repo restore` themselves"
            );
        };
        let target = Path::new(&req.target);
        if !target.is_absolute() {
            anyhow::bail!("restore target `{}` is not absolute", req.target);
        }
        if let Ok(mut entries) = std::fs::read_dir(target)
            && entries.next().is_some()
        {
            anyhow::bail!(
                "restore target {} is not empty; choose a new directory (nothing was written)",
                target.display()
            );
        }
        let passphrase = pulih_core::storage::read_secret_file(pass_file)?;
        let reader = pulih_core::repo::Reader::open(store, &passphrase).await?;
        let snap =
            pulih_core::repo::pick_snapshot(own_snapshots(&reader, server).await?, &req.snapshot)
                .with_context(|| format!("snapshot `{}` of server {server}", req.snapshot))?;
        tracing::info!(snapshot = %snap.id, target = %target.display(), "restoring");
        let opts = pulih_core::restore::RestoreOptions {
            include: req.include.clone(),
            ..Default::default()
        };
        let s = pulih_core::restore::restore(
            &reader,
            &snap,
            target,
            &opts,
            Arc::new(pulih_core::restore::RestoreProgress::default()),
        )
        .await?;
        Ok((Some(snap.id.to_hex()), s.files, s.bytes, Vec::new()))
    }

    /// Asks the controller to start a run. Unreachable: go ahead anyway
    /// (autonomy).
    async fn may_start(
        &self,
        run_key: &str,
        trigger: &str,
        scheduled_for: Option<DateTime<Utc>>,
    ) -> Result<Start> {
        let req = RunStartRequest {
            trigger: trigger.to_string(),
            scheduled_for: scheduled_for.map(rfc3339),
        };
        match self.client.start_run(run_key, &req).await {
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

    /// The agent's main loop, until `cancel`.
    pub async fn run(mut self, cancel: CancellationToken) -> Result<()> {
        let mut next_heartbeat = tokio::time::Instant::now();
        let mut pending_jobs: Vec<Job> = Vec::new();
        let sched_path = self.path(SCHEDULE_STATE);
        let mut sched: ScheduleState = read_json(&sched_path)?.unwrap_or_default();
        if sched.last_fired.is_none() {
            // First start: nothing in the past is owed.
            sched.last_fired = Some(Utc::now());
            write_atomic(&sched_path, &serde_json::to_vec(&sched)?)?;
        }
        loop {
            if cancel.is_cancelled() {
                return Ok(());
            }
            if tokio::time::Instant::now() >= next_heartbeat {
                next_heartbeat = tokio::time::Instant::now() + self.config.heartbeat_interval;
                if self.ensure_enrolled().await?
                    && let Some(jobs) = self.heartbeat().await?
                {
                    for j in jobs {
                        if !pending_jobs.iter().any(|p| p.run_key == j.run_key) {
                            pending_jobs.push(j);
                        }
                    }
                    self.flush_outbox().await?;
                }
            }
            let assignment = self.assignment()?;
            // Jobs (replicate now) first.
            if let Some(a) = &assignment {
                while let Some(job) = pending_jobs.first().cloned() {
                    match self.may_start(&job.run_key, "manual", None).await? {
                        Start::Go if job.kind == JobKind::Replicate => {
                            self.replicate(a, &job.run_key, "manual", None).await?
                        }
                        Start::Go => self.run_job(a, &job).await?,
                        Start::Wait(_) => break,
                        Start::Done => {}
                    }
                    pending_jobs.remove(0);
                }
            }
            // Then the schedule.
            let mut wake = next_heartbeat;
            if let Some(a) = &assignment {
                match schedule::Plan::new(&a.cron, &a.timezone, a.jitter_seconds) {
                    Ok(plan) => {
                        let last = sched.last_fired.unwrap_or_else(Utc::now);
                        let now = Utc::now();
                        if let Some(due) = plan.due(last, now) {
                            let run_key = format!("sched-{}-{}", a.server, due.timestamp());
                            let start = self.may_start(&run_key, "schedule", Some(due)).await?;
                            if !matches!(start, Start::Wait(_)) {
                                sched.last_fired = Some(due);
                                write_atomic(&sched_path, &serde_json::to_vec(&sched)?)?;
                            }
                            if start == Start::Go {
                                self.replicate(a, &run_key, "schedule", Some(due)).await?;
                            }
                            if !matches!(start, Start::Wait(_)) {
                                continue;
                            }
                            // Capped: ask again shortly.
                            let secs = match start {
                                Start::Wait(s) => s.clamp(1, 300),
                                _ => 5,
                            };
                            wake =
                                wake.min(tokio::time::Instant::now() + Duration::from_secs(secs));
                        } else if let Some(next) = plan.next_after(last.max(now)) {
                            let until = (plan.fire_time(next) - now).to_std().unwrap_or_default();
                            wake = wake.min(tokio::time::Instant::now() + until);
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "the cached assignment has a bad schedule")
                    }
                }
            }
            tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                _ = tokio::time::sleep_until(wake) => {}
            }
        }
    }
}
