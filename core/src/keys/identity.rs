//! Age X25519 identity files and recipients (the readers' public keys).

use std::io::Write;
use std::path::Path;
use std::str::FromStr;

use age::secrecy::ExposeSecret;

use crate::{Error, Result};

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

pub(super) fn age_write(enc: age::Encryptor, plain: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w = enc
        .wrap_output(&mut out)
        .expect("writing to a Vec cannot fail");
    w.write_all(plain).expect("writing to a Vec cannot fail");
    w.finish().expect("writing to a Vec cannot fail");
    out
}
