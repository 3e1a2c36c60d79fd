//! Drills (DESIGN.md §6): ops ask for one (or the agency's drill schedule
//! fires), the DRC executor of the agency's DRC target picks it up with its
//! heartbeat, runs it with the `drc-drill` reader key, and reports back.
//!
//! The executor's side of the API is in [`super::drc`].

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use pulih_model::api::{DrillQueued, DrillRequest, DrillView};
use pulih_model::drill::{DrillReport, RecoveryKind};
use serde::Deserialize;

use super::{ApiJson, Shared, internal, new_token, now};
use crate::compliance::rfc3339;
use crate::error::ApiError;
use crate::store::DrillRow;

/// A recovery running this long without a report is failed.
pub const STALE_RECOVERY_SECONDS: i64 = 6 * 3600;

/// The agent name a DRC target's executor enrols under.
pub fn executor_name(target: &str) -> String {
    format!("drc:{target}")
}

/// A new drill (or failover) id: the kind, the UTC time and a random suffix.
pub fn new_drill_id(kind: RecoveryKind, now: i64) -> String {
    let t =
        time::OffsetDateTime::from_unix_timestamp(now).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let stamp = format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    format!("{}-{stamp}-{}", kind_word(kind), &new_token()[..8])
}

pub(super) fn kind_word(kind: RecoveryKind) -> &'static str {
    kind.word()
}

/// Whether `server` can be recovered at all: it exists, it has recovery
/// containers, its agency is known, and for a drill, its agency consents
/// to drills (a failover runs under the failover authorization instead).
/// Returns its agency and DRC target.
pub(super) fn check(
    st: &Shared,
    kind: RecoveryKind,
    server: &str,
) -> Result<(String, String), ApiError> {
    let d = st.desired();
    let s = d.set.servers.get(server).ok_or_else(|| {
        ApiError::NotFound(format!("no Server `{server}` in the applied manifests"))
    })?;
    let pd_name = s.spec().perangkat_daerah.clone();
    let pd = d
        .set
        .perangkat_daerah
        .get(&pd_name)
        .ok_or_else(|| ApiError::NotFound(format!("no PerangkatDaerah `{pd_name}`")))?;
    if kind == RecoveryKind::Drill && !pd.spec().drills.as_ref().is_some_and(|p| p.consent) {
        return Err(ApiError::ConsentMissing(format!(
            "agency {pd_name} gave no drill consent (spec.drills.consent in its PerangkatDaerah manifest): a drill reads its data, so it needs the walidata's consent first"
        )));
    }
    if s.spec()
        .recovery
        .as_ref()
        .is_none_or(|r| r.containers.is_empty())
    {
        return Err(ApiError::InvalidBody(format!(
            "server {server} has no recovery containers in its manifest (spec.recovery.containers): there is nothing to start at the DRC"
        )));
    }
    Ok((pd_name, pd.spec().drc_target.clone()))
}

/// Queues a drill (or failover, failback) of `server`, after [`check`]ing
/// that it can run at all. `why` goes to the audit log.
#[allow(clippy::too_many_arguments)]
pub fn queue(
    st: &Shared,
    kind: RecoveryKind,
    server: &str,
    snapshot: Option<String>,
    trigger: &str,
    actor: &str,
    id: String,
    why: &str,
) -> Result<DrillQueued, ApiError> {
    let t = now();
    let (pd, target) = check(st, kind, server)?;
    let snapshot = snapshot.unwrap_or_else(|| "latest".into());
    if kind != RecoveryKind::Failback
        && (snapshot.is_empty()
            || snapshot.len() > 64
            || !(snapshot == "latest" || snapshot.bytes().all(|b| b.is_ascii_hexdigit())))
    {
        return Err(ApiError::InvalidBody(format!(
            "snapshot `{snapshot}` is neither `latest` nor a snapshot id (hex)"
        )));
    }
    let row = DrillRow {
        id: id.clone(),
        server: server.to_string(),
        perangkat_daerah: pd,
        drc_target: target.clone(),
        trigger: trigger.to_string(),
        state: "queued".into(),
        requested_by: actor.to_string(),
        snapshot,
        created_at: t,
        started_at: None,
        finished_at: None,
        report_json: None,
        kind: kind_word(kind).to_string(),
    };
    if st.store.queue_drill(&row).map_err(internal)? {
        st.store
            .audit(
                actor,
                &format!("{}.request", kind_word(kind)),
                &format!("{id}: server {server} ({trigger}), DRC target {target}{why}"),
                t,
            )
            .map_err(internal)?;
        tracing::info!(id = %id, %server, %trigger, kind = kind_word(kind), "recovery queued");
    }
    Ok(DrillQueued {
        id,
        drc_target: target,
    })
}

pub async fn request(
    State(st): State<Shared>,
    headers: HeaderMap,
    Path(server): Path<String>,
    ApiJson(req): ApiJson<DrillRequest>,
) -> Result<Json<DrillQueued>, ApiError> {
    let actor = st.require_admin(&headers)?;
    let id = new_drill_id(RecoveryKind::Drill, now());
    Ok(Json(queue(
        &st,
        RecoveryKind::Drill,
        &server,
        req.snapshot,
        "manual",
        actor,
        id,
        "",
    )?))
}

