//! Extractors: who is calling (token, tenant, scopes), JSON bodies in the app's error
//! format, and the client's address.

use std::marker::PhantomData;
use std::net::IpAddr;

use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::auth::{fingerprint, Scope, Scopes};
use crate::db::{self, tokens::TokenRow};
use crate::error::ApiError;
use crate::state::AppState;

/// An authenticated caller: a valid, unexpired, unrevoked token of one tenant.
#[derive(Clone, Debug)]
pub struct Auth {
    /// The tenant every query is limited to.
    pub tenant_id: String,
    /// The token's row.
    pub token: TokenRow,
    /// What the token may do.
    pub scopes: Scopes,
    /// Sprite names the token is limited to; `None` means all of the tenant's.
    pub sprites: Option<Vec<String>>,
}

impl Auth {
    /// Whether this is a session from signup or login.
    pub fn is_session(&self) -> bool {
        self.token.kind == "session"
    }

    /// Refuses when the token lacks `scope`.
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.scopes.has(scope) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "this token lacks the {:?} scope",
                scope.as_str()
            )))
        }
    }

    /// Whether the token may act on the sprite called `name`.
    pub fn may_use_sprite(&self, name: &str) -> bool {
        self.sprites
            .as_ref()
            .is_none_or(|names| names.iter().any(|n| n == name))
    }
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let unauthorized = |why: &str| ApiError::Unauthorized(why.to_string());
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| unauthorized("missing Authorization: Bearer <token> header"))?;
        let bearer = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| unauthorized("the Authorization header must be Bearer <token>"))?;
        let claims = state
            .keys
            .verify(bearer)
            .ok_or_else(|| unauthorized("the token is invalid or expired"))?;
        let cached = state.token_cache.get(&claims.jti);
        let token = match cached {
            Some(row) => Some(row),
            None => {
                let generation = state.token_cache.generation();
                let row = db::tokens::by_id(&state.pool, &claims.jti).await?;
                if let Some(row) = &row {
                    state.token_cache.put(generation, row.clone());
                }
                row
            }
        };
        let token = token
            .filter(|row| row.tenant_id == claims.sub && row.secret_sha256 == fingerprint(bearer))
            .ok_or_else(|| unauthorized("the token is invalid or expired"))?;
        if token.revoked_at.is_some() {
            return Err(unauthorized("the token has been revoked"));
        }
        if token.expires_at <= db::now_s() {
            return Err(unauthorized("the token is invalid or expired"));
        }
        state.limits.check_token(&token.id)?;
        let sprites = token
            .sprites
            .as_deref()
            .map(serde_json::from_str::<Vec<String>>)
            .transpose()
            .map_err(|e| ApiError::Internal(e.into()))?;
        Ok(Auth {
            tenant_id: token.tenant_id.clone(),
            scopes: Scopes::from_stored(&token.scopes),
            sprites,
            token,
        })
    }
}

/// A scope a route requires, as a type so the handler cannot forget it.
pub trait Required {
    /// The scope.
    const SCOPE: Scope;
}

macro_rules! scope_markers {
    ($($name:ident => $scope:expr),* $(,)?) => {$(
        #[doc = concat!("Requires the `", stringify!($name), "` scope.")]
        pub struct $name;
        impl Required for $name {
            const SCOPE: Scope = $scope;
        }
    )*};
}

scope_markers! {
    SpritesRead => Scope::SpritesRead,
    SpritesWrite => Scope::SpritesWrite,
    Exec => Scope::Exec,
    Files => Scope::Files,
    Checkpoints => Scope::Checkpoints,
    TokensCreate => Scope::TokensCreate,
    Billing => Scope::Billing,
    Budget => Scope::Budget,
}

/// An authenticated caller holding the scope `S`.
pub struct Scoped<S: Required>(pub Auth, pub PhantomData<S>);

impl<S: Required> FromRequestParts<AppState> for Scoped<S> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let auth = Auth::from_request_parts(parts, state).await?;
        auth.require(S::SCOPE)?;
        Ok(Scoped(auth, PhantomData))
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
