use pulih_model::manifest::types::{KeyHolderRole, PlanGroup};
use pulih_model::state::{DrillState, PlanRunState, RecoveryKind, StepPhase};

use super::GroupProgress::{Failed, Partial, Passed, Running, Waiting};
use super::*;
use crate::recovery::execute_for_test as execute;
use crate::recovery::testing::{MANIFESTS, NOW, PLANS, settle, state};
use crate::store::DrillRow;

fn member(group: &str, server: &str, state: DrillState) -> PlanMember {
    PlanMember {
        group: group.into(),
        server: server.into(),
        drill: DrillRow {
            id: format!("{group}-{server}"),
            server: server.into(),
            perangkat_daerah: "dinkes".into(),
            drc_target: "drc".into(),
            trigger: "plan".into(),
            state,
            requested_by: "admin".into(),
            snapshot: "latest".into(),
            created_at: 0,
            started_at: None,
            finished_at: None,
            report_json: None,
            kind: RecoveryKind::Drill,
        },
    }
}

#[test]
fn a_group_is_as_far_as_its_servers_newest_attempts() {
    let g = |name: &str, servers: &[&str]| PlanGroup {
        name: name.into(),
        servers: servers.iter().map(|s| s.to_string()).collect(),
        depends_on: Vec::new(),
    };
    let spec = RecoveryPlanSpec {
        description: None,
        groups: vec![
            g("data", &["db"]),
            g("app", &["web", "api"]),
            g("edge", &["proxy"]),
            g("batch", &["etl"]),
            g("late", &["x"]),
        ],
        approvals: Vec::new(),
        pre_steps: Vec::new(),
        post_steps: Vec::new(),
    };
    let members = [
        member("data", "db", DrillState::Failed),
        member("data", "db", DrillState::Passed),
        member("app", "web", DrillState::Passed),
        member("app", "api", DrillState::Running),
        member("edge", "proxy", DrillState::Passed),
        member("batch", "etl", DrillState::Passed),
        member("batch", "etl", DrillState::Failed),
    ];
    // A retried server counts by its newest attempt; a group with a
    // server not queued yet is partial (and shown as running).
    assert_eq!(
        group_states(&spec, &members),
        [Passed, Running, Passed, Failed, Waiting]
    );
    let partial = [member("app", "web", DrillState::Passed)];
    assert_eq!(group_states(&spec, &partial)[1], Partial);
    assert_eq!(Partial.view(), PlanGroupState::Running);
}

fn run(st: &AppState, id: &str) -> PlanRunRow {
    st.store.plan_run(id).unwrap().unwrap()
}

/// The newest attempt of each server of the run, by group.
fn newest(st: &AppState, id: &str) -> Vec<(String, String, DrillState)> {
    let mut out: Vec<(String, String, DrillState)> = Vec::new();
    for m in st.store.plan_members(id).unwrap() {
        out.retain(|(g, s, _)| !(*g == m.group && *s == m.server));
        out.push((m.group, m.server, m.drill.state));
    }
    out
}

fn member_id(st: &AppState, run: &str, server: &str) -> String {
    st.store
        .plan_members(run)
        .unwrap()
        .into_iter()
        .rev()
        .find(|m| m.server == server)
        .unwrap()
        .drill
        .id
}

