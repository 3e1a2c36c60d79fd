//! The append-only DRC gateway as its users run it (issue 20): `pulih drc
//! serve` over HTTPS in front of a real Garage, credentials issued with
//! `pulih drc credential`, the walidata's, the agent's and the executor's
//! commands pointed at it by URL alone. The honest server's restore,
//! drill and failover get its own latest snapshot through it.

#[path = "../core/tests/support/forge.rs"]
mod forge;

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::Command;

use pulih_test_support::agent::{Agent, enroll_token, wait_for_heartbeat};
use pulih_test_support::controller::Controller;
use pulih_test_support::docker::{self, Cleanup, images};
use pulih_test_support::garage::Garage;
use pulih_test_support::manifests::{self, DISKOMINFO, agency, drc_target, server};
use pulih_test_support::net::{free_port, http_get};
use pulih_test_support::{Proc, Pulih, last_json, run_ok, write_secret};

const PULIH: Pulih = Pulih::new(env!("CARGO_BIN_EXE_pulih"));

/// A `pulih` command holding the gateway credential in `creds`.
fn with(creds: &Path) -> Command {
    let mut c = PULIH.cmd();
    c.env("PULIH_S3_ACCESS_KEY_ID_FILE", creds.join("access-key-id"))
        .env(
            "PULIH_S3_SECRET_ACCESS_KEY_FILE",
            creds.join("secret-access-key"),
        )
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY");
    c
}

/// The walidata (gateway credential `walidata`) makes the repository at
/// `url` and the agent key of server `portal` bound to it; (passphrase
/// file, agent key file).
fn walidata_makes_portal(dir: &Path, walidata: &Path, url: &str) -> (PathBuf, PathBuf) {
    let pass = dir.join("walidata.pass");
    write_secret(&pass, "walidata diskominfo\n");
    run_ok(
        with(walidata)
            .args(["repo", "init", "--repo", url, "--passphrase-file"])
            .arg(&pass),
    );
    let key = dir.join("portal.key");
    run_ok(
        with(walidata)
            .args(["repo", "add-agent-key", "--repo", url, "--passphrase-file"])
            .arg(&pass)
            .arg("--out")
            .arg(&key)
            .args(["--server", "portal"]),
    );
    (pass, key)
}

/// `repo snapshots --json` by the walidata through the gateway.
fn snapshots(walidata: &Path, url: &str, pass: &Path, extra: &[&str]) -> serde_json::Value {
    last_json(&run_ok(
        with(walidata)
            .args(["repo", "snapshots", "--json"])
            .args(extra)
            .args(["--repo", url, "--passphrase-file"])
            .arg(pass),
    ))
}

fn credential(dir: &Path, key: &Path, role: &[&str], name: &str) -> PathBuf {
    let out = dir.join(format!("cred-{name}"));
    run_ok(
        PULIH
            .cmd()
            .args(["drc", "credential", "--key-file"])
            .arg(key)
            .args(role)
            .arg("--out-dir")
            .arg(&out),
    );
    out
}

/// A running `pulih drc serve` (HTTPS with the DKIS CA, Garage upstream,
/// agency `diskominfo` granting DrcTarget `drc`).
struct Gw {
    proc: Proc,
    endpoint: String,
    /// The maintenance credential (a `with` dir).
    maintenance: PathBuf,
    ca: PathBuf,
    key: PathBuf,
    tls_key: PathBuf,
}

