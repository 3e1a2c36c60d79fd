//! Snapshot objects (FORMAT.md §7) from arbitrary bytes, and, since any
//! agent key of the agency can write an authenticated snapshot with any
//! JSON inside, arbitrary bytes sealed as a snapshot's body: refused with
//! an error or decoded, never a panic; what decodes re-encodes to a
//! snapshot that decodes to itself, and never under another id or space.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pulih_core::crypto::Key;
use pulih_core::id::{FileId, SpaceId};
use pulih_core::keys::SpaceKeys;
use pulih_core::snapshot::Snapshot;

fuzz_target!(|data: &[u8]| {
    let keys = SpaceKeys::from_secret(SpaceId([5; 16]), &Key([7; 32]));
    let id = FileId([6; 32]);
    let _ = Snapshot::space_of(data, &id);
    let _ = Snapshot::decode(data, &keys, &id);
    let sealed = Snapshot::seal_body(data, &keys, &id);
    if let Ok(s) = Snapshot::decode(&sealed, &keys, &id) {
        let _ = s.time_ns();
        let again = s.encode(&keys, &id);
        assert_eq!(Snapshot::decode(&again, &keys, &id).unwrap(), s);
        assert!(Snapshot::decode(&again, &keys, &FileId([8; 32])).is_err());
        let other = SpaceKeys::from_secret(SpaceId([9; 16]), &Key([7; 32]));
        assert!(Snapshot::decode(&again, &other, &id).is_err());
    }
});
