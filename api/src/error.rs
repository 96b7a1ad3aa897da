//! The one error type of the HTTP API, and the one place it becomes problem+json.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Everything a handler can answer with besides success.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No credentials, or credentials that are not valid.
    #[error("{0}")]
    Unauthorized(String),
    /// Valid credentials without the right (e.g. a missing scope).
    #[error("{0}")]
    Forbidden(String),
    /// Nothing by that name for this tenant (also another tenant's objects).
    #[error("{0}")]
    NotFound(String),
    /// The request contradicts the current state.
    #[error("{0}")]
    Conflict(String),
    /// The request is malformed.
    #[error("{0}")]
    Validation(String),
    /// Too many requests; retry after this many seconds.
    #[error("too many requests, retry in {retry_after_s} s")]
    RateLimited {
        /// Seconds until a retry can succeed.
        retry_after_s: u64,
    },
    /// The tenant's spend cap leaves too little.
    #[error("{0}")]
    BudgetExhausted(String),
    /// A token's budget (or an ancestor's) leaves too little.
    #[error("{0}")]
    TokenBudgetExhausted(String),
    /// A scaling limit would be passed.
    #[error("{0}")]
    LimitExceeded(String),
    /// The body is larger than allowed.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// A dependency is not usable right now.
    #[error("{0}")]
    Unavailable(String),
    /// Nothing in the sprite answers where a request was sent (its URL, a tunnel).
    #[error("{0}")]
    BadGateway(String),
    /// Anything else: logged in full, answered opaquely.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// RFC 9457 problem details with Corral's stable `code`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI naming the problem type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the problem type.
    pub title: String,
    /// HTTP status.
    pub status: u16,
    /// What happened, for a person.
    pub detail: String,
    /// Stable machine-readable code.
    pub code: String,
}

impl ApiError {
    /// The HTTP status and stable code.
    pub fn status_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            Self::Validation(_) => (StatusCode::UNPROCESSABLE_ENTITY, "validation"),
            Self::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            Self::BudgetExhausted(_) => (StatusCode::PAYMENT_REQUIRED, "budget_exhausted"),
            Self::TokenBudgetExhausted(_) => {
                (StatusCode::PAYMENT_REQUIRED, "token_budget_exhausted")
            }
            Self::LimitExceeded(_) => (StatusCode::FORBIDDEN, "limit_exceeded"),
            Self::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            Self::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Self::BadGateway(_) => (StatusCode::BAD_GATEWAY, "bad_gateway"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    /// Shorthand for a 404 naming what was missing.
    pub fn not_found(what: impl std::fmt::Display) -> Self {
        Self::NotFound(format!("{what} not found"))
    }
}

/// A problem+json response for any status; `detail` must be safe to show.
pub fn problem_response(status: StatusCode, code: &str, detail: String) -> Response {
    let title = status.canonical_reason().unwrap_or("Error").to_string();
    let body = Problem {
        kind: format!("https://corral.dev/problems/{code}"),
        title,
        status: status.as_u16(),
        detail,
        code: code.to_string(),
    };
    let mut response = (status, axum::Json(body)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_code();
        let detail = match &self {
            Self::Internal(error) => {
                tracing::error!(error = ?error, "internal error");
                "something went wrong on our side; it has been logged".to_string()
            }
            other => other.to_string(),
        };
        let mut response = problem_response(status, code, detail);
        if let Self::RateLimited { retry_after_s } = self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_s.max(1)));
        }
        response
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        Self::Internal(error.into())
    }
}

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;
