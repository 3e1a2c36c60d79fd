//! What the format fixtures' tests share (old_formats.rs,
//! framed_fixtures.rs): where the fixtures are, the listing their
//! restores are compared with, and the check every fixture must pass.

#![allow(dead_code)]

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use pulih_core::repo::Reader;
use pulih_core::storage::Store;

use super::support;

pub const PASSPHRASE: &str = "format fixture, not a secret";
/// The path the fixture's snapshots hold (read from a scratch directory
/// when it was made, recorded as this).
pub const SOURCE: &str = "/pulih-fixture";

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// One line per entry below `root`, sorted: kind, mode, mtime, size and
/// BLAKE3 of a file's bytes or a symlink's target, and the path (bytes
/// escaped). Owners are left out (a restore as non-root keeps its own).
pub fn listing(root: &Path) -> String {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        for p in names {
            let m = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().as_os_str().as_bytes();
            let rel = rel.escape_ascii().to_string();
            let (kind, what) = if m.is_dir() {
                ("d", String::from("-"))
            } else if m.file_type().is_symlink() {
                let t = std::fs::read_link(&p).unwrap();
                (
                    "l",
                    blake3::hash(t.as_os_str().as_bytes()).to_hex().to_string(),
                )
            } else {
                (
                    "f",
                    blake3::hash(&std::fs::read(&p).unwrap())
                        .to_hex()
                        .to_string(),
                )
            };
            let size = if m.is_dir() { 0 } else { m.len() };
            // A symlink's mode is the system's (0777), not restored.
            let mode = if kind == "l" {
                0
            } else {
                m.permissions().mode() & 0o7777
            };
            out.push(format!("{kind} {mode:o} {} {size} {what} {rel}", m.mtime()));
            if m.is_dir() {
                walk(root, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.join("\n") + "\n"
}

/// Opens a copy of the committed fixture `repo-v{version}` (nothing a
/// reader does may need to write, but the committed bytes must stay as
/// they are whatever a future reader tries), checks its version, restores
/// each of its two snapshots and compares them with their recorded
/// listings, and verifies every blob. The reader is returned for checks of
/// one format's own.
pub async fn check_fixture(version: u32, dir: &Path) -> Reader {
    let repo = dir.join("repo");
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(fixture(&format!("repo-v{version}")))
        .arg(&repo)
        .status()
        .unwrap();
    assert!(status.success());
    let store = Store::open(repo.to_str().unwrap(), false).unwrap();
    let reader = Reader::open(store, PASSPHRASE).await.unwrap();
    assert_eq!(reader.repo.config.version, version);
    let snaps = reader.snapshots().await.unwrap();
    assert_eq!(snaps.len(), 2, "the fixture holds two snapshots");
    for (i, snap) in snaps.iter().enumerate() {
        assert_eq!(snap.snapshot.paths, [SOURCE]);
        let target = dir.join(format!("restored-{i}"));
        support::restore_all(&reader, snap, &target).await;
        let want =
            std::fs::read_to_string(fixture(&format!("repo-v{version}.snapshot-{i}.txt"))).unwrap();
        let got = listing(&target.join(SOURCE.trim_start_matches('/')));
        assert_eq!(got, want, "snapshot {i} ({}) restores as it was", snap.id);
    }
    let report = pulih_core::verify::verify(&reader, Some(100.0))
        .await
        .unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    assert!(
        report.packs_read >= 2 && report.blobs_read > 10,
        "{report:?}"
    );
    reader
}
