//! Restore a snapshot under a target directory (layout: FORMAT.md §7, each
//! backed-up path at its absolute path below the target).
//!
//! Plan first (walk the trees, create directories; then the empty files,
//! on two threads), then fetch what each pack holds of the snapshot as ranges
//! (neighbouring blobs together, at most [`MAX_RANGE`] each, gaps not
//! read), several at once, and write every blob to every place that needs
//! it; metadata last, directories deepest first. Every blob is authenticated and its id re-hashed before a
//! byte of it is written.

use std::collections::{HashMap, HashSet};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use futures::{StreamExt, TryStreamExt};
use serde::Serialize;

use crate::id::{BlobId, PackId, SessionId};
use crate::pack::{self, PackEntry};
use crate::repo::{ListedSnapshot, Reader};
use crate::tree::{Node, NodeKind};
use crate::{Error, Result};

#[derive(Clone, Debug)]
pub struct RestoreOptions {
    /// Snapshot paths (absolute, as backed up) to restore; empty = all.
    pub include: Vec<String>,
    pub concurrency: usize,
}

impl Default for RestoreOptions {
    fn default() -> Self {
        RestoreOptions {
            include: Vec::new(),
            concurrency: 3,
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
}

#[derive(Default)]
pub struct RestoreProgress {
    pub bytes: AtomicU64,
}

struct Target {
    file: usize,
    offset: u64,
}

struct PackPlan {
    session: SessionId,
    blobs: HashMap<BlobId, (PackEntry, Vec<Target>)>,
}

/// One read from a pack: `lo..hi`, holding `blobs`.
struct Range {
    pack: PackId,
    session: SessionId,
    lo: u64,
    hi: u64,
    blobs: Vec<(PackEntry, Vec<Target>)>,
}

/// The most one read fetches (a larger blob, up to the chunker's maximum,
/// is read alone): bounds the memory of a restore to about `concurrency` ×
/// the larger of this and the largest blob, where whole packs (16–64 MiB)
/// took several times more.
const MAX_RANGE: u64 = 1 << 20;
/// Blobs this close in a pack are read in one range, the gap with them.
const MAX_GAP: u64 = 256 << 10;

/// Splits each pack's blobs into ranges, each pack's in offset order (the
/// packs in no particular order).
fn ranges(plan: HashMap<PackId, PackPlan>) -> Vec<Range> {
    let mut out = Vec::new();
    for (pack, pp) in plan {
        let mut blobs: Vec<(PackEntry, Vec<Target>)> = pp.blobs.into_values().collect();
        blobs.sort_by_key(|(e, _)| e.offset);
        let mut cur: Option<Range> = None;
        for (e, targets) in blobs {
            let (lo, hi) = (e.offset as u64, e.offset as u64 + e.stored_len as u64);
            if let Some(r) = &mut cur
                && lo <= r.hi + MAX_GAP
                && hi - r.lo <= MAX_RANGE
            {
                r.hi = r.hi.max(hi);
                r.blobs.push((e, targets));
                continue;
            }
            out.extend(cur.take());
            cur = Some(Range {
                pack,
                session: pp.session,
                lo,
                hi,
                blobs: vec![(e, targets)],
            });
        }
        out.extend(cur);
    }
    out
}

struct Planned {
    path: PathBuf,
    node: Node,
}

enum Selection {
    All,
    Partly,
    None,
}

fn select(rel: &str, include: &[String]) -> Selection {
    if include.is_empty() {
        return Selection::All;
    }
    let mut partly = false;
    for i in include {
        if rel == i || rel.starts_with(&format!("{i}/")) {
            return Selection::All;
        }
        if i.starts_with(&format!("{rel}/")) {
            partly = true;
        }
    }
    if partly {
        Selection::Partly
    } else {
        Selection::None
    }
}

/// A node name as a safe relative path: one component, or (in the root
/// tree) several normal components.
fn safe_rel(name: &[u8], root: bool) -> Result<PathBuf> {
    let p = Path::new(std::ffi::OsStr::from_bytes(name));
    let ok = p.components().all(|c| matches!(c, Component::Normal(_)))
        && (root || p.components().count() == 1);
    if !ok || name.contains(&b'/') && !root {
        return Err(Error::corrupt(
            "tree",
            format!("unsafe node name {:?}", String::from_utf8_lossy(name)),
        ));
    }
    Ok(p.to_owned())
}

/// Records that the restore puts a `kind` at `path`, refusing what would
/// make it write through a symlink the snapshot itself planted: a name
/// that is a symlink (or file) in one node and another kind in another, or
/// a path below a symlink or a file. Overlapping sources (`/srv`
/// and `/srv/data`) legitimately give the same directory or file twice.
fn claim(
    claimed: &mut HashMap<PathBuf, NodeKind>,
    target: &Path,
    path: &Path,
    kind: NodeKind,
    rel: &str,
) -> Result<()> {
    let bad = |why: &str| Err(Error::corrupt("tree", format!("{rel}: {why}")));
    let mut up = path.parent();
    while let Some(a) = up.filter(|a| *a != target) {
        match claimed.get(a) {
            Some(NodeKind::Dir) => break,
            Some(_) => return bad("lies below a file or symlink of the same snapshot"),
            None => {
                claimed.insert(a.to_owned(), NodeKind::Dir);
            }
        }
        up = a.parent();
    }
    match claimed.get(path) {
        None => {
            claimed.insert(path.to_owned(), kind);
            Ok(())
        }
        // The same kind twice (overlapping sources) is harmless, symlinks
        // included: each is made anew and nothing is written through one.
        Some(k) if *k == kind => Ok(()),
        Some(_) => bad("appears twice in the snapshot as different kinds (one a symlink or file)"),
    }
}

/// Creates an empty file at `path`, readable by its owner only until its
/// metadata is set. A name that exists already (an earlier restore into
/// the same target) is removed and the create retried; `create_new`
/// (O_EXCL) never follows a symlink found at the name.
fn create_empty(path: &Path) -> Result<()> {
    let make = || {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map(drop)
    };
    match make() {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            std::fs::remove_file(path).map_err(|e| Error::io(path, e))?;
            make().map_err(|e| Error::io(path, e))
        }
        Err(e) => Err(Error::io(path, e)),
    }
}

/// Makes `path` a directory. One that exists is kept; anything else at the
/// name (a symlink, a file) is removed first, so nothing below is ever
/// written through a symlink found in the target.
fn make_dir(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => {
            std::fs::remove_file(path).map_err(|e| Error::io(path, e))?;
            std::fs::create_dir(path).map_err(|e| Error::io(path, e))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir(path).map_err(|e| Error::io(path, e))
        }
        Err(e) => Err(Error::io(path, e)),
    }
}

