//! Liveness, readiness, Prometheus metrics and the OpenAPI document.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::error::{problem_response, ApiError};
use crate::metrics::gauge;
use crate::state::AppState;

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<AppState>) -> Response {
    if let Err(error) = crate::db::ping(&state.pool).await {
        tracing::warn!(%error, "database not ready");
        return ApiError::Unavailable("the database is not usable".into()).into_response();
    }
    if let Some(why) = state.driver_problem() {
        return problem_response(StatusCode::SERVICE_UNAVAILABLE, "unavailable", why);
    }
    "ready\n".into_response()
}

async fn metrics(State(state): State<AppState>) -> Response {
    let mut out = String::new();
    state.metrics.render_requests(&mut out);
    state.front.metrics.render(&mut out);
    let states = crate::db::sprites::count_by_state(&state.pool)
        .await
        .unwrap_or_default();
    let labels: Vec<(String, u64)> = states
        .into_iter()
        .map(|(s, n)| (format!("state=\"{s}\""), n as u64))
        .collect();
    let samples: Vec<(&str, u64)> = labels.iter().map(|(l, n)| (l.as_str(), *n)).collect();
    gauge(&mut out, "corral_sprites", "Sprites by state.", &samples);
    if let Some(sprites) = &state.sprites {
        sprites.warm_pool().render(&mut out);
    }
    state.render_service_metrics(&mut out);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
