//! Ops commands that talk to the controller: `apply`, `servers`, `status`,
//! `compliance`, `replicate`, `runs`. Tables for people, `--json` for
//! scripts.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use pulih_core::api::*;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::exit;

/// Where the controller is and how to authenticate.
#[derive(Args, Clone)]
pub struct Conn {
    /// Controller URL (default: the one `pulih dev` wrote, else http://127.0.0.1:7300).
    #[arg(long, env = "PULIH_CONTROLLER", value_name = "URL", global = true)]
    pub controller: Option<String>,
    /// File holding the admin token (default: PULIH_TOKEN, else `pulih dev`'s STATE_DIR/admin.token).
    #[arg(long, env = "PULIH_TOKEN_FILE", value_name = "FILE", global = true)]
    pub token_file: Option<PathBuf>,
    /// PEM certificates to trust for the controller's HTTPS (its own CA).
    #[arg(long, env = "PULIH_CA_FILE", value_name = "FILE", global = true)]
    pub ca_file: Option<PathBuf>,
}

/// `pulih dev`'s default state dir.
pub fn default_dev_state_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("XDG_STATE_HOME") {
        return PathBuf::from(d).join("pulih/dev");
    }
    match std::env::var_os("HOME") {
        Some(h) => PathBuf::from(h).join(".local/state/pulih/dev"),
        None => PathBuf::from(".pulih-dev"),
    }
}

pub struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

#[derive(Debug, thiserror::Error)]
#[error("{message} ({code})")]
pub struct ApiFailure {
    pub code: String,
    pub message: String,
    pub diagnostics: Vec<pulih_core::manifest::Diagnostic>,
}

impl Conn {
    fn base(&self) -> String {
        match &self.controller {
            Some(c) => c.clone(),
            None => std::fs::read_to_string(default_dev_state_dir().join("controller.url"))
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "http://127.0.0.1:7300".into()),
        }
    }

    /// The controller with another secret than the admin token (e.g. the
    /// failover authorization).
    pub fn connect_with(&self, token_file: &Path) -> Result<Api> {
        let token = pulih_core::storage::read_secret_file(token_file)
            .with_context(|| format!("token file {}", token_file.display()))?;
        Api::with_ca(&self.base(), token.trim(), self.ca_file.as_deref())
    }

    pub fn connect(&self) -> Result<Api> {
        let dev = default_dev_state_dir();
        let base = self.base();
        let token = if let Ok(t) = std::env::var("PULIH_TOKEN") {
            t
        } else {
            let file = self
                .token_file
                .clone()
                .unwrap_or_else(|| dev.join("admin.token"));
            pulih_core::storage::read_secret_file(&file).map_err(|e| {
                anyhow::anyhow!(
                    "no admin token: set PULIH_TOKEN or --token-file, or start `pulih dev` ({e})"
                )
            })?
        };
        Api::with_ca(&base, token.trim(), self.ca_file.as_deref())
    }
}

impl Api {
    pub fn new(base: &str, token: &str) -> Result<Api> {
        Self::with_ca(base, token, None)
    }

    pub fn with_ca(base: &str, token: &str, ca_file: Option<&std::path::Path>) -> Result<Api> {
        Ok(Api {
            http: pulih_agent::client::trust_ca(
                reqwest::Client::builder().timeout(Duration::from_secs(60)),
                ca_file,
            )?
            .build()?,
            base: format!("{}/api/v1", base.trim_end_matches('/')),
            token: token.to_string(),
        })
    }

    async fn send<R: DeserializeOwned>(&self, req: reqwest::RequestBuilder) -> Result<R> {
        let resp = req
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| format!("cannot reach the controller at {}", self.base))?;
        let status = resp.status();
        if !status.is_success() {
            let body: Option<ErrorBody> = resp.json().await.ok();
            let failure = match body {
                Some(b) => ApiFailure {
                    code: b.error.code,
                    message: b.error.message,
                    diagnostics: b.error.diagnostics,
                },
                None => ApiFailure {
                    code: status.as_u16().to_string(),
                    message: format!("HTTP {status}"),
                    diagnostics: Vec::new(),
                },
            };
            return Err(failure.into());
        }
        resp.json().await.context("unreadable controller response")
    }

    pub async fn get<R: DeserializeOwned>(&self, path: &str) -> Result<R> {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    pub async fn post<B: Serialize, R: DeserializeOwned>(&self, path: &str, body: &B) -> Result<R> {
        self.send(self.http.post(format!("{}{path}", self.base)).json(body))
            .await
    }
}

