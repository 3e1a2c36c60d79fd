//! Shared support for Pulih's tests: the end-to-end tests under `tests/`
//! (test targets of the `pulih` package) and `pulih-core`'s storage suite.
//!
//! It spawns processes — `docker`, `garage`, and the `pulih` binary
//! whose path the test passes in ([`Pulih`], from
//! `env!("CARGO_BIN_EXE_pulih")`) — runs plain std threads (the
//! [`netem`] link), and depends on no pulih crate, so the core's own
//! tests can use it without a dependency cycle.
//!
//! One module per concern:
//! - [`docker`]: docker commands, the test images built from
//!   `tests/images/*.sh`, volumes, containers and networks, and
//!   [`docker::Cleanup`] / [`docker::Scope`], which remove what a test made
//!   even when it panics;
//! - [`garage`]: a real Garage S3 server on loopback, and a three-node
//!   cluster in containers;
//! - [`controller`], [`agent`] and [`executor`]: starting `pulih controller`,
//!   `pulih agent` and the DRC executor, and waiting for them;
//! - [`manifests`]: the DRC target, agencies, and the manifest directory;
//! - [`report`]: the steps and checks of a drill or failover report;
//! - [`repo`]: the walidata's repository commands and the repository
//!   [`repo::Fixture`]; [`tree`]: source trees and exact tree comparison;
//! - [`netem`]: a WAN link on loopback, a TCP proxy that adds a round-trip
//!   time and caps the bandwidth (also the `pulih-netem` binary the
//!   benchmark scripts run);
//! - small helpers: [`process`] (children killed on drop, `run_ok`,
//!   `last_json`), [`wait`], [`net`], [`clock`], [`secret`].
//!
//! The next issue adds an S3 gateway harness here, beside the Garage
//! harness.

pub mod agent;
pub mod clock;
pub mod controller;
pub mod docker;
pub mod executor;
pub mod garage;
pub mod manifests;
pub mod net;
pub mod netem;
pub mod process;
pub mod pulih;
pub mod repo;
pub mod report;
pub mod secret;
pub mod tls;
pub mod tree;
pub mod wait;

pub use process::{Proc, last_json, run_ok};
pub use pulih::Pulih;
pub use secret::write_secret;
pub use wait::{wait_for, wait_until};
