//! Repository format 2: small blobs compressed together as frames
//! (FORMAT.md §4.1). Backup, restore (local and streamed), forget, prune
//! with a partly dead frame, verify --read-data, tampering, the size gain,
//! and a version-1 repository that stays version 1 when written to.

#[path = "support/repo.rs"]
mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use pulih_core::backup::{BackupOptions, Progress, backup};
use pulih_core::forget::{KeepPolicy, forget};
use pulih_core::id::{PackId, SnapshotId};
use pulih_core::index::Location;
use pulih_core::keys::AgentKey;
use pulih_core::pack::{self, FLAG_FRAMED};
use pulih_core::prune::{PruneOptions, prune};
use pulih_core::repo::Reader;
use pulih_core::storage::Store;
use rand::{Rng, SeedableRng};
use time::UtcOffset;

const PASS: &str = "bingkai";

/// Many small files: text that compresses across files far better than
/// alone (similar lines, different numbers), some identical files, some
/// random ones, a few larger than the framing threshold, nested dirs.
fn small_tree(root: &Path, seed: u64, n: usize) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    for i in 0..n {
        let dir = root.join(format!("d{}", i % 7)).join(format!("e{}", i % 3));
        std::fs::create_dir_all(&dir).unwrap();
        let body: Vec<u8> = match i % 10 {
            // Identical files: stored once.
            0 => b"# same config in every directory\nlisten 0.0.0.0:8080\n".repeat(20),
            1 => {
                let mut b = vec![0u8; rng.gen_range(100..20_000)];
                rng.fill(&mut b[..]);
                b
            }
            // Larger than the threshold: stored alone.
            9 if i % 30 == 9 => format!("row {i}\n").repeat(40_000).into_bytes(),
            _ => (0..rng.gen_range(5..200))
                .map(|l| {
                    format!(
                        "Package: lib{}-{}\nVersion: {}.{}-{}\nDepends: libc6 (>= 2.{})\nDescription: shared library number {i} line {l}\n",
                        i % 13,
                        l,
                        rng.gen_range(0..9),
                        rng.gen_range(0..30),
                        rng.gen_range(0..5),
                        rng.gen_range(20..40)
                    )
                })
                .collect::<String>()
                .into_bytes(),
        };
        std::fs::write(dir.join(format!("f{i}.txt")), body).unwrap();
    }
    std::fs::write(root.join("empty"), b"").unwrap();
}

fn agent_of(reader: &Reader) -> AgentKey {
    AgentKey::new(&reader.keys.master, &reader.repo.config).0
}

async fn run(
    store: &Store,
    agent: &AgentKey,
    src: &Path,
    cache: &Path,
    o: impl Fn(&mut BackupOptions),
) -> SnapshotId {
    let mut opts = BackupOptions::new("srv".into(), cache.to_owned());
    o(&mut opts);
    backup(
        store.clone(),
        agent,
        &[src.to_owned()],
        &opts,
        Arc::new(Progress::default()),
    )
    .await
    .unwrap()
    .snapshot_id
}

/// Every file under `a` equals the one at the same place under `b`, and
/// the same names exist on both sides.
fn same_tree(a: &Path, b: &Path) {
    fn files(root: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut stack = vec![root.to_owned()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p.clone());
                }
                out.push(p.strip_prefix(root).unwrap().to_owned());
            }
        }
        out.sort();
        out
    }
    let (fa, fb) = (files(a), files(b));
    assert_eq!(fa, fb, "the same names");
    for f in fa {
        if a.join(&f).is_file() {
            assert_eq!(
                std::fs::read(a.join(&f)).unwrap(),
                std::fs::read(b.join(&f)).unwrap(),
                "{}",
                f.display()
            );
        }
    }
}

fn framed_locations(reader: &Reader) -> Vec<Location> {
    reader
        .indexes
        .spaces
        .values()
        .flat_map(|i| i.iter())
        .filter(|l| l.entry.flags & FLAG_FRAMED != 0)
        .collect()
}

/// Framed entries as the pack headers hold them (not deduplicated the way
/// the in-memory index is): a blob stored twice would count twice.
async fn framed_in_headers(reader: &Reader) -> usize {
    let master = reader.keys.master.clone();
    let mut n = 0;
    for (p, size) in reader.repo.list_packs().await.unwrap() {
        let (_, h) = reader
            .repo
            .read_pack_header(&p, size, |s| Some(master.space(s)))
            .await
            .unwrap();
        n += h.unwrap().entries.iter().filter(|e| e.is_framed()).count();
    }
    n
}

/// Distinct contents of the non-empty files under `root` shorter than the
/// framing threshold.
fn distinct_small_contents(root: &Path) -> usize {
    let mut seen = std::collections::HashSet::new();
    let mut stack = vec![root.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let b = std::fs::read(&p).unwrap();
            if !b.is_empty() && b.len() < pulih_core::pack::FRAME_MAX_BLOB {
                seen.insert(blake3::hash(&b));
            }
        }
    }
    seen.len()
}

