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
    /// Sprites admitted since the meter last saw them, per tenant: (sprite, when, worst
    /// burn per second). The ledger's worst burn only counts them from the next tick,
    /// so two admissions in one tick must not each get the whole runway.
    admitted: Mutex<HashMap<String, Vec<Admission>>>,
}

/// (sprite id, when admitted in unix ms, its worst burn per second, its disk's
/// reservation when it was new).
type Admission = (i64, i64, Nanos, Nanos);

impl MeterGate {
    /// A gate reading `pool` with the prices and runway of `config`.
    pub fn new(pool: SqlitePool, config: Arc<Config>) -> Self {
        Self {
            pool,
            config,
            admitted: Mutex::default(),
        }
    }

    /// Worst burn and new disks' reservations of the tenant's other sprites admitted
    /// within the last two ticks.
    fn recently_admitted(&self, sprite: &SpriteRow, now: i64) -> (Nanos, Nanos) {
        let horizon = now - 2 * self.config.tick_ms as i64 - 1000;
        let mut admitted = self.admitted.lock().expect("gate");
        let Some(list) = admitted.get_mut(&sprite.tenant_id) else {
            return (Nanos::ZERO, Nanos::ZERO);
        };
        list.retain(|(_, at, _, _)| *at >= horizon);
        // A new disk is in the meter's stored bytes from its next tick on: only
        // younger ones are counted here, or they would be reserved twice.
        let unseen = now - self.config.tick_ms as i64 - 250;
        // A sprite being created has no id yet (0): every entry is another sprite.
        list.iter()
            .filter(|(id, _, _, _)| sprite.id == 0 || *id != sprite.id)
            .fold(
                (Nanos::ZERO, Nanos::ZERO),
                |(w, r), (_, at, worst, reserve)| {
                    let reserve = if *at >= unseen { *reserve } else { Nanos::ZERO };
                    (w + *worst, r + reserve)
                },
            )
    }

    fn remember(&self, sprite: &SpriteRow, now: i64, worst: Nanos, reserve: Nanos) {
        let mut admitted = self.admitted.lock().expect("gate");
        let list = admitted.entry(sprite.tenant_id.clone()).or_default();
        if sprite.id != 0 {
            list.retain(|(id, _, _, _)| *id != sprite.id);
        }
        list.push((sprite.id, now, worst, reserve));
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
        let reserve = if sprite.id == 0 {
            new_disk_reserve(&ctx, sprite)
        } else {
            Nanos::ZERO
        };
        let (others_worst, others_reserve) = self.recently_admitted(sprite, now);
        // Other new disks count against a creation only: a sprite checked again just
        // after its own creation (its first exec) would otherwise find its own disk,
        // remembered under id 0, reserved twice.
        let others_reserve = if sprite.id == 0 {
            others_reserve
        } else {
            Nanos::ZERO
        };
        let extra = db::Extra {
            worst_burn_per_s: worst + others_worst,
            reserve: reserve + others_reserve,
        };
        let mut conn = self.pool.acquire().await?;
        let refusal = db::check_runway_with(
            &mut conn,
            &sprite.tenant_id,
            sprite.created_by_token.as_deref(),
            extra,
            runway_s,
            &ctx,
        )
        .await?;
        match refusal {
            None => {
                self.remember(sprite, now, worst, reserve);
                Ok(())
            }
            Some(refusal) => {
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
