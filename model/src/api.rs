//! The controller's HTTP API types (`/api/v1`), shared by the controller,
//! the agents and the CLI. Request bodies deny unknown fields; the OpenAPI
//! document is generated from these types (controller `openapi.rs`).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::manifest::{Diagnostic, DumpSource, Hooks};
use crate::state::{
    DrillState, JobKind, MaintenanceState, PlanGroupState, PlanRunState, RunState, StepPhase,
};

/// Every error body: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ErrorDetail {
    /// A stable, machine-readable code (see docs/API.md).
    pub code: String,
    pub message: String,
    /// Manifest problems, for `invalid_manifests`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(skip)]
    pub diagnostics: Vec<Diagnostic>,
}

// ------------------------------------------------------------------ manifests

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplyRequest {
    /// The manifest files, each with a name used in error messages.
    pub files: Vec<ManifestFile>,
    /// Who runs the apply (user@host), recorded beside the token's identity.
    #[serde(default)]
    pub reported_by: Option<String>,
    /// Validate and show the diff, but change nothing.
    #[serde(default)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ManifestFile {
    pub name: String,
    pub content: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ApplyResponse {
    /// The new revision (absent when nothing changed or on a dry run).
    pub revision: Option<i64>,
    pub changes: Vec<ObjectChange>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct ObjectChange {
    pub kind: String,
    pub name: String,
    /// `created`, `updated` or `unchanged`.
    pub change: String,
    /// The JSON paths that differ (for `updated`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Revision {
    pub id: i64,
    pub applied_at: String,
    pub applied_by: String,
    pub changes: Vec<ObjectChange>,
}

// ------------------------------------------------------------------ agents

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollTokenResponse {
    pub server: String,
    pub token: String,
    pub expires_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    pub server: String,
    pub token: String,
    pub facts: Facts,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct EnrollResponse {
    pub server: String,
    /// The agent's own credential from now on (keep it secret).
    pub credential: String,
    /// Its credential for the append-only DRC gateway (docs/GATEWAY.md),
    /// when the controller issues them (`[gateway] key_file`); keep it
    /// secret. Issued once: a new enrolment issues a new one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_credential: Option<StoreCredential>,
}

/// An S3 access key id and secret.
#[derive(Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StoreCredential {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl std::fmt::Debug for StoreCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret never reaches a log.
        f.debug_struct("StoreCredential")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// What an agent reports about its server on every heartbeat.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Facts {
    pub hostname: String,
    /// The server's addresses as the agent sees them.
    #[serde(default)]
    pub ips: Vec<String>,
    pub os: String,
    pub agent_version: String,
    /// Free bytes on the file system of the agent's state directory.
    #[serde(default)]
    pub free_disk_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub docker_containers: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub docker_volumes: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatRequest {
    pub facts: Facts,
}

/// What the controller wants of an agent: its assignment (cached by the
/// agent, so it replicates on schedule while the controller is away) and
/// jobs to run now.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct HeartbeatResponse {
    pub assignment: Option<Assignment>,
    pub jobs: Vec<Job>,
}

/// Everything an agent needs to replicate on its own.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Assignment {
    pub server: String,
    pub perangkat_daerah: String,
    /// The agency's repository on the DRC store.
    pub repository: String,
    /// Path sources to back up.
    pub paths: Vec<String>,
    /// Docker sources (volumes, containers, dumps), their hooks, and the
    /// images the recovery spec needs at the DRC.
    #[serde(default, skip_serializing_if = "DockerSources::is_empty")]
    pub docker: DockerSources,
    /// Cron expression (5 or 6 fields) and its time zone.
    pub cron: String,
    pub timezone: String,
    /// Seconds added to every scheduled time (spreads servers apart).
    pub jitter_seconds: u64,
    /// The manifest revision this came from.
    pub revision: i64,
}

/// What an agent captures from its Docker engine before each backup.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct DockerSources {
    /// Named volumes whose data is backed up.
    #[serde(default)]
    pub volumes: Vec<String>,
    /// Containers whose mounts (volumes and binds) and image are backed up.
    #[serde(default)]
    pub containers: Vec<String>,
    /// Commands whose output is saved as a file (e.g. `pg_dump`).
    #[serde(default)]
    pub dumps: Vec<DumpSource>,
    /// Images saved into the repository (`docker save`) so the DRC can
    /// start them without a registry.
    #[serde(default)]
    pub images: Vec<String>,
    /// Consistency hooks around the capture and backup.
    #[serde(default)]
    pub hooks: Hooks,
}

