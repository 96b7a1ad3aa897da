//! A stand-in for Stripe's API, which cannot be reached from here (and whose own mock
//! is stateless): an axum server keeping customers, Checkout and portal sessions,
//! subscriptions, invoices, billing meters and meter events, payment methods and
//! PaymentIntents in memory, with
//! `sk_test_` bearer auth, form bodies with bracketed keys, `Idempotency-Key` replay,
//! errors in Stripe's shape, fault injection and a signed webhook emitter. Test hooks
//! live under `/_test/` (not part of Stripe's API).
#![warn(missing_docs)]

pub mod faults;
pub mod form;
mod hooks;
mod objects;
mod payments;
mod state;
pub mod webhooks;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::json;

pub use state::StandIn;

/// Shared state of one stand-in.
pub type Shared = Arc<StandIn>;

/// An error in Stripe's shape: `{"error": {type, code, message}}` (an `api_error`, Stripe's
/// own failure, has no code).
pub fn stripe_error(status: StatusCode, kind: &str, code: &str, message: &str) -> Response {
    let code = (kind != "api_error").then_some(code);
    let body = json!({"error": {"type": kind, "code": code, "message": message}});
    (status, axum::Json(body)).into_response()
}

/// The whole stand-in: Stripe's routes behind auth, faults and idempotency; test hooks.
pub fn router(standin: Shared) -> Router {
    let api = objects::router()
        .layer(middleware::from_fn_with_state(standin.clone(), idempotency))
        .layer(middleware::from_fn_with_state(
            standin.clone(),
            faults::inject,
        ))
        .layer(middleware::from_fn_with_state(standin.clone(), auth));
    Router::new()
        .merge(api)
        .merge(hooks::router())
        .with_state(standin)
}

/// Serves a new stand-in on `addr` (port 0: any) in the background; answers its
/// address and state. `key` is the secret key it accepts (`sk_test_…`).
pub async fn spawn(addr: &str, key: &str) -> anyhow::Result<(SocketAddr, Shared)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let standin = Arc::new(StandIn::new(key));
    let app = router(standin.clone());
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(%error, "stripe stand-in stopped");
        }
    });
    Ok((local, standin))
}

/// `Authorization: Bearer sk_test_…` with the configured key, as Stripe's test mode.
async fn auth(State(s): State<Shared>, request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(key) if key.starts_with("sk_test_") && key == s.key => next.run(request).await,
        Some(key) if key.starts_with("sk_live_") => stripe_error(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "api_key_expired",
            "This stand-in only accepts test-mode keys.",
        ),
        _ => stripe_error(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "invalid_api_key",
            "Invalid API Key provided.",
        ),
    }
}

/// `Idempotency-Key` on a POST: the first answer (not a 500) is kept and replayed with
/// `Idempotent-Replayed: true`; the same key with other parameters (in any order) is
/// refused.
async fn idempotency(State(s): State<Shared>, request: Request, next: Next) -> Response {
    let key = request
        .headers()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let Some(key) = key.filter(|_| request.method() == axum::http::Method::POST) else {
        return next.run(request).await;
    };
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, 1 << 20).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    // Stripe compares the parameters, not their order in the body (a client may send a
    // map's keys in any order).
    let mut params: Vec<(String, String)> = form_urlencoded::parse(&bytes).into_owned().collect();
    params.sort();
    let fingerprint = format!("{} {params:?}", parts.uri.path());
    if let Some((print, status, stored)) = s.replay(&key) {
        if print != fingerprint {
            return stripe_error(
                StatusCode::BAD_REQUEST,
                "idempotency_error",
                "idempotency_key_in_use",
                "Keys for idempotent requests can only be used with the same parameters they were first used with.",
            );
        }
        let mut response = (status, stored).into_response();
        response
            .headers_mut()
            .insert("content-type", HeaderValue::from_static("application/json"));
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
        return response;
    }
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let (parts, body) = response.into_parts();
    let bytes = to_bytes(body, 1 << 20).await.unwrap_or_default();
    if parts.status != StatusCode::INTERNAL_SERVER_ERROR {
        s.remember(key, fingerprint, parts.status, bytes.to_vec());
    }
    Response::from_parts(parts, Body::from(bytes))
}
