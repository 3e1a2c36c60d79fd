//! `prune`: the two-phase delete of packs no snapshot needs (FORMAT.md §11).
//!
//! Phase 1 condemns: it writes new indexes without the unused packs and a
//! `locks/prune-…` record naming them. Phase 2, in a later run past the
//! grace period, deletes them unless a snapshot written since needs them
//! (those are rescued into a new index). Two holders run it: the walidata's
//! reader key (this file; it may also repack half-used packs) and the
//! controller's maintenance key ([`crate::maintenance`]; pack granularity,
//! no repacking). Both share the lock records ([`lock`]), phase 2 and the
//! clean-up of unindexed packs ([`phase2`]).

pub(crate) mod holdback;
pub mod lock;
pub(crate) mod phase2;
mod repack;

use std::collections::{BTreeMap, HashMap, HashSet};

use futures::StreamExt;
use serde::Serialize;
use time::OffsetDateTime;

use crate::Result;
use crate::id::{BlobId, IndexId, PackId, SnapshotId, SpaceId};
use crate::index::{IndexFile, IndexPack, Location, SpaceIndex};
use crate::keys::SessionKey;
use crate::layout;
use crate::pack::{self, PackHeader};
use crate::prune::holdback::Holdback;
use crate::repo::{Reader, list_readable_snapshots};

#[derive(Clone, Debug)]
pub struct PruneOptions {
    /// Seconds between condemning a pack and deleting it.
    pub grace_s: i64,
    /// Repack a pack when more than this share of its bytes is unused.
    pub repack_unused: f64,
    /// "Now", Unix seconds (tests move it forward).
    pub now: i64,
}

impl Default for PruneOptions {
    fn default() -> Self {
        PruneOptions {
            grace_s: 24 * 3600,
            repack_unused: 0.2,
            now: OffsetDateTime::now_utc().unix_timestamp(),
        }
    }
}

#[derive(Debug, Default, Serialize)]
pub struct PruneReport {
    pub condemned_packs: usize,
    pub repacked_packs: usize,
    pub new_packs: usize,
    pub deleted_packs: usize,
    pub rescued_packs: usize,
    pub deleted_unindexed_packs: usize,
    pub bytes_deleted: u64,
    /// Objects that did not authenticate, set aside, and what each held
    /// back (FORMAT.md §11).
    pub held_back: Vec<String>,
}

/// Blobs referenced by every snapshot, per space. `extra` is consulted for
/// blobs the index no longer lists (condemned packs). A snapshot that does
/// not authenticate, or whose trees an index does not list, holds its
/// space back (`hold`) instead of stopping the prune.
async fn referenced(
    reader: &Reader,
    extra: &HashMap<SpaceId, SpaceIndex>,
    hold: &mut Holdback,
) -> Result<HashMap<SpaceId, HashSet<BlobId>>> {
    let mut used: HashMap<SpaceId, HashSet<BlobId>> = HashMap::new();
    let mut roots: HashMap<SpaceId, Vec<(SnapshotId, BlobId)>> = HashMap::new();
    let master = reader.keys.master.clone();
    let (listed, unreadable) =
        list_readable_snapshots(&reader.repo, |s| Some(master.space(s))).await?;
    hold.snapshots(&unreadable);
    for s in listed {
        roots
            .entry(s.space)
            .or_default()
            .push((s.id, s.snapshot.tree));
    }
    'space: for (space, roots) in roots {
        if hold.holds(space) {
            continue;
        }
        let mut set = HashSet::new();
        let indexes = reader
            .index(space)
            .into_iter()
            .chain(extra.get(&space))
            .collect();
        let mut loader = crate::trees::TreeLoader::new(reader, space, indexes);
        // A level at a time (each level's trees loaded at once); the
        // snapshot that first reached a tree names it in an error.
        // Trees walked are their own set: a file whose bytes equal a
        // tree's has the tree's id, and must not stop its walk.
        let mut walked: HashSet<BlobId> = HashSet::new();
        let mut level: Vec<(BlobId, SnapshotId)> = Vec::new();
        for (sid, t) in roots {
            if walked.insert(t) {
                level.push((t, sid));
            }
        }
        while !level.is_empty() {
            if let Some((t, sid)) = level.iter().find(|(t, _)| loader.lookup(t).is_none()) {
                hold.space(
                    space,
                    format!(
                        "snapshot {sid}: tree {t} is in no index (run `verify`, then `repair-index`)"
                    ),
                );
                continue 'space;
            }
            let ids: Vec<BlobId> = level.iter().map(|(t, _)| *t).collect();
            let mut trees = loader.load(&ids).await?;
            let mut next = Vec::new();
            for (t, sid) in level {
                let tree = trees.remove(&t).expect("each id loaded")?;
                for n in &tree.nodes {
                    if let Some(sub) = n.subtree
                        && walked.insert(sub)
                    {
                        next.push((sub, sid));
                    }
                    set.extend(n.content.iter().flatten().copied());
                }
            }
            level = next;
        }
        set.extend(walked);
        used.insert(space, set);
    }
    Ok(used)
}

