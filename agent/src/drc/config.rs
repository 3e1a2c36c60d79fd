//! The DRC executor's configuration (TOML).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use serde::Deserialize;

use crate::config::default_heartbeat;

/// The DRC executor's configuration (TOML).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrcConfig {
    /// The controller's base URL.
    pub controller: String,
    /// The `DrcTarget` (manifest name) this executor serves.
    pub target: String,
    /// Credential and undelivered reports.
    pub state_dir: PathBuf,
    /// The `drc-drill` age identity (`pulih drc keygen`), mode 0600.
    pub identity_file: PathBuf,
    /// A one-time token from `pulih drc enroll-token TARGET`.
    #[serde(default)]
    pub enroll_token_file: Option<PathBuf>,
    /// Where drills restore data on this Docker host (default
    /// `<state_dir>/drills`).
    #[serde(default)]
    pub scratch_dir: Option<PathBuf>,
    /// Default 15s.
    #[serde(default = "default_heartbeat", with = "crate::config::duration")]
    pub heartbeat_interval: Duration,
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Allow plain `http://` to a controller that is not on loopback (its
    /// tokens then cross the network in clear); logged at start.
    #[serde(default)]
    pub insecure_http: bool,
    #[serde(default)]
    pub bind_address: Option<std::net::IpAddr>,
    /// Failover: the Docker network services run on at the DRC (made if
    /// absent). Default `pulih-service`.
    #[serde(default = "default_service_network")]
    pub service_network: String,
    /// Failover: the command that moves DNS/IP to the DRC once every check
    /// passed, e.g. `["/usr/local/bin/pulih-switch-dns"]`; it gets
    /// PULIH_SERVER, PULIH_RECOVERY_ID, PULIH_NETWORK and PULIH_ADDRESSES
    /// (`name=ip,…`) in its environment. Empty: switch by hand.
    #[serde(default)]
    pub switch_hook: Vec<String>,
}

fn default_service_network() -> String {
    "pulih-service".into()
}

impl DrcConfig {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            anyhow::anyhow!("cannot read DRC executor config {}: {e}", path.display())
        })?;
        toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("DRC executor config {}: {e}", path.display()))
    }

    /// Where drills restore data.
    pub(crate) fn scratch(&self) -> PathBuf {
        self.scratch_dir
            .clone()
            .unwrap_or_else(|| self.state_dir.join("drills"))
    }
}
