//! Drills (uji pemulihan) and what makes them possible: the record of a
//! server's Docker workloads that the agent writes into each snapshot
//! ([`DockerCapture`]), and the report a drill or failover leaves
//! ([`DrillReport`], as JSON and as a self-contained HTML page).
//!
//! No Docker here: the agent captures, the DRC executor restores and
//! starts; both agree on these types.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// File name of the capture record inside the agent's staging directory;
/// the snapshot carries it at `<staging>/pulih-docker.json`.
pub const CAPTURE_FILE: &str = "pulih-docker.json";

/// Snapshot tag that names the staging directory (an absolute path) whose
/// `pulih-docker.json` describes the snapshot's Docker content.
pub const CAPTURE_TAG: &str = "docker-capture";

/// What one replication run captured of the server's Docker engine. Every
/// path is absolute, as backed up (so under a restore target `T` the data
/// is at `T/<path>`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DockerCapture {
    pub version: u32,
    pub server: String,
    /// RFC 3339, when the capture started.
    pub captured_at: String,
    /// Named volume → the directory that holds its data.
    #[serde(default)]
    pub volumes: BTreeMap<String, String>,
    /// Image reference (`name:tag`) → its `docker save` archive.
    #[serde(default)]
    pub images: BTreeMap<String, CapturedImage>,
    /// Dump `fileName` → the file that holds the command's output.
    #[serde(default)]
    pub dumps: BTreeMap<String, String>,
    /// Protected container → how it ran.
    #[serde(default)]
    pub containers: BTreeMap<String, CapturedContainer>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CapturedImage {
    /// The engine's image id (`sha256:…`) when it was saved.
    pub id: String,
    /// Path of the `docker save` tar archive.
    pub archive: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CapturedContainer {
    pub image: String,
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub cmd: Vec<String>,
    /// Mount destination in the container → the backed-up directory.
    #[serde(default)]
    pub mounts: BTreeMap<String, String>,
}

pub use crate::state::{CheckKind, DrillState, RecoveryKind};

/// One timed step of a drill.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DrillStep {
    pub name: String,
    /// Seconds from the drill's start to this step's start.
    pub at_s: f64,
    pub duration_s: f64,
    pub ok: bool,
    pub detail: String,
}

/// One health check's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CheckOutcome {
    pub name: String,
    pub kind: CheckKind,
    pub ok: bool,
    pub attempts: u32,
    /// Seconds from the drill's start until it passed (or gave up).
    pub at_s: f64,
    pub detail: String,
}

/// What the teardown removed and what it found left afterwards (by the
/// drill's label). A clean drill leaves zeros.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Teardown {
    pub containers_removed: u32,
    pub networks_removed: u32,
    pub volumes_removed: u32,
    pub scratch_removed: bool,
    pub containers_left: u32,
    pub networks_left: u32,
    pub volumes_left: u32,
    /// Images the recovery loaded from the snapshot, removed again.
    #[serde(default)]
    pub images_removed: u32,
    /// Images it loaded that another recovery's container used at its
    /// end: left for that one.
    #[serde(default)]
    pub images_in_use: u32,
    #[serde(default)]
    pub errors: Vec<String>,
}

impl Teardown {
    pub fn clean(&self) -> bool {
        self.scratch_removed
            && self.containers_left == 0
            && self.networks_left == 0
            && self.volumes_left == 0
            && self.errors.is_empty()
    }
}

/// The report of one drill or failover.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DrillReport {
    pub id: String,
    pub kind: RecoveryKind,
    pub server: String,
    pub perangkat_daerah: String,
    /// `passed` or `failed`.
    pub state: DrillState,
    /// Why it failed, in one sentence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub started_at: String,
    pub finished_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_time: Option<String>,
    /// Drill start → every health check passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rto_seconds: Option<f64>,
    /// Drill start − the snapshot's time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpo_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rto_target_seconds: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpo_target_seconds: Option<u64>,
    /// Files and bytes restored for the drill.
    pub files_restored: u64,
    pub bytes_restored: u64,
    pub steps: Vec<DrillStep>,
    pub checks: Vec<CheckOutcome>,
    /// The last lines of each container's log, kept when the drill failed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub logs: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teardown: Option<Teardown>,
    /// A failover or failback run at the DRC alone: the order or approval
    /// it ran under (through the controller, the audit log keeps it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<String>,
}

