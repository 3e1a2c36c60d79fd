//! The manifest kinds (DESIGN.md §5) as Rust types. The JSON Schema in
//! `manifests/schema/` and, later, the CRDs are generated from these.
//!
//! Every struct denies unknown fields; field names are camelCase in YAML.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::port::PortMapping;
use super::values::{ByteSize, CronExpr, Date, DurationText, TimeOfDay, TimeZone};

/// The only `apiVersion` this release reads.
pub const API_VERSION: &str = "pulih.io/v1alpha1";

/// Object metadata, as in Kubernetes. `name` identifies the object among
/// those of its kind: lowercase letters, digits and `-`, at most 63.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Metadata {
    pub name: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// One manifest document: `apiVersion`, `kind`, `metadata`, `spec`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Object<S> {
    /// Always `pulih.io/v1alpha1`.
    pub api_version: String,
    pub kind: String,
    pub metadata: Metadata,
    pub spec: S,
}

/// Any manifest, tagged by `kind` (used for the JSON Schema; parsing goes
/// kind by kind so that errors keep their exact path).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(tag = "kind")]
pub enum AnyManifest {
    PerangkatDaerah(KindBody<PerangkatDaerahSpec>),
    Server(KindBody<ServerSpec>),
    RecoveryPlan(KindBody<RecoveryPlanSpec>),
    DrcTarget(KindBody<DrcTargetSpec>),
}

/// A manifest without its `kind` (which [`AnyManifest`] carries as its tag).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KindBody<S> {
    /// Always `pulih.io/v1alpha1`.
    #[schemars(extend("const" = "pulih.io/v1alpha1"))]
    pub api_version: String,
    pub metadata: Metadata,
    pub spec: S,
}

// ---------------------------------------------------------------- PerangkatDaerah

/// An agency (Perangkat Daerah): who owns the data, and how its servers
/// replicate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PerangkatDaerahSpec {
    /// The agency's short official code, e.g. `DINKES`.
    pub code: String,
    /// The agency's full name, e.g. `Dinas Kesehatan`.
    pub name: String,
    pub walidata: Walidata,
    /// The `DrcTarget` its repository lives on.
    pub drc_target: String,
    /// When replication may run (in `timezone`); a window may cross midnight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication_window: Option<Window>,
    /// Upload bandwidth cap per second for all of the agency's servers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth_limit: Option<ByteSize>,
    /// At most this many of the agency's jobs run at once (default 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent_jobs: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drills: Option<DrillPolicy>,
    /// Who holds the reader keys (walidata, DKIS head, regional secretary).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_holders: Vec<KeyHolder>,
}

/// The data owner (walidata).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Walidata {
    pub name: String,
    pub contact: String,
    /// The walidata's age public key (`age1…`), if reports are sealed to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Window {
    pub start: TimeOfDay,
    pub end: TimeOfDay,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<TimeZone>,
}

/// Whether the agency consents to automated drills at the DRC (which gives
/// the DRC executor the `drc-drill` reader identity), and how often.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DrillPolicy {
    pub consent: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<CronExpr>,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum KeyHolderRole {
    Walidata,
    DkisHead,
    RegionalSecretary,
}

impl KeyHolderRole {
    /// The role as manifests and the API spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyHolderRole::Walidata => "walidata",
            KeyHolderRole::DkisHead => "dkis-head",
            KeyHolderRole::RegionalSecretary => "regional-secretary",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KeyHolder {
    pub role: KeyHolderRole,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
}

// ---------------------------------------------------------------- Server

/// One protected server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServerSpec {
    /// The owning agency (`metadata.name` of a `PerangkatDaerah`).
    pub perangkat_daerah: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Where the server runs now.
    pub location: Location,
    pub centralization: Centralization,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classification: Option<Classification>,
    /// What to protect (at least one).
    pub sources: Vec<Source>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hooks: Option<Hooks>,
    /// When to replicate (default: nightly at 01:00 WITA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Schedule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<Retention>,
    /// Recovery point objective: the newest copy may be at most this old
    /// (default 24h plus the schedule's own period).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpo: Option<DurationText>,
    /// Recovery time objective: a drill must have it running in this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rto: Option<DurationText>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery: Option<RecoverySpec>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Location {
    /// Hosted in the government data center.
    PusatData,
    /// Still on the agency's own premises.
    PdPremises,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CentralizationStatus {
    Centralized,
    Migrating,
    Pending,
    Exempt,
}

/// The server's standing under Pasal 9 (every agency server hosted in the
/// Pusat Data).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Centralization {
    pub status: CentralizationStatus,
    /// Required for `migrating` and `pending`: when it must be centralized.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<Date>,
    /// Required for `exempt`: the legal basis of the exemption.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legal_basis: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Classification {
    Public,
    Internal,
    Confidential,
    Secret,
}

