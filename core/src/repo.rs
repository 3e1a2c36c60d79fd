//! Opening a repository: `init`, as an agent, or as a reader.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};

use crate::config::ChunkerParams;
use crate::config::{ConfigBody, FORMAT_VERSION};
use crate::id::{BlobId, FileId, IndexId, PackId, SessionId, SnapshotId, SpaceId};
use crate::index::{IndexFile, SpaceIndex};
use crate::keys::{AgentKey, ReaderKeys, SessionKey, SpaceKeys};
use crate::pack::{self, BlobType, PackHeader, TRAILER_LEN, Trailer};
use crate::snapshot::Snapshot;
use crate::storage::{ObjectInfo, Store};
use crate::tree::Tree;
use crate::{Error, Result};

/// Concurrent object requests for metadata loads.
pub const LOAD_CONCURRENCY: usize = 8;

pub const WALIDATA_SLOT: &str = "walidata";
/// The key slot the walidata grants to the DRC executor for drills.
pub const DRC_DRILL_SLOT: &str = "drc-drill";

/// A repository whose `config` has been read.
#[derive(Clone)]
pub struct Repo {
    pub store: Store,
    pub config: ConfigBody,
}

/// Parameters for `init`.
#[derive(Clone, Debug)]
pub struct InitOptions {
    pub chunker: ChunkerParams,
    pub compression_level: i32,
    /// The KDF of the walidata slot.
    pub kdf: crate::keys::PassphraseKdf,
}

impl Default for InitOptions {
    fn default() -> Self {
        InitOptions {
            chunker: ChunkerParams::default(),
            compression_level: crate::config::DEFAULT_COMPRESSION_LEVEL,
            kdf: Default::default(),
        }
    }
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .expect("formats")
}

impl Repo {
    /// Create a repository with a passphrase-protected `walidata` slot.
    pub async fn init(
        store: Store,
        passphrase: &str,
        opts: &InitOptions,
    ) -> Result<(Repo, ReaderKeys)> {
        if store.exists(crate::layout::CONFIG).await? {
            return Err(Error::AlreadyExists {
                url: store.url().to_owned(),
            });
        }
        if passphrase.is_empty() {
            return Err(Error::Invalid("the passphrase is empty".into()));
        }
        opts.kdf.check()?;
        let repo_id = crate::id::RepoId::random();
        let reader = ReaderKeys::generate(repo_id);
        let mut recipients = BTreeMap::new();
        recipients.insert(WALIDATA_SLOT.to_owned(), reader.recipient());
        let config = ConfigBody {
            version: FORMAT_VERSION,
            repo_id,
            created: now_rfc3339(),
            chunker: opts.chunker,
            compression_level: opts.compression_level,
            recipients,
        };
        // The key slot first: a config without a readable slot would be a
        // repository nobody can read.
        store
            .put(
                &crate::layout::key_slot(WALIDATA_SLOT),
                reader
                    .wrap_with_passphrase(WALIDATA_SLOT, passphrase, opts.kdf)
                    .into(),
            )
            .await?;
        store
            .put(
                crate::layout::CONFIG,
                config.encode(&reader.master.config_mac_key()).into(),
            )
            .await?;
        Ok((Repo { store, config }, reader))
    }

    /// Read `config` (unauthenticated: used by agents).
    pub async fn open(store: Store) -> Result<Repo> {
        let bytes = match store.get(crate::layout::CONFIG).await {
            Ok(b) => b,
            Err(Error::Missing(_)) => {
                return Err(Error::NotARepository {
                    url: store.url().to_owned(),
                });
            }
            Err(e) => return Err(e),
        };
        let config = ConfigBody::parse_unverified(&bytes)?;
        Ok(Repo { store, config })
    }

    pub fn check_agent_key(&self, key: &AgentKey) -> Result<()> {
        if key.repo_id != self.config.repo_id {
            return Err(Error::KeyMismatch {
                key_repo: key.repo_id.to_hex(),
                repo: self.config.repo_id.to_hex(),
            });
        }
        Ok(())
    }

    /// Fetch many objects concurrently.
    pub async fn get_many(&self, keys: Vec<String>) -> Result<Vec<(String, Bytes)>> {
        futures::stream::iter(keys)
            .map(|k| async move {
                let b = self.store.get(&k).await?;
                Ok::<_, Error>((k, b))
            })
            .buffer_unordered(LOAD_CONCURRENCY)
            .try_collect()
            .await
    }

