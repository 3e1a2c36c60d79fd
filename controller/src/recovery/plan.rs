//! Recovery plans (DESIGN.md §5–6): a plan's servers are recovered group by
//! group, in the plan's order, a group starting once the groups it depends
//! on are up. Each server's recovery is an ordinary drill (or failover) of
//! the DRC executor ([`super::drill`]); the run ties them together.
//!
//! ```text
//! awaiting-approval ──approve (all roles)──▶ running ──every group passed──▶ passed
//!        │                                   │  ▲                               │
//!        └──rollback──▶ rolled-back    group failed│resume              rollback (failover)
//!                            ▲               ▼  │                               ▼
//!                            └──────────── stopped ──rollback (failover)──▶ rolling-back
//! ```
//!
//! A failed group stops the run once nothing of it is still running: no
//! later group starts. Ops then `resume` it (the failed servers are tried
//! again, the rest of the plan goes on) or `rollback` it ([`rollback`]).
//!
//! The run keeps the plan's spec as it was applied when the run started,
//! so a manifest change does not reshape a run half-way.

mod rollback;

use pulih_model::manifest::types::RecoveryPlanSpec;
use pulih_model::state::{DrillState, PlanGroupState, PlanRunState, RecoveryKind, StepPhase};

pub use rollback::{resume, rollback};

use super::drill::{self, Ask};
use super::{RecoveryError, RecoveryResult, spec_of, steps};
use crate::state::{AppState, Shared};
use crate::store::{PlanMember, PlanRunRow};

/// The group name a rollback's failbacks are recorded under.
pub const ROLLBACK: &str = "rollback";

/// How far a group is, from each server's newest attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupProgress {
    /// Nothing queued.
    Waiting,
    /// Some servers done, others never queued: a controller stopped
    /// half-way.
    Partial,
    /// A server's newest attempt is queued or running.
    Running,
    Passed,
    Failed,
}

impl GroupProgress {
    /// What the API shows (a partial group is running).
    pub fn view(self) -> PlanGroupState {
        match self {
            GroupProgress::Waiting => PlanGroupState::Waiting,
            GroupProgress::Partial | GroupProgress::Running => PlanGroupState::Running,
            GroupProgress::Passed => PlanGroupState::Passed,
            GroupProgress::Failed => PlanGroupState::Failed,
        }
    }
}

/// The progress of each group of `spec`, from its servers' newest attempts.
pub fn group_states(spec: &RecoveryPlanSpec, members: &[PlanMember]) -> Vec<GroupProgress> {
    spec.groups
        .iter()
        .map(|g| {
            let latest: Vec<Option<DrillState>> = g
                .servers
                .iter()
                .map(|s| {
                    members
                        .iter()
                        .rev()
                        .find(|m| m.group == g.name && &m.server == s)
                        .map(|m| m.drill.state)
                })
                .collect();
            if latest.iter().all(Option::is_none) {
                GroupProgress::Waiting
            } else if latest.iter().any(|s| s.is_some_and(DrillState::is_open)) {
                GroupProgress::Running
            } else if latest.iter().any(Option::is_none) {
                GroupProgress::Partial
            } else if latest.iter().all(|s| *s == Some(DrillState::Passed)) {
                GroupProgress::Passed
            } else {
                GroupProgress::Failed
            }
        })
        .collect()
}

