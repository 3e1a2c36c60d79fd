//! End-to-end tests of the control plane with real processes on loopback:
//! a controller, three agents (own processes and state dirs), manifests,
//! enrolment, cron-fired replication, a controller outage, Pasal 9
//! compliance, restore from the DRC alone, and bad input on the API.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use pulih_test_support::agent::{Agent, enroll_token};
use pulih_test_support::clock::unix_now;
use pulih_test_support::controller::{Controller, start_controller};
use pulih_test_support::manifests::{self, BPKAD, DINKES, agency, drc_target, server};
use pulih_test_support::{Proc, Pulih, last_json, repo, run_ok, wait_for, write_secret};

const PULIH: Pulih = Pulih::new(env!("CARGO_BIN_EXE_pulih"));

/// The DRC target at `drc` and two agencies (dinkes runs two jobs at once).
fn agencies(drc: &Path) -> String {
    drc_target(&drc.display().to_string())
        + &agency(DINKES, false)
        + "  maxConcurrentJobs: 2\n"
        + &agency(BPKAD, false)
}

fn server_manifest(name: &str, pd: &str, source: &Path) -> String {
    server(name, pd)
        + &format!(
            r#"  sources:
    - path: {}
  schedule:
    cron: "*/10 * * * * *"
    timezone: Asia/Makassar
  rpo: 1h
"#,
            source.display()
        )
}

fn runs(url: &str, token: &Path) -> Vec<serde_json::Value> {
    let out = run_ok(
        PULIH
            .ops(url, token)
            .args(["runs", "--json", "--limit", "10000"]),
    );
    last_json(&out).as_array().unwrap().clone()
}

/// `run=` tags of the snapshots of one server in a repository.
fn snapshot_runs(repo: &Path, pass: &Path, server: &str) -> Vec<String> {
    let list = repo::snapshots(&PULIH, repo, pass);
    let mut keys = Vec::new();
    for s in list.as_array().unwrap() {
        let tags: Vec<&str> = s["tags"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|t| t.as_str())
            .collect();
        if tags.contains(&format!("server={server}").as_str()) {
            for t in tags {
                if let Some(k) = t.strip_prefix("run=") {
                    keys.push(k.to_string());
                }
            }
        }
    }
    keys
}

/// The newest snapshot of one server (by its `server=` tag), from the repository alone.
fn latest_snapshot_of(repo: &Path, pass: &Path, server: &str) -> String {
    let list = repo::snapshots(&PULIH, repo, pass);
    list.as_array()
        .unwrap()
        .iter()
        .filter(|s| {
            s["tags"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t.as_str() == Some(&format!("server={server}")))
        })
        .max_by_key(|s| s["time"].as_str().unwrap().to_string())
        .map(|s| s["id"].as_str().unwrap().to_string())
        .unwrap_or_else(|| panic!("no snapshot of {server}"))
}

