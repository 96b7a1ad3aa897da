//! Tenants: signup rows and the lookups login needs.

use sqlx::{SqliteConnection, SqlitePool};

/// A tenant as login and `/v1/me` need it.
#[derive(Debug, sqlx::FromRow)]
pub struct Tenant {
    pub id: String,
    pub email: String,
    pub org: String,
    pub password_hash: String,
}

/// Inserts a tenant; `Ok(false)` when the e-mail is taken.
#[tracing::instrument(skip_all)]
pub async fn insert(
    conn: &mut SqliteConnection,
    id: &str,
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
pub async fn by_id(pool: &SqlitePool, id: &str) -> sqlx::Result<Option<Tenant>> {
    sqlx::query_as("SELECT id, email, org, password_hash FROM tenants WHERE id = ?")
        .bind(id)
        .fetch_optional(pool)
        .await
}
