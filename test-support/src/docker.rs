//! The real Docker engine, through the `docker` CLI: commands, the test
//! images, and the removal of what a test made ([`Cleanup`] for named
//! things, [`Scope`] for everything under a per-run prefix).

pub mod cleanup;
pub mod images;
pub mod scope;

use std::process::{Command, Output};

pub use cleanup::Cleanup;
pub use scope::Scope;

/// Removes network `name`, whatever its outcome, and the isolation rules
/// the DRC executor installed for its bridge (nft table `pulih_<bridge>`;
/// the bridge is the one Pulih named, else Docker's `br-<id>`).
pub fn remove_network(name: &str) {
    let seen = Command::new("docker")
        .args([
            "network",
            "inspect",
            "-f",
            r#"{{.Id}} {{index .Options "com.docker.network.bridge.name"}}"#,
            name,
        ])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let bridge = match seen.split_once(' ') {
        Some((_, b)) if b.starts_with("pd-") => b.to_string(),
        Some((id, _)) if id.len() >= 12 => format!("br-{}", &id[..12]),
        _ => String::new(),
    };
    let _ = Command::new("docker")
        .args(["network", "rm", name])
        .output();
    if !bridge.is_empty() {
        let table = format!("pulih_{}", bridge.replace('-', "_"));
        let _ = Command::new("nft")
            .args(["delete", "table", "inet", &table])
            .output();
    }
}

/// `docker ARGS`, whatever its outcome.
pub fn docker_output(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("the docker CLI")
}

/// `docker ARGS`, which must succeed: its stdout, trimmed.
pub fn docker(args: &[&str]) -> String {
    let out = docker_output(args);
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `docker inspect -f FORMAT OBJECT`.
pub fn inspect(object: &str, format: &str) -> String {
    docker(&["inspect", "-f", format, object])
}

/// A container's state (`running`, `exited`, …).
pub fn status(container: &str) -> String {
    inspect(container, "{{.State.Status}}")
}

/// The ids of the containers (running or not) that match `filter`
/// (`label=…`, `name=…`, `network=…`), one a line; empty when none.
pub fn containers(filter: &str) -> String {
    docker(&["ps", "-aq", "--filter", filter])
}

/// Fails the test, saying why, unless the docker CLI reaches an engine.
pub fn require_engine() {
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
}
