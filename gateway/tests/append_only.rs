//! The append-only gateway in front of a real Garage (issue 20, what to
//! build 1; finding 5): what one agent's credentials (and its agent key)
//! can do through it, and what they cannot.

#[path = "../../core/tests/support/forge.rs"]
mod forge;
#[path = "../../core/tests/support/repo.rs"]
mod support;

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use pulih_core::backup::{BackupOptions, Progress, backup};
use pulih_core::bindings::{self, Binding, BindingSigner, Role, server_snapshots};
use pulih_core::forget::{KEPT_BY_STORE, KeepPolicy, forget};
use pulih_core::id::{FileId, SpaceId};
use pulih_core::keys::{AgentKey, MasterKey};
use pulih_core::repo::Reader;
use pulih_core::storage::Store;
use pulih_core::{Error, layout};
use pulih_gateway::creds::{GatewayKey, Principal};
use pulih_test_support::garage::Garage;
use tokio_util::sync::CancellationToken;

const SECRET_NAME: &str = "pin-atm-kepala-dinas.txt";
const SECRET_TEXT: &str = "PIN 4471 dan kata sandi rekening dinas";

struct Gw {
    dir: tempfile::TempDir,
    config: PathBuf,
    addr: SocketAddr,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    key: GatewayKey,
}

fn secret_file(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

const MAINT_AKID: &str = "drc-maintenance";
const MAINT_SECRET: &str = "maintenance-secret-of-the-drc-0123456789";

fn config_text(dir: &Path, garage: &Garage, listen: &str, extra: &str) -> String {
    format!(
        "listen = \"{listen}\"\nstate_dir = \"{d}/state\"\nkey_file = \"{d}/gateway.key\"\n\
         upstream = \"{up}\"\nupstream_access_key_id_file = \"{d}/up-id\"\nupstream_secret_access_key_file = \"{d}/up-secret\"\n\
         {extra}\n\
         [maintenance]\naccess_key = \"{MAINT_AKID}\"\nsecret_file = \"{d}/maint-secret\"\n\
         [[agency]]\nname = \"dinkes\"\nexecutors = [\"drc-bontang\"]\n\
         [[agency]]\nname = \"disdik\"\n\
         [[agency]]\nname = \"dispar\"\nquota_bytes = 65536\n",
        d = dir.display(),
        up = garage.url("gw"),
    )
}

impl Gw {
    async fn start(garage: &Garage) -> Gw {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        secret_file(&d.join("gateway.key"), &GatewayKey::generate());
        secret_file(&d.join("up-id"), &garage.key_id);
        secret_file(&d.join("up-secret"), &garage.secret);
        secret_file(&d.join("maint-secret"), MAINT_SECRET);
        let config = d.join("gateway.toml");
        std::fs::write(&config, config_text(d, garage, "127.0.0.1:0", "")).unwrap();
        Self::run(dir, config).await
    }

    async fn run(dir: tempfile::TempDir, config: PathBuf) -> Gw {
        let key = GatewayKey::load(&dir.path().join("gateway.key")).unwrap();
        let stop = CancellationToken::new();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let task = {
            let (config, stop) = (config.clone(), stop.clone());
            tokio::spawn(async move {
                pulih_gateway::serve::run(&config, stop, move |addr, _| {
                    let _ = tx.send(addr);
                })
                .await
            })
        };
        let addr = rx.await.expect("the gateway started");
        Gw {
            dir,
            config,
            addr,
            stop,
            task,
            key,
        }
    }

    /// Stops the gateway and starts it again on the same state.
    async fn restart(self, garage: &Garage) -> Gw {
        self.stop.cancel();
        self.task.await.unwrap().unwrap();
        // The same port: clients keep their URLs.
        let text = config_text(self.dir.path(), garage, &self.addr.to_string(), "");
        std::fs::write(&self.config, text).unwrap();
        Self::run(self.dir, self.config).await
    }

    fn reconfigure(&self, garage: &Garage, extra: &str) {
        let text = config_text(self.dir.path(), garage, &self.addr.to_string(), extra);
        std::fs::write(&self.config, text).unwrap();
    }

    fn url(&self, agency: &str) -> String {
        format!(
            "s3://pulih/{agency}/repo?endpoint=http://{}&region=garage",
            self.addr
        )
    }

    fn store_as(&self, agency: &str, akid: &str, secret: &str) -> Store {
        Store::open_with(&self.url(agency), false, Some((akid, secret))).unwrap()
    }

    /// A store of `agency`'s bucket with an issued credential.
    fn store(&self, agency: &str, p: &Principal) -> Store {
        let akid = p.access_key_id().unwrap();
        self.store_as(agency, &akid, &self.key.secret(&akid))
    }
}

fn agent(agency: &str, server: &str) -> Principal {
    Principal::Agent {
        agency: agency.into(),
        server: server.into(),
        serial: 1,
    }
}

fn reader(agency: &str) -> Principal {
    Principal::Reader {
        agency: agency.into(),
        serial: 1,
    }
}

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

async fn real_backup(store: &Store, key: &AgentKey, dir: &Path, server: &str) -> FileId {
    let src = dir.join(format!("src-{server}"));
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join(SECRET_NAME), SECRET_TEXT.repeat(100)).unwrap();
    let mut o = BackupOptions::new(server.into(), dir.join(format!("cache-{server}")));
    o.tags = vec![format!("server={server}")];
    backup(
        store.clone(),
        key,
        &[src],
        &o,
        Arc::new(Progress::default()),
    )
    .await
    .unwrap()
    .snapshot_id
}

