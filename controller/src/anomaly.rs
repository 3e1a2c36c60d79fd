//! Ransomware signals (docs/SECURITY.md "Ransomware signals"): each
//! replication the controller confirms with the agency's maintenance key
//! is measured against the server's own history; one that looks like its
//! files were encrypted in place is flagged, and a hold in the repository
//! (FORMAT.md §14) keeps every snapshot before it out of any prune until an
//! operator clears it.
//!
//! The measures, each a share of the server's data (`total_bytes` of the
//! snapshot):
//! - `rewritten`: bytes of files the agent read again because they changed
//!   since it last saw them (`bytes_changed`). Encrypting files in place
//!   rewrites nearly all of them; nightly work changes a few percent; adding
//!   files rewrites nothing.
//! - `new_stored`: bytes of the packs the snapshot names that the server's
//!   previous confirmed snapshot did not, as the store has them (not as
//!   the agent says). Encrypted data
//!   neither deduplicates nor compresses, so a rewrite by ransomware lands
//!   in the store nearly byte for byte.
//! - `incompressible`: stored bytes per new byte of the run (agent's
//!   summary), 1.0 for random data.
//!
//! - `received`: through the append-only gateway, the bytes of the packs
//!   the server's own credential wrote since its previous confirmed
//!   snapshot, by the gateway's receipts (`received.rs`), or, if larger,
//!   `new_stored`'s bytes (packs staged on earlier nights and used now). The only measure
//!   a compromised agent cannot bend: the others rest on its summary
//!   (`rewritten`, `incompressible`) or on the packs its snapshot names
//!   (`new_stored`).
//!
//! A run is flagged when (a) `rewritten` is at least 30 % and at least five
//! times the server's median of its last 14 unflagged runs plus 5 points,
//! and `new_stored` is at least 25 % (the rewrite is really new data); or
//! (b) `new_stored` is at least 50 % while `incompressible` is at least
//! 0.9 and at least ten times the median `new_stored` of its history
//! (something the agent's own counts may hide: the store saw it); or (c)
//! `received` is at least half of what the server held (the smaller of the
//! run's claimed total and the median total of its history, so a claimed
//! total cannot dilute it) and at least ten times its median `received`,
//! with at least three runs of history through the gateway. Encrypting
//! most files in place writes about as many bytes as they hold, as
//! incompressible packs; an ordinary night writes a few percent, and an
//! addition of ordinary files compresses. All three are far above what a
//! month of ordinary nights or a large addition of ordinary files does
//! (tests/control_e2e.rs `anomaly_…`); (b) and (c) also fire on a
//! legitimate upload of already-compressed data larger than half of all
//! the server held, which an operator clears.
//!
//! A confirmed snapshot that **left the store** although no retention run
//! of the controller forgot it is flagged: the server's previous one at
//! each run ([`observe`], which also writes a hold), and every one of the
//! last 35 days every 10 minutes ([`gone_sweep`]).
//!
//! A server that **stopped replicating** is flagged too ([`stopped_sweep`],
//! every 30 s): one that has replicated before and whose last successful
//! replication is older than twice its RPO (ransomware that stops the
//! agent first, a dead server, a broken link). Once per stop: a new
//! success ends it, an operator's clear acknowledges it. No hold is
//! written: retention keeps a server's newest snapshots whatever their
//! age, so a server that writes nothing loses nothing to it.

use pulih_core::maintenance::CheckedSnapshot;
use pulih_core::storage::Store;
use serde::{Deserialize, Serialize};

use crate::state::Shared;

/// History a run is measured against.
const HISTORY: u32 = 14;

/// One run's measures.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct Measures {
    pub total_bytes: u64,
    pub rewritten: f64,
    pub new_stored: f64,
    pub incompressible: f64,
    /// Bytes the gateway received from the server for the run (rule c);
    /// None through a store that does not name writers.
    #[serde(default)]
    pub received: Option<u64>,
}

