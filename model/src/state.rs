//! Every state and kind that crosses the API or the controller's store, as
//! an enum serialised to a stable string (the same strings the API and the
//! SQLite rows have always carried). Each has `as_str()`, `FromStr` (an
//! unknown string is an [`UnknownValue`] naming the type and the value)
//! and `Display`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A string that names no value of a state or kind enum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownValue {
    /// The enum (e.g. `DrillState`).
    pub of: &'static str,
    pub value: String,
    /// The strings it knows.
    pub expected: &'static [&'static str],
}

impl std::fmt::Display for UnknownValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` is not a {} (expected one of: {})",
            self.value,
            self.of,
            self.expected.join(", ")
        )
    }
}

impl std::error::Error for UnknownValue {}

/// Defines a state or kind enum over fixed strings.
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $var:ident = $s:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $s)] $var, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$var),+];
            const STRINGS: &'static [&'static str] = &[$($s),+];

            /// The stable string (on the wire and in the store).
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$var => $s,)+
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownValue;

            fn from_str(s: &str) -> Result<Self, UnknownValue> {
                match s {
                    $($s => Ok($name::$var),)+
                    _ => Err(UnknownValue {
                        of: stringify!($name),
                        value: s.to_string(),
                        expected: Self::STRINGS,
                    }),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad(self.as_str())
            }
        }
    };
}

string_enum! {
    /// Whether a recovery is a drill (isolated, torn down), a failover
    /// (service network, left running) or a failback.
    pub enum RecoveryKind {
        Drill = "drill",
        Failover = "failover",
        /// Ends a failover: what changed at the DRC is replicated back and the
        /// DRC's copy is stopped and removed.
        Failback = "failback",
    }
}

string_enum! {
    /// A drill, failover or failback, as the controller keeps it; a report
    /// is only ever `passed` or `failed`.
    pub enum DrillState {
        Queued = "queued",
        Running = "running",
        Passed = "passed",
        Failed = "failed",
    }
}

impl DrillState {
    /// Queued or running: not finished.
    pub fn is_open(self) -> bool {
        matches!(self, DrillState::Queued | DrillState::Running)
    }
}

string_enum! {
    /// A run of an agent's job (replication, verify, restore, a failback's
    /// restore on the primary).
    pub enum RunState {
        Queued = "queued",
        Running = "running",
        Succeeded = "succeeded",
        /// A snapshot was saved but some sources were unreadable.
        Partial = "partial",
        Failed = "failed",
    }
}

impl RunState {
    /// What a finished run reports: succeeded, partial or failed.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            RunState::Succeeded | RunState::Partial | RunState::Failed
        )
    }
}

string_enum! {
    /// What a job (and the run it makes) does on the agent's server.
    pub enum JobKind {
        Replicate = "replicate",
        Verify = "verify",
        Restore = "restore",
        /// The primary's restore of what a failback replicated back.
        Failback = "failback",
    }
}

/// A run's kind is its job's kind.
pub type RunKind = JobKind;

string_enum! {
    /// A recovery plan's run.
    pub enum PlanRunState {
        /// A failover plan whose manifest names approvers: it starts once
        /// each role approved; `rollback` cancels it.
        AwaitingApproval = "awaiting-approval",
        Running = "running",
        /// A group or a pre step failed: `resume` retries what failed,
        /// `rollback` fails back what a failover plan brought up.
        Stopped = "stopped",
        Passed = "passed",
        RollingBack = "rolling-back",
        RolledBack = "rolled-back",
    }
}

impl PlanRunState {
    /// A run that still holds its plan: a new run of it waits for ops.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            PlanRunState::AwaitingApproval
                | PlanRunState::Running
                | PlanRunState::Stopped
                | PlanRunState::RollingBack
        )
    }
}

string_enum! {
    /// One group of a plan run, from its servers' newest attempts.
    pub enum PlanGroupState {
        /// Nothing of it queued yet.
        Waiting = "waiting",
        Running = "running",
        Passed = "passed",
        Failed = "failed",
    }
}

string_enum! {
    /// What a plan run's step record is: an approval, or a run of a pre or
    /// post step.
    pub enum StepPhase {
        Approval = "approval",
        Pre = "pre",
        Post = "post",
    }
}

string_enum! {
    /// One retention run on one agency's repository.
    pub enum MaintenanceState {
        Queued = "queued",
        Running = "running",
        Succeeded = "succeeded",
        /// No maintenance key for the agency yet.
        Skipped = "skipped",
        Failed = "failed",
    }
}

string_enum! {
    /// How a health check probes a recovered container.
    pub enum CheckKind {
        Http = "http",
        Tcp = "tcp",
        Exec = "exec",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each value against the string the API and the store carried before
    /// the enums: serde_json both ways, `as_str`, `FromStr` and `Display`.
    fn check<T>(table: &[(T, &str)], all: &[T])
    where
        T: Copy
            + PartialEq
            + std::fmt::Debug
            + std::fmt::Display
            + std::str::FromStr<Err = UnknownValue>
            + Serialize
            + serde::de::DeserializeOwned,
    {
        assert_eq!(table.len(), all.len(), "every value is in the table");
        for (v, s) in table {
            assert_eq!(serde_json::to_string(v).unwrap(), format!("\"{s}\""));
            assert_eq!(serde_json::from_str::<T>(&format!("\"{s}\"")).unwrap(), *v);
            assert_eq!(s.parse::<T>().unwrap(), *v);
            assert_eq!(v.to_string(), *s);
        }
        let e = "no-such-value".parse::<T>().unwrap_err();
        assert_eq!(e.value, "no-such-value");
        assert!(serde_json::from_str::<T>("\"no-such-value\"").is_err());
    }

    #[test]
    fn every_state_and_kind_keeps_its_string() {
        use DrillState as D;
        check(
            &[
                (RecoveryKind::Drill, "drill"),
                (RecoveryKind::Failover, "failover"),
                (RecoveryKind::Failback, "failback"),
            ],
            RecoveryKind::ALL,
        );
        check(
            &[
                (D::Queued, "queued"),
                (D::Running, "running"),
                (D::Passed, "passed"),
                (D::Failed, "failed"),
            ],
            D::ALL,
        );
        check(
            &[
                (RunState::Queued, "queued"),
                (RunState::Running, "running"),
                (RunState::Succeeded, "succeeded"),
                (RunState::Partial, "partial"),
                (RunState::Failed, "failed"),
            ],
            RunState::ALL,
        );
        check(
            &[
                (JobKind::Replicate, "replicate"),
                (JobKind::Verify, "verify"),
                (JobKind::Restore, "restore"),
                (JobKind::Failback, "failback"),
            ],
            JobKind::ALL,
        );
        check(
            &[
                (PlanRunState::AwaitingApproval, "awaiting-approval"),
                (PlanRunState::Running, "running"),
                (PlanRunState::Stopped, "stopped"),
                (PlanRunState::Passed, "passed"),
                (PlanRunState::RollingBack, "rolling-back"),
                (PlanRunState::RolledBack, "rolled-back"),
            ],
            PlanRunState::ALL,
        );
        check(
            &[
                (PlanGroupState::Waiting, "waiting"),
                (PlanGroupState::Running, "running"),
                (PlanGroupState::Passed, "passed"),
                (PlanGroupState::Failed, "failed"),
            ],
            PlanGroupState::ALL,
        );
        check(
            &[
                (StepPhase::Approval, "approval"),
                (StepPhase::Pre, "pre"),
                (StepPhase::Post, "post"),
            ],
            StepPhase::ALL,
        );
        check(
            &[
                (MaintenanceState::Queued, "queued"),
                (MaintenanceState::Running, "running"),
                (MaintenanceState::Succeeded, "succeeded"),
                (MaintenanceState::Skipped, "skipped"),
                (MaintenanceState::Failed, "failed"),
            ],
            MaintenanceState::ALL,
        );
        check(
            &[
                (CheckKind::Http, "http"),
                (CheckKind::Tcp, "tcp"),
                (CheckKind::Exec, "exec"),
            ],
            CheckKind::ALL,
        );
    }

    #[test]
    fn an_unknown_string_says_what_it_is_not() {
        let e = "done".parse::<PlanRunState>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "`done` is not a PlanRunState (expected one of: awaiting-approval, running, stopped, passed, rolling-back, rolled-back)"
        );
        assert!(PlanRunState::Stopped.is_open() && !PlanRunState::Passed.is_open());
        assert!(DrillState::Queued.is_open() && !DrillState::Failed.is_open());
        assert!(RunState::Partial.is_finished() && !RunState::Running.is_finished());
        assert_eq!(format!("{:<8}|", DrillState::Passed), "passed  |");
    }
}