async fn stored_bytes(store: &Store) -> u64 {
    store
        .list("data/")
        .await
        .unwrap()
        .iter()
        .map(|o| o.size)
        .sum()
}

/// Backup of many small files into a new (version 2) repository, then a
/// restore from a `file://` store (whole ranges) and from an object store
/// (streamed ranges): byte for byte the source, and framed blobs are in
/// the index, several per frame.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_small_files_round_trip_through_frames() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    small_tree(&src, 1, 600);
    let local = dir.path().join("repo");
    for url in [
        local.to_str().unwrap().to_owned(),
        format!("memory://frames-{}", rand::random::<u64>()),
    ] {
        let store = Store::open(&url, true).unwrap();
        let (repo, keys) = support::init(&store, PASS).await;
        assert_eq!(repo.config.version, 3);
        let agent = AgentKey::new(&keys.master, &repo.config).0;
        let id = run(&store, &agent, &src, &dir.path().join("cache"), |o| {
            o.workers = 2
        })
        .await;
        let reader = Reader::open(store.clone(), PASS).await.unwrap();
        let framed = framed_locations(&reader);
        let frames: std::collections::HashSet<(PackId, u32)> =
            framed.iter().map(|l| (l.pack, l.entry.offset)).collect();
        assert!(framed.len() > 300, "{} framed blobs", framed.len());
        assert!(
            frames.len() * 20 < framed.len(),
            "{} frames for {} blobs",
            frames.len(),
            framed.len()
        );
        let snap = reader.find_snapshot(&id.to_hex()).await.unwrap();
        let target = dir.path().join(format!("restored-{}", url.len()));
        support::restore_all(&reader, &snap, &target).await;
        same_tree(&src, &target.join(src.strip_prefix("/").unwrap()));
        // One blob read alone (the reader's single-blob path) from a frame.
        let l = &framed[framed.len() / 2];
        let space = *reader.indexes.spaces.keys().next().unwrap();
        let raw = reader.read_blob_at(space, l).await.unwrap();
        // Its index entry gives its padded slot, not its length.
        assert_eq!(l.entry.flags & pack::FLAG_PADDED, pack::FLAG_PADDED);
        assert_eq!(l.entry.raw_len as usize, pack::slot_len(raw.len()));
        // Each distinct small content stored once, in a frame, although
        // 60 files share one content and two workers filled the frames.
        assert_eq!(
            framed_in_headers(&reader).await,
            distinct_small_contents(&src)
        );
        assert_eq!(framed.len(), distinct_small_contents(&src));
        let report = pulih_core::verify::verify(&reader, Some(100.0))
            .await
            .unwrap();
        assert!(report.ok(), "{:?}", report.problems);
        assert!(report.blobs_read > 500, "{report:?}");
        // The index rebuilt from the pack headers alone finds every frame.
        let repaired = pulih_core::verify::repair_index(&reader).await.unwrap();
        assert!(repaired.unreadable_packs.is_empty(), "{repaired:?}");
        let reader = Reader::open(store.clone(), PASS).await.unwrap();
        assert_eq!(framed_locations(&reader).len(), framed.len());
        let report = pulih_core::verify::verify(&reader, Some(100.0))
            .await
            .unwrap();
        assert!(report.ok(), "{:?}", report.problems);
        if url.starts_with('/') {
            let _ = std::fs::remove_dir_all(&local);
        }
    }
}

