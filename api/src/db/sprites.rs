//! Sprites, checkpoints and idempotency keys: every query takes the tenant id where
//! the row is tenant-owned, so a cross-tenant read cannot be written by mistake.

use sqlx::{SqliteConnection, SqlitePool};

use crate::names::{PauseReason, SpriteState, TenantId, UrlAuth};

/// A sprite row.
#[derive(Clone, Debug, sqlx::FromRow, serde::Deserialize)]
pub struct SpriteRow {
    pub id: i64,
    pub tenant_id: TenantId,
    pub name: String,
    pub state: SpriteState,
    pub pause_reason: Option<PauseReason>,
    pub cpus: i64,
    pub memory_mb: i64,
    pub disk_mb: i64,
    pub idle_timeout_s: i64,
    pub created_by_token: Option<String>,
    pub created_at: i64,
    pub last_active_at: i64,
    pub last_activity: String,
    /// The image it was made from (an operator image's or a tenant image's name).
    pub image: String,
    /// The tenant image it was made from, when it was.
    pub image_id: Option<i64>,
    /// Its bandwidth, megabits per second; `None`: the operator's.
    pub network_mbps: Option<i64>,
    /// The port inside the sprite its URL reaches.
    pub http_port: i64,
    /// Who may open its URL.
    pub url_auth: UrlAuth,
}

const COLUMNS: &str = "id, tenant_id, name, state, pause_reason, cpus, memory_mb, disk_mb, \
                       idle_timeout_s, created_by_token, created_at, last_active_at, last_activity, \
                       image, image_id, network_mbps, http_port, url_auth";

/// A random sprite id: a sprite's id names its machine, its cgroup and its sandbox,
/// which must not collide with another Corral on the same host (so not sequential).
pub fn fresh_id() -> i64 {
    (rand::random::<u64>() >> 1).max(1) as i64
}

/// A new sprite in state `creating`, with `row.id` when it is set (the key of a warm
/// pool's machine made ahead) or else a [`fresh_id`]; `Ok(None)` when the name is taken.
#[tracing::instrument(skip_all)]
pub async fn insert(conn: &mut SqliteConnection, row: &SpriteRow) -> sqlx::Result<Option<i64>> {
    let fresh_id = if row.id > 0 { row.id } else { fresh_id() };
    let id: Option<(i64,)> = sqlx::query_as(
        "INSERT INTO sprites (id, tenant_id, name, state, cpus, memory_mb, disk_mb, idle_timeout_s,
             created_by_token, created_at, last_active_at, last_activity, image, image_id,
             network_mbps, http_port, url_auth)
         VALUES (?, ?, ?, 'creating', ?, ?, ?, ?, ?, ?, ?, 'create', ?, ?, ?, ?, ?)
         ON CONFLICT (tenant_id, name) WHERE deleted_at IS NULL DO NOTHING
         RETURNING id",
    )
    .bind(fresh_id)
    .bind(&row.tenant_id)
    .bind(&row.name)
    .bind(row.cpus)
    .bind(row.memory_mb)
    .bind(row.disk_mb)
    .bind(row.idle_timeout_s)
    .bind(&row.created_by_token)
    .bind(row.created_at)
    .bind(row.created_at)
    .bind(&row.image)
    .bind(row.image_id)
    .bind(row.network_mbps)
    .bind(row.http_port)
    .bind(row.url_auth)
    .fetch_optional(conn)
    .await?;
    Ok(id.map(|(id,)| id))
}

/// The tenant's live sprite called `name`.
#[tracing::instrument(skip_all)]
pub async fn by_name(
    pool: &SqlitePool,
    tenant_id: &TenantId,
    name: &str,
) -> sqlx::Result<Option<SpriteRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM sprites WHERE tenant_id = ? AND name = ? AND deleted_at IS NULL"
    ))
    .bind(tenant_id)
    .bind(name)
    .fetch_optional(pool)
    .await
}

/// The live sprites called `name`, of every tenant (the front door narrows them down by
/// the tenant's handle in the host name).
#[tracing::instrument(skip_all)]
pub async fn live_named(pool: &SqlitePool, name: &str) -> sqlx::Result<Vec<SpriteRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM sprites WHERE name = ? AND deleted_at IS NULL"
    ))
    .bind(name)
    .fetch_all(pool)
    .await
}

