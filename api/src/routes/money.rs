//! Money over HTTP: the budget (read, change, resume what it paused), usage reports,
//! the price table and the alerts sent or queued.

use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use corral_metering::db::UsageQuery;
use corral_metering::period::{rfc3339, Period};
use corral_metering::{now_ms, Granularity};

use crate::caller::Caller;
use crate::domain::SpriteName;
use crate::error::{ApiError, ApiResult};
use crate::extract::{AppJson, Billing, Budget, Scoped};
use crate::money::budget::{BudgetUpdate, TenantBudget};
use crate::money::reports;
use crate::state::AppState;

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_budget, put_budget))
        .routes(routes!(usage))
        .routes(routes!(prices))
        .routes(routes!(alerts))
}

/// The tenant's budget this period, and the calling token's budgets.
#[utoipa::path(get, path = "/v1/budget", tag = "money", security(("bearer" = [])),
    responses((status = 200, body = TenantBudget), (status = 403, body = crate::error::Problem)))]
async fn get_budget(
    State(state): State<AppState>,
    Scoped(caller, ..): Scoped<Budget>,
) -> ApiResult<AppJson<TenantBudget>> {
    Ok(AppJson(state.budgets().show(&caller).await?))
}

/// Changes the cap, thresholds or alert address; `resume_paused` resumes the sprites
/// the budget paused that fit now.
#[utoipa::path(put, path = "/v1/budget", tag = "money", security(("bearer" = [])), request_body = BudgetUpdate,
    responses((status = 200, body = TenantBudget), (status = 403, body = crate::error::Problem),
              (status = 422, body = crate::error::Problem)))]
async fn put_budget(
    State(state): State<AppState>,
    Scoped(caller, ..): Scoped<Budget>,
    AppJson(change): AppJson<BudgetUpdate>,
) -> ApiResult<AppJson<TenantBudget>> {
    Ok(AppJson(state.budgets().update(&caller, change).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct UsageParams {
    /// From (RFC 3339, inclusive; default: the start of the billing period).
    from: Option<String>,
    /// To (RFC 3339, exclusive; default: now).
    to: Option<String>,
    /// minute, hour or day (default: day).
    by: Option<String>,
    /// Only this sprite.
    sprite: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct UsageRowView {
    /// The bucket's start.
    start: String,
    sprite: String,
    cpu_ns: u64,
    memory_byte_s: u64,
    disk_byte_s: u64,
    /// Bytes moved through the way out, both directions.
    network_bytes: u64,
    cost_nanos: i64,
}

#[derive(Serialize, ToSchema)]
struct UsageView {
    from: String,
    to: String,
    by: String,
    rows: Vec<UsageRowView>,
    total_nanos: i64,
    total_usd: String,
}

/// The longest report: a year (a month for minute rows).
const MAX_SPAN_MS: i64 = 366 * 86_400_000;
const MAX_MINUTE_SPAN_MS: i64 = 31 * 86_400_000;

fn parse_time(field: &str, raw: &str) -> ApiResult<i64> {
    chrono::DateTime::parse_from_rfc3339(raw)
        .map(|t| t.timestamp_millis())
        .map_err(|_| {
            ApiError::Validation(format!(
                "{field} must be an RFC 3339 time such as 2026-11-01T00:00:00Z, got {raw:?}"
            ))
        })
}

/// Usage per sprite by minute, hour or day, with what it cost.
#[utoipa::path(get, path = "/v1/usage", tag = "money", security(("bearer" = [])), params(UsageParams),
    responses((status = 200, body = UsageView), (status = 422, body = crate::error::Problem)))]
async fn usage(
    State(state): State<AppState>,
    Scoped(caller, ..): Scoped<Billing>,
    Query(params): Query<UsageParams>,
) -> ApiResult<AppJson<UsageView>> {
    let now = now_ms();
    let from_ms = match params.from.as_deref() {
        Some(raw) => parse_time("from", raw)?,
        None => Period::containing(now).start_ms,
    };
    let to_ms = match params.to.as_deref() {
        Some(raw) => parse_time("to", raw)?,
        None => now + 1,
    };
    let by_name = params.by.as_deref().unwrap_or("day");
    let by = Granularity::parse(by_name).ok_or_else(|| {
        ApiError::Validation(format!("by must be minute, hour or day, got {by_name:?}"))
    })?;
    if to_ms <= from_ms {
        return Err(ApiError::Validation("to must be after from".into()));
    }
    let max = if by == Granularity::Minute {
        MAX_MINUTE_SPAN_MS
    } else {
        MAX_SPAN_MS
    };
    if to_ms - from_ms > max {
        return Err(ApiError::Validation(format!(
            "a report by {by_name} spans at most {} days",
            max / 86_400_000
        )));
    }
    let sprite = params
        .sprite
        .as_deref()
        .map(SpriteName::parse)
        .transpose()?
        .map(|n| n.0);
    let query = UsageQuery {
        from_ms,
        to_ms,
        by,
        sprite,
    };
    let rows: Vec<UsageRowView> = reports::usage(&state.pool, &caller, &query)
        .await?
        .into_iter()
        .map(|r| UsageRowView {
            start: rfc3339(r.start_ms),
            sprite: r.sprite,
            cpu_ns: r.cpu_ns,
            memory_byte_s: r.memory_byte_s,
            disk_byte_s: r.disk_byte_s,
            network_bytes: r.network_bytes,
            cost_nanos: r.cost_nanos.get(),
        })
        .collect();
    let total: corral_metering::Nanos = rows.iter().map(|r| r.cost_nanos.into()).sum();
    Ok(AppJson(UsageView {
        from: rfc3339(from_ms),
        to: rfc3339(to_ms),
        by: by_name.into(),
        rows,
        total_nanos: total.get(),
        total_usd: total.usd(),
    }))
}

#[derive(Serialize, ToSchema)]
struct PricesView {
    /// Per second of CPU time used.
    cpu_nanos_per_cpu_s: u64,
    /// Per GB (1e9 bytes) of memory in use for a second.
    memory_nanos_per_gb_s: u64,
    /// Per GB stored for a month of 730 hours, checkpoints included.
    disk_nanos_per_gb_month: u64,
    /// Per GB moved through a sprite's way out, either direction.
    network_nanos_per_gb: u64,
    currency: &'static str,
    /// How often usage is sampled.
    tick_ms: u64,
    /// Seconds of full-speed running a sprite must afford to start or resume.
    min_runway_s: u64,
}

/// The price table in force.
#[utoipa::path(get, path = "/v1/prices", tag = "money", security(("bearer" = [])),
    responses((status = 200, body = PricesView)))]
