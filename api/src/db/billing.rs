//! Billing as stored: each tenant's Stripe customer, prepaid credit and payment state,
//! the Stripe events applied, and the meter-event outbox.

use sqlx::{SqliteConnection, SqlitePool};

/// A tenant's billing row (absent until billing first touches the tenant).
#[derive(Clone, Debug, Default, sqlx::FromRow)]
pub struct AccountRow {
    pub customer_id: Option<String>,
    pub credited_nanos: i64,
    pub payment_state: String,
    pub past_due_since_ms: Option<i64>,
    pub subscription_id: Option<String>,
    pub pushed_through_ms: Option<i64>,
}

/// The tenant's billing row, if billing has touched it.
#[tracing::instrument(skip_all, fields(tenant = tenant_id))]
pub async fn account(pool: &SqlitePool, tenant_id: &str) -> sqlx::Result<Option<AccountRow>> {
    sqlx::query_as(
        "SELECT customer_id, credited_nanos, payment_state, past_due_since_ms, subscription_id, \
         pushed_through_ms FROM billing_accounts WHERE tenant_id = ?",
    )
    .bind(tenant_id)
    .fetch_optional(pool)
    .await
}

/// The tenant's e-mail (the customer's).
#[tracing::instrument(skip_all, fields(tenant = tenant_id))]
pub async fn tenant_email(pool: &SqlitePool, tenant_id: &str) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar("SELECT email FROM tenants WHERE id = ?")
        .bind(tenant_id)
        .fetch_optional(pool)
        .await
}

/// Records the tenant's Stripe customer (the first one wins: a racing second call got
/// the same customer from Stripe's idempotency anyway). Usage is pushed from `now_ms`.
#[tracing::instrument(skip_all, fields(tenant = tenant_id))]
pub async fn set_customer(
    pool: &SqlitePool,
    tenant_id: &str,
    customer_id: &str,
    now_ms: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO billing_accounts (tenant_id, customer_id, metered_since_ms, pushed_through_ms, \
         updated_ms) VALUES (?1, ?2, ?3, ?3, ?4) ON CONFLICT (tenant_id) DO UPDATE SET \
         customer_id = COALESCE(customer_id, excluded.customer_id), \
         metered_since_ms = COALESCE(metered_since_ms, excluded.metered_since_ms), \
         pushed_through_ms = COALESCE(pushed_through_ms, excluded.pushed_through_ms), \
         updated_ms = excluded.updated_ms",
    )
    .bind(tenant_id)
    .bind(customer_id)
    .bind(now_ms - now_ms.rem_euclid(60_000))
    .bind(now_ms)
    .execute(pool)
    .await
    .map(drop)
}

/// Everything the tenant's sprites ever spent (the prepaid balance is credit less this).
#[tracing::instrument(skip_all, fields(tenant = tenant_id))]
pub async fn lifetime_spent(pool: &SqlitePool, tenant_id: &str) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "SELECT COALESCE(SUM(spent_nanos), 0) FROM scope_spend WHERE scope = 'tenant:' || ?",
    )
    .bind(tenant_id)
    .fetch_one(pool)
    .await
}

/// Marks a Stripe event applied; `false` when it already was (apply nothing then).
#[tracing::instrument(skip_all, fields(event = id))]
pub async fn claim_event(
    conn: &mut SqliteConnection,
    id: &str,
    kind: &str,
    created_s: i64,
    tenant_id: Option<&str>,
    now_ms: i64,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "INSERT INTO stripe_events (id, type, created_s, tenant_id, applied_ms) \
         VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
    )
    .bind(id)
    .bind(kind)
    .bind(created_s)
    .bind(tenant_id)
    .bind(now_ms)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The tenant whose Stripe customer this is.
#[tracing::instrument(skip_all)]
pub async fn tenant_of_customer(
    conn: &mut SqliteConnection,
    customer_id: &str,
) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar("SELECT tenant_id FROM billing_accounts WHERE customer_id = ?")
        .bind(customer_id)
        .fetch_optional(conn)
        .await
}

/// Whether the tenant exists (a Checkout session names it by `client_reference_id`).
#[tracing::instrument(skip_all)]
pub async fn tenant_exists(conn: &mut SqliteConnection, tenant_id: &str) -> sqlx::Result<bool> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tenants WHERE id = ?")
        .bind(tenant_id)
        .fetch_one(conn)
        .await?;
    Ok(n == 1)
}

