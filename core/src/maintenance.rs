//! Retention with the maintenance key (FORMAT.md §12): forget by policy and
//! prune at pack granularity, reading snapshot metadata, index files and
//! pack headers only, never a tree or a data blob.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;
use time::UtcOffset;

use crate::bindings::Bindings;
use crate::crypto::Key;
use crate::forget::{Decision, KeepPolicy, plan_each};
use crate::id::{IndexId, PackId, SpaceId};
use crate::index::{IndexFile, IndexPack};
use crate::keys::{MaintenanceKey, MaintenanceKeyFile, SpaceKeys};
use crate::layout;
use crate::pack::PackHeader;
use crate::prune::PruneOptions;
use crate::prune::holdback::Holdback;
use crate::prune::lock::{self, MovesBody};
use crate::prune::phase2;
use crate::repo::{ListedSnapshot, LoadedIndexes, Repo, Unreadable, list_readable_snapshots};
use crate::{Error, Result};

/// What a maintenance run did.
#[derive(Debug, Default, Serialize)]
pub struct MaintenanceReport {
    pub snapshots: usize,
    pub forgotten: usize,
    pub decisions: Vec<Decision>,
    pub condemned_packs: usize,
    pub deleted_packs: usize,
    pub rescued_packs: usize,
    pub deleted_unindexed_packs: usize,
    pub bytes_deleted: u64,
    pub moves_records_deleted: usize,
    /// Index files and moves records the store refused to delete (an
    /// append-only gateway's retention floor): they stay until it allows.
    pub kept_by_store: usize,
    /// Spaces not pruned because a snapshot there lists no packs (written
    /// by an agent older than the `packs` field).
    pub spaces_not_pruned: Vec<String>,
    /// Objects that did not authenticate, set aside, and what each held
    /// back (FORMAT.md §11).
    pub held_back: Vec<String>,
}

/// The keys of a space as the maintenance key has them: the metadata key
/// only. The blob id key is a placeholder: maintenance computes no blob id.
fn space_keys(key: &MaintenanceKey, space: SpaceId) -> SpaceKeys {
    SpaceKeys {
        space,
        blob_id_key: Key([0; 32]),
        meta_key: key.meta_key(space),
    }
}

/// What the maintenance key tells of one snapshot (a server reported it
/// as its replication's): the space it was written in, the server that
/// space is bound to (FORMAT.md §13), whether the repository binds that
/// server at all, its `server=` tag, its claimed time and the store's own
/// time of the object.
#[derive(Debug, Clone)]
pub struct CheckedSnapshot {
    pub id: crate::id::SnapshotId,
    pub space: SpaceId,
    pub bound_to: Option<String>,
    /// Bindings of the repository name the reporting server's spaces.
    pub server_bound: bool,
    pub tagged: Option<String>,
    pub time: String,
    pub stored_at: i64,
    /// What its writer says of the run (agent-controlled).
    pub summary: crate::snapshot::Summary,
    /// The store's sizes of the packs it names that the server's previous
    /// confirmed snapshot (or its parent) did not (all of them without a
    /// readable one): what the run added, as the store has it.
    pub new_pack_bytes: u64,
}