#[test]
fn controller_and_three_agents_schedule_survive_an_outage_and_restore_from_the_drc_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let drc = dir.join("drc");
    // (server, agency, bind address): c is outside the Pusat Data subnet.
    let servers = [
        ("srv-a", "dinkes", "127.0.0.2"),
        ("srv-b", "dinkes", "127.0.0.3"),
        ("srv-c", "bpkad", "127.0.0.9"),
    ];

    // The walidata of each agency makes its repository and one agent key per server.
    let mut pass = BTreeMap::new();
    for pd in ["dinkes", "bpkad"] {
        let p = dir.join(format!("{pd}.pass"));
        write_secret(&p, &format!("walidata {pd}\n"));
        repo::init(&PULIH, drc.join(pd), &p);
        pass.insert(pd, p);
    }
    let mut manifests = agencies(&drc);
    for (name, pd, _) in servers {
        let src = dir.join("data").join(name);
        std::fs::create_dir_all(src.join("sub")).unwrap();
        std::fs::write(src.join("records.csv"), format!("{name}\n").repeat(1000)).unwrap();
        std::fs::write(src.join("sub/notes.txt"), format!("catatan {name}")).unwrap();
        repo::add_agent_key(
            &PULIH,
            drc.join(pd),
            &pass[pd],
            &dir.join(format!("{name}.key")),
        );
        manifests.push_str(&server_manifest(name, pd, &src));
    }
    let mdir = manifests::write(&dir.join("manifests"), &manifests);

    let Controller {
        proc: controller,
        url,
        token,
        state,
        config,
    } = Controller::start(
        &PULIH,
        dir,
        "pusat_data_subnets = [\"127.0.0.0/30\"]\nschedule_jitter = \"0s\"\n",
    );
    let listen = url.trim_start_matches("http://").to_string();

    let applied = last_json(&run_ok(
        PULIH
            .ops(&url, &token)
            .args(["apply", "--json", "-f"])
            .arg(&mdir),
    ));
    assert_eq!(applied["revision"], 1, "{applied}");
    // Applying the same again changes nothing.
    let again = last_json(&run_ok(
        PULIH
            .ops(&url, &token)
            .args(["apply", "--json", "-f"])
            .arg(&mdir),
    ));
    assert!(again["revision"].is_null(), "{again}");
    // A change is a new revision whose diff names the field, kept in the history.
    manifests::write(
        &mdir,
        &manifests.replace("maxConcurrentJobs: 2", "maxConcurrentJobs: 3"),
    );
    let changed = last_json(&run_ok(
        PULIH
            .ops(&url, &token)
            .args(["apply", "--json", "-f"])
            .arg(&mdir),
    ));
    assert_eq!(changed["revision"], 2, "{changed}");
    let history = last_json(&run_ok(PULIH.ops(&url, &token).args([
        "manifests",
        "history",
        "--json",
    ])));
    let newest = &history[0];
    assert_eq!(newest["id"], 2, "{history}");
    assert_eq!(
        newest["changes"],
        serde_json::json!([{
            "kind": "PerangkatDaerah",
            "name": "dinkes",
            "change": "updated",
            "fields": ["spec.maxConcurrentJobs"]
        }]),
        "{history}"
    );
    assert_eq!(history[1]["id"], 1, "{history}");
    manifests::write(&mdir, &manifests);
    run_ok(PULIH.ops(&url, &token).args(["apply", "-f"]).arg(&mdir));

    let mut agents = Vec::new();
    for (name, _, bind) in servers {
        let mut extra = format!("bind_address = {bind:?}\n");
        if name == "srv-c" {
            // BPKAD's walidata consents to restores on this server.
            extra.push_str(&format!(
                "reader_passphrase_file = {:?}\n",
                pass["bpkad"].display().to_string()
            ));
        }
        let agent = Agent {
            url: &url,
            server: name,
            key: &dir.join(format!("{name}.key")),
            dir: dir.join("agents").join(name),
            extra,
        };
        agents.push(agent.start(&PULIH, &enroll_token(PULIH.ops(&url, &token), name)));
    }

    // Cron fires every 10 s: each server gets a scheduled run, reported to the controller.
    let logs: Vec<&Proc> = agents.iter().chain([&controller]).collect();
    wait_for(
        "a scheduled run of every server",
        Duration::from_secs(60),
        &logs,
        || {
            let r = runs(&url, &token);
            servers.iter().all(|(n, _, _)| {
                r.iter().any(|x| {
                    x["server"] == *n && x["trigger"] == "schedule" && x["state"] == "succeeded"
                })
            })
        },
    );
    // A manual run through the CLI, waited for.
    let manual = last_json(&run_ok(PULIH.ops(&url, &token).args([
        "replicate",
        "srv-a",
        "--wait",
        "--json",
        "--timeout",
        "60",
    ])));
    assert_eq!(manual["state"], "succeeded", "{manual}");
    assert!(
        manual["snapshot_id"]
            .as_str()
            .is_some_and(|s| s.len() == 64)
    );

    // Verify through the agent's own (write-only) key: its space is sound.
    let verified = last_json(&run_ok(PULIH.ops(&url, &token).args([
        "verify",
        "srv-a",
        "--wait",
        "--json",
        "--timeout",
        "60",
    ])));
    assert_eq!(verified["kind"], "verify", "{verified}");
    assert_eq!(verified["state"], "succeeded", "{verified}");

    // Restore on a server: srv-b's agent holds no reader key and says so,
    // writing nothing; srv-c's walidata consented, and its data comes back.
    let refused_target = dir.join("restore-on-b");
    let refused = PULIH
        .ops(&url, &token)
        .args([
            "restore",
            "srv-b",
            "--wait",
            "--json",
            "--timeout",
            "60",
            "--target",
        ])
        .arg(&refused_target)
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    let refused = last_json(&refused);
    assert_eq!(refused["state"], "failed", "{refused}");
    assert!(
        refused["errors"][0]
            .as_str()
            .unwrap()
            .contains("holds no reader key"),
        "{refused}"
    );
    assert!(!refused_target.exists());
    let restore_target = dir.join("restore-on-c");
    let restored = last_json(&run_ok(
        PULIH
            .ops(&url, &token)
            .args([
                "restore",
                "srv-c",
                "--wait",
                "--json",
                "--timeout",
                "60",
                "--target",
            ])
            .arg(&restore_target),
    ));
    assert_eq!(restored["state"], "succeeded", "{restored}");
    let src_c = dir.join("data").join("srv-c");
    assert_eq!(
        std::fs::read(
            restore_target
                .join(src_c.strip_prefix("/").unwrap())
                .join("records.csv")
        )
        .unwrap(),
        std::fs::read(src_c.join("records.csv")).unwrap()
    );
    // A restore target that is not absolute is refused by the controller.
    let bad = PULIH
        .ops(&url, &token)
        .args(["restore", "srv-c", "--target", "relative/dir"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("not an absolute path"),
        "{bad:?}"
    );

    // Inventory: all seen; srv-c reports from outside the Pusat Data while its manifest says centralized.
    let list = last_json(&run_ok(PULIH.ops(&url, &token).args(["servers", "--json"])));
    let by_name: BTreeMap<String, serde_json::Value> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap().to_string(), s.clone()))
        .collect();
    assert_eq!(by_name["srv-a"]["observed"], "centralized", "{list}");
    assert_eq!(by_name["srv-a"]["mismatch"], false);
    assert_eq!(by_name["srv-a"]["rpo_met"], true);
    assert_eq!(by_name["srv-c"]["observed"], "not-centralized", "{list}");
    assert_eq!(by_name["srv-c"]["mismatch"], true);
    assert!(
        by_name["srv-c"]["evidence"]
            .as_str()
            .unwrap()
            .contains("127.0.0.9")
    );
    // One server with what its agent reports.
    let shown = last_json(&run_ok(
        PULIH
            .ops(&url, &token)
            .args(["servers", "show", "srv-c", "--json"]),
    ));
    assert_eq!(
        shown["facts"]["ips"],
        serde_json::json!(["127.0.0.9"]),
        "{shown}"
    );
    assert!(
        !shown["facts"]["os"].as_str().unwrap().is_empty(),
        "{shown}"
    );
    let comp = last_json(&run_ok(
        PULIH.ops(&url, &token).args(["compliance", "--json"]),
    ));
    assert_eq!(comp["overall"]["servers"], 3);
    assert_eq!(comp["overall"]["mismatches"], 1);
    assert_eq!(comp["by_perangkat_daerah"]["bpkad"]["not_centralized"], 1);
    let human = run_ok(PULIH.ops(&url, &token).arg("compliance"));
    assert!(String::from_utf8_lossy(&human.stdout).contains("MISMATCH srv-c"));
    let csv = run_ok(PULIH.ops(&url, &token).args(["compliance", "--csv"]));
    assert_eq!(String::from_utf8_lossy(&csv.stdout).lines().count(), 4);

    // The controller goes away for a while; the agents keep replicating on schedule.
    drop(controller);
    let down_at = unix_now();
    std::thread::sleep(Duration::from_secs(25));
    let up_at = unix_now();
    let (controller, url2) = start_controller(&PULIH, &config, dir, &listen);
    assert_eq!(url2, url);

    // Results of the outage arrive; then the agents stop gracefully.
    let logs: Vec<&Proc> = agents.iter().chain([&controller]).collect();
    wait_for(
        "results of runs made during the outage",
        Duration::from_secs(60),
        &logs,
        || {
            let r = runs(&url, &token);
            servers.iter().all(|(n, _, _)| {
                r.iter().any(|x| {
                    let t = x["scheduled_for"].as_str().map(parse_time);
                    x["server"] == *n
                        && t.is_some_and(|t| t > down_at && t < up_at)
                        && x["state"] == "succeeded"
                })
            })
        },
    );
    for a in agents {
        a.stop();
    }
    // The catalog and the repository agree exactly: every snapshot has its
    // run, every run its snapshot, no slot ran twice.
    let all = runs(&url, &token);
    for (name, pd, _) in servers {
        let mut in_repo = snapshot_runs(&drc.join(pd), &pass[pd], name);
        let n = in_repo.len();
        in_repo.sort();
        in_repo.dedup();
        assert_eq!(
            in_repo.len(),
            n,
            "{name}: a run key appears on two snapshots"
        );
        let in_catalog: BTreeSet<String> = all
            .iter()
            .filter(|x| {
                x["server"] == name && x["kind"] == "replicate" && x["state"] == "succeeded"
            })
            .map(|x| x["run_key"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            in_repo.into_iter().collect::<BTreeSet<_>>(),
            in_catalog,
            "{name}"
        );
        let slots: Vec<i64> = all
            .iter()
            .filter(|x| x["server"] == name && x["trigger"] == "schedule")
            .map(|x| parse_time(x["scheduled_for"].as_str().unwrap()))
            .collect();
        assert!(slots.iter().all(|t| t % 10 == 0), "{name}: {slots:?}");
    }
    drop(controller);

    // The primary site is gone: restore from the DRC store alone.
    std::fs::remove_dir_all(&state).unwrap();
    for (name, pd, _) in servers {
        let target = dir.join("restored").join(name);
        run_ok(
            PULIH
                .cmd()
                .args(["repo", "restore", "--repo"])
                .arg(drc.join(pd))
                .arg("--passphrase-file")
                .arg(&pass[pd])
                .arg(latest_snapshot_of(&drc.join(pd), &pass[pd], name))
                .arg("--target")
                .arg(&target),
        );
        let src = dir.join("data").join(name);
        let back = target.join(src.strip_prefix("/").unwrap());
        assert_eq!(
            std::fs::read(back.join("records.csv")).unwrap(),
            std::fs::read(src.join("records.csv")).unwrap()
        );
        assert_eq!(
            std::fs::read_to_string(back.join("sub/notes.txt")).unwrap(),
            format!("catatan {name}")
        );
    }
}

