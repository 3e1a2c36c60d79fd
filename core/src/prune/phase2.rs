//! Phase 2 of a prune, the same for the reader and the maintenance key:
//! the packs of records past the grace period are deleted, unless a
//! snapshot written since needs them; those are rescued into a new index.

use std::collections::{HashMap, HashSet};

use crate::Result;
use crate::id::IndexId;
use crate::id::{PackId, SpaceId};
use crate::index::{IndexFile, IndexPack};
use crate::keys::{MaintenanceKey, SpaceKeys};
use crate::layout;
use crate::pack::PackHeader;
use crate::prune::PruneOptions;
use crate::prune::lock::{self, PruneBody};
use crate::repo::{Repo, Unreadable};
use crate::storage::Store;

/// The prune records, split by the grace period.
pub(crate) struct Records {
    /// Records past the grace period: their names and packs.
    pub due: Vec<(String, Vec<PackId>)>,
    /// Packs of records still within it: neither deleted nor condemned again.
    pub pending: HashSet<PackId>,
    /// Records whose MAC does not verify: set aside.
    pub unreadable: Vec<Unreadable>,
}

/// Reads every prune record (MACs checked; a bad one is set aside).
pub(crate) async fn records(
    store: &Store,
    key: &MaintenanceKey,
    opts: &PruneOptions,
) -> Result<Records> {
    let (records, unreadable) = lock::read::<PruneBody>(store, key, layout::PRUNE_LOCKS).await?;
    let mut r = Records {
        due: Vec::new(),
        pending: HashSet::new(),
        unreadable,
    };
    for (name, body) in records {
        if opts.now - body.created >= opts.grace_s {
            r.due.push((name, body.packs));
        } else {
            r.pending.extend(body.packs);
        }
    }
    Ok(r)
}

/// The headers of the due packs still in the store.
pub(crate) async fn due_headers(
    repo: &Repo,
    due: &[(String, Vec<PackId>)],
    packs: &HashMap<PackId, u64>,
    keys: impl Fn(SpaceId) -> SpaceKeys,
) -> Result<Vec<(PackId, SpaceId, PackHeader)>> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for p in due.iter().flat_map(|(_, ps)| ps) {
        let Some(size) = packs.get(p) else { continue };
        if !seen.insert(*p) {
            continue;
        }
        let (t, h) = repo.read_pack_header(p, *size, |s| Some(keys(s))).await?;
        out.push((
            *p,
            t.space,
            h.expect("both prunes derive every space's metadata key"),
        ));
    }
    Ok(out)
}

/// What phase 2 did.
#[derive(Default)]
pub(crate) struct Settled {
    pub deleted_packs: usize,
    pub rescued_packs: usize,
    pub bytes_deleted: u64,
}

/// Deletes each due pack that `needed` says no snapshot needs (dropping it
/// from `packs`), writes the needed ones into a new index per space, then
/// deletes the due records.
pub(crate) async fn settle(
    store: &Store,
    due: Vec<(String, Vec<PackId>)>,
    headers: Vec<(PackId, SpaceId, PackHeader)>,
    packs: &mut HashMap<PackId, u64>,
    needed: impl Fn(SpaceId, &PackId, &PackHeader) -> bool,
    index_keys: impl Fn(SpaceId) -> SpaceKeys,
) -> Result<Settled> {
    let mut done = Settled::default();
    let mut rescued: HashMap<SpaceId, Vec<IndexPack>> = HashMap::new();
    for (p, space, header) in headers {
        if needed(space, &p, &header) {
            done.rescued_packs += 1;
            rescued
                .entry(space)
                .or_default()
                .push(IndexPack { pack: p, header });
        } else if store.delete_if_allowed(&layout::pack(&p)).await? {
            // Refused: the pack stays, listed by no index and named by no
            // record once this one is gone; `delete_unindexed` takes it
            // when the store allows.
            done.bytes_deleted += packs.remove(&p).unwrap_or(0);
            done.deleted_packs += 1;
        }
    }
    for (space, list) in rescued {
        let id = IndexId::random();
        store
            .put(
                &layout::index(&id),
                IndexFile { space, packs: list }
                    .encode(&index_keys(space), &id)
                    .into(),
            )
            .await?;
    }
    for (name, _) in &due {
        store.delete(name).await?;
    }
    Ok(done)
}

/// Deletes the packs no index lists and no pending record names, once they
/// are older than twice the grace (so no running backup can still own
/// them). Returns how many, and their bytes.
pub(crate) async fn delete_unindexed(
    store: &Store,
    packs: &HashMap<PackId, u64>,
    indexed: &HashSet<PackId>,
    pending: &HashSet<PackId>,
    opts: &PruneOptions,
) -> Result<(usize, u64)> {
    let listing: HashMap<String, i64> = store
        .list(layout::DATA)
        .await?
        .into_iter()
        .map(|o| (o.key, o.modified))
        .collect();
    let (mut n, mut bytes) = (0, 0);
    for (p, size) in packs {
        if !indexed.contains(p) && !pending.contains(p) {
            let name = layout::pack(p);
            let age = opts.now - listing.get(&name).copied().unwrap_or(opts.now);
            if age >= 2 * opts.grace_s && store.delete_if_allowed(&name).await? {
                n += 1;
                bytes += size;
            }
        }
    }
    Ok((n, bytes))
}