/// Collects manifest files (a file, or *.yaml/*.yml under a directory).
pub fn manifest_files(paths: &[PathBuf]) -> Result<Vec<ManifestFile>> {
    fn walk(p: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
        if p.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("cannot list {}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect();
            entries.sort();
            for e in entries {
                if e.is_dir() {
                    walk(&e, out)?;
                } else if matches!(e.extension().and_then(|x| x.to_str()), Some("yaml" | "yml")) {
                    out.push(e);
                }
            }
        } else {
            out.push(p.to_path_buf());
        }
        Ok(())
    }
    let mut files = Vec::new();
    for p in paths {
        walk(p, &mut files)?;
    }
    if files.is_empty() {
        bail!("no *.yaml manifest files found");
    }
    files
        .into_iter()
        .map(|f| {
            let content = std::fs::read_to_string(&f)
                .with_context(|| format!("cannot read {}", f.display()))?;
            Ok(ManifestFile {
                name: f.display().to_string(),
                content,
            })
        })
        .collect()
}

/// Prints the outcome of an apply; returns the exit code.
pub fn print_apply(result: Result<ApplyResponse>, json: bool) -> Result<u8> {
    match result {
        Ok(r) => {
            if json {
                println!("{}", serde_json::to_string(&r)?);
            } else {
                for c in &r.changes {
                    let fields = if c.fields.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", c.fields.join(", "))
                    };
                    println!("{} {}/{}{fields}", c.change, c.kind, c.name);
                }
                match r.revision {
                    Some(rev) => println!("applied as revision {rev}"),
                    None => println!("nothing changed"),
                }
            }
            Ok(exit::OK)
        }
        Err(e) => match e.downcast::<ApiFailure>() {
            Ok(f) if !f.diagnostics.is_empty() => {
                for d in &f.diagnostics {
                    eprintln!("{d}");
                }
                eprintln!("{} problem(s); nothing was applied", f.diagnostics.len());
                Ok(exit::INVALID)
            }
            Ok(f) => Err(f.into()),
            Err(e) => Err(e),
        },
    }
}

#[derive(Args)]
pub struct ApplyArgs {
    /// Manifest files or directories.
    #[arg(
        short = 'f',
        long = "filename",
        required = true,
        value_name = "DIR|FILE"
    )]
    files: Vec<PathBuf>,
    /// Validate and show what would change; change nothing.
    #[arg(long)]
    dry_run: bool,
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    conn: Conn,
}

fn whoami() -> Option<String> {
    let user = std::env::var("USER").ok()?;
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    Some(format!("{user}@{}", host.trim()))
}

pub async fn apply(a: ApplyArgs) -> Result<u8> {
    let api = a.conn.connect()?;
    let req = ApplyRequest {
        files: manifest_files(&a.files)?,
        reported_by: whoami(),
        dry_run: a.dry_run,
    };
    print_apply(api.post("/manifests", &req).await, a.json)
}

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ServersArgs {
    #[command(subcommand)]
    command: Option<ServersCommand>,
    /// Only this agency's servers (PerangkatDaerah name).
    #[arg(long)]
    pd: Option<String>,
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    conn: Conn,
}

#[derive(Subcommand)]
enum ServersCommand {
    /// One server: its inventory line and what its agent last reported.
    Show {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Issue a one-time enrolment token for a server's agent.
    EnrollToken {
        name: String,
        #[arg(long)]
        json: bool,
    },
}

pub fn table(headers: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        println!("{}", s.trim_end());
    };
    line(headers.iter().map(|h| h.to_string()).collect());
    for r in rows {
        line(r);
    }
}

/// RFC 3339 UTC → local WITA (UTC+8) for people.
pub fn wita(t: &Option<String>) -> String {
    let Some(t) = t else { return "-".into() };
    match time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339) {
        Ok(dt) => {
            let w = dt.to_offset(time::macros::offset!(+8));
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02} WITA",
                w.year(),
                w.month() as u8,
                w.day(),
                w.hour(),
                w.minute()
            )
        }
        Err(_) => t.clone(),
    }
}

