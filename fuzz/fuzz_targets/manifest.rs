//! Manifests: YAML text from agencies, parsed and validated. Must never
//! panic, whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pulih_model::manifest::{ManifestSet, yaml};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = yaml::parse_stream(text);
    }
    let _ = ManifestSet::from_sources(&[("fuzz.yaml".to_string(), data.to_vec())]);
});