/// One source: set exactly one of `path`, `dockerVolume`,
/// `dockerContainer`, `dump`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Source {
    /// An absolute path on the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// A named Docker volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_volume: Option<String>,
    /// All mounts of a Docker container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_container: Option<String>,
    /// The output of a command (e.g. `pg_dump`), in a container or on the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dump: Option<DumpSource>,
    /// Glob patterns to leave out (path sources).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DumpSource {
    /// Run inside this container (`docker exec`); on the host when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    pub command: Vec<String>,
    /// The file name the output is stored under in the snapshot.
    pub file_name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Hooks {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pre: Vec<Hook>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub post: Vec<Hook>,
}

/// A consistency hook: a command (in a container with `container`), or
/// pausing a container for the duration of the backup.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Hook {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<DurationText>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Schedule {
    pub cron: CronExpr,
    /// Default `Asia/Makassar` (WITA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<TimeZone>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Retention {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_last: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_hourly: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_daily: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_weekly: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_monthly: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_yearly: Option<u32>,
}

/// How to bring the server's workload up at the DRC.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RecoverySpec {
    #[serde(default)]
    pub containers: Vec<RecoveryContainer>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub health_checks: Vec<HealthCheck>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RecoveryContainer {
    pub name: String,
    pub image: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Published ports, `[IP:]HOST:CONTAINER[/tcp|/udp]` (used on failover,
    /// not in drills).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortMapping>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<VolumeMapping>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// Containers start in ascending order (default 0).
    #[serde(default)]
    pub start_order: u32,
    /// What the container may use at the DRC, in drills and failovers
    /// alike (its code is the server's and is treated as hostile).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<ContainerLimits>,
}

/// A recovery container's limits; each unset one takes its default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ContainerLimits {
    /// Memory, swap included (no swap beyond it), e.g. `512MiB`
    /// (default 2GiB, at least 6MiB). A container over it is killed and
    /// the recovery fails, saying so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<ByteSize>,
    /// CPUs, e.g. `0.5` (default 1; at most the DRC host's CPUs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<f64>,
    /// Processes and threads (default 1024, at least 16).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids: Option<u32>,
}

impl ContainerLimits {
    pub const DEFAULT_MEMORY: u64 = 2 << 30;
    pub const MIN_MEMORY: u64 = 6 << 20;
    pub const DEFAULT_CPUS: f64 = 1.0;
    pub const DEFAULT_PIDS: u32 = 1024;
    pub const MIN_PIDS: u32 = 16;

    pub fn memory(&self) -> u64 {
        self.memory.map_or(Self::DEFAULT_MEMORY, |m| m.0)
    }

    pub fn cpus(&self) -> f64 {
        self.cpus.unwrap_or(Self::DEFAULT_CPUS)
    }

    pub fn pids(&self) -> u32 {
        self.pids.unwrap_or(Self::DEFAULT_PIDS)
    }
}

/// Restored data (a source's `dockerVolume` name or `path`) mounted at
/// `target` in the container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VolumeMapping {
    pub source: String,
    pub target: String,
}

/// One health check: set exactly one of `http`, `tcp`, `exec`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HealthCheck {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpCheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpCheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<ExecCheck>,
    /// How long to keep trying (default 60s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<DurationText>,
}

impl HealthCheck {
    /// How it probes: by the one of `http`, `tcp`, `exec` that is set.
    pub fn kind(&self) -> crate::state::CheckKind {
        use crate::state::CheckKind;
        if self.http.is_some() {
            CheckKind::Http
        } else if self.tcp.is_some() {
            CheckKind::Tcp
        } else {
            CheckKind::Exec
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpCheck {
    pub container: String,
    pub port: u16,
    #[serde(default = "default_http_path")]
    pub path: String,
    #[serde(default = "default_http_status")]
    pub expect_status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_body_contains: Option<String>,
}

fn default_http_path() -> String {
    "/".into()
}

fn default_http_status() -> u16 {
    200
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TcpCheck {
    pub container: String,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExecCheck {
    pub container: String,
    pub command: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_output_contains: Option<String>,
}

// ---------------------------------------------------------------- RecoveryPlan

/// Servers recovered together, in groups, in dependency order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RecoveryPlanSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub groups: Vec<PlanGroup>,
    /// Roles that must approve a real failover of this plan.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<KeyHolderRole>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pre_steps: Vec<PlanStep>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub post_steps: Vec<PlanStep>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PlanGroup {
    pub name: String,
    pub servers: Vec<String>,
    /// Groups (by name) that must be healthy before this one starts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PlanStep {
    pub name: String,
    pub command: Vec<String>,
}

// ---------------------------------------------------------------- DrcTarget

/// Where repositories live: one repository per agency under `url`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DrcTargetSpec {
    /// A path, `file://`, or `s3://BUCKET/PREFIX?endpoint=…` URL.
    pub url: String,
    /// Storage credentials, by reference (files on the machine that uses them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<Credentials>,
    /// At most this many jobs write to this target at once (default 8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent_jobs: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Credentials {
    pub access_key_id_file: String,
    pub secret_access_key_file: String,
}
