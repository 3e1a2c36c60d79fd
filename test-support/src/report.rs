//! Reading a drill or failover report (`--json`) as the tests check it.

use serde_json::Value;

/// The names of the report's steps, in order.
pub fn steps(report: &Value) -> Vec<&str> {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect()
}

/// Each health check's name and whether it passed, in order.
pub fn checks(report: &Value) -> Vec<(&str, bool)> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["ok"].as_bool().unwrap()))
        .collect()
}
