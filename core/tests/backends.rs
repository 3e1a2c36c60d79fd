//! One suite, run against every storage backend: memory, a local
//! directory, and a real S3 server (Garage) on loopback.

#[path = "support/repo.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use pulih_core::Error;
use pulih_core::backup::{BackupOptions, Progress, backup};
use pulih_core::keys::AgentKey;
use pulih_core::repo::{Reader, Repo};
use pulih_core::storage::Store;
use pulih_test_support::garage;
use pulih_test_support::netem::{Link, LinkSpec};
use rand::RngCore;

fn make_source(root: &Path) {
    std::fs::create_dir_all(root.join("sub/deeper")).unwrap();
    let mut big = vec![0u8; 3_000_000];
    rand::thread_rng().fill_bytes(&mut big);
    std::fs::write(root.join("big.bin"), &big).unwrap();
    std::fs::write(root.join("sub/teks.txt"), "data penduduk ".repeat(20_000)).unwrap();
    std::fs::write(root.join("sub/deeper/kosong"), b"").unwrap();
    std::os::unix::fs::symlink("sub/teks.txt", root.join("tautan")).unwrap();
}

fn files(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().to_owned();
            if m.is_dir() {
                stack.push(p);
                out.push((rel, b"dir".to_vec()));
            } else if m.file_type().is_symlink() {
                out.push((
                    rel,
                    std::fs::read_link(&p)
                        .unwrap()
                        .into_os_string()
                        .into_encoded_bytes(),
                ));
            } else {
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

async fn suite(store: Store) {
    // Object semantics the engine relies on.
    assert!(matches!(store.get("nope/x").await, Err(Error::Missing(_))));
    store
        .put("suite/a", Bytes::from_static(b"hello pulih"))
        .await
        .unwrap();
    store
        .put("suite/b/c", Bytes::from_static(b"x"))
        .await
        .unwrap();
    assert_eq!(&store.get("suite/a").await.unwrap()[..], b"hello pulih");
    assert_eq!(
        &store.get_range("suite/a", 6..11).await.unwrap()[..],
        b"pulih"
    );
    assert_eq!(store.size("suite/a").await.unwrap(), 11);
    let mut keys: Vec<String> = store
        .list("suite/")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    keys.sort();
    assert_eq!(keys, vec!["suite/a".to_owned(), "suite/b/c".to_owned()]);
    assert!(
        store
            .list("suite/")
            .await
            .unwrap()
            .iter()
            .all(|o| o.modified > 1_700_000_000)
    );
    store.delete("suite/a").await.unwrap();
    store.delete("suite/b/c").await.unwrap();
    assert!(!store.exists("suite/a").await.unwrap());

    // The engine.
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    make_source(&src);
    let (repo, reader_keys) = support::init(&store, "sandi walidata").await;
    assert!(matches!(
        Repo::init(store.clone(), "x", &support::fast_init()).await,
        Err(Error::AlreadyExists { .. })
    ));
    let (agent, _) = AgentKey::new(&reader_keys.master, &repo.config);
    let mut opts = BackupOptions::new("server-uji".into(), work.path().join("cache"));
    opts.pack_size = 1 << 20;
    let first = backup(
        store.clone(),
        &agent,
        std::slice::from_ref(&src),
        &opts,
        Arc::new(Progress::default()),
    )
    .await
    .unwrap();
    assert!(first.errors.is_empty());
    assert_eq!(first.snapshot.summary.files, 3);
    let second = backup(
        store.clone(),
        &agent,
        std::slice::from_ref(&src),
        &opts,
        Arc::new(Progress::default()),
    )
    .await
    .unwrap();
    assert_eq!(second.snapshot.summary.bytes_read, 0);
    assert_eq!(second.snapshot.summary.bytes_new, 0);

    let reader = Reader::open(store.clone(), "sandi walidata").await.unwrap();
    assert!(matches!(
        Reader::open(store.clone(), "salah").await,
        Err(Error::WrongPassphrase { .. })
    ));
    let snaps = reader.snapshots().await.unwrap();
    assert_eq!(snaps.len(), 2);
    assert_eq!(snaps[0].id, first.snapshot_id);
    let target = work.path().join("restore");
    support::restore_all(&reader, &snaps[1], &target).await;
    assert_eq!(
        files(&src),
        files(&target.join(src.strip_prefix("/").unwrap()))
    );
    let report = pulih_core::verify::verify(&reader, Some(100.0))
        .await
        .unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    assert!(report.packs_read >= 2, "data and tree packs");

    // Rebuild the index from the packs alone.
    let repaired = pulih_core::verify::repair_index(&reader).await.unwrap();
    assert_eq!(repaired.packs_indexed, report.packs);
    let reader = Reader::open(store.clone(), "sandi walidata").await.unwrap();
    let report = pulih_core::verify::verify(&reader, Some(100.0))
        .await
        .unwrap();
    assert!(report.ok(), "{:?}", report.problems);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_memory() {
    suite(Store::open(&format!("memory://suite-{}", rand::random::<u64>()), true).unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_file() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}/repo", dir.path().display());
    suite(Store::open(&url, true).unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_s3_garage() {
    let g = garage::Garage::start();
    let store =
        Store::open_with(&g.url("bontang/dinkes"), true, Some((&g.key_id, &g.secret))).unwrap();
    suite(store).await;
}

/// The link to a real S3 server goes dead in the middle of a pack's
/// upload: the request times out (`?timeout=`), the PUT is sent again
/// (every write of the engine is idempotent; object_store does not resend
/// a PUT that timed out) and the object in the store is whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_cut_mid_request_is_sent_again_and_the_object_is_whole() {
    let g = garage::Garage::start();
    // The first connection passes 512 KiB of the request, then nothing,
    // held open: no reset reaches the sender. Later connections pass.
    let link = Link::start(
        g.endpoint.trim_start_matches("http://"),
        LinkSpec {
            cut_after: Some(512 * 1024),
            ..LinkSpec::default()
        },
    );
    let url = format!(
        "s3://{}/cut?endpoint=http://{}&region=garage&timeout=3s",
        g.bucket,
        link.addr()
    );
    let store = Store::open_with(&url, true, Some((&g.key_id, &g.secret))).unwrap();
    let mut pack = vec![0u8; 4 << 20];
    rand::thread_rng().fill_bytes(&mut pack);
    store
        .put("data/ab/cut-mid-way", Bytes::from(pack.clone()))
        .await
        .unwrap();
    assert!(
        link.connections() >= 2,
        "the first connection went dead, so the PUT went again"
    );
    let back = store.get("data/ab/cut-mid-way").await.unwrap();
    assert_eq!(back.len(), pack.len());
    assert!(
        back[..] == pack[..],
        "the stored object is the whole upload"
    );
}

/// A bad `timeout` in a repository URL is refused with what is wrong.
#[test]
fn a_bad_timeout_in_an_s3_url_is_refused() {
    let Err(e) = Store::open("s3://b/p?endpoint=http://127.0.0.1:1&timeout=soon", false) else {
        panic!("accepted");
    };
    assert!(e.to_string().contains("timeout `soon`"), "{e}");
}

/// Hardening (issue 20): a store reached over plain http:// off loopback
/// is refused unless its URL says `insecure_http=true`; loopback is fine.
#[test]
fn plain_http_to_a_store_off_loopback_needs_insecure_http() {
    let Err(e) = Store::open(
        "s3://b/p?endpoint=http://10.0.0.5:3900&region=garage",
        false,
    ) else {
        panic!("plain http off loopback was accepted");
    };
    let msg = e.to_string();
    assert!(
        msg.contains("insecure_http=true") && msg.contains("10.0.0.5"),
        "{msg}"
    );
    for ok in [
        "s3://b/p?endpoint=http://10.0.0.5:3900&region=garage&insecure_http=true",
        "s3://b/p?endpoint=http://127.0.0.1:3900&region=garage",
        "s3://b/p?endpoint=http://localhost:3900&region=garage",
        "s3://b/p?endpoint=http://[::1]:3900&region=garage",
        "s3://b/p?endpoint=https://10.0.0.5:3900&region=garage",
    ] {
        assert!(Store::open(ok, false).is_ok(), "{ok}");
    }
}