/// Forget the first snapshot of two, prune: the frames that held deleted
/// files are repacked as frames of only the live blobs; after phase 2,
/// verify --read-data passes and the kept snapshot restores exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forget_and_prune_repack_partly_dead_frames() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    small_tree(&src, 2, 400);
    let store = Store::open(
        &format!("memory://frames-prune-{}", rand::random::<u64>()),
        true,
    )
    .unwrap();
    let (repo, keys) = support::init(&store, PASS).await;
    let agent = AgentKey::new(&keys.master, &repo.config).0;
    let cache = dir.path().join("cache");
    run(&store, &agent, &src, &cache, |o| o.workers = 1).await;
    // Half the files go: every frame loses some of its blobs.
    let mut gone = 0;
    for i in (0..400).step_by(2) {
        let f = src
            .join(format!("d{}", i % 7))
            .join(format!("e{}", i % 3))
            .join(format!("f{i}.txt"));
        std::fs::remove_file(f).unwrap();
        gone += 1;
    }
    assert_eq!(gone, 200);
    let kept = run(&store, &agent, &src, &cache, |o| o.workers = 1).await;
    let reader = Reader::open(store.clone(), PASS).await.unwrap();
    let before = framed_locations(&reader).len();
    forget(
        &reader,
        &KeepPolicy {
            last: 1,
            ..Default::default()
        },
        UtcOffset::UTC,
        false,
    )
    .await
    .unwrap();
    let mut opts = PruneOptions {
        grace_s: 60,
        ..Default::default()
    };
    let reader = Reader::open(store.clone(), PASS).await.unwrap();
    let r1 = prune(&reader, &opts).await.unwrap();
    assert!(r1.repacked_packs >= 1 && r1.new_packs >= 1, "{r1:?}");
    opts.now += 61;
    let reader = Reader::open(store.clone(), PASS).await.unwrap();
    let r2 = prune(&reader, &opts).await.unwrap();
    assert!(r2.deleted_packs >= 1 && r2.rescued_packs == 0, "{r2:?}");
    let reader = Reader::open(store.clone(), PASS).await.unwrap();
    let after = framed_locations(&reader);
    assert!(
        after.len() < before * 3 / 4 && !after.is_empty(),
        "live blobs only, still framed: {before} framed blobs before, {} after",
        after.len()
    );
    // Every pack was half dead, so all were repacked: what is stored in
    // frames now is exactly the live small contents, each once.
    assert_eq!(
        framed_in_headers(&reader).await,
        distinct_small_contents(&src)
    );
    let report = pulih_core::verify::verify(&reader, Some(100.0))
        .await
        .unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    let snap = reader.find_snapshot(&kept.to_hex()).await.unwrap();
    let target = dir.path().join("restored");
    support::restore_all(&reader, &snap, &target).await;
    same_tree(&src, &target.join(src.strip_prefix("/").unwrap()));
}

/// One flipped byte inside a frame: verify --read-data names the pack and
/// the frame's blobs, and a restore fails rather than write wrong bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_frame_is_caught_by_verify_and_restore() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    small_tree(&src, 3, 100);
    let store = Store::open(
        &format!("memory://frames-tamper-{}", rand::random::<u64>()),
        true,
    )
    .unwrap();
    let (repo, keys) = support::init(&store, PASS).await;
    let agent = AgentKey::new(&keys.master, &repo.config).0;
    let id = run(&store, &agent, &src, &dir.path().join("cache"), |_| {}).await;
    let reader = Reader::open(store.clone(), PASS).await.unwrap();
    let l = framed_locations(&reader).into_iter().next().unwrap();
    let name = pulih_core::layout::pack(&l.pack);
    let mut bytes = store.get(&name).await.unwrap().to_vec();
    bytes[l.entry.offset as usize + l.entry.stored_len as usize / 2] ^= 0x10;
    store.put(&name, bytes.into()).await.unwrap();
    let report = pulih_core::verify::verify(&reader, Some(100.0))
        .await
        .unwrap();
    let hits: Vec<&String> = report
        .problems
        .iter()
        .filter(|p| p.contains(&l.pack.to_string()) && p.contains("does not authenticate"))
        .collect();
    let in_frame = framed_locations(&reader)
        .iter()
        .filter(|m| m.pack == l.pack && m.entry.offset == l.entry.offset)
        .count();
    assert_eq!(
        hits.len(),
        in_frame,
        "each blob of the frame is reported: {:?}",
        report.problems
    );
    let snap = reader.find_snapshot(&id.to_hex()).await.unwrap();
    let err = pulih_core::restore::restore(
        &reader,
        &snap,
        &dir.path().join("restored"),
        &pulih_core::restore::RestoreOptions::default(),
        Arc::new(pulih_core::restore::RestoreProgress::default()),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("does not authenticate") && err.contains(&l.pack.to_string()),
        "{err}"
    );
}

/// Small files alike across files, each with little to compress alone (a
/// few hundred bytes to a few KiB of manual pages, scripts, package lists).
fn alike_tree(root: &Path, n: usize) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(4);
    let words = [
        "usr",
        "lib",
        "share",
        "doc",
        "copyright",
        "Depends",
        "libc6",
        "Version",
        "Maintainer",
        "Debian",
        "Section",
        "optional",
        "Priority",
        "amd64",
        "Description",
        "the",
        "of",
        "and",
        "package",
        "files",
        "config",
        "GNU",
        "General",
        "Public",
        "License",
    ];
    for i in 0..n {
        let dir = root.join(format!("p{}", i % 50));
        std::fs::create_dir_all(&dir).unwrap();
        let lines = rng.gen_range(3..60);
        let body: String = (0..lines)
            .map(|_| {
                let k = rng.gen_range(3..10);
                let mut l: Vec<&str> = (0..k)
                    .map(|_| words[rng.gen_range(0..words.len())])
                    .collect();
                l.push("\n");
                l.join(" ")
            })
            .collect();
        std::fs::write(
            dir.join(format!("f{i}")),
            format!("Package: pkg{i}\n{body}"),
        )
        .unwrap();
    }
}