/// Run prune with the reader key: phase 2 for records past the grace
/// period, then phase 1.
pub async fn prune(reader: &Reader, opts: &PruneOptions) -> Result<PruneReport> {
    let mut report = PruneReport::default();
    let store = &reader.repo.store;
    let master = reader.keys.master.clone();
    let mut packs = reader.repo.list_packs().await?;

    // Phase 2: delete what earlier runs condemned, unless a snapshot written
    // since needs it.
    let records = phase2::records(store, &master.maintenance(), opts).await?;
    let mut hold = Holdback::default();
    hold.prune_records(&records.unreadable);
    hold.indexes(&reader.indexes);
    let pending = records.pending;
    if !records.due.is_empty() {
        let headers =
            phase2::due_headers(&reader.repo, &records.due, &packs, |s| master.space(s)).await?;
        let mut condemned: HashMap<SpaceId, SpaceIndex> = HashMap::new();
        for (p, space, h) in &headers {
            condemned.entry(*space).or_default().add_pack(*p, h);
        }
        condemned.values_mut().for_each(SpaceIndex::finalize);
        let used = referenced(reader, &condemned, &mut hold).await?;
        let needed = |space: SpaceId, p: &PackId, h: &PackHeader| {
            let live = reader.index(space);
            hold.holds(space)
                // An index the store refused to delete still lists it:
                // deleting the pack would leave that index naming blobs
                // that are gone (see maintenance.rs).
                || reader.indexes.indexed_packs.contains(p)
                || h.entries.iter().any(|e| {
                    used.get(&space).is_some_and(|u| u.contains(&e.id))
                        && live.is_none_or(|i| i.lookup(&e.id).is_none_or(|l| l.pack == *p))
                })
        };
        let done = phase2::settle(store, records.due, headers, &mut packs, needed, |s| {
            master.space(s)
        })
        .await?;
        report.deleted_packs += done.deleted_packs;
        report.rescued_packs += done.rescued_packs;
        report.bytes_deleted += done.bytes_deleted;
        if report.rescued_packs > 0 {
            // The rescued packs must be in the index phase 1 reads.
            let fresh = Reader::with_keys(reader.repo.clone(), reader.keys.clone()).await?;
            hold.indexes(&fresh.indexes);
            return Box::pin(phase1(&fresh, opts, packs, pending, report, hold)).await;
        }
    }
    phase1(reader, opts, packs, pending, report, hold).await
}