fn parse_time(s: &str) -> i64 {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("bad time {s:?}: {e}"))
        .unix_timestamp()
}

/// Sends only the headers of a request that declares a `len`-byte body and
/// reads the answer (a server that waited for the body would time out).
fn declare_oversized(addr: &str, path: &str, token: &str, len: usize) -> (u16, serde_json::Value) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {len}\r\n\r\n{{"
    )
    .unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => panic!("no answer to an oversized request on {path}: {e}"),
        }
        let text = String::from_utf8_lossy(&buf);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let want = head.lines().find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse::<usize>().unwrap())
            });
            if want.is_some_and(|w| body.len() >= w) {
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (
        status,
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
}

/// (what, method, URL, bearer token, content type and body, expected status, expected code)
type Case<'a> = (
    &'a str,
    reqwest::Method,
    String,
    Option<&'a str>,
    Option<(&'a str, Vec<u8>)>,
    u16,
    &'a str,
);

/// One request's status and error code.
async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
    body: Option<(&str, Vec<u8>)>,
) -> (u16, serde_json::Value) {
    let mut req = http.request(method, url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some((ctype, bytes)) = body {
        req = req.header("content-type", ctype).body(bytes);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let json = resp.json().await.unwrap_or(serde_json::Value::Null);
    (status, json)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_on_the_api_gets_a_stable_4xx_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let Controller {
        proc: _controller,
        url: base,
        token,
        ..
    } = Controller::start(&PULIH, dir, "");
    let admin = std::fs::read_to_string(token).unwrap().trim().to_string();
    let api = format!("{base}/api/v1");
    let http = reqwest::Client::new();
    use reqwest::Method as M;
    let json = |v: serde_json::Value| Some(("application/json", v.to_string().into_bytes()));

    let manifests = agencies(&dir.join("drc"))
        + &server_manifest("srv-a", "dinkes", Path::new("/srv/a"))
        + &server_manifest("srv-b", "dinkes", Path::new("/srv/b"));
    let apply = serde_json::json!({"files": [{"name": "m.yaml", "content": manifests}]});
    let (s, body) = call(
        &http,
        M::POST,
        &format!("{api}/manifests"),
        Some(&admin),
        json(apply.clone()),
    )
    .await;
    assert_eq!(s, 200, "{body}");

    let revisions = || async {
        call(
            &http,
            M::GET,
            &format!("{api}/manifests/revisions"),
            Some(&admin),
            None,
        )
        .await
        .1
    };
    let before = revisions().await;

    // Enrol srv-a; keep its credential.
    let (_, t) = call(
        &http,
        M::POST,
        &format!("{api}/servers/srv-a/enroll-token"),
        Some(&admin),
        None,
    )
    .await;
    let token_a = t["token"].as_str().unwrap().to_string();
    let facts = serde_json::json!({"hostname": "a", "os": "linux", "agent_version": "t"});
    let enroll = serde_json::json!({"server": "srv-a", "token": token_a, "facts": facts});
    let (s, e) = call(
        &http,
        M::POST,
        &format!("{api}/agents/enroll"),
        None,
        json(enroll.clone()),
    )
    .await;
    assert_eq!(s, 200, "{e}");
    let cred_a = e["credential"].as_str().unwrap().to_string();
    let (_, t) = call(
        &http,
        M::POST,
        &format!("{api}/servers/srv-b/enroll-token"),
        Some(&admin),
        None,
    )
    .await;
    let token_b = t["token"].as_str().unwrap().to_string();

    // Oversized bodies are refused from their declared length, before they are read.
    let addr = base.trim_start_matches("http://").to_string();
    for (path, token, len) in [
        ("/api/v1/manifests", &admin, 8usize << 20),
        ("/api/v1/agents/srv-a/heartbeat", &cred_a, 1 << 20),
    ] {
        let (status, body) = declare_oversized(&addr, path, token, len);
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (413, Some("payload_too_large")),
            "{path}: {body}"
        );
    }
    let hb = serde_json::json!({"facts": facts});
    let cases: Vec<Case> = vec![
        (
            "malformed JSON",
            M::POST,
            format!("{api}/manifests"),
            Some(&admin),
            Some(("application/json", b"{\"files\": [".to_vec())),
            400,
            "malformed_json",
        ),
        (
            "unknown field",
            M::POST,
            format!("{api}/manifests"),
            Some(&admin),
            json(serde_json::json!({"files": [], "force": true})),
            422,
            "invalid_body",
        ),
        (
            "wrong type",
            M::POST,
            format!("{api}/manifests"),
            Some(&admin),
            json(serde_json::json!({"files": "m.yaml"})),
            422,
            "invalid_body",
        ),
        (
            "not JSON content type",
            M::POST,
            format!("{api}/manifests"),
            Some(&admin),
            Some(("text/plain", b"{}".to_vec())),
            415,
            "unsupported_media_type",
        ),
        (
            "missing token",
            M::POST,
            format!("{api}/manifests"),
            None,
            json(apply.clone()),
            401,
            "unauthenticated",
        ),
        (
            "wrong token",
            M::POST,
            format!("{api}/manifests"),
            Some("not-the-token"),
            json(apply.clone()),
            401,
            "invalid_token",
        ),
        (
            "agent credential as admin",
            M::GET,
            format!("{api}/servers"),
            Some(&cred_a),
            None,
            401,
            "invalid_token",
        ),
        (
            "agent credential for another server",
            M::POST,
            format!("{api}/agents/srv-b/heartbeat"),
            Some(&cred_a),
            json(hb.clone()),
            403,
            "wrong_server",
        ),
        (
            "replayed enrolment token",
            M::POST,
            format!("{api}/agents/enroll"),
            None,
            json(enroll.clone()),
            409,
            "enroll_token_used",
        ),
        (
            "enrolment token of another server",
            M::POST,
            format!("{api}/agents/enroll"),
            None,
            json(serde_json::json!({"server": "srv-a", "token": token_b, "facts": facts})),
            403,
            "wrong_server",
        ),
        (
            "unknown enrolment token",
            M::POST,
            format!("{api}/agents/enroll"),
            None,
            json(serde_json::json!({"server": "srv-b", "token": "0000", "facts": facts})),
            401,
            "invalid_token",
        ),
        (
            "unknown field in heartbeat",
            M::POST,
            format!("{api}/agents/srv-a/heartbeat"),
            Some(&cred_a),
            json(serde_json::json!({"facts": facts, "extra": 1})),
            422,
            "invalid_body",
        ),
        (
            "bad run state",
            M::POST,
            format!("{api}/agents/srv-a/runs/sched-1/result"),
            Some(&cred_a),
            json(
                serde_json::json!({"trigger": "schedule", "started_at": "2026-01-01T00:00:00Z", "finished_at": "2026-01-01T00:00:01Z", "state": "great"}),
            ),
            422,
            "invalid_body",
        ),
        (
            "invalid manifests",
            M::POST,
            format!("{api}/manifests"),
            Some(&admin),
            json(
                serde_json::json!({"files": [{"name": "bad.yaml", "content": "apiVersion: pulih.io/v1alpha1\nkind: Server\nmetadata: {name: x}\nspec: {colour: blue}\n"}]}),
            ),
            422,
            "invalid_manifests",
        ),
        (
            "unknown server",
            M::POST,
            format!("{api}/servers/nope/replicate"),
            Some(&admin),
            None,
            404,
            "not_found",
        ),
        (
            "unknown endpoint",
            M::GET,
            format!("{base}/api/v2/servers"),
            Some(&admin),
            None,
            404,
            "not_found",
        ),
    ];
    for (what, method, url, token, body, status, code) in cases {
        let (s, b) = call(&http, method, &url, token, body).await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (status, Some(code)),
            "{what}: {b}"
        );
        assert!(
            !b["error"]["message"].as_str().unwrap_or("").is_empty(),
            "{what}: no message"
        );
    }
    // The invalid manifest is reported with its position.
    let (_, b) = call(&http, M::POST, &format!("{api}/manifests"), Some(&admin), json(serde_json::json!({"files": [{"name": "bad.yaml", "content": "apiVersion: pulih.io/v1alpha1\nkind: Server\nmetadata: {name: x}\nspec: {colour: blue}\n"}]}))).await;
    let d = &b["error"]["diagnostics"][0];
    assert_eq!(
        (d["file"].as_str(), d["line"].as_u64(), d["column"].as_u64()),
        (Some("bad.yaml"), Some(4), Some(8)),
        "{b}"
    );

    // Nothing changed: no new revision, srv-b not enrolled, no run queued.
    assert_eq!(revisions().await, before);
    let (_, servers) = call(&http, M::GET, &format!("{api}/servers"), Some(&admin), None).await;
    let b_view = servers
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "srv-b")
        .unwrap();
    assert_eq!(b_view["enrolled"], false);
    let (_, runs) = call(&http, M::GET, &format!("{api}/runs"), Some(&admin), None).await;
    assert_eq!(runs, serde_json::json!([]));
    // The one-time token of srv-b still works after all that.
    let (s, _) = call(
        &http,
        M::POST,
        &format!("{api}/agents/enroll"),
        None,
        json(serde_json::json!({"server": "srv-b", "token": token_b, "facts": facts})),
    )
    .await;
    assert_eq!(s, 200);
    // The OpenAPI document is served and names every endpoint.
    let (s, doc) = call(&http, M::GET, &format!("{api}/openapi.json"), None, None).await;
    assert_eq!(s, 200);
    for p in [
        "/manifests",
        "/agents/enroll",
        "/agents/{server}/heartbeat",
        "/compliance",
    ] {
        assert!(
            doc["paths"][p].is_object(),
            "{p} missing from the OpenAPI document"
        );
    }
}