async fn prices(State(state): State<AppState>, _auth: Caller) -> AppJson<PricesView> {
    let p = crate::money::prices(&state.config);
    AppJson(PricesView {
        cpu_nanos_per_cpu_s: p.cpu_nanos_per_cpu_s,
        memory_nanos_per_gb_s: p.memory_nanos_per_gb_s,
        disk_nanos_per_gb_month: p.disk_nanos_per_gb_month,
        network_nanos_per_gb: p.network_nanos_per_gb,
        currency: "USD",
        tick_ms: state.config.tick_ms,
        min_runway_s: state.money.runway_s(&state.config),
    })
}

#[derive(Serialize, ToSchema)]
struct AlertView {
    id: i64,
    /// `threshold`.
    kind: String,
    /// `tenant` or `token:<id>`.
    scope: String,
    threshold_pct: i64,
    to_email: String,
    subject: String,
    body: String,
    created_at: String,
    sent_at: Option<String>,
    /// queued, sent, retrying or failed.
    state: &'static str,
    attempts: i64,
    last_error: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct AlertList {
    alerts: Vec<AlertView>,
}

/// The tenant's alerts, sent or queued, newest first.
#[utoipa::path(get, path = "/v1/alerts", tag = "money", security(("bearer" = [])),
    responses((status = 200, body = AlertList)))]
async fn alerts(
    State(state): State<AppState>,
    Scoped(caller, ..): Scoped<Billing>,
) -> ApiResult<AppJson<AlertList>> {
    let alerts = reports::alerts(&state.pool, &caller)
        .await?
        .into_iter()
        .map(|m| AlertView {
            state: match (m.sent_at_ms, m.attempts, m.last_error.is_some()) {
                (Some(_), _, _) => "sent",
                (None, 0, _) => "queued",
                (None, n, true) if n >= 20 => "failed",
                (None, _, _) => "retrying",
            },
            scope: match corral_metering::Scope::parse(&m.scope) {
                Some(corral_metering::Scope::Token(id)) => format!("token:{id}"),
                _ => "tenant".into(),
            },
            id: m.id,
            kind: m.kind,
            threshold_pct: m.threshold_pct,
            to_email: m.to_email,
            subject: m.subject,
            body: m.body,
            created_at: rfc3339(m.created_at_ms),
            sent_at: m.sent_at_ms.map(rfc3339),
            attempts: m.attempts,
            last_error: m.last_error,
        })
        .collect();
    Ok(AppJson(AlertList { alerts }))
}
