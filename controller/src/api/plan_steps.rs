//! A failover plan's approvals and its pre and post steps (DESIGN.md §5).
//!
//! A RecoveryPlan may name roles (`approvals`) that must each approve a
//! real failover of it: the run waits in `awaiting-approval` until every
//! role's holder approved with the token the controller's `[approvers]`
//! gives that role. Its `preSteps` run on the controller before the first
//! group is queued (one failing stops the run; `resume` runs it again) and
//! its `postSteps` once every group passed (a failure is recorded and
//! audited; the servers are up either way). A drill of the plan needs no
//! approval and runs no step: the steps act on the world (status pages,
//! notices), which a drill must not.

use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use pulih_model::api::{PlanApprovalView, PlanApproveRequest, PlanRunView, PlanStepView};
use pulih_model::manifest::types::{PlanStep, RecoveryPlanSpec};

use super::plans::{advance, run_view, spec_of, stop_run};
use super::{ApiJson, Shared, internal, now};
use crate::compliance::rfc3339;
use crate::error::ApiError;
use crate::store::{PlanRunRow, PlanStepRow};

/// How long one step may run before it is killed and counted failed.
const STEP_TIMEOUT: Duration = Duration::from_secs(600);
/// How much of a step's output the run keeps (its end).
const DETAIL_MAX: usize = 2000;

/// `POST /plan-runs/{id}/approve`: one role's approval of a failover plan
/// run; the run starts once every role the plan names approved.
pub async fn approve(
    State(st): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<PlanApproveRequest>,
) -> Result<Json<PlanRunView>, ApiError> {
    st.require_approver(&headers, req.role)?;
    let name = req.name.trim();
    if name.is_empty() || name.len() > 200 || name.chars().any(char::is_control) {
        return Err(ApiError::InvalidBody(
            "`name`: who approves, 1 to 200 characters on one line".into(),
        ));
    }
    let role = req.role.as_str();
    let run = st
        .store
        .plan_run(&id)
        .map_err(internal)?
        .ok_or_else(|| ApiError::NotFound(format!("no plan run `{id}`")))?;
    let spec = spec_of(&run)?;
    if !spec.approvals.contains(&req.role) {
        return Err(ApiError::Conflict(format!(
            "plan {} does not ask for the approval of {role} (it asks: {})",
            run.plan,
            roles(&spec)
        )));
    }
    if run.state != "awaiting-approval" {
        return Err(ApiError::Conflict(format!(
            "plan run {id} is {}: only a run awaiting approval takes approvals",
            run.state
        )));
    }
    let t = now();
    let fresh = st
        .store
        .add_plan_step(&PlanStepRow {
            run: id.clone(),
            phase: "approval".into(),
            name: role.into(),
            ok: true,
            detail: String::new(),
            actor: name.into(),
            at: t,
            duration_s: 0.0,
        })
        .map_err(internal)?;
    if !fresh {
        return Err(ApiError::Conflict(format!(
            "{role} approved plan run {id} already"
        )));
    }
    st.store
        .audit(
            &format!("approver:{role}"),
            "plan.approve",
            &format!("{id}: plan {}, approved by {name} as {role}", run.plan),
            t,
        )
        .map_err(internal)?;
    let steps = st.store.plan_steps(&id).map_err(internal)?;
    let all = spec.approvals.iter().all(|r| {
        steps
            .iter()
            .any(|s| s.phase == "approval" && s.name == r.as_str())
    });
    if all
        && st
            .store
            .set_plan_run_state(&id, &["awaiting-approval"], "running", None, None)
            .map_err(internal)?
    {
        st.store
            .audit(
                "controller",
                "plan.approved",
                &format!(
                    "{id}: plan {}, every approval given ({}); the run starts",
                    run.plan,
                    roles(&spec)
                ),
                t,
            )
            .map_err(internal)?;
        // The approval stands whatever happens next: a server that cannot
        // be queued stops the run, which its view says.
        if let Err(e) = advance(&st, &id) {
            tracing::error!(run = %id, error = %e, "cannot advance the approved plan run");
        }
    }
    run_view(&st, &id).map(Json)
}

