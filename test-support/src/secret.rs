//! Secret files (passphrases, tokens, keys) as Pulih wants them: mode 0600.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Writes `text` to `path`, readable by its owner only.
pub fn write_secret(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}
