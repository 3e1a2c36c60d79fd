//! Pack trailers and decrypted pack headers from arbitrary bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pulih_core::id::PackId;
use pulih_core::pack::{decode_header, parse_trailer};

fuzz_target!(|data: &[u8]| {
    let _ = parse_trailer(&PackId::default(), data);
    if let Ok(h) = decode_header(data, "fuzz") {
        // Offsets are recomputed and must be consistent.
        let mut off = 0u64;
        for e in &h.entries {
            assert_eq!(e.offset as u64, off);
            off += e.stored_len as u64;
        }
    }
});