    /// The objects under `prefix` named exactly as the format names them
    /// (`data/<2 hex>/<hex id>`, `<prefix><hex id>`, lower case). Any other
    /// name is not one: a writer could otherwise put `snapshots/x/<id>`
    /// beside a real snapshot and give it a second listing, with a store
    /// time of its choosing.
    pub async fn list_ids(&self, prefix: &str) -> Result<Vec<(FileId, ObjectInfo)>> {
        let mut out = Vec::new();
        for o in self.store.list(prefix).await? {
            let name = o.key.rsplit('/').next().unwrap_or_default();
            let Ok(id) = name.parse::<FileId>() else {
                continue;
            };
            let canonical = if prefix == crate::layout::DATA {
                crate::layout::pack(&PackId(id.0))
            } else {
                format!("{prefix}{id}")
            };
            if o.key == canonical {
                out.push((id, o));
            }
        }
        Ok(out)
    }

    /// The pack's trailer and, given the space's keys, its header.
    pub async fn read_pack_header(
        &self,
        pack: &PackId,
        size: u64,
        keys: impl Fn(SpaceId) -> Option<SpaceKeys>,
    ) -> Result<(Trailer, Option<PackHeader>)> {
        let name = pack::pack_key_name(pack);
        if size < TRAILER_LEN as u64 {
            return Err(Error::corrupt(
                format!("pack {pack}"),
                "shorter than a pack trailer (truncated)",
            ));
        }
        let tail = self
            .store
            .get_range(&name, size - TRAILER_LEN as u64..size)
            .await?;
        let trailer = pack::parse_trailer(pack, &tail)?;
        let Some(k) = keys(trailer.space) else {
            return Ok((trailer, None));
        };
        let hlen = trailer.header_len as u64;
        if hlen + TRAILER_LEN as u64 > size {
            return Err(Error::corrupt(
                format!("pack {pack}"),
                "header longer than the pack (truncated)",
            ));
        }
        let hstart = size - TRAILER_LEN as u64 - hlen;
        let hct = self
            .store
            .get_range(&name, hstart..size - TRAILER_LEN as u64)
            .await?;
        let header = pack::decrypt_header(&k, pack, &hct)?;
        let end = header
            .entries
            .last()
            .map(|e| e.offset as u64 + e.stored_len as u64)
            .unwrap_or(0);
        if end != hstart {
            return Err(Error::corrupt(
                format!("pack {pack}"),
                "header does not match the pack's length",
            ));
        }
        Ok((trailer, Some(header)))
    }

    /// All pack objects, by id, with their sizes.
    pub async fn list_packs(&self) -> Result<HashMap<PackId, u64>> {
        Ok(self
            .list_ids(crate::layout::DATA)
            .await?
            .into_iter()
            .map(|(id, o)| (PackId(id.0), o.size))
            .collect())
    }
}

/// Indexes as loaded: per space, plus every pack id any index names.
#[derive(Default)]
pub struct LoadedIndexes {
    pub spaces: HashMap<SpaceId, SpaceIndex>,
    pub indexed_packs: HashSet<PackId>,
    pub files: Vec<(IndexId, SpaceId)>,
    /// Index files that could not be read, with the reason.
    pub damaged: Vec<(IndexId, Error)>,
    /// The spaces the clear headers of damaged index files name.
    pub damaged_spaces: HashSet<SpaceId>,
}

impl LoadedIndexes {
    /// Load every index file; decrypt those whose space `keys` can open.
    pub async fn load(
        repo: &Repo,
        keys: impl Fn(SpaceId) -> Option<SpaceKeys>,
    ) -> Result<LoadedIndexes> {
        let ids = repo.list_ids(crate::layout::INDEX).await?;
        let names = ids
            .iter()
            .map(|(id, _)| crate::index::index_key_name(id))
            .collect();
        let mut out = LoadedIndexes::default();
        for (name, bytes) in repo.get_many(names).await? {
            let id: IndexId = name.trim_start_matches(crate::layout::INDEX).parse()?;
            let (space, packs, _) = match IndexFile::decode_clear(&bytes, &id) {
                Ok(x) => x,
                Err(e) => {
                    out.damaged.push((id, e));
                    continue;
                }
            };
            let Some(k) = keys(space) else {
                out.indexed_packs.extend(packs);
                continue;
            };
            match IndexFile::decode(&bytes, &k, &id) {
                Ok(f) => {
                    let idx = out.spaces.entry(space).or_insert_with(SpaceIndex::new);
                    for p in &f.packs {
                        idx.add_pack(p.pack, &p.header);
                        out.indexed_packs.insert(p.pack);
                    }
                    out.files.push((id, space));
                }
                Err(e) => {
                    out.damaged.push((id, e));
                    out.damaged_spaces.insert(space);
                }
            }
        }
        for idx in out.spaces.values_mut() {
            idx.finalize();
        }
        Ok(out)
    }
}