impl DockerSources {
    /// Only images to save (the recovery spec's): nothing of the server's
    /// data lives in Docker.
    pub fn images_only(&self) -> bool {
        DockerSources {
            images: Vec::new(),
            ..self.clone()
        }
        .is_empty()
    }

    pub fn is_empty(&self) -> bool {
        self.volumes.is_empty()
            && self.containers.is_empty()
            && self.dumps.is_empty()
            && self.images.is_empty()
            && self.hooks.pre.is_empty()
            && self.hooks.post.is_empty()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Job {
    /// The run key results are reported under.
    pub run_key: String,
    pub kind: JobKind,
    /// For `restore`: what to restore where.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<RestoreRequest>,
}

/// A restore to a path on the server itself (e.g. after a disk loss). The
/// agent holds no reader key: the walidata must have given it one
/// (`reader_passphrase_file` in the agent's config), or the job fails.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RestoreRequest {
    /// Absolute directory on the server; each backed-up path lands at
    /// TARGET/<its absolute path>. Must not exist or be empty.
    pub target: String,
    /// A snapshot id (or unique prefix) of this server, or `latest`.
    #[serde(default = "latest")]
    pub snapshot: String,
    /// Restore only these backed-up paths (and what is below them).
    #[serde(default)]
    pub include: Vec<String>,
}

fn latest() -> String {
    "latest".into()
}

/// Asking to start a scheduled run (the controller enforces concurrency
/// caps; an agent that cannot reach it goes ahead on its own).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunStartRequest {
    /// `schedule` or `manual`.
    pub trigger: String,
    /// For scheduled runs, the cron time it was fired for (RFC 3339).
    #[serde(default)]
    pub scheduled_for: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct RunStartResponse {
    /// False: a cap is reached; ask again in `retry_after_seconds`.
    pub proceed: bool,
    pub retry_after_seconds: u64,
}

/// The outcome of one run, reported (and re-reported until acknowledged)
/// by the agent. Idempotent by `run_key`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RunResult {
    pub trigger: String,
    #[serde(default)]
    pub scheduled_for: Option<String>,
    pub started_at: String,
    pub finished_at: String,
    /// `succeeded`, `partial` (snapshot saved, some sources unreadable) or `failed`.
    pub state: RunState,
    #[serde(default)]
    pub snapshot_id: Option<String>,
    #[serde(default)]
    pub files: u64,
    #[serde(default)]
    pub bytes_read: u64,
    #[serde(default)]
    pub bytes_new: u64,
    #[serde(default)]
    pub bytes_stored: u64,
    #[serde(default)]
    pub duration_s: f64,
    #[serde(default)]
    pub errors: Vec<String>,
}

// ------------------------------------------------------------------ views

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Run {
    pub run_key: String,
    pub server: String,
    pub kind: JobKind,
    pub trigger: String,
    pub state: RunState,
    pub scheduled_for: Option<String>,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub snapshot_id: Option<String>,
    pub files: u64,
    pub bytes_read: u64,
    pub bytes_new: u64,
    pub bytes_stored: u64,
    pub duration_s: f64,
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ReplicateResponse {
    pub run_key: String,
}

/// One server as the controller sees it (manifest + agent reports).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ServerView {
    pub name: String,
    pub perangkat_daerah: String,
    /// From the manifest: pusat-data | pd-premises.
    pub declared_location: String,
    /// From the manifest: centralized | migrating | pending | exempt.
    pub declared_status: String,
    pub deadline: Option<String>,
    /// Derived from what the agent reports: centralized | at-drc |
    /// not-centralized | unknown.
    pub observed: String,
    /// Why `observed` says what it says.
    pub evidence: String,
    /// The declared and observed states disagree.
    pub mismatch: bool,
    pub enrolled: bool,
    pub agent_last_seen: Option<String>,
    pub last_success: Option<String>,
    pub last_run_state: Option<RunState>,
    pub rpo_seconds: u64,
    /// The newest successful replication is within the RPO.
    pub rpo_met: bool,
    /// The newest finished drill, with its measured RTO/RPO against the
    /// server's targets.
    #[serde(default)]
    pub last_drill: Option<LastDrill>,
    /// The agency schedules drills, and none passed since the schedule's
    /// last-but-one firing (so the last scheduled drill was missed or failed).
    #[serde(default)]
    pub drill_overdue: bool,
    /// The failover that has this server running at the DRC, if any.
    #[serde(default)]
    pub failed_over: Option<String>,
    /// A ransomware signal no operator cleared yet: why, and when
    /// (RFC 3339); the history before it is held (`pulih servers
    /// clear-anomaly NAME` after looking).
    #[serde(default)]
    pub anomaly: Option<Anomaly>,
    /// What the agent last reported (hostname, IPs, OS, Docker containers
    /// and volumes, free disk); only in `GET /servers/{name}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facts: Option<Facts>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Anomaly {
    pub reason: String,
    pub flagged_at: String,
}

