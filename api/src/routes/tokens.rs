//! Minting, listing and revoking API tokens.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::caller::Permissions;
use crate::db::tokens::TokenRow;
use crate::domain;
use crate::error::{ApiError, ApiResult};
use crate::extract::{AppJson, Scoped, TokensCreate};
use crate::state::AppState;
use crate::tokens::mint::MintRequest;

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(revoke))
}

/// A token as its holder sees it (never the secret).
#[derive(Serialize, ToSchema)]
pub struct TokenView {
    id: String,
    name: String,
    kind: String,
    scopes: Vec<String>,
    parent_id: Option<String>,
    created_at: String,
    /// When it last authenticated a call (to the minute); `null`: never.
    last_used_at: Option<String>,
    expires_at: String,
    /// Spend cap per billing period, if any.
    budget_nanos: Option<i64>,
    /// Spent this period by sprites this token or its descendants created.
    spent_nanos: i64,
    sprites: Option<Vec<String>>,
    revoked: bool,
}

impl TokenView {
    /// The view of a row, with its spend this period.
    pub async fn load(state: &AppState, row: TokenRow) -> ApiResult<Self> {
        let spent_nanos = state.tokens().spent(&row.id).await?;
        let last_used_at = state
            .tokens()
            .last_used(&row.id)
            .await?
            .map(domain::rfc3339);
        Ok(Self {
            scopes: Permissions::from_stored(&row.scopes)
                .names()
                .into_iter()
                .map(String::from)
                .collect(),
            created_at: domain::rfc3339(row.created_at),
            last_used_at,
            expires_at: domain::rfc3339(row.expires_at),
            sprites: row
                .sprites
                .as_deref()
                .and_then(|s| serde_json::from_str(s).ok()),
            revoked: row.revoked_at.is_some(),
            id: row.id,
            name: row.name,
            kind: row.kind,
            parent_id: row.parent_id,
            budget_nanos: row.budget_nanos,
            spent_nanos,
        })
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenRequest {
    name: String,
    scopes: Vec<String>,
    /// Lifetime in seconds (default and maximum: the operator's token lifetime; a
    /// child's never passes its parent's expiry).
    expires_in_s: Option<u64>,
    /// A spend cap of the token's own, per billing period.
    budget_nanos: Option<i64>,
    /// Limit the token to these sprites.
    sprites: Option<Vec<String>>,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedToken {
    /// The bearer secret: shown only in this answer.
    token: String,
    #[serde(flatten)]
    view: TokenView,
}

#[derive(Serialize, ToSchema)]
pub struct TokenList {
    tokens: Vec<TokenView>,
}

/// Mints a token; one minted with an API token is its child and never wider.
#[utoipa::path(post, path = "/v1/tokens", request_body = CreateTokenRequest, tag = "tokens",
    security(("bearer" = [])),
    responses((status = 201, body = CreatedToken), (status = 403, body = crate::error::Problem),
              (status = 422, body = crate::error::Problem)))]
async fn create(
    State(state): State<AppState>,
    Scoped(caller, ..): Scoped<TokensCreate>,
    AppJson(request): AppJson<CreateTokenRequest>,
) -> ApiResult<(StatusCode, AppJson<CreatedToken>)> {
    let scopes = Permissions::parse(request.scopes.iter().map(String::as_str))
        .map_err(ApiError::Validation)?;
    if scopes.0.is_empty() {
        return Err(ApiError::Validation(
            "scopes must name at least one scope".into(),
        ));
    }
    let mint = MintRequest {
        name: domain::display_name("name", &request.name)?,
        scopes,
        expires_in_s: request.expires_in_s,
        budget_nanos: request.budget_nanos,
        sprites: request.sprites,
    };
    let (row, token) = state.tokens().mint(&caller, mint).await?;
    let view = TokenView::load(&state, row).await?;
    Ok((StatusCode::CREATED, AppJson(CreatedToken { token, view })))
}

/// The tokens the caller may see: all for a session, else itself and its descendants.
#[utoipa::path(get, path = "/v1/tokens", tag = "tokens", security(("bearer" = [])),
    responses((status = 200, body = TokenList)))]
async fn list(
    State(state): State<AppState>,
    Scoped(caller, ..): Scoped<TokensCreate>,
) -> ApiResult<AppJson<TokenList>> {
    let rows = state.tokens().list(&caller).await?;
    let mut tokens = Vec::with_capacity(rows.len());
    for row in rows {
        tokens.push(TokenView::load(&state, row).await?);
    }
    Ok(AppJson(TokenList { tokens }))
}

/// Revokes a token and every token minted below it.
#[utoipa::path(delete, path = "/v1/tokens/{id}", tag = "tokens", security(("bearer" = [])),
    params(("id" = String, Path, description = "The token's id")),
    responses((status = 204), (status = 404, body = crate::error::Problem)))]
async fn revoke(
    State(state): State<AppState>,
    Scoped(caller, ..): Scoped<TokensCreate>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state.tokens().revoke(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
