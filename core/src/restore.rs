//! Restore a snapshot under a target directory (layout: FORMAT.md §7, each
//! backed-up path at its absolute path below the target).
//!
//! Plan first ([`walk`]: the trees a level at a time, directories and
//! symlinks made as they are found), then the empty files (on two
//! threads), then the content ([`content`]: what each pack holds of the
//! snapshot, in ranges of neighbouring blobs, several at once, each blob
//! written to every place that needs it), metadata last, directories
//! deepest first. Every blob is authenticated and its id re-hashed before a
//! byte of it is written.

mod content;
mod fs;
mod measure;
mod ranges;
mod walk;
pub(crate) use walk::placed_len;

pub use measure::{Expanded, measure};

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use serde::Serialize;

use crate::repo::{ListedSnapshot, Reader};
use crate::{Error, Result};

#[derive(Clone, Debug)]
pub struct RestoreOptions {
    /// Snapshot paths (absolute, as backed up) to restore; empty = all.
    pub include: Vec<String>,
    /// Reads in flight from a local (`file://`) store. From an object
    /// store the number is measured as the restore goes.
    pub concurrency: usize,
    /// From an object store: the most bytes of blobs that arrived and
    /// wait to be written, over all reads (memory); a read that finds it
    /// full waits, its bytes staying on the link. A blob larger than it
    /// still passes, alone.
    pub held_bytes: usize,
    /// Keep the set-user-ID and set-group-ID bits of files. Dropped by
    /// default: a snapshot is only as trustworthy as the server that wrote
    /// it, and a restore as root would otherwise recreate a set-user-ID
    /// root program that server put there. Directories keep theirs (a
    /// directory's set-group-ID bit only passes its group on).
    pub keep_set_id: bool,
    /// The most names (files, directories, symlinks, each place it
    /// appears), and the most blob references of files, a restore plans:
    /// its plan holds memory for each. A snapshot that expands to more is
    /// refused before anything is written.
    pub max_entries: u64,
    /// Refuse, before anything is written, a restore whose file bytes
    /// (from the trees) exceed the free space where it goes (off only for
    /// a filesystem that compresses).
    pub check_space: bool,
}

/// [`RestoreOptions::max_entries`] by default: 20 million names (a plan of
/// some gigabytes).
pub const MAX_ENTRIES: u64 = 20_000_000;