/// Enrols `server` through the API; returns the agent's credential.
async fn enrol(http: &reqwest::Client, api: &str, admin: &str, server: &str) -> String {
    use reqwest::Method as M;
    let (_, t) = call(
        http,
        M::POST,
        &format!("{api}/servers/{server}/enroll-token"),
        Some(admin),
        None,
    )
    .await;
    let facts = serde_json::json!({"hostname": server, "os": "linux", "agent_version": "t"});
    let body = serde_json::json!({"server": server, "token": t["token"], "facts": facts});
    let (s, e) = call(
        http,
        M::POST,
        &format!("{api}/agents/enroll"),
        None,
        Some(("application/json", body.to_string().into_bytes())),
    )
    .await;
    assert_eq!(s, 200, "{e}");
    e["credential"].as_str().unwrap().to_string()
}

/// Review finding (issue 20, 8): the controller believed an agent that
/// reported a kept snapshot, so a compromised server could stay green
/// (RPO met, Pasal 9 report) while it replicated nothing. The controller
/// now checks the agency's repository itself: a snapshot the store does
/// not hold, or one another run already reported, makes the run failed;
/// a finish time in the future counts as now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replication_reporting_a_snapshot_the_store_does_not_hold_is_recorded_as_failed() {
    use reqwest::Method as M;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let Controller {
        proc: _controller,
        url: base,
        token,
        ..
    } = Controller::start(&PULIH, dir, "");
    let admin = std::fs::read_to_string(token).unwrap().trim().to_string();
    let api = format!("{base}/api/v1");
    let http = reqwest::Client::new();
    let json = |v: serde_json::Value| Some(("application/json", v.to_string().into_bytes()));
    let manifests =
        agencies(&dir.join("drc")) + &server_manifest("srv-a", "dinkes", Path::new("/srv/a"));
    let apply = serde_json::json!({"files": [{"name": "m.yaml", "content": manifests}]});
    let (s, body) = call(
        &http,
        M::POST,
        &format!("{api}/manifests"),
        Some(&admin),
        json(apply),
    )
    .await;
    assert_eq!(s, 200, "{body}");

    // One real snapshot in the agency's repository, as srv-a's agent writes it.
    let repo = dir.join("drc").join("dinkes");
    std::fs::create_dir_all(dir.join("drc")).unwrap();
    let (pass, key, src) = (dir.join("pass"), dir.join("agent.key"), dir.join("src"));
    write_secret(&pass, "walidata dinkes");
    repo::init_with_agent_key(&PULIH, &repo, &pass, &key);
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("data.txt"), "rekam medis").unwrap();
    repo::backup_tagged(&PULIH, &repo, &key, "srv-a", &src);
    let real = repo::snapshots(&PULIH, &repo, &pass)[0]["id"]
        .as_str()
        .unwrap()
        .to_string();

    let cred = enrol(&http, &api, &admin, "srv-a").await;
    let report = |run_key: &'static str, snapshot: String, finished: &'static str| {
        let body = serde_json::json!({
            "trigger": "schedule", "started_at": "2026-01-01T00:00:00Z",
            "finished_at": finished, "state": "succeeded", "snapshot_id": snapshot,
        });
        let (http, api, cred) = (&http, &api, &cred);
        async move {
            let url = format!("{api}/agents/srv-a/runs/{run_key}/result");
            let (s, b) = call(http, M::POST, &url, Some(cred), json(body)).await;
            assert_eq!(s, 200, "{run_key}: {b}");
        }
    };
    report("sched-real", real.clone(), "2026-01-01T00:00:05Z").await;
    report("sched-fake", "ab".repeat(32), "2099-01-01T00:00:00Z").await;
    report("sched-again", real.to_uppercase(), "2099-01-01T00:00:00Z").await;
    // The outbox may deliver a result twice: the same run is not "another".
    report("sched-real", real.clone(), "2026-01-01T00:00:05Z").await;

    let (_, runs) = call(
        &http,
        M::GET,
        &format!("{api}/runs?server=srv-a"),
        Some(&admin),
        None,
    )
    .await;
    let by_key: BTreeMap<&str, &serde_json::Value> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["run_key"].as_str().unwrap(), r))
        .collect();
    assert_eq!(by_key["sched-real"]["state"], "succeeded", "{runs}");
    for (run_key, why) in [
        ("sched-fake", "holds no snapshot"),
        ("sched-again", "already reported by run sched-real"),
    ] {
        let r = by_key[run_key];
        assert_eq!(r["state"], "failed", "{r}");
        let errors = r["errors"].to_string();
        assert!(errors.contains(why), "{run_key}: {errors}");
        let finished = parse_time(r["finished_at"].as_str().unwrap());
        assert!(finished <= unix_now() + 5, "not in the future: {r}");
    }
    let (_, servers) = call(&http, M::GET, &format!("{api}/servers"), Some(&admin), None).await;
    let a = &servers.as_array().unwrap()[0];
    assert_eq!(
        a["last_success"].as_str(),
        Some("2026-01-01T00:00:05Z"),
        "{a}"
    );
    assert_eq!(a["rpo_met"], false, "{a}");
}