fn roles(spec: &RecoveryPlanSpec) -> String {
    spec.approvals
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The start of a failover plan's run: `awaiting-approval` when its plan
/// names approvers (each of whom this controller must know), else
/// `running`.
pub fn initial_state(
    st: &Shared,
    plan: &str,
    spec: &RecoveryPlanSpec,
) -> Result<&'static str, ApiError> {
    if spec.approvals.is_empty() {
        return Ok("running");
    }
    if let Some(r) = spec.approvals.iter().find(|r| !st.has_approver(**r)) {
        return Err(ApiError::Conflict(format!(
            "plan {plan} needs the approval of {} and this controller has no approver for {} (set [approvers] {} in its config)",
            roles(spec),
            r.as_str(),
            r.as_str()
        )));
    }
    Ok("awaiting-approval")
}

/// Whether every step of `phase` has a successful run on record.
pub fn steps_done(steps: &[PlanStepRow], phase: &str, of: &[PlanStep]) -> bool {
    of.iter().all(|p| {
        steps
            .iter()
            .rev()
            .find(|s| s.phase == phase && s.name == p.name)
            .is_some_and(|s| s.ok)
    })
}

/// Runs a failover run's `phase` steps in the background (once at a
/// time per run and phase). Pre steps: those not yet passed, in order; the
/// first failure stops the run, success moves it on. Post steps: all, in
/// order, stopping at the first failure, which is recorded on the run.
pub fn spawn(st: &Shared, run: &PlanRunRow, phase: &'static str) {
    let key = format!("{}:{phase}", run.id);
    if !st
        .plan_steps_running
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key.clone())
    {
        return;
    }
    let st = st.clone();
    let run = run.clone();
    tokio::spawn(async move {
        let outcome = run_steps(&st, &run, phase).await;
        st.plan_steps_running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&key);
        match outcome {
            // Passed (or stopped the run): move it on now.
            Ok(()) if phase == "pre" => {
                if let Err(e) = advance(&st, &run.id) {
                    tracing::error!(run = %run.id, error = %e, "cannot advance the recovery plan run");
                }
            }
            Ok(()) => {}
            // The state store failed: the 30 s loop tries again, not at once.
            Err(e) => tracing::error!(run = %run.id, phase, error = %e, "recovery plan steps"),
        }
    });
}

async fn run_steps(st: &Shared, run: &PlanRunRow, phase: &'static str) -> Result<(), ApiError> {
    let spec = spec_of(run)?;
    let list = if phase == "pre" {
        &spec.pre_steps
    } else {
        &spec.post_steps
    };
    let done = st.store.plan_steps(&run.id).map_err(internal)?;
    for step in list {
        if phase == "pre" && steps_done(&done, phase, std::slice::from_ref(step)) {
            continue;
        }
        // Post steps announce the service is back: not once a rollback
        // began.
        if phase == "post"
            && st
                .store
                .plan_run(&run.id)
                .map_err(internal)?
                .is_none_or(|r| r.state != "passed")
        {
            tracing::warn!(run = %run.id, step = %step.name, "the run is no longer passed; its remaining post steps are not run");
            return Ok(());
        }
        let started = Instant::now();
        let (ok, detail) = execute(run, phase, step).await;
        let t = now();
        st.store
            .add_plan_step(&PlanStepRow {
                run: run.id.clone(),
                phase: phase.into(),
                name: step.name.clone(),
                ok,
                detail: detail.clone(),
                actor: "controller".into(),
                at: t,
                duration_s: started.elapsed().as_secs_f64(),
            })
            .map_err(internal)?;
        let action = format!("plan.{phase}-step");
        st.store
            .audit(
                "controller",
                &action,
                &format!(
                    "{}: {} {} {}: {detail}",
                    run.id,
                    step.name,
                    step.command.join(" "),
                    if ok { "passed" } else { "failed" }
                ),
                t,
            )
            .map_err(internal)?;
        tracing::info!(run = %run.id, phase, step = %step.name, ok, %detail, "recovery plan step");
        if ok {
            continue;
        }
        let why = format!("{phase} step `{}` failed: {detail}", step.name);
        if phase == "pre" {
            // Nothing of the plan is queued yet: stop before the first group.
            stop_run(st, run, &why)?;
        } else {
            // The servers are up; the run stays passed and says what failed.
            let finished = st
                .store
                .plan_run(&run.id)
                .map_err(internal)?
                .and_then(|r| r.finished_at);
            st.store
                .set_plan_run_state(&run.id, &["passed"], "passed", Some(&why), finished)
                .map_err(internal)?;
        }
        return Ok(());
    }
    Ok(())
}

