//! Inventory and Pasal 9 compliance: what the manifests declare, checked
//! against what the agents report.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use ipnet::IpNet;
use pulih_model::api::{ComplianceReport, Counts, LastDrill, ServerView};
use pulih_model::manifest::{CentralizationStatus, Location, ManifestSet};
use pulih_model::state::DrillState;

use crate::desired::rpo_seconds;
use crate::store::{AgentRow, DrillRow, RunSummary};

pub fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

fn kebab<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Every server's view, sorted by agency then name.
pub fn server_views(
    set: &ManifestSet,
    agents: &HashMap<String, AgentRow>,
    runs: &HashMap<String, RunSummary>,
    pusat_data: &[IpNet],
    drc: &[IpNet],
    now: i64,
) -> Vec<ServerView> {
    let mut views: Vec<ServerView> = set
        .servers
        .values()
        .map(|s| {
            let spec = s.spec();
            let agent = agents.get(s.name());
            let seen = agent.and_then(|a| a.last_seen.map(|t| (t, a.observed_ip.clone())));
            let (observed, evidence) = match seen {
                None => (
                    "unknown",
                    if agent.is_some() {
                        "enrolled, but no heartbeat yet".to_string()
                    } else {
                        "no agent has reported for this server".to_string()
                    },
                ),
                Some((t, ip)) => observe(ip.as_deref().unwrap_or_default(), t, pusat_data, drc),
            };
            let declared_central = spec.centralization.status == CentralizationStatus::Centralized
                || spec.location == Location::PusatData;
            let mismatch = (declared_central && observed == "not-centralized")
                || (spec.location == Location::PdPremises && observed == "centralized");
            let summary = runs.get(s.name()).cloned().unwrap_or_default();
            let rpo = rpo_seconds(spec);
            let rpo_met = summary
                .last_success
                .is_some_and(|t| now.saturating_sub(t) <= rpo as i64);
            ServerView {
                name: s.name().to_string(),
                perangkat_daerah: spec.perangkat_daerah.clone(),
                declared_location: kebab(&spec.location),
                declared_status: kebab(&spec.centralization.status),
                deadline: spec.centralization.deadline.map(|d| d.to_string()),
                observed: observed.to_string(),
                evidence,
                mismatch,
                enrolled: agent.is_some(),
                agent_last_seen: agent.and_then(|a| a.last_seen).map(rfc3339),
                last_success: summary.last_success.map(rfc3339),
                last_run_state: summary.last_state,
                rpo_seconds: rpo,
                rpo_met,
                last_drill: None,
                drill_overdue: false,
                failed_over: None,
                anomaly: None,
                facts: None,
            }
        })
        .collect();
    views.sort_by(|a, b| (&a.perangkat_daerah, &a.name).cmp(&(&b.perangkat_daerah, &b.name)));
    views
}

/// Adds each server's newest drill and whether a scheduled drill is
/// overdue. `drills`: per server, the newest finished drill and the newest
/// passed drill's finish time.
///
/// Overdue: the agency consents to drills on a schedule, the server has
/// recovery containers and an agent enrolled before the schedule's
/// last-but-one firing, and no drill passed since that firing — so the
/// drill due then, and the retry chance the last firing gave, both came to
/// nothing.
pub fn add_drills(
    views: &mut [ServerView],
    set: &ManifestSet,
    agents: &HashMap<String, AgentRow>,
    drills: &HashMap<String, (DrillRow, Option<i64>)>,
    now: i64,
) {
    for v in views.iter_mut() {
        let newest = drills.get(&v.name);
        if let Some((d, _)) = newest {
            let report: Option<pulih_model::drill::DrillReport> = d
                .report_json
                .as_deref()
                .and_then(|j| serde_json::from_str(j).ok());
            v.last_drill = Some(LastDrill {
                id: d.id.clone(),
                state: d.state,
                finished_at: d.finished_at.map(rfc3339).unwrap_or_default(),
                rto_seconds: report.as_ref().and_then(|r| r.rto_seconds),
                rpo_seconds: report.as_ref().and_then(|r| r.rpo_seconds),
                rto_met: report.as_ref().and_then(|r| r.rto_met()),
                rpo_met: report.as_ref().and_then(|r| r.rpo_met()),
            });
        }
        let Some(due) = drill_firings(set, &v.name, now).get(1).copied() else {
            continue;
        };
        let enrolled_before = agents.get(&v.name).is_some_and(|a| a.enrolled_at <= due);
        let passed_since = newest.and_then(|(_, p)| *p).is_some_and(|p| p >= due);
        v.drill_overdue = enrolled_before && !passed_since;
    }
}

/// The last two firings before `now` (newest first, Unix seconds) of the
/// drill schedule that applies to `server`: its agency consents to drills
/// on a schedule and the server has recovery containers. Empty otherwise.
/// In the server's schedule time zone (default WITA).
pub fn drill_firings(set: &ManifestSet, server: &str, now: i64) -> Vec<i64> {
    let Some(spec) = set.servers.get(server).map(|s| s.spec()) else {
        return Vec::new();
    };
    let Some(cron) = set
        .perangkat_daerah
        .get(&spec.perangkat_daerah)
        .and_then(|p| p.spec().drills.clone())
        .filter(|p| p.consent)
        .and_then(|p| p.schedule)
    else {
        return Vec::new();
    };
    if spec
        .recovery
        .as_ref()
        .is_none_or(|r| r.containers.is_empty())
    {
        return Vec::new();
    }
    let tz = spec
        .schedule
        .as_ref()
        .and_then(|s| s.timezone)
        .unwrap_or_default()
        .0;
    previous_firings(cron.schedule(), tz, now).collect()
}

