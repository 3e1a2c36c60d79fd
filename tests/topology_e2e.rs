//! The multi-host topology, every host a container on the real Docker
//! engine: a three-node Garage cluster (replication factor 3) as the DRC's
//! S3 store, the DRC executor, the controller, and two Pusat Data servers
//! (agents), each on a Pusat Data network of its own and linked to the
//! DRC network. The PD↔DRC link is cut mid-replication and restored; a
//! Garage node is stopped mid-replication; then the whole primary site
//! (controller and servers) is stopped and a failover runs from the DRC
//! alone (DESIGN.md §1, §6).
//!
//! Images are made here with `docker import` (tests/images/pulih-image.sh,
//! garage-image.sh, busybox-app.sh): no registry is used. Everything the
//! test makes on the engine carries a per-run prefix and is removed at the
//! end, also when the test fails.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use pulih_core::storage::{ObjectInfo, Store};
use pulih_test_support::clock::unix_now;
use pulih_test_support::docker::images::{self, BUSYBOX};
use pulih_test_support::docker::{Scope, docker, docker_output, require_engine};
use pulih_test_support::garage::cluster::Cluster;
use pulih_test_support::garage::{BUCKET, require_garage};
use pulih_test_support::manifests::{self, BPKAD, DINKES, agency, drc_target, server};
use pulih_test_support::{Pulih, last_json, report, run_ok, wait_until, write_secret};
use rand::{RngCore, SeedableRng};

const PULIH: Pulih = Pulih::new(env!("CARGO_BIN_EXE_pulih"));
/// On each server's page; the failover's health check looks for it.
const PAGE_MARK: &str = "rekam medis: 3 berkas";

/// The DRC's store: the Garage cluster, listed from the host.
struct Garage {
    cluster: Cluster,
    /// For listing the store from the host.
    rt: tokio::runtime::Runtime,
}

impl Garage {
    fn host_repo(&self, pd: &str) -> String {
        self.cluster.host_repo(pd)
    }

    /// `pulih` on the host with the store's credentials.
    fn pulih(&self) -> std::process::Command {
        self.cluster.pulih(&PULIH)
    }

    /// The objects under `prefix` of an agency's repository, by key.
    fn objects(&self, pd: &str, prefix: &str) -> BTreeMap<String, ObjectInfo> {
        let id = std::fs::read_to_string(&self.cluster.key_id).unwrap();
        let secret = std::fs::read_to_string(&self.cluster.secret).unwrap();
        let store =
            Store::open_with(&self.host_repo(pd), false, Some((id.trim(), secret.trim()))).unwrap();
        self.rt
            .block_on(store.list(prefix))
            .unwrap_or_else(|e| panic!("listing {prefix} of {pd}: {e}"))
            .into_iter()
            .map(|o| (o.key.clone(), o))
            .collect()
    }

    /// `pulih repo verify --read-data` by the walidata: stdout.
    fn verify(&self, pd: &str, pass: &Path) -> String {
        let out = self
            .pulih()
            .args([
                "repo",
                "verify",
                "--read-data",
                "--repo",
                &self.host_repo(pd),
            ])
            .arg("--passphrase-file")
            .arg(pass)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "verify of {pd}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }
}

/// A server's data: a page and `blobs` incompressible 16 MB files, so one
/// replication writes several packs and takes a few seconds.
fn make_data(dir: &Path, server: &str, blobs: usize, seed: u64) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("index.html"),
        format!("<h1>{server}</h1><p>{PAGE_MARK}</p>\n"),
    )
    .unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    for n in 0..blobs {
        let mut b = vec![0u8; 16_000_000];
        rng.fill_bytes(&mut b);
        std::fs::write(dir.join(format!("berkas{n}.bin")), &b).unwrap();
    }
}

