//! The format-2 fixture: a small repository written once by this build
//! (`make_format_2_fixture`, by hand) and committed under
//! `tests/fixtures/repo-v2`, so that every later build must still list,
//! restore and verify a repository with frames (FORMAT.md §4.1), as
//! `old_formats.rs` does for format 1. A later format change adds a
//! fixture beside these, it does not replace one.

#[path = "support/repo.rs"]
mod support;

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use pulih_core::backup::{BackupOptions, Progress, backup};
use pulih_core::keys::AgentKey;
use pulih_core::repo::Reader;
use pulih_core::storage::Store;

const PASSPHRASE: &str = "format fixture, not a secret";
const SOURCE: &str = "/pulih-fixture";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// One line per entry below `root`, sorted: kind, mode, mtime, size,
/// BLAKE3 of a file's bytes or a symlink's target, and the path.
fn listing(root: &Path) -> String {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_format_2_repository_lists_restores_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(fixture("repo-v2"))
        .arg(&repo)
        .status()
        .unwrap();
    assert!(status.success());
    let store = Store::open(repo.to_str().unwrap(), false).unwrap();
    let reader = Reader::open(store, PASSPHRASE).await.unwrap();
    assert_eq!(reader.repo.config.version, 2);
    let framed = reader
        .indexes
        .spaces
        .values()
        .flat_map(|i| i.iter())
        .filter(|l| l.entry.is_framed())
        .count();
    assert!(
        framed >= 40,
        "the fixture holds frames ({framed} framed blobs)"
    );
    let snaps = reader.snapshots().await.unwrap();
    assert_eq!(snaps.len(), 2, "the fixture holds two snapshots");
    for (i, snap) in snaps.iter().enumerate() {
        assert_eq!(snap.snapshot.paths, [SOURCE]);
        let target = dir.path().join(format!("restored-{i}"));
        support::restore_all(&reader, snap, &target).await;
        let want = std::fs::read_to_string(fixture(&format!("repo-v2.snapshot-{i}.txt"))).unwrap();
        let got = listing(&target.join(SOURCE.trim_start_matches('/')));
        assert_eq!(got, want, "snapshot {i} ({}) restores as it was", snap.id);
    }
    let report = pulih_core::verify::verify(&reader, Some(100.0))
        .await
        .unwrap();
    assert!(report.ok(), "{:?}", report.problems);
}

/// Makes the format-2 fixture (run once, by hand, with the format-2 code:
/// `cargo nextest run -p pulih-core --run-ignored only make_format_2`).
/// Refuses to overwrite it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "makes the committed fixture; run by hand once per format"]
async fn make_format_2_fixture() {
    let out = fixture("repo-v2");
    assert!(
        !out.exists(),
        "{} exists: a fixture is never rewritten",
        out.display()
    );
    assert_eq!(
        pulih_core::config::FORMAT_VERSION,
        2,
        "this makes format 2 only"
    );
    let scratch = tempfile::tempdir().unwrap();
    let src = scratch.path().join(SOURCE.trim_start_matches('/'));
    let store = Store::open(out.to_str().unwrap(), true).unwrap();
    let (repo, reader_keys) = support::init(&store, PASSPHRASE).await;
    let (agent, _) = AgentKey::new(&reader_keys.master, &repo.config);

    // Small files that go into frames (some identical), one larger than
    // the framing threshold, a file of several chunks, an empty file and
    // directory, a symlink, a hard link, a name that is not UTF-8.
    std::fs::create_dir_all(src.join("etc/default")).unwrap();
    std::fs::create_dir_all(src.join("kosong")).unwrap();
    for i in 0..48 {
        let body = format!(
            "# /etc/default/layanan-{i}\nENABLED={}\nOPTIONS=\"--port {}\"\n",
            i % 2,
            8000 + i
        );
        std::fs::write(
            src.join(format!("etc/default/layanan-{i}")),
            body.repeat(1 + i % 5),
        )
        .unwrap();
    }
    for i in 0..4 {
        std::fs::write(src.join(format!("etc/sama-{i}.conf")), "sama\n").unwrap();
    }
    let csv: String = (0..40_000)
        .map(|i| format!("64740{i:011},Warga {i},Kelurahan {}\n", i % 37))
        .collect();
    std::fs::write(src.join("penduduk.csv"), &csv).unwrap();
    std::fs::write(src.join("sedang.txt"), "baris sedang\n".repeat(15_000)).unwrap();
    std::fs::write(src.join("kosong.txt"), "").unwrap();
    std::fs::write(src.join("skrip.sh"), "#!/bin/sh\necho halo\n").unwrap();
    std::fs::set_permissions(src.join("skrip.sh"), std::fs::Permissions::from_mode(0o750)).unwrap();
    std::os::unix::fs::symlink("etc/sama-0.conf", src.join("tautan")).unwrap();
    std::fs::hard_link(src.join("skrip.sh"), src.join("skrip-lagi.sh")).unwrap();
    std::fs::write(
        src.join(std::ffi::OsStr::from_bytes(b"nama-\xff-bukan-utf8")),
        b"bytes",
    )
    .unwrap();
    let mut opts = BackupOptions::new("fixture-host".into(), scratch.path().join("cache"));
    opts.root = Some(scratch.path().to_owned());
    opts.tags = vec!["server=fixture".into()];
    let mut expected = Vec::new();
    for round in 0..2 {
        if round == 1 {
            std::fs::write(src.join("etc/default/layanan-3"), "ENABLED=1\n").unwrap();
            std::fs::write(src.join("etc/baru.conf"), "baru\n").unwrap();
            std::fs::remove_file(src.join("etc/sama-1.conf")).unwrap();
        }
        backup(
            store.clone(),
            &agent,
            &[PathBuf::from(SOURCE)],
            &opts,
            Arc::new(Progress::default()),
        )
        .await
        .unwrap();
        expected.push(listing(&src));
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    }
    for (i, l) in expected.iter().enumerate() {
        std::fs::write(fixture(&format!("repo-v2.snapshot-{i}.txt")), l).unwrap();
    }
    let _ = std::fs::remove_dir_all(out.join("locks"));
}