/// A reader: holds the master secret and an identity; reads everything.
pub struct Reader {
    pub repo: Repo,
    pub keys: ReaderKeys,
    pub indexes: LoadedIndexes,
    sessions: Mutex<HashMap<SessionId, Arc<SessionKey>>>,
}

/// The key a reader opens a repository with.
#[derive(Clone)]
pub enum ReaderKey {
    /// The walidata's passphrase (slot `walidata`).
    Passphrase(String),
    /// An X25519 identity a slot was granted to (e.g. `drc-drill`).
    Identity {
        slot: String,
        identity: age::x25519::Identity,
    },
}

impl ReaderKey {
    /// Which slot it opens (for messages and the audit log).
    pub fn slot(&self) -> &str {
        match self {
            ReaderKey::Passphrase(_) => WALIDATA_SLOT,
            ReaderKey::Identity { slot, .. } => slot,
        }
    }
}

/// A snapshot as listed.
#[derive(Clone, Debug)]
pub struct ListedSnapshot {
    pub id: SnapshotId,
    pub space: SpaceId,
    pub snapshot: Snapshot,
    /// The store's own time of the snapshot object, Unix seconds.
    pub stored_at: i64,
}

impl Reader {
    /// Open with the walidata passphrase, load every index.
    pub async fn open(store: Store, passphrase: &str) -> Result<Reader> {
        let repo = Repo::open(store).await?;
        let slot = match repo
            .store
            .get(&crate::layout::key_slot(WALIDATA_SLOT))
            .await
        {
            Ok(b) => b,
            Err(Error::Missing(_)) => {
                return Err(Error::corrupt(
                    "repository",
                    format!("key slot `keys/{WALIDATA_SLOT}` is missing"),
                ));
            }
            Err(e) => return Err(e),
        };
        let keys = ReaderKeys::unwrap_with_passphrase(WALIDATA_SLOT, &slot, passphrase)?;
        Self::with_keys(repo, keys).await
    }

    /// Open with either kind of reader key.
    pub async fn open_with(store: Store, key: &ReaderKey) -> Result<Reader> {
        match key {
            ReaderKey::Passphrase(p) => Self::open(store, p).await,
            ReaderKey::Identity { slot, identity } => {
                Self::open_with_identity(store, slot, identity).await
            }
        }
    }

    /// Open with an X25519 identity that a key slot other than the
    /// walidata's was wrapped to (e.g. the DRC executor's `drc-drill`).
    pub async fn open_with_identity(
        store: Store,
        slot: &str,
        identity: &age::x25519::Identity,
    ) -> Result<Reader> {
        let repo = Repo::open(store).await?;
        let bytes = match repo.store.get(&crate::layout::key_slot(slot)).await {
            Ok(b) => b,
            Err(Error::Missing(_)) => {
                return Err(Error::Invalid(format!(
                    "the repository at {} has no `keys/{slot}` key slot: its walidata has not granted it (pulih repo grant-drill), or revoked it",
                    repo.store.url()
                )));
            }
            Err(e) => return Err(e),
        };
        let keys = ReaderKeys::unwrap_with_identity(slot, &bytes, identity)?;
        Self::with_keys(repo, keys).await
    }

    pub async fn with_keys(repo: Repo, keys: ReaderKeys) -> Result<Reader> {
        let config_bytes = repo.store.get(crate::layout::CONFIG).await?;
        ConfigBody::parse_verified(&config_bytes, &keys.master.config_mac_key())?;
        if keys.repo_id != repo.config.repo_id {
            return Err(Error::KeyMismatch {
                key_repo: keys.repo_id.to_hex(),
                repo: repo.config.repo_id.to_hex(),
            });
        }
        let master = keys.master.clone();
        let indexes = LoadedIndexes::load(&repo, |s| Some(master.space(s))).await?;
        Ok(Reader {
            repo,
            keys,
            indexes,
            sessions: Mutex::new(HashMap::new()),
        })
    }

