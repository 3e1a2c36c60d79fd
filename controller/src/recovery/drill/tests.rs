use pulih_model::state::{DrillState, JobKind, RunState};

use super::*;
use crate::recovery::execute_for_test as execute;
use crate::recovery::testing::{MANIFESTS, NOW, report, set, state};

#[test]
fn a_scheduled_drill_is_due_once_per_firing_for_consenting_agencies_with_something_to_start() {
    let set = set(MANIFESTS);
    // 2026-11-24T00:00:00Z; the newest firing was 1 Nov 03:00 WITA = 31 Oct 19:00Z.
    let now = NOW;
    let fired = 1_793_473_200;
    let enrolled_long_ago = |_: &str| Some(0);
    assert_eq!(
        due_drills(&set, &enrolled_long_ago, now),
        [("web".to_string(), fired)],
        "only `web`: `files` has no recovery containers, bpkad gave no consent"
    );
    // The same firing an hour later: the same (server, firing), so the
    // same drill id, queued once.
    assert_eq!(
        due_drills(&set, &enrolled_long_ago, now + 3600),
        [("web".to_string(), fired)]
    );
    // An agent enrolled after the firing has nothing owed yet.
    assert!(due_drills(&set, &|_| Some(fired + 1), now).is_empty());
    assert!(due_drills(&set, &|_| None, now).is_empty());
}

fn ask<'a>(kind: RecoveryKind, server: &'a str, id: &str) -> Ask<'a> {
    Ask {
        kind,
        server,
        snapshot: None,
        trigger: "manual",
        actor: "admin",
        id: id.into(),
        why: "",
    }
}

#[test]
fn a_drill_is_queued_once_started_once_and_reported_once() {
    let dir = tempfile::tempdir().unwrap();
    let st = state(dir.path(), MANIFESTS);
    // What cannot run is refused before anything is recorded.
    assert!(matches!(
        queue(&st, ask(RecoveryKind::Drill, "keuangan", "d0"), NOW),
        Err(RecoveryError::ConsentMissing(_))
    ));
    assert!(matches!(
        queue(&st, ask(RecoveryKind::Drill, "files", "d0"), NOW),
        Err(RecoveryError::Invalid(_))
    ));
    assert!(matches!(
        queue(&st, ask(RecoveryKind::Drill, "nope", "d0"), NOW),
        Err(RecoveryError::NotFound(_))
    ));
    let mut bad = ask(RecoveryKind::Drill, "web", "d0");
    bad.snapshot = Some("not-hex".into());
    assert!(matches!(
        queue(&st, bad, NOW),
        Err(RecoveryError::Invalid(_))
    ));

    let q = queue(&st, ask(RecoveryKind::Drill, "web", "d1"), NOW).unwrap();
    assert_eq!((q.id.as_str(), q.drc_target.as_str()), ("d1", "drc"));
    queue(&st, ask(RecoveryKind::Drill, "web", "d1"), NOW).unwrap();
    assert_eq!(
        st.store.queued_drills("drc").unwrap().len(),
        1,
        "queued once"
    );
    let row = st.store.drill("d1").unwrap().unwrap();
    assert_eq!(
        (row.state, row.kind),
        (DrillState::Queued, RecoveryKind::Drill)
    );

    // Another target's executor may not start it.
    assert!(matches!(
        start(&st, "other", "d1", NOW),
        Err(RecoveryError::Conflict(_))
    ));
    assert!(start(&st, "drc", "d1", NOW).unwrap());
    assert!(!start(&st, "drc", "d1", NOW).unwrap(), "started once");
    assert_eq!(
        st.store.drill("d1").unwrap().unwrap().state,
        DrillState::Running
    );

    // A report of something else, or of no outcome, is refused.
    let mut wrong = report(&st, "d1", true);
    wrong.kind = RecoveryKind::Failover;
    assert!(matches!(
        finish(&st, "drc", "d1", &wrong, NOW),
        Err(RecoveryError::Invalid(_))
    ));
    let mut open = report(&st, "d1", true);
    open.state = DrillState::Running;
    assert!(matches!(
        finish(&st, "drc", "d1", &open, NOW),
        Err(RecoveryError::Invalid(_))
    ));
    finish(&st, "drc", "d1", &report(&st, "d1", false), NOW + 60).unwrap();
    // A second report does not change the outcome.
    finish(&st, "drc", "d1", &report(&st, "d1", true), NOW + 90).unwrap();
    let row = st.store.drill("d1").unwrap().unwrap();
    assert_eq!(
        (row.state, row.finished_at),
        (DrillState::Failed, Some(NOW + 60))
    );
    assert_eq!(
        error_of(&row, report_of(&row).as_ref()).as_deref(),
        Some("health check `web` failed: status 500")
    );
}

