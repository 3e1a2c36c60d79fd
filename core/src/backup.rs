//! Backup: walk → chunk → deduplicate → compress → encrypt → pack → upload →
//! index → snapshot (FORMAT.md §8).
//!
//! Threads: one lister (readdir + lstat, ahead of the walker), one walker
//! (files cache, dedup of trees; hands the files to read to the readers and
//! builds trees bottom-up from their results, in walk order), `readers`
//! file readers (open, read, chunk, hash, dedup; a whole file each),
//! `workers` compressors (zstd) that hand each blob to one shared packer
//! (AES-GCM into the one open pack per blob type), and an async uploader
//! with bounded concurrency. Channels are bounded, so memory stays bounded:
//! `1 + upload_concurrency` data packs (buffer tokens, see `backup`), one
//! tree pack, one read window for files longer than the chunker's minimum
//! (shared by the readers), a small-file buffer per reader, and `2 × workers + 2` blob buffers (tokens: queued,
//! being compressed, being read or spare, up to the largest chunk each)
//! plus a compression buffer per worker.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::mpsc;

use crate::chunker::Chunker;
use crate::files_cache::{FilesCache, cache_file};
use crate::id::{BlobId, IndexId, PackId, SnapshotId};
use crate::index::{IndexFile, SpaceIndex};
use crate::keys::{AgentKey, SessionKey};
use crate::pack::{self, BlobType, FinishedPack};
use crate::repo::{LoadedIndexes, Repo};
use crate::snapshot::Snapshot;
use crate::storage::Store;
use crate::{Error, Result};

mod blobs;
mod list;
mod orphans;
mod packer;
mod read;
mod upload;
mod walk;

use blobs::Blobs;
use orphans::adopt_orphans;
use packer::{Packer, pack_worker};
use read::{FileReader, Windows};
use upload::upload_packs;
use walk::Walker;

/// Read windows for files longer than the chunker's minimum (each
/// `max_size` + 4 MiB), shared by the readers: one, as when the walker
/// read every file itself.
const WINDOWS: usize = 1;
/// File readers by default. A reader mostly waits for the disk (with a
/// cold cache, each small file is a few random reads), so there are more
/// of them than cores: on the 2-core bench machine, a cold initial backup
/// of the Debian tree (bench/corpus/debian.sh) took 7.0–8.4 s with one
/// reader, 5.9–6.5 s with two, 4.7–5.5 s with four and 4.2–4.5 s with
/// eight. Each costs a thread and at most one small file's buffer.
pub const READERS: usize = 8;

#[derive(Clone, Debug)]
pub struct BackupOptions {
    pub host: String,
    pub tags: Vec<String>,
    pub cache_dir: PathBuf,
    /// Target pack size in bytes (16–64 MiB in production).
    pub pack_size: usize,
    /// Compressors (zstd), each compressing one blob at a time.
    pub workers: usize,
    /// File readers (open, read, chunk, hash), each reading one whole file
    /// at a time, so one file's system calls and disk waits overlap
    /// another's work. The snapshot is the same with any number.
    pub readers: usize,
    /// Packs uploaded at once; each holds a pack's memory (~`pack_size`).
    /// None: 1 on local disk (writes are sequential anyway), 2 on a remote
    /// store (one uploads while the next is sent).
    pub upload_concurrency: Option<usize>,
    /// Read each path under this directory instead of `/`, and record it
    /// as given: a failback backs up the DRC's copy of a server's paths
    /// (restored under a scratch directory) as the server's own paths.
    pub root: Option<PathBuf>,
    /// How small data blobs are framed (FORMAT.md §4.1); None: never,
    /// which a version-3 repository refuses (its frames pad, §4.2). Only
    /// used where the repository's version allows frames.
    pub framing: Option<pack::Framing>,
}

impl BackupOptions {
    pub fn new(host: String, cache_dir: PathBuf) -> Self {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        BackupOptions {
            host,
            tags: Vec::new(),
            cache_dir,
            pack_size: 16 * 1024 * 1024,
            workers: cores,
            readers: READERS,
            upload_concurrency: None,
            root: None,
            framing: Some(pack::Framing::default()),
        }
    }
}

