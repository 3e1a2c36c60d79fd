//! Snapshot objects (FORMAT.md §6), written last by a backup.

use serde::{Deserialize, Serialize};

use crate::crypto::{self, Key};
use crate::id::{BlobId, PackId, SessionId, SnapshotId, SpaceId};
use crate::keys::SpaceKeys;
use crate::{Error, Result};

pub const SNAPSHOT_MAGIC: &[u8; 8] = b"PLHSNAP1";

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Summary {
    pub files: u64,
    pub dirs: u64,
    pub bytes_read: u64,
    pub bytes_new: u64,
    pub bytes_stored: u64,
    pub duration_s: f64,
    pub errors: u64,
    /// Size of all files in the snapshot (read or not).
    #[serde(default)]
    pub total_bytes: u64,
    /// Files read again because they changed since an earlier run saw
    /// them (the files cache knew the path), and their bytes: what a
    /// ransomware signal looks at (FORMAT.md §6).
    #[serde(default)]
    pub files_changed: u64,
    #[serde(default)]
    pub bytes_changed: u64,
}

impl Summary {
    /// This summary with its byte counts in buckets
    /// ([`crate::pack::summary_bucket`]): what a version-3 repository keeps,
    /// since an agent key reads its own snapshots' summaries.
    pub fn bucketed(&self) -> Summary {
        let b = crate::pack::summary_bucket;
        Summary {
            bytes_read: b(self.bytes_read),
            bytes_new: b(self.bytes_new),
            total_bytes: b(self.total_bytes),
            bytes_changed: b(self.bytes_changed),
            ..self.clone()
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    pub time: String,
    pub host: String,
    pub tags: Vec<String>,
    pub paths: Vec<String>,
    pub tree: BlobId,
    pub session: SessionId,
    pub parent: Option<SnapshotId>,
    pub agent_version: String,
    pub summary: Summary,
    /// Every pack holding a blob the trees name (FORMAT.md §6, §12). None in
    /// snapshots written before the field existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packs: Option<Vec<PackId>>,
}

pub fn snapshot_key_name(id: &SnapshotId) -> String {
    crate::layout::snapshot(id)
}

fn key(keys: &SpaceKeys, id: &SnapshotId) -> Key {
    keys.meta_key.derive("snapshot", &[&id.0])
}

fn aad(id: &SnapshotId, space: &SpaceId) -> Vec<u8> {
    [b"pulih/v1/snapshot".as_slice(), &id.0, &space.0].concat()
}

impl Snapshot {
    pub fn encode(&self, keys: &SpaceKeys, id: &SnapshotId) -> Vec<u8> {
        let json = serde_json::to_vec(self).expect("snapshots serialize");
        Self::seal_body(&json, keys, id)
    }

    /// A snapshot object holding `json` as its body, sealed as an agent
    /// key seals one (any bytes: what a writer of the space can store).
    pub fn seal_body(json: &[u8], keys: &SpaceKeys, id: &SnapshotId) -> Vec<u8> {
        let mut out = Vec::with_capacity(24 + json.len() + 16);
        out.extend_from_slice(SNAPSHOT_MAGIC);
        out.extend_from_slice(&keys.space.0);
        out.extend_from_slice(&crypto::seal(
            &key(keys, id),
            [0; 12],
            &aad(id, &keys.space),
            json,
        ));
        out
    }

    /// The space a snapshot object belongs to (clear, unauthenticated).
    pub fn space_of(bytes: &[u8], id: &SnapshotId) -> Result<SpaceId> {
        if bytes.len() < 24 + crypto::TAG_LEN || &bytes[..8] != SNAPSHOT_MAGIC {
            return Err(Error::corrupt(
                format!("snapshot {id}"),
                "not a snapshot object (bad magic or truncated)",
            ));
        }
        Ok(SpaceId::from_slice(&bytes[8..24]).expect("16 bytes"))
    }

    pub fn decode(bytes: &[u8], keys: &SpaceKeys, id: &SnapshotId) -> Result<Snapshot> {
        let what = || format!("snapshot {id}");
        if Self::space_of(bytes, id)? != keys.space {
            return Err(Error::corrupt(what(), "belongs to another dedup space"));
        }
        let json = crypto::open(&key(keys, id), [0; 12], &aad(id, &keys.space), &bytes[24..])
            .ok_or_else(|| {
                Error::corrupt(what(), "does not authenticate (damaged or tampered with)")
            })?;
        serde_json::from_slice(&json).map_err(|e| Error::corrupt(what(), e.to_string()))
    }

    /// The claimed time in nanoseconds since the epoch (None if unparsable).
    pub fn time_ns(&self) -> Option<i128> {
        time::OffsetDateTime::parse(&self.time, &time::format_description::well_known::Rfc3339)
            .ok()
            .map(|t| t.unix_timestamp_nanos())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn snapshot_round_trip(host in ".{0,20}", tags in proptest::collection::vec("[a-z]{1,8}", 0..3), files in any::<u64>(), packs in proptest::option::of(proptest::collection::vec(any::<[u8; 32]>(), 0..4))) {
            let keys = SpaceKeys::from_secret(SpaceId([5; 16]), &Key([6; 32]));
            let s = Snapshot { time: "2026-11-24T01:00:00Z".into(), host, tags, paths: vec!["/srv".into()],
                tree: BlobId([1; 32]), session: SessionId([2; 16]), parent: None, agent_version: "0.1.0".into(),
                summary: Summary { files, ..Default::default() },
                packs: packs.map(|v| v.into_iter().map(PackId).collect()) };
            let id = SnapshotId::random();
            let b = s.encode(&keys, &id);
            prop_assert_eq!(Snapshot::decode(&b, &keys, &id).unwrap(), s);
            prop_assert!(Snapshot::decode(&b, &keys, &SnapshotId::random()).is_err());
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let keys = SpaceKeys::from_secret(SpaceId([5; 16]), &Key([6; 32]));
            let _ = Snapshot::decode(&bytes, &keys, &SnapshotId::default());
        }
    }
}
