//! Admission under the hard cap: whether a sprite may (keep) running, with the memory
//! of sprites admitted since the meter last saw them.
//!
//! The rule (`rule.rs`) and the runway check (`db::check_runway`) read the ledger, but
//! the ledger's worst burn only counts a sprite from the meter's next tick on. Two
//! admissions within one tick must not each get the whole runway, so the sprites let
//! run in the last ticks are remembered here and added to the check of every scope
//! their spend counts against.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sqlx::SqlitePool;

use crate::db::{self, Extra};
use crate::{now_ms, MeterConfig, Nanos, Period, Refusal, RuleWindow, Scope};

/// The sprite asking to run, as admission needs it.
#[derive(Clone, Copy, Debug)]
pub struct Candidate<'a> {
    /// `sprites.id`; 0 while it is being created (its row does not exist yet).
    pub sprite_id: i64,
    /// Its tenant.
    pub tenant_id: &'a str,
    /// The token that created it: its chain's budgets count its spend.
    pub created_by_token: Option<&'a str>,
    /// vCPUs.
    pub cpus: u32,
    /// Memory, MiB.
    pub memory_mb: u32,
    /// The most its disk may hold, in bytes (reserved whole when it is new).
    pub disk_bytes: u64,
    /// Its bandwidth through the way out, bytes per second.
    pub network_bytes_per_s: u64,
}

/// Admissions of one process: the runway check plus what the meter has not seen yet.
pub struct Admissions {
    pool: SqlitePool,
    config: MeterConfig,
    min_runway_s: u64,
    /// The rule's window, as the meter publishes it: the runway never falls below it.
    window: Arc<RuleWindow>,
    /// Sprites admitted since the meter last saw them, per tenant.
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

/// The rule's answer for a candidate, with what admitting it would remember.
struct Checked {
    /// The scopes its spend counts against, or the refusal.
    answer: Result<Vec<Scope>, Refusal>,
    /// Its worst burn per second.
    worst: Nanos,
    /// A new sprite's disk reserved to the period's end.
    reserve: Nanos,
}

impl Admissions {
    /// Admissions over `pool` with the meter's prices and tick, a configured minimum
    /// runway (seconds of worst-case burn a sprite must afford) and the rule's window
    /// the meter publishes ([`crate::Meter::with_window`]).
    pub fn new(
        pool: SqlitePool,
        config: MeterConfig,
        min_runway_s: u64,
        window: Arc<RuleWindow>,
    ) -> Self {
        Self {
            pool,
            config,
            min_runway_s,
            window,
            admitted: Mutex::default(),
        }
    }

    /// The runway a sprite must afford: the configured minimum, and never less than
    /// the rule's window ([`RuleWindow::runway_s`]).
    pub fn runway_s(&self) -> u64 {
        self.window.runway_s(self.min_runway_s)
    }

    /// Lets `sprite` run when every scope its spend counts against can afford the
    /// runway (with the other sprites admitted since the last tick); remembers it if so.
    pub async fn admit(&self, sprite: &Candidate<'_>) -> Result<Result<(), Refusal>, sqlx::Error> {
        let now = now_ms();
        let Checked {
            answer,
            worst,
            reserve,
        } = self.check(sprite, now).await?;
        Ok(answer.map(|scopes| self.remember(sprite, now, worst, reserve, scopes)))
    }

    /// Whether `sprite` would be admitted now, without admitting it (nothing is
    /// remembered): what the budget page asks to say whether starts are refused.
    pub async fn would_admit(
        &self,
        sprite: &Candidate<'_>,
    ) -> Result<Result<(), Refusal>, sqlx::Error> {
        Ok(self.check(sprite, now_ms()).await?.answer.map(drop))
    }

    /// The rule's answer for `sprite` at `now`, with its worst burn and reservation.
    async fn check(&self, sprite: &Candidate<'_>, now: i64) -> Result<Checked, sqlx::Error> {
        let ctx = self.config.budget_context(now);
        let runway_s = self.runway_s();
        let worst = ctx.prices.sprite_worst_burn_per_s(
            sprite.cpus,
            sprite.memory_mb,
            sprite.network_bytes_per_s,
        );
        // A new sprite's whole disk is reserved to the period's end (the meter reserves
        // it from its first tick on): it must fit before the sprite exists.
        let creating = sprite.sprite_id == 0;
        let reserve = if creating {
            let period = Period::containing(ctx.now_ms);
            crate::rule::storage_reserved(
                &ctx.prices,
                sprite.disk_bytes,
                1,
                period.remaining_ms(ctx.now_ms),
            )
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
            sprite.tenant_id,
            sprite.created_by_token,
            &extra,
            runway_s,
            &ctx,
        )
        .await?;
        Ok(Checked {
            answer: checked,
            worst,
            reserve,
        })
    }

    /// Per scope, the worst burn and the new disks' reservations of the tenant's other
    /// sprites admitted within the last two ticks.
    fn recently_admitted(&self, sprite: &Candidate<'_>, now: i64) -> HashMap<Scope, Extra> {
        let tick_ms = self.config.tick.as_millis() as i64;
        let horizon = now - 2 * tick_ms - 1000;
        // A new disk is in the meter's stored bytes from its next tick on: only
        // younger ones are counted here, or they would be reserved twice.
        let unseen = now - tick_ms - 250;
        let mut admitted = self.admitted.lock().expect("admissions");
        let mut out: HashMap<Scope, Extra> = HashMap::new();
        let Some(list) = admitted.get_mut(sprite.tenant_id) else {
            return out;
        };
        list.retain(|a| a.at_ms >= horizon);
        // A sprite being created has no id yet (0): every entry is another sprite.
        for a in list
            .iter()
            .filter(|a| sprite.sprite_id == 0 || a.sprite_id != sprite.sprite_id)
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
        sprite: &Candidate<'_>,
        now: i64,
        worst: Nanos,
        reserve: Nanos,
        scopes: Vec<Scope>,
    ) {
        let mut admitted = self.admitted.lock().expect("admissions");
        let list = admitted.entry(sprite.tenant_id.to_owned()).or_default();
        if sprite.sprite_id != 0 {
            list.retain(|a| a.sprite_id != sprite.sprite_id);
        }
        list.push(Admission {
            sprite_id: sprite.sprite_id,
            at_ms: now,
            worst,
            reserve,
            scopes,
        });
    }
}
