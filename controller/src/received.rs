//! What the append-only gateway received from a server for one run: the
//! bytes of the packs its own agent credential wrote between its previous
//! confirmed snapshot and this one, by the gateway's time of receipt
//! (docs/GATEWAY.md; `pulih_core::writers`). Nothing the agent writes or
//! reports changes it: it cannot write under another credential, date an
//! object, or leave a pack out of the gateway's listing by leaving it out
//! of its snapshot. The ransomware signals measure runs with it
//! (`anomaly.rs`, rule c).
//!
//! Through a store that is not the gateway (`file://`, Garage or S3
//! directly) there is no writer to read: the signals then use the store's
//! sizes of the packs the snapshot names.

use pulih_core::gateway_creds::Principal;
use pulih_core::id::SnapshotId;
use pulih_core::layout;
use pulih_core::storage::Store;
use pulih_core::writers::{Written, list_writers};

/// Bytes `agency`'s server `server` wrote under `data/` with a receipt in
/// `(after_ms, until_ms]`; None when no object of the listing was written
/// by a gateway credential (the store is not the gateway).
pub fn received_in(
    listing: &[Written],
    agency: &str,
    server: &str,
    after_ms: i64,
    until_ms: i64,
) -> Option<u64> {
    let mut gateway = false;
    let mut bytes = 0u64;
    for w in listing {
        let Some(p) = w.writer.as_deref().and_then(Principal::parse) else {
            continue;
        };
        gateway = true;
        let ours = matches!(&p, Principal::Agent { agency: a, server: s, .. } if a == agency && s == server);
        if ours && w.received_ms > after_ms && w.received_ms <= until_ms {
            bytes += w.size;
        }
    }
    gateway.then_some(bytes)
}

/// What the gateway received from `server` (of agency `agency`) for the
/// run that wrote snapshot `this`, since its previous confirmed snapshot
/// `prev`: one listing of the agency's `snapshots/` (their receipts, to
/// the millisecond) and one of its `data/`. None where the store does not
/// tell writers, either snapshot is not listed, or a listing fails
/// (logged).
pub async fn received(
    store: &Store,
    agency: &str,
    server: &str,
    prev: &SnapshotId,
    this: &SnapshotId,
) -> Option<u64> {
    let list = |prefix: &'static str| async move {
        match list_writers(store, prefix).await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(%server, error = %e, "cannot list what the gateway received");
                None
            }
        }
    };
    let snapshots = list("snapshots/").await?;
    // Not the gateway (Garage or S3 directly): no writer to count by, and
    // no listing of every pack for nothing.
    if !snapshots
        .iter()
        .any(|w| w.writer.as_deref().and_then(Principal::parse).is_some())
    {
        return None;
    }
    let receipt = |id: &SnapshotId| {
        let key = layout::snapshot(id);
        snapshots
            .iter()
            .find(|w| w.key == key)
            .map(|w| w.received_ms)
    };
    // A pack received in the same millisecond as the previous snapshot
    // belongs to that run (packs are written before their snapshot).
    let (after, until) = (receipt(prev)?, receipt(this)?);
    received_in(&list("data/").await?, agency, server, after, until)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(writer: Option<&str>, size: u64, received_ms: i64) -> Written {
        Written {
            key: format!("data/{size}-{received_ms}"),
            size,
            received_ms,
            writer: writer.map(str::to_owned),
        }
    }

    #[test]
    fn only_the_servers_own_packs_of_the_window_count() {
        let web = "PLH.agent.dinkes.web.1";
        let listing = vec![
            w(Some(web), 1, 1_000),                           // before the window
            w(Some(web), 10, 1_001),                          // in it
            w(Some("PLH.agent.dinkes.web.2"), 100, 1_500),    // a re-issued credential
            w(Some("PLH.agent.dinkes.db.1"), 1_000, 1_500),   // another server
            w(Some("PLH.agent.disdik.web.1"), 10_000, 1_500), // another agency
            w(Some("PLH.reader.dinkes.1"), 100_000, 1_500),   // the walidata
            w(Some(web), 1_000_000, 2_000),                   // at the end: in
            w(Some(web), 10_000_000, 2_001),                  // after
        ];
        assert_eq!(
            received_in(&listing, "dinkes", "web", 1_000, 2_000),
            Some(1_000_110)
        );
        assert_eq!(received_in(&listing, "dinkes", "gone", 0, 9_999), Some(0));
        // A store that names no gateway writer (Garage's own key ids, or none).
        let plain = vec![
            w(Some("GK31c2f218a2e44f485b94239e"), 5, 1_500),
            w(None, 5, 1_500),
        ];
        assert_eq!(received_in(&plain, "dinkes", "web", 0, 9_999), None);
    }
}
