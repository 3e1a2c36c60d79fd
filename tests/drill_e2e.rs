//! Drills on the real Docker engine, with real processes: an agent
//! replicates a Docker app (a named volume, its image, a pause hook) through
//! a controller; at the DRC, `pulih drc drill` restores it from the DRC
//! store alone, loads the replicated image, starts two containers on an
//! internal network, checks them, and tears everything down.
//!
//! The image is made here from the host's static busybox
//! (tests/images/busybox-app.sh): no registry is used.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use pulih_test_support::agent::{Agent, enroll_token, wait_for_heartbeat};
use pulih_test_support::controller::{Controller, start_failover_controller};
use pulih_test_support::docker::{self, Cleanup, docker, images};
use pulih_test_support::executor::Executor;
use pulih_test_support::manifests::{
    self, BPKAD, DINKES, DISDUKCAPIL, DISKOMINFO, agency, drc_target, server,
};
use pulih_test_support::net::{free_port, http_get};
use pulih_test_support::{Proc, Pulih, last_json, repo, report, run_ok, wait_for, write_secret};

const PULIH: Pulih = Pulih::new(env!("CARGO_BIN_EXE_pulih"));

/// The spec lines of a server whose data is Docker volume `volume`,
/// replicated with container `prod` paused; scheduled once a year (the
/// tests replicate on demand), RPO 1 h, RTO 5 min.
fn paused_volume_spec(volume: &str, prod: &str) -> String {
    format!(
        "  sources:\n    - dockerVolume: {volume}\n  hooks:\n    pre:\n      - {{pause: {prod}}}\n  schedule: {{cron: \"0 0 1 1 *\"}}\n  rpo: 1h\n  rto: 5m\n"
    )
}

fn manifests(drc: &Path, volume: &str, prod: &str, image: &str, expect: &str, port: u16) -> String {
    drc_target(&drc.display().to_string())
        + &agency(DINKES, true)
        + &agency(BPKAD, false)
        + &server("simpus", "dinkes")
        + &paused_volume_spec(volume, prod)
        + &format!(
            r#"  recovery:
    containers:
      - name: db
        image: {image}
        command: [httpd, -f, -p, "5432", -h, /data]
        volumes: [{{source: {volume}, target: /data}}]
        startOrder: 0
      - name: web
        image: {image}
        command: [sh, -c, "until wget -q -O /tmp/index.html http://db:5432/index.html; do sleep 0.2; done; exec httpd -f -p 8080 -h /tmp"]
        ports: ["{port}:8080"]
        startOrder: 1
    healthChecks:
      - name: db-listens
        tcp: {{container: db, port: 5432}}
      - name: web-shows-the-rows
        http: {{container: web, port: 8080, path: /index.html, expectStatus: 200, expectBodyContains: "{expect}"}}
        timeout: 5s
      - name: web-has-the-file
        exec: {{container: web, command: [cat, /tmp/index.html], expectOutputContains: "rows: 3"}}
"#
        )
        + &server("arsip", "bpkad")
        + &format!(
            r#"  sources:
    - dockerVolume: {volume}
  recovery:
    containers:
      - {{name: web, image: {image}}}
"#,
        )
}

