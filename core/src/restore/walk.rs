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
                        let content = node.content.as_deref().unwrap_or_default();
                        for (i, id) in content.iter().enumerate() {
                            let loc = index.lookup(id).ok_or_else(|| {
                                Error::corrupt(
                                    format!("data blob {id} of {rel}"),
                                    "no index lists it (run `pulih repo repair-index`)",
                                )
                            })?;
                            let raw = placed_len(&loc.entry, i + 1 == content.len(), size, offset)
                                .map_err(|d| {
                                    Error::corrupt(
                                        format!("tree {tree_id}"),
                                        format!("{rel}: data blob {id} {d}"),
                                    )
                                })?;
                            let pp = p.packs.entry(loc.pack).or_insert_with(|| PackPlan {
                                session: loc.session,
                                blobs: HashMap::new(),
                            });
                            pp.blobs
                                .entry(*id)
                                .or_insert_with(|| (loc.entry.clone(), Vec::new()))
                                .1
                                .push(Target {
                                    file: fi,
                                    offset,
                                    len: raw,
                                });
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

/// The length a data blob takes in its file. The index gives it exactly,
/// except for a padded blob (FORMAT.md §4.2): only the last chunk of a file
/// is ever padded (it is shorter than the chunker's minimum), so its length
/// is what the file's size leaves, which must fit its slot. The blob's
/// bytes are checked against it when written.
pub(crate) fn placed_len(
    e: &crate::pack::PackEntry,
    last: bool,
    size: u64,
    offset: u64,
) -> std::result::Result<u64, String> {
    if e.flags & crate::pack::FLAG_PADDED == 0 {
        return Ok(e.raw_len as u64);
    }
    if !last {
        return Err("is padded but not the file's last chunk".into());
    }
    let left = size
        .checked_sub(offset)
        .ok_or_else(|| format!("starts past the file's size {size}"))?;
    if left > crate::pack::max_blob_len(e) as u64 {
        return Err(format!(
            "cannot hold the {left} bytes the file's size leaves for it"
        ));
    }
    Ok(left)
}

#[cfg(test)]
mod tests {
    use super::placed_len;
    use crate::id::BlobId;
    use crate::pack::{BlobType, FLAG_FRAMED, FLAG_PADDED, PackEntry};

    /// A padded blob is placed by what the file's size leaves, only as the
    /// file's last chunk and only if it fits its slot: a tree that says
    /// otherwise is refused while the restore is planned (a blob whose
    /// bytes then differ from the planned length is refused when written).
    #[test]
    fn a_padded_blob_is_placed_only_as_a_files_last_chunk_that_fits_its_slot() {
        let e = PackEntry {
            kind: BlobType::Data,
            flags: FLAG_FRAMED | FLAG_PADDED,
            id: BlobId([1; 32]),
            offset: 0,
            stored_len: 4112,
            raw_len: 256,
            inner: 0,
        };
        assert_eq!(placed_len(&e, true, 131_072 + 9, 131_072), Ok(9));
        assert_eq!(placed_len(&e, true, 252, 0), Ok(252));
        assert!(
            placed_len(&e, true, 253, 0)
                .unwrap_err()
                .contains("cannot hold")
        );
        assert!(
            placed_len(&e, false, 9, 0)
                .unwrap_err()
                .contains("not the file's last")
        );
        assert!(
            placed_len(&e, true, 9, 10)
                .unwrap_err()
                .contains("past the file's size")
        );
        let plain = PackEntry {
            flags: FLAG_FRAMED,
            raw_len: 9,
            ..e
        };
        assert_eq!(placed_len(&plain, false, 0, 0), Ok(9));
    }
}
