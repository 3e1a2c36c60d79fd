//! What a restore of a snapshot expands to, from its trees alone, before
//! anything is written (issue 20, finding 4). A tree can name one subtree
//! many times (identical directories share one), so a few kilobytes of
//! trees can expand to gigabytes and millions of names: neither the
//! snapshot's own summary (written by the server) nor the size of its
//! trees says what a restore will write. Each distinct tree is loaded and
//! summed once, so the memory here grows with the distinct trees, not with
//! the expansion. A hard-linked file counts once, as the restore writes it.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use super::walk::{Selection, select};
use crate::id::{BlobId, SpaceId};
use crate::repo::Reader;
use crate::tree::{Node, NodeKind, Tree};
use crate::trees::{Loaded, TreeLoader};
use crate::{Error, Result};

/// A snapshot's size as a restore expands it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Expanded {
    /// Names (files, directories, symlinks), once for every place each
    /// appears: what the restore's plan holds in memory.
    pub entries: u64,
    /// File bytes written: every file where it appears, a hard-linked
    /// file once (at the largest size any of its names claims).
    pub bytes: u64,
    /// Blob references of the files, once for every place each file
    /// appears: the plan holds one target per reference.
    pub refs: u64,
}

/// One distinct tree's own names, unlinked file bytes and blob
/// references, and its subtrees (once per directory naming each).
struct Sums {
    entries: u64,
    bytes: u64,
    refs: u64,
    subs: Vec<BlobId>,
}

fn tree_of<'t>(trees: &'t HashMap<BlobId, Loaded>, id: &BlobId) -> Result<&'t Tree> {
    match trees.get(id) {
        Some(Ok(t)) => Ok(t.as_ref()),
        Some(Err(e)) => Err(Error::corrupt(format!("tree {id}"), e.to_string())),
        None => Err(Error::corrupt(format!("tree {id}"), "not loaded")),
    }
}

fn subtree(node: &Node, parent: &BlobId) -> Result<BlobId> {
    node.subtree
        .ok_or_else(|| Error::corrupt(format!("tree {parent}"), "directory without subtree"))
}

/// What restoring the parts of the snapshot with root tree `root` that
/// `include` selects (all when empty; paths as [`super::RestoreOptions`]
/// takes them, without the leading `/`) would write.
pub async fn measure(
    reader: &Reader,
    space: SpaceId,
    root: BlobId,
    include: &[String],
) -> Result<Expanded> {
    measure_with(&mut TreeLoader::of(reader, space), root, include).await
}

