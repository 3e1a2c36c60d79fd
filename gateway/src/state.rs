//! The gateway's state, shared by every request: its config (read again
//! when it changes), the gateway key, the index, the upstream stores, the
//! memory budget for PUT bodies and its clock's high-water mark.

use std::sync::{Arc, RwLock};

use pulih_core::rate_limit::RateLimiter;

use crate::config::GatewayConfig;
use crate::creds::{GatewayKey, Principal};
use crate::index::Index;
use crate::upstream::Upstreams;

/// The gateway's state, shared by every request.
pub struct Gateway {
    pub(crate) config: RwLock<Arc<GatewayConfig>>,
    pub(crate) key: GatewayKey,
    pub(crate) maintenance_secret: RwLock<Option<String>>,
    pub(crate) index: Index,
    pub(crate) upstreams: Upstreams,
    /// Room for PUT bodies in memory, in KiB (`max_buffered_bytes`).
    pub(crate) buffered: tokio::sync::Semaphore,
    /// The latest time of receipt given to an object (ms): a clock now
    /// behind it ran backwards, and no delete is trusted to it.
    pub(crate) latest_receipt: std::sync::atomic::AtomicI64,
    /// PUTs under way per credential (`max_puts_per_credential`).
    pub(crate) puts: PutCounter,
    /// Requests per credential (`rate_limit_per_second`), rebuilt when the
    /// config's rate changes.
    pub(crate) rate: RwLock<Option<Arc<RateLimiter<String>>>>,
    /// The controller's revocation floors (`feed.rs`).
    pub(crate) floors: crate::floors::Floors,
}

/// The request rate limit a config asks for (None: none).
pub(crate) fn rate_limiter(c: &GatewayConfig) -> Option<Arc<RateLimiter<String>>> {
    RateLimiter::new(c.rate_limit_per_second, c.rate_limit_burst).map(Arc::new)
}

/// PUTs under way, per credential.
#[derive(Default)]
pub(crate) struct PutCounter(std::sync::Mutex<std::collections::HashMap<String, usize>>);

impl PutCounter {
    /// Counts one more PUT of `who`; None when it has `max` under way
    /// already (0 = no limit).
    pub(crate) fn take(&self, who: &str, max: usize) -> Option<PutSlot<'_>> {
        let mut puts = self.0.lock().expect("puts lock");
        let n = puts.entry(who.to_string()).or_default();
        if max > 0 && *n >= max {
            return None;
        }
        *n += 1;
        Some(PutSlot {
            counter: self,
            who: who.to_string(),
        })
    }
}

/// One PUT counted against its credential, until dropped.
pub(crate) struct PutSlot<'a> {
    counter: &'a PutCounter,
    who: String,
}

impl Drop for PutSlot<'_> {
    fn drop(&mut self) {
        let mut puts = self.counter.0.lock().expect("puts lock");
        if let Some(n) = puts.get_mut(&self.who) {
            *n -= 1;
            if *n == 0 {
                puts.remove(&self.who);
            }
        }
    }
}

impl Gateway {
    /// Counts one more PUT of credential `who`; None when it has
    /// `max_puts_per_credential` under way already.
    pub(crate) fn put_slot(&self, who: &str) -> Option<PutSlot<'_>> {
        self.puts.take(who, self.config().max_puts_per_credential)
    }

    /// Takes one request of credential `akid` from its rate; Err: why not.
    pub(crate) fn take_rate(&self, akid: &str) -> Result<(), String> {
        let Some(l) = self.rate.read().expect("rate lock").clone() else {
            return Ok(());
        };
        l.check(akid.to_string(), std::time::Instant::now())
            .map_err(|wait| {
                format!(
                    "more requests than this credential's rate ({}/s); retry in {} ms",
                    self.config().rate_limit_per_second,
                    wait.as_millis().max(1)
                )
            })
    }

    pub fn config(&self) -> Arc<GatewayConfig> {
        self.config.read().expect("config lock").clone()
    }

    /// Who an access key id is (None: unknown or revoked).
    pub fn principal(&self, akid: &str) -> Option<Principal> {
        let config = self.config();
        if let Some(m) = &config.maintenance
            && m.access_key == akid
        {
            return Some(Principal::Maintenance);
        }
        if config.revoked.iter().any(|r| r == akid) {
            return None;
        }
        Principal::parse(akid).filter(|p| !self.floors.revokes(p))
    }

    /// Whether `p` may read (and write new objects in) agency `agency`'s
    /// prefix.
    pub fn reaches(&self, p: &Principal, agency: &str) -> bool {
        let config = self.config();
        let Some(agency) = config.agency(agency) else {
            return false;
        };
        match p {
            Principal::Agent { agency: a, .. } | Principal::Reader { agency: a, .. } => {
                *a == agency.name
            }
            Principal::Executor { target, .. } => agency.executors.iter().any(|t| t == target),
            Principal::Maintenance => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::PutCounter;

    /// A credential gets `max` uploads at once, each given back when it
    /// ends however it ends; other credentials are not counted with it.
    #[test]
    fn a_credential_has_at_most_its_uploads_under_way() {
        let c = PutCounter::default();
        let a1 = c.take("PLH.agent.dinkes.simpus.1", 2).unwrap();
        let _a2 = c.take("PLH.agent.dinkes.simpus.1", 2).unwrap();
        assert!(c.take("PLH.agent.dinkes.simpus.1", 2).is_none());
        let _b = c.take("PLH.agent.dinkes.web.1", 2).unwrap();
        drop(a1);
        let _a3 = c.take("PLH.agent.dinkes.simpus.1", 2).unwrap();
        assert!(c.take("PLH.agent.dinkes.simpus.1", 2).is_none());
        assert!((0..100).all(|_| c.take("x", 0).map(std::mem::forget).is_some()));
    }
}
