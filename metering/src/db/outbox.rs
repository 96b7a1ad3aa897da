//! The alert outbox: rows queued in the tick's transaction, read and marked by whoever
//! delivers mail.

use sqlx::SqliteConnection;

/// An alert to queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAlert<'a> {
    /// The tenant it concerns.
    pub tenant_id: &'a str,
    /// `threshold`.
    pub kind: &'a str,
    /// The scope key.
    pub scope: &'a str,
    /// The threshold crossed, percent.
    pub threshold_pct: u32,
    /// The period it belongs to.
    pub period_start_ms: i64,
    /// Recipient.
    pub to_email: &'a str,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub body: String,
    /// Now.
    pub now_ms: i64,
}

/// A queued or sent message.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct OutboxMessage {
    /// Its id.
    pub id: i64,
    /// The tenant it concerns.
    pub tenant_id: String,
    /// `threshold`.
    pub kind: String,
    /// The scope key.
    pub scope: String,
    /// The threshold, percent.
    pub threshold_pct: i64,
    /// The period it belongs to.
    pub period_start_ms: i64,
    /// Recipient.
    pub to_email: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub body: String,
    /// When it was queued.
    pub created_at_ms: i64,
    /// When it was delivered.
    pub sent_at_ms: Option<i64>,
    /// Delivery attempts so far.
    pub attempts: i64,
    /// Not to be tried again before this time.
    pub next_attempt_at_ms: i64,
    /// The last delivery error.
    pub last_error: Option<String>,
}

const COLUMNS: &str =
    "id, tenant_id, kind, scope, threshold_pct, period_start_ms, to_email, subject, \
                       body, created_at_ms, sent_at_ms, attempts, next_attempt_at_ms, last_error";

/// Queues an alert once per scope, threshold and period; `false` if it already was.
#[tracing::instrument(skip_all, fields(scope = a.scope, pct = a.threshold_pct))]
pub async fn queue_alert(
    conn: &mut SqliteConnection,
    a: &NewAlert<'_>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO outbox (tenant_id, kind, scope, threshold_pct, period_start_ms, to_email, \
         subject, body, created_at_ms, next_attempt_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (scope, threshold_pct, period_start_ms) DO NOTHING",
    )
    .bind(a.tenant_id)
    .bind(a.kind)
    .bind(a.scope)
    .bind(i64::from(a.threshold_pct))
    .bind(a.period_start_ms)
    .bind(a.to_email)
    .bind(&a.subject)
    .bind(&a.body)
    .bind(a.now_ms)
    .bind(a.now_ms)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Messages not yet delivered and not given up on (fewer than `max_attempts`), oldest
/// first, whether or not their next attempt is due: the sender keeps each recipient's
/// mails in the order they were queued, so a later mail waits for an earlier one.
#[tracing::instrument(skip_all)]
pub async fn undelivered(
    conn: &mut SqliteConnection,
    max_attempts: i64,
    limit: i64,
) -> Result<Vec<OutboxMessage>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM outbox WHERE sent_at_ms IS NULL AND attempts < ? \
         ORDER BY id LIMIT ?"
    ))
    .bind(max_attempts)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// How many messages are waiting (queued or retrying, not given up on).
#[tracing::instrument(skip_all)]
pub async fn backlog(conn: &mut SqliteConnection, max_attempts: i64) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE sent_at_ms IS NULL AND attempts < ?")
        .bind(max_attempts)
        .fetch_one(conn)
        .await
}

/// Records a delivery.
#[tracing::instrument(skip_all, fields(id))]
pub async fn mark_sent(
    conn: &mut SqliteConnection,
    id: i64,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE outbox SET sent_at_ms = ?, attempts = attempts + 1, last_error = NULL WHERE id = ?",
    )
    .bind(now_ms)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records a failed attempt and when to try again.
#[tracing::instrument(skip_all, fields(id))]
pub async fn mark_failed(
    conn: &mut SqliteConnection,
    id: i64,
    error: &str,
    retry_at_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at_ms = ? WHERE id = ?")
        .bind(error)
        .bind(retry_at_ms)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// A tenant's alerts, sent or queued, newest first (`GET /v1/alerts`).
#[tracing::instrument(skip_all, fields(tenant = tenant_id))]
pub async fn alerts(
    conn: &mut SqliteConnection,
    tenant_id: &str,
    limit: i64,
) -> Result<Vec<OutboxMessage>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM outbox WHERE tenant_id = ? ORDER BY created_at_ms DESC, id DESC LIMIT ?"
    ))
    .bind(tenant_id)
    .bind(limit)
    .fetch_all(conn)
    .await
}
