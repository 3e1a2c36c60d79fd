//! The controller's state store: desired objects (manifests) with their
//! history, enrolment tokens, agents, runs, audit log.
//!
//! [`StateStore`] is what the rest of the controller sees; SQLite
//! ([`sqlite::SqliteStore`], one file, WAL) is the embedded default and
//! PostgreSQL is meant to implement the same trait.

pub mod sqlite;

use pulih_model::api::{ObjectChange, RunResult};
use pulih_model::state::{
    DrillState, JobKind, MaintenanceState, PlanRunState, RecoveryKind, RunState, StepPhase,
};

#[derive(Debug, thiserror::Error)]
#[error("state store: {0}")]
pub struct StoreError(pub String);

pub type StoreResult<T> = Result<T, StoreError>;

/// A stored desired object.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredObject {
    pub kind: String,
    pub name: String,
    /// The object as JSON (apiVersion, kind, metadata, spec).
    pub json: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StoredRevision {
    pub id: i64,
    pub applied_at: i64,
    pub applied_by: String,
    pub changes: Vec<ObjectChange>,
}

/// What an enrolment token turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenCheck {
    Accepted,
    Unknown,
    Used,
    Expired,
    OtherServer,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AgentRow {
    pub server: String,
    pub credential_hash: [u8; 32],
    pub enrolled_at: i64,
    pub last_seen: Option<i64>,
    pub facts_json: Option<String>,
    pub observed_ip: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunRow {
    pub run_key: String,
    pub server: String,
    pub trigger: String,
    pub state: RunState,
    pub scheduled_for: Option<i64>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub result_json: Option<String>,
    pub kind: JobKind,
    /// The job's parameters (JSON), e.g. a restore's target.
    pub params_json: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MaintenanceRow {
    pub id: i64,
    pub perangkat_daerah: String,
    pub trigger: String,
    pub state: MaintenanceState,
    pub created_at: i64,
    pub finished_at: Option<i64>,
    /// The maintenance report, or `{"error": …}`.
    pub report_json: Option<String>,
}

/// A drill or failover, queued for the DRC executor of `drc_target`.
#[derive(Debug, Clone, PartialEq)]
pub struct DrillRow {
    pub id: String,
    pub server: String,
    pub perangkat_daerah: String,
    pub drc_target: String,
    pub trigger: String,
    pub state: DrillState,
    pub requested_by: String,
    /// `latest` or a snapshot id; for a failback, the failover it ends.
    pub snapshot: String,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    /// The executor's report (JSON), once finished.
    pub report_json: Option<String>,
    pub kind: RecoveryKind,
}

/// One run of a recovery plan: its servers' drills (or failovers) in group
/// order.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanRunRow {
    pub id: String,
    pub plan: String,
    /// `drill` or `failover`.
    pub kind: RecoveryKind,
    pub state: PlanRunState,
    /// The plan's spec as applied when the run started (JSON).
    pub spec_json: String,
    pub requested_by: String,
    /// The order a failover plan runs under.
    pub order: Option<String>,
    pub created_at: i64,
    pub finished_at: Option<i64>,
    pub error: Option<String>,
}

/// One approval of a plan run (`phase` `approval`, `name` the role,
/// `actor` who approved), or one run of a plan's pre or post step
/// (`phase` `pre` or `post`).
#[derive(Debug, Clone, PartialEq)]
pub struct PlanStepRow {
    pub run: String,
    pub phase: StepPhase,
    pub name: String,
    pub ok: bool,
    pub detail: String,
    pub actor: String,
    pub at: i64,
    pub duration_s: f64,
}

/// A drill (failover, or a rollback's failback) of one server of a plan run.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanMember {
    /// The plan group, or `rollback` for a rollback's failbacks.
    pub group: String,
    pub server: String,
    pub drill: DrillRow,
}

/// A job ops asked for, waiting for the agent's next heartbeat.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuedJob {
    pub kind: JobKind,
    pub params_json: Option<String>,
}

/// Per server: the newest successful run and the newest run's state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunSummary {
    pub last_success: Option<i64>,
    pub last_state: Option<RunState>,
}

