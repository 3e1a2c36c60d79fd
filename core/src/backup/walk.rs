//! Walk: the walker (files cache, read, chunk, hash, dedup; trees built
//! bottom-up), fed by the lister.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::chunker::Chunker;
use crate::files_cache::{CacheEntry, FilesCache};
use crate::id::{BlobId, PackId};
use crate::index::SpaceIndex;
use crate::keys::SpaceKeys;
use crate::pack::BlobType;
use crate::snapshot::Summary;
use crate::tree::{Node, NodeKind, Tree};
use crate::{Error, Result};

use super::list::{LISTED_AHEAD, Listed, list_sources};
use super::*;

pub(super) struct Walker {
    pub(super) keys: SpaceKeys,
    pub(super) chunker: Chunker,
    pub(super) index: Arc<SpaceIndex>,
    pub(super) seen: HashSet<BlobId>,
    /// Packs of earlier runs holding blobs this snapshot names.
    pub(super) used_packs: HashSet<PackId>,
    pub(super) tx: crossbeam_channel::Sender<Job>,
    pub(super) spare: crossbeam_channel::Receiver<Vec<u8>>,
    /// The files cache, updated in place: entries of files seen this run
    /// are marked, the rest dropped when the walk ends.
    pub(super) cache: FilesCache,
    pub(super) summary: Summary,
    pub(super) errors: Vec<String>,
    /// Hard links seen this run: (dev, inode) → (link id, content, size).
    pub(super) links: HashMap<(u64, u64), (u64, Vec<BlobId>, u64)>,
    pub(super) buf: Vec<u8>,
    pub(super) progress: Arc<Progress>,
    /// Where the recorded paths are read from (None: `/`).
    pub(super) root: Option<PathBuf>,
    /// The lister's findings while the walk runs (see [`list_sources`]).
    pub(super) listed: Option<crossbeam_channel::Receiver<Listed>>,
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

impl Walker {
    pub(super) fn run(mut self, paths: &[PathBuf]) -> Result<WalkResult> {
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
