//! pulih-core: Pulih's repository engine.
//!
//! The repository format (docs/FORMAT.md) is implemented here: the keyed
//! content-defined [`chunker`], the [`crypto`] and [`keys`] of the
//! write-only key model, [`pack`]s, [`index`] files, [`snapshot`]s and
//! [`tree`]s, and [`storage`] over `object_store`. On top of those sit the
//! operations: [`backup`], [`restore`], [`verify`], [`forget`]; [`bench`]
//! times the building blocks and a store on this machine.
//!
//! This crate has no HTTP server and no Docker; the agent and controller
//! crates build on it.

pub mod backup;
pub mod bench;
pub mod bindings;
pub mod chunker;
pub mod config;
pub mod crypto;
pub mod error;
pub mod files_cache;
pub mod forget;
pub mod gateway_creds;
pub mod holds;
pub mod id;
pub mod index;
pub mod inflight;
pub mod keys;
pub mod layout;
pub mod maintenance;
pub mod pack;
pub mod prune;
pub mod rate_limit;
pub mod repo;
pub mod restore;
pub mod snapshot;
pub mod storage;
pub mod tree;
pub mod trees;
pub mod verify;
pub mod writers;

pub use error::{Error, Result};