fn start_gateway(dir: &Path, garage: &Garage) -> Gw {
    // The DRC: its gateway key, TLS from the DKIS CA, Garage upstream.
    let gw_key = dir.join("gateway.key");
    run_ok(
        PULIH
            .cmd()
            .args(["drc", "gateway-key", "--out"])
            .arg(&gw_key),
    );
    let (ca, cert, tls_key) = pulih_test_support::tls::dkis_ca(dir, "gateway-tls");
    write_secret(&dir.join("up-id"), &garage.key_id);
    write_secret(&dir.join("up-secret"), &garage.secret);
    // The DRC's maintenance credential (the controller's), as a `with` dir.
    let maintenance = dir.join("cred-maintenance");
    std::fs::create_dir_all(&maintenance).unwrap();
    write_secret(&maintenance.join("access-key-id"), "drc-maintenance");
    write_secret(
        &maintenance.join("secret-access-key"),
        "maintenance secret of the DRC gateway 0123456789",
    );
    let config = dir.join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ntls_cert_file = \"{cert}\"\ntls_key_file = \"{tls_key}\"\n\
             state_dir = \"{d}/gw-state\"\nkey_file = \"{key}\"\nupstream = \"{up}\"\n\
             upstream_access_key_id_file = \"{d}/up-id\"\nupstream_secret_access_key_file = \"{d}/up-secret\"\n\
             [maintenance]\naccess_key = \"drc-maintenance\"\nsecret_file = \"{d}/cred-maintenance/secret-access-key\"\n\
             [[agency]]\nname = \"diskominfo\"\nexecutors = [\"drc\"]\n",
            cert = cert.display(),
            tls_key = tls_key.display(),
            d = dir.display(),
            key = gw_key.display(),
            up = garage.url("drc"),
        ),
    )
    .unwrap();
    let (gateway, endpoint) = spawn_gateway(dir, &config, "gateway.log");
    Gw {
        proc: gateway,
        endpoint,
        maintenance,
        ca,
        key: gw_key,
        tls_key,
    }
}

/// The store at `repo` opened with the gateway credential in `creds` (a
/// `with` dir), as the library sees it.
fn store_as(repo: &str, creds: &Path) -> pulih_core::storage::Store {
    let read = |f: &str| std::fs::read_to_string(creds.join(f)).unwrap();
    let (id, secret) = (read("access-key-id"), read("secret-access-key"));
    pulih_core::storage::Store::open_with(repo, false, Some((id.trim(), secret.trim()))).unwrap()
}

