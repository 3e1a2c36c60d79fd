//! The DRC executor's side of the API (DESIGN.md §1, §6): it enrols like
//! an agent, under the name `drc:<target>`, with a token from
//! `POST /drc/{target}/enroll-token`; its credential is good for the
//! `/drc/{target}/…` endpoints only. It heartbeats for the queued drills,
//! failovers and failbacks of its target, starts each once (the reader
//! key's use is audited there) and reports it.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use pulih_model::api::{
    DrcHeartbeatRequest, DrcHeartbeatResponse, DrillJob, DrillStartResponse, EnrollTokenResponse,
};
use pulih_model::drill::{DrillReport, RecoveryKind};

use super::drills::{executor_name, kind_of, kind_word};
use super::{ApiJson, Peer, Shared, internal, now};
use crate::desired::pd_repository;
use crate::error::ApiError;
use crate::store::DrillRow;

fn require_target(st: &Shared, target: &str) -> Result<(), ApiError> {
    if st.desired().set.drc_targets.contains_key(target) {
        Ok(())
    } else {
        Err(ApiError::NotFound(format!(
            "no DrcTarget `{target}` in the applied manifests"
        )))
    }
}

pub async fn enroll_token(
    State(st): State<Shared>,
    headers: HeaderMap,
    Path(target): Path<String>,
) -> Result<Json<EnrollTokenResponse>, ApiError> {
    let actor = st.require_admin(&headers)?;
    require_target(&st, &target)?;
    Ok(Json(super::servers::mint_enroll_token(
        &st,
        actor,
        executor_name(&target),
        "drc.enroll_token",
    )?))
}

pub async fn heartbeat(
    State(st): State<Shared>,
    Path(target): Path<String>,
    peer: Peer,
    headers: HeaderMap,
    ApiJson(req): ApiJson<DrcHeartbeatRequest>,
) -> Result<Json<DrcHeartbeatResponse>, ApiError> {
    let name = executor_name(&target);
    st.check_credential(&headers, &name)?;
    let facts = serde_json::to_string(&req.facts).map_err(internal)?;
    st.store
        .heartbeat(&name, now(), &facts, &peer.0.ip().to_string())
        .map_err(internal)?;
    let queued = st.store.queued_drills(&target).map_err(internal)?;
    let d = st.desired();
    let drills = queued
        .into_iter()
        .filter_map(|row| {
            // A server or agency removed since the request: the job is dropped
            // here; the row stays queued, visible to ops.
            let s = d.set.servers.get(&row.server)?;
            let spec = s.spec();
            Some(DrillJob {
                kind: kind_of(&row.kind),
                repository: pd_repository(&d.set, &row.perangkat_daerah, &st.config)?,
                recovery: spec.recovery.clone().unwrap_or_default(),
                rto_target_seconds: spec.rto.as_ref().map(|d| d.0.as_secs()),
                rpo_target_seconds: spec.rpo.as_ref().map(|d| d.0.as_secs()),
                plan_run: (row.kind == "drill")
                    .then(|| st.store.plan_run_of(&row.id).ok().flatten())
                    .flatten(),
                id: row.id,
                server: row.server,
                perangkat_daerah: row.perangkat_daerah,
                snapshot: row.snapshot,
            })
        })
        .collect();
    drop(d);
    let plan_teardowns = st.store.pending_plan_teardowns(&target).map_err(internal)?;
    Ok(Json(DrcHeartbeatResponse {
        drills,
        plan_teardowns,
    }))
}

/// The executor removed what a drill plan's run left up on its target.
pub async fn plan_teardown(
    State(st): State<Shared>,
    Path((target, run)): Path<(String, String)>,
    headers: HeaderMap,
    ApiJson(t): ApiJson<pulih_model::drill::Teardown>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let name = executor_name(&target);
    st.check_credential(&headers, &name)?;
    if !st
        .store
        .pending_plan_teardowns(&target)
        .map_err(internal)?
        .contains(&run)
    {
        return Err(ApiError::Conflict(format!(
            "plan run {run} has no teardown pending on DRC target {target}"
        )));
    }
    let json = serde_json::to_string(&t).map_err(internal)?;
    if st
        .store
        .record_plan_teardown(&run, &target, &json, now())
        .map_err(internal)?
    {
        st.store
            .audit(
                &name,
                "plan.teardown",
                &format!(
                    "{run}: {} containers, {} networks removed; {}",
                    t.containers_removed,
                    t.networks_removed,
                    if t.clean() {
                        "nothing left".to_string()
                    } else {
                        format!(
                            "left {} containers, {} networks; {}",
                            t.containers_left,
                            t.networks_left,
                            t.errors.join("; ")
                        )
                    }
                ),
                now(),
            )
            .map_err(internal)?;
    }
    Ok(Json(serde_json::json!({ "recorded": run })))
}

