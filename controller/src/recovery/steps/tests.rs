use pulih_model::state::RecoveryKind;

use super::*;

fn row(phase: StepPhase, name: &str, ok: bool) -> PlanStepRow {
    PlanStepRow {
        run: "r".into(),
        phase,
        name: name.into(),
        ok,
        detail: String::new(),
        actor: "controller".into(),
        at: 0,
        duration_s: 0.0,
    }
}

fn step(name: &str) -> PlanStep {
    PlanStep {
        name: name.into(),
        command: vec!["true".into()],
    }
}

#[test]
fn a_phase_is_done_when_each_steps_latest_run_passed() {
    use StepPhase::{Post, Pre};
    let of = [step("a"), step("b")];
    assert!(!steps_done(&[], Pre, &of), "nothing ran");
    assert!(steps_done(&[], Pre, &[]), "no steps: nothing to wait for");
    let ran = [row(Pre, "a", true), row(Pre, "b", false)];
    assert!(!steps_done(&ran, Pre, &of), "b failed");
    let ran = [
        row(Pre, "a", true),
        row(Pre, "b", false),
        row(Pre, "b", true),
    ];
    assert!(steps_done(&ran, Pre, &of), "b passed on resume");
    assert!(!steps_done(&ran, Post, &of), "another phase's runs");
    let ran = [
        row(Pre, "a", true),
        row(Pre, "b", true),
        row(Pre, "a", false),
    ];
    assert!(!steps_done(&ran, Pre, &of), "the latest run of a counts");
}

#[tokio::test]
async fn a_step_reports_its_exit_status_and_the_end_of_its_output() {
    use StepPhase::{Post, Pre};
    let run = PlanRunRow {
        id: "plan-failover-x".into(),
        plan: "layanan".into(),
        kind: RecoveryKind::Failover,
        state: PlanRunState::Running,
        spec_json: "{}".into(),
        requested_by: "failover-authority".into(),
        order: Some("SK 1/2026".into()),
        created_at: 0,
        finished_at: None,
        error: None,
    };
    let sh = |script: &str| PlanStep {
        name: "s".into(),
        command: vec!["sh".into(), "-c".into(), script.into()],
    };
    let (ok, detail) = execute(
        &run,
        Pre,
        &sh("echo $PULIH_PHASE $PULIH_PLAN_RUN $PULIH_ORDER"),
    )
    .await;
    assert!(ok);
    assert_eq!(detail, "exit code 0: pre plan-failover-x SK 1/2026");
    let (ok, detail) = execute(&run, Post, &sh("echo no status page >&2; exit 3")).await;
    assert!(!ok);
    assert_eq!(detail, "exit code 3: no status page");
    let (ok, detail) = execute(&run, Pre, &sh("head -c 5000 /dev/zero | tr '\\0' x")).await;
    assert!(ok);
    assert_eq!(
        detail
            .split_once(": …")
            .unwrap()
            .1
            .chars()
            .filter(|c| *c == 'x')
            .count(),
        DETAIL_MAX,
        "the end only"
    );
    let (ok, detail) = execute(
        &run,
        Pre,
        &PlanStep {
            name: "s".into(),
            command: vec!["/nonexistent/status-page".into()],
        },
    )
    .await;
    assert!(!ok);
    assert!(
        detail.starts_with("cannot run /nonexistent/status-page"),
        "{detail}"
    );
}
