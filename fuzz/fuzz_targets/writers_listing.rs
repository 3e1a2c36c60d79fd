//! A store's `ListObjectsV2` answer with owners (core/src/writers.rs),
//! which the controller's ransomware signals read: arbitrary text is
//! parsed or refused with an error, never a panic; a truncated page
//! always carries the token of the next.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pulih_core::writers::parse_page;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok((_, next)) = parse_page(text) {
        assert!(next.as_ref().is_none_or(|t| !t.is_empty()));
    }
});
