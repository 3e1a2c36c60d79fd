//! Repositories written in earlier formats still read. Each format has a
//! small repository committed under `tests/fixtures/` (made once, by
//! `make_format_1_fixture` below, from the code of its day, and never
//! written again), with the listing of what each of its snapshots holds.
//! A later build must restore, list and verify it unchanged; a format
//! change adds a fixture beside it, it does not replace one.

#[path = "support/fixture.rs"]
mod fixtures;
#[path = "support/repo.rs"]
mod support;

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;

use pulih_core::backup::{BackupOptions, Progress, backup};
use pulih_core::keys::AgentKey;
use pulih_core::storage::Store;

use fixtures::{PASSPHRASE, SOURCE, fixture, listing};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_format_1_repository_lists_restores_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let reader = fixtures::check_fixture(1, dir.path()).await;
    drop(reader);
}

/// Makes the format-1 fixture (run once, by hand, with the format-1 code:
/// `cargo nextest run -p pulih-core --run-ignored only make_format_1`).
/// Refuses to overwrite it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "makes the committed fixture; run by hand once per format"]
async fn make_format_1_fixture() {
    let out = fixture("repo-v1");
    assert!(
        !out.exists(),
        "{} exists: a fixture is never rewritten",
        out.display()
    );
    assert_eq!(
        pulih_core::config::FORMAT_VERSION,
        1,
        "this makes format 1 only"
    );
    let scratch = tempfile::tempdir().unwrap();
    let src = scratch.path().join(SOURCE.trim_start_matches('/'));
    let store = Store::open(out.to_str().unwrap(), true).unwrap();
    let (repo, reader_keys) = support::init(&store, PASSPHRASE).await;
    let (agent, _) = AgentKey::new(&reader_keys.master, &repo.config);

    // Every kind of entry a tree holds: text, a file of several chunks,
    // an empty file and directory, a symlink, a hard link, a name that is
    // not UTF-8, odd modes.
    std::fs::create_dir_all(src.join("dokumen/arsip/2026")).unwrap();
    std::fs::create_dir_all(src.join("kosong")).unwrap();
    std::fs::write(src.join("dokumen/surat.txt"), "Surat keputusan walikota\n").unwrap();
    let csv: String = (0..40_000)
        .map(|i| format!("64740{i:011},Warga {i},Kelurahan {}\n", i % 37))
        .collect();
    std::fs::write(src.join("dokumen/arsip/penduduk.csv"), &csv).unwrap();
    std::fs::write(src.join("dokumen/arsip/2026/kosong.txt"), "").unwrap();
    std::fs::write(src.join("skrip.sh"), "#!/bin/sh\necho halo\n").unwrap();
    std::fs::set_permissions(src.join("skrip.sh"), std::fs::Permissions::from_mode(0o750)).unwrap();
    std::os::unix::fs::symlink("dokumen/surat.txt", src.join("tautan")).unwrap();
    std::fs::hard_link(src.join("dokumen/surat.txt"), src.join("surat-lagi.txt")).unwrap();
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
            // The incremental: one file changed, one added, one removed.
            std::fs::write(
                src.join("dokumen/surat.txt"),
                "Surat keputusan walikota, revisi\n",
            )
            .unwrap();
            std::fs::write(src.join("dokumen/baru.txt"), "baru\n").unwrap();
            std::fs::remove_file(src.join("skrip.sh")).unwrap();
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
        // Snapshot times are whole seconds apart.
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    }
    for (i, l) in expected.iter().enumerate() {
        std::fs::write(fixture(&format!("repo-v1.snapshot-{i}.txt")), l).unwrap();
    }
    // The lock records a backup leaves are not part of a fixture.
    let _ = std::fs::remove_dir_all(out.join("locks"));
}
