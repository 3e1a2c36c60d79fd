//! Files read by several readers at once (issue 19): the snapshot is the
//! one a single reader makes — same root tree id, same files cache — every
//! blob is stored once, and a restore gives the source back.

#[path = "support/repo.rs"]
mod support;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use pulih_core::backup::{BackupOptions, BackupOutcome, Progress, backup};
use pulih_core::chunker::Chunker;
use pulih_core::config::ChunkerParams;
use pulih_core::files_cache::{FilesCache, cache_file};
use pulih_core::keys::AgentKey;
use pulih_core::pack::BlobType;
use pulih_core::repo::{InitOptions, Reader, Repo};
use pulih_core::storage::Store;
use pulih_test_support::tree::{assert_same_tree, restored};
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};

/// Chunks of 16–256 KiB, so a test's files take every read path: one
/// chunk, several chunks read whole, and longer than one chunk's maximum.
const CHUNKER: ChunkerParams = ChunkerParams {
    min_size: 16 * 1024,
    avg_size: 64 * 1024,
    max_size: 256 * 1024,
};

/// Every regular file below `dir`.
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let t = e.file_type().unwrap();
        if t.is_dir() {
            out.extend(files_under(&e.path()));
        } else if t.is_file() {
            out.push(e.path());
        }
    }
    out
}

fn random(rng: &mut StdRng, n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    rng.fill_bytes(&mut b);
    b
}

/// Many directories of many small files, each directory led by a larger
/// file (names sort it first): with several readers the small files after
/// it are read before it, so only the walker's ordering puts each file's
/// content under its own name. Same content under many names (readers race
/// to store one blob, some at the same moment), hard links within and across directories, empty
/// files, symlinks.
fn make_source(root: &Path) {
    let mut rng = StdRng::seed_from_u64(19);
    let shared = random(&mut rng, 3000);
    for d in 0..30 {
        let dir = root.join(format!("d{d:02}"));
        let sub = dir.join("sub");
        std::fs::create_dir_all(&sub).unwrap();
        let big = match d % 3 {
            0 => rng.gen_range(300_000..1_500_000), // longer than one chunk's maximum
            1 => rng.gen_range(40_000..250_000),    // one or more chunks, read whole
            _ => rng.gen_range(1..16_000),          // one chunk
        };
        std::fs::write(dir.join("0-besar.bin"), random(&mut rng, big)).unwrap();
        for f in 0..40 {
            let n = rng.gen_range(0..4000);
            std::fs::write(dir.join(format!("f{f:02}.dat")), random(&mut rng, n)).unwrap();
        }
        for f in 0..5 {
            let n = rng.gen_range(0..2000);
            std::fs::write(sub.join(format!("g{f}.txt")), random(&mut rng, n)).unwrap();
        }
        std::fs::write(dir.join("salinan.txt"), &shared).unwrap();
        std::fs::write(sub.join("salinan.txt"), &shared).unwrap();
        std::fs::write(dir.join("kosong"), b"").unwrap();
        std::os::unix::fs::symlink("f00.dat", dir.join("tautan")).unwrap();
    }
    // Runs of names with the same content: new blobs that several readers
    // meet at once.
    let same = root.join("sama");
    std::fs::create_dir_all(&same).unwrap();
    for g in 0..16 {
        let n = rng.gen_range(1..60_000);
        let content = random(&mut rng, n);
        for k in 0..4 {
            std::fs::write(same.join(format!("g{g:02}-{k}")), &content).unwrap();
        }
    }
    // Hard links: the first name sorts before the others, some in the
    // same directory, some in a later one.
    std::fs::write(root.join("d01/asli.txt"), random(&mut rng, 70_000)).unwrap();
    for other in ["d01/asli2.txt", "d01/sub/asli3.txt", "d17/asli4.txt"] {
        std::fs::hard_link(root.join("d01/asli.txt"), root.join(other)).unwrap();
    }
    std::fs::hard_link(
        root.join("d03/0-besar.bin"),
        root.join("d29/besar-lagi.bin"),
    )
    .unwrap();
}