#[test]
fn a_drill_restores_a_replicated_docker_app_on_an_isolated_network_and_tears_it_down_and_failover_and_failback_bring_a_drc_change_home()
 {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let tag = format!("t{}", std::process::id());
    let image = format!("pulih-test/app:{tag}");
    let volume = format!("pulih-test-{tag}-data");
    let prod = format!("pulih-test-{tag}-web");
    let mut cleanup = Cleanup::new();
    cleanup.tag(images::busybox(), &image);
    let mountpoint = cleanup.volume(&volume);
    std::fs::write(
        mountpoint.join("index.html"),
        "<table><tr><td>rows: 3</td></tr></table>\n",
    )
    .unwrap();
    // The production app: serves the volume; paused while it is backed up.
    cleanup.run(
        &prod,
        &[
            // busybox httpd ignores SIGTERM: a failback stops it quickly.
            "--stop-timeout",
            "1",
            "-v",
            &format!("{volume}:/www"),
            &image,
            "httpd",
            "-f",
            "-p",
            "8080",
            "-h",
            "/www",
        ],
    );

    // The walidata makes the repository and the server's agent key.
    let drc = dir.join("drc");
    let pass = dir.join("dinkes.pass");
    write_secret(&pass, "walidata dinkes\n");
    let key = dir.join("simpus.key");
    repo::init_with_agent_key(&PULIH, &drc.join("dinkes"), &pass, &key);
    let port = free_port();
    let mdir = manifests::write(
        &dir.join("manifests"),
        &manifests(&drc, &volume, &prod, &image, "rows: 3", port),
    );

    // Controller and agent; one replication, nightly-style but now.
    let (c, failover_token) = start_failover_controller(&PULIH, dir, &mdir);
    let (controller, url, token) = c.into_parts();
    // The walidata lets this server restore (for the failback).
    let agent = start_agent(&url, &token, dir, "simpus", &key, &pass);
    wait_for_heartbeat(&PULIH, &url, &token, "simpus", &[&agent, &controller]);
    let run = last_json(&run_ok(PULIH.ops(&url, &token).args([
        "replicate",
        "simpus",
        "--wait",
        "--json",
    ])));
    assert_eq!(run["state"], "succeeded", "{run}\n{}", agent.log_text());
    // The pause hook was undone.
    assert_eq!(docker::status(&prod), "running");

    let executor =
        drill_through_the_controller(&url, &token, dir, &drc, &pass, &[&controller, &agent]);
    failover_and_failback_through_the_controller(
        &url,
        &token,
        &failover_token,
        dir,
        port,
        &mountpoint,
        &prod,
    );
    executor.stop();
    agent.stop();
    controller.stop();

    // Disaster: production and its image are gone. The DRC has only its
    // store, the manifests and the walidata's consent.
    docker(&["rm", "-f", &prod]);
    docker(&["rmi", &image]);
    let scratch = dir.join("scratch");
    let html = dir.join("report.html");
    let drill = |mdir: &Path| {
        PULIH
            .cmd()
            .args(["drc", "drill", "simpus", "--json", "-f"])
            .arg(mdir)
            .arg("--repo")
            .arg(drc.join("dinkes"))
            .arg("--passphrase-file")
            .arg(&pass)
            .arg("--scratch-dir")
            .arg(&scratch)
            .arg("--html")
            .arg(&html)
            .output()
            .unwrap()
    };
    let out = drill(&mdir);
    let report = last_json(&out);
    assert!(
        out.status.success(),
        "drill failed: {report:#}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(report["state"], "passed", "{report:#}");
    let steps = report::steps(&report);
    assert_eq!(
        steps,
        [
            "open repository",
            "select snapshot",
            "check disk",
            "restore",
            "load images",
            "network",
            "start db",
            "start web",
            "teardown"
        ],
        "{report:#}"
    );
    let load = &report["steps"][4]["detail"];
    assert!(
        load.as_str()
            .unwrap()
            .contains(&format!("loaded from the snapshot: [\"{image}\"]")),
        "{load}"
    );
    assert!(
        report["steps"][5]["detail"]
            .as_str()
            .unwrap()
            .contains("internal")
    );
    let checks = report::checks(&report);
    assert_eq!(
        checks,
        [
            ("db-listens", true),
            ("web-shows-the-rows", true),
            ("web-has-the-file", true)
        ],
        "{report:#}"
    );
    let rto = report["rto_seconds"].as_f64().unwrap();
    let rpo = report["rpo_seconds"].as_f64().unwrap();
    assert!(rto > 0.0 && rto < 300.0, "{report:#}");
    assert!((0.0..3600.0).contains(&rpo), "{report:#}");
    let td = &report["teardown"];
    assert_eq!(td["containers_removed"], 2, "{report:#}");
    assert_eq!(td["networks_removed"], 1, "{report:#}");
    assert_eq!(
        (
            &td["containers_left"],
            &td["networks_left"],
            &td["volumes_left"]
        ),
        (&0.into(), &0.into(), &0.into())
    );
    assert_eq!(td["scratch_removed"], true);
    let id = report["id"].as_str().unwrap();
    // Nothing is left on the engine under the drill's label or name.
    let label = format!("label=io.pulih.recovery={id}");
    assert_eq!(docker::containers(&label), "");
    assert_eq!(docker(&["network", "ls", "-q", "--filter", &label]), "");
    assert_eq!(docker(&["volume", "ls", "-q", "--filter", &label]), "");
    assert_eq!(std::fs::read_dir(&scratch).unwrap().count(), 0);
    // The report is in the DRC store and as HTML.
    let stored = drc
        .join("dinkes/reports/drills/simpus")
        .join(format!("{id}.json"));
    let kept: serde_json::Value = serde_json::from_slice(&std::fs::read(&stored).unwrap()).unwrap();
    assert_eq!(kept["id"], id);
    assert!(std::fs::read_to_string(&html).unwrap().contains("PASSED"));
    // The image it loaded (the server's code) went with it; the next
    // drill loads it again from the snapshot.
    assert_eq!(td["images_removed"], 1, "{report:#}");
    assert!(
        !docker::docker_output(&["image", "inspect", &image])
            .status
            .success(),
        "the drill's loaded image is gone"
    );
    cleanup.later(&["rmi", &image]);

    // A health check that cannot pass fails the drill with its reason and
    // the container logs, and the teardown still happens.
    let bad = manifests::write(
        &dir.join("manifests-bad"),
        &manifests(&drc, &volume, &prod, &image, "rows: 999", port),
    );
    let out = drill(&bad);
    let report = last_json(&out);
    assert_eq!(out.status.code(), Some(1), "{report:#}");
    assert_eq!(report["state"], "failed");
    let error = report["error"].as_str().unwrap();
    assert!(
        error.contains("web-shows-the-rows") && error.contains("rows: 999"),
        "{error}"
    );
    assert!(report["logs"]["web"].is_string(), "{report:#}");
    assert!(report["rto_seconds"].is_null());
    assert_eq!(report["teardown"]["containers_left"], 0);
    assert_eq!(report["teardown"]["networks_left"], 0);
    let label = format!("label=io.pulih.recovery={}", report["id"].as_str().unwrap());
    assert_eq!(docker::containers(&label), "");

    // An agency that gave no drill consent: refused before anything is read.
    let out = PULIH
        .cmd()
        .args(["drc", "drill", "arsip", "-f"])
        .arg(&mdir)
        .arg("--repo")
        .arg(drc.join("dinkes"))
        .arg("--passphrase-file")
        .arg(&pass)
        .arg("--scratch-dir")
        .arg(&scratch)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("bpkad gave no drill consent"), "{stderr}");
    assert!(!drc.join("dinkes/reports/drills/arsip").exists());

    // A DRC with too little disk: the drill fails before restoring a byte,
    // says so, and leaves nothing (a 64 KiB tmpfs as the scratch dir).
    let small = dir.join("small");
    std::fs::create_dir_all(&small).unwrap();
    run_ok(
        Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
            .arg(&small),
    );
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).output();
        }
    }
    let _unmount = Unmount(small.clone());
    let out = PULIH
        .cmd()
        .args(["drc", "drill", "simpus", "--json", "-f"])
        .arg(&mdir)
        .arg("--repo")
        .arg(drc.join("dinkes"))
        .arg("--passphrase-file")
        .arg(&pass)
        .arg("--scratch-dir")
        .arg(&small)
        .output()
        .unwrap();
    let report = last_json(&out);
    assert_eq!(out.status.code(), Some(1), "{report:#}");
    let error = report["error"].as_str().unwrap();
    assert!(error.contains("too little disk"), "{error}");
    assert_eq!(report["files_restored"], 0);
    assert_eq!(std::fs::read_dir(&small).unwrap().count(), 0);
    let label = format!("label=io.pulih.recovery={}", report["id"].as_str().unwrap());
    assert_eq!(docker::containers(&label), "");
}

