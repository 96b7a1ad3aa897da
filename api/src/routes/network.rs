//! Network policy and the decision log over HTTP: the tenant's default policy, each
//! sprite's own, and what a sprite's connections were allowed or refused.

use axum::extract::{Path, State};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::egress::log::EntryView;
use crate::egress::{Policy, PolicyView};
use crate::error::ApiResult;
use crate::extract::{AppJson, Scoped, SpritesRead, SpritesWrite};
use crate::state::AppState;

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_tenant, put_tenant))
        .routes(routes!(get_sprite, put_sprite))
        .routes(routes!(log))
}

/// The tenant's default network policy: consulted when none of a sprite's rules match.
#[utoipa::path(get, path = "/v1/policy/network", tag = "network", security(("bearer" = [])),
    responses((status = 200, body = PolicyView)))]
async fn get_tenant(
    State(state): State<AppState>,
    Scoped(caller, ..): Scoped<SpritesRead>,
) -> ApiResult<AppJson<PolicyView>> {
    Ok(AppJson(
        state.egress()?.policy(&caller.tenant_id, None).await?,
    ))
}

/// Replaces the tenant's default policy; open connections it no longer allows are cut.
#[utoipa::path(put, path = "/v1/policy/network", tag = "network", security(("bearer" = [])),
    request_body = Policy, responses((status = 200, body = PolicyView), (status = 422, body = crate::error::Problem)))]
async fn put_tenant(
    State(state): State<AppState>,
    Scoped(caller, ..): Scoped<SpritesWrite>,
    AppJson(policy): AppJson<Policy>,
) -> ApiResult<AppJson<PolicyView>> {
    let view = state
        .egress()?
        .set_policy(&caller.tenant_id, None, policy.rules)
        .await?;
    Ok(AppJson(view))
}

/// A sprite's network policy, with the tenant's rules and the operator's default under it.
#[utoipa::path(get, path = "/v1/sprites/{name}/policy/network", tag = "network", security(("bearer" = [])),
    params(("name" = String, Path)), responses((status = 200, body = PolicyView), (status = 404, body = crate::error::Problem)))]
async fn get_sprite(
    State(state): State<AppState>,
    Scoped(caller, ..): Scoped<SpritesRead>,
    Path(name): Path<String>,
) -> ApiResult<AppJson<PolicyView>> {
    let sprite = state.sprites()?.get(&caller, &name).await?;
    let view = state
        .egress()?
        .policy(&caller.tenant_id, Some(sprite.id))
        .await?;
    Ok(AppJson(view))
}

/// Replaces a sprite's network policy; its open connections the new rules no longer
/// allow are cut at once.
#[utoipa::path(put, path = "/v1/sprites/{name}/policy/network", tag = "network", security(("bearer" = [])),
    params(("name" = String, Path)), request_body = Policy,
    responses((status = 200, body = PolicyView), (status = 422, body = crate::error::Problem)))]
async fn put_sprite(
    State(state): State<AppState>,
    Scoped(caller, ..): Scoped<SpritesWrite>,
    Path(name): Path<String>,
    AppJson(policy): AppJson<Policy>,
) -> ApiResult<AppJson<PolicyView>> {
    let sprite = state.sprites()?.get(&caller, &name).await?;
    let view = state
        .egress()?
        .set_policy(&caller.tenant_id, Some(sprite.id), policy.rules)
        .await?;
    Ok(AppJson(view))
}

/// A sprite's recent connections, newest first.
#[derive(Serialize, ToSchema)]
pub struct NetworkLog {
    entries: Vec<EntryView>,
}

/// What the sprite's connections were: host, port, allowed or refused and by which
/// rule, bytes each way (the last 200, kept in the server's memory).
#[utoipa::path(get, path = "/v1/sprites/{name}/network/log", tag = "network", security(("bearer" = [])),
    params(("name" = String, Path)), responses((status = 200, body = NetworkLog), (status = 404, body = crate::error::Problem)))]
async fn log(
    State(state): State<AppState>,
    Scoped(caller, ..): Scoped<SpritesRead>,
    Path(name): Path<String>,
) -> ApiResult<AppJson<NetworkLog>> {
    let sprite = state.sprites()?.get(&caller, &name).await?;
    Ok(AppJson(NetworkLog {
        entries: state.egress()?.log_of(sprite.id),
    }))
}