/// Retention on the controller's own schedule, with the maintenance key the
/// walidata gave it (it can forget and prune, not read): each server's
/// `retention` applies, the freed packs go after the grace period, what is
/// kept still verifies and restores, and an agency that gave no key is
/// reported, not skipped silently.
#[test]
fn the_controller_forgets_and_prunes_by_each_servers_retention_with_a_maintenance_key() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let drc = dir.join("drc");
    let repo = drc.join("dinkes");
    let keys_dir = dir.join("maintenance-keys");
    std::fs::create_dir_all(&keys_dir).unwrap();
    let pass = dir.join("dinkes.pass");
    write_secret(&pass, "walidata dinkes\n");
    let agent_key = dir.join("srv-m.key");
    run_ok(
        PULIH
            .cmd()
            .args(["repo", "init", "--repo"])
            .arg(&repo)
            .arg("--passphrase-file")
            .arg(&pass)
            .arg("--agent-key-out")
            .arg(&agent_key),
    );
    repo::add_maintenance_key(&PULIH, &repo, &pass, &keys_dir.join("dinkes.key"));

    let src = dir.join("data").join("srv-m");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("stable.txt"), "tetap\n".repeat(1000)).unwrap();
    let mut manifests = agencies(&drc);
    manifests.push_str(&server_manifest("srv-m", "dinkes", &src));
    manifests.push_str("  retention: {keepLast: 2}\n");
    let mdir = manifests::write(&dir.join("manifests"), &manifests);

    let (controller, url, token) = Controller::start(
        &PULIH,
        dir,
        &format!(
            "[maintenance]\nschedule = \"*/3 * * * * *\"\nkeys_dir = {:?}\ngrace = \"2s\"\n",
            keys_dir.display().to_string()
        ),
    )
    .into_parts();
    run_ok(PULIH.ops(&url, &token).args(["apply", "-f"]).arg(&mdir));

    // Four nights, each with new contents: the older ones become garbage.
    let mut last = Vec::new();
    for night in 0..4u8 {
        last = (0..(2u32 << 20))
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8 ^ night.wrapping_mul(97))
            .collect();
        std::fs::write(src.join("data.bin"), &last).unwrap();
        repo::backup_tagged(&PULIH, &repo, &agent_key, "srv-m", &src);
    }

    // Run now: dinkes is maintained; bpkad gave no key yet and is skipped, saying why.
    let now_runs = last_json(&run_ok(PULIH.ops(&url, &token).args([
        "maintenance",
        "run",
        "--wait",
        "--json",
        "--timeout",
        "60",
    ])));
    let by_pd = |pd: &str| {
        now_runs
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["perangkat_daerah"] == pd)
            .unwrap_or_else(|| panic!("no run for {pd}: {now_runs}"))
            .clone()
    };
    assert_eq!(by_pd("dinkes")["state"], "succeeded", "{now_runs}");
    let bpkad = by_pd("bpkad");
    assert_eq!(bpkad["state"], "skipped");
    assert!(
        bpkad["error"]
            .as_str()
            .unwrap()
            .contains("no maintenance key"),
        "{bpkad}"
    );

    // A key that does not fit: bpkad's run fails, says why, and the CLI exits 1.
    std::fs::copy(keys_dir.join("dinkes.key"), keys_dir.join("bpkad.key")).unwrap();
    let out = PULIH
        .ops(&url, &token)
        .args(["maintenance", "run", "--pd", "bpkad", "--wait", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let failed = last_json(&out);
    assert_eq!(failed[0]["state"], "failed", "{failed}");
    assert!(
        failed[0]["error"].as_str().unwrap().contains("bpkad"),
        "{failed}"
    );

    // The schedule fires by itself; past the grace period it deletes what
    // was condemned.
    wait_for(
        "a scheduled maintenance run that deleted packs",
        Duration::from_secs(60),
        &[&controller],
        || {
            let all = last_json(&run_ok(PULIH.ops(&url, &token).args([
                "maintenance",
                "--json",
                "--limit",
                "1000",
            ])));
            all.as_array().unwrap().iter().any(|r| {
                r["perangkat_daerah"] == "dinkes"
                    && r["trigger"] == "schedule"
                    && r["state"] == "succeeded"
                    && r["deleted_packs"].as_u64().unwrap() > 0
            })
        },
    );
    let all = last_json(&run_ok(PULIH.ops(&url, &token).args([
        "maintenance",
        "--json",
        "--limit",
        "1000",
    ])));
    let forgotten: u64 = all
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["perangkat_daerah"] == "dinkes")
        .map(|r| r["forgotten"].as_u64().unwrap())
        .sum();
    assert_eq!(forgotten, 2, "{all}");
    drop(controller);

    // The walidata's view: two snapshots kept, all data authenticates, the
    // newest restores byte for byte.
    let snaps = repo::snapshots(&PULIH, &repo, &pass);
    assert_eq!(snaps.as_array().unwrap().len(), 2, "{snaps}");
    run_ok(
        PULIH
            .cmd()
            .args(["repo", "verify", "--read-data", "--repo"])
            .arg(&repo)
            .arg("--passphrase-file")
            .arg(&pass),
    );
    let target = dir.join("restored");
    run_ok(
        PULIH
            .cmd()
            .args(["repo", "restore", "--repo"])
            .arg(&repo)
            .arg("--passphrase-file")
            .arg(&pass)
            .args(["latest", "--target"])
            .arg(&target),
    );
    assert_eq!(
        std::fs::read(target.join(src.strip_prefix("/").unwrap()).join("data.bin")).unwrap(),
        last
    );
}