fn manifests(drc_url: &str) -> String {
    drc_target(drc_url)
        + &agency(DINKES, true)
        + &agency(BPKAD, false)
        + &server("simpus", "dinkes")
        + &format!(
            r#"  sources:
    - path: /srv/simpus
  schedule: {{cron: "0 0 1 1 *"}}
  rpo: 1h
  rto: 5m
  recovery:
    containers:
      - name: web
        image: {BUSYBOX}
        command: [httpd, -f, -p, "8080", -h, /www]
        volumes: [{{source: /srv/simpus, target: /www}}]
    healthChecks:
      - name: web-serves-the-records
        http: {{container: web, port: 8080, path: /index.html, expectStatus: 200, expectBodyContains: "{PAGE_MARK}"}}
        timeout: 30s
"#
        )
        + &server("sipd", "bpkad")
        + r#"  sources:
    - path: /srv/sipd
  schedule: {cron: "0 0 1 1 *"}
  rpo: 1h
"#
}

/// One run as the controller lists it.
fn run_view(url: &str, token: &Path, server: &str, run_key: &str) -> serde_json::Value {
    let out = run_ok(
        PULIH
            .ops(url, token)
            .args(["runs", "--json", "--server", server]),
    );
    last_json(&out)
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["run_key"] == run_key)
        .cloned()
        .unwrap_or(serde_json::Value::Null)
}

/// Waits up to `timeout` for a run to end: its view then.
fn wait_for_run(
    what: &str,
    timeout: Duration,
    url: &str,
    token: &Path,
    server: &str,
    run_key: &str,
) -> serde_json::Value {
    let mut run = serde_json::Value::Null;
    wait_until(what, timeout, || {
        run = run_view(url, token, server, run_key);
        finished(&run)
    });
    run
}

fn finished(run: &serde_json::Value) -> bool {
    run["finished_at"].is_string()
}

/// Queues a replication of `server` now; returns its run key.
fn replicate(url: &str, token: &Path, server: &str) -> String {
    let q = last_json(&run_ok(PULIH.ops(url, token).args([
        "replicate",
        server,
        "--json",
    ])));
    q["run_key"].as_str().unwrap().to_string()
}

