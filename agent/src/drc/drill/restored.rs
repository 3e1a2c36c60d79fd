//! What a recovery reads from the restored snapshot, which is untrusted
//! (a compromised server wrote it): paths inside the restored tree, and
//! the Docker capture record (where volumes' data was, which image
//! archives were saved).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use pulih_core::repo::ListedSnapshot;
use pulih_model::drill::{CAPTURE_FILE, CAPTURE_TAG, DockerCapture};

/// The snapshot's Docker capture record, restored under `target` (none
/// when the server has no Docker sources).
pub(super) fn capture(snap: &ListedSnapshot, target: &Path) -> Result<DockerCapture> {
    let Some(staging) = snap
        .snapshot
        .tags
        .iter()
        .find_map(|t| t.strip_prefix(&format!("{CAPTURE_TAG}=")))
    else {
        return Ok(DockerCapture::default());
    };
    read_capture(&under(target, &Path::new(staging).join(CAPTURE_FILE))?)
}

/// `path` (absolute, as on the protected server) inside the restore
/// `target`, resolved. The snapshot is untrusted (a compromised server
/// wrote it): a path with `.` or `..`, or one that leads outside the
/// restored tree through a symlink the snapshot holds, is refused, and so
/// is one with a `:` or `,` (the engine's bind syntax).
pub(super) fn under(target: &Path, path: &Path) -> Result<PathBuf> {
    use std::path::Component;
    let plain = path.is_absolute()
        && path
            .components()
            .skip(1)
            .all(|c| matches!(c, Component::Normal(_)));
    if !plain {
        bail!("`{}` is not a plain absolute path", path.display());
    }
    let joined = target.join(path.strip_prefix("/").unwrap_or(path));
    let real = joined
        .canonicalize()
        .with_context(|| format!("{} is not in the restored snapshot", path.display()))?;
    let root = target
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", target.display()))?;
    if !real.starts_with(&root) {
        bail!(
            "{} leads outside the restored snapshot (through a symlink in it)",
            path.display()
        );
    }
    if real.to_string_lossy().contains([':', ',']) {
        bail!(
            "{} resolves to a path with `:` or `,`, which cannot be bind-mounted safely",
            path.display()
        );
    }
    Ok(real)
}

/// The Docker capture record's largest size.
const MAX_CAPTURE_RECORD: u64 = 1 << 20;

/// Reads the snapshot's Docker capture record (untrusted, size-capped).
fn read_capture(file: &Path) -> Result<DockerCapture> {
    let meta = std::fs::metadata(file)
        .with_context(|| format!("the snapshot lacks its Docker record {}", file.display()))?;
    if !meta.is_file() || meta.len() > MAX_CAPTURE_RECORD {
        bail!(
            "Docker record {} is not a file of at most {MAX_CAPTURE_RECORD} bytes",
            file.display()
        );
    }
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("Docker record {}", file.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_from_a_snapshot_stay_inside_the_restored_tree() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("restore");
        std::fs::create_dir_all(target.join("var/lib/data")).unwrap();
        std::os::unix::fs::symlink("/", target.join("var/lib/root")).unwrap();
        std::os::unix::fs::symlink("data", target.join("var/lib/alias")).unwrap();
        let real = target.canonicalize().unwrap().join("var/lib/data");
        assert_eq!(under(&target, Path::new("/var/lib/data")).unwrap(), real);
        // A symlink inside the tree that stays inside is fine.
        assert_eq!(under(&target, Path::new("/var/lib/alias")).unwrap(), real);
        for bad in [
            "/var/lib/root",
            "/var/lib/root/etc",
            "/../../../../",
            "/var/../../etc",
            "var/lib/data",
            "/var/lib/missing",
        ] {
            assert!(
                under(&target, Path::new(bad)).is_err(),
                "{bad} was accepted"
            );
        }
    }
}