async fn run(
    store: &Store,
    agent: &AgentKey,
    src: &Path,
    cache: &Path,
    readers: usize,
) -> BackupOutcome {
    let mut o = BackupOptions::new("srv".into(), cache.to_owned());
    o.readers = readers;
    o.workers = 2;
    o.pack_size = 256 * 1024;
    let out = backup(
        store.clone(),
        agent,
        &[src.to_owned()],
        &o,
        Arc::new(Progress::default()),
    )
    .await
    .unwrap();
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_reader_and_four_make_the_same_tree_and_files_cache_and_store_each_blob_once() {
    let store = Store::open(&format!("memory://readers-{}", rand::random::<u64>()), true).unwrap();
    let opts = InitOptions {
        chunker: CHUNKER,
        ..support::fast_init()
    };
    let (repo, reader_keys) = Repo::init(store.clone(), "sandi", &opts).await.unwrap();
    let (agent, _) = AgentKey::new(&reader_keys.master, &repo.config);
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("srv");
    make_source(&src);
    let cache = |name: &str| dir.path().join(name);

    // Four readers first, into the empty repository: every blob is new,
    // and the readers race to store the shared ones.
    let many = run(&store, &agent, &src, &cache("c4"), 4).await;
    // One reader, with its own (empty) files cache: reads every file again.
    let one = run(&store, &agent, &src, &cache("c1"), 1).await;
    let again = run(&store, &agent, &src, &cache("c4b"), 4).await;
    assert_eq!(many.snapshot.tree, one.snapshot.tree);
    assert_eq!(again.snapshot.tree, one.snapshot.tree);
    let counts = |o: &BackupOutcome| {
        let s = &o.snapshot.summary;
        (s.files, s.dirs, s.total_bytes, s.bytes_read)
    };
    assert_eq!(counts(&many), counts(&one));
    assert_eq!(counts(&again), counts(&one));
    assert_eq!(one.snapshot.summary.bytes_new, 0);
    let cache_of =
        |name: &str| FilesCache::load(&cache_file(&cache(name), agent.repo_id, agent.space.space));
    let c1 = cache_of("c1");
    // 49 files a directory, 64 in `sama`, and the first name of
    // `asli.txt`'s inode (further names of an inode take their content from
    // the first, as in a walk by one reader).
    assert_eq!(c1.entries.len(), 30 * 49 + 64 + 1);
    assert_eq!(cache_of("c4"), c1);
    assert_eq!(cache_of("c4b"), c1);

    // Unchanged since: every file from the files cache, nothing read.
    let cached = run(&store, &agent, &src, &cache("c4"), 4).await;
    assert_eq!(cached.snapshot.tree, one.snapshot.tree);
    assert_eq!(cached.snapshot.summary.bytes_read, 0);

    // Each blob in exactly one pack, and the first run's new bytes are
    // exactly the data blobs' (one blob stored twice would count twice).
    let mut stored: HashMap<_, usize> = HashMap::new();
    let mut data_ids = HashSet::new();
    let mut data_bytes = 0u64;
    let space = agent.space.clone();
    // A padded blob's index length is its slot's; its own length is
    // inside its frame, for a reader.
    let reader = Reader::open(store.clone(), "sandi").await.unwrap();
    for (pack, size) in repo.list_packs().await.unwrap() {
        let (_, header) = repo
            .read_pack_header(&pack, size, |s| (s == space.space).then(|| space.clone()))
            .await
            .unwrap();
        for e in header.unwrap().entries {
            *stored.entry(e.id).or_default() += 1;
            if e.kind == BlobType::Data {
                data_bytes += if e.flags & pulih_core::pack::FLAG_PADDED != 0 {
                    let raw = reader.read_blob(space.space, &e.id, e.kind).await.unwrap();
                    assert_eq!(e.raw_len as usize, pulih_core::pack::slot_len(raw.len()));
                    raw.len() as u64
                } else {
                    e.raw_len as u64
                };
                data_ids.insert(e.id);
            }
        }
    }
    let twice: Vec<_> = stored.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "blobs stored more than once: {twice:?}");
    assert_eq!(many.snapshot.summary.bytes_new, data_bytes);
    // Whichever way a file was read (whole into a reader's buffer, or
    // through a window), its chunks are those the chunker cuts from the
    // whole file.
    let chunker = Chunker::new(&agent.chunker_key, CHUNKER);
    let mut cut_ids = HashSet::new();
    for file in files_under(&src) {
        let content = std::fs::read(&file).unwrap();
        let mut rest = &content[..];
        for n in chunker.cuts(&content) {
            cut_ids.insert(space.blob_id(&rest[..n]));
            rest = &rest[n..];
        }
    }
    assert_eq!(
        data_ids, cut_ids,
        "the stored chunks are the chunker's cuts"
    );

    // Every blob the snapshot names is there: it restores whole, hard
    // links included.
    let snap = reader
        .find_snapshot(&many.snapshot_id.to_hex())
        .await
        .unwrap();
    let target = dir.path().join("restore");
    support::restore_all(&reader, &snap, &target).await;
    assert_same_tree(&src, &restored(&target, &src));
}
