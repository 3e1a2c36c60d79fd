//! What only a PD server's agent does.

pub mod capture;
pub mod config;
mod failback;
pub mod schedule;
