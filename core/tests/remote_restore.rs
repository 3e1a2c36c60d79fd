//! Restore and verify from a real S3 server (Garage) over a slow link
//! (test-support's netem: 50 ms round trip): the trees are loaded a level
//! at a time, each tree pack once, so the round trips a restore waits for
//! grow with the tree's depth, not with its number of directories; the
//! content streams in, many reads in flight.

#[path = "support/repo.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pulih_core::backup::{BackupOptions, Progress, backup};
use pulih_core::keys::AgentKey;
use pulih_core::repo::Reader;
use pulih_core::restore::RestoreOptions;
use pulih_core::storage::Store;
use pulih_core::trees::TreeLoader;
use pulih_test_support::garage;
use pulih_test_support::netem::{Link, LinkSpec};
use rand::{Rng, SeedableRng};

const RTT: Duration = Duration::from_millis(50);
/// Directories in the source: one ranged GET each, one after another (as
/// restores did), would wait 240 × 50 ms = 12 s.
const DIRS: usize = 240;

/// 240 directories three levels deep, each with a few small files, and
/// a few larger files of random bytes (several data packs).
fn make_source(root: &Path) -> u64 {
    let mut rng = rand::rngs::StdRng::seed_from_u64(19);
    let mut bytes = 0;
    for i in 0..DIRS {
        let d = root.join(format!("a{}/b{}/c{i}", i % 4, i % 16));
        std::fs::create_dir_all(&d).unwrap();
        for f in 0..3 {
            let body = format!("berkas {i}/{f} ").repeat(rng.gen_range(1..200));
            bytes += body.len() as u64;
            std::fs::write(d.join(format!("f{f}.txt")), body).unwrap();
        }
    }
    for n in 0..3 {
        let mut big = vec![0u8; 9 << 20];
        rng.fill(&mut big[..]);
        bytes += big.len() as u64;
        std::fs::write(root.join(format!("besar-{n}.bin")), big).unwrap();
    }
    bytes
}

/// A new repository in `store` holding one backup of [`make_source`]:
/// the scratch directory, the source's path and its bytes.
async fn backed_up(store: &Store) -> (tempfile::TempDir, PathBuf, u64) {
    let (repo, reader_keys) = support::init(store, "sandi").await;
    let (agent, _) = AgentKey::new(&reader_keys.master, &repo.config);
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let total = make_source(&src);
    let mut opts = BackupOptions::new("h".into(), dir.path().join("cache"));
    opts.pack_size = 4 << 20;
    backup(
        store.clone(),
        &agent,
        std::slice::from_ref(&src),
        &opts,
        Arc::new(Progress::default()),
    )
    .await
    .unwrap();
    (dir, src, total)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_over_a_50ms_link_waits_for_the_trees_depth_not_for_each_directory() {
    let g = garage::Garage::start();
    let direct = Store::open_with(&g.url("lambat"), true, Some((&g.key_id, &g.secret))).unwrap();
    let (dir, src, total) = backed_up(&direct).await;

    // The reader's side of the link is 50 ms away.
    let link = Link::start(
        g.endpoint.trim_start_matches("http://"),
        LinkSpec {
            rtt: RTT,
            ..LinkSpec::default()
        },
    );
    let url = format!(
        "s3://{}/lambat?endpoint=http://{}&region=garage",
        g.bucket,
        link.addr()
    );
    let store = Store::open_with(&url, false, Some((&g.key_id, &g.secret))).unwrap();
    let reader = Reader::open(store, "sandi").await.unwrap();
    let snap = reader.find_snapshot("latest").await.unwrap();

    // Every tree of the snapshot, a level at a time: each tree pack once.
    let mut loader = TreeLoader::of(&reader, snap.space);
    let (mut level, mut trees) = (vec![snap.snapshot.tree], 0);
    while !level.is_empty() {
        let loaded = loader.load(&level).await.unwrap();
        level = Vec::new();
        for t in loaded.into_values() {
            let t = t.unwrap();
            trees += 1;
            level.extend(t.nodes.iter().filter_map(|n| n.subtree));
        }
    }
    assert!(trees > DIRS, "{trees} trees loaded");
    let tree_packs = reader.index(snap.space).unwrap().tree_pack_ends().len();
    assert_eq!(
        loader.fetches, tree_packs,
        "each tree pack fetched once ({tree_packs} tree packs)"
    );

    let target = dir.path().join("restored");
    let started = Instant::now();
    let summary = pulih_core::restore::restore(
        &reader,
        &snap,
        &target,
        &Default::default(),
        Arc::new(Default::default()),
    )
    .await
    .unwrap();
    let took = started.elapsed();
    eprintln!("restore over the link: {took:?} ({summary:?})");
    assert_eq!(summary.bytes, total);
    assert_eq!(summary.dirs as usize, DIRS + 16 + 4 + 1, "{summary:?}");
    // Depth 6 (tmp/…/src/a/b/c) plus the content: a few dozen round trips
    // at most, where one per directory would be 240.
    assert!(
        took < RTT * 60,
        "the restore took {took:?}, {} round trips of {RTT:?}",
        took.as_millis() / RTT.as_millis()
    );
    let restored: PathBuf = target.join(src.strip_prefix("/").unwrap());
    for i in [0, DIRS / 2, DIRS - 1] {
        let d = format!("a{}/b{}/c{i}", i % 4, i % 16);
        assert_eq!(
            std::fs::read(restored.join(&d).join("f1.txt")).unwrap(),
            std::fs::read(src.join(&d).join("f1.txt")).unwrap()
        );
    }
    for n in 0..3 {
        let name = format!("besar-{n}.bin");
        assert!(
            std::fs::read(restored.join(&name)).unwrap() == std::fs::read(src.join(&name)).unwrap()
        );
    }

    // verify reads the same way: every tree and every pack, over the link.
    let report = pulih_core::verify::verify(&reader, Some(100.0))
        .await
        .unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!(report.trees, trees);
}

/// From an object store, the blobs waiting to be written are bounded in
/// bytes: with room for less than one blob, every read waits for the
/// others' writes, one blob at a time, and the restore still finishes
/// with every byte in place (no read waits on itself).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_with_room_for_one_blob_at_a_time_finishes_whole() {
    let store = Store::open(&format!("memory://held-{}", rand::random::<u64>()), true).unwrap();
    let (dir, src, total) = backed_up(&store).await;
    let reader = Reader::open(store, "sandi").await.unwrap();
    let snap = reader.find_snapshot("latest").await.unwrap();
    let target = dir.path().join("restored");
    let one_at_a_time = RestoreOptions {
        held_bytes: 1,
        ..Default::default()
    };
    let restoring = pulih_core::restore::restore(
        &reader,
        &snap,
        &target,
        &one_at_a_time,
        Arc::new(Default::default()),
    );
    let summary = tokio::time::timeout(Duration::from_secs(60), restoring)
        .await
        .expect("the restore finished (no read waits forever)")
        .unwrap();
    assert_eq!(summary.bytes, total);
    let restored: PathBuf = target.join(src.strip_prefix("/").unwrap());
    let differ = std::process::Command::new("diff")
        .arg("-r")
        .arg(&src)
        .arg(&restored)
        .status()
        .unwrap();
    assert!(
        differ.success(),
        "the restored tree differs from the source"
    );
}
