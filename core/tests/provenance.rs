//! Provenance (issue 20, finding 1; FORMAT.md §13): a server's snapshots
//! are those in the spaces bound to it under the binding key, ordered by
//! the store's receive time. What one agent key can write (a snapshot
//! tagged as another server and dated ahead, a binding of its own) never
//! becomes another server's latest, and never steers its retention.

#[path = "support/forge.rs"]
mod forge;
#[path = "support/repo.rs"]
mod support;

use std::sync::Arc;
use std::time::Duration;

use pulih_core::backup::{BackupOptions, Progress, backup};
use pulih_core::bindings::{self, Binding, BindingSigner, Role, server_snapshots};
use pulih_core::forget::KeepPolicy;
use pulih_core::id::{FileId, SpaceId};
use pulih_core::keys::{AgentKey, MaintenanceKeyFile, MasterKey};
use pulih_core::prune::PruneOptions;
use pulih_core::repo::{Reader, Repo};
use pulih_core::storage::Store;

async fn bind(store: &Store, master: &MasterKey, server: &str, space: SpaceId) {
    let body = Binding {
        server: server.into(),
        space,
        role: Role::Agent,
        failover: None,
        created: 0,
    };
    bindings::write(store, &BindingSigner::of(master), body)
        .await
        .unwrap();
}

/// A snapshot as the agent of `server` writes it, of one file.
async fn real_backup(
    store: &Store,
    agent: &AgentKey,
    dir: &std::path::Path,
    server: &str,
    text: &str,
) -> FileId {
    let src = dir.join(format!("src-{server}"));
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("data.txt"), text).unwrap();
    let mut o = BackupOptions::new(server.into(), dir.join(format!("cache-{server}")));
    o.tags = vec![format!("server={server}")];
    backup(
        store.clone(),
        agent,
        &[src],
        &o,
        Arc::new(Progress::default()),
    )
    .await
    .unwrap()
    .snapshot_id
}

