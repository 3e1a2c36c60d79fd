//! `pulih repo restore`.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::Result;
use clap::Args;
use pulih_core::repo::Reader;
use pulih_core::restore::{RestoreOptions, RestoreProgress, restore};

use super::{Passphrase, RepoUrl, human, spinner};
use crate::exit;

#[derive(Args)]
pub struct RestoreArgs {
    #[command(flatten)]
    repo: RepoUrl,
    #[command(flatten)]
    passphrase: Passphrase,
    /// Snapshot id (or a unique prefix of it), or `latest`.
    snapshot: String,
    /// Choose among this server's snapshots only: those in the spaces
    /// bound to it (FORMAT.md §13), `latest` being the one the store
    /// received last.
    #[arg(long)]
    server: Option<String>,
    /// Directory to restore into; each backed-up path lands at TARGET/<its absolute path>.
    #[arg(long)]
    target: PathBuf,
    /// Restore only this backed-up path and what is below it (repeatable).
    #[arg(long)]
    include: Vec<String>,
    /// Keep the set-user-ID and set-group-ID bits of files (left off by
    /// default: a snapshot is only as trustworthy as the server that wrote
    /// it; a restore as root would recreate its set-user-ID root programs).
    #[arg(long)]
    keep_set_id: bool,
    /// The most names (files, directories, symlinks) the snapshot may
    /// expand to; a snapshot that expands to more is refused before
    /// anything is written (its trees can name one directory many times).
    #[arg(long, value_name = "N", default_value_t = pulih_core::restore::MAX_ENTRIES)]
    max_entries: u64,
    /// Restore even when the snapshot's file bytes (counted from its
    /// trees) exceed the free space at TARGET (a compressing filesystem).
    #[arg(long)]
    no_space_check: bool,
    #[arg(long)]
    json: bool,
}

pub async fn run(a: RestoreArgs) -> Result<u8> {
    let reader = Reader::open(a.repo.open()?, &a.passphrase.read()?).await?;
    let snap = match &a.server {
        Some(server) => {
            let own = pulih_core::bindings::server_snapshots(
                &reader,
                server,
                pulih_core::bindings::Role::Agent,
            )
            .await?;
            if own.by_tag {
                eprintln!(
                    "warning: no binding names {server}: chosen by the `server=` tag, which any agent key of the agency can write (`pulih repo bind`)"
                );
            }
            pulih_core::repo::pick_snapshot(own.snapshots, &a.snapshot)
                .map_err(|e| anyhow::anyhow!("{e} (among the snapshots of server {server})"))?
        }
        None => reader.find_snapshot(&a.snapshot).await?,
    };
    let progress = Arc::new(RestoreProgress::default());
    let pb = spinner("restoring");
    let ticker = {
        let (pb, progress) = (pb.clone(), progress.clone());
        tokio::spawn(async move {
            loop {
                pb.set_prefix(human(progress.bytes.load(Ordering::Relaxed)));
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
        })
    };
    let opts = RestoreOptions {
        include: a.include,
        keep_set_id: a.keep_set_id,
        max_entries: a.max_entries,
        check_space: !a.no_space_check,
        ..Default::default()
    };
    let r = restore(&reader, &snap, &a.target, &opts, progress).await;
    ticker.abort();
    pb.finish_and_clear();
    let s = r?;
    if a.json {
        println!(
            "{}",
            serde_json::json!({"snapshot_id": snap.id.to_hex(), "files": s.files, "dirs": s.dirs, "symlinks": s.symlinks, "bytes": s.bytes, "duration_s": s.duration_s, "set_id_dropped": s.set_id_dropped})
        );
    } else {
        println!(
            "restored snapshot {} to {}: {} files, {} dirs, {} symlinks, {} in {:.1}s",
            snap.id,
            a.target.display(),
            s.files,
            s.dirs,
            s.symlinks,
            human(s.bytes),
            s.duration_s
        );
    }
    if s.set_id_dropped > 0 {
        eprintln!(
            "note: {} files were restored without their set-user-ID/set-group-ID bits \
             (kept only with --keep-set-id)",
            s.set_id_dropped
        );
    }
    Ok(exit::OK)
}
