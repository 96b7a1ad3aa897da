//! Spend lookups the API needs from the metering ledger: a token's spend this period
//! and a sprite's cost so far.

use corral_metering::period::Period;
use corral_metering::{db, now_ms, Scope};

use crate::error::ApiResult;
use crate::state::AppState;

/// What `token_id` and its descendants' sprites spent this billing period.
pub async fn token_spent(state: &AppState, token_id: &str) -> ApiResult<i64> {
    let period = Period::containing(now_ms());
    let mut conn = state.pool.acquire().await?;
    let spent = db::scope_spent(
        &mut conn,
        &Scope::Token(token_id.to_owned()),
        period.start_ms,
    )
    .await?;
    Ok(spent.get())
}

/// What one of the tenant's sprites has cost so far (as of the last metering tick).
pub async fn sprite_cost(state: &AppState, tenant_id: &str, sprite_id: i64) -> ApiResult<i64> {
    let mut conn = state.pool.acquire().await?;
    Ok(db::sprite_cost(&mut conn, tenant_id, sprite_id)
        .await?
        .get())
}