fn refused<T: std::fmt::Debug>(what: &str, r: pulih_core::Result<T>, needle: &str) {
    match r {
        Ok(v) => panic!("{what}: allowed ({v:?})"),
        Err(e) => {
            let text = format!("{e} {e:?}");
            assert!(text.contains(needle), "{what}: {text}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_only_one_agents_credentials_and_key_cannot_read_destroy_replace_or_hide_history() {
    let garage = Garage::start();
    let gw = Gw::start(&garage).await;
    let dir = tempfile::tempdir().unwrap();
    let t0 = time_now();

    // The walidata of dinkes makes its repository through the gateway,
    // and binds two servers' keys; disdik has a repository of its own.
    let walidata = gw.store("dinkes", &reader("dinkes"));
    let (repo, keys) = support::init(&walidata, "sandi").await;
    let (victim_key, _) = AgentKey::new(&keys.master, &repo.config);
    let (attacker_key, _) = AgentKey::new(&keys.master, &repo.config);
    bind(&walidata, &keys.master, "simpus", victim_key.space.space).await;
    bind(&walidata, &keys.master, "sipkd", attacker_key.space.space).await;
    support::init(&gw.store("disdik", &reader("disdik")), "disdik-pass").await;

    let victim = gw.store("dinkes", &agent("dinkes", "simpus"));
    let real = real_backup(&victim, &victim_key, dir.path(), "simpus").await;
    let real_key = layout::snapshot_hex(&real.to_hex());
    let real_bytes = victim.get(&real_key).await.unwrap();

    // The attacker holds sipkd's agent key and gateway credential.
    let attacker = gw.store("dinkes", &agent("dinkes", "sipkd"));
    let listed = attacker.list("snapshots/").await.unwrap();
    assert_eq!(listed.len(), 1);
    let t1 = time_now();
    assert!(
        (t0..=t1).contains(&listed[0].modified),
        "the listing's time is the gateway's receipt: {} not in {t0}..={t1}",
        listed[0].modified
    );

    // Reading old data or names: nothing it can fetch holds them in clear,
    // and the session keys are wrapped to readers it is not.
    for o in attacker.list("").await.unwrap() {
        let b = attacker.get(&o.key).await.unwrap();
        for needle in [SECRET_NAME.as_bytes(), &SECRET_TEXT.as_bytes()[..20]] {
            assert!(!b.windows(needle.len()).any(|w| w == needle), "{}", o.key);
        }
    }
    assert!(
        Reader::open(attacker.clone(), "guess").await.is_err(),
        "no passphrase, no reader"
    );

    // Destroying: no delete, of anything.
    refused(
        "agent deletes a snapshot",
        attacker.delete(&real_key).await,
        "deleted only by the maintenance credential",
    );
    assert!(matches!(
        attacker.delete("config").await,
        Err(Error::DeleteRefused { .. })
    ));
    // Replacing: an existing key is never written again …
    refused(
        "agent overwrites a snapshot",
        attacker.put(&real_key, b"junk".to_vec().into()).await,
        "never overwritten",
    );
    refused(
        "agent overwrites the config",
        attacker.put("config", b"{}".to_vec().into()).await,
        "never overwritten",
    );
    assert_eq!(victim.get(&real_key).await.unwrap(), real_bytes);
    // … but the same bytes again (a resend after a timeout) are answered.
    attacker.put(&real_key, real_bytes.clone()).await.unwrap();

    // Nor write the maintenance's own records (a hold of its making would
    // be taken for the controller's), nor a key the store would rename.
    refused(
        "agent writes a hold",
        attacker
            .put(&format!("holds/{}", real.to_hex()), b"{}".to_vec().into())
            .await,
        "only the maintenance credential",
    );
    refused(
        "agent writes a prune record",
        attacker.put("locks/prune-00", b"{}".to_vec().into()).await,
        "only the maintenance credential",
    );
    refused(
        "an odd key",
        attacker.put("data/x~1", b"x".to_vec().into()).await,
        "not one the gateway stores",
    );

    // Two writers of one new key at once: exactly one wins, and what is
    // stored is the winner's.
    let race = "data/ra/race";
    let (a, b) = tokio::join!(
        attacker.put(race, vec![1u8; 300_000].into()),
        victim.put(race, vec![2u8; 300_000].into()),
    );
    assert!(a.is_ok() != b.is_ok(), "one wins: {a:?} {b:?}");
    let want = if a.is_ok() { 1u8 } else { 2u8 };
    assert!(victim.get(race).await.unwrap().iter().all(|x| *x == want));

    // Another agency's bucket: no listing, reading, writing or deleting.
    let other = gw.store("disdik", &agent("dinkes", "sipkd"));
    refused("list disdik", other.list("").await, "no access to agency");
    refused("read disdik", other.get("config").await, "no access");
    refused(
        "write disdik",
        other.put("x", b"x".to_vec().into()).await,
        "no access",
    );
    refused("delete disdik", other.delete("config").await, "no access");
    // Nor outside any agency's prefix, or in another bucket.
    let whole = Store::open_with(
        &format!("s3://pulih?endpoint=http://{}&region=garage", gw.addr),
        false,
        Some((&me_akid(), &gw.key.secret(&me_akid()))),
    )
    .unwrap();
    refused(
        "list the whole bucket",
        whole.list("").await,
        "names its agency",
    );
    refused(
        "write outside a prefix",
        whole.put("x", b"x".to_vec().into()).await,
        "AGENCY/KEY",
    );
    let elsewhere = Store::open_with(
        &format!(
            "s3://garage-bucket/dinkes?endpoint=http://{}&region=garage",
            gw.addr
        ),
        false,
        Some((&me_akid(), &gw.key.secret(&me_akid()))),
    )
    .unwrap();
    assert!(elsewhere.list("").await.is_err());
    // Nor by naming itself something else: the secret is the gateway's.
    let me = agent("dinkes", "sipkd").access_key_id().unwrap();
    let as_reader = reader("disdik").access_key_id().unwrap();
    let forged_cred = gw.store_as("disdik", &as_reader, &gw.key.secret(&me));
    refused(
        "a forged credential",
        forged_cred.list("").await,
        "Signature",
    );

    // A snapshot tagged as the victim and dated ahead, received last.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let fake = forged(&attacker, &attacker_key, "palsu", &["server=simpus"]).await;
    let rd = Reader::open(walidata.clone(), "sandi").await.unwrap();
    let own = server_snapshots(&rd, "simpus", Role::Agent).await.unwrap();
    let latest = pulih_core::repo::pick_snapshot(own.snapshots, "latest").unwrap();
    assert_eq!(latest.id, real, "not the forged {fake}");
    let target = dir.path().join("restored");
    support::restore_all(&rd, &latest, &target).await;
    let src = dir.path().join("src-simpus");
    assert_eq!(
        std::fs::read_to_string(
            target
                .join(src.strip_prefix("/").unwrap())
                .join(SECRET_NAME)
        )
        .unwrap(),
        SECRET_TEXT.repeat(100)
    );
    let forged_info = walidata
        .info(&layout::snapshot_hex(&fake.to_hex()))
        .await
        .unwrap()
        .unwrap();
    assert!(forged_info.modified <= time_now(), "2099 is not believed");

    // Retention cannot drop history younger than the floor: not by the
    // walidata's own forget, not by the maintenance credential.
    real_backup(&victim, &victim_key, dir.path(), "simpus").await;
    let keep_one = KeepPolicy {
        last: 1,
        ..Default::default()
    };
    let decisions = forget(&rd, &keep_one, time::UtcOffset::UTC, false)
        .await
        .unwrap();
    assert!(
        decisions.iter().any(|d| d.reasons.contains(&KEPT_BY_STORE)),
        "{decisions:?}"
    );
    let maint = gw.store_as("dinkes", MAINT_AKID, MAINT_SECRET);
    refused(
        "maintenance deletes a young snapshot",
        maint.delete(&real_key).await,
        "retention floor (30 days)",
    );
    assert_eq!(walidata.list("snapshots/").await.unwrap().len(), 3);

    // The controller's maintenance (forget and prune, keep 1) through the
    // gateway, now and again past the prune's grace: it finishes, keeps
    // what the floor keeps, and leaves a repository that verifies and
    // restores (its own lock records it may delete).
    let (mk, _) = pulih_core::keys::MaintenanceKeyFile::new(repo.config.repo_id, &keys.master);
    let maint_repo = pulih_core::repo::Repo::open(gw.store_as("dinkes", MAINT_AKID, MAINT_SECRET))
        .await
        .unwrap();
    let maintain = |days: i64| {
        let (maint_repo, mk, keep_one) = (&maint_repo, &mk, keep_one.clone());
        async move {
            pulih_core::maintenance::run(
                maint_repo,
                mk,
                &|_: Option<&str>| Some(keep_one.clone()),
                time::UtcOffset::UTC,
                true,
                &pulih_core::prune::PruneOptions {
                    now: time_now() + days * 86_400,
                    ..Default::default()
                },
            )
            .await
            .unwrap()
        }
    };
    for days in [0, 2] {
        let report = maintain(days).await;
        assert_eq!(report.forgotten, 0, "{report:?}");
    }
    assert_eq!(walidata.list("snapshots/").await.unwrap().len(), 3);
    let rd = Reader::open(walidata.clone(), "sandi").await.unwrap();
    let verified = pulih_core::verify::verify(&rd, None).await.unwrap();
    assert!(verified.problems.is_empty(), "{:?}", verified.problems);
    let again = dir.path().join("restored-again");
    support::restore_all(&rd, &latest, &again).await;

    // The floor is the gateway's own config: lowered there (and only
    // there), the maintenance credential deletes.
    gw.reconfigure(&garage, "retention_floor_days = 0");
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        match maint.delete(&layout::snapshot_hex(&fake.to_hex())).await {
            Ok(()) => break,
            Err(e) => assert!(std::time::Instant::now() < deadline, "{e}"),
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(walidata.list("snapshots/").await.unwrap().len(), 2);
    // With the floor at 0 the maintenance forgets and prunes through the
    // gateway: the forged snapshot's packs go, its own lock records too,
    // and the victim's newest still verifies and restores.
    for days in [0, 2] {
        let report = maintain(days).await;
        assert_eq!(report.kept_by_store, 0, "{report:?}");
        if days == 2 {
            assert!(report.deleted_packs > 0, "{report:?}");
        }
    }
    assert_eq!(walidata.list("snapshots/").await.unwrap().len(), 1);
    let locks = maint_repo.store.list("locks/").await.unwrap();
    assert!(locks.is_empty(), "its own records went: {locks:?}");
    let rd = Reader::open(walidata.clone(), "sandi").await.unwrap();
    let verified = pulih_core::verify::verify(&rd, None).await.unwrap();
    assert!(verified.problems.is_empty(), "{:?}", verified.problems);
    let own = server_snapshots(&rd, "simpus", Role::Agent).await.unwrap();
    let newest = pulih_core::repo::pick_snapshot(own.snapshots, "latest").unwrap();
    support::restore_all(&rd, &newest, &dir.path().join("restored-last")).await;

    unsigned_post_is_refused_without_buffering(gw.addr).await;

    // Revoked: the attacker's credential stops working; the victim's goes on.
    gw.reconfigure(&garage, &format!("revoked = [\"{me}\"]"));
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while attacker.list("snapshots/").await.is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "revocation took effect"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    refused("revoked", attacker.list("").await, "InvalidAccessKeyId");
    victim.list("snapshots/").await.unwrap();

    // A quota: what would go over it is refused, and nothing is stored.
    let dispar = gw.store("dispar", &reader("dispar"));
    dispar.put("a", vec![0u8; 40_000].into()).await.unwrap();
    refused(
        "over quota",
        dispar.put("b", vec![0u8; 40_000].into()).await,
        "quota exceeded",
    );
    assert_eq!(dispar.list("").await.unwrap().len(), 1);

    // What the gateway stored is in Garage under the agency's prefix, and
    // a restart keeps every object and its receive time.
    let direct = Store::open_with(
        &garage.url("gw/dinkes/repo"),
        false,
        Some((&garage.key_id, &garage.secret)),
    )
    .unwrap();
    assert_eq!(
        direct.get("config").await.unwrap(),
        walidata.get("config").await.unwrap(),
        "forwarded as is"
    );
    let before = walidata.list("").await.unwrap();
    let gw = gw.restart(&garage).await;
    let walidata = gw.store("dinkes", &reader("dinkes"));
    let after = walidata.list("").await.unwrap();
    let pairs = |v: &[pulih_core::storage::ObjectInfo]| {
        v.iter()
            .map(|o| (o.key.clone(), o.size, o.modified))
            .collect::<Vec<_>>()
    };
    assert_eq!(pairs(&before), pairs(&after));
    gw.stop.cancel();
}

async fn forged(store: &Store, key: &AgentKey, text: &str, tags: &[&str]) -> FileId {
    let mut f = forge::Forge::new(key);
    let data = f.data(text.as_bytes());
    let leaf = f.tree(vec![forge::file("data.txt", vec![data], text.len() as u64)]);
    let root = f.tree(vec![forge::dir("srv", leaf)]);
    f.snapshot(store, root, tags, "2099-01-01T00:00:00Z").await
}

/// An unsigned POST form upload declaring 100 MB: refused once its file
/// part passes the (zero) limit, without the gateway waiting for, or
/// holding, the rest.
async fn unsigned_post_is_refused_without_buffering(addr: SocketAddr) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /pulih HTTP/1.1\r\nHost: {addr}\r\nContent-Type: multipart/form-data; boundary=XX\r\nContent-Length: 100000000\r\n\r\n\
         --XX\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\ndinkes/x\r\n\
         --XX\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    );
    c.write_all(head.as_bytes()).await.unwrap();
    let _ = c.write_all(&vec![b'a'; 1 << 20]).await;
    let mut answer = vec![0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(10), c.read(&mut answer))
        .await
        .expect("answered before the declared body was sent")
        .unwrap();
    let text = String::from_utf8_lossy(&answer[..n]).into_owned();
    assert!(text.starts_with("HTTP/1.1 4"), "{text}");
}

fn me_akid() -> String {
    agent("dinkes", "sipkd").access_key_id().unwrap()
}

fn time_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A gateway config in `d` over a directory upstream (`d/up`) for agency
/// `dinkes`, with `extra` lines before its tables; its key file made.
fn dir_gateway(d: &Path, extra: &str) -> PathBuf {
    secret_file(&d.join("gateway.key"), &GatewayKey::generate());
    let config = d.join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\nstate_dir = \"{d}/state\"\nkey_file = \"{d}/gateway.key\"\nupstream = \"{d}/up\"\n\
             {extra}\n[[agency]]\nname = \"dinkes\"\n",
            d = d.display()
        ),
    )
    .unwrap();
    config
}