/// Live counters for a progress display.
#[derive(Default, Debug)]
pub struct Progress {
    pub files: AtomicU64,
    pub bytes_read: AtomicU64,
    pub bytes_stored: AtomicU64,
}

#[derive(Debug)]
pub struct BackupOutcome {
    pub snapshot_id: SnapshotId,
    pub snapshot: Snapshot,
    /// Sources that could not be read; the backup went on without them.
    pub errors: Vec<String>,
    /// Packs left by an interrupted earlier run, found and reused.
    pub resumed_packs: usize,
}

struct Job {
    kind: BlobType,
    id: BlobId,
    data: Vec<u8>,
}

/// Run one backup of `paths` with an agent key.
pub async fn backup(
    store: Store,
    key: &AgentKey,
    paths: &[PathBuf],
    opts: &BackupOptions,
    progress: Arc<Progress>,
) -> Result<BackupOutcome> {
    let started = Instant::now();
    let start_time = time::OffsetDateTime::now_utc();
    let paths = normalize_paths(paths, opts.root.as_deref())?;
    // The files cache loads while the repository opens.
    let cache_path = cache_file(&opts.cache_dir, key.repo_id, key.space.space);
    let cache_load = tokio::task::spawn_blocking({
        let p = cache_path.clone();
        move || FilesCache::load(&p)
    });
    let repo = Repo::open(store).await?;
    repo.check_agent_key(key)?;
    if opts.framing.is_none() && repo.config.version.max(key.format) >= 3 {
        return Err(Error::Invalid(
            "frames cannot be turned off in a version-3 repository: small files would be stored at their exact length (FORMAT.md §4.2)".into(),
        ));
    }
    let phase =
        |what: &str| tracing::debug!(ms = started.elapsed().as_millis() as u64, "backup: {what}");
    phase("repository open");
    let space = key.space.clone();

    // Own index, plus adoption of packs an interrupted run left behind.
    let sp = space.clone();
    let mut loaded = LoadedIndexes::load(&repo, |s| (s == sp.space).then(|| sp.clone())).await?;
    for (id, e) in &loaded.damaged {
        tracing::warn!(index = %id, error = %e, "skipping an unreadable index file");
    }
    let mut index = loaded
        .spaces
        .remove(&space.space)
        .unwrap_or_else(SpaceIndex::new);
    let adopted = adopt_orphans(&repo, &space, &loaded.indexed_packs, &mut index).await?;
    index.finalize();
    let index = Arc::new(index);
    phase("index loaded");
    let mut bytes_stored: u64 = 0;

    // The session key goes first, so every pack of this run is readable.
    let session = Arc::new(SessionKey::generate());
    let wrapped = session.wrap(&key.recipients)?;
    bytes_stored += wrapped.len() as u64;
    repo.store
        .put(&crate::layout::session_key(&session.id), wrapped.into())
        .await?;

    phase("session key stored");
    let cache = cache_load.await.map_err(|e| Error::Task(e.to_string()))?;
    phase("files cache loaded");

    // Pipeline.
    let workers = opts.workers.max(1);
    let (job_tx, job_rx) = crossbeam_channel::bounded::<Job>(workers);
    // Blob buffers are tokens too: a fixed number, taken only to carry a
    // new blob (by a reader or the walker) and given back by the workers
    // once the blob is packed: two per worker (queued, being compressed)
    // and two for those storing one. None is freed and allocated again
    // (glibc keeps a freed block in the arena of the thread that
    // allocated it: with several readers that churn was ~10 MiB more peak
    // RSS), and each grows only to the largest chunk it carries. Readers
    // read small files into buffers of their own (`read::small_file`
    // each), so more readers do not mean more large buffers.
    let readers = opts.readers.max(1);
    let buffers = 2 * workers + 2;
    let (spare_tx, spare_rx) = crossbeam_channel::bounded::<Vec<u8>>(buffers);
    for _ in 0..buffers {
        spare_tx
            .try_send(Vec::new())
            .expect("the spares have room for every buffer");
    }
    // Each worker holds a sender; a reader waiting for a buffer stops
    // waiting when the last worker has ended.
    let (alive_tx, alive_rx) = crossbeam_channel::bounded::<()>(0);
    let (pack_tx, pack_rx) = mpsc::channel::<FinishedPack>(1);
    // Data-pack buffers are tokens: the packer takes one to open a data
    // pack, the uploader gives it back when the pack is stored. So at most
    // `1 + upload_concurrency` data packs exist at once, however slow the
    // store, and their memory is reused rather than reallocated.
    let upload_concurrency = opts
        .upload_concurrency
        .unwrap_or(if repo.store.local_dir().is_some() {
            1
        } else {
            2
        })
        .max(1);
    let tokens = 1 + upload_concurrency;
    let (pool_tx, pool_rx) = crossbeam_channel::bounded::<Vec<u8>>(tokens);
    for _ in 0..tokens {
        pool_tx
            .try_send(Vec::new())
            .expect("the pool has room for every token");
    }
    let uploader = tokio::spawn(upload_packs(
        repo.store.clone(),
        pack_rx,
        pool_tx,
        upload_concurrency,
        progress.clone(),
    ));
    // Small blobs go into frames where the repository's version allows.
    let framing = opts
        .framing
        .zip(pack::Framing::of_version(
            repo.config.version.max(key.format),
            &key.chunker,
        ))
        .map(|(asked, repo)| asked.within(repo).clamped());
    let packer = Arc::new(Mutex::new(Packer {
        session: session.clone(),
        space: space.clone(),
        open: [None, None],
        pool: pool_rx,
        tx: pack_tx,
        pack_size: opts.pack_size,
        capacity: pack::pack_capacity(
            opts.pack_size,
            (key.chunker.max_size as usize).max(framing.map_or(0, |f| f.max_raw())),
        ),
        framing,
        frame: Default::default(),
        spare_frames: Vec::new(),
        level: key.compression_level,
    }));
    let mut worker_handles = Vec::new();
    for _ in 0..workers {
        let (rx, spare, packer) = (job_rx.clone(), spare_tx.clone(), packer.clone());
        let (level, alive) = (key.compression_level, alive_tx.clone());
        worker_handles.push(
            std::thread::Builder::new()
                .name("pulih-compress".into())
                .spawn(move || {
                    let _alive = alive;
                    pack_worker(rx, spare, &packer, level)
                })
                .map_err(|e| Error::Task(format!("cannot start a pack worker: {e}")))?,
        );
    }
    drop((job_rx, spare_tx, alive_tx));

    let blobs = Arc::new(Blobs::new(
        space.clone(),
        index.clone(),
        job_tx,
        spare_rx,
        alive_rx,
    ));
    let reader = FileReader::new(
        blobs.clone(),
        Chunker::new(&key.chunker_key, key.chunker),
        Windows::new(WINDOWS),
        progress.clone(),
    );
    let walker = Walker::new(
        blobs,
        reader,
        readers,
        cache,
        progress.clone(),
        opts.root.clone(),
    );
    let walk_paths = paths.clone();
    let walked = tokio::task::spawn_blocking(move || walker.run(&walk_paths))
        .await
        .map_err(|e| Error::Task(e.to_string()))?;
    phase("walk done");
    let worker_results = tokio::task::spawn_blocking(move || {
        let mut results: Vec<Result<()>> = worker_handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Error::Task("a pack worker panicked".into())))
            })
            .collect();
        // The last, partly filled packs; dropping the packer then closes
        // the uploader's channel.
        results.push(Packer::lock(&packer).and_then(|mut p| p.flush()));
        results
    })
    .await
    .map_err(|e| Error::Task(e.to_string()))?;
    let uploaded = uploader.await.map_err(|e| Error::Task(e.to_string()))?;
    phase("packs stored");
    // Report the root cause: the store first, then the workers, then the walk.
    let (mut packs, uploaded_bytes) = uploaded?;
    for r in worker_results {
        r?;
    }
    let (root, mut summary, new_cache, errors, mut used_packs) = walked?;
    bytes_stored += uploaded_bytes;

    // Index, then snapshot.
    let resumed_packs = adopted.len();
    packs.extend(adopted);
    used_packs.extend(packs.iter().map(|p| p.pack));
    let mut used_packs: Vec<PackId> = used_packs.into_iter().collect();
    used_packs.sort();
    if !packs.is_empty() {
        let id = IndexId::random();
        let bytes = IndexFile {
            space: space.space,
            packs,
        }
        .encode(&space, &id);
        bytes_stored += bytes.len() as u64;
        repo.store
            .put(&crate::index::index_key_name(&id), bytes.into())
            .await?;
    }
    summary.errors = errors.len() as u64;
    let snapshot_id = SnapshotId::random();
    let mut snapshot = Snapshot {
        time: start_time
            .format(&time::format_description::well_known::Rfc3339)
            .expect("formats"),
        host: opts.host.clone(),
        tags: opts.tags.clone(),
        paths: paths
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect(),
        tree: root,
        session: session.id,
        parent: None,
        agent_version: env!("CARGO_PKG_VERSION").to_owned(),
        summary,
        packs: Some(used_packs),
    };
    // The snapshot's own size counts as stored; estimate it with the final
    // summary in place (the number's digits barely move it).
    snapshot.summary.bytes_stored = bytes_stored;
    snapshot.summary.bytes_stored += snapshot.encode(&space, &snapshot_id).len() as u64;
    snapshot.summary.duration_s = started.elapsed().as_secs_f64();
    // In a version-3 repository the stored summary's byte counts are in
    // buckets (FORMAT.md §6): the agent key reads them back, and a night
    // that changed one file would otherwise show its size. The outcome
    // (what the agent reports to the controller) keeps the exact counts.
    let bytes = if repo.config.version.max(key.format) >= 3 {
        Snapshot {
            summary: snapshot.summary.bucketed(),
            ..snapshot.clone()
        }
        .encode(&space, &snapshot_id)
    } else {
        snapshot.encode(&space, &snapshot_id)
    };
    // The cache is saved while the snapshot uploads: it only names blobs
    // the index (written above) holds, and each is checked against the
    // index before use, so it is safe even if the snapshot PUT fails.
    let cache_save = tokio::task::spawn_blocking(move || new_cache.save(&cache_path));
    let put = repo
        .store
        .put(
            &crate::snapshot::snapshot_key_name(&snapshot_id),
            bytes.into(),
        )
        .await;
    // Not left running detached (a retry in this process would race it).
    let saved = cache_save.await;
    put?;
    phase("snapshot stored");
    progress
        .bytes_stored
        .store(snapshot.summary.bytes_stored, Ordering::Relaxed);

    match saved {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "could not save the files cache; the next backup reads every file")
        }
        Err(e) => tracing::warn!(error = %e, "the files cache save stopped"),
    }
    Ok(BackupOutcome {
        snapshot_id,
        snapshot,
        errors,
        resumed_packs,
    })
}

