//! The agent's local files cache from arbitrary bytes: refused with an
//! error or read; what is read encodes back to the same cache. Each input
//! is tried as given and, so the fuzzer reaches the entry parser behind the
//! checksum, as a body with the magic in front and a valid checksum behind.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pulih_core::files_cache::FilesCache;

fn check(bytes: &[u8]) {
    if let Ok(c) = FilesCache::decode(bytes) {
        assert_eq!(FilesCache::decode(&c.encode()).unwrap(), c);
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    let mut framed = b"PLHFCAC1".to_vec();
    framed.extend_from_slice(data);
    let sum = blake3::hash(&framed);
    framed.extend_from_slice(sum.as_bytes());
    check(&framed);
});
