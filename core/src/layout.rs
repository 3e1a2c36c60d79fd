//! The repository's object names (docs/FORMAT.md §2): the one owner of
//! every name under a repository's prefix. Everything else builds and
//! parses names through these functions.
//!
//! ```text
//! config                  format version, repo id, chunker params
//! keys/<slot>             reader key material (walidata, drc-drill, …)
//! keys/sessions/<id>      a backup run's session key, wrapped to the readers
//! data/<2 hex>/<pack>     packs
//! index/<id>              index files
//! snapshots/<id>          snapshots
//! locks/prune-<id>        packs condemned by a prune (phase 1 → phase 2)
//! locks/moves-<id>        where a repack moved blobs
//! reports/…               drill and failover reports (named by pulih-model's
//!                         `drill::report_store_key`)
//! benchmark/<random>/…    `pulih benchmark`'s scratch objects, deleted when
//!                         it ends (not part of the repository)
//! ```

use crate::id::{FileId, IndexId, PackId, SnapshotId};

/// The repository's config object.
pub const CONFIG: &str = "config";

/// Prefix of every key slot and of the session keys.
pub const KEYS: &str = "keys/";
/// Prefix of the wrapped session keys.
pub const SESSIONS: &str = "keys/sessions/";
/// Prefix of every pack.
pub const DATA: &str = "data/";
/// Prefix of the index files.
pub const INDEX: &str = "index/";
/// Prefix of the snapshots.
pub const SNAPSHOTS: &str = "snapshots/";
/// Prefix of the lock records.
pub const LOCKS: &str = "locks/";
/// Prefix of the prune records (packs condemned, deleted after the grace).
pub const PRUNE_LOCKS: &str = "locks/prune-";
/// Prefix of the moves records (where a repack put the live blobs).
pub const MOVES_LOCKS: &str = "locks/moves-";

/// Prefix of the bindings (which server a space belongs to, §13).
pub const BINDINGS: &str = "bindings/";

/// Prefix of `pulih benchmark`'s scratch prefixes.
pub const BENCHMARK: &str = "benchmark/";

/// One benchmark run's scratch prefix, `benchmark/<run>/`: everything the
/// run writes is under it, and it deletes all of it.
pub fn benchmark_scratch(run: &str) -> String {
    format!("{BENCHMARK}{run}/")
}

/// A reader key slot, e.g. `keys/walidata`.
pub fn key_slot(slot: &str) -> String {
    format!("{KEYS}{slot}")
}

/// A backup run's wrapped session key.
pub fn session_key(id: &impl std::fmt::Display) -> String {
    format!("{SESSIONS}{id}")
}

/// A pack, fanned out by the first byte of its id.
pub fn pack(id: &PackId) -> String {
    let h = id.to_hex();
    format!("{DATA}{}/{}", &h[..2], h)
}

/// An index file.
pub fn index(id: &IndexId) -> String {
    format!("{INDEX}{id}")
}

/// A snapshot.
pub fn snapshot(id: &SnapshotId) -> String {
    format!("{SNAPSHOTS}{id}")
}

/// A snapshot named by its hex id, as retention decisions carry it.
pub fn snapshot_hex(id: &str) -> String {
    format!("{SNAPSHOTS}{id}")
}

/// A prune record.
pub fn prune_lock(id: &FileId) -> String {
    format!("{PRUNE_LOCKS}{id}")
}

/// A moves record.
pub fn moves_lock(id: &FileId) -> String {
    format!("{MOVES_LOCKS}{id}")
}

/// A binding.
pub fn binding(id: &FileId) -> String {
    format!("{BINDINGS}{id}")
}

/// The id at the end of `name` under `prefix`, if `name` is one.
pub fn parse_id<T: std::str::FromStr>(name: &str, prefix: &str) -> Option<T> {
    name.strip_prefix(prefix).and_then(|h| h.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_what_format_md_says() {
        let p: PackId = "ab".repeat(32).parse().unwrap();
        assert_eq!(pack(&p), format!("data/ab/{}", "ab".repeat(32)));
        let f: FileId = "01".repeat(32).parse().unwrap();
        assert_eq!(prune_lock(&f), format!("locks/prune-{}", "01".repeat(32)));
        assert_eq!(moves_lock(&f), format!("locks/moves-{}", "01".repeat(32)));
        assert_eq!(parse_id::<FileId>(&prune_lock(&f), PRUNE_LOCKS), Some(f));
        assert_eq!(parse_id::<FileId>(&moves_lock(&f), PRUNE_LOCKS), None);
        assert_eq!(key_slot("walidata"), "keys/walidata");
        assert_eq!(benchmark_scratch("0a1b"), "benchmark/0a1b/");
    }
}