/// Ops run drills through the controller; the DRC executor (`pulih agent
/// --role drc`) runs them with its `drc-drill` identity, which opens the
/// agency's repository only once the walidata granted it; the report
/// reaches the controller (list, report, HTML, compliance) and the DRC
/// store. An agency without drill consent is refused by the controller.
fn drill_through_the_controller(
    url: &str,
    token: &Path,
    dir: &Path,
    drc: &Path,
    pass: &Path,
    logs: &[&Proc],
) -> Proc {
    let x = Executor::prepare(
        &PULIH,
        url,
        token,
        dir,
        &format!("pulih-test-svc-{}", std::process::id()),
        &format!(
            "switch_hook = [\"sh\", \"-c\", \"echo $PULIH_PHASE $PULIH_SERVER $PULIH_ADDRESSES > {}\"]\n",
            dir.join("switched").display(),
        ),
    );
    // What an executor that crashed mid-drill left behind: its drill's
    // container and scratch data go when it starts again; a failover's
    // container (meant to keep running) stays.
    let tag = std::process::id();
    let orphan = format!("pulih-test-orphan-{tag}");
    let kept = format!("pulih-test-kept-{tag}");
    let mut guard = Cleanup::new();
    for (name, id) in [(&orphan, "drill-orphan"), (&kept, "failover-running")] {
        guard.run(
            name,
            &[
                "--label",
                &format!("io.pulih.recovery={id}"),
                "--label",
                &format!("io.pulih.owner=drc:drc@{}", x.state.display()),
                images::BUSYBOX,
                "sleep",
                "600",
            ],
        );
    }
    std::fs::create_dir_all(x.scratch.join("drill-orphan/restore")).unwrap();
    let executor = x.spawn(&PULIH);
    let mut logs = logs.to_vec();
    logs.push(&executor);
    let drill = |server: &str| {
        PULIH
            .ops(url, token)
            .args([
                "drill",
                "run",
                server,
                "--wait",
                "--timeout",
                "300",
                "--json",
            ])
            .output()
            .unwrap()
    };

    wait_for(
        "the orphaned drill swept",
        Duration::from_secs(30),
        &logs,
        || docker::containers(&format!("name={orphan}")).is_empty(),
    );
    assert!(!x.scratch.join("drill-orphan").exists());
    assert_eq!(
        docker::status(&kept),
        "running",
        "a failover's container is never swept"
    );

    // Before the walidata grants the key, the executor cannot read the
    // repository: the drill fails and says why.
    let out = drill("simpus");
    let d = last_json(&out);
    assert_eq!(out.status.code(), Some(1), "{d:#}\n{}", executor.log_text());
    assert_eq!(d["state"], "failed", "{d:#}");
    let error = d["error"].as_str().unwrap();
    assert!(
        error.contains("no `keys/drc-drill` key slot") && error.contains("grant-drill"),
        "{error}"
    );

    repo::grant_drill(&PULIH, drc.join("dinkes"), pass, &x.recipient);
    let out = drill("simpus");
    let d = last_json(&out);
    assert!(out.status.success(), "{d:#}\n{}", executor.log_text());
    assert_eq!(d["state"], "passed", "{d:#}");
    assert_eq!(d["trigger"], "manual");
    let report = &d["report"];
    assert!(
        report["steps"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("`drc-drill` reader key"),
        "{report:#}"
    );
    assert_eq!(report["teardown"]["containers_left"], 0, "{report:#}");
    let id = d["id"].as_str().unwrap();
    assert!(
        drc.join("dinkes/reports/drills/simpus")
            .join(format!("{id}.json"))
            .exists()
    );
    let label = format!("label=io.pulih.recovery={id}");
    assert_eq!(docker::containers(&label), "");

    // Listed, reported (HTML for auditors), and in the compliance view.
    let list = last_json(&run_ok(
        PULIH.ops(url, token).args(["drill", "list", "--json"]),
    ));
    let states: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["passed", "failed"], "{list:#}");
    let html = run_ok(
        PULIH
            .ops(url, token)
            .args(["drill", "report", id, "--html"]),
    );
    let html = String::from_utf8(html.stdout).unwrap();
    assert!(html.contains("PASSED") && html.contains("simpus"), "{html}");
    let c = last_json(&run_ok(
        PULIH.ops(url, token).args(["compliance", "--json"]),
    ));
    let simpus = c["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "simpus")
        .unwrap();
    assert_eq!(simpus["last_drill"]["id"], id, "{simpus:#}");
    assert_eq!(simpus["last_drill"]["state"], "passed");
    assert_eq!(simpus["last_drill"]["rto_met"], true, "{simpus:#}");
    assert_eq!(simpus["drill_overdue"], false);

    // No consent, no drill: refused by the controller, nothing queued.
    let out = drill("arsip");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("bpkad gave no drill consent") && stderr.contains("consent_missing"),
        "{stderr}"
    );
    let list = last_json(&run_ok(
        PULIH.ops(url, token).args(["drill", "list", "--json"]),
    ));
    assert_eq!(list.as_array().unwrap().len(), 2);
    wait_for(
        "nothing left of the drills",
        Duration::from_secs(5),
        &logs,
        || std::fs::read_dir(&x.scratch).map_or(true, |d| d.count() == 0),
    );
    // The executor stays for the failover.
    executor
}

/// A real failover, run by the same executor: the admin token is not
/// enough; with the failover authorization and an order, the app is
/// restored onto the DRC's service network with its port published, left
/// running, the switch hook runs, and the inventory shows it failed over.
fn failover_and_failback_through_the_controller(
    url: &str,
    token: &Path,
    failover_token: &Path,
    dir: &Path,
    port: u16,
    volume_data: &Path,
    prod: &str,
) {
    let svc = format!("pulih-test-svc-{}", std::process::id());
    let mut cleanup = Cleanup::new();
    cleanup.network(&svc);
    let failover = |auth: &Path| {
        PULIH
            .ops(url, token)
            .args([
                "failover",
                "start",
                "simpus",
                "--order",
                "Surat Perintah Wali Kota Bontang No. 1/2026 (test)",
                "--wait",
                "--timeout",
                "300",
                "--json",
                "--authorization-file",
            ])
            .arg(auth)
            .output()
            .unwrap()
    };
    // The admin token alone cannot fail a server over.
    let out = failover(token);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("failover_not_authorized"), "{stderr}");

    let out = failover(failover_token);
    let d = last_json(&out);
    assert!(
        out.status.success(),
        "{d:#}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(d["kind"], "failover");
    assert_eq!(d["state"], "passed", "{d:#}");
    let id = d["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("failover-"), "{id}");
    let label = format!("label=io.pulih.recovery={id}");
    let running = docker(&["ps", "-q", "--filter", &label]);
    for c in running.lines() {
        cleanup.container(c);
    }
    assert_eq!(running.lines().count(), 2, "both containers keep running");
    let steps = report::steps(&d["report"]);
    assert_eq!(steps.last(), Some(&"switch"), "{d:#}");
    assert!(
        d["report"]["teardown"].is_null(),
        "a failover is not torn down"
    );
    // The service answers on its published port, from the host.
    let body = http_get("127.0.0.1", port, "/index.html");
    assert!(body.contains("rows: 3"), "{body}");
    // The switch hook ran with the server and the containers' addresses.
    let switched = std::fs::read_to_string(dir.join("switched")).unwrap();
    assert!(
        switched.starts_with("failover simpus db=") && switched.contains("web="),
        "{switched}"
    );
    // The inventory knows.
    let v = last_json(&run_ok(
        PULIH
            .ops(url, token)
            .args(["servers", "show", "simpus", "--json"]),
    ));
    assert_eq!(v["failed_over"], id.as_str(), "{v:#}");

    // One failover at a time.
    let out = failover(failover_token);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("already has failover"),
        "{stderr}"
    );

    // While failed over, the DRC copy changes.
    let db = format!("pulih-{id}-db");
    docker(&[
        "exec",
        &db,
        "sh",
        "-c",
        "echo changed-at-the-drc > /data/changed.html",
    ]);
    assert!(!volume_data.join("changed.html").exists());

    // Failback: the DRC stops, replicates back, tears down; the primary's
    // agent restores in place, its container stopped meanwhile.
    let out = PULIH
        .ops(url, token)
        .args([
            "failback",
            "simpus",
            "--order",
            "Surat Perintah Wali Kota Bontang No. 2/2026 (test)",
            "--wait",
            "--timeout",
            "300",
            "--json",
            "--authorization-file",
        ])
        .arg(failover_token)
        .output()
        .unwrap();
    let fb = last_json(&out);
    assert!(
        out.status.success(),
        "{fb:#}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(fb["drc"]["kind"], "failback");
    assert_eq!(fb["drc"]["state"], "passed", "{fb:#}");
    assert_eq!(fb["primary"]["kind"], "failback");
    assert_eq!(fb["primary"]["state"], "succeeded", "{fb:#}");
    assert_eq!(
        std::fs::read_to_string(volume_data.join("changed.html")).unwrap(),
        "changed-at-the-drc\n",
        "the change made at the DRC is at the primary"
    );
    assert!(volume_data.join("index.html").exists());
    // What the primary had is kept beside it, not deleted.
    let kept = std::fs::read_dir(volume_data.parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok())
        .any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("._data.pulih-before-")
        });
    assert!(kept, "the replaced data is kept beside the volume's data");
    assert_eq!(
        docker::status(prod),
        "running",
        "the primary's container runs again"
    );
    // The DRC copy is gone, the switch went back, the inventory agrees.
    assert_eq!(docker::containers(&label), "");
    let switched = std::fs::read_to_string(dir.join("switched")).unwrap();
    assert!(switched.starts_with("failback simpus"), "{switched}");
    let v = last_json(&run_ok(
        PULIH
            .ops(url, token)
            .args(["servers", "show", "simpus", "--json"]),
    ));
    assert!(v["failed_over"].is_null(), "{v:#}");
    // Failing back again: nothing is failed over.
    let out = PULIH
        .ops(url, token)
        .args([
            "failback",
            "simpus",
            "--order",
            "again",
            "--authorization-file",
        ])
        .arg(failover_token)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("not failed over"),
        "{stderr}"
    );
}

