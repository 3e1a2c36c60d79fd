//! The HTTP API under `/api/v1`: routing, authentication, request bodies.

mod agents;
mod drc;
pub mod drills;
mod manifests;
mod plan_steps;
mod plans;
mod servers;

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, Request};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use pulih_model::manifest::ManifestSet;
use pulih_model::manifest::types::KeyHolderRole;
use pulih_model::routes;
use serde::de::DeserializeOwned;

use crate::config::ControllerConfig;
use crate::error::ApiError;
use crate::store::StateStore;

/// Manifest uploads may be this large; every other body 256 KiB.
pub const MANIFEST_BODY_LIMIT: usize = 4 << 20;
pub const BODY_LIMIT: usize = 256 << 10;

/// The desired state in memory, with the revision it came from.
pub struct Desired {
    pub set: ManifestSet,
    pub revision: Option<i64>,
}

pub struct AppState {
    pub store: Arc<dyn StateStore>,
    pub config: ControllerConfig,
    pub desired: RwLock<Desired>,
    admin_token_hash: [u8; 32],
    failover_token_hash: Option<[u8; 32]>,
    approver_token_hashes: std::collections::BTreeMap<KeyHolderRole, [u8; 32]>,
    /// One maintenance run at a time.
    pub maintenance_lock: tokio::sync::Mutex<()>,
    /// Plan runs whose pre or post steps are running now (`run:phase`).
    pub plan_steps_running: std::sync::Mutex<std::collections::HashSet<String>>,
}

pub type Shared = Arc<AppState>;

impl AppState {
    pub fn new(
        store: Arc<dyn StateStore>,
        config: ControllerConfig,
        admin_token: &str,
        failover_token: Option<&str>,
        approver_tokens: &std::collections::BTreeMap<KeyHolderRole, String>,
        desired: Desired,
    ) -> Self {
        AppState {
            store,
            config,
            desired: RwLock::new(desired),
            admin_token_hash: token_hash(admin_token),
            failover_token_hash: failover_token.map(token_hash),
            approver_token_hashes: approver_tokens
                .iter()
                .map(|(r, t)| (*r, token_hash(t)))
                .collect(),
            maintenance_lock: tokio::sync::Mutex::new(()),
            plan_steps_running: Default::default(),
        }
    }

    /// Whether the controller holds an approver token for `role`.
    pub fn has_approver(&self, role: KeyHolderRole) -> bool {
        self.approver_token_hashes.contains_key(&role)
    }

    /// Checks the token of `role`'s approver.
    pub fn require_approver(
        &self,
        headers: &HeaderMap,
        role: KeyHolderRole,
    ) -> Result<(), ApiError> {
        let Some(want) = self.approver_token_hashes.get(&role) else {
            return Err(ApiError::Conflict(format!(
                "this controller has no approver for {} (set [approvers] {} in its config)",
                role.as_str(),
                role.as_str()
            )));
        };
        if token_hash(bearer(headers)?) == *want {
            Ok(())
        } else {
            Err(ApiError::ApprovalNotAuthorized(role.as_str().to_string()))
        }
    }

    pub fn desired(&self) -> std::sync::RwLockReadGuard<'_, Desired> {
        self.desired.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Checks the admin token; returns the actor name for the audit log.
    pub fn require_admin(&self, headers: &HeaderMap) -> Result<&'static str, ApiError> {
        let token = bearer(headers)?;
        if token_hash(token) == self.admin_token_hash {
            Ok("admin")
        } else {
            Err(ApiError::InvalidToken)
        }
    }

    /// Checks the failover authorization (a secret apart from the admin
    /// token); returns the actor name for the audit log.
    pub fn require_failover(&self, headers: &HeaderMap) -> Result<&'static str, ApiError> {
        let Some(want) = self.failover_token_hash else {
            return Err(ApiError::Conflict(
                "failover is not enabled on this controller (set failover_token_file)".into(),
            ));
        };
        if token_hash(bearer(headers)?) == want {
            Ok("failover-authority")
        } else {
            Err(ApiError::FailoverNotAuthorized)
        }
    }

    /// Checks an agent credential against the server it claims to be.
    pub fn require_agent(&self, headers: &HeaderMap, server: &str) -> Result<(), ApiError> {
        if server.starts_with("drc:") {
            // A DRC executor's credential is for the `/drc/…` endpoints only.
            return Err(ApiError::NotFound(format!(
                "no Server `{server}`; DRC executors use /api/v1/drc/…"
            )));
        }
        self.check_credential(headers, server)
    }

    /// Checks a credential against the agent name (a server, or
    /// `drc:<target>` for a DRC executor) it claims to be.
    pub fn check_credential(&self, headers: &HeaderMap, server: &str) -> Result<(), ApiError> {
        let hash = token_hash(bearer(headers)?);
        if let Some(a) = self.store.agent(server).map_err(internal)?
            && a.credential_hash == hash
        {
            return Ok(());
        }
        // The failure path only: tell a credential of another server from a bad one.
        let agents = self.store.agents().map_err(internal)?;
        if agents.iter().any(|a| a.credential_hash == hash) {
            Err(ApiError::WrongServer)
        } else {
            Err(ApiError::InvalidToken)
        }
    }
}

