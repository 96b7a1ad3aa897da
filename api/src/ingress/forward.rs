//! One request to a sprite's URL: find the sprite, check who may open it, wake it if
//! idle, and pass the request to its port over HTTP/1.1 (streaming both bodies, keeping
//! the connection for the next request, carrying a WebSocket upgrade through).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use futures_util::StreamExt;
use hyper_util::rt::TokioIo;

use super::{access, pages, pool::Sender};
use crate::caller::Permission;
use crate::db::{self, sprites::SpriteRow};
use crate::error::ApiError;
use crate::listener::Peer;
use crate::names::{SpriteState, UrlAuth};
use crate::sprites::ports::Holding;
use crate::state::AppState;

/// Serves a request whose host names sprite `name` of the tenant with `handle`.
pub async fn serve(state: AppState, name: String, handle: String, request: Request) -> Response {
    state.front.metrics.requests.fetch_add(1, Ordering::Relaxed);
    match forward(&state, &name, &handle, request).await {
        Ok(response) => response,
        Err(error) => pages::error_page(error),
    }
}

/// The live sprite a host names, or 404.
pub async fn find(state: &AppState, name: &str, handle: &str) -> Result<SpriteRow, ApiError> {
    db::sprites::live_named(&state.pool, name)
        .await?
        .into_iter()
        .find(|s| super::host::handle(&s.tenant_id) == handle)
        .ok_or_else(|| ApiError::NotFound(format!("there is no sprite at this address ({name})")))
}

async fn forward(
    state: &AppState,
    name: &str,
    handle: &str,
    mut request: Request,
) -> Result<Response, ApiError> {
    let sprites = state.sprites()?.clone();
    let sprite = find(state, name, handle).await?;
    if request.uri().path() == access::LOGIN_PATH {
        return Ok(login(state, &sprite, &request));
    }
    let used_bearer = match sprite.url_auth {
        UrlAuth::Public => false,
        UrlAuth::Sprite => authorize(state, &sprite, request.headers()).await?,
    };
    prepare(state, &mut request, used_bearer);
    let port = u16::try_from(sprite.http_port).unwrap_or(8080);
    let pooled = (sprite.state == SpriteState::Running)
        .then(|| state.front.pool.take(sprite.id, port))
        .flatten();
    let (mut sender, hold) = match pooled {
        Some(sender) => (sender, sprites.hold(sprite.id)),
        None => connect(state, &sprite, port, "url").await?,
    };
    let upgrading = request.headers().contains_key(header::UPGRADE);
    let client_side = upgrading.then(|| hyper::upgrade::on(&mut request));
    let mut response = sender.send_request(request).await.map_err(|e| {
        ApiError::BadGateway(format!(
            "sprite {:?} closed the connection on port {port} before answering ({e})",
            sprite.name
        ))
    })?;
    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        if let Some(client_side) = client_side {
            let sprite_side = hyper::upgrade::on(&mut response);
            tokio::spawn(bridge(client_side, sprite_side, hold));
        }
        return Ok(response.map(Body::new));
    }
    state.front.pool.put(sprite.id, port, sender);
    // The sprite stays held until the response body is read to its end (or dropped).
    Ok(response.map(|body| held(Body::new(body), hold)))
}

/// Opens a new connection to the sprite's port (waking it), metered by the way out's
/// gateway, and starts HTTP/1.1 on it.
async fn connect(
    state: &AppState,
    sprite: &SpriteRow,
    port: u16,
    what: &str,
) -> Result<(Sender, Holding), ApiError> {
    let sprites = state.sprites()?;
    let started = Instant::now();
    let opened = sprites
        .open_port(sprite, port, state.front.wake_wait)
        .await?;
    if opened.woke {
        state.front.metrics.wake(started.elapsed());
    }
    let stream = match &state.egress {
        Some(gateway) => {
            let watched = gateway.inward(sprite.id, sprite.network_mbps, what, port, opened.stream);
            Box::new(watched) as Box<dyn vmm_driver::EgressStream>
        }
        None => opened.stream,
    };
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| ApiError::BadGateway(format!("could not speak HTTP to the sprite: {e}")))?;
    tokio::spawn(async move {
        let _ = connection.with_upgrades().await;
    });
    Ok((sender, opened.hold))
}

