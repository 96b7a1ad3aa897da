//! A tick's reads and writes: the tick id, baselines, ledger rows, caps and token trees,
//! spend per scope. All are called inside the tick's one transaction.

use std::collections::HashMap;

use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use super::{from_db, from_json, push_ids, push_strs, to_db, CHUNK};
use crate::fleet::FleetSprite;
use crate::money::Nanos;
use crate::scope::TokenNode;
use crate::tick::{Baseline, LedgerRow, SpriteUpdate};

/// Thresholds when a tenant's stored list cannot be read.
pub const DEFAULT_THRESHOLDS: [u32; 3] = [50, 80, 100];

/// Moves the tick id on, as the transaction's first statement (so it takes the write
/// lock). `None` when the last tick is not older than `now_ms`: a replayed or
/// concurrent tick, which must not count anything.
#[tracing::instrument(skip_all)]
pub async fn claim_tick(
    conn: &mut SqliteConnection,
    now_ms: i64,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE meter_state SET tick_id = tick_id + 1, at_ms = ? \
         WHERE singleton = 1 AND at_ms < ? RETURNING tick_id",
    )
    .bind(now_ms)
    .bind(now_ms)
    .fetch_optional(conn)
    .await
}

/// The last tick's id and time.
#[tracing::instrument(skip_all)]
pub async fn last_tick(conn: &mut SqliteConnection) -> Result<(i64, i64), sqlx::Error> {
    sqlx::query_as("SELECT tick_id, at_ms FROM meter_state WHERE singleton = 1")
        .fetch_one(conn)
        .await
}

/// The stored baselines of these sprites. Each chunk comes back as one JSON text, not
/// one row per sprite: sqlx hands every row from its SQLite thread with a wake-up, which
/// cost the tick tens of microseconds per sprite.
#[tracing::instrument(skip_all, fields(sprites = ids.len()))]
pub async fn baselines(
    conn: &mut SqliteConnection,
    ids: &[i64],
) -> Result<HashMap<i64, Baseline>, sqlx::Error> {
    let mut out = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Sqlite>::new(
            "SELECT json_group_array(json_array(sprite_id, at_ms, cpu_ns, memory_bytes, \
             disk_bytes, network_bytes, cost_nanos)) FROM meter_samples WHERE sprite_id IN ",
        );
        push_ids(&mut qb, chunk);
        let json: String = qb.build_query_scalar().fetch_one(&mut *conn).await?;
        let rows: Vec<(i64, i64, i64, i64, i64, i64, i64)> = from_json(&json)?;
        for (id, at_ms, cpu, mem, disk, net, cost) in rows {
            let b = Baseline {
                at_ms,
                cpu_ns: from_db(cpu),
                memory_bytes: from_db(mem),
                disk_bytes: from_db(disk),
                network_bytes: from_db(net),
                cost: Nanos(cost),
            };
            out.insert(id, b);
        }
    }
    Ok(out)
}

/// The ledger rows of one minute, by sprite.
#[tracing::instrument(skip_all)]
pub async fn minute_rows(
    conn: &mut SqliteConnection,
    minute_ms: i64,
) -> Result<HashMap<i64, LedgerRow>, sqlx::Error> {
    // One JSON text for the whole minute (see [`baselines`]).
    let json: String = sqlx::query_scalar(
        "SELECT json_group_array(json_array(sprite_id, cpu_ns, memory_byte_ms, disk_byte_ms, \
         network_bytes, cost_nanos)) FROM usage_minutes WHERE minute_ms = ?",
    )
    .bind(minute_ms)
    .fetch_one(conn)
    .await?;
    let rows: Vec<(i64, i64, i64, i64, i64, i64)> = from_json(&json)?;
    Ok(rows
        .into_iter()
        .map(|(id, cpu, mem, disk, net, cost)| {
            let usage = crate::prices::Usage {
                cpu_ns: from_db(cpu),
                memory_byte_ms: from_db(mem),
                disk_byte_ms: from_db(disk),
                network_bytes: from_db(net),
            };
            (
                id,
                LedgerRow {
                    usage,
                    cost: Nanos(cost),
                },
            )
        })
        .collect())
}