/// A write the gateway never acknowledged (it stopped between reserving
/// the key and committing it) leaves nothing: at the next start the
/// upstream object is removed and the key is free; a delete it had begun
/// is finished. Upstream here is a directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_cut_off_by_a_stop_leaves_nothing_and_a_begun_delete_is_finished() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = dir_gateway(d, "");
    // As a stop would leave them: a reserved key whose bytes reached the
    // upstream store, and a committed object marked for deletion.
    let index = pulih_gateway::index::Index::open(&d.join("state")).unwrap();
    std::fs::create_dir_all(d.join("up/dinkes/repo/data")).unwrap();
    std::fs::write(d.join("up/dinkes/repo/data/half"), b"half").unwrap();
    std::fs::write(d.join("up/dinkes/repo/data/gone"), b"gone").unwrap();
    index
        .reserve("dinkes", "repo/data/half", 4, "w", None, 1)
        .unwrap();
    index
        .reserve("dinkes", "repo/data/gone", 4, "w", None, 1)
        .unwrap();
    index
        .commit(
            "dinkes",
            &pulih_gateway::index::Row {
                key: "repo/data/gone".into(),
                size: 4,
                etag: "e".into(),
                sha256: "s".into(),
                writer: "w".into(),
                received_ms: 1,
            },
            4,
        )
        .unwrap();
    index.mark_deleting("dinkes", "repo/data/gone").unwrap();
    assert_eq!(index.unfinished().unwrap().len(), 2);
    drop(index);

    let gw = Gw::run(dir, config).await;
    assert!(!gw.dir.path().join("up/dinkes/repo/data/half").exists());
    assert!(!gw.dir.path().join("up/dinkes/repo/data/gone").exists());
    let store = gw.store("dinkes", &reader("dinkes"));
    assert!(store.list("").await.unwrap().is_empty());
    // The key is free again.
    store
        .put("data/half", b"whole".to_vec().into())
        .await
        .unwrap();
    assert_eq!(&store.get("data/half").await.unwrap()[..], b"whole");
    gw.stop.cancel();
}

