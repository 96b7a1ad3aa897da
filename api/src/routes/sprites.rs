//! Sprite lifecycle over HTTP: create, list, get, delete, pause, resume.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::ApiResult;
use crate::extract::{AppJson, Scoped, SpritesRead, SpritesWrite};
use crate::names::PauseReason;
use crate::sprites::lifecycle::CreateSprite;
use crate::sprites::settings::UpdateSprite;
use crate::sprites::to_completion;
use crate::sprites::view::SpriteView;
use crate::state::AppState;

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(get_one, update, delete))
        .routes(routes!(pause))
        .routes(routes!(resume))
}

#[derive(Serialize, ToSchema)]
pub struct SpriteList {
    sprites: Vec<SpriteView>,
}

/// Creates and starts a sprite. A repeated `Idempotency-Key` answers with the first result.
#[utoipa::path(post, path = "/v1/sprites", request_body = CreateSprite, tag = "sprites", security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retried create safe")),
    responses((status = 201, body = SpriteView), (status = 402, body = crate::error::Problem),
              (status = 403, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
async fn create(
    State(state): State<AppState>,
    Scoped(caller, ..): Scoped<SpritesWrite>,
    headers: HeaderMap,
    AppJson(request): AppJson<CreateSprite>,
) -> ApiResult<(StatusCode, AppJson<SpriteView>)> {
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let sprites = state.sprites()?.clone();
    let (sprite, created) =
        to_completion(async move { sprites.create(&caller, request, key.as_deref()).await })
            .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, AppJson(state.sprites()?.view(sprite).await?)))
}

/// The caller's sprites.
#[utoipa::path(get, path = "/v1/sprites", tag = "sprites", security(("bearer" = [])),
    responses((status = 200, body = SpriteList)))]
async fn list(
    State(state): State<AppState>,
    Scoped(caller, ..): Scoped<SpritesRead>,
) -> ApiResult<AppJson<SpriteList>> {
    let rows = state.sprites()?.list(&caller).await?;
    let sprites = state.sprites()?.views(rows);
    Ok(AppJson(SpriteList { sprites }))
}

/// One sprite.
#[utoipa::path(get, path = "/v1/sprites/{name}", tag = "sprites", security(("bearer" = [])),
    params(("name" = String, Path)), responses((status = 200, body = SpriteView), (status = 404, body = crate::error::Problem)))]
async fn get_one(
    State(state): State<AppState>,
    Scoped(caller, ..): Scoped<SpritesRead>,
    Path(name): Path<String>,
) -> ApiResult<AppJson<SpriteView>> {
    let sprite = state.sprites()?.get(&caller, &name).await?;
    Ok(AppJson(state.sprites()?.view(sprite).await?))
}

/// Changes a sprite's settings: `http_port`, `url_auth`, `idle_timeout_s`.
#[utoipa::path(patch, path = "/v1/sprites/{name}", request_body = UpdateSprite, tag = "sprites", security(("bearer" = [])),
    params(("name" = String, Path)), responses((status = 200, body = SpriteView), (status = 404, body = crate::error::Problem),
              (status = 422, body = crate::error::Problem)))]
async fn update(
    State(state): State<AppState>,
    Scoped(caller, ..): Scoped<SpritesWrite>,
    Path(name): Path<String>,
    AppJson(request): AppJson<UpdateSprite>,
) -> ApiResult<AppJson<SpriteView>> {
    let sprite = state.sprites()?.update(&caller, &name, request).await?;
    Ok(AppJson(state.sprites()?.view(sprite).await?))
}

/// Deletes a sprite with its disk and checkpoints.
#[utoipa::path(delete, path = "/v1/sprites/{name}", tag = "sprites", security(("bearer" = [])),
    params(("name" = String, Path)), responses((status = 204), (status = 404, body = crate::error::Problem)))]
async fn delete(
    State(state): State<AppState>,
    Scoped(caller, ..): Scoped<SpritesWrite>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    let sprites = state.sprites()?.clone();
    let sprite = sprites.get(&caller, &name).await?;
    to_completion(async move { sprites.delete(&sprite).await }).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Pauses a sprite (`pause_reason: user`).
#[utoipa::path(post, path = "/v1/sprites/{name}/pause", tag = "sprites", security(("bearer" = [])),
    params(("name" = String, Path)), responses((status = 200, body = SpriteView)))]
async fn pause(
    State(state): State<AppState>,
    Scoped(caller, ..): Scoped<SpritesWrite>,
    Path(name): Path<String>,
) -> ApiResult<AppJson<SpriteView>> {
    let sprites = state.sprites()?.clone();
    let sprite = sprites.get(&caller, &name).await?;
    let sprite =
        to_completion(async move { sprites.pause(&sprite, PauseReason::User).await }).await?;
    Ok(AppJson(state.sprites()?.view(sprite).await?))
}

/// Resumes a paused sprite, within limits and budget.
#[utoipa::path(post, path = "/v1/sprites/{name}/resume", tag = "sprites", security(("bearer" = [])),
    params(("name" = String, Path)), responses((status = 200, body = SpriteView), (status = 402, body = crate::error::Problem),
              (status = 403, body = crate::error::Problem)))]
async fn resume(
    State(state): State<AppState>,
    Scoped(caller, ..): Scoped<SpritesWrite>,
    Path(name): Path<String>,
) -> ApiResult<AppJson<SpriteView>> {
    let sprites = state.sprites()?.clone();
    let sprite = sprites.get_to_run(&caller, &name).await?;
    let sprite = to_completion(async move { sprites.resume(&sprite, "resume").await }).await?;
    Ok(AppJson(state.sprites()?.view(sprite).await?))
}
