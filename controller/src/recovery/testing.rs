//! What the recovery tests share: a state on a SQLite store in a temporary
//! directory, with manifests, a fixed clock, and a stand-in for the DRC
//! executor. No server, no HTTP.

use std::sync::Arc;
use std::time::Duration;

use pulih_model::drill::DrillReport;
use pulih_model::manifest::ManifestSet;
use pulih_model::manifest::types::KeyHolderRole;
use pulih_model::state::DrillState;
use tokio_util::sync::CancellationToken;

use crate::config::ControllerConfig;
use crate::state::{AppState, Desired, Shared, Tokens};
use crate::store::sqlite::SqliteStore;

/// 2026-11-24T00:00:00Z.
pub const NOW: i64 = 1_795_478_400;

fn fixed() -> i64 {
    NOW
}

/// A DRC target, an agency that consents to monthly drills (`dkis`: `web`
/// has recovery containers, `files` none), one that does not consent
/// (`bpkad`: `keuangan`).
pub const MANIFESTS: &str = r#"
apiVersion: pulih.io/v1alpha1
kind: DrcTarget
metadata: {name: drc}
spec: {url: /srv/drc}
---
apiVersion: pulih.io/v1alpha1
kind: PerangkatDaerah
metadata: {name: dkis}
spec:
  code: DKIS
  name: Dinas Komunikasi dan Informatika
  walidata: {name: Kepala Dinas, contact: walidata@dkis.example}
  drcTarget: drc
  drills: {consent: true, schedule: "0 3 1 * *"}
---
apiVersion: pulih.io/v1alpha1
kind: PerangkatDaerah
metadata: {name: bpkad}
spec:
  code: BPKAD
  name: BPKAD
  walidata: {name: Kepala Badan, contact: walidata@bpkad.example}
  drcTarget: drc
  drills: {consent: false}
---
apiVersion: pulih.io/v1alpha1
kind: Server
metadata: {name: web}
spec:
  perangkatDaerah: dkis
  location: pusat-data
  centralization: {status: centralized}
  sources: [{path: /srv}]
  recovery:
    containers: [{name: web, image: "web:1"}]
---
apiVersion: pulih.io/v1alpha1
kind: Server
metadata: {name: files}
spec:
  perangkatDaerah: dkis
  location: pusat-data
  centralization: {status: centralized}
  sources: [{path: /srv}]
---
apiVersion: pulih.io/v1alpha1
kind: Server
metadata: {name: keuangan}
spec:
  perangkatDaerah: bpkad
  location: pusat-data
  centralization: {status: centralized}
  sources: [{path: /srv}]
  recovery:
    containers: [{name: app, image: "app:1"}]
"#;

/// An agency (`dinkes`, drills consented, none scheduled) with `db` and
/// `app`, and two plans of them: `layanan` (no approvals, no steps) and
/// `darurat` (the approval of dkis-head, a pre step that passes once
/// `DIR/ready` exists, a post step that touches `DIR/posted`).
pub const PLANS: &str = r#"
---
apiVersion: pulih.io/v1alpha1
kind: PerangkatDaerah
metadata: {name: dinkes}
spec:
  code: DINKES
  name: Dinas Kesehatan
  walidata: {name: Kepala Dinas, contact: walidata@dinkes.example}
  drcTarget: drc
  drills: {consent: true}
---
apiVersion: pulih.io/v1alpha1
kind: Server
metadata: {name: db}
spec:
  perangkatDaerah: dinkes
  location: pusat-data
  centralization: {status: centralized}
  sources: [{path: /srv}]
  recovery:
    containers: [{name: db, image: "db:1"}]
---
apiVersion: pulih.io/v1alpha1
kind: Server
metadata: {name: app}
spec:
  perangkatDaerah: dinkes
  location: pusat-data
  centralization: {status: centralized}
  sources: [{path: /srv}]
  recovery:
    containers: [{name: app, image: "app:1"}]
---
apiVersion: pulih.io/v1alpha1
kind: RecoveryPlan
metadata: {name: layanan}
spec:
  groups:
    - {name: data, servers: [db]}
    - {name: aplikasi, servers: [app, web], dependsOn: [data]}
---
apiVersion: pulih.io/v1alpha1
kind: RecoveryPlan
metadata: {name: darurat}
spec:
  groups:
    - {name: data, servers: [db]}
    - {name: aplikasi, servers: [app], dependsOn: [data]}
  approvals: [dkis-head]
  preSteps:
    - {name: umumkan, command: [test, -e, "DIR/ready"]}
  postSteps:
    - {name: pulih, command: [touch, "DIR/posted"]}
"#;

pub fn set(manifests: &str) -> ManifestSet {
    ManifestSet::from_sources(&[("m.yaml".to_string(), manifests.as_bytes().to_vec())])
        .expect("the test manifests are valid")
}

/// A state (its store in `dir`) of `manifests`, at [`NOW`] for ever, with
/// a failover authorization and an approver for dkis-head.
pub fn state(dir: &std::path::Path, manifests: &str) -> Shared {
    let store = Arc::new(SqliteStore::open(&dir.join("c.db")).unwrap());
    let tokens = Tokens {
        admin: "admin-token",
        failover: Some("failover-token"),
        approvers: [(KeyHolderRole::DkisHead, "approver-token")].into(),
    };
    let desired = Desired {
        set: set(&manifests.replace("DIR", &dir.display().to_string())),
        revision: Some(1),
    };
    let config = ControllerConfig::new(dir.to_path_buf());
    Arc::new(
        AppState::new(store, config, &tokens, desired, CancellationToken::new()).with_clock(fixed),
    )
}

/// The report the executor would send for recovery `id`.
pub fn report(st: &AppState, id: &str, passed: bool) -> DrillReport {
    let row = st.store.drill(id).unwrap().expect("the recovery exists");
    DrillReport {
        id: id.into(),
        kind: row.kind,
        server: row.server,
        perangkat_daerah: row.perangkat_daerah,
        state: if passed {
            DrillState::Passed
        } else {
            DrillState::Failed
        },
        error: (!passed).then(|| "health check `web` failed: status 500".into()),
        started_at: "2026-11-24T00:00:00Z".into(),
        finished_at: "2026-11-24T00:01:00Z".into(),
        snapshot_id: Some("ab".repeat(32)),
        snapshot_time: None,
        rto_seconds: Some(60.0),
        rpo_seconds: None,
        rto_target_seconds: None,
        rpo_target_seconds: None,
        files_restored: 1,
        bytes_restored: 1,
        steps: Vec::new(),
        checks: Vec::new(),
        logs: Default::default(),
        teardown: None,
        order: None,
    }
}

/// Waits until the background tasks (a plan's steps) are done.
pub async fn settle(st: &AppState) {
    for _ in 0..1000 {
        if st.tasks.is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("background tasks still running");
}