pub trait StateStore: Send + Sync + 'static {
    fn objects(&self) -> StoreResult<Vec<StoredObject>>;
    /// Writes the changed objects as one new revision, atomically.
    fn apply(
        &self,
        objects: &[StoredObject],
        applied_by: &str,
        changes: &[ObjectChange],
        now: i64,
    ) -> StoreResult<i64>;
    fn revisions(&self, limit: u32) -> StoreResult<Vec<StoredRevision>>;

    fn add_enroll_token(&self, hash: &[u8; 32], server: &str, expires_at: i64) -> StoreResult<()>;
    /// Checks and, when accepted, consumes a token (once only).
    fn consume_enroll_token(
        &self,
        hash: &[u8; 32],
        server: &str,
        now: i64,
    ) -> StoreResult<TokenCheck>;

    fn set_agent_credential(&self, server: &str, hash: &[u8; 32], now: i64) -> StoreResult<()>;
    fn agent(&self, server: &str) -> StoreResult<Option<AgentRow>>;
    fn agents(&self) -> StoreResult<Vec<AgentRow>>;
    fn heartbeat(
        &self,
        server: &str,
        now: i64,
        facts_json: &str,
        observed_ip: &str,
    ) -> StoreResult<()>;

    /// Queues a manual job; false when the key exists already.
    fn queue_run(
        &self,
        server: &str,
        run_key: &str,
        job: &QueuedJob,
        now: i64,
    ) -> StoreResult<bool>;
    fn queued_runs(&self, server: &str) -> StoreResult<Vec<RunRow>>;
    /// Marks a run running (creating it for scheduled runs). Returns false
    /// when the run already finished (a redelivered start).
    fn start_run(
        &self,
        server: &str,
        run_key: &str,
        trigger: &str,
        scheduled_for: Option<i64>,
        now: i64,
    ) -> StoreResult<bool>;
    /// Records a result; idempotent by run key.
    fn finish_run(
        &self,
        server: &str,
        run_key: &str,
        result: &RunResult,
        now: i64,
    ) -> StoreResult<()>;
    /// The (server, run key) of a replication other than `except_run`
    /// that already reported `snapshot` (hex) as its own.
    fn snapshot_reported(
        &self,
        snapshot: &str,
        except_run: &str,
    ) -> StoreResult<Option<(String, String)>>;
    /// The ransomware signals of a confirmed replication (JSON), and the
    /// flag it raised, if one (docs/SECURITY.md "Ransomware signals").
    /// Once per run: false (and nothing changed) when the run has them
    /// already (its result was delivered again).
    fn record_signals(
        &self,
        run_key: &str,
        server: &str,
        at: i64,
        metrics: &str,
        flag: Option<&str>,
    ) -> StoreResult<bool>;
    /// The signals of `server`'s last `n` unflagged runs but `except_run`,
    /// newest first.
    fn recent_signals(&self, server: &str, except_run: &str, n: u32) -> StoreResult<Vec<String>>;
    /// The (run key, snapshot) of `server`'s newest confirmed replication
    /// but `except_run`.
    fn previous_snapshot(
        &self,
        server: &str,
        except_run: &str,
    ) -> StoreResult<Option<(String, String)>>;
    /// The (run key, snapshot) of every confirmed replication of `server`
    /// that finished at `since` or later, newest first.
    fn confirmed_snapshots(&self, server: &str, since: i64) -> StoreResult<Vec<(String, String)>>;
    /// The reports (JSON) of the maintenance runs made at `since` or later.
    fn maintenance_reports_since(&self, since: i64) -> StoreResult<Vec<String>>;
    /// Server → (the newest flag no operator cleared, when).
    fn open_anomalies(&self) -> StoreResult<std::collections::HashMap<String, (String, i64)>>;
    /// Marks `server`'s flags cleared; how many were open.
    fn clear_anomalies(&self, server: &str, by: &str, now: i64) -> StoreResult<u64>;
    /// Runs in state `running` started after `since` among `servers`.
    fn running_count(&self, servers: &[String], since: i64) -> StoreResult<u64>;
    fn run(&self, run_key: &str) -> StoreResult<Option<RunRow>>;
    fn runs(&self, server: Option<&str>, limit: u32) -> StoreResult<Vec<RunRow>>;
    fn run_summaries(&self) -> StoreResult<std::collections::HashMap<String, RunSummary>>;
    fn run_counts_since(&self, since: i64) -> StoreResult<(u64, u64, u64)>;

    /// Records queued maintenance runs, one per agency; returns their ids.
    fn queue_maintenance(&self, pds: &[String], trigger: &str, now: i64) -> StoreResult<Vec<i64>>;
    fn set_maintenance_state(&self, id: i64, state: MaintenanceState) -> StoreResult<()>;
    fn finish_maintenance(
        &self,
        id: i64,
        state: MaintenanceState,
        report_json: &str,
        now: i64,
    ) -> StoreResult<()>;
    fn maintenance_runs(&self, limit: u32) -> StoreResult<Vec<MaintenanceRow>>;

    /// Queues a drill; false when the id exists already.
    fn queue_drill(&self, d: &DrillRow) -> StoreResult<bool>;
    /// Queued drills for one DRC target, oldest first.
    fn queued_drills(&self, drc_target: &str) -> StoreResult<Vec<DrillRow>>;
    /// queued → running; false when the drill is not queued (any more).
    fn start_drill(&self, id: &str, now: i64) -> StoreResult<bool>;
    /// Records the outcome; idempotent (a finished drill stays as it is).
    fn finish_drill(
        &self,
        id: &str,
        state: DrillState,
        report_json: &str,
        now: i64,
    ) -> StoreResult<()>;
    fn drill(&self, id: &str) -> StoreResult<Option<DrillRow>>;
    /// Marks drills (and failovers, failbacks) `running` since before
    /// `started_before` failed: their executor never reported. Returns them.
    fn expire_drills(&self, started_before: i64, now: i64) -> StoreResult<Vec<String>>;
    fn drills(&self, server: Option<&str>, limit: u32) -> StoreResult<Vec<DrillRow>>;
    /// Per server: the newest finished drill, and the newest passed one's
    /// finish time.
    fn drill_summaries(
        &self,
    ) -> StoreResult<std::collections::HashMap<String, (DrillRow, Option<i64>)>>;

    /// Per server: the newest failover that brought it up at the DRC and
    /// that no failback has ended yet.
    fn active_failovers(&self) -> StoreResult<std::collections::HashMap<String, String>>;

    /// Starts a recovery plan run; false when the id exists already.
    fn create_plan_run(&self, r: &PlanRunRow) -> StoreResult<bool>;
    fn plan_run(&self, id: &str) -> StoreResult<Option<PlanRunRow>>;
    /// Plan runs, newest first.
    fn plan_runs(&self, limit: u32) -> StoreResult<Vec<PlanRunRow>>;
    /// Moves a run from one of `from` to `state`; false when it was in
    /// none of them (another request moved it first).
    fn set_plan_run_state(
        &self,
        id: &str,
        from: &[PlanRunState],
        state: PlanRunState,
        error: Option<&str>,
        finished_at: Option<i64>,
    ) -> StoreResult<bool>;
    /// Records that `drill` (already queued) recovers `server` for `group`
    /// of plan run `run`.
    fn add_plan_member(&self, run: &str, group: &str, server: &str, drill: &str)
    -> StoreResult<()>;
    /// The members of a run, oldest first, each with its drill.
    fn plan_members(&self, run: &str) -> StoreResult<Vec<PlanMember>>;
    /// The plan run a drill belongs to, if any.
    fn plan_run_of(&self, drill: &str) -> StoreResult<Option<String>>;
    /// Drill plan runs that ended (`passed`, `rolled-back`) with drills on
    /// `drc_target` whose teardown there is not recorded yet.
    fn pending_plan_teardowns(&self, drc_target: &str) -> StoreResult<Vec<String>>;
    /// Records a target's teardown of a run (once; false when recorded).
    fn record_plan_teardown(
        &self,
        run: &str,
        drc_target: &str,
        report_json: &str,
        now: i64,
    ) -> StoreResult<bool>;
    /// Per DRC target, the recorded teardown of a run (JSON).
    fn plan_teardowns(&self, run: &str) -> StoreResult<Vec<(String, String)>>;

    /// Records an approval or a step's run; false for a second approval by
    /// the same role.
    fn add_plan_step(&self, r: &PlanStepRow) -> StoreResult<bool>;
    /// A run's approvals and step runs, oldest first.
    fn plan_steps(&self, run: &str) -> StoreResult<Vec<PlanStepRow>>;

    /// Appends to the hash-chained audit log.
    fn audit(&self, actor: &str, action: &str, detail: &str, now: i64) -> StoreResult<()>;
}
