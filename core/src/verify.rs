//! `verify`: check the repository's structure and, with `read_data`, read
//! and authenticate every blob of a share of the packs. `repair_index`:
//! rebuild the index from the packs' own headers.

use std::collections::{HashMap, HashSet};

use futures::StreamExt;
use rand::seq::SliceRandom;
use serde::Serialize;

use crate::id::{BlobId, IndexId, PackId, SnapshotId, SpaceId};
use crate::index::{IndexFile, IndexPack};
use crate::pack::{self, TRAILER_LEN};
use crate::repo::Reader;
use crate::snapshot::Snapshot;
use crate::trees::TreeLoader;
use crate::{Error, Result};

#[derive(Debug, Default, Serialize)]
pub struct VerifyReport {
    pub snapshots: usize,
    pub trees: usize,
    pub packs: usize,
    pub packs_read: usize,
    pub blobs_read: usize,
    pub unindexed_packs: usize,
    /// Each problem names the object (pack, blob, snapshot, index) and what is wrong.
    pub problems: Vec<String>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// `read_data_percent`: None = structure only; Some(p) = read p % of the packs.
pub async fn verify(reader: &Reader, read_data_percent: Option<f64>) -> Result<VerifyReport> {
    let mut r = VerifyReport::default();
    for (id, e) in &reader.indexes.damaged {
        r.problems.push(format!("index {id}: {e}"));
    }
    // Bindings (FORMAT.md §13): each signed with the binding key; a space
    // bound to two servers counts for neither.
    let verifier = crate::bindings::BindingSigner::of(&reader.keys.master).verifier();
    let (list, unreadable) = crate::bindings::read(&reader.repo.store, &verifier).await?;
    for u in unreadable {
        r.problems.push(format!("binding {u}"));
    }
    for (space, servers) in crate::bindings::Bindings::of(list).conflicts {
        r.problems.push(format!(
            "space {} is bound to more than one server ({}): it counts for none",
            space.to_hex(),
            servers.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    let packs = reader.repo.list_packs().await?;
    // Every indexed pack exists and is long enough for its blobs.
    let mut indexed: Vec<(SpaceId, PackId)> = Vec::new();
    for (space, idx) in &reader.indexes.spaces {
        for (pack, _) in idx.packs() {
            indexed.push((*space, *pack));
        }
    }
    let mut blobs_end: HashMap<PackId, u64> = HashMap::new();
    r.packs = indexed.len();
    r.unindexed_packs = packs
        .keys()
        .filter(|p| !reader.indexes.indexed_packs.contains(p))
        .count();

    // Walk every snapshot's trees; every referenced blob must be indexed and
    // its pack present.
    let snaps = reader.repo.list_ids(crate::layout::SNAPSHOTS).await?;
    r.snapshots = snaps.len();
    let mut seen_trees: HashSet<(SpaceId, BlobId)> = HashSet::new();
    let mut seen_data: HashSet<(SpaceId, BlobId)> = HashSet::new();
    let mut roots: HashMap<SpaceId, Vec<(BlobId, SnapshotId, String)>> = HashMap::new();
    for (sid, _) in snaps {
        let sid: SnapshotId = sid;
        match read_snapshot(reader, &sid).await {
            Ok((space, snap)) => {
                roots
                    .entry(space)
                    .or_default()
                    .push((snap.tree, sid, String::from("/")));
            }
            Err(e) => r.problems.push(format!("snapshot {sid}: {e}")),
        }
    }
    // Each space's trees a level at a time, every snapshot's together
    // (see `trees`); a tree shared by snapshots is checked once, under the
    // first that reached it.
    for (space, level) in roots {
        let idx = reader.index(space);
        let mut loader = TreeLoader::of(reader, space);
        let mut level: Vec<_> = level
            .into_iter()
            .filter(|(t, _, _)| seen_trees.insert((space, *t)))
            .collect();
        while !level.is_empty() {
            r.trees += level.len();
            level.retain(|(tree_id, sid, path)| {
                let indexed = idx.and_then(|i| i.lookup(tree_id)).is_some();
                if !indexed {
                    r.problems.push(format!(
                        "snapshot {sid}: tree blob {tree_id} of {path} is in no index"
                    ));
                }
                indexed
            });
            let ids: Vec<BlobId> = level.iter().map(|(t, _, _)| *t).collect();
            let mut trees = loader.load(&ids).await?;
            let mut next = Vec::new();
            for (tree_id, sid, path) in level {
                let tree = match trees.remove(&tree_id).expect("each id loaded") {
                    Ok(t) => t,
                    Err(e) => {
                        r.problems
                            .push(format!("snapshot {sid}: tree {tree_id} ({path}): {e}"));
                        continue;
                    }
                };
                for node in &tree.nodes {
                    let name = node
                        .name
                        .clone()
                        .unwrap_or_else(|| node.name_hex.clone().unwrap_or_default());
                    let child = format!(
                        "{}{}{name}",
                        path,
                        if path.ends_with('/') { "" } else { "/" }
                    );
                    if let Some(sub) = node.subtree
                        && seen_trees.insert((space, sub))
                    {
                        next.push((sub, sid, child.clone()));
                    }
                    if let Some(d) = idx.and_then(|i| file_layout(node, i)) {
                        r.problems.push(format!("snapshot {sid}: {child}: {d}"));
                    }
                    for id in node.content.iter().flatten() {
                        if !seen_data.insert((space, *id)) {
                            continue;
                        }
                        match idx.and_then(|i| i.lookup(id)) {
                            None => r.problems.push(format!(
                                "snapshot {sid}: data blob {id} of {child} is in no index"
                            )),
                            Some(loc) => {
                                let end = loc.entry.offset as u64 + loc.entry.stored_len as u64;
                                let e = blobs_end.entry(loc.pack).or_default();
                                *e = (*e).max(end);
                            }
                        }
                    }
                }
            }
            level = next;
        }
    }
    for (_, pack) in &indexed {
        match packs.get(pack) {
            None => r
                .problems
                .push(format!("pack {pack}: missing (an index lists it)")),
            Some(size) => {
                let need = blobs_end.get(pack).copied().unwrap_or(0) + TRAILER_LEN as u64;
                if *size < need {
                    r.problems.push(format!(
                        "pack {pack}: truncated ({size} bytes, its blobs need at least {need})"
                    ));
                }
            }
        }
    }

    // Read data.
    if let Some(pct) = read_data_percent {
        let mut chosen: Vec<(SpaceId, PackId)> = indexed
            .into_iter()
            .filter(|(_, p)| packs.contains_key(p))
            .collect();
        chosen.shuffle(&mut rand::thread_rng());
        let n = ((chosen.len() as f64) * pct.clamp(0.0, 100.0) / 100.0).ceil() as usize;
        chosen.truncate(n);
        r.packs_read = chosen.len();
        // Whole packs (~16 MiB each) held while checked: from an object
        // store the number in flight is measured as the reads go, up to 8.
        let mut window = if reader.repo.store.local_dir().is_some() {
            crate::inflight::Window::fixed(4)
        } else {
            crate::inflight::Window::new(4, 8)
        };
        let mut todo = chosen.into_iter();
        let mut running = futures::stream::FuturesUnordered::new();
        loop {
            while running.len() < window.limit() {
                let Some((space, pack)) = todo.next() else {
                    break;
                };
                running.push(read_pack(reader, space, pack));
            }
            let Some((blobs, bytes, problems)) = running.next().await else {
                break;
            };
            window.done(bytes);
            r.blobs_read += blobs;
            r.problems.extend(problems);
        }
    }
    r.problems.sort();
    Ok(r)
}

/// What a restore would refuse in a file's content list (see
/// `restore::walk`): a padded blob that is not the file's last chunk or
/// cannot hold what the size leaves, or lengths that do not add up to the
/// size. Blobs no index lists are reported on their own.
fn file_layout(node: &crate::tree::Node, idx: &crate::index::SpaceIndex) -> Option<String> {
    if node.kind != crate::tree::NodeKind::File {
        return None;
    }
    let size = node.size.unwrap_or(0);
    let content = node.content.as_deref().unwrap_or_default();
    if content.is_empty() {
        // A hard link's later names are restored from its first.
        return (size != 0 && node.link_id.is_none())
            .then(|| format!("content length 0 differs from size {size}"));
    }
    let mut offset = 0u64;
    for (i, id) in content.iter().enumerate() {
        let loc = idx.lookup(id)?;
        match crate::restore::placed_len(&loc.entry, i + 1 == content.len(), size, offset) {
            Ok(n) => offset += n,
            Err(d) => return Some(format!("data blob {id} {d}")),
        }
    }
    (offset != size).then(|| format!("content length {offset} differs from size {size}"))
}

async fn read_snapshot(reader: &Reader, id: &SnapshotId) -> Result<(SpaceId, Snapshot)> {
    let bytes = reader
        .repo
        .store
        .get(&crate::snapshot::snapshot_key_name(id))
        .await?;
    let space = Snapshot::space_of(&bytes, id)?;
    Ok((
        space,
        Snapshot::decode(&bytes, &reader.space_keys(space), id)?,
    ))
}

/// Download one pack; check its header against the index and every blob.
async fn read_pack(reader: &Reader, space: SpaceId, pack: PackId) -> (usize, u64, Vec<String>) {
    let bytes = match reader.repo.store.get(&pack::pack_key_name(&pack)).await {
        Ok(b) => b,
        Err(e) => return (0, 0, vec![format!("pack {pack}: {e}")]),
    };
    let keys = reader.space_keys(space);
    let header = pack::parse_trailer(&pack, &bytes).and_then(|t| {
        let hend = bytes.len() - TRAILER_LEN;
        let hstart = hend
            .checked_sub(t.header_len as usize)
            .ok_or_else(|| Error::corrupt(format!("pack {pack}"), "header longer than the pack"))?;
        if t.space != space {
            return Err(Error::corrupt(
                format!("pack {pack}"),
                "trailer names another space than its index",
            ));
        }
        pack::decrypt_header(&keys, &pack, &bytes[hstart..hend])
    });
    let header = match header {
        Ok(h) => h,
        Err(e) => return (0, 0, vec![format!("pack {pack}: {e}")]),
    };
    let session = match reader.session(header.session).await {
        Ok(s) => s,
        Err(e) => return (0, 0, vec![format!("pack {pack}: {e}")]),
    };
    let idx = reader.index(space);
    let pk = session.pack_key(&pack);
    let indexed: Vec<Option<crate::index::Location>> = header
        .entries
        .iter()
        .map(|e| idx.and_then(|i| i.lookup(&e.id)))
        .collect();
    let len = bytes.len() as u64;
    // Opening every unit (a blob, or a frame once for all its blobs) is
    // the work: on the blocking pool.
    let checked = tokio::task::spawn_blocking(move || {
        let mut problems = Vec::new();
        for (e, loc) in header.entries.iter().zip(indexed) {
            if let Some(loc) = loc
                && loc.pack == pack
                && loc.entry != *e
            {
                problems.push(format!(
                    "pack {pack}: blob {}: index entry differs from the pack header",
                    e.id
                ));
            }
        }
        for unit in pack::units(&header.entries, |e| e) {
            let first = &unit[0];
            let (s, end) = (
                first.offset as usize,
                first.offset as usize + first.stored_len as usize,
            );
            let opened = match bytes.get(s..end) {
                None => Err(Error::corrupt(
                    format!("pack {pack}"),
                    "beyond the end of the pack",
                )),
                Some(ct) => pack::Unit::open(&pk, &pack, first, ct, pack::need_of(unit)),
            };
            for e in unit {
                let blob = opened
                    .as_ref()
                    .map_err(|err| err.to_string())
                    .and_then(|u| u.blob(&pack, e, &keys).map_err(|err| err.to_string()));
                if let Err(err) = blob {
                    problems.push(format!(
                        "pack {pack}: {} blob {}: {err}",
                        e.kind.name(),
                        e.id
                    ));
                }
            }
        }
        (header.entries.len(), problems)
    })
    .await;
    match checked {
        Ok((n, problems)) => (n, len, problems),
        Err(e) => (0, len, vec![format!("pack {pack}: {e}")]),
    }
}

#[derive(Debug, Default, Serialize)]
pub struct RepairReport {
    pub packs_indexed: usize,
    pub blobs_indexed: usize,
    pub indexes_written: usize,
    pub indexes_removed: usize,
    /// Packs that could not be read; their blobs are not indexed.
    pub unreadable_packs: Vec<String>,
}

/// Rebuild the index from the packs' headers: write the new index files
/// first, then remove the old ones.
pub async fn repair_index(reader: &Reader) -> Result<RepairReport> {
    let mut report = RepairReport::default();
    let packs = reader.repo.list_packs().await?;
    let master = reader.keys.master.clone();
    let results: Vec<(PackId, Result<_>)> = futures::stream::iter(packs)
        .map(|(id, size)| {
            let master = master.clone();
            async move {
                (
                    id,
                    reader
                        .repo
                        .read_pack_header(&id, size, |s| Some(master.space(s)))
                        .await,
                )
            }
        })
        .buffer_unordered(crate::repo::LOAD_CONCURRENCY)
        .collect()
        .await;
    let mut by_space: HashMap<SpaceId, Vec<IndexPack>> = HashMap::new();
    for (id, r) in results {
        match r {
            Ok((t, Some(header))) => {
                report.packs_indexed += 1;
                report.blobs_indexed += header.entries.len();
                by_space
                    .entry(t.space)
                    .or_default()
                    .push(IndexPack { pack: id, header });
            }
            Ok((_, None)) => unreachable!("a reader derives every space's keys"),
            Err(e) => report.unreadable_packs.push(format!("pack {id}: {e}")),
        }
    }
    for (space, packs) in by_space {
        let keys = reader.space_keys(space);
        let id = IndexId::random();
        let bytes = IndexFile { space, packs }.encode(&keys, &id);
        reader
            .repo
            .store
            .put(&crate::index::index_key_name(&id), bytes.into())
            .await?;
        report.indexes_written += 1;
    }
    let old: Vec<IndexId> = reader
        .indexes
        .files
        .iter()
        .map(|(id, _)| *id)
        .chain(reader.indexes.damaged.iter().map(|(id, _)| *id))
        .collect();
    for id in old {
        reader
            .repo
            .store
            .delete(&crate::index::index_key_name(&id))
            .await?;
        report.indexes_removed += 1;
    }
    Ok(report)
}

/// What an agent key can check of its own dedup space, without reading any
/// file data or tree (FORMAT.md §10): its snapshots and index files
/// authenticate, every root tree is indexed, every indexed pack exists, is
/// long enough and has a header that authenticates and agrees with the
/// index. Blob contents cannot be checked without a reader key
/// (`pulih repo verify --read-data` by the walidata does that).
pub async fn check_space(
    repo: &crate::repo::Repo,
    key: &crate::keys::AgentKey,
) -> Result<VerifyReport> {
    repo.check_agent_key(key)?;
    let space = key.space.space;
    let mut r = VerifyReport::default();
    let indexes =
        crate::repo::LoadedIndexes::load(repo, |s| (s == space).then(|| key.space.clone())).await?;
    for (id, e) in &indexes.damaged {
        r.problems.push(format!("index {id}: {e}"));
    }
    let idx = indexes.spaces.get(&space);
    for (sid, _) in repo.list_ids(crate::layout::SNAPSHOTS).await? {
        let sid: SnapshotId = sid;
        let name = crate::snapshot::snapshot_key_name(&sid);
        let bytes = match repo.store.get(&name).await {
            Ok(b) => b,
            Err(e) => {
                r.problems.push(format!("snapshot {sid}: {e}"));
                continue;
            }
        };
        match Snapshot::space_of(&bytes, &sid) {
            Ok(s) if s == space => {}
            Ok(_) => continue, // another agent's
            Err(e) => {
                r.problems.push(format!("snapshot {sid}: {e}"));
                continue;
            }
        }
        r.snapshots += 1;
        match Snapshot::decode(&bytes, &key.space, &sid) {
            Ok(s) => {
                if idx.and_then(|i| i.lookup(&s.tree)).is_none() {
                    r.problems.push(format!(
                        "snapshot {sid}: its root tree {} is in no index",
                        s.tree
                    ));
                }
            }
            Err(e) => r.problems.push(format!("snapshot {sid}: {e}")),
        }
    }
    let packs = repo.list_packs().await?;
    let mut by_pack: HashMap<PackId, Vec<crate::pack::PackEntry>> = HashMap::new();
    for loc in idx.into_iter().flat_map(|i| i.iter()) {
        by_pack.entry(loc.pack).or_default().push(loc.entry);
    }
    r.packs = by_pack.len();
    r.unindexed_packs = packs
        .keys()
        .filter(|p| !indexes.indexed_packs.contains(p))
        .count();
    let checks: Vec<Option<String>> = futures::stream::iter(by_pack)
        .map(|(pack, mut entries)| {
            let size = packs.get(&pack).copied();
            let keys = key.space.clone();
            async move {
                let Some(size) = size else {
                    return Some(format!("pack {pack}: missing (an index lists it)"));
                };
                let header = match repo
                    .read_pack_header(&pack, size, |s| (s == keys.space).then(|| keys.clone()))
                    .await
                {
                    Ok((_, Some(h))) => h,
                    Ok((_, None)) => {
                        return Some(format!(
                            "pack {pack}: its trailer names another space than its index"
                        ));
                    }
                    Err(e) => return Some(format!("pack {pack}: {e}")),
                };
                entries.sort_by_key(|e| (e.offset, e.inner));
                entries.dedup();
                let in_header = header.entries;
                if entries.iter().any(|e| !in_header.contains(e)) {
                    return Some(format!(
                        "pack {pack}: the index lists blobs its header does not hold"
                    ));
                }
                None
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    r.packs_read = checks.len();
    r.problems.extend(checks.into_iter().flatten());
    r.problems.sort();
    Ok(r)
}
