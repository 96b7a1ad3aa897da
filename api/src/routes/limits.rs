//! Scaling limits: read them, lower them.

use axum::extract::State;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::ApiResult;
use crate::extract::{AppJson, Budget, Scoped};
use crate::sprites::limits::{self, Limits, LimitsUpdate};
use crate::state::AppState;

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_limits, put_limits))
}

/// The limits in force.
#[utoipa::path(get, path = "/v1/limits", tag = "limits", security(("bearer" = [])), responses((status = 200, body = Limits)))]
async fn get_limits(
    State(state): State<AppState>,
    Scoped(caller, ..): Scoped<Budget>,
) -> ApiResult<AppJson<Limits>> {
    Ok(AppJson(
        limits::effective(&state.pool, &state.config, &caller.tenant_id).await?,
    ))
}

/// Lowers limits (never above the operator's maximums: 403 `limit_exceeded`).
#[utoipa::path(put, path = "/v1/limits", tag = "limits", security(("bearer" = [])), request_body = LimitsUpdate,
    responses((status = 200, body = Limits), (status = 403, body = crate::error::Problem)))]
async fn put_limits(
    State(state): State<AppState>,
    Scoped(caller, ..): Scoped<Budget>,
    AppJson(change): AppJson<LimitsUpdate>,
) -> ApiResult<AppJson<Limits>> {
    Ok(AppJson(
        limits::update(&state.pool, &state.config, &caller.tenant_id, change).await?,
    ))
}
