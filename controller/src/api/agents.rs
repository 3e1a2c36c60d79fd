//! The agent side of the API: enrolment, heartbeat, runs.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use pulih_model::api::{
    EnrollRequest, EnrollResponse, HeartbeatRequest, HeartbeatResponse, Job, RunResult,
    RunStartRequest, RunStartResponse,
};
use pulih_model::state::{JobKind, RunState};

use super::{ApiJson, Authorize, Peer, internal};
use crate::desired::assignment;
use crate::error::ApiError;
use crate::repo_check::Check;
use crate::state::{Shared, new_token, token_hash};
use crate::store::TokenCheck;

/// Running runs older than this no longer count against the caps (a run
/// whose agent died without reporting).
const STALE_RUN_SECONDS: i64 = 6 * 3600;

fn check_server_name(server: &str) -> Result<(), ApiError> {
    if server.is_empty() || server.len() > 63 {
        return Err(ApiError::InvalidBody(format!(
            "invalid server name `{server}`"
        )));
    }
    Ok(())
}

fn check_run_key(key: &str) -> Result<(), ApiError> {
    let ok = !key.is_empty()
        && key.len() <= 128
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ApiError::InvalidBody(format!("invalid run key `{key}`")))
    }
}

pub async fn enroll(
    State(st): State<Shared>,
    ApiJson(req): ApiJson<EnrollRequest>,
) -> Result<Json<EnrollResponse>, ApiError> {
    check_server_name(&req.server)?;
    let t = st.now();
    match st
        .store
        .consume_enroll_token(&token_hash(&req.token), &req.server, t)
        .map_err(internal)?
    {
        TokenCheck::Accepted => {}
        TokenCheck::Used => return Err(ApiError::EnrollTokenUsed),
        TokenCheck::Expired => return Err(ApiError::EnrollTokenExpired),
        TokenCheck::Unknown => return Err(ApiError::InvalidToken),
        TokenCheck::OtherServer => return Err(ApiError::WrongServer),
    }
    let credential = new_token();
    let store_credential = gateway_credential(&st, &req.server, t)?;
    st.store
        .set_agent_credential(&req.server, &token_hash(&credential), t)
        .map_err(internal)?;
    let issued = store_credential
        .as_ref()
        .map(|c| format!("; gateway credential {}", c.access_key_id))
        .unwrap_or_default();
    st.store
        .audit(
            &format!("agent:{}", req.server),
            "agent.enroll",
            &format!("hostname {}{issued}", req.facts.hostname),
            t,
        )
        .map_err(internal)?;
    tracing::info!(server = %req.server, hostname = %req.facts.hostname, "agent enrolled");
    Ok(Json(EnrollResponse {
        server: req.server,
        credential,
        store_credential,
    }))
}

/// The enrolling agent's (or DRC executor's) gateway credential, when the
/// controller issues them (`[gateway] key_file`): derived from the gateway
/// key, its serial the enrolment time, so a new enrolment gets a new one
/// and the old can be revoked in the gateway's config.
fn gateway_credential(
    st: &Shared,
    server: &str,
    t: i64,
) -> Result<Option<pulih_model::api::StoreCredential>, ApiError> {
    use pulih_core::gateway_creds::{GatewayKey, Principal};
    let Some(g) = &st.config.gateway else {
        return Ok(None);
    };
    let serial = u32::try_from(t).unwrap_or(u32::MAX);
    let principal = match server.strip_prefix("drc:") {
        Some(target) => Principal::Executor {
            target: target.to_owned(),
            serial,
        },
        None => {
            let d = st.desired();
            let Some(s) = d.set.servers.get(server) else {
                tracing::warn!(%server, "no manifest names this server: no gateway credential issued");
                return Ok(None);
            };
            Principal::Agent {
                agency: s.spec().perangkat_daerah.clone(),
                server: server.to_owned(),
                serial,
            }
        }
    };
    let akid = principal.access_key_id().expect("an issued principal");
    let key = GatewayKey::load(&g.key_file).map_err(internal)?;
    Ok(Some(pulih_model::api::StoreCredential {
        secret_access_key: key.secret(&akid),
        access_key_id: akid,
    }))
}