#[test]
fn a_drill_plan_runs_group_by_group_stops_at_a_failed_group_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let st = state(dir.path(), &format!("{MANIFESTS}{PLANS}"));
    let none = None;
    assert!(matches!(
        start(&st, RecoveryKind::Drill, "nope", "admin", None, &none, NOW),
        Err(RecoveryError::UnknownPlan(_))
    ));
    assert!(matches!(
        start(
            &st,
            RecoveryKind::Drill,
            "layanan",
            "admin",
            None,
            &Some("ab".into()),
            NOW
        ),
        Err(RecoveryError::Invalid(_))
    ));
    let id = start(
        &st,
        RecoveryKind::Drill,
        "layanan",
        "admin",
        None,
        &none,
        NOW,
    )
    .unwrap();
    assert_eq!(run(&st, &id).state, PlanRunState::Running);
    // Only the first group is queued: the second depends on it.
    let q = |g: &str, s: &str, d: DrillState| (g.to_string(), s.to_string(), d);
    assert_eq!(newest(&st, &id), [q("data", "db", DrillState::Queued)]);
    assert!(matches!(
        start(
            &st,
            RecoveryKind::Drill,
            "layanan",
            "admin",
            None,
            &none,
            NOW
        ),
        Err(RecoveryError::Conflict(_))
    ));

    execute(&st, &member_id(&st, &id, "db"), true);
    assert_eq!(
        newest(&st, &id),
        [
            q("data", "db", DrillState::Passed),
            q("aplikasi", "app", DrillState::Queued),
            q("aplikasi", "web", DrillState::Queued),
        ]
    );
    execute(&st, &member_id(&st, &id, "app"), false);
    // Not stopped while web still runs.
    assert_eq!(run(&st, &id).state, PlanRunState::Running);
    execute(&st, &member_id(&st, &id, "web"), true);
    let stopped = run(&st, &id);
    assert_eq!(stopped.state, PlanRunState::Stopped);
    let why = stopped.error.unwrap();
    assert!(
        why.starts_with("group aplikasi stopped the plan: drill ")
            && why.ends_with("of app failed: health check `web` failed: status 500"),
        "{why}"
    );

    // Resume: only the failed server is tried again, as attempt 2.
    resume(&st, &stopped_run(&st, &id), "admin", NOW).unwrap();
    assert_eq!(run(&st, &id).state, PlanRunState::Running);
    let retry = member_id(&st, &id, "app");
    assert_eq!(retry, format!("{id}-g1-app-2"));
    assert!(matches!(
        resume(&st, &run(&st, &id), "admin", NOW),
        Err(RecoveryError::Conflict(_))
    ));
    execute(&st, &retry, true);
    let passed = run(&st, &id);
    assert_eq!(
        (passed.state, passed.finished_at),
        (PlanRunState::Passed, Some(NOW))
    );
    // A passed drill plan's drills are torn down by the executor.
    assert_eq!(st.store.pending_plan_teardowns("drc").unwrap(), [id]);
}

fn stopped_run(st: &AppState, id: &str) -> PlanRunRow {
    let r = run(st, id);
    assert_eq!(r.state, PlanRunState::Stopped);
    r
}

#[test]
fn a_stopped_drill_plan_rolls_back_to_closed() {
    let dir = tempfile::tempdir().unwrap();
    let st = state(dir.path(), &format!("{MANIFESTS}{PLANS}"));
    let id = start(
        &st,
        RecoveryKind::Drill,
        "layanan",
        "admin",
        None,
        &None,
        NOW,
    )
    .unwrap();
    assert!(matches!(
        rollback(&st, &run(&st, &id), "admin", "SK 9", NOW),
        Err(RecoveryError::Conflict(_))
    ));
    execute(&st, &member_id(&st, &id, "db"), false);
    rollback(&st, &stopped_run(&st, &id), "admin", "SK 9", NOW).unwrap();
    assert_eq!(run(&st, &id).state, PlanRunState::RolledBack);
    assert!(matches!(
        resume(&st, &run(&st, &id), "admin", NOW),
        Err(RecoveryError::Conflict(_))
    ));
}