/// A forged snapshot by `agent`: one file of `text`, with `tags`, dated `time`.
async fn forged(store: &Store, agent: &AgentKey, text: &str, tags: &[&str], time: &str) -> FileId {
    let mut f = forge::Forge::new(agent);
    let data = f.data(text.as_bytes());
    let leaf = f.tree(vec![forge::file("data.txt", vec![data], text.len() as u64)]);
    let root = f.tree(vec![forge::dir("srv", leaf)]);
    f.snapshot(store, root, tags, time).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provenance_a_snapshot_tagged_as_another_server_and_dated_ahead_is_never_its_latest() {
    let store = Store::open(&format!("memory://prov-{}", rand::random::<u64>()), true).unwrap();
    let (repo, keys) = support::init(&store, "sandi").await;
    let dir = tempfile::tempdir().unwrap();
    let (victim, _) = AgentKey::new(&keys.master, &repo.config);
    let (attacker, _) = AgentKey::new(&keys.master, &repo.config);
    bind(&store, &keys.master, "simpus", victim.space.space).await;
    bind(&store, &keys.master, "sipkd", attacker.space.space).await;

    let real = real_backup(&store, &victim, dir.path(), "simpus", "rekam medis asli").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // The attacker's: tagged as the victim, dated ahead, received last.
    let fake = forged(
        &store,
        &attacker,
        "palsu",
        &["server=simpus"],
        "2099-01-01T00:00:00Z",
    )
    .await;
    // And a binding of its own making: its space bound to the victim.
    let junk = pulih_core::layout::binding(&FileId::random());
    let body = serde_json::json!({
        "body": {"server": "simpus", "space": attacker.space.space, "role": "agent", "failover": null, "created": 0},
        "sig": "00".repeat(64),
    });
    store
        .put(&junk, body.to_string().into_bytes().into())
        .await
        .unwrap();

    let reader = Reader::open(store.clone(), "sandi").await.unwrap();
    // By tag and claimed time, as before bindings, the fake would win.
    let tagged: Vec<_> = reader
        .snapshots()
        .await
        .unwrap()
        .into_iter()
        .filter(|s| s.snapshot.tags.contains(&"server=simpus".to_string()))
        .collect();
    assert_eq!(
        tagged.last().unwrap().id,
        fake,
        "the attack this test is about"
    );

    let own = server_snapshots(&reader, "simpus", Role::Agent)
        .await
        .unwrap();
    assert!(!own.by_tag);
    let ids: Vec<FileId> = own.snapshots.iter().map(|s| s.id).collect();
    assert_eq!(ids, vec![real], "only the bound space's snapshot");
    let (_, unreadable) = bindings::read(&store, &BindingSigner::of(&keys.master).verifier())
        .await
        .unwrap();
    assert_eq!(unreadable.len(), 1, "the forged binding is set aside");
    assert_eq!(unreadable[0].name, junk);
    let report = pulih_core::verify::verify(&reader, None).await.unwrap();
    assert!(
        report.problems.iter().any(|p| p.contains(&junk)),
        "verify names it: {:?}",
        report.problems
    );

    let latest = pulih_core::repo::pick_snapshot(own.snapshots, "latest").unwrap();
    let target = dir.path().join("restored");
    support::restore_all(&reader, &latest, &target).await;
    let got = std::fs::read_to_string(
        target
            .join(dir.path().join("src-simpus").strip_prefix("/").unwrap())
            .join("data.txt"),
    )
    .unwrap();
    assert_eq!(got, "rekam medis asli");

    // Latest is the one received last, not the one claiming the latest
    // time: the victim's own key writing a snapshot dated in 2000 after it.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let old_dated = forged(
        &store,
        &victim,
        "baru",
        &["server=simpus"],
        "2000-01-01T00:00:00Z",
    )
    .await;
    let own = server_snapshots(&reader, "simpus", Role::Agent)
        .await
        .unwrap();
    let latest = pulih_core::repo::pick_snapshot(own.snapshots, "latest").unwrap();
    assert_eq!(latest.id, old_dated);

    // A huge object under bindings/ is set aside unread.
    let huge = pulih_core::layout::binding(&FileId::random());
    store
        .put(&huge, vec![b'{'; 100 << 10].into())
        .await
        .unwrap();
    let (_, unreadable) = bindings::read(&store, &BindingSigner::of(&keys.master).verifier())
        .await
        .unwrap();
    assert!(
        unreadable
            .iter()
            .any(|u| u.name == huge && u.error.to_string().contains("not a binding")),
        "{unreadable:?}"
    );

    // A stray object named like a snapshot one level down (found by the
    // review): not a second listing of it, with a receive time of its own.
    store
        .put(&format!("snapshots/zz/{real}"), b"junk".to_vec().into())
        .await
        .unwrap();
    let all = reader.snapshots().await.unwrap();
    let mut ids: Vec<FileId> = all.iter().map(|s| s.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), all.len(), "no snapshot listed twice");
    let own = server_snapshots(&reader, "simpus", Role::Agent)
        .await
        .unwrap();
    let latest = pulih_core::repo::pick_snapshot(own.snapshots, "latest").unwrap();
    assert_eq!(latest.id, old_dated, "latest not rolled back");

    // A server no binding names is selected by tag (a repository from
    // before bindings), and says so; a space bound to another server is
    // not its, whatever its snapshots are tagged.
    forged(&store, &attacker, "palsu", &["server=arsip"], &forge::now()).await;
    let legacy = server_snapshots(&reader, "arsip", Role::Agent)
        .await
        .unwrap();
    assert!(legacy.by_tag && legacy.snapshots.is_empty());

    // A failback space: its snapshot is the server's for a failback of
    // that failover only, never an ordinary latest.
    let (drc, _) = AgentKey::new(&keys.master, &repo.config);
    let body = Binding {
        server: "simpus".into(),
        space: drc.space.space,
        role: Role::Failback,
        failover: Some("fo-1".into()),
        created: 0,
    };
    bindings::write(&store, &BindingSigner::of(&keys.master), body)
        .await
        .unwrap();
    let back = forged(
        &store,
        &drc,
        "kembali",
        &["server=simpus", "failback=fo-1"],
        &forge::now(),
    )
    .await;
    forged(
        &store,
        &drc,
        "lain",
        &["server=simpus", "failback=fo-2"],
        &forge::now(),
    )
    .await;
    let own = server_snapshots(&reader, "simpus", Role::Agent)
        .await
        .unwrap();
    assert!(own.snapshots.iter().all(|s| s.id != back));
    let fb = server_snapshots(&reader, "simpus", Role::Failback)
        .await
        .unwrap();
    let ids: Vec<FileId> = fb.snapshots.iter().map(|s| s.id).collect();
    assert_eq!(ids, vec![back], "only the bound failover's");
}