pub async fn heartbeat(
    State(st): State<Shared>,
    Path(server): Path<String>,
    peer: Peer,
    headers: HeaderMap,
    ApiJson(req): ApiJson<HeartbeatRequest>,
) -> Result<Json<HeartbeatResponse>, ApiError> {
    st.require_agent(&headers, &server)?;
    let facts = serde_json::to_string(&req.facts).map_err(internal)?;
    st.store
        .heartbeat(&server, st.now(), &facts, &peer.0.ip().to_string())
        .map_err(internal)?;
    let assignment = {
        let d = st.desired();
        d.revision
            .and_then(|rev| assignment(&d.set, &server, rev, &st.config))
    };
    let jobs = st
        .store
        .queued_runs(&server)
        .map_err(internal)?
        .into_iter()
        .map(|r| Job {
            restore: r
                .params_json
                .as_deref()
                .and_then(|j| serde_json::from_str(j).ok()),
            run_key: r.run_key,
            kind: r.kind,
        })
        .collect();
    Ok(Json(HeartbeatResponse { assignment, jobs }))
}

fn parse_time(s: &str) -> Result<i64, ApiError> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|e| ApiError::InvalidBody(format!("invalid time `{s}` ({e}); use RFC 3339")))
}

pub async fn start_run(
    State(st): State<Shared>,
    Path((server, run_key)): Path<(String, String)>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<RunStartRequest>,
) -> Result<Json<RunStartResponse>, ApiError> {
    st.require_agent(&headers, &server)?;
    check_run_key(&run_key)?;
    let scheduled_for = req.scheduled_for.as_deref().map(parse_time).transpose()?;
    let t = st.now();
    // Concurrency caps: per agency, and per DRC target.
    let (pd_servers, pd_cap, target_servers, target_cap) = {
        let d = st.desired();
        let set = &d.set;
        let pd = set
            .servers
            .get(&server)
            .map(|s| s.spec().perangkat_daerah.clone());
        let pd_obj = pd.as_ref().and_then(|p| set.perangkat_daerah.get(p));
        let target = pd_obj.map(|p| p.spec().drc_target.clone());
        let servers_where = |f: &dyn Fn(&str) -> bool| -> Vec<String> {
            set.servers
                .values()
                .filter(|s| f(&s.spec().perangkat_daerah))
                .map(|s| s.name().to_string())
                .collect()
        };
        let pd_servers = servers_where(&|p| Some(p) == pd.as_deref());
        let target_servers = servers_where(&|p| {
            set.perangkat_daerah.get(p).map(|o| &o.spec().drc_target) == target.as_ref()
        });
        let pd_cap = pd_obj
            .and_then(|p| p.spec().max_concurrent_jobs)
            .unwrap_or(2);
        let target_cap = target
            .and_then(|t| set.drc_targets.get(&t))
            .and_then(|t| t.spec().max_concurrent_jobs)
            .unwrap_or(8);
        (pd_servers, pd_cap, target_servers, target_cap)
    };
    // Scheduled runs wait for the agency's replication window (manual ones don't).
    if req.trigger == "schedule"
        && let Some(wait) = seconds_until_window(&st, &server, t)
    {
        return Ok(Json(RunStartResponse {
            proceed: false,
            retry_after_seconds: wait,
        }));
    }
    let since = t - STALE_RUN_SECONDS;
    let already = st.store.run(&run_key).map_err(internal)?;
    let resuming = already
        .as_ref()
        .is_some_and(|r| r.state == RunState::Running && r.server == server);
    if !resuming
        && (st
            .store
            .running_count(&pd_servers, since)
            .map_err(internal)?
            >= u64::from(pd_cap)
            || st
                .store
                .running_count(&target_servers, since)
                .map_err(internal)?
                >= u64::from(target_cap))
    {
        return Ok(Json(RunStartResponse {
            proceed: false,
            retry_after_seconds: 30,
        }));
    }
    if let Some(r) = &already
        && r.server != server
    {
        return Err(ApiError::Conflict(format!(
            "run `{run_key}` belongs to another server"
        )));
    }
    let started = st
        .store
        .start_run(&server, &run_key, &req.trigger, scheduled_for, t)
        .map_err(internal)?;
    Ok(Json(RunStartResponse {
        proceed: started,
        retry_after_seconds: 0,
    }))
}

