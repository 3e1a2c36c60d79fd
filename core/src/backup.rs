//! Backup: walk → chunk → deduplicate → compress → encrypt → pack → upload →
//! index → snapshot (FORMAT.md §8).
//!
//! Threads: one lister (readdir + lstat, ahead of the walker), one walker
//! (files cache, read, chunk, hash, dedup; builds trees bottom-up),
//! `workers` compressors (zstd) that hand each blob to one shared packer
//! (AES-GCM into the one open pack per blob type), and an async uploader
//! with bounded concurrency. Channels are bounded, so memory stays bounded:
//! `1 + upload_concurrency` data packs (buffer tokens, see `backup`), one
//! tree pack, and about `workers × 4` chunk buffers (queued, being
//! compressed or spare, up to the largest chunk each) plus a compression
//! buffer per worker.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::chunker::Chunker;
use crate::files_cache::{CacheEntry, FilesCache, cache_file};
use crate::id::{BlobId, IndexId, PackId, SnapshotId};
use crate::index::{IndexFile, IndexPack, SpaceIndex};
use crate::keys::{AgentKey, SessionKey, SpaceKeys};
use crate::pack::{self, BlobType, FinishedPack, PackWriter};
use crate::repo::{LoadedIndexes, Repo};
use crate::snapshot::{Snapshot, Summary};
use crate::storage::Store;
use crate::tree::{Node, NodeKind, Tree};
use crate::{Error, Result};

const READ_BLOCK: usize = 1024 * 1024;
/// Room in the read window beyond one maximal chunk. The chunker needs
/// `max_size` bytes ahead of each cut, so the unread tail is moved to the
/// window's front whenever fewer than `READ_BLOCK` bytes are free; with
/// this much room that happens once per ~12 MiB read instead of once per
/// chunk (perf: the moves were ~5 % of an initial backup's CPU, about
/// three copies of every byte with a window of `max_size + READ_BLOCK`).
const WINDOW_SLACK: usize = 12 * READ_BLOCK;

#[derive(Clone, Debug)]
pub struct BackupOptions {
    pub host: String,
    pub tags: Vec<String>,
    pub cache_dir: PathBuf,
    /// Target pack size in bytes (16–64 MiB in production).
    pub pack_size: usize,
    pub workers: usize,
    /// Packs uploaded at once; each holds a pack's memory (~`pack_size`).
    /// None: 1 on local disk (writes are sequential anyway), 2 on a remote
    /// store (one uploads while the next is sent).
    pub upload_concurrency: Option<usize>,
    /// Read each path under this directory instead of `/`, and record it
    /// as given: a failback backs up the DRC's copy of a server's paths
    /// (restored under a scratch directory) as the server's own paths.
    pub root: Option<PathBuf>,
}

