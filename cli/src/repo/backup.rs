//! `pulih repo backup`.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::Result;
use clap::Args;
use pulih_core::backup::{BackupOptions, Progress, backup};
use pulih_core::files_cache::default_cache_dir;
use serde::Serialize;

use super::{RepoUrl, human, load_agent_key, spinner};
use crate::exit;

#[derive(Args)]
pub struct BackupArgs {
    #[command(flatten)]
    repo: RepoUrl,
    /// The agent key (write-only).
    #[arg(long, env = "PULIH_AGENT_KEY", value_name = "FILE")]
    agent_key: PathBuf,
    /// Host name recorded in the snapshot (default: this machine's).
    #[arg(long)]
    host: Option<String>,
    /// Tag the snapshot (repeatable).
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// Directory of the local files cache.
    #[arg(long, env = "PULIH_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Target pack size in MiB (16–64).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=64))]
    pack_size_mib: u32,
    /// Print one JSON object as the last line.
    #[arg(long)]
    json: bool,
    /// Files and directories to back up.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

#[derive(Serialize)]
struct Out {
    snapshot_id: String,
    files: u64,
    dirs: u64,
    bytes_read: u64,
    bytes_new: u64,
    bytes_stored: u64,
    duration_s: f64,
    resumed_packs: usize,
    errors: Vec<String>,
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into())
}

pub async fn run(a: BackupArgs) -> Result<u8> {
    let key = load_agent_key(&a.agent_key)?;
    let store = a.repo.open()?;
    let mut opts = BackupOptions::new(
        a.host.unwrap_or_else(hostname),
        a.cache_dir.unwrap_or_else(default_cache_dir),
    );
    opts.tags = a.tags;
    opts.pack_size = a.pack_size_mib as usize * 1024 * 1024;
    let progress = Arc::new(Progress::default());
    let pb = spinner("backing up");
    let ticker = {
        let (pb, progress) = (pb.clone(), progress.clone());
        tokio::spawn(async move {
            loop {
                pb.set_prefix(format!(
                    "{} files, {} read, {} stored",
                    progress.files.load(Ordering::Relaxed),
                    human(progress.bytes_read.load(Ordering::Relaxed)),
                    human(progress.bytes_stored.load(Ordering::Relaxed))
                ));
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
        })
    };
    let result = backup(store, &key, &a.paths, &opts, progress).await;
    ticker.abort();
    pb.finish_and_clear();
    let out = result?;
    let s = &out.snapshot.summary;
    for e in &out.errors {
        eprintln!("warning: not backed up: {e}");
    }
    if a.json {
        let o = Out {
            snapshot_id: out.snapshot_id.to_hex(),
            files: s.files,
            dirs: s.dirs,
            bytes_read: s.bytes_read,
            bytes_new: s.bytes_new,
            bytes_stored: s.bytes_stored,
            duration_s: s.duration_s,
            resumed_packs: out.resumed_packs,
            errors: out.errors.clone(),
        };
        println!("{}", serde_json::to_string(&o)?);
    } else {
        println!(
            "snapshot {} saved: {} files, {} dirs, {} read, {} new, {} stored in {:.1}s",
            out.snapshot_id,
            s.files,
            s.dirs,
            human(s.bytes_read),
            human(s.bytes_new),
            human(s.bytes_stored),
            s.duration_s
        );
        if out.resumed_packs > 0 {
            println!(
                "resumed: reused {} packs of an interrupted backup",
                out.resumed_packs
            );
        }
    }
    if out.errors.is_empty() {
        Ok(exit::OK)
    } else {
        eprintln!(
            "{} source(s) could not be read; the snapshot holds the rest (exit code {})",
            out.errors.len(),
            exit::PARTIAL
        );
        Ok(exit::PARTIAL)
    }
}
