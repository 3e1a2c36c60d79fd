//! What a reader holds ([`ReaderKeys`]) and how it is kept: passphrase
//! slots (argon2id) and identity slots (age X25519), FORMAT.md §3.

use std::io::Read;
use std::str::FromStr;

use age::secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::crypto::Key;
use crate::id::RepoId;
use crate::{Error, Result};

use super::*;

/// What a reader holds: the master secret and an identity to unwrap sessions.
#[derive(Clone)]
pub struct ReaderKeys {
    pub repo_id: RepoId,
    pub master: MasterKey,
    pub identity: age::x25519::Identity,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SlotPlain {
    repo_id: RepoId,
    master: String,
    identity: String,
}

/// The KDF of a passphrase slot (FORMAT.md §3.2): argon2id with RFC 9106's
/// second recommended setting, 64 MiB and 3 passes (one lane: the crate
/// runs lanes one after the other anyway). About 0.2 s here, and a reader
/// needs 64 MiB for it, not the 256–512 MiB of age's scrypt at its ~1 s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PassphraseKdf {
    pub m_kib: u32,
    pub t: u32,
}

impl Default for PassphraseKdf {
    fn default() -> Self {
        // Tests may lower it with `PULIH_TEST_ARGON2_M_KIB`; said aloud, so
        // a leftover variable does not weaken a real repository unseen.
        let m_kib = match std::env::var("PULIH_TEST_ARGON2_M_KIB")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            Some(m) => {
                tracing::warn!(
                    m_kib = m,
                    "PULIH_TEST_ARGON2_M_KIB is set: the passphrase slot gets a test-strength KDF"
                );
                m
            }
            None => 64 * 1024,
        };
        PassphraseKdf { m_kib, t: 3 }
    }
}

impl PassphraseKdf {
    /// Refuses parameters argon2id rejects or a reader would refuse.
    pub fn check(&self) -> Result<()> {
        if self.m_kib < 8 || self.m_kib > ARGON2_MAX_M_KIB || self.t == 0 || self.t > ARGON2_MAX_T {
            return Err(Error::Invalid(format!(
                "argon2id with {} KiB and {} passes: memory must be 8 to {ARGON2_MAX_M_KIB} KiB, passes 1 to {ARGON2_MAX_T}",
                self.m_kib, self.t
            )));
        }
        Ok(())
    }
}

/// What a reader accepts from a slot: a store's operator must not make it
/// allocate or compute without bound.
const ARGON2_MAX_M_KIB: u32 = 4 << 20;
const ARGON2_MAX_T: u32 = 64;
const ARGON2_MAX_P: u32 = 16;

/// `keys/<slot>` sealed with a passphrase (JSON; FORMAT.md §3.2).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PassphraseSlot {
    kdf: String,
    m_kib: u32,
    t: u32,
    p: u32,
    salt: String,
    nonce: String,
    ciphertext: String,
}

/// An argon2id passphrase slot's fields, checked.
#[derive(Debug)]
pub struct ParsedPassphraseSlot {
    pub m_kib: u32,
    pub t: u32,
    pub p: u32,
    pub salt: Vec<u8>,
    pub nonce: [u8; 12],
    pub ciphertext: Vec<u8>,
}

fn passphrase_slot_aad(slot: &str) -> Vec<u8> {
    [b"pulih/v1/passphrase-slot/".as_slice(), slot.as_bytes()].concat()
}

fn argon2id_key(passphrase: &str, salt: &[u8], m_kib: u32, t: u32, p: u32) -> Result<Key> {
    let params = argon2::Params::new(m_kib, t, p, Some(32))
        .map_err(|e| Error::Invalid(format!("argon2id parameters: {e}")))?;
    let mut out = [0u8; 32];
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password_into(passphrase.as_bytes(), salt, &mut out)
        .map_err(|e| Error::Invalid(format!("argon2id: {e}")))?;
    let key = Key(out);
    zeroize::Zeroize::zeroize(&mut out);
    Ok(key)
}