/// Reads and authenticates snapshot `id` with the maintenance key, and
/// finds which server its space is bound to (`server` is the one that
/// reported it). `Ok(None)`: the store holds no such snapshot. An object
/// that does not authenticate is an error.
pub async fn check_snapshot(
    repo: &Repo,
    key: &MaintenanceKeyFile,
    id: &crate::id::SnapshotId,
    server: &str,
    previous: Option<&crate::id::SnapshotId>,
) -> Result<Option<CheckedSnapshot>> {
    if key.repo_id != repo.config.repo_id {
        return Err(Error::KeyMismatch {
            key_repo: key.repo_id.to_hex(),
            repo: repo.config.repo_id.to_hex(),
        });
    }
    let name = layout::snapshot(id);
    let Some(info) = repo.store.info(&name).await? else {
        return Ok(None);
    };
    let bytes = repo.store.get(&name).await?;
    let space = crate::snapshot::Snapshot::space_of(&bytes, id)?;
    let snapshot = crate::snapshot::Snapshot::decode(&bytes, &space_keys(&key.key, space), id)?;
    let keys = space_keys(&key.key, space);
    // What "new" is measured against: the server's previous confirmed
    // snapshot where the caller knows it (the agent's `parent` is its own
    // say, and Pulih's backups name none), else the parent.
    let before: HashSet<PackId> = match previous.or(snapshot.parent.as_ref()) {
        Some(p) => match repo.store.get(&layout::snapshot(p)).await {
            Ok(b) => crate::snapshot::Snapshot::decode(&b, &keys, p)
                .ok()
                .and_then(|s| s.packs)
                .unwrap_or_default()
                .into_iter()
                .collect(),
            Err(_) => HashSet::new(),
        },
        None => HashSet::new(),
    };
    let mut new_pack_bytes = 0u64;
    for p in snapshot
        .packs
        .iter()
        .flatten()
        .filter(|p| !before.contains(*p))
    {
        if let Some(i) = repo.store.info(&layout::pack(p)).await? {
            new_pack_bytes += i.size;
        }
    }
    let (bound_to, server_bound) = match &key.bindings {
        Some(v) => {
            let b = Bindings::load(&repo.store, v).await?;
            (
                b.server_of(&space).map(|x| x.server.clone()),
                b.servers.contains(server),
            )
        }
        None => (None, false),
    };
    Ok(Some(CheckedSnapshot {
        id: *id,
        space,
        bound_to,
        server_bound,
        tagged: snapshot
            .tags
            .iter()
            .find_map(|t| t.strip_prefix("server="))
            .map(str::to_string),
        time: snapshot.time.clone(),
        stored_at: info.modified,
        summary: snapshot.summary.clone(),
        new_pack_bytes,
    }))
}

/// Which packs the snapshots use, per space, following the moves records.
struct Usage {
    used: HashMap<SpaceId, HashSet<PackId>>,
    /// Spaces with a snapshot that lists no packs: every pack counts as used.
    unknown: HashSet<SpaceId>,
    /// Every pack reachable from any list (to retire moves records).
    reachable: HashSet<PackId>,
}

impl Usage {
    /// A listed pack that a repack moved (a moves record made at `created`)
    /// stands for its new packs when the snapshot is older than the move:
    /// the repack moved every blob such a snapshot names. A snapshot stored
    /// since may name a blob the repack dropped, so for it the old pack
    /// counts as used too (with ten minutes' slack for clocks).
    fn of(snaps: &[ListedSnapshot], moves: &HashMap<PackId, (Vec<PackId>, i64)>) -> Usage {
        let mut u = Usage {
            used: HashMap::new(),
            unknown: HashSet::new(),
            reachable: HashSet::new(),
        };
        for s in snaps {
            let Some(list) = &s.snapshot.packs else {
                u.unknown.insert(s.space);
                continue;
            };
            let set = u.used.entry(s.space).or_default();
            let mut seen: HashSet<PackId> = HashSet::new();
            let mut stack: Vec<PackId> = list.clone();
            while let Some(p) = stack.pop() {
                if !seen.insert(p) {
                    continue;
                }
                u.reachable.insert(p);
                match moves.get(&p) {
                    Some((to, created)) => {
                        if s.stored_at >= created - 600 {
                            set.insert(p);
                        }
                        stack.extend(to.iter().copied());
                    }
                    None => {
                        set.insert(p);
                    }
                }
            }
        }
        u
    }

    fn uses(&self, space: SpaceId, pack: &PackId) -> bool {
        self.unknown.contains(&space) || self.used.get(&space).is_some_and(|s| s.contains(pack))
    }
}

/// Old pack → (new packs, when the move was recorded), and the records.
type Moves = HashMap<PackId, (Vec<PackId>, i64)>;

