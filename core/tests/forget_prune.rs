//! Retention does not trust agent-claimed times; prune frees space, repacks,
//! and is safe against a backup that runs across it.

#[path = "support/repo.rs"]
mod support;

use std::path::Path;
use std::sync::Arc;

use pulih_core::backup::{BackupOptions, Progress, backup};
use pulih_core::forget::{KeepPolicy, forget, plan};
use pulih_core::id::SnapshotId;
use pulih_core::keys::AgentKey;
use pulih_core::prune::{PruneOptions, prune};
use pulih_core::repo::Reader;
use pulih_core::snapshot::Snapshot;
use pulih_core::storage::Store;
use rand::RngCore;
use time::UtcOffset;

fn random_file(p: &Path, n: usize) {
    let mut b = vec![0u8; n];
    rand::thread_rng().fill_bytes(&mut b);
    std::fs::write(p, b).unwrap();
}

async fn fresh() -> (Store, AgentKey, tempfile::TempDir) {
    let store = Store::open(&format!("memory://prune-{}", rand::random::<u64>()), true).unwrap();
    let (repo, reader) = support::init(&store, "sandi").await;
    let (agent, _) = AgentKey::new(&reader.master, &repo.config);
    (store, agent, tempfile::tempdir().unwrap())
}

/// `pack_size` 1 puts every blob in a pack of its own.
async fn run_backup_packed(
    store: &Store,
    agent: &AgentKey,
    src: &Path,
    dir: &Path,
    pack_size: usize,
) -> SnapshotId {
    let mut o = BackupOptions::new("srv".into(), dir.join("cache"));
    o.pack_size = pack_size;
    o.workers = 1;
    backup(
        store.clone(),
        agent,
        &[src.to_owned()],
        &o,
        Arc::new(Progress::default()),
    )
    .await
    .unwrap()
    .snapshot_id
}