impl ReaderKeys {
    pub fn generate(repo_id: RepoId) -> ReaderKeys {
        ReaderKeys {
            repo_id,
            master: MasterKey(Key::random()),
            identity: age::x25519::Identity::generate(),
        }
    }

    pub fn recipient(&self) -> String {
        self.identity.to_public().to_string()
    }

    pub(super) fn slot_plaintext(&self) -> Vec<u8> {
        serde_json::to_vec(&SlotPlain {
            repo_id: self.repo_id,
            master: self.master.0.to_hex(),
            identity: self.identity.to_string().expose_secret().to_string(),
        })
        .expect("slot serializes")
    }

    /// Wrap these keys with a passphrase (the walidata slot `slot`):
    /// argon2id (`kdf`) derives an AES-256-GCM key from the passphrase and
    /// a random salt.
    pub fn wrap_with_passphrase(
        &self,
        slot: &str,
        passphrase: &str,
        kdf: PassphraseKdf,
    ) -> Vec<u8> {
        use rand::RngCore;
        let mut salt = [0u8; 16];
        let mut nonce = [0u8; 12];
        rand::thread_rng().fill_bytes(&mut salt);
        rand::thread_rng().fill_bytes(&mut nonce);
        let key = argon2id_key(passphrase, &salt, kdf.m_kib, kdf.t, 1)
            .expect("the KDF's own parameters are valid");
        let ct = crate::crypto::seal(
            &key,
            nonce,
            &passphrase_slot_aad(slot),
            &self.slot_plaintext(),
        );
        serde_json::to_vec(&PassphraseSlot {
            kdf: "argon2id".into(),
            m_kib: kdf.m_kib,
            t: kdf.t,
            p: 1,
            salt: hex::encode(salt),
            nonce: hex::encode(nonce),
            ciphertext: hex::encode(ct),
        })
        .expect("slot serializes")
    }

    /// Wrap these keys (the master secret and the repository's reader
    /// identity, which session keys are wrapped to) for the holder of
    /// `recipient`'s identity, e.g. the DRC executor's `drc-drill` key.
    pub fn wrap_for_recipient(&self, recipient: &age::x25519::Recipient) -> Vec<u8> {
        let enc =
            age::Encryptor::with_recipients(std::iter::once(recipient as &dyn age::Recipient))
                .expect("one x25519 recipient is valid");
        age_write(enc, &self.slot_plaintext())
    }

    pub fn unwrap_with_passphrase(
        slot: &str,
        bytes: &[u8],
        passphrase: &str,
    ) -> Result<ReaderKeys> {
        if bytes.first() == Some(&b'{') {
            return Self::unwrap_argon2id(slot, bytes, passphrase);
        }
        // A slot written before argon2id: an age scrypt file.
        let dec = age::Decryptor::new_buffered(bytes)
            .map_err(|e| Error::corrupt(format!("key slot `keys/{slot}`"), e.to_string()))?;
        let mut id = age::scrypt::Identity::new(SecretString::from(passphrase.to_owned()));
        id.set_max_work_factor(22);
        let mut out = Vec::new();
        dec.decrypt(std::iter::once(&id as &dyn age::Identity))
            .map_err(|_| Error::WrongPassphrase {
                slot: slot.to_owned(),
            })?
            .read_to_end(&mut out)
            .map_err(|_| Error::WrongPassphrase {
                slot: slot.to_owned(),
            })?;
        Self::parse_slot(slot, &out)
    }

    fn unwrap_argon2id(slot: &str, bytes: &[u8], passphrase: &str) -> Result<ReaderKeys> {
        let p = Self::parse_passphrase_slot(slot, bytes)?;
        let key = argon2id_key(passphrase, &p.salt, p.m_kib, p.t, p.p)
            .map_err(|e| Error::corrupt(format!("key slot `keys/{slot}`"), e.to_string()))?;
        let plain = crate::crypto::open(&key, p.nonce, &passphrase_slot_aad(slot), &p.ciphertext)
            .ok_or_else(|| Error::WrongPassphrase {
            slot: slot.to_owned(),
        })?;
        Self::parse_slot(slot, &plain)
    }

