//! Issue 20, hardening: after an end-to-end run with known passphrases,
//! tokens and keys (a controller with failover and approver tokens and a
//! maintenance key, an agent enrolled with a one-time token that holds an
//! agent key and the walidata's passphrase, a replication, a restore job,
//! retention, and requests that fail: a wrong admin token, a wrong
//! passphrase, an enrolment token used twice), none of them appears in any
//! log, error, API reply or file the run left readable by others.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use pulih_test_support::agent::{Agent, enroll_token, wait_for_heartbeat};
use pulih_test_support::controller::Controller;
use pulih_test_support::manifests::{self, DINKES, agency, drc_target, server};
use pulih_test_support::{Pulih, repo, wait_for, write_secret};

const PULIH: Pulih = Pulih::new(env!("CARGO_BIN_EXE_pulih"));

/// The secret values of a key file (agent or maintenance key): every
/// string field of 32 hex digits or more whose name says secret or key
/// (not a public key, not an id).
fn key_secrets(file: &Path) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    let mut out = Vec::new();
    for (name, value) in v.as_object().unwrap() {
        if let Some(s) = value.as_str()
            && (name.contains("secret") || name.contains("key"))
            && !name.contains("public")
            && !name.ends_with("_id")
            && s.len() >= 32
            && s.bytes().all(|b| b.is_ascii_hexdigit())
        {
            out.push(s.to_string());
        }
    }
    assert!(!out.is_empty(), "no secret found in {}", file.display());
    out
}

/// What a command printed, both streams.
fn printed(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Every regular file under `dir` that its group or other users can read.
fn readable_by_others(dir: &Path, found: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let meta = e.path().symlink_metadata().unwrap();
        if meta.is_dir() {
            readable_by_others(&e.path(), found);
        } else if meta.is_file() && meta.permissions().mode() & 0o044 != 0 {
            found.push(e.path());
        }
    }
}

