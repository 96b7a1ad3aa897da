//! Auto-recharge as stored: each tenant's opt-in and saved card (on `billing_accounts`)
//! and the numbered recharges (`auto_recharges`), at most one in flight per tenant.

use sqlx::{SqliteConnection, SqlitePool};

/// A tenant's auto-recharge settings and card.
#[derive(Clone, Debug, Default, sqlx::FromRow)]
pub struct Settings {
    pub tenant_id: String,
    pub customer_id: Option<String>,
    pub enabled: bool,
    pub below_nanos: Option<i64>,
    pub amount_nanos: Option<i64>,
    pub off_reason: Option<String>,
    pub off_ms: Option<i64>,
    pub credited_nanos: i64,
    pub checkout_payment_intent: Option<String>,
    pub payment_method_id: Option<String>,
}

const SETTINGS: &str = "SELECT tenant_id, customer_id, auto_recharge_enabled AS enabled, \
     auto_recharge_below_nanos AS below_nanos, auto_recharge_amount_nanos AS amount_nanos, \
     auto_recharge_off_reason AS off_reason, auto_recharge_off_ms AS off_ms, credited_nanos, \
     checkout_payment_intent, payment_method_id FROM billing_accounts";

/// One recharge.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Recharge {
    pub seq: i64,
    pub amount_nanos: i64,
    pub state: String,
    pub payment_intent_id: Option<String>,
    pub attempts: i64,
    pub next_attempt_ms: i64,
    pub last_error: Option<String>,
    pub updated_ms: i64,
}

const RECHARGE: &str = "SELECT seq, amount_nanos, state, payment_intent_id, attempts, \
     next_attempt_ms, last_error, updated_ms FROM auto_recharges";

/// The tenant's settings (absent until billing first touches the tenant).
#[tracing::instrument(skip_all, fields(tenant = tenant_id))]
pub async fn settings(pool: &SqlitePool, tenant_id: &str) -> sqlx::Result<Option<Settings>> {
    sqlx::query_as(&format!("{SETTINGS} WHERE tenant_id = ?"))
        .bind(tenant_id)
        .fetch_optional(pool)
        .await
}

/// Every tenant with auto-recharge on and a customer.
#[tracing::instrument(skip_all)]
pub async fn enabled(pool: &SqlitePool) -> sqlx::Result<Vec<Settings>> {
    sqlx::query_as(&format!(
        "{SETTINGS} WHERE auto_recharge_enabled = 1 AND customer_id IS NOT NULL"
    ))
    .fetch_all(pool)
    .await
}

/// Turns auto-recharge on (with a threshold and an amount, clearing why it was turned
/// off) or off (keeping them).
#[tracing::instrument(skip_all, fields(tenant = tenant_id, enabled))]
pub async fn set(
    pool: &SqlitePool,
    tenant_id: &str,
    enabled: bool,
    below_nanos: Option<i64>,
    amount_nanos: Option<i64>,
    now_ms: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO billing_accounts (tenant_id, auto_recharge_enabled, \
         auto_recharge_below_nanos, auto_recharge_amount_nanos, updated_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (tenant_id) DO UPDATE SET \
         auto_recharge_enabled = excluded.auto_recharge_enabled, \
         auto_recharge_below_nanos = COALESCE(excluded.auto_recharge_below_nanos, auto_recharge_below_nanos), \
         auto_recharge_amount_nanos = COALESCE(excluded.auto_recharge_amount_nanos, auto_recharge_amount_nanos), \
         auto_recharge_off_reason = CASE WHEN ?2 THEN NULL ELSE auto_recharge_off_reason END, \
         auto_recharge_off_ms = CASE WHEN ?2 THEN NULL ELSE auto_recharge_off_ms END, \
         updated_ms = excluded.updated_ms",
    )
    .bind(tenant_id)
    .bind(enabled)
    .bind(below_nanos)
    .bind(amount_nanos)
    .bind(now_ms)
    .execute(pool)
    .await
    .map(drop)
}

/// Records the PaymentIntent of a paid Checkout: its card is the one to charge from now
/// on (read from Stripe when first needed).
#[tracing::instrument(skip_all, fields(tenant = tenant_id))]
pub async fn set_checkout_payment(
    conn: &mut SqliteConnection,
    tenant_id: &str,
    payment_intent: &str,
    now_ms: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE billing_accounts SET checkout_payment_intent = ?, payment_method_id = NULL, \
         updated_ms = ? WHERE tenant_id = ?",
    )
    .bind(payment_intent)
    .bind(now_ms)
    .bind(tenant_id)
    .execute(conn)
    .await
    .map(drop)
}

/// Records the saved card read from the Checkout's PaymentIntent (unless a newer
/// Checkout replaced that PaymentIntent meanwhile).
#[tracing::instrument(skip_all, fields(tenant = tenant_id))]
pub async fn set_card(
    pool: &SqlitePool,
    tenant_id: &str,
    payment_intent: &str,
    payment_method: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE billing_accounts SET payment_method_id = ? \
         WHERE tenant_id = ? AND checkout_payment_intent = ?",
    )
    .bind(payment_method)
    .bind(tenant_id)
    .bind(payment_intent)
    .execute(pool)
    .await
    .map(drop)
}