    /// Reads an argon2id passphrase slot's fields, refusing what a reader
    /// must not act on (unknown KDF, parameters beyond bounds, bad hex),
    /// before any key is derived.
    pub fn parse_passphrase_slot(slot: &str, bytes: &[u8]) -> Result<ParsedPassphraseSlot> {
        let what = || format!("key slot `keys/{slot}`");
        let s: PassphraseSlot =
            serde_json::from_slice(bytes).map_err(|e| Error::corrupt(what(), e.to_string()))?;
        if s.kdf != "argon2id" {
            return Err(Error::corrupt(what(), format!("unknown KDF `{}`", s.kdf)));
        }
        if s.m_kib > ARGON2_MAX_M_KIB || s.t > ARGON2_MAX_T || s.p > ARGON2_MAX_P {
            return Err(Error::corrupt(
                what(),
                format!(
                    "argon2id asks {} KiB, {} passes, {} lanes: more than a reader allows ({ARGON2_MAX_M_KIB} KiB, {ARGON2_MAX_T}, {ARGON2_MAX_P})",
                    s.m_kib, s.t, s.p
                ),
            ));
        }
        argon2::Params::new(s.m_kib, s.t, s.p, Some(32))
            .map_err(|e| Error::corrupt(what(), format!("argon2id parameters: {e}")))?;
        let salt = hex::decode(&s.salt).map_err(|e| Error::corrupt(what(), e.to_string()))?;
        if !(8..=64).contains(&salt.len()) {
            return Err(Error::corrupt(what(), "the salt is not 8 to 64 bytes"));
        }
        let nonce: [u8; 12] = hex::decode(&s.nonce)
            .ok()
            .and_then(|n| n.try_into().ok())
            .ok_or_else(|| Error::corrupt(what(), "the nonce is not 12 bytes of hex"))?;
        let ciphertext =
            hex::decode(&s.ciphertext).map_err(|e| Error::corrupt(what(), e.to_string()))?;
        Ok(ParsedPassphraseSlot {
            m_kib: s.m_kib,
            t: s.t,
            p: s.p,
            salt,
            nonce,
            ciphertext,
        })
    }

    pub fn unwrap_with_identity(
        slot: &str,
        bytes: &[u8],
        identity: &age::x25519::Identity,
    ) -> Result<ReaderKeys> {
        let dec = age::Decryptor::new_buffered(bytes)
            .map_err(|e| Error::corrupt(format!("key slot `keys/{slot}`"), e.to_string()))?;
        let mut out = Vec::new();
        dec.decrypt(std::iter::once(identity as &dyn age::Identity))
            .map_err(|e| {
                Error::Invalid(format!("this identity cannot open key slot `{slot}`: {e}"))
            })?
            .read_to_end(&mut out)
            .map_err(|e| Error::corrupt(format!("key slot `keys/{slot}`"), e.to_string()))?;
        Self::parse_slot(slot, &out)
    }

    fn parse_slot(slot: &str, plain: &[u8]) -> Result<ReaderKeys> {
        let what = || format!("key slot `keys/{slot}`");
        let p: SlotPlain =
            serde_json::from_slice(plain).map_err(|e| Error::corrupt(what(), e.to_string()))?;
        let master =
            Key::from_hex(&p.master).ok_or_else(|| Error::corrupt(what(), "bad master secret"))?;
        let identity =
            age::x25519::Identity::from_str(&p.identity).map_err(|e| Error::corrupt(what(), e))?;
        Ok(ReaderKeys {
            repo_id: p.repo_id,
            master: MasterKey(master),
            identity,
        })
    }
}