/// `pulih drc serve --config CONFIG` (log `dir/log`); its HTTPS endpoint.
fn spawn_gateway(dir: &Path, config: &Path, log: &str) -> (Proc, String) {
    let mut gateway = Proc::spawn(
        "gateway",
        PULIH.cmd().args(["drc", "serve", "--config"]).arg(config),
        dir.join(log),
    );
    let mut line = String::new();
    std::io::BufReader::new(gateway.child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let endpoint = line
        .trim()
        .strip_prefix("gateway: ")
        .unwrap_or_else(|| panic!("{line}\n{}", gateway.log_text()))
        .to_owned();
    assert!(endpoint.starts_with("https://127.0.0.1:"), "{endpoint}");
    (gateway, endpoint)
}

/// A controller in `dir` that holds `gw`'s key (it issues gateway
/// credentials at enrolment), with the manifests in `mdir` applied:
/// (process, URL, admin token file).
fn issuing_controller(dir: &Path, gw: &Gw, mdir: &Path) -> (Proc, String, PathBuf) {
    let controller = Controller::start(
        &PULIH,
        dir,
        &format!(
            "pusat_data_subnets = [\"127.0.0.0/8\"]\n[gateway]\nkey_file = {:?}\n",
            gw.key.display().to_string()
        ),
    );
    controller.apply(&PULIH, mdir);
    controller.into_parts()
}

/// Enrols `server` through the controller's API (`api`, admin token
/// `admin`) as its agent would: the EnrollResponse.
async fn enrol(http: &reqwest::Client, api: &str, admin: &str, server: &str) -> serde_json::Value {
    let t: serde_json::Value = http
        .post(format!("{api}/servers/{server}/enroll-token"))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let facts = serde_json::json!({"hostname": server, "os": "linux", "agent_version": "t"});
    let resp = http
        .post(format!("{api}/agents/enroll"))
        .json(&serde_json::json!({"server": server, "token": t["token"], "facts": facts}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

#[test]
fn append_only_the_honest_servers_restore_drill_and_failover_through_the_gateway_over_https() {
    let garage = Garage::start();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let image = images::busybox();
    let svc = format!("pulih-test-gw{}-svc", std::process::id());
    let mut cleanup = Cleanup::new();
    cleanup.network(&svc);
    cleanup.containers_matching(&format!("network={svc}"));

    let gw = start_gateway(dir, &garage);
    let (endpoint, ca, gw_key) = (gw.endpoint.clone(), gw.ca.clone(), gw.key.clone());
    // HTTP/1.1 only: a client offering HTTP/2 first is given HTTP/1.1.
    let addr = endpoint.strip_prefix("https://").unwrap();
    assert_eq!(
        pulih_test_support::tls::alpn_agreed(addr, &ca, &[b"h2", b"http/1.1"]).as_deref(),
        Some(&b"http/1.1"[..])
    );
    let url = format!(
        "s3://pulih/diskominfo/repo?endpoint={endpoint}&ca={}",
        ca.display()
    );

    let walidata = credential(dir, &gw_key, &["--reader", "diskominfo"], "walidata");
    let portal = credential(dir, &gw_key, &["--agent", "diskominfo/portal"], "portal");
    let executor = credential(dir, &gw_key, &["--executor", "drc"], "executor");
    let cred_mode = std::fs::metadata(portal.join("secret-access-key")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&cred_mode.permissions()) & 0o777,
        0o600
    );

    // Without the CA the gateway's certificate is not trusted: TLS is real.
    let untrusted = format!("s3://pulih/diskominfo/repo?endpoint={endpoint}");
    let out = with(&walidata)
        .args(["repo", "init", "--repo", &untrusted, "--passphrase-file"])
        .arg(dir.join("none"))
        .output()
        .unwrap();
    assert!(!out.status.success());

    // The walidata makes the repository and the server's key through it.
    let (pass, agent_key) = walidata_makes_portal(dir, &walidata, &url);

    // The agent backs the portal up, twice, with its own credential.
    let src = dir.join("portal");
    std::fs::create_dir_all(&src).unwrap();
    for n in [6, 7] {
        std::fs::write(
            src.join("index.html"),
            format!("<p>layanan publik: {n} formulir</p>\n"),
        )
        .unwrap();
        run_ok(
            with(&portal)
                .args(["repo", "backup", "--repo", &url, "--agent-key"])
                .arg(&agent_key)
                .args(["--tag", "server=portal"])
                .arg(&src),
        );
    }
    // The agent's credential deletes nothing (`repo forget` needs a reader
    // key anyway; the store call itself is what is refused here).
    let listed = snapshots(&walidata, &url, &pass, &[]);
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");

    // The walidata's restore of the server's latest.
    let target = dir.join("restored");
    run_ok(
        with(&walidata)
            .args(["repo", "restore", "--repo", &url, "--passphrase-file"])
            .arg(&pass)
            .args(["latest", "--server", "portal", "--target"])
            .arg(&target),
    );
    let restored = target
        .join(src.strip_prefix("/").unwrap())
        .join("index.html");
    assert_eq!(
        std::fs::read_to_string(restored).unwrap(),
        "<p>layanan publik: 7 formulir</p>\n"
    );

    // The walidata's forget through the gateway: the reader credential
    // may delete nothing, so both snapshots stay, and it says why.
    let out = with(&walidata)
        .args(["repo", "forget", "--repo", &url, "--passphrase-file"])
        .arg(&pass)
        .args(["--keep-last", "1", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed = snapshots(&walidata, &url, &pass, &[]);
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");

    // The executor's drill and failover, from the DRC through the gateway.
    let port = free_port();
    let mdir = manifests::write(
        &dir.join("manifests"),
        &(drc_target(&format!(
            "s3://pulih?endpoint={endpoint}&ca={}",
            ca.display()
        )) + &agency(DISKOMINFO, true)
            + &server("portal", "diskominfo")
            + &format!(
                r#"  sources: [{{path: {src}}}]
  recovery:
    containers:
      - name: web
        image: {image}
        command: [httpd, -f, -p, "8080", -h, /www]
        volumes: [{{source: {src}, target: /www}}]
        ports: ["127.0.0.1:{port}:8080"]
    healthChecks:
      - name: web-serves-the-portal
        http: {{container: web, port: 8080, path: /index.html, expectStatus: 200, expectBodyContains: "7 formulir"}}
        timeout: 10s
"#,
                src = src.display()
            )),
    );
    let recover = |what: &str, extra: &[&str]| {
        let out = with(&executor)
            .args(["drc", what, "portal", "--json", "-f"])
            .arg(&mdir)
            .args(["--repo", &url, "--passphrase-file"])
            .arg(&pass)
            .args(extra)
            .arg("--scratch-dir")
            .arg(dir.join(format!("scratch-{what}")))
            .output()
            .unwrap();
        let report = last_json(&out);
        assert!(
            out.status.success(),
            "{what} failed: {report:#}\n{}\n{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(dir.join("gateway.log")).unwrap_or_default()
        );
        assert_eq!(report["state"], "passed", "{report:#}");
        report
    };
    let drill = recover("drill", &[]);
    let steps = pulih_test_support::report::steps(&drill);
    assert!(
        steps.contains(&"restore") && steps.contains(&"start web"),
        "{drill:#}"
    );
    let report = recover(
        "failover",
        &[
            "--order",
            "Surat Perintah Wali Kota Bontang No. 6/2026 (test)",
            "--service-network",
            &svc,
        ],
    );
    let web = format!("pulih-{}-web", report["id"].as_str().unwrap());
    assert_eq!(docker::status(&web), "running");
    let answer = http_get("127.0.0.1", port, "/index.html");
    assert!(answer.contains("layanan publik: 7 formulir"), "{answer}");

    // Both reports were written through the gateway, by the executor's
    // credential, and are in Garage under the agency's prefix.
    let direct = pulih_core::storage::Store::open_with(
        &garage.url("drc/diskominfo/repo"),
        false,
        Some((&garage.key_id, &garage.secret)),
    )
    .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let reports = rt.block_on(direct.list("reports/")).unwrap();
    assert_eq!(reports.len(), 2, "{reports:?}");
    gw.proc.stop();
}

/// What to build 1: "per-agent credentials issued at enrolment". A
/// controller holding the gateway key issues the enrolling agent its
/// gateway credential; the agent keeps it (0600) and replicates through
/// the gateway, whose URL is only the DrcTarget's: no S3 credential is in
/// its environment or configuration.
#[test]
fn enrolment_issues_the_agents_gateway_credential_and_it_replicates_through_the_gateway() {
    let garage = Garage::start();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let gw = start_gateway(dir, &garage);
    let query = format!("endpoint={}&ca={}", gw.endpoint, gw.ca.display());
    let repo = format!("s3://pulih/diskominfo?{query}");

    let walidata = credential(dir, &gw.key, &["--reader", "diskominfo"], "walidata");
    let (pass, key) = walidata_makes_portal(dir, &walidata, &repo);
    let src = dir.join("portal");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("index.html"), "<p>layanan publik</p>\n").unwrap();
    let mdir = manifests::write(
        &dir.join("manifests"),
        &(drc_target(&format!("s3://pulih?{query}"))
            + &agency(DISKOMINFO, false)
            + &server("portal", "diskominfo")
            + &format!("  sources: [{{path: {}}}]\n", src.display())),
    );
    let (cproc, url, token) = issuing_controller(dir, &gw, &mdir);
    let t = enroll_token(PULIH.ops(&url, &token), "portal");
    let agent = Agent {
        url: &url,
        server: "portal",
        key: &key,
        dir: dir.join("agent"),
        extra: String::new(),
    }
    .start(&PULIH, &t);
    wait_for_heartbeat(&PULIH, &url, &token, "portal", &[&agent, &cproc]);

    let kept = dir.join("agent/state/store-credential");
    let mode = std::fs::metadata(&kept).unwrap().permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600
    );
    let c: serde_json::Value = serde_json::from_slice(&std::fs::read(&kept).unwrap()).unwrap();
    assert!(
        c["access_key_id"]
            .as_str()
            .unwrap()
            .starts_with("PLH.agent.diskominfo.portal."),
        "{c}"
    );
    assert!(
        !agent
            .log_text()
            .contains(c["secret_access_key"].as_str().unwrap()),
        "the secret is in no log"
    );

    let run = last_json(&run_ok(PULIH.ops(&url, &token).args([
        "replicate",
        "portal",
        "--wait",
        "--json",
    ])));
    assert_eq!(run["state"], "succeeded", "{run}\n{}", agent.log_text());
    let listed = snapshots(&walidata, &repo, &pass, &["--server", "portal"]);
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");

    // No secret of the gateway's in any log of the run: the gateway key,
    // the issued secrets, Garage's own, the TLS key.
    let read = |p: &Path| std::fs::read_to_string(p).unwrap().trim().to_owned();
    let tls_key = read(&gw.tls_key);
    let secrets = [
        read(&gw.key),
        read(&walidata.join("secret-access-key")),
        c["secret_access_key"].as_str().unwrap().to_owned(),
        garage.secret.clone(),
        tls_key.lines().nth(1).unwrap().to_owned(),
    ];
    for log in [&gw.proc.log, &cproc.log, &agent.log] {
        let text = std::fs::read_to_string(log).unwrap();
        for s in &secrets {
            assert!(
                s.len() >= 32 && !text.contains(s.as_str()),
                "{}",
                log.display()
            );
        }
    }
    // The gateway's index is its own to read.
    let mode = |p: &Path| {
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).unwrap().permissions())
            & 0o777
    };
    assert_eq!(mode(&dir.join("gw-state")), 0o700);
    assert_eq!(mode(&dir.join("gw-state/index.sqlite")), 0o600);
    agent.stop();
    cproc.stop();
    gw.proc.stop();
}

/// Ransomware signals from what the gateway received (issue 20, what to
/// build 2: "measured from what the gateway observed"). A compromised
/// server holds its agent key, its gateway credential and its controller
/// credential: after five honest nights it uploads its files encrypted in
/// place and reports a snapshot whose summary says nothing changed. The
/// agent's counts see nothing; the controller, reading through the
/// gateway with the maintenance credential who wrote each pack and when,
/// flags the run and holds the history before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anomaly_a_rewrite_the_agent_hides_is_flagged_from_what_the_gateway_received() {
    let garage = Garage::start();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let gw = start_gateway(dir, &garage);
    let query = format!("endpoint={}&ca={}", gw.endpoint, gw.ca.display());
    let repo = format!("s3://pulih/diskominfo?{query}");
    let walidata = credential(dir, &gw.key, &["--reader", "diskominfo"], "walidata");
    let me = credential(dir, &gw.key, &["--agent", "diskominfo/portal"], "portal");
    let (pass, key) = walidata_makes_portal(dir, &walidata, &repo);
    let keys_dir = dir.join("maintenance-keys");
    std::fs::create_dir_all(&keys_dir).unwrap();
    run_ok(
        with(&walidata)
            .args([
                "repo",
                "add-maintenance-key",
                "--repo",
                &repo,
                "--passphrase-file",
            ])
            .arg(&pass)
            .arg("--out")
            .arg(keys_dir.join("diskominfo.key")),
    );
    let src = dir.join("portal");
    std::fs::create_dir_all(&src).unwrap();
    let mdir = manifests::write(
        &dir.join("manifests"),
        &(drc_target(&format!("s3://pulih?{query}"))
            + &agency(DISKOMINFO, false)
            + &server("portal", "diskominfo")
            + &format!("  sources: [{{path: {}}}]\n", src.display())),
    );
    let m = &gw.maintenance;
    let controller = Controller::start(
        &PULIH,
        dir,
        &format!(
            "pusat_data_subnets = [\"127.0.0.0/8\"]\n[maintenance]\nschedule = \"0 0 1 1 *\"\n\
             keys_dir = {:?}\ns3_access_key_id_file = {:?}\ns3_secret_access_key_file = {:?}\n",
            keys_dir.display().to_string(),
            m.join("access-key-id").display().to_string(),
            m.join("secret-access-key").display().to_string(),
        ),
    );
    controller.apply(&PULIH, &mdir);
    let (_cproc, url, token) = controller.into_parts();
    let api = format!("{url}/api/v1");
    let admin = std::fs::read_to_string(&token).unwrap().trim().to_owned();
    let http = reqwest::Client::new();
    let call =
        |method: reqwest::Method, path: String, auth: String, body: Option<serde_json::Value>| {
            let req = http
                .request(method, format!("{api}{path}"))
                .bearer_auth(auth);
            let req = match body {
                Some(b) => req.json(&b),
                None => req,
            };
            async move {
                let resp = req.send().await.unwrap();
                let status = resp.status().as_u16();
                (
                    status,
                    resp.json::<serde_json::Value>().await.unwrap_or_default(),
                )
            }
        };
    use reqwest::Method as M;
    let e = enrol(&http, &api, &admin, "portal").await;
    let cred = e["credential"].as_str().unwrap().to_owned();
    let report = |run_key: String, snapshot: String| {
        let body = serde_json::json!({
            "trigger": "schedule", "started_at": "2026-01-01T00:00:00Z",
            "finished_at": "2026-01-01T00:00:05Z", "state": "succeeded", "snapshot_id": snapshot,
        });
        let path = format!("/agents/portal/runs/{run_key}/result");
        let f = call(M::POST, path, cred.clone(), Some(body));
        async move {
            let (s, b) = f.await;
            assert_eq!(s, 200, "{run_key}: {b}");
        }
    };
    let anomaly = || async {
        call(M::GET, "/servers/portal".into(), admin.clone(), None)
            .await
            .1["anomaly"]
            .clone()
    };

    // The portal's pages: 60 of text, 24 KiB each; a few change each night.
    let page = |seed: u64, len: usize| -> Vec<u8> {
        let words = [
            "layanan", "publik", "warga", "izin", "pajak", "daerah", "surat",
        ];
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            out.extend_from_slice(words[(x % words.len() as u64) as usize].as_bytes());
            out.push(b' ');
        }
        out
    };
    for f in 0..60u64 {
        std::fs::write(src.join(format!("hal-{f:02}.html")), page(f, 24 << 10)).unwrap();
    }
    let cache = dir.join("cache");
    let mut ids = Vec::new();
    for night in 1..=5u64 {
        let p = src.join(format!("hal-{:02}.html", night * 7 % 60));
        let mut b = std::fs::read(&p).unwrap();
        b.extend_from_slice(&page(100 + night, 800));
        std::fs::write(&p, b).unwrap();
        let out = run_ok(
            with(&me)
                .args(["repo", "backup", "--json", "--repo", &repo, "--agent-key"])
                .arg(&key)
                .arg("--cache-dir")
                .arg(&cache)
                .args(["--tag", "server=portal"])
                .arg(&src),
        );
        let id = last_json(&out)["snapshot_id"].as_str().unwrap().to_owned();
        report(format!("night-{night}"), id.clone()).await;
        assert!(anomaly().await.is_null(), "night {night} flagged");
        ids.push(id);
    }

    // The attack: every page encrypted in place and uploaded through the
    // gateway under the server's own credential, in a snapshot whose
    // summary says nothing was read, changed or stored.
    let store = store_as(&repo, &me);
    let agent_key = pulih_core::keys::AgentKey::load(&key).unwrap();
    let mut f = forge::Forge::new(&agent_key);
    let mut nodes = Vec::new();
    for n in 0..60 {
        let noise: Vec<u8> = (0..24 << 10).map(|_| rand::random::<u8>()).collect();
        let blob = f.data(&noise);
        nodes.push(forge::file(
            &format!("hal-{n:02}.html"),
            vec![blob],
            noise.len() as u64,
        ));
    }
    let pages = f.tree(nodes);
    let root = f.tree(vec![forge::dir("portal", pages)]);
    let forged = f
        .snapshot(&store, root, &["server=portal"], &forge::now())
        .await
        .to_hex();
    report("ransom".into(), forged.clone()).await;

    let (_, runs) = call(
        M::GET,
        "/runs?server=portal&limit=10".into(),
        admin.clone(),
        None,
    )
    .await;
    let ransom = runs
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["run_key"] == "ransom")
        .unwrap();
    assert_eq!(
        ransom["state"], "succeeded",
        "confirmed as the server's: {ransom}"
    );
    let flag = anomaly().await;
    let reason = flag["reason"]
        .as_str()
        .unwrap_or_else(|| panic!("not flagged: {flag}"));
    assert!(reason.contains("the gateway received"), "{reason}");
    // The hold is in the repository, where every prune sees it.
    let held = store_as(&repo, &walidata).list("holds/").await.unwrap();
    assert!(held.iter().any(|h| h.key.contains(&forged)), "{held:?}");
    let listed = snapshots(&walidata, &repo, &pass, &["--server", "portal"]);
    for id in &ids {
        assert!(listed.to_string().contains(id.as_str()), "{id}");
    }
}

