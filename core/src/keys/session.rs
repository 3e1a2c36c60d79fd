//! [`SessionKey`]: a backup run's secret, wrapped to every reader and
//! forgotten.

use std::collections::BTreeMap;
use std::io::Read;
use std::str::FromStr;

use crate::crypto::Key;
use crate::id::SessionId;
use crate::{Error, Result};

use super::*;

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