#[test]
fn replication_survives_a_cut_network_and_a_stopped_garage_node_and_failover_runs_from_the_drc_alone()
 {
    let started = Instant::now();
    require_engine();
    let (garage_bin, garage_version) = require_garage();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();

    // Images, from files on this machine only.
    images::busybox();
    let garage_image = images::garage(&garage_bin, &garage_version);
    let pulih_image = images::pulih(PULIH.bin());
    eprintln!("images ready after {:?}", started.elapsed());

    let mut site = Scope::new("pulih-topo");
    let pd1_net = site.network("pd1");
    let pd2_net = site.network("pd2");
    let drc_net = site.network("drc");
    // The DRC's service network, where a failed-over app serves.
    let svc_net = site.network("svc");

    // The DRC store.
    let gdir = dir.join("garage");
    std::fs::create_dir_all(&gdir).unwrap();
    let garage = Garage {
        cluster: Cluster::start(&site, &gdir, &garage_image, &drc_net),
        rt: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap(),
    };
    eprintln!("garage cluster up after {:?}", started.elapsed());

    // The walidata of each agency makes its repository and its servers'
    // agent keys; dinkes's walidata also grants the DRC executor's
    // drc-drill identity (the key a failover at the DRC reads with).
    let xetc = dir.join("executor/etc");
    std::fs::create_dir_all(&xetc).unwrap();
    let identity = xetc.join("drc-drill.key");
    let recipient = String::from_utf8(
        run_ok(PULIH.cmd().args(["drc", "keygen", "--out"]).arg(&identity)).stdout,
    )
    .unwrap()
    .trim()
    .to_string();
    let mut pass = BTreeMap::new();
    for (pd, server) in [("dinkes", "pd1"), ("bpkad", "pd2")] {
        let p = dir.join(format!("{pd}.pass"));
        write_secret(&p, &format!("walidata {pd}\n"));
        let repo = garage.host_repo(pd);
        run_ok(
            garage
                .pulih()
                .args(["repo", "init", "--repo", &repo, "--passphrase-file"])
                .arg(&p),
        );
        let etc = dir.join(server).join("etc");
        std::fs::create_dir_all(&etc).unwrap();
        run_ok(
            garage
                .pulih()
                .args([
                    "repo",
                    "add-agent-key",
                    "--repo",
                    &repo,
                    "--passphrase-file",
                ])
                .arg(&p)
                .arg("--out")
                .arg(etc.join("agent.key")),
        );
        pass.insert(pd, p);
    }
    run_ok(
        garage
            .pulih()
            .args(["repo", "grant-drill", "--repo", &garage.host_repo("dinkes")])
            .arg("--passphrase-file")
            .arg(&pass["dinkes"])
            .args(["--recipient", &recipient]),
    );

    // The controller, on both Pusat Data networks and the DRC network.
    let controller = site.name("controller");
    let cetc = dir.join("controller/etc");
    let cstate = dir.join("controller/state");
    std::fs::create_dir_all(&cetc).unwrap();
    std::fs::create_dir_all(&cstate).unwrap();
    let (pd1_subnet, pd2_subnet, drc_subnet) = (
        site.subnet(&pd1_net),
        site.subnet(&pd2_net),
        site.subnet(&drc_net),
    );
    std::fs::write(
        cetc.join("controller.toml"),
        format!(
            "state_dir = \"/var/lib/pulih\"\npusat_data_subnets = [{pd1_subnet:?}, {pd2_subnet:?}]\n\
             drc_subnets = [{drc_subnet:?}]\nschedule_jitter = \"0s\"\n\
             # Across the test's Docker networks, in plain HTTP: said so.\ninsecure_http = true\n"
        ),
    )
    .unwrap();
    docker(&[
        "run",
        "-d",
        "--name",
        &controller,
        "--network",
        &pd1_net,
        "-e",
        "PULIH_LOG=info",
        "-e",
        "NO_COLOR=1",
        "-v",
        &format!("{}:/etc/pulih:ro", cetc.display()),
        "-v",
        &format!("{}:/var/lib/pulih", cstate.display()),
        &pulih_image,
        "pulih",
        "controller",
        "--config",
        "/etc/pulih/controller.toml",
        "--listen",
        "0.0.0.0:8080",
    ]);
    docker(&["network", "connect", &pd2_net, &controller]);
    docker(&[
        "network",
        "connect",
        "--alias",
        "controller",
        &drc_net,
        &controller,
    ]);
    let url = format!("http://{}:8080", site.ip(&controller, &pd1_net));
    let token = cstate.join("admin.token");
    wait_until("the controller to answer", Duration::from_secs(30), || {
        token.exists()
            && PULIH
                .ops(&url, &token)
                .args(["servers", "--json"])
                .output()
                .unwrap()
                .status
                .success()
    });
    let mdir = manifests::write(
        &xetc.join("manifests"),
        // A request on the dead link (part a) is cut after 30 s, not the
        // default 5 minutes, so the run gives up within the test's wait.
        &manifests(&format!(
            "s3://{BUCKET}/drc?endpoint=http://garage1:3900&region=garage&timeout=30s&insecure_http=true"
        )),
    );
    run_ok(PULIH.ops(&url, &token).args(["apply", "-f"]).arg(&mdir));

    // Two Pusat Data servers, each on its own network, each linked to the
    // DRC network; a tenth of a CPU each, so a replication lasts some
    // seconds.
    for (server, name, net, seed) in [("pd1", "simpus", &pd1_net, 1), ("pd2", "sipd", &pd2_net, 2)]
    {
        let sdir = dir.join(server);
        let etc = sdir.join("etc");
        make_data(&sdir.join("data"), name, 3, seed);
        std::fs::copy(&garage.cluster.key_id, etc.join("s3.id")).unwrap();
        std::fs::copy(&garage.cluster.secret, etc.join("s3.secret")).unwrap();
        let t = last_json(&run_ok(PULIH.ops(&url, &token).args([
            "servers",
            "enroll-token",
            name,
            "--json",
        ])));
        write_secret(&etc.join("enroll.token"), t["token"].as_str().unwrap());
        let curl = format!("http://{}:8080", site.ip(&controller, net));
        std::fs::write(
            etc.join("agent.toml"),
            format!(
                "controller = {curl:?}\nserver = {name:?}\nstate_dir = \"/var/lib/pulih/state\"\n\
                 agent_key_file = \"/etc/pulih/agent.key\"\nenroll_token_file = \"/etc/pulih/enroll.token\"\n\
                 heartbeat_interval = \"1s\"\ninsecure_http = true\n"
            ),
        )
        .unwrap();
        let c = site.name(server);
        docker(&[
            "run",
            "-d",
            "--name",
            &c,
            "--hostname",
            name,
            "--network",
            net,
            "--cpus",
            "0.1",
            "-e",
            "PULIH_LOG=info",
            "-e",
            "NO_COLOR=1",
            "-e",
            "PULIH_S3_ACCESS_KEY_ID_FILE=/etc/pulih/s3.id",
            "-e",
            "PULIH_S3_SECRET_ACCESS_KEY_FILE=/etc/pulih/s3.secret",
            "-v",
            &format!("{}:/etc/pulih:ro", etc.display()),
            "-v",
            &format!("{}:/srv/{name}:ro", sdir.join("data").display()),
            &pulih_image,
            "pulih",
            "agent",
            "--config",
            "/etc/pulih/agent.toml",
        ]);
        docker(&["network", "connect", &drc_net, &c]);
    }
    wait_until(
        "both agents' first heartbeats",
        Duration::from_secs(30),
        || {
            let out = PULIH
                .ops(&url, &token)
                .args(["servers", "--json"])
                .output()
                .unwrap();
            out.status.success()
                && last_json(&out)
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|s| s["agent_last_seen"].is_string())
                    .count()
                    == 2
        },
    );
    // The controller places both in the Pusat Data by the networks they
    // call from.
    let servers = last_json(&run_ok(PULIH.ops(&url, &token).args(["servers", "--json"])));
    for s in servers.as_array().unwrap() {
        assert_eq!(s["observed"], "centralized", "{s:#}");
    }

    // The DRC executor: on the DRC network and the service network, with
    // the host's engine (recovery containers run there) and its scratch
    // dir at the same path inside and out (the engine resolves bind
    // mounts of restored data on the host).
    let executor = site.name("executor");
    let engine_pid = std::fs::read_to_string("/var/run/docker.pid")
        .expect("the Docker engine's pid file")
        .trim()
        .to_string();
    let scratch = dir.join("executor/scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    std::fs::copy(&garage.cluster.key_id, xetc.join("s3.id")).unwrap();
    std::fs::copy(&garage.cluster.secret, xetc.join("s3.secret")).unwrap();
    let t = last_json(&run_ok(PULIH.ops(&url, &token).args([
        "drc",
        "enroll-token",
        "drc",
        "--json",
    ])));
    write_secret(&xetc.join("enroll.token"), t["token"].as_str().unwrap());
    let hook = xetc.join("switch");
    std::fs::write(
        &hook,
        "#!/bin/sh\necho \"$PULIH_PHASE $PULIH_SERVER $PULIH_ADDRESSES\" > /var/lib/pulih/switched\n",
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::write(
        xetc.join("drc.toml"),
        format!(
            "controller = \"http://controller:8080\"\ntarget = \"drc\"\nstate_dir = \"/var/lib/pulih/state\"\n\
             identity_file = \"/etc/pulih/drc-drill.key\"\nenroll_token_file = \"/etc/pulih/enroll.token\"\n\
             scratch_dir = {:?}\nheartbeat_interval = \"1s\"\nservice_network = {svc_net:?}\n\
             switch_hook = [\"/etc/pulih/switch\"]\ninsecure_http = true\n",
            scratch.display().to_string()
        ),
    )
    .unwrap();
    docker(&[
        "run",
        "-d",
        "--name",
        &executor,
        "--hostname",
        "drc-executor",
        "--network",
        &drc_net,
        // Its isolation rules go to the Docker host's network namespace
        // (the engine's own, where the recovery bridges are).
        "--pid",
        "host",
        "--cap-add",
        "NET_ADMIN",
        "--cap-add",
        "SYS_ADMIN",
        "--cap-add",
        "SYS_PTRACE",
        "-e",
        &format!("PULIH_FIREWALL_PID={engine_pid}"),
        "-e",
        "PULIH_LOG=info",
        "-e",
        "NO_COLOR=1",
        "-e",
        "PULIH_S3_ACCESS_KEY_ID_FILE=/etc/pulih/s3.id",
        "-e",
        "PULIH_S3_SECRET_ACCESS_KEY_FILE=/etc/pulih/s3.secret",
        "-v",
        "/var/run/docker.sock:/var/run/docker.sock",
        "-v",
        &format!("{}:{}", scratch.display(), scratch.display()),
        "-v",
        &format!("{}:/etc/pulih:ro", xetc.display()),
        &pulih_image,
        "pulih",
        "agent",
        "--role",
        "drc",
        "--config",
        "/etc/pulih/drc.toml",
    ]);
    docker(&["network", "connect", &svc_net, &executor]);
    wait_until("the DRC executor to enrol", Duration::from_secs(30), || {
        site.logs(&executor).contains("enrolled")
    });
    eprintln!("topology up after {:?}", started.elapsed());

    // Waits for a run's first object under `prefix` of an agency's
    // repository; a run that ends first fails the test with its errors.
    let first_write = |server: &str, run_key: &str, pd: &str, prefix: &str| {
        let mut run = serde_json::Value::Null;
        wait_until(
            &format!("{server}'s run to write under {prefix}"),
            Duration::from_secs(60),
            || {
                if !garage.objects(pd, prefix).is_empty() {
                    return true;
                }
                run = run_view(&url, &token, server, run_key);
                finished(&run)
            },
        );
        assert!(
            !finished(&run),
            "the run ended before writing anything: {run:#}"
        );
    };

    // a. PD1 replicates; the PD↔DRC link is cut once a first pack is in
    // the store. The agent's store client retries, gives up, and the run
    // fails saying why, reported over the Pusat Data network, which still
    // works. The link comes back; the replication is run again and
    // completes, reusing the packs the failed run left.
    let pd1 = site.name("pd1");
    let run_key = replicate(&url, &token, "simpus");
    first_write("simpus", &run_key, "dinkes", "data/");
    let before_cut = garage.objects("dinkes", "data/");
    let log_at_cut = site.logs(&pd1).len();
    docker(&["network", "disconnect", &drc_net, &pd1]);
    let cut_at = unix_now();
    eprintln!(
        "a. cut the link after {:?}, {} pack(s) in the store",
        started.elapsed(),
        before_cut.len()
    );
    assert!(
        garage.objects("dinkes", "snapshots/").is_empty(),
        "the replication finished before the link was cut: it is too fast to cut mid-way"
    );
    // A PUT hung on the dead link times out (30 s, the URL's timeout)
    // and is sent again; connecting then fails until the store client
    // gives up.
    let failed = wait_for_run(
        "the cut-off replication to end",
        Duration::from_secs(240),
        &url,
        &token,
        "simpus",
        &run_key,
    );
    assert_eq!(failed["state"], "failed", "{failed:#}");
    let error = failed["errors"][0].as_str().unwrap_or_default();
    assert!(
        error.contains("store error on `data/") && error.contains("error sending request"),
        "the run says which object it could not store and why: {failed:#}"
    );
    let retries = site
        .logs(&pd1)
        .get(log_at_cut..)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("transport error"))
        .count();
    assert!(retries > 0, "the agent retried before giving up");
    assert!(
        garage.objects("dinkes", "snapshots/").is_empty(),
        "no snapshot of a failed run"
    );
    // What the failed run left: packs, no index, no snapshot.
    let left = garage.objects("dinkes", "data/");
    assert!(garage.objects("dinkes", "index/").is_empty());
    eprintln!(
        "a. failed after {:?} ({} retries logged), leaving {} pack(s): {error}",
        started.elapsed(),
        retries,
        left.len()
    );
    docker(&["network", "connect", &drc_net, &pd1]);
    let objects = |pd: &str| -> BTreeMap<String, ObjectInfo> {
        ["data/", "index/", "keys/sessions/", "snapshots/"]
            .iter()
            .flat_map(|p| garage.objects(pd, p))
            .collect()
    };
    let at_reconnect = objects("dinkes");
    let run_key = replicate(&url, &token, "simpus");
    let done = wait_for_run(
        "the replication run again after the link came back",
        Duration::from_secs(120),
        &url,
        &token,
        "simpus",
        &run_key,
    );
    assert_eq!(done["state"], "succeeded", "{done:#}");
    // No finished pack went up twice. Every pack in the store before the
    // cut, and every pack the failed run left, is there still, never
    // written again; the new run indexed them (nothing in the store is
    // unindexed) and stored only what was missing.
    let after = objects("dinkes");
    for (key, o) in before_cut.iter().chain(&left) {
        let now = after
            .get(key)
            .unwrap_or_else(|| panic!("pack {key} of the failed run is gone"));
        assert_eq!(now.modified, o.modified, "pack {key} was uploaded again");
    }
    assert!(before_cut.values().all(|o| o.modified <= cut_at));
    let verified = garage.verify("dinkes", &pass["dinkes"]);
    assert!(
        verified.contains(" 0 unindexed packs") && verified.contains(" 0 problems"),
        "{verified}"
    );
    let (read, new) = (
        done["bytes_read"].as_u64().unwrap(),
        done["bytes_new"].as_u64().unwrap(),
    );
    // (Incompressible data: a pack holds about its size in file bytes.)
    let reused: u64 = left.values().map(|o| o.size).sum();
    assert!(
        read - new >= reused / 100 * 99,
        "the file bytes in the failed run's {reused} bytes of packs are not new again: {done:#}"
    );
    // What the new run says it stored is what appeared in the store: its
    // packs, index, session key and snapshot (whose own size the run
    // estimates before writing it: a few bytes' slack).
    let written: u64 = after
        .iter()
        .filter(|(k, _)| !at_reconnect.contains_key(*k))
        .map(|(_, o)| o.size)
        .sum();
    let stored = done["bytes_stored"].as_u64().unwrap();
    assert!(
        stored.abs_diff(written) <= 16,
        "the run stored {stored} bytes, {written} appeared in the store: {done:#}"
    );
    let simpus_snapshot = done["snapshot_id"].as_str().unwrap().to_string();
    eprintln!(
        "a. run again after {:?}: {} of {read} bytes new, {stored} stored, {} packs reused\n{verified}",
        started.elapsed(),
        new,
        left.len()
    );

    // b. PD2 replicates; a Garage node (not the S3 endpoint the agents
    // use) is killed as soon as the run writes its first object (its
    // session key), so every pack goes to a cluster with a node down: rf 3
    // with a write quorum of 2 goes on.
    let garage3 = site.name("garage3");
    let run_key = replicate(&url, &token, "sipd");
    first_write("sipd", &run_key, "bpkad", "keys/sessions/");
    // Killed, not stopped: the node is gone at once (a graceful stop left
    // a window in which the replication could end first under load).
    docker(&["kill", &garage3]);
    let stopped_at = unix_now();
    assert!(
        garage.objects("bpkad", "snapshots/").is_empty(),
        "the replication ended before garage3 stopped"
    );
    let done = wait_for_run(
        "the replication with garage3 down to end",
        Duration::from_secs(120),
        &url,
        &token,
        "sipd",
        &run_key,
    );
    assert_eq!(done["state"], "succeeded", "{done:#}");
    assert!(!site.running(&garage3), "garage3 stayed down");
    let packs = garage.objects("bpkad", "data/");
    let snapshots = garage.objects("bpkad", "snapshots/");
    assert_eq!(snapshots.len(), 1);
    assert!(
        packs.values().any(|o| o.modified >= stopped_at)
            && snapshots.values().all(|o| o.modified >= stopped_at),
        "written while garage3 was down: {packs:?} {snapshots:?}"
    );
    let verified = garage.verify("bpkad", &pass["bpkad"]);
    assert!(verified.contains(" 0 problems"), "{verified}");
    eprintln!(
        "b. done after {:?}: {} packs with garage3 down\n{verified}",
        started.elapsed(),
        packs.len()
    );

    // c. The primary site is gone: its controller and servers stop. At the
    // DRC, the executor's host runs the failover alone: the manifests, the
    // store, the drc-drill identity the walidata granted.
    for c in ["controller", "pd1", "pd2"] {
        docker(&["stop", "-t", "5", &site.name(c)]);
    }
    eprintln!("c. primary site stopped after {:?}", started.elapsed());
    // (A request Garage holds with garage3 down is cut after 30 s and sent
    // again, not after the default 2 minutes.)
    let dinkes = format!(
        "s3://{BUCKET}/drc/dinkes?endpoint=http://garage1:3900&region=garage&timeout=30s&insecure_http=true"
    );
    let scratch_dir = scratch.display().to_string();
    let out = docker_output(&[
        "exec",
        &executor,
        "pulih",
        "drc",
        "failover",
        "simpus",
        "-f",
        "/etc/pulih/manifests",
        "--repo",
        &dinkes,
        "--identity",
        "/etc/pulih/drc-drill.key",
        "--order",
        "Surat Perintah Wali Kota Bontang No. 3/2026 (test)",
        "--service-network",
        &svc_net,
        "--switch-hook",
        "/etc/pulih/switch",
        "--scratch-dir",
        &scratch_dir,
        "--json",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: serde_json::Value = stdout
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| {
            panic!(
                "pulih drc failover printed no report ({}): {stdout}{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
        });
    eprintln!("c. failover ran after {:?}", started.elapsed());
    for st in report["steps"].as_array().unwrap() {
        eprintln!(
            "   {:>6.2}s {:<16} {}",
            st["duration_s"].as_f64().unwrap_or(0.0),
            st["name"].as_str().unwrap_or_default(),
            st["detail"].as_str().unwrap_or_default()
        );
    }
    assert!(out.status.success(), "{report:#}");
    assert_eq!(report["kind"], "failover", "{report:#}");
    assert_eq!(report["state"], "passed", "{report:#}");
    assert_eq!(
        report["order"],
        "Surat Perintah Wali Kota Bontang No. 3/2026 (test)"
    );
    assert!(report["teardown"].is_null(), "a failover is not torn down");
    let steps = report::steps(&report);
    assert_eq!(steps.first(), Some(&"open repository"), "{report:#}");
    assert_eq!(steps.last(), Some(&"switch"), "{report:#}");
    assert!(
        report["steps"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("`drc-drill` reader key"),
        "{report:#}"
    );
    // The PD server has no Docker engine, so the image was not
    // replicated: the DRC's own copy serves.
    let load = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "load images")
        .unwrap_or_else(|| panic!("no load images step: {report:#}"));
    assert!(
        load["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("the DRC's own copy used: [\"{BUSYBOX}\"]")),
        "{load}"
    );
    assert_eq!(report["checks"][0]["ok"], true, "{report:#}");
    assert_eq!(
        report["snapshot_id"],
        simpus_snapshot.as_str(),
        "{report:#}"
    );
    let id = report["id"].as_str().unwrap();
    let label = format!("label=io.pulih.recovery={id}");
    let running = docker(&["ps", "-q", "--filter", &label]);
    assert_eq!(running.lines().count(), 1, "the recovered web app runs");
    // It answers on the service network with the replicated bytes.
    let fetch = |path: &str| {
        let o = docker_output(&[
            "exec",
            &executor,
            "wget",
            "-q",
            "-O",
            "-",
            &format!("http://web:8080/{path}"),
        ]);
        assert!(
            o.status.success(),
            "GET {path} on {svc_net}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        o.stdout
    };
    let data = dir.join("pd1/data");
    assert_eq!(
        fetch("index.html"),
        std::fs::read(data.join("index.html")).unwrap()
    );
    assert_eq!(
        blake3::hash(&fetch("berkas2.bin")),
        blake3::hash(&std::fs::read(data.join("berkas2.bin")).unwrap()),
        "a 16 MB file comes back byte for byte"
    );
    // The switch hook ran with the app's address on the service network.
    let switched = docker(&["exec", &executor, "cat", "/var/lib/pulih/switched"]);
    let web_ip = site.ip(&format!("pulih-{id}-web"), &svc_net);
    assert_eq!(switched, format!("failover simpus web={web_ip}"));
    // The report is kept in the DRC store, beside the data.
    assert!(
        garage
            .objects("dinkes", "reports/failovers/")
            .contains_key(&format!("reports/failovers/simpus/{id}.json")),
        "the failover report is in the DRC store"
    );
    assert!(!site.running(&controller));
    eprintln!(
        "c. failover {id} passed; whole test {:?}",
        started.elapsed()
    );
}
