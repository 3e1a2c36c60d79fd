//! Lock records (`locks/prune-…`, `locks/moves-…`, FORMAT.md §11) from
//! arbitrary bytes: refused with an error, never a panic, and never
//! accepted without the maintenance key's MAC. A body the input parses as
//! is sealed and must read back, and not under another object id.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pulih_core::crypto::Key;
use pulih_core::id::FileId;
use pulih_core::keys::MaintenanceKey;
use pulih_core::prune::lock::{check_record, seal_record};

fuzz_target!(|data: &[u8]| {
    let key = MaintenanceKey(Key([9; 32]));
    let id = FileId([3; 32]);
    for moves in [false, true] {
        let _ = check_record(data, &key, &id, moves);
        if let Some(sealed) = seal_record(data, &key, &id, moves) {
            assert!(check_record(&sealed, &key, &id, moves).is_ok());
            assert!(check_record(&sealed, &key, &FileId([4; 32]), moves).is_err());
        }
    }
});
