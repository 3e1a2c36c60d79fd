//! Lock records (FORMAT.md §11): `locks/prune-<id>` names the packs a prune
//! condemned, `locks/moves-<id>` where a repack moved live blobs. Both are
//! JSON with a MAC under the maintenance key, so the reader's prune and the
//! maintenance key's prune read and write the same records.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::id::{FileId, PackId};
use crate::keys::MaintenanceKey;
use crate::layout;
use crate::repo::Unreadable;
use crate::storage::Store;
use crate::{Error, Result};

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PruneBody {
    pub created: i64,
    pub packs: Vec<PackId>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MovesBody {
    pub created: i64,
    pub moves: BTreeMap<PackId, Vec<PackId>>,
}

/// A record as stored: its body and the body's MAC.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Record<T> {
    body: T,
    mac: String,
}

/// The MAC of a lock record's body, bound to the record's id.
fn lock_mac<T: Serialize>(key: &MaintenanceKey, id: &FileId, body: &T) -> String {
    let bytes = [
        id.0.as_slice(),
        &serde_json::to_vec(body).expect("serializes"),
    ]
    .concat();
    hex::encode(crate::crypto::mac(&key.lock_mac_key(), &bytes))
}

/// Every record under `prefix` ([`layout::PRUNE_LOCKS`] or
/// [`layout::MOVES_LOCKS`]) with its object name, each MAC checked. One
/// that does not parse or verify is set aside (the second list): any
/// writer of the agency can put junk under `locks/`, and what holding it
/// back costs is the caller's to decide (FORMAT.md §11).
pub(crate) async fn read<T: Serialize + DeserializeOwned>(
    store: &Store,
    key: &MaintenanceKey,
    prefix: &str,
) -> Result<(Vec<(String, T)>, Vec<Unreadable>)> {
    let mut out = Vec::new();
    let mut unreadable = Vec::new();
    for o in store.list(layout::LOCKS).await? {
        let Some(id) = layout::parse_id::<FileId>(&o.key, prefix) else {
            continue;
        };
        let bytes = store.get(&o.key).await?;
        match parse::<T>(&bytes, key, &id, &o.key) {
            Ok(body) => out.push((o.key, body)),
            Err(error) => unreadable.push(Unreadable {
                name: o.key,
                space: None,
                error,
            }),
        }
    }
    Ok((out, unreadable))
}

/// One record's body from its stored bytes, its MAC checked (`name` is
/// the object's, for the error).
fn parse<T: Serialize + DeserializeOwned>(
    bytes: &[u8],
    key: &MaintenanceKey,
    id: &FileId,
    name: &str,
) -> Result<T> {
    match serde_json::from_slice::<Record<T>>(bytes) {
        Ok(rec) if lock_mac(key, id, &rec.body) == rec.mac => Ok(rec.body),
        Ok(_) => Err(Error::corrupt(name, "its MAC does not verify")),
        Err(e) => Err(Error::corrupt(name, e.to_string())),
    }
}

/// Checks stored bytes as a prune record (`moves`: as a moves record)
/// with object id `id`, as [`read`] does: for the fuzz target.
pub fn check_record(bytes: &[u8], key: &MaintenanceKey, id: &FileId, moves: bool) -> Result<()> {
    if moves {
        parse::<MovesBody>(bytes, key, id, "locks/moves").map(|_| ())
    } else {
        parse::<PruneBody>(bytes, key, id, "locks/prune").map(|_| ())
    }
}

/// The stored bytes of a record with body `body_json` (a prune record's,
/// or with `moves` a moves record's) under `id`, MAC included; None when
/// the JSON is not such a body. For the fuzz target: what a maintenance
/// key writes must read back.
pub fn seal_record(
    body_json: &[u8],
    key: &MaintenanceKey,
    id: &FileId,
    moves: bool,
) -> Option<Vec<u8>> {
    fn seal<T: Serialize + DeserializeOwned>(
        j: &[u8],
        key: &MaintenanceKey,
        id: &FileId,
    ) -> Option<Vec<u8>> {
        let body: T = serde_json::from_slice(j).ok()?;
        let mac = lock_mac(key, id, &body);
        Some(serde_json::to_vec(&Record { body, mac }).expect("serializes"))
    }
    if moves {
        seal::<MovesBody>(body_json, key, id)
    } else {
        seal::<PruneBody>(body_json, key, id)
    }
}

/// Stores a new record under `name(id)` for a fresh id.
async fn write<T: Serialize>(
    store: &Store,
    key: &MaintenanceKey,
    name: fn(&FileId) -> String,
    body: T,
) -> Result<()> {
    let id = FileId::random();
    let mac = lock_mac(key, &id, &body);
    store
        .put(
            &name(&id),
            serde_json::to_vec(&Record { body, mac })
                .expect("serializes")
                .into(),
        )
        .await
}

/// Records that `packs` were condemned at `now`.
pub(crate) async fn write_prune(
    store: &Store,
    key: &MaintenanceKey,
    now: i64,
    packs: Vec<PackId>,
) -> Result<()> {
    let body = PruneBody {
        created: now,
        packs,
    };
    write(store, key, layout::prune_lock, body).await
}

/// Records where a repack at `now` moved the live blobs of old packs.
pub(crate) async fn write_moves(
    store: &Store,
    key: &MaintenanceKey,
    now: i64,
    moves: BTreeMap<PackId, Vec<PackId>>,
) -> Result<()> {
    let body = MovesBody {
        created: now,
        moves,
    };
    write(store, key, layout::moves_lock, body).await
}