/// Adds prepaid credit.
#[tracing::instrument(skip_all, fields(tenant = tenant_id, nanos))]
pub async fn add_credit(
    conn: &mut SqliteConnection,
    tenant_id: &str,
    nanos: i64,
    now_ms: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO billing_accounts (tenant_id, credited_nanos, updated_ms) VALUES (?, ?, ?) \
         ON CONFLICT (tenant_id) DO UPDATE SET credited_nanos = credited_nanos + excluded.credited_nanos, \
         updated_ms = excluded.updated_ms",
    )
    .bind(tenant_id)
    .bind(nanos)
    .bind(now_ms)
    .execute(conn)
    .await
    .map(drop)
}

/// Records the tenant's subscription (metered mode's Checkout).
#[tracing::instrument(skip_all, fields(tenant = tenant_id))]
pub async fn set_subscription(
    conn: &mut SqliteConnection,
    tenant_id: &str,
    subscription_id: &str,
    now_ms: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE billing_accounts SET subscription_id = ?, updated_ms = ? WHERE tenant_id = ?",
    )
    .bind(subscription_id)
    .bind(now_ms)
    .bind(tenant_id)
    .execute(conn)
    .await
    .map(drop)
}

/// Applies an invoice event created at `created_s` unless a newer one was applied:
/// `failed` makes the tenant past due from then (kept if it already was), else paid.
#[tracing::instrument(skip_all, fields(tenant = tenant_id, failed))]
pub async fn apply_invoice(
    conn: &mut SqliteConnection,
    tenant_id: &str,
    failed: bool,
    created_s: i64,
    now_ms: i64,
) -> sqlx::Result<bool> {
    // A payment wins a tie with a failure of the same second.
    let newer = if failed { ">" } else { ">=" };
    let set = if failed {
        "payment_state = CASE payment_state WHEN 'ok' THEN 'past_due' ELSE payment_state END, \
         past_due_since_ms = COALESCE(past_due_since_ms, ?1 * 1000)"
    } else {
        "payment_state = 'ok', past_due_since_ms = NULL"
    };
    let done = sqlx::query(&format!(
        "UPDATE billing_accounts SET {set}, invoice_event_at_s = ?1, updated_ms = ?2 \
         WHERE tenant_id = ?3 AND ?1 {newer} invoice_event_at_s"
    ))
    .bind(created_s)
    .bind(now_ms)
    .bind(tenant_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Tenants past due since before `cutoff_ms` become suspended; answers them.
#[tracing::instrument(skip_all)]
pub async fn suspend_overdue(
    pool: &SqlitePool,
    cutoff_ms: i64,
    now_ms: i64,
) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "UPDATE billing_accounts SET payment_state = 'suspended', updated_ms = ? \
         WHERE payment_state = 'past_due' AND past_due_since_ms <= ? RETURNING tenant_id",
    )
    .bind(now_ms)
    .bind(cutoff_ms)
    .fetch_all(pool)
    .await
}

/// A tenant whose usage is pushed.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct MeteredAccount {
    pub tenant_id: String,
    pub customer_id: String,
    pub metered_since_ms: i64,
    pub pushed_through_ms: i64,
}

/// Tenants with a customer whose usage is pushed.
#[tracing::instrument(skip_all)]
pub async fn metered_accounts(pool: &SqlitePool) -> sqlx::Result<Vec<MeteredAccount>> {
    sqlx::query_as(
        "SELECT tenant_id, customer_id, metered_since_ms, pushed_through_ms FROM billing_accounts \
         WHERE customer_id IS NOT NULL AND pushed_through_ms IS NOT NULL \
         AND metered_since_ms IS NOT NULL",
    )
    .fetch_all(pool)
    .await
}

/// Puts the tenant's ledger minutes in `[from_ms, until_ms)` into the outbox (one event
/// per minute that cost anything) and moves the watermark, in one transaction: a crash
/// leaves either both or neither.
#[tracing::instrument(skip_all, fields(tenant = tenant_id))]
pub async fn enqueue_minutes(
    pool: &SqlitePool,
    tenant_id: &str,
    customer_id: &str,
    from_ms: i64,
    until_ms: i64,
    now_ms: i64,
) -> sqlx::Result<u64> {
    let mut tx = pool.begin().await?;
    let done = sqlx::query(
        "INSERT INTO meter_event_outbox (identifier, tenant_id, customer_id, kind, timestamp_s, \
         value_nanos, created_ms) \
         SELECT 'corral:' || ?1 || ':' || minute_ms, ?1, ?2, 'usage', minute_ms / 1000, \
         SUM(cost_nanos), ?5 FROM usage_minutes WHERE tenant_id = ?1 AND minute_ms >= ?3 \
         AND minute_ms < ?4 GROUP BY minute_ms HAVING SUM(cost_nanos) <> 0 \
         ON CONFLICT (identifier) DO NOTHING",
    )
    .bind(tenant_id)
    .bind(customer_id)
    .bind(from_ms)
    .bind(until_ms)
    .bind(now_ms)
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE billing_accounts SET pushed_through_ms = ? WHERE tenant_id = ?")
        .bind(until_ms)
        .bind(tenant_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(done.rows_affected())
}

/// A meter event waiting to be sent.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct PendingEvent {
    pub identifier: String,
    pub customer_id: String,
    pub timestamp_s: i64,
    pub value_nanos: i64,
}