/// Runs one step's command (no shell), with the run in its environment;
/// (passed, exit status and the end of its output).
async fn execute(run: &PlanRunRow, phase: &str, step: &PlanStep) -> (bool, String) {
    let Some((prog, args)) = step.command.split_first() else {
        return (false, "the step has no command".into());
    };
    let child = tokio::process::Command::new(prog)
        .args(args)
        .env("PULIH_PLAN", &run.plan)
        .env("PULIH_PLAN_RUN", &run.id)
        .env("PULIH_PHASE", phase)
        .env("PULIH_STEP", &step.name)
        .env("PULIH_ORDER", run.order.as_deref().unwrap_or(""))
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(STEP_TIMEOUT, child).await {
        Err(_) => (false, format!("killed after {} s", STEP_TIMEOUT.as_secs())),
        Ok(Err(e)) => (false, format!("cannot run {prog}: {e}")),
        Ok(Ok(out)) => {
            let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&out.stderr));
            let text = text.trim();
            let tail = match text.char_indices().rev().nth(DETAIL_MAX - 1) {
                Some((i, _)) if i > 0 => format!("…{}", &text[i..]),
                _ => text.to_string(),
            };
            let status = match out.status.code() {
                Some(c) => format!("exit code {c}"),
                None => "killed by a signal".into(),
            };
            (
                out.status.success(),
                if tail.is_empty() {
                    status
                } else {
                    format!("{status}: {tail}")
                },
            )
        }
    }
}

/// The approvals and steps of a run, for its view.
pub fn views(
    spec: &RecoveryPlanSpec,
    run: &PlanRunRow,
    steps: &[PlanStepRow],
) -> (Vec<PlanApprovalView>, Vec<PlanStepView>) {
    let approvals = if run.kind == "failover" {
        spec.approvals
            .iter()
            .map(|r| {
                let given = steps
                    .iter()
                    .find(|s| s.phase == "approval" && s.name == r.as_str());
                PlanApprovalView {
                    role: *r,
                    approved_by: given.map(|s| s.actor.clone()),
                    approved_at: given.map(|s| rfc3339(s.at)),
                }
            })
            .collect()
    } else {
        Vec::new()
    };
    let steps = steps
        .iter()
        .filter(|s| s.phase != "approval")
        .map(|s| PlanStepView {
            phase: s.phase.clone(),
            name: s.name.clone(),
            ok: s.ok,
            detail: s.detail.clone(),
            at: rfc3339(s.at),
            duration_s: s.duration_s,
        })
        .collect();
    (approvals, steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(phase: &str, name: &str, ok: bool) -> PlanStepRow {
        PlanStepRow {
            run: "r".into(),
            phase: phase.into(),
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
        let of = [step("a"), step("b")];
        assert!(!steps_done(&[], "pre", &of), "nothing ran");
        assert!(steps_done(&[], "pre", &[]), "no steps: nothing to wait for");
        let ran = [row("pre", "a", true), row("pre", "b", false)];
        assert!(!steps_done(&ran, "pre", &of), "b failed");
        let ran = [
            row("pre", "a", true),
            row("pre", "b", false),
            row("pre", "b", true),
        ];
        assert!(steps_done(&ran, "pre", &of), "b passed on resume");
        assert!(!steps_done(&ran, "post", &of), "another phase's runs");
        let ran = [
            row("pre", "a", true),
            row("pre", "b", true),
            row("pre", "a", false),
        ];
        assert!(!steps_done(&ran, "pre", &of), "the latest run of a counts");
    }

    #[tokio::test]
    async fn a_step_reports_its_exit_status_and_the_end_of_its_output() {
        let run = PlanRunRow {
            id: "plan-failover-x".into(),
            plan: "layanan".into(),
            kind: "failover".into(),
            state: "running".into(),
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
            "pre",
            &sh("echo $PULIH_PHASE $PULIH_PLAN_RUN $PULIH_ORDER"),
        )
        .await;
        assert!(ok);
        assert_eq!(detail, "exit code 0: pre plan-failover-x SK 1/2026");
        let (ok, detail) = execute(&run, "post", &sh("echo no status page >&2; exit 3")).await;
        assert!(!ok);
        assert_eq!(detail, "exit code 3: no status page");
        let (ok, detail) = execute(&run, "pre", &sh("head -c 5000 /dev/zero | tr '\\0' x")).await;
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
            "pre",
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
}
