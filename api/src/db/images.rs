//! Tenant images (saved from sprites): every query takes the tenant id where it reads
//! one tenant's images, so another tenant's image cannot be named by mistake.

use sqlx::SqlitePool;

use crate::names::TenantId;

/// An image row.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ImageRow {
    pub id: i64,
    pub tenant_id: TenantId,
    pub name: String,
    /// saving | ready | deleting | gone
    pub state: String,
    pub source_sprite: String,
    pub size_bytes: i64,
    pub created_by_token: Option<String>,
    pub created_at: i64,
}

const COLUMNS: &str =
    "id, tenant_id, name, state, source_sprite, size_bytes, created_by_token, created_at";

/// A new image in state `saving`; `Ok(None)` when the tenant has a live one of that name.
#[tracing::instrument(skip_all)]
pub async fn insert(
    pool: &SqlitePool,
    tenant_id: &TenantId,
    name: &str,
    source_sprite: &str,
    token: &str,
    now: i64,
) -> sqlx::Result<Option<i64>> {
    let id: Option<(i64,)> = sqlx::query_as(
        "INSERT INTO images (tenant_id, name, state, source_sprite, created_by_token, created_at)
         VALUES (?, ?, 'saving', ?, ?, ?)
         ON CONFLICT (tenant_id, name) WHERE deleted_at IS NULL DO NOTHING
         RETURNING id",
    )
    .bind(tenant_id)
    .bind(name)
    .bind(source_sprite)
    .bind(token)
    .bind(now)
    .fetch_optional(pool)
    .await?;
    Ok(id.map(|(id,)| id))
}

/// The save finished: the image can be used, and its bytes are billed.
#[tracing::instrument(skip_all)]
pub async fn set_ready(pool: &SqlitePool, id: i64, size_bytes: i64) -> sqlx::Result<()> {
    sqlx::query("UPDATE images SET state = 'ready', size_bytes = ? WHERE id = ?")
        .bind(size_bytes)
        .bind(id)
        .execute(pool)
        .await
        .map(drop)
}

/// Removes a row whose save failed (nothing was stored, nothing is billed).
#[tracing::instrument(skip_all)]
pub async fn forget(pool: &SqlitePool, id: i64) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM images WHERE id = ? AND state = 'saving'")
        .bind(id)
        .execute(pool)
        .await
        .map(drop)
}

/// The tenant's live image called `name` (saving or ready).
#[tracing::instrument(skip_all)]
pub async fn by_name(
    pool: &SqlitePool,
    tenant_id: &TenantId,
    name: &str,
) -> sqlx::Result<Option<ImageRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM images WHERE tenant_id = ? AND name = ? AND deleted_at IS NULL"
    ))
    .bind(tenant_id)
    .bind(name)
    .fetch_optional(pool)
    .await
}

/// The tenant's live images, by name.
#[tracing::instrument(skip_all)]
pub async fn list(pool: &SqlitePool, tenant_id: &TenantId) -> sqlx::Result<Vec<ImageRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM images WHERE tenant_id = ? AND deleted_at IS NULL ORDER BY name"
    ))
    .bind(tenant_id)
    .fetch_all(pool)
    .await
}

/// Images whose bytes are stored and billed (ready, or deleted but still held), of
/// every tenant: the meter's view.
#[tracing::instrument(skip_all)]
pub async fn stored(pool: &SqlitePool) -> sqlx::Result<Vec<ImageRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM images WHERE state IN ('ready', 'deleting') ORDER BY id"
    ))
    .fetch_all(pool)
    .await
}

/// The tenant deleted it: the name is free and no new sprite may use it.
#[tracing::instrument(skip_all)]
pub async fn mark_deleting(pool: &SqlitePool, id: i64, now: i64) -> sqlx::Result<()> {
    sqlx::query("UPDATE images SET state = 'deleting', deleted_at = ? WHERE id = ?")
        .bind(now)
        .bind(id)
        .execute(pool)
        .await
        .map(drop)
}

/// Deleted images whose files may still exist (each is checked with the driver).
#[tracing::instrument(skip_all)]
pub async fn deleting(pool: &SqlitePool) -> sqlx::Result<Vec<i64>> {
    sqlx::query_scalar("SELECT id FROM images WHERE state = 'deleting'")
        .fetch_all(pool)
        .await
}

/// The files are gone: billing stops.
#[tracing::instrument(skip_all)]
pub async fn mark_gone(pool: &SqlitePool, id: i64) -> sqlx::Result<()> {
    sqlx::query("UPDATE images SET state = 'gone' WHERE id = ? AND state = 'deleting'")
        .bind(id)
        .execute(pool)
        .await
        .map(drop)
}

/// How many live sprites stand on the image (made from it directly).
#[tracing::instrument(skip_all)]
pub async fn sprites_on(pool: &SqlitePool, id: i64) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM sprites WHERE image_id = ? AND deleted_at IS NULL")
        .bind(id)
        .fetch_one(pool)
        .await
}
