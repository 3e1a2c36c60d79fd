//! Retention with the maintenance key (FORMAT.md §12): forget and prune
//! without any reader key, and never lose a blob a kept snapshot needs,
//! also after a reader's prune repacked it elsewhere.

#[path = "support/repo.rs"]
mod support;

use std::collections::HashSet;
use std::sync::Arc;

use pulih_core::backup::{BackupOptions, Progress, backup};
use pulih_core::forget::{KeepPolicy, forget};
use pulih_core::keys::{AgentKey, MaintenanceKeyFile};
use pulih_core::maintenance;
use pulih_core::prune::{PruneOptions, prune};
use pulih_core::repo::{Reader, Repo};
use pulih_core::storage::Store;
use pulih_core::verify::verify;
use rand::RngCore;
use time::UtcOffset;

fn random_bytes(n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    rand::thread_rng().fill_bytes(&mut b);
    b
}

struct Fx {
    store: Store,
    agent: AgentKey,
    maint: MaintenanceKeyFile,
    maint_text: String,
    master_hex: String,
    dir: tempfile::TempDir,
}

async fn fresh() -> Fx {
    let store = Store::open(&format!("memory://maint-{}", rand::random::<u64>()), true).unwrap();
    let (repo, reader) = support::init(&store, "sandi").await;
    let (agent, _) = AgentKey::new(&reader.master, &repo.config);
    let (maint, maint_text) = MaintenanceKeyFile::new(repo.config.repo_id, &reader.master);
    Fx {
        store,
        agent,
        maint,
        maint_text,
        master_hex: reader.master.0.to_hex(),
        dir: tempfile::tempdir().unwrap(),
    }
}