fn is_root_user() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
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
    let index = reader.index(space).ok_or_else(|| {
        Error::corrupt(
            format!("snapshot {}", snap.id),
            "no index covers its space (run `pulih repo repair-index`)",
        )
    })?;
    let include: Vec<String> = opts
        .include
        .iter()
        .map(|i| i.trim_matches('/').to_owned())
        .collect();
    std::fs::create_dir_all(target).map_err(|e| Error::io(target, e))?;
    let mut summary = RestoreSummary::default();

    // Plan.
    let mut files: Vec<Planned> = Vec::new();
    let mut dirs: Vec<Planned> = Vec::new();
    let mut links: Vec<Planned> = Vec::new();
    let mut hardlinks: Vec<(PathBuf, PathBuf)> = Vec::new();
    let mut first_link: HashMap<u64, PathBuf> = HashMap::new();
    let mut plan: HashMap<PackId, PackPlan> = HashMap::new();
    let mut claimed: HashMap<PathBuf, NodeKind> = HashMap::new();
    let mut walked: HashSet<PathBuf> = HashSet::new();
    let mut stack = vec![(snap.snapshot.tree, target.to_owned(), String::new(), true)];
    while let Some((tree_id, dir, rel_dir, root)) = stack.pop() {
        let tree = reader.read_tree(space, &tree_id).await?;
        for node in tree.nodes {
            let name = node.name_bytes()?;
            let rel_name = safe_rel(&name, root)?;
            let rel = if rel_dir.is_empty() {
                rel_name.to_string_lossy().into_owned()
            } else {
                format!("{rel_dir}/{}", rel_name.to_string_lossy())
            };
            let sel = select(&rel, &include);
            if matches!(sel, Selection::None)
                || (matches!(sel, Selection::Partly) && node.kind != NodeKind::Dir)
            {
                continue;
            }
            let path = dir.join(&rel_name);
            // Overlapping sources (`/srv` and `/srv/data`) give the same
            // name twice: it is restored once, from its first node (a
            // hard-linked file would otherwise be linked to itself). A
            // directory may be claimed before as an ancestor of a source,
            // so directories count as seen once walked.
            let again = match node.kind {
                NodeKind::Dir => !walked.insert(path.clone()),
                _ => claimed.contains_key(&path),
            };
            claim(&mut claimed, target, &path, node.kind, &rel)?;
            if again {
                continue;
            }
            // Below the root, the parent of every name is `dir`, made before
            // its entries; a source's own name (`srv/data`) may need more.
            if root {
                let above: Vec<&Path> = path
                    .ancestors()
                    .skip(1)
                    .take_while(|a| *a != target)
                    .collect();
                above.into_iter().rev().try_for_each(make_dir)?;
            }
            match node.kind {
                NodeKind::Dir => {
                    make_dir(&path)?;
                    let sub = node.subtree.ok_or_else(|| {
                        Error::corrupt(format!("tree {tree_id}"), "directory without subtree")
                    })?;
                    let (sub_rel, sub_root) = (rel.clone(), false);
                    stack.push((sub, path.clone(), sub_rel, sub_root));
                    if matches!(sel, Selection::All) {
                        summary.dirs += 1;
                        dirs.push(Planned { path, node });
                    }
                }
                NodeKind::Symlink => {
                    let t = node.target_bytes()?;
                    let _ = std::fs::remove_file(&path);
                    std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(&t), &path)
                        .map_err(|e| Error::io(&path, e))?;
                    summary.symlinks += 1;
                    links.push(Planned { path, node });
                }
                NodeKind::File => {
                    if let Some(l) = node.link_id {
                        if let Some(first) = first_link.get(&l) {
                            hardlinks.push((first.clone(), path));
                            summary.files += 1;
                            continue;
                        }
                        first_link.insert(l, path.clone());
                    }
                    let size = node.size.unwrap_or(0);
                    let fi = files.len();
                    let mut offset = 0u64;
                    for id in node.content.as_deref().unwrap_or_default() {
                        let loc = index.lookup(id).ok_or_else(|| {
                            Error::corrupt(
                                format!("data blob {id} of {rel}"),
                                "no index lists it (run `pulih repo repair-index`)",
                            )
                        })?;
                        let raw = loc.entry.raw_len as u64;
                        let pp = plan.entry(loc.pack).or_insert_with(|| PackPlan {
                            session: loc.session,
                            blobs: HashMap::new(),
                        });
                        pp.blobs
                            .entry(*id)
                            .or_insert_with(|| (loc.entry.clone(), Vec::new()))
                            .1
                            .push(Target { file: fi, offset });
                        offset += raw;
                    }
                    if offset != size {
                        return Err(Error::corrupt(
                            format!("tree {tree_id}"),
                            format!("{rel}: content length {offset} differs from size {size}"),
                        ));
                    }
                    summary.files += 1;
                    summary.bytes += size;
                    files.push(Planned { path, node });
                }
            }
        }
    }

    let phase =
        |what: &str| tracing::debug!(ms = started.elapsed().as_millis() as u64, "restore: {what}");
    phase("planned");
    // The files, empty (every byte of each is written below: its blobs'
    // lengths add up to its size, checked above).
    let files = Arc::new(files);
    let half = files.len().div_ceil(2);
    let mut makers = Vec::new();
    for part in [0..half, half..files.len()] {
        let files = files.clone();
        makers.push(tokio::task::spawn_blocking(move || {
            files[part].iter().try_for_each(|f| create_empty(&f.path))
        }));
    }
    // Both finish before any error returns (a retry must not race them).
    for m in futures::future::join_all(makers).await {
        m.map_err(|e| Error::Task(e.to_string()))??;
    }
    phase("files created");

    // Content: each needed range of each pack fetched once, in parallel.
    let keys = reader.space_keys(space);
    futures::stream::iter(ranges(plan))
        .map(|r| {
            let (files, keys, progress) = (files.clone(), keys.clone(), progress.clone());
            async move {
                let Range {
                    pack: pack_id,
                    session,
                    lo,
                    hi,
                    blobs,
                } = r;
                let session = reader.session(session).await?;
                let span = reader
                    .repo
                    .store
                    .get_range(&pack::pack_key_name(&pack_id), lo..hi)
                    .await?;
                let pk = session.pack_key(&pack_id);
                tokio::task::spawn_blocking(move || -> Result<()> {
                    for (entry, targets) in &blobs {
                        let s = (entry.offset as u64 - lo) as usize;
                        let ct = span.get(s..s + entry.stored_len as usize).ok_or_else(|| {
                            Error::corrupt(
                                format!("pack {pack_id}"),
                                format!(
                                    "blob {} lies beyond the end of the pack (truncated)",
                                    entry.id
                                ),
                            )
                        })?;
                        let raw = pack::open_blob(&pk, &pack_id, entry, ct, &keys)?;
                        for t in targets {
                            let path = &files[t.file].path;
                            let f = std::fs::OpenOptions::new()
                                .write(true)
                                .custom_flags(libc::O_NOFOLLOW)
                                .open(path)
                                .map_err(|e| Error::io(path, e))?;
                            // In pieces: see `storage::LOCAL_WRITE`.
                            let mut at = t.offset;
                            for piece in raw.chunks(crate::storage::LOCAL_WRITE) {
                                f.write_all_at(piece, at).map_err(|e| Error::io(path, e))?;
                                at += piece.len() as u64;
                            }
                        }
                        progress
                            .bytes
                            .fetch_add(raw.len() as u64 * targets.len() as u64, Ordering::Relaxed);
                    }
                    Ok(())
                })
                .await
                .map_err(|e| Error::Task(e.to_string()))?
            }
        })
        // A remote store answers each read a round trip later: more reads
        // in flight keep the link busy (each holds about one blob).
        .buffer_unordered(if reader.repo.store.local_dir().is_some() {
            opts.concurrency.max(1)
        } else {
            opts.concurrency.max(8)
        })
        .try_collect::<()>()
        .await?;
    phase("content written");

    for (first, path) in hardlinks {
        let _ = std::fs::remove_file(&path);
        std::fs::hard_link(&first, &path).map_err(|e| Error::io(&path, e))?;
    }

    // Metadata: files and links, then directories deepest first.
    let root = is_root_user();
    for p in files.iter().chain(links.iter()) {
        set_meta(&p.path, &p.node, root)?;
    }
    dirs.sort_by_key(|d| std::cmp::Reverse(d.path.components().count()));
    for d in &dirs {
        set_meta(&d.path, &d.node, root)?;
    }
    phase("metadata set");
    summary.duration_s = started.elapsed().as_secs_f64();
    Ok(summary)
}