    /// Raises the repository's format version to this build's
    /// ([`FORMAT_VERSION`]; `pulih repo upgrade`): from the next backup on,
    /// small files' frames are padded (FORMAT.md §4.2); everything stored
    /// stays as it is and reads as before. `Ok(None)` when it already is.
    /// Builds older than the new version no longer open the repository.
    /// The `config` object is replaced, so a store that never overwrites
    /// (the append-only gateway) refuses it.
    pub async fn upgrade(&self) -> Result<Option<(u32, u32)>> {
        let from = self.repo.config.version;
        if from >= FORMAT_VERSION {
            return Ok(None);
        }
        let mac_key = self.keys.master.config_mac_key();
        // What is stored now is what this reader opened: nothing changed
        // it in between (its MAC checked again).
        let stored = self.repo.store.get(crate::layout::CONFIG).await?;
        if ConfigBody::parse_verified(&stored, &mac_key)? != self.repo.config {
            return Err(Error::Invalid(
                "the repository's config changed after it was opened; run the upgrade again".into(),
            ));
        }
        let body = ConfigBody {
            version: FORMAT_VERSION,
            ..self.repo.config.clone()
        };
        self.repo
            .store
            .put(crate::layout::CONFIG, body.encode(&mac_key).into())
            .await?;
        Ok(Some((from, FORMAT_VERSION)))
    }

    pub fn space_keys(&self, space: SpaceId) -> SpaceKeys {
        self.keys.master.space(space)
    }

    pub fn index(&self, space: SpaceId) -> Option<&SpaceIndex> {
        self.indexes.spaces.get(&space)
    }

    pub async fn session(&self, id: SessionId) -> Result<Arc<SessionKey>> {
        if let Some(s) = self.sessions.lock().expect("session cache").get(&id) {
            return Ok(s.clone());
        }
        let bytes = self
            .repo
            .store
            .get(&crate::layout::session_key(&id))
            .await?;
        let s = Arc::new(SessionKey::unwrap(id, &bytes, &self.keys.identity)?);
        self.sessions
            .lock()
            .expect("session cache")
            .insert(id, s.clone());
        Ok(s)
    }

    /// Read one blob of a space (fetches only its bytes).
    pub async fn read_blob(&self, space: SpaceId, id: &BlobId, kind: BlobType) -> Result<Vec<u8>> {
        let loc = self
            .index(space)
            .and_then(|i| i.lookup(id))
            .ok_or_else(|| {
                Error::corrupt(
                    format!("{} blob {id}", kind.name()),
                    "no index lists it (run `pulih repo repair-index`)",
                )
            })?;
        self.read_blob_at(space, &loc).await
    }

    /// Read, authenticate and check the blob at a known location.
    pub async fn read_blob_at(
        &self,
        space: SpaceId,
        loc: &crate::index::Location,
    ) -> Result<Vec<u8>> {
        let mut raws = self.read_unit(space, &[loc]).await?;
        Ok(raws.pop().expect("one blob asked, one read"))
    }

    /// Read blobs of one unit of a pack (one blob, or blobs of one frame:
    /// the same pack and offset), fetched, authenticated and decompressed
    /// once; each is re-hashed.
    pub async fn read_unit(
        &self,
        space: SpaceId,
        locs: &[&crate::index::Location],
    ) -> Result<Vec<Vec<u8>>> {
        let Some(first) = locs.first() else {
            return Ok(Vec::new());
        };
        debug_assert!(
            locs.iter()
                .all(|l| l.pack == first.pack && pack::same_unit(&l.entry, &first.entry))
        );
        let session = self.session(first.session).await?;
        let e = &first.entry;
        let ct = self
            .repo
            .store
            .get_range(
                &pack::pack_key_name(&first.pack),
                e.offset as u64..e.offset as u64 + e.stored_len as u64,
            )
            .await?;
        let keys = self.space_keys(space);
        let pk = session.pack_key(&first.pack);
        let pack_id = first.pack;
        let entries: Vec<pack::PackEntry> = locs.iter().map(|l| l.entry.clone()).collect();
        tokio::task::spawn_blocking(move || {
            let unit = pack::Unit::open(&pk, &pack_id, &entries[0], &ct, pack::need_of(&entries))?;
            entries
                .iter()
                .map(|e| unit.blob(&pack_id, e, &keys).map(<[u8]>::to_vec))
                .collect()
        })
        .await
        .map_err(|e| Error::Task(e.to_string()))?
    }

    pub async fn read_tree(&self, space: SpaceId, id: &BlobId) -> Result<Tree> {
        let b = self.read_blob(space, id, BlobType::Tree).await?;
        Tree::decode(&b, id)
    }

