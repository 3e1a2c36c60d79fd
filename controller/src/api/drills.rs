//! Drills, failovers and failbacks of one server, for ops (DESIGN.md §6);
//! their state machine is `recovery::drill`, the executor's side of the
//! API [`super::drc`].

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use pulih_model::api::{DrillQueued, DrillRequest, DrillView, FailoverRequest};
use pulih_model::drill::RecoveryKind;
use serde::Deserialize;

use super::{ApiJson, Authorize, internal};
use crate::compliance::rfc3339;
use crate::error::ApiError;
use crate::recovery::drill::{self, Ask, new_drill_id};
use crate::state::Shared;
use crate::store::DrillRow;

pub async fn request(
    State(st): State<Shared>,
    headers: HeaderMap,
    Path(server): Path<String>,
    ApiJson(req): ApiJson<DrillRequest>,
) -> Result<Json<DrillQueued>, ApiError> {
    let actor = st.require_admin(&headers)?;
    let now = st.now();
    let ask = Ask {
        kind: RecoveryKind::Drill,
        server: &server,
        snapshot: req.snapshot,
        trigger: "manual",
        actor,
        id: new_drill_id(RecoveryKind::Drill, now),
        why: "",
    };
    Ok(Json(drill::queue(&st, ask, now)?))
}

/// The order or approval a failover or failback runs under (required).
pub(super) fn order_of(req: &FailoverRequest) -> Result<&str, ApiError> {
    let order = req.order.trim();
    if order.is_empty() || order.len() > 500 {
        return Err(ApiError::InvalidBody(
            "`order`: name the order or approval this runs under (1–500 characters)".into(),
        ));
    }
    Ok(order)
}

/// A real failover: the same restore and checks as a drill, on the DRC's
/// service network, left running, traffic switched by the executor's hook.
/// Needs the failover authorization, not the admin token, and the order
/// it runs under.
pub async fn failover(
    State(st): State<Shared>,
    headers: HeaderMap,
    Path(server): Path<String>,
    ApiJson(req): ApiJson<FailoverRequest>,
) -> Result<Json<DrillQueued>, ApiError> {
    let actor = st.require_failover(&headers)?;
    let order = order_of(&req)?;
    let q = drill::failover(&st, &server, actor, order, req.snapshot.clone(), st.now())?;
    Ok(Json(q))
}

/// Ends a failover (`recovery::drill::failback`). The same authorization
/// as a failover.
pub async fn failback(
    State(st): State<Shared>,
    headers: HeaderMap,
    Path(server): Path<String>,
    ApiJson(req): ApiJson<FailoverRequest>,
) -> Result<Json<DrillQueued>, ApiError> {
    let actor = st.require_failover(&headers)?;
    let order = order_of(&req)?;
    Ok(Json(drill::failback(&st, &server, actor, order, st.now())?))
}

pub fn view(row: DrillRow, with_report: bool) -> DrillView {
    let report = drill::report_of(&row);
    let error = drill::error_of(&row, report.as_ref());
    let r = report.as_ref();
    DrillView {
        kind: row.kind,
        rto_seconds: r.and_then(|r| r.rto_seconds),
        rpo_seconds: r.and_then(|r| r.rpo_seconds),
        rto_target_seconds: r.and_then(|r| r.rto_target_seconds),
        rpo_target_seconds: r.and_then(|r| r.rpo_target_seconds),
        error,
        report: if with_report { report } else { None },
        id: row.id,
        server: row.server,
        perangkat_daerah: row.perangkat_daerah,
        drc_target: row.drc_target,
        trigger: row.trigger,
        state: row.state,
        requested_by: row.requested_by,
        snapshot: row.snapshot,
        created_at: rfc3339(row.created_at),
        started_at: row.started_at.map(rfc3339),
        finished_at: row.finished_at.map(rfc3339),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrillFilter {
    #[serde(default)]
    server: Option<String>,
    #[serde(default)]
    limit: Option<u32>,
}

pub async fn list(
    State(st): State<Shared>,
    headers: HeaderMap,
    Query(f): Query<DrillFilter>,
) -> Result<Json<Vec<DrillView>>, ApiError> {
    st.require_admin(&headers)?;
    let rows = st
        .store
        .drills(f.server.as_deref(), f.limit.unwrap_or(100).min(1000))
        .map_err(internal)?;
    Ok(Json(rows.into_iter().map(|r| view(r, false)).collect()))
}

pub async fn show(
    State(st): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<DrillView>, ApiError> {
    st.require_admin(&headers)?;
    st.store
        .drill(&id)
        .map_err(internal)?
        .map(|r| Json(view(r, true)))
        .ok_or_else(|| ApiError::NotFound(format!("no drill `{id}`")))
}
