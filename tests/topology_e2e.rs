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

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use pulih_core::storage::{ObjectInfo, Store};
use rand::{RngCore, SeedableRng};
use support::{last_json, ops, pulih, run_ok, write_secret};

const BUSYBOX: &str = "pulih-test/busybox:1";
/// Where the DRC's store keeps the agencies' repositories.
const BUCKET: &str = "pulih";
/// On each server's page; the failover's health check looks for it.
const PAGE_MARK: &str = "rekam medis: 3 berkas";

fn docker_output(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("the docker CLI")
}

fn docker(args: &[&str]) -> String {
    let out = docker_output(args);
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Seconds since the epoch (the store's object times have this precision).
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Everything this run made on the engine is named `<prefix>-…`; dropping
/// this removes it (containers first, with whatever else joined our
/// networks, such as the failover's recovery containers), and on a failure
/// first prints the tail of every container's log.
struct Site {
    prefix: String,
    networks: Vec<String>,
}

impl Site {
    fn name(&self, what: &str) -> String {
        format!("{}-{what}", self.prefix)
    }

    fn containers(&self) -> Vec<String> {
        let filter = format!("name={}-", self.prefix);
        let out = docker_output(&["ps", "-aq", "--filter", &filter]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn logs(&self, container: &str) -> String {
        let out = docker_output(&["logs", container]);
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    fn all_logs(&self) -> String {
        let mut s = String::new();
        for c in self.containers() {
            let name = docker_output(&["inspect", "-f", "{{.Name}}", &c]);
            let log = self.logs(&c);
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            s.push_str(&format!(
                "--- {} (last 40 lines):\n",
                String::from_utf8_lossy(&name.stdout).trim()
            ));
            for l in tail.iter().rev() {
                s.push_str(l);
                s.push('\n');
            }
        }
        s
    }

    fn network(&mut self, what: &str) -> String {
        let net = self.name(what);
        docker(&["network", "create", "--driver", "bridge", &net]);
        self.networks.push(net.clone());
        net
    }

    fn subnet(&self, net: &str) -> String {
        docker(&[
            "network",
            "inspect",
            "-f",
            "{{range .IPAM.Config}}{{.Subnet}}{{end}}",
            net,
        ])
    }

    fn ip(&self, container: &str, net: &str) -> String {
        docker(&[
            "inspect",
            "-f",
            &format!("{{{{(index .NetworkSettings.Networks \"{net}\").IPAddress}}}}"),
            container,
        ])
    }

    /// Polls `f` every 50 ms; fails after `timeout`.
    fn wait(&self, what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + timeout;
        while !f() {
            // (Dropping the site prints every container's log.)
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn running(&self, container: &str) -> bool {
        docker(&["inspect", "-f", "{{.State.Running}}", container]) == "true"
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.all_logs());
        }
        let mut doomed = self.containers();
        for net in &self.networks {
            let filter = format!("network={net}");
            let out = docker_output(&["ps", "-aq", "--filter", &filter]);
            doomed.extend(
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .map(str::to_string),
            );
        }
        doomed.sort();
        doomed.dedup();
        for c in &doomed {
            let _ = docker_output(&["rm", "-f", "-v", c]);
        }
        for net in &self.networks {
            let _ = docker_output(&["network", "rm", net]);
        }
    }
}

/// The docker engine and the garage binary are required: say so clearly.
/// Returns the garage binary (`PULIH_GARAGE_BIN` or `garage` on PATH) and
/// its version.
fn require_tools() -> (String, String) {
    let info = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output();
    match info {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "this test needs a running Docker engine: `docker info` failed: {}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => panic!("this test needs the docker CLI and a running engine: {e}"),
    }
    let bin = std::env::var("PULIH_GARAGE_BIN").unwrap_or_else(|_| "garage".into());
    let found = Command::new("sh")
        .args(["-c", "command -v \"$0\"", &bin])
        .output()
        .unwrap();
    let path = String::from_utf8_lossy(&found.stdout).trim().to_string();
    assert!(
        found.status.success() && !path.is_empty(),
        "this test needs Garage: `{bin}` is not on PATH (cargo install --locked garage --version 2.5.0, or set PULIH_GARAGE_BIN)"
    );
    let out = run_ok(Command::new(&path).arg("--version"));
    // "garage cargo:2.5.0 [features: …]" or "garage v2.5.0 …"
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let version = text
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.rsplit(':').next())
        .map(|v| v.trim_start_matches('v').to_string())
        .unwrap_or_else(|| panic!("unexpected `garage --version`: {text}"));
    (path, version)
}

fn image_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/images")
        .join(name)
}

/// The Garage cluster: three nodes on the DRC network, each holding a copy.
struct Garage {
    key_id: PathBuf,
    secret: PathBuf,
    /// garage1's S3 endpoint as the host reaches it.
    host_endpoint: String,
    /// For listing the store from the host.
    rt: tokio::runtime::Runtime,
}

fn start_garage(site: &Site, dir: &Path, image: &str, drc_net: &str) -> Garage {
    let rpc_secret: String = (0..32)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect();
    let nodes = ["garage1", "garage2", "garage3"];
    for n in nodes {
        let cfg = dir.join(format!("{n}.toml"));
        std::fs::write(
            &cfg,
            format!(
                "metadata_dir = \"/var/lib/garage/meta\"\ndata_dir = \"/var/lib/garage/data\"\ndb_engine = \"sqlite\"\n\
                 replication_factor = 3\nrpc_bind_addr = \"0.0.0.0:3901\"\nrpc_public_addr = \"{n}:3901\"\nrpc_secret = \"{rpc_secret}\"\n\
                 [s3_api]\ns3_region = \"garage\"\napi_bind_addr = \"0.0.0.0:3900\"\nroot_domain = \".s3.garage.localhost\"\n"
            ),
        )
        .unwrap();
        docker(&[
            "run",
            "-d",
            "--name",
            &site.name(n),
            "--hostname",
            n,
            "--network",
            drc_net,
            "--network-alias",
            n,
            "-e",
            "RUST_LOG=warn",
            "-v",
            &format!("{}:/etc/garage.toml:ro", cfg.display()),
            image,
            "garage",
            "-c",
            "/etc/garage.toml",
            "server",
        ]);
    }
    let garage = |node: &str, args: &[&str]| -> Output {
        let c = site.name(node);
        let mut all = vec!["exec", c.as_str(), "garage", "-c", "/etc/garage.toml"];
        all.extend_from_slice(args);
        docker_output(&all)
    };
    let ok = |o: &Output| o.status.success();
    let text = |o: &Output| String::from_utf8_lossy(&o.stdout).trim().to_string();
    // Each node's id, once its RPC port answers.
    let mut ids = Vec::new();
    for n in nodes {
        let mut id = String::new();
        site.wait(&format!("{n} to answer"), Duration::from_secs(30), || {
            let o = garage(n, &["node", "id", "-q"]);
            let listening = ok(&garage(n, &["status"]));
            id = text(&o).split('@').next().unwrap_or("").to_string();
            ok(&o) && listening
        });
        ids.push(id);
    }
    for (n, id) in nodes.iter().zip(&ids).skip(1) {
        let peer = format!("{id}@{n}:3901");
        site.wait(
            &format!("garage1 to connect to {n}"),
            Duration::from_secs(30),
            || ok(&garage("garage1", &["node", "connect", &peer])),
        );
    }
    for id in &ids {
        site.wait(
            &format!("the layout to take node {id}"),
            Duration::from_secs(30),
            || {
                ok(&garage(
                    "garage1",
                    &["layout", "assign", "-z", "dc1", "-c", "1G", id],
                ))
            },
        );
    }
    let apply = garage("garage1", &["layout", "apply", "--version", "1"]);
    assert!(ok(&apply), "layout apply: {apply:?}");
    // Every node has the layout before the bucket is made.
    for n in nodes {
        site.wait(
            &format!("{n} to see the three-node layout"),
            Duration::from_secs(30),
            || {
                let s = text(&garage(n, &["layout", "show"]));
                ids.iter().all(|id| s.contains(&id[..16]))
                    && s.contains("Current cluster layout version: 1")
            },
        );
    }
    let run = |args: &[&str]| {
        let o = garage("garage1", args);
        assert!(ok(&o), "garage {args:?}: {o:?}");
        text(&o)
    };
    run(&["bucket", "create", BUCKET]);
    let key = run(&["key", "create", "pulih-test"]);
    let field = |name: &str| {
        key.lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in {key}"))
            .trim()
            .to_owned()
    };
    run(&[
        "bucket",
        "allow",
        "--read",
        "--write",
        "--owner",
        BUCKET,
        "--key",
        "pulih-test",
    ]);
    let key_id = dir.join("s3.id");
    let secret = dir.join("s3.secret");
    write_secret(&key_id, &field("Key ID:"));
    write_secret(&secret, &field("Secret key:"));
    let ip = site.ip(&site.name("garage1"), drc_net);
    Garage {
        key_id,
        secret,
        host_endpoint: format!("http://{ip}:3900"),
        rt: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap(),
    }
}

impl Garage {
    /// An agency's repository URL as the host reaches it.
    /// (A request Garage holds — seen with the cluster busy or a node
    /// going away — is cut after 10 s and sent again, so the test's own
    /// listings do not wait the default 2 minutes.)
    fn host_repo(&self, pd: &str) -> String {
        format!(
            "s3://{BUCKET}/drc/{pd}?endpoint={}&region=garage&timeout=10s",
            self.host_endpoint
        )
    }

    /// `pulih` on the host with the store's credentials.
    fn pulih(&self) -> Command {
        let mut c = pulih();
        c.env("PULIH_S3_ACCESS_KEY_ID_FILE", &self.key_id)
            .env("PULIH_S3_SECRET_ACCESS_KEY_FILE", &self.secret);
        c
    }

    /// The objects under `prefix` of an agency's repository, by key.
    fn objects(&self, pd: &str, prefix: &str) -> BTreeMap<String, ObjectInfo> {
        let id = std::fs::read_to_string(&self.key_id).unwrap();
        let secret = std::fs::read_to_string(&self.secret).unwrap();
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
    format!(
        r#"apiVersion: pulih.io/v1alpha1
kind: DrcTarget
metadata: {{name: drc}}
spec:
  url: "{drc_url}"
---
apiVersion: pulih.io/v1alpha1
kind: PerangkatDaerah
metadata: {{name: dinkes}}
spec:
  code: DINKES
  name: Dinas Kesehatan
  walidata: {{name: Kepala Dinas, contact: walidata@dinkes.example}}
  drcTarget: drc
  drills: {{consent: true}}
---
apiVersion: pulih.io/v1alpha1
kind: PerangkatDaerah
metadata: {{name: bpkad}}
spec:
  code: BPKAD
  name: Badan Pengelolaan Keuangan dan Aset Daerah
  walidata: {{name: Kepala Badan, contact: walidata@bpkad.example}}
  drcTarget: drc
---
apiVersion: pulih.io/v1alpha1
kind: Server
metadata: {{name: simpus}}
spec:
  perangkatDaerah: dinkes
  location: pusat-data
  centralization: {{status: centralized}}
  sources:
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
---
apiVersion: pulih.io/v1alpha1
kind: Server
metadata: {{name: sipd}}
spec:
  perangkatDaerah: bpkad
  location: pusat-data
  centralization: {{status: centralized}}
  sources:
    - path: /srv/sipd
  schedule: {{cron: "0 0 1 1 *"}}
  rpo: 1h
"#
    )
}

/// One run as the controller lists it.
fn run_view(url: &str, token: &Path, server: &str, run_key: &str) -> serde_json::Value {
    let out = run_ok(ops(url, token).args(["runs", "--json", "--server", server]));
    last_json(&out)
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["run_key"] == run_key)
        .cloned()
        .unwrap_or(serde_json::Value::Null)
}

fn finished(run: &serde_json::Value) -> bool {
    run["finished_at"].is_string()
}

/// Queues a replication of `server` now; returns its run key.
fn replicate(url: &str, token: &Path, server: &str) -> String {
    let q = last_json(&run_ok(ops(url, token).args([
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
    let (garage_bin, garage_version) = require_tools();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();

    // Images, from files on this machine only.
    run_ok(
        Command::new("bash")
            .arg(image_script("busybox-app.sh"))
            .arg(BUSYBOX),
    );
    let garage_image = format!("pulih-test/garage:{garage_version}");
    run_ok(
        Command::new("bash")
            .arg(image_script("garage-image.sh"))
            .arg(&garage_image)
            .arg(&garage_bin),
    );
    let out = run_ok(
        Command::new("bash")
            .arg(image_script("pulih-image.sh"))
            .arg(env!("CARGO_BIN_EXE_pulih")),
    );
    let pulih_image = String::from_utf8_lossy(&out.stdout).trim().to_string();
    eprintln!("images ready after {:?}", started.elapsed());

    let mut site = Site {
        prefix: format!(
            "pulih-topo-{}-{:04x}",
            std::process::id(),
            rand::random::<u16>()
        ),
        networks: Vec::new(),
    };
    let pd1_net = site.network("pd1");
    let pd2_net = site.network("pd2");
    let drc_net = site.network("drc");
    // The DRC's service network, where a failed-over app serves.
    let svc_net = site.network("svc");

    // The DRC store.
    let gdir = dir.join("garage");
    std::fs::create_dir_all(&gdir).unwrap();
    let garage = start_garage(&site, &gdir, &garage_image, &drc_net);
    eprintln!("garage cluster up after {:?}", started.elapsed());

    // The walidata of each agency makes its repository and its servers'
    // agent keys; dinkes's walidata also grants the DRC executor's
    // drc-drill identity (the key a failover at the DRC reads with).
    let xetc = dir.join("executor/etc");
    std::fs::create_dir_all(&xetc).unwrap();
    let identity = xetc.join("drc-drill.key");
    let recipient =
        String::from_utf8(run_ok(pulih().args(["drc", "keygen", "--out"]).arg(&identity)).stdout)
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
             drc_subnets = [{drc_subnet:?}]\nschedule_jitter = \"0s\"\n"
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
    site.wait("the controller to answer", Duration::from_secs(30), || {
        token.exists()
            && ops(&url, &token)
                .args(["servers", "--json"])
                .output()
                .unwrap()
                .status
                .success()
    });
    let mdir = xetc.join("manifests");
    std::fs::create_dir_all(&mdir).unwrap();
    std::fs::write(
        mdir.join("all.yaml"),
        // A request on the dead link (part a) is cut after 30 s, not the
        // default 5 minutes, so the run gives up within the test's wait.
        manifests(&format!(
            "s3://{BUCKET}/drc?endpoint=http://garage1:3900&region=garage&timeout=30s"
        )),
    )
    .unwrap();
    run_ok(ops(&url, &token).args(["apply", "-f"]).arg(&mdir));

    // Two Pusat Data servers, each on its own network, each linked to the
    // DRC network; a tenth of a CPU each, so a replication lasts some
    // seconds.
    for (server, name, net, seed) in [("pd1", "simpus", &pd1_net, 1), ("pd2", "sipd", &pd2_net, 2)]
    {
        let sdir = dir.join(server);
        let etc = sdir.join("etc");
        make_data(&sdir.join("data"), name, 3, seed);
        std::fs::copy(&garage.key_id, etc.join("s3.id")).unwrap();
        std::fs::copy(&garage.secret, etc.join("s3.secret")).unwrap();
        let t = last_json(&run_ok(ops(&url, &token).args([
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
                 heartbeat_interval = \"1s\"\n"
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
    site.wait(
        "both agents' first heartbeats",
        Duration::from_secs(30),
        || {
            let out = ops(&url, &token)
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
    let servers = last_json(&run_ok(ops(&url, &token).args(["servers", "--json"])));
    for s in servers.as_array().unwrap() {
        assert_eq!(s["observed"], "centralized", "{s:#}");
    }

    // The DRC executor: on the DRC network and the service network, with
    // the host's engine (recovery containers run there) and its scratch
    // dir at the same path inside and out (the engine resolves bind
    // mounts of restored data on the host).
    let executor = site.name("executor");
    let scratch = dir.join("executor/scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    std::fs::copy(&garage.key_id, xetc.join("s3.id")).unwrap();
    std::fs::copy(&garage.secret, xetc.join("s3.secret")).unwrap();
    let t = last_json(&run_ok(ops(&url, &token).args([
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
             switch_hook = [\"/etc/pulih/switch\"]\n",
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
    site.wait("the DRC executor to enrol", Duration::from_secs(30), || {
        site.logs(&executor).contains("enrolled")
    });
    eprintln!("topology up after {:?}", started.elapsed());

    // Waits for a run's first object under `prefix` of an agency's
    // repository; a run that ends first fails the test with its errors.
    let first_write = |server: &str, run_key: &str, pd: &str, prefix: &str| {
        let mut run = serde_json::Value::Null;
        site.wait(
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
    let mut failed = serde_json::Value::Null;
    site.wait(
        "the cut-off replication to end",
        // A PUT hung on the dead link times out (30 s, the URL's timeout)
        // and is sent again; connecting then fails until the store client
        // gives up.
        Duration::from_secs(240),
        || {
            failed = run_view(&url, &token, "simpus", &run_key);
            finished(&failed)
        },
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
    let mut done = serde_json::Value::Null;
    site.wait(
        "the replication run again after the link came back",
        Duration::from_secs(120),
        || {
            done = run_view(&url, &token, "simpus", &run_key);
            finished(&done)
        },
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
    let mut done = serde_json::Value::Null;
    site.wait(
        "the replication with garage3 down to end",
        Duration::from_secs(120),
        || {
            done = run_view(&url, &token, "sipd", &run_key);
            finished(&done)
        },
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
    let dinkes =
        format!("s3://{BUCKET}/drc/dinkes?endpoint=http://garage1:3900&region=garage&timeout=30s");
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
    let steps: Vec<&str> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
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
