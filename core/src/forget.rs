//! `forget` (retention policy) and `prune` (two-phase delete), FORMAT.md §11.

use std::collections::{BTreeMap, HashMap, HashSet};

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use time::{OffsetDateTime, UtcOffset};

use crate::id::{BlobId, FileId, IndexId, PackId, SpaceId};
use crate::index::{IndexFile, IndexPack, Location, SpaceIndex};
use crate::keys::SessionKey;
use crate::pack::{self, PackHeader, PackWriter};
use crate::repo::{ListedSnapshot, Reader};
use crate::{Error, Result};

/// How many snapshots to keep per group; 0 = that rule is off.
#[derive(Clone, Debug, Default, Serialize)]
pub struct KeepPolicy {
    pub last: u32,
    pub hourly: u32,
    pub daily: u32,
    pub weekly: u32,
    pub monthly: u32,
    pub yearly: u32,
}

impl KeepPolicy {
    pub fn is_empty(&self) -> bool {
        [
            self.last,
            self.hourly,
            self.daily,
            self.weekly,
            self.monthly,
            self.yearly,
        ]
        .iter()
        .all(|n| *n == 0)
    }
}

/// A claimed time more than this after the store's own time is not trusted.
const FUTURE_SKEW_S: i64 = 600;
/// A claimed time more than this before the store's own time is not trusted.
const MAX_BACKUP_S: i64 = 48 * 3600;

/// The time retention uses, in nanoseconds: the claimed time, unless the
/// store's own time of the snapshot object contradicts it.
pub fn effective_time_ns(s: &ListedSnapshot) -> i128 {
    let stored = s.stored_at as i128 * 1_000_000_000;
    match s.snapshot.time_ns() {
        Some(c)
            if c <= stored + FUTURE_SKEW_S as i128 * 1_000_000_000
                && c >= stored - MAX_BACKUP_S as i128 * 1_000_000_000 =>
        {
            c
        }
        _ => stored,
    }
}

/// [`effective_time_ns`] in whole seconds.
pub fn effective_time(s: &ListedSnapshot) -> i64 {
    effective_time_ns(s).div_euclid(1_000_000_000) as i64
}

#[derive(Debug, Serialize)]
pub struct Decision {
    pub id: String,
    pub host: String,
    pub time: String,
    pub effective_time: i64,
    pub keep: bool,
    pub reasons: Vec<&'static str>,
}

/// Decide which snapshots to keep, per (space, host, paths) group.
pub fn plan(
    snaps: &[ListedSnapshot],
    policy: &KeepPolicy,
    offset: UtcOffset,
) -> Result<Vec<Decision>> {
    if policy.is_empty() {
        return Err(Error::Invalid(
            "no --keep-* rule given: refusing to forget every snapshot".into(),
        ));
    }
    Ok(plan_each(snaps, |_| Some(policy.clone()), offset))
}

