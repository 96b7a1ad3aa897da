//! Tenants: signup rows and the lookups login needs.

use sqlx::{SqliteConnection, SqlitePool};

use crate::names::TenantId;

/// A tenant as login and `/v1/me` need it.
#[derive(Debug, sqlx::FromRow)]
pub struct Tenant {
    pub id: TenantId,
    pub email: String,
    pub org: String,
    pub password_hash: String,
}

/// Inserts a tenant; `Ok(false)` when the e-mail is taken.
#[tracing::instrument(skip_all)]
pub async fn insert(
    conn: &mut SqliteConnection,
    id: &TenantId,
    email: &str,
    password_hash: &str,
    org: &str,
    now: i64,
) -> sqlx::Result<bool> {
    let result = sqlx::query(
        "INSERT INTO tenants (id, email, password_hash, org, created_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (email) DO NOTHING",
    )
    .bind(id)
    .bind(email)
    .bind(password_hash)
    .bind(org)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// The tenant with this e-mail.
#[tracing::instrument(skip_all)]
pub async fn by_email(pool: &SqlitePool, email: &str) -> sqlx::Result<Option<Tenant>> {
    sqlx::query_as("SELECT id, email, org, password_hash FROM tenants WHERE email = ?")
        .bind(email)
        .fetch_optional(pool)
        .await
}

/// The tenant with this id.
#[tracing::instrument(skip_all)]
pub async fn by_id(pool: &SqlitePool, id: &TenantId) -> sqlx::Result<Option<Tenant>> {
    sqlx::query_as("SELECT id, email, org, password_hash FROM tenants WHERE id = ?")
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// The tenant's alert address, or its account address.
#[tracing::instrument(skip_all, fields(tenant = %tenant_id))]
pub async fn alert_email(
    conn: &mut SqliteConnection,
    tenant_id: &TenantId,
) -> sqlx::Result<String> {
    sqlx::query_scalar("SELECT COALESCE(alert_email, email) FROM tenants WHERE id = ?")
        .bind(tenant_id)
        .fetch_one(conn)
        .await
}

/// Writes the fields that are `Some`; `alert_email: Some(None)` clears it.
#[tracing::instrument(skip_all, fields(tenant = %tenant_id))]
pub async fn save_budget(
    conn: &mut SqliteConnection,
    tenant_id: &TenantId,
    cap: Option<i64>,
    thresholds: Option<&str>,
    alert_email: Option<Option<String>>,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE tenants SET cap_nanos = COALESCE(?, cap_nanos), \
         thresholds_pct = COALESCE(?, thresholds_pct), \
         alert_email = CASE WHEN ? THEN ? ELSE alert_email END WHERE id = ?",
    )
    .bind(cap)
    .bind(thresholds)
    .bind(alert_email.is_some())
    .bind(alert_email.flatten())
    .bind(tenant_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Whether a tenant's id starts with `handle` (the handle in sprite host names).
#[tracing::instrument(skip_all)]
pub async fn handle_taken(pool: &SqlitePool, handle: &str) -> sqlx::Result<bool> {
    let row: Option<(i64,)> = sqlx::query_as("SELECT 1 FROM tenants WHERE substr(id, 1, ?) = ?")
        .bind(handle.len() as i64)
        .bind(handle)
        .fetch_optional(pool)
        .await?;
    Ok(row.is_some())
}
