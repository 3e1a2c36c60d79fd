//! The append-only DRC gateway (`pulih drc serve`, DESIGN.md §1,
//! docs/design/gateway.md): an S3 endpoint for the subset of S3 the
//! engine uses, in front of the DRC's real store (Garage, any S3, or a
//! directory), whose credentials no client ever sees.
//!
//! - Every client holds an issued credential ([`creds`]) naming its role
//!   and agency; each agency is one bucket, and a credential reaches only
//!   its own agency's bucket (an executor: those of the agencies that
//!   granted its target).
//! - Writes create: a key that exists is never written again (a resend of
//!   the same bytes is answered as the first write was), and no client
//!   can delete, except the configured maintenance credential, and never
//!   an object younger than the retention floor.
//! - The [`index`] records for every object when the gateway received it
//!   and which credential wrote it; listings and `Last-Modified` come from
//!   it, so "newest" and retention use the gateway's clock, not one a
//!   writer can set.

pub mod access;
pub mod config;
pub mod feed;
pub mod floors;
pub use pulih_core::gateway_creds as creds;
pub mod import;
pub mod index;
pub mod keys;
pub mod serve;
pub mod service;
pub mod state;
pub mod upstream;