/// Seconds until the server's agency's replication window opens, or None
/// when it is open now (or there is none).
fn seconds_until_window(st: &Shared, server: &str, now: i64) -> Option<u64> {
    let d = st.desired();
    let pd = d.set.servers.get(server)?.spec().perangkat_daerah.clone();
    let w = d
        .set
        .perangkat_daerah
        .get(&pd)?
        .spec()
        .replication_window
        .clone()?;
    window_wait(&w, now)
}

pub fn window_wait(w: &pulih_model::manifest::Window, now: i64) -> Option<u64> {
    use chrono::{TimeZone, Timelike};
    let tz = w.timezone.unwrap_or_default().0;
    let local = tz.timestamp_opt(now, 0).single()?;
    let secs = |t: chrono::NaiveTime| i64::from(t.num_seconds_from_midnight());
    let (start, end, cur) = (
        secs(w.start.0),
        secs(w.end.0),
        i64::from(local.num_seconds_from_midnight()),
    );
    let open = if start < end {
        cur >= start && cur < end
    } else {
        cur >= start || cur < end
    };
    if open {
        None
    } else {
        Some((start - cur).rem_euclid(86_400) as u64)
    }
}

pub async fn result(
    State(st): State<Shared>,
    Path((server, run_key)): Path<(String, String)>,
    headers: HeaderMap,
    ApiJson(res): ApiJson<RunResult>,
) -> Result<Json<serde_json::Value>, ApiError> {
    st.require_agent(&headers, &server)?;
    check_run_key(&run_key)?;
    if !res.state.is_finished() {
        return Err(ApiError::InvalidBody(format!(
            "invalid run state `{}`; expected succeeded, partial or failed",
            res.state
        )));
    }
    parse_time(&res.started_at)?;
    parse_time(&res.finished_at)?;
    let row = st.store.run(&run_key).map_err(internal)?;
    if let Some(r) = &row
        && r.server != server
    {
        return Err(ApiError::Conflict(format!(
            "run `{run_key}` belongs to another server"
        )));
    }
    // A replication that kept a snapshot is checked against the store
    // (a run the controller did not queue is the agent's own schedule).
    let mut res = res;
    // One spelling per id, so "reported before" cannot be dodged by case.
    if let Some(id) = &mut res.snapshot_id {
        id.make_ascii_lowercase();
    }
    let replication = row.as_ref().is_none_or(|r| r.kind == JobKind::Replicate);
    if replication && matches!(res.state, RunState::Succeeded | RunState::Partial) {
        let queued_at = row.as_ref().map(|r| r.created_at);
        match crate::repo_check::reported_snapshot(&st, &server, &run_key, queued_at, &res).await {
            Check::Confirmed => {}
            Check::Refuted(why) => {
                tracing::warn!(%server, %run_key, %why, "a reported snapshot is not confirmed by the store: run recorded as failed");
                let _ = st.store.audit(
                    &format!("agent:{server}"),
                    "run.refuted",
                    &format!("{server} run {run_key}: {why}"),
                    st.now(),
                );
                res.state = RunState::Failed;
                res.errors
                    .push(format!("not confirmed by the controller: {why}"));
            }
            Check::Unchecked(why) => {
                tracing::warn!(%server, %run_key, %why, "cannot check a reported snapshot in the store; recorded as the agent reported it");
            }
        }
    }
    st.store
        .finish_run(&server, &run_key, &res, st.now())
        .map_err(internal)?;
    tracing::info!(%server, %run_key, state = %res.state, snapshot = ?res.snapshot_id, "run result");
    Ok(Json(serde_json::json!({ "recorded": run_key })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replication_windows_cross_midnight() {
        let w: pulih_model::manifest::Window =
            serde_json::from_value(serde_json::json!({"start": "22:00", "end": "05:00"})).unwrap();
        // 2026-11-24T14:00:00Z is 22:00 WITA: open. 13:00Z is 21:00 WITA: one hour to wait.
        let at = |s: &str| {
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                .unwrap()
                .unix_timestamp()
        };
        assert_eq!(window_wait(&w, at("2026-11-24T14:00:00Z")), None);
        assert_eq!(window_wait(&w, at("2026-11-24T20:59:59Z")), None);
        assert_eq!(window_wait(&w, at("2026-11-24T13:00:00Z")), Some(3600));
        assert_eq!(window_wait(&w, at("2026-11-24T21:00:00Z")), Some(17 * 3600));
    }
}
