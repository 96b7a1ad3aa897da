//! Budgets as the API shows them (`GET /v1/budget`, a token's spend) and the runway
//! check behind the 402s on create, resume, exec and wake.

use std::collections::HashMap;

use sqlx::SqliteConnection;

use super::from_db;
use super::ledger::{billing_cap, parse_thresholds, read_scope_spend, token_tree, BILLING_COLUMNS};
use crate::money::Nanos;
use crate::period::Period;
use crate::prices::Prices;
use crate::rule;
use crate::scope::{token_chain, Scope};

/// What a budget read needs besides the database.
#[derive(Clone, Copy, Debug)]
pub struct BudgetContext {
    /// The price table in force.
    pub prices: Prices,
    /// The operator's cap for tenants whose `cap_nanos` is NULL (`None`: no cap).
    pub default_tenant_cap: Option<Nanos>,
    /// Now, unix milliseconds.
    pub now_ms: i64,
    /// Prepaid billing: a tenant's credit is a second cap (see [`super::billing_cap`]).
    pub prepaid: bool,
}

/// One scope's budget in the current period.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Whose budget.
    pub scope: Scope,
    /// The period's first millisecond.
    pub period_start_ms: i64,
    /// When the period resets.
    pub period_end_ms: i64,
    /// The cap; `None` is no cap.
    pub cap: Option<Nanos>,
    /// Spent this period.
    pub spent: Nanos,
    /// Keeping today's stored bytes to the period's end.
    pub storage_reserved: Nanos,
    /// `cap − spent − storage_reserved`; `None` without a cap.
    pub available: Option<Nanos>,
    /// Bytes stored at the last tick.
    pub stored_bytes: u64,
    /// Actual spend per second over the last minute.
    pub burn_nanos_per_s: Nanos,
    /// Running sprites flat out, per second (what the runway check charges).
    pub worst_burn_nanos_per_s: Nanos,
    /// Alert thresholds (the tenant's), percent.
    pub thresholds_pct: Vec<u32>,
    /// Sprites of the scope paused with `pause_reason: budget`.
    pub paused_for_budget: i64,
    /// When `available` runs out at the current burn.
    pub exhausts_at_ms: Option<i64>,
}

impl Budget {
    /// `unlimited`, `exhausted` (nothing available), `paused` (sprites paused for
    /// budget are waiting for `resume_paused`) or `ok`.
    pub fn state(&self) -> &'static str {
        match self.available {
            None => "unlimited",
            Some(a) if a <= Nanos::ZERO => "exhausted",
            Some(_) if self.paused_for_budget > 0 => "paused",
            Some(_) => "ok",
        }
    }
}

/// A refusal for the 402: which scope, how much is left, how much was needed, when the
/// period resets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The scope that cannot afford it.
    pub scope: Scope,
    /// `budget_exhausted` or `token_budget_exhausted`.
    pub code: &'static str,
    /// What is available (never below zero).
    pub available: Nanos,
    /// What the runway needs.
    pub needed: Nanos,
    /// When the period resets.
    pub resets_at_ms: i64,
}

type SpendRow = (i64, i64, i64, i64, i64, i64, i64);

async fn build(
    conn: &mut SqliteConnection,
    scope: Scope,
    cap: Option<Nanos>,
    thresholds_pct: Vec<u32>,
    paused_for_budget: i64,
    ctx: &BudgetContext,
) -> Result<Budget, sqlx::Error> {
    let period = Period::containing(ctx.now_ms);
    let row: Option<SpendRow> = sqlx::query_as(
        "SELECT period_start_ms, spent_nanos, stored_bytes, sprites, burn_nanos_per_s, \
         worst_burn_nanos_per_s, updated_ms FROM scope_spend WHERE scope = ? \
         ORDER BY period_start_ms DESC LIMIT 1",
    )
    .bind(scope.key())
    .fetch_optional(conn)
    .await?;
    let (start, spent, stored, sprites, burn, worst, updated) = row.unwrap_or_default();
    let spent = if start == period.start_ms {
        Nanos(spent)
    } else {
        Nanos::ZERO
    };
    // A burn figure the meter has not refreshed for a minute is no longer a burn.
    let fresh = ctx.now_ms - updated <= 60_000;
    let burn = if fresh { Nanos(burn) } else { Nanos::ZERO };
    let stored_bytes = from_db(stored);
    let storage_reserved = rule::storage_reserved(
        &ctx.prices,
        stored_bytes,
        from_db(sprites),
        period.remaining_ms(ctx.now_ms),
    );
    let available = cap.map(|c| rule::available(c, spent, storage_reserved));
    let exhausts_at_ms = match available {
        Some(a) if burn > Nanos::ZERO => {
            Some(ctx.now_ms + (a.get().max(0) as i128 * 1000 / burn.get() as i128) as i64)
        }
        _ => None,
    };
    Ok(Budget {
        scope,
        period_start_ms: period.start_ms,
        period_end_ms: period.end_ms,
        cap,
        spent,
        storage_reserved,
        available,
        stored_bytes,
        burn_nanos_per_s: burn,
        worst_burn_nanos_per_s: if fresh { Nanos(worst) } else { Nanos::ZERO },
        thresholds_pct,
        paused_for_budget,
        exhausts_at_ms,
    })
}

