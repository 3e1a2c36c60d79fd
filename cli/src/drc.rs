//! `pulih drc drill` and `pulih drc failover`: a drill or a real failover
//! run at the DRC from the DRC alone — the agency's manifests, its
//! repository on the DRC store and a reader key (the walidata's passphrase
//! or the `drc-drill` identity), with no controller (DESIGN.md §1: the
//! Pusat Data may be gone). The report is printed and stored in the DRC
//! store under `reports/{drills|failovers}/<server>/<id>.json`.

use pulih_model::routes;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use clap::{Args, Subcommand};
use pulih_agent::drc::drill::{DrillPlan, new_id};
use pulih_core::repo::ReaderKey;
use pulih_model::drill::{DrillReport, RecoveryKind};
use pulih_model::manifest::ManifestSet;

use crate::exit;
use crate::repo::{Passphrase, RepoUrl};

#[derive(Args)]
pub struct DrcArgs {
    #[command(subcommand)]
    command: DrcCommand,
}

#[derive(Subcommand)]
enum DrcCommand {
    /// Restore a server's snapshot on an isolated Docker network, start its
    /// recovery containers, run its health checks, measure RTO/RPO, tear
    /// everything down. Exit 0 when the drill passed, 1 when it failed.
    Drill(DrillArgs),
    /// A real failover from the DRC alone (the controller may be gone):
    /// restore, start the recovery containers on the DRC's service network,
    /// run the health checks, run the switch hook; nothing is torn down.
    /// Exit 0 when the app is up and checked, 1 when it is not.
    Failover(FailoverArgs),
    /// Make the DRC executor's `drc-drill` identity (an age X25519 key,
    /// mode 0600) and print its public key for the walidata's
    /// `pulih repo grant-drill --recipient`.
    Keygen {
        /// Where to write the identity (must not exist).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Serve the append-only DRC gateway: an S3 endpoint for the agents,
    /// readers and executors in front of the DRC store (create-only, one
    /// bucket per agency, deletes only by the maintenance credential and
    /// never under the retention floor). See docs/GATEWAY.md.
    Serve(crate::gateway::ServeArgs),
    /// Make the gateway key (64 hex digits, mode 0600) every issued
    /// gateway credential is derived from.
    GatewayKey {
        /// Where to write it (must not exist).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Issue a gateway credential for an agent, a walidata or an executor.
    Credential(crate::gateway::CredentialArgs),
    /// Take an agency's existing repository (its objects already in the
    /// upstream store) into the gateway's index.
    GatewayImport(crate::gateway::ImportArgs),
    /// Issue a one-time enrolment token for a DRC target's executor.
    EnrollToken {
        /// The DrcTarget (manifest name).
        target: String,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        conn: crate::ops::Conn,
    },
}

#[derive(Args)]
pub struct DrillArgs {
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
pub struct FailoverArgs {
    #[command(flatten)]
    common: Common,
    /// The order or approval this failover runs under (e.g. the mayor's
    /// letter number); kept in the report.
    #[arg(long)]
    order: String,
    /// The DRC's service network (made if absent, kept).
    #[arg(long, default_value = "pulih-service")]
    service_network: String,
    /// A program that switches DNS/IP to the DRC once every check passed
    /// (run with PULIH_SERVER, PULIH_RECOVERY_ID, PULIH_NETWORK,
    /// PULIH_ADDRESSES, PULIH_PHASE=failover in its environment).
    #[arg(long, value_name = "PROGRAM")]
    switch_hook: Option<String>,
}

/// The reader key: the walidata's passphrase, or the `drc-drill` identity
/// (which opens only the repositories of agencies that granted it).
#[derive(Args)]
#[group(required = true, multiple = false)]
struct KeyArgs {
    /// File holding the walidata passphrase (readable by its owner only).
    #[arg(
        long = "passphrase-file",
        env = "PULIH_PASSPHRASE_FILE",
        value_name = "FILE"
    )]
    passphrase_file: Option<PathBuf>,
    /// The `drc-drill` age identity (`pulih drc keygen`), mode 0600.
    #[arg(long, value_name = "FILE")]
    identity: Option<PathBuf>,
}

impl KeyArgs {
    fn read(&self) -> Result<ReaderKey> {
        if let Some(f) = &self.identity {
            return Ok(ReaderKey::Identity {
                slot: pulih_core::repo::DRC_DRILL_SLOT.to_string(),
                identity: pulih_core::keys::load_identity(f)
                    .with_context(|| format!("the drc-drill identity {}", f.display()))?,
            });
        }
        let f = self.passphrase_file.as_ref().context("no reader key")?;
        Ok(ReaderKey::Passphrase(
            Passphrase { file: f.clone() }.read()?,
        ))
    }
}

#[derive(Args)]
struct Common {
    /// The Server to recover (its manifest name).
    server: String,
    /// Manifest files or directories (the agency's PerangkatDaerah and Server).
    #[arg(short = 'f', long = "manifests", required = true, value_name = "PATH")]
    manifests: Vec<PathBuf>,
    #[command(flatten)]
    repo: RepoUrl,
    #[command(flatten)]
    key: KeyArgs,
    /// Snapshot id (or a unique prefix), or `latest`.
    #[arg(long, default_value = "latest")]
    snapshot: String,
    /// Where restored data is kept during the drill (on the Docker host).
    #[arg(
        long,
        env = "PULIH_SCRATCH_DIR",
        default_value = "/var/lib/pulih/drills"
    )]
    scratch_dir: PathBuf,
    /// Also write the report as an HTML page to this file.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
}