/// What `POST /servers/{name}/clear-anomaly` did.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct AnomalyCleared {
    /// Flags marked cleared in the controller.
    pub flags: u64,
    /// Hold objects removed from the repository (flagged snapshot ids).
    pub holds_removed: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct LastDrill {
    pub id: String,
    /// `passed` or `failed`.
    pub state: DrillState,
    pub finished_at: String,
    pub rto_seconds: Option<f64>,
    pub rpo_seconds: Option<f64>,
    /// None when the server has no such target or nothing was measured.
    pub rto_met: Option<bool>,
    pub rpo_met: Option<bool>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Counts {
    pub servers: u64,
    pub centralized: u64,
    pub not_centralized: u64,
    /// Seen from a DRC subnet (run by DKIS, e.g. while failed over).
    #[serde(default)]
    pub at_drc: u64,
    pub unknown: u64,
    pub exempt: u64,
    pub mismatches: u64,
    pub protected: u64,
    /// Servers whose newest drill failed.
    #[serde(default)]
    pub drills_failed: u64,
    /// Servers whose scheduled drill is overdue.
    #[serde(default)]
    pub drills_overdue: u64,
    pub centralized_percent: f64,
    pub protected_percent: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ComplianceReport {
    pub generated_at: String,
    pub overall: Counts,
    pub by_perangkat_daerah: BTreeMap<String, Counts>,
    pub servers: Vec<ServerView>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct StatusResponse {
    pub version: String,
    pub revision: Option<i64>,
    pub perangkat_daerah: u64,
    pub servers: u64,
    pub agents_enrolled: u64,
    pub agents_seen_recently: u64,
    pub runs_running: u64,
    pub runs_succeeded_24h: u64,
    pub runs_failed_24h: u64,
    pub overall: Counts,
}

// ------------------------------------------------------------ maintenance

/// Ask the controller to run retention now (all agencies, or one).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceRequest {
    #[serde(default)]
    pub perangkat_daerah: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct MaintenanceQueued {
    /// One run per agency repository.
    pub ids: Vec<i64>,
}

/// One retention run on one agency's repository, with the maintenance key
/// (forget by each server's `retention`, then prune whole unused packs).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct MaintenanceRun {
    pub id: i64,
    pub perangkat_daerah: String,
    /// `schedule` or `manual`.
    pub trigger: String,
    pub state: MaintenanceState,
    pub created_at: String,
    pub finished_at: Option<String>,
    pub snapshots: u64,
    pub forgotten: u64,
    pub condemned_packs: u64,
    pub deleted_packs: u64,
    pub rescued_packs: u64,
    pub bytes_deleted: u64,
    /// Objects in the repository that did not authenticate, set aside,
    /// and what each held back from the prune (FORMAT.md §11).
    #[serde(default)]
    pub held_back: Vec<String>,
    #[serde(default)]
    pub error: Option<String>,
}

// ------------------------------------------------------------------ drills

/// Ask for a drill of one server now (`POST /servers/{name}/drill`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DrillRequest {
    /// A snapshot id (or unique prefix) of the server; default `latest`.
    #[serde(default)]
    pub snapshot: Option<String>,
}

/// Ask for a real failover of one server (`POST /servers/{name}/failover`,
/// with the failover authorization, not the admin token).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FailoverRequest {
    /// The order or approval it runs under (e.g. the mayor's letter
    /// number), recorded in the audit log. Required.
    pub order: String,
    #[serde(default)]
    pub snapshot: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct DrillQueued {
    pub id: String,
    /// The DRC target whose executor runs it.
    pub drc_target: String,
}

/// A drill the DRC executor is to run: everything it needs from the
/// manifests, so it needs none of them itself.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct DrillJob {
    pub id: String,
    /// A drill (isolated, torn down) or a failover (service network, left
    /// running, traffic switched).
    #[serde(default = "drill_kind")]
    pub kind: crate::drill::RecoveryKind,
    pub server: String,
    pub perangkat_daerah: String,
    /// The agency's repository on the DRC store (credentials are the
    /// executor's own).
    pub repository: String,
    /// `latest` or a snapshot id (prefix).
    pub snapshot: String,
    pub recovery: crate::manifest::RecoverySpec,
    #[serde(default)]
    pub rto_target_seconds: Option<u64>,
    #[serde(default)]
    pub rpo_target_seconds: Option<u64>,
    /// A drill of a recovery plan's run: it joins the run's shared
    /// internal network and, once passed, stays up (for the later groups
    /// that depend on it) until the controller asks for the run's teardown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_run: Option<String>,
}

