//! The write-only key model of DESIGN.md §4 and FORMAT.md §2.
//!
//! - [`ReaderKeys`]: the master secret and the reader's X25519 identity; can
//!   read everything (walidata, drc-drill, break-glass).
//! - [`AgentKey`]: one dedup space's secret, the chunker key and the readers'
//!   public recipients; can write new snapshots and deduplicate against its
//!   own space, cannot decrypt any file data or tree.
//! - [`SessionKey`]: per backup run, wrapped to every reader and forgotten.

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::config::ChunkerParams;
use crate::crypto::Key;
use crate::id::{RepoId, SpaceId};
use crate::{Error, Result};

mod binding;
mod identity;
mod reader;
mod session;

pub use binding::*;
pub use identity::*;
pub use reader::*;
pub use session::*;

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
    /// The repository's format version when the key was made (0: a key
    /// made before keys recorded it). A writer uses the higher of this and
    /// `config`'s, so a `config` set back to an older version (whoever
    /// writes the store can: an agent cannot check its MAC) does not turn
    /// padding off (FORMAT.md §4.2).
    pub format: u32,
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
    /// Written from version 3 on (older Pulih refuses the field, and
    /// version-3 repositories alike).
    #[serde(default, skip_serializing_if = "below_padding")]
    format: u32,
}

fn below_padding(v: &u32) -> bool {
    *v < 3
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
            format: config.version,
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
            format: config.version,
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
            format: f.format,
        })
    }

    /// Reads an agent key file, refusing one other users can read (as
    /// every secret file: [`crate::storage::read_secret_file`]).
    pub fn load(path: &Path) -> Result<AgentKey> {
        let text = crate::storage::read_secret_file(path)?;
        AgentKey::parse(&text, path)
    }
}

/// What the controller holds for retention (FORMAT.md §12).
#[derive(Clone, Debug)]
pub struct MaintenanceKeyFile {
    pub repo_id: RepoId,
    pub key: MaintenanceKey,
    /// The public half of the binding key (FORMAT.md §13): checks which
    /// server a space belongs to, cannot bind one. None in key files made
    /// before bindings.
    pub bindings: Option<BindingVerifier>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MaintenanceKeyText {
    pulih_maintenance_key: u32,
    repo_id: RepoId,
    maintenance_secret: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bindings_public_key: Option<String>,
}

impl MaintenanceKeyFile {
    pub fn new(repo_id: RepoId, master: &MasterKey) -> (MaintenanceKeyFile, String) {
        let key = master.maintenance();
        let bindings = BindingSigner::of(master).verifier();
        let text = serde_json::to_string_pretty(&MaintenanceKeyText {
            pulih_maintenance_key: 1,
            repo_id,
            maintenance_secret: key.0.to_hex(),
            bindings_public_key: Some(bindings.to_hex()),
        })
        .expect("maintenance key serializes");
        (
            MaintenanceKeyFile {
                repo_id,
                key,
                bindings: Some(bindings),
            },
            text,
        )
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
        let bindings = match f.bindings_public_key {
            Some(h) => Some(
                BindingVerifier::from_hex(&h)
                    .ok_or_else(|| bad("bindings_public_key is not 64 hex digits".into()))?,
            ),
            None => None,
        };
        Ok(MaintenanceKeyFile {
            repo_id: f.repo_id,
            key: MaintenanceKey(secret),
            bindings,
        })
    }

    pub fn load(path: &Path) -> Result<MaintenanceKeyFile> {
        let text = crate::storage::read_secret_file(path)?;
        MaintenanceKeyFile::parse(&text, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::SessionId;
    use age::secrecy::SecretString;

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
