//! What can change on a minted token after minting (its budget), the name check that
//! keeps a tenant's live token names unique, and when each token was last used.

use sqlx::SqlitePool;

use crate::names::TenantId;

/// Whether the tenant already has a live (unrevoked, unexpired) API token named `name`.
#[tracing::instrument(skip_all)]
pub async fn name_taken(
    pool: &SqlitePool,
    tenant_id: &TenantId,
    name: &str,
    now: i64,
) -> sqlx::Result<bool> {
    let found: Option<(String,)> = sqlx::query_as(
        "SELECT id FROM api_tokens
         WHERE tenant_id = ? AND kind = 'api' AND name = ? AND revoked_at IS NULL
           AND expires_at > ?
         LIMIT 1",
    )
    .bind(tenant_id)
    .bind(name)
    .bind(now)
    .fetch_optional(pool)
    .await?;
    Ok(found.is_some())
}

/// Sets the budget of the tenant's API token `id` (`None`: no budget of its own).
#[tracing::instrument(skip_all)]
pub async fn set_budget(
    pool: &SqlitePool,
    tenant_id: &TenantId,
    id: &str,
    budget_nanos: Option<i64>,
) -> sqlx::Result<bool> {
    let result = sqlx::query(
        "UPDATE api_tokens SET budget_nanos = ?
         WHERE id = ? AND tenant_id = ? AND kind = 'api' AND revoked_at IS NULL",
    )
    .bind(budget_nanos)
    .bind(id)
    .bind(tenant_id)
    .execute(pool)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Records that token `id` was used at `now`.
#[tracing::instrument(skip_all)]
pub async fn record_use(pool: &SqlitePool, id: &str, now: i64) -> sqlx::Result<()> {
    sqlx::query("UPDATE api_tokens SET last_used_at = ? WHERE id = ?")
        .bind(now)
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// When token `id` was last used, if ever.
#[tracing::instrument(skip_all)]
pub async fn last_used(pool: &SqlitePool, id: &str) -> sqlx::Result<Option<i64>> {
    let row: Option<(Option<i64>,)> =
        sqlx::query_as("SELECT last_used_at FROM api_tokens WHERE id = ?")
            .bind(id)
            .fetch_optional(pool)
            .await?;
    Ok(row.and_then(|(at,)| at))
}
