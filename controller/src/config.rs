//! The controller's configuration (TOML), overridable by `PULIH_*`
//! environment variables and flags (applied by the CLI).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use pulih_model::manifest::values::DurationText;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControllerConfig {
    /// Address the API listens on (default 127.0.0.1:7300).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Where the SQLite catalog and the admin token live.
    pub state_dir: PathBuf,
    /// A file holding the admin token; default `STATE_DIR/admin.token`,
    /// created with a random token on first start.
    #[serde(default)]
    pub admin_token_file: Option<PathBuf>,
    /// The Pusat Data's subnets (assigned by DKIS): an agent seen from
    /// elsewhere is not centralized, whatever its manifest says.
    #[serde(default)]
    pub pusat_data_subnets: Vec<IpNet>,
    /// The DRC's subnets.
    #[serde(default)]
    pub drc_subnets: Vec<IpNet>,
    /// Scheduled times are spread over up to this much (default 10m;
    /// `0s` for none).
    #[serde(default = "default_jitter", with = "duration_or_zero")]
    pub schedule_jitter: Duration,
    /// An agent unseen for this long counts as offline (default 2m).
    #[serde(default = "default_offline", with = "duration_or_zero")]
    pub agent_offline_after: Duration,
    /// Rewrite `path:` sources under this directory (used by `pulih dev`).
    #[serde(default)]
    pub dev_source_root: Option<PathBuf>,
    /// Put every DrcTarget's repositories under `DIR/<target>` instead of
    /// the target's URL (used by `pulih dev`).
    #[serde(default)]
    pub dev_store_root: Option<PathBuf>,
    /// Serve HTTPS with this certificate chain (PEM) and key (PEM, readable
    /// by its owner only); both or neither. Without them the API is plain HTTP,
    /// for loopback and `pulih dev` only.
    #[serde(default)]
    pub tls_cert_file: Option<PathBuf>,
    /// Serve plain HTTP on an address that is not loopback (tokens then
    /// cross the network in clear); refused otherwise, logged when set.
    #[serde(default)]
    pub insecure_http: bool,
    #[serde(default)]
    pub tls_key_file: Option<PathBuf>,
    /// A second secret, apart from the admin token, that a real failover
    /// needs (held by whoever may order one, e.g. the head of DKIS).
    /// Without it failover is disabled.
    #[serde(default)]
    pub failover_token_file: Option<PathBuf>,
    /// `[approvers]`: per role a RecoveryPlan's `approvals` may name
    /// (`walidata`, `dkis-head`, `regional-secretary`), the file of the
    /// secret its holder approves a failover of the plan with.
    #[serde(default)]
    pub approvers: std::collections::BTreeMap<pulih_model::manifest::types::KeyHolderRole, PathBuf>,
    /// Retention on the controller's own schedule; off when absent.
    #[serde(default)]
    pub maintenance: Option<MaintenanceConfig>,
    /// Requests per second one client address may make (bursts of
    /// `rate_limit_burst`); over it, 429 `rate_limited`. 0: no limit.
    #[serde(default = "default_rate")]
    pub rate_limit_per_second: f64,
    #[serde(default = "default_burst")]
    pub rate_limit_burst: f64,
    /// `[gateway]`: issue each enrolling agent (and DRC executor) its
    /// credential for the append-only DRC gateway.
    #[serde(default)]
    pub gateway: Option<GatewayIssuer>,
}

/// `[gateway]`: the gateway key (`pulih drc gateway-key`, the gateway's
/// own `key_file`) from which enrolment derives each agent's gateway
/// credential; no secret is stored and the gateway need not be reachable.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayIssuer {
    pub key_file: PathBuf,
}

/// `[maintenance]`: forget and prune every agency repository with the
/// maintenance keys the walidata gave (FORMAT.md §12), never a reader key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceConfig {
    /// Cron (5 or 6 fields) in `timezone`; default daily at 03:00.
    #[serde(default = "default_maintenance_cron")]
    pub schedule: pulih_model::manifest::values::CronExpr,
    /// Default Asia/Makassar (WITA); also the day boundary of keep-daily etc.
    #[serde(default)]
    pub timezone: pulih_model::manifest::values::TimeZone,
    /// `<perangkat daerah name>.key` per agency (`pulih repo add-maintenance-key`).
    pub keys_dir: PathBuf,
    /// Between condemning a pack and deleting it; longer than any backup
    /// runs (default 24h).
    #[serde(default = "default_grace", with = "duration_or_zero")]
    pub grace: Duration,
    /// The controller's own (delete-capable) S3 credentials, as files;
    /// otherwise the environment's.
    #[serde(default)]
    pub s3_access_key_id_file: Option<PathBuf>,
    #[serde(default)]
    pub s3_secret_access_key_file: Option<PathBuf>,
}

fn default_maintenance_cron() -> pulih_model::manifest::values::CronExpr {
    "0 3 * * *".parse().expect("a valid cron")
}

fn default_grace() -> Duration {
    Duration::from_secs(24 * 3600)
}

fn default_rate() -> f64 {
    100.0
}

fn default_burst() -> f64 {
    300.0
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7300))
}

fn default_jitter() -> Duration {
    Duration::from_secs(600)
}

fn default_offline() -> Duration {
    Duration::from_secs(120)
}

mod duration_or_zero {
    use super::*;
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        if s.trim() == "0" || s.trim() == "0s" {
            return Ok(Duration::ZERO);
        }
        s.parse::<DurationText>()
            .map(|d| d.0)
            .map_err(serde::de::Error::custom)
    }
}

impl ControllerConfig {
    /// Opens a repository's store with the controller's own credentials:
    /// the `[maintenance]` S3 credential files if set, otherwise the
    /// environment's.
    pub fn open_store(&self, url: &str) -> anyhow::Result<pulih_core::storage::Store> {
        use pulih_core::storage::read_secret_file;
        let files = self.maintenance.as_ref().and_then(|m| {
            Some((
                m.s3_access_key_id_file.as_ref()?,
                m.s3_secret_access_key_file.as_ref()?,
            ))
        });
        let creds = match files {
            Some((a, s)) => Some((read_secret_file(a)?, read_secret_file(s)?)),
            None => None,
        };
        Ok(pulih_core::storage::Store::open_with(
            url,
            false,
            creds.as_ref().map(|(a, s)| (a.as_str(), s.as_str())),
        )?)
    }

    /// A configuration with defaults for everything but the state dir.
    pub fn new(state_dir: PathBuf) -> Self {
        ControllerConfig {
            listen: default_listen(),
            insecure_http: false,
            state_dir,
            admin_token_file: None,
            pusat_data_subnets: Vec::new(),
            drc_subnets: Vec::new(),
            schedule_jitter: default_jitter(),
            agent_offline_after: default_offline(),
            dev_source_root: None,
            dev_store_root: None,
            tls_cert_file: None,
            tls_key_file: None,
            failover_token_file: None,
            gateway: None,
            rate_limit_per_second: default_rate(),
            rate_limit_burst: default_burst(),
            approvers: Default::default(),
            maintenance: None,
        }
    }

    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            anyhow::anyhow!("cannot read controller config {}: {e}", path.display())
        })?;
        toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("controller config {}: {e}", path.display()))
    }

    pub fn admin_token_path(&self) -> PathBuf {
        self.admin_token_file
            .clone()
            .unwrap_or_else(|| self.state_dir.join("admin.token"))
    }
}
