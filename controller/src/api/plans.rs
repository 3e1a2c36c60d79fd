//! Recovery plans (DESIGN.md §5–6): a plan's servers are recovered group by
//! group, in the plan's order, a group starting once the groups it depends
//! on are up. Each server's recovery is an ordinary drill (or failover) of
//! the DRC executor; the run ties them together.
//!
//! A failed group stops the run once nothing of it is still running: no
//! later group starts. Ops then `resume` it (the failed servers are tried
//! again, the rest of the plan goes on) or `rollback` it (a failover
//! plan's servers that are up at the DRC are failed back; a drill plan's
//! run is closed, and the executor tears down what it kept up).
//!
//! The run keeps the plan's spec as it was applied when the run started,
//! so a manifest change does not reshape a run half-way.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use pulih_model::api::{DrillRequest, FailoverRequest, PlanGroupView, PlanRunView};
use pulih_model::drill::RecoveryKind;
use pulih_model::manifest::types::RecoveryPlanSpec;
use serde::Deserialize;

use super::drills::{self, kind_of, new_drill_id, order_of};
use super::plan_steps;
use super::{ApiJson, Shared, internal, now};
use crate::compliance::rfc3339;
use crate::error::ApiError;
use crate::store::{PlanMember, PlanRunRow};

/// The group name a rollback's failbacks are recorded under.
const ROLLBACK: &str = "rollback";

pub async fn drill(
    State(st): State<Shared>,
    headers: HeaderMap,
    Path(plan): Path<String>,
    ApiJson(req): ApiJson<DrillRequest>,
) -> Result<Json<PlanRunView>, ApiError> {
    let actor = st.require_admin(&headers)?;
    start(&st, RecoveryKind::Drill, &plan, actor, None, &req.snapshot).map(Json)
}

pub async fn failover(
    State(st): State<Shared>,
    headers: HeaderMap,
    Path(plan): Path<String>,
    ApiJson(req): ApiJson<FailoverRequest>,
) -> Result<Json<PlanRunView>, ApiError> {
    let actor = st.require_failover(&headers)?;
    let order = order_of(&req)?;
    start(
        &st,
        RecoveryKind::Failover,
        &plan,
        actor,
        Some(order),
        &req.snapshot,
    )
    .map(Json)
}

fn no_snapshot(s: &Option<String>) -> Result<(), ApiError> {
    if s.is_some() {
        return Err(ApiError::InvalidBody(
            "a plan recovers each server's latest snapshot; a snapshot id names one server's (run that server alone to choose one)".into(),
        ));
    }
    Ok(())
}

fn start(
    st: &Shared,
    kind: RecoveryKind,
    plan: &str,
    actor: &str,
    order: Option<&str>,
    snapshot: &Option<String>,
) -> Result<PlanRunView, ApiError> {
    let spec = {
        let d = st.desired();
        d.set
            .recovery_plans
            .get(plan)
            .ok_or_else(|| {
                ApiError::UnknownPlan(format!("no RecoveryPlan `{plan}` in the applied manifests"))
            })?
            .spec()
            .clone()
    };
    // Only now: a server's name answers `unknown_plan` whatever the body,
    // so the CLI's fallback to the server keeps its --snapshot.
    no_snapshot(snapshot)?;
    // What can be known now is checked now, not half-way through the plan.
    for g in &spec.groups {
        for server in &g.servers {
            drills::check(st, kind, server)?;
            if kind == RecoveryKind::Failover
                && let Some(other) = drills::failover_busy(st, server)?
            {
                return Err(ApiError::Conflict(format!(
                    "server {server} of plan {plan} already has failover {other} queued, running or active; fail it back first"
                )));
            }
        }
    }
    if let Some(r) = st
        .store
        .plan_runs(1000)
        .map_err(internal)?
        .into_iter()
        .find(|r| r.plan == plan && is_open(&r.state))
    {
        return Err(ApiError::Conflict(format!(
            "plan {plan} has run {} {}: resume it or roll it back first",
            r.id, r.state
        )));
    }
    let state = match kind {
        RecoveryKind::Failover => plan_steps::initial_state(st, plan, &spec)?,
        _ => "running",
    };
    let t = now();
    let row = PlanRunRow {
        id: format!("plan-{}", new_drill_id(kind, t)),
        plan: plan.to_string(),
        kind: kind.word().to_string(),
        state: state.into(),
        spec_json: serde_json::to_string(&spec).map_err(internal)?,
        requested_by: actor.to_string(),
        order: order.map(str::to_string),
        created_at: t,
        finished_at: None,
        error: None,
    };
    st.store.create_plan_run(&row).map_err(internal)?;
    st.store
        .audit(
            actor,
            &format!("plan.{}", kind.word()),
            &format!(
                "{}: plan {plan}, {} group(s){}{}",
                row.id,
                spec.groups.len(),
                order
                    .map(|o| format!(", under order: {o}"))
                    .unwrap_or_default(),
                if state == "awaiting-approval" {
                    ", awaiting approval"
                } else {
                    ""
                }
            ),
            t,
        )
        .map_err(internal)?;
    advance(st, &row.id)?;
    run_view(st, &row.id)
}