/// Changes a sprite's settings: its URL's port and access, its idle timeout.
#[tracing::instrument(skip_all)]
pub async fn set_settings(
    pool: &SqlitePool,
    id: i64,
    http_port: i64,
    url_auth: UrlAuth,
    idle_timeout_s: i64,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE sprites SET http_port = ?, url_auth = ?, idle_timeout_s = ? WHERE id = ?")
        .bind(http_port)
        .bind(url_auth)
        .bind(idle_timeout_s)
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// The tenant's live sprite with this id.
#[tracing::instrument(skip_all)]
pub async fn by_id(
    pool: &SqlitePool,
    tenant_id: &TenantId,
    id: i64,
) -> sqlx::Result<Option<SpriteRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM sprites WHERE tenant_id = ? AND id = ? AND deleted_at IS NULL"
    ))
    .bind(tenant_id)
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// The tenant's live sprites by name, each with its cost so far, in one query that
/// returns one row: the list as JSON, `[[columns…], cost]` per sprite. sqlx hands every
/// row from its SQLite thread to the caller separately, so a hundred rows cost a hundred
/// thread wake-ups; one JSON text costs one (see the README's list throughput).
#[tracing::instrument(skip_all)]
pub async fn list_with_costs(
    pool: &SqlitePool,
    tenant_id: &TenantId,
) -> sqlx::Result<Vec<(SpriteRow, i64)>> {
    let columns = COLUMNS
        .split(',')
        .map(|c| format!("s.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ");
    let (json,): (String,) = sqlx::query_as(&format!(
        "SELECT json_group_array(json_array(json_array({columns}), coalesce(m.cost_nanos, 0))) \
         FROM sprites s LEFT JOIN meter_samples m ON m.sprite_id = s.id \
         WHERE s.tenant_id = ? AND s.deleted_at IS NULL"
    ))
    .bind(tenant_id)
    .fetch_one(pool)
    .await?;
    // A derived struct reads a JSON array field by field, in declaration order, which
    // is the order of COLUMNS.
    let mut listed: Vec<(SpriteRow, i64)> =
        serde_json::from_str(&json).map_err(|e| sqlx::Error::Decode(e.into()))?;
    listed.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    Ok(listed)
}

/// Every live sprite of every tenant (reconciliation, idle pause, metering).
#[tracing::instrument(skip_all)]
pub async fn all_live(pool: &SqlitePool) -> sqlx::Result<Vec<SpriteRow>> {
    // One JSON text, not a row per sprite (see `list_with_costs`): the meter and the
    // idle check read this every second.
    let (json,): (String,) = sqlx::query_as(&format!(
        "SELECT json_group_array(json_array({COLUMNS})) FROM \
         (SELECT {COLUMNS} FROM sprites WHERE deleted_at IS NULL ORDER BY id)"
    ))
    .fetch_one(pool)
    .await?;
    serde_json::from_str(&json).map_err(|e| sqlx::Error::Decode(e.into()))
}

/// Bytes held by the checkpoints of each live sprite that has any: (sprite id, bytes).
#[tracing::instrument(skip_all)]
pub async fn live_checkpoint_bytes(pool: &SqlitePool) -> sqlx::Result<Vec<(i64, i64)>> {
    sqlx::query_as(
        "SELECT c.sprite_id, SUM(c.size_bytes) FROM checkpoints c \
         JOIN sprites s ON s.id = c.sprite_id WHERE s.deleted_at IS NULL \
         GROUP BY c.sprite_id",
    )
    .fetch_all(pool)
    .await
}

/// Ids of sprites that were deleted (their machines must be gone).
#[tracing::instrument(skip_all)]
pub async fn is_live(pool: &SqlitePool, id: i64) -> sqlx::Result<bool> {
    let row: Option<(i64,)> =
        sqlx::query_as("SELECT id FROM sprites WHERE id = ? AND deleted_at IS NULL")
            .bind(id)
            .fetch_optional(pool)
            .await?;
    Ok(row.is_some())
}

/// Moves a sprite to `state` (clearing or setting the pause reason).
#[tracing::instrument(skip_all)]
pub async fn set_state(
    pool: &SqlitePool,
    id: i64,
    state: SpriteState,
    pause_reason: Option<PauseReason>,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE sprites SET state = ?, pause_reason = ? WHERE id = ?")
        .bind(state)
        .bind(pause_reason)
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Records activity that keeps the sprite awake.
#[tracing::instrument(skip_all)]
pub async fn touch(pool: &SqlitePool, id: i64, activity: &str, now: i64) -> sqlx::Result<()> {
    sqlx::query("UPDATE sprites SET last_active_at = ?, last_activity = ? WHERE id = ?")
        .bind(now)
        .bind(activity)
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Marks a sprite deleted (the row stays for the ledger).
#[tracing::instrument(skip_all)]
pub async fn mark_deleted(pool: &SqlitePool, id: i64, now: i64) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE sprites SET state = 'deleted', pause_reason = NULL, deleted_at = ? WHERE id = ?",
    )
    .bind(now)
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

/// What a tenant's running sprites hold now: (count, vCPUs, memory MiB).
#[tracing::instrument(skip_all)]
pub async fn running_totals(
    pool: &SqlitePool,
    tenant_id: &TenantId,
) -> sqlx::Result<(i64, i64, i64)> {
    sqlx::query_as(
        "SELECT COUNT(*), COALESCE(SUM(cpus), 0), COALESCE(SUM(memory_mb), 0) FROM sprites
         WHERE tenant_id = ? AND deleted_at IS NULL AND state IN ('creating', 'running')",
    )
    .bind(tenant_id)
    .fetch_one(pool)
    .await
}

/// A checkpoint row.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct CheckpointRow {
    pub id: i64,
    pub sprite_id: i64,
    pub comment: String,
    pub created_at: i64,
    pub size_bytes: i64,
}

/// Reserves a checkpoint id (size filled in once the checkpoint exists).
#[tracing::instrument(skip_all)]
pub async fn insert_checkpoint(
    pool: &SqlitePool,
    sprite_id: i64,
    comment: &str,
    now: i64,
) -> sqlx::Result<i64> {
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO checkpoints (sprite_id, comment, created_at, size_bytes) VALUES (?, ?, ?, 0) RETURNING id",
    )
    .bind(sprite_id)
    .bind(comment)
    .bind(now)
    .fetch_one(pool)
    .await?;
    Ok(id)
}