/// Unsent meter events, oldest first.
#[tracing::instrument(skip_all)]
pub async fn pending_events(pool: &SqlitePool, limit: i64) -> sqlx::Result<Vec<PendingEvent>> {
    sqlx::query_as(
        "SELECT identifier, customer_id, timestamp_s, value_nanos FROM meter_event_outbox \
         WHERE sent_ms IS NULL ORDER BY created_ms, identifier LIMIT ?",
    )
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Marks an event sent (or given up on, with the reason Stripe gave).
#[tracing::instrument(skip_all)]
pub async fn mark_event(
    pool: &SqlitePool,
    identifier: &str,
    now_ms: i64,
    error: Option<&str>,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE meter_event_outbox SET sent_ms = ?, last_error = ?, attempts = attempts + 1 \
         WHERE identifier = ?",
    )
    .bind(now_ms)
    .bind(error)
    .bind(identifier)
    .execute(pool)
    .await
    .map(drop)
}

/// Counts a failed try of an event that will be tried again.
#[tracing::instrument(skip_all)]
pub async fn event_failed(pool: &SqlitePool, identifier: &str, error: &str) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE meter_event_outbox SET attempts = attempts + 1, last_error = ? WHERE identifier = ?",
    )
    .bind(error)
    .bind(identifier)
    .execute(pool)
    .await
    .map(drop)
}

/// What reconciliation compares for a tenant over `[from_ms, until_ms)` of ledger
/// minutes: the ledger's total, and what waits unsent in the outbox (Stripe will have
/// it once sent, so it is not a difference).
#[tracing::instrument(skip_all, fields(tenant = tenant_id))]
pub async fn reconcile_inputs(
    pool: &SqlitePool,
    tenant_id: &str,
    from_ms: i64,
    until_ms: i64,
) -> sqlx::Result<(i64, i64)> {
    let ledger: i64 = sqlx::query_scalar(
        "SELECT COALESCE(SUM(cost_nanos), 0) FROM usage_minutes WHERE tenant_id = ? \
         AND minute_ms >= ? AND minute_ms < ?",
    )
    .bind(tenant_id)
    .bind(from_ms)
    .bind(until_ms)
    .fetch_one(pool)
    .await?;
    let unsent: i64 = sqlx::query_scalar(
        "SELECT COALESCE(SUM(value_nanos), 0) FROM meter_event_outbox WHERE tenant_id = ? \
         AND sent_ms IS NULL",
    )
    .bind(tenant_id)
    .fetch_one(pool)
    .await?;
    Ok((ledger, unsent))
}

/// Queues a correction; the identifier names the tenant and the minute it was decided
/// in, so a reconciliation run twice in one minute queues it once.
#[tracing::instrument(skip_all, fields(tenant = tenant_id, value_nanos))]
pub async fn enqueue_adjustment(
    pool: &SqlitePool,
    tenant_id: &str,
    customer_id: &str,
    value_nanos: i64,
    now_ms: i64,
) -> sqlx::Result<bool> {
    let minute = now_ms - now_ms.rem_euclid(60_000);
    let done = sqlx::query(
        "INSERT INTO meter_event_outbox (identifier, tenant_id, customer_id, kind, timestamp_s, \
         value_nanos, created_ms) VALUES (?, ?, ?, 'adjustment', ?, ?, ?) \
         ON CONFLICT (identifier) DO NOTHING",
    )
    .bind(format!("corral:{tenant_id}:adjust:{minute}"))
    .bind(tenant_id)
    .bind(customer_id)
    .bind(now_ms / 1000)
    .bind(value_nanos)
    .bind(now_ms)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Meter events of the tenant: (sent, pending, rejected) counts, for `GET /v1/billing`.
#[tracing::instrument(skip_all, fields(tenant = tenant_id))]
pub async fn outbox_counts(pool: &SqlitePool, tenant_id: &str) -> sqlx::Result<(i64, i64, i64)> {
    sqlx::query_as(
        "SELECT COALESCE(SUM(sent_ms IS NOT NULL AND last_error IS NULL), 0), \
         COALESCE(SUM(sent_ms IS NULL), 0), \
         COALESCE(SUM(sent_ms IS NOT NULL AND last_error IS NOT NULL), 0) \
         FROM meter_event_outbox WHERE tenant_id = ?",
    )
    .bind(tenant_id)
    .fetch_one(pool)
    .await
}