#[test]
fn a_silent_executor_fails_its_recovery_after_the_stale_limit() {
    let dir = tempfile::tempdir().unwrap();
    let st = state(dir.path(), MANIFESTS);
    queue(&st, ask(RecoveryKind::Drill, "web", "d1"), NOW).unwrap();
    let started = NOW - STALE_RECOVERY_SECONDS;
    assert!(start(&st, "drc", "d1", started).unwrap());
    assert!(expire_stale(&st, NOW).unwrap().is_empty(), "not yet");
    assert_eq!(expire_stale(&st, NOW + 1).unwrap(), ["d1"]);
    let row = st.store.drill("d1").unwrap().unwrap();
    assert_eq!(row.state, DrillState::Failed);
    assert!(
        error_of(&row, None)
            .unwrap()
            .contains("did not report within 6 hours")
    );
}

#[test]
fn a_failover_is_one_at_a_time_and_its_failback_queues_the_primarys_restore() {
    let dir = tempfile::tempdir().unwrap();
    let st = state(dir.path(), MANIFESTS);
    // A failover needs no drill consent; a failback needs a failover.
    assert!(matches!(
        failback(&st, "keuangan", "failover-authority", "SK 1", NOW),
        Err(RecoveryError::Conflict(_))
    ));
    let f = failover(&st, "keuangan", "failover-authority", "SK 1", None, NOW).unwrap();
    assert!(f.id.starts_with("failover-20261124T000000-"), "{}", f.id);
    assert!(matches!(
        failover(&st, "keuangan", "failover-authority", "SK 2", None, NOW),
        Err(RecoveryError::Conflict(_))
    ));
    execute(&st, &f.id, true);
    assert_eq!(st.store.active_failovers().unwrap()["keuangan"], f.id);

    let b = failback(&st, "keuangan", "failover-authority", "SK 3", NOW).unwrap();
    let row = st.store.drill(&b.id).unwrap().unwrap();
    assert_eq!(
        (row.kind, row.snapshot.as_str()),
        (RecoveryKind::Failback, f.id.as_str())
    );
    assert!(matches!(
        failback(&st, "keuangan", "failover-authority", "SK 3", NOW),
        Err(RecoveryError::Conflict(_))
    ));
    assert!(start(&st, "drc", &b.id, NOW).unwrap());
    let mut no_snapshot = report(&st, &b.id, true);
    no_snapshot.snapshot_id = None;
    assert!(matches!(
        finish(&st, "drc", &b.id, &no_snapshot, NOW),
        Err(RecoveryError::Invalid(_))
    ));
    finish(&st, "drc", &b.id, &report(&st, &b.id, true), NOW).unwrap();
    assert!(st.store.active_failovers().unwrap().is_empty());
    let restore = st.store.run(&primary_run_key(&b.id)).unwrap().unwrap();
    assert_eq!(
        (restore.server.as_str(), restore.kind, restore.state),
        ("keuangan", JobKind::Failback, RunState::Queued)
    );
}

#[test]
fn the_scheduled_drill_of_a_firing_is_queued_once() {
    let dir = tempfile::tempdir().unwrap();
    let st = state(dir.path(), MANIFESTS);
    queue_scheduled(&st, NOW);
    assert!(
        st.store.drills(None, 10).unwrap().is_empty(),
        "no agent enrolled"
    );
    st.store.set_agent_credential("web", &[1; 32], 0).unwrap();
    queue_scheduled(&st, NOW);
    queue_scheduled(&st, NOW + 30);
    let drills = st.store.drills(None, 10).unwrap();
    assert_eq!(drills.len(), 1);
    assert_eq!(
        (drills[0].id.as_str(), drills[0].trigger.as_str()),
        ("drill-sched-web-1793473200", "schedule")
    );
}