impl BackupOptions {
    pub fn new(host: String, cache_dir: PathBuf) -> Self {
        BackupOptions {
            host,
            tags: Vec::new(),
            cache_dir,
            pack_size: 16 * 1024 * 1024,
            workers: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            upload_concurrency: None,
            root: None,
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
        .put(&format!("keys/sessions/{}", session.id), wrapped.into())
        .await?;

    phase("session key stored");
    let cache = cache_load.await.map_err(|e| Error::Task(e.to_string()))?;
    phase("files cache loaded");

    // Pipeline.
    let workers = opts.workers.max(1);
    let (job_tx, job_rx) = crossbeam_channel::bounded::<Job>(workers);
    // Chunk buffers travel back from the workers to the walker for reuse.
    let (spare_tx, spare_rx) = crossbeam_channel::bounded::<Vec<u8>>(workers * 2);
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
    let packer = Arc::new(Mutex::new(Packer {
        session: session.clone(),
        space: space.clone(),
        open: [None, None],
        pool: pool_rx,
        tx: pack_tx,
        pack_size: opts.pack_size,
        capacity: pack::pack_capacity(opts.pack_size, key.chunker.max_size as usize),
    }));
    let mut worker_handles = Vec::new();
    for _ in 0..workers {
        let (rx, spare, packer) = (job_rx.clone(), spare_tx.clone(), packer.clone());
        let level = key.compression_level;
        worker_handles.push(
            std::thread::Builder::new()
                .name("pulih-compress".into())
                .spawn(move || pack_worker(rx, spare, &packer, level))
                .map_err(|e| Error::Task(format!("cannot start a pack worker: {e}")))?,
        );
    }
    drop((job_rx, spare_tx));

    let walker = Walker {
        keys: space.clone(),
        chunker: Chunker::new(&key.chunker_key, key.chunker),
        index: index.clone(),
        seen: HashSet::new(),
        used_packs: HashSet::new(),
        tx: job_tx,
        spare: spare_rx,
        cache,
        summary: Summary::default(),
        errors: Vec::new(),
        links: HashMap::new(),
        buf: Vec::new(),
        progress: progress.clone(),
        root: opts.root.clone(),
        listed: None,
    };
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
    let bytes = snapshot.encode(&space, &snapshot_id);
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

/// Find packs no index names; adopt those of our space (an interrupted run).
async fn adopt_orphans(
    repo: &Repo,
    space: &SpaceKeys,
    indexed: &HashSet<crate::id::PackId>,
    index: &mut SpaceIndex,
) -> Result<Vec<IndexPack>> {
    use futures::StreamExt;
    let orphans: Vec<(PackId, u64)> = repo
        .list_packs()
        .await?
        .into_iter()
        .filter(|(id, _)| !indexed.contains(id) && !index.has_pack(id))
        .collect();
    let sp = space.clone();
    let results: Vec<(PackId, Result<_>)> = futures::stream::iter(orphans)
        .map(|(id, size)| {
            let sp = sp.clone();
            async move {
                (
                    id,
                    repo.read_pack_header(&id, size, |s| (s == sp.space).then(|| sp.clone()))
                        .await,
                )
            }
        })
        .buffer_unordered(crate::repo::LOAD_CONCURRENCY)
        .collect()
        .await;
    let mut adopted = Vec::new();
    for (id, r) in results {
        match r {
            Ok((_, Some(header))) => {
                index.add_pack(id, &header);
                adopted.push(IndexPack { pack: id, header });
            }
            Ok((_, None)) => {}
            Err(e) => {
                tracing::warn!(pack = %id, error = %e, "unindexed pack is unreadable; not reusing it")
            }
        }
    }
    if !adopted.is_empty() {
        tracing::info!(
            packs = adopted.len(),
            "resuming: reusing packs of an interrupted backup"
        );
    }
    Ok(adopted)
}

/// The open packs (one per blob type) every worker appends to, so one data
/// pack is filled at a time, whatever the number of workers.
struct Packer {
    session: Arc<SessionKey>,
    space: SpaceKeys,
    open: [Option<PackWriter>; 2],
    /// Data-pack buffer tokens (see `backup`).
    pool: crossbeam_channel::Receiver<Vec<u8>>,
    tx: mpsc::Sender<FinishedPack>,
    pack_size: usize,
    capacity: usize,
}

impl Packer {
    fn lock(p: &Mutex<Packer>) -> Result<std::sync::MutexGuard<'_, Packer>> {
        p.lock()
            .map_err(|_| Error::Task("a pack worker panicked".into()))
    }

    /// Encrypt one (maybe compressed) blob into the open pack of its type;
    /// a full pack goes to the uploader.
    fn add(
        &mut self,
        kind: BlobType,
        id: BlobId,
        stored: &[u8],
        flags: u8,
        raw_len: u32,
    ) -> Result<()> {
        let slot = kind as usize;
        if self.open[slot].is_none() {
            self.open[slot] = Some(match kind {
                BlobType::Data => {
                    // Wait for a token; a fresh one (or one whose buffer the
                    // store kept) gets its memory now, once.
                    let mut buf = self
                        .pool
                        .recv()
                        .map_err(|_| Error::Task("the uploader stopped".into()))?;
                    buf.clear();
                    buf.reserve_exact(self.capacity);
                    PackWriter::with_buffer(&self.session, kind, buf)
                }
                BlobType::Tree => PackWriter::new(&self.session, kind, 1 << 20),
            });
        }
        let w = self.open[slot].as_mut().expect("just opened");
        w.add(id, stored, flags, raw_len);
        // Full counting the header still to come, so a pack of many small
        // blobs stays within its buffer's capacity.
        if w.finished_len() >= self.pack_size {
            let w = self.open[slot].take().expect("just used");
            self.send(w)?;
        }
        Ok(())
    }

    fn send(&self, w: PackWriter) -> Result<()> {
        self.tx
            .blocking_send(w.finish(&self.space))
            .map_err(|_| Error::Task("the uploader stopped".into()))
    }

    /// Send the partly filled packs.
    fn flush(&mut self) -> Result<()> {
        for w in std::mem::take(&mut self.open).into_iter().flatten() {
            if !w.is_empty() {
                self.send(w)?;
            }
        }
        Ok(())
    }
}

/// Compress chunks (in parallel with the other workers), then hand them
/// to the shared packer, which encrypts them into the open pack.
fn pack_worker(
    rx: crossbeam_channel::Receiver<Job>,
    spare: crossbeam_channel::Sender<Vec<u8>>,
    packer: &Mutex<Packer>,
    level: i32,
) -> Result<()> {
    let mut comp = zstd::bulk::Compressor::new(level)
        .map_err(|e| Error::Invalid(format!("zstd level {level}: {e}")))?;
    let mut scratch = Vec::new();
    for job in rx {
        let flags = pack::compress(&mut comp, &job.data, &mut scratch);
        let stored = if flags & pack::FLAG_COMPRESSED != 0 {
            &scratch[..]
        } else {
            &job.data[..]
        };
        Packer::lock(packer)?.add(job.kind, job.id, stored, flags, job.data.len() as u32)?;
        let _ = spare.try_send(job.data);
    }
    Ok(())
}

async fn upload_packs(
    store: Store,
    mut rx: mpsc::Receiver<FinishedPack>,
    pool: crossbeam_channel::Sender<Vec<u8>>,
    concurrency: usize,
    progress: Arc<Progress>,
) -> Result<(Vec<IndexPack>, u64)> {
    let mut set: JoinSet<Result<(IndexPack, u64)>> = JoinSet::new();
    let mut done = Vec::new();
    let mut total = 0u64;
    let mut collect =
        |r: std::result::Result<Result<(IndexPack, u64)>, tokio::task::JoinError>| -> Result<()> {
            let (p, n) = r.map_err(|e| Error::Task(e.to_string()))??;
            total += n;
            progress.bytes_stored.fetch_add(n, Ordering::Relaxed);
            done.push(p);
            Ok(())
        };
    while let Some(p) = rx.recv().await {
        while set.len() >= concurrency {
            collect(set.join_next().await.expect("set is not empty"))?;
        }
        let (store, pool) = (store.clone(), pool.clone());
        set.spawn(async move {
            let n = p.bytes.len() as u64;
            let data_pack = p.kind == BlobType::Data;
            let bytes = Bytes::from(p.bytes);
            store
                .put(&pack::pack_key_name(&p.id), bytes.clone())
                .await?;
            // Give the token back, with the buffer when the store kept no
            // reference to it (a worker then reallocates).
            if data_pack {
                let buf = bytes.try_into_mut().map(Vec::from).unwrap_or_default();
                let _ = pool.try_send(buf);
            }
            Ok((
                IndexPack {
                    pack: p.id,
                    header: p.header,
                },
                n,
            ))
        });
    }
    while let Some(r) = set.join_next().await {
        collect(r)?;
    }
    Ok((done, total))
}

struct Walker {
    keys: SpaceKeys,
    chunker: Chunker,
    index: Arc<SpaceIndex>,
    seen: HashSet<BlobId>,
    /// Packs of earlier runs holding blobs this snapshot names.
    used_packs: HashSet<PackId>,
    tx: crossbeam_channel::Sender<Job>,
    spare: crossbeam_channel::Receiver<Vec<u8>>,
    /// The files cache, updated in place: entries of files seen this run
    /// are marked, the rest dropped when the walk ends.
    cache: FilesCache,
    summary: Summary,
    errors: Vec<String>,
    /// Hard links seen this run: (dev, inode) → (link id, content, size).
    links: HashMap<(u64, u64), (u64, Vec<BlobId>, u64)>,
    buf: Vec<u8>,
    progress: Arc<Progress>,
    /// Where the recorded paths are read from (None: `/`).
    root: Option<PathBuf>,
    /// The lister's findings while the walk runs (see [`list_sources`]).
    listed: Option<crossbeam_channel::Receiver<Listed>>,
}

/// The walker asked for another directory than the lister listed next: a
/// bug, never a reason to store a wrong tree.
fn diverged(path: &Path) -> Error {
    Error::Task(format!(
        "internal: the walk and the directory listing diverged at {}",
        path.display()
    ))
}

type WalkResult = (BlobId, Summary, FilesCache, Vec<String>, HashSet<PackId>);

fn path_key(p: &Path) -> std::borrow::Cow<'_, str> {
    match p.to_str() {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => format!("hex:{}", hex::encode(p.as_os_str().as_bytes())).into(),
    }
}

fn mtime_ns(m: &std::fs::Metadata) -> i64 {
    m.mtime()
        .saturating_mul(1_000_000_000)
        .saturating_add(m.mtime_nsec())
}

/// What the lister found, in the order the walker descends: each source
/// path's lstat, then (for a directory) its listing, depth first.
enum Listed {
    Top(std::io::Result<std::fs::Metadata>),
    Dir(PathBuf, std::io::Result<Listing>),
}

/// One directory's entries sorted by name, each with its lstat (taken
/// relative to the open directory), and the errors met reading it.
struct Listing {
    entries: Vec<(std::ffi::OsString, std::io::Result<std::fs::Metadata>)>,
    errors: Vec<std::io::Error>,
}

/// Directories listed ahead of the walker (bounds the lister's lead).
const LISTED_AHEAD: usize = 64;

/// The lister: readdir and lstat, a thread of its own, so those system
/// calls (most of a no-change backup's time) overlap the walker's work
/// (cache and index lookups, trees, reading and chunking). It walks the
/// same order the walker does — sources in order, entries sorted, a
/// directory's subdirectories after its listing — and the walker descends
/// by the lister's own metadata, so the two cannot disagree. Stops when
/// the walker hangs up.
fn list_sources(reals: &[PathBuf], tx: &crossbeam_channel::Sender<Listed>) {
    for p in reals {
        let meta = std::fs::symlink_metadata(p);
        let is_dir = matches!(&meta, Ok(m) if m.is_dir());
        if tx.send(Listed::Top(meta)).is_err() || (is_dir && !list_dir(p, tx)) {
            return;
        }
    }
}

/// List `path` and, depth first, its subdirectories; false once the
/// walker has hung up.
fn list_dir(path: &Path, tx: &crossbeam_channel::Sender<Listed>) -> bool {
    let listing = std::fs::read_dir(path).map(|rd| {
        let mut l = Listing {
            entries: Vec::new(),
            errors: Vec::new(),
        };
        for entry in rd {
            match entry {
                // fstatat on the open directory: no path walk per file.
                Ok(e) => l.entries.push((e.file_name(), e.metadata())),
                Err(e) => l.errors.push(e),
            }
        }
        l.entries
            .sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        l
    });
    let subdirs: Vec<PathBuf> = match &listing {
        Ok(l) => l
            .entries
            .iter()
            .filter(|(_, m)| matches!(m, Ok(m) if m.is_dir()))
            .map(|(n, _)| path.join(n))
            .collect(),
        Err(_) => Vec::new(),
    };
    if tx.send(Listed::Dir(path.to_owned(), listing)).is_err() {
        return false;
    }
    subdirs.iter().all(|d| list_dir(d, tx))
}

impl Walker {
    fn run(mut self, paths: &[PathBuf]) -> Result<WalkResult> {
        let reals: Vec<PathBuf> = paths
            .iter()
            .map(|p| match &self.root {
                Some(r) => r.join(p.strip_prefix("/").expect("paths are absolute")),
                None => p.clone(),
            })
            .collect();
        let (tx, rx) = crossbeam_channel::bounded(LISTED_AHEAD);
        let lister = std::thread::Builder::new()
            .name("pulih-lister".into())
            .spawn({
                let reals = reals.clone();
                move || list_sources(&reals, &tx)
            })
            .map_err(|e| Error::Task(format!("cannot start the directory lister: {e}")))?;
        self.listed = Some(rx);
        let root = self.walk_sources(paths, &reals);
        // Hang up first, so a lister blocked on a full channel ends (on a
        // panic, dropping the walker hangs up).
        self.listed = None;
        lister
            .join()
            .map_err(|_| Error::Task("the directory lister panicked".into()))?;
        let root = root?;
        let id = self.store(BlobType::Tree, &root.encode())?;
        Ok((
            id,
            self.summary,
            {
                self.cache.entries.retain(|_, e| e.seen);
                self.cache
            },
            self.errors,
            self.used_packs,
        ))
    }

