//! Loading trees for the walks over a snapshot (restore, verify, prune).
//!
//! A walk asks for a whole level of the tree at once ([`TreeLoader::load`]):
//! every pack holding trees that it needs is fetched once, whole (a tree
//! pack holds the directories of one backup, a few MB), several packs in
//! flight, and kept for the levels below; the level's trees are then
//! opened on the blocking pool, in parallel. Over an object store this
//! costs one request per tree pack instead of one round trip per
//! directory, one after another.
//!
//! Memory: the kept pack bytes (the snapshot's trees, as stored), up to
//! [`CACHE_MAX`], and one level's decoded trees. Trees are not kept once
//! handed out: a subtree shared by many directories (every empty directory
//! shares one) is decoded again from the kept bytes where it recurs, so
//! nothing here grows with the tree's expansion. The walks themselves
//! bound what they build from the trees.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};

use crate::id::{BlobId, PackId, SpaceId};
use crate::index::{Location, SpaceIndex};
use crate::pack::{self, BlobType};
use crate::repo::Reader;
use crate::tree::Tree;
use crate::{Error, Result};

/// The most tree-pack bytes kept at once; past it, the packs fetched first
/// are dropped (and fetched again if a later level needs them).
pub const CACHE_MAX: usize = 256 << 20;
/// A tree pack larger than this is read blob by blob, not whole.
const WHOLE_PACK_MAX: u64 = 64 << 20;
/// Packs fetched at once: enough to keep a remote store busy, and the trees
/// of one backup are in a handful of packs anyway.
const FETCH_CONCURRENCY: usize = 16;
/// Trees opened per task on the blocking pool.
const DECODE_BATCH: usize = 256;

/// What one requested tree turned out to be.
pub type Loaded = Result<Arc<Tree>>;

/// Loads trees of one space for a walk.
pub struct TreeLoader<'a> {
    reader: &'a Reader,
    space: SpaceId,
    /// Where to look blobs up, in order (prune adds the condemned packs').
    indexes: Vec<&'a SpaceIndex>,
    ends: HashMap<PackId, u64>,
    packs: HashMap<PackId, Bytes>,
    /// Fetch order, for dropping the oldest when over [`CACHE_MAX`].
    order: Vec<PackId>,
    cached: usize,
    /// Packs fetched (each once unless dropped from the cache).
    pub fetches: usize,
}

/// A pack that could not be read, kept so each of its trees reports it.
#[derive(Clone)]
enum Unreadable {
    Missing(String),
    Corrupt(String, String),
}

impl Unreadable {
    fn of(e: &Error) -> Option<Unreadable> {
        match e {
            Error::Missing(k) => Some(Unreadable::Missing(k.clone())),
            Error::Corrupt { what, detail } => {
                Some(Unreadable::Corrupt(what.clone(), detail.clone()))
            }
            _ => None,
        }
    }

    fn error(&self) -> Error {
        match self {
            Unreadable::Missing(k) => Error::Missing(k.clone()),
            Unreadable::Corrupt(w, d) => Error::corrupt(w.clone(), d.clone()),
        }
    }
}

impl<'a> TreeLoader<'a> {
    pub fn new(reader: &'a Reader, space: SpaceId, indexes: Vec<&'a SpaceIndex>) -> Self {
        let mut ends = HashMap::new();
        for i in indexes.iter().rev() {
            ends.extend(i.tree_pack_ends());
        }
        TreeLoader {
            reader,
            space,
            indexes,
            ends,
            packs: HashMap::new(),
            order: Vec::new(),
            cached: 0,
            fetches: 0,
        }
    }

    /// The loader of a reader's own index of `space` (none if it has no
    /// index: every tree then fails as unindexed).
    pub fn of(reader: &'a Reader, space: SpaceId) -> Self {
        Self::new(reader, space, reader.index(space).into_iter().collect())
    }

    pub fn lookup(&self, id: &BlobId) -> Option<Location> {
        self.indexes.iter().find_map(|i| i.lookup(id))
    }