/// The moves records, the packs each names, and those set aside.
async fn load_moves(
    repo: &Repo,
    key: &MaintenanceKey,
) -> Result<(Moves, Vec<(String, Vec<PackId>)>, Vec<Unreadable>)> {
    let mut moves: Moves = HashMap::new();
    let mut files = Vec::new();
    let (records, unreadable) =
        lock::read::<MovesBody>(&repo.store, key, layout::MOVES_LOCKS).await?;
    for (name, body) in records {
        files.push((name, body.moves.keys().copied().collect()));
        for (old, new) in body.moves {
            let e = moves.entry(old).or_insert((Vec::new(), body.created));
            e.0.extend(new);
            e.1 = e.1.max(body.created);
        }
    }
    Ok((moves, files, unreadable))
}

/// Forget by the policy `policy_for` gives each (space, host, paths) group
/// by the server it counts for (None: keep the group whole), then (with
/// `prune`) prune at pack granularity. The server is the one the group's
/// space is bound to (FORMAT.md §13), never what an agent tags; only
/// where the key predates bindings, or the tag names a server no binding
/// names, does the `server=` tag count.
pub async fn run(
    repo: &Repo,
    key: &MaintenanceKeyFile,
    policy_for: &(dyn Fn(Option<&str>) -> Option<KeepPolicy> + Sync),
    offset: UtcOffset,
    prune: bool,
    opts: &PruneOptions,
) -> Result<MaintenanceReport> {
    if key.repo_id != repo.config.repo_id {
        return Err(Error::KeyMismatch {
            key_repo: key.repo_id.to_hex(),
            repo: repo.config.repo_id.to_hex(),
        });
    }
    let mk = &key.key;
    let keys = |s: SpaceId| Some(space_keys(mk, s));
    let mut report = MaintenanceReport::default();
    // A snapshot that does not authenticate is in no group, so never
    // forgotten; the others' retention goes on.
    let (snaps, unreadable) = list_readable_snapshots(repo, keys).await?;
    report.snapshots = snaps.len();
    // Which server each space belongs to; a binding that does not verify
    // is named in the report (all of them failing means a key file from
    // another repository, and retention by tags: said loudly).
    let mut binding_notes = Vec::new();
    let bindings = match &key.bindings {
        Some(v) => {
            let (list, unreadable) = crate::bindings::read(&repo.store, v).await?;
            if list.is_empty() && !unreadable.is_empty() {
                binding_notes.push(format!(
                    "no binding verifies with this maintenance key's bindings_public_key ({} do not): retention goes by the snapshots' server= tags; is the key file this repository's?",
                    unreadable.len()
                ));
            }
            binding_notes.extend(unreadable.iter().map(|u| format!("{u}; set aside")));
            Some(Bindings::of(list))
        }
        None => None,
    };
    let server_of = |s: &ListedSnapshot| -> Option<String> {
        let tagged = s
            .snapshot
            .tags
            .iter()
            .find_map(|t| t.strip_prefix("server="));
        match &bindings {
            Some(b) => match b.server_of(&s.space) {
                Some(bound) => Some(bound.server.clone()),
                None => tagged
                    .filter(|n| !b.servers.contains(*n))
                    .map(str::to_string),
            },
            None => tagged.map(str::to_string),
        }
    };
    let mut decisions = plan_each(&snaps, |s| policy_for(server_of(s).as_deref()), offset);
    // An anomaly's hold keeps the history before it (FORMAT.md §14).
    let (holds, bad_holds) = crate::holds::read(&repo.store).await?;
    crate::forget::apply_holds(&mut decisions, &snaps, &holds);
    binding_notes.extend(
        bad_holds
            .iter()
            .map(|u| format!("{u}; not a hold, ignored")),
    );
    report.forgotten += crate::forget::delete_forgotten(&repo.store, &mut decisions).await?;
    report.decisions = decisions;
    if !prune {
        let mut hold = Holdback::default();
        hold.snapshots(&unreadable);
        report.held_back = hold.into_notes();
        report.held_back.extend(binding_notes);
        return Ok(report);
    }

    let store = &repo.store;
    let mut packs = repo.list_packs().await?;
    let mut hold = Holdback::default();
    let (moves, moves_files, bad_moves) = load_moves(repo, mk).await?;
    hold.moves_records(&bad_moves);
    // Snapshots as they are now (forgotten ones gone, new ones included).
    let (snaps, unreadable) = list_readable_snapshots(repo, keys).await?;
    hold.snapshots(&unreadable);
    let usage = Usage::of(&snaps, &moves);
    let mut indexes = LoadedIndexes::load(repo, keys).await?;
    hold.indexes(&indexes);

    // Phase 2: records past the grace period.
    let records = phase2::records(store, mk, opts).await?;
    hold.prune_records(&records.unreadable);
    let pending = records.pending;
    let headers = phase2::due_headers(repo, &records.due, &packs, |s| space_keys(mk, s)).await?;
    let done = phase2::settle(
        store,
        records.due,
        headers,
        &mut packs,
        // A condemned pack some index still lists (one the store refused
        // to delete) is kept: deleting it would leave that index naming
        // blobs that are gone, which a backup could then dedup against.
        |space, p, _| {
            hold.holds(space) || usage.uses(space, p) || indexes.indexed_packs.contains(p)
        },
        |s| space_keys(mk, s),
    )
    .await?;
    report.deleted_packs += done.deleted_packs;
    report.rescued_packs += done.rescued_packs;
    report.bytes_deleted += done.bytes_deleted;
    if done.rescued_packs > 0 {
        // The rescued packs' new index must be among those read.
        indexes = LoadedIndexes::load(repo, keys).await?;
    }

    // Phase 1: condemn the unused packs of each space.
    if !hold.keeps_unindexed() {
        let (n, bytes) =
            phase2::delete_unindexed(store, &packs, &indexes.indexed_packs, &pending, opts).await?;
        report.deleted_unindexed_packs += n;
        report.bytes_deleted += bytes;
    }
    let mut condemned = Vec::new();
    let mut rewritten: HashSet<SpaceId> = HashSet::new();
    for (space, idx) in &indexes.spaces {
        if usage.unknown.contains(space) {
            report.spaces_not_pruned.push(space.to_hex());
            continue;
        }
        if hold.holds(*space) {
            continue;
        }
        let mut by_pack: BTreeMap<PackId, PackHeader> = BTreeMap::new();
        for loc in idx.iter() {
            by_pack
                .entry(loc.pack)
                .or_insert_with(|| PackHeader {
                    session: loc.session,
                    entries: Vec::new(),
                })
                .entries
                .push(loc.entry);
        }
        let (gone, kept): (Vec<_>, Vec<_>) = by_pack.into_iter().partition(|(p, _)| {
            packs.contains_key(p) && !pending.contains(p) && !usage.uses(*space, p)
        });
        if gone.is_empty() {
            continue;
        }
        condemned.extend(gone.into_iter().map(|(p, _)| p));
        let list = kept
            .into_iter()
            .map(|(pack, mut header)| {
                header.entries.sort_by_key(|e| (e.offset, e.inner));
                IndexPack { pack, header }
            })
            .collect();
        write_index(store, mk, *space, list).await?;
        rewritten.insert(*space);
    }
    report.condemned_packs = condemned.len();
    if !condemned.is_empty() {
        lock::write_prune(store, mk, opts.now, condemned).await?;
    }
    for (id, space) in &indexes.files {
        if rewritten.contains(space) && !store.delete_if_allowed(&layout::index(id)).await? {
            report.kept_by_store += 1;
        }
    }
    // Moves records nothing reaches any more.
    for (name, olds) in moves_files {
        if usage.unknown.is_empty()
            && !hold.holds_any()
            && !olds.iter().any(|p| usage.reachable.contains(p))
        {
            if store.delete_if_allowed(&name).await? {
                report.moves_records_deleted += 1;
            } else {
                report.kept_by_store += 1;
            }
        }
    }
    report.spaces_not_pruned.sort();
    report.held_back = hold.into_notes();
    report.held_back.extend(binding_notes);
    Ok(report)
}

async fn write_index(
    store: &crate::storage::Store,
    key: &MaintenanceKey,
    space: SpaceId,
    packs: Vec<IndexPack>,
) -> Result<()> {
    let id = IndexId::random();
    store
        .put(
            &layout::index(&id),
            IndexFile { space, packs }
                .encode(&space_keys(key, space), &id)
                .into(),
        )
        .await
}
