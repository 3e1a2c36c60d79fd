//! `pulih agent` (a Pusat Data server's agent): enrolment, start-up, and
//! waiting for its first heartbeat.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::process::{Proc, last_json, run_ok};
use crate::pulih::Pulih;
use crate::secret::write_secret;
use crate::wait::wait_for;

/// A one-time enrolment token for `server`, asked with `ops` (an ops
/// command: `Pulih::ops`, maybe with more environment such as a CA file).
pub fn enroll_token(mut ops: Command, server: &str) -> String {
    let t = last_json(&run_ok(ops.args([
        "servers",
        "enroll-token",
        server,
        "--json",
    ])));
    t["token"].as_str().unwrap().to_string()
}

/// What an agent is started with.
pub struct Agent<'a> {
    /// The controller's URL.
    pub url: &'a str,
    pub server: &'a str,
    /// Its agent key (from `pulih repo add-agent-key`).
    pub key: &'a Path,
    /// Its own directory: state, enrolment token, config, log.
    pub dir: PathBuf,
    /// More `agent.toml` lines (`reader_passphrase_file`, `bind_address`,
    /// `ca_file`).
    pub extra: String,
}

impl Agent<'_> {
    /// Writes the enrolment token and `agent.toml` (heartbeat every
    /// second) and starts the agent.
    pub fn start(self, pulih: &Pulih, enroll_token: &str) -> Proc {
        std::fs::create_dir_all(&self.dir).unwrap();
        let tfile = self.dir.join("enroll.token");
        write_secret(&tfile, enroll_token);
        let cfg = self.dir.join("agent.toml");
        std::fs::write(
            &cfg,
            format!(
                "controller = {:?}\nserver = {:?}\nstate_dir = {:?}\nagent_key_file = {:?}\nenroll_token_file = {:?}\nheartbeat_interval = \"1s\"\n{}",
                self.url,
                self.server,
                self.dir.join("state").display().to_string(),
                self.key.display().to_string(),
                tfile.display().to_string(),
                self.extra,
            ),
        )
        .unwrap();
        Proc::spawn(
            self.server,
            pulih.cmd().args(["agent", "--config"]).arg(&cfg),
            self.dir.join("agent.log"),
        )
    }
}

/// Whether the controller has heard from `server`'s agent.
pub fn agent_seen(pulih: &Pulih, url: &str, token: &Path, server: &str) -> bool {
    let out = pulih
        .ops(url, token)
        .args(["servers", "--json"])
        .output()
        .unwrap();
    out.status.success()
        && last_json(&out)
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == server && s["agent_last_seen"].is_string())
}

/// Waits (30 s) for the first heartbeat of `server`'s agent.
pub fn wait_for_heartbeat(pulih: &Pulih, url: &str, token: &Path, server: &str, logs: &[&Proc]) {
    wait_for(
        "the agent's first heartbeat",
        Duration::from_secs(30),
        logs,
        || agent_seen(pulih, url, token, server),
    );
}
