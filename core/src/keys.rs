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

/// scrypt work factor (log2 N) for passphrase slots. Tests may lower it with
/// `PULIH_TEST_SCRYPT_LOG_N`; the default follows age's ~1 s target.
fn scrypt_work_factor() -> Option<u8> {
    std::env::var("PULIH_TEST_SCRYPT_LOG_N")
        .ok()
        .and_then(|v| v.parse().ok())
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

    /// Wrap these keys with a passphrase (the walidata slot). `log_n`
    /// overrides age's scrypt work factor (tests use a cheap one).
    pub fn wrap_with_passphrase(&self, passphrase: &str, log_n: Option<u8>) -> Vec<u8> {
        let mut r = age::scrypt::Recipient::new(SecretString::from(passphrase.to_owned()));
        if let Some(n) = log_n.or_else(scrypt_work_factor) {
            r.set_work_factor(n);
        }
        let enc = age::Encryptor::with_recipients(std::iter::once(&r as &dyn age::Recipient))
            .expect("one scrypt recipient is valid");
        age_write(enc, &self.slot_plaintext())
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
