//! Recovery plan runs (DESIGN.md §5–6): start (drill or failover), show,
//! list, approve, resume, roll back. The run's state machine is
//! `recovery::plan`; these handlers authorise, call it and shape the view.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use pulih_model::api::{
    DrillRequest, FailoverRequest, PlanApprovalView, PlanApproveRequest, PlanGroupView,
    PlanRunView, PlanStepView,
};
use pulih_model::drill::RecoveryKind;
use pulih_model::state::{DrillState, PlanRunState, StepPhase};
use serde::Deserialize;

use super::drills::{self, order_of};
use super::{ApiJson, Authorize, internal};
use crate::compliance::rfc3339;
use crate::error::ApiError;
use crate::recovery::plan::{self, ROLLBACK, group_states};
use crate::recovery::spec_of;
use crate::state::Shared;
use crate::store::PlanRunRow;

pub async fn drill(
    State(st): State<Shared>,
    headers: HeaderMap,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<DrillRequest>,
) -> Result<Json<PlanRunView>, ApiError> {
    let actor = st.require_admin(&headers)?;
    let kind = RecoveryKind::Drill;
    let id = plan::start(&st, kind, &name, actor, None, &req.snapshot, st.now())?;
    run_view(&st, &id).map(Json)
}

pub async fn failover(
    State(st): State<Shared>,
    headers: HeaderMap,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<FailoverRequest>,
) -> Result<Json<PlanRunView>, ApiError> {
    let actor = st.require_failover(&headers)?;
    let order = order_of(&req)?;
    let kind = RecoveryKind::Failover;
    let id = plan::start(
        &st,
        kind,
        &name,
        actor,
        Some(order),
        &req.snapshot,
        st.now(),
    )?;
    run_view(&st, &id).map(Json)
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
    let actor = if run.kind == RecoveryKind::Failover {
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
    plan::resume(&st, &run, actor, st.now())?;
    run_view(&st, &id).map(Json)
}

/// Rolls a run back (`recovery::plan::rollback`).
pub async fn rollback(
    State(st): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<FailoverRequest>,
) -> Result<Json<PlanRunView>, ApiError> {
    let (run, actor) = run_for(&st, &headers, &id)?;
    let order = order_of(&req)?;
    plan::rollback(&st, &run, actor, order, st.now())?;
    run_view(&st, &id).map(Json)
}

/// `POST /plan-runs/{id}/approve`: one role's approval of a failover plan
/// run; the run starts once every role the plan names approved.
pub async fn approve(
    State(st): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<PlanApproveRequest>,
) -> Result<Json<PlanRunView>, ApiError> {
    st.require_approver(&headers, req.role)?;
    plan::approve(&st, &id, req.role, &req.name, st.now())?;
    run_view(&st, &id).map(Json)
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
    plan::advance(&st, &id, st.now())?;
    run_view(&st, &id).map(Json)
}

fn run_view(st: &Shared, id: &str) -> Result<PlanRunView, ApiError> {
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
    let states = group_states(&spec, members);
    let groups = spec
        .groups
        .iter()
        .zip(&states)
        .map(|(g, s)| PlanGroupView {
            name: g.name.clone(),
            depends_on: g.depends_on.clone(),
            servers: g.servers.clone(),
            state: s.view(),
            recoveries: members
                .iter()
                .filter(|m| m.group == g.name)
                .map(|m| drills::view(m.drill.clone(), false))
                .collect(),
        })
        .collect();
    // Run start → the last server healthy (RTO counts from each
    // recovery's own start, which the executor measured).
    let rto_seconds = (run.state == PlanRunState::Passed)
        .then(|| {
            members
                .iter()
                .filter(|m| m.group != ROLLBACK && m.drill.state == DrillState::Passed)
                .filter_map(|m| {
                    let rto = drills::view(m.drill.clone(), false).rto_seconds?;
                    Some((m.drill.started_at? - run.created_at) as f64 + rto)
                })
                .fold(None, |acc: Option<f64>, v| {
                    Some(acc.map_or(v, |a| a.max(v)))
                })
        })
        .flatten();
    let approvals = if run.kind == RecoveryKind::Failover {
        spec.approvals
            .iter()
            .map(|r| {
                let given = steps
                    .iter()
                    .find(|s| s.phase == StepPhase::Approval && s.name == r.as_str());
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
        .filter(|s| s.phase != StepPhase::Approval)
        .map(|s| PlanStepView {
            phase: s.phase,
            name: s.name.clone(),
            ok: s.ok,
            detail: s.detail.clone(),
            at: rfc3339(s.at),
            duration_s: s.duration_s,
        })
        .collect();
    Ok(PlanRunView {
        id: run.id.clone(),
        plan: run.plan.clone(),
        kind: run.kind,
        state: run.state,
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
