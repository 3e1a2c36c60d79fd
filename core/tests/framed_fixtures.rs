//! The format-2 and format-3 fixtures: small repositories written once
//! each by the build of their format (`make_format_N_fixture`, by hand)
//! and committed under `tests/fixtures/repo-vN`, so that every later build
//! must still list, restore and verify a repository with frames (format 2,
//! FORMAT.md §4.1) and with padded frames (format 3, §4.2), as
//! `old_formats.rs` does for format 1. A later format change adds a
//! fixture beside these, it does not replace one.

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
async fn a_format_2_repository_lists_restores_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let reader = fixtures::check_fixture(2, dir.path()).await;
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_format_3_repository_lists_restores_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let reader = fixtures::check_fixture(3, dir.path()).await;
    let padded = reader
        .indexes
        .spaces
        .values()
        .flat_map(|i| i.iter())
        .filter(|l| l.entry.flags & pulih_core::pack::FLAG_PADDED != 0)
        .count();
    assert!(
        padded >= 40,
        "the fixture holds padded frames ({padded} padded blobs)"
    );
}

/// Makes the format-2 fixture (run once, by hand, with the format-2 code:
/// `cargo nextest run -p pulih-core --run-ignored only make_format_2`).
/// Refuses to overwrite it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "makes the committed fixture; run by hand once per format"]
async fn make_format_2_fixture() {
    make_fixture(2).await;
}

/// Makes the format-3 fixture, likewise with the format-3 code
/// (`--run-ignored only make_format_3`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "makes the committed fixture; run by hand once per format"]
async fn make_format_3_fixture() {
    make_fixture(3).await;
}

/// The same tree and two rounds for each format's fixture.
async fn make_fixture(version: u32) {
    let out = fixture(&format!("repo-v{version}"));
    assert!(
        !out.exists(),
        "{} exists: a fixture is never rewritten",
        out.display()
    );
    assert_eq!(
        pulih_core::config::FORMAT_VERSION,
        version,
        "this build makes format {} only",
        pulih_core::config::FORMAT_VERSION
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
        std::fs::write(fixture(&format!("repo-v{version}.snapshot-{i}.txt")), l).unwrap();
    }
    let _ = std::fs::remove_dir_all(out.join("locks"));
}

/// `pulih repo upgrade` (`Reader::upgrade`): a format-2 repository raised
/// to format 3 keeps every snapshot readable and verified, and what an
/// agent key made before the upgrade writes next is padded; a second
/// upgrade changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgraded_format_2_repository_pads_what_it_writes_next_and_keeps_its_history() {
    use pulih_core::pack::FLAG_PADDED;
    use pulih_core::repo::Reader;
    let dir = tempfile::tempdir().unwrap();
    let reader = fixtures::check_fixture(2, dir.path()).await;
    let store = reader.repo.store.clone();
    let (old_key, _) = AgentKey::new(&reader.keys.master, &reader.repo.config);
    let padded = |r: &Reader| {
        r.indexes
            .spaces
            .values()
            .flat_map(|i| i.iter())
            .filter(|l| l.entry.flags & FLAG_PADDED != 0)
            .count()
    };
    assert_eq!(padded(&reader), 0);
    let before = reader.snapshots().await.unwrap();
    assert_eq!(reader.upgrade().await.unwrap(), Some((2, 3)));

    let reader = Reader::open(store.clone(), PASSPHRASE).await.unwrap();
    assert_eq!(reader.repo.config.version, 3);
    assert_eq!(reader.upgrade().await.unwrap(), None);
    let after = reader.snapshots().await.unwrap();
    assert_eq!(
        before.iter().map(|s| s.id).collect::<Vec<_>>(),
        after.iter().map(|s| s.id).collect::<Vec<_>>()
    );
    let src = dir.path().join("new");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..20 {
        std::fs::write(src.join(format!("f{i}")), format!("berkas kecil {i}\n")).unwrap();
    }
    backup(
        store.clone(),
        &old_key,
        &[src],
        &BackupOptions::new("srv".into(), dir.path().join("cache")),
        Arc::new(Progress::default()),
    )
    .await
    .unwrap();
    let reader = Reader::open(store, PASSPHRASE).await.unwrap();
    assert!(padded(&reader) >= 20, "{} padded", padded(&reader));
    let report = pulih_core::verify::verify(&reader, Some(100.0))
        .await
        .unwrap();
    assert!(report.ok(), "{:?}", report.problems);
}