/// [`measure`] with the caller's loader: a restore's walk then finds the
/// tree packs this pass fetched still in the loader's cache.
pub(super) async fn measure_with(
    loader: &mut TreeLoader<'_>,
    root: BlobId,
    include: &[String],
) -> Result<Expanded> {
    let mut total = Expanded::default();
    // Hard-link id → its file's size, counted once.
    let mut linked: HashMap<u64, u64> = HashMap::new();
    let mut file = |node: &Node, bytes: &mut u64, refs: &mut u64| {
        let size = node.size.unwrap_or(0);
        *refs = refs.saturating_add(node.content.as_ref().map_or(0, |c| c.len() as u64));
        match node.link_id {
            Some(l) => {
                let s = linked.entry(l).or_insert(size);
                *s = (*s).max(size);
            }
            None => *bytes = bytes.saturating_add(size),
        }
    };

    // From the root down to what `include` selects whole: here a name's
    // path decides, so these trees are walked by path.
    let mut whole: Vec<BlobId> = Vec::new();
    let mut level: Vec<(BlobId, String)> = vec![(root, String::new())];
    while !level.is_empty() {
        let ids: Vec<BlobId> = level.iter().map(|(t, _)| *t).collect();
        let trees = loader.load(&ids).await?;
        let mut next = Vec::new();
        for (t, dir) in level {
            for node in &tree_of(&trees, &t)?.nodes {
                let name = String::from_utf8_lossy(&node.name_bytes()?).into_owned();
                let rel = if dir.is_empty() {
                    name
                } else {
                    format!("{dir}/{name}")
                };
                match select(&rel, include) {
                    Selection::None => {}
                    Selection::Partly => {
                        if node.kind == NodeKind::Dir {
                            next.push((subtree(node, &t)?, rel));
                        }
                    }
                    Selection::All => {
                        total.entries = total.entries.saturating_add(1);
                        match node.kind {
                            NodeKind::Dir => whole.push(subtree(node, &t)?),
                            NodeKind::File => file(node, &mut total.bytes, &mut total.refs),
                            NodeKind::Symlink => {}
                        }
                    }
                }
            }
        }
        level = next;
    }

    // Every distinct tree below, loaded and summed once.
    let mut sums: HashMap<BlobId, Sums> = HashMap::new();
    let mut seen: HashSet<BlobId> = whole.iter().copied().collect();
    let mut level: Vec<BlobId> = seen.iter().copied().collect();
    while !level.is_empty() {
        let trees = loader.load(&level).await?;
        let mut next = Vec::new();
        for t in &level {
            let tree = tree_of(&trees, t)?;
            let mut s = Sums {
                entries: tree.nodes.len() as u64,
                bytes: 0,
                refs: 0,
                subs: Vec::new(),
            };
            for node in &tree.nodes {
                match node.kind {
                    NodeKind::Dir => {
                        let sub = subtree(node, t)?;
                        s.subs.push(sub);
                        if seen.insert(sub) {
                            next.push(sub);
                        }
                    }
                    NodeKind::File => file(node, &mut s.bytes, &mut s.refs),
                    NodeKind::Symlink => {}
                }
            }
            sums.insert(*t, s);
        }
        level = next;
    }

    let mut memo: HashMap<BlobId, [u64; 3]> = HashMap::new();
    for w in &whole {
        let [e, b, r] = expand(*w, &sums, &mut memo)?;
        total.entries = total.entries.saturating_add(e);
        total.bytes = total.bytes.saturating_add(b);
        total.refs = total.refs.saturating_add(r);
    }
    total.bytes = linked
        .values()
        .fold(total.bytes, |a, b| a.saturating_add(*b));
    Ok(total)
}

/// The expanded [entries, unlinked bytes, refs] below tree `root`, each
/// distinct tree computed once (post-order, without recursion: a
/// snapshot's depth is the writer's to choose).
fn expand(
    root: BlobId,
    sums: &HashMap<BlobId, Sums>,
    memo: &mut HashMap<BlobId, [u64; 3]>,
) -> Result<[u64; 3]> {
    let mut stack: Vec<(BlobId, usize)> = vec![(root, 0)];
    let mut open: HashSet<BlobId> = HashSet::from([root]);
    while let Some(&(t, i)) = stack.last() {
        if memo.contains_key(&t) {
            open.remove(&t);
            stack.pop();
            continue;
        }
        let s = &sums[&t];
        if let Some(&c) = s.subs.get(i) {
            stack.last_mut().expect("not empty").1 += 1;
            if !memo.contains_key(&c) {
                // Ids are keyed hashes of the trees' bytes, so a tree
                // cannot contain itself; a cycle means the index lies.
                if !open.insert(c) {
                    return Err(Error::corrupt(
                        format!("tree {c}"),
                        "contains itself (a cycle of subtrees)",
                    ));
                }
                stack.push((c, 0));
            }
            continue;
        }
        let mut sum = [s.entries, s.bytes, s.refs];
        for c in &s.subs {
            for (a, b) in sum.iter_mut().zip(memo[c]) {
                *a = a.saturating_add(b);
            }
        }
        memo.insert(t, sum);
        open.remove(&t);
        stack.pop();
    }
    Ok(memo[&root])
}
