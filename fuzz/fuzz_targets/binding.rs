//! A binding record (FORMAT.md §13) from arbitrary bytes: refused with an
//! error, never a panic, and never accepted without the binding key's
//! signature. A body the input parses as is signed and must read back
//! as itself, and not under another object id.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pulih_core::bindings::{Binding, BindingSigner, encode, parse};
use pulih_core::crypto::Key;
use pulih_core::id::FileId;
use pulih_core::keys::MasterKey;

fuzz_target!(|data: &[u8]| {
    let signer = BindingSigner::of(&MasterKey(Key([7; 32])));
    let verifier = signer.verifier();
    let id = FileId([1; 32]);
    let _ = parse(data, &id, &verifier);
    if let Ok(body) = serde_json::from_slice::<Binding>(data) {
        let bytes = encode(&signer, &id, body.clone());
        assert_eq!(parse(&bytes, &id, &verifier).unwrap(), body);
        assert!(parse(&bytes, &FileId([2; 32]), &verifier).is_err());
    }
});
