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

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use bollard::Docker;
use bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, NetworkCreateRequest, NetworkingConfig,
};
use bollard::query_parameters::CreateContainerOptionsBuilder;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use pulih_core::repo::{ListedSnapshot, Reader, ReaderKey};
use pulih_core::storage::Store;
use pulih_model::drill::{
    CAPTURE_FILE, CAPTURE_TAG, CheckOutcome, DockerCapture, DrillReport, DrillState, DrillStep,
    RecoveryKind, Teardown,
};
use pulih_model::manifest::RecoverySpec;
use pulih_model::manifest::port::PortMapping;

use tracing::Instrument;

use crate::docker;

pub mod checks;
pub mod failback;
mod images;
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

/// Published ports (manifest `ports`, parsed by the model) as the engine
/// wants them; several host bindings of one container port are kept.
fn port_bindings(
    ports: &[PortMapping],
) -> HashMap<String, Option<Vec<bollard::models::PortBinding>>> {
    let mut out: HashMap<String, Option<Vec<bollard::models::PortBinding>>> = HashMap::new();
    for p in ports {
        out.entry(p.container_key())
            .or_insert_with(|| Some(Vec::new()))
            .get_or_insert_with(Vec::new)
            .push(bollard::models::PortBinding {
                host_ip: p.host_ip.map(|ip| ip.to_string()),
                host_port: Some(p.host_port.to_string()),
            });
    }
    out
}

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
    crate::free_disk(d)
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

    async fn recover(&mut self, store: Store, key: &ReaderKey) -> Result<()> {
        let plan = self.plan;
        // Part of the RTO: a real recovery starts by unlocking the key.
        let reader = self
            .timed("open repository", async {
                let r = Reader::open_with(store, key).await?;
                Ok((
                    r,
                    format!("`{}` reader key unwrapped, indexes loaded", key.slot()),
                ))
            })
            .await?;
        let reader = &reader;
        if plan.recovery.containers.is_empty() {
            bail!(
                "server {} has no recovery containers in its manifest (spec.recovery.containers)",
                plan.server
            );
        }
        let tag = format!("server={}", plan.server);
        let snap: ListedSnapshot = self
            .timed("select snapshot", async {
                let own: Vec<ListedSnapshot> = reader
                    .snapshots()
                    .await?
                    .into_iter()
                    .filter(|s| s.snapshot.tags.contains(&tag))
                    .collect();
                if own.is_empty() {
                    bail!("the repository holds no snapshot of server {}", plan.server);
                }
                let snap = pulih_core::repo::pick_snapshot(own, &plan.snapshot)
                    .with_context(|| format!("snapshot `{}`", plan.snapshot))?;
                let detail = format!("{} of {}", snap.id, snap.snapshot.time);
                Ok((snap, detail))
            })
            .await?;
        self.report.snapshot_id = Some(snap.id.to_hex());
        self.report.snapshot_time = Some(snap.snapshot.time.clone());
        if let Ok(t) = DateTime::parse_from_rfc3339(&snap.snapshot.time) {
            // Never earlier than the store received it: a clock that ran
            // ahead on the server must not make the RPO look better.
            let stored = DateTime::from_timestamp(snap.stored_at, 0).unwrap_or(t.into());
            let taken = t.with_timezone(&Utc).min(stored);
            self.report.rpo_seconds =
                Some(((self.started - taken).num_milliseconds() as f64 / 1000.0).max(0.0));
        }

        let scratch = plan.scratch();
        let target = scratch.join("restore");
        let need = snap.snapshot.summary.total_bytes;
        self.timed("check disk", async {
            let free = free_bytes(&plan.scratch_root).with_context(|| {
                format!(
                    "cannot tell the free disk space of {} (`df -Pk` must be on the executor's PATH and answer for it)",
                    plan.scratch_root.display()
                )
            })?;
            // Restored data plus a tenth for the filesystem's own overhead.
            let want = need.saturating_add(need / 10);
            if free < want {
                bail!(
                    "too little disk at {}: the snapshot needs about {} bytes, {} are free",
                    plan.scratch_root.display(),
                    want,
                    free
                );
            }
            Ok(((), format!("{free} bytes free, {need} needed")))
        })
        .await?;

        // Created here, not found: a directory of this name that exists is
        // someone else's, and teardown must not remove it.
        let made = std::fs::create_dir(&scratch)
            .with_context(|| format!("cannot create scratch directory {}", scratch.display()));
        self.made_scratch = made.is_ok();
        let restored = self
            .timed("restore", async {
                made?;
                std::fs::create_dir(&target)
                    .with_context(|| format!("cannot create {}", target.display()))?;
                let s = pulih_core::restore::restore(
                    reader,
                    &snap,
                    &target,
                    &pulih_core::restore::RestoreOptions::default(),
                    Arc::new(pulih_core::restore::RestoreProgress::default()),
                )
                .await?;
                let detail = format!(
                    "{} files, {} bytes; every blob authenticated (AES-256-GCM)",
                    s.files, s.bytes
                );
                Ok((s, detail))
            })
            .await?;
        self.report.files_restored = restored.files;
        self.report.bytes_restored = restored.bytes;

        let capture = match snap
            .snapshot
            .tags
            .iter()
            .find_map(|t| t.strip_prefix(&format!("{CAPTURE_TAG}=")))
        {
            Some(staging) => {
                read_capture(&under(&target, &Path::new(staging).join(CAPTURE_FILE))?)?
            }
            None => DockerCapture::default(),
        };

        let docker = self.docker.clone();
        self.timed("load images", async {
            let mut loaded = Vec::new();
            let mut local = Vec::new();
            let mut wanted: Vec<&str> = plan.recovery.containers.iter().map(|c| c.image.as_str()).collect();
            wanted.sort();
            wanted.dedup();
            for image in wanted {
                match capture.images.get(image) {
                    Some(saved) => {
                        let archive = under(&target, Path::new(&saved.archive))?;
                        if !archive.is_file() {
                            bail!("the archive of {image} is not a file: {}", archive.display());
                        }
                        images::check_archive(&archive, image, &saved.id)?;
                        load_image(&docker, &archive).await?;
                        let got = docker.inspect_image(image).await.with_context(|| {
                            format!("the replicated archive of {image} did not hold that image")
                        })?;
                        if got.id.as_deref() != Some(saved.id.as_str()) {
                            bail!(
                                "after loading, {image} is {:?}, not the recorded {}",
                                got.id,
                                saved.id
                            );
                        }
                        loaded.push(image);
                    }
                    None if docker.inspect_image(image).await.is_ok() => local.push(image),
                    None => bail!(
                        "image {image} is neither in the snapshot (the agent could not save it) nor on the DRC's Docker engine"
                    ),
                }
            }
            let mut detail = format!("loaded from the snapshot: {loaded:?}");
            if !local.is_empty() {
                detail.push_str(&format!("; not replicated, the DRC's own copy used: {local:?}"));
            }
            Ok(((), detail))
        })
        .await?;

        let network = plan.network();
        let internal = plan.kind == RecoveryKind::Drill;
        self.timed("network", async {
            let shared = !internal || plan.plan_drill().is_some();
            if shared && docker.inspect_network(&network, None).await.is_ok() {
                let what = if internal {
                    "the plan run's internal network, existing"
                } else {
                    "the DRC's service network, existing"
                };
                return Ok(((), format!("{network} ({what})")));
            }
            // A drill's network carries the drill's label (teardown removes
            // it), a plan drill's the run's (the run's teardown removes it);
            // the service network is shared and kept.
            let labels = match (internal, plan.plan_drill()) {
                (true, Some(run)) => {
                    let mut l = plan.labels();
                    l.insert(LABEL.to_string(), run.to_string());
                    l
                }
                (true, None) => plan.labels(),
                (false, _) => HashMap::from([(SERVICE_LABEL.to_string(), "true".to_string())]),
            };
            docker
                .create_network(NetworkCreateRequest {
                    name: network.clone(),
                    driver: Some("bridge".into()),
                    internal: Some(internal),
                    labels: Some(labels),
                    ..Default::default()
                })
                .await
                .with_context(|| format!("cannot create network {network}"))?;
            let what = if internal {
                "internal: no route out"
            } else {
                "the DRC's service network, created"
            };
            Ok(((), format!("{network} ({what})")))
        })
        .await?;

        let mut order: Vec<u32> = plan
            .recovery
            .containers
            .iter()
            .map(|c| c.start_order)
            .collect();
        order.sort();
        order.dedup();
        for group in order {
            let members: Vec<_> = plan
                .recovery
                .containers
                .iter()
                .filter(|c| c.start_order == group)
                .collect();
            for c in &members {
                let name = plan.name(&c.name);
                let mut binds = Vec::new();
                for v in &c.volumes {
                    // A path source as it is; a dockerVolume name through
                    // the capture record, which says where its data was.
                    let src = if v.source.starts_with('/') {
                        Some(v.source.clone())
                    } else {
                        capture.volumes.get(&v.source).cloned()
                    };
                    let host = src
                        .ok_or_else(|| anyhow::anyhow!("not captured"))
                        .and_then(|src| under(&target, Path::new(&src)))
                        .with_context(|| {
                            format!(
                                "container {}: volume source `{}` is not in snapshot {}",
                                c.name, v.source, snap.id
                            )
                        })?;
                    if !v.target.starts_with('/') || v.target.contains([':', ',']) {
                        bail!(
                            "container {}: mount target `{}` must be an absolute path without `:` or `,`",
                            c.name,
                            v.target
                        );
                    }
                    binds.push(format!("{}:{}", host.display(), v.target));
                }
                // Published ports on failover only: a drill exposes nothing.
                let ports = if internal {
                    None
                } else {
                    Some(port_bindings(&c.ports))
                };
                let ip = self
                    .timed(&format!("start {}", c.name), async {
                        let body = ContainerCreateBody {
                            image: Some(c.image.clone()),
                            hostname: Some(c.name.clone()),
                            env: Some(c.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
                            cmd: c.command.clone(),
                            labels: Some(plan.labels()),
                            exposed_ports: ports.as_ref().map(|p| p.keys().cloned().collect()),
                            host_config: Some(HostConfig {
                                binds: Some(binds),
                                network_mode: Some(network.clone()),
                                port_bindings: ports.clone(),
                                ..Default::default()
                            }),
                            networking_config: Some(NetworkingConfig {
                                endpoints_config: Some(HashMap::from([(
                                    network.clone(),
                                    EndpointSettings {
                                        aliases: Some(vec![c.name.clone()]),
                                        ..Default::default()
                                    },
                                )])),
                            }),
                            ..Default::default()
                        };
                        docker
                            .create_container(
                                Some(CreateContainerOptionsBuilder::default().name(&name).build()),
                                body,
                            )
                            .await
                            .with_context(|| format!("cannot create container {name}"))?;
                        docker
                            .start_container(&name, None)
                            .await
                            .with_context(|| format!("cannot start container {name}"))?;
                        let info = docker.inspect_container(&name, None).await?;
                        let ip = info
                            .network_settings
                            .and_then(|n| n.networks)
                            .and_then(|n| n.get(&network).cloned())
                            .and_then(|e| e.ip_address)
                            .and_then(|a| a.parse::<IpAddr>().ok());
                        let detail = format!(
                            "{} from {} at {}",
                            name,
                            c.image,
                            ip.map_or("no address".to_string(), |a| a.to_string())
                        );
                        Ok((ip, detail))
                    })
                    .await?;
                self.running.insert(c.name.clone(), (name, ip));
            }
            // This group's checks pass before the next group starts.
            let group_names: Vec<&str> = members.iter().map(|c| c.name.as_str()).collect();
            for check in plan
                .recovery
                .health_checks
                .iter()
                .filter(|h| group_names.contains(&checks::target(h)))
            {
                let target_name = checks::target(check);
                let (engine_name, ip) = self.running[target_name].clone();
                let (ok, attempts, detail) = checks::run(&docker, check, &engine_name, ip).await;
                self.report.checks.push(CheckOutcome {
                    name: check.name.clone(),
                    kind: check.kind(),
                    ok,
                    attempts,
                    at_s: self.at(),
                    detail: detail.clone(),
                });
                if !ok {
                    bail!("health check `{}` failed: {detail}", check.name);
                }
            }
        }
        let unchecked: Vec<&str> = plan
            .recovery
            .health_checks
            .iter()
            .map(checks::target)
            .filter(|t| !self.running.contains_key(*t))
            .collect();
        if !unchecked.is_empty() {
            bail!("health checks name containers the recovery spec does not start: {unchecked:?}");
        }
        self.report.rto_seconds = Some(self.at());
        if plan.kind == RecoveryKind::Failover {
            self.switch_hook("failover").await?;
        }
        Ok(())
    }

    /// Run the switch hook (failover: DNS/IP to the DRC; failback: back to
    /// the primary) with what it needs in its environment.
    async fn switch_hook(&mut self, phase: &str) -> Result<()> {
        let plan = self.plan;
        let mut addresses: Vec<String> = self
            .running
            .iter()
            .map(|(k, (_, ip))| format!("{k}={}", ip.map_or(String::new(), |a| a.to_string())))
            .collect();
        addresses.sort();
        self.timed("switch", async {
            let Some((prog, args)) = plan.switch_hook.split_first() else {
                return Ok((
                    (),
                    format!("no switch hook configured: switch DNS/IP by hand ({phase})"),
                ));
            };
            let run = tokio::process::Command::new(prog)
                .args(args)
                .env("PULIH_SERVER", &plan.server)
                .env("PULIH_RECOVERY_ID", &plan.id)
                .env("PULIH_NETWORK", plan.network())
                .env("PULIH_ADDRESSES", addresses.join(","))
                .env("PULIH_PHASE", phase)
                .kill_on_drop(true)
                .output();
            let out = tokio::time::timeout(std::time::Duration::from_secs(120), run)
                .await
                .map_err(|_| anyhow::anyhow!("switch hook {prog} did not finish within 120 s"))?
                .with_context(|| format!("cannot run switch hook {prog}"))?;
            if !out.status.success() {
                bail!(
                    "switch hook {prog} failed ({}): {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            Ok(((), format!("{prog} ran ({phase})")))
        })
        .await
    }
}

/// `path` (absolute, as on the protected server) inside the restore
/// `target`, resolved. The snapshot is untrusted (a compromised server
/// wrote it): a path with `.` or `..`, or one that leads outside the
/// restored tree through a symlink the snapshot holds, is refused, and so
/// is one with a `:` or `,` (the engine's bind syntax).
fn under(target: &Path, path: &Path) -> Result<PathBuf> {
    use std::path::Component;
    let plain = path.is_absolute()
        && path
            .components()
            .skip(1)
            .all(|c| matches!(c, Component::Normal(_)));
    if !plain {
        bail!("`{}` is not a plain absolute path", path.display());
    }
    let joined = target.join(path.strip_prefix("/").unwrap_or(path));
    let real = joined
        .canonicalize()
        .with_context(|| format!("{} is not in the restored snapshot", path.display()))?;
    let root = target
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", target.display()))?;
    if !real.starts_with(&root) {
        bail!(
            "{} leads outside the restored snapshot (through a symlink in it)",
            path.display()
        );
    }
    if real.to_string_lossy().contains([':', ',']) {
        bail!(
            "{} resolves to a path with `:` or `,`, which cannot be bind-mounted safely",
            path.display()
        );
    }
    Ok(real)
}

/// The Docker capture record's largest size.
const MAX_CAPTURE_RECORD: u64 = 1 << 20;

/// Reads the snapshot's Docker capture record (untrusted, size-capped).
fn read_capture(file: &Path) -> Result<DockerCapture> {
    let meta = std::fs::metadata(file)
        .with_context(|| format!("the snapshot lacks its Docker record {}", file.display()))?;
    if !meta.is_file() || meta.len() > MAX_CAPTURE_RECORD {
        bail!(
            "Docker record {} is not a file of at most {MAX_CAPTURE_RECORD} bytes",
            file.display()
        );
    }
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("Docker record {}", file.display()))
}

/// `docker load` of a saved archive, streamed from disk.
async fn load_image(docker: &Docker, archive: &Path) -> Result<()> {
    let f = tokio::fs::File::open(archive)
        .await
        .with_context(|| format!("cannot open image archive {}", archive.display()))?;
    let body = tokio_util::io::ReaderStream::new(f);
    let mut s = docker.import_image_stream(
        bollard::query_parameters::ImportImageOptionsBuilder::default()
            .quiet(true)
            .build(),
        body,
        None,
    );
    while let Some(r) = s.next().await {
        r.with_context(|| format!("docker load {}", archive.display()))?;
    }
    Ok(())
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
            run.step(
                "kept up",
                began,
                true,
                format!(
                    "on {} for the later groups of plan run {r}; removed when the run ends",
                    plan.network()
                ),
            );
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

#[cfg(test)]
mod tests {
    use super::*;

    /// What validation accepts, execution can run: every published port of
    /// every example manifest converts to the engine's bindings, with its
    /// address, host port and protocol.
    #[test]
    fn every_validated_port_converts_for_the_engine() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests/examples");
        let set = pulih_model::manifest::ManifestSet::load(&[dir]).expect("the examples validate");
        let mut n = 0;
        for s in set.servers.values() {
            for c in s.spec().recovery.iter().flat_map(|r| &r.containers) {
                let b = port_bindings(&c.ports);
                for p in &c.ports {
                    let got = b[&p.container_key()].as_ref().unwrap();
                    assert!(
                        got.iter()
                            .any(|g| g.host_port == Some(p.host_port.to_string())
                                && g.host_ip == p.host_ip.map(|i| i.to_string())),
                        "{p}"
                    );
                    n += 1;
                }
            }
        }
        assert!(n >= 3, "the examples publish {n} ports");
        let typed: Vec<PortMapping> = [
            "127.0.0.1:16379:6379",
            "[::1]:53:53/udp",
            "8080:80",
            "8081:80",
        ]
        .iter()
        .map(|t| t.parse().unwrap())
        .collect();
        let b = port_bindings(&typed);
        let redis = b["6379/tcp"].as_ref().unwrap();
        assert_eq!(redis[0].host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(redis[0].host_port.as_deref(), Some("16379"));
        assert_eq!(
            b["53/udp"].as_ref().unwrap()[0].host_ip.as_deref(),
            Some("::1")
        );
        assert_eq!(
            b["80/tcp"].as_ref().unwrap().len(),
            2,
            "both host ports of one container port"
        );
    }

    #[test]
    fn paths_from_a_snapshot_stay_inside_the_restored_tree() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("restore");
        std::fs::create_dir_all(target.join("var/lib/data")).unwrap();
        std::os::unix::fs::symlink("/", target.join("var/lib/root")).unwrap();
        std::os::unix::fs::symlink("data", target.join("var/lib/alias")).unwrap();
        let real = target.canonicalize().unwrap().join("var/lib/data");
        assert_eq!(under(&target, Path::new("/var/lib/data")).unwrap(), real);
        // A symlink inside the tree that stays inside is fine.
        assert_eq!(under(&target, Path::new("/var/lib/alias")).unwrap(), real);
        for bad in [
            "/var/lib/root",
            "/var/lib/root/etc",
            "/../../../../",
            "/var/../../etc",
            "var/lib/data",
            "/var/lib/missing",
        ] {
            assert!(
                under(&target, Path::new(bad)).is_err(),
                "{bad} was accepted"
            );
        }
    }
}
