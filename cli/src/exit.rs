//! Process exit codes (documented in the README).

/// Success.
pub const OK: u8 = 0;
/// An error: nothing was written, or what was written is not referenced.
pub const ERROR: u8 = 1;
// 2 is clap's code for a usage error.
/// A backup completed and wrote its snapshot, but some sources could not be read.
pub const PARTIAL: u8 = 3;
/// `verify` found missing or damaged data.
pub const DAMAGED: u8 = 4;
/// Input (manifests, a request) was refused as invalid; every problem is listed.
pub const INVALID: u8 = 5;
