//! The operator's built-in chores: closing last month's totals, compacting the ledger,
//! pruning de-duplication tables. (The egress decision log is in memory and bounded per
//! sprite, so it has nothing to prune.)

use std::time::Duration;

use corral_metering::period::{Period, DAY_MS, MINUTE_MS};
use corral_metering::{db as mdb, now_ms};
use sqlx::SqlitePool;

use super::Jobs;
use crate::config::Config;
use crate::db;

/// Adds the built-in jobs with their configured times.
pub fn add_builtin(jobs: &mut Jobs, pool: &SqlitePool, config: &Config) -> anyhow::Result<()> {
    let p = pool.clone();
    jobs.add("period-close", &config.job_period_close, move || {
        close_last_period(p.clone())
    })?;
    let (p, days) = (pool.clone(), config.ledger_compact_after_days);
    jobs.add("ledger-compact", &config.job_ledger_compact, move || {
        compact(p.clone(), days)
    })?;
    let (p, keep_h, runs) = (
        pool.clone(),
        config.idempotency_keep_h,
        config.schedule_runs_kept,
    );
    jobs.add("prune", &config.job_prune, move || {
        prune(p.clone(), keep_h, runs)
    })?;
    Ok(())
}

/// Months looked back at by a period close: one that a stopped server missed is closed
/// at the next close.
const CLOSE_LOOKBACK: usize = 3;

/// Writes each tenant's totals of the months that ended (once; a rerun writes nothing)
/// and warns where the meter's spend and the ledger disagree.
pub async fn close_last_period(pool: SqlitePool) -> anyhow::Result<()> {
    let now = now_ms();
    let mut periods = Vec::with_capacity(CLOSE_LOOKBACK);
    let mut start = Period::containing(now).start_ms;
    for _ in 0..CLOSE_LOOKBACK {
        let period = Period::containing(start - 1);
        start = period.start_ms;
        periods.push(period);
    }
    for period in periods.into_iter().rev() {
        let closed = mdb::close_period(&pool, period, now).await?;
        for c in closed.iter().filter(|c| c.ledger_nanos != c.spent_nanos) {
            tracing::warn!(tenant = %c.tenant_id, ledger = c.ledger_nanos, spent = c.spent_nanos,
                "closed period: the meter's spend differs from the ledger");
        }
        if !closed.is_empty() {
            tracing::info!(period = %corral_metering::period::rfc3339(period.start_ms),
                tenants = closed.len(), "period closed");
        }
    }
    Ok(())
}

/// Folds ledger minutes older than `after_days` into hours. With 0 days, every hour
/// that ended a few minutes ago (a tick in flight still lands on its minute).
pub async fn compact(pool: SqlitePool, after_days: u64) -> anyhow::Result<()> {
    let margin = if after_days == 0 { 2 * MINUTE_MS } else { 0 };
    let before = now_ms() - after_days as i64 * DAY_MS - margin;
    let folded = mdb::compact_ledger(&pool, before).await?;
    tracing::info!(folded, "ledger compacted");
    Ok(())
}

/// Deletes idempotency keys older than `keep_h` hours and schedule runs past the last
/// `runs_kept` of each schedule.
pub async fn prune(pool: SqlitePool, keep_h: u64, runs_kept: u32) -> anyhow::Result<()> {
    let older_than = db::now_s() - Duration::from_secs(keep_h * 3600).as_secs() as i64;
    let keys = db::chores::prune_idempotency_keys(&pool, older_than).await?;
    let runs = db::schedules::prune_runs(&pool, runs_kept).await?;
    tracing::info!(keys, runs, "pruned");
    Ok(())
}
