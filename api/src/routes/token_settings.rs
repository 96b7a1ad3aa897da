//! Changing a minted token: `PATCH /v1/tokens/{id}` with its new budget.

use axum::extract::{Path, State};
use serde::{Deserialize, Deserializer};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::tokens::TokenView;
use crate::error::{ApiError, ApiResult};
use crate::extract::{AppJson, Scoped, TokensCreate};
use crate::state::AppState;

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(update))
}

/// `PATCH /v1/tokens/{id}`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenUpdate {
    /// The token's spend cap per billing period in nano-dollars; `null` removes its own
    /// cap (its ancestors' still hold). What it may still spend never exceeds what any
    /// ancestor with a budget has left.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>)]
    budget_nanos: Option<Option<i64>>,
}

/// Tells `"budget_nanos": null` (remove the budget) from a body without the field.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<i64>>, D::Error> {
    Option::<i64>::deserialize(d).map(Some)
}

/// Raises or lowers a token's budget: a session may change any of the tenant's tokens,
/// an API token (with `tokens:create`) only the tokens minted below it.
#[utoipa::path(patch, path = "/v1/tokens/{id}", request_body = TokenUpdate, tag = "tokens",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The token's id")),
    responses((status = 200, body = TokenView), (status = 403, body = crate::error::Problem),
              (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
async fn update(
    State(state): State<AppState>,
    Scoped(caller, ..): Scoped<TokensCreate>,
    Path(id): Path<String>,
    AppJson(request): AppJson<TokenUpdate>,
) -> ApiResult<AppJson<TokenView>> {
    let Some(budget_nanos) = request.budget_nanos else {
        return Err(ApiError::Validation(
            "nothing to change: send {\"budget_nanos\": N} (or null for no budget of its own)"
                .into(),
        ));
    };
    let row = state
        .tokens()
        .set_budget(&caller, &id, budget_nanos)
        .await?;
    Ok(AppJson(TokenView::load(&state, row).await?))
}
