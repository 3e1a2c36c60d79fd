//! Repository size and backup time of one tree under several framing
//! choices (FORMAT.md §4.1): each a real backup into a fresh `file://`
//! repository, then its `data/` and `index/` bytes, optionally a restore's
//! time. How the threshold and frame size were picked
//! (docs/BENCHMARKS.md, "Frames"):
//!
//!   cargo run --release -p pulih-core --example frame_sizes -- \
//!       CORPUS_DIR SCRATCH_DIR [--restore] none 128k:1m 128k:4m 256k:1m …
//!
//! A choice is `none` (no frames: a format-1 repository) or
//! `MAX_BLOB:TARGET` (blobs below MAX_BLOB framed, a frame closed at
//! TARGET raw bytes). Each repository is deleted after it is measured.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use pulih_core::backup::{BackupOptions, Progress, backup};
use pulih_core::keys::AgentKey;
use pulih_core::pack::Framing;
use pulih_core::repo::{InitOptions, Reader, Repo};
use pulih_core::restore::{RestoreOptions, RestoreProgress, restore};
use pulih_core::storage::Store;

fn size(s: &str) -> Result<usize, String> {
    let (n, mul) = match s.as_bytes().last() {
        Some(b'k') => (&s[..s.len() - 1], 1 << 10),
        Some(b'm') => (&s[..s.len() - 1], 1 << 20),
        _ => (s, 1),
    };
    n.parse::<usize>()
        .map(|n| n * mul)
        .map_err(|e| format!("{s}: {e}"))
}

fn du(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| {
            let m = e.metadata().expect("stat");
            if m.is_dir() { du(&e.path()) } else { m.len() }
        })
        .sum()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        return Err("usage: frame_sizes CORPUS_DIR SCRATCH_DIR [--restore] CHOICE…".into());
    }
    let corpus = std::fs::canonicalize(&args[0])?;
    let scratch = Path::new(&args[1]);
    let with_restore = args.iter().any(|a| a == "--restore");
    println!("| choice | data/ bytes | of it tree blobs | index/ bytes | backup s | restore s |");
    println!("|---|---|---|---|---|---|");
    for choice in args[2..].iter().filter(|a| *a != "--restore") {
        let framing = if choice == "none" {
            None
        } else {
            let (b, t) = choice
                .split_once(':')
                .ok_or("CHOICE is none or MAX_BLOB:TARGET")?;
            Some(Framing {
                max_blob: size(b)?,
                target: size(t)?,
                padded: false, // the repository's version decides
            })
        };
        let repo_dir = scratch.join(format!("repo-{}", choice.replace(':', "-")));
        let store = Store::open(repo_dir.to_str().ok_or("path")?, true)?;
        let init = InitOptions {
            kdf: pulih_core::keys::PassphraseKdf { m_kib: 64, t: 1 },
            ..Default::default()
        };
        let (mut repo, keys) = Repo::init(store.clone(), "measure", &init).await?;
        if framing.is_none() {
            // No frames: a version-1 repository (version 3 pads, and
            // refuses a backup without frames).
            repo.config.version = 1;
            let body = repo.config.encode(&keys.master.config_mac_key());
            store.put(pulih_core::layout::CONFIG, body.into()).await?;
        }
        let (agent, _) = AgentKey::new(&keys.master, &repo.config);
        let mut opts = BackupOptions::new("measure".into(), scratch.join("cache-unused"));
        opts.framing = framing;
        let _ = std::fs::remove_dir_all(scratch.join("cache-unused"));
        let t = Instant::now();
        backup(
            store.clone(),
            &agent,
            std::slice::from_ref(&corpus),
            &opts,
            Arc::new(Progress::default()),
        )
        .await?;
        let backup_s = t.elapsed().as_secs_f64();
        let reader = Reader::open(store.clone(), "measure").await?;
        let tree_bytes: u64 = reader
            .indexes
            .spaces
            .values()
            .flat_map(|i| i.iter())
            .filter(|l| l.entry.kind == pulih_core::pack::BlobType::Tree)
            .map(|l| l.entry.stored_len as u64)
            .sum();
        let restore_s = if with_restore {
            let snap = reader.find_snapshot("latest").await?;
            let target = scratch.join("restored");
            let t = Instant::now();
            restore(
                &reader,
                &snap,
                &target,
                &RestoreOptions::default(),
                Arc::new(RestoreProgress::default()),
            )
            .await?;
            let s = t.elapsed().as_secs_f64();
            std::fs::remove_dir_all(&target)?;
            format!("{s:.1}")
        } else {
            "-".into()
        };
        println!(
            "| {choice} | {} | {tree_bytes} | {} | {backup_s:.1} | {restore_s} |",
            du(&repo_dir.join("data")),
            du(&repo_dir.join("index")),
        );
        std::fs::remove_dir_all(&repo_dir)?;
    }
    let _ = std::fs::remove_dir_all(scratch.join("cache-unused"));
    Ok(())
}
