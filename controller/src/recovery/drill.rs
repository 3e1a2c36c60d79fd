//! Drills, failovers and failbacks of one server (DESIGN.md §6): queued
//! here (by ops, the agency's drill schedule or a plan run), picked up by
//! the DRC executor of the agency's DRC target with its heartbeat, started
//! once and reported once: `queued → running → passed | failed`. A
//! recovery whose executor goes silent is failed after
//! [`STALE_RECOVERY_SECONDS`].

use pulih_model::api::{DrillQueued, RestoreRequest};
use pulih_model::drill::{DrillReport, RecoveryKind};
use pulih_model::manifest::ManifestSet;
use pulih_model::state::{DrillState, JobKind};

use super::{RecoveryError, RecoveryResult};
use crate::state::{AppState, new_token};
use crate::store::{DrillRow, QueuedJob};

/// A recovery running this long without a report is failed.
pub const STALE_RECOVERY_SECONDS: i64 = 6 * 3600;

/// The agent name a DRC target's executor enrols under.
pub fn executor_name(target: &str) -> String {
    format!("drc:{target}")
}

/// The run key of a failback's restore on the primary.
pub fn primary_run_key(failback_id: &str) -> String {
    format!("{failback_id}-primary")
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
    format!("{kind}-{stamp}-{}", &new_token()[..8])
}

/// Whether `server` can be recovered at all: it exists, it has recovery
/// containers, its agency is known, and for a drill, its agency consents
/// to drills (a failover runs under the failover authorization instead).
/// Returns its agency and DRC target.
pub fn check(st: &AppState, kind: RecoveryKind, server: &str) -> RecoveryResult<(String, String)> {
    let d = st.desired();
    let s = d.set.servers.get(server).ok_or_else(|| {
        RecoveryError::NotFound(format!("no Server `{server}` in the applied manifests"))
    })?;
    let pd_name = s.spec().perangkat_daerah.clone();
    let pd = d
        .set
        .perangkat_daerah
        .get(&pd_name)
        .ok_or_else(|| RecoveryError::NotFound(format!("no PerangkatDaerah `{pd_name}`")))?;
    if kind == RecoveryKind::Drill && !pd.spec().drills.as_ref().is_some_and(|p| p.consent) {
        return Err(RecoveryError::ConsentMissing(format!(
            "agency {pd_name} gave no drill consent (spec.drills.consent in its PerangkatDaerah manifest): a drill reads its data, so it needs the walidata's consent first"
        )));
    }
    if s.spec()
        .recovery
        .as_ref()
        .is_none_or(|r| r.containers.is_empty())
    {
        return Err(RecoveryError::Invalid(format!(
            "server {server} has no recovery containers in its manifest (spec.recovery.containers): there is nothing to start at the DRC"
        )));
    }
    Ok((pd_name, pd.spec().drc_target.clone()))
}

/// What to queue: a recovery of `server`, asked by `actor`.
pub struct Ask<'a> {
    pub kind: RecoveryKind,
    pub server: &'a str,
    /// `latest` when None; for a failback, the failover it ends.
    pub snapshot: Option<String>,
    /// `manual`, `schedule` or `plan`.
    pub trigger: &'a str,
    pub actor: &'a str,
    pub id: String,
    /// Appended to the audit record (the order it runs under, its plan run).
    pub why: &'a str,
}

/// Queues a drill (or failover, failback), after [`check`]ing that it can
/// run at all. Queuing an id twice is queuing it once.
pub fn queue(st: &AppState, ask: Ask<'_>, now: i64) -> RecoveryResult<DrillQueued> {
    let Ask {
        kind,
        server,
        snapshot,
        trigger,
        actor,
        id,
        why,
    } = ask;
    let (pd, target) = check(st, kind, server)?;
    let snapshot = snapshot.unwrap_or_else(|| "latest".into());
    if kind != RecoveryKind::Failback
        && (snapshot.is_empty()
            || snapshot.len() > 64
            || !(snapshot == "latest" || snapshot.bytes().all(|b| b.is_ascii_hexdigit())))
    {
        return Err(RecoveryError::Invalid(format!(
            "snapshot `{snapshot}` is neither `latest` nor a snapshot id (hex)"
        )));
    }
    let row = DrillRow {
        id: id.clone(),
        server: server.to_string(),
        perangkat_daerah: pd,
        drc_target: target.clone(),
        trigger: trigger.to_string(),
        state: DrillState::Queued,
        requested_by: actor.to_string(),
        snapshot,
        created_at: now,
        started_at: None,
        finished_at: None,
        report_json: None,
        kind,
    };
    if st.store.queue_drill(&row)? {
        st.store.audit(
            actor,
            &format!("{kind}.request"),
            &format!("{id}: server {server} ({trigger}), DRC target {target}{why}"),
            now,
        )?;
        tracing::info!(id = %id, %server, %trigger, kind = kind.as_str(), "recovery queued");
    }
    Ok(DrillQueued {
        id,
        drc_target: target,
    })
}

