//! Cross-cutting HTTP behaviour: every error answer is problem+json, every request is
//! counted by route, spans are named by the matched route.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Span;

use crate::error::problem_response;
use crate::state::AppState;

/// A span per request named by its route, with the request id.
pub fn span(request: &Request) -> Span {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!("request", method = %request.method(), route, request_id)
}

/// Unknown paths.
pub async fn fallback() -> Response {
    problem_response(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such endpoint".into(),
    )
}

/// Counts the request and turns any bare error answer (from a layer or axum itself)
/// into problem+json.
pub async fn problems_and_metrics(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let response = next.run(request).await;
    let status = response.status();
    state
        .metrics
        .record_request(&method, &route, status.as_u16());
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return response;
    }
    let (code, detail) = match status {
        StatusCode::UNAUTHORIZED => ("unauthorized", "authentication is required"),
        StatusCode::FORBIDDEN => ("forbidden", "not allowed"),
        StatusCode::NOT_FOUND => ("not_found", "no such endpoint"),
        StatusCode::METHOD_NOT_ALLOWED => ("not_found", "this endpoint does not take that method"),
        StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "the request body is too large"),
        StatusCode::REQUEST_TIMEOUT => ("unavailable", "the request took too long"),
        StatusCode::TOO_MANY_REQUESTS => ("rate_limited", "too many requests"),
        s if s.is_server_error() => (
            "internal",
            "something went wrong on our side; it has been logged",
        ),
        _ => ("validation", "the request is not valid"),
    };
    let mut replaced = problem_response(status, code, detail.into());
    if let Some(retry) = response.headers().get(header::RETRY_AFTER) {
        replaced
            .headers_mut()
            .insert(header::RETRY_AFTER, retry.clone());
    }
    replaced
}