/// The tenant's recharge in flight (`pending` or `charged`), if any.
#[tracing::instrument(skip_all, fields(tenant = tenant_id))]
pub async fn open(pool: &SqlitePool, tenant_id: &str) -> sqlx::Result<Option<Recharge>> {
    sqlx::query_as(&format!(
        "{RECHARGE} WHERE tenant_id = ? AND state IN ('pending', 'charged')"
    ))
    .bind(tenant_id)
    .fetch_optional(pool)
    .await
}

/// The tenant's newest recharge.
#[tracing::instrument(skip_all, fields(tenant = tenant_id))]
pub async fn latest(pool: &SqlitePool, tenant_id: &str) -> sqlx::Result<Option<Recharge>> {
    sqlx::query_as(&format!(
        "{RECHARGE} WHERE tenant_id = ? ORDER BY seq DESC LIMIT 1"
    ))
    .bind(tenant_id)
    .fetch_optional(pool)
    .await
}

/// Decides a new recharge (the next number), unless one is already in flight; answers
/// it. Written before Stripe is called: its number names the charge.
#[tracing::instrument(skip_all, fields(tenant = tenant_id))]
pub async fn start(
    pool: &SqlitePool,
    tenant_id: &str,
    amount_nanos: i64,
    now_ms: i64,
) -> sqlx::Result<Option<Recharge>> {
    let done = sqlx::query(
        "INSERT OR IGNORE INTO auto_recharges (tenant_id, seq, amount_nanos, state, \
         next_attempt_ms, created_ms, updated_ms) SELECT ?1, COALESCE(MAX(seq), 0) + 1, ?2, \
         'pending', ?3, ?3, ?3 FROM auto_recharges WHERE tenant_id = ?1",
    )
    .bind(tenant_id)
    .bind(amount_nanos)
    .bind(now_ms)
    .execute(pool)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(None);
    }
    open(pool, tenant_id).await
}

/// Stripe took the charge: the credit now waits for `payment_intent.succeeded`.
#[tracing::instrument(skip_all, fields(tenant = tenant_id, seq))]
pub async fn charged(
    pool: &SqlitePool,
    tenant_id: &str,
    seq: i64,
    payment_intent: &str,
    now_ms: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE auto_recharges SET state = 'charged', payment_intent_id = ?, attempts = attempts + 1, \
         last_error = NULL, updated_ms = ? WHERE tenant_id = ? AND seq = ? AND state = 'pending'",
    )
    .bind(payment_intent)
    .bind(now_ms)
    .bind(tenant_id)
    .bind(seq)
    .execute(pool)
    .await
    .map(drop)
}

/// Stripe did not answer: the same recharge (same key) is tried again at `next_ms`.
#[tracing::instrument(skip_all, fields(tenant = tenant_id, seq))]
pub async fn retry_later(
    pool: &SqlitePool,
    tenant_id: &str,
    seq: i64,
    error: &str,
    next_ms: i64,
    now_ms: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE auto_recharges SET attempts = attempts + 1, last_error = ?, next_attempt_ms = ?, \
         updated_ms = ? WHERE tenant_id = ? AND seq = ? AND state = 'pending'",
    )
    .bind(error)
    .bind(next_ms)
    .bind(now_ms)
    .bind(tenant_id)
    .bind(seq)
    .execute(pool)
    .await
    .map(drop)
}

/// The recharge succeeded (once: `false` when it was already settled or is unknown).
#[tracing::instrument(skip_all, fields(tenant = tenant_id, seq))]
pub async fn succeeded(
    conn: &mut SqliteConnection,
    tenant_id: &str,
    seq: i64,
    payment_intent: &str,
    now_ms: i64,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE auto_recharges SET state = 'succeeded', payment_intent_id = ?, last_error = NULL, \
         updated_ms = ? WHERE tenant_id = ? AND seq = ? AND state IN ('pending', 'charged')",
    )
    .bind(payment_intent)
    .bind(now_ms)
    .bind(tenant_id)
    .bind(seq)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The recharge failed (a declined card, a refusal): it is closed and auto-recharge
/// turned off with `reason`. `false` when it was already settled (nothing changes).
#[tracing::instrument(skip_all, fields(tenant = tenant_id, seq))]
pub async fn failed(
    conn: &mut SqliteConnection,
    tenant_id: &str,
    seq: i64,
    reason: &str,
    now_ms: i64,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE auto_recharges SET state = 'failed', last_error = ?, updated_ms = ? \
         WHERE tenant_id = ? AND seq = ? AND state IN ('pending', 'charged')",
    )
    .bind(reason)
    .bind(now_ms)
    .bind(tenant_id)
    .bind(seq)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    sqlx::query(
        "UPDATE billing_accounts SET auto_recharge_enabled = 0, auto_recharge_off_reason = ?, \
         auto_recharge_off_ms = ?, updated_ms = ? WHERE tenant_id = ?",
    )
    .bind(reason)
    .bind(now_ms)
    .bind(now_ms)
    .bind(tenant_id)
    .execute(conn)
    .await?;
    Ok(true)
}