/// Starts a run of `plan` (its spec as applied now): checks what can be
/// known now, records the run and queues its first groups. A failover
/// plan that names approvers waits for them first.
pub fn start(
    st: &Shared,
    kind: RecoveryKind,
    plan: &str,
    actor: &str,
    order: Option<&str>,
    snapshot: &Option<String>,
    now: i64,
) -> RecoveryResult<String> {
    let spec = {
        let d = st.desired();
        d.set
            .recovery_plans
            .get(plan)
            .ok_or_else(|| {
                RecoveryError::UnknownPlan(format!(
                    "no RecoveryPlan `{plan}` in the applied manifests"
                ))
            })?
            .spec()
            .clone()
    };
    // Only now: a server's name answers `unknown_plan` whatever the body,
    // so the CLI's fallback to the server keeps its --snapshot.
    if snapshot.is_some() {
        return Err(RecoveryError::Invalid(
            "a plan recovers each server's latest snapshot; a snapshot id names one server's (run that server alone to choose one)".into(),
        ));
    }
    // What can be known now is checked now, not half-way through the plan.
    for g in &spec.groups {
        for server in &g.servers {
            drill::check(st, kind, server)?;
            if kind == RecoveryKind::Failover
                && let Some(other) = drill::failover_busy(st, server)?
            {
                return Err(RecoveryError::Conflict(format!(
                    "server {server} of plan {plan} already has failover {other} queued, running or active; fail it back first"
                )));
            }
        }
    }
    if let Some(r) = st
        .store
        .plan_runs(1000)?
        .into_iter()
        .find(|r| r.plan == plan && r.state.is_open())
    {
        return Err(RecoveryError::Conflict(format!(
            "plan {plan} has run {} {}: resume it or roll it back first",
            r.id, r.state
        )));
    }
    let state = match kind {
        RecoveryKind::Failover => steps::initial_state(st, plan, &spec)?,
        _ => PlanRunState::Running,
    };
    let row = PlanRunRow {
        id: format!("plan-{}", drill::new_drill_id(kind, now)),
        plan: plan.to_string(),
        kind,
        state,
        spec_json: serde_json::to_string(&spec)
            .map_err(|e| RecoveryError::Corrupt(e.to_string()))?,
        requested_by: actor.to_string(),
        order: order.map(str::to_string),
        created_at: now,
        finished_at: None,
        error: None,
    };
    st.store.create_plan_run(&row)?;
    st.store.audit(
        actor,
        &format!("plan.{kind}"),
        &format!(
            "{}: plan {plan}, {} group(s){}{}",
            row.id,
            spec.groups.len(),
            order
                .map(|o| format!(", under order: {o}"))
                .unwrap_or_default(),
            if state == PlanRunState::AwaitingApproval {
                ", awaiting approval"
            } else {
                ""
            }
        ),
        now,
    )?;
    advance(st, &row.id, now)?;
    Ok(row.id)
}

/// Queues what a run can start now, and moves it to `stopped`, `passed`
/// or `rolled-back` when that is where it is. Idempotent: called after
/// every report of a member, at every request on the run, and every 30 s.
pub fn advance(st: &Shared, id: &str, now: i64) -> RecoveryResult<()> {
    let Some(run) = st.store.plan_run(id)? else {
        return Ok(());
    };
    match run.state {
        PlanRunState::Running => advance_running(st, &run, now),
        PlanRunState::RollingBack => rollback::advance_rollback(st, &run, now),
        _ => Ok(()),
    }
}