/// The drill (or failover) plan for `server` from validated manifests; a
/// drill is refused for agencies that gave no drill consent (a failover
/// runs under an order, with a key the walidata gave).
pub fn plan_for(
    set: &ManifestSet,
    server: &str,
    kind: RecoveryKind,
    snapshot: &str,
    scratch: PathBuf,
) -> Result<DrillPlan> {
    let s = set
        .servers
        .get(server)
        .with_context(|| format!("no Server named `{server}` in the manifests"))?;
    let spec = s.spec();
    let pd = set
        .perangkat_daerah
        .get(&spec.perangkat_daerah)
        .with_context(|| format!("agency `{}` is not in the manifests", spec.perangkat_daerah))?;
    if kind == RecoveryKind::Drill && !pd.spec().drills.as_ref().is_some_and(|d| d.consent) {
        bail!(
            "agency {} gave no drill consent (spec.drills.consent in its PerangkatDaerah manifest): a drill reads its data, so it needs the walidata's consent first",
            spec.perangkat_daerah
        );
    }
    let recovery = spec.recovery.clone().unwrap_or_default();
    Ok(DrillPlan {
        id: new_id(kind),
        kind,
        server: server.to_string(),
        perangkat_daerah: spec.perangkat_daerah.clone(),
        recovery,
        snapshot: snapshot.to_string(),
        rto_target_seconds: spec.rto.as_ref().map(|d| d.0.as_secs()),
        rpo_target_seconds: spec.rpo.as_ref().map(|d| d.0.as_secs()),
        scratch_root: scratch,
        service_network: String::new(),
        switch_hook: Vec::new(),
        owner: None,
        plan_run: None,
    })
}

pub fn print_report(r: &DrillReport) {
    let verdict = if r.passed() { "PASSED" } else { "FAILED" };
    let word = r.kind.as_str();
    println!("{word} {} of {}: {verdict}", r.id, r.server);
    if let Some(e) = &r.error {
        println!("  reason: {e}");
    }
    let secs = |v: Option<f64>| v.map_or("—".to_string(), |s| format!("{s:.1}s"));
    let target = |v: Option<u64>| v.map_or("none".to_string(), |s| format!("{s}s"));
    println!(
        "  RTO {} (target {}), RPO {} (target {}), snapshot {}",
        secs(r.rto_seconds),
        target(r.rto_target_seconds),
        secs(r.rpo_seconds),
        target(r.rpo_target_seconds),
        r.snapshot_id.as_deref().unwrap_or("—")
    );
    for s in &r.steps {
        println!(
            "  {:>7.2}s {:<24} {:>6.2}s {} {}",
            s.at_s,
            s.name,
            s.duration_s,
            if s.ok { "ok    " } else { "FAILED" },
            s.detail
        );
    }
    for c in &r.checks {
        println!(
            "  check {:<24} {} after {} attempt(s): {}",
            c.name,
            if c.ok { "ok" } else { "FAILED" },
            c.attempts,
            c.detail
        );
    }
}

