//! API and session tokens: rows, the revocation cascade, the ancestor chain.

use sqlx::{SqliteConnection, SqlitePool};

use crate::names::TenantId;

/// A token row (never the secret: only its fingerprint is stored).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct TokenRow {
    pub id: String,
    pub tenant_id: TenantId,
    pub parent_id: Option<String>,
    pub kind: String,
    pub name: String,
    pub scopes: String,
    pub secret_sha256: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub budget_nanos: Option<i64>,
    pub sprites: Option<String>,
    pub revoked_at: Option<i64>,
}

const COLUMNS: &str = "id, tenant_id, parent_id, kind, name, scopes, secret_sha256, created_at, \
                       expires_at, budget_nanos, sprites, revoked_at";

/// Inserts a token row.
#[tracing::instrument(skip_all)]
pub async fn insert(conn: &mut SqliteConnection, row: &TokenRow) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO api_tokens (id, tenant_id, parent_id, kind, name, scopes, secret_sha256,
             created_at, expires_at, budget_nanos, sprites, revoked_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
    )
    .bind(&row.id)
    .bind(&row.tenant_id)
    .bind(&row.parent_id)
    .bind(&row.kind)
    .bind(&row.name)
    .bind(&row.scopes)
    .bind(&row.secret_sha256)
    .bind(row.created_at)
    .bind(row.expires_at)
    .bind(row.budget_nanos)
    .bind(&row.sprites)
    .execute(conn)
    .await?;
    Ok(())
}

/// The token with this id.
#[tracing::instrument(skip_all)]
pub async fn by_id(pool: &SqlitePool, id: &str) -> sqlx::Result<Option<TokenRow>> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM api_tokens WHERE id = ?"))
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// The tenant's minted tokens that `root` may see: all of them for a session
/// (`root` = None), else `root` and its descendants.
#[tracing::instrument(skip_all)]
pub async fn list(
    pool: &SqlitePool,
    tenant_id: &TenantId,
    root: Option<&str>,
) -> sqlx::Result<Vec<TokenRow>> {
    match root {
        None => {
            sqlx::query_as(&format!(
                "SELECT {COLUMNS} FROM api_tokens WHERE tenant_id = ? AND kind = 'api'
                 ORDER BY created_at, rowid"
            ))
            .bind(tenant_id)
            .fetch_all(pool)
            .await
        }
        Some(root) => {
            sqlx::query_as(&format!(
                "WITH RECURSIVE tree(id) AS (
                     SELECT id FROM api_tokens WHERE id = ? AND tenant_id = ?
                     UNION SELECT t.id FROM api_tokens t JOIN tree ON t.parent_id = tree.id)
                 SELECT {COLUMNS} FROM api_tokens WHERE id IN (SELECT id FROM tree)
                 ORDER BY created_at, rowid"
            ))
            .bind(root)
            .bind(tenant_id)
            .fetch_all(pool)
            .await
        }
    }
}

/// Whether `descendant` is `ancestor` or below it.
#[tracing::instrument(skip_all)]
pub async fn is_within(pool: &SqlitePool, ancestor: &str, descendant: &str) -> sqlx::Result<bool> {
    let found: Option<(String,)> = sqlx::query_as(
        "WITH RECURSIVE up(id, parent_id) AS (
             SELECT id, parent_id FROM api_tokens WHERE id = ?
             UNION SELECT t.id, t.parent_id FROM api_tokens t JOIN up ON t.id = up.parent_id)
         SELECT id FROM up WHERE id = ?",
    )
    .bind(descendant)
    .bind(ancestor)
    .fetch_optional(pool)
    .await?;
    Ok(found.is_some())
}

/// Revokes a token and every descendant; returns how many were newly revoked.
#[tracing::instrument(skip_all)]
pub async fn revoke_tree(
    conn: &mut SqliteConnection,
    tenant_id: &TenantId,
    id: &str,
    now: i64,
) -> sqlx::Result<u64> {
    let result = sqlx::query(
        "WITH RECURSIVE tree(id) AS (
             SELECT id FROM api_tokens WHERE id = ? AND tenant_id = ?
             UNION SELECT t.id FROM api_tokens t JOIN tree ON t.parent_id = tree.id)
         UPDATE api_tokens SET revoked_at = ?
         WHERE id IN (SELECT id FROM tree) AND revoked_at IS NULL",
    )
    .bind(id)
    .bind(tenant_id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(result.rows_affected())
}

/// Ends a session (logout); `false` when `id` is no live session of the tenant.
#[tracing::instrument(skip_all)]
pub async fn revoke_session(
    conn: &mut SqliteConnection,
    tenant_id: &TenantId,
    id: &str,
    now: i64,
) -> sqlx::Result<bool> {
    let result = sqlx::query(
        "UPDATE api_tokens SET revoked_at = ?
         WHERE id = ? AND tenant_id = ? AND kind = 'session' AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(id)
    .bind(tenant_id)
    .execute(conn)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// The token and its ancestors, nearest first.
#[tracing::instrument(skip_all)]
pub async fn chain(pool: &SqlitePool, id: &str) -> sqlx::Result<Vec<TokenRow>> {
    sqlx::query_as(&format!(
        "WITH RECURSIVE up(id, parent_id, depth) AS (
             SELECT id, parent_id, 0 FROM api_tokens WHERE id = ?
             UNION SELECT t.id, t.parent_id, up.depth + 1 FROM api_tokens t JOIN up ON t.id = up.parent_id)
         SELECT {} FROM api_tokens a JOIN up ON a.id = up.id ORDER BY up.depth",
        COLUMNS
            .split(", ")
            .map(|c| format!("a.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", ")
    ))
    .bind(id)
    .fetch_all(pool)
    .await
}
