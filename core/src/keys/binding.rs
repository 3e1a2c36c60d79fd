//! The binding key (FORMAT.md §13): an Ed25519 key pair derived from the
//! master secret. Readers sign and check bindings; the maintenance key
//! file carries the public half only; an agent key holds neither.

use ring::signature::{Ed25519KeyPair, KeyPair};

use super::MasterKey;

/// The public half of the binding key: checks bindings, cannot make one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BindingVerifier(pub [u8; 32]);

/// The binding key pair, derived from the master secret.
pub struct BindingSigner(Ed25519KeyPair);

impl BindingSigner {
    pub fn of(master: &MasterKey) -> BindingSigner {
        let seed = master.0.derive("bindings", &[]);
        BindingSigner(
            Ed25519KeyPair::from_seed_unchecked(&seed.0).expect("any 32 bytes are a seed"),
        )
    }

    pub fn verifier(&self) -> BindingVerifier {
        let mut pk = [0u8; 32];
        pk.copy_from_slice(self.0.public_key().as_ref());
        BindingVerifier(pk)
    }

    /// Signs `msg` (the bytes FORMAT.md §13 names).
    pub(crate) fn sign(&self, msg: &[u8]) -> ring::signature::Signature {
        self.0.sign(msg)
    }
}

impl BindingVerifier {
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(s: &str) -> Option<BindingVerifier> {
        let v = hex::decode(s).ok()?;
        Some(BindingVerifier(v.try_into().ok()?))
    }
}
