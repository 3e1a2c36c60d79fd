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
//!
//! This module records approvals and runs steps; moving the run on
//! afterwards is [`super::plan`]'s.

use std::time::{Duration, Instant};

use pulih_model::manifest::types::{KeyHolderRole, PlanStep, RecoveryPlanSpec};
use pulih_model::state::{PlanRunState, StepPhase};

use super::{RecoveryError, RecoveryResult, spec_of};
use crate::state::AppState;
use crate::store::{PlanRunRow, PlanStepRow};

/// How long one step may run before it is killed and counted failed.
const STEP_TIMEOUT: Duration = Duration::from_secs(600);
/// How much of a step's output the run keeps (its end).
const DETAIL_MAX: usize = 2000;

/// The roles a plan asks the approval of, for messages.
pub fn roles(spec: &RecoveryPlanSpec) -> String {
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
    st: &AppState,
    plan: &str,
    spec: &RecoveryPlanSpec,
) -> RecoveryResult<PlanRunState> {
    if spec.approvals.is_empty() {
        return Ok(PlanRunState::Running);
    }
    if let Some(r) = spec.approvals.iter().find(|r| !st.has_approver(**r)) {
        return Err(RecoveryError::Conflict(format!(
            "plan {plan} needs the approval of {} and this controller has no approver for {} (set [approvers] {} in its config)",
            roles(spec),
            r.as_str(),
            r.as_str()
        )));
    }
    Ok(PlanRunState::AwaitingApproval)
}

/// Records `name`'s approval of run `id` as `role` (whose token the caller
/// checked). True when it was the last approval missing: the run moved
/// `awaiting-approval → running`, and the caller moves it on.
pub fn approve(
    st: &AppState,
    id: &str,
    role: KeyHolderRole,
    name: &str,
    now: i64,
) -> RecoveryResult<bool> {
    let name = name.trim();
    if name.is_empty() || name.len() > 200 || name.chars().any(char::is_control) {
        return Err(RecoveryError::Invalid(
            "`name`: who approves, 1 to 200 characters on one line".into(),
        ));
    }
    let role_name = role.as_str();
    let run = st
        .store
        .plan_run(id)?
        .ok_or_else(|| RecoveryError::NotFound(format!("no plan run `{id}`")))?;
    let spec = spec_of(&run)?;
    if !spec.approvals.contains(&role) {
        return Err(RecoveryError::Conflict(format!(
            "plan {} does not ask for the approval of {role_name} (it asks: {})",
            run.plan,
            roles(&spec)
        )));
    }
    if run.state != PlanRunState::AwaitingApproval {
        return Err(RecoveryError::Conflict(format!(
            "plan run {id} is {}: only a run awaiting approval takes approvals",
            run.state
        )));
    }
    let fresh = st.store.add_plan_step(&PlanStepRow {
        run: id.to_string(),
        phase: StepPhase::Approval,
        name: role_name.into(),
        ok: true,
        detail: String::new(),
        actor: name.into(),
        at: now,
        duration_s: 0.0,
    })?;
    if !fresh {
        return Err(RecoveryError::Conflict(format!(
            "{role_name} approved plan run {id} already"
        )));
    }
    st.store.audit(
        &format!("approver:{role_name}"),
        "plan.approve",
        &format!("{id}: plan {}, approved by {name} as {role_name}", run.plan),
        now,
    )?;
    let steps = st.store.plan_steps(id)?;
    let all = spec.approvals.iter().all(|r| {
        steps
            .iter()
            .any(|s| s.phase == StepPhase::Approval && s.name == r.as_str())
    });
    if all
        && st.store.set_plan_run_state(
            id,
            &[PlanRunState::AwaitingApproval],
            PlanRunState::Running,
            None,
            None,
        )?
    {
        st.store.audit(
            "controller",
            "plan.approved",
            &format!(
                "{id}: plan {}, every approval given ({}); the run starts",
                run.plan,
                roles(&spec)
            ),
            now,
        )?;
        return Ok(true);
    }
    Ok(false)
}

/// Whether every step of `phase` has a successful run on record.
pub fn steps_done(steps: &[PlanStepRow], phase: StepPhase, of: &[PlanStep]) -> bool {
    of.iter().all(|p| {
        steps
            .iter()
            .rev()
            .find(|s| s.phase == phase && s.name == p.name)
            .is_some_and(|s| s.ok)
    })
}

/// Runs a failover run's `phase` steps, each recorded and audited. Pre
/// steps: those not yet passed, in order, up to the first failure, whose
/// reason is returned (the caller stops the run). Post steps: all, in
/// order, while the run stays passed, up to the first failure, which is
/// recorded on the (still passed) run.
pub async fn run(
    st: &AppState,
    run: &PlanRunRow,
    phase: StepPhase,
) -> RecoveryResult<Option<String>> {
    let spec = spec_of(run)?;
    let list = if phase == StepPhase::Pre {
        &spec.pre_steps
    } else {
        &spec.post_steps
    };
    let done = st.store.plan_steps(&run.id)?;
    for step in list {
        if phase == StepPhase::Pre && steps_done(&done, phase, std::slice::from_ref(step)) {
            continue;
        }
        // Post steps announce the service is back: not once a rollback
        // began.
        if phase == StepPhase::Post
            && st
                .store
                .plan_run(&run.id)?
                .is_none_or(|r| r.state != PlanRunState::Passed)
        {
            tracing::warn!(run = %run.id, step = %step.name, "the run is no longer passed; its remaining post steps are not run");
            return Ok(None);
        }
        let started = Instant::now();
        let (ok, detail) = execute(run, phase, step).await;
        let t = st.now();
        st.store.add_plan_step(&PlanStepRow {
            run: run.id.clone(),
            phase,
            name: step.name.clone(),
            ok,
            detail: detail.clone(),
            actor: "controller".into(),
            at: t,
            duration_s: started.elapsed().as_secs_f64(),
        })?;
        st.store.audit(
            "controller",
            &format!("plan.{phase}-step"),
            &format!(
                "{}: {} {} {}: {detail}",
                run.id,
                step.name,
                step.command.join(" "),
                if ok { "passed" } else { "failed" }
            ),
            t,
        )?;
        tracing::info!(run = %run.id, phase = phase.as_str(), step = %step.name, ok, %detail, "recovery plan step");
        if ok {
            continue;
        }
        let why = format!("{phase} step `{}` failed: {detail}", step.name);
        if phase == StepPhase::Pre {
            // Nothing of the plan is queued yet: the run stops before its
            // first group.
            return Ok(Some(why));
        }
        // The servers are up; the run stays passed and says what failed.
        let finished = st.store.plan_run(&run.id)?.and_then(|r| r.finished_at);
        st.store.set_plan_run_state(
            &run.id,
            &[PlanRunState::Passed],
            PlanRunState::Passed,
            Some(&why),
            finished,
        )?;
        return Ok(None);
    }
    Ok(None)
}

/// Runs one step's command (no shell), with the run in its environment;
/// (passed, exit status and the end of its output).
async fn execute(run: &PlanRunRow, phase: StepPhase, step: &PlanStep) -> (bool, String) {
    let Some((prog, args)) = step.command.split_first() else {
        return (false, "the step has no command".into());
    };
    let child = tokio::process::Command::new(prog)
        .args(args)
        .env("PULIH_PLAN", &run.plan)
        .env("PULIH_PLAN_RUN", &run.id)
        .env("PULIH_PHASE", phase.as_str())
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

#[cfg(test)]
mod tests;
