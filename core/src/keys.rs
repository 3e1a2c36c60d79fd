//! The write-only key model of DESIGN.md §4 and FORMAT.md §2.
//!
//! - [`ReaderKeys`]: the master secret and the reader's X25519 identity; can
//!   read everything (walidata, drc-drill, break-glass).
//! - [`AgentKey`]: one dedup space's secret, the chunker key and the readers'
//!   public recipients; can write new snapshots and deduplicate against its
//!   own space, cannot decrypt any file data or tree.
//! - [`SessionKey`]: per backup run, wrapped to every reader and forgotten.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;
use std::str::FromStr;

use age::secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::crypto::Key;
use crate::id::{RepoId, SessionId, SpaceId};
use crate::{Error, Result};

/// The repository's master secret `M`.
#[derive(Clone, Debug)]
pub struct MasterKey(pub Key);

impl MasterKey {
    pub fn chunker_key(&self) -> Key {
        self.0.derive("chunker", &[])
    }
    pub fn config_mac_key(&self) -> Key {
        self.0.derive("config", &[])
    }
    pub fn space_secret(&self, space: SpaceId) -> Key {
        self.0.derive("space", &[&space.0])
    }
    pub fn maintenance(&self) -> MaintenanceKey {
        MaintenanceKey(self.0.derive("maintenance", &[]))
    }
    pub fn space(&self, space: SpaceId) -> SpaceKeys {
        SpaceKeys {
            space,
            blob_id_key: self.space_secret(space).derive("blob-id", &[]),
            meta_key: self.maintenance().meta_key(space),
        }
    }
}

/// The maintenance secret `T` (FORMAT.md §12): every space's metadata key
/// and the lock MAC key; no session key, so no tree or data.
#[derive(Clone, Debug)]
pub struct MaintenanceKey(pub Key);

impl MaintenanceKey {
    pub fn meta_key(&self, space: SpaceId) -> Key {
        self.0.derive("meta", &[&space.0])
    }
    pub fn lock_mac_key(&self) -> Key {
        self.0.derive("locks", &[])
    }
}

/// The keys of one dedup space.
#[derive(Clone, Debug)]
pub struct SpaceKeys {
    pub space: SpaceId,
    pub blob_id_key: Key,
    pub meta_key: Key,
}

impl SpaceKeys {
    /// Both keys derived from one secret: for unit tests and fuzzing only
    /// (a repository derives them as [`MasterKey::space`] does).
    pub fn from_secret(space: SpaceId, secret: &Key) -> Self {
        SpaceKeys {
            space,
            blob_id_key: secret.derive("blob-id", &[]),
            meta_key: secret.derive("meta", &[]),
        }
    }

    /// The blob id of a plaintext in this space.
    pub fn blob_id(&self, plaintext: &[u8]) -> crate::id::BlobId {
        crate::id::BlobId(crate::crypto::mac(&self.blob_id_key, plaintext))
    }
}

/// Chunker sizes (FORMAT.md §9).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ChunkerParams {
    pub min_size: u32,
    pub avg_size: u32,
    pub max_size: u32,
}

impl Default for ChunkerParams {
    fn default() -> Self {
        ChunkerParams {
            min_size: 256 * 1024,
            avg_size: 1024 * 1024,
            max_size: 4 * 1024 * 1024,
        }
    }
}