#[test]
fn a_replication_naming_a_docker_volume_that_does_not_exist_fails_with_its_name() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let missing = format!("pulih-test-missing-{}", std::process::id());
    let site = start_site(
        dir,
        &manifests(
            &dir.join("drc"),
            &missing,
            "nobody",
            "pulih-test/none:1",
            "x",
            1,
        ),
        "dinkes",
        "simpus",
    );
    let out = PULIH
        .ops(&site.url, &site.token)
        .args(["replicate", "simpus", "--wait", "--json"])
        .output()
        .unwrap();
    let run = last_json(&out);
    assert_eq!(run["state"], "failed", "{run}");
    let errors = run["errors"].to_string();
    assert!(
        errors.contains(&format!("dockerVolume `{missing}` does not exist")),
        "{errors}"
    );
}

/// A controller, the walidata's repository, and one enrolled agent for
/// `server` of `agency`, with the manifests `yaml` applied.
struct Site {
    controller: Proc,
    agent: Proc,
    url: String,
    token: std::path::PathBuf,
    drc: std::path::PathBuf,
    pass: std::path::PathBuf,
    manifests: std::path::PathBuf,
}

fn start_site(dir: &Path, yaml: &str, agency: &str, server: &str) -> Site {
    let drc = dir.join("drc");
    let pass = dir.join("walidata.pass");
    write_secret(&pass, "walidata\n");
    let key = dir.join("agent.key");
    repo::init_with_agent_key(&PULIH, &drc.join(agency), &pass, &key);
    let mdir = manifests::write(&dir.join("manifests"), yaml);
    let (controller, url, token) =
        Controller::start(&PULIH, dir, "pusat_data_subnets = [\"127.0.0.0/8\"]\n").into_parts();
    run_ok(PULIH.ops(&url, &token).args(["apply", "-f"]).arg(&mdir));
    let agent = Agent {
        url: &url,
        server,
        key: &key,
        dir: dir.join("agent"),
        extra: String::new(),
    }
    .start(&PULIH, &enroll_token(PULIH.ops(&url, &token), server));
    wait_for_heartbeat(&PULIH, &url, &token, server, &[&agent, &controller]);
    Site {
        controller,
        agent,
        url,
        token,
        drc,
        pass,
        manifests: mdir,
    }
}

/// `psql -c SQL` as postgres in `container`: (success, stdout + stderr).
fn psql(container: &str, sql: &str) -> (bool, String) {
    let out = Command::new("docker")
        .args([
            "exec", container, "psql", "-U", "postgres", "-At", "-c", sql,
        ])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string()
            + &String::from_utf8_lossy(&out.stderr),
    )
}

/// Production: PostgreSQL in container `prod` on volume `volume` (both
/// removed by `cleanup`), with three citizens in its table.
fn start_production_postgres(cleanup: &mut Cleanup, volume: &str, prod: &str) {
    cleanup.volume(volume);
    cleanup.run(
        prod,
        &[
            "-v",
            &format!("{volume}:/var/lib/postgresql/data"),
            images::postgres(),
            "pg-start",
        ],
    );
    wait_for(
        "PostgreSQL in production",
        Duration::from_secs(60),
        &[],
        || psql(prod, "SELECT 1").0,
    );
    let (ok, out) = psql(
        prod,
        "CREATE TABLE citizens (id int PRIMARY KEY, name text NOT NULL); \
         INSERT INTO citizens VALUES (1, 'Siti Aminah'), (2, 'Budi Santoso'), (3, 'La Ode Hamid');",
    );
    assert!(ok, "{out}");
}

fn postgres_manifests(drc: &Path, volume: &str, prod_db: &str) -> String {
    let pg = images::POSTGRES;
    drc_target(&drc.display().to_string())
        + &agency(DISDUKCAPIL, true)
        + &server("siak", "disdukcapil")
        + &paused_volume_spec(volume, prod_db)
        + &format!(
            r#"  recovery:
    containers:
      - name: db
        image: {pg}
        command: [pg-start]
        volumes: [{{source: {volume}, target: /var/lib/postgresql/data}}]
      - name: web
        image: {pg}
        command: [busybox, httpd, -f, -p, "8080", -h, /www]
        startOrder: 1
    healthChecks:
      - name: postgres-accepts-connections
        tcp: {{container: db, port: 5432}}
        timeout: 60s
      - name: the-rows-are-there
        exec: {{container: db, command: [psql, -U, postgres, -At, -c, "SELECT count(*) FROM citizens"], expectOutputContains: "3"}}
        timeout: 60s
      - name: the-web-app-shows-the-rows
        http: {{container: web, port: 8080, path: /cgi-bin/rows, expectStatus: 200, expectBodyContains: "Siti Aminah"}}
        timeout: 30s
"#,
        )
}

