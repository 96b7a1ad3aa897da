//! The budget gate behind create, resume, exec and wake: a sprite may (keep) running
//! only if every scope its creator's spend counts against can afford the minimum
//! runway; otherwise 402 naming the scope, what is left and when the period resets.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use corral_metering::{db, now_ms, Nanos, Refusal, Scope};
use sqlx::SqlitePool;

use crate::config::Config;
use crate::db::sprites::SpriteRow;
use crate::error::ApiError;
use crate::sprites::BudgetGate;

/// [`BudgetGate`] over the metering ledger (`metering::db::check_runway`).
pub struct MeterGate {
    pool: SqlitePool,
    config: Arc<Config>,
    /// Sprites admitted since the meter last saw them, per tenant. The ledger's worst
    /// burn only counts them from the next tick, so two admissions in one tick must not
    /// each get the whole runway; each counts only against the scopes its spend does.
    admitted: Mutex<HashMap<String, Vec<Admission>>>,
}

/// A sprite let run in the last ticks.
struct Admission {
    /// `sprites.id`; 0 while it is being created.
    sprite_id: i64,
    /// When, unix ms.
    at_ms: i64,
    /// Its worst burn per second.
    worst: Nanos,
    /// The scopes its spend counts against (the tenant and the budgeted tokens of its
    /// creator's chain).
    scopes: Vec<Scope>,
}

impl MeterGate {
    /// A gate reading `pool` with the prices and runway of `config`.
    pub fn new(pool: SqlitePool, config: Arc<Config>) -> Self {
        Self {
            pool,
            config,
            admitted: Mutex::default(),
        }
    }

    /// Worst burn per scope of the tenant's other sprites admitted within the last two
    /// ticks.
    fn recently_admitted(&self, sprite: &SpriteRow, now: i64) -> HashMap<Scope, Nanos> {
        let horizon = now - 2 * self.config.tick_ms as i64 - 1000;
        let mut admitted = self.admitted.lock().expect("gate");
        let mut out: HashMap<Scope, Nanos> = HashMap::new();
        let Some(list) = admitted.get_mut(&sprite.tenant_id) else {
            return out;
        };
        list.retain(|a| a.at_ms >= horizon);
        // A sprite being created has no id yet (0): every entry is another sprite.
        for a in list
            .iter()
            .filter(|a| sprite.id == 0 || a.sprite_id != sprite.id)
        {
            for scope in &a.scopes {
                *out.entry(scope.clone()).or_default() += a.worst;
            }
        }
        out
    }

    fn remember(&self, sprite: &SpriteRow, now: i64, worst: Nanos, scopes: Vec<Scope>) {
        let mut admitted = self.admitted.lock().expect("gate");
        let list = admitted.entry(sprite.tenant_id.clone()).or_default();
        if sprite.id != 0 {
            list.retain(|a| a.sprite_id != sprite.id);
        }
        list.push(Admission {
            sprite_id: sprite.id,
            at_ms: now,
            worst,
            scopes,
        });
    }
}

#[async_trait]
impl BudgetGate for MeterGate {
    #[tracing::instrument(skip_all, fields(tenant = %sprite.tenant_id, sprite = %sprite.name))]
    async fn allow_run(&self, sprite: &SpriteRow) -> Result<(), ApiError> {
        let ctx = super::budget_context(&self.config);
        let runway_s = runway_s(&self.config);
        let worst = ctx.prices.sprite_worst_burn_per_s(
            u32::try_from(sprite.cpus).unwrap_or(u32::MAX),
            u32::try_from(sprite.memory_mb).unwrap_or(u32::MAX),
        );
        let now = now_ms();
        let recent = self.recently_admitted(sprite, now);
        let extra = |scope: &Scope| worst + recent.get(scope).copied().unwrap_or_default();
        let mut conn = self.pool.acquire().await?;
        let checked = db::check_runway(
            &mut conn,
            &sprite.tenant_id,
            sprite.created_by_token.as_deref(),
            &extra,
            runway_s,
            &ctx,
        )
        .await?;
        match checked {
            Ok(scopes) => {
                self.remember(sprite, now, worst, scopes);
                Ok(())
            }
            Err(refusal) => {
                tracing::info!(scope = %refusal.scope, available = refusal.available.get(),
                    needed = refusal.needed.get(), "refused for budget");
                Err(refusal_error(&refusal, runway_s))
            }
        }
    }
}

/// The runway a sprite must afford: the configured minimum, and never less than the
/// meter's window (tick plus pause latency): a sprite started between two ticks runs
/// until the next one without a reservation of that tick's rule.
pub fn runway_s(config: &Config) -> u64 {
    let window_ms = config.tick_ms.saturating_add(config.pause_latency_ms);
    config.min_runway_s.max(window_ms.div_ceil(1000))
}

/// A refusal as the 402 the caller sees: which scope, what is left, what the runway
/// needs, when the period resets and how to get going again.
pub fn refusal_error(r: &Refusal, runway_s: u64) -> ApiError {
    let resets = corral_metering::period::rfc3339(r.resets_at_ms);
    let left = format!(
        "{} left ({} nano-dollars) after the reservation for stored data",
        r.available.usd(),
        r.available.get()
    );
    let need = format!(
        "running it for the {runway_s} s minimum runway at full speed needs {}",
        r.needed.usd()
    );
    match &r.scope {
        Scope::Tenant(_) => ApiError::BudgetExhausted(format!(
            "the tenant's monthly budget has {left}; {need}; the period resets at {resets}. \
             Raise the cap with PUT /v1/budget."
        )),
        Scope::Token(id) => ApiError::TokenBudgetExhausted(format!(
            "the budget of API token {id} has {left}; {need}; the period resets at {resets}. \
             A token with a larger budget can run it."
        )),
    }
}