/// What an agent holds: write and deduplicate in one space, read nothing.
#[derive(Clone, Debug)]
pub struct AgentKey {
    pub repo_id: RepoId,
    pub space: SpaceKeys,
    pub chunker_key: Key,
    pub chunker: ChunkerParams,
    pub compression_level: i32,
    /// Reader recipients, by slot name; every session key is wrapped to all.
    pub recipients: BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentKeyFile {
    pulih_agent_key: u32,
    repo_id: RepoId,
    space_id: SpaceId,
    space_secret: String,
    meta_key: String,
    chunker_key: String,
    chunker: ChunkerParams,
    compression_level: i32,
    recipients: BTreeMap<String, String>,
}

impl AgentKey {
    /// Derive a new agent key (a new dedup space) from the master secret.
    pub fn new(master: &MasterKey, config: &crate::config::ConfigBody) -> (AgentKey, String) {
        let space = SpaceId::random();
        let secret = master.space_secret(space);
        let key = AgentKey {
            repo_id: config.repo_id,
            space: master.space(space),
            chunker_key: master.chunker_key(),
            chunker: config.chunker,
            compression_level: config.compression_level,
            recipients: config.recipients.clone(),
        };
        let file = AgentKeyFile {
            pulih_agent_key: 1,
            repo_id: config.repo_id,
            space_id: space,
            space_secret: secret.to_hex(),
            meta_key: key.space.meta_key.to_hex(),
            chunker_key: key.chunker_key.to_hex(),
            chunker: config.chunker,
            compression_level: config.compression_level,
            recipients: config.recipients.clone(),
        };
        let text = serde_json::to_string_pretty(&file).expect("agent key serializes");
        (key, text)
    }

    pub fn parse(text: &str, path: &Path) -> Result<AgentKey> {
        let bad = |reason: String| Error::KeyFile {
            path: path.to_owned(),
            reason,
        };
        let f: AgentKeyFile =
            serde_json::from_str(text).map_err(|e| bad(format!("not a Pulih agent key: {e}")))?;
        if f.pulih_agent_key != 1 {
            return Err(bad(format!(
                "unsupported agent key version {}",
                f.pulih_agent_key
            )));
        }
        let secret = Key::from_hex(&f.space_secret)
            .ok_or_else(|| bad("space_secret is not 64 hex digits".into()))?;
        let meta_key = Key::from_hex(&f.meta_key)
            .ok_or_else(|| bad("meta_key is not 64 hex digits".into()))?;
        let chunker_key = Key::from_hex(&f.chunker_key)
            .ok_or_else(|| bad("chunker_key is not 64 hex digits".into()))?;
        for (slot, r) in &f.recipients {
            age::x25519::Recipient::from_str(r).map_err(|e| {
                bad(format!(
                    "recipient for slot `{slot}` is not an age X25519 recipient: {e}"
                ))
            })?;
        }
        if f.recipients.is_empty() {
            return Err(bad("the key lists no reader recipients".into()));
        }
        Ok(AgentKey {
            repo_id: f.repo_id,
            space: SpaceKeys {
                space: f.space_id,
                blob_id_key: secret.derive("blob-id", &[]),
                meta_key,
            },
            chunker_key,
            chunker: f.chunker,
            compression_level: f.compression_level,
            recipients: f.recipients,
        })
    }

    pub fn load(path: &Path) -> Result<AgentKey> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        AgentKey::parse(&text, path)
    }
}

/// What the controller holds for retention (FORMAT.md §12).
#[derive(Clone, Debug)]
pub struct MaintenanceKeyFile {
    pub repo_id: RepoId,
    pub key: MaintenanceKey,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MaintenanceKeyText {
    pulih_maintenance_key: u32,
    repo_id: RepoId,
    maintenance_secret: String,
}

impl MaintenanceKeyFile {
    pub fn new(repo_id: RepoId, master: &MasterKey) -> (MaintenanceKeyFile, String) {
        let key = master.maintenance();
        let text = serde_json::to_string_pretty(&MaintenanceKeyText {
            pulih_maintenance_key: 1,
            repo_id,
            maintenance_secret: key.0.to_hex(),
        })
        .expect("maintenance key serializes");
        (MaintenanceKeyFile { repo_id, key }, text)
    }

    pub fn parse(text: &str, path: &Path) -> Result<MaintenanceKeyFile> {
        let bad = |reason: String| Error::KeyFile {
            path: path.to_owned(),
            reason,
        };
        let f: MaintenanceKeyText = serde_json::from_str(text)
            .map_err(|e| bad(format!("not a Pulih maintenance key: {e}")))?;
        if f.pulih_maintenance_key != 1 {
            return Err(bad(format!(
                "unsupported maintenance key version {}",
                f.pulih_maintenance_key
            )));
        }
        let secret = Key::from_hex(&f.maintenance_secret)
            .ok_or_else(|| bad("maintenance_secret is not 64 hex digits".into()))?;
        Ok(MaintenanceKeyFile {
            repo_id: f.repo_id,
            key: MaintenanceKey(secret),
        })
    }