    fn walk_sources(&mut self, paths: &[PathBuf], reals: &[PathBuf]) -> Result<Tree> {
        let mut root = Tree::default();
        for (p, real) in paths.iter().zip(reals) {
            let name = p.strip_prefix("/").expect("paths are absolute");
            let meta = match self.next_listed()? {
                Listed::Top(m) => m,
                Listed::Dir(..) => return Err(diverged(real)),
            };
            if let Some(node) = self.node(real, name.as_os_str(), meta)? {
                root.nodes.push(node);
            }
        }
        Ok(root)
    }

    fn next_listed(&self) -> Result<Listed> {
        self.listed
            .as_ref()
            .and_then(|rx| rx.recv().ok())
            .ok_or_else(|| Error::Task("the directory lister stopped".into()))
    }

    fn skip(&mut self, path: &Path, e: impl std::fmt::Display) {
        tracing::warn!(path = %path.display(), error = %e, "cannot read; skipping");
        self.errors.push(format!("{}: {e}", path.display()));
    }

    /// Note the pack of an indexed blob the snapshot names.
    fn use_indexed(&mut self, id: &BlobId) -> bool {
        match self.index.lookup(id) {
            Some(loc) => {
                self.used_packs.insert(loc.pack);
                true
            }
            None => false,
        }
    }

