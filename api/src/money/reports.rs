//! What a caller may read of the ledger and the outbox: usage rows of the sprites it
//! may use, and its tenant's alerts.

use corral_metering::db::{self as mdb, OutboxMessage, UsageQuery, UsageRow};
use sqlx::SqlitePool;

use crate::caller::Caller;
use crate::error::ApiResult;

/// How many alerts a listing shows at most (newest first).
const MAX_ALERTS: i64 = 200;

/// Usage rows of the caller's tenant for `query`; a token limited to some sprites sees
/// only theirs.
pub async fn usage(
    pool: &SqlitePool,
    caller: &Caller,
    query: &UsageQuery,
) -> ApiResult<Vec<UsageRow>> {
    let mut conn = pool.acquire().await?;
    let report = mdb::usage(&mut conn, caller.tenant_id.as_str(), query).await?;
    Ok(report
        .rows
        .into_iter()
        .filter(|r| caller.may_use_sprite(&r.sprite))
        .collect())
}

/// The caller's tenant's alerts, sent or queued, newest first.
pub async fn alerts(pool: &SqlitePool, caller: &Caller) -> ApiResult<Vec<OutboxMessage>> {
    let mut conn = pool.acquire().await?;
    Ok(mdb::alerts(&mut conn, caller.tenant_id.as_str(), MAX_ALERTS).await?)
}