/// A run that still holds the plan: a new run of it waits for ops.
fn is_open(state: &str) -> bool {
    matches!(
        state,
        "awaiting-approval" | "running" | "stopped" | "rolling-back"
    )
}

/// The state of each group: `waiting` (nothing queued), `running` (a
/// server's newest attempt is queued or running), `partial` (some servers
/// done, others never queued: a controller stopped half-way), `passed` or
/// `failed` — from each server's newest attempt.
fn group_states(spec: &RecoveryPlanSpec, members: &[PlanMember]) -> Vec<&'static str> {
    spec.groups
        .iter()
        .map(|g| {
            let latest: Vec<Option<&str>> = g
                .servers
                .iter()
                .map(|s| {
                    members
                        .iter()
                        .rev()
                        .find(|m| m.group == g.name && &m.server == s)
                        .map(|m| m.drill.state.as_str())
                })
                .collect();
            if latest.iter().all(Option::is_none) {
                "waiting"
            } else if latest
                .iter()
                .any(|s| matches!(s, Some("queued" | "running")))
            {
                "running"
            } else if latest.iter().any(Option::is_none) {
                "partial"
            } else if latest.iter().all(|s| *s == Some("passed")) {
                "passed"
            } else {
                "failed"
            }
        })
        .collect()
}

pub(super) fn spec_of(run: &PlanRunRow) -> Result<RecoveryPlanSpec, ApiError> {
    serde_json::from_str(&run.spec_json).map_err(internal)
}

/// Queues what a run can start now, and moves it to `stopped`, `passed`
/// or `rolled-back` when that is where it is. Idempotent: called after
/// every report of a member, at every request on the run, and every 30 s.
pub(super) fn advance(st: &Shared, id: &str) -> Result<(), ApiError> {
    let Some(run) = st.store.plan_run(id).map_err(internal)? else {
        return Ok(());
    };
    match run.state.as_str() {
        "running" => advance_running(st, &run),
        "rolling-back" => advance_rollback(st, &run),
        _ => Ok(()),
    }
}