/// A cron schedule's last two firings before `now`, newest first (Unix
/// seconds).
fn previous_firings<Z: chrono::TimeZone>(
    schedule: &cron::Schedule,
    tz: Z,
    now: i64,
) -> impl Iterator<Item = i64> {
    let at = tz.timestamp_opt(now, 0).single();
    let times: Vec<i64> = at
        .map(|at| {
            schedule
                .after(&at)
                .rev()
                .take(2)
                .map(|t| t.timestamp())
                .collect()
        })
        .unwrap_or_default();
    times.into_iter()
}

/// Where an agent's address places its server: in a Pusat Data subnet
/// (centralized), a DRC subnet (at-drc, e.g. failed over; not a breach of
/// Pasal 9, both are run by the IT department), neither (not-centralized),
/// or nothing to judge by (unknown). Returns the status and its evidence.
fn observe(ip_text: &str, t: i64, pusat_data: &[IpNet], drc: &[IpNet]) -> (&'static str, String) {
    if pusat_data.is_empty() {
        return (
            "unknown",
            format!(
                "agent seen from {ip_text} at {}, but no Pusat Data subnets are configured",
                rfc3339(t)
            ),
        );
    }
    let Ok(addr) = ip_text.parse::<IpAddr>() else {
        return (
            "unknown",
            format!("agent reported no usable address at {}", rfc3339(t)),
        );
    };
    if let Some(net) = pusat_data.iter().find(|n| n.contains(&addr)) {
        return (
            "centralized",
            format!(
                "agent seen from {addr} (Pusat Data subnet {net}) at {}",
                rfc3339(t)
            ),
        );
    }
    if let Some(net) = drc.iter().find(|n| n.contains(&addr)) {
        return (
            "at-drc",
            format!(
                "agent seen from {addr} (DRC subnet {net}) at {}: running at the DRC (failed over?)",
                rfc3339(t)
            ),
        );
    }
    (
        "not-centralized",
        format!(
            "agent seen from {addr}, outside the Pusat Data and DRC subnets, at {}",
            rfc3339(t)
        ),
    )
}

pub fn counts<'a>(views: impl IntoIterator<Item = &'a ServerView>, set: &ManifestSet) -> Counts {
    let mut c = Counts::default();
    for v in views {
        c.servers += 1;
        match v.observed.as_str() {
            "centralized" => c.centralized += 1,
            "not-centralized" => c.not_centralized += 1,
            "at-drc" => c.at_drc += 1,
            _ => c.unknown += 1,
        }
        if set
            .servers
            .get(&v.name)
            .is_some_and(|s| s.spec().centralization.status == CentralizationStatus::Exempt)
        {
            c.exempt += 1;
        }
        c.mismatches += u64::from(v.mismatch);
        c.protected += u64::from(v.rpo_met);
        c.drills_failed += u64::from(
            v.last_drill
                .as_ref()
                .is_some_and(|d| d.state == DrillState::Failed),
        );
        c.drills_overdue += u64::from(v.drill_overdue);
    }
    if c.servers > 0 {
        c.centralized_percent = round1(100.0 * c.centralized as f64 / c.servers as f64);
        c.protected_percent = round1(100.0 * c.protected as f64 / c.servers as f64);
    }
    c
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

pub fn report(set: &ManifestSet, views: Vec<ServerView>, now: i64) -> ComplianceReport {
    let mut by_pd: BTreeMap<String, Counts> = BTreeMap::new();
    for pd in set.perangkat_daerah.keys() {
        let of_pd: Vec<&ServerView> = views.iter().filter(|v| &v.perangkat_daerah == pd).collect();
        by_pd.insert(pd.clone(), counts(of_pd, set));
    }
    ComplianceReport {
        generated_at: rfc3339(now),
        overall: counts(&views, set),
        by_perangkat_daerah: by_pd,
        servers: views,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_agents_address_places_its_server_in_the_pusat_data_the_drc_or_outside() {
        let pd: Vec<IpNet> = vec!["10.10.0.0/16".parse().unwrap()];
        let drc: Vec<IpNet> = vec!["10.20.0.0/16".parse().unwrap()];
        assert_eq!(observe("10.10.3.4", 0, &pd, &drc).0, "centralized");
        let (status, evidence) = observe("10.20.0.9", 0, &pd, &drc);
        assert_eq!(status, "at-drc");
        assert!(evidence.contains("DRC subnet 10.20.0.0/16"), "{evidence}");
        assert_eq!(observe("192.168.1.5", 0, &pd, &drc).0, "not-centralized");
        assert_eq!(observe("192.168.1.5", 0, &pd, &[]).0, "not-centralized");
        assert_eq!(observe("", 0, &pd, &drc).0, "unknown");
        assert_eq!(observe("10.10.3.4", 0, &[], &drc).0, "unknown");
    }

    #[test]
    fn the_last_two_firings_of_a_monthly_drill_schedule_are_found_backwards() {
        let cron: pulih_model::manifest::values::CronExpr = "0 3 1 * *".parse().unwrap();
        let tz = chrono_offset_wita();
        // 2026-11-24T00:00:00Z: the last firings were 1 Nov and 1 Oct, 03:00 WITA (19:00Z the day before).
        let now = 1_795_478_400;
        let got: Vec<String> = previous_firings(cron.schedule(), tz, now)
            .map(rfc3339)
            .collect();
        assert_eq!(got, ["2026-10-31T19:00:00Z", "2026-09-30T19:00:00Z"]);
    }

    fn chrono_offset_wita() -> chrono::FixedOffset {
        chrono::FixedOffset::east_opt(8 * 3600).unwrap()
    }
}
