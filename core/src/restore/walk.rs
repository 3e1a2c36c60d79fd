//! The restore's plan: walk the snapshot's trees a level at a time (each
//! level's trees loaded at once, see [`crate::trees`]), make the
//! directories and symlinks, and list every file and, per pack, the blobs
//! the files need and where each goes.

use std::collections::{HashMap, HashSet};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::RestoreSummary;
use super::fs::{claim, make_dir, safe_rel};
use super::ranges::{PackPlan, Target};
use crate::id::{BlobId, PackId, SpaceId};
use crate::repo::Reader;
use crate::tree::{Node, NodeKind};
use crate::trees::TreeLoader;
use crate::{Error, Result};

pub(super) struct Planned {
    pub(super) path: PathBuf,
    pub(super) node: Node,
}

/// What the walk found and made.
#[derive(Default)]
pub(super) struct Plan {
    pub(super) files: Vec<Planned>,
    pub(super) dirs: Vec<Planned>,
    pub(super) links: Vec<Planned>,
    /// (first path, its other name)
    pub(super) hardlinks: Vec<(PathBuf, PathBuf)>,
    pub(super) packs: HashMap<PackId, PackPlan>,
    pub(super) summary: RestoreSummary,
    /// Tree packs fetched, for the log.
    pub(super) tree_fetches: usize,
}

pub(super) enum Selection {
    All,
    Partly,
    None,
}

pub(super) fn select(rel: &str, include: &[String]) -> Selection {
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

/// A directory still to walk: its tree, where it goes, its path in the
/// snapshot, and whether it is the snapshot's root tree.
struct Pending {
    tree: BlobId,
    dir: PathBuf,
    rel: String,
    root: bool,
}

pub(super) async fn plan(
    loader: &mut TreeLoader<'_>,
    reader: &Reader,
    space: SpaceId,
    root_tree: BlobId,
    target: &Path,
    include: &[String],
) -> Result<Plan> {
    let index = reader.index(space).ok_or_else(|| {
        Error::corrupt(
            format!("space {space}"),
            "no index covers it (run `pulih repo repair-index`)",
        )
    })?;
    let mut p = Plan::default();
    let mut first_link: HashMap<u64, PathBuf> = HashMap::new();
    let mut claimed: HashMap<PathBuf, NodeKind> = HashMap::new();
    let mut walked: HashSet<PathBuf> = HashSet::new();
    let mut level = vec![Pending {
        tree: root_tree,
        dir: target.to_owned(),
        rel: String::new(),
        root: true,
    }];
    // Breadth first: the next level's trees are loaded together. Each
    // level's directories are made before the next level's names in them.
    // What this expands to was measured and bounded before (`measure`).
    while !level.is_empty() {
        let ids: Vec<BlobId> = level.iter().map(|d| d.tree).collect();
        let mut trees = loader.load(&ids).await?;
        let mut next = Vec::new();
        for Pending {
            tree: tree_id,
            dir,
            rel: rel_dir,
            root,
        } in level
        {
            let tree = match trees.get(&tree_id) {
                Some(Ok(t)) => t.clone(),
                _ => return Err(trees.remove(&tree_id).expect("each id loaded").unwrap_err()),
            };
            for node in &tree.nodes {
                let name = node.name_bytes()?;
                let rel_name = safe_rel(&name, root)?;
                let rel = if rel_dir.is_empty() {
                    rel_name.to_string_lossy().into_owned()
                } else {
                    format!("{rel_dir}/{}", rel_name.to_string_lossy())
                };
                let sel = select(&rel, include);
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
                // Below the root, the parent of every name is `dir`, made
                // before its entries; a source's own name (`srv/data`) may
                // need more.
                if root {
                    let above: Vec<&Path> = path
                        .ancestors()
                        .skip(1)
                        .take_while(|a| *a != target)
                        .collect();
                    above.into_iter().rev().try_for_each(make_dir)?;
                }
                let node = node.clone();
                match node.kind {
                    NodeKind::Dir => {
                        make_dir(&path)?;
                        let sub = node.subtree.ok_or_else(|| {
                            Error::corrupt(format!("tree {tree_id}"), "directory without subtree")
                        })?;
                        next.push(Pending {
                            tree: sub,
                            dir: path.clone(),
                            rel: rel.clone(),
                            root: false,
                        });
                        if matches!(sel, Selection::All) {
                            p.summary.dirs += 1;
                            p.dirs.push(Planned { path, node });
                        }
                    }
                    NodeKind::Symlink => {
                        let t = node.target_bytes()?;
                        let _ = std::fs::remove_file(&path);
                        std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(&t), &path)
                            .map_err(|e| Error::io(&path, e))?;
                        p.summary.symlinks += 1;
                        p.links.push(Planned { path, node });
                    }
                    NodeKind::File => {
                        if let Some(l) = node.link_id {
                            if let Some(first) = first_link.get(&l) {
                                p.hardlinks.push((first.clone(), path));
                                p.summary.files += 1;
                                continue;
                            }
                            first_link.insert(l, path.clone());
                        }
                        let size = node.size.unwrap_or(0);
                        let fi = p.files.len();
                        let mut offset = 0u64;
                        for id in node.content.as_deref().unwrap_or_default() {
                            let loc = index.lookup(id).ok_or_else(|| {
                                Error::corrupt(
                                    format!("data blob {id} of {rel}"),
                                    "no index lists it (run `pulih repo repair-index`)",
                                )
                            })?;
                            let raw = loc.entry.raw_len as u64;
                            let pp = p.packs.entry(loc.pack).or_insert_with(|| PackPlan {
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
                        p.summary.files += 1;
                        p.summary.bytes += size;
                        p.files.push(Planned { path, node });
                    }
                }
            }
        }
        level = next;
    }
    p.tree_fetches = loader.fetches;
    Ok(p)
}
