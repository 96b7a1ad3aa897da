//! Network policies (a tenant's default and each sprite's own), and the owner of a
//! sprite the gateway meets by its machine only.

use sqlx::SqlitePool;

use crate::names::TenantId;

/// The stored rules (JSON) of a tenant's default (`sprite_id` `None`) or of a sprite.
#[tracing::instrument(skip_all)]
pub async fn rules(
    pool: &SqlitePool,
    tenant_id: &TenantId,
    sprite_id: Option<i64>,
) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar(
        "SELECT rules FROM network_policies WHERE tenant_id = ? AND coalesce(sprite_id, 0) = ?",
    )
    .bind(tenant_id)
    .bind(sprite_id.unwrap_or(0))
    .fetch_optional(pool)
    .await
}

/// Replaces the rules of a tenant's default or of a sprite.
#[tracing::instrument(skip_all)]
pub async fn save_rules(
    pool: &SqlitePool,
    tenant_id: &TenantId,
    sprite_id: Option<i64>,
    rules: &str,
    now: i64,
) -> sqlx::Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query("DELETE FROM network_policies WHERE tenant_id = ? AND coalesce(sprite_id, 0) = ?")
        .bind(tenant_id)
        .bind(sprite_id.unwrap_or(0))
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO network_policies (tenant_id, sprite_id, rules, updated_at) VALUES (?, ?, ?, ?)",
    )
    .bind(tenant_id)
    .bind(sprite_id)
    .bind(rules)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// The tenant and bandwidth (megabits per second, `None`: the operator's) of the live
/// sprite with this id.
#[tracing::instrument(skip_all)]
pub async fn sprite_owner(
    pool: &SqlitePool,
    id: i64,
) -> sqlx::Result<Option<(TenantId, Option<i64>)>> {
    sqlx::query_as(
        "SELECT tenant_id, network_mbps FROM sprites WHERE id = ? AND deleted_at IS NULL",
    )
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// The live sprites of a tenant, by id (a tenant-wide policy change rechecks them).
#[tracing::instrument(skip_all)]
pub async fn tenant_sprites(pool: &SqlitePool, tenant_id: &TenantId) -> sqlx::Result<Vec<i64>> {
    sqlx::query_scalar("SELECT id FROM sprites WHERE tenant_id = ? AND deleted_at IS NULL")
        .bind(tenant_id)
        .fetch_all(pool)
        .await
}
