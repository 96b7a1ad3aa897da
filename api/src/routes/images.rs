//! Images over HTTP: list, save a sprite as one, delete; fork a sprite; export one as
//! an OCI image archive. These run as long as their work takes (outside the request
//! timeout): saving, forking and exporting copy a sprite's files.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::ApiResult;
use crate::extract::{AppJson, Files, Scoped, SpritesRead, SpritesWrite};
use crate::sprites::images::{DeletedImage, ImageList, ImageView};
use crate::sprites::to_completion;
use crate::sprites::view::SpriteView;
use crate::state::AppState;

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(delete))
        .routes(routes!(save))
        .routes(routes!(fork))
        .routes(routes!(export))
}

/// A name for what is being made.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewName {
    name: String,
}

/// The images you may create sprites from: the operator's and your own.
#[utoipa::path(get, path = "/v1/images", tag = "images", security(("bearer" = [])),
    responses((status = 200, body = ImageList)))]
async fn list(
    State(state): State<AppState>,
    Scoped(caller, ..): Scoped<SpritesRead>,
) -> ApiResult<AppJson<ImageList>> {
    Ok(AppJson(state.sprites()?.images(&caller.tenant_id).await?))
}

/// Deletes one of your images. Sprites made from it keep running; its files (still
/// billed) go when the last of them is deleted (`state: deleting` until then).
#[utoipa::path(delete, path = "/v1/images/{name}", tag = "images", security(("bearer" = [])),
    params(("name" = String, Path)),
    responses((status = 200, body = DeletedImage), (status = 403, body = crate::error::Problem),
              (status = 404, body = crate::error::Problem)))]
async fn delete(
    State(state): State<AppState>,
    Scoped(caller, ..): Scoped<SpritesWrite>,
    Path(name): Path<String>,
) -> ApiResult<AppJson<DeletedImage>> {
    let sprites = state.sprites()?.clone();
    let deleted =
        to_completion(async move { sprites.delete_image(&caller.tenant_id, &name).await }).await?;
    Ok(AppJson(deleted))
}

/// Saves a sprite's files as an image of your own (`POST /v1/sprites {image}` uses
/// it). The sprite is frozen while its files are copied, then left as it was.
#[utoipa::path(post, path = "/v1/sprites/{name}/images", tag = "images", security(("bearer" = [])),
    params(("name" = String, Path)), request_body = NewName,
    responses((status = 201, body = ImageView), (status = 409, body = crate::error::Problem),
              (status = 422, body = crate::error::Problem)))]
async fn save(
    State(state): State<AppState>,
    Scoped(caller, ..): Scoped<SpritesWrite>,
    Path(name): Path<String>,
    AppJson(image): AppJson<NewName>,
) -> ApiResult<(StatusCode, AppJson<ImageView>)> {
    let sprites = state.sprites()?.clone();
    let sprite = sprites.get_to_run(&caller, &name).await?;
    let saved =
        to_completion(async move { sprites.save_image(&caller, &sprite, &image.name).await })
            .await?;
    Ok((StatusCode::CREATED, AppJson(saved)))
}

/// Makes a new sprite with the same disk and memory as this one: its processes run on
/// in both. Admitted and charged like a create (402/403 when it does not fit).
#[utoipa::path(post, path = "/v1/sprites/{name}/fork", tag = "sprites", security(("bearer" = [])),
    params(("name" = String, Path)), request_body = NewName,
    responses((status = 201, body = SpriteView), (status = 402, body = crate::error::Problem),
              (status = 403, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
async fn fork(
    State(state): State<AppState>,
    Scoped(caller, ..): Scoped<SpritesWrite>,
    Path(name): Path<String>,
    AppJson(fork): AppJson<NewName>,
) -> ApiResult<(StatusCode, AppJson<SpriteView>)> {
    let sprites = state.sprites()?.clone();
    let source = sprites.get_to_run(&caller, &name).await?;
    let forked =
        to_completion(async move { sprites.fork(&caller, &source, &fork.name).await }).await?;
    Ok((
        StatusCode::CREATED,
        AppJson(state.sprites()?.view(forked).await?),
    ))
}

/// The sprite's whole filesystem as an OCI image archive (an image layout in a tar:
/// `skopeo copy oci-archive:FILE …`, `podman load -i FILE`), streamed. A running sprite
/// is frozen while its files are read.
#[utoipa::path(get, path = "/v1/sprites/{name}/export", tag = "images", security(("bearer" = [])),
    params(("name" = String, Path)),
    responses((status = 200, content_type = "application/x-tar", body = Vec<u8>),
              (status = 404, body = crate::error::Problem)))]
async fn export(
    State(state): State<AppState>,
    Scoped(caller, ..): Scoped<Files>,
    Path(name): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let sprites = state.sprites()?.clone();
    let sprite = sprites.get_to_run(&caller, &name).await?;
    let file = format!("attachment; filename=\"{}.oci.tar\"", sprite.name);
    let (length, stream) = to_completion(async move { sprites.export(&sprite).await }).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-tar".to_string()),
            (header::CONTENT_LENGTH, length.to_string()),
            (header::CONTENT_DISPOSITION, file),
        ],
        Body::from_stream(stream),
    ))
}