fn set_meta(path: &Path, node: &Node, root: bool) -> Result<()> {
    if root {
        std::os::unix::fs::lchown(path, Some(node.uid), Some(node.gid))
            .map_err(|e| Error::io(path, e))?;
    }
    let mtime = filetime::FileTime::from_unix_time(
        node.mtime_ns.div_euclid(1_000_000_000),
        node.mtime_ns.rem_euclid(1_000_000_000) as u32,
    );
    if node.kind == NodeKind::Symlink {
        filetime::set_symlink_file_times(path, mtime, mtime).map_err(|e| Error::io(path, e))?;
    } else {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(node.mode))
            .map_err(|e| Error::io(path, e))?;
        filetime::set_file_times(path, mtime, mtime).map_err(|e| Error::io(path, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod claim_tests {
    use super::*;

    fn run(nodes: &[(&str, NodeKind)]) -> Result<()> {
        let target = Path::new("/restore");
        let mut claimed = HashMap::new();
        for (rel, kind) in nodes {
            claim(&mut claimed, target, &target.join(rel), *kind, rel)?;
        }
        Ok(())
    }

    #[test]
    fn a_snapshot_cannot_make_the_restore_write_through_its_own_symlinks() {
        use NodeKind::*;
        // A symlink, then a file of the same name (its content would follow it).
        assert!(run(&[("f", Symlink), ("f", File)]).is_err());
        assert!(run(&[("f", File), ("f", Symlink)]).is_err());
        assert!(run(&[("d", Symlink), ("d", Dir)]).is_err());
        // A root name below a symlink of the same snapshot, either order.
        assert!(run(&[("x", Symlink), ("x/cron.d/evil", File)]).is_err());
        assert!(run(&[("x/cron.d/evil", File), ("x", Symlink)]).is_err());
        // Overlapping sources (/srv and /srv/data) are fine.
        assert!(
            run(&[
                ("srv", Dir),
                ("srv/data", Dir),
                ("srv/data/a", File),
                ("srv/data", Dir),
                ("srv/data/a", File),
                ("srv/link", Symlink),
                ("srv/link", Symlink),
            ])
            .is_ok()
        );
    }
}

#[cfg(test)]
mod range_tests {
    use super::*;

    fn entry(offset: u32, len: u32) -> PackEntry {
        PackEntry {
            kind: pack::BlobType::Data,
            flags: 0,
            id: BlobId::random(),
            offset,
            stored_len: len,
            raw_len: len,
        }
    }

    fn plan_of(pack: PackId, blobs: &[(PackEntry, usize)]) -> HashMap<PackId, PackPlan> {
        let mut plan = HashMap::new();
        plan.insert(
            pack,
            PackPlan {
                session: SessionId::random(),
                blobs: blobs
                    .iter()
                    .map(|(e, n)| {
                        let targets = (0..*n).map(|i| Target { file: i, offset: 0 }).collect();
                        (e.id, (e.clone(), targets))
                    })
                    .collect(),
            },
        );
        plan
    }

    #[test]
    fn a_packs_blobs_are_read_in_ranges_of_neighbours_up_to_the_limit() {
        const M: u32 = 1 << 20;
        const G: u32 = MAX_GAP as u32;
        let blobs = [
            // Adjacent: one range of exactly 1 MiB.
            (entry(0, M / 2), 1),
            (entry(M / 2, M / 2), 3),
            // A gap of exactly MAX_GAP, but the range would pass 1 MiB.
            (entry(M + G, 1000), 1),
            // Within MAX_GAP of the one before: the same range.
            (entry(M + G + 1000 + G, 10), 1),
            // MAX_GAP + 1 after it: a new range.
            (entry(M + G + 1000 + G + 10 + G + 1, 10), 1),
            // Larger than MAX_RANGE: read alone.
            (entry(3 * M, 3 * M), 2),
        ];
        let got = ranges(plan_of(PackId::random(), &blobs));
        let spans: Vec<(u64, u64, usize)> =
            got.iter().map(|r| (r.lo, r.hi, r.blobs.len())).collect();
        let (m, g) = (M as u64, G as u64);
        assert_eq!(
            spans,
            [
                (0, m, 2),
                (m + g, m + g + 1000 + g + 10, 2),
                (m + 3 * g + 1011, m + 3 * g + 1021, 1),
                (3 * m, 6 * m, 1),
            ]
        );
        // Every blob once, with all its targets.
        let mut seen: Vec<(BlobId, usize)> = got
            .iter()
            .flat_map(|r| r.blobs.iter().map(|(e, t)| (e.id, t.len())))
            .collect();
        let mut want: Vec<(BlobId, usize)> = blobs.iter().map(|(e, n)| (e.id, *n)).collect();
        seen.sort();
        want.sort();
        assert_eq!(seen, want);
    }
}
