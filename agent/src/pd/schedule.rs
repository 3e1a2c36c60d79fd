//! When scheduled runs are due, from a cached assignment.
//!
//! The agent remembers the last scheduled time it fired for. After an
//! outage, only the newest missed time runs (once), never one per missed
//! slot; on first start nothing in the past runs.

use chrono::{DateTime, Utc};

/// A parsed schedule: cron in a time zone, plus a fixed jitter.
pub struct Plan {
    schedule: cron::Schedule,
    tz: chrono_tz::Tz,
    jitter: chrono::Duration,
}

/// At most this many missed slots are scanned (an every-second cron over a
/// long outage must not spin).
const MAX_SCAN: usize = 100_000;

impl Plan {
    pub fn new(cron_text: &str, tz: &str, jitter_seconds: u64) -> anyhow::Result<Plan> {
        // The same parser as manifests: crontab's five fields, or six with seconds.
        let expr: pulih_model::manifest::values::CronExpr =
            cron_text.parse().map_err(|e: String| anyhow::anyhow!(e))?;
        let schedule = expr.schedule().clone();
        let tz: chrono_tz::Tz = tz
            .parse()
            .map_err(|_| anyhow::anyhow!("unknown time zone `{tz}`"))?;
        Ok(Plan {
            schedule,
            tz,
            jitter: chrono::Duration::seconds(jitter_seconds.min(86_400) as i64),
        })
    }

    /// The next scheduled time strictly after `t` (before jitter).
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.schedule
            .after(&t.with_timezone(&self.tz))
            .next()
            .map(|d| d.with_timezone(&Utc))
    }

    /// When a scheduled time actually fires.
    pub fn fire_time(&self, scheduled: DateTime<Utc>) -> DateTime<Utc> {
        scheduled + self.jitter
    }

    /// The newest scheduled time after `last` whose fire time is at or
    /// before `now`: the one run owed (if any).
    pub fn due(&self, last: DateTime<Utc>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut due = None;
        for t in self
            .schedule
            .after(&last.with_timezone(&self.tz))
            .take(MAX_SCAN)
        {
            let t = t.with_timezone(&Utc);
            if self.fire_time(t) > now {
                break;
            }
            due = Some(t);
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn nightly_in_wita() {
        let p = Plan::new("0 1 * * *", "Asia/Makassar", 0).unwrap();
        // 01:00 WITA is 17:00 UTC the day before.
        assert_eq!(
            p.next_after(at("2026-11-24T12:00:00Z")),
            Some(at("2026-11-24T17:00:00Z"))
        );
    }

    #[test]
    fn missed_slots_run_once_newest_only() {
        let p = Plan::new("0 1 * * *", "Asia/Makassar", 0).unwrap();
        // Down for three nights: one run owed, for the newest slot.
        let due = p.due(at("2026-11-20T17:00:00Z"), at("2026-11-24T12:00:00Z"));
        assert_eq!(due, Some(at("2026-11-23T17:00:00Z")));
        assert_eq!(
            p.due(at("2026-11-23T17:00:00Z"), at("2026-11-24T12:00:00Z")),
            None
        );
    }

    #[test]
    fn jitter_delays_the_fire_time() {
        let p = Plan::new("0 1 * * *", "Asia/Makassar", 300).unwrap();
        assert_eq!(
            p.due(at("2026-11-23T18:00:00Z"), at("2026-11-24T17:04:00Z")),
            None
        );
        assert_eq!(
            p.due(at("2026-11-23T18:00:00Z"), at("2026-11-24T17:05:00Z")),
            Some(at("2026-11-24T17:00:00Z"))
        );
    }
}