/// The controller serves HTTPS with its own CA's certificate; the CLI and an
/// agent that trust the CA work, a client that does not is refused, and
/// credentials never cross the wire in clear.
#[test]
fn the_controller_serves_https_and_agents_and_the_cli_trust_only_its_ca() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();

    // DKIS's own CA, and the controller's certificate for 127.0.0.1.
    let (ca_file, cert_file, key_file) = pulih_test_support::tls::dkis_ca(dir, "controller");

    let drc = dir.join("drc");
    let pass = dir.join("dinkes.pass");
    write_secret(&pass, "walidata dinkes\n");
    run_ok(
        PULIH
            .cmd()
            .args(["repo", "init", "--repo"])
            .arg(drc.join("dinkes"))
            .arg("--passphrase-file")
            .arg(&pass)
            .arg("--agent-key-out")
            .arg(dir.join("srv-t.key")),
    );
    let src = dir.join("data").join("srv-t");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f.txt"), "aman\n").unwrap();
    let mut manifests = agencies(&drc);
    manifests.push_str(&server_manifest("srv-t", "dinkes", &src));
    let mdir = manifests::write(&dir.join("manifests"), &manifests);

    let (controller, url, token) = Controller::start(
        &PULIH,
        dir,
        &format!(
            "tls_cert_file = {:?}\ntls_key_file = {:?}\n",
            cert_file.display().to_string(),
            key_file.display().to_string()
        ),
    )
    .into_parts();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");

    // Without the CA the CLI refuses the certificate and says so.
    let refused = PULIH
        .ops(&url, &token)
        .env_remove("PULIH_CA_FILE")
        .args(["apply", "-f"])
        .arg(&mdir)
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("certificate"), "{err}");
    // Plain HTTP to the HTTPS port gets no API answer.
    let plain = PULIH
        .ops(&url.replace("https://", "http://"), &token)
        .args(["status", "--json"])
        .output()
        .unwrap();
    assert!(!plain.status.success(), "{plain:?}");

    // With the CA: apply, enrol an agent over HTTPS, replicate.
    let tls_ops = |args: &[&str]| {
        let mut c = PULIH.ops(&url, &token);
        c.env("PULIH_CA_FILE", &ca_file).args(args);
        c
    };
    run_ok(tls_ops(&["apply", "-f"]).arg(&mdir));
    let agent = Agent {
        url: &url,
        server: "srv-t",
        key: &dir.join("srv-t.key"),
        dir: dir.join("agent"),
        extra: format!("ca_file = {:?}\n", ca_file.display().to_string()),
    }
    .start(&PULIH, &enroll_token(tls_ops(&[]), "srv-t"));
    let r = last_json(&run_ok(&mut tls_ops(&[
        "replicate",
        "srv-t",
        "--wait",
        "--json",
        "--timeout",
        "60",
    ])));
    assert_eq!(r["state"], "succeeded", "{r}\n{}", agent.log_text());
    let shown = last_json(&run_ok(&mut tls_ops(&[
        "servers", "show", "srv-t", "--json",
    ])));
    assert_eq!(shown["enrolled"], true, "{shown}");
    agent.stop();
    drop(controller);
}

/// The serving and restoring commands run with two glibc malloc arenas
/// (cli/src/malloc.rs: they start themselves again, the same process, with
/// `MALLOC_ARENA_MAX=2`), which keeps a restore's peak RSS near half.
#[test]
fn pulih_runs_with_two_malloc_arenas() {
    let tmp = tempfile::tempdir().unwrap();
    let c = Controller::start(&PULIH, tmp.path(), "");
    let pid = c.proc.child.id();
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    assert!(
        environ
            .split(|b| *b == 0)
            .any(|v| v == b"MALLOC_ARENA_MAX=2"),
        "the controller's environment: {}",
        String::from_utf8_lossy(&environ).replace('\0', " ")
    );
    // The same process (exec, not a child) running the same executable.
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/exe")).unwrap(),
        std::fs::canonicalize(env!("CARGO_BIN_EXE_pulih")).unwrap()
    );
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(status.contains("\nPPid:\t"), "{status}");
    let ppid: u32 = status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(
        ppid,
        std::process::id(),
        "started by this test, not by a wrapper"
    );
}

