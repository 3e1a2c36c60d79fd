//! The one place errors become HTTP statuses and stable error codes.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use pulih_model::api::{ErrorBody, ErrorDetail};
use pulih_model::manifest::Diagnostic;

use crate::recovery::RecoveryError;

/// An API error. Each variant has one stable code (docs/API.md).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    MalformedJson(String),
    #[error("{0}")]
    InvalidBody(String),
    #[error("the request body is too large{}", .0.map(|n| format!(" (limit {n} bytes)")).unwrap_or_default())]
    PayloadTooLarge(Option<usize>),
    #[error("send the body as application/json")]
    UnsupportedMediaType,
    #[error("too many requests from this address; try again in {0} ms")]
    RateLimited(u64),
    #[error("missing or malformed `Authorization: Bearer TOKEN` header")]
    Unauthenticated,
    #[error("the token is not valid")]
    InvalidToken,
    #[error("this credential belongs to another server")]
    WrongServer,
    #[error("this enrolment token has already been used")]
    EnrollTokenUsed,
    #[error("this enrolment token has expired; ask for a new one")]
    EnrollTokenExpired,
    #[error("{0}")]
    NotFound(String),
    #[error("{} problem(s) in the manifests", .0.len())]
    InvalidManifests(Vec<Diagnostic>),
    #[error("{0}")]
    Conflict(String),
    /// The agency's manifest does not consent to what was asked (a drill).
    #[error("{0}")]
    ConsentMissing(String),
    /// `POST /plans/{name}/…` names no RecoveryPlan (the CLI then tries a
    /// Server of that name).
    #[error("{0}")]
    UnknownPlan(String),
    #[error(
        "a failover needs the failover authorization (the controller's failover_token_file), not the admin token"
    )]
    FailoverNotAuthorized,
    /// The bearer token is not the approver token of the role claimed.
    #[error("this token is not the approver token of {0}")]
    ApprovalNotAuthorized(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        use ApiError::*;
        match self {
            MalformedJson(_) => (StatusCode::BAD_REQUEST, "malformed_json"),
            InvalidBody(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
            PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            UnsupportedMediaType => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
            RateLimited(_) => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            InvalidToken => (StatusCode::UNAUTHORIZED, "invalid_token"),
            WrongServer => (StatusCode::FORBIDDEN, "wrong_server"),
            EnrollTokenUsed => (StatusCode::CONFLICT, "enroll_token_used"),
            EnrollTokenExpired => (StatusCode::UNAUTHORIZED, "enroll_token_expired"),
            NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            InvalidManifests(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_manifests"),
            Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ConsentMissing(_) => (StatusCode::FORBIDDEN, "consent_missing"),
            UnknownPlan(_) => (StatusCode::NOT_FOUND, "unknown_plan"),
            FailoverNotAuthorized => (StatusCode::FORBIDDEN, "failover_not_authorized"),
            ApprovalNotAuthorized(_) => (StatusCode::FORBIDDEN, "approval_not_authorized"),
            Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl From<RecoveryError> for ApiError {
    fn from(e: RecoveryError) -> Self {
        match e {
            RecoveryError::NotFound(m) => ApiError::NotFound(m),
            RecoveryError::Conflict(m) => ApiError::Conflict(m),
            RecoveryError::Invalid(m) => ApiError::InvalidBody(m),
            RecoveryError::ConsentMissing(m) => ApiError::ConsentMissing(m),
            RecoveryError::UnknownPlan(m) => ApiError::UnknownPlan(m),
            e @ (RecoveryError::Store(_) | RecoveryError::Corrupt(_)) => {
                ApiError::Internal(e.to_string())
            }
        }
    }
}

impl From<rusqlite::Error> for ApiError {
    fn from(e: rusqlite::Error) -> Self {
        ApiError::Internal(format!("state store: {e}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if status.is_server_error() {
            tracing::error!(code, error = %self, "request failed");
        }
        let diagnostics = match &self {
            ApiError::InvalidManifests(d) => d.clone(),
            _ => Vec::new(),
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: code.to_string(),
                message: self.to_string(),
                diagnostics,
            },
        };
        (status, Json(body)).into_response()
    }
}
