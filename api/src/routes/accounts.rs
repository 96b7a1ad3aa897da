//! Signup, login and `/v1/me`.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::auth::{self, Scopes};
use crate::db;
use crate::domain::{self, Email, Password};
use crate::error::{ApiError, ApiResult};
use crate::extract::{AppJson, Auth, ClientIp};
use crate::routes::tokens::TokenView;
use crate::state::AppState;
use crate::tokens::{self, NewToken};

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

async fn hash(password: String) -> ApiResult<String> {
    tokio::task::spawn_blocking(move || auth::hash_password(&password))
        .await
        .map_err(anyhow::Error::from)?
        .map_err(ApiError::Internal)
}

async fn session(
    state: &AppState,
    conn: &mut sqlx::SqliteConnection,
    tenant_id: &str,
) -> ApiResult<(String, i64)> {
    let expires_at = db::now_s() + state.config.session_ttl_s as i64;
    let new = NewToken {
        kind: "session",
        name: "session".into(),
        scopes: Scopes::all(),
        parent_id: None,
        expires_at,
        budget_nanos: None,
        sprites: None,
    };
    let (_, bearer) = tokens::issue(conn, &state.keys, tenant_id, new).await?;
    Ok((bearer, expires_at))
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
    state.limits.check_auth(ip)?;
    let email = Email::parse(&request.email)?;
    let password = Password::parse(&request.password)?;
    let org = domain::display_name("org", &request.org)?;
    let password_hash = hash(password.0).await?;
    let tenant_id = uuid::Uuid::new_v4().simple().to_string();
    let mut tx = state.pool.begin().await?;
    if !db::accounts::insert(
        &mut tx,
        &tenant_id,
        &email.0,
        &password_hash,
        &org,
        db::now_s(),
    )
    .await?
    {
        return Err(ApiError::Conflict(
            "an account with this e-mail already exists; log in instead".into(),
        ));
    }
    let (token, expires_at) = session(&state, &mut tx, &tenant_id).await?;
    tx.commit().await?;
    tracing::info!(tenant = %tenant_id, "tenant signed up");
    Ok((
        StatusCode::CREATED,
        AppJson(SignupResponse {
            tenant_id,
            token,
            expires_at: domain::rfc3339(expires_at),
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
    state.limits.check_auth(ip)?;
    let wrong = || ApiError::Unauthorized("the e-mail or the password is wrong".into());
    let tenant = match Email::parse(&request.email) {
        Ok(email) => db::accounts::by_email(&state.pool, &email.0).await?,
        Err(_) => None,
    };
    // Verify against a decoy when the account does not exist, so timing says nothing.
    let stored = tenant
        .as_ref()
        .map(|t| t.password_hash.clone())
        .unwrap_or_else(|| auth::decoy_hash().to_string());
    let password = request.password;
    let matches = tokio::task::spawn_blocking(move || auth::verify_password(&password, &stored))
        .await
        .map_err(anyhow::Error::from)?;
    let tenant = tenant.filter(|_| matches).ok_or_else(wrong)?;
    let mut conn = state.pool.acquire().await?;
    let (token, expires_at) = session(&state, &mut conn, &tenant.id).await?;
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
async fn logout(State(state): State<AppState>, auth: Auth) -> ApiResult<StatusCode> {
    if !auth.is_session() {
        return Err(ApiError::Validation(
            "this is an API token, not a session: revoke it with DELETE /v1/tokens/{id}".into(),
        ));
    }
    let mut conn = state.pool.acquire().await?;
    db::tokens::revoke_session(&mut conn, &auth.tenant_id, &auth.token.id, db::now_s()).await?;
    state.token_cache.clear();
    tracing::info!(tenant = %auth.tenant_id, "logged out");
    Ok(StatusCode::NO_CONTENT)
}

/// Who the caller is.
#[utoipa::path(get, path = "/v1/me", tag = "accounts", security(("bearer" = [])),
    responses((status = 200, body = MeResponse), (status = 401, body = crate::error::Problem)))]
async fn me(State(state): State<AppState>, auth: Auth) -> ApiResult<AppJson<MeResponse>> {
    let tenant = db::accounts::by_id(&state.pool, &auth.tenant_id)
        .await?
        .ok_or_else(|| ApiError::Unauthorized("the account no longer exists".into()))?;
    let token = TokenView::load(&state, auth.token).await?;
    Ok(AppJson(MeResponse {
        tenant_id: tenant.id,
        email: tenant.email,
        org: tenant.org,
        token,
    }))
}