/// A credential gets `rate_limit_burst` requests at once and then
/// `rate_limit_per_second`: beyond, `SlowDown` (which S3 clients retry);
/// another credential has its own rate; the rate comes back with time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_only_a_credential_over_its_request_rate_is_slowed_down() {
    use object_store::ObjectStore;
    let dir = tempfile::tempdir().unwrap();
    let config = dir_gateway(
        dir.path(),
        "rate_limit_per_second = 1.0\nrate_limit_burst = 3.0",
    );
    let gw = Gw::run(dir, config).await;
    // No retries: the gateway's answers as they are.
    let client = |p: &Principal| {
        let akid = p.access_key_id().unwrap();
        object_store::aws::AmazonS3Builder::new()
            .with_endpoint(format!("http://{}", gw.addr))
            .with_allow_http(true)
            .with_bucket_name("pulih")
            .with_region("garage")
            .with_access_key_id(&akid)
            .with_secret_access_key(gw.key.secret(&akid))
            .with_retry(object_store::RetryConfig {
                max_retries: 0,
                ..Default::default()
            })
            .build()
            .unwrap()
    };
    let (web, db) = (
        client(&agent("dinkes", "web")),
        client(&agent("dinkes", "db")),
    );
    let path = object_store::path::Path::from("dinkes/repo/config");
    let mut answers = Vec::new();
    for _ in 0..6 {
        answers.push(web.head(&path).await.unwrap_err().to_string());
    }
    // The burst is answered (the object is not there: 404), then
    // SlowDown (503; a HEAD answer has no body to name it).
    let slow = |a: &String| a.contains("503 Service Unavailable");
    let slowed = answers.iter().filter(|a| slow(a)).count();
    assert!(
        answers[..3].iter().all(|a| a.contains("404 Not Found")),
        "{answers:#?}"
    );
    assert!(slowed >= 2, "{answers:#?}");
    // Another credential is not slowed by this one.
    let other = db.head(&path).await.unwrap_err().to_string();
    assert!(other.contains("404 Not Found"), "{other}");
    // A second later there is room again.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let again = web.head(&path).await.unwrap_err().to_string();
    assert!(again.contains("404 Not Found"), "{again}");
}

