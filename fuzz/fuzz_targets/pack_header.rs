//! Pack trailers and decrypted pack headers (versions 1 and 2, padded
//! frames of format 3 included) from arbitrary bytes, and the blobs such
//! entries name in a frame's bytes (a padded slot's length included).
#![no_main]
use libfuzzer_sys::fuzz_target;
use pulih_core::id::PackId;
use pulih_core::pack::{
    MAX_FRAME_RAW, decode_header, frame_blob, max_blob_len, parse_trailer, units,
};

fuzz_target!(|data: &[u8]| {
    let _ = parse_trailer(&PackId::default(), data);
    if let Ok(h) = decode_header(data, "fuzz") {
        // Units (a blob, or a frame's blobs) follow one another from 0,
        // a frame's blobs agree on where it is, and no blob reaches past
        // the largest frame a reader will decompress.
        let mut off = 0u64;
        for unit in units(&h.entries, |e| e) {
            assert_eq!(unit[0].offset as u64, off);
            for e in unit {
                assert_eq!(
                    (e.offset, e.stored_len),
                    (unit[0].offset, unit[0].stored_len)
                );
                if e.is_framed() {
                    assert!(e.inner as u64 + e.raw_len as u64 <= MAX_FRAME_RAW as u64);
                    // The same bytes as a frame's plaintext: a blob found
                    // is inside them and no longer than its entry allows.
                    if let Ok(b) = frame_blob(data, e) {
                        assert!(b.len() <= max_blob_len(e) as usize);
                        let at = b.as_ptr() as usize - data.as_ptr() as usize;
                        assert!(at + b.len() <= data.len());
                    }
                } else {
                    assert_eq!((unit.len(), e.inner), (1, 0));
                }
            }
            off += unit[0].stored_len as u64;
        }
    }
});
