//! Shared setup for the metering tests: a migrated SQLite file in a temp dir and rows
//! in the accounts and sprites tables.
#![allow(dead_code)]

use corral_metering::db as mdb;
use corral_metering::period::{days_from_civil, DAY_MS};
use corral_metering::{FleetSprite, MeterConfig, Nanos, Period, Prices, Scope};
use sqlx::SqlitePool;
use tempfile::TempDir;

/// 2026-11-10T00:00:00Z: mid-month, so ticks stay in one period.
pub fn t0() -> i64 {
    days_from_civil(2026, 11, 10) * DAY_MS
}

pub async fn db() -> (TempDir, SqlitePool) {
    let dir = tempfile::tempdir().unwrap();
    let pool = mdb::sqlite::open(&dir.path().join("corral.db"), 4)
        .await
        .unwrap();
    (dir, pool)
}

pub async fn tenant(pool: &SqlitePool, id: &str, cap_nanos: Option<i64>) {
    sqlx::query(
        "INSERT INTO tenants (id, email, password_hash, org, created_at, cap_nanos) VALUES (?, ?, 'x', 'org', 0, ?)",
    )
    .bind(id)
    .bind(format!("{id}@example.com"))
    .bind(cap_nanos)
    .execute(pool)
    .await
    .unwrap();
}

pub async fn token(
    pool: &SqlitePool,
    id: &str,
    tenant: &str,
    parent: Option<&str>,
    budget_nanos: Option<i64>,
) {
    sqlx::query(
        "INSERT INTO api_tokens (id, tenant_id, parent_id, kind, name, scopes, secret_sha256, created_at, \
         expires_at, budget_nanos) VALUES (?, ?, ?, 'api', ?, '', 'h', 0, 0, ?)",
    )
    .bind(id)
    .bind(tenant)
    .bind(parent)
    .bind(format!("name-{id}"))
    .bind(budget_nanos)
    .execute(pool)
    .await
    .unwrap();
}

pub async fn sprite(pool: &SqlitePool, id: i64, tenant: &str, token: Option<&str>) -> FleetSprite {
    sqlx::query(
        "INSERT INTO sprites (id, tenant_id, name, state, cpus, memory_mb, disk_mb, idle_timeout_s, \
         created_by_token, created_at, last_active_at) VALUES (?, ?, ?, 'running', 2, 1024, 10240, 300, ?, 0, 0)",
    )
    .bind(id)
    .bind(tenant)
    .bind(format!("s{id}"))
    .bind(token)
    .execute(pool)
    .await
    .unwrap();
    FleetSprite {
        network_bytes_per_s: 0,
        sprite_id: id,
        tenant_id: tenant.to_owned(),
        name: format!("s{id}"),
        created_by_token: token.map(str::to_owned),
        running: true,
        cpus: 2,
        memory_mb: 1024,
        reserve_bytes: 0,
    }
}

/// $0.001 per CPU-second, memory and disk free: easy sums.
pub fn cpu_only() -> MeterConfig {
    MeterConfig {
        prices: Prices {
            network_nanos_per_gb: 0,
            cpu_nanos_per_cpu_s: 1_000_000,
            memory_nanos_per_gb_s: 0,
            disk_nanos_per_gb_month: 0,
        },
        ..MeterConfig::default()
    }
}

/// What `scope` has spent in the period holding `at_ms`.
pub async fn spent(pool: &SqlitePool, scope: &Scope, at_ms: i64) -> Nanos {
    let mut conn = pool.acquire().await.unwrap();
    mdb::scope_spent(&mut conn, scope, Period::containing(at_ms).start_ms)
        .await
        .unwrap()
}