#[tokio::test]
async fn a_failover_plan_waits_for_approval_runs_its_steps_and_rolls_back() {
    let dir = tempfile::tempdir().unwrap();
    let st = state(dir.path(), &format!("{MANIFESTS}{PLANS}"));
    let actor = "failover-authority";
    let id = start(
        &st,
        RecoveryKind::Failover,
        "darurat",
        actor,
        Some("SK 1"),
        &None,
        NOW,
    )
    .unwrap();
    assert_eq!(run(&st, &id).state, PlanRunState::AwaitingApproval);
    assert!(
        newest(&st, &id).is_empty(),
        "nothing runs before the approval"
    );
    assert!(matches!(
        approve(&st, &id, KeyHolderRole::Walidata, "Kepala", NOW),
        Err(RecoveryError::Conflict(_))
    ));
    assert!(matches!(
        approve(&st, &id, KeyHolderRole::DkisHead, " ", NOW),
        Err(RecoveryError::Invalid(_))
    ));
    approve(&st, &id, KeyHolderRole::DkisHead, "Kepala DKIS", NOW).unwrap();
    assert_eq!(run(&st, &id).state, PlanRunState::Running);
    assert!(matches!(
        approve(&st, &id, KeyHolderRole::DkisHead, "Kepala DKIS", NOW),
        Err(RecoveryError::Conflict(_))
    ));

    // The pre step fails (DIR/ready is missing): the run stops before
    // its first group.
    settle(&st).await;
    let stopped = stopped_run(&st, &id);
    assert!(
        stopped
            .error
            .as_deref()
            .unwrap()
            .starts_with("pre step `umumkan` failed: exit code 1"),
        "{:?}",
        stopped.error
    );
    assert!(newest(&st, &id).is_empty());
    // Fixed: resume runs it again, then the groups.
    std::fs::write(dir.path().join("ready"), "").unwrap();
    resume(&st, &stopped, actor, NOW).unwrap();
    settle(&st).await;
    let steps: Vec<(StepPhase, bool)> = st
        .store
        .plan_steps(&id)
        .unwrap()
        .iter()
        .map(|s| (s.phase, s.ok))
        .collect();
    assert_eq!(
        steps,
        [
            (StepPhase::Approval, true),
            (StepPhase::Pre, false),
            (StepPhase::Pre, true)
        ]
    );
    let db = member_id(&st, &id, "db");
    assert_eq!(
        st.store.drill(&db).unwrap().unwrap().kind,
        RecoveryKind::Failover
    );
    execute(&st, &db, true);
    execute(&st, &member_id(&st, &id, "app"), true);
    assert_eq!(run(&st, &id).state, PlanRunState::Passed);
    // The post step runs once the run passed.
    settle(&st).await;
    assert!(dir.path().join("posted").exists());
    assert_eq!(st.store.active_failovers().unwrap().len(), 2);

    // Roll back: both servers are failed back, the later group first.
    rollback(&st, &run(&st, &id), actor, "SK 2", NOW).unwrap();
    assert_eq!(run(&st, &id).state, PlanRunState::RollingBack);
    let failbacks: Vec<String> = st
        .store
        .plan_members(&id)
        .unwrap()
        .into_iter()
        .filter(|m| m.group == ROLLBACK)
        .map(|m| m.drill.id)
        .collect();
    assert_eq!(
        failbacks,
        [format!("{id}-rb-app-1"), format!("{id}-rb-db-1")]
    );
    execute(&st, &failbacks[0], true);
    assert_eq!(run(&st, &id).state, PlanRunState::RollingBack);
    execute(&st, &failbacks[1], false);
    // db is still up at the DRC: stopped, saying so; roll back again.
    let r = stopped_run(&st, &id);
    assert!(
        r.error
            .as_deref()
            .unwrap()
            .contains("failback of db failed")
    );
    rollback(&st, &r, actor, "SK 3", NOW).unwrap();
    execute(&st, &format!("{id}-rb-db-2"), true);
    let done = run(&st, &id);
    assert_eq!(
        (done.state, done.finished_at),
        (PlanRunState::RolledBack, Some(NOW))
    );
    assert!(st.store.active_failovers().unwrap().is_empty());
}

#[test]
fn a_failover_plan_not_yet_approved_is_cancelled_by_a_rollback() {
    let dir = tempfile::tempdir().unwrap();
    let st = state(dir.path(), &format!("{MANIFESTS}{PLANS}"));
    let actor = "failover-authority";
    let id = start(
        &st,
        RecoveryKind::Failover,
        "darurat",
        actor,
        Some("SK 1"),
        &None,
        NOW,
    )
    .unwrap();
    rollback(&st, &run(&st, &id), actor, "SK 1", NOW).unwrap();
    assert_eq!(run(&st, &id).state, PlanRunState::RolledBack);
    // The plan is free again.
    start(
        &st,
        RecoveryKind::Drill,
        "darurat",
        "admin",
        None,
        &None,
        NOW,
    )
    .unwrap();
}