/// What to build 1: credentials "issued at enrolment and revocable". The
/// gateway follows the controller's revocation feed: a server enrolled
/// again gets a new credential and its old one is refused, another
/// server's goes on working; a gateway restarted while the controller is
/// down still refuses it (its cache of the feed, 0600).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_only_the_gateway_refuses_credentials_the_controller_replaced() {
    let garage = Garage::start();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let gw = start_gateway(dir, &garage);
    let query = format!("endpoint={}&ca={}", gw.endpoint, gw.ca.display());
    let target = drc_target(&format!("s3://pulih?{query}")) + &agency(DISKOMINFO, false);
    let with_sources = |name: &str| server(name, "diskominfo") + "  sources: [{path: /srv}]\n";
    let both = manifests::write(
        &dir.join("manifests"),
        &(target + &with_sources("portal") + &with_sources("web")),
    );
    let (cproc, url, token) = issuing_controller(dir, &gw, &both);
    let api = format!("{url}/api/v1");
    let admin = std::fs::read_to_string(&token).unwrap().trim().to_owned();
    let http = reqwest::Client::new();
    let key_of = |e: &serde_json::Value| {
        let c = &e["store_credential"];
        (
            c["access_key_id"].as_str().unwrap().to_owned(),
            c["secret_access_key"].as_str().unwrap().to_owned(),
        )
    };
    let old = key_of(&enrol(&http, &api, &admin, "portal").await);
    let web = key_of(&enrol(&http, &api, &admin, "web").await);
    // A credential's serial is its enrolment's second.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let new = key_of(&enrol(&http, &api, &admin, "portal").await);
    assert_ne!(old.0, new.0);
    let reads = |endpoint: &str, c: &(String, String)| {
        let repo = format!(
            "s3://pulih/diskominfo?endpoint={endpoint}&ca={}",
            gw.ca.display()
        );
        let store =
            pulih_core::storage::Store::open_with(&repo, false, Some((&c.0, &c.1))).unwrap();
        async move { store.list("data/").await.is_ok() }
    };
    let until = |what: &'static str, endpoint: String, c: (String, String), want: bool| {
        let reads = &reads;
        async move {
            for _ in 0..100 {
                if reads(&endpoint, &c).await == want {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            panic!(
                "{what}: still {}",
                if want { "refused" } else { "accepted" }
            );
        }
    };
    // Without the feed all three work (none is in the config's `revoked`).
    for c in [&old, &web, &new] {
        assert!(reads(&gw.endpoint, c).await, "{}", c.0);
    }

    // The gateway follows the controller (its config, read again).
    let config = dir.join("gateway.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "[controller]\nurl = \"{url}\"\npoll_seconds = 1\n"
    ));
    std::fs::write(&config, text).unwrap();
    until(
        "the replaced credential",
        gw.endpoint.clone(),
        old.clone(),
        false,
    )
    .await;
    assert!(reads(&gw.endpoint, &new).await && reads(&gw.endpoint, &web).await);

    // The controller goes down and the gateway restarts: what it revoked
    // stays revoked, the rest goes on.
    cproc.stop();
    gw.proc.stop();
    let (again, endpoint) = spawn_gateway(dir, &config, "gateway-2.log");
    assert!(!reads(&endpoint, &old).await);
    assert!(reads(&endpoint, &new).await && reads(&endpoint, &web).await);
    let cache = dir.join("gw-state/revocations.json");
    let mode = std::fs::metadata(&cache).unwrap().permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600
    );
    again.stop();
}