/// Where the report of recovery `id` of `server` is kept in the DRC store:
/// `reports/<kind>s/<server>/<id>.json` (beside the repositories' objects,
/// docs/FORMAT.md §2).
pub fn report_store_key(kind: RecoveryKind, server: &str, id: &str) -> String {
    format!("reports/{}s/{server}/{id}.json", kind.as_str())
}

impl DrillReport {
    /// Where the report is kept in the DRC store.
    pub fn store_key(&self) -> String {
        report_store_key(self.kind, &self.server, &self.id)
    }

    pub fn passed(&self) -> bool {
        self.state == DrillState::Passed
    }

    pub fn rto_met(&self) -> Option<bool> {
        Some(self.rto_seconds? <= self.rto_target_seconds? as f64)
    }

    pub fn rpo_met(&self) -> Option<bool> {
        Some(self.rpo_seconds? <= self.rpo_target_seconds? as f64)
    }

    /// A self-contained HTML page (no scripts, no external resources) for
    /// ops and auditors.
    pub fn to_html(&self) -> String {
        let mut h = String::new();
        let title = format!("Pulih {} {} — {}", self.kind, self.id, self.server);
        let _ = write!(
            h,
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\
             <style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}\
             td,th{{border:1px solid #999;padding:.3em .6em;text-align:left}}\
             .ok{{color:#060}}.bad{{color:#a00}}pre{{background:#f4f4f4;padding:.5em;overflow:auto}}</style>\
             </head><body><h1>{}</h1>",
            esc(&title),
            esc(&title)
        );
        let verdict = if self.passed() {
            "<span class=\"ok\">PASSED</span>"
        } else {
            "<span class=\"bad\">FAILED</span>"
        };
        let _ = write!(h, "<p>{verdict}");
        if let Some(e) = &self.error {
            let _ = write!(h, ": {}", esc(e));
        }
        h.push_str("</p><table>");
        let secs = |v: Option<f64>| v.map_or("—".to_string(), |s| format!("{s:.1} s"));
        let target = |v: Option<u64>| v.map_or("—".to_string(), |s| format!("{s} s"));
        let met = |v: Option<bool>| match v {
            Some(true) => "<span class=\"ok\">met</span>",
            Some(false) => "<span class=\"bad\">missed</span>",
            None => "—",
        };
        for (k, v) in [
            ("Agency (PD)", esc(&self.perangkat_daerah)),
            ("Server", esc(&self.server)),
            ("Started", esc(&self.started_at)),
            ("Finished", esc(&self.finished_at)),
            ("Order", esc(self.order.as_deref().unwrap_or("—"))),
            (
                "Snapshot",
                esc(&format!(
                    "{} ({})",
                    self.snapshot_id.as_deref().unwrap_or("—"),
                    self.snapshot_time.as_deref().unwrap_or("—")
                )),
            ),
            (
                "RTO",
                format!(
                    "{} (target {}) {}",
                    secs(self.rto_seconds),
                    target(self.rto_target_seconds),
                    met(self.rto_met())
                ),
            ),
            (
                "RPO",
                format!(
                    "{} (target {}) {}",
                    secs(self.rpo_seconds),
                    target(self.rpo_target_seconds),
                    met(self.rpo_met())
                ),
            ),
            (
                "Restored",
                format!(
                    "{} files, {} bytes",
                    self.files_restored, self.bytes_restored
                ),
            ),
        ] {
            let _ = write!(h, "<tr><th>{k}</th><td>{v}</td></tr>");
        }
        h.push_str("</table><h2>Steps</h2><table><tr><th>Step</th><th>At</th><th>Took</th><th></th><th>Detail</th></tr>");
        for s in &self.steps {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{:.1} s</td><td>{:.2} s</td><td>{}</td><td>{}</td></tr>",
                esc(&s.name),
                s.at_s,
                s.duration_s,
                mark(s.ok),
                esc(&s.detail)
            );
        }
        h.push_str("</table><h2>Health checks</h2><table><tr><th>Check</th><th>Kind</th><th>Attempts</th><th>At</th><th></th><th>Detail</th></tr>");
        for c in &self.checks {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.1} s</td><td>{}</td><td>{}</td></tr>",
                esc(&c.name),
                c.kind,
                c.attempts,
                c.at_s,
                mark(c.ok),
                esc(&c.detail)
            );
        }
        h.push_str("</table>");
        if let Some(t) = &self.teardown {
            let _ = write!(
                h,
                "<h2>Teardown</h2><p>{} — removed {} containers, {} networks, {} volumes, scratch data {}; left: {} containers, {} networks, {} volumes.</p>",
                if t.clean() {
                    "<span class=\"ok\">clean</span>"
                } else {
                    "<span class=\"bad\">NOT clean</span>"
                },
                t.containers_removed,
                t.networks_removed,
                t.volumes_removed,
                if t.scratch_removed {
                    "removed"
                } else {
                    "NOT removed"
                },
                t.containers_left,
                t.networks_left,
                t.volumes_left
            );
            for e in &t.errors {
                let _ = write!(h, "<p class=\"bad\">{}</p>", esc(e));
            }
        }
        for (name, log) in &self.logs {
            let _ = write!(h, "<h3>Log of {}</h3><pre>{}</pre>", esc(name), esc(log));
        }
        h.push_str("</body></html>\n");
        h
    }
}