fn server_rows(servers: &[ServerView]) -> Vec<Vec<String>> {
    servers
        .iter()
        .map(|s| {
            vec![
                s.perangkat_daerah.clone(),
                s.name.clone(),
                s.declared_status.clone(),
                format!(
                    "{}{}",
                    s.observed,
                    if s.mismatch { " (MISMATCH)" } else { "" }
                ),
                if s.rpo_met { "met" } else { "MISSED" }.into(),
                wita(&s.last_success),
                drill_cell(s),
                wita(&s.agent_last_seen),
            ]
        })
        .collect()
}

const SERVER_HEADERS: &[&str] = &[
    "PD",
    "SERVER",
    "DECLARED",
    "OBSERVED",
    "RPO",
    "LAST SUCCESS",
    "LAST DRILL",
    "AGENT SEEN",
];

/// The last drill in a table cell: state and RTO, or what is missing.
fn drill_cell(s: &ServerView) -> String {
    let overdue = if s.drill_overdue { " (OVERDUE)" } else { "" };
    match &s.last_drill {
        None => format!("-{overdue}"),
        Some(d) => format!(
            "{} {}{}{overdue}",
            d.state,
            d.rto_seconds.map_or("-".into(), |v| format!("RTO {v:.0}s")),
            if d.rto_met == Some(false) {
                " (over target)"
            } else {
                ""
            }
        ),
    }
}

pub async fn servers(a: ServersArgs) -> Result<u8> {
    let api = a.conn.connect()?;
    match a.command {
        Some(ServersCommand::EnrollToken { name, json }) => {
            let t: EnrollTokenResponse = api
                .post(
                    &format!("/servers/{name}/enroll-token"),
                    &serde_json::json!({}),
                )
                .await?;
            if json {
                println!("{}", serde_json::to_string(&t)?);
            } else {
                println!("{}", t.token);
                eprintln!(
                    "one-time enrolment token for {} (valid until {}); put it in the agent's enroll_token_file",
                    t.server,
                    wita(&Some(t.expires_at.clone()))
                );
            }
        }
        Some(ServersCommand::Show { name, json }) => {
            let v: ServerView = api.get(&format!("/servers/{name}")).await?;
            if json {
                println!("{}", serde_json::to_string(&v)?);
            } else {
                table(SERVER_HEADERS, server_rows(std::slice::from_ref(&v)));
                println!("evidence: {}", v.evidence);
                match &v.facts {
                    None => println!("no agent has reported yet"),
                    Some(f) => {
                        println!(
                            "agent {} on {} ({}), addresses {}",
                            f.agent_version,
                            f.hostname,
                            f.os,
                            f.ips.join(", ")
                        );
                        if let Some(free) = f.free_disk_bytes {
                            println!("free disk: {}", crate::repo::human(free));
                        }
                        if !f.docker_containers.is_empty() || !f.docker_volumes.is_empty() {
                            println!("docker containers: {}", f.docker_containers.join(", "));
                            println!("docker volumes: {}", f.docker_volumes.join(", "));
                        }
                    }
                }
            }
        }
        None => {
            let path = match &a.pd {
                Some(pd) => format!("/servers?pd={pd}"),
                None => "/servers".into(),
            };
            let list: Vec<ServerView> = api.get(&path).await?;
            if a.json {
                println!("{}", serde_json::to_string(&list)?);
            } else {
                table(SERVER_HEADERS, server_rows(&list));
            }
        }
    }
    Ok(exit::OK)
}

#[derive(Args)]
pub struct JsonArgs {
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    conn: Conn,
}

fn counts_line(c: &Counts) -> String {
    format!(
        "{} servers: {} centralized ({}%), {} at the DRC, {} not centralized, {} unknown, {} exempt, {} mismatches; {} protected within RPO ({}%)",
        c.servers,
        c.centralized,
        c.centralized_percent,
        c.at_drc,
        c.not_centralized,
        c.unknown,
        c.exempt,
        c.mismatches,
        c.protected,
        c.protected_percent
    ) + &if c.drills_failed + c.drills_overdue > 0 {
        format!(
            "; drills: {} failed, {} overdue",
            c.drills_failed, c.drills_overdue
        )
    } else {
        String::new()
    }
}

