//! `forget`: which snapshots a retention policy keeps, and deleting the
//! others (FORMAT.md §11). Deleting the packs they leave is [`crate::prune`].

use std::collections::BTreeMap;

use serde::Serialize;
use time::{OffsetDateTime, UtcOffset};

use crate::id::SpaceId;
use crate::repo::{ListedSnapshot, Reader};
use crate::{Error, Result};

/// How many snapshots to keep per group; 0 = that rule is off.
#[derive(Clone, Debug, Default, Serialize)]
pub struct KeepPolicy {
    pub last: u32,
    pub hourly: u32,
    pub daily: u32,
    pub weekly: u32,
    pub monthly: u32,
    pub yearly: u32,
}

impl KeepPolicy {
    pub fn is_empty(&self) -> bool {
        [
            self.last,
            self.hourly,
            self.daily,
            self.weekly,
            self.monthly,
            self.yearly,
        ]
        .iter()
        .all(|n| *n == 0)
    }
}

/// A claimed time more than this after the store's own time is not trusted.
const FUTURE_SKEW_S: i64 = 600;
/// A claimed time more than this before the store's own time is not trusted.
const MAX_BACKUP_S: i64 = 48 * 3600;

/// The time retention uses, in nanoseconds: the claimed time, unless the
/// store's own time of the snapshot object contradicts it.
pub fn effective_time_ns(s: &ListedSnapshot) -> i128 {
    let stored = s.stored_at as i128 * 1_000_000_000;
    match s.snapshot.time_ns() {
        Some(c)
            if c <= stored + FUTURE_SKEW_S as i128 * 1_000_000_000
                && c >= stored - MAX_BACKUP_S as i128 * 1_000_000_000 =>
        {
            c
        }
        _ => stored,
    }
}

/// [`effective_time_ns`] in whole seconds.
pub fn effective_time(s: &ListedSnapshot) -> i64 {
    effective_time_ns(s).div_euclid(1_000_000_000) as i64
}

#[derive(Debug, Serialize)]
pub struct Decision {
    pub id: String,
    pub host: String,
    pub time: String,
    pub effective_time: i64,
    pub keep: bool,
    pub reasons: Vec<&'static str>,
}

/// Decide which snapshots to keep, per (space, host, paths) group.
pub fn plan(
    snaps: &[ListedSnapshot],
    policy: &KeepPolicy,
    offset: UtcOffset,
) -> Result<Vec<Decision>> {
    if policy.is_empty() {
        return Err(Error::Invalid(
            "no --keep-* rule given: refusing to forget every snapshot".into(),
        ));
    }
    Ok(plan_each(snaps, |_| Some(policy.clone()), offset))
}

