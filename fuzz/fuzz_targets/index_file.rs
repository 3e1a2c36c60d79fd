//! Index files: the clear part, the authenticated decode, and the body
//! parser that runs after decryption.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pulih_core::crypto::Key;
use pulih_core::id::{IndexId, PackId, SpaceId};
use pulih_core::index::IndexFile;
use pulih_core::keys::SpaceKeys;

fuzz_target!(|data: &[u8]| {
    let id = IndexId::default();
    let keys = SpaceKeys::from_secret(SpaceId::default(), &Key([7; 32]));
    let _ = IndexFile::decode_clear(data, &id);
    let _ = IndexFile::decode(data, &keys, &id);
    let n = data.first().copied().unwrap_or(0) as usize % 4;
    let packs = vec![PackId::default(); n];
    let _ = IndexFile::decode_body(data.get(1..).unwrap_or_default(), packs, &id);
});