/// Whether the caller may open the private sprite; `true` when it did so with a
/// Corral token (which then must not reach the sprite).
async fn authorize(
    state: &AppState,
    sprite: &SpriteRow,
    headers: &axum::http::HeaderMap,
) -> Result<bool, ApiError> {
    if access::has_cookie(&state.keys, headers, sprite.id, sprite.tenant_id.as_str()) {
        return Ok(false);
    }
    let private = || {
        ApiError::Unauthorized(format!(
            "sprite {:?} is private: open it with a link (`corral url {} --link`, or the web \
             page), or send a token with the sprites:http scope as Authorization: Bearer",
            sprite.name, sprite.name
        ))
    };
    let bearer = access::bearer(headers).ok_or_else(private)?;
    let caller = state.tokens().authenticate(bearer).await?;
    // Another tenant's token is no credential here at all.
    if caller.tenant_id != sprite.tenant_id {
        return Err(private());
    }
    caller.require(Permission::SpritesHttp)?;
    if !caller.may_use_sprite(&sprite.name) {
        return Err(ApiError::Forbidden(format!(
            "this token cannot use sprite {:?}",
            sprite.name
        )));
    }
    state.rate_limits.check_token(&caller.token.id)?;
    Ok(true)
}

/// Turns a link into the sprite's cookie and sends the browser to the clean URL.
fn login(state: &AppState, sprite: &SpriteRow, request: &Request) -> Response {
    let pass = request.uri().query().and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "pass")
            .map(|(_, v)| v.into_owned())
    });
    let secure = state.front.scheme == "https";
    let cookie = pass.and_then(|pass| {
        access::cookie_for_link(
            &state.keys,
            &pass,
            sprite.id,
            sprite.tenant_id.as_str(),
            secure,
        )
    });
    match cookie {
        Some(cookie) => {
            let mut response = Redirect::to("/").into_response();
            response.headers_mut().insert(header::SET_COOKIE, cookie);
            response
        }
        None => pages::page(
            StatusCode::UNAUTHORIZED,
            "this link is not valid for this sprite, or it has expired (links last two \
             minutes): make a new one",
        ),
    }
}

/// Takes Corral's credentials off and says where the request came from.
fn prepare(state: &AppState, request: &mut Request, used_bearer: bool) {
    let peer = request
        .extensions()
        .get::<ConnectInfo<Peer>>()
        .map(|c| c.0 .0)
        .or_else(|| {
            request
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0)
        });
    let host = request.headers().get(header::HOST).cloned();
    let headers = request.headers_mut();
    access::strip(headers, used_bearer);
    if let Some(peer) = peer {
        let forwarded = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
            Some(earlier) => format!("{earlier}, {}", peer.ip()),
            None => peer.ip().to_string(),
        };
        if let Ok(value) = HeaderValue::from_str(&forwarded) {
            headers.insert("x-forwarded-for", value);
        }
    }
    if let Ok(proto) = HeaderValue::from_str(&state.front.scheme) {
        headers.insert("x-forwarded-proto", proto);
    }
    if let Some(host) = host {
        headers.insert("x-forwarded-host", host);
    }
    // The sprite gets the request as a server gets it: path and query only.
    if let Some(path) = request.uri().path_and_query().cloned() {
        *request.uri_mut() = path.as_str().parse().unwrap_or_default();
    }
}

/// A body that keeps the sprite held until it is read to its end or dropped.
fn held(body: Body, hold: Holding) -> Body {
    let stream = body.into_data_stream().map(move |chunk| {
        let _ = &hold;
        chunk
    });
    Body::from_stream(stream)
}

/// Carries an upgraded connection (a WebSocket) both ways; the sprite stays held while
/// it is open.
async fn bridge(
    client: hyper::upgrade::OnUpgrade,
    sprite: hyper::upgrade::OnUpgrade,
    hold: Holding,
) {
    let (client, sprite) = match tokio::try_join!(client, sprite) {
        Ok(both) => both,
        Err(error) => {
            tracing::debug!(%error, "an upgrade through a sprite's URL failed");
            return;
        }
    };
    let (mut client, mut sprite) = (TokioIo::new(client), TokioIo::new(sprite));
    let _ = tokio::io::copy_bidirectional(&mut client, &mut sprite).await;
    drop(hold);
}
