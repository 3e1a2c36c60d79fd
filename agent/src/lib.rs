//! pulih-agent: the agent on a PD server and the DRC executor (DESIGN.md
//! §1, §6). Both are one process kind, `pulih agent --role pd|drc`, on one
//! pull loop:
//!
//! - [`pull`]: enrol with a one-time token, heartbeat with the host's facts,
//!   hand what the heartbeat returns to the role, deliver the role's
//!   outbox (results; drill reports), stop when cancelled.
//! - [`pd`]: what only a PD server's agent does: cached assignment, cron
//!   schedule, replication runs (with Docker capture), verify, restore and
//!   the primary's side of a failback.
//! - [`drc`]: what only the DRC executor does: drills, failover, the DRC's
//!   side of a failback, teardown, health checks, replicated images.
//!
//! Shared by both: [`docker`] (the engine), `state` (state-dir files),
//! `snapshots` (a server's own snapshots), `config` (config helpers).

mod config;
pub mod docker;
pub mod drc;
pub mod pd;
mod pull;
mod snapshots;
mod state;

pub use drc::{DrcConfig, DrcExecutor};
pub use pd::Agent;
pub use pd::config::AgentConfig;
