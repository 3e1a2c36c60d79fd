//! Agent key files, the repository config and passphrase key slots from
//! arbitrary bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pulih_core::config::ConfigBody;
use pulih_core::keys::{AgentKey, ReaderKeys};

fuzz_target!(|data: &[u8]| {
    let _ = ConfigBody::parse_unverified(data);
    // Parsing only: deriving a key with the slot's parameters is what the
    // bounds it checks are for.
    let _ = ReaderKeys::parse_passphrase_slot("walidata", data);
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = AgentKey::parse(s, std::path::Path::new("fuzz.key"));
    }
});