/// As [`plan`], with a policy per group, looked up from the group's newest
/// snapshot; a group without one (None, or an empty policy) is kept whole.
pub fn plan_each(
    snaps: &[ListedSnapshot],
    policy_for: impl Fn(&ListedSnapshot) -> Option<KeepPolicy>,
    offset: UtcOffset,
) -> Vec<Decision> {
    let mut groups: BTreeMap<(SpaceId, String, Vec<String>), Vec<&ListedSnapshot>> =
        BTreeMap::new();
    for s in snaps {
        groups
            .entry((s.space, s.snapshot.host.clone(), s.snapshot.paths.clone()))
            .or_default()
            .push(s);
    }
    let mut out = Vec::new();
    for (_, mut group) in groups {
        group.sort_by_key(|s| std::cmp::Reverse((effective_time_ns(s), s.stored_at)));
        let policy = match policy_for(group[0]) {
            Some(p) if !p.is_empty() => p,
            _ => {
                out.extend(group.iter().map(|s| Decision {
                    id: s.id.to_hex(),
                    host: s.snapshot.host.clone(),
                    time: s.snapshot.time.clone(),
                    effective_time: effective_time(s),
                    keep: true,
                    reasons: vec!["no retention policy"],
                }));
                continue;
            }
        };
        type Bucket = fn(OffsetDateTime) -> (i32, u32);
        let rules: [(&'static str, u32, Bucket); 6] = [
            ("last", policy.last, |_| (0, 0)),
            ("hourly", policy.hourly, |t| {
                (t.year(), t.ordinal() as u32 * 24 + t.hour() as u32)
            }),
            ("daily", policy.daily, |t| (t.year(), t.ordinal() as u32)),
            ("weekly", policy.weekly, |t| {
                let (y, w, _) = t.to_iso_week_date();
                (y, w as u32)
            }),
            ("monthly", policy.monthly, |t| (t.year(), t.month() as u32)),
            ("yearly", policy.yearly, |t| (t.year(), 0)),
        ];
        let mut state: Vec<(u32, Option<(i32, u32)>)> = vec![(0, None); rules.len()];
        for (n, s) in group.iter().enumerate() {
            let t = OffsetDateTime::from_unix_timestamp(effective_time(s))
                .unwrap_or(OffsetDateTime::UNIX_EPOCH)
                .to_offset(offset);
            let mut reasons = Vec::new();
            for (i, (name, keep, bucket)) in rules.iter().enumerate() {
                let (count, last) = &mut state[i];
                let b = if *name == "last" {
                    (0, n as u32)
                } else {
                    bucket(t)
                };
                if *count < *keep && *last != Some(b) {
                    *count += 1;
                    *last = Some(b);
                    reasons.push(*name);
                }
            }
            out.push(Decision {
                id: s.id.to_hex(),
                host: s.snapshot.host.clone(),
                time: s.snapshot.time.clone(),
                effective_time: effective_time(s),
                keep: !reasons.is_empty(),
                reasons,
            });
        }
    }
    out
}

/// Apply a policy: delete the snapshot objects it does not keep.
pub async fn forget(
    reader: &Reader,
    policy: &KeepPolicy,
    offset: UtcOffset,
    dry_run: bool,
) -> Result<Vec<Decision>> {
    let snaps = reader.snapshots().await?;
    let mut decisions = plan(&snaps, policy, offset)?;
    // An anomaly's hold keeps the history before it (FORMAT.md §14).
    let (holds, bad) = crate::holds::read(&reader.repo.store).await?;
    for u in &bad {
        tracing::warn!(object = %u.name, error = %u.error, "not a hold, ignored");
    }
    apply_holds(&mut decisions, &snaps, &holds);
    if !dry_run {
        delete_forgotten(&reader.repo.store, &mut decisions).await?;
    }
    Ok(decisions)
}

/// The reason a snapshot the policy let go is kept: the store refused to
/// delete it (an append-only gateway's retention floor).
pub const KEPT_BY_STORE: &str = "store-floor";

/// Deletes the snapshots the decisions let go. One the store refuses to
/// delete stays, and its decision says so ([`KEPT_BY_STORE`]). Returns how
/// many were deleted.
pub async fn delete_forgotten(
    store: &crate::storage::Store,
    decisions: &mut [Decision],
) -> Result<usize> {
    let mut n = 0;
    for d in decisions.iter_mut().filter(|d| !d.keep) {
        if store
            .delete_if_allowed(&crate::layout::snapshot_hex(&d.id))
            .await?
        {
            n += 1;
        } else {
            d.keep = true;
            d.reasons.push(KEPT_BY_STORE);
        }
    }
    Ok(n)
}

/// Keeps what the anomaly holds keep (FORMAT.md §14): a snapshot of a hold's space received at or
/// before the hold's snapshot is kept (reason `held`).
pub fn apply_holds(
    decisions: &mut [Decision],
    snaps: &[ListedSnapshot],
    holds: &[crate::holds::Hold],
) {
    if holds.is_empty() {
        return;
    }
    for d in decisions.iter_mut().filter(|d| !d.keep) {
        let Some(s) = snaps.iter().find(|s| s.id.to_hex() == d.id) else {
            continue;
        };
        let space = s.space.to_hex();
        if holds
            .iter()
            .any(|h| h.space == space && s.stored_at <= h.stored_at)
        {
            d.keep = true;
            d.reasons.push("held");
        }
    }
}
