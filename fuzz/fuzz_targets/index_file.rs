//! Index files (versions 1 and 2): the clear part, the authenticated
//! decode, and the body parser that runs after decryption.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pulih_core::crypto::Key;
use pulih_core::id::{IndexId, PackId, SpaceId};
use pulih_core::index::IndexFile;
use pulih_core::keys::SpaceKeys;
use pulih_core::pack::MAX_FRAME_RAW;

fuzz_target!(|data: &[u8]| {
    let id = IndexId::default();
    let keys = SpaceKeys::from_secret(SpaceId::default(), &Key([7; 32]));
    let _ = IndexFile::decode_clear(data, &id);
    let _ = IndexFile::decode(data, &keys, &id);
    let first = data.first().copied().unwrap_or(0);
    let n = first as usize % 4;
    let v2 = first & 0x80 != 0;
    let packs = vec![PackId::default(); n];
    if let Ok(ps) = IndexFile::decode_body(data.get(1..).unwrap_or_default(), packs, &id, v2) {
        for p in ps {
            for e in &p.header.entries {
                assert!(
                    !e.is_framed() || e.inner as u64 + e.raw_len as u64 <= MAX_FRAME_RAW as u64
                );
            }
        }
    }
});
