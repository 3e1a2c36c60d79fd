//! Issue 20, finding 7: a recovered container is the server's code and is
//! treated as hostile. From inside a drill's container nothing on the DRC
//! host answers (any of its addresses) and no other drill's network is
//! reachable; a container that eats memory or processes is stopped by its
//! limits, and the drill fails saying so and leaves nothing behind. The
//! drills run with `pulih drc drill` on the real Docker engine; the probe
//! is a shell script in the server's own snapshot.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use pulih_test_support::docker::{self, Cleanup, docker, images};
use pulih_test_support::manifests::{self, DISKOMINFO, agency, drc_target, server};
use pulih_test_support::{Pulih, repo, wait_for, write_secret};

const PULIH: Pulih = Pulih::new(env!("CARGO_BIN_EXE_pulih"));

/// Tries every `HOST PORT` line of /www/targets (written by the test into
/// the drill's restored data once both drills are up) and prints how many
/// answered, and the process's capabilities.
const PROBE: &str = r#"#!/bin/sh
i=0
while [ ! -s /www/targets ]; do
  i=$((i+1)); [ "$i" -gt 100 ] && { echo "no targets yet"; exit 1; }
  sleep 0.2
done
n=0; r=0
while read -r host port; do
  n=$((n+1))
  if echo x | nc -w 2 "$host" "$port" >/dev/null 2>&1; then r=$((r+1)); echo "reached $host $port"; fi
done < /www/targets
grep -E '^(CapEff|NoNewPrivs)' /proc/self/status
echo "reached $r of $n"
"#;

/// Counts the connections a listener on every host address accepts.
struct Listener {
    port: u16,
    accepted: Arc<AtomicUsize>,
}

