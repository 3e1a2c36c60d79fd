//! Restore edge cases of the layout (FORMAT.md §7): overlapping sources,
//! hard links, and a restore into a target an earlier restore (or someone
//! else) left files and symlinks in.

#[path = "support/repo.rs"]
mod support;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;

use pulih_core::backup::{BackupOptions, Progress, backup};
use pulih_core::keys::AgentKey;
use pulih_core::repo::Reader;
use pulih_core::storage::Store;

fn rooted(target: &Path, p: &Path) -> std::path::PathBuf {
    target.join(p.strip_prefix("/").unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_sources_and_hard_links_restore_once_and_a_second_restore_replaces_symlinks_not_follows()
 {
    let store = Store::open(&format!("memory://layout-{}", rand::random::<u64>()), true).unwrap();
    let (repo, reader_keys) = support::init(&store, "sandi").await;
    let (agent, _) = AgentKey::new(&reader_keys.master, &repo.config);
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("srv");
    let data = src.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("a.csv"), "nik,nama\n".repeat(5000)).unwrap();
    std::fs::hard_link(data.join("a.csv"), data.join("a-link.csv")).unwrap();
    std::fs::write(src.join("b.txt"), b"laporan").unwrap();
    std::fs::write(data.join("c.txt"), b"satu tautan").unwrap();

    // `/srv` and `/srv/data` both: every file of data/ is in the snapshot twice.
    let out = backup(
        store.clone(),
        &agent,
        &[src.clone(), data.clone()],
        &BackupOptions::new("srv".into(), dir.path().join("cache")),
        Arc::new(Progress::default()),
    )
    .await
    .unwrap();
    assert!(out.errors.is_empty(), "{:?}", out.errors);

    let reader = Reader::open(store.clone(), "sandi").await.unwrap();
    let snap = reader.snapshots().await.unwrap().pop().unwrap();
    let target = dir.path().join("restore");
    support::restore_all(&reader, &snap, &target).await;
    let (a, link) = (
        rooted(&target, &data.join("a.csv")),
        rooted(&target, &data.join("a-link.csv")),
    );
    assert_eq!(
        std::fs::read(&a).unwrap(),
        "nik,nama\n".repeat(5000).as_bytes()
    );
    let (ma, ml) = (
        std::fs::metadata(&a).unwrap(),
        std::fs::metadata(&link).unwrap(),
    );
    assert_eq!(
        (ma.ino(), ma.nlink()),
        (ml.ino(), 2),
        "still one file, linked twice"
    );

    assert_eq!(
        std::fs::read(rooted(&target, &data.join("c.txt"))).unwrap(),
        b"satu tautan"
    );

    // Leave things in the way: a longer file's stale bytes, a symlink where
    // a file goes and one where a directory goes, both pointing outside
    // the target (at files of the same names).
    let outside = dir.path().join("outside.txt");
    std::fs::write(&outside, b"jangan ditimpa").unwrap();
    let b = rooted(&target, &src.join("b.txt"));
    std::fs::remove_file(&b).unwrap();
    std::os::unix::fs::symlink(&outside, &b).unwrap();
    std::fs::write(&a, "x".repeat(100_000)).unwrap();
    let outside_dir = dir.path().join("outside-dir");
    std::fs::create_dir(&outside_dir).unwrap();
    std::fs::write(outside_dir.join("c.txt"), b"jangan dihapus").unwrap();
    let restored_data = rooted(&target, &data);
    std::fs::rename(&restored_data, dir.path().join("old-data")).unwrap();
    std::os::unix::fs::symlink(&outside_dir, &restored_data).unwrap();

    support::restore_all(&reader, &snap, &target).await;
    assert_eq!(std::fs::read(&outside).unwrap(), b"jangan ditimpa");
    assert_eq!(
        std::fs::read(outside_dir.join("c.txt")).unwrap(),
        b"jangan dihapus"
    );
    assert_eq!(std::fs::read_dir(&outside_dir).unwrap().count(), 1);
    assert!(std::fs::symlink_metadata(&restored_data).unwrap().is_dir());
    assert!(
        !std::fs::symlink_metadata(&b)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(std::fs::read(&b).unwrap(), b"laporan");
    assert_eq!(
        std::fs::read(&a).unwrap(),
        "nik,nama\n".repeat(5000).as_bytes()
    );
    assert_eq!(std::fs::read(&link).unwrap(), std::fs::read(&a).unwrap());
}

/// Review finding (issue 20, 8): a set-user-ID root program in a snapshot
/// came back set-user-ID from a restore as root. A snapshot is only as
/// trustworthy as the server that wrote it: set-ID bits of files are left
/// off unless the restore asks for them; a directory keeps its
/// set-group-ID bit (it only passes its group on).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_leaves_set_id_bits_off_files_unless_asked() {
    use std::os::unix::fs::PermissionsExt;
    let store = Store::open(&format!("memory://setid-{}", rand::random::<u64>()), true).unwrap();
    let (repo, reader_keys) = support::init(&store, "sandi").await;
    let (agent, _) = AgentKey::new(&reader_keys.master, &repo.config);
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("srv");
    let shared = src.join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    let modes = [
        ("suid", 0o4755),
        ("sgid", 0o2755),
        ("both", 0o6711),
        ("plain", 0o755),
    ];
    for (name, mode) in modes {
        let p = src.join(name);
        std::fs::write(&p, format!("#!/bin/sh\necho {name}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o2775)).unwrap();
    let mode_of = |p: &Path| std::fs::metadata(p).unwrap().mode() & 0o7777;
    // The source really carries the bits (a filesystem mounted nosuid
    // would not keep them, and the test would prove nothing).
    assert_eq!(mode_of(&src.join("suid")), 0o4755);
    assert_eq!(mode_of(&shared), 0o2775);

    let out = backup(
        store.clone(),
        &agent,
        std::slice::from_ref(&src),
        &BackupOptions::new("srv".into(), dir.path().join("cache")),
        Arc::new(Progress::default()),
    )
    .await
    .unwrap();
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    let reader = Reader::open(store.clone(), "sandi").await.unwrap();
    let snap = reader.snapshots().await.unwrap().pop().unwrap();

    for keep in [false, true] {
        let target = dir.path().join(format!("restore-{keep}"));
        let opts = pulih_core::restore::RestoreOptions {
            keep_set_id: keep,
            ..Default::default()
        };
        let s = pulih_core::restore::restore(
            &reader,
            &snap,
            &target,
            &opts,
            Arc::new(pulih_core::restore::RestoreProgress::default()),
        )
        .await
        .unwrap();
        for (name, mode) in modes {
            let want = if keep { mode } else { mode & 0o777 };
            assert_eq!(
                mode_of(&rooted(&target, &src.join(name))),
                want,
                "{name} (keep_set_id {keep})"
            );
        }
        assert_eq!(
            mode_of(&rooted(&target, &shared)),
            0o2775,
            "a directory keeps its set-group-ID bit"
        );
        assert_eq!(s.set_id_dropped, if keep { 0 } else { 3 });
    }
}

#[path = "support/forge.rs"]
mod forge;

/// A snapshot whose every level names the level below twice, `levels`
/// deep, above one file of one `blob_len`-byte blob, under `/srv`.
async fn doubling_snapshot(
    store: &Store,
    agent: &AgentKey,
    levels: u32,
    blob_len: usize,
) -> pulih_core::id::SnapshotId {
    let mut f = forge::Forge::new(agent);
    let data = f.data(&vec![b'x'; blob_len]);
    let mut t = f.tree(vec![forge::file("f", vec![data], blob_len as u64)]);
    for _ in 0..levels {
        t = f.tree(vec![forge::dir("a", t), forge::dir("b", t)]);
    }
    let root = f.tree(vec![forge::dir("srv", t)]);
    f.snapshot(store, root, &["server=srv"], &forge::now())
        .await
}

/// Review finding (issue 20, 4): a 4 KB snapshot whose trees name one
/// subtree twice per level restored as 256 MiB, with a plan growing
/// without bound, and the drill's disk check believed the total the
/// server wrote into the snapshot. A restore now measures the expansion
/// from the trees (each distinct tree once) and refuses, before writing
/// anything, more names than its limit or more bytes than the target's
/// free space; what it does restore matches the measure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_that_names_a_subtree_many_times_is_measured_and_bounded_before_any_write() {
    use pulih_core::restore::{Expanded, RestoreOptions, RestoreProgress, measure, restore};
    let store = Store::open(&format!("memory://expand-{}", rand::random::<u64>()), true).unwrap();
    let (repo, reader_keys) = support::init(&store, "sandi").await;
    let (agent, _) = AgentKey::new(&reader_keys.master, &repo.config);
    let dir = tempfile::tempdir().unwrap();

    // 12 levels over a 4 KiB file: 4096 files, 8191 directories below /srv.
    let id = doubling_snapshot(&store, &agent, 12, 4096).await;
    let reader = Reader::open(store.clone(), "sandi").await.unwrap();
    let snap = reader.find_snapshot(&id.to_hex()).await.unwrap();
    let stored: u64 = store
        .list("")
        .await
        .unwrap()
        .iter()
        .filter(|o| o.key.starts_with("data/") || o.key.starts_with("snapshots/"))
        .map(|o| o.size)
        .sum();
    assert!(stored < 16 << 10, "the whole snapshot is small: {stored}");
    let need = measure(&reader, snap.space, snap.snapshot.tree, &[])
        .await
        .unwrap();
    assert_eq!(
        need,
        Expanded {
            entries: 1 + 3 * 4096 - 2,
            bytes: 4096 * 4096,
            refs: 4096,
        }
    );
    assert_eq!(
        snap.snapshot.summary.total_bytes, 1,
        "what the server claimed"
    );
    let part = measure(&reader, snap.space, snap.snapshot.tree, &["srv/a/b".into()])
        .await
        .unwrap();
    assert_eq!(part.bytes, 1024 * 4096, "an --include measures its part");

    let restore_with = |opts: RestoreOptions, target: std::path::PathBuf| {
        let (reader, snap) = (&reader, &snap);
        async move {
            restore(
                reader,
                snap,
                &target,
                &opts,
                Arc::new(RestoreProgress::default()),
            )
            .await
        }
    };
    // More names than the limit: refused before the target is made.
    let target = dir.path().join("limited");
    let opts = RestoreOptions {
        max_entries: 10_000,
        ..Default::default()
    };
    let err = restore_with(opts, target.clone())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("expands to 12287 names, more than the 10000"),
        "{err}"
    );
    assert!(!target.exists());

    // Within the limits: restored, exactly as measured.
    let target = dir.path().join("whole");
    let s = restore_with(RestoreOptions::default(), target.clone())
        .await
        .unwrap();
    assert_eq!((s.files, s.bytes), (4096, need.bytes));
    assert_eq!(
        std::fs::read(target.join("srv/a/b/a/b/a/b/a/b/a/b/a/b/f")).unwrap(),
        vec![b'x'; 4096]
    );

    // 40 levels: 2^40 files of 4 KiB, more than any disk. With the names'
    // limit lifted the free space refuses it, nothing written; 60 levels
    // saturate the count instead of wrapping around.
    for (levels, bytes) in [(40, 4096u64 << 40), (60, u64::MAX)] {
        let id = doubling_snapshot(&store, &agent, levels, 4096).await;
        let reader = Reader::open(store.clone(), "sandi").await.unwrap();
        let snap = reader.find_snapshot(&id.to_hex()).await.unwrap();
        let need = measure(&reader, snap.space, snap.snapshot.tree, &[])
            .await
            .unwrap();
        assert_eq!(need.bytes, bytes, "{levels} levels");
        let target = dir.path().join(format!("huge-{levels}"));
        let opts = RestoreOptions {
            max_entries: u64::MAX,
            ..Default::default()
        };
        let err = restore(
            &reader,
            &snap,
            &target,
            &opts,
            Arc::new(RestoreProgress::default()),
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(err.contains("too little disk"), "{err}");
        assert_eq!(
            std::fs::read_dir(&target).unwrap().count(),
            0,
            "nothing written"
        );
        let err = restore(
            &reader,
            &snap,
            &target,
            &RestoreOptions::default(),
            Arc::new(RestoreProgress::default()),
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(err.contains("names, more than the 20000000"), "{err}");
    }

    // One small file that names one blob 3000 times: few names, but the
    // plan holds a target per reference.
    let mut f = forge::Forge::new(&agent);
    let data = f.data(b"x");
    let leaf = f.tree(vec![forge::file("f", vec![data; 3000], 1)]);
    let root = f.tree(vec![forge::dir("srv", leaf)]);
    let id = f
        .snapshot(&store, root, &["server=srv"], &forge::now())
        .await;
    let reader = Reader::open(store.clone(), "sandi").await.unwrap();
    let snap = reader.find_snapshot(&id.to_hex()).await.unwrap();
    let opts = RestoreOptions {
        max_entries: 2000,
        ..Default::default()
    };
    let target = dir.path().join("refs");
    let err = restore(
        &reader,
        &snap,
        &target,
        &opts,
        Arc::new(RestoreProgress::default()),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("expands to 3000 blob references"), "{err}");
    assert!(!target.exists());
}

/// `verify` refuses what a restore refuses in a file's content list, so a
/// snapshot that verifies restores: a padded blob (FORMAT.md §4.2) placed
/// anywhere but at a file's end or given more bytes than its slot holds,
/// and contents whose lengths (none at all, too) do not add up to the
/// file's size.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_names_a_file_whose_contents_a_restore_would_refuse() {
    use pulih_core::restore::{RestoreOptions, RestoreProgress, restore};
    let store = Store::open(&format!("memory://layout-{}", rand::random::<u64>()), true).unwrap();
    let (repo, reader_keys) = support::init(&store, "sandi").await;
    let (agent, _) = AgentKey::new(&reader_keys.master, &repo.config);
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("srv");
    std::fs::create_dir_all(&src).unwrap();
    let pin = b"PIN 4471\n";
    std::fs::write(src.join("pin.txt"), pin).unwrap();
    backup(
        store.clone(),
        &agent,
        &[src],
        &BackupOptions::new("srv".into(), dir.path().join("cache")),
        Arc::new(Progress::default()),
    )
    .await
    .unwrap();
    let honest = Reader::open(store.clone(), "sandi").await.unwrap();
    let report = pulih_core::verify::verify(&honest, None).await.unwrap();
    assert!(report.ok(), "{:?}", report.problems);

    // The padded blob of pin.txt (a small file's one chunk), reused.
    let padded = agent.space.blob_id(pin);
    let mut f = forge::Forge::new(&agent);
    let plain = f.data(b"abc");
    let mut twice = forge::file("twice", vec![padded, padded], 9);
    twice.size = Some(18);
    let mut long = forge::file("long", vec![padded], 9);
    long.size = Some(100_000);
    let mut short = forge::file("short", vec![plain], 3);
    short.size = Some(5);
    let mut hollow = forge::file("hollow", vec![], 0);
    hollow.size = Some(7);
    let leaf = f.tree(vec![hollow, long, short, twice]);
    let root = f.tree(vec![forge::dir("srv", leaf)]);
    let id = f
        .snapshot(&store, root, &["server=srv"], &forge::now())
        .await;

    let reader = Reader::open(store.clone(), "sandi").await.unwrap();
    let report = pulih_core::verify::verify(&reader, None).await.unwrap();
    let problems = report.problems.join("\n");
    for (file, what) in [
        ("/srv/twice", "is padded but not the file's last chunk"),
        ("/srv/long", "cannot hold the 100000 bytes"),
        ("/srv/short", "content length 3 differs from size 5"),
        ("/srv/hollow", "content length 0 differs from size 7"),
    ] {
        assert!(
            report
                .problems
                .iter()
                .any(|p| p.contains(&id.to_hex()) && p.contains(file) && p.contains(what)),
            "{file}: {problems}"
        );
    }
    assert_eq!(report.problems.len(), 4, "{problems}");
    // And the restore refuses the same snapshot.
    let snap = reader.find_snapshot(&id.to_hex()).await.unwrap();
    let err = restore(
        &reader,
        &snap,
        &dir.path().join("out"),
        &RestoreOptions::default(),
        Arc::new(RestoreProgress::default()),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("data blob") || err.contains("differs from size"),
        "{err}"
    );
}
