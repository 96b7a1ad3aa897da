//! Secrets over HTTP: add (or replace), list, delete. Values go in and never come out.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::egress::secrets::{NewSecret, SecretView};
use crate::error::ApiResult;
use crate::extract::{AppJson, Scoped, Secrets};
use crate::state::AppState;

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(add, list))
        .routes(routes!(delete))
}

#[derive(Serialize, ToSchema)]
pub struct SecretList {
    secrets: Vec<SecretView>,
}

/// Adds (or replaces) a secret. Sprites see `CORRAL_SECRET_<NAME>` holding a
/// placeholder; the way out puts the value in its place in requests to `hosts` only.
#[utoipa::path(post, path = "/v1/secrets", tag = "network", security(("bearer" = [])),
    request_body = NewSecret, responses((status = 201, body = SecretView), (status = 422, body = crate::error::Problem)))]
async fn add(
    State(state): State<AppState>,
    Scoped(caller, ..): Scoped<Secrets>,
    AppJson(new): AppJson<NewSecret>,
) -> ApiResult<(StatusCode, AppJson<SecretView>)> {
    let view = state.secrets()?.put(&caller.tenant_id, new).await?;
    Ok((StatusCode::CREATED, AppJson(view)))
}

/// The tenant's secrets: names, hosts and placeholders, never values.
#[utoipa::path(get, path = "/v1/secrets", tag = "network", security(("bearer" = [])),
    responses((status = 200, body = SecretList)))]
async fn list(
    State(state): State<AppState>,
    Scoped(caller, ..): Scoped<Secrets>,
) -> ApiResult<AppJson<SecretList>> {
    let secrets = state.secrets()?.list(&caller.tenant_id).await?;
    Ok(AppJson(SecretList { secrets }))
}

/// Deletes a secret.
#[utoipa::path(delete, path = "/v1/secrets/{name}", tag = "network", security(("bearer" = [])),
    params(("name" = String, Path)), responses((status = 204), (status = 404, body = crate::error::Problem)))]
async fn delete(
    State(state): State<AppState>,
    Scoped(caller, ..): Scoped<Secrets>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    state.secrets()?.delete(&caller.tenant_id, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
