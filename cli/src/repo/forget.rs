//! `pulih repo forget` and `pulih repo prune`.

use anyhow::Result;
use clap::Args;
use pulih_core::forget::{Decision, KeepPolicy, forget};
use pulih_core::prune::{PruneOptions, PruneReport, prune};
use pulih_core::repo::Reader;

use super::{Passphrase, RepoUrl, human};
use crate::exit;

/// The retention rules, shared by `forget` and `maintain`.
#[derive(Args, Clone)]
pub struct KeepFlags {
    #[arg(long, default_value_t = 0)]
    keep_last: u32,
    #[arg(long, default_value_t = 0)]
    keep_hourly: u32,
    #[arg(long, default_value_t = 0)]
    keep_daily: u32,
    #[arg(long, default_value_t = 0)]
    keep_weekly: u32,
    #[arg(long, default_value_t = 0)]
    keep_monthly: u32,
    #[arg(long, default_value_t = 0)]
    keep_yearly: u32,
    /// UTC offset in hours for day/week/month buckets (WITA, Asia/Makassar, is +8).
    #[arg(long, default_value_t = 8, allow_hyphen_values = true, value_parser = clap::value_parser!(i8).range(-12..=14))]
    utc_offset_hours: i8,
}

impl KeepFlags {
    fn policy(&self) -> Result<(KeepPolicy, time::UtcOffset)> {
        Ok((
            KeepPolicy {
                last: self.keep_last,
                hourly: self.keep_hourly,
                daily: self.keep_daily,
                weekly: self.keep_weekly,
                monthly: self.keep_monthly,
                yearly: self.keep_yearly,
            },
            time::UtcOffset::from_hms(self.utc_offset_hours, 0, 0)?,
        ))
    }
}

fn print_decisions(decisions: &[Decision], dry_run: bool) {
    for d in decisions {
        let what = if d.keep {
            format!("keep   ({})", d.reasons.join(", "))
        } else {
            "remove".into()
        };
        println!("{} {} {:<16} {}", &d.id[..12], d.time, d.host, what);
    }
    let removed = decisions.iter().filter(|d| !d.keep).count();
    println!(
        "{} snapshots {}, {} kept",
        removed,
        if dry_run {
            "would be removed"
        } else {
            "removed"
        },
        decisions.len() - removed
    );
}

#[derive(Args)]
pub struct ForgetArgs {
    #[command(flatten)]
    repo: RepoUrl,
    #[command(flatten)]
    passphrase: Passphrase,
    #[command(flatten)]
    keep: KeepFlags,
    /// Show what would be removed; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Then prune (see `pulih repo prune`).
    #[arg(long)]
    prune: bool,
    #[command(flatten)]
    prune_args: PruneFlags,
    #[arg(long)]
    json: bool,
}

#[derive(Args, Clone)]
pub struct PruneFlags {
    /// Hours between condemning a pack and deleting it; longer than any backup runs.
    #[arg(long, default_value_t = 24)]
    grace_hours: u32,
}

#[derive(Args)]
pub struct PruneArgs {
    #[command(flatten)]
    repo: RepoUrl,
    #[command(flatten)]
    passphrase: Passphrase,
    #[command(flatten)]
    flags: PruneFlags,
    #[arg(long)]
    json: bool,
}

fn print_prune(r: &PruneReport, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string(r)?);
    } else {
        println!(
            "prune: {} packs condemned ({} repacked into {} new), {} deleted, {} rescued, {} unindexed deleted; {} freed",
            r.condemned_packs,
            r.repacked_packs,
            r.new_packs,
            r.deleted_packs,
            r.rescued_packs,
            r.deleted_unindexed_packs,
            human(r.bytes_deleted)
        );
    }
    print_held_back(&r.held_back);
    Ok(())
}

/// Objects that did not authenticate and what they held back, on stderr
/// (also after `--json`): ops must see them.
fn print_held_back(notes: &[String]) {
    for n in notes {
        eprintln!("warning: {n}");
    }
    if !notes.is_empty() {
        eprintln!(
            "warning: `pulih repo verify` names such objects; remove one only once it is known to be junk (FORMAT.md §11)"
        );
    }
}

fn prune_opts(f: &PruneFlags) -> PruneOptions {
    PruneOptions {
        grace_s: f.grace_hours as i64 * 3600,
        ..Default::default()
    }
}

pub async fn run(a: ForgetArgs) -> Result<u8> {
    let (policy, offset) = a.keep.policy()?;
    let store = a.repo.open()?;
    let pass = a.passphrase.read()?;
    let reader = Reader::open(store.clone(), &pass).await?;
    let decisions = forget(&reader, &policy, offset, a.dry_run).await?;
    if a.json {
        println!("{}", serde_json::to_string(&decisions)?);
    } else {
        print_decisions(&decisions, a.dry_run);
    }
    if a.prune && !a.dry_run {
        let reader = Reader::open(store, &pass).await?;
        print_prune(&prune(&reader, &prune_opts(&a.prune_args)).await?, a.json)?;
    }
    Ok(exit::OK)
}

pub async fn run_prune(a: PruneArgs) -> Result<u8> {
    let reader = Reader::open(a.repo.open()?, &a.passphrase.read()?).await?;
    print_prune(&prune(&reader, &prune_opts(&a.flags)).await?, a.json)?;
    Ok(exit::OK)
}

#[derive(Args)]
pub struct MaintainArgs {
    #[command(flatten)]
    repo: RepoUrl,
    /// The maintenance key (`pulih repo add-maintenance-key`): reads
    /// snapshot metadata and indexes, never file names or contents.
    #[arg(long, env = "PULIH_MAINTENANCE_KEY", value_name = "FILE")]
    maintenance_key: std::path::PathBuf,
    #[command(flatten)]
    keep: KeepFlags,
    /// Then prune whole unused packs (two-phase, like `prune`).
    #[arg(long)]
    prune: bool,
    #[command(flatten)]
    prune_args: PruneFlags,
    #[arg(long)]
    json: bool,
}

/// Retention without a reader key (FORMAT.md §12).
pub async fn run_maintain(a: MaintainArgs) -> Result<u8> {
    let (policy, offset) = a.keep.policy()?;
    anyhow::ensure!(
        !policy.is_empty(),
        "no --keep-* rule given: refusing to forget every snapshot"
    );
    let key = pulih_core::keys::MaintenanceKeyFile::load(&a.maintenance_key)?;
    let repo = pulih_core::repo::Repo::open(a.repo.open()?).await?;
    let r = pulih_core::maintenance::run(
        &repo,
        &key,
        &|_: Option<&str>| Some(policy.clone()),
        offset,
        a.prune,
        &prune_opts(&a.prune_args),
    )
    .await?;
    if a.json {
        println!("{}", serde_json::to_string(&r)?);
        print_held_back(&r.held_back);
        return Ok(exit::OK);
    }
    print_decisions(&r.decisions, false);
    print_held_back(&r.held_back);
    if a.prune {
        println!(
            "prune: {} packs condemned, {} deleted, {} rescued, {} unindexed deleted; {} freed",
            r.condemned_packs,
            r.deleted_packs,
            r.rescued_packs,
            r.deleted_unindexed_packs,
            human(r.bytes_deleted)
        );
        for s in &r.spaces_not_pruned {
            println!(
                "space {s} not pruned: a snapshot there lists no packs (written by an older agent)"
            );
        }
    }
    Ok(exit::OK)
}