/// The order or approval a failover or failback runs under (required).
pub(super) fn order_of(req: &pulih_model::api::FailoverRequest) -> Result<&str, ApiError> {
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
    ApiJson(req): ApiJson<pulih_model::api::FailoverRequest>,
) -> Result<Json<DrillQueued>, ApiError> {
    let actor = st.require_failover(&headers)?;
    let order = order_of(&req)?;
    if let Some(other) = failover_busy(&st, &server)? {
        return Err(ApiError::Conflict(format!(
            "server {server} already has failover {other} queued, running or active; fail it back first"
        )));
    }
    let id = new_drill_id(RecoveryKind::Failover, now());
    Ok(Json(queue(
        &st,
        RecoveryKind::Failover,
        &server,
        req.snapshot.clone(),
        "manual",
        actor,
        id,
        &format!(", under order: {order}"),
    )?))
}

/// One failover of a server at a time: the failover of `server` that is
/// queued, running or active, if any.
pub(super) fn failover_busy(st: &Shared, server: &str) -> Result<Option<String>, ApiError> {
    Ok(st
        .store
        .drills(Some(server), 1000)
        .map_err(internal)?
        .into_iter()
        .find(|d| d.kind == "failover" && matches!(d.state.as_str(), "queued" | "running"))
        .map(|d| d.id)
        .or(st
            .store
            .active_failovers()
            .map_err(internal)?
            .remove(server)))
}

/// Ends a failover: the DRC executor stops the server's DRC copy and
/// replicates its data back as a new snapshot; then the primary's agent
/// restores that snapshot in place (queued here when the executor reports);
/// normal replication goes on. The same authorization as a failover.
pub async fn failback(
    State(st): State<Shared>,
    headers: HeaderMap,
    Path(server): Path<String>,
    ApiJson(req): ApiJson<pulih_model::api::FailoverRequest>,
) -> Result<Json<DrillQueued>, ApiError> {
    let actor = st.require_failover(&headers)?;
    let order = order_of(&req)?;
    let Some(failover) = st
        .store
        .active_failovers()
        .map_err(internal)?
        .remove(&server)
    else {
        return Err(ApiError::Conflict(format!(
            "server {server} is not failed over (no failover of it is active)"
        )));
    };
    if let Some(other) = st
        .store
        .drills(Some(&server), 1000)
        .map_err(internal)?
        .into_iter()
        .find(|d| {
            d.kind == "failback"
                && d.snapshot == failover
                && matches!(d.state.as_str(), "queued" | "running")
        })
    {
        return Err(ApiError::Conflict(format!(
            "failback {} of {failover} is already {}",
            other.id, other.state
        )));
    }
    let id = new_drill_id(RecoveryKind::Failback, now());
    Ok(Json(queue(
        &st,
        RecoveryKind::Failback,
        &server,
        Some(failover.clone()),
        "manual",
        actor,
        id,
        &format!(", ends {failover}, under order: {order}"),
    )?))
}

pub(super) fn kind_of(word: &str) -> RecoveryKind {
    RecoveryKind::from_word(word).unwrap_or(RecoveryKind::Drill)
}

fn report_of(row: &DrillRow) -> Option<DrillReport> {
    row.report_json
        .as_deref()
        .and_then(|j| serde_json::from_str(j).ok())
}

