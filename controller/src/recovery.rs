//! Recovery without HTTP: the state machines of drills, failovers and
//! failbacks ([`drill`]), of recovery plan runs ([`plan`]) and of a plan's
//! approvals and pre/post steps ([`steps`]). Each function takes the
//! shared state (its store and desired manifests) and the time, and
//! returns a [`RecoveryError`]; `api/` authorises a request, calls one of
//! them and shapes the reply, and the workers call them on their schedule.

pub mod drill;
pub mod plan;
pub mod steps;
#[cfg(test)]
pub(crate) mod testing;

use pulih_model::manifest::types::RecoveryPlanSpec;

use crate::store::{PlanRunRow, StoreError};

/// Why a recovery action was refused or failed. `api/` maps each to an
/// HTTP status and a stable error code (`error.rs`).
#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    /// A server, agency, drill or plan run that does not exist.
    #[error("{0}")]
    NotFound(String),
    /// Not possible in the current state (already running, not stopped…).
    #[error("{0}")]
    Conflict(String),
    /// A value of the request is not acceptable.
    #[error("{0}")]
    Invalid(String),
    /// The agency's manifest does not consent to a drill.
    #[error("{0}")]
    ConsentMissing(String),
    /// No RecoveryPlan of that name.
    #[error("{0}")]
    UnknownPlan(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Stored data the controller cannot read back (a run's spec).
    #[error("{0}")]
    Corrupt(String),
}

pub type RecoveryResult<T> = Result<T, RecoveryError>;

/// The plan's spec as it was applied when the run started.
pub fn spec_of(run: &PlanRunRow) -> RecoveryResult<RecoveryPlanSpec> {
    serde_json::from_str(&run.spec_json)
        .map_err(|e| RecoveryError::Corrupt(format!("the spec of plan run {}: {e}", run.id)))
}

/// What the DRC executor does with a queued recovery: start it, report it
/// passed or failed; then the plan run moves on, as the API would.
#[cfg(test)]
fn execute_for_test(st: &crate::state::Shared, id: &str, passed: bool) {
    use testing::{NOW, report};
    assert!(drill::start(st, "drc", id, NOW).unwrap(), "{id} starts");
    drill::finish(st, "drc", id, &report(st, id, passed), NOW).unwrap();
    plan::on_finished(st, id, NOW);
}
