//! Checkpoints over HTTP: create, list, restore, delete.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiError, ApiResult};
use crate::extract::{AppJson, Checkpoints, Scoped};
use crate::sprites::to_completion;
use crate::sprites::view::{CheckpointView, SpriteView};
use crate::state::AppState;

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(restore))
        .routes(routes!(delete))
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct CreateCheckpoint {
    comment: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CheckpointList {
    checkpoints: Vec<CheckpointView>,
}

fn checkpoint_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::not_found(format!("checkpoint {raw:?}")))
}

/// Saves the sprite's memory, processes and disk.
#[utoipa::path(post, path = "/v1/sprites/{name}/checkpoints", tag = "checkpoints", security(("bearer" = [])),
    params(("name" = String, Path)), request_body = CreateCheckpoint,
    responses((status = 201, body = CheckpointView), (status = 403, body = crate::error::Problem)))]
async fn create(
    State(state): State<AppState>,
    Scoped(caller, ..): Scoped<Checkpoints>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<(StatusCode, AppJson<CheckpointView>)> {
    // The body is optional: no body means no comment.
    let request: CreateCheckpoint = if body.iter().all(u8::is_ascii_whitespace) {
        CreateCheckpoint::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::Validation(format!("invalid JSON body: {e}")))?
    };
    let comment = request.comment.unwrap_or_default();
    let sprites = state.sprites()?.clone();
    let sprite = sprites.get_to_run(&caller, &name).await?;
    let checkpoint =
        to_completion(async move { sprites.checkpoint(&sprite, &comment).await }).await?;
    Ok((StatusCode::CREATED, AppJson(checkpoint.into())))
}

/// The sprite's checkpoints, oldest first.
#[utoipa::path(get, path = "/v1/sprites/{name}/checkpoints", tag = "checkpoints", security(("bearer" = [])),
    params(("name" = String, Path)), responses((status = 200, body = CheckpointList)))]
async fn list(
    State(state): State<AppState>,
    Scoped(caller, ..): Scoped<Checkpoints>,
    Path(name): Path<String>,
) -> ApiResult<AppJson<CheckpointList>> {
    let sprites = state.sprites()?;
    let sprite = sprites.get(&caller, &name).await?;
    let checkpoints = sprites
        .checkpoints(&sprite)
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    Ok(AppJson(CheckpointList { checkpoints }))
}

/// Puts the sprite back exactly as it was at the checkpoint.
#[utoipa::path(post, path = "/v1/sprites/{name}/checkpoints/{id}/restore", tag = "checkpoints", security(("bearer" = [])),
    params(("name" = String, Path), ("id" = String, Path)), responses((status = 200, body = SpriteView)))]
async fn restore(
    State(state): State<AppState>,
    Scoped(caller, ..): Scoped<Checkpoints>,
    Path((name, id)): Path<(String, String)>,
) -> ApiResult<AppJson<SpriteView>> {
    let sprites = state.sprites()?.clone();
    let sprite = sprites.get_to_run(&caller, &name).await?;
    let checkpoint = checkpoint_id(&id)?;
    let sprite = to_completion(async move { sprites.restore(&sprite, checkpoint).await }).await?;
    Ok(AppJson(state.sprites()?.view(sprite).await?))
}

/// Removes a checkpoint.
#[utoipa::path(delete, path = "/v1/sprites/{name}/checkpoints/{id}", tag = "checkpoints", security(("bearer" = [])),
    params(("name" = String, Path), ("id" = String, Path)), responses((status = 204)))]
async fn delete(
    State(state): State<AppState>,
    Scoped(caller, ..): Scoped<Checkpoints>,
    Path((name, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let sprites = state.sprites()?.clone();
    let sprite = sprites.get(&caller, &name).await?;
    let checkpoint = checkpoint_id(&id)?;
    to_completion(async move { sprites.delete_checkpoint(&sprite, checkpoint).await }).await?;
    Ok(StatusCode::NO_CONTENT)
}
