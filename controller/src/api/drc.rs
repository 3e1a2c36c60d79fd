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

use super::{ApiJson, Authorize, Peer, internal};
use crate::desired::pd_repository;
use crate::error::ApiError;
use crate::recovery::drill::{self, executor_name};
use crate::recovery::plan;
use crate::state::Shared;

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
        .heartbeat(&name, st.now(), &facts, &peer.0.ip().to_string())
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
                kind: row.kind,
                repository: pd_repository(&d.set, &row.perangkat_daerah, &st.config)?,
                recovery: spec.recovery.clone().unwrap_or_default(),
                rto_target_seconds: spec.rto.as_ref().map(|d| d.0.as_secs()),
                rpo_target_seconds: spec.rpo.as_ref().map(|d| d.0.as_secs()),
                plan_run: (row.kind == RecoveryKind::Drill)
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
        .record_plan_teardown(&run, &target, &json, st.now())
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
                st.now(),
            )
            .map_err(internal)?;
    }
    Ok(Json(serde_json::json!({ "recorded": run })))
}

pub async fn start(
    State(st): State<Shared>,
    Path((target, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<DrillStartResponse>, ApiError> {
    st.check_credential(&headers, &executor_name(&target))?;
    let proceed = drill::start(&st, &target, &id, st.now())?;
    Ok(Json(DrillStartResponse { proceed }))
}

pub async fn report(
    State(st): State<Shared>,
    Path((target, id)): Path<(String, String)>,
    headers: HeaderMap,
    ApiJson(report): ApiJson<DrillReport>,
) -> Result<Json<serde_json::Value>, ApiError> {
    st.check_credential(&headers, &executor_name(&target))?;
    let now = st.now();
    drill::finish(&st, &target, &id, &report, now)?;
    plan::on_finished(&st, &id, now);
    Ok(Json(serde_json::json!({ "recorded": id })))
}
