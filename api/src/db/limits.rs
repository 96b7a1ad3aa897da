//! A tenant's own scaling limits and default idle timeout (columns of `tenants`; NULL
//! means the operator's value).

use sqlx::SqlitePool;

use crate::names::TenantId;

/// The tenant's own values: running sprites, total vCPUs, total memory MiB, disk MiB
/// per sprite, checkpoints per sprite, default idle timeout.
pub type Stored = (
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

/// The tenant's own values.
#[tracing::instrument(skip_all)]
pub async fn stored(pool: &SqlitePool, tenant_id: &TenantId) -> sqlx::Result<Stored> {
    sqlx::query_as(
        "SELECT max_running_sprites, max_total_cpus, max_total_memory_mb, max_disk_mb_per_sprite,
                max_checkpoints_per_sprite, idle_timeout_s FROM tenants WHERE id = ?",
    )
    .bind(tenant_id)
    .fetch_one(pool)
    .await
}

/// Sets the given values (a `None` keeps what is there) in one statement, so a change
/// is saved whole or not at all.
#[tracing::instrument(skip_all)]
pub async fn save(pool: &SqlitePool, tenant_id: &TenantId, change: Stored) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE tenants SET
             max_running_sprites = COALESCE(?, max_running_sprites),
             max_total_cpus = COALESCE(?, max_total_cpus),
             max_total_memory_mb = COALESCE(?, max_total_memory_mb),
             max_disk_mb_per_sprite = COALESCE(?, max_disk_mb_per_sprite),
             max_checkpoints_per_sprite = COALESCE(?, max_checkpoints_per_sprite),
             idle_timeout_s = COALESCE(?, idle_timeout_s)
         WHERE id = ?",
    )
    .bind(change.0)
    .bind(change.1)
    .bind(change.2)
    .bind(change.3)
    .bind(change.4)
    .bind(change.5)
    .bind(tenant_id)
    .execute(pool)
    .await?;
    Ok(())
}