/// As [`plan`], with a policy per group, looked up from the group's newest
/// snapshot; a group without one (None, or an empty policy) is kept whole.
pub fn plan_each(
    snaps: &[ListedSnapshot],
    policy_for: impl Fn(&ListedSnapshot) -> Option<KeepPolicy>,
    offset: UtcOffset,
) -> Vec<Decision> {
    let mut groups: BTreeMap<(SpaceId, String, Vec<String>), Vec<&ListedSnapshot>> =
        BTreeMap::new();
    for s in snaps {
        groups
            .entry((s.space, s.snapshot.host.clone(), s.snapshot.paths.clone()))
            .or_default()
            .push(s);
    }
    let mut out = Vec::new();
    for (_, mut group) in groups {
        group.sort_by_key(|s| std::cmp::Reverse((effective_time_ns(s), s.stored_at)));
        let policy = match policy_for(group[0]) {
            Some(p) if !p.is_empty() => p,
            _ => {
                out.extend(group.iter().map(|s| Decision {
                    id: s.id.to_hex(),
                    host: s.snapshot.host.clone(),
                    time: s.snapshot.time.clone(),
                    effective_time: effective_time(s),
                    keep: true,
                    reasons: vec!["no retention policy"],
                }));
                continue;
            }
        };
        type Bucket = fn(OffsetDateTime) -> (i32, u32);
        let rules: [(&'static str, u32, Bucket); 6] = [
            ("last", policy.last, |_| (0, 0)),
            ("hourly", policy.hourly, |t| {
                (t.year(), t.ordinal() as u32 * 24 + t.hour() as u32)
            }),
            ("daily", policy.daily, |t| (t.year(), t.ordinal() as u32)),
            ("weekly", policy.weekly, |t| {
                let (y, w, _) = t.to_iso_week_date();
                (y, w as u32)
            }),
            ("monthly", policy.monthly, |t| (t.year(), t.month() as u32)),
            ("yearly", policy.yearly, |t| (t.year(), 0)),
        ];
        let mut state: Vec<(u32, Option<(i32, u32)>)> = vec![(0, None); rules.len()];
        for (n, s) in group.iter().enumerate() {
            let t = OffsetDateTime::from_unix_timestamp(effective_time(s))
                .unwrap_or(OffsetDateTime::UNIX_EPOCH)
                .to_offset(offset);
            let mut reasons = Vec::new();
            for (i, (name, keep, bucket)) in rules.iter().enumerate() {
                let (count, last) = &mut state[i];
                let b = if *name == "last" {
                    (0, n as u32)
                } else {
                    bucket(t)
                };
                if *count < *keep && *last != Some(b) {
                    *count += 1;
                    *last = Some(b);
                    reasons.push(*name);
                }
            }
            out.push(Decision {
                id: s.id.to_hex(),
                host: s.snapshot.host.clone(),
                time: s.snapshot.time.clone(),
                effective_time: effective_time(s),
                keep: !reasons.is_empty(),
                reasons,
            });
        }
    }
    out
}

/// Apply a policy: delete the snapshot objects it does not keep.
pub async fn forget(
    reader: &Reader,
    policy: &KeepPolicy,
    offset: UtcOffset,
    dry_run: bool,
) -> Result<Vec<Decision>> {
    let snaps = reader.snapshots().await?;
    let decisions = plan(&snaps, policy, offset)?;
    if !dry_run {
        for d in decisions.iter().filter(|d| !d.keep) {
            reader
                .repo
                .store
                .delete(&format!("snapshots/{}", d.id))
                .await?;
        }
    }
    Ok(decisions)
}

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
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordBody {
    created: i64,
    packs: Vec<PackId>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Record {
    body: RecordBody,
    mac: String,
}

fn record_mac(reader: &Reader, id: &FileId, body: &RecordBody) -> String {
    lock_mac(&reader.keys.master.maintenance(), id, body)
}

/// The MAC of a lock record (`locks/prune-…`, `locks/moves-…`), FORMAT.md §11.
pub(crate) fn lock_mac<T: Serialize>(
    key: &crate::keys::MaintenanceKey,
    id: &FileId,
    body: &T,
) -> String {
    let bytes = [
        id.0.as_slice(),
        &serde_json::to_vec(body).expect("serializes"),
    ]
    .concat();
    hex::encode(crate::crypto::mac(&key.lock_mac_key(), &bytes))
}

/// Blobs referenced by every snapshot, per space. `extra` is consulted for
/// blobs the index no longer lists (condemned packs).
async fn referenced(
    reader: &Reader,
    extra: &HashMap<SpaceId, SpaceIndex>,
) -> Result<HashMap<SpaceId, HashSet<BlobId>>> {
    let mut used: HashMap<SpaceId, HashSet<BlobId>> = HashMap::new();
    for s in reader.snapshots().await? {
        let set = used.entry(s.space).or_default();
        let mut stack = vec![s.snapshot.tree];
        while let Some(t) = stack.pop() {
            if !set.insert(t) {
                continue;
            }
            let loc = reader
                .index(s.space)
                .and_then(|i| i.lookup(&t))
                .or_else(|| extra.get(&s.space).and_then(|i| i.lookup(&t)))
                .ok_or_else(|| Error::corrupt(format!("snapshot {}", s.id), format!("tree {t} is in no index: run `verify`, then `repair-index`; prune stopped")))?;
            let tree = crate::tree::Tree::decode(&reader.read_blob_at(s.space, &loc).await?, &t)?;
            for n in tree.nodes {
                if let Some(sub) = n.subtree {
                    stack.push(sub);
                }
                set.extend(n.content.into_iter().flatten());
            }
        }
    }
    Ok(used)
}

/// Run prune: phase 2 for records past the grace period, then phase 1.
pub async fn prune(reader: &Reader, opts: &PruneOptions) -> Result<PruneReport> {
    let mut report = PruneReport::default();
    let store = &reader.repo.store;
    let master = reader.keys.master.clone();
    let mut packs = reader.repo.list_packs().await?;

    // Phase 2: delete what earlier runs condemned, unless a snapshot written
    // since needs it.
    let mut due: Vec<(FileId, Vec<PackId>)> = Vec::new();
    let mut pending: HashSet<PackId> = HashSet::new();
    for o in store.list("locks/").await? {
        let Some(id) = o
            .key
            .strip_prefix("locks/prune-")
            .and_then(|h| h.parse::<FileId>().ok())
        else {
            continue;
        };
        let key = o.key.clone();
        let rec: Record = serde_json::from_slice(&store.get(&key).await?)
            .map_err(|e| Error::corrupt(&key, e.to_string()))?;
        if record_mac(reader, &id, &rec.body) != rec.mac {
            return Err(Error::corrupt(
                key,
                "its MAC does not verify: prune stopped",
            ));
        }
        if opts.now - rec.body.created >= opts.grace_s {
            due.push((id, rec.body.packs));
        } else {
            pending.extend(rec.body.packs);
        }
    }
    if !due.is_empty() {
        let mut condemned: HashMap<SpaceId, SpaceIndex> = HashMap::new();
        let mut headers: HashMap<PackId, (SpaceId, PackHeader)> = HashMap::new();
        for p in due.iter().flat_map(|(_, ps)| ps) {
            let Some(size) = packs.get(p) else { continue };
            let (t, h) = reader
                .repo
                .read_pack_header(p, *size, |s| Some(master.space(s)))
                .await?;
            let h = h.expect("a reader derives every space's keys");
            condemned.entry(t.space).or_default().add_pack(*p, &h);
            headers.insert(*p, (t.space, h));
        }
        condemned.values_mut().for_each(SpaceIndex::finalize);
        let used = referenced(reader, &condemned).await?;
        let mut rescued: HashMap<SpaceId, Vec<IndexPack>> = HashMap::new();
        for (p, (space, h)) in headers {
            let live = reader.index(space);
            let needed = h.entries.iter().any(|e| {
                used.get(&space).is_some_and(|u| u.contains(&e.id))
                    && live.is_none_or(|i| i.lookup(&e.id).is_none_or(|l| l.pack == p))
            });
            if needed {
                report.rescued_packs += 1;
                rescued
                    .entry(space)
                    .or_default()
                    .push(IndexPack { pack: p, header: h });
            } else {
                report.bytes_deleted += packs.remove(&p).unwrap_or(0);
                store.delete(&pack::pack_key_name(&p)).await?;
                report.deleted_packs += 1;
            }
        }
        for (space, list) in rescued {
            let id = IndexId::random();
            store
                .put(
                    &crate::index::index_key_name(&id),
                    IndexFile { space, packs: list }
                        .encode(&master.space(space), &id)
                        .into(),
                )
                .await?;
        }
        for (id, _) in &due {
            store.delete(&format!("locks/prune-{id}")).await?;
        }
        if report.rescued_packs > 0 {
            // The rescued packs must be in the index phase 1 reads.
            let fresh = Reader::with_keys(reader.repo.clone(), reader.keys.clone()).await?;
            return Box::pin(phase1(&fresh, opts, packs, pending, report)).await;
        }
    }
    phase1(reader, opts, packs, pending, report).await
}

async fn phase1(
    reader: &Reader,
    opts: &PruneOptions,
    packs: HashMap<PackId, u64>,
    pending: HashSet<PackId>,
    mut report: PruneReport,
) -> Result<PruneReport> {
    let store = &reader.repo.store;
    let used = referenced(reader, &HashMap::new()).await?;
    let listing: HashMap<String, i64> = store
        .list("data/")
        .await?
        .into_iter()
        .map(|o| (o.key, o.modified))
        .collect();

    // Unindexed packs old enough that no running backup can own them.
    for (p, size) in &packs {
        if !reader.indexes.indexed_packs.contains(p) && !pending.contains(p) {
            let age = opts.now
                - listing
                    .get(&pack::pack_key_name(p))
                    .copied()
                    .unwrap_or(opts.now);
            if age >= 2 * opts.grace_s {
                store.delete(&pack::pack_key_name(p)).await?;
                report.deleted_unindexed_packs += 1;
                report.bytes_deleted += size;
            }
        }
    }

    let session = SessionKey::generate();
    let mut session_written = false;
    let mut condemned: Vec<PackId> = Vec::new();
    let mut new_index: HashMap<SpaceId, Vec<IndexPack>> = HashMap::new();
    // Old pack → the new packs its live blobs went to (FORMAT.md §11).
    let mut moves: BTreeMap<PackId, Vec<PackId>> = BTreeMap::new();
    for (space, idx) in &reader.indexes.spaces {
        let none = HashSet::new();
        let used = used.get(space).unwrap_or(&none);
        let mut by_pack: HashMap<PackId, Vec<Location>> = HashMap::new();
        for loc in idx.iter() {
            by_pack.entry(loc.pack).or_default().push(loc);
        }
        let keys = reader.space_keys(*space);
        let mut writers: [Option<PackWriter>; 2] = [None, None];
        let mut sources: [HashSet<PackId>; 2] = [HashSet::new(), HashSet::new()];
        let mut comp = zstd::bulk::Compressor::new(reader.repo.config.compression_level)
            .map_err(|e| Error::Invalid(e.to_string()))?;
        for (p, mut locs) in by_pack {
            if !packs.contains_key(&p) || pending.contains(&p) {
                continue; // gone, or already condemned by a pending record
            }
            locs.sort_by_key(|l| l.entry.offset);
            let total: u64 = locs.iter().map(|l| l.entry.stored_len as u64).sum();
            let live: Vec<&Location> = locs.iter().filter(|l| used.contains(&l.entry.id)).collect();
            let live_bytes: u64 = live.iter().map(|l| l.entry.stored_len as u64).sum();
            if live.is_empty() {
                condemned.push(p);
                continue;
            }
            if (total - live_bytes) as f64 <= opts.repack_unused * total as f64 {
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
                    .put(&format!("keys/sessions/{}", session.id), wrapped.into())
                    .await?;
                session_written = true;
            }
            for l in live {
                let raw = reader.read_blob_at(*space, l).await?;
                let slot = l.entry.kind as usize;
                let w =
                    writers[slot].get_or_insert_with(|| PackWriter::new(&session, l.entry.kind, 0));
                w.add_raw(&mut comp, l.entry.id, &raw);
                sources[slot].insert(p);
                if w.len() >= 16 << 20 {
                    let f = writers[slot].take().expect("just used").finish(&keys);
                    for old in sources[slot].drain() {
                        moves.entry(old).or_default().push(f.id);
                    }
                    put_pack(store, f, new_index.entry(*space).or_default()).await?;
                    report.new_packs += 1;
                }
            }
            report.repacked_packs += 1;
            condemned.push(p);
        }
        for (slot, w) in writers.into_iter().enumerate() {
            let Some(w) = w else { continue };
            let f = w.finish(&keys);
            for old in sources[slot].drain() {
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
        write_moves(store, &reader.keys.master.maintenance(), opts.now, moves).await?;
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
                &crate::index::index_key_name(&id),
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
        let id = FileId::random();
        let body = RecordBody {
            created: opts.now,
            packs: condemned,
        };
        let mac = record_mac(reader, &id, &body);
        store
            .put(
                &format!("locks/prune-{id}"),
                serde_json::to_vec(&Record { body, mac })
                    .expect("serializes")
                    .into(),
            )
            .await?;
    }
    for (id, _) in &reader.indexes.files {
        store.delete(&crate::index::index_key_name(id)).await?;
    }
    Ok(report)
}

/// Upload a repacked pack and add it to the new index.
async fn put_pack(
    store: &crate::storage::Store,
    f: pack::FinishedPack,
    list: &mut Vec<IndexPack>,
) -> Result<()> {
    store
        .put(&pack::pack_key_name(&f.id), f.bytes.into())
        .await?;
    list.push(IndexPack {
        pack: f.id,
        header: f.header,
    });
    Ok(())
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MovesBody {
    pub created: i64,
    pub moves: BTreeMap<PackId, Vec<PackId>>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MovesRecord {
    pub body: MovesBody,
    pub mac: String,
}

async fn write_moves(
    store: &crate::storage::Store,
    key: &crate::keys::MaintenanceKey,
    now: i64,
    moves: BTreeMap<PackId, Vec<PackId>>,
) -> Result<()> {
    let id = FileId::random();
    let body = MovesBody {
        created: now,
        moves,
    };
    let mac = lock_mac(key, &id, &body);
    store
        .put(
            &format!("locks/moves-{id}"),
            serde_json::to_vec(&MovesRecord { body, mac })
                .expect("serializes")
                .into(),
        )
        .await
}
