//! Anomaly holds (FORMAT.md §14): `holds/<snapshot id>`, written by the
//! controller when a server's run looks like ransomware, keeps every
//! snapshot of that server's space received up to the flagged one out of
//! every forget until an operator clears it.

use serde::{Deserialize, Serialize};

use crate::id::{SnapshotId, SpaceId};
use crate::repo::Unreadable;
use crate::storage::Store;
use crate::{Error, Result, layout};

/// The objects' prefix.
pub const HOLDS: &str = "holds/";

/// Holds larger than this are not read (a hold is a few hundred bytes).
const MAX_HOLD_BYTES: u64 = 16 * 1024;

/// One hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hold {
    pub server: String,
    /// Hex of the flagged snapshot's space.
    pub space: String,
    /// Hex of the flagged snapshot's id.
    pub snapshot: String,
    /// Its receive time: every snapshot of the space received up to it is
    /// kept.
    pub stored_at: i64,
    pub reason: String,
    pub flagged_at: i64,
}

fn name(snapshot: &str) -> String {
    format!("{HOLDS}{snapshot}")
}

/// Writes a hold (again, if it is there: same name, same meaning).
pub async fn write(store: &Store, hold: &Hold) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(hold).expect("holds serialize");
    store.put(&name(&hold.snapshot), bytes.into()).await
}

/// Every hold in the repository; objects under `holds/` that are not one
/// (too large, not JSON, not named by their snapshot) are set aside.
pub async fn read(store: &Store) -> Result<(Vec<Hold>, Vec<Unreadable>)> {
    let mut out = Vec::new();
    let mut unreadable = Vec::new();
    for o in store.list(HOLDS).await? {
        let Some(_) = layout::parse_id::<SnapshotId>(&o.key, HOLDS) else {
            continue;
        };
        let parsed = if o.size > MAX_HOLD_BYTES {
            Err(Error::corrupt(
                &o.key,
                format!("{} bytes, too large for a hold", o.size),
            ))
        } else {
            let bytes = store.get(&o.key).await?;
            serde_json::from_slice::<Hold>(&bytes)
                .map_err(|e| Error::corrupt(&o.key, e.to_string()))
                .and_then(|h| {
                    if name(&h.snapshot) == o.key && h.space.parse::<SpaceId>().is_ok() {
                        Ok(h)
                    } else {
                        Err(Error::corrupt(&o.key, "names another snapshot or no space"))
                    }
                })
        };
        match parsed {
            Ok(h) => out.push(h),
            Err(error) => unreadable.push(Unreadable {
                name: o.key,
                space: None,
                error,
            }),
        }
    }
    Ok((out, unreadable))
}

/// Removes the holds of `server`; returns the flagged snapshots' ids.
pub async fn clear(store: &Store, server: &str) -> Result<Vec<String>> {
    let (holds, _) = read(store).await?;
    let mut cleared = Vec::new();
    for h in holds.into_iter().filter(|h| h.server == server) {
        store.delete(&name(&h.snapshot)).await?;
        cleared.push(h.snapshot);
    }
    Ok(cleared)
}
