//! `pulih repo forget` and `pulih repo prune`.

use anyhow::Result;
use clap::Args;
use pulih_core::forget::{KeepPolicy, PruneOptions, PruneReport, forget, prune};
use pulih_core::repo::Reader;

use super::{Passphrase, RepoUrl, human};
use crate::exit;

#[derive(Args)]
pub struct ForgetArgs {
    #[command(flatten)]
    repo: RepoUrl,
    #[command(flatten)]
    passphrase: Passphrase,
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
    Ok(())
}

fn prune_opts(f: &PruneFlags) -> PruneOptions {
    PruneOptions {
        grace_s: f.grace_hours as i64 * 3600,
        ..Default::default()
    }
}

pub async fn run(a: ForgetArgs) -> Result<u8> {
    let policy = KeepPolicy {
        last: a.keep_last,
        hourly: a.keep_hourly,
        daily: a.keep_daily,
        weekly: a.keep_weekly,
        monthly: a.keep_monthly,
        yearly: a.keep_yearly,
    };
    let offset = time::UtcOffset::from_hms(a.utc_offset_hours, 0, 0)?;
    let store = a.repo.open()?;
    let pass = a.passphrase.read()?;
    let reader = Reader::open(store.clone(), &pass).await?;
    let decisions = forget(&reader, &policy, offset, a.dry_run).await?;
    if a.json {
        println!("{}", serde_json::to_string(&decisions)?);
    } else {
        for d in &decisions {
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
            if a.dry_run {
                "would be removed"
            } else {
                "removed"
            },
            decisions.len() - removed
        );
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