impl Default for RestoreOptions {
    fn default() -> Self {
        RestoreOptions {
            include: Vec::new(),
            concurrency: 3,
            held_bytes: content::HELD_MAX,
            keep_set_id: false,
            max_entries: MAX_ENTRIES,
            check_space: true,
        }
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct RestoreSummary {
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub bytes: u64,
    pub duration_s: f64,
    /// Files whose set-user-ID or set-group-ID bit was not restored
    /// ([`RestoreOptions::keep_set_id`]).
    pub set_id_dropped: u64,
}

#[derive(Default)]
pub struct RestoreProgress {
    pub bytes: AtomicU64,
}

pub async fn restore(
    reader: &Reader,
    snap: &ListedSnapshot,
    target: &Path,
    opts: &RestoreOptions,
    progress: Arc<RestoreProgress>,
) -> Result<RestoreSummary> {
    let started = Instant::now();
    let space = snap.space;
    if reader.index(space).is_none() {
        return Err(Error::corrupt(
            format!("snapshot {}", snap.id),
            "no index covers its space (run `pulih repo repair-index`)",
        ));
    }
    let include: Vec<String> = opts
        .include
        .iter()
        .map(|i| i.trim_matches('/').to_owned())
        .collect();
    // What the trees expand to, bounded before anything is made.
    // One loader for the measure and the walk: the walk finds the tree
    // packs the measure fetched in its cache instead of fetching them again.
    let mut loader = crate::trees::TreeLoader::of(reader, space);
    let need = measure::measure_with(&mut loader, snap.snapshot.tree, &include).await?;
    // The plan holds each name and each blob reference of each file.
    for (n, what) in [(need.entries, "names"), (need.refs, "blob references")] {
        if n > opts.max_entries {
            return Err(Error::Invalid(format!(
                "snapshot {} expands to {n} {what}, more than the {} a restore plans at once (a snapshot can name one directory or blob many times: it may be damaged or hostile; raise the limit (`pulih repo restore --max-entries`) only if it is real)",
                snap.id, opts.max_entries
            )));
        }
    }
    std::fs::create_dir_all(target).map_err(|e| Error::io(target, e))?;
    if opts.check_space {
        let free = fs::free_bytes(target)?;
        if need.bytes > free {
            return Err(Error::Invalid(format!(
                "too little disk at {}: snapshot {} expands to {} bytes of files (from its trees), {} are free",
                target.display(),
                snap.id,
                need.bytes,
                free
            )));
        }
    }

    let walk::Plan {
        files,
        mut dirs,
        links,
        hardlinks,
        packs,
        mut summary,
        tree_fetches,
    } = walk::plan(
        &mut loader,
        reader,
        space,
        snap.snapshot.tree,
        target,
        &include,
    )
    .await?;
    let phase =
        |what: &str| tracing::debug!(ms = started.elapsed().as_millis() as u64, "restore: {what}");
    tracing::debug!(tree_packs = tree_fetches, "restore: tree packs fetched");
    phase("planned");
    // The files, empty (every byte of each is written below: its blobs'
    // lengths add up to its size, checked in the plan), made on two
    // threads while the first reads are already on their way (the writes
    // wait for them: see `content::Created`).
    let files = Arc::new(files);
    let created = Arc::new(content::Created::default());
    let half = files.len().div_ceil(2);
    let mut makers = Vec::new();
    for part in [0..half, half..files.len()] {
        let files = files.clone();
        makers.push(tokio::task::spawn_blocking(move || {
            files[part]
                .iter()
                .try_for_each(|f| fs::create_empty(&f.path))
        }));
    }
    let making = {
        let created = created.clone();
        async move {
            // Both finish before any error returns (a retry must not race them).
            let mut made = Ok(());
            for m in futures::future::join_all(makers).await {
                let m = m.map_err(|e| Error::Task(e.to_string())).and_then(|m| m);
                if made.is_ok() {
                    made = m;
                }
            }
            created.open(made.is_ok());
            tracing::debug!(
                ms = started.elapsed().as_millis() as u64,
                "restore: files created"
            );
            made
        }
    };

    let reach = if reader.repo.store.local_dir().is_some() {
        ranges::LOCAL
    } else {
        ranges::REMOTE
    };
    let sink = content::Sink {
        files: files.clone(),
        keys: reader.space_keys(space),
        progress,
        created,
    };
    let fetching = content::fetch(
        reader,
        ranges::ranges(packs, reach),
        sink,
        opts.concurrency,
        opts.held_bytes,
    );
    let (made, fetched) = futures::future::join(making, fetching).await;
    // The creation's error first: a write's is only its consequence.
    made?;
    fetched?;
    phase("content written");

    for (first, path) in hardlinks {
        let _ = std::fs::remove_file(&path);
        std::fs::hard_link(&first, &path).map_err(|e| Error::io(&path, e))?;
    }

    // Metadata: files and links, then directories deepest first.
    let root = fs::is_root_user();
    for p in files.iter().chain(links.iter()) {
        if fs::set_meta(&p.path, &p.node, root, opts.keep_set_id)? {
            summary.set_id_dropped += 1;
        }
    }
    dirs.sort_by_key(|d| std::cmp::Reverse(d.path.components().count()));
    for d in &dirs {
        fs::set_meta(&d.path, &d.node, root, true)?;
    }
    phase("metadata set");
    summary.duration_s = started.elapsed().as_secs_f64();
    Ok(summary)
}
