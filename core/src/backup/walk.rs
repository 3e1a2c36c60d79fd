//! Walk: the walker, fed by the lister, hands the files to read to the
//! file readers and builds the trees bottom-up from their results.
//!
//! The walker descends and assembles in one thread. Descending, it turns
//! each entry into a queued step: a finished node (a symlink, a file the
//! files cache vouches for, a further name of an inode), a file a reader is
//! reading, a directory's start or end, an error to record. It finishes
//! the steps from the queue's head, strictly in walk order, as their files
//! are read. So nodes, trees, link ids, errors and the files cache come out
//! exactly as a walk reading one file at a time makes them, whatever the
//! number of readers and the order their reads end in.

use std::collections::{HashMap, HashSet, VecDeque};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::files_cache::{CacheEntry, FilesCache};
use crate::id::{BlobId, PackId};
use crate::pack::BlobType;
use crate::snapshot::Summary;
use crate::tree::{Node, NodeKind, Tree};
use crate::{Error, Result};

use super::Progress;
use super::blobs::Blobs;
use super::list::{LISTED_AHEAD, Listed, list_sources};
use super::read::{FileRead, FileReader, ReadJob, read_files};

/// Files handed to the readers and not yet finished (bounds how far the
/// reads run ahead of a slow file at the queue's head).
const READS_AHEAD: usize = 256;
/// Steps queued, of any kind (bounds the queue behind a slow file).
const STEPS_AHEAD: usize = 4096;

pub(super) struct Walker {
    blobs: Arc<Blobs>,
    /// Forked for each reader thread; reads itself only a further name of
    /// an inode whose first name could not be read. Its tally also holds
    /// the walker's own (trees, files from the cache).
    reader: FileReader,
    readers: usize,
    /// The files cache, updated in place: entries of files seen this run
    /// are marked, the rest dropped when the walk ends.
    cache: FilesCache,
    summary: Summary,
    errors: Vec<String>,
    /// Hard links finished this run: (dev, inode) → (link id, content, size).
    links: HashMap<(u64, u64), (u64, Vec<BlobId>, u64)>,
    /// Inodes of several names with steps queued: how many.
    linking: HashMap<(u64, u64), usize>,
    progress: Arc<Progress>,
    /// Where the recorded paths are read from (None: `/`).
    root: Option<PathBuf>,
    /// The lister's findings while the walk runs (see [`list_sources`]).
    listed: Option<crossbeam_channel::Receiver<Listed>>,
    /// Steps not finished yet, in walk order.
    steps: VecDeque<Step>,
    /// The trees being filled: the root's, then one per directory entered.
    open: Vec<Tree>,
    /// Files to the readers while the walk runs, and their results back.
    to_read: Option<crossbeam_channel::Sender<ReadJob>>,
    read: Option<crossbeam_channel::Receiver<(u64, Result<FileRead>)>>,
    /// Results come in before their turn, by `ReadJob::seq`.
    results: HashMap<u64, Result<FileRead>>,
    next_seq: u64,
    /// Files handed to the readers and not yet finished.
    reading: usize,
}

enum Step {
    Node(Node),
    File(Box<QueuedFile>),
    Skip(PathBuf, String),
    /// A directory's entries follow, until its `Leave`.
    Enter,
    Leave(Node),
}

struct QueuedFile {
    node: Node,
    path: PathBuf,
    meta: std::fs::Metadata,
    content: Content,
}

enum Content {
    /// A further name of an inode finished earlier: link id, blobs, size.
    Linked(u64, Vec<BlobId>, u64),
    /// Unchanged since the run that read it (the files cache).
    Cached(Vec<BlobId>, u64),
    /// With a reader: its `ReadJob::seq`.
    Reading(u64),
    /// A further name of an inode whose first name is queued ahead.
    SameInode,
}

/// The walker asked for another directory than the lister listed next: a
/// bug, never a reason to store a wrong tree.
fn diverged(path: &Path) -> Error {
    Error::Task(format!(
        "internal: the walk and the directory listing diverged at {}",
        path.display()
    ))
}

