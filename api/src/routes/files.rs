//! Reading and writing files inside a sprite, binary-safe.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::ApiResult;
use crate::extract::{Files, Scoped};
use crate::state::AppState;

/// The routes of this module, with the file-size body limit.
pub fn router(max_file_bytes: u64) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(read, write))
        .layer(DefaultBodyLimit::max(max_file_bytes as usize))
}

#[derive(Deserialize, IntoParams)]
pub struct FilePath {
    /// Absolute path inside the sprite.
    path: String,
}

/// Reads a file.
#[utoipa::path(get, path = "/v1/sprites/{name}/files", tag = "files", security(("bearer" = [])),
    params(("name" = String, Path), FilePath),
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>), (status = 404, body = crate::error::Problem)))]
async fn read(
    State(state): State<AppState>,
    Scoped(caller, ..): Scoped<Files>,
    Path(name): Path<String>,
    Query(file): Query<FilePath>,
) -> ApiResult<impl IntoResponse> {
    let sprites = state.sprites()?;
    let sprite = sprites.get_to_run(&caller, &name).await?;
    let bytes = sprites.read_file(&sprite, &file.path).await?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes))
}

/// Writes a file (creating parent directories).
#[utoipa::path(put, path = "/v1/sprites/{name}/files", tag = "files", security(("bearer" = [])),
    params(("name" = String, Path), FilePath), request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 204), (status = 413, body = crate::error::Problem)))]
async fn write(
    State(state): State<AppState>,
    Scoped(caller, ..): Scoped<Files>,
    Path(name): Path<String>,
    Query(file): Query<FilePath>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let sprites = state.sprites()?;
    let sprite = sprites.get_to_run(&caller, &name).await?;
    sprites.write_file(&sprite, &file.path, &body).await?;
    Ok(StatusCode::NO_CONTENT)
}