/// DESIGN.md §6 with a real database: PostgreSQL from Debian's packages in
/// a volume and a web app reading it; the agent replicates the volume (the
/// database paused meanwhile) and the image; at the DRC, with production
/// gone, a drill restores both on an internal network, the web app answers
/// with the rows, RTO/RPO are reported, and nothing is left behind.
#[test]
fn a_drill_of_a_postgresql_app_from_debian_answers_with_its_rows_and_leaves_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let tag = format!("pg{}", std::process::id());
    let volume = format!("pulih-test-{tag}-pgdata");
    let prod = format!("pulih-test-{tag}-db");
    let mut cleanup = Cleanup::new();
    start_production_postgres(&mut cleanup, &volume, &prod);

    let site = start_site(
        dir,
        &postgres_manifests(&dir.join("drc"), &volume, &prod),
        "disdukcapil",
        "siak",
    );
    let run = last_json(&run_ok(PULIH.ops(&site.url, &site.token).args([
        "replicate",
        "siak",
        "--wait",
        "--json",
    ])));
    assert_eq!(
        run["state"],
        "succeeded",
        "{run}\n{}",
        site.agent.log_text()
    );
    assert_eq!(
        docker::status(&prod),
        "running",
        "the pause hook was undone"
    );
    site.agent.stop();
    site.controller.stop();

    // Production is gone; the DRC has its store, the manifests, the key.
    docker(&["rm", "-f", &prod]);
    docker(&["volume", "rm", &volume]);
    cleanup.forget();
    let scratch = dir.join("scratch");
    let out = PULIH
        .cmd()
        .args(["drc", "drill", "siak", "--json", "-f"])
        .arg(&site.manifests)
        .arg("--repo")
        .arg(site.drc.join("disdukcapil"))
        .arg("--passphrase-file")
        .arg(&site.pass)
        .arg("--scratch-dir")
        .arg(&scratch)
        .output()
        .unwrap();
    let report = last_json(&out);
    assert!(
        out.status.success(),
        "drill failed: {report:#}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(report["state"], "passed", "{report:#}");
    let load = report["steps"][4]["detail"].as_str().unwrap();
    assert!(load.contains(images::POSTGRES), "{load}");
    let checks = report::checks(&report);
    assert_eq!(
        checks,
        [
            ("postgres-accepts-connections", true),
            ("the-rows-are-there", true),
            ("the-web-app-shows-the-rows", true)
        ],
        "{report:#}"
    );
    assert!(report["rto_seconds"].as_f64().unwrap() > 0.0);
    assert!(report["rpo_seconds"].as_f64().unwrap() >= 0.0);
    let id = report["id"].as_str().unwrap();
    let label = format!("label=io.pulih.recovery={id}");
    assert_eq!(docker::containers(&label), "");
    assert_eq!(docker(&["network", "ls", "-q", "--filter", &label]), "");
    assert_eq!(docker(&["volume", "ls", "-q", "--filter", &label]), "");
    assert_eq!(report["teardown"]["volumes_left"], 0);
    assert_eq!(std::fs::read_dir(&scratch).unwrap().count(), 0);
}

/// Failover and failback of the two-container app with a real database:
/// the agent replicates PostgreSQL's volume; a failover brings the database
/// and the web app up at the DRC (the web app answers with the rows); a
/// citizen registered at the DRC while failed over is in the primary's
/// database after the failback, which restarts the primary's container on
/// the restored volume and leaves nothing running at the DRC.
#[test]
fn a_postgresql_app_fails_over_takes_a_new_row_at_the_drc_and_failback_brings_it_home() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let tag = format!("pgfo{}", std::process::id());
    let volume = format!("pulih-test-{tag}-pgdata");
    let prod = format!("pulih-test-{tag}-db");
    let svc = format!("pulih-test-{tag}-svc");
    let mut cleanup = Cleanup::new();
    start_production_postgres(&mut cleanup, &volume, &prod);

    let drc = dir.join("drc");
    let repo = drc.join("disdukcapil");
    let pass = dir.join("walidata.pass");
    write_secret(&pass, "walidata disdukcapil\n");
    let key = dir.join("siak.key");
    repo::init_with_agent_key(&PULIH, &repo, &pass, &key);
    let mdir = manifests::write(
        &dir.join("manifests"),
        &postgres_manifests(&drc, &volume, &prod),
    );
    let (c, failover_token) = start_failover_controller(&PULIH, dir, &mdir);
    let (controller, url, token) = c.into_parts();
    let agent = start_agent(&url, &token, dir, "siak", &key, &pass);
    let executor = start_executor(&url, &token, dir, &repo, &pass, &svc);
    cleanup.network(&svc);
    let procs = [&controller, &agent, &executor];
    wait_for_heartbeat(&PULIH, &url, &token, "siak", &procs);
    let run = last_json(&run_ok(PULIH.ops(&url, &token).args([
        "replicate",
        "siak",
        "--wait",
        "--json",
    ])));
    assert_eq!(run["state"], "succeeded", "{run}\n{}", agent.log_text());

    let order = |n: u32| format!("Surat Perintah Wali Kota Bontang No. {n}/2026 (test)");
    let out = PULIH
        .ops(&url, &token)
        .args(["failover", "start", "siak", "--order", &order(3)])
        .args(["--wait", "--timeout", "300", "--json"])
        .arg("--authorization-file")
        .arg(&failover_token)
        .output()
        .unwrap();
    let d = last_json(&out);
    assert!(
        out.status.success(),
        "{d:#}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(d["state"], "passed", "{d:#}\n{}", executor.log_text());
    let id = d["id"].as_str().unwrap().to_string();
    let label = format!("label=io.pulih.recovery={id}");
    cleanup.containers_matching(&label);
    let checks = report::checks(&d["report"]);
    assert_eq!(
        checks,
        [
            ("postgres-accepts-connections", true),
            ("the-rows-are-there", true),
            ("the-web-app-shows-the-rows", true)
        ],
        "{d:#}"
    );
    let v = last_json(&run_ok(
        PULIH
            .ops(&url, &token)
            .args(["servers", "show", "siak", "--json"]),
    ));
    assert_eq!(v["failed_over"], id.as_str(), "{v:#}");

    // Production is down meanwhile (the reason for the failover); at the
    // DRC a citizen is registered, and the web app there shows her.
    docker(&["stop", &prod]);
    let (ok, out) = psql(
        &format!("pulih-{id}-db"),
        "INSERT INTO citizens VALUES (4, 'Wayan Sudarma (registered at the DRC)')",
    );
    assert!(ok, "{out}");
    let rows = docker(&[
        "exec",
        &format!("pulih-{id}-web"),
        "busybox",
        "wget",
        "-qO-",
        "http://127.0.0.1:8080/cgi-bin/rows",
    ]);
    assert!(rows.contains("Wayan Sudarma"), "{rows}");

    let out = PULIH
        .ops(&url, &token)
        .args(["failback", "siak", "--order", &order(4)])
        .args(["--wait", "--timeout", "300", "--json"])
        .arg("--authorization-file")
        .arg(&failover_token)
        .output()
        .unwrap();
    let fb = last_json(&out);
    assert!(
        out.status.success(),
        "{fb:#}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        agent.log_text()
    );
    assert_eq!(fb["drc"]["state"], "passed", "{fb:#}");
    assert_eq!(fb["primary"]["state"], "succeeded", "{fb:#}");

    // The primary's PostgreSQL runs again on the restored volume, with the
    // row made at the DRC and the rows it had.
    assert_eq!(
        docker::status(&prod),
        "running",
        "the primary's container runs again"
    );
    let mut names = String::new();
    wait_for(
        "PostgreSQL at the primary after the failback",
        Duration::from_secs(60),
        &procs,
        || {
            let (ok, out) = psql(&prod, "SELECT name FROM citizens ORDER BY id");
            names = out;
            ok
        },
    );
    assert_eq!(
        names.lines().collect::<Vec<_>>(),
        [
            "Siti Aminah",
            "Budi Santoso",
            "La Ode Hamid",
            "Wayan Sudarma (registered at the DRC)"
        ],
        "{names}"
    );
    // Nothing of the failover is left at the DRC; the inventory agrees.
    assert_eq!(docker::containers(&label), "");
    assert_eq!(docker(&["volume", "ls", "-q", "--filter", &label]), "");
    let v = last_json(&run_ok(
        PULIH
            .ops(&url, &token)
            .args(["servers", "show", "siak", "--json"]),
    ));
    assert!(v["failed_over"].is_null(), "{v:#}");
}

/// The plan's failover needs the approval of the head of DKIS; its pre and
/// post steps append a line to `steps_log`.
fn plan_manifests(
    drc: &Path,
    (db_image, image): (&str, &str),
    db_src: &Path,
    web_src: &Path,
    steps_log: &Path,
) -> String {
    let (db, web, log) = (db_src.display(), web_src.display(), steps_log.display());
    drc_target(&drc.display().to_string())
        + &agency(DINKES, true)
        + &server("simpus-db", "dinkes")
        + &format!(
            r#"  sources: [{{path: {db}}}]
  schedule: {{cron: "0 0 1 1 *"}}
  recovery:
    containers:
      - name: db
        image: {db_image}
        command: [httpd, -f, -p, "5432", -h, /data]
        volumes: [{{source: {db}, target: /data}}]
    healthChecks:
      - name: db-listens
        tcp: {{container: db, port: 5432}}
"#
        )
        + &server("simpus-web", "dinkes")
        + &format!(
            r#"  sources: [{{path: {web}}}]
  schedule: {{cron: "0 0 1 1 *"}}
  recovery:
    containers:
      - name: web
        image: {image}
        command: [httpd, -f, -p, "8080", -h, /cfg]
        volumes: [{{source: {web}, target: /cfg}}]
    healthChecks:
      - name: web-is-ready
        exec: {{container: web, command: [cat, /cfg/ready], expectOutputContains: "yes"}}
        timeout: 3s
      - name: web-reaches-its-db
        exec: {{container: web, command: [wget, -q, -O, "-", "http://db:5432/index.html"], expectOutputContains: "rows: 3"}}
        timeout: 10s
---
apiVersion: pulih.io/v1alpha1
kind: RecoveryPlan
metadata: {{name: layanan-simpus}}
spec:
  groups:
    - name: data
      servers: [simpus-db]
    - name: aplikasi
      servers: [simpus-web]
      dependsOn: [data]
  approvals: [dkis-head]
  preSteps:
    - {{name: umumkan-gangguan, command: [sh, -c, "echo $PULIH_PHASE $PULIH_STEP $PULIH_PLAN_RUN >> {log}"]}}
  postSteps:
    - {{name: umumkan-pulih, command: [sh, -c, "echo $PULIH_PHASE $PULIH_STEP $PULIH_PLAN_RUN >> {log}"]}}
"#,
        )
}

/// Starts a DRC executor for target `drc` of the controller at `url`, with
/// `service_network` for failovers; the walidata grants its `drc-drill`
/// key the repository `repo`.
fn start_executor(
    url: &str,
    token: &Path,
    dir: &Path,
    repo: &Path,
    pass: &Path,
    service_network: &str,
) -> Proc {
    let x = Executor::prepare(&PULIH, url, token, dir, service_network, "");
    repo::grant_drill(&PULIH, repo, pass, &x.recipient);
    x.spawn(&PULIH)
}

/// Starts the agent of `server` (it may restore: the walidata gave it the
/// passphrase, for failbacks).
fn start_agent(url: &str, token: &Path, dir: &Path, server: &str, key: &Path, pass: &Path) -> Proc {
    Agent {
        url,
        server,
        key,
        dir: dir.join(server),
        extra: format!(
            "reader_passphrase_file = {:?}\n",
            pass.display().to_string()
        ),
    }
    .start(&PULIH, &enroll_token(PULIH.ops(url, token), server))
}

/// A recovery plan (a database group, then the app group that depends on
/// it): a drill of the plan runs the groups in order on one internal
/// network (the app's check reaches the database by name), stops at the
/// failed group, says why, refuses a second run while stopped, resumes
/// once the app is fixed, retrying only what failed, and is torn down
/// when it ends. A failover of the
/// plan brings both up on the DRC's shared service network (the app
/// reaches its database by name), and a rollback fails both back, later
/// group first, the primaries restoring what the DRC had.
#[test]
fn a_recovery_plan_drills_group_by_group_stops_at_a_failed_group_resumes_and_its_failover_rolls_back()
 {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let image = images::busybox();
    let svc = format!("pulih-test-plansvc-{}", std::process::id());
    // The database's image has a tag of its own, gone from the engine by
    // the drill: the drill loads it from the snapshot, and the run's
    // teardown removes it again.
    let db_image = format!("pulih-test/plandb:t{}", std::process::id());
    // Whatever a failed run of this test left: the recovered containers
    // (on the service network, or kept up by a drill run), then networks.
    let mut cleanup = Cleanup::new();
    // Undone last, once no container uses it.
    cleanup.tag(image, &db_image);
    cleanup.later(&[
        "network",
        "prune",
        "-f",
        "--filter",
        "label=io.pulih.plan-run",
    ]);
    cleanup.network(&svc);
    cleanup.containers_matching("label=io.pulih.plan-run");
    cleanup.containers_matching(&format!("network={svc}"));
    let steps_log = dir.join("steps.log");
    let db_src = dir.join("db-src");
    let web_src = dir.join("web-src");
    std::fs::create_dir_all(&db_src).unwrap();
    std::fs::create_dir_all(&web_src).unwrap();
    std::fs::write(db_src.join("index.html"), "rows: 3\n").unwrap();
    // The app is not ready: its group will fail.
    std::fs::write(web_src.join("ready"), "no\n").unwrap();

    let drc = dir.join("drc");
    let repo = drc.join("dinkes");
    let pass = dir.join("dinkes.pass");
    write_secret(&pass, "walidata dinkes\n");
    repo::init(&PULIH, &repo, &pass);
    let key = |name: &str| {
        let k = dir.join(format!("{name}.key"));
        repo::add_agent_key(&PULIH, &repo, &pass, &k);
        k
    };
    let (db_key, web_key) = (key("db"), key("web"));
    let mdir = manifests::write(
        &dir.join("manifests"),
        &plan_manifests(&drc, (&db_image, image), &db_src, &web_src, &steps_log),
    );
    let (c, failover_token) = start_failover_controller(&PULIH, dir, &mdir);
    let (controller, url, token) = c.into_parts();
    let db_agent = start_agent(&url, &token, dir, "simpus-db", &db_key, &pass);
    let web_agent = start_agent(&url, &token, dir, "simpus-web", &web_key, &pass);
    let executor = start_executor(&url, &token, dir, &repo, &pass, &svc);
    let procs = [&controller, &db_agent, &web_agent, &executor];
    let replicate = |server: &str| {
        wait_for_heartbeat(&PULIH, &url, &token, server, &procs);
        let run = last_json(&run_ok(PULIH.ops(&url, &token).args([
            "replicate",
            server,
            "--wait",
            "--json",
        ])));
        assert_eq!(run["state"], "succeeded", "{run}");
    };
    replicate("simpus-db");
    replicate("simpus-web");
    docker(&["rmi", &db_image]);

    // The drill of the plan: data passes, aplikasi fails, the run stops.
    let drill = || {
        PULIH
            .ops(&url, &token)
            .args([
                "drill",
                "run",
                "layanan-simpus",
                "--wait",
                "--timeout",
                "300",
                "--json",
            ])
            .output()
            .unwrap()
    };
    let out = drill();
    let run = last_json(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{run:#}\n{}",
        executor.log_text()
    );
    assert_eq!(run["state"], "stopped", "{run:#}");
    assert_eq!(run["kind"], "drill");
    let groups = run["groups"].as_array().unwrap();
    assert_eq!(groups[0]["name"], "data");
    assert_eq!(groups[0]["state"], "passed", "{run:#}");
    assert_eq!(groups[1]["state"], "failed", "{run:#}");
    let error = run["error"].as_str().unwrap();
    assert!(
        error.contains("group aplikasi") && error.contains("simpus-web"),
        "{error}"
    );
    // In order: the app's drill was queued once the database's passed.
    let db_drill = &groups[0]["recoveries"][0];
    let web_drill = &groups[1]["recoveries"][0];
    assert!(
        web_drill["created_at"].as_str().unwrap() >= db_drill["finished_at"].as_str().unwrap(),
        "{run:#}"
    );
    assert_eq!(web_drill["trigger"], "plan");
    let id = run["id"].as_str().unwrap().to_string();
    // A drill needs no approval and runs no pre/post step (they act on
    // the world: status pages, notices).
    assert!(
        run.get("approvals").is_none() && run.get("steps").is_none(),
        "{run:#}"
    );
    assert!(!steps_log.exists());

    // Stopped, it holds the plan: a second run waits for ops.
    let out = drill();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains(&id) && stderr.contains("resume it"),
        "{stderr}"
    );

    // Fixed at the primary and replicated: resume retries only the app.
    std::fs::write(web_src.join("ready"), "yes\n").unwrap();
    replicate("simpus-web");
    let out = PULIH
        .ops(&url, &token)
        .args([
            "plan",
            "resume",
            &id,
            "--wait",
            "--timeout",
            "300",
            "--json",
        ])
        .output()
        .unwrap();
    let run = last_json(&out);
    assert!(out.status.success(), "{run:#}\n{}", executor.log_text());
    assert_eq!(run["state"], "passed", "{run:#}");
    assert_eq!(run["groups"][0]["recoveries"].as_array().unwrap().len(), 1);
    assert_eq!(run["groups"][1]["recoveries"].as_array().unwrap().len(), 2);
    assert!(run["rto_seconds"].as_f64().unwrap() > 0.0, "{run:#}");
    let list = last_json(&run_ok(
        PULIH.ops(&url, &token).args(["plan", "list", "--json"]),
    ));
    assert_eq!(list[0]["id"], id.as_str());
    // The database stayed up on the run's internal network for the app
    // (the app's check reached it by name); with the run over, the
    // executor removes both and reports it.
    let mut run = run;
    wait_for(
        "the plan run's teardown",
        Duration::from_secs(30),
        &procs,
        || {
            run = last_json(&run_ok(
                PULIH
                    .ops(&url, &token)
                    .args(["plan", "show", &id, "--json"]),
            ));
            run["teardown"]["drc"].is_object()
        },
    );
    let t = &run["teardown"]["drc"];
    assert_eq!(t["containers_removed"], 2, "{run:#}");
    assert_eq!(t["networks_removed"], 1, "{run:#}");
    assert_eq!(t["containers_left"], 0, "{run:#}");
    assert_eq!(t["scratch_removed"], true, "{run:#}");
    // The database drill, kept up, loaded its image: gone with the run.
    assert_eq!(t["images_removed"], 1, "{run:#}");
    assert!(
        !docker::docker_output(&["image", "inspect", &db_image])
            .status
            .success(),
        "the plan drill's loaded image is gone"
    );
    assert_eq!(
        docker(&[
            "ps",
            "-aq",
            "--filter",
            &format!("label=io.pulih.plan-run={id}")
        ]),
        ""
    );

    // The failover of the plan: needs the failover authorization; both
    // servers come up on the shared service network, the app can reach
    // its database by name, and both are failed over in the inventory.
    let out = PULIH
        .ops(&url, &token)
        .args(["failover", "start", "layanan-simpus", "--order", "test"])
        .arg("--authorization-file")
        .arg(&token)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("failover_not_authorized"),
        "{out:?}"
    );
    // The plan names an approver: the run waits for the head of DKIS.
    let out = PULIH
        .ops(&url, &token)
        .args([
            "failover",
            "start",
            "layanan-simpus",
            "--order",
            "SK Wali Kota 12/2026",
            "--json",
        ])
        .arg("--authorization-file")
        .arg(&failover_token)
        .output()
        .unwrap();
    let run = last_json(&out);
    assert!(out.status.success(), "{run:#}");
    assert_eq!(run["state"], "awaiting-approval", "{run:#}");
    assert_eq!(run["approvals"][0]["role"], "dkis-head", "{run:#}");
    assert!(run["approvals"][0]["approved_by"].is_null(), "{run:#}");
    assert!(
        run["groups"][0]["recoveries"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let fid = run["id"].as_str().unwrap().to_string();
    let approve = |role: &str, file: &Path| {
        PULIH
            .ops(&url, &token)
            .args(["plan", "approve", &fid, "--role", role])
            .args(["--name", "Kepala DKIS (test)"])
            .args(["--wait", "--timeout", "300", "--json"])
            .arg("--authorization-file")
            .arg(file)
            .output()
            .unwrap()
    };
    // The failover authorization is no approval.
    let out = approve("dkis-head", &failover_token);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("approval_not_authorized"),
        "{stderr}"
    );
    let out = approve("dkis-head", &dir.join("approver-dkis-head.token"));
    let run = last_json(&out);
    assert!(out.status.success(), "{run:#}\n{}", executor.log_text());
    assert_eq!(run["state"], "passed", "{run:#}");
    assert_eq!(run["kind"], "failover");
    assert_eq!(
        run["approvals"][0]["approved_by"], "Kepala DKIS (test)",
        "{run:#}"
    );
    // The pre step ran before the first group was queued, the post step
    // once every group passed.
    assert_eq!(run["steps"][0]["phase"], "pre", "{run:#}");
    assert_eq!(run["steps"][0]["ok"], true, "{run:#}");
    assert!(
        run["steps"][0]["at"].as_str().unwrap()
            <= run["groups"][0]["recoveries"][0]["created_at"]
                .as_str()
                .unwrap(),
        "{run:#}"
    );
    wait_for(
        "the plan's post step",
        Duration::from_secs(30),
        &procs,
        || std::fs::read_to_string(&steps_log).is_ok_and(|l| l.lines().count() == 2),
    );
    assert_eq!(
        std::fs::read_to_string(&steps_log).unwrap(),
        format!("pre umumkan-gangguan {fid}\npost umumkan-pulih {fid}\n")
    );
    // Approving again: the run is no longer waiting.
    let out = approve("dkis-head", &dir.join("approver-dkis-head.token"));
    assert!(!out.status.success());
    let web = docker(&[
        "ps",
        "-q",
        "--filter",
        &format!("network={svc}"),
        "--filter",
        "label=io.pulih.recovery",
        "--filter",
        &format!(
            "label=io.pulih.recovery={}",
            run["groups"][1]["recoveries"][0]["id"].as_str().unwrap()
        ),
    ]);
    assert!(!web.is_empty(), "{run:#}");
    let page = docker(&[
        "exec",
        &web,
        "wget",
        "-q",
        "-O",
        "-",
        "http://db:5432/index.html",
    ]);
    assert_eq!(page, "rows: 3");
    let servers = last_json(&run_ok(PULIH.ops(&url, &token).args(["servers", "--json"])));
    for s in servers.as_array().unwrap() {
        let by = s["failed_over"].as_str().unwrap_or_default();
        assert!(by.starts_with(&fid), "{s:#}");
    }

    // A change at the DRC while failed over, then the rollback: both
    // failed back (the app first), the primaries restore the DRC's data.
    docker(&["exec", &web, "sh", "-c", "echo changed-at-drc > /cfg/ready"]);
    let out = PULIH
        .ops(&url, &token)
        .args([
            "plan",
            "rollback",
            &fid,
            "--order",
            "SK Wali Kota 13/2026",
            "--wait",
            "--timeout",
            "300",
            "--json",
        ])
        .arg("--authorization-file")
        .arg(&failover_token)
        .output()
        .unwrap();
    let run = last_json(&out);
    assert!(out.status.success(), "{run:#}\n{}", executor.log_text());
    assert_eq!(run["state"], "rolled-back", "{run:#}");
    let rollback: Vec<&str> = run["rollback"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["server"].as_str().unwrap())
        .collect();
    assert_eq!(rollback, ["simpus-web", "simpus-db"], "{run:#}");
    for d in run["rollback"].as_array().unwrap() {
        let primary = format!("{}-primary", d["id"].as_str().unwrap());
        wait_for(
            "the primary's failback restore",
            Duration::from_secs(60),
            &procs,
            || {
                let runs = last_json(&run_ok(PULIH.ops(&url, &token).args(["runs", "--json"])));
                runs.as_array()
                    .unwrap()
                    .iter()
                    .any(|r| r["run_key"] == primary.as_str() && r["state"] == "succeeded")
            },
        );
    }
    assert_eq!(
        std::fs::read_to_string(web_src.join("ready")).unwrap(),
        "changed-at-drc\n"
    );
    assert_eq!(
        docker::containers(&format!("network={svc}")),
        "",
        "nothing of the failover is left running"
    );
    let servers = last_json(&run_ok(PULIH.ops(&url, &token).args(["servers", "--json"])));
    for s in servers.as_array().unwrap() {
        assert!(s["failed_over"].is_null(), "{s:#}");
    }
    for p in [executor, web_agent, db_agent, controller] {
        p.stop();
    }
}

/// A server whose recovery container publishes its port in Docker's
/// `IP:HOST:CONTAINER` form (`127.0.0.1:PORT:8080`).
fn loopback_port_manifests(drc: &Path, image: &str, src: &Path, port: u16) -> String {
    let src = src.display();
    drc_target(&drc.display().to_string())
        + &agency(DISKOMINFO, true)
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
        http: {{container: web, port: 8080, path: /index.html, expectStatus: 200, expectBodyContains: "layanan publik"}}
        timeout: 10s
"#,
        )
}

/// Issue 18, item 9: a failover from the DRC store alone (`pulih drc
/// failover`, no controller) of a server whose recovery container
/// publishes `127.0.0.1:PORT:8080` passes; the app answers on
/// 127.0.0.1:PORT, and the engine bound the port to 127.0.0.1 only.
#[test]
fn a_failover_whose_container_publishes_ip_host_container_answers_on_that_address_only() {
    let image = images::busybox();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let svc = format!("pulih-test-ip{}-svc", std::process::id());
    let mut cleanup = Cleanup::new();
    cleanup.network(&svc);
    // Whatever the failover started: on the service network.
    cleanup.containers_matching(&format!("network={svc}"));

    // The primary's data, replicated once by its agent key (tagged with
    // the server's name, as the agent tags it).
    let src = dir.join("portal");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(
        src.join("index.html"),
        "<p>layanan publik: 7 formulir</p>\n",
    )
    .unwrap();
    let drc = dir.join("drc");
    let repo = drc.join("diskominfo");
    let pass = dir.join("walidata.pass");
    write_secret(&pass, "walidata diskominfo\n");
    let key = dir.join("portal.key");
    repo::init_with_agent_key(&PULIH, &repo, &pass, &key);
    repo::backup_tagged(&PULIH, &repo, &key, "portal", &src);
    let port = free_port();
    let mdir = manifests::write(
        &dir.join("manifests"),
        &loopback_port_manifests(&drc, image, &src, port),
    );

    let out = PULIH
        .cmd()
        .args(["drc", "failover", "portal", "--json", "-f"])
        .arg(&mdir)
        .arg("--repo")
        .arg(&repo)
        .arg("--passphrase-file")
        .arg(&pass)
        .args([
            "--order",
            "Surat Perintah Wali Kota Bontang No. 5/2026 (test)",
        ])
        .args(["--service-network", &svc])
        .arg("--scratch-dir")
        .arg(dir.join("scratch"))
        .output()
        .unwrap();
    let report = last_json(&out);
    assert!(
        out.status.success(),
        "failover failed: {report:#}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(report["kind"], "failover", "{report:#}");
    assert_eq!(report["state"], "passed", "{report:#}");
    assert_eq!(report["checks"][0]["ok"], true, "{report:#}");
    let web = format!("pulih-{}-web", report["id"].as_str().unwrap());
    assert_eq!(docker::status(&web), "running", "a failover keeps running");

    // The app answers on the address its manifest names.
    let answer = http_get("127.0.0.1", port, "/index.html");
    assert!(
        answer.starts_with("HTTP/1.") && answer.contains("layanan publik: 7 formulir"),
        "{answer}"
    );
    // The engine was asked for 127.0.0.1 and published there only.
    let want = serde_json::json!({
        "8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": port.to_string()}]
    });
    let asked: serde_json::Value =
        serde_json::from_str(&docker::inspect(&web, "{{json .HostConfig.PortBindings}}")).unwrap();
    assert_eq!(asked, want);
    let published: serde_json::Value =
        serde_json::from_str(&docker::inspect(&web, "{{json .NetworkSettings.Ports}}")).unwrap();
    assert_eq!(published, want);
}