/// Dinkes's repository at `<dir>/drc/dinkes` (walidata passphrase in
/// `<dir>/pass`), one agent key per `(server, key file)` bound to its
/// server, and the maintenance key in the controller's keys dir; a
/// controller with that `[maintenance]` (never on its own schedule) and
/// `manifests` applied. Returns the controller, its API base
/// (`…/api/v1`), the admin token, its file, the repository and the
/// passphrase file.
async fn maintained_dinkes(
    dir: &Path,
    keys: &[(&str, &Path)],
    manifests: String,
) -> (
    Proc,
    String,
    String,
    std::path::PathBuf,
    std::path::PathBuf,
    std::path::PathBuf,
) {
    let repo = dir.join("drc").join("dinkes");
    std::fs::create_dir_all(dir.join("drc")).unwrap();
    let keys_dir = dir.join("maintenance-keys");
    std::fs::create_dir_all(&keys_dir).unwrap();
    let pass = dir.join("pass");
    write_secret(&pass, "walidata dinkes");
    repo::init(&PULIH, &repo, &pass);
    for (server, key) in keys {
        repo::add_server_key(&PULIH, &repo, &pass, key, server);
    }
    repo::add_maintenance_key(&PULIH, &repo, &pass, &keys_dir.join("dinkes.key"));
    let controller = Controller::start(
        &PULIH,
        dir,
        &format!(
            "[maintenance]\nschedule = \"0 0 1 1 *\"\nkeys_dir = {:?}\ngrace = \"1s\"\n",
            keys_dir.display().to_string()
        ),
    );
    let admin = std::fs::read_to_string(&controller.token)
        .unwrap()
        .trim()
        .to_string();
    let api = format!("{}/api/v1", controller.url);
    let apply = serde_json::json!({"files": [{"name": "m.yaml", "content": manifests}]});
    let (s, body) = call(
        &reqwest::Client::new(),
        reqwest::Method::POST,
        &format!("{api}/manifests"),
        Some(&admin),
        Some(("application/json", apply.to_string().into_bytes())),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    (controller.proc, api, admin, controller.token, repo, pass)
}

/// Review (issue 20, 1 and 8): with the agency's maintenance key the
/// controller confirms a reported snapshot only if it authenticates, was
/// written in a space bound to the reporting server and reached the store
/// after the run was queued. Server B reporting A's fresh snapshot first
/// no longer frames A (B's report fails, A's counts); a junk object, a
/// snapshot B wrote tagged as A, and an old snapshot reported for a new
/// run all fail, each saying why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provenance_the_controller_confirms_only_a_reporting_servers_own_fresh_snapshot() {
    use reqwest::Method as M;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (key_a, key_b) = (dir.join("a.key"), dir.join("b.key"));
    let manifests = agencies(&dir.join("drc"))
        + &server_manifest("srv-a", "dinkes", Path::new("/srv/a"))
        + &server_manifest("srv-b", "dinkes", Path::new("/srv/b"));
    let (_controller, api, admin, _, repo, pass) =
        maintained_dinkes(dir, &[("srv-a", &key_a), ("srv-b", &key_b)], manifests).await;
    let http = reqwest::Client::new();
    let json = |v: serde_json::Value| Some(("application/json", v.to_string().into_bytes()));

    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("data.txt"), "rekam medis").unwrap();
    let newest = || {
        repo::snapshots(&PULIH, &repo, &pass)
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect::<BTreeSet<_>>()
    };
    let mut known = newest();
    let mut backup = |key: &Path, tag: &str| {
        repo::backup_tagged(&PULIH, &repo, key, tag, &src);
        let now = newest();
        let new: Vec<String> = now.difference(&known).cloned().collect();
        known = now;
        assert_eq!(new.len(), 1, "{new:?}");
        new[0].clone()
    };
    let a_own = backup(&key_a, "srv-a");
    let b_as_a = backup(&key_b, "srv-a");
    let a_old = backup(&key_a, "srv-a");
    // The store received a_old an hour ago (a file:// store's time is the
    // file's; a writer there can set it, which is what the gateway fixes).
    let old = repo.join("snapshots").join(&a_old);
    assert!(old.exists(), "{}", old.display());
    let hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&old)
        .unwrap()
        .set_modified(hour_ago)
        .unwrap();
    // Junk any writer of the agency can put under snapshots/.
    let junk = "cd".repeat(32);
    std::fs::write(repo.join("snapshots").join(&junk), b"not a snapshot").unwrap();

    let cred_a = enrol(&http, &api, &admin, "srv-a").await;
    let cred_b = enrol(&http, &api, &admin, "srv-b").await;
    let report = |server: &'static str, cred: &String, run_key: String, snapshot: &str| {
        let body = serde_json::json!({
            "trigger": "schedule", "started_at": "2026-01-01T00:00:00Z",
            "finished_at": "2026-01-01T00:00:05Z", "state": "succeeded", "snapshot_id": snapshot,
        });
        let (http, api, cred) = (&http, &api, cred.clone());
        async move {
            let url = format!("{api}/agents/{server}/runs/{run_key}/result");
            let (s, b) = call(http, M::POST, &url, Some(&cred), json(body)).await;
            assert_eq!(s, 200, "{run_key}: {b}");
        }
    };
    // B reports A's snapshot first; then A reports it.
    report("srv-b", &cred_b, "b-steals".into(), &a_own).await;
    report("srv-a", &cred_a, "a-own".into(), &a_own).await;
    report("srv-a", &cred_a, "a-junk".into(), &junk).await;
    report("srv-a", &cred_a, "a-forged".into(), &b_as_a).await;
    // A run the controller queues now, answered with the hour-old snapshot.
    let (s, q) = call(
        &http,
        M::POST,
        &format!("{api}/servers/srv-a/replicate"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(s, 200, "{q}");
    let queued = q["run_key"].as_str().unwrap().to_string();
    report("srv-a", &cred_a, queued.clone(), &a_old).await;

    let (_, runs) = call(&http, M::GET, &format!("{api}/runs"), Some(&admin), None).await;
    let by_key: BTreeMap<&str, &serde_json::Value> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["run_key"].as_str().unwrap(), r))
        .collect();
    assert_eq!(by_key["a-own"]["state"], "succeeded", "{runs}");
    for (run_key, why) in [
        ("b-steals", "bound to server srv-a".to_string()),
        ("a-junk", "does not authenticate".to_string()),
        ("a-forged", "bound to server srv-b".to_string()),
        (queued.as_str(), "before this run was queued".to_string()),
    ] {
        let r = by_key[run_key];
        assert_eq!(r["state"], "failed", "{r}");
        let errors = r["errors"].to_string();
        assert!(errors.contains(&why), "{run_key}: {errors}");
    }
}

