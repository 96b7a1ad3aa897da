//! Pruning the API's de-duplication tables (the operator's `prune` job).

use sqlx::SqlitePool;

/// Forgets Idempotency-Keys of sprite creates made before `older_than` (unix seconds);
/// returns how many.
#[tracing::instrument(skip_all)]
pub async fn prune_idempotency_keys(pool: &SqlitePool, older_than: i64) -> sqlx::Result<u64> {
    let done = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < ?")
        .bind(older_than)
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}