impl Measures {
    pub fn of(c: &CheckedSnapshot) -> Measures {
        let s = &c.summary;
        let total = s.total_bytes.max(1) as f64;
        Measures {
            total_bytes: s.total_bytes,
            rewritten: s.bytes_changed as f64 / total,
            new_stored: c.new_pack_bytes as f64 / total,
            incompressible: if s.bytes_new == 0 {
                0.0
            } else {
                s.bytes_stored as f64 / s.bytes_new as f64
            },
            received: None,
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Why `now` is flagged against `history` (the server's recent unflagged
/// runs), or None.
pub fn judge(now: &Measures, history: &[Measures]) -> Option<String> {
    let usual_rewrite = median(history.iter().map(|m| m.rewritten).collect());
    let usual_new = median(history.iter().map(|m| m.new_stored).collect());
    if now.rewritten >= 0.3 && now.rewritten >= 5.0 * usual_rewrite + 0.05 && now.new_stored >= 0.25
    {
        return Some(format!(
            "{:.0} % of the server's data was rewritten (its usual: {:.1} %) and {:.0} % of it reached the store as new data: files encrypted in place look like this",
            now.rewritten * 100.0,
            usual_rewrite * 100.0,
            now.new_stored * 100.0
        ));
    }
    if now.new_stored >= 0.5 && now.incompressible >= 0.9 && now.new_stored >= 10.0 * usual_new {
        return Some(format!(
            "{:.0} % of the server's data reached the store as new, incompressible data (its usual: {:.1} % new)",
            now.new_stored * 100.0,
            usual_new * 100.0
        ));
    }
    let past: Vec<f64> = history
        .iter()
        .filter_map(|m| m.received)
        .map(|r| r as f64)
        .collect();
    if let Some(r) = now.received
        && past.len() >= 3
    {
        let usual_total = median(history.iter().map(|m| m.total_bytes as f64).collect());
        let held = (now.total_bytes as f64).min(usual_total).max(1.0);
        let usual = median(past);
        let r = r as f64;
        if r >= 0.5 * held && r >= 10.0 * usual {
            return Some(format!(
                "the gateway received {} from this server for this run, {:.0} % of what it held and {:.0} times its usual {}: files encrypted in place look like this, whatever the agent reports",
                bytes(r),
                r / held * 100.0,
                r / usual.max(1.0),
                bytes(usual)
            ));
        }
    }
    None
}

fn bytes(n: f64) -> String {
    if n >= (1u64 << 30) as f64 {
        format!("{:.1} GiB", n / (1u64 << 30) as f64)
    } else {
        format!("{:.1} MiB", n / (1u64 << 20) as f64)
    }
}

/// Whether the server's previous confirmed snapshot has left the store
/// although no retention run of the controller forgot it: someone with
/// delete rights removed history (a compromised server on a store that
/// lets it, a stolen store credential). A walidata's own `repo forget`
/// looks the same and is cleared after looking.
async fn disappeared(st: &Shared, server: &str, run_key: &str, store: &Store) -> Option<String> {
    let (prev_run, prev) = st.store.previous_snapshot(server, run_key).ok()??;
    let id: pulih_core::id::SnapshotId = prev.parse().ok()?;
    match store.exists(&pulih_core::layout::snapshot(&id)).await {
        Ok(false) => {}
        _ => return None,
    }
    let since = st.now() - GONE_WINDOW_S;
    (!forgotten_by_retention(st, since).ok()?.contains(&prev)).then(|| gone_why(&prev, &prev_run))
}

fn gone_why(snapshot: &str, run: &str) -> String {
    format!(
        "snapshot {snapshot} of run {run}, confirmed before, is no longer in the store and no retention run forgot it: history was deleted"
    )
}

/// How far back the disappearance checks look: the confirmed snapshots
/// of the last 35 days (the gateway's default retention floor, 30 days,
/// and some), against what retention forgot since then (a forget comes
/// after its snapshot was confirmed).
pub const GONE_WINDOW_S: i64 = 35 * 86_400;

/// Every snapshot id a retention run of the controller made at `since` or
/// later decided to forget (its reports' decisions).
fn forgotten_by_retention(
    st: &Shared,
    since: i64,
) -> Result<std::collections::HashSet<String>, crate::store::StoreError> {
    let mut out = std::collections::HashSet::new();
    for j in st.store.maintenance_reports_since(since)? {
        let Ok(r) = serde_json::from_str::<serde_json::Value>(&j) else {
            continue;
        };
        for d in r["decisions"].as_array().into_iter().flatten() {
            if d["keep"] == false
                && let Some(id) = d["id"].as_str()
            {
                out.insert(id.to_string());
            }
        }
    }
    Ok(out)
}

/// How often [`gone_sweep`] runs (one listing of `snapshots/` per agency
/// repository each time).
pub const GONE_SWEEP_INTERVAL_S: i64 = 600;

/// Flags every confirmed snapshot (of the last [`GONE_WINDOW_S`]) that
/// has left its agency's repository although no retention run of the
/// controller forgot it — not only the newest, which [`observe`] checks at
/// each run: an attacker who deletes older history, or a server that
/// never runs again, is caught within [`GONE_SWEEP_INTERVAL_S`]. Once per
/// snapshot, with a warning in the log and an `anomaly.flagged` audit
/// entry. A repository that cannot be listed is skipped (logged), never
/// read as empty.
pub async fn gone_sweep(st: &Shared, now: i64) {
    let since = now - GONE_WINDOW_S;
    let forgotten = match forgotten_by_retention(st, since) {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the retention runs for the disappeared-snapshot check");
            return;
        }
    };
    let by_pd: std::collections::BTreeMap<String, (String, Vec<String>)> = {
        let d = st.desired();
        let mut m = std::collections::BTreeMap::new();
        for (name, s) in &d.set.servers {
            let pd = &s.spec().perangkat_daerah;
            if let Some(url) = crate::desired::pd_repository(&d.set, pd, &st.config) {
                m.entry(pd.clone())
                    .or_insert_with(|| (url, Vec::new()))
                    .1
                    .push(name.clone());
            }
        }
        m
    };
    for (pd, (url, servers)) in by_pd {
        let mut confirmed = Vec::new();
        for server in &servers {
            match st.store.confirmed_snapshots(server, since) {
                Ok(rows) => confirmed.extend(rows.into_iter().map(|r| (server, r))),
                Err(e) => {
                    tracing::warn!(%server, error = %e, "cannot read the confirmed snapshots")
                }
            }
        }
        if confirmed.is_empty() {
            continue;
        }
        let listed = match st.config.open_store(&url) {
            Ok(store) => store
                .list(pulih_core::layout::SNAPSHOTS)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(format!("{e:#}")),
        };
        let present: std::collections::HashSet<String> = match listed {
            Ok(objects) => objects
                .into_iter()
                .filter_map(|o| {
                    o.key
                        .strip_prefix(pulih_core::layout::SNAPSHOTS)
                        .map(str::to_string)
                })
                .collect(),
            Err(e) => {
                tracing::warn!(%pd, %url, error = %e, "cannot list the repository's snapshots for the disappeared-snapshot check");
                continue;
            }
        };
        for (server, (run, snapshot)) in confirmed {
            if present.contains(&snapshot) || forgotten.contains(&snapshot) {
                continue;
            }
            let why = gone_why(&snapshot, &run);
            flag_once(st, &format!("gone:{snapshot}"), server, now, &why);
        }
    }
}

/// Records flag `why` of `server` under `key` (a sweep's own key: once per
/// key, so a cleared flag is not raised again by the next sweep); a new
/// one is logged as a warning and audited `anomaly.flagged`.
fn flag_once(st: &Shared, key: &str, server: &str, now: i64, why: &str) {
    match st.store.record_signals(key, server, now, "{}", Some(why)) {
        Ok(true) => {
            tracing::warn!(%server, %why, "ransomware signal");
            let _ = st.store.audit(
                "controller",
                "anomaly.flagged",
                &format!("{server}: {why}"),
                now,
            );
        }
        Ok(false) => {}
        Err(e) => tracing::warn!(%server, %key, error = %e, "cannot record a flag"),
    }
}

/// What the gateway received from `server` since its previous confirmed
/// snapshot (rule c); None for its first, or through a store that does
/// not name writers.
async fn received(
    st: &Shared,
    server: &str,
    run_key: &str,
    store: &Store,
    c: &CheckedSnapshot,
) -> Option<u64> {
    let agency = {
        let d = st.desired();
        d.set.servers.get(server)?.spec().perangkat_daerah.clone()
    };
    let (_, prev) = st.store.previous_snapshot(server, run_key).ok()??;
    let prev: pulih_core::id::SnapshotId = prev.parse().ok()?;
    crate::received::received(store, &agency, server, &prev, &c.id).await
}

/// Measures a confirmed replication, records it, and flags it when it
/// looks like ransomware: the controller's record, the hold in the
/// repository, the log and the audit log.
pub async fn observe(st: &Shared, server: &str, run_key: &str, store: &Store, c: &CheckedSnapshot) {
    let mut now = Measures::of(c);
    // Packs written before the window but first named now (staged on
    // earlier nights) count too: the larger of the two.
    now.received = received(st, server, run_key, store, c)
        .await
        .map(|r| r.max(c.new_pack_bytes));
    let history: Vec<Measures> = match st.store.recent_signals(server, run_key, HISTORY) {
        Ok(rows) => rows
            .iter()
            .filter_map(|j| serde_json::from_str(j).ok())
            .collect(),
        Err(e) => {
            tracing::warn!(%server, %run_key, error = %e, "cannot read the server's signal history");
            return;
        }
    };
    let flag = match disappeared(st, server, run_key, store).await {
        Some(gone) => Some(gone),
        None => judge(&now, &history),
    };
    let metrics = serde_json::to_string(&now).expect("measures serialize");
    // Once per run: a result delivered again (the agent's outbox) is not
    // judged again, so a flag an operator cleared does not come back.
    match st
        .store
        .record_signals(run_key, server, st.now(), &metrics, flag.as_deref())
    {
        Ok(true) => {}
        Ok(false) => return,
        Err(e) => {
            tracing::warn!(%server, %run_key, error = %e, "cannot record the run's signals");
            return;
        }
    }
    let Some(why) = flag else { return };
    let hold = pulih_core::holds::Hold {
        server: server.to_string(),
        space: c.space.to_hex(),
        snapshot: c.id.to_hex(),
        stored_at: c.stored_at,
        reason: why.clone(),
        flagged_at: st.now(),
    };
    let held = match pulih_core::holds::write(store, &hold).await {
        Ok(()) => "the history before this snapshot is held".to_string(),
        Err(e) => {
            // Still flagged where the controller keeps it; said loudly.
            tracing::error!(%server, %run_key, error = %e, "cannot write the anomaly hold to the repository: retention there does not see it");
            format!("the hold could not be written to the repository: {e}")
        }
    };
    tracing::warn!(%server, %run_key, snapshot = %c.id, %why, "ransomware signal: {held}");
    let _ = st.store.audit(
        "controller",
        "anomaly.flagged",
        &format!("{server} run {run_key} snapshot {}: {why}; {held}", c.id),
        st.now(),
    );
}

/// How many RPOs without a successful replication make a server
/// "stopped": one late run is RPO MISSED, two in a row a signal.
const STOPPED_AFTER_RPOS: i64 = 2;

/// Why `server` counts as stopped at `now`, if it does: it succeeded at
/// `last_success` and nothing since, for more than twice `rpo_s`.
pub fn stopped(now: i64, last_success: i64, rpo_s: i64) -> Option<String> {
    let late = now - last_success;
    (late > STOPPED_AFTER_RPOS * rpo_s.max(1)).then(|| {
        format!(
            "stopped replicating: the last successful replication was {} ago, more than {STOPPED_AFTER_RPOS} times its RPO of {}",
            human(late),
            human(rpo_s)
        )
    })
}

fn human(s: i64) -> String {
    match s {
        s if s >= 2 * 86_400 => format!("{} days", s / 86_400),
        s if s >= 2 * 3600 => format!("{} hours", s / 3600),
        s if s >= 120 => format!("{} minutes", s / 60),
        s => format!("{s} s"),
    }
}

/// Flags every server that stopped replicating ([`stopped`]), once per
/// stop (its record is keyed by the last success), with a warning in the
/// log and an `anomaly.flagged` audit entry.
pub fn stopped_sweep(st: &Shared, now: i64) {
    let summaries = match st.store.run_summaries() {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the run summaries for the stopped-replication check");
            return;
        }
    };
    let d = st.desired();
    for (name, server) in &d.set.servers {
        let Some(last) = summaries.get(name).and_then(|r| r.last_success) else {
            continue;
        };
        let rpo = crate::desired::rpo_seconds(server.spec()) as i64;
        let Some(why) = stopped(now, last, rpo) else {
            continue;
        };
        flag_once(st, &format!("stopped:{name}:{last}"), name, now, &why);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pulih_model::api::RunResult;
    use pulih_model::state::RunState;

    /// A replication that succeeded at `t`, naming `snapshot`.
    fn succeeded(t: i64, snapshot: Option<String>) -> RunResult {
        let at = time::OffsetDateTime::from_unix_timestamp(t)
            .unwrap()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        RunResult {
            trigger: "schedule".into(),
            scheduled_for: None,
            started_at: at.clone(),
            finished_at: at,
            state: RunState::Succeeded,
            snapshot_id: snapshot,
            files: 1,
            bytes_read: 1,
            bytes_new: 1,
            bytes_stored: 1,
            duration_s: 1.0,
            errors: Vec::new(),
        }
    }

    #[test]
    fn a_server_stopped_after_twice_its_rpo_is_flagged_once_and_a_clear_holds() {
        use crate::recovery::testing::{MANIFESTS, NOW, state};
        let dir = tempfile::tempdir().unwrap();
        let st = state(dir.path(), MANIFESTS);
        let ok = |t: i64| succeeded(t, None);
        let t0 = NOW - 10 * 86_400;
        st.store
            .start_run("web", "run-1", "schedule", None, t0)
            .unwrap();
        st.store.finish_run("web", "run-1", &ok(t0), t0).unwrap();
        // A day later (RPO 24 h by default): late, not stopped.
        stopped_sweep(&st, t0 + 86_400 + 60);
        assert!(st.store.open_anomalies().unwrap().is_empty());
        // Past twice the RPO: flagged, with why; a second sweep adds nothing.
        stopped_sweep(&st, t0 + 3 * 86_400);
        let open = st.store.open_anomalies().unwrap();
        let (why, _) = &open["web"];
        assert!(
            why.starts_with("stopped replicating: the last successful replication was 3 days ago"),
            "{why}"
        );
        assert!(!open.contains_key("files"), "never replicated: not a stop");
        stopped_sweep(&st, t0 + 4 * 86_400);
        assert_eq!(
            st.store
                .clear_anomalies("web", "ops", t0 + 4 * 86_400)
                .unwrap(),
            1
        );
        // Cleared: the same stop is not flagged again.
        stopped_sweep(&st, t0 + 5 * 86_400);
        assert!(st.store.open_anomalies().unwrap().is_empty());
        // It replicates again, then stops again: a new flag.
        let t1 = t0 + 6 * 86_400;
        st.store
            .start_run("web", "run-2", "schedule", None, t1)
            .unwrap();
        st.store.finish_run("web", "run-2", &ok(t1), t1).unwrap();
        stopped_sweep(&st, t1 + 86_400);
        assert!(st.store.open_anomalies().unwrap().is_empty());
        stopped_sweep(&st, t1 + 3 * 86_400);
        assert!(st.store.open_anomalies().unwrap().contains_key("web"));
    }

    /// Any confirmed snapshot of the last 35 days that left the store is
    /// flagged by the sweep, not only the newest (which the next run's
    /// check sees), once; one that a retention run of the controller
    /// forgot is not.
    #[tokio::test]
    async fn anomaly_a_confirmed_snapshot_deleted_from_the_store_is_flagged_by_the_sweep_unless_retention_forgot_it()
     {
        use crate::recovery::testing::{MANIFESTS, NOW, state};

        use pulih_model::state::MaintenanceState;
        let dir = tempfile::tempdir().unwrap();
        let st = state(
            dir.path(),
            &MANIFESTS.replace("url: /srv/drc", "url: DIR/drc"),
        );
        let url = crate::desired::pd_repository(&st.desired().set, "dkis", &st.config).unwrap();
        let store = Store::open(&url, true).unwrap();
        let ids: Vec<String> = (1..=3u8).map(|i| hex::encode([i; 32])).collect();
        for (i, id) in ids.iter().enumerate() {
            store
                .put(&format!("snapshots/{id}"), vec![1u8].into())
                .await
                .unwrap();
            let t = NOW - (3 - i as i64) * 86_400;
            let run = format!("run-{i}");
            st.store
                .start_run("web", &run, "schedule", None, t)
                .unwrap();
            st.store
                .finish_run("web", &run, &succeeded(t, Some(id.clone())), t)
                .unwrap();
        }
        gone_sweep(&st, NOW).await;
        assert!(st.store.open_anomalies().unwrap().is_empty());

        // The oldest goes (not the newest, which the next run would see).
        store
            .delete(&format!("snapshots/{}", ids[0]))
            .await
            .unwrap();
        gone_sweep(&st, NOW).await;
        let open = st.store.open_anomalies().unwrap();
        let (why, _) = &open["web"];
        assert!(
            why.contains(&ids[0]) && why.contains("no retention run forgot it"),
            "{why}"
        );
        assert_eq!(st.store.clear_anomalies("web", "ops", NOW).unwrap(), 1);
        gone_sweep(&st, NOW + 600).await;
        assert!(
            st.store.open_anomalies().unwrap().is_empty(),
            "once per snapshot"
        );

        // One the controller's retention forgot: not a signal.
        let m = st
            .store
            .queue_maintenance(&["dkis".to_string()], "schedule", NOW)
            .unwrap();
        let report = serde_json::json!({"decisions": [{"id": ids[1], "keep": false}]});
        st.store
            .finish_maintenance(m[0], MaintenanceState::Succeeded, &report.to_string(), NOW)
            .unwrap();
        store
            .delete(&format!("snapshots/{}", ids[1]))
            .await
            .unwrap();
        gone_sweep(&st, NOW + 1200).await;
        assert!(st.store.open_anomalies().unwrap().is_empty());

        // Beyond the window: not looked at.
        store
            .delete(&format!("snapshots/{}", ids[2]))
            .await
            .unwrap();
        gone_sweep(&st, NOW + GONE_WINDOW_S + 3 * 86_400).await;
        assert!(st.store.open_anomalies().unwrap().is_empty());
        gone_sweep(&st, NOW + 1800).await;
        assert!(
            st.store.open_anomalies().unwrap()["web"]
                .0
                .contains(&ids[2])
        );
    }

    fn m(rewritten: f64, new_stored: f64, incompressible: f64) -> Measures {
        Measures {
            total_bytes: 1 << 30,
            rewritten,
            new_stored,
            incompressible,
            received: None,
        }
    }

    #[test]
    fn a_rewrite_of_most_files_is_flagged_and_ordinary_nights_and_additions_are_not() {
        let nights: Vec<Measures> = (0..14).map(|_| m(0.02, 0.01, 0.4)).collect();
        assert!(judge(&m(0.9, 0.85, 1.0), &nights).is_some());
        // The agent hides the rewrite; the store still saw it.
        assert!(judge(&m(0.0, 0.9, 1.0), &nights).is_some());
        assert_eq!(judge(&m(0.03, 0.01, 0.4), &nights), None);
        // A large addition of ordinary files: new, nothing rewritten.
        assert_eq!(judge(&m(0.0, 0.3, 0.35), &nights), None);
        // A server whose nights always rewrite a lot: measured against itself.
        let busy: Vec<Measures> = (0..14).map(|_| m(0.4, 0.3, 0.5)).collect();
        assert_eq!(judge(&m(0.45, 0.35, 0.5), &busy), None);
        // No history yet: the absolute thresholds still hold.
        assert!(judge(&m(0.95, 0.9, 1.0), &[]).is_some());
    }

    #[test]
    fn what_the_gateway_received_flags_a_rewrite_the_agent_hides() {
        let gib = 1u64 << 30;
        let with = |received: u64, total: u64| Measures {
            received: Some(received),
            total_bytes: total,
            ..m(0.0, 0.0, 0.1)
        };
        let nights: Vec<Measures> = (0..14).map(|_| with(gib / 50, gib)).collect();
        // The agent says nothing changed, names no new pack, and claims a
        // total a hundred times larger: the gateway's count still flags it.
        let why = judge(&with(gib * 9 / 10, 100 * gib), &nights).unwrap();
        assert!(why.contains("the gateway received"), "{why}");
        // An ordinary night, and an addition of a third as much again
        // (compressed text, as it reaches the store).
        assert_eq!(judge(&with(gib / 40, gib), &nights), None);
        assert_eq!(judge(&with(gib / 3, gib * 4 / 3), &nights), None);
        // Without three runs of history through the gateway: not judged.
        assert_eq!(judge(&with(gib, gib), &nights[..2]), None);
        let direct: Vec<Measures> = (0..14).map(|_| m(0.02, 0.01, 0.4)).collect();
        assert_eq!(judge(&with(gib, gib), &direct), None);
    }
}