/// The floor is measured on the gateway's clock; a clock set back (behind
/// the latest receipt it gave) stops every delete rather than trust it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clock_that_ran_backwards_stops_every_delete() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    secret_file(&d.join("maint-secret"), MAINT_SECRET);
    let config = dir_gateway(
        d,
        &format!(
            "retention_floor_days = 0\n\
             [maintenance]\naccess_key = \"{MAINT_AKID}\"\nsecret_file = \"{}/maint-secret\"",
            d.display()
        ),
    );
    let gw = Gw::run(dir, config).await;
    let maint = gw.store_as("dinkes", MAINT_AKID, MAINT_SECRET);
    maint.put("old", b"1".to_vec().into()).await.unwrap();
    maint.delete("old").await.unwrap();
    maint.put("old", b"1".to_vec().into()).await.unwrap();
    // As if the clock had been an hour ahead when this was received.
    let index = pulih_gateway::index::Index::open(&gw.dir.path().join("state")).unwrap();
    let ahead = time_now() * 1000 + 3_600_000;
    index
        .reserve("dinkes", "repo/later", 1, "w", None, ahead)
        .unwrap();
    index
        .commit(
            "dinkes",
            &pulih_gateway::index::Row {
                key: "repo/later".into(),
                size: 1,
                etag: "e".into(),
                sha256: "s".into(),
                writer: "w".into(),
                received_ms: ahead,
            },
            1,
        )
        .unwrap();
    drop(index);
    let gw = {
        gw.stop.cancel();
        gw.task.await.unwrap().unwrap();
        Gw::run(gw.dir, gw.config).await
    };
    let maint = gw.store_as("dinkes", MAINT_AKID, MAINT_SECRET);
    refused("delete", maint.delete("old").await, "ran backwards");
    assert_eq!(maint.list("").await.unwrap().len(), 2);
    gw.stop.cancel();
}

