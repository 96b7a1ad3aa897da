//! Secrets as stored: sealed values, their hosts and placeholders, per tenant.

use sqlx::SqlitePool;

use crate::names::TenantId;

/// A secret's row (the value sealed).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct SecretRow {
    pub name: String,
    pub sealed: Vec<u8>,
    /// JSON list of domain patterns.
    pub hosts: String,
    pub header: Option<String>,
    pub format: Option<String>,
    pub placeholder: String,
    pub created_at: i64,
}

/// Stores a secret, replacing one of the same name.
#[tracing::instrument(skip_all)]
pub async fn put(pool: &SqlitePool, tenant_id: &TenantId, row: &SecretRow) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO secrets (tenant_id, name, sealed, hosts, header, format, placeholder, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (tenant_id, name) DO UPDATE SET sealed = excluded.sealed,
             hosts = excluded.hosts, header = excluded.header, format = excluded.format,
             placeholder = excluded.placeholder, created_at = excluded.created_at",
    )
    .bind(tenant_id)
    .bind(&row.name)
    .bind(&row.sealed)
    .bind(&row.hosts)
    .bind(&row.header)
    .bind(&row.format)
    .bind(&row.placeholder)
    .bind(row.created_at)
    .execute(pool)
    .await
    .map(drop)
}

/// The tenant's secrets, by name.
#[tracing::instrument(skip_all)]
pub async fn list(pool: &SqlitePool, tenant_id: &TenantId) -> sqlx::Result<Vec<SecretRow>> {
    sqlx::query_as(
        "SELECT name, sealed, hosts, header, format, placeholder, created_at FROM secrets
         WHERE tenant_id = ? ORDER BY name",
    )
    .bind(tenant_id)
    .fetch_all(pool)
    .await
}

/// Deletes one; whether it existed.
#[tracing::instrument(skip_all)]
pub async fn delete(pool: &SqlitePool, tenant_id: &TenantId, name: &str) -> sqlx::Result<bool> {
    let done = sqlx::query("DELETE FROM secrets WHERE tenant_id = ? AND name = ?")
        .bind(tenant_id)
        .bind(name)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}
