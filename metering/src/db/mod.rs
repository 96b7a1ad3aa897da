//! The metering crate's SQL: small `#[instrument]`ed functions taking a connection or a
//! transaction (`&mut *tx`). What is SQLite's own is listed in [`sqlite`].

mod budget;
mod chores;
mod ledger;
mod outbox;
pub mod sqlite;
mod usage;

pub use budget::{
    chain_budgets, check_runway, scope_spent, spent_by_scope, tenant_budget, token_budget, Budget,
    BudgetContext, Extra, Refusal,
};
pub use chores::{close_period, compact_ledger, PeriodClose};
pub use ledger::{
    baselines, billing_cap, claim_tick, known_sprites, last_tick, live_scopes, minute_rows,
    parse_thresholds, read_scope_spend, tenants, token_tree, write_baselines, write_rows,
    write_scope_spend, RowWrite, ScopeSpendWrite, TenantInfo,
};
pub use outbox::{
    alerts, backlog, mark_failed, mark_sent, queue_alert, undelivered, NewAlert, OutboxMessage,
};
pub use usage::{sprite_cost, sprite_costs, usage, UsageQuery, UsageReport, UsageRow};

use sqlx::{QueryBuilder, Sqlite};

/// Rows per multi-row statement: well under SQLite's 32,766 bound variables.
const CHUNK: usize = 1000;

/// Unsigned usage into a signed column (values past i64 are not physical).
fn to_db(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A signed column back into unsigned usage (a negative value would be corrupt data).
fn from_db(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// Rows read as one JSON text (`json_group_array`) decoded.
fn from_json<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, sqlx::Error> {
    serde_json::from_str(json).map_err(|e| sqlx::Error::Decode(e.into()))
}

/// Appends `(?, ?, …)` binding each id.
fn push_ids(qb: &mut QueryBuilder<'_, Sqlite>, ids: &[i64]) {
    qb.push("(");
    let mut sep = qb.separated(", ");
    for id in ids {
        sep.push_bind(*id);
    }
    sep.push_unseparated(")");
}

/// Appends `(?, ?, …)` binding each string.
fn push_strs<'a>(qb: &mut QueryBuilder<'a, Sqlite>, items: &[&'a str]) {
    qb.push("(");
    let mut sep = qb.separated(", ");
    for item in items {
        sep.push_bind(*item);
    }
    sep.push_unseparated(")");
}
