//! Servers, runs, status and compliance (for ops, the CLI and auditors).

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use pulih_model::api::{
    ComplianceReport, EnrollTokenResponse, MaintenanceQueued, MaintenanceRequest, MaintenanceRun,
    ReplicateResponse, RestoreRequest, Run, RunResult, ServerView, StatusResponse,
};
use pulih_model::state::JobKind;
use serde::Deserialize;

use super::{ApiJson, Authorize, internal};
use crate::compliance::{self, rfc3339};
use crate::error::ApiError;
use crate::state::{Shared, new_token, token_hash};
use crate::store::{QueuedJob, RunRow};

/// Enrolment tokens are valid this long.
const ENROLL_TOKEN_SECONDS: i64 = 24 * 3600;

fn views(st: &Shared) -> Result<(Vec<ServerView>, i64), ApiError> {
    let agents: HashMap<_, _> = st
        .store
        .agents()
        .map_err(internal)?
        .into_iter()
        .map(|a| (a.server.clone(), a))
        .collect();
    let runs = st.store.run_summaries().map_err(internal)?;
    let drills = st.store.drill_summaries().map_err(internal)?;
    let t = st.now();
    let d = st.desired();
    let mut views = compliance::server_views(
        &d.set,
        &agents,
        &runs,
        &st.config.pusat_data_subnets,
        &st.config.drc_subnets,
        t,
    );
    compliance::add_drills(&mut views, &d.set, &agents, &drills, t);
    let failovers = st.store.active_failovers().map_err(internal)?;
    let anomalies = st.store.open_anomalies().map_err(internal)?;
    for v in &mut views {
        v.failed_over = failovers.get(&v.name).cloned();
        v.anomaly = anomalies
            .get(&v.name)
            .map(|(reason, at)| pulih_model::api::Anomaly {
                reason: reason.clone(),
                flagged_at: rfc3339(*at),
            });
    }
    Ok((views, t))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerFilter {
    #[serde(default)]
    pd: Option<String>,
}

pub async fn list(
    State(st): State<Shared>,
    headers: HeaderMap,
    Query(f): Query<ServerFilter>,
) -> Result<Json<Vec<ServerView>>, ApiError> {
    st.require_admin(&headers)?;
    let (mut v, _) = views(&st)?;
    if let Some(pd) = f.pd {
        if !st.desired().set.perangkat_daerah.contains_key(&pd) {
            return Err(ApiError::NotFound(format!("no PerangkatDaerah `{pd}`")));
        }
        v.retain(|s| s.perangkat_daerah == pd);
    }
    Ok(Json(v))
}

pub async fn show(
    State(st): State<Shared>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<ServerView>, ApiError> {
    st.require_admin(&headers)?;
    let (v, _) = views(&st)?;
    let mut view = v.into_iter().find(|s| s.name == name).ok_or_else(|| {
        ApiError::NotFound(format!("no Server `{name}` in the applied manifests"))
    })?;
    view.facts = st
        .store
        .agent(&name)
        .map_err(internal)?
        .and_then(|a| a.facts_json)
        .and_then(|j| serde_json::from_str(&j).ok());
    Ok(Json(view))
}

/// An operator looked at a ransomware signal of server `name`: its flags
/// are cleared and its holds removed from the agency's repository, so
/// retention goes on as before (audited `anomaly.cleared`).
pub async fn clear_anomaly(
    State(st): State<Shared>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<pulih_model::api::AnomalyCleared>, ApiError> {
    let actor = st.require_admin(&headers)?;
    require_server(&st, &name)?;
    let url = {
        let d = st.desired();
        let pd = d.set.servers[&name].spec().perangkat_daerah.clone();
        crate::desired::pd_repository(&d.set, &pd, &st.config)
            .ok_or_else(|| ApiError::Conflict(format!("{pd} has no DRC target in the manifests")))?
    };
    let store = st
        .config
        .open_store(&url)
        .map_err(|e| ApiError::Internal(format!("cannot open {url}: {e:#}")))?;
    // The holds first: a flag cleared while its hold stays would keep
    // the history without anyone seeing why.
    let holds_removed = pulih_core::holds::clear(&store, &name)
        .await
        .map_err(|e| ApiError::Internal(format!("cannot remove the holds in {url}: {e}")))?;
    let flags = st
        .store
        .clear_anomalies(&name, actor, st.now())
        .map_err(internal)?;
    st.store
        .audit(
            actor,
            "anomaly.cleared",
            &format!("{name}: {flags} flags cleared, holds removed: {holds_removed:?}"),
            st.now(),
        )
        .map_err(internal)?;
    tracing::info!(server = %name, %actor, flags, ?holds_removed, "anomaly cleared");
    Ok(Json(pulih_model::api::AnomalyCleared {
        flags,
        holds_removed,
    }))
}

fn require_server(st: &Shared, name: &str) -> Result<(), ApiError> {
    if st.desired().set.servers.contains_key(name) {
        Ok(())
    } else {
        Err(ApiError::NotFound(format!(
            "no Server `{name}` in the applied manifests"
        )))
    }
}

pub async fn enroll_token(
    State(st): State<Shared>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<EnrollTokenResponse>, ApiError> {
    let actor = st.require_admin(&headers)?;
    require_server(&st, &name)?;
    Ok(Json(mint_enroll_token(
        &st,
        actor,
        name,
        "agent.enroll_token",
    )?))
}

/// A one-time enrolment token for the agent name `name` (a server, or a
/// DRC executor's `drc:<target>`), valid 24 h; audited as `action`.
pub fn mint_enroll_token(
    st: &Shared,
    actor: &str,
    name: String,
    action: &str,
) -> Result<EnrollTokenResponse, ApiError> {
    let token = new_token();
    let t = st.now();
    st.store
        .add_enroll_token(&token_hash(&token), &name, t + ENROLL_TOKEN_SECONDS)
        .map_err(internal)?;
    st.store.audit(actor, action, &name, t).map_err(internal)?;
    Ok(EnrollTokenResponse {
        server: name,
        token,
        expires_at: rfc3339(t + ENROLL_TOKEN_SECONDS),
    })
}

/// Queue a job for the server's agent (delivered with its next heartbeat).
fn queue(
    st: &Shared,
    headers: &HeaderMap,
    name: &str,
    kind: JobKind,
    params_json: Option<String>,
) -> Result<Json<ReplicateResponse>, ApiError> {
    let actor = st.require_admin(headers)?;
    require_server(st, name)?;
    let run_key = format!("manual-{}", &new_token()[..16]);
    let t = st.now();
    let job = QueuedJob { kind, params_json };
    st.store
        .queue_run(name, &run_key, &job, t)
        .map_err(internal)?;
    st.store
        .audit(
            actor,
            &format!("run.{kind}"),
            &format!("{name} {run_key}"),
            t,
        )
        .map_err(internal)?;
    Ok(Json(ReplicateResponse { run_key }))
}

pub async fn replicate(
    State(st): State<Shared>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<ReplicateResponse>, ApiError> {
    queue(&st, &headers, &name, JobKind::Replicate, None)
}

pub async fn verify(
    State(st): State<Shared>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<ReplicateResponse>, ApiError> {
    queue(&st, &headers, &name, JobKind::Verify, None)
}

pub async fn restore(
    State(st): State<Shared>,
    headers: HeaderMap,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<RestoreRequest>,
) -> Result<Json<ReplicateResponse>, ApiError> {
    let plain = |p: &str| {
        std::path::Path::new(p).is_absolute()
            && !p
                .split('/')
                .any(|c| c == ".." || c == "." || c.contains('\0'))
    };
    if !plain(&req.target) {
        return Err(ApiError::InvalidBody(format!(
            "target `{}` is not an absolute path without `.` or `..` components",
            req.target
        )));
    }
    if let Some(bad) = req.include.iter().find(|p| !plain(p)) {
        return Err(ApiError::InvalidBody(format!(
            "include `{bad}` is not an absolute backed-up path"
        )));
    }
    if req.snapshot.is_empty() {
        return Err(ApiError::InvalidBody(
            "snapshot is empty; give an id, a unique prefix, or `latest`".into(),
        ));
    }
    let params = serde_json::to_string(&req).map_err(internal)?;
    queue(&st, &headers, &name, JobKind::Restore, Some(params))
}

fn to_run(r: RunRow) -> Run {
    let res: Option<RunResult> = r
        .result_json
        .as_deref()
        .and_then(|j| serde_json::from_str(j).ok());
    let res_ref = res.as_ref();
    Run {
        run_key: r.run_key,
        server: r.server,
        kind: r.kind,
        trigger: r.trigger,
        state: r.state,
        scheduled_for: r.scheduled_for.map(rfc3339),
        created_at: rfc3339(r.created_at),
        started_at: r.started_at.map(rfc3339),
        finished_at: r.finished_at.map(rfc3339),
        snapshot_id: res_ref.and_then(|x| x.snapshot_id.clone()),
        files: res_ref.map_or(0, |x| x.files),
        bytes_read: res_ref.map_or(0, |x| x.bytes_read),
        bytes_new: res_ref.map_or(0, |x| x.bytes_new),
        bytes_stored: res_ref.map_or(0, |x| x.bytes_stored),
        duration_s: res_ref.map_or(0.0, |x| x.duration_s),
        errors: res.map(|x| x.errors).unwrap_or_default(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunFilter {
    #[serde(default)]
    server: Option<String>,
    #[serde(default)]
    limit: Option<u32>,
}

pub async fn runs(
    State(st): State<Shared>,
    headers: HeaderMap,
    Query(f): Query<RunFilter>,
) -> Result<Json<Vec<Run>>, ApiError> {
    st.require_admin(&headers)?;
    let rows = st
        .store
        .runs(f.server.as_deref(), f.limit.unwrap_or(100).min(10_000))
        .map_err(internal)?;
    Ok(Json(rows.into_iter().map(to_run).collect()))
}

pub async fn run(
    State(st): State<Shared>,
    headers: HeaderMap,
    Path(key): Path<String>,
) -> Result<Json<Run>, ApiError> {
    st.require_admin(&headers)?;
    st.store
        .run(&key)
        .map_err(internal)?
        .map(|r| Json(to_run(r)))
        .ok_or_else(|| ApiError::NotFound(format!("no run `{key}`")))
}

pub async fn status(
    State(st): State<Shared>,
    headers: HeaderMap,
) -> Result<Json<StatusResponse>, ApiError> {
    st.require_admin(&headers)?;
    let (v, t) = views(&st)?;
    let agents = st.store.agents().map_err(internal)?;
    let recent = t - st.config.agent_offline_after.as_secs() as i64;
    let (running, ok, failed) = st.store.run_counts_since(t - 24 * 3600).map_err(internal)?;
    let d = st.desired();
    Ok(Json(StatusResponse {
        version: env!("CARGO_PKG_VERSION").to_string(),
        revision: d.revision,
        perangkat_daerah: d.set.perangkat_daerah.len() as u64,
        servers: d.set.servers.len() as u64,
        agents_enrolled: agents.len() as u64,
        agents_seen_recently: agents
            .iter()
            .filter(|a| a.last_seen.is_some_and(|s| s >= recent))
            .count() as u64,
        runs_running: running,
        runs_succeeded_24h: ok,
        runs_failed_24h: failed,
        overall: compliance::counts(&v, &d.set),
    }))
}

pub async fn compliance(
    State(st): State<Shared>,
    headers: HeaderMap,
) -> Result<Json<ComplianceReport>, ApiError> {
    st.require_admin(&headers)?;
    let (v, t) = views(&st)?;
    let d = st.desired();
    Ok(Json(compliance::report(&d.set, v, t)))
}

pub async fn maintenance_runs(
    State(st): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<RunFilter>,
) -> Result<Json<Vec<MaintenanceRun>>, ApiError> {
    st.require_admin(&headers)?;
    if q.server.is_some() {
        return Err(ApiError::InvalidBody(
            "maintenance runs are per agency; `server` does not apply".into(),
        ));
    }
    let rows = st
        .store
        .maintenance_runs(q.limit.unwrap_or(50).min(1000))
        .map_err(internal)?;
    Ok(Json(
        rows.into_iter().map(crate::maintenance::view).collect(),
    ))
}

/// Run retention now (all agencies, or one); answers at once with the
/// queued runs' ids.
pub async fn maintenance_run(
    State(st): State<Shared>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<MaintenanceRequest>,
) -> Result<Json<MaintenanceQueued>, ApiError> {
    let actor = st.require_admin(&headers)?;
    let queued = crate::maintenance::queue(&st, "manual", req.perangkat_daerah.as_deref())?;
    let ids: Vec<i64> = queued.iter().map(|(id, _)| *id).collect();
    st.store
        .audit(
            actor,
            "maintenance.queue",
            &format!(
                "{} ({} run(s))",
                req.perangkat_daerah.as_deref().unwrap_or("all agencies"),
                ids.len()
            ),
            st.now(),
        )
        .map_err(internal)?;
    st.tasks.spawn(
        "maintenance",
        crate::maintenance::execute(st.clone(), queued),
    );
    Ok(Json(MaintenanceQueued { ids }))
}
