//! Spend lookups the API needs from metering (token and tenant spend this period).

use crate::error::ApiResult;
use crate::state::AppState;

/// What `token_id` and its descendants' sprites spent this billing period.
pub async fn token_spent(_state: &AppState, _token_id: &str) -> ApiResult<i64> {
    // Wired to the metering ledger when it lands in this workspace.
    Ok(0)
}

/// What a sprite has cost so far.
pub async fn sprite_cost(_state: &AppState, _sprite_id: i64) -> ApiResult<i64> {
    // Wired to the metering ledger when it lands in this workspace.
    Ok(0)
}
