//! Tree blobs and snapshot objects from arbitrary bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pulih_core::crypto::Key;
use pulih_core::id::{BlobId, SnapshotId, SpaceId};
use pulih_core::keys::SpaceKeys;
use pulih_core::snapshot::Snapshot;
use pulih_core::tree::Tree;

fuzz_target!(|data: &[u8]| {
    if let Ok(t) = Tree::decode(data, &BlobId::default()) {
        for n in &t.nodes {
            let _ = n.name_bytes();
            let _ = n.target_bytes();
        }
    }
    let keys = SpaceKeys::from_secret(SpaceId::default(), &Key([7; 32]));
    let _ = Snapshot::decode(data, &keys, &SnapshotId::default());
});
