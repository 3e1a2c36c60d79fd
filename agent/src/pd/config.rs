//! A PD server's agent's configuration (TOML).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::config::default_heartbeat;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// The controller's base URL, e.g. `https://pulih.bontangkota.go.id`.
    pub controller: String,
    /// The `Server` (manifest name) this agent protects.
    pub server: String,
    /// Credential, cached assignment, schedule state, undelivered results,
    /// files cache.
    pub state_dir: PathBuf,
    /// The write-only agent key for the agency's repository (made by the
    /// walidata with `pulih repo add-agent-key`).
    pub agent_key_file: PathBuf,
    /// A one-time enrolment token (`pulih servers enroll-token NAME`); read
    /// once, when the agent has no credential yet.
    #[serde(default)]
    pub enroll_token_file: Option<PathBuf>,
    /// Default 15s.
    #[serde(default = "default_heartbeat", with = "crate::config::duration")]
    pub heartbeat_interval: Duration,
    /// PEM certificates to trust for the controller's HTTPS (its own CA),
    /// besides the system's.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Allow plain `http://` to a controller that is not on loopback (its
    /// tokens then cross the network in clear); logged at start.
    #[serde(default)]
    pub insecure_http: bool,
    /// Source address for connections to the controller (multi-homed hosts).
    #[serde(default)]
    pub bind_address: Option<IpAddr>,
    /// Use this repository URL instead of the one the controller assigns.
    #[serde(default)]
    pub repository: Option<String>,
    /// Host name recorded in snapshots (default: the system's).
    #[serde(default)]
    pub hostname: Option<String>,
    /// The walidata's passphrase, present only while the walidata consents
    /// to restore jobs on this server (the agent is otherwise write-only).
    #[serde(default)]
    pub reader_passphrase_file: Option<PathBuf>,
}

impl AgentConfig {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read agent config {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("agent config {}: {e}", path.display()))
    }

    pub fn new(
        controller: String,
        server: String,
        state_dir: PathBuf,
        agent_key_file: PathBuf,
    ) -> Self {
        AgentConfig {
            controller,
            server,
            state_dir,
            agent_key_file,
            enroll_token_file: None,
            heartbeat_interval: default_heartbeat(),
            ca_file: None,
            insecure_http: false,
            bind_address: None,
            repository: None,
            hostname: None,
            reader_passphrase_file: None,
        }
    }
}