/// The tenant's cap, thresholds and paused-for-budget count (`None`: no such tenant).
/// The cap is the lesser of the monthly cap and what billing allows this period.
async fn tenant_row(
    conn: &mut SqliteConnection,
    tenant_id: &str,
    ctx: &BudgetContext,
) -> Result<Option<(Option<Nanos>, Vec<u32>, i64)>, sqlx::Error> {
    let (before, after) = BILLING_COLUMNS.split_once('?').expect("one parameter");
    let sql = format!(
        "SELECT t.cap_nanos, t.thresholds_pct, (SELECT COUNT(*) FROM sprites s WHERE s.tenant_id = t.id \
         AND s.state = 'paused' AND s.pause_reason IN ('budget', 'billing') AND s.deleted_at IS NULL), \
         {before}?{after} FROM tenants t WHERE t.id = ?"
    );
    let row: Option<(Option<i64>, String, i64, i64, i64, bool)> = sqlx::query_as(&sql)
        .bind(Period::containing(ctx.now_ms).start_ms)
        .bind(tenant_id)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(|(cap, th, paused, credited, prior, suspended)| {
        let cap = cap.map(Nanos).or(ctx.default_tenant_cap);
        let credit = billing_cap(ctx.prepaid, credited, prior, suspended);
        let cap = match (cap, credit) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        (cap, parse_thresholds(&th), paused)
    }))
}

/// A tenant's budget (`None`: no such tenant).
#[tracing::instrument(skip_all, fields(tenant = tenant_id))]
pub async fn tenant_budget(
    conn: &mut SqliteConnection,
    tenant_id: &str,
    ctx: &BudgetContext,
) -> Result<Option<Budget>, sqlx::Error> {
    let Some((cap, thresholds, paused)) = tenant_row(conn, tenant_id, ctx).await? else {
        return Ok(None);
    };
    Ok(Some(
        build(
            conn,
            Scope::Tenant(tenant_id.to_owned()),
            cap,
            thresholds,
            paused,
            ctx,
        )
        .await?,
    ))
}