pub async fn status(a: JsonArgs) -> Result<u8> {
    let s: StatusResponse = a.conn.connect()?.get("/status").await?;
    if a.json {
        println!("{}", serde_json::to_string(&s)?);
    } else {
        println!(
            "controller {} — manifest revision {}",
            s.version,
            s.revision.map_or("none".into(), |r| r.to_string())
        );
        println!(
            "{} agencies, {} servers; {} agents enrolled, {} seen recently",
            s.perangkat_daerah, s.servers, s.agents_enrolled, s.agents_seen_recently
        );
        println!(
            "runs: {} running, {} succeeded and {} failed in the last 24h",
            s.runs_running, s.runs_succeeded_24h, s.runs_failed_24h
        );
        println!("{}", counts_line(&s.overall));
    }
    Ok(exit::OK)
}

#[derive(Args)]
pub struct ComplianceArgs {
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// One CSV row per server (for auditors and spreadsheets).
    #[arg(long)]
    csv: bool,
    #[command(flatten)]
    conn: Conn,
}

fn csv_cell(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

pub async fn compliance(a: ComplianceArgs) -> Result<u8> {
    let r: ComplianceReport = a.conn.connect()?.get("/compliance").await?;
    if a.json {
        println!("{}", serde_json::to_string(&r)?);
    } else if a.csv {
        println!(
            "perangkat_daerah,server,declared_location,declared_status,deadline,observed,mismatch,evidence,last_success,rpo_met,agent_last_seen,last_drill,last_drill_state,last_drill_rto_s,last_drill_rto_met,drill_overdue"
        );
        for s in &r.servers {
            let cells = [
                s.perangkat_daerah.clone(),
                s.name.clone(),
                s.declared_location.clone(),
                s.declared_status.clone(),
                s.deadline.clone().unwrap_or_default(),
                s.observed.clone(),
                s.mismatch.to_string(),
                s.evidence.clone(),
                s.last_success.clone().unwrap_or_default(),
                s.rpo_met.to_string(),
                s.agent_last_seen.clone().unwrap_or_default(),
                s.last_drill
                    .as_ref()
                    .map(|d| d.finished_at.clone())
                    .unwrap_or_default(),
                s.last_drill
                    .as_ref()
                    .map(|d| d.state.clone())
                    .unwrap_or_default(),
                s.last_drill
                    .as_ref()
                    .and_then(|d| d.rto_seconds)
                    .map(|v| format!("{v:.1}"))
                    .unwrap_or_default(),
                s.last_drill
                    .as_ref()
                    .and_then(|d| d.rto_met)
                    .map(|v| v.to_string())
                    .unwrap_or_default(),
                s.drill_overdue.to_string(),
            ];
            println!(
                "{}",
                cells
                    .iter()
                    .map(|c| csv_cell(c))
                    .collect::<Vec<_>>()
                    .join(",")
            );
        }
    } else {
        println!(
            "Pasal 9 compliance — {}",
            wita(&Some(r.generated_at.clone()))
        );
        println!("overall: {}", counts_line(&r.overall));
        for (pd, c) in &r.by_perangkat_daerah {
            println!("  {pd}: {}", counts_line(c));
        }
        println!();
        table(SERVER_HEADERS, server_rows(&r.servers));
        let flagged: Vec<&ServerView> = r.servers.iter().filter(|s| s.mismatch).collect();
        if !flagged.is_empty() {
            println!();
            for s in flagged {
                println!(
                    "MISMATCH {}: manifest says {} / {}, but {}",
                    s.name, s.declared_location, s.declared_status, s.evidence
                );
            }
        }
        for s in &r.servers {
            if let Some(d) = s.last_drill.as_ref().filter(|d| d.state == "failed") {
                println!(
                    "DRILL FAILED {}: drill {} at {} (pulih drill report {})",
                    s.name,
                    d.id,
                    wita(&Some(d.finished_at.clone())),
                    d.id
                );
            }
            if s.drill_overdue {
                println!(
                    "DRILL OVERDUE {}: no drill passed since its agency's drill schedule last-but-one fired",
                    s.name
                );
            }
        }
    }
    Ok(exit::OK)
}

#[derive(Args)]
pub struct JobArgs {
    server: String,
    /// Wait until the run finishes and print its result.
    #[arg(long)]
    wait: bool,
    /// Give up waiting after this many seconds.
    #[arg(long, default_value_t = 3600)]
    timeout: u64,
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    conn: Conn,
}

pub async fn wait_run(api: &Api, run_key: &str, timeout: Duration) -> Result<Run> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let r: Run = api.get(&format!("/runs/{run_key}")).await?;
        if matches!(r.state.as_str(), "succeeded" | "partial" | "failed") {
            return Ok(r);
        }
        if tokio::time::Instant::now() >= deadline {
            bail!(
                "run {run_key} is still {} after {}s",
                r.state,
                timeout.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn print_run(r: &Run) {
    if r.kind == "verify" {
        println!(
            "{} {} verify {}: {} problem(s) in {:.1}s",
            r.run_key,
            r.server,
            r.state,
            r.errors.len(),
            r.duration_s
        );
        for e in &r.errors {
            println!("  problem: {e}");
        }
        return;
    }
    println!(
        "{} {} {} {}: snapshot {}, {} files, {} read, {} new, {} stored in {:.1}s",
        r.run_key,
        r.server,
        r.kind,
        r.state,
        r.snapshot_id.as_deref().unwrap_or("-"),
        r.files,
        crate::repo::human(r.bytes_read),
        crate::repo::human(r.bytes_new),
        crate::repo::human(r.bytes_stored),
        r.duration_s
    );
    for e in &r.errors {
        println!(
            "  {}: {e}",
            if r.kind == "verify" {
                "problem"
            } else {
                "error"
            }
        );
    }
}

pub async fn replicate(a: JobArgs) -> Result<u8> {
    run_job(a, "replicate", serde_json::json!({})).await
}

/// Check the server's own space in its repository, as its agent key can.
pub async fn verify(a: JobArgs) -> Result<u8> {
    run_job(a, "verify", serde_json::json!({})).await
}

#[derive(Args)]
pub struct RestoreArgs {
    #[command(flatten)]
    job: JobArgs,
    /// Absolute directory on the server, absent or empty; each backed-up
    /// path lands at TARGET/<its absolute path>.
    #[arg(long)]
    target: String,
    /// A snapshot id (or unique prefix) of this server, or `latest`.
    #[arg(long, default_value = "latest")]
    snapshot: String,
    /// Restore only this backed-up path and what is below it (repeatable).
    #[arg(long)]
    include: Vec<String>,
}

/// Restore on the server itself (the agent needs the walidata's reader key).
pub async fn restore(a: RestoreArgs) -> Result<u8> {
    let body = pulih_core::api::RestoreRequest {
        target: a.target,
        snapshot: a.snapshot,
        include: a.include,
    };
    run_job(a.job, "restore", serde_json::to_value(body)?).await
}

/// Queue a job for a server's agent; with `--wait`, follow it to its end.
async fn run_job(a: JobArgs, kind: &str, body: serde_json::Value) -> Result<u8> {
    let api = a.conn.connect()?;
    let q: ReplicateResponse = api
        .post(&format!("/servers/{}/{kind}", a.server), &body)
        .await?;
    if !a.wait {
        if a.json {
            println!("{}", serde_json::to_string(&q)?);
        } else {
            println!(
                "queued {kind} {}; the agent picks it up at its next heartbeat",
                q.run_key
            );
        }
        return Ok(exit::OK);
    }
    let r = wait_run(&api, &q.run_key, Duration::from_secs(a.timeout)).await?;
    if a.json {
        println!("{}", serde_json::to_string(&r)?);
    } else {
        print_run(&r);
    }
    Ok(match r.state.as_str() {
        "succeeded" => exit::OK,
        "partial" => exit::PARTIAL,
        _ => exit::ERROR,
    })
}

#[derive(Args)]
pub struct RunsArgs {
    /// Only this server's runs.
    #[arg(long)]
    server: Option<String>,
    #[arg(long, default_value_t = 50)]
    limit: u32,
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    conn: Conn,
}

pub async fn runs(a: RunsArgs) -> Result<u8> {
    let mut path = format!("/runs?limit={}", a.limit);
    if let Some(s) = &a.server {
        path.push_str(&format!("&server={s}"));
    }
    let runs: Vec<Run> = a.conn.connect()?.get(&path).await?;
    if a.json {
        println!("{}", serde_json::to_string(&runs)?);
    } else {
        table(
            &[
                "RUN", "SERVER", "KIND", "TRIGGER", "STATE", "FINISHED", "SNAPSHOT", "NEW",
            ],
            runs.iter()
                .map(|r| {
                    vec![
                        r.run_key.clone(),
                        r.server.clone(),
                        r.kind.clone(),
                        r.trigger.clone(),
                        r.state.clone(),
                        wita(&r.finished_at),
                        r.snapshot_id
                            .as_deref()
                            .map_or("-".into(), |s| s[..s.len().min(12)].to_string()),
                        crate::repo::human(r.bytes_new),
                    ]
                })
                .collect(),
        );
    }
    Ok(exit::OK)
}

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct MaintenanceArgs {
    #[command(subcommand)]
    command: Option<MaintenanceCommand>,
    #[arg(long, default_value_t = 20)]
    limit: u32,
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    conn: Conn,
}

#[derive(Subcommand)]
enum MaintenanceCommand {
    /// Run retention now (every agency, or `--pd NAME`).
    Run {
        #[arg(long)]
        pd: Option<String>,
        /// Wait until the runs finish and print them.
        #[arg(long)]
        wait: bool,
        #[arg(long, default_value_t = 3600)]
        timeout: u64,
        #[arg(long)]
        json: bool,
    },
}

fn print_maintenance(runs: &[pulih_core::api::MaintenanceRun]) {
    table(
        &[
            "ID",
            "AGENCY",
            "TRIGGER",
            "STATE",
            "FINISHED",
            "SNAPSHOTS",
            "FORGOTTEN",
            "PACKS DELETED",
            "FREED",
        ],
        runs.iter()
            .map(|r| {
                vec![
                    r.id.to_string(),
                    r.perangkat_daerah.clone(),
                    r.trigger.clone(),
                    r.state.clone(),
                    wita(&r.finished_at),
                    r.snapshots.to_string(),
                    r.forgotten.to_string(),
                    r.deleted_packs.to_string(),
                    crate::repo::human(r.bytes_deleted),
                ]
            })
            .collect(),
    );
    for r in runs {
        if let Some(e) = &r.error {
            println!("  {} {}: {e}", r.id, r.perangkat_daerah);
        }
    }
}

/// Retention runs of the controller's maintenance schedule (and `run` now).
pub async fn maintenance(a: MaintenanceArgs) -> Result<u8> {
    let api = a.conn.connect()?;
    let Some(MaintenanceCommand::Run {
        pd,
        wait,
        timeout,
        json,
    }) = a.command
    else {
        let runs: Vec<pulih_core::api::MaintenanceRun> =
            api.get(&format!("/maintenance?limit={}", a.limit)).await?;
        if a.json {
            println!("{}", serde_json::to_string(&runs)?);
        } else {
            print_maintenance(&runs);
        }
        return Ok(exit::OK);
    };
    let q: pulih_core::api::MaintenanceQueued = api
        .post(
            "/maintenance/run",
            &pulih_core::api::MaintenanceRequest {
                perangkat_daerah: pd,
            },
        )
        .await?;
    if !wait {
        if json {
            println!("{}", serde_json::to_string(&q)?);
        } else {
            println!("queued maintenance runs {:?}", q.ids);
        }
        return Ok(exit::OK);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
    let mine = loop {
        let runs: Vec<pulih_core::api::MaintenanceRun> = api.get("/maintenance?limit=1000").await?;
        let mine: Vec<_> = runs.into_iter().filter(|r| q.ids.contains(&r.id)).collect();
        if mine
            .iter()
            .all(|r| matches!(r.state.as_str(), "succeeded" | "skipped" | "failed"))
        {
            break mine;
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("maintenance runs {:?} still going after {timeout}s", q.ids);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    if json {
        println!("{}", serde_json::to_string(&mine)?);
    } else {
        print_maintenance(&mine);
    }
    Ok(if mine.iter().any(|r| r.state == "failed") {
        exit::ERROR
    } else {
        exit::OK
    })
}
