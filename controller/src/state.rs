//! The controller's shared state: the store, the configuration, the desired
//! state in memory, the hashes of the tokens it accepts, the background
//! tasks ([`tasks`]) and the clock. Everything here works without HTTP:
//! the `Authorization` header is read in `api/`, which hands the bearer
//! token to the checks below.

pub mod tasks;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use pulih_model::manifest::ManifestSet;
use pulih_model::manifest::types::KeyHolderRole;
use tokio_util::sync::CancellationToken;

use crate::config::ControllerConfig;
use crate::store::{StateStore, StoreResult};
pub use tasks::Tasks;

/// The desired state in memory, with the revision it came from.
pub struct Desired {
    pub set: ManifestSet,
    pub revision: Option<i64>,
}

/// The tokens the controller accepts besides the agents' credentials
/// (which the store keeps).
#[derive(Debug, Clone, Default)]
pub struct Tokens<'a> {
    pub admin: &'a str,
    pub failover: Option<&'a str>,
    pub approvers: BTreeMap<KeyHolderRole, &'a str>,
}

pub struct AppState {
    pub store: Arc<dyn StateStore>,
    pub config: ControllerConfig,
    pub desired: RwLock<Desired>,
    admin_token_hash: [u8; 32],
    failover_token_hash: Option<[u8; 32]>,
    approver_token_hashes: BTreeMap<KeyHolderRole, [u8; 32]>,
    /// One maintenance run at a time.
    pub maintenance_lock: tokio::sync::Mutex<()>,
    /// Plan runs whose pre or post steps are running now (`run:phase`).
    pub plan_steps_running: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Every background task: the named workers and one-shot tasks.
    pub tasks: Tasks,
    clock: fn() -> i64,
}

pub type Shared = Arc<AppState>;

/// Who a credential belongs to, checked against the agent it claims to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    Valid,
    /// The credential of another agent.
    OtherAgent,
    Unknown,
}

impl AppState {
    /// The state of a controller whose background tasks stop on `cancel`.
    pub fn new(
        store: Arc<dyn StateStore>,
        config: ControllerConfig,
        tokens: &Tokens<'_>,
        desired: Desired,
        cancel: CancellationToken,
    ) -> Self {
        AppState {
            store,
            config,
            desired: RwLock::new(desired),
            admin_token_hash: token_hash(tokens.admin),
            failover_token_hash: tokens.failover.map(token_hash),
            approver_token_hashes: tokens
                .approvers
                .iter()
                .map(|(r, t)| (*r, token_hash(t)))
                .collect(),
            maintenance_lock: tokio::sync::Mutex::new(()),
            plan_steps_running: Default::default(),
            tasks: Tasks::new(cancel),
            clock: now,
        }
    }

    /// The same state with another clock (tests: a fixed time).
    pub fn with_clock(mut self, clock: fn() -> i64) -> Self {
        self.clock = clock;
        self
    }

    /// The time now, Unix seconds, by this state's clock.
    pub fn now(&self) -> i64 {
        (self.clock)()
    }

    pub fn desired(&self) -> std::sync::RwLockReadGuard<'_, Desired> {
        self.desired.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the controller holds an approver token for `role`.
    pub fn has_approver(&self, role: KeyHolderRole) -> bool {
        self.approver_token_hashes.contains_key(&role)
    }

    /// Whether `token` is the admin token.
    pub fn is_admin(&self, token: &str) -> bool {
        token_hash(token) == self.admin_token_hash
    }

    /// Whether a failover authorization is configured.
    pub fn failover_enabled(&self) -> bool {
        self.failover_token_hash.is_some()
    }

    /// Whether `token` is the failover authorization; None when failover
    /// is not enabled on this controller.
    pub fn is_failover_authority(&self, token: &str) -> Option<bool> {
        self.failover_token_hash.map(|h| h == token_hash(token))
    }

    /// Whether `token` is the approver token of `role`; None when this
    /// controller has no approver for it.
    pub fn is_approver(&self, role: KeyHolderRole, token: &str) -> Option<bool> {
        self.approver_token_hashes
            .get(&role)
            .map(|h| *h == token_hash(token))
    }

    /// Checks an agent credential against the agent name (a server, or
    /// `drc:<target>` for a DRC executor) it claims to be.
    pub fn credential(&self, agent: &str, token: &str) -> StoreResult<Credential> {
        let hash = token_hash(token);
        if let Some(a) = self.store.agent(agent)?
            && a.credential_hash == hash
        {
            return Ok(Credential::Valid);
        }
        // The failure path only: tell a credential of another agent from a bad one.
        let agents = self.store.agents()?;
        Ok(if agents.iter().any(|a| a.credential_hash == hash) {
            Credential::OtherAgent
        } else {
            Credential::Unknown
        })
    }
}

/// SHA-2-free, keyless hash of a bearer token (what the store keeps).
pub fn token_hash(token: &str) -> [u8; 32] {
    *blake3::hash(token.as_bytes()).as_bytes()
}

/// A random 256-bit token, hex.
pub fn new_token() -> String {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

/// The wall clock, Unix seconds.
pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}
