//! `pulih drc drill`: a drill run at the DRC from the DRC alone — the
//! agency's manifests, its repository on the DRC store and a reader key,
//! with no controller. The report is printed and stored in the DRC store
//! under `reports/drills/<server>/<id>.json`.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use clap::{Args, Subcommand};
use pulih_agent::drill::{DrillPlan, new_id};
use pulih_core::drill::{DrillReport, RecoveryKind};
use pulih_core::manifest::ManifestSet;
use pulih_core::repo::ReaderKey;

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
    /// Make the DRC executor's `drc-drill` identity (an age X25519 key,
    /// mode 0600) and print its public key for the walidata's
    /// `pulih repo grant-drill --recipient`.
    Keygen {
        /// Where to write the identity (must not exist).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
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
    /// The Server to drill (its manifest name).
    server: String,
    /// Manifest files or directories (the agency's PerangkatDaerah and Server).
    #[arg(short = 'f', long = "manifests", required = true, value_name = "PATH")]
    manifests: Vec<PathBuf>,
    #[command(flatten)]
    repo: RepoUrl,
    #[command(flatten)]
    passphrase: Passphrase,
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

/// The drill plan for `server` from validated manifests; refuses agencies
/// that gave no drill consent.
pub fn plan_for(
    set: &ManifestSet,
    server: &str,
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
    if !pd.spec().drills.as_ref().is_some_and(|d| d.consent) {
        bail!(
            "agency {} gave no drill consent (spec.drills.consent in its PerangkatDaerah manifest): a drill reads its data, so it needs the walidata's consent first",
            spec.perangkat_daerah
        );
    }
    let recovery = spec.recovery.clone().unwrap_or_default();
    Ok(DrillPlan {
        id: new_id(RecoveryKind::Drill),
        kind: RecoveryKind::Drill,
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
    })
}

pub fn print_report(r: &DrillReport) {
    let verdict = if r.passed() { "PASSED" } else { "FAILED" };
    let word = r.kind.word();
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
        DrcCommand::Drill(d) => drill(d).await,
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
            let t: pulih_core::api::EnrollTokenResponse = conn
                .connect()?
                .post(
                    &format!("/drc/{target}/enroll-token"),
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

async fn drill(a: DrillArgs) -> Result<u8> {
    let set = match ManifestSet::load(&a.manifests) {
        Ok(set) => set,
        Err(diags) => {
            for d in &diags {
                eprintln!("{d}");
            }
            eprintln!("{} manifest problem(s); no drill was started", diags.len());
            return Ok(exit::INVALID);
        }
    };
    let plan = plan_for(&set, &a.server, &a.snapshot, a.scratch_dir.clone())?;
    std::fs::create_dir_all(&a.scratch_dir)
        .with_context(|| format!("cannot create scratch dir {}", a.scratch_dir.display()))?;
    let store = a.repo.open()?;
    let key = ReaderKey::Passphrase(a.passphrase.read()?);
    tracing::info!(drill = %plan.id, server = %plan.server, "walidata key used for a drill");
    let report = pulih_agent::drill::run(store.clone(), &key, &plan).await;
    let key = format!("reports/drills/{}/{}.json", report.server, report.id);
    store
        .put(&key, Bytes::from(serde_json::to_vec_pretty(&report)?))
        .await
        .with_context(|| format!("the drill ran, but its report could not be stored at {key}"))?;
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