fn advance_running(st: &Shared, run: &PlanRunRow, now: i64) -> RecoveryResult<()> {
    let spec = spec_of(run)?;
    let failover = run.kind == RecoveryKind::Failover;
    let members = st.store.plan_members(&run.id)?;
    // A failover plan's pre steps pass before its first group starts (and
    // only then: once a server is queued, they are behind it).
    if failover
        && members.is_empty()
        && !spec.pre_steps.is_empty()
        && !steps::steps_done(
            &st.store.plan_steps(&run.id)?,
            StepPhase::Pre,
            &spec.pre_steps,
        )
    {
        spawn_steps(st, run, StepPhase::Pre);
        return Ok(());
    }
    let mut states = group_states(&spec, &members);
    if states.contains(&GroupProgress::Failed) {
        // Stop once nothing of the run is still running.
        if states.contains(&GroupProgress::Running) {
            return Ok(());
        }
        let why = failure(&spec, &members, &states);
        stop_run(st, run, &why, now)?;
        return Ok(());
    }
    if states.iter().all(|s| *s == GroupProgress::Passed) {
        if st.store.set_plan_run_state(
            &run.id,
            &[PlanRunState::Running],
            PlanRunState::Passed,
            None,
            Some(now),
        )? {
            st.store.audit(
                "controller",
                "plan.pass",
                &format!("{}: plan {} passed", run.id, run.plan),
                now,
            )?;
            if failover && !spec.post_steps.is_empty() {
                spawn_steps(st, run, StepPhase::Post);
            }
        }
        return Ok(());
    }
    // Groups start in the plan's order, each once its dependencies passed.
    for (i, g) in spec.groups.iter().enumerate() {
        if !matches!(states[i], GroupProgress::Waiting | GroupProgress::Partial) {
            continue;
        }
        let ready = g.depends_on.iter().all(|dep| {
            spec.groups
                .iter()
                .position(|o| &o.name == dep)
                .is_some_and(|k| states[k] == GroupProgress::Passed)
        });
        if !ready {
            break;
        }
        for server in &g.servers {
            if members
                .iter()
                .any(|m| m.group == g.name && &m.server == server)
            {
                continue;
            }
            queue_member(st, run, i, &g.name, server, 1, now)?;
        }
        states[i] = GroupProgress::Running;
    }
    Ok(())
}

/// Moves a running run to `stopped` with `why`, audited; false when it was
/// not running any more (another request moved it first).
pub fn stop_run(st: &AppState, run: &PlanRunRow, why: &str, now: i64) -> RecoveryResult<bool> {
    let stopped = st.store.set_plan_run_state(
        &run.id,
        &[PlanRunState::Running],
        PlanRunState::Stopped,
        Some(why),
        None,
    )?;
    if stopped {
        st.store.audit(
            "controller",
            "plan.stop",
            &format!("{}: {why}", run.id),
            now,
        )?;
        tracing::warn!(run = %run.id, plan = %run.plan, %why, "recovery plan stopped");
    }
    Ok(stopped)
}

/// Why a run stopped: each failed group's failed servers with their reason.
fn failure(spec: &RecoveryPlanSpec, members: &[PlanMember], states: &[GroupProgress]) -> String {
    let mut parts = Vec::new();
    for (g, _) in spec
        .groups
        .iter()
        .zip(states)
        .filter(|(_, s)| **s == GroupProgress::Failed)
    {
        for server in &g.servers {
            let Some(m) = members
                .iter()
                .rev()
                .find(|m| m.group == g.name && &m.server == server)
            else {
                continue;
            };
            if m.drill.state == DrillState::Failed {
                let reason = drill::error_of(&m.drill, drill::report_of(&m.drill).as_ref())
                    .unwrap_or_else(|| "failed".into());
                parts.push(format!(
                    "group {} stopped the plan: {} {} of {server} failed: {reason}",
                    g.name, m.drill.kind, m.drill.id
                ));
            }
        }
    }
    parts.join("; ")
}

