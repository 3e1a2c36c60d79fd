//! The restore's file-system side: safe names, what each path holds, and
//! making files, directories and their metadata without following a
//! symlink the snapshot (or the target) holds.

use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use crate::tree::{Node, NodeKind};
use crate::{Error, Result};

/// A node name as a safe relative path: one component, or (in the root
/// tree) several normal components.
pub(super) fn safe_rel(name: &[u8], root: bool) -> Result<PathBuf> {
    let p = Path::new(std::ffi::OsStr::from_bytes(name));
    let ok = p.components().all(|c| matches!(c, Component::Normal(_)))
        && (root || p.components().count() == 1);
    if !ok || name.contains(&b'/') && !root {
        return Err(Error::corrupt(
            "tree",
            format!("unsafe node name {:?}", String::from_utf8_lossy(name)),
        ));
    }
    Ok(p.to_owned())
}

/// Records that the restore puts a `kind` at `path`, refusing what would
/// make it write through a symlink the snapshot itself planted: a name
/// that is a symlink (or file) in one node and another kind in another, or
/// a path below a symlink or a file. Overlapping sources (`/srv`
/// and `/srv/data`) legitimately give the same directory or file twice.
pub(super) fn claim(
    claimed: &mut HashMap<PathBuf, NodeKind>,
    target: &Path,
    path: &Path,
    kind: NodeKind,
    rel: &str,
) -> Result<()> {
    let bad = |why: &str| Err(Error::corrupt("tree", format!("{rel}: {why}")));
    let mut up = path.parent();
    while let Some(a) = up.filter(|a| *a != target) {
        match claimed.get(a) {
            Some(NodeKind::Dir) => break,
            Some(_) => return bad("lies below a file or symlink of the same snapshot"),
            None => {
                claimed.insert(a.to_owned(), NodeKind::Dir);
            }
        }
        up = a.parent();
    }
    match claimed.get(path) {
        None => {
            claimed.insert(path.to_owned(), kind);
            Ok(())
        }
        // The same kind twice (overlapping sources) is harmless, symlinks
        // included: each is made anew and nothing is written through one.
        Some(k) if *k == kind => Ok(()),
        Some(_) => bad("appears twice in the snapshot as different kinds (one a symlink or file)"),
    }
}

/// Creates an empty file at `path`, readable by its owner only until its
/// metadata is set. A name that exists already (an earlier restore into
/// the same target) is removed and the create retried; `create_new`
/// (O_EXCL) never follows a symlink found at the name.
pub(super) fn create_empty(path: &Path) -> Result<()> {
    let make = || {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map(drop)
    };
    match make() {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            std::fs::remove_file(path).map_err(|e| Error::io(path, e))?;
            make().map_err(|e| Error::io(path, e))
        }
        Err(e) => Err(Error::io(path, e)),
    }
}

/// Makes `path` a directory. One that exists is kept; anything else at the
/// name (a symlink, a file) is removed first, so nothing below is ever
/// written through a symlink found in the target.
pub(super) fn make_dir(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => {
            std::fs::remove_file(path).map_err(|e| Error::io(path, e))?;
            std::fs::create_dir(path).map_err(|e| Error::io(path, e))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir(path).map_err(|e| Error::io(path, e))
        }
        Err(e) => Err(Error::io(path, e)),
    }
}

pub(super) fn is_root_user() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// The set-user-ID and set-group-ID bits.
const SET_ID: u32 = 0o6000;

/// Sets owner (as root), mode and times. Without `keep_set_id` the mode's
/// set-ID bits are left off; returns whether the node had any.
pub(super) fn set_meta(path: &Path, node: &Node, root: bool, keep_set_id: bool) -> Result<bool> {
    if root {
        std::os::unix::fs::lchown(path, Some(node.uid), Some(node.gid))
            .map_err(|e| Error::io(path, e))?;
    }
    let mtime = filetime::FileTime::from_unix_time(
        node.mtime_ns.div_euclid(1_000_000_000),
        node.mtime_ns.rem_euclid(1_000_000_000) as u32,
    );
    let mut dropped = false;
    if node.kind == NodeKind::Symlink {
        filetime::set_symlink_file_times(path, mtime, mtime).map_err(|e| Error::io(path, e))?;
    } else {
        let mut mode = node.mode;
        if !keep_set_id && mode & SET_ID != 0 {
            mode &= !SET_ID;
            dropped = true;
        }
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| Error::io(path, e))?;
        filetime::set_file_times(path, mtime, mtime).map_err(|e| Error::io(path, e))?;
    }
    Ok(dropped)
}

/// Bytes an unprivileged writer may still use on the filesystem of `dir`.
pub(super) fn free_bytes(dir: &Path) -> Result<u64> {
    let st = rustix::fs::statvfs(dir).map_err(|e| Error::io(dir, e.into()))?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

#[cfg(test)]
mod claim_tests {
    use super::*;

    fn run(nodes: &[(&str, NodeKind)]) -> Result<()> {
        let target = Path::new("/restore");
        let mut claimed = HashMap::new();
        for (rel, kind) in nodes {
            claim(&mut claimed, target, &target.join(rel), *kind, rel)?;
        }
        Ok(())
    }

    #[test]
    fn a_snapshot_cannot_make_the_restore_write_through_its_own_symlinks() {
        use NodeKind::*;
        // A symlink, then a file of the same name (its content would follow it).
        assert!(run(&[("f", Symlink), ("f", File)]).is_err());
        assert!(run(&[("f", File), ("f", Symlink)]).is_err());
        assert!(run(&[("d", Symlink), ("d", Dir)]).is_err());
        // A root name below a symlink of the same snapshot, either order.
        assert!(run(&[("x", Symlink), ("x/cron.d/evil", File)]).is_err());
        assert!(run(&[("x/cron.d/evil", File), ("x", Symlink)]).is_err());
        // Overlapping sources (/srv and /srv/data) are fine.
        assert!(
            run(&[
                ("srv", Dir),
                ("srv/data", Dir),
                ("srv/data/a", File),
                ("srv/data", Dir),
                ("srv/data/a", File),
                ("srv/link", Symlink),
                ("srv/link", Symlink),
            ])
            .is_ok()
        );
    }
}
