//! The budget gate behind create, resume, exec and wake: a sprite may (keep) running
//! only if every scope its creator's spend counts against can afford the minimum
//! runway; otherwise 402 naming the scope, what is left and when the period resets.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use corral_metering::db::{self, Extra};
use corral_metering::{now_ms, Nanos, Refusal, Scope};
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
    /// Its whole disk's reservation, when it was new.
    reserve: Nanos,
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

    /// Per scope, the worst burn and the new disks' reservations of the tenant's other
    /// sprites admitted within the last two ticks.
    fn recently_admitted(&self, sprite: &SpriteRow, now: i64) -> HashMap<Scope, Extra> {
        let horizon = now - 2 * self.config.tick_ms as i64 - 1000;
        // A new disk is in the meter's stored bytes from its next tick on: only
        // younger ones are counted here, or they would be reserved twice.
        let unseen = now - self.config.tick_ms as i64 - 250;
        let mut admitted = self.admitted.lock().expect("gate");
        let mut out: HashMap<Scope, Extra> = HashMap::new();
        let Some(list) = admitted.get_mut(&sprite.tenant_id) else {
            return out;
        };
        list.retain(|a| a.at_ms >= horizon);
        // A sprite being created has no id yet (0): every entry is another sprite.
        for a in list
            .iter()
            .filter(|a| sprite.id == 0 || a.sprite_id != sprite.id)
        {
            let reserve = if a.at_ms >= unseen {
                a.reserve
            } else {
                Nanos::ZERO
            };
            for scope in &a.scopes {
                let e = out.entry(scope.clone()).or_default();
                e.worst_burn_per_s += a.worst;
                e.reserve += reserve;
            }
        }
        out
    }

    fn remember(
        &self,
        sprite: &SpriteRow,
        now: i64,
        worst: Nanos,
        reserve: Nanos,
        scopes: Vec<Scope>,
    ) {
        let mut admitted = self.admitted.lock().expect("gate");
        let list = admitted.entry(sprite.tenant_id.clone()).or_default();
        if sprite.id != 0 {
            list.retain(|a| a.sprite_id != sprite.id);
        }
        list.push(Admission {
            sprite_id: sprite.id,
            at_ms: now,
            worst,
            reserve,
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
        // A new sprite's whole disk is reserved to the period's end (the meter reserves
        // it from its first tick on): it must fit before the sprite exists.
        let creating = sprite.id == 0;
        let reserve = if creating {
            new_disk_reserve(&ctx, sprite)
        } else {
            Nanos::ZERO
        };
        let others = self.recently_admitted(sprite, now);
        let extra = |scope: &Scope| {
            let other = others.get(scope).copied().unwrap_or_default();
            Extra {
                worst_burn_per_s: worst + other.worst_burn_per_s,
                // Other new disks count against a creation only: a sprite checked again
                // just after its own creation (its first exec) would otherwise find its
                // own disk, remembered under id 0, reserved twice.
                reserve: reserve + if creating { other.reserve } else { Nanos::ZERO },
            }
        };
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
                self.remember(sprite, now, worst, reserve, scopes);
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

/// Keeping a new sprite's whole disk to the period's end, as the rule reserves it.
fn new_disk_reserve(ctx: &corral_metering::BudgetContext, sprite: &SpriteRow) -> Nanos {
    let period = corral_metering::Period::containing(ctx.now_ms);
    corral_metering::rule::storage_reserved(
        &ctx.prices,
        super::fleet::disk_bytes(sprite.disk_mb),
        1,
        period.remaining_ms(ctx.now_ms),
    )
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
        "running it for the {runway_s} s minimum runway at full speed (a new sprite's whole \
         disk reserved to the period's end included) needs {}",
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
