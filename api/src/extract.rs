//! Extractors: who is calling (a [`Caller`] from the bearer token), JSON bodies in the
//! app's error format, and the client's address.

use std::marker::PhantomData;
use std::net::IpAddr;

use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::caller::Caller;
use crate::caller::Permission;
use crate::error::ApiError;
use crate::state::AppState;

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let unauthorized = |why: &str| ApiError::Unauthorized(why.to_string());
        let bearer = match parts.headers.get(header::AUTHORIZATION) {
            Some(header) => header
                .to_str()
                .ok()
                .and_then(|h| h.strip_prefix("Bearer "))
                .map(str::trim)
                .ok_or_else(|| unauthorized("the Authorization header must be Bearer <token>"))?,
            None => websocket_bearer(parts)
                .ok_or_else(|| unauthorized("missing Authorization: Bearer <token> header"))?,
        };
        let caller = state.tokens().authenticate(bearer).await?;
        state.rate_limits.check_token(&caller.token.id)?;
        Ok(caller)
    }
}

/// The token a browser's WebSocket carries in its protocol list (`corral.bearer.<token>`
/// beside `corral`): browsers cannot set an Authorization header on a WebSocket, and a
/// token in the URL would land in logs.
fn websocket_bearer(parts: &Parts) -> Option<&str> {
    let upgrade = parts.headers.get(header::UPGRADE)?.to_str().ok()?;
    if !upgrade.eq_ignore_ascii_case("websocket") {
        return None;
    }
    parts
        .headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|p| p.trim().strip_prefix(WS_BEARER_PREFIX))
}

/// The prefix of the WebSocket protocol that carries a bearer token.
pub const WS_BEARER_PREFIX: &str = "corral.bearer.";

/// A permission a route requires, as a type so the handler cannot forget it.
pub trait Required {
    /// The permission.
    const PERMISSION: Permission;
}

macro_rules! permission_markers {
    ($($name:ident => $permission:expr),* $(,)?) => {$(
        #[doc = concat!("Requires the `", stringify!($name), "` scope.")]
        pub struct $name;
        impl Required for $name {
            const PERMISSION: Permission = $permission;
        }
    )*};
}

permission_markers! {
    SpritesRead => Permission::SpritesRead,
    SpritesWrite => Permission::SpritesWrite,
    Exec => Permission::Exec,
    Files => Permission::Files,
    Checkpoints => Permission::Checkpoints,
    TokensCreate => Permission::TokensCreate,
    Billing => Permission::Billing,
    Budget => Permission::Budget,
    Secrets => Permission::Secrets,
    SpritesHttp => Permission::SpritesHttp,
    Schedules => Permission::Schedules,
}

/// An authenticated caller holding the permission `S`.
pub struct Scoped<S: Required>(pub Caller, pub PhantomData<S>);

impl<S: Required> FromRequestParts<AppState> for Scoped<S> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        caller.require(S::PERMISSION)?;
        Ok(Scoped(caller, PhantomData))
    }
}

/// A JSON body whose rejections speak problem+json.
pub struct AppJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for AppJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(AppJson(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::PayloadTooLarge("the request body is too large".into());
    }
    ApiError::Validation(rejection.body_text())
}

impl<T: Serialize> IntoResponse for AppJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// The client's address, for per-client limits on signup and login.
pub struct ClientIp(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<crate::listener::Peer>>()
            .map(|info| info.0 .0.ip())
            .unwrap_or(IpAddr::from([0, 0, 0, 0]));
        Ok(ClientIp(ip))
    }
}