    fn store(&mut self, kind: BlobType, data: &[u8]) -> Result<BlobId> {
        let id = self.keys.blob_id(data);
        if !self.use_indexed(&id) && self.seen.insert(id) {
            if kind == BlobType::Data {
                self.summary.bytes_new += data.len() as u64;
            }
            let mut buf = self.spare.try_recv().unwrap_or_default();
            buf.clear();
            buf.extend_from_slice(data);
            self.tx
                .send(Job {
                    kind,
                    id,
                    data: buf,
                })
                .map_err(|_| Error::Task("the pack workers stopped".into()))?;
        }
        Ok(id)
    }

    /// One entry; `meta` is its `lstat` (taken by the caller: a directory's
    /// entries are stat'ed relative to the open directory, not by path).
    fn node(
        &mut self,
        path: &Path,
        name: &OsStr,
        meta: std::io::Result<std::fs::Metadata>,
    ) -> Result<Option<Node>> {
        let meta = match meta {
            Ok(m) => m,
            Err(e) => {
                self.skip(path, e);
                return Ok(None);
            }
        };
        let ft = meta.file_type();
        let mut node = if ft.is_dir() {
            let mut n = Node::new(name, NodeKind::Dir);
            match self.dir(path)? {
                Some(id) => n.subtree = Some(id),
                None => return Ok(None),
            }
            self.summary.dirs += 1;
            n
        } else if ft.is_file() {
            let mut n = Node::new(name, NodeKind::File);
            // A further name of an inode already read this run: same content.
            let seen_link = if meta.nlink() > 1 {
                self.links.get(&(meta.dev(), meta.ino())).cloned()
            } else {
                None
            };
            let (content, size) = match seen_link {
                Some((link_id, content, size)) => {
                    n.link_id = Some(link_id);
                    (content, size)
                }
                None => match self.file(path, &meta)? {
                    Some(x) => x,
                    None => return Ok(None),
                },
            };
            if meta.nlink() > 1 && n.link_id.is_none() {
                let link_id = self.links.len() as u64 + 1;
                n.link_id = Some(link_id);
                self.links
                    .insert((meta.dev(), meta.ino()), (link_id, content.clone(), size));
            }
            n.content = Some(content);
            n.size = Some(size);
            self.summary.total_bytes += size;
            self.summary.files += 1;
            self.progress.files.fetch_add(1, Ordering::Relaxed);
            n
        } else if ft.is_symlink() {
            let mut n = Node::new(name, NodeKind::Symlink);
            match std::fs::read_link(path) {
                Ok(t) => n.set_target(t.as_os_str()),
                Err(e) => {
                    self.skip(path, e);
                    return Ok(None);
                }
            }
            n
        } else {
            tracing::info!(path = %path.display(), "not a file, directory or symlink; not backed up");
            return Ok(None);
        };
        node.mode = meta.mode() & 0o7777;
        node.mtime_ns = mtime_ns(&meta);
        node.uid = meta.uid();
        node.gid = meta.gid();
        Ok(Some(node))
    }