/// What the ransomware signals read (SECURITY.md "Ransomware signals"):
/// a listing names, for every object, the credential that wrote it and
/// the gateway's time of receipt — two servers of one agency each get
/// their own packs, and no writer can date an object. A `file://` store
/// has no writers to tell.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_only_a_listing_names_each_objects_writer_and_receipt() {
    use pulih_core::writers::list_writers;
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    let config = dir_gateway(dir.path(), "");
    let gw = Gw::run(dir, config).await;
    let t0 = time_now() * 1000 - 1000;
    let walidata = gw.store("dinkes", &reader("dinkes"));
    let (repo, keys) = support::init(&walidata, "sandi").await;
    let (web_key, _) = AgentKey::new(&keys.master, &repo.config);
    let (db_key, _) = AgentKey::new(&keys.master, &repo.config);
    std::fs::create_dir_all(&work).unwrap();
    real_backup(
        &gw.store("dinkes", &agent("dinkes", "web")),
        &web_key,
        &work,
        "web",
    )
    .await;
    real_backup(
        &gw.store("dinkes", &agent("dinkes", "db")),
        &db_key,
        &work,
        "db",
    )
    .await;
    let t1 = time_now() * 1000 + 1000;

    let listed = list_writers(&walidata, "data/").await.unwrap().unwrap();
    let packs = walidata.list("data/").await.unwrap();
    assert_eq!(listed.len(), packs.len(), "{listed:#?}");
    let by = |server: &str| {
        let id = agent("dinkes", server).access_key_id().unwrap();
        listed
            .iter()
            .filter(|w| w.writer.as_deref() == Some(id.as_str()))
            .count()
    };
    assert!(by("web") >= 1 && by("db") >= 1, "{listed:#?}");
    assert_eq!(by("web") + by("db"), listed.len(), "{listed:#?}");
    for w in &listed {
        assert!(w.key.starts_with("data/"), "{w:?}");
        assert!((t0..=t1).contains(&w.received_ms), "{w:?}");
        assert!(packs.iter().any(|p| p.key == w.key && p.size == w.size));
    }
    // The config, written by the walidata's credential.
    let config = list_writers(&walidata, "config").await.unwrap().unwrap();
    assert_eq!(
        config[0].writer,
        reader("dinkes").access_key_id(),
        "{config:?}"
    );
    let local = tempfile::tempdir().unwrap();
    let file = Store::open(local.path().to_str().unwrap(), false).unwrap();
    assert!(list_writers(&file, "data/").await.unwrap().is_none());
    gw.stop.cancel();
}