/// One ledger row to write: its sprite and its new totals.
#[derive(Clone, Copy, Debug)]
pub struct RowWrite<'a> {
    /// The sprite (tenant, name and creating token are copied into the row).
    pub sprite: &'a FleetSprite,
    /// Totals and cost.
    pub row: LedgerRow,
}

/// Writes ledger rows of one minute with their new totals.
#[tracing::instrument(skip_all, fields(rows = rows.len()))]
pub async fn write_rows(
    conn: &mut SqliteConnection,
    minute_ms: i64,
    rows: &[RowWrite<'_>],
) -> Result<(), sqlx::Error> {
    for chunk in rows.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Sqlite>::new(
            "INSERT INTO usage_minutes (minute_ms, sprite_id, tenant_id, sprite_name, token_id, \
             cpu_ns, memory_byte_ms, disk_byte_ms, network_bytes, cost_nanos) ",
        );
        qb.push_values(chunk, |mut b, w| {
            b.push_bind(minute_ms)
                .push_bind(w.sprite.sprite_id)
                .push_bind(w.sprite.tenant_id.as_str())
                .push_bind(w.sprite.name.as_str())
                .push_bind(w.sprite.created_by_token.as_deref())
                .push_bind(to_db(w.row.usage.cpu_ns))
                .push_bind(to_db(w.row.usage.memory_byte_ms))
                .push_bind(to_db(w.row.usage.disk_byte_ms))
                .push_bind(to_db(w.row.usage.network_bytes))
                .push_bind(w.row.cost.get());
        });
        qb.push(
            " ON CONFLICT (minute_ms, sprite_id) DO UPDATE SET cpu_ns = excluded.cpu_ns, \
             memory_byte_ms = excluded.memory_byte_ms, disk_byte_ms = excluded.disk_byte_ms, \
             network_bytes = excluded.network_bytes, cost_nanos = excluded.cost_nanos, \
             sprite_name = excluded.sprite_name",
        );
        qb.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// Stores each sprite's new baseline with the tick that read it.
#[tracing::instrument(skip_all, fields(sprites = updates.len()))]
pub async fn write_baselines(
    conn: &mut SqliteConnection,
    tick_id: i64,
    updates: &[SpriteUpdate],
) -> Result<(), sqlx::Error> {
    for chunk in updates.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Sqlite>::new(
            "INSERT INTO meter_samples (sprite_id, tick_id, at_ms, cpu_ns, memory_bytes, disk_bytes, \
             network_bytes, cost_nanos) ",
        );
        qb.push_values(chunk, |mut b, u| {
            b.push_bind(u.sprite_id)
                .push_bind(tick_id)
                .push_bind(u.baseline.at_ms)
                .push_bind(to_db(u.baseline.cpu_ns))
                .push_bind(to_db(u.baseline.memory_bytes))
                .push_bind(to_db(u.baseline.disk_bytes))
                .push_bind(to_db(u.baseline.network_bytes))
                .push_bind(u.baseline.cost.get());
        });
        qb.push(
            " ON CONFLICT (sprite_id) DO UPDATE SET tick_id = excluded.tick_id, at_ms = excluded.at_ms, \
             cpu_ns = excluded.cpu_ns, memory_bytes = excluded.memory_bytes, \
             disk_bytes = excluded.disk_bytes, network_bytes = excluded.network_bytes, \
             cost_nanos = excluded.cost_nanos",
        );
        qb.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// A tenant's cap and alert settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantInfo {
    /// `tenants.cap_nanos`; `None` means the operator's default.
    pub cap: Option<Nanos>,
    /// Alert thresholds, percent of a cap.
    pub thresholds_pct: Vec<u32>,
    /// Where alerts go: the alert e-mail, else the account's.
    pub email: String,
    /// What billing lets the tenant spend this period (see [`billing_cap`]); `None`
    /// when billing sets no limit.
    pub credit: Option<Nanos>,
}

/// What billing lets a tenant spend in the current period, a second cap beside the
/// monthly one (the lesser wins): nothing once a failed payment's grace is over, and
/// in prepaid mode the credit ever added less what earlier periods spent (so
/// `credit − spent this period` is the balance).
pub fn billing_cap(
    prepaid: bool,
    credited: i64,
    prior_spent: i64,
    suspended: bool,
) -> Option<Nanos> {
    if suspended {
        Some(Nanos::ZERO)
    } else if prepaid {
        Some(Nanos(credited.saturating_sub(prior_spent)))
    } else {
        None
    }
}

/// The billing columns of `tenants` and [`billing_cap`]'s inputs, for `WHERE t.id …`.
pub(super) const BILLING_COLUMNS: &str = "COALESCE((SELECT credited_nanos FROM billing_accounts b \
     WHERE b.tenant_id = t.id), 0), \
     COALESCE((SELECT SUM(spent_nanos) FROM scope_spend p WHERE p.scope = 'tenant:' || t.id \
     AND p.period_start_ms < ?), 0), \
     EXISTS (SELECT 1 FROM billing_accounts b WHERE b.tenant_id = t.id AND b.payment_state = 'suspended')";

/// Parses `tenants.thresholds_pct` (a JSON array); broken data falls back to defaults.
pub fn parse_thresholds(json: &str) -> Vec<u32> {
    serde_json::from_str(json).unwrap_or_else(|_| DEFAULT_THRESHOLDS.to_vec())
}

/// Caps and alert settings of these tenants.
#[tracing::instrument(skip_all, fields(tenants = ids.len()))]
pub async fn tenants(
    conn: &mut SqliteConnection,
    ids: &[&str],
    period_start_ms: i64,
    prepaid: bool,
) -> Result<HashMap<String, TenantInfo>, sqlx::Error> {
    let mut out = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Sqlite>::new(
            "SELECT t.id, t.cap_nanos, t.thresholds_pct, COALESCE(t.alert_email, t.email), ",
        );
        let (before, after) = BILLING_COLUMNS.split_once('?').expect("one parameter");
        qb.push(before);
        qb.push_bind(period_start_ms);
        qb.push(after);
        qb.push(" FROM tenants t WHERE t.id IN ");
        push_strs(&mut qb, chunk);
        type Row = (String, Option<i64>, String, String, i64, i64, bool);
        let rows: Vec<Row> = qb.build_query_as().fetch_all(&mut *conn).await?;
        for (id, cap, thresholds, email, credited, prior, suspended) in rows {
            let info = TenantInfo {
                cap: cap.map(Nanos),
                thresholds_pct: parse_thresholds(&thresholds),
                email,
                credit: billing_cap(prepaid, credited, prior, suspended),
            };
            out.insert(id, info);
        }
    }
    Ok(out)
}

/// These tokens and all of their ancestors, by id.
#[tracing::instrument(skip_all, fields(seeds = seeds.len()))]
pub async fn token_tree(
    conn: &mut SqliteConnection,
    seeds: &[&str],
) -> Result<HashMap<String, TokenNode>, sqlx::Error> {
    let mut out = HashMap::new();
    for chunk in seeds.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Sqlite>::new(
            "WITH RECURSIVE chain(id) AS (SELECT id FROM api_tokens WHERE id IN ",
        );
        push_strs(&mut qb, chunk);
        qb.push(
            " UNION SELECT t.parent_id FROM api_tokens t JOIN chain c ON t.id = c.id \
             WHERE t.parent_id IS NOT NULL) \
             SELECT a.id, a.parent_id, a.budget_nanos, a.name FROM api_tokens a JOIN chain c ON a.id = c.id",
        );
        let rows: Vec<(String, Option<String>, Option<i64>, String)> =
            qb.build_query_as().fetch_all(&mut *conn).await?;
        for (id, parent_id, budget, name) in rows {
            out.insert(
                id.clone(),
                TokenNode {
                    id,
                    parent_id,
                    budget: budget.map(Nanos),
                    name,
                },
            );
        }
    }
    Ok(out)
}