async fn phase1(
    reader: &Reader,
    opts: &PruneOptions,
    packs: HashMap<PackId, u64>,
    pending: HashSet<PackId>,
    mut report: PruneReport,
    mut hold: Holdback,
) -> Result<PruneReport> {
    let store = &reader.repo.store;
    let used = referenced(reader, &HashMap::new(), &mut hold).await?;

    // Unindexed packs old enough that no running backup can own them.
    if !hold.keeps_unindexed() {
        let (n, bytes) =
            phase2::delete_unindexed(store, &packs, &reader.indexes.indexed_packs, &pending, opts)
                .await?;
        report.deleted_unindexed_packs += n;
        report.bytes_deleted += bytes;
    }

    let session = SessionKey::generate();
    let mut session_written = false;
    let mut condemned: Vec<PackId> = Vec::new();
    let mut new_index: HashMap<SpaceId, Vec<IndexPack>> = HashMap::new();
    // Old pack → the new packs its live blobs went to (FORMAT.md §11).
    let mut moves: BTreeMap<PackId, Vec<PackId>> = BTreeMap::new();
    for (space, idx) in &reader.indexes.spaces {
        if hold.holds(*space) {
            continue; // its index files stay as they are
        }
        let none = HashSet::new();
        let used = used.get(space).unwrap_or(&none);
        let mut by_pack: HashMap<PackId, Vec<Location>> = HashMap::new();
        for loc in idx.iter() {
            by_pack.entry(loc.pack).or_default().push(loc);
        }
        let keys = reader.space_keys(*space);
        let mut repacker = repack::Repacker::new(
            &session,
            keys,
            pack::Framing::of_repo(&reader.repo.config),
            reader.repo.config.compression_level,
        )?;
        let mut repacked: Vec<repack::Repacked> = Vec::new();
        for (p, mut locs) in by_pack {
            if !packs.contains_key(&p) || pending.contains(&p) {
                continue; // gone, or already condemned by a pending record
            }
            locs.sort_by_key(|l| (l.entry.offset, l.entry.inner));
            // Bytes per unit; a frame's live share is its live blobs' share
            // of its raw bytes.
            let (mut total, mut live_bytes) = (0f64, 0f64);
            let mut any_live = false;
            for unit in pack::units(&locs, |l| &l.entry) {
                let stored = unit[0].entry.stored_len as f64;
                let raw: u64 = unit.iter().map(|l| l.entry.raw_len as u64).sum();
                let live: u64 = unit
                    .iter()
                    .filter(|l| used.contains(&l.entry.id))
                    .map(|l| l.entry.raw_len as u64)
                    .sum();
                any_live |= unit.iter().any(|l| used.contains(&l.entry.id));
                total += stored;
                live_bytes += if raw == 0 {
                    if live == 0 { 0.0 } else { stored }
                } else {
                    stored * live as f64 / raw as f64
                };
            }
            if !any_live {
                condemned.push(p);
                continue;
            }
            if total - live_bytes <= opts.repack_unused * total {
                let session = locs[0].session;
                new_index.entry(*space).or_default().push(IndexPack {
                    pack: p,
                    header: PackHeader {
                        session,
                        entries: locs.into_iter().map(|l| l.entry).collect(),
                    },
                });
                continue;
            }
            // Repack the live blobs, then condemn the old pack.
            if !session_written {
                let wrapped = session.wrap(&reader.repo.config.recipients)?;
                store
                    .put(&layout::session_key(&session.id), wrapped.into())
                    .await?;
                session_written = true;
            }
            for unit in pack::units(&locs, |l| &l.entry) {
                let live: Vec<&Location> =
                    unit.iter().filter(|l| used.contains(&l.entry.id)).collect();
                if live.is_empty() {
                    continue;
                }
                // A frame is fetched and decompressed once for its blobs.
                let raws = reader.read_unit(*space, &live).await?;
                for (l, raw) in live.iter().zip(raws) {
                    repacked.extend(repacker.add(l.entry.kind, l.entry.id, &raw, p));
                }
                for (f, from) in repacked.drain(..) {
                    for old in from {
                        moves.entry(old).or_default().push(f.id);
                    }
                    put_pack(store, f, new_index.entry(*space).or_default()).await?;
                    report.new_packs += 1;
                }
            }
            report.repacked_packs += 1;
            condemned.push(p);
        }
        for (f, from) in repacker.finish() {
            for old in from {
                moves.entry(old).or_default().push(f.id);
            }
            put_pack(store, f, new_index.entry(*space).or_default()).await?;
            report.new_packs += 1;
        }
    }
    report.condemned_packs = condemned.len();
    // Where the moved blobs went, before anything names the old packs as
    // condemned: snapshots' pack lists still name the old ones.
    if !moves.is_empty() {
        lock::write_moves(store, &reader.keys.master.maintenance(), opts.now, moves).await?;
    }

    // New indexes, then the record, then drop the indexes that were read.
    let spaces: Vec<SpaceId> = reader.indexes.spaces.keys().copied().collect();
    futures::stream::iter(
        spaces
            .into_iter()
            .filter_map(|s| new_index.remove(&s).map(|v| (s, v))),
    )
    .map(|(space, list)| async move {
        let id = IndexId::random();
        store
            .put(
                &layout::index(&id),
                IndexFile { space, packs: list }
                    .encode(&reader.space_keys(space), &id)
                    .into(),
            )
            .await
    })
    .buffer_unordered(4)
    .collect::<Vec<_>>()
    .await
    .into_iter()
    .collect::<Result<Vec<()>>>()?;
    if !condemned.is_empty() {
        lock::write_prune(
            store,
            &reader.keys.master.maintenance(),
            opts.now,
            condemned,
        )
        .await?;
    }
    for (id, space) in &reader.indexes.files {
        // One the store refuses to delete (an append-only gateway's floor)
        // stays; its condemned packs are then kept (above).
        if !hold.holds(*space) {
            store.delete_if_allowed(&layout::index(id)).await?;
        }
    }
    report.held_back = hold.into_notes();
    Ok(report)
}

/// Upload a repacked pack and add it to the new index.
async fn put_pack(
    store: &crate::storage::Store,
    f: pack::FinishedPack,
    list: &mut Vec<IndexPack>,
) -> Result<()> {
    store.put(&layout::pack(&f.id), f.bytes.into()).await?;
    list.push(IndexPack {
        pack: f.id,
        header: f.header,
    });
    Ok(())
}
