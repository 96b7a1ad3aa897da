//! Fault injection: Stripe's routes may answer 500 or 429 without acting, act and then
//! answer 500 (the answer is lost), answer only after a delay (a timeout), or decline
//! the card of a payment (the PaymentIntent fails as Stripe's would, with its event).

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::{stripe_error, Shared};

/// What a fault does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// 500 `api_error`, nothing done.
    Error500,
    /// 429 `rate_limit`, nothing done.
    RateLimit,
    /// The request is carried out, then answered 500: the client cannot know.
    LostAnswer,
    /// The answer comes after `delay_ms` (the request is carried out).
    Timeout,
    /// A payment's card is declined: the PaymentIntent is created failed, the 402
    /// `card_error` answered and `payment_intent.payment_failed` emitted.
    CardDeclined,
}

/// Marks a request whose card the stand-in declines (read by the payment routes).
#[derive(Clone, Copy, Debug)]
pub struct Declined;

/// A fault on requests whose path starts with `path_prefix`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Fault {
    /// Which requests (e.g. `/v1/billing/meter_events`); empty: all.
    #[serde(default)]
    pub path_prefix: String,
    /// What happens.
    pub kind: FaultKind,
    /// Hit every n-th matching request (1: each; 2: every other one).
    #[serde(default = "one")]
    pub every: u64,
    /// Stop after this many hits (`None`: until cleared).
    #[serde(default)]
    pub count: Option<u64>,
    /// For `timeout`.
    #[serde(default)]
    pub delay_ms: u64,
    /// Matching requests seen so far.
    #[serde(default)]
    pub seen: u64,
    /// Hits so far.
    #[serde(default)]
    pub hits: u64,
}

fn one() -> u64 {
    1
}

/// The fault (if any) this request meets, counted.
fn meet(s: &Shared, path: &str) -> Option<Fault> {
    let mut faults = s.faults.lock().expect("faults");
    for f in faults.iter_mut() {
        if !path.starts_with(&f.path_prefix) || f.count.is_some_and(|c| f.hits >= c) {
            continue;
        }
        f.seen += 1;
        if f.seen % f.every.max(1) == 0 {
            f.hits += 1;
            return Some(f.clone());
        }
    }
    None
}

/// The middleware.
pub async fn inject(State(s): State<Shared>, mut request: Request, next: Next) -> Response {
    s.requests.fetch_add(1, Ordering::Relaxed);
    let Some(fault) = meet(&s, request.uri().path()) else {
        return next.run(request).await;
    };
    match fault.kind {
        FaultKind::Error500 => stripe_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "api_error",
            "api_error",
            "An unknown error occurred (injected by the stand-in).",
        ),
        FaultKind::RateLimit => stripe_error(
            StatusCode::TOO_MANY_REQUESTS,
            "invalid_request_error",
            "rate_limit",
            "Too many requests hit the API too quickly (injected by the stand-in).",
        ),
        FaultKind::LostAnswer => {
            let _ = next.run(request).await;
            stripe_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "api_error",
                "api_error",
                "The request was carried out but its answer was lost (injected).",
            )
        }
        FaultKind::Timeout => {
            tokio::time::sleep(Duration::from_millis(fault.delay_ms)).await;
            next.run(request).await.into_response()
        }
        FaultKind::CardDeclined => {
            request.extensions_mut().insert(Declined);
            next.run(request).await
        }
    }
}
