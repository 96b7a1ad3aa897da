//! Tenants' schedules and their runs: every query on a tenant's rows takes its id; the
//! runner's queries (due, claim, run records) work by schedule id.

use sqlx::SqlitePool;

use crate::names::TenantId;

/// A stored schedule.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ScheduleRow {
    pub id: i64,
    pub tenant_id: TenantId,
    pub sprite_id: i64,
    pub cron: String,
    /// `exec` or `checkpoint`.
    pub action: String,
    /// The command as a JSON array (exec only).
    pub cmd: Option<String>,
    pub comment: String,
    pub created_by_token: Option<String>,
    pub created_at: i64,
    pub next_run_ms: i64,
}

const COLUMNS: &str = "id, tenant_id, sprite_id, cron, action, cmd, comment, created_by_token, \
                       created_at, next_run_ms";

/// One run as recorded.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct RunRow {
    pub id: i64,
    pub schedule_id: i64,
    pub started_ms: i64,
    pub finished_ms: Option<i64>,
    /// `running`, `ok`, `failed` or `refused`.
    pub outcome: String,
    pub exit_code: Option<i64>,
    pub output_tail: Option<String>,
    pub detail: Option<String>,
    pub checkpoint_id: Option<i64>,
}

/// A run's end.
#[derive(Clone, Debug, Default)]
pub struct RunEnd {
    pub outcome: &'static str,
    pub exit_code: Option<i64>,
    pub output_tail: Option<String>,
    pub detail: Option<String>,
    pub checkpoint_id: Option<i64>,
}

/// Stores a schedule; returns its id.
#[tracing::instrument(skip_all)]
pub async fn insert(pool: &SqlitePool, row: &ScheduleRow) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "INSERT INTO schedules (tenant_id, sprite_id, cron, action, cmd, comment, \
         created_by_token, created_at, next_run_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(&row.tenant_id)
    .bind(row.sprite_id)
    .bind(&row.cron)
    .bind(&row.action)
    .bind(&row.cmd)
    .bind(&row.comment)
    .bind(&row.created_by_token)
    .bind(row.created_at)
    .bind(row.next_run_ms)
    .fetch_one(pool)
    .await
}

/// The tenant's schedules on one sprite, oldest first.
#[tracing::instrument(skip_all)]
pub async fn for_sprite(
    pool: &SqlitePool,
    tenant_id: &TenantId,
    sprite_id: i64,
) -> sqlx::Result<Vec<ScheduleRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM schedules WHERE tenant_id = ? AND sprite_id = ? ORDER BY id"
    ))
    .bind(tenant_id)
    .bind(sprite_id)
    .fetch_all(pool)
    .await
}

/// The last `limit` runs of one of the tenant's schedules, newest first.
#[tracing::instrument(skip_all)]
pub async fn runs(
    pool: &SqlitePool,
    tenant_id: &TenantId,
    schedule_id: i64,
    limit: i64,
) -> sqlx::Result<Vec<RunRow>> {
    sqlx::query_as(
        "SELECT r.id, r.schedule_id, r.started_ms, r.finished_ms, r.outcome, r.exit_code, \
         r.output_tail, r.detail, r.checkpoint_id FROM schedule_runs r \
         JOIN schedules s ON s.id = r.schedule_id \
         WHERE s.tenant_id = ? AND r.schedule_id = ? ORDER BY r.id DESC LIMIT ?",
    )
    .bind(tenant_id)
    .bind(schedule_id)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Deletes one of the tenant's schedules on a sprite with its runs; false when there
/// is no such schedule.
#[tracing::instrument(skip_all)]
pub async fn delete(
    pool: &SqlitePool,
    tenant_id: &TenantId,
    sprite_id: i64,
    id: i64,
) -> sqlx::Result<bool> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "DELETE FROM schedule_runs WHERE schedule_id IN \
         (SELECT id FROM schedules WHERE id = ? AND tenant_id = ? AND sprite_id = ?)",
    )
    .bind(id)
    .bind(tenant_id)
    .bind(sprite_id)
    .execute(&mut *tx)
    .await?;
    let gone =
        sqlx::query("DELETE FROM schedules WHERE id = ? AND tenant_id = ? AND sprite_id = ?")
            .bind(id)
            .bind(tenant_id)
            .bind(sprite_id)
            .execute(&mut *tx)
            .await?;
    tx.commit().await?;
    Ok(gone.rows_affected() == 1)
}

/// Schedules due at `now_ms`, most overdue first.
#[tracing::instrument(skip_all)]
pub async fn due(pool: &SqlitePool, now_ms: i64) -> sqlx::Result<Vec<ScheduleRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM schedules WHERE next_run_ms <= ? ORDER BY next_run_ms LIMIT 200"
    ))
    .bind(now_ms)
    .fetch_all(pool)
    .await
}

/// Moves a due schedule on to `next_ms`; false when another runner already did.
#[tracing::instrument(skip_all)]
pub async fn claim(pool: &SqlitePool, id: i64, due_ms: i64, next_ms: i64) -> sqlx::Result<bool> {
    let done = sqlx::query("UPDATE schedules SET next_run_ms = ? WHERE id = ? AND next_run_ms = ?")
        .bind(next_ms)
        .bind(id)
        .bind(due_ms)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Records a run as started; returns its id.
#[tracing::instrument(skip_all)]
pub async fn start_run(pool: &SqlitePool, schedule_id: i64, started_ms: i64) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "INSERT INTO schedule_runs (schedule_id, started_ms, outcome) VALUES (?, ?, 'running') \
         RETURNING id",
    )
    .bind(schedule_id)
    .bind(started_ms)
    .fetch_one(pool)
    .await
}

/// Records how a run ended.
#[tracing::instrument(skip_all)]
pub async fn finish_run(
    pool: &SqlitePool,
    run_id: i64,
    finished_ms: i64,
    end: &RunEnd,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE schedule_runs SET finished_ms = ?, outcome = ?, exit_code = ?, output_tail = ?, \
         detail = ?, checkpoint_id = ? WHERE id = ?",
    )
    .bind(finished_ms)
    .bind(end.outcome)
    .bind(end.exit_code)
    .bind(&end.output_tail)
    .bind(&end.detail)
    .bind(end.checkpoint_id)
    .bind(run_id)
    .execute(pool)
    .await
    .map(drop)
}

/// Marks runs left `running` by a stopped process as failed; returns how many.
#[tracing::instrument(skip_all)]
pub async fn abandon_running(pool: &SqlitePool, now_ms: i64) -> sqlx::Result<u64> {
    let done = sqlx::query(
        "UPDATE schedule_runs SET outcome = 'failed', finished_ms = ?, \
         detail = 'the server stopped during the run' WHERE outcome = 'running'",
    )
    .bind(now_ms)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// Deletes every schedule's runs but the last `keep`; returns how many.
#[tracing::instrument(skip_all)]
pub async fn prune_runs(pool: &SqlitePool, keep: u32) -> sqlx::Result<u64> {
    let done = sqlx::query(
        "DELETE FROM schedule_runs WHERE id IN (SELECT id FROM (SELECT id, ROW_NUMBER() OVER \
         (PARTITION BY schedule_id ORDER BY id DESC) AS n FROM schedule_runs) WHERE n > ?)",
    )
    .bind(i64::from(keep))
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}
