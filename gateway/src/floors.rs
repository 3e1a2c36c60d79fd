//! The revocation floors the gateway follows (`feed.rs` fetches them
//! from the controller): per principal the lowest valid serial; kept in
//! `state_dir/revocations.json` (0600) so a restart while the controller
//! is down keeps refusing what it revoked. Floors only rise.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use pulih_core::gateway_creds::{Principal, feed_key, serial};
use serde::{Deserialize, Serialize};

/// What the controller answers, and what the cache file holds. Fields a
/// newer controller adds are ignored, not a reason to stop following it.
#[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Feed {
    pub generated_at: i64,
    pub floors: BTreeMap<String, u32>,
}

/// The floors in force.
#[derive(Default)]
pub struct Floors(RwLock<BTreeMap<String, u32>>);

pub(crate) fn cache_path(state_dir: &Path) -> PathBuf {
    state_dir.join("revocations.json")
}

impl Floors {
    /// The floors cached in `state_dir` (none yet: empty).
    pub fn load(state_dir: &Path) -> anyhow::Result<Floors> {
        let path = cache_path(state_dir);
        match std::fs::read(&path) {
            Ok(b) => {
                let f: Feed = serde_json::from_slice(&b).map_err(|e| {
                    anyhow::anyhow!("{}: not a revocation feed cache: {e}", path.display())
                })?;
                Ok(Floors(RwLock::new(f.floors)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Floors::default()),
            Err(e) => Err(anyhow::anyhow!("{}: {e}", path.display())),
        }
    }

    /// Whether `p` is below the floor of its principal.
    pub fn revokes(&self, p: &Principal) -> bool {
        let (Some(k), Some(n)) = (feed_key(p), serial(p)) else {
            return false;
        };
        self.0
            .read()
            .expect("floors lock")
            .get(&k)
            .is_some_and(|floor| n < *floor)
    }

    /// Raises the floors to `feed`'s (never lowers one); whether any rose.
    pub fn raise(&self, feed: &BTreeMap<String, u32>) -> bool {
        let mut floors = self.0.write().expect("floors lock");
        let mut rose = false;
        for (k, v) in feed {
            let f = floors.entry(k.clone()).or_insert(0);
            if *v > *f {
                *f = *v;
                rose = true;
            }
        }
        rose
    }

    pub(crate) fn snapshot(&self, generated_at: i64) -> Feed {
        Feed {
            generated_at,
            floors: self.0.read().expect("floors lock").clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credential_below_its_floor_is_refused_and_floors_only_rise() {
        let f = Floors::default();
        let agent = |serial| Principal::Agent {
            agency: "dinkes".into(),
            server: "web".into(),
            serial,
        };
        assert!(!f.revokes(&agent(1)));
        assert!(f.raise(&BTreeMap::from([("agent:web".to_string(), 100)])));
        assert!(f.revokes(&agent(99)));
        assert!(!f.revokes(&agent(100)));
        // A lower floor (an old controller) brings nothing back.
        assert!(!f.raise(&BTreeMap::from([("agent:web".to_string(), 5)])));
        assert!(f.revokes(&agent(99)));
        // Other principals, readers and maintenance are not touched.
        let other = Principal::Agent {
            agency: "dinkes".into(),
            server: "db".into(),
            serial: 1,
        };
        assert!(!f.revokes(&other));
        let reader = Principal::Reader {
            agency: "dinkes".into(),
            serial: 1,
        };
        assert!(!f.revokes(&reader));
        assert!(!f.revokes(&Principal::Maintenance));
    }
}