    /// Loads `ids` (duplicates loaded once). Each gets its tree or what is
    /// wrong with it (not indexed, its pack missing or damaged, the blob
    /// not authentic); a store that cannot be reached fails the whole call.
    pub async fn load(&mut self, ids: &[BlobId]) -> Result<HashMap<BlobId, Loaded>> {
        let mut out: HashMap<BlobId, Loaded> = HashMap::new();
        let mut wanted: Vec<(BlobId, Location)> = Vec::new();
        let mut seen = HashSet::new();
        for id in ids {
            if !seen.insert(*id) {
                continue;
            }
            match self.lookup(id) {
                Some(loc) if loc.entry.kind == BlobType::Tree => wanted.push((*id, loc)),
                Some(_) => {
                    out.insert(
                        *id,
                        Err(Error::corrupt(
                            format!("tree {id}"),
                            "the index lists it as a data blob",
                        )),
                    );
                }
                None => {
                    out.insert(
                        *id,
                        Err(Error::corrupt(
                            format!("tree blob {id}"),
                            "no index lists it (run `pulih repo repair-index`)",
                        )),
                    );
                }
            }
        }

        // Whole tree packs not yet here, several at once.
        let mut need: HashMap<PackId, u64> = HashMap::new();
        let mut singles: Vec<usize> = Vec::new();
        for (i, (_, loc)) in wanted.iter().enumerate() {
            if self.packs.contains_key(&loc.pack) {
                continue;
            }
            match self.ends.get(&loc.pack) {
                Some(&end) if end <= WHOLE_PACK_MAX => {
                    need.insert(loc.pack, end);
                }
                _ => singles.push(i),
            }
        }
        let store = &self.reader.repo.store;
        let fetched: Vec<(PackId, Result<Bytes>)> =
            futures::stream::iter(need)
                .map(|(p, end)| async move {
                    (p, store.get_range(&pack::pack_key_name(&p), 0..end).await)
                })
                .buffer_unordered(FETCH_CONCURRENCY)
                .collect()
                .await;
        let mut unreadable: HashMap<PackId, Unreadable> = HashMap::new();
        for (p, r) in fetched {
            self.fetches += 1;
            match r {
                Ok(b) => self.keep(p, b),
                Err(e) => match Unreadable::of(&e) {
                    Some(u) => {
                        unreadable.insert(p, u);
                    }
                    None => return Err(e),
                },
            }
        }
        // A tree in a pack too large to keep: its own bytes only.
        let mut single_bytes: HashMap<usize, Result<Bytes>> = futures::stream::iter(singles)
            .map(|i| {
                let e = &wanted[i].1;
                let name = pack::pack_key_name(&e.pack);
                let range =
                    e.entry.offset as u64..e.entry.offset as u64 + e.entry.stored_len as u64;
                async move { (i, store.get_range(&name, range).await) }
            })
            .buffer_unordered(FETCH_CONCURRENCY)
            .collect()
            .await;

        // Open them on the blocking pool.
        let mut jobs: Vec<Vec<(BlobId, Location, Bytes)>> = Vec::new();
        let mut batch = Vec::new();
        for (i, (id, loc)) in wanted.into_iter().enumerate() {
            let ct = if let Some(r) = single_bytes.remove(&i) {
                match r {
                    Ok(b) => b,
                    Err(e) => match Unreadable::of(&e) {
                        Some(_) => {
                            out.insert(id, Err(e));
                            continue;
                        }
                        None => return Err(e),
                    },
                }
            } else if let Some(u) = unreadable.get(&loc.pack) {
                out.insert(id, Err(u.error()));
                continue;
            } else {
                let whole = &self.packs[&loc.pack];
                let (s, e) = (
                    loc.entry.offset as usize,
                    loc.entry.offset as usize + loc.entry.stored_len as usize,
                );
                if e > whole.len() {
                    out.insert(
                        id,
                        Err(Error::corrupt(
                            format!("pack {}", loc.pack),
                            format!("tree {id} lies beyond the end of the pack (truncated)"),
                        )),
                    );
                    continue;
                }
                whole.slice(s..e)
            };
            batch.push((id, loc, ct));
            if batch.len() == DECODE_BATCH {
                jobs.push(std::mem::take(&mut batch));
            }
        }
        if !batch.is_empty() {
            jobs.push(batch);
        }
        // The jobs hold their bytes: the cache may drop packs now.
        self.trim();
        let keys = self.reader.space_keys(self.space);
        let reader = self.reader;
        let opened: Vec<Vec<(BlobId, Loaded)>> = futures::stream::iter(jobs)
            .map(|job| {
                let keys = keys.clone();
                async move {
                    let mut pks = Vec::with_capacity(job.len());
                    for (_, loc, _) in &job {
                        pks.push(
                            reader
                                .session(loc.session)
                                .await
                                .map(|s| s.pack_key(&loc.pack)),
                        );
                    }
                    tokio::task::spawn_blocking(move || {
                        job.into_iter()
                            .zip(pks)
                            .map(|((id, loc, ct), pk)| {
                                let tree = pk
                                    .and_then(|pk| {
                                        pack::open_blob(&pk, &loc.pack, &loc.entry, &ct, &keys)
                                    })
                                    .and_then(|raw| Tree::decode(&raw, &id))
                                    .map(Arc::new);
                                (id, tree)
                            })
                            .collect::<Vec<_>>()
                    })
                    .await
                    .map_err(|e| Error::Task(e.to_string()))
                }
            })
            .buffer_unordered(4)
            .try_collect()
            .await?;
        out.extend(opened.into_iter().flatten());
        Ok(out)
    }

    fn keep(&mut self, pack: PackId, bytes: Bytes) {
        self.cached += bytes.len();
        self.packs.insert(pack, bytes);
        self.order.push(pack);
    }

    fn trim(&mut self) {
        while self.cached > CACHE_MAX && self.order.len() > 1 {
            let old = self.order.remove(0);
            if let Some(b) = self.packs.remove(&old) {
                self.cached -= b.len();
            }
        }
    }
}