pub fn view(row: DrillRow, with_report: bool) -> DrillView {
    let report = report_of(&row);
    let targets = {
        let r = report.as_ref();
        (
            r.and_then(|r| r.rto_target_seconds),
            r.and_then(|r| r.rpo_target_seconds),
        )
    };
    DrillView {
        kind: kind_of(&row.kind),
        rto_seconds: report.as_ref().and_then(|r| r.rto_seconds),
        rpo_seconds: report.as_ref().and_then(|r| r.rpo_seconds),
        rto_target_seconds: targets.0,
        rpo_target_seconds: targets.1,
        error: match &report {
            Some(r) => r.error.clone(),
            None if row.state == "failed" => Some(format!(
                "the DRC executor of {} did not report within {} hours (it stopped or lost its work); check it, and tear down what is left by label io.pulih.recovery={}",
                row.drc_target,
                STALE_RECOVERY_SECONDS / 3600,
                row.id
            )),
            None => None,
        },
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

/// Scheduled drills due now: per server of an agency that consents to
/// drills on a schedule, with recovery containers and an agent enrolled
/// before the schedule's newest firing, that firing (Unix seconds). A
/// firing missed while the controller was down is still the newest one, so
/// it is queued once on return, not once per missed firing.
pub fn due_drills(
    set: &pulih_model::manifest::ManifestSet,
    enrolled_at: &dyn Fn(&str) -> Option<i64>,
    now: i64,
) -> Vec<(String, i64)> {
    let mut due = Vec::new();
    for s in set.servers.values() {
        let Some(fired) = crate::compliance::drill_firings(set, s.name(), now)
            .first()
            .copied()
        else {
            continue;
        };
        if enrolled_at(s.name()).is_some_and(|e| e <= fired) {
            due.push((s.name().to_string(), fired));
        }
    }
    due
}

/// Queues the scheduled drills every 30 s until `cancel` (ids are
/// `drill-sched-<server>-<firing>`, so a firing is queued once).
pub fn spawn_schedule(st: Shared, cancel: tokio_util::sync::CancellationToken) {
    tokio::spawn(async move {
        loop {
            let t = now();
            match st.store.expire_drills(t - STALE_RECOVERY_SECONDS, t) {
                Ok(ids) => {
                    for id in ids {
                        tracing::warn!(%id, "no report from the DRC executor in time; marked failed");
                        let _ = st.store.audit(
                            "scheduler",
                            "recovery.expire",
                            &format!("{id}: no report within {STALE_RECOVERY_SECONDS} s"),
                            t,
                        );
                    }
                }
                Err(e) => tracing::error!(error = %e, "cannot expire stale recoveries"),
            }
            super::plans::advance_all(&st);
            let due = {
                let d = st.desired();
                // Agents are read only for servers with a drill schedule,
                // not the whole fleet every 30 s.
                let enrolled_at = |s: &str| {
                    st.store
                        .agent(s)
                        .inspect_err(
                            |e| tracing::error!(error = %e, "drill schedule: cannot read agent"),
                        )
                        .ok()
                        .flatten()
                        .map(|a| a.enrolled_at)
                };
                due_drills(&d.set, &enrolled_at, t)
            };
            for (server, fired) in due {
                let id = format!("drill-sched-{server}-{fired}");
                if let Err(e) = queue(
                    &st,
                    RecoveryKind::Drill,
                    &server,
                    None,
                    "schedule",
                    "scheduler",
                    id,
                    "",
                ) {
                    tracing::warn!(%server, error = %e, "scheduled drill not queued");
                }
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(std::time::Duration::from_secs(30)) => {}
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFESTS: &str = r#"
apiVersion: pulih.io/v1alpha1
kind: DrcTarget
metadata: {name: drc}
spec: {url: /srv/drc}
---
apiVersion: pulih.io/v1alpha1
kind: PerangkatDaerah
metadata: {name: dkis}
spec:
  code: DKIS
  name: Dinas Komunikasi dan Informatika
  walidata: {name: Kepala Dinas, contact: walidata@dkis.example}
  drcTarget: drc
  drills: {consent: true, schedule: "0 3 1 * *"}
---
apiVersion: pulih.io/v1alpha1
kind: PerangkatDaerah
metadata: {name: bpkad}
spec:
  code: BPKAD
  name: BPKAD
  walidata: {name: Kepala Badan, contact: walidata@bpkad.example}
  drcTarget: drc
  drills: {consent: false}
---
apiVersion: pulih.io/v1alpha1
kind: Server
metadata: {name: web}
spec:
  perangkatDaerah: dkis
  location: pusat-data
  centralization: {status: centralized}
  sources: [{path: /srv}]
  recovery:
    containers: [{name: web, image: "web:1"}]
---
apiVersion: pulih.io/v1alpha1
kind: Server
metadata: {name: files}
spec:
  perangkatDaerah: dkis
  location: pusat-data
  centralization: {status: centralized}
  sources: [{path: /srv}]
---
apiVersion: pulih.io/v1alpha1
kind: Server
metadata: {name: keuangan}
spec:
  perangkatDaerah: bpkad
  location: pusat-data
  centralization: {status: centralized}
  sources: [{path: /srv}]
  recovery:
    containers: [{name: app, image: "app:1"}]
"#;

    #[test]
    fn a_scheduled_drill_is_due_once_per_firing_for_consenting_agencies_with_something_to_start() {
        let set = pulih_model::manifest::ManifestSet::from_sources(&[(
            "m.yaml".to_string(),
            MANIFESTS.as_bytes().to_vec(),
        )])
        .unwrap();
        // 2026-11-24T00:00:00Z; the newest firing was 1 Nov 03:00 WITA = 31 Oct 19:00Z.
        let now = 1_795_478_400;
        let fired = 1_793_473_200;
        let enrolled_long_ago = |_: &str| Some(0);
        assert_eq!(
            due_drills(&set, &enrolled_long_ago, now),
            [("web".to_string(), fired)],
            "only `web`: `files` has no recovery containers, bpkad gave no consent"
        );
        // The same firing an hour later: the same (server, firing), so the
        // same drill id, queued once.
        assert_eq!(
            due_drills(&set, &enrolled_long_ago, now + 3600),
            [("web".to_string(), fired)]
        );
        // An agent enrolled after the firing has nothing owed yet.
        assert!(due_drills(&set, &|_| Some(fired + 1), now).is_empty());
        assert!(due_drills(&set, &|_| None, now).is_empty());
    }
}