/// Spend so far in the period of each of these scope keys (absent ones spent nothing).
#[tracing::instrument(skip_all, fields(scopes = keys.len()))]
pub async fn read_scope_spend(
    conn: &mut SqliteConnection,
    period_start_ms: i64,
    keys: &[&str],
) -> Result<HashMap<String, Nanos>, sqlx::Error> {
    let mut out = HashMap::with_capacity(keys.len());
    for chunk in keys.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Sqlite>::new(
            "SELECT scope, spent_nanos FROM scope_spend WHERE period_start_ms = ",
        );
        qb.push_bind(period_start_ms).push(" AND scope IN ");
        push_strs(&mut qb, chunk);
        let rows: Vec<(String, i64)> = qb.build_query_as().fetch_all(&mut *conn).await?;
        out.extend(rows.into_iter().map(|(k, v)| (k, Nanos(v))));
    }
    Ok(out)
}

/// One scope's state after a tick.
#[derive(Clone, Copy, Debug)]
pub struct ScopeSpendWrite<'a> {
    /// The scope key.
    pub scope: &'a str,
    /// Spent in the period, this tick included.
    pub spent: Nanos,
    /// Bytes its sprites store.
    pub stored_bytes: u64,
    /// How many sprites it has.
    pub sprites: u64,
    /// Actual spend per second over the last minute.
    pub burn_per_s: Nanos,
    /// Its running sprites flat out, per second.
    pub worst_burn_per_s: Nanos,
}

