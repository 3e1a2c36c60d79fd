//! The gateway's own configuration file (TOML). Everything that decides
//! what a client may do — the agencies, their quotas and granted
//! executors, the revoked credentials, the retention floor — is here and
//! nowhere else: no API of the controller or the gateway changes it, so a
//! stolen admin token or maintenance credential cannot shorten the floor.
//! The file is read again when it changes (every [`RELOAD_EVERY`]), so a
//! revocation or a new agency needs no restart.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// How often the gateway looks whether its configuration file changed.
pub const RELOAD_EVERY: Duration = Duration::from_secs(2);

/// The default retention floor: no object younger is ever deleted.
pub const DEFAULT_RETENTION_FLOOR_DAYS: u64 = 30;

/// The default largest object one PUT may carry (the engine's packs are at
/// most 64 MiB).
pub const DEFAULT_MAX_OBJECT_BYTES: u64 = 256 << 20;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// PEM certificate chain and private key: the gateway serves HTTPS.
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    /// Plain HTTP on an address that is not loopback (refused otherwise).
    #[serde(default)]
    pub insecure_http: bool,
    /// Where the gateway keeps its index (`index.sqlite`): which objects
    /// exist, when each was received and by which credential.
    pub state_dir: PathBuf,
    /// The 32-byte secret (64 hex digits, mode 0600) every issued
    /// credential's secret is derived from (`pulih drc gateway-key`).
    pub key_file: PathBuf,
    /// Where the objects go: `s3://BUCKET/PREFIX?endpoint=…` (credentials
    /// from the usual `AWS_*`/`PULIH_S3_*_FILE` environment, never seen by
    /// agents) or a directory. Agency `A`'s objects live under `A/`.
    pub upstream: String,
    /// The upstream S3 store's credentials, in files readable by their
    /// owner only (else the `AWS_*`/`PULIH_S3_*_FILE` environment).
    pub upstream_access_key_id_file: Option<PathBuf>,
    pub upstream_secret_access_key_file: Option<PathBuf>,
    /// The one bucket the gateway serves; in it, agency `A`'s objects are
    /// those under `A/` (a DrcTarget URL `s3://BUCKET?endpoint=…` gives
    /// each agency's repository `s3://BUCKET/A?endpoint=…`).
    #[serde(default = "default_bucket")]
    pub bucket: String,
    /// No object younger than this many days is deleted, by anyone.
    #[serde(default = "default_floor")]
    pub retention_floor_days: u64,
    /// The largest object one PUT may carry, bytes.
    #[serde(default = "default_max_object")]
    pub max_object_bytes: u64,
    /// The most bytes of PUT bodies held in memory at once (each body is
    /// read whole before it goes upstream); a PUT waits for room.
    #[serde(default = "default_max_buffered")]
    pub max_buffered_bytes: u64,
    /// A PUT body must arrive at this rate at least (after 60 s of
    /// grace): one of `len` bytes gets `60 + len / rate` seconds, then is
    /// refused (`RequestTimeout`), so a slow sender cannot hold the body
    /// budget. 0 = no deadline.
    #[serde(default = "default_min_upload_rate")]
    pub min_upload_bytes_per_second: u64,
    /// The most PUTs one credential has under way at once; more are
    /// answered `SlowDown` (503, which S3 clients retry). 0 = no limit.
    #[serde(default = "default_max_puts")]
    pub max_puts_per_credential: usize,
    /// Requests one credential may make per second, in bursts of
    /// `rate_limit_burst`; over it `SlowDown` (503, which S3 clients
    /// retry). 0 = no limit. Changes apply within 2 s, as the config's.
    #[serde(default = "default_rate")]
    pub rate_limit_per_second: f64,
    #[serde(default = "default_burst")]
    pub rate_limit_burst: f64,
    /// The one credential that may delete (the controller's maintenance, or
    /// the walidata's own `repo prune`).
    pub maintenance: Option<MaintenanceConfig>,
    /// Issued credentials no longer accepted (their access key ids).
    #[serde(default)]
    pub revoked: Vec<String>,
    /// The controller whose revocation feed the gateway follows (the
    /// credentials it issued at enrolment and replaced); none: only
    /// `revoked`.
    pub controller: Option<ControllerFeed>,
    /// The agencies: each one's prefix in the bucket is its name.
    #[serde(default, rename = "agency")]
    pub agencies: Vec<AgencyConfig>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceConfig {
    pub access_key: String,
    /// The secret, in a file readable by its owner only.
    pub secret_file: PathBuf,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControllerFeed {
    /// The controller's URL (`https://…`; plain `http://` only on
    /// loopback).
    pub url: String,
    /// A CA to trust for it beside the system's roots (the DKIS CA).
    pub ca_file: Option<PathBuf>,
    /// Seconds between two asks.
    #[serde(default = "default_poll")]
    pub poll_seconds: u64,
}

fn default_poll() -> u64 {
    30
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgencyConfig {
    pub name: String,
    /// The most bytes the agency's bucket may hold; none = no quota.
    pub quota_bytes: Option<u64>,
    /// DRC targets whose executor may read this agency's bucket (for
    /// drills and failovers) and write its reports.
    #[serde(default)]
    pub executors: Vec<String>,
}

fn default_bucket() -> String {
    "pulih".into()
}

fn default_floor() -> u64 {
    DEFAULT_RETENTION_FLOOR_DAYS
}

fn default_max_object() -> u64 {
    DEFAULT_MAX_OBJECT_BYTES
}

fn default_max_buffered() -> u64 {
    1 << 30
}

fn default_min_upload_rate() -> u64 {
    64 << 10
}

fn default_max_puts() -> usize {
    8
}

fn default_rate() -> f64 {
    1000.0
}

fn default_burst() -> f64 {
    2000.0
}

impl GatewayConfig {
    /// How long a PUT body of `len` bytes may take to arrive
    /// (`min_upload_bytes_per_second`), or None for no deadline.
    pub fn upload_deadline(&self, len: u64) -> Option<std::time::Duration> {
        let rate = self.min_upload_bytes_per_second;
        (rate > 0).then(|| std::time::Duration::from_secs(60 + len / rate))
    }
}

impl GatewayConfig {
    pub fn load(path: &Path) -> anyhow::Result<GatewayConfig> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
        let c: GatewayConfig =
            toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        c.validate()
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        Ok(c)
    }

    fn validate(&self) -> Result<(), String> {
        if self.tls_cert_file.is_some() != self.tls_key_file.is_some() {
            return Err("set both tls_cert_file and tls_key_file, or neither".into());
        }
        if self.tls_cert_file.is_none() && !self.listen.ip().is_loopback() && !self.insecure_http {
            return Err(format!(
                "refusing to serve plain HTTP on {} (not a loopback address): credentials' signatures and object names would cross the network in clear; set tls_cert_file and tls_key_file, or insecure_http = true to accept that",
                self.listen
            ));
        }
        if self.upstream_access_key_id_file.is_some()
            != self.upstream_secret_access_key_file.is_some()
        {
            return Err("set both upstream_access_key_id_file and upstream_secret_access_key_file, or neither".into());
        }
        let rate_ok = |x: f64| x.is_finite() && x >= 0.0;
        if !rate_ok(self.rate_limit_per_second) || !rate_ok(self.rate_limit_burst) {
            return Err("rate_limit_per_second and rate_limit_burst must be 0 or more".into());
        }
        if self.max_object_bytes == 0 {
            return Err("max_object_bytes must be more than 0".into());
        }
        if self.max_buffered_bytes < self.max_object_bytes || self.max_buffered_bytes > 1 << 40 {
            return Err(format!(
                "max_buffered_bytes ({}) must be at least max_object_bytes ({}) and at most 1 TiB",
                self.max_buffered_bytes, self.max_object_bytes
            ));
        }
        crate::creds::check_name("bucket", &self.bucket)?;
        if let Some(c) = &self.controller {
            let u = url::Url::parse(&c.url)
                .map_err(|e| format!("[controller] url `{}`: {e}", c.url))?;
            let loopback = match u.host() {
                Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                None => false,
            };
            match u.scheme() {
                "https" => {}
                "http" if loopback => {}
                _ => {
                    return Err(format!(
                        "[controller] url `{}`: use https:// (plain http:// only on loopback)",
                        c.url
                    ));
                }
            }
        }
        let mut seen = BTreeMap::new();
        for a in &self.agencies {
            crate::creds::check_name("agency name", &a.name)?;
            if seen.insert(a.name.clone(), ()).is_some() {
                return Err(format!("agency `{}` is listed twice", a.name));
            }
            for t in &a.executors {
                crate::creds::check_name("executor target", t)?;
            }
        }
        if let Some(m) = &self.maintenance
            && crate::creds::Principal::parse(&m.access_key).is_some()
        {
            return Err(format!(
                "maintenance access_key `{}` has the form of an issued credential; choose another",
                m.access_key
            ));
        }
        Ok(())
    }

    pub fn agency(&self, name: &str) -> Option<&AgencyConfig> {
        self.agencies.iter().find(|a| a.name == name)
    }

    pub fn retention_floor(&self) -> Duration {
        Duration::from_secs(self.retention_floor_days.saturating_mul(86_400))
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_put_body_gets_a_minute_and_its_length_at_the_minimum_rate() {
        let mut c: GatewayConfig = toml::from_str(
            "listen = \"127.0.0.1:0\"\nstate_dir = \"/s\"\nkey_file = \"/k\"\nupstream = \"/u\"\n",
        )
        .unwrap();
        assert_eq!(c.min_upload_bytes_per_second, 64 << 10);
        assert_eq!(c.max_puts_per_credential, 8);
        assert_eq!(
            c.upload_deadline(16 << 20),
            Some(std::time::Duration::from_secs(60 + 256))
        );
        c.min_upload_bytes_per_second = 0;
        assert_eq!(c.upload_deadline(16 << 20), None);
    }

    use super::*;

    fn parse(extra: &str) -> Result<GatewayConfig, String> {
        let text = format!(
            "listen = \"127.0.0.1:9443\"\nstate_dir = \"/s\"\nkey_file = \"/k\"\nupstream = \"/u\"\n{extra}"
        );
        let c: GatewayConfig = toml::from_str(&text).map_err(|e| e.to_string())?;
        c.validate().map(|_| c)
    }

    #[test]
    fn defaults_and_refusals() {
        let c = parse("[[agency]]\nname = \"dinkes\"\n").unwrap();
        assert_eq!(c.retention_floor_days, 30);
        assert!(c.agency("dinkes").is_some());
        assert!(parse("bogus = 1\n").unwrap_err().contains("bogus"));
        assert!(
            parse("[[agency]]\nname = \"dinkes\"\n[[agency]]\nname = \"dinkes\"\n")
                .unwrap_err()
                .contains("twice")
        );
        assert!(
            parse("[[agency]]\nname = \"Din.kes\"\n")
                .unwrap_err()
                .contains("agency name")
        );
        let text = "listen = \"10.0.0.1:9443\"\nstate_dir = \"/s\"\nkey_file = \"/k\"\nupstream = \"/u\"\n";
        let c: GatewayConfig = toml::from_str(text).unwrap();
        assert!(c.validate().unwrap_err().contains("plain HTTP"));
    }
}