fn listen(addr: &str) -> Listener {
    let l = TcpListener::bind(addr).unwrap();
    let port = l.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        for c in l.incoming() {
            if c.is_ok() {
                count.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    Listener { port, accepted }
}

/// One agency's repository at `<dir>/drc/diskominfo` holding one snapshot
/// of each `(server, source dir)`, each server with its own agent key.
fn repository(dir: &Path, servers: &[(&str, &Path)]) -> (PathBuf, PathBuf) {
    let repo = dir.join("drc").join("diskominfo");
    let pass = dir.join("walidata.pass");
    write_secret(&pass, "walidata diskominfo\n");
    repo::init(&PULIH, &repo, &pass);
    for (name, src) in servers {
        let key = dir.join(format!("{name}.key"));
        repo::add_agent_key(&PULIH, &repo, &pass, &key);
        repo::backup_tagged(&PULIH, &repo, &key, name, src);
    }
    (repo, pass)
}

/// `pulih drc drill SERVER`, its scratch under `scratch`, started.
fn spawn_drill(server: &str, mdir: &Path, repo: &Path, pass: &Path, scratch: &Path) -> Child {
    PULIH
        .cmd()
        .args(["drc", "drill", server, "--json", "-f"])
        .arg(mdir)
        .arg("--repo")
        .arg(repo)
        .arg("--passphrase-file")
        .arg(pass)
        .arg("--scratch-dir")
        .arg(scratch)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The drill's report (its last JSON line) once it ended.
fn report_of(child: Child) -> serde_json::Value {
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().unwrap_or_else(|| {
        panic!(
            "the drill printed nothing; stderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}

/// The id of the one drill running with scratch dir `scratch`.
fn drill_id(scratch: &Path) -> String {
    let mut id = None;
    wait_for(
        "the drill's scratch dir",
        Duration::from_secs(60),
        &[],
        || {
            id = std::fs::read_dir(scratch)
                .ok()
                .and_then(|mut d| d.next())
                .and_then(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned());
            id.is_some()
        },
    );
    id.unwrap()
}

/// Waits until container `name` runs; its address on its one network.
fn running_address(name: &str) -> String {
    wait_for(
        &format!("container {name} running"),
        Duration::from_secs(120),
        &[],
        || {
            !docker::containers(&format!("name={name}")).is_empty()
                && docker::status(name) == "running"
        },
    );
    docker::inspect(
        name,
        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
    )
}

fn gateway(network: &str) -> String {
    docker(&[
        "network",
        "inspect",
        "-f",
        "{{range .IPAM.Config}}{{.Gateway}}{{end}}",
        network,
    ])
}

/// The nft table holding network `network`'s isolation rules.
fn table_of(network: &str) -> String {
    let bridge = docker(&[
        "network",
        "inspect",
        "-f",
        r#"{{index .Options "com.docker.network.bridge.name"}}"#,
        network,
    ]);
    assert!(
        bridge.starts_with("pd-"),
        "{network} is on bridge `{bridge}`"
    );
    format!("pulih_{}", bridge.replace('-', "_"))
}

fn table_exists(table: &str) -> bool {
    Command::new("nft")
        .args(["list", "table", "inet", table])
        .output()
        .unwrap()
        .status
        .success()
}

/// Every IPv4 address of the host's interfaces but loopback (inside a
/// container 127.0.0.1 is the container's own).
fn host_addresses() -> Vec<String> {
    let out = Command::new("ip")
        .args(["-j", "-4", "addr"])
        .output()
        .unwrap();
    let links: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut addrs = Vec::new();
    for link in links.as_array().unwrap() {
        for a in link["addr_info"].as_array().into_iter().flatten() {
            let ip = a["local"].as_str().unwrap_or_default();
            if !ip.is_empty() && !ip.starts_with("127.") {
                addrs.push(ip.to_string());
            }
        }
    }
    addrs
}

fn step<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no step `{name}`: {report:#}"))
}

fn check<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no check `{name}`: {report:#}"))
}

fn assert_torn_down(report: &serde_json::Value) {
    let t = &report["teardown"];
    assert_eq!(t["containers_left"], 0, "{report:#}");
    assert_eq!(t["networks_left"], 0, "{report:#}");
    assert_eq!(t["errors"].as_array().map_or(0, Vec::len), 0, "{report:#}");
}

#[test]
fn drill_isolation_a_drills_container_reaches_neither_the_drc_host_nor_another_drills_network() {
    docker::require_engine();
    let image = images::busybox();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut cleanup = Cleanup::new();
    let host = listen("0.0.0.0:0");

    // The finding, on this engine: a plain `internal` network (what drills
    // used) lets its container reach a service on the host through its
    // gateway. The probe below would see that.
    let control = format!("pulih-test-ctl-{}", std::process::id());
    docker(&["network", "create", "--internal", &control]);
    cleanup.network(&control);
    let out = docker::docker_output(&[
        "run",
        "--rm",
        "--network",
        &control,
        image,
        "sh",
        "-c",
        &format!("echo x | nc -w 2 {} {}", gateway(&control), host.port),
    ]);
    assert!(
        out.status.success() && host.accepted.load(Ordering::SeqCst) >= 1,
        "the control probe on a plain internal network did not reach the host: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    host.accepted.store(0, Ordering::SeqCst);

    // Two servers: `sonde` runs the probe (its own data holds the script),
    // `tetangga` is another drill's web server, up at the same time.
    let sonde = dir.join("sonde");
    std::fs::create_dir_all(&sonde).unwrap();
    std::fs::write(sonde.join("probe.sh"), PROBE).unwrap();
    std::fs::write(sonde.join("index.html"), "sonde\n").unwrap();
    let tetangga = dir.join("tetangga");
    std::fs::create_dir_all(&tetangga).unwrap();
    std::fs::write(tetangga.join("index.html"), "tetangga\n").unwrap();
    let (repo, pass) = repository(dir, &[("sonde", &sonde), ("tetangga", &tetangga)]);
    let yaml = drc_target(&dir.join("drc").display().to_string())
        + &agency(DISKOMINFO, true)
        + &server("sonde", "diskominfo")
        + &format!(
            r#"  sources: [{{path: {src}}}]
  recovery:
    containers:
      - name: probe
        image: {image}
        command: [httpd, -f, -p, "8080", -h, /www]
        volumes: [{{source: {src}, target: /www}}]
    healthChecks:
      - name: the-host-reaches-the-drill
        tcp: {{container: probe, port: 8080}}
      - name: nothing-answers-the-drill
        exec: {{container: probe, command: [sh, /www/probe.sh], expectOutputContains: "reached 0 of"}}
        timeout: 60s
"#,
            src = sonde.display()
        )
        + &server("tetangga", "diskominfo")
        + &format!(
            r#"  sources: [{{path: {src}}}]
  recovery:
    containers:
      - name: web
        image: {image}
        command: [httpd, -f, -p, "8080", -h, /www]
        volumes: [{{source: {src}, target: /www}}]
    healthChecks:
      - name: held-up-until-released
        exec: {{container: web, command: [sh, -c, "while [ ! -e /www/release ]; do sleep 0.5; done; echo released"], expectOutputContains: released}}
        timeout: 180s
"#,
            src = tetangga.display()
        );
    let mdir = manifests::write(&dir.join("manifests"), &yaml);
    let tables_before = Command::new("nft")
        .args(["list", "tables"])
        .output()
        .unwrap();

    let scratch_t = dir.join("scratch-tetangga");
    let drill_t = spawn_drill("tetangga", &mdir, &repo, &pass, &scratch_t);
    let id_t = drill_id(&scratch_t);
    cleanup.containers_matching(&format!("label=io.pulih.recovery={id_t}"));
    let web = running_address(&format!("pulih-{id_t}-web"));
    let net_t = format!("pulih-{id_t}");
    let table_t = table_of(&net_t);
    assert!(table_exists(&table_t));

    let scratch_s = dir.join("scratch-sonde");
    let drill_s = spawn_drill("sonde", &mdir, &repo, &pass, &scratch_s);
    let id_s = drill_id(&scratch_s);
    cleanup.containers_matching(&format!("label=io.pulih.recovery={id_s}"));
    running_address(&format!("pulih-{id_s}-probe"));
    let net_s = format!("pulih-{id_s}");
    let table_s = table_of(&net_s);
    assert!(
        table_exists(&table_s),
        "rules in place while the drill runs"
    );

    // Every address of the DRC host (its own drill bridge's gateway, the
    // other drill's, docker0's, the LAN's), and the other drill's server.
    let mut targets: Vec<(String, u16)> = vec![
        (gateway(&net_s), host.port),
        (gateway(&net_t), host.port),
        (gateway("bridge"), host.port),
        (web.clone(), 8080),
    ];
    targets.extend(host_addresses().into_iter().map(|a| (a, host.port)));
    targets.sort();
    targets.dedup();
    let text: String = targets.iter().map(|(h, p)| format!("{h} {p}\n")).collect();
    let restored_s = scratch_s
        .join(&id_s)
        .join("restore")
        .join(sonde.strip_prefix("/").unwrap());
    std::fs::write(restored_s.join("targets"), &text).unwrap();

    let report = report_of(drill_s);
    assert_eq!(report["state"], "passed", "{text}\n{report:#}");
    let probed = check(&report, "nothing-answers-the-drill")["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        probed.contains(&format!("reached 0 of {}", targets.len())),
        "{text}\n{probed}"
    );
    assert_eq!(host.accepted.load(Ordering::SeqCst), 0, "{probed}");
    // The host still reaches the drill (its checks do): replies pass.
    assert_eq!(
        check(&report, "the-host-reaches-the-drill")["ok"],
        true,
        "{report:#}"
    );
    // No raw packets, no device nodes, nothing gained through exec.
    let caps = probed
        .split("CapEff:")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .map(|h| u64::from_str_radix(h, 16).unwrap())
        .unwrap_or_else(|| panic!("no CapEff in {probed}"));
    assert_eq!(caps & (1 << 13), 0, "CAP_NET_RAW is held: {caps:x}");
    assert_eq!(caps & (1 << 27), 0, "CAP_MKNOD is held: {caps:x}");
    assert!(probed.contains("NoNewPrivs:\t1"), "{probed}");
    assert!(
        step(&report, "network")["detail"]
            .as_str()
            .unwrap()
            .contains(&table_s),
        "{report:#}"
    );
    assert_torn_down(&report);
    assert!(!table_exists(&table_s), "the rules go with the drill");

    // The other drill was up all along; released, it passes and goes too.
    let restored_t = scratch_t
        .join(&id_t)
        .join("restore")
        .join(tetangga.strip_prefix("/").unwrap());
    std::fs::write(restored_t.join("release"), "").unwrap();
    let report_t = report_of(drill_t);
    assert_eq!(report_t["state"], "passed", "{report_t:#}");
    assert_torn_down(&report_t);
    assert!(!table_exists(&table_t));
    let tables_after = Command::new("nft")
        .args(["list", "tables"])
        .output()
        .unwrap();
    let ours = |o: &std::process::Output| {
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter(|l| l.contains(&table_s) || l.contains(&table_t))
            .count()
    };
    assert_eq!(ours(&tables_before), 0);
    assert_eq!(ours(&tables_after), 0);
}

#[test]
fn drill_isolation_a_container_that_exhausts_memory_or_processes_is_stopped_by_its_limits_and_the_drill_fails_cleanly()
 {
    docker::require_engine();
    let image = images::busybox();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut cleanup = Cleanup::new();
    let src = dir.join("rakus");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("index.html"), "rakus\n").unwrap();
    let (repo, pass) = repository(dir, &[("rakus", &src), ("beranak", &src)]);
    let yaml = drc_target(&dir.join("drc").display().to_string())
        + &agency(DISKOMINFO, true)
        + &server("rakus", "diskominfo")
        + &format!(
            r#"  sources: [{{path: {src}}}]
  recovery:
    containers:
      - name: hog
        image: {image}
        command: [sh, -c, "x=aaaaaaaaaaaaaaaa; while :; do x=$x$x; done"]
        limits: {{memory: 32MiB}}
    healthChecks:
      - name: still-alive
        exec: {{container: hog, command: [sh, -c, "sleep 20; echo alive"], expectOutputContains: alive}}
        timeout: 30s
"#,
            src = src.display()
        )
        + &server("beranak", "diskominfo")
        + &format!(
            r#"  sources: [{{path: {src}}}]
  recovery:
    containers:
      - name: forks
        image: {image}
        command: [sh, -c, "sh -c 'while :; do sleep 600 & done'; exec sleep 600"]
        limits: {{pids: 32}}
    healthChecks:
      - name: answers
        exec: {{container: forks, command: [sh, -c, "sleep 2; for i in 1 2 3 4; do sleep 1 & done; wait; echo answered"], expectOutputContains: answered}}
        timeout: 10s
"#,
            src = src.display()
        );
    let mdir = manifests::write(&dir.join("manifests"), &yaml);

    for (name, expect) in [
        (
            "rakus",
            "killed for going over its memory limit (33554432 bytes",
        ),
        ("beranak", "at its process limit or close to it (3"),
    ] {
        let scratch = dir.join(format!("scratch-{name}"));
        let drill = spawn_drill(name, &mdir, &repo, &pass, &scratch);
        let id = drill_id(&scratch);
        cleanup.containers_matching(&format!("label=io.pulih.recovery={id}"));
        let net = format!("pulih-{id}");
        wait_for("the drill network", Duration::from_secs(60), &[], || {
            docker::docker_output(&["network", "inspect", &net])
                .status
                .success()
        });
        let table = table_of(&net);
        let report = report_of(drill);
        assert_eq!(report["state"], "failed", "{report:#}");
        let error = report["error"].as_str().unwrap();
        assert!(error.contains(expect), "{name}: {error}");
        let start = report["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"].as_str().is_some_and(|n| n.starts_with("start ")))
            .unwrap_or_else(|| panic!("no start step: {report:#}"));
        assert!(
            start["detail"].as_str().unwrap().contains("limits:"),
            "{report:#}"
        );
        assert_torn_down(&report);
        assert!(!scratch.join(&id).exists(), "scratch data removed");
        assert!(!table_exists(&table), "the rules go with the drill");
    }
}

/// A failover's containers serve their users (a published port) and reach
/// each other on the DRC's service network, but nothing on the DRC host
/// answers them: rules on the service network's bridge too, also when the
/// network was there before Pulih (the engine named its bridge).
#[test]
fn drill_isolation_a_failovers_container_serves_its_published_port_but_reaches_no_drc_host_service()
{
    docker::require_engine();
    let image = images::busybox();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut cleanup = Cleanup::new();
    let host = listen("0.0.0.0:0");
    let svc = format!("pulih-test-iso{}-svc", std::process::id());
    docker(&["network", "create", &svc]);
    cleanup.network(&svc);
    cleanup.containers_matching(&format!("network={svc}"));
    let bridge = format!(
        "br-{}",
        &docker(&["network", "inspect", "-f", "{{.Id}}", &svc])[..12]
    );

    let src = dir.join("portal");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("probe.sh"), PROBE).unwrap();
    std::fs::write(src.join("index.html"), "layanan publik\n").unwrap();
    let mut targets = vec![(gateway(&svc), host.port), (gateway("bridge"), host.port)];
    targets.extend(host_addresses().into_iter().map(|a| (a, host.port)));
    targets.sort();
    targets.dedup();
    let text: String = targets.iter().map(|(h, p)| format!("{h} {p}\n")).collect();
    std::fs::write(src.join("targets"), &text).unwrap();
    let (repo, pass) = repository(dir, &[("portal", &src)]);
    let port = pulih_test_support::net::free_port();
    let yaml = drc_target(&dir.join("drc").display().to_string())
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
      - name: nothing-on-the-host-answers
        exec: {{container: web, command: [sh, /www/probe.sh], expectOutputContains: "reached 0 of"}}
        timeout: 30s
"#,
            src = src.display()
        );
    let mdir = manifests::write(&dir.join("manifests"), &yaml);
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
            "Surat Perintah Wali Kota Bontang No. 9/2026 (test)",
        ])
        .args(["--service-network", &svc])
        .arg("--scratch-dir")
        .arg(dir.join("scratch"))
        .output()
        .unwrap();
    let report = pulih_test_support::last_json(&out);
    assert_eq!(report["state"], "passed", "{text}\n{report:#}");
    let probed = check(&report, "nothing-on-the-host-answers")["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        probed.contains(&format!("reached 0 of {}", targets.len())),
        "{text}\n{probed}"
    );
    assert_eq!(host.accepted.load(Ordering::SeqCst), 0, "{probed}");
    let table = format!("pulih_{}", bridge.replace('-', "_"));
    assert!(table_exists(&table), "the service network keeps its rules");
    assert!(
        step(&report, "network")["detail"]
            .as_str()
            .unwrap()
            .contains(&table),
        "{report:#}"
    );
    // Its users still reach it through the published port.
    let answer = pulih_test_support::net::http_get("127.0.0.1", port, "/index.html");
    assert!(answer.contains("layanan publik"), "{answer}");
    drop(cleanup);
    assert!(!table_exists(&table), "removed with the network");
}