fn advance_running(st: &Shared, run: &PlanRunRow) -> Result<(), ApiError> {
    let spec = spec_of(run)?;
    let failover = run.kind == RecoveryKind::Failover.word();
    let members = st.store.plan_members(&run.id).map_err(internal)?;
    // A failover plan's pre steps pass before its first group starts (and
    // only then: once a server is queued, they are behind it).
    if failover
        && members.is_empty()
        && !spec.pre_steps.is_empty()
        && !plan_steps::steps_done(
            &st.store.plan_steps(&run.id).map_err(internal)?,
            "pre",
            &spec.pre_steps,
        )
    {
        plan_steps::spawn(st, run, "pre");
        return Ok(());
    }
    let mut states = group_states(&spec, &members);
    let t = now();
    if states.contains(&"failed") {
        // Stop once nothing of the run is still running.
        if states.contains(&"running") {
            return Ok(());
        }
        let why = failure(&spec, &members, &states);
        stop_run(st, run, &why)?;
        return Ok(());
    }
    if states.iter().all(|s| *s == "passed") {
        if st
            .store
            .set_plan_run_state(&run.id, &["running"], "passed", None, Some(t))
            .map_err(internal)?
        {
            st.store
                .audit(
                    "controller",
                    "plan.pass",
                    &format!("{}: plan {} passed", run.id, run.plan),
                    t,
                )
                .map_err(internal)?;
            if failover && !spec.post_steps.is_empty() {
                plan_steps::spawn(st, run, "post");
            }
        }
        return Ok(());
    }
    // Groups start in the plan's order, each once its dependencies passed.
    let kind = kind_of(&run.kind);
    for (i, g) in spec.groups.iter().enumerate() {
        if !matches!(states[i], "waiting" | "partial") {
            continue;
        }
        let ready = g.depends_on.iter().all(|dep| {
            spec.groups
                .iter()
                .position(|o| &o.name == dep)
                .is_some_and(|k| states[k] == "passed")
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
            queue_member(st, run, kind, i, &g.name, server, 1)?;
        }
        states[i] = "running";
    }
    Ok(())
}

/// Moves a running run to `stopped` with `why`, audited; false when it was
/// not running any more (another request moved it first).
pub(super) fn stop_run(st: &Shared, run: &PlanRunRow, why: &str) -> Result<bool, ApiError> {
    let stopped = st
        .store
        .set_plan_run_state(&run.id, &["running"], "stopped", Some(why), None)
        .map_err(internal)?;
    if stopped {
        st.store
            .audit(
                "controller",
                "plan.stop",
                &format!("{}: {why}", run.id),
                now(),
            )
            .map_err(internal)?;
        tracing::warn!(run = %run.id, plan = %run.plan, %why, "recovery plan stopped");
    }
    Ok(stopped)
}

/// Why a run stopped: each failed group's failed servers with their reason.
fn failure(spec: &RecoveryPlanSpec, members: &[PlanMember], states: &[&str]) -> String {
    let mut parts = Vec::new();
    for (g, _) in spec
        .groups
        .iter()
        .zip(states)
        .filter(|(_, s)| **s == "failed")
    {
        for server in &g.servers {
            let Some(m) = members
                .iter()
                .rev()
                .find(|m| m.group == g.name && &m.server == server)
            else {
                continue;
            };
            if m.drill.state == "failed" {
                let reason = drills::view(m.drill.clone(), false)
                    .error
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
#[allow(clippy::too_many_arguments)]
fn queue_member(
    st: &Shared,
    run: &PlanRunRow,
    kind: RecoveryKind,
    group_index: usize,
    group: &str,
    server: &str,
    attempt: usize,
) -> Result<(), ApiError> {
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
    let busy = match kind {
        // (Not this member itself: two advances may queue it at once.)
        RecoveryKind::Failover => drills::failover_busy(st, server)?
            .filter(|other| *other != id)
            .map(|other| {
                ApiError::Conflict(format!(
                    "server {server} already has failover {other} queued, running or active"
                ))
            }),
        _ => None,
    };
    let queued = match busy {
        Some(e) => Err(e),
        None => drills::queue(
            st,
            kind,
            server,
            None,
            "plan",
            &run.requested_by,
            id.clone(),
            &why,
        ),
    };
    if let Err(e) = queued {
        // The manifests changed under the run (the server is gone, its
        // agency withdrew consent...): stop with that reason.
        let reason = format!("group {group}: cannot queue {server}: {e}");
        st.store
            .set_plan_run_state(&run.id, &["running"], "stopped", Some(&reason), None)
            .map_err(internal)?;
        st.store
            .audit(
                "controller",
                "plan.stop",
                &format!("{}: {reason}", run.id),
                now(),
            )
            .map_err(internal)?;
        return Err(e);
    }
    st.store
        .add_plan_member(&run.id, group, server, &id)
        .map_err(internal)
}

fn advance_rollback(st: &Shared, run: &PlanRunRow) -> Result<(), ApiError> {
    let members = st.store.plan_members(&run.id).map_err(internal)?;
    let failbacks: Vec<&PlanMember> = members.iter().filter(|m| m.group == ROLLBACK).collect();
    if failbacks
        .iter()
        .any(|m| matches!(m.drill.state.as_str(), "queued" | "running"))
    {
        return Ok(());
    }
    let t = now();
    let still_up: Vec<String> = {
        let active = st.store.active_failovers().map_err(internal)?;
        members
            .iter()
            .filter(|m| m.group != ROLLBACK && active.get(&m.server) == Some(&m.drill.id))
            .map(|m| m.server.clone())
            .collect()
    };
    let (state, error, finished) = if still_up.is_empty() {
        ("rolled-back", None, Some(t))
    } else {
        (
            "stopped",
            Some(format!(
                "the rollback's failback of {} failed; these servers are still up at the DRC (see their failbacks; roll back again)",
                still_up.join(", ")
            )),
            None,
        )
    };
    if st
        .store
        .set_plan_run_state(
            &run.id,
            &["rolling-back"],
            state,
            error.as_deref(),
            finished,
        )
        .map_err(internal)?
    {
        st.store
            .audit(
                "controller",
                &format!("plan.{state}"),
                &format!("{}: {}", run.id, error.as_deref().unwrap_or("rolled back")),
                t,
            )
            .map_err(internal)?;
    }
    Ok(())
}

/// A run from a request path, with the authority its kind needs: the
/// failover authorization for a failover plan, the admin token for a drill
/// plan.
fn run_for<'a>(
    st: &'a Shared,
    headers: &HeaderMap,
    id: &str,
) -> Result<(PlanRunRow, &'a str), ApiError> {
    let run = st
        .store
        .plan_run(id)
        .map_err(internal)?
        .ok_or_else(|| ApiError::NotFound(format!("no plan run `{id}`")))?;
    let actor = if run.kind == "failover" {
        st.require_failover(headers)?
    } else {
        st.require_admin(headers)?
    };
    Ok((run, actor))
}

/// Resumes a stopped run: the failed servers of its failed groups are
/// tried again; then the plan goes on.
pub async fn resume(
    State(st): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<PlanRunView>, ApiError> {
    let (run, actor) = run_for(&st, &headers, &id)?;
    let members = st.store.plan_members(&id).map_err(internal)?;
    if run.state != "stopped" || members.iter().any(|m| m.group == ROLLBACK) {
        return Err(ApiError::Conflict(format!(
            "plan run {id} is {}{}: only a stopped run that was not rolled back can resume",
            run.state,
            if members.iter().any(|m| m.group == ROLLBACK) {
                " (a rollback was asked for)"
            } else {
                ""
            }
        )));
    }
    // The retries are queued first, then the run is moved: the 30 s loop
    // never sees a running run with a failed group and nothing queued
    // (it would stop it again). Attempt ids make a double resume harmless.
    let spec = spec_of(&run)?;
    let kind = kind_of(&run.kind);
    for (i, g) in spec.groups.iter().enumerate() {
        for server in &g.servers {
            let tries: Vec<&PlanMember> = members
                .iter()
                .filter(|m| m.group == g.name && &m.server == server)
                .collect();
            if tries.last().is_some_and(|m| m.drill.state == "failed") {
                queue_member(&st, &run, kind, i, &g.name, server, tries.len() + 1)?;
            }
        }
    }
    if !st
        .store
        .set_plan_run_state(&id, &["stopped"], "running", None, None)
        .map_err(internal)?
    {
        return Err(ApiError::Conflict(format!(
            "plan run {id} changed state meanwhile"
        )));
    }
    st.store
        .audit(
            actor,
            "plan.resume",
            &format!("{id}: plan {}", run.plan),
            now(),
        )
        .map_err(internal)?;
    advance(&st, &id)?;
    run_view(&st, &id).map(Json)
}

/// Rolls a run back. A failover plan: every server it brought up at the
/// DRC is failed back (the DRC's changes are replicated to the primary, so
/// nothing written while failed over is lost), later groups first. A drill
/// plan: the run is closed; the executor then tears down the drills it
/// kept up for the later groups.
pub async fn rollback(
    State(st): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<FailoverRequest>,
) -> Result<Json<PlanRunView>, ApiError> {
    let (run, actor) = run_for(&st, &headers, &id)?;
    let order = order_of(&req)?;
    let t = now();
    // Not approved yet, so nothing of it ran: cancelled.
    if run.state == "awaiting-approval" {
        if !st
            .store
            .set_plan_run_state(&id, &["awaiting-approval"], "rolled-back", None, Some(t))
            .map_err(internal)?
        {
            return Err(ApiError::Conflict(format!(
                "plan run {id} changed state meanwhile"
            )));
        }
        st.store
            .audit(
                actor,
                "plan.cancel",
                &format!(
                    "{id}: cancelled before its approvals were complete, under order: {order}"
                ),
                t,
            )
            .map_err(internal)?;
        return run_view(&st, &id).map(Json);
    }
    if run.kind != "failover" {
        if !st
            .store
            .set_plan_run_state(&id, &["stopped"], "rolled-back", None, Some(t))
            .map_err(internal)?
        {
            return Err(ApiError::Conflict(format!(
                "plan run {id} is {}: only a stopped run can be rolled back",
                run.state
            )));
        }
        st.store
            .audit(
                actor,
                "plan.rolled-back",
                &format!("{id}: a drill plan, closed; its kept-up drills are torn down, under order: {order}"),
                t,
            )
            .map_err(internal)?;
        return run_view(&st, &id).map(Json);
    }
    if !st
        .store
        .set_plan_run_state(&id, &["stopped", "passed"], "rolling-back", None, None)
        .map_err(internal)?
    {
        return Err(ApiError::Conflict(format!(
            "plan run {id} is {}: only a failover run awaiting approval, stopped or passed can be rolled back",
            run.state
        )));
    }
    st.store
        .audit(
            actor,
            "plan.rollback",
            &format!("{id}: plan {}, under order: {order}", run.plan),
            t,
        )
        .map_err(internal)?;
    let members = st.store.plan_members(&id).map_err(internal)?;
    let active = st.store.active_failovers().map_err(internal)?;
    let spec = spec_of(&run)?;
    for g in spec.groups.iter().rev() {
        for server in &g.servers {
            let Some(failover) = members
                .iter()
                .rev()
                .find(|m| m.group == g.name && &m.server == server)
                .map(|m| &m.drill.id)
                .filter(|f| active.get(server) == Some(*f))
            else {
                continue;
            };
            let attempt = members
                .iter()
                .filter(|m| m.group == ROLLBACK && &m.server == server)
                .count()
                + 1;
            let fid = format!("{id}-rb-{server}-{attempt}");
            drills::queue(
                &st,
                RecoveryKind::Failback,
                server,
                Some(failover.clone()),
                "plan",
                actor,
                fid.clone(),
                &format!(", ends {failover}, rollback of plan run {id}, under order: {order}"),
            )?;
            st.store
                .add_plan_member(&id, ROLLBACK, server, &fid)
                .map_err(internal)?;
        }
    }
    advance(&st, &id)?;
    run_view(&st, &id).map(Json)
}

pub(super) fn run_view(st: &Shared, id: &str) -> Result<PlanRunView, ApiError> {
    let run = st
        .store
        .plan_run(id)
        .map_err(internal)?
        .ok_or_else(|| ApiError::NotFound(format!("no plan run `{id}`")))?;
    view(st, &run)
}

fn view(st: &Shared, run: &PlanRunRow) -> Result<PlanRunView, ApiError> {
    let members = st.store.plan_members(&run.id).map_err(internal)?;
    let members = &members[..];
    let teardowns = st.store.plan_teardowns(&run.id).map_err(internal)?;
    let steps = st.store.plan_steps(&run.id).map_err(internal)?;
    let spec = spec_of(run)?;
    let (approvals, steps) = plan_steps::views(&spec, run, &steps);
    let states = group_states(&spec, members);
    let groups = spec
        .groups
        .iter()
        .zip(&states)
        .map(|(g, s)| PlanGroupView {
            name: g.name.clone(),
            depends_on: g.depends_on.clone(),
            servers: g.servers.clone(),
            state: match *s {
                "partial" => "running",
                other => other,
            }
            .to_string(),
            recoveries: members
                .iter()
                .filter(|m| m.group == g.name)
                .map(|m| drills::view(m.drill.clone(), false))
                .collect(),
        })
        .collect();
    // Run start → the last server healthy (RTO counts from each
    // recovery's own start, which the executor measured).
    let rto_seconds = (run.state == "passed")
        .then(|| {
            members
                .iter()
                .filter(|m| m.group != ROLLBACK && m.drill.state == "passed")
                .filter_map(|m| {
                    let rto = drills::view(m.drill.clone(), false).rto_seconds?;
                    Some((m.drill.started_at? - run.created_at) as f64 + rto)
                })
                .fold(None, |acc: Option<f64>, v| {
                    Some(acc.map_or(v, |a| a.max(v)))
                })
        })
        .flatten();
    Ok(PlanRunView {
        id: run.id.clone(),
        plan: run.plan.clone(),
        kind: kind_of(&run.kind),
        state: run.state.clone(),
        requested_by: run.requested_by.clone(),
        order: run.order.clone(),
        created_at: rfc3339(run.created_at),
        finished_at: run.finished_at.map(rfc3339),
        error: run.error.clone(),
        rto_seconds,
        groups,
        approvals,
        steps,
        rollback: members
            .iter()
            .filter(|m| m.group == ROLLBACK)
            .map(|m| drills::view(m.drill.clone(), false))
            .collect(),
        teardown: teardowns
            .into_iter()
            .filter_map(|(target, json)| Some((target, serde_json::from_str(&json).ok()?)))
            .collect(),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunFilter {
    #[serde(default)]
    limit: Option<u32>,
}

pub async fn list(
    State(st): State<Shared>,
    headers: HeaderMap,
    Query(f): Query<RunFilter>,
) -> Result<Json<Vec<PlanRunView>>, ApiError> {
    st.require_admin(&headers)?;
    let runs = st
        .store
        .plan_runs(f.limit.unwrap_or(50).min(1000))
        .map_err(internal)?;
    let mut out = Vec::with_capacity(runs.len());
    for run in runs {
        out.push(view(&st, &run)?);
    }
    Ok(Json(out))
}

pub async fn show(
    State(st): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<PlanRunView>, ApiError> {
    st.require_admin(&headers)?;
    advance(&st, &id)?;
    run_view(&st, &id).map(Json)
}

/// Called when a recovery finishes: moves its plan run on, if it has one.
pub fn on_finished(st: &Shared, drill: &str) {
    match st.store.plan_run_of(drill) {
        Ok(Some(run)) => {
            if let Err(e) = advance(st, &run) {
                tracing::error!(%run, error = %e, "cannot advance the recovery plan run");
            }
        }
        Ok(None) => {}
        Err(e) => tracing::error!(%drill, error = %e, "cannot read the plan run of a recovery"),
    }
}

/// Moves every open run on (the 30 s schedule: catches what a missed
/// report or an expired recovery left).
pub fn advance_all(st: &Shared) {
    match st.store.plan_runs(1000) {
        Ok(runs) => {
            for run in runs.into_iter().filter(|r| is_open(&r.state)) {
                if let Err(e) = advance(st, &run.id) {
                    tracing::error!(run = %run.id, error = %e, "cannot advance the recovery plan run");
                }
            }
        }
        Err(e) => tracing::error!(error = %e, "cannot read the recovery plan runs"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::DrillRow;
    use pulih_model::manifest::types::PlanGroup;

    fn member(group: &str, server: &str, state: &str) -> PlanMember {
        PlanMember {
            group: group.into(),
            server: server.into(),
            drill: DrillRow {
                id: format!("{group}-{server}"),
                server: server.into(),
                perangkat_daerah: "dinkes".into(),
                drc_target: "drc".into(),
                trigger: "plan".into(),
                state: state.into(),
                requested_by: "admin".into(),
                snapshot: "latest".into(),
                created_at: 0,
                started_at: None,
                finished_at: None,
                report_json: None,
                kind: "drill".into(),
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
            member("data", "db", "failed"),
            member("data", "db", "passed"),
            member("app", "web", "passed"),
            member("app", "api", "running"),
            member("edge", "proxy", "passed"),
            member("batch", "etl", "passed"),
            member("batch", "etl", "failed"),
        ];
        // A retried server counts by its newest attempt; a group with a
        // server not queued yet is partial.
        assert_eq!(
            group_states(&spec, &members),
            ["passed", "running", "passed", "failed", "waiting"]
        );
        let partial = [member("app", "web", "passed")];
        assert_eq!(group_states(&spec, &partial)[1], "partial");
    }
}