pub async fn run(a: DrcArgs) -> Result<u8> {
    match a.command {
        DrcCommand::Drill(d) => recover(d.common, RecoveryKind::Drill, None).await,
        DrcCommand::Failover(f) => {
            let order = f.order.trim().to_string();
            if order.is_empty() || order.len() > 500 {
                bail!(
                    "--order: name the order or approval this failover runs under (1–500 characters)"
                );
            }
            let failover = Failover {
                order,
                service_network: f.service_network,
                switch_hook: f.switch_hook.into_iter().collect(),
            };
            recover(f.common, RecoveryKind::Failover, Some(failover)).await
        }
        DrcCommand::Serve(a) => crate::gateway::serve(a).await,
        DrcCommand::GatewayKey { out } => crate::gateway::keygen(&out),
        DrcCommand::Credential(a) => crate::gateway::credential(a),
        DrcCommand::GatewayImport(a) => crate::gateway::import(a).await,
        DrcCommand::Keygen { out } => {
            let (text, recipient) = pulih_core::keys::new_identity_file();
            crate::repo::write_secret(&out, &text)?;
            println!("{recipient}");
            eprintln!(
                "drc-drill identity written to {}; give the public key above to each consenting agency's walidata (pulih repo grant-drill --recipient)",
                out.display()
            );
            Ok(exit::OK)
        }
        DrcCommand::EnrollToken { target, json, conn } => {
            let t: pulih_model::api::EnrollTokenResponse = conn
                .connect()?
                .post(
                    &routes::path(routes::DRC_ENROLL_TOKEN, &[&target]),
                    &serde_json::json!({}),
                )
                .await?;
            if json {
                println!("{}", serde_json::to_string(&t)?);
            } else {
                println!("{}", t.token);
                eprintln!(
                    "one-time token for the DRC executor of {target} (enrols as {}), valid until {}",
                    t.server, t.expires_at
                );
            }
            Ok(exit::OK)
        }
    }
}

struct Failover {
    order: String,
    service_network: String,
    switch_hook: Vec<String>,
}

async fn recover(a: Common, kind: RecoveryKind, failover: Option<Failover>) -> Result<u8> {
    let set = match ManifestSet::load(&a.manifests) {
        Ok(set) => set,
        Err(diags) => {
            for d in &diags {
                eprintln!("{d}");
            }
            eprintln!(
                "{} manifest problem(s); no {} was started",
                diags.len(),
                kind.as_str()
            );
            return Ok(exit::INVALID);
        }
    };
    let mut plan = plan_for(&set, &a.server, kind, &a.snapshot, a.scratch_dir.clone())?;
    if let Some(f) = &failover {
        plan.service_network = f.service_network.clone();
        plan.switch_hook = f.switch_hook.clone();
    }
    std::fs::create_dir_all(&a.scratch_dir)
        .with_context(|| format!("cannot create scratch dir {}", a.scratch_dir.display()))?;
    let store = a.repo.open()?;
    let key = a.key.read()?;
    tracing::info!(id = %plan.id, server = %plan.server, slot = key.slot(), kind = kind.as_str(), "reader key used at the DRC alone");
    let mut report = pulih_agent::drc::drill::run(store.clone(), &key, &plan).await;
    report.order = failover.map(|f| f.order);
    let key = report.store_key();
    store
        .put(&key, Bytes::from(serde_json::to_vec_pretty(&report)?))
        .await
        .with_context(|| {
            format!(
                "the {} ran, but its report could not be stored at {key}",
                kind.as_str()
            )
        })?;
    if let Some(path) = &a.html {
        std::fs::write(path, report.to_html())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if a.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_report(&report);
        println!("  report stored in the DRC store at {key}");
    }
    Ok(if report.passed() {
        exit::OK
    } else {
        exit::ERROR
    })
}