fn readers_stopped() -> Error {
    Error::Task("the file readers stopped".into())
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

fn ctime_ns(m: &std::fs::Metadata) -> i64 {
    m.ctime()
        .saturating_mul(1_000_000_000)
        .saturating_add(m.ctime_nsec())
}

/// An inode with more than one name (its names share content and link id).
fn multi_linked(m: &std::fs::Metadata) -> Option<(u64, u64)> {
    (m.nlink() > 1).then(|| (m.dev(), m.ino()))
}

impl Walker {
    /// `readers` threads read files (at least one), each a fork of `reader`.
    pub(super) fn new(
        blobs: Arc<Blobs>,
        reader: FileReader,
        readers: usize,
        cache: FilesCache,
        progress: Arc<Progress>,
        root: Option<PathBuf>,
    ) -> Walker {
        Walker {
            blobs,
            reader,
            readers: readers.max(1),
            cache,
            summary: Summary::default(),
            errors: Vec::new(),
            links: HashMap::new(),
            linking: HashMap::new(),
            progress,
            root,
            listed: None,
            steps: VecDeque::new(),
            open: Vec::new(),
            to_read: None,
            read: None,
            results: HashMap::new(),
            next_seq: 0,
            reading: 0,
        }
    }

    pub(super) fn run(mut self, paths: &[PathBuf]) -> Result<WalkResult> {
        let reals: Vec<PathBuf> = paths
            .iter()
            .map(|p| match &self.root {
                Some(r) => r.join(p.strip_prefix("/").expect("paths are absolute")),
                None => p.clone(),
            })
            .collect();
        // Results never wait for room: at most READS_AHEAD are out.
        let (job_tx, job_rx) = crossbeam_channel::bounded::<ReadJob>(self.readers);
        let (done_tx, done_rx) = crossbeam_channel::bounded(READS_AHEAD);
        let mut readers = Vec::new();
        for _ in 0..self.readers {
            let (r, jobs, done) = (self.reader.fork(), job_rx.clone(), done_tx.clone());
            readers.push(
                std::thread::Builder::new()
                    .name("pulih-reader".into())
                    .spawn(move || read_files(r, jobs, done))
                    .map_err(|e| Error::Task(format!("cannot start a file reader: {e}")))?,
            );
        }
        drop((job_rx, done_tx));
        (self.to_read, self.read) = (Some(job_tx), Some(done_rx));
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
        // Hang up first, so a lister blocked on a full channel ends, and
        // the readers end after their current file (on a panic, dropping
        // the walker hangs up).
        (self.listed, self.to_read, self.read) = (None, None, None);
        lister
            .join()
            .map_err(|_| Error::Task("the directory lister panicked".into()))?;
        for r in readers {
            let tally = r
                .join()
                .map_err(|_| Error::Task("a file reader panicked".into()))?;
            self.reader.tally.add(tally);
        }
        let root = root?;
        let tally = &mut self.reader.tally;
        let id = self.blobs.store(BlobType::Tree, &root.encode(), tally)?;
        self.summary.bytes_new += tally.bytes_new;
        let used_packs = std::mem::take(&mut tally.used_packs);
        self.cache.entries.retain(|_, e| e.seen);
        Ok((id, self.summary, self.cache, self.errors, used_packs))
    }

    fn walk_sources(&mut self, paths: &[PathBuf], reals: &[PathBuf]) -> Result<Tree> {
        self.open.push(Tree::default());
        for (p, real) in paths.iter().zip(reals) {
            let name = p.strip_prefix("/").expect("paths are absolute");
            let meta = match self.next_listed()? {
                Listed::Top(m) => m,
                Listed::Dir(..) => return Err(diverged(real)),
            };
            self.node(real, name.as_os_str(), meta)?;
            // Each source is finished before the next is walked: sources
            // may overlap (`/srv` and `/srv/data`), and a file met again
            // must find the files-cache entry its first visit made.
            self.finish_steps(true)?;
        }
        Ok(self.open.pop().expect("the root's tree"))
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

    /// Queue one entry's steps; `meta` is its `lstat` (taken by the lister:
    /// a directory's entries are stat'ed relative to the open directory,
    /// not by path).
    fn node(
        &mut self,
        path: &Path,
        name: &OsStr,
        meta: std::io::Result<std::fs::Metadata>,
    ) -> Result<()> {
        let meta = match meta {
            Ok(m) => m,
            Err(e) => return self.push(Step::Skip(path.to_owned(), e.to_string())),
        };
        let ft = meta.file_type();
        let kind = if ft.is_dir() {
            NodeKind::Dir
        } else if ft.is_file() {
            NodeKind::File
        } else if ft.is_symlink() {
            NodeKind::Symlink
        } else {
            tracing::info!(path = %path.display(), "not a file, directory or symlink; not backed up");
            return Ok(());
        };
        let mut node = Node::new(name, kind);
        node.mode = meta.mode() & 0o7777;
        node.mtime_ns = mtime_ns(&meta);
        node.uid = meta.uid();
        node.gid = meta.gid();
        match kind {
            NodeKind::Dir => self.dir(path, node),
            NodeKind::File => self.file(path, node, meta),
            NodeKind::Symlink => match std::fs::read_link(path) {
                Ok(t) => {
                    node.set_target(t.as_os_str());
                    self.push(Step::Node(node))
                }
                Err(e) => self.push(Step::Skip(path.to_owned(), e.to_string())),
            },
        }
    }

    fn dir(&mut self, path: &Path, node: Node) -> Result<()> {
        let listing = match self.next_listed()? {
            Listed::Dir(p, l) if p == path => l,
            _ => return Err(diverged(path)),
        };
        let listing = match listing {
            Ok(l) => l,
            Err(e) => return self.push(Step::Skip(path.to_owned(), e.to_string())),
        };
        for e in listing.errors {
            self.push(Step::Skip(path.to_owned(), e.to_string()))?;
        }
        self.push(Step::Enter)?;
        for (n, meta) in listing.entries {
            self.node(&path.join(&n), &n, meta)?;
        }
        self.push(Step::Leave(node))
    }

    fn file(&mut self, path: &Path, node: Node, meta: std::fs::Metadata) -> Result<()> {
        let inode = multi_linked(&meta);
        let linked = inode.and_then(|k| self.links.get(&k));
        let content = if let Some((id, content, size)) = linked {
            Content::Linked(*id, content.clone(), *size)
        } else if let Some(n) = inode.and_then(|k| self.linking.get_mut(&k)) {
            *n += 1;
            Content::SameInode
        } else {
            if let Some(k) = inode {
                self.linking.insert(k, 1);
            }
            match self.cached(path, &meta)? {
                Some((content, size)) => Content::Cached(content, size),
                None => {
                    let seq = self.next_seq;
                    self.next_seq += 1;
                    let job = ReadJob {
                        seq,
                        path: path.to_owned(),
                        dev: meta.dev(),
                        ino: meta.ino(),
                        len: meta.len(),
                    };
                    let to_read = self.to_read.as_ref().ok_or_else(readers_stopped)?;
                    to_read.send(job).map_err(|_| readers_stopped())?;
                    self.reading += 1;
                    Content::Reading(seq)
                }
            }
        };
        self.push(Step::File(Box::new(QueuedFile {
            node,
            path: path.to_owned(),
            meta,
            content,
        })))
    }

    /// The content the files cache vouches for: the file is as the run
    /// that read it saw it (size, mtime, ctime, inode, device), and each
    /// blob is still stored.
    fn cached(
        &mut self,
        path: &Path,
        meta: &std::fs::Metadata,
    ) -> Result<Option<(Vec<BlobId>, u64)>> {
        // Looked up in place (no removal and reinsertion per file).
        let Some(old) = self.cache.entries.get_mut(path_key(path).as_ref()) else {
            return Ok(None);
        };
        let same = (old.size, old.mtime_ns, old.ctime_ns, old.ino, old.dev)
            == (
                meta.len(),
                mtime_ns(meta),
                ctime_ns(meta),
                meta.ino(),
                meta.dev(),
            );
        if same
            && self
                .blobs
                .all_stored(&old.content, &mut self.reader.tally)?
        {
            old.seen = true;
            return Ok(Some((old.content.clone(), old.size)));
        }
        Ok(None)
    }

    /// A file read this run: counted, and in the files cache.
    fn remember(&mut self, path: &Path, meta: &std::fs::Metadata, content: &[BlobId], size: u64) {
        self.summary.bytes_read += size;
        let entry = CacheEntry {
            seen: true,
            size,
            mtime_ns: mtime_ns(meta),
            ctime_ns: ctime_ns(meta),
            ino: meta.ino(),
            dev: meta.dev(),
            content: content.to_vec(),
        };
        // A path an earlier run saw, read again: it changed.
        if self
            .cache
            .entries
            .insert(path_key(path).into_owned(), entry)
            .is_some()
        {
            self.summary.files_changed += 1;
            self.summary.bytes_changed += size;
        }
    }

    fn push(&mut self, step: Step) -> Result<()> {
        self.steps.push_back(step);
        self.finish_steps(false)
    }

    /// Finish the steps at the queue's head that are ready. The head's file
    /// is waited for while the queue is at its bounds, and with `all`
    /// every step is finished.
    fn finish_steps(&mut self, all: bool) -> Result<()> {
        while let Some(step) = self.steps.front() {
            if let Step::File(f) = step
                && let Content::Reading(seq) = f.content
            {
                let wait = all || self.reading >= READS_AHEAD || self.steps.len() >= STEPS_AHEAD;
                if !self.receive(seq, wait)? {
                    return Ok(());
                }
            }
            let step = self.steps.pop_front().expect("the head");
            self.finish(step)?;
        }
        Ok(())
    }

    /// Take in the readers' results that have come; with `wait`, until
    /// `seq`'s has. Whether it is here.
    fn receive(&mut self, seq: u64, wait: bool) -> Result<bool> {
        if self.results.contains_key(&seq) {
            return Ok(true);
        }
        let rx = self.read.as_ref().ok_or_else(readers_stopped)?;
        loop {
            let (s, read) = if wait {
                rx.recv().map_err(|_| readers_stopped())?
            } else {
                match rx.try_recv() {
                    Ok(r) => r,
                    Err(crossbeam_channel::TryRecvError::Empty) => return Ok(false),
                    Err(crossbeam_channel::TryRecvError::Disconnected) => {
                        return Err(readers_stopped());
                    }
                }
            };
            self.results.insert(s, read);
            if s == seq {
                return Ok(true);
            }
        }
    }

    fn finish(&mut self, step: Step) -> Result<()> {
        match step {
            Step::Node(n) => self.add(n),
            Step::File(f) => self.finish_file(*f)?,
            Step::Skip(path, e) => self.skip(&path, e),
            Step::Enter => self.open.push(Tree::default()),
            Step::Leave(mut node) => {
                let tree = self.open.pop().expect("a Leave follows its Enter");
                let tally = &mut self.reader.tally;
                node.subtree = Some(self.blobs.store(BlobType::Tree, &tree.encode(), tally)?);
                self.summary.dirs += 1;
                self.add(node);
            }
        }
        Ok(())
    }

    fn add(&mut self, node: Node) {
        self.open
            .last_mut()
            .expect("the root's tree at least")
            .nodes
            .push(node);
    }

    fn finish_file(&mut self, f: QueuedFile) -> Result<()> {
        let QueuedFile {
            mut node,
            path,
            meta,
            content,
        } = f;
        let inode = multi_linked(&meta);
        if let (Some(k), false) = (inode, matches!(content, Content::Linked(..))) {
            // This step was counted in `linking`.
            match self.linking.get_mut(&k) {
                Some(n) if *n > 1 => *n -= 1,
                _ => {
                    self.linking.remove(&k);
                }
            }
        }
        let read = match content {
            Content::Linked(id, content, size) => {
                node.link_id = Some(id);
                FileRead::Read(content, size)
            }
            Content::Cached(content, size) => FileRead::Read(content, size),
            Content::Reading(seq) => {
                self.reading -= 1;
                let read = self.results.remove(&seq).ok_or_else(readers_stopped)??;
                if let FileRead::Read(content, size) = &read {
                    self.remember(&path, &meta, content, *size);
                }
                read
            }
            Content::SameInode => match inode.and_then(|k| self.links.get(&k)) {
                Some((id, content, size)) => {
                    node.link_id = Some(*id);
                    FileRead::Read(content.clone(), *size)
                }
                // The first name could not be read: this one is read
                // here, as a walk reading one file at a time would.
                None => match self.cached(&path, &meta)? {
                    Some((content, size)) => FileRead::Read(content, size),
                    None => {
                        let read = self
                            .reader
                            .read(&path, meta.dev(), meta.ino(), meta.len())?;
                        if let FileRead::Read(content, size) = &read {
                            self.remember(&path, &meta, content, *size);
                        }
                        read
                    }
                },
            },
        };
        let (content, size) = match read {
            FileRead::Read(content, size) => (content, size),
            FileRead::Skip(e) => {
                self.skip(&path, e);
                return Ok(());
            }
        };
        if let (Some(k), None) = (inode, node.link_id) {
            let link_id = self.links.len() as u64 + 1;
            node.link_id = Some(link_id);
            self.links.insert(k, (link_id, content.clone(), size));
        }
        node.content = Some(content);
        node.size = Some(size);
        self.summary.total_bytes += size;
        self.summary.files += 1;
        self.progress.files.fetch_add(1, Ordering::Relaxed);
        self.add(node);
        Ok(())
    }
}