/// Sets a checkpoint's size.
#[tracing::instrument(skip_all)]
pub async fn set_checkpoint_size(pool: &SqlitePool, id: i64, size_bytes: i64) -> sqlx::Result<()> {
    sqlx::query("UPDATE checkpoints SET size_bytes = ? WHERE id = ?")
        .bind(size_bytes)
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// A sprite's checkpoints, oldest first.
#[tracing::instrument(skip_all)]
pub async fn checkpoints(pool: &SqlitePool, sprite_id: i64) -> sqlx::Result<Vec<CheckpointRow>> {
    sqlx::query_as("SELECT id, sprite_id, comment, created_at, size_bytes FROM checkpoints WHERE sprite_id = ? ORDER BY id")
        .bind(sprite_id)
        .fetch_all(pool)
        .await
}

/// Removes a checkpoint row.
#[tracing::instrument(skip_all)]
pub async fn delete_checkpoint(pool: &SqlitePool, sprite_id: i64, id: i64) -> sqlx::Result<bool> {
    let result = sqlx::query("DELETE FROM checkpoints WHERE sprite_id = ? AND id = ?")
        .bind(sprite_id)
        .bind(id)
        .execute(pool)
        .await?;
    Ok(result.rows_affected() == 1)
}

/// The sprite an idempotency key already created.
#[tracing::instrument(skip_all)]
pub async fn idempotent_sprite(
    pool: &SqlitePool,
    tenant_id: &TenantId,
    key: &str,
) -> sqlx::Result<Option<i64>> {
    let row: Option<(i64,)> =
        sqlx::query_as("SELECT sprite_id FROM idempotency_keys WHERE tenant_id = ? AND key = ?")
            .bind(tenant_id)
            .bind(key)
            .fetch_optional(pool)
            .await?;
    Ok(row.map(|(id,)| id))
}

/// Remembers which sprite an idempotency key created.
#[tracing::instrument(skip_all)]
pub async fn remember_idempotency(
    conn: &mut SqliteConnection,
    tenant_id: &TenantId,
    key: &str,
    sprite_id: i64,
    now: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO idempotency_keys (tenant_id, key, sprite_id, created_at) VALUES (?, ?, ?, ?)",
    )
    .bind(tenant_id)
    .bind(key)
    .bind(sprite_id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Live sprites of every tenant counted by state (for `/metrics`).
#[tracing::instrument(skip_all)]
pub async fn count_by_state(pool: &SqlitePool) -> sqlx::Result<Vec<(String, i64)>> {
    sqlx::query_as("SELECT state, COUNT(*) FROM sprites WHERE deleted_at IS NULL GROUP BY state")
        .fetch_all(pool)
        .await
}