fn drill_kind() -> crate::drill::RecoveryKind {
    crate::drill::RecoveryKind::Drill
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DrcHeartbeatRequest {
    pub facts: Facts,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct DrcHeartbeatResponse {
    /// Queued drills for servers whose agency replicates to this target.
    pub drills: Vec<DrillJob>,
    /// Drill plan runs that ended: remove what their drills left up on
    /// this target and report it (`POST /drc/{target}/plan-runs/{id}/teardown`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plan_teardowns: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct DrillStartResponse {
    /// False: the drill is no longer queued (already started or ended).
    pub proceed: bool,
}

/// A recovery plan's run (`POST /plans/{name}/drill|failover`): its
/// groups in order, each with the drill (or failover) of each server.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct PlanRunView {
    pub id: String,
    pub plan: String,
    /// `drill` or `failover`.
    pub kind: crate::drill::RecoveryKind,
    pub state: PlanRunState,
    pub requested_by: String,
    /// The order a failover plan runs under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<String>,
    pub created_at: String,
    pub finished_at: Option<String>,
    /// Why it stopped, in one sentence.
    pub error: Option<String>,
    /// Run start → the last group's servers all healthy (a passed run).
    pub rto_seconds: Option<f64>,
    pub groups: Vec<PlanGroupView>,
    /// A failover plan's approvals: each role the plan names, and who
    /// approved as it (none yet: `approved_by` is null).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<PlanApprovalView>,
    /// A failover plan's pre steps (before its first group) and post steps
    /// (once every group passed), each run recorded, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<PlanStepView>,
    /// A rollback's failbacks, once ops asked for one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rollback: Vec<DrillView>,
    /// A drill plan's teardown once the run ended, per DRC target (its
    /// servers stay up on the run's network until then).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub teardown: std::collections::BTreeMap<String, crate::drill::Teardown>,
}

/// One role a failover plan needs the approval of.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct PlanApprovalView {
    pub role: crate::manifest::types::KeyHolderRole,
    /// The name the approver gave, once approved.
    pub approved_by: Option<String>,
    pub approved_at: Option<String>,
}

/// One run of a plan's pre or post step.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct PlanStepView {
    /// `pre` or `post`.
    pub phase: StepPhase,
    pub name: String,
    pub ok: bool,
    /// Exit status and the end of the command's output.
    pub detail: String,
    pub at: String,
    pub duration_s: f64,
}

/// `POST /plan-runs/{id}/approve`, with the bearer token of `role`'s
/// approver (the controller's `[approvers]`).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanApproveRequest {
    pub role: crate::manifest::types::KeyHolderRole,
    /// Who approves (recorded in the run and the audit log).
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct PlanGroupView {
    pub name: String,
    pub depends_on: Vec<String>,
    pub servers: Vec<String>,
    pub state: PlanGroupState,
    /// Every attempt, oldest first (a resumed group has several).
    pub recoveries: Vec<DrillView>,
}

/// One drill as the controller keeps it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct DrillView {
    pub id: String,
    #[serde(default = "drill_kind")]
    pub kind: crate::drill::RecoveryKind,
    pub server: String,
    pub perangkat_daerah: String,
    pub drc_target: String,
    /// `manual` or `schedule`.
    pub trigger: String,
    pub state: DrillState,
    pub requested_by: String,
    pub snapshot: String,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub rto_seconds: Option<f64>,
    pub rpo_seconds: Option<f64>,
    pub rto_target_seconds: Option<u64>,
    pub rpo_target_seconds: Option<u64>,
    /// Why it failed, in one sentence.
    pub error: Option<String>,
    /// The full report (`GET /drills/{id}` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<crate::drill::DrillReport>,
}

/// The append-only gateway's revocation feed (`GET /gateway/revocations`,
/// docs/GATEWAY.md): for each principal the controller issued a gateway
/// credential to at enrolment (`agent:<server>`, `executor:<target>`), the
/// lowest serial still valid — the serial of its latest enrolment, so an
/// earlier credential of it is revoked; for a server no manifest names
/// any more, one past it (every credential issued so far).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GatewayRevocations {
    /// When the controller made it (Unix seconds).
    pub generated_at: i64,
    pub floors: BTreeMap<String, u32>,
}
