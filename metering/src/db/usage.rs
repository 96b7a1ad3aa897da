//! Reading the ledger: usage reports (`GET /v1/usage`) and each sprite's live cost.

use std::collections::HashMap;

use sqlx::SqliteConnection;

use super::from_db;
use crate::money::Nanos;
use crate::period::Granularity;

/// A usage report's filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageQuery {
    /// From this instant (unix ms, inclusive; rounded down to its bucket).
    pub from_ms: i64,
    /// To this instant (unix ms, exclusive).
    pub to_ms: i64,
    /// Bucket width.
    pub by: Granularity,
    /// Only the sprite(s) with this name.
    pub sprite: Option<String>,
}

/// One report row: one sprite in one bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageRow {
    /// The bucket's first millisecond.
    pub start_ms: i64,
    /// The sprite's name.
    pub sprite: String,
    /// CPU time, nanoseconds.
    pub cpu_ns: u64,
    /// Memory in use integrated over time, byte·seconds.
    pub memory_byte_s: u64,
    /// Bytes stored integrated over time, byte·seconds.
    pub disk_byte_s: u64,
    /// Bytes moved through the way out.
    pub network_bytes: u64,
    /// What it cost (the sum of the ledger rows' costs: what budgets counted).
    pub cost_nanos: Nanos,
}

/// A usage report.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UsageReport {
    /// Rows by bucket, then sprite name.
    pub rows: Vec<UsageRow>,
    /// All the rows' cost.
    pub total_nanos: Nanos,
}

type Row = (i64, String, i64, i64, i64, i64, i64);

/// A tenant's usage grouped by minute, hour or day, per sprite.
#[tracing::instrument(skip_all, fields(tenant = tenant_id))]
pub async fn usage(
    conn: &mut SqliteConnection,
    tenant_id: &str,
    q: &UsageQuery,
) -> Result<UsageReport, sqlx::Error> {
    let width = q.by.width_ms();
    let from = q.from_ms - q.from_ms.rem_euclid(width);
    // Byte·ms are divided per row before summing: a day of a terabyte in byte·ms
    // would not fit in 64 bits.
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT (minute_ms / ?) * ? AS bucket, sprite_name, SUM(cpu_ns), \
         SUM(memory_byte_ms / 1000), SUM(disk_byte_ms / 1000), SUM(network_bytes), \
         SUM(cost_nanos) \
         FROM usage_minutes WHERE tenant_id = ? AND minute_ms >= ? AND minute_ms < ? \
         AND (? IS NULL OR sprite_name = ?) \
         GROUP BY bucket, sprite_id, sprite_name ORDER BY bucket, sprite_name",
    )
    .bind(width)
    .bind(width)
    .bind(tenant_id)
    .bind(from)
    .bind(q.to_ms)
    .bind(q.sprite.as_deref())
    .bind(q.sprite.as_deref())
    .fetch_all(conn)
    .await?;
    let rows: Vec<UsageRow> = rows
        .into_iter()
        .map(|(start_ms, sprite, cpu, mem, disk, net, cost)| UsageRow {
            start_ms,
            sprite,
            cpu_ns: from_db(cpu),
            memory_byte_s: from_db(mem),
            disk_byte_s: from_db(disk),
            network_bytes: from_db(net),
            cost_nanos: Nanos(cost),
        })
        .collect();
    let total_nanos = rows.iter().map(|r| r.cost_nanos).sum();
    Ok(UsageReport { rows, total_nanos })
}

/// Everything one of the tenant's sprites has cost so far (0 before its first tick).
#[tracing::instrument(skip_all, fields(tenant = tenant_id, sprite = sprite_id))]
pub async fn sprite_cost(
    conn: &mut SqliteConnection,
    tenant_id: &str,
    sprite_id: i64,
) -> Result<Nanos, sqlx::Error> {
    let cost: Option<i64> = sqlx::query_scalar(
        "SELECT m.cost_nanos FROM meter_samples m JOIN sprites s ON s.id = m.sprite_id \
         WHERE m.sprite_id = ? AND s.tenant_id = ?",
    )
    .bind(sprite_id)
    .bind(tenant_id)
    .fetch_optional(conn)
    .await?;
    Ok(Nanos(cost.unwrap_or(0)))
}

/// Everything each of the tenant's sprites has cost so far, by sprite id.
#[tracing::instrument(skip_all, fields(tenant = tenant_id))]
pub async fn sprite_costs(
    conn: &mut SqliteConnection,
    tenant_id: &str,
) -> Result<HashMap<i64, Nanos>, sqlx::Error> {
    let rows: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT m.sprite_id, m.cost_nanos FROM meter_samples m JOIN sprites s ON s.id = m.sprite_id \
         WHERE s.tenant_id = ?",
    )
    .bind(tenant_id)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|(id, c)| (id, Nanos(c))).collect())
}
