//! Ways into a sprite over HTTP: a signed link that opens its private URL in a browser,
//! and TCP tunnels to its ports over a WebSocket.

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Path, State};
use axum::response::Response;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::ApiResult;
use crate::extract::{AppJson, Scoped, SpritesHttp};
use crate::ingress::{access, tunnel};
use crate::state::AppState;

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(link))
        .routes(routes!(proxy))
}

/// A link that opens a private sprite's URL in a browser.
#[derive(Serialize, ToSchema)]
pub struct UrlLink {
    /// Open it within `expires_at`: it sets a cookie for this sprite's host alone (good
    /// for 12 hours) and redirects to the sprite's URL.
    pub url: String,
    /// When the link stops working (RFC 3339).
    pub expires_at: String,
}

/// Makes a short-lived link that opens the sprite's private URL (scope `sprites:http`).
#[utoipa::path(post, path = "/v1/sprites/{name}/url/link", tag = "sprites", security(("bearer" = [])),
    params(("name" = String, Path)),
    responses((status = 200, body = UrlLink), (status = 404, body = crate::error::Problem)))]
async fn link(
    State(state): State<AppState>,
    Scoped(caller, ..): Scoped<SpritesHttp>,
    Path(name): Path<String>,
) -> ApiResult<AppJson<UrlLink>> {
    let sprite = state.sprites()?.get(&caller, &name).await?;
    let pass = access::link_pass(&state.keys, sprite.id, sprite.tenant_id.as_str());
    let url = format!(
        "{}{}?pass={pass}",
        state.front.url_of(&sprite),
        access::LOGIN_PATH
    );
    let expires_at = crate::domain::rfc3339(crate::db::now_s() + access::LINK_TTL_S);
    Ok(AppJson(UrlLink { url, expires_at }))
}

/// A TCP tunnel to a port inside the sprite (scope `sprites:http`), waking it when idle.
/// The first text frame is `{"port": N}`; the answer is `{"connected": N}` or
/// `{"error": "…", "status": S}`; then binary frames carry the bytes both ways, and an
/// empty binary frame ends one direction (a half-close).
#[utoipa::path(get, path = "/v1/sprites/{name}/proxy", tag = "sprites", security(("bearer" = [])),
    params(("name" = String, Path)),
    responses((status = 101, description = "Switching to the WebSocket protocol"),
              (status = 402, body = crate::error::Problem), (status = 404, body = crate::error::Problem)))]
async fn proxy(
    State(state): State<AppState>,
    Scoped(caller, ..): Scoped<SpritesHttp>,
    Path(name): Path<String>,
    upgrade: WebSocketUpgrade,
) -> ApiResult<Response> {
    let sprites = state.sprites()?.clone();
    let sprite = sprites.get_to_run(&caller, &name).await?;
    // Refuse before upgrading, while the answer can still be problem+json.
    crate::sprites::ports::reachable(&sprite)?;
    Ok(upgrade
        .protocols(["corral"])
        .on_upgrade(move |socket| tunnel::run(state, sprite, socket)))
}