/// One failover of a server at a time: the failover of `server` that is
/// queued, running or active, if any.
pub fn failover_busy(st: &AppState, server: &str) -> RecoveryResult<Option<String>> {
    Ok(st
        .store
        .drills(Some(server), 1000)?
        .into_iter()
        .find(|d| d.kind == RecoveryKind::Failover && d.state.is_open())
        .map(|d| d.id)
        .or(st.store.active_failovers()?.remove(server)))
}

/// A real failover of `server` under `order` (refused while another
/// failover of it is queued, running or active).
pub fn failover(
    st: &AppState,
    server: &str,
    actor: &str,
    order: &str,
    snapshot: Option<String>,
    now: i64,
) -> RecoveryResult<DrillQueued> {
    if let Some(other) = failover_busy(st, server)? {
        return Err(RecoveryError::Conflict(format!(
            "server {server} already has failover {other} queued, running or active; fail it back first"
        )));
    }
    let kind = RecoveryKind::Failover;
    queue(
        st,
        Ask {
            kind,
            server,
            snapshot,
            trigger: "manual",
            actor,
            id: new_drill_id(kind, now),
            why: &format!(", under order: {order}"),
        },
        now,
    )
}

/// Ends the active failover of `server` under `order`: the DRC executor
/// stops the server's DRC copy and replicates its data back as a new
/// snapshot; the primary's agent then restores it in place (queued when
/// the executor reports, [`finish`]).
pub fn failback(
    st: &AppState,
    server: &str,
    actor: &str,
    order: &str,
    now: i64,
) -> RecoveryResult<DrillQueued> {
    let Some(failover) = st.store.active_failovers()?.remove(server) else {
        return Err(RecoveryError::Conflict(format!(
            "server {server} is not failed over (no failover of it is active)"
        )));
    };
    if let Some(other) =
        st.store.drills(Some(server), 1000)?.into_iter().find(|d| {
            d.kind == RecoveryKind::Failback && d.snapshot == failover && d.state.is_open()
        })
    {
        return Err(RecoveryError::Conflict(format!(
            "failback {} of {failover} is already {}",
            other.id, other.state
        )));
    }
    let kind = RecoveryKind::Failback;
    queue(
        st,
        Ask {
            kind,
            server,
            snapshot: Some(failover.clone()),
            trigger: "manual",
            actor,
            id: new_drill_id(kind, now),
            why: &format!(", ends {failover}, under order: {order}"),
        },
        now,
    )
}

/// The executor's report, once it sent one.
pub fn report_of(row: &DrillRow) -> Option<DrillReport> {
    row.report_json
        .as_deref()
        .and_then(|j| serde_json::from_str(j).ok())
}

/// Why a recovery failed, in one sentence: its report's word, or that its
/// executor went silent.
pub fn error_of(row: &DrillRow, report: Option<&DrillReport>) -> Option<String> {
    match report {
        Some(r) => r.error.clone(),
        None if row.state == DrillState::Failed => Some(format!(
            "the DRC executor of {} did not report within {} hours (it stopped or lost its work); check it, and tear down what is left by label io.pulih.recovery={}",
            row.drc_target,
            STALE_RECOVERY_SECONDS / 3600,
            row.id
        )),
        None => None,
    }
}

/// The recovery `id`, checked to belong to DRC target `target`.
pub fn of_target(st: &AppState, target: &str, id: &str) -> RecoveryResult<DrillRow> {
    match st.store.drill(id)? {
        Some(d) if d.drc_target == target => Ok(d),
        Some(_) => Err(RecoveryError::Conflict(format!(
            "drill `{id}` belongs to another DRC target"
        ))),
        None => Err(RecoveryError::NotFound(format!("no drill `{id}`"))),
    }
}

/// The executor of `target` starts `id`: `queued → running`, once. False
/// when it is not queued any more (the executor must not run it).
pub fn start(st: &AppState, target: &str, id: &str, now: i64) -> RecoveryResult<bool> {
    let row = of_target(st, target, id)?;
    let proceed = st.store.start_drill(id, now)?;
    if proceed {
        // The reader key is used from here on: the audit log says so.
        st.store.audit(
            &executor_name(target),
            &format!("{}.start", row.kind),
            &format!(
                "{id}: drc-drill reader key used for the {} of server {} of agency {}",
                row.kind, row.server, row.perangkat_daerah
            ),
            now,
        )?;
    }
    Ok(proceed)
}