/// One token's budget: the spend of its own and all of its descendants' sprites
/// (`None`: no such token in this tenant).
#[tracing::instrument(skip_all, fields(tenant = tenant_id, token = token_id))]
pub async fn token_budget(
    conn: &mut SqliteConnection,
    tenant_id: &str,
    token_id: &str,
    ctx: &BudgetContext,
) -> Result<Option<Budget>, sqlx::Error> {
    let Some((_, thresholds, _)) = tenant_row(conn, tenant_id, ctx).await? else {
        return Ok(None);
    };
    let row: Option<(Option<i64>, i64)> = sqlx::query_as(
        "WITH RECURSIVE d(id) AS (SELECT id FROM api_tokens WHERE id = ? AND tenant_id = ? \
         UNION SELECT t.id FROM api_tokens t JOIN d ON t.parent_id = d.id) \
         SELECT (SELECT budget_nanos FROM api_tokens WHERE id = ?), \
         (SELECT COUNT(*) FROM sprites s WHERE s.created_by_token IN (SELECT id FROM d) \
          AND s.tenant_id = ? AND s.state = 'paused' AND s.pause_reason = 'budget' AND s.deleted_at IS NULL) \
         WHERE EXISTS (SELECT 1 FROM d)",
    )
    .bind(token_id)
    .bind(tenant_id)
    .bind(token_id)
    .bind(tenant_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((budget, paused)) = row else {
        return Ok(None);
    };
    let scope = Scope::Token(token_id.to_owned());
    Ok(Some(
        build(conn, scope, budget.map(Nanos), thresholds, paused, ctx).await?,
    ))
}

/// Every budget a sprite created by `token_id` counts against: the tenant's first,
/// then the token's and each ancestor's.
#[tracing::instrument(skip_all, fields(tenant = tenant_id))]
pub async fn chain_budgets(
    conn: &mut SqliteConnection,
    tenant_id: &str,
    token_id: Option<&str>,
    ctx: &BudgetContext,
) -> Result<Vec<Budget>, sqlx::Error> {
    let Some(tenant) = tenant_budget(conn, tenant_id, ctx).await? else {
        return Ok(Vec::new());
    };
    let mut out = vec![tenant];
    if let Some(token_id) = token_id {
        let tree = token_tree(conn, &[token_id]).await?;
        let ids: Vec<String> = token_chain(&tree, token_id)
            .iter()
            .map(|t| t.id.clone())
            .collect();
        for id in ids {
            if let Some(b) = token_budget(conn, tenant_id, &id, ctx).await? {
                out.push(b);
            }
        }
    }
    Ok(out)
}

/// What a sprite the meter has not seen yet adds to the runway check of one scope.
#[derive(Clone, Copy, Debug, Default)]
pub struct Extra {
    /// Its worst burn (and that of others admitted since the last tick), per second.
    pub worst_burn_per_s: Nanos,
    /// What keeping its whole disk to the period's end reserves (a new sprite's).
    pub reserve: Nanos,
}

/// The runway check: every scope of the chain must be able to run what runs now plus
/// `extra(scope)` for `runway_s`, with `extra(scope).reserve` set aside. Answers the
/// scopes checked (those with a cap) when all could, else the refusal of the first
/// that could not. Pass the token whose chain the sprite's spend counts against (its
/// creator).
#[tracing::instrument(skip_all, fields(tenant = tenant_id))]
pub async fn check_runway(
    conn: &mut SqliteConnection,
    tenant_id: &str,
    token_id: Option<&str>,
    extra: &(dyn Fn(&Scope) -> Extra + Sync),
    runway_s: u64,
    ctx: &BudgetContext,
) -> Result<Result<Vec<Scope>, Refusal>, sqlx::Error> {
    let mut checked = Vec::new();
    for b in chain_budgets(conn, tenant_id, token_id, ctx).await? {
        let Some(available) = b.available else {
            continue;
        };
        let extra = extra(&b.scope);
        let left = available - extra.reserve;
        if !rule::runway_ok(
            left,
            b.worst_burn_nanos_per_s,
            extra.worst_burn_per_s,
            runway_s,
        ) {
            let needed = (b.worst_burn_nanos_per_s + extra.worst_burn_per_s)
                .saturating_mul(i64::try_from(runway_s).unwrap_or(i64::MAX))
                + extra.reserve;
            return Ok(Err(Refusal {
                code: b.scope.exhausted_code(),
                scope: b.scope,
                available: available.max(Nanos::ZERO),
                needed,
                resets_at_ms: b.period_end_ms,
            }));
        }
        checked.push(b.scope);
    }
    Ok(Ok(checked))
}

/// What one scope spent in the period starting at `period_start_ms`.
#[tracing::instrument(skip_all)]
pub async fn scope_spent(
    conn: &mut SqliteConnection,
    scope: &Scope,
    period_start_ms: i64,
) -> Result<Nanos, sqlx::Error> {
    let key = scope.key();
    Ok(read_scope_spend(conn, period_start_ms, &[key.as_str()])
        .await?
        .remove(&key)
        .unwrap_or_default())
}

/// What each of these scopes spent in the period (e.g. every token in `GET /v1/tokens`).
#[tracing::instrument(skip_all)]
pub async fn spent_by_scope(
    conn: &mut SqliteConnection,
    scopes: &[Scope],
    period_start_ms: i64,
) -> Result<HashMap<Scope, Nanos>, sqlx::Error> {
    let keys: Vec<String> = scopes.iter().map(Scope::key).collect();
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let spent = read_scope_spend(conn, period_start_ms, &refs).await?;
    Ok(scopes
        .iter()
        .map(|s| (s.clone(), spent.get(&s.key()).copied().unwrap_or_default()))
        .collect())
}