async fn run_backup(store: &Store, agent: &AgentKey, src: &Path, dir: &Path) -> SnapshotId {
    run_backup_packed(store, agent, src, dir, 1).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_dated_in_the_future_does_not_make_forget_drop_real_history() {
    let (store, agent, dir) = fresh().await;
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let mut real = Vec::new();
    for i in 0..3 {
        random_file(&src.join("f"), 10_000 + i);
        real.push(run_backup(&store, &agent, &src, dir.path()).await);
    }
    // A compromised agent writes snapshots claiming the next 5 days.
    for day in 1..=5 {
        let id = SnapshotId::random();
        let reader = Reader::open(store.clone(), "sandi").await.unwrap();
        let mut s = reader.find_snapshot("latest").await.unwrap().snapshot;
        s.time = format!("2099-01-0{day}T12:00:00Z");
        store
            .put(
                &format!("snapshots/{id}"),
                Snapshot::encode(&s, &agent.space, &id).into(),
            )
            .await
            .unwrap();
    }
    let reader = Reader::open(store.clone(), "sandi").await.unwrap();
    let policy = KeepPolicy {
        daily: 3,
        ..Default::default()
    };
    // Trusting the claimed times would keep only three of the fakes.
    let decisions = plan(
        &reader.snapshots().await.unwrap(),
        &policy,
        UtcOffset::from_hms(8, 0, 0).unwrap(),
    )
    .unwrap();
    let kept: Vec<&str> = decisions
        .iter()
        .filter(|d| d.keep)
        .map(|d| d.id.as_str())
        .collect();
    assert!(
        decisions.iter().all(|d| d.effective_time < 4_000_000_000),
        "future claims are replaced by the store's time"
    );
    assert_eq!(
        kept.len(),
        1,
        "all snapshots fall on today: one daily bucket"
    );
    // keep-last counts by effective time too: the real ones stay in order.
    let decisions = plan(
        &reader.snapshots().await.unwrap(),
        &KeepPolicy {
            last: 8,
            ..Default::default()
        },
        UtcOffset::UTC,
    )
    .unwrap();
    assert!(
        real.iter()
            .all(|r| decisions.iter().any(|d| d.id == r.to_hex() && d.keep))
    );
    assert!(
        plan(&[], &KeepPolicy::default(), UtcOffset::UTC).is_err(),
        "an empty policy is refused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_frees_space_repacks_and_rescues_what_a_concurrent_backup_used() {
    let (store, agent, dir) = fresh().await;
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    random_file(&src.join("keep.bin"), 2_000_000);
    random_file(&src.join("gone.bin"), 2_000_000);
    run_backup(&store, &agent, &src, dir.path()).await;
    // `late.bin` in a backup of its own, so its packs never hold
    // `gone.bin`'s bytes (a rescued pack keeps what else it holds).
    random_file(&src.join("late.bin"), 600_000);
    let old = run_backup(&store, &agent, &src, dir.path()).await;
    std::fs::remove_file(src.join("gone.bin")).unwrap();
    let late = std::fs::read(src.join("late.bin")).unwrap();
    std::fs::remove_file(src.join("late.bin")).unwrap();
    let newer = run_backup(&store, &agent, &src, dir.path()).await;

    // A backup that loaded the index now, before prune...
    let index_before: Vec<(String, bytes::Bytes)> = {
        let mut v = Vec::new();
        for o in store.list("index/").await.unwrap() {
            v.push((o.key.clone(), store.get(&o.key).await.unwrap()));
        }
        v
    };
    // Forget the old snapshot; prune phase 1 condemns `gone.bin`'s and
    // `late.bin`'s packs.
    let reader = Reader::open(store.clone(), "sandi").await.unwrap();
    let d = forget(
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
    assert!(d.iter().any(|d| d.id == old.to_hex() && !d.keep));
    let reader = Reader::open(store.clone(), "sandi").await.unwrap();
    let mut opts = PruneOptions {
        grace_s: 3600,
        ..Default::default()
    };
    let r1 = prune(&reader, &opts).await.unwrap();
    assert!(r1.condemned_packs >= 2, "{r1:?}");
    assert_eq!(r1.deleted_packs, 0, "phase 1 deletes nothing");

    // ...finishes after it, deduplicating `late.bin` against a condemned
    // pack (its index, loaded before prune, still listed it).
    for (k, b) in &index_before {
        store.put(k, b.clone()).await.unwrap();
    }
    std::fs::write(src.join("late.bin"), &late).unwrap();
    let concurrent = run_backup(&store, &agent, &src, dir.path()).await;
    for (k, _) in &index_before {
        store.delete(k).await.unwrap();
    }

    // Before the grace period: nothing deleted. After: the unused packs go,
    // the one the concurrent backup needs is rescued.
    let reader = Reader::open(store.clone(), "sandi").await.unwrap();
    assert_eq!(prune(&reader, &opts).await.unwrap().deleted_packs, 0);
    opts.now += 3601;
    let reader = Reader::open(store.clone(), "sandi").await.unwrap();
    let r2 = prune(&reader, &opts).await.unwrap();
    assert!(r2.rescued_packs >= 1, "{r2:?}");
    assert!(r2.deleted_packs >= 1, "{r2:?}");
    assert!(
        r2.bytes_deleted >= 2_000_000,
        "gone.bin's bytes are freed: {r2:?}"
    );

    let reader = Reader::open(store.clone(), "sandi").await.unwrap();
    let report = pulih_core::verify::verify(&reader, Some(100.0))
        .await
        .unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    for (id, files) in [
        (newer, vec!["keep.bin"]),
        (concurrent, vec!["keep.bin", "late.bin"]),
    ] {
        let snap = reader.find_snapshot(&id.to_hex()).await.unwrap();
        let target = dir.path().join(format!("r-{id}"));
        support::restore_all(&reader, &snap, &target).await;
        for f in files {
            assert_eq!(
                std::fs::read(target.join(src.strip_prefix("/").unwrap()).join(f)).unwrap(),
                std::fs::read(src.join(f)).unwrap()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_repacks_partly_used_packs() {
    let (store, agent, dir) = fresh().await;
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    random_file(&src.join("keep.bin"), 1_500_000);
    random_file(&src.join("gone.bin"), 1_500_000);
    // One big pack holds both files' chunks.
    run_backup_packed(&store, &agent, &src, dir.path(), 64 << 20).await;
    std::fs::remove_file(src.join("gone.bin")).unwrap();
    let kept = run_backup_packed(&store, &agent, &src, dir.path(), 64 << 20).await;
    let reader = Reader::open(store.clone(), "sandi").await.unwrap();
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
    let reader = Reader::open(store.clone(), "sandi").await.unwrap();
    let r1 = prune(&reader, &opts).await.unwrap();
    assert!(r1.repacked_packs >= 1 && r1.new_packs >= 1, "{r1:?}");
    opts.now += 61;
    let reader = Reader::open(store.clone(), "sandi").await.unwrap();
    let r2 = prune(&reader, &opts).await.unwrap();
    assert!(r2.deleted_packs >= 1 && r2.rescued_packs == 0, "{r2:?}");
    let reader = Reader::open(store.clone(), "sandi").await.unwrap();
    let report = pulih_core::verify::verify(&reader, Some(100.0))
        .await
        .unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    let snap = reader.find_snapshot(&kept.to_hex()).await.unwrap();
    let target = dir.path().join("r");
    support::restore_all(&reader, &snap, &target).await;
    let f = target.join(src.strip_prefix("/").unwrap()).join("keep.bin");
    assert_eq!(
        std::fs::read(f).unwrap(),
        std::fs::read(src.join("keep.bin")).unwrap()
    );
    // Space was actually freed: less stored than both files together.
    let stored: u64 = store
        .list("data/")
        .await
        .unwrap()
        .iter()
        .map(|o| o.size)
        .sum();
    assert!(stored < 2_500_000, "{stored} bytes still stored");
}