/// Ransomware signals (issue 20): a month of ordinary nights (a few files
/// changed each night, one night a large addition of new documents) raises
/// no flag; a night that rewrites most files with random bytes is flagged
/// (in `servers`, the API, the audit log), its hold keeps every snapshot
/// before it out of the controller's prune and a reader's forget, and once
/// an operator clears it retention goes on. The runs are real backups
/// reported through the agent API; the measures come from the snapshots
/// and the store, read with the maintenance key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anomaly_a_mass_rewrite_is_flagged_and_holds_history_and_a_month_of_ordinary_nights_is_not()
{
    use reqwest::Method as M;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let key = dir.join("n.key");
    let src = dir.join("src");
    let manifests = agencies(&dir.join("drc"))
        + &server_manifest("srv-n", "dinkes", &src)
        + "  retention: {keepLast: 2}\n";
    let (_controller, api, admin, token, repo, pass) =
        maintained_dinkes(dir, &[("srv-n", &key)], manifests).await;
    let base = api.trim_end_matches("/api/v1").to_string();
    let http = reqwest::Client::new();
    let json = |v: serde_json::Value| Some(("application/json", v.to_string().into_bytes()));
    let cred = enrol(&http, &api, &admin, "srv-n").await;

    // An office's documents: 120 files of text, 24 KiB each.
    std::fs::create_dir_all(&src).unwrap();
    let words = [
        "surat",
        "keputusan",
        "anggaran",
        "pegawai",
        "laporan",
        "dinas",
        "kesehatan",
        "warga",
        "pelayanan",
        "rapat",
    ];
    let text = |seed: u64, len: usize| -> Vec<u8> {
        let mut x = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let mut out = Vec::with_capacity(len + 16);
        while out.len() < len {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            out.extend_from_slice(words[(x >> 33) as usize % words.len()].as_bytes());
            out.push(if (x >> 20).is_multiple_of(11) {
                b'\n'
            } else {
                b' '
            });
        }
        out
    };
    for f in 0..120u64 {
        std::fs::write(src.join(format!("dok-{f:03}.txt")), text(f, 24 << 10)).unwrap();
    }
    let cache = dir.join("cache");
    let mut night = 0u32;
    let mut nightly = |label: &str| {
        night += 1;
        let out = run_ok(
            PULIH
                .cmd()
                .args(["repo", "backup", "--json", "--repo"])
                .arg(&repo)
                .arg("--agent-key")
                .arg(&key)
                .arg("--cache-dir")
                .arg(&cache)
                .args(["--tag", "server=srv-n"])
                .arg(&src),
        );
        let id = last_json(&out)["snapshot_id"].as_str().unwrap().to_string();
        (format!("{label}-{night:02}"), id)
    };
    let report = |run_key: String, snapshot: String| {
        let body = serde_json::json!({
            "trigger": "schedule", "started_at": "2026-01-01T00:00:00Z",
            "finished_at": "2026-01-01T00:00:05Z", "state": "succeeded", "snapshot_id": snapshot,
        });
        let (http, api, cred) = (&http, &api, &cred);
        async move {
            let url = format!("{api}/agents/srv-n/runs/{run_key}/result");
            let (s, b) = call(http, M::POST, &url, Some(cred), json(body)).await;
            assert_eq!(s, 200, "{run_key}: {b}");
        }
    };
    let server_view = || async {
        let (_, v) = call(
            &http,
            M::GET,
            &format!("{api}/servers/srv-n"),
            Some(&admin),
            None,
        )
        .await;
        v
    };

    // A month of nights: each changes three documents a little; night 15
    // adds 60 new documents (half as much again).
    let mut ids = Vec::new();
    for n in 1..=30u64 {
        for f in [(n * 7) % 120, (n * 13) % 120, (n * 29) % 120] {
            let p = src.join(format!("dok-{f:03}.txt"));
            let mut b = std::fs::read(&p).unwrap();
            b.extend_from_slice(&text(1000 + n * 3 + f, 600));
            std::fs::write(&p, b).unwrap();
        }
        if n == 15 {
            for f in 120..180u64 {
                std::fs::write(src.join(format!("dok-{f:03}.txt")), text(f, 24 << 10)).unwrap();
            }
        }
        let (run_key, id) = nightly("night");
        report(run_key, id.clone()).await;
        ids.push(id);
        let v = server_view().await;
        assert!(v["anomaly"].is_null(), "night {n} flagged: {v:#}");
    }
    let (_, runs) = call(
        &http,
        M::GET,
        &format!("{api}/runs?server=srv-n&limit=100"),
        Some(&admin),
        None,
    )
    .await;
    assert!(
        runs.as_array()
            .unwrap()
            .iter()
            .all(|r| r["state"] == "succeeded"),
        "{runs:#}"
    );

    // Ransomware: nearly every document rewritten with random bytes.
    for f in 0..170u64 {
        let p = src.join(format!("dok-{f:03}.txt"));
        let len = std::fs::metadata(&p).unwrap().len() as usize;
        let noise: Vec<u8> = (0..len).map(|_| rand::random::<u8>()).collect();
        std::fs::write(&p, noise).unwrap();
    }
    let (run_key, encrypted) = nightly("ransom");
    report(run_key.clone(), encrypted.clone()).await;
    let v = server_view().await;
    let reason = v["anomaly"]["reason"]
        .as_str()
        .unwrap_or_else(|| panic!("not flagged: {v:#}"));
    assert!(reason.contains("rewritten"), "{reason}");
    let cli = run_ok(PULIH.ops(&base, &token).args(["servers"]));
    let listed = String::from_utf8_lossy(&cli.stdout);
    assert!(listed.contains("ANOMALY srv-n"), "{listed}");
    let hold = repo.join("holds").join(&encrypted);
    assert!(hold.exists(), "the hold is in the repository");

    // The controller's retention (keepLast 2) keeps every snapshot up to
    // the flagged one; so does a reader's forget.
    let m = last_json(&run_ok(PULIH.ops(&base, &token).args([
        "maintenance",
        "run",
        "--pd",
        "dinkes",
        "--wait",
        "--json",
    ])));
    assert_eq!(m[0]["state"], "succeeded", "{m}");
    let alive = || {
        repo::snapshots(&PULIH, &repo, &pass)
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect::<BTreeSet<_>>()
    };
    let kept = alive();
    for id in ids.iter().chain([&encrypted]) {
        assert!(kept.contains(id), "{id} was forgotten despite the hold");
    }
    let out = run_ok(
        PULIH
            .cmd()
            .args(["repo", "forget", "--keep-last", "1", "--json", "--repo"])
            .arg(&repo)
            .arg("--passphrase-file")
            .arg(&pass),
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("held"));
    assert_eq!(
        alive(),
        kept,
        "a reader's forget keeps the held history too"
    );

    // An operator looked: cleared, the hold goes, retention goes on.
    let out =
        run_ok(
            PULIH
                .ops(&base, &token)
                .args(["servers", "clear-anomaly", "srv-n", "--json"]),
        );
    let cleared = last_json(&out);
    assert_eq!(cleared["flags"], 1, "{cleared}");
    assert!(!hold.exists());
    assert!(server_view().await["anomaly"].is_null());
    // The agent's outbox delivers that night's result again: not judged
    // again, so the cleared flag and its hold do not come back.
    report(run_key, encrypted.clone()).await;
    assert!(!hold.exists());
    assert!(server_view().await["anomaly"].is_null());
    run_ok(
        PULIH
            .cmd()
            .args(["repo", "forget", "--keep-last", "2", "--repo"])
            .arg(&repo)
            .arg("--passphrase-file")
            .arg(&pass),
    );
    assert_eq!(alive().len(), 2);

    // History deleted behind retention's back: the newest confirmed
    // snapshot's object is removed; the next night says so.
    std::fs::remove_file(repo.join("snapshots").join(&encrypted)).unwrap();
    let (run_key, id) = nightly("night");
    report(run_key, id.clone()).await;
    let v = server_view().await;
    let reason = v["anomaly"]["reason"]
        .as_str()
        .unwrap_or_else(|| panic!("not flagged: {v:#}"));
    assert!(
        reason.contains(&encrypted) && reason.contains("no longer in the store"),
        "{reason}"
    );
    assert!(repo.join("holds").join(&id).exists());
}