/// The run key of a failback's restore on the primary.
pub fn primary_run_key(failback_id: &str) -> String {
    format!("{failback_id}-primary")
}

/// The drill of `id`, checked to belong to `target`.
fn target_drill(st: &Shared, target: &str, id: &str) -> Result<DrillRow, ApiError> {
    match st.store.drill(id).map_err(internal)? {
        Some(d) if d.drc_target == target => Ok(d),
        Some(_) => Err(ApiError::Conflict(format!(
            "drill `{id}` belongs to another DRC target"
        ))),
        None => Err(ApiError::NotFound(format!("no drill `{id}`"))),
    }
}

pub async fn start(
    State(st): State<Shared>,
    Path((target, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<DrillStartResponse>, ApiError> {
    let name = executor_name(&target);
    st.check_credential(&headers, &name)?;
    let row = target_drill(&st, &target, &id)?;
    let t = now();
    let proceed = st.store.start_drill(&id, t).map_err(internal)?;
    if proceed {
        // The reader key is used from here on: the audit log says so.
        st.store
            .audit(
                &name,
                &format!("{}.start", row.kind),
                &format!(
                    "{id}: drc-drill reader key used for the {} of server {} of agency {}",
                    row.kind, row.server, row.perangkat_daerah
                ),
                t,
            )
            .map_err(internal)?;
    }
    Ok(Json(DrillStartResponse { proceed }))
}

pub async fn report(
    State(st): State<Shared>,
    Path((target, id)): Path<(String, String)>,
    headers: HeaderMap,
    ApiJson(report): ApiJson<DrillReport>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let name = executor_name(&target);
    st.check_credential(&headers, &name)?;
    let row = target_drill(&st, &target, &id)?;
    if report.id != id || report.server != row.server || kind_word(report.kind) != row.kind {
        return Err(ApiError::InvalidBody(format!(
            "the report is of {} `{}` of server {}, not of {} `{id}` of server {}",
            kind_word(report.kind),
            report.id,
            report.server,
            row.kind,
            row.server
        )));
    }
    if !matches!(report.state.as_str(), "passed" | "failed") {
        return Err(ApiError::InvalidBody(format!(
            "invalid state `{}`; expected passed or failed",
            report.state
        )));
    }
    let t = now();
    let json = serde_json::to_string(&report).map_err(internal)?;
    let first = st
        .store
        .drill(&id)
        .map_err(internal)?
        .is_some_and(|d| d.finished_at.is_none());
    // A failback's DRC side is done: the primary restores what it made
    // (queued before the drill is marked done, so a waiting client finds it).
    if first && report.kind == RecoveryKind::Failback && report.passed() {
        let Some(snapshot) = report
            .snapshot_id
            .clone()
            .filter(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
        else {
            return Err(ApiError::InvalidBody(
                "a passed failback report must name the snapshot it made (64 hex digits)".into(),
            ));
        };
        let params = serde_json::to_string(&pulih_model::api::RestoreRequest {
            target: "/".into(),
            snapshot,
            include: Vec::new(),
        })
        .map_err(internal)?;
        st.store
            .queue_run(
                &row.server,
                &primary_run_key(&id),
                &crate::store::QueuedJob {
                    kind: "failback".into(),
                    params_json: Some(params),
                },
                t,
            )
            .map_err(internal)?;
    }
    st.store
        .finish_drill(&id, &report.state, &json, t)
        .map_err(internal)?;
    st.store
        .audit(
            &name,
            &format!("{}.finish", row.kind),
            &format!(
                "{id}: server {} {}{}",
                row.server,
                report.state,
                report
                    .teardown
                    .as_ref()
                    .map(|td| if td.clean() {
                        ", torn down clean".to_string()
                    } else {
                        ", teardown left things behind".to_string()
                    })
                    .unwrap_or_default()
            ),
            t,
        )
        .map_err(internal)?;
    tracing::info!(drill = %id, server = %row.server, state = %report.state, rto = ?report.rto_seconds, "drill report");
    super::plans::on_finished(&st, &id);
    Ok(Json(serde_json::json!({ "recorded": id })))
}