/// The executor of `target` reports `id`: `→ passed | failed` (a second
/// report changes nothing). A passed failback queues the primary's
/// restore of the snapshot it made. The caller moves the recovery's plan
/// run on ([`super::plan::on_finished`]).
pub fn finish(
    st: &AppState,
    target: &str,
    id: &str,
    report: &DrillReport,
    now: i64,
) -> RecoveryResult<()> {
    let row = of_target(st, target, id)?;
    if report.id != id || report.server != row.server || report.kind != row.kind {
        return Err(RecoveryError::Invalid(format!(
            "the report is of {} `{}` of server {}, not of {} `{id}` of server {}",
            report.kind, report.id, report.server, row.kind, row.server
        )));
    }
    if report.state.is_open() {
        return Err(RecoveryError::Invalid(format!(
            "invalid state `{}`; expected passed or failed",
            report.state
        )));
    }
    let json = serde_json::to_string(report)
        .map_err(|e| RecoveryError::Corrupt(format!("the report of {id}: {e}")))?;
    let first = row.finished_at.is_none();
    // A failback's DRC side is done: the primary restores what it made
    // (queued before the drill is marked done, so a waiting client finds it).
    if first && report.kind == RecoveryKind::Failback && report.passed() {
        let Some(snapshot) = report
            .snapshot_id
            .clone()
            .filter(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
        else {
            return Err(RecoveryError::Invalid(
                "a passed failback report must name the snapshot it made (64 hex digits)".into(),
            ));
        };
        let params = serde_json::to_string(&RestoreRequest {
            target: "/".into(),
            snapshot,
            include: Vec::new(),
        })
        .map_err(|e| RecoveryError::Corrupt(e.to_string()))?;
        st.store.queue_run(
            &row.server,
            &primary_run_key(id),
            &QueuedJob {
                kind: JobKind::Failback,
                params_json: Some(params),
            },
            now,
        )?;
    }
    st.store.finish_drill(id, report.state, &json, now)?;
    st.store.audit(
        &executor_name(target),
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
        now,
    )?;
    tracing::info!(drill = %id, server = %row.server, state = %report.state, rto = ?report.rto_seconds, "drill report");
    Ok(())
}

/// Fails the recoveries whose executor has not reported within
/// [`STALE_RECOVERY_SECONDS`] of their start; returns them.
pub fn expire_stale(st: &AppState, now: i64) -> RecoveryResult<Vec<String>> {
    let ids = st.store.expire_drills(now - STALE_RECOVERY_SECONDS, now)?;
    for id in &ids {
        tracing::warn!(%id, "no report from the DRC executor in time; marked failed");
        let _ = st.store.audit(
            "scheduler",
            "recovery.expire",
            &format!("{id}: no report within {STALE_RECOVERY_SECONDS} s"),
            now,
        );
    }
    Ok(ids)
}

/// Scheduled drills due now: per server of an agency that consents to
/// drills on a schedule, with recovery containers and an agent enrolled
/// before the schedule's newest firing, that firing (Unix seconds). A
/// firing missed while the controller was down is still the newest one, so
/// it is queued once on return, not once per missed firing.
pub fn due_drills(
    set: &ManifestSet,
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

/// Queues the scheduled drills due now (ids are
/// `drill-sched-<server>-<firing>`, so a firing is queued once).
pub fn queue_scheduled(st: &AppState, now: i64) {
    let due = {
        let d = st.desired();
        // Agents are read only for servers with a drill schedule, not the
        // whole fleet every 30 s.
        let enrolled_at = |s: &str| {
            st.store
                .agent(s)
                .inspect_err(|e| tracing::error!(error = %e, "drill schedule: cannot read agent"))
                .ok()
                .flatten()
                .map(|a| a.enrolled_at)
        };
        due_drills(&d.set, &enrolled_at, now)
    };
    for (server, fired) in due {
        let ask = Ask {
            kind: RecoveryKind::Drill,
            server: &server,
            snapshot: None,
            trigger: "schedule",
            actor: "scheduler",
            id: format!("drill-sched-{server}-{fired}"),
            why: "",
        };
        if let Err(e) = queue(st, ask, now) {
            tracing::warn!(%server, error = %e, "scheduled drill not queued");
        }
    }
}

#[cfg(test)]
mod tests;
