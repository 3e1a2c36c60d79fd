//! The agent's local files cache from arbitrary bytes: refused with an
//! error or read; what is read encodes back to the same bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pulih_core::files_cache::FilesCache;

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = FilesCache::decode(data) {
        assert_eq!(FilesCache::decode(&c.encode()).unwrap(), c);
    }
});
