//! The gateway's state, shared by every request: its config (read again
//! when it changes), the gateway key, the index, the upstream stores, the
//! memory budget for PUT bodies and its clock's high-water mark.

use std::sync::{Arc, RwLock};

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
}

impl Gateway {
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
        Principal::parse(akid)
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
