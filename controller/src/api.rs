//! The HTTP API under `/api/v1`: routing, authentication, request bodies.
//! Handlers authorise, parse, call one function of `recovery/` (or the
//! store) and shape the reply; the state machines are not here.

mod agents;
mod drc;
mod drills;
mod gateway;
mod manifests;
mod plans;
mod servers;

use std::net::SocketAddr;

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, Request};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use pulih_model::manifest::types::KeyHolderRole;
use pulih_model::routes;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::state::{AppState, Credential, Shared};

/// Manifest uploads may be this large; every other body 256 KiB.
pub const MANIFEST_BODY_LIMIT: usize = 4 << 20;
pub const BODY_LIMIT: usize = 256 << 10;

/// The checks of a request's bearer token against the state's tokens.
pub trait Authorize {
    /// Checks the admin token; returns the actor name for the audit log.
    fn require_admin(&self, headers: &HeaderMap) -> Result<&'static str, ApiError>;
    /// Checks the failover authorization (a secret apart from the admin
    /// token); returns the actor name for the audit log.
    fn require_failover(&self, headers: &HeaderMap) -> Result<&'static str, ApiError>;
    /// Checks the token of `role`'s approver.
    fn require_approver(&self, headers: &HeaderMap, role: KeyHolderRole) -> Result<(), ApiError>;
    /// Checks an agent credential against the server it claims to be.
    fn require_agent(&self, headers: &HeaderMap, server: &str) -> Result<(), ApiError>;
    /// Checks a credential against the agent name (a server, or
    /// `drc:<target>` for a DRC executor) it claims to be.
    fn check_credential(&self, headers: &HeaderMap, agent: &str) -> Result<(), ApiError>;
}

impl Authorize for AppState {
    fn require_admin(&self, headers: &HeaderMap) -> Result<&'static str, ApiError> {
        if self.is_admin(bearer(headers)?) {
            Ok("admin")
        } else {
            Err(ApiError::InvalidToken)
        }
    }

    fn require_failover(&self, headers: &HeaderMap) -> Result<&'static str, ApiError> {
        if !self.failover_enabled() {
            return Err(ApiError::Conflict(
                "failover is not enabled on this controller (set failover_token_file)".into(),
            ));
        }
        if self.is_failover_authority(bearer(headers)?) == Some(true) {
            Ok("failover-authority")
        } else {
            Err(ApiError::FailoverNotAuthorized)
        }
    }

    fn require_approver(&self, headers: &HeaderMap, role: KeyHolderRole) -> Result<(), ApiError> {
        if !self.has_approver(role) {
            return Err(ApiError::Conflict(format!(
                "this controller has no approver for {} (set [approvers] {} in its config)",
                role.as_str(),
                role.as_str()
            )));
        }
        if self.is_approver(role, bearer(headers)?) == Some(true) {
            Ok(())
        } else {
            Err(ApiError::ApprovalNotAuthorized(role.as_str().to_string()))
        }
    }

    fn require_agent(&self, headers: &HeaderMap, server: &str) -> Result<(), ApiError> {
        if server.starts_with("drc:") {
            // A DRC executor's credential is for the `/drc/…` endpoints only.
            return Err(ApiError::NotFound(format!(
                "no Server `{server}`; DRC executors use /api/v1/drc/…"
            )));
        }
        self.check_credential(headers, server)
    }

    fn check_credential(&self, headers: &HeaderMap, agent: &str) -> Result<(), ApiError> {
        match self.credential(agent, bearer(headers)?).map_err(internal)? {
            Credential::Valid => Ok(()),
            Credential::OtherAgent => Err(ApiError::WrongServer),
            Credential::Unknown => Err(ApiError::InvalidToken),
        }
    }
}

pub fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(e.to_string())
}

pub(crate) fn bearer(headers: &HeaderMap) -> Result<&str, ApiError> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(ApiError::Unauthenticated)
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

/// Refuses a request over its address's rate ([`pulih_core::rate_limit`]).
async fn rate_limited(
    axum::extract::State(limiter): axum::extract::State<
        std::sync::Arc<pulih_core::rate_limit::RateLimiter<std::net::IpAddr>>,
    >,
    peer: Peer,
    req: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if let Err(wait) = limiter.check(peer.0.ip(), std::time::Instant::now()) {
        let mut r = ApiError::RateLimited(wait.as_millis() as u64 + 1).into_response();
        let secs = wait.as_secs() + 1;
        r.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            axum::http::HeaderValue::from(secs),
        );
        return r;
    }
    next.run(req).await
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
        .route(routes::SERVER_CLEAR_ANOMALY, post(servers::clear_anomaly))
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
        .route(routes::PLAN_RUN_APPROVE, post(plans::approve))
        .route(routes::PLAN_RUN_ROLLBACK, post(plans::rollback))
        .route(routes::DRILLS, get(drills::list))
        .route(routes::DRILL, get(drills::show))
        .route(routes::DRC_ENROLL_TOKEN, post(drc::enroll_token))
        .route(routes::DRC_HEARTBEAT, post(drc::heartbeat))
        .route(routes::DRC_DRILL_START, post(drc::start))
        .route(routes::DRC_DRILL_REPORT, post(drc::report))
        .route(routes::DRC_PLAN_TEARDOWN, post(drc::plan_teardown))
        .route(routes::GATEWAY_REVOCATIONS, get(gateway::revocations))
        .route(routes::OPENAPI, get(crate::openapi::serve));
    let limiter = pulih_core::rate_limit::RateLimiter::new(
        state.config.rate_limit_per_second,
        state.config.rate_limit_burst,
    );
    let mut api = manifests.merge(limited(rest, BODY_LIMIT)).with_state(state);
    if let Some(limiter) = limiter {
        api = api.layer(axum::middleware::from_fn_with_state(
            std::sync::Arc::new(limiter),
            rate_limited,
        ));
    }
    Router::new()
        .nest(routes::PREFIX, api)
        .route(routes::HEALTHZ, get(|| async { "ok\n" }))
        .fallback(|| async {
            ApiError::NotFound("no such endpoint; the API is under /api/v1".into())
        })
}

/// The peer address, as axum's connect info gives it.
pub type Peer = axum::extract::ConnectInfo<SocketAddr>;
