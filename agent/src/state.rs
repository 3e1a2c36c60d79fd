//! Files in an agent's state directory: written atomically (temp file +
//! rename, mode 0600), read as JSON.

use std::path::Path;

use anyhow::{Context, Result};
use serde::Deserialize;

/// Writes `bytes` to `path` atomically (temp file + rename), mode 0600.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    pulih_core::storage::write_private_atomic(path, bytes, true)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// A JSON state file; None when there is none.
pub(crate) fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(serde_json::from_slice(&b).with_context(|| {
            format!("corrupt state file {}", path.display())
        })?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    /// A state file is 0600 even where an earlier write left its
    /// temporary file behind with another mode.
    #[test]
    fn agent_state_files_are_readable_by_their_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("enrolment.json");
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, b"left over").unwrap();
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_atomic(&path, b"{}").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(std::fs::read(&path).unwrap(), b"{}");
    }
}