/// Review finding (issue 20, 6): an agent's own `server=` tag picked the
/// retention policy its snapshots got. With a maintenance key that
/// carries the binding key's public half, the space's bound server does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provenance_retention_follows_the_bound_server_not_the_tag() {
    let store = Store::open(
        &format!("memory://prov-ret-{}", rand::random::<u64>()),
        true,
    )
    .unwrap();
    let (repo, keys) = support::init(&store, "sandi").await;
    let (victim, _) = AgentKey::new(&keys.master, &repo.config);
    let (attacker, _) = AgentKey::new(&keys.master, &repo.config);
    bind(&store, &keys.master, "simpus", victim.space.space).await;
    bind(&store, &keys.master, "sipkd", attacker.space.space).await;
    // The attacker tags its snapshots as simpus, whose policy keeps all.
    for i in 0..3 {
        let t = forge::now();
        forged(
            &store,
            &attacker,
            &format!("sampah {i}"),
            &["server=simpus"],
            &t,
        )
        .await;
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    let (maint, text) = MaintenanceKeyFile::new(repo.config.repo_id, &keys.master);
    assert!(maint.bindings.is_some() && text.contains("bindings_public_key"));
    let policy = |server: Option<&str>| match server {
        Some("sipkd") => Some(KeepPolicy {
            last: 1,
            ..Default::default()
        }),
        _ => None,
    };
    let r = pulih_core::maintenance::run(
        &Repo::open(store.clone()).await.unwrap(),
        &maint,
        &policy,
        time::UtcOffset::UTC,
        false,
        &PruneOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        (r.snapshots, r.forgotten),
        (3, 2),
        "sipkd's policy applied: {r:?}"
    );

    // A key file whose binding key is another repository's verifies no
    // binding: retention falls back to the tags, and the report says so.
    let wrong = MaintenanceKeyFile {
        bindings: Some(BindingSigner::of(&MasterKey(pulih_core::crypto::Key([9; 32]))).verifier()),
        ..maint.clone()
    };
    let r = pulih_core::maintenance::run(
        &Repo::open(store.clone()).await.unwrap(),
        &wrong,
        &policy,
        time::UtcOffset::UTC,
        false,
        &PruneOptions::default(),
    )
    .await
    .unwrap();
    assert!(
        r.held_back
            .iter()
            .any(|n| n.contains("no binding verifies")),
        "{:?}",
        r.held_back
    );

    // A maintenance key file from before bindings still loads (and falls
    // back to the tags).
    let old = serde_json::json!({
        "pulih_maintenance_key": 1,
        "repo_id": repo.config.repo_id,
        "maintenance_secret": maint.key.0.to_hex(),
    });
    let parsed =
        MaintenanceKeyFile::parse(&old.to_string(), std::path::Path::new("old.key")).unwrap();
    assert!(parsed.bindings.is_none());
}