impl Fx {
    fn src(&self) -> std::path::PathBuf {
        let p = self.dir.path().join("src");
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    async fn backup(&self) {
        let mut o = BackupOptions::new("srv".into(), self.dir.path().join("cache"));
        // One pack builder: which blobs share a pack is then fixed by the
        // walk order (with two, x and y may land in packs of their own, and
        // the repack these tests stage may not happen).
        o.workers = 1;
        backup(
            self.store.clone(),
            &self.agent,
            &[self.src()],
            &o,
            Arc::new(Progress::default()),
        )
        .await
        .unwrap();
    }

    async fn maintain(&self, now: i64) -> maintenance::MaintenanceReport {
        let repo = Repo::open(self.store.clone()).await.unwrap();
        let opts = PruneOptions {
            now,
            ..Default::default()
        };
        maintenance::run(
            &repo,
            &self.maint,
            &|_: Option<&str>| {
                Some(KeepPolicy {
                    last: 1,
                    ..Default::default()
                })
            },
            UtcOffset::UTC,
            true,
            &opts,
        )
        .await
        .unwrap()
    }

    async fn packs(&self) -> HashSet<String> {
        self.store
            .list("data/")
            .await
            .unwrap()
            .into_iter()
            .map(|o| o.key)
            .collect()
    }

    /// Restore the latest snapshot with the walidata's key and check it
    /// all authenticates.
    async fn restore_latest(&self) -> std::path::PathBuf {
        let reader = Reader::open(self.store.clone(), "sandi").await.unwrap();
        let report = verify(&reader, Some(100.0)).await.unwrap();
        assert!(report.ok(), "{:?}", report.problems);
        let snap = reader.find_snapshot("latest").await.unwrap();
        let target = self
            .dir
            .path()
            .join(format!("restored-{}", rand::random::<u32>()));
        support::restore_all(&reader, &snap, &target).await;
        target.join(self.src().strip_prefix("/").unwrap())
    }
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_maintenance_key_forgets_and_prunes_and_what_is_kept_restores() {
    let fx = fresh().await;
    // The key file holds neither the master secret nor a reader identity.
    assert!(!fx.maint_text.contains(&fx.master_hex));
    assert!(!fx.maint_text.contains("AGE-SECRET-KEY"));

    let mut last = Vec::new();
    for _ in 0..3 {
        last = random_bytes(3 << 20);
        std::fs::write(fx.src().join("data.bin"), &last).unwrap();
        fx.backup().await;
    }
    let before = fx.packs().await;

    // Phase 1: two snapshots forgotten, their packs condemned, none deleted yet.
    let t = now();
    let r1 = fx.maintain(t).await;
    assert_eq!((r1.snapshots, r1.forgotten), (3, 2), "{r1:?}");
    assert!(
        r1.condemned_packs >= 4,
        "data and tree packs of two runs: {r1:?}"
    );
    assert_eq!(r1.deleted_packs, 0);
    assert_eq!(fx.packs().await, before);
    assert_eq!(
        std::fs::read(fx.restore_latest().await.join("data.bin")).unwrap(),
        last
    );

    // Phase 2, past the grace period: the condemned packs go.
    let r2 = fx.maintain(t + 24 * 3600 + 1).await;
    assert_eq!(r2.deleted_packs, r1.condemned_packs, "{r2:?}");
    assert_eq!(r2.rescued_packs, 0);
    assert_eq!(fx.packs().await.len(), before.len() - r1.condemned_packs);
    assert_eq!(
        std::fs::read(fx.restore_latest().await.join("data.bin")).unwrap(),
        last
    );

    // Nothing more to do.
    let r3 = fx.maintain(t + 2 * 24 * 3600).await;
    assert_eq!(
        (r3.forgotten, r3.condemned_packs, r3.deleted_packs),
        (0, 0, 0),
        "{r3:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pack_the_walidata_repacked_is_followed_and_the_kept_snapshot_still_restores() {
    let fx = fresh().await;
    // Snapshot A: x and y share one data pack. Snapshot B: only x (deduplicated into that pack).
    let x = random_bytes(3 << 20);
    std::fs::write(fx.src().join("x"), &x).unwrap();
    std::fs::write(fx.src().join("y"), random_bytes(3 << 20)).unwrap();
    fx.backup().await;
    std::fs::remove_file(fx.src().join("y")).unwrap();
    fx.backup().await;

    // The walidata forgets A and prunes an hour later: the shared pack is
    // half unused, so x is repacked and the old pack condemned.
    let reader = Reader::open(fx.store.clone(), "sandi").await.unwrap();
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
    let t = now() + 3600;
    let reader = Reader::open(fx.store.clone(), "sandi").await.unwrap();
    let p = prune(
        &reader,
        &PruneOptions {
            now: t,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(p.repacked_packs >= 1, "{p:?}");
    let moves: Vec<_> = fx
        .store
        .list("locks/")
        .await
        .unwrap()
        .into_iter()
        .filter(|o| o.key.starts_with("locks/moves-"))
        .collect();
    assert_eq!(moves.len(), 1, "a repack records where the blobs went");

    // B's pack list still names the old pack. Maintenance, past the grace
    // period, deletes the old pack (its blobs moved) and keeps the new one.
    let r = fx.maintain(t + 24 * 3600 + 1).await;
    assert!(r.deleted_packs >= 1, "{r:?}");
    assert_eq!(r.condemned_packs, 0, "the repacked pack is in use: {r:?}");
    assert_eq!(
        std::fs::read(fx.restore_latest().await.join("x")).unwrap(),
        x
    );
    assert!(!fx.restore_latest().await.join("y").exists());

    // Once B is gone too, the moves record is retired.
    std::fs::write(fx.src().join("x"), random_bytes(1 << 20)).unwrap();
    fx.backup().await;
    let r = fx.maintain(t + 2 * 24 * 3600).await;
    assert_eq!(r.moves_records_deleted, 1, "{r:?}");
}

/// Junk any writer of the agency can put in the repository, and what
/// prune must then hold back (FORMAT.md §11, "What does not authenticate").
#[derive(Clone, Copy, Debug)]
enum Junk {
    /// Under `snapshots/`, not a snapshot at all.
    SnapshotNoSpace,
    /// A bit-flipped copy of a real snapshot: names the real space.
    SnapshotOfTheSpace,
    /// Under `index/`, not an index file.
    IndexNoSpace,
    /// A bit-flipped copy of a real index file: names the real space.
    IndexOfTheSpace,
    PruneRecord,
    MovesRecord,
}

impl Fx {
    /// Puts `junk`; returns its object name.
    async fn put_junk(&self, junk: Junk) -> String {
        use pulih_core::id::{FileId, IndexId, SnapshotId};
        use pulih_core::layout;
        let flipped_copy_under = |prefix: &'static str| async move {
            let o = self.store.list(prefix).await.unwrap().remove(0);
            let mut b = self.store.get(&o.key).await.unwrap().to_vec();
            let last = b.len() - 1;
            b[last] ^= 1;
            b
        };
        let (name, bytes) = match junk {
            Junk::SnapshotNoSpace => (
                layout::snapshot(&SnapshotId::random()),
                b"not a snapshot".to_vec(),
            ),
            Junk::SnapshotOfTheSpace => (
                layout::snapshot(&SnapshotId::random()),
                flipped_copy_under(layout::SNAPSHOTS).await,
            ),
            Junk::IndexNoSpace => (layout::index(&IndexId::random()), b"not an index".to_vec()),
            Junk::IndexOfTheSpace => (
                layout::index(&IndexId::random()),
                flipped_copy_under(layout::INDEX).await,
            ),
            Junk::PruneRecord => (
                layout::prune_lock(&FileId::random()),
                br#"{"body":{"created":0,"packs":[]},"mac":"00"}"#.to_vec(),
            ),
            Junk::MovesRecord => (layout::moves_lock(&FileId::random()), b"{".to_vec()),
        };
        self.store.put(&name, bytes.into()).await.unwrap();
        name
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junk_under_snapshots_index_or_locks_stops_no_retention_and_costs_no_blob() {
    use pulih_core::id::PackId;
    // (junk, reader's prune holds the space back, maintenance holds it
    // back, unindexed packs kept, the reader's prune reads the object)
    let cases = [
        (Junk::SnapshotNoSpace, false, false, false, true),
        (Junk::SnapshotOfTheSpace, true, true, false, true),
        (Junk::IndexNoSpace, false, false, true, true),
        (Junk::IndexOfTheSpace, true, true, true, true),
        (Junk::PruneRecord, false, false, true, true),
        (Junk::MovesRecord, false, true, false, false),
    ];
    for (junk, reader_holds, maint_holds, keeps_unindexed, reader_reads) in cases {
        for maintenance_key in [false, true] {
            let fx = fresh().await;
            let mut last = Vec::new();
            for _ in 0..3 {
                last = random_bytes(3 << 20);
                std::fs::write(fx.src().join("data.bin"), &last).unwrap();
                fx.backup().await;
            }
            let name = fx.put_junk(junk).await;
            // A pack no index lists, old enough for prune to delete.
            let stray = pulih_core::layout::pack(&PackId::random());
            fx.store
                .put(&stray, random_bytes(1000).into())
                .await
                .unwrap();
            let later = now() + 3 * 24 * 3600;
            let case = format!("{junk:?}, maintenance key: {maintenance_key}");

            let (forgotten, condemned, held_back) = if maintenance_key {
                let r = fx.maintain(later).await;
                (r.forgotten, r.condemned_packs, r.held_back)
            } else {
                let reader = Reader::open(fx.store.clone(), "sandi").await.unwrap();
                let policy = KeepPolicy {
                    last: 1,
                    ..Default::default()
                };
                let d = forget(&reader, &policy, UtcOffset::UTC, false)
                    .await
                    .unwrap();
                let reader = Reader::open(fx.store.clone(), "sandi").await.unwrap();
                let opts = PruneOptions {
                    now: later,
                    ..Default::default()
                };
                let r = prune(&reader, &opts).await.unwrap();
                let n = d.iter().filter(|d| !d.keep).count();
                (n, r.condemned_packs, r.held_back)
            };
            assert_eq!(forgotten, 2, "forget goes on: {case}");
            let holds = if maintenance_key {
                maint_holds
            } else {
                reader_holds
            };
            if holds {
                assert_eq!(condemned, 0, "the space is held back: {case}");
            } else {
                assert!(condemned >= 4, "two runs' packs condemned: {case}");
            }
            let stray_kept = fx.packs().await.contains(&stray);
            assert_eq!(stray_kept, keeps_unindexed, "unindexed pack: {case}");
            let id = name.rsplit(['/', '-']).next().unwrap();
            let named = held_back.iter().any(|n| n.contains(id));
            assert_eq!(
                named,
                maintenance_key || reader_reads,
                "{case}: {held_back:?}"
            );

            // The kept snapshot restores (verify would name the junk).
            let reader = Reader::open(fx.store.clone(), "sandi").await.unwrap();
            let snap = reader.find_snapshot("latest").await.unwrap();
            let target = fx.dir.path().join("restored");
            support::restore_all(&reader, &snap, &target).await;
            let got = std::fs::read(
                target
                    .join(fx.src().strip_prefix("/").unwrap())
                    .join("data.bin"),
            )
            .unwrap();
            assert!(got == last, "{case}");
        }
    }
}