    /// All snapshots, oldest first.
    /// Every snapshot that authenticates. One that does not (junk any
    /// writer of the agency can put under `snapshots/`) is skipped with a
    /// warning, so it cannot stop another server's restore; `verify`
    /// names it.
    pub async fn snapshots(&self) -> Result<Vec<ListedSnapshot>> {
        let master = self.keys.master.clone();
        let (listed, unreadable) =
            list_readable_snapshots(&self.repo, |s| Some(master.space(s))).await?;
        for u in &unreadable {
            tracing::warn!(object = %u.name, error = %u.error, "skipped a snapshot that does not authenticate (run `verify`)");
        }
        Ok(listed)
    }

    /// Find a snapshot by id, unique id prefix, or `latest`.
    pub async fn find_snapshot(&self, which: &str) -> Result<ListedSnapshot> {
        let all = self.snapshots().await?;
        pick_snapshot(all, which)
    }
}

pub fn pick_snapshot(all: Vec<ListedSnapshot>, which: &str) -> Result<ListedSnapshot> {
    if which == "latest" {
        return all
            .into_iter()
            .last()
            .ok_or_else(|| Error::NoSuchSnapshot("latest".into()));
    }
    let mut m: Vec<ListedSnapshot> = all
        .into_iter()
        .filter(|s| s.id.to_hex().starts_with(which))
        .collect();
    match m.len() {
        1 => Ok(m.remove(0)),
        0 => Err(Error::NoSuchSnapshot(which.into())),
        n => Err(Error::Invalid(format!(
            "snapshot prefix `{which}` is ambiguous ({n} snapshots match)"
        ))),
    }
}

/// List and decrypt snapshots whose space `keys` opens; others are skipped.
pub async fn list_snapshots(
    repo: &Repo,
    keys: impl Fn(SpaceId) -> Option<SpaceKeys>,
) -> Result<Vec<ListedSnapshot>> {
    let (listed, unreadable) = list_readable_snapshots(repo, keys).await?;
    match unreadable.into_iter().next() {
        Some(u) => Err(u.error),
        None => Ok(listed),
    }
}

/// An object that was listed but is not what its prefix says or does not
/// authenticate: set aside, with why (FORMAT.md §11, "What does not
/// authenticate").
#[derive(Debug)]
pub struct Unreadable {
    /// Its object name.
    pub name: String,
    /// The dedup space its clear header names, when it names one.
    pub space: Option<SpaceId>,
    pub error: Error,
}

impl std::fmt::Display for Unreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.name, self.error)
    }
}

/// As [`list_snapshots`], but a snapshot object that is not one or does
/// not authenticate is set aside (its name and why) instead of failing
/// the listing. A store that cannot be listed or read still fails it.
pub async fn list_readable_snapshots(
    repo: &Repo,
    keys: impl Fn(SpaceId) -> Option<SpaceKeys>,
) -> Result<(Vec<ListedSnapshot>, Vec<Unreadable>)> {
    let ids = repo.list_ids(crate::layout::SNAPSHOTS).await?;
    let stored: HashMap<FileId, i64> = ids.iter().map(|(id, o)| (*id, o.modified)).collect();
    let names = ids
        .iter()
        .map(|(id, _)| crate::snapshot::snapshot_key_name(id))
        .collect();
    let mut out = Vec::new();
    let mut unreadable = Vec::new();
    for (name, bytes) in repo.get_many(names).await? {
        let id: SnapshotId = name.trim_start_matches(crate::layout::SNAPSHOTS).parse()?;
        let space = match Snapshot::space_of(&bytes, &id) {
            Ok(s) => s,
            Err(error) => {
                unreadable.push(Unreadable {
                    name,
                    space: None,
                    error,
                });
                continue;
            }
        };
        let Some(k) = keys(space) else { continue };
        let snapshot = match Snapshot::decode(&bytes, &k, &id) {
            Ok(s) => s,
            Err(error) => {
                unreadable.push(Unreadable {
                    name,
                    space: Some(space),
                    error,
                });
                continue;
            }
        };
        out.push(ListedSnapshot {
            id,
            space,
            snapshot,
            stored_at: stored[&id],
        });
    }
    out.sort_by(|a, b| {
        (a.snapshot.time_ns(), a.stored_at).cmp(&(b.snapshot.time_ns(), b.stored_at))
    });
    Ok((out, unreadable))
}
