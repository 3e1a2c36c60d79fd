//! What both roles' configurations share: durations written as text
//! (`15s`, `2m`) and the heartbeat's default interval.

use std::time::Duration;

use pulih_model::manifest::values::DurationText;
use serde::Deserialize;

/// The heartbeat interval unless configured: 15 s (DESIGN.md §1).
pub(crate) fn default_heartbeat() -> Duration {
    Duration::from_secs(15)
}

/// `#[serde(with = "crate::config::duration")]`: a duration as text.
pub(crate) mod duration {
    use super::*;
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        String::deserialize(d)?
            .parse::<DurationText>()
            .map(|d| d.0)
            .map_err(serde::de::Error::custom)
    }
}