/// Queues one server's recovery for a run (attempt `attempt` of it).
fn queue_member(
    st: &AppState,
    run: &PlanRunRow,
    group_index: usize,
    group: &str,
    server: &str,
    attempt: usize,
    now: i64,
) -> RecoveryResult<()> {
    let id = format!("{}-g{group_index}-{server}-{attempt}", run.id);
    let why = format!(
        ", plan {} run {} group {group}{}",
        run.plan,
        run.id,
        run.order
            .as_deref()
            .map(|o| format!(", under order: {o}"))
            .unwrap_or_default()
    );
    // One failover of a server at a time, also against what ops started
    // since the run began.
    let busy = match run.kind {
        // (Not this member itself: two advances may queue it at once.)
        RecoveryKind::Failover => drill::failover_busy(st, server)?
            .filter(|other| *other != id)
            .map(|other| {
                RecoveryError::Conflict(format!(
                    "server {server} already has failover {other} queued, running or active"
                ))
            }),
        _ => None,
    };
    let queued = match busy {
        Some(e) => Err(e),
        None => drill::queue(
            st,
            Ask {
                kind: run.kind,
                server,
                snapshot: None,
                trigger: "plan",
                actor: &run.requested_by,
                id: id.clone(),
                why: &why,
            },
            now,
        ),
    };
    if let Err(e) = queued {
        // The manifests changed under the run (the server is gone, its
        // agency withdrew consent...): stop with that reason.
        let reason = format!("group {group}: cannot queue {server}: {e}");
        st.store.set_plan_run_state(
            &run.id,
            &[PlanRunState::Running],
            PlanRunState::Stopped,
            Some(&reason),
            None,
        )?;
        st.store.audit(
            "controller",
            "plan.stop",
            &format!("{}: {reason}", run.id),
            now,
        )?;
        return Err(e);
    }
    st.store.add_plan_member(&run.id, group, server, &id)?;
    Ok(())
}

/// Runs a failover run's `phase` steps in the background (once at a time
/// per run and phase, tracked with the controller's other tasks). A failed
/// pre step stops the run; passed ones move it on.
fn spawn_steps(st: &Shared, run: &PlanRunRow, phase: StepPhase) {
    let key = format!("{}:{phase}", run.id);
    if !st
        .plan_steps_running
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key.clone())
    {
        return;
    }
    let st2 = st.clone();
    let run = run.clone();
    st.tasks.spawn("plan-steps", async move {
        let st = st2;
        let outcome = steps::run(&st, &run, phase).await;
        st.plan_steps_running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&key);
        let moved = match outcome {
            Ok(Some(why)) => stop_run(&st, &run, &why, st.now()).map(drop),
            // Passed: move it on now.
            Ok(None) if phase == StepPhase::Pre => advance(&st, &run.id, st.now()),
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        };
        // The state store failed: the 30 s worker tries again, not at once.
        if let Err(e) = moved {
            tracing::error!(run = %run.id, phase = phase.as_str(), error = %e, "recovery plan steps");
        }
    });
}

/// Records an approval of run `id` ([`steps::approve`]); the last one
/// missing starts the run. The approval stands whatever happens next: a
/// server that cannot be queued stops the run, which its view says.
pub fn approve(
    st: &Shared,
    id: &str,
    role: pulih_model::manifest::types::KeyHolderRole,
    name: &str,
    now: i64,
) -> RecoveryResult<()> {
    if steps::approve(st, id, role, name, now)?
        && let Err(e) = advance(st, id, now)
    {
        tracing::error!(run = %id, error = %e, "cannot advance the approved plan run");
    }
    Ok(())
}

/// Called when a recovery finishes: moves its plan run on, if it has one.
pub fn on_finished(st: &Shared, drill: &str, now: i64) {
    match st.store.plan_run_of(drill) {
        Ok(Some(run)) => {
            if let Err(e) = advance(st, &run, now) {
                tracing::error!(%run, error = %e, "cannot advance the recovery plan run");
            }
        }
        Ok(None) => {}
        Err(e) => tracing::error!(%drill, error = %e, "cannot read the plan run of a recovery"),
    }
}

/// Moves every open run on (the 30 s schedule: catches what a missed
/// report or an expired recovery left).
pub fn advance_all(st: &Shared, now: i64) {
    match st.store.plan_runs(1000) {
        Ok(runs) => {
            for run in runs.into_iter().filter(|r| r.state.is_open()) {
                if let Err(e) = advance(st, &run.id, now) {
                    tracing::error!(run = %run.id, error = %e, "cannot advance the recovery plan run");
                }
            }
        }
        Err(e) => tracing::error!(error = %e, "cannot read the recovery plan runs"),
    }
}

#[cfg(test)]
mod tests;