/// Writes each scope's spend and what the meter saw.
#[tracing::instrument(skip_all, fields(scopes = rows.len()))]
pub async fn write_scope_spend(
    conn: &mut SqliteConnection,
    period_start_ms: i64,
    now_ms: i64,
    rows: &[ScopeSpendWrite<'_>],
) -> Result<(), sqlx::Error> {
    for chunk in rows.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Sqlite>::new(
            "INSERT INTO scope_spend (scope, period_start_ms, spent_nanos, stored_bytes, sprites, \
             burn_nanos_per_s, worst_burn_nanos_per_s, updated_ms) ",
        );
        qb.push_values(chunk, |mut b, r| {
            b.push_bind(r.scope)
                .push_bind(period_start_ms)
                .push_bind(r.spent.get())
                .push_bind(to_db(r.stored_bytes))
                .push_bind(to_db(r.sprites))
                .push_bind(r.burn_per_s.get())
                .push_bind(r.worst_burn_per_s.get())
                .push_bind(now_ms);
        });
        qb.push(
            " ON CONFLICT (scope, period_start_ms) DO UPDATE SET spent_nanos = excluded.spent_nanos, \
             stored_bytes = excluded.stored_bytes, sprites = excluded.sprites, \
             burn_nanos_per_s = excluded.burn_nanos_per_s, \
             worst_burn_nanos_per_s = excluded.worst_burn_nanos_per_s, updated_ms = excluded.updated_ms",
        );
        qb.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// Scopes of the period that had sprites at the last tick (a restarted meter zeroes
/// those that have none left).
#[tracing::instrument(skip_all)]
pub async fn live_scopes(
    conn: &mut SqliteConnection,
    period_start_ms: i64,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT scope FROM scope_spend WHERE period_start_ms = ? AND sprites > 0")
        .bind(period_start_ms)
        .fetch_all(conn)
        .await
}

/// Which of these ledger items the database knows: sprites (`sprites.id`) and tenant
/// images (`-images.id`). An item it does not know must not poison every tick.
#[tracing::instrument(skip_all, fields(sprites = ids.len()))]
pub async fn known_sprites(
    conn: &mut SqliteConnection,
    ids: &[i64],
) -> Result<std::collections::HashSet<i64>, sqlx::Error> {
    let mut out = std::collections::HashSet::with_capacity(ids.len());
    for chunk in ids.chunks(CHUNK) {
        // One JSON text per chunk (see [`baselines`]).
        let mut qb = QueryBuilder::<Sqlite>::new(
            "SELECT json_group_array(id) FROM (SELECT id FROM sprites WHERE id IN ",
        );
        push_ids(&mut qb, chunk);
        qb.push(" UNION ALL SELECT -id FROM images WHERE -id IN ");
        push_ids(&mut qb, chunk);
        qb.push(")");
        let json: String = qb.build_query_scalar().fetch_one(&mut *conn).await?;
        out.extend(from_json::<Vec<i64>>(&json)?);
    }
    Ok(out)
}
