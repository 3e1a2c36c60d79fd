//! Waiting for a condition, with a deadline and a useful failure.

use std::time::{Duration, Instant};

use crate::process::Proc;

/// Polls `f` every 500 ms until it holds; after `timeout`, panics with the
/// logs of `logs` (the processes whose side of the story explains it).
pub fn wait_for(what: &str, timeout: Duration, logs: &[&Proc], f: impl FnMut() -> bool) {
    poll(timeout, Duration::from_millis(500), f, || {
        let logs: Vec<String> = logs
            .iter()
            .map(|p| format!("--- {}:\n{}", p.name, p.log_text()))
            .collect();
        format!("timed out waiting for {what}\n{}", logs.join("\n"))
    })
}

/// Polls `f` every 50 ms until it holds; fails after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, f: impl FnMut() -> bool) {
    poll(timeout, Duration::from_millis(50), f, || {
        format!("timed out after {timeout:?} waiting for {what}")
    })
}

fn poll(
    timeout: Duration,
    every: Duration,
    mut f: impl FnMut() -> bool,
    failure: impl FnOnce() -> String,
) {
    let deadline = Instant::now() + timeout;
    while !f() {
        if Instant::now() >= deadline {
            panic!("{}", failure());
        }
        std::thread::sleep(every);
    }
}