    fn dir(&mut self, path: &Path) -> Result<Option<BlobId>> {
        let listing = match self.next_listed()? {
            Listed::Dir(p, l) if p == path => l,
            _ => return Err(diverged(path)),
        };
        let listing = match listing {
            Ok(l) => l,
            Err(e) => {
                self.skip(path, e);
                return Ok(None);
            }
        };
        for e in listing.errors {
            self.skip(path, e);
        }
        let mut tree = Tree::default();
        for (n, meta) in listing.entries {
            if let Some(node) = self.node(&path.join(&n), &n, meta)? {
                tree.nodes.push(node);
            }
        }
        Ok(Some(self.store(BlobType::Tree, &tree.encode())?))
    }

    fn file(
        &mut self,
        path: &Path,
        meta: &std::fs::Metadata,
    ) -> Result<Option<(Vec<BlobId>, u64)>> {
        let key = path_key(path);
        let mut entry = CacheEntry {
            seen: true,
            size: meta.len(),
            mtime_ns: mtime_ns(meta),
            ctime_ns: meta
                .ctime()
                .saturating_mul(1_000_000_000)
                .saturating_add(meta.ctime_nsec()),
            ino: meta.ino(),
            dev: meta.dev(),
            content: Vec::new(),
        };
        // Looked up in place (no removal and reinsertion per file).
        if let Some(old) = self.cache.entries.get_mut(key.as_ref()) {
            let same = (old.size, old.mtime_ns, old.ctime_ns, old.ino, old.dev)
                == (
                    entry.size,
                    entry.mtime_ns,
                    entry.ctime_ns,
                    entry.ino,
                    entry.dev,
                );
            // One index lookup per blob: is it there, and in which pack.
            let mut packs = Vec::with_capacity(old.content.len());
            if same
                && old.content.iter().all(|id| match self.index.lookup(id) {
                    Some(loc) => {
                        packs.push(loc.pack);
                        true
                    }
                    None => self.seen.contains(id),
                })
            {
                self.used_packs.extend(packs);
                old.seen = true;
                return Ok(Some((old.content.clone(), old.size)));
            }
        }
        let mut f = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) => {
                self.skip(path, e);
                return Ok(None);
            }
        };
        // The entry was lstat'ed when its directory was listed; if the name
        // now leads elsewhere (swapped for a symlink or another file since),
        // what was opened is not what was listed: skip it, never store
        // another file's bytes under this name.
        match f.metadata() {
            Ok(m) if (m.dev(), m.ino()) == (meta.dev(), meta.ino()) => {}
            Ok(_) => {
                self.skip(path, "replaced while the backup ran (not the file listed)");
                return Ok(None);
            }
            Err(e) => {
                self.skip(path, e);
                return Ok(None);
            }
        }
        let max = self.chunker.params().max_size as usize;
        let mut buf = std::mem::take(&mut self.buf);
        buf.resize(max + WINDOW_SLACK, 0);
        let (mut start, mut end, mut eof, mut size) = (0usize, 0usize, false, 0u64);
        let result = loop {
            while !eof && end - start < max {
                if buf.len() - end < READ_BLOCK {
                    buf.copy_within(start..end, 0);
                    end -= start;
                    start = 0;
                }
                let want = READ_BLOCK.min(buf.len() - end);
                match f.read(&mut buf[end..end + want]) {
                    Ok(0) => eof = true,
                    Ok(n) => {
                        end += n;
                        self.progress
                            .bytes_read
                            .fetch_add(n as u64, Ordering::Relaxed);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        self.buf = buf;
                        self.skip(path, e);
                        return Ok(None);
                    }
                }
            }
            if start == end {
                break Ok(());
            }
            let n = self.chunker.next_cut(&buf[start..end]);
            match self.store(BlobType::Data, &buf[start..start + n]) {
                Ok(id) => entry.content.push(id),
                Err(e) => break Err(e),
            }
            start += n;
            size += n as u64;
        };
        self.buf = buf;
        result?;
        self.summary.bytes_read += size;
        entry.size = size;
        let r = (entry.content.clone(), size);
        self.cache.entries.insert(key.into_owned(), entry);
        Ok(Some(r))
    }
}