fn normalize_paths(paths: &[PathBuf], root: Option<&Path>) -> Result<Vec<PathBuf>> {
    if paths.is_empty() {
        return Err(Error::Invalid("no source path given".into()));
    }
    let mut out = Vec::new();
    for p in paths {
        let abs = std::path::absolute(p).map_err(|e| Error::io(p, e))?;
        // Drop `.` and trailing slashes; refuse `..`, whose meaning depends on links.
        let mut clean = PathBuf::from("/");
        for c in abs.components() {
            match c {
                std::path::Component::Normal(n) => clean.push(n),
                std::path::Component::ParentDir => {
                    return Err(Error::Invalid(format!(
                        "source path {} contains `..`; give it without",
                        p.display()
                    )));
                }
                _ => {}
            }
        }
        if clean == Path::new("/") {
            return Err(Error::Invalid(
                "backing up `/` as a whole is not supported; name the directories to protect"
                    .into(),
            ));
        }
        let real = match root {
            Some(r) => r.join(clean.strip_prefix("/").unwrap_or(&clean)),
            None => clean.clone(),
        };
        if std::fs::symlink_metadata(&real).is_err() {
            return Err(Error::Invalid(format!(
                "source path {} does not exist",
                p.display()
            )));
        }
        out.push(clean);
    }
    out.sort();
    out.dedup();
    Ok(out)
}