fn mark(ok: bool) -> &'static str {
    if ok {
        "<span class=\"ok\">ok</span>"
    } else {
        "<span class=\"bad\">failed</span>"
    }
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> DrillReport {
        DrillReport {
            id: "d1".into(),
            kind: RecoveryKind::Drill,
            server: "simpus<db>".into(),
            perangkat_daerah: "dinkes".into(),
            state: DrillState::Failed,
            error: Some("health check `web` failed: status 500".into()),
            started_at: "2026-11-25T01:00:00Z".into(),
            finished_at: "2026-11-25T01:01:00Z".into(),
            snapshot_id: Some("ab".into()),
            snapshot_time: Some("2026-11-24T17:00:00Z".into()),
            rto_seconds: None,
            rpo_seconds: Some(28_800.0),
            rto_target_seconds: Some(14_400),
            rpo_target_seconds: Some(90_000),
            files_restored: 3,
            bytes_restored: 10,
            steps: vec![],
            checks: vec![],
            logs: BTreeMap::from([("web".to_string(), "<script>x</script>".to_string())]),
            teardown: Some(Teardown {
                scratch_removed: true,
                ..Default::default()
            }),
            order: None,
        }
    }

    #[test]
    fn targets_are_met_only_when_measured_and_within() {
        let r = report();
        assert_eq!(r.rto_met(), None);
        assert_eq!(r.rpo_met(), Some(true));
        let mut late = r.clone();
        late.rpo_seconds = Some(90_001.0);
        assert_eq!(late.rpo_met(), Some(false));
        assert!(r.teardown.as_ref().unwrap().clean());
    }

    #[test]
    fn the_html_report_escapes_what_containers_and_names_say() {
        let html = report().to_html();
        assert!(html.contains("simpus&lt;db&gt;"));
        assert!(html.contains("&lt;script&gt;x&lt;/script&gt;"));
        assert!(!html.contains("<script>"));
        assert!(html.contains("FAILED"));
        assert!(html.contains("missed") || html.contains("met"));
    }

    #[test]
    fn a_report_round_trips_through_json() {
        let r = report();
        let back: DrillReport = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
    }
}
