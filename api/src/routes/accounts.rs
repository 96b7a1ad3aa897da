//! Signup, login and `/v1/me`.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::caller::Caller;
use crate::domain;
use crate::error::ApiResult;
use crate::extract::{AppJson, ClientIp};
use crate::routes::tokens::TokenView;
use crate::state::AppState;

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(signup))
        .routes(routes!(login))
        .routes(routes!(me))
        .routes(routes!(logout))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignupRequest {
    email: String,
    password: String,
    org: String,
}

#[derive(Serialize, ToSchema)]
pub struct SignupResponse {
    tenant_id: String,
    /// A session token holding every scope.
    token: String,
    expires_at: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    email: String,
    password: String,
}

#[derive(Serialize, ToSchema)]
pub struct LoginResponse {
    token: String,
    expires_at: String,
}

#[derive(Serialize, ToSchema)]
pub struct MeResponse {
    tenant_id: String,
    email: String,
    org: String,
    token: TokenView,
}

/// Creates a tenant and answers with a session token.
#[utoipa::path(post, path = "/v1/signup", request_body = SignupRequest, tag = "accounts",
    responses((status = 201, body = SignupResponse), (status = 409, body = crate::error::Problem),
              (status = 422, body = crate::error::Problem), (status = 429, body = crate::error::Problem)))]
async fn signup(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    AppJson(request): AppJson<SignupRequest>,
) -> ApiResult<(StatusCode, AppJson<SignupResponse>)> {
    state.rate_limits.check_auth(ip)?;
    let done = state
        .accounts()
        .signup(&request.email, &request.password, &request.org)
        .await?;
    Ok((
        StatusCode::CREATED,
        AppJson(SignupResponse {
            tenant_id: done.tenant_id.0,
            token: done.bearer,
            expires_at: domain::rfc3339(done.expires_at),
        }),
    ))
}

/// Exchanges e-mail and password for a session token.
#[utoipa::path(post, path = "/v1/login", request_body = LoginRequest, tag = "accounts",
    responses((status = 200, body = LoginResponse), (status = 401, body = crate::error::Problem),
              (status = 429, body = crate::error::Problem)))]
async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    AppJson(request): AppJson<LoginRequest>,
) -> ApiResult<AppJson<LoginResponse>> {
    state.rate_limits.check_auth(ip)?;
    let (token, expires_at) = state
        .accounts()
        .login(&request.email, request.password)
        .await?;
    Ok(AppJson(LoginResponse {
        token,
        expires_at: domain::rfc3339(expires_at),
    }))
}

/// Ends the calling session: its token stops working at once. API tokens are revoked
/// with `DELETE /v1/tokens/{id}` instead.
#[utoipa::path(post, path = "/v1/logout", tag = "accounts", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = crate::error::Problem),
              (status = 422, body = crate::error::Problem)))]
async fn logout(State(state): State<AppState>, caller: Caller) -> ApiResult<StatusCode> {
    state.tokens().logout(&caller).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Who the caller is.
#[utoipa::path(get, path = "/v1/me", tag = "accounts", security(("bearer" = [])),
    responses((status = 200, body = MeResponse), (status = 401, body = crate::error::Problem)))]
async fn me(State(state): State<AppState>, caller: Caller) -> ApiResult<AppJson<MeResponse>> {
    let tenant = state.accounts().tenant(&caller).await?;
    let token = TokenView::load(&state, caller.token).await?;
    Ok(AppJson(MeResponse {
        tenant_id: tenant.id.0,
        email: tenant.email,
        org: tenant.org,
        token,
    }))
}