#[test]
fn secrets_never_appear_in_logs_errors_api_replies_or_files_others_can_read() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let nonce: u64 = rand::random();
    let drc = dir.join("drc");
    let repo = drc.join("dinkes");
    let pass = dir.join("dinkes.pass");
    let passphrase = format!("walidata-passphrase-{nonce:016x}");
    write_secret(&pass, &format!("{passphrase}\n"));
    let agent_key = dir.join("simpus.key");
    repo::init(&PULIH, &repo, &pass);
    repo::add_server_key(&PULIH, &repo, &pass, &agent_key, "simpus");
    let keys_dir = dir.join("maintenance-keys");
    std::fs::create_dir_all(&keys_dir).unwrap();
    let maintenance_key = keys_dir.join("dinkes.key");
    repo::add_maintenance_key(&PULIH, &repo, &pass, &maintenance_key);

    let src = dir.join("data").join("simpus");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("pasien.csv"), "id,nama\n1,Siti\n".repeat(500)).unwrap();
    let yaml = drc_target(&drc.display().to_string())
        + &agency(DINKES, false)
        + &server("simpus", "dinkes")
        + &format!(
            "  sources:\n    - path: {}\n  schedule: {{cron: \"0 0 1 1 *\"}}\n  rpo: 1h\n  retention: {{keepLast: 3}}\n",
            src.display()
        );
    let mdir = manifests::write(&dir.join("manifests"), &yaml);
    // A controller with a failover token, an approver's token and the
    // agency's maintenance key.
    let failover_token = dir.join("failover.token");
    write_secret(&failover_token, &format!("failover-token-{nonce:016x}\n"));
    let approver_token = dir.join("approver-dkis-head.token");
    write_secret(&approver_token, &format!("approver-token-{nonce:016x}\n"));
    let controller = Controller::start(
        &PULIH,
        dir,
        &format!(
            "pusat_data_subnets = [\"127.0.0.0/8\"]\nfailover_token_file = {:?}\n[approvers]\ndkis-head = {:?}\n[maintenance]\nschedule = \"0 0 1 1 *\"\nkeys_dir = {:?}\ngrace = \"1s\"\n",
            failover_token.display().to_string(),
            approver_token.display().to_string(),
            keys_dir.display().to_string()
        ),
    );
    controller.apply(&PULIH, &mdir);
    let (controller_proc, url, token) = controller.into_parts();

    let enroll = enroll_token(PULIH.ops(&url, &token), "simpus");
    let agent = Agent {
        url: &url,
        server: "simpus",
        key: &agent_key,
        dir: dir.join("agent"),
        extra: format!(
            "reader_passphrase_file = {:?}\n",
            pass.display().to_string()
        ),
    }
    .start(&PULIH, &enroll);
    wait_for_heartbeat(&PULIH, &url, &token, "simpus", &[&controller_proc, &agent]);

    let mut seen: Vec<(String, String)> = Vec::new();
    let mut ops = |what: &str, args: &[&str]| {
        let out = PULIH.ops(&url, &token).args(args).output().unwrap();
        seen.push((what.to_string(), printed(&out)));
        out
    };
    let out = ops("replicate", &["replicate", "simpus", "--wait", "--json"]);
    assert!(out.status.success(), "{}", printed(&out));
    let target = dir.join("restored");
    let out = ops(
        "restore",
        &[
            "restore",
            "simpus",
            "--wait",
            "--json",
            "--target",
            &target.display().to_string(),
        ],
    );
    assert!(out.status.success(), "{}", printed(&out));
    let out = ops(
        "maintenance run",
        &["maintenance", "run", "--wait", "--json"],
    );
    assert!(out.status.success(), "{}", printed(&out));
    for (what, args) in [
        ("servers", vec!["servers", "--json"]),
        ("status", vec!["status", "--json"]),
        ("compliance", vec!["compliance", "--json"]),
        ("runs", vec!["runs", "--json"]),
        ("maintenance", vec!["maintenance", "--json"]),
        ("drills", vec!["drill", "list", "--json"]),
        ("plans", vec!["plan", "list", "--json"]),
    ] {
        ops(what, &args);
    }

    // Requests that fail, with a secret of the wrong kind or a used one.
    let wrong = dir.join("wrong.token");
    let wrong_token = format!("wrong-admin-token-{nonce:016x}");
    write_secret(&wrong, &wrong_token);
    let out = PULIH
        .ops(&url, &wrong)
        .args(["servers", "--json"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    seen.push(("a wrong admin token".into(), printed(&out)));
    let bad_pass = dir.join("bad.pass");
    let bad_passphrase = format!("wrong-passphrase-{nonce:016x}");
    write_secret(&bad_pass, &bad_passphrase);
    let out = PULIH
        .cmd()
        .args(["repo", "snapshots", "--repo"])
        .arg(&repo)
        .arg("--passphrase-file")
        .arg(&bad_pass)
        .output()
        .unwrap();
    assert!(!out.status.success());
    seen.push(("a wrong passphrase".into(), printed(&out)));
    let again = Agent {
        url: &url,
        server: "simpus",
        key: &agent_key,
        dir: dir.join("agent-again"),
        extra: String::new(),
    }
    .start(&PULIH, &enroll);
    wait_for(
        "the second enrolment refused",
        Duration::from_secs(30),
        &[&again],
        || again.log_text().to_lowercase().contains("enrol"),
    );
    std::thread::sleep(Duration::from_secs(1));
    again.stop();
    agent.stop();
    controller_proc.stop();

    // The secrets, as they are in their files.
    let mut secrets: Vec<(String, String)> = vec![
        ("the walidata's passphrase".into(), passphrase),
        ("the wrong passphrase".into(), bad_passphrase),
        ("the wrong admin token".into(), wrong_token),
        ("the enrolment token".into(), enroll.trim().to_string()),
    ];
    for (what, f) in [
        ("the admin token", &token),
        ("the failover token", &failover_token),
        ("the approver's token", &approver_token),
    ] {
        secrets.push((
            what.into(),
            std::fs::read_to_string(f).unwrap().trim().to_string(),
        ));
    }
    for s in key_secrets(&agent_key) {
        secrets.push(("the agent key".into(), s));
    }
    for s in key_secrets(&maintenance_key) {
        secrets.push(("the maintenance key".into(), s));
    }
    // The agent's credential from its enrolment (in its state dir, 0600).
    let credential = std::fs::read_to_string(dir.join("agent/state/credential")).unwrap();
    secrets.push((
        "the agent's credential".into(),
        credential.trim().to_string(),
    ));
    assert!(secrets.iter().all(|(_, s)| s.len() >= 16), "{secrets:?}");

    // Where they must not be: every log, every reply and error, every
    // file of the run that others can read.
    let mut places = seen;
    for log in std::fs::read_dir(dir).unwrap().flatten() {
        let p = log.path();
        if p.extension().is_some_and(|e| e == "log") {
            places.push((
                p.display().to_string(),
                std::fs::read_to_string(&p).unwrap(),
            ));
        }
    }
    for a in ["agent", "agent-again"] {
        let p = dir.join(a).join("agent.log");
        places.push((
            p.display().to_string(),
            std::fs::read_to_string(&p).unwrap(),
        ));
    }
    let mut open = Vec::new();
    readable_by_others(dir, &mut open);
    assert!(!open.is_empty(), "the run left no file others can read?");
    for f in &open {
        let bytes = std::fs::read(f).unwrap();
        places.push((
            format!(
                "{} (mode {:o})",
                f.display(),
                f.metadata().unwrap().permissions().mode() & 0o777
            ),
            String::from_utf8_lossy(&bytes).into_owned(),
        ));
    }
    let leaks: Vec<String> = places
        .iter()
        .flat_map(|(place, text)| {
            secrets
                .iter()
                .filter(|(_, s)| text.contains(s.as_str()))
                .map(move |(what, _)| format!("{what} in {place}"))
        })
        .collect();
    assert!(leaks.is_empty(), "secrets leaked:\n{}", leaks.join("\n"));
    assert!(places.len() > 15, "looked in only {} places", places.len());
}