pub fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(e.to_string())
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

fn bearer(headers: &HeaderMap) -> Result<&str, ApiError> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(ApiError::Unauthenticated)
}

pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// A JSON body whose every rejection maps to a stable error code.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(JsonRejection::JsonSyntaxError(e)) => Err(ApiError::MalformedJson(format!(
                "malformed JSON: {}",
                e.body_text()
            ))),
            Err(JsonRejection::JsonDataError(e)) => Err(ApiError::InvalidBody(e.body_text())),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::UnsupportedMediaType),
            Err(e) if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::PayloadTooLarge(None))
            }
            Err(e) => Err(ApiError::MalformedJson(e.body_text())),
        }
    }
}

/// Refuses a body whose declared length is over `limit` before reading it
/// (the body-limit layer alone would read up to the limit first).
async fn refuse_oversized(
    axum::extract::State(limit): axum::extract::State<usize>,
    req: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return ApiError::PayloadTooLarge(Some(limit)).into_response();
    }
    next.run(req).await
}

fn limited(router: Router<Shared>, limit: usize) -> Router<Shared> {
    router
        .layer(axum::middleware::from_fn_with_state(
            limit,
            refuse_oversized,
        ))
        .layer(DefaultBodyLimit::max(limit))
}

pub fn router(state: Shared) -> Router {
    let manifests = limited(
        Router::new().route(routes::MANIFESTS, post(manifests::apply)),
        MANIFEST_BODY_LIMIT,
    );
    let rest = Router::new()
        .route(routes::MANIFEST_REVISIONS, get(manifests::revisions))
        .route(routes::SERVERS, get(servers::list))
        .route(routes::SERVER, get(servers::show))
        .route(routes::SERVER_ENROLL_TOKEN, post(servers::enroll_token))
        .route(routes::SERVER_REPLICATE, post(servers::replicate))
        .route(routes::SERVER_VERIFY, post(servers::verify))
        .route(routes::MAINTENANCE, get(servers::maintenance_runs))
        .route(routes::MAINTENANCE_RUN, post(servers::maintenance_run))
        .route(routes::SERVER_RESTORE, post(servers::restore))
        .route(routes::RUNS, get(servers::runs))
        .route(routes::RUN, get(servers::run))
        .route(routes::STATUS, get(servers::status))
        .route(routes::COMPLIANCE, get(servers::compliance))
        .route(routes::AGENT_ENROLL, post(agents::enroll))
        .route(routes::AGENT_HEARTBEAT, post(agents::heartbeat))
        .route(routes::AGENT_RUN_START, post(agents::start_run))
        .route(routes::AGENT_RUN_RESULT, post(agents::result))
        .route(routes::SERVER_DRILL, post(drills::request))
        .route(routes::SERVER_FAILOVER, post(drills::failover))
        .route(routes::SERVER_FAILBACK, post(drills::failback))
        .route(routes::PLAN_DRILL, post(plans::drill))
        .route(routes::PLAN_FAILOVER, post(plans::failover))
        .route(routes::PLAN_RUNS, get(plans::list))
        .route(routes::PLAN_RUN, get(plans::show))
        .route(routes::PLAN_RUN_RESUME, post(plans::resume))
        .route(routes::PLAN_RUN_APPROVE, post(plan_steps::approve))
        .route(routes::PLAN_RUN_ROLLBACK, post(plans::rollback))
        .route(routes::DRILLS, get(drills::list))
        .route(routes::DRILL, get(drills::show))
        .route(routes::DRC_ENROLL_TOKEN, post(drc::enroll_token))
        .route(routes::DRC_HEARTBEAT, post(drc::heartbeat))
        .route(routes::DRC_DRILL_START, post(drc::start))
        .route(routes::DRC_DRILL_REPORT, post(drc::report))
        .route(routes::DRC_PLAN_TEARDOWN, post(drc::plan_teardown))
        .route(routes::OPENAPI, get(crate::openapi::serve));
    let api = manifests.merge(limited(rest, BODY_LIMIT)).with_state(state);
    Router::new()
        .nest(routes::PREFIX, api)
        .route(routes::HEALTHZ, get(|| async { "ok\n" }))
        .fallback(|| async {
            ApiError::NotFound("no such endpoint; the API is under /api/v1".into())
        })
}

/// The peer address, as axum's connect info gives it.
pub type Peer = axum::extract::ConnectInfo<SocketAddr>;