    pub fn load(path: &Path) -> Result<MaintenanceKeyFile> {
        let text = crate::storage::read_secret_file(path)?;
        MaintenanceKeyFile::parse(&text, path)
    }
}

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

    fn slot_plaintext(&self) -> Vec<u8> {
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

/// An age X25519 identity file: comment lines and one
/// `AGE-SECRET-KEY-1…` line, as `age-keygen` writes it.
pub fn identity_file_text(identity: &age::x25519::Identity) -> String {
    format!(
        "# pulih reader identity\n# public key: {}\n{}\n",
        identity.to_public(),
        identity.to_string().expose_secret()
    )
}

/// A new reader identity: its file text and its public recipient (`age1…`).
pub fn new_identity_file() -> (String, String) {
    let id = age::x25519::Identity::generate();
    (identity_file_text(&id), id.to_public().to_string())
}

/// An age X25519 public key (`age1…`).
pub fn parse_recipient(text: &str) -> Result<age::x25519::Recipient> {
    age::x25519::Recipient::from_str(text.trim()).map_err(|e| {
        Error::Invalid(format!(
            "`{}` is not an age X25519 public key (age1…): {e}",
            text.trim()
        ))
    })
}

/// Reads an identity file (must not be world-readable).
pub fn load_identity(path: &Path) -> Result<age::x25519::Identity> {
    let text = crate::storage::read_secret_file(path)?;
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .ok_or_else(|| {
            Error::Invalid(format!(
                "{} holds no identity (an `AGE-SECRET-KEY-1…` line)",
                path.display()
            ))
        })?;
    age::x25519::Identity::from_str(line).map_err(|e| {
        Error::Invalid(format!(
            "{} is not an age X25519 identity file: {e}",
            path.display()
        ))
    })
}

fn age_write(enc: age::Encryptor, plain: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w = enc
        .wrap_output(&mut out)
        .expect("writing to a Vec cannot fail");
    w.write_all(plain).expect("writing to a Vec cannot fail");
    w.finish().expect("writing to a Vec cannot fail");
    out
}

/// A backup run's session secret `K`.
pub struct SessionKey {
    pub id: SessionId,
    pub secret: Key,
}

impl SessionKey {
    pub fn generate() -> SessionKey {
        SessionKey {
            id: SessionId::random(),
            secret: Key::random(),
        }
    }

    /// The per-pack key `KDF(K, "pack", pack_id)`.
    pub fn pack_key(&self, pack: &crate::id::PackId) -> Key {
        self.secret.derive("pack", &[&pack.0])
    }

    /// Wrap to every reader recipient: the `keys/sessions/<id>` object.
    pub fn wrap(&self, recipients: &BTreeMap<String, String>) -> Result<Vec<u8>> {
        let rs: Vec<age::x25519::Recipient> = recipients
            .iter()
            .map(|(slot, r)| {
                age::x25519::Recipient::from_str(r)
                    .map_err(|e| Error::Invalid(format!("recipient `{slot}`: {e}")))
            })
            .collect::<Result<_>>()?;
        let enc = age::Encryptor::with_recipients(rs.iter().map(|r| r as &dyn age::Recipient))
            .map_err(|e| Error::Invalid(format!("cannot wrap session key: {e}")))?;
        let mut plain = Vec::with_capacity(48);
        plain.extend_from_slice(&self.id.0);
        plain.extend_from_slice(&self.secret.0);
        Ok(age_write(enc, &plain))
    }

    pub fn unwrap(
        id: SessionId,
        bytes: &[u8],
        identity: &age::x25519::Identity,
    ) -> Result<SessionKey> {
        let what = || format!("session key `keys/sessions/{id}`");
        let dec = age::Decryptor::new_buffered(bytes)
            .map_err(|e| Error::corrupt(what(), e.to_string()))?;
        let mut out = Vec::new();
        dec.decrypt(std::iter::once(identity as &dyn age::Identity))
            .map_err(|e| {
                Error::corrupt(
                    what(),
                    format!("cannot unwrap with this reader identity: {e}"),
                )
            })?
            .read_to_end(&mut out)
            .map_err(|e| Error::corrupt(what(), e.to_string()))?;
        if out.len() != 48 || out[..16] != id.0 {
            return Err(Error::corrupt(
                what(),
                "plaintext does not name this session",
            ));
        }
        let mut secret = [0u8; 32];
        secret.copy_from_slice(&out[16..]);
        Ok(SessionKey {
            id,
            secret: Key(secret),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argon2id_slot_round_trip_wrong_passphrase_and_hostile_parameters() {
        let r = ReaderKeys::generate(RepoId::random());
        let kdf = PassphraseKdf { m_kib: 64, t: 1 };
        let bytes = r.wrap_with_passphrase("walidata", "pw", kdf);
        assert!(!String::from_utf8_lossy(&bytes).contains(&r.master.0.to_hex()));
        let back = ReaderKeys::unwrap_with_passphrase("walidata", &bytes, "pw").unwrap();
        assert_eq!(back.master.0, r.master.0);
        assert_eq!(back.recipient(), r.recipient());
        assert!(matches!(
            ReaderKeys::unwrap_with_passphrase("walidata", &bytes, "nope"),
            Err(Error::WrongPassphrase { .. })
        ));
        // Bound to its slot name: moved to another slot, it does not open.
        assert!(matches!(
            ReaderKeys::unwrap_with_passphrase("break-glass", &bytes, "pw"),
            Err(Error::WrongPassphrase { .. })
        ));
        // A store that asks a reader for 1 TiB of memory is refused before
        // anything is allocated.
        let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        v["m_kib"] = (1u64 << 30).into();
        let hostile = serde_json::to_vec(&v).unwrap();
        let Err(e) = ReaderKeys::unwrap_with_passphrase("walidata", &hostile, "pw") else {
            panic!("a hostile slot opened");
        };
        assert!(e.to_string().contains("more than a reader allows"), "{e}");
        v["m_kib"] = 64.into();
        v["kdf"] = "md5".into();
        let Err(e) =
            ReaderKeys::unwrap_with_passphrase("walidata", &serde_json::to_vec(&v).unwrap(), "pw")
        else {
            panic!("an unknown KDF opened");
        };
        assert!(e.to_string().contains("unknown KDF"), "{e}");
    }

    /// Repositories made before argon2id have an age scrypt slot: still read.
    #[test]
    fn passphrase_slot_round_trip_and_wrong_passphrase() {
        // SAFETY of the test: a low work factor keeps it fast.
        let r = ReaderKeys::generate(RepoId::random());
        let mut rcp = age::scrypt::Recipient::new(SecretString::from("pw".to_owned()));
        rcp.set_work_factor(10);
        let enc =
            age::Encryptor::with_recipients(std::iter::once(&rcp as &dyn age::Recipient)).unwrap();
        let bytes = age_write(enc, &r.slot_plaintext());
        let back = ReaderKeys::unwrap_with_passphrase("walidata", &bytes, "pw").unwrap();
        assert_eq!(back.master.0, r.master.0);
        assert_eq!(back.recipient(), r.recipient());
        assert!(matches!(
            ReaderKeys::unwrap_with_passphrase("walidata", &bytes, "nope"),
            Err(Error::WrongPassphrase { .. })
        ));
    }

    #[test]
    fn session_wrap_unwrap_needs_the_identity() {
        let r = ReaderKeys::generate(RepoId::random());
        let other = age::x25519::Identity::generate();
        let mut rec = BTreeMap::new();
        rec.insert("walidata".to_owned(), r.recipient());
        let s = SessionKey::generate();
        let wrapped = s.wrap(&rec).unwrap();
        let back = SessionKey::unwrap(s.id, &wrapped, &r.identity).unwrap();
        assert_eq!(back.secret, s.secret);
        assert!(SessionKey::unwrap(s.id, &wrapped, &other).is_err());
        assert!(SessionKey::unwrap(SessionId::random(), &wrapped, &r.identity).is_err());
    }
}
