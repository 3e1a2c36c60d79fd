//! Agent key files and the repository config from arbitrary bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pulih_core::config::ConfigBody;
use pulih_core::keys::AgentKey;

fuzz_target!(|data: &[u8]| {
    let _ = ConfigBody::parse_unverified(data);
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = AgentKey::parse(s, std::path::Path::new("fuzz.key"));
    }
});