/// Frames make a tree of many small compressible files smaller: the same
/// tree backed up with and without them (real backups, real sizes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_store_many_small_files_in_fewer_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    alike_tree(&src, 2000);
    let mut sizes = HashMap::new();
    for framed in [true, false] {
        let store = Store::open(
            &format!("memory://frames-size-{}", rand::random::<u64>()),
            true,
        )
        .unwrap();
        let (mut repo, keys) = support::init(&store, PASS).await;
        // Frames against none, unpadded both: version 2 (a version-3
        // repository refuses a backup without frames).
        support::set_config_version(&store, 2).await;
        repo.config.version = 2;
        let agent = AgentKey::new(&keys.master, &repo.config).0;
        let cache = dir.path().join(format!("cache-{framed}"));
        run(&store, &agent, &src, &cache, |o| {
            if !framed {
                o.framing = None;
            }
        })
        .await;
        sizes.insert(framed, stored_bytes(&store).await);
    }
    let (with, without) = (sizes[&true], sizes[&false]);
    eprintln!("packs: {with} bytes with frames, {without} without");
    // Measured 727 KB vs 1,081 KB.
    assert!(
        with * 4 < without * 3,
        "{with} with frames vs {without} without"
    );
}

/// A version-1 repository (the committed fixture, copied) backed up into
/// by this build stays version 1: no frame, version-1 pack headers and
/// index files, and it still restores and verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_1_repository_is_written_in_version_1() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/repo-v1");
    assert!(
        std::process::Command::new("cp")
            .arg("-a")
            .arg(&fixture)
            .arg(&repo)
            .status()
            .unwrap()
            .success()
    );
    let store = Store::open(repo.to_str().unwrap(), false).unwrap();
    let reader = Reader::open(store.clone(), "format fixture, not a secret")
        .await
        .unwrap();
    assert_eq!(reader.repo.config.version, 1);
    let indexes_before: Vec<String> = store
        .list("index/")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    let src = dir.path().join("src");
    small_tree(&src, 5, 200);
    let agent = agent_of(&reader);
    let id = run(&store, &agent, &src, &dir.path().join("cache"), |_| {}).await;
    let reader = Reader::open(store.clone(), "format fixture, not a secret")
        .await
        .unwrap();
    assert!(
        framed_locations(&reader).is_empty(),
        "no frame in a version-1 repository"
    );
    for o in store.list("index/").await.unwrap() {
        if !indexes_before.contains(&o.key) {
            let b = store.get(&o.key).await.unwrap();
            assert_eq!(&b[..8], b"PLHINDX1", "{}", o.key);
        }
    }
    let master = reader.keys.master.clone();
    for (p, size) in reader.repo.list_packs().await.unwrap() {
        let (_, h) = reader
            .repo
            .read_pack_header(&p, size, |s| Some(master.space(s)))
            .await
            .unwrap();
        assert!(h.unwrap().entries.iter().all(|e| !e.is_framed()));
    }
    let report = pulih_core::verify::verify(&reader, Some(100.0))
        .await
        .unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    let snap = reader.find_snapshot(&id.to_hex()).await.unwrap();
    let target = dir.path().join("restored");
    support::restore_all(&reader, &snap, &target).await;
    same_tree(&src, &target.join(src.strip_prefix("/").unwrap()));
}

/// A config claiming a version this build does not know is refused, with
/// a message that says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_format_version_is_refused() {
    let store = Store::open(
        &format!("memory://frames-v3-{}", rand::random::<u64>()),
        true,
    )
    .unwrap();
    let (_, keys) = support::init(&store, PASS).await;
    support::set_config_version(&store, 4).await;
    let err = pulih_core::repo::Repo::open(store.clone())
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("format version 4 is not supported"), "{err}");
    drop(keys);
}

/// A version-3 repository's padding is not a backup's option: a backup
/// asking for no frames there is refused before it writes anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_3_repository_refuses_a_backup_without_frames() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        &format!("memory://frames-off-{}", rand::random::<u64>()),
        true,
    )
    .unwrap();
    let (repo, keys) = support::init(&store, PASS).await;
    assert_eq!(repo.config.version, 3);
    let agent = AgentKey::new(&keys.master, &repo.config).0;
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("pin.txt"), "PIN 4471\n").unwrap();
    let mut o = BackupOptions::new("srv".into(), dir.path().join("cache"));
    o.framing = None;
    let err = backup(
        store.clone(),
        &agent,
        &[src],
        &o,
        Arc::new(Progress::default()),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("cannot be turned off"), "{err}");
    assert!(store.list("data/").await.unwrap().is_empty());
    assert!(store.list("snapshots/").await.unwrap().is_empty());
}
