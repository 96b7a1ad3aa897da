//! One tick's arithmetic, pure: each sprite's usage since its baseline (clamped to the
//! declared worst case, counters that went backwards taken as a restart), the ledger
//! rows it grows, and the per-scope totals that the rule and the alerts read.

use std::collections::HashMap;

use crate::fleet::{FleetSprite, Sample};
use crate::money::Nanos;
use crate::period::Period;
use crate::prices::{Prices, Usage, BYTES_PER_MIB};
use crate::rule::ScopeInput;
use crate::scope::Scope;

/// The knobs a tick needs.
#[derive(Clone, Copy, Debug)]
pub struct TickConfig {
    /// The price table.
    pub prices: Prices,
    /// The tick's nominal length: what a sprite seen for the first time is billed for.
    pub tick_ms: i64,
    /// Tick plus pause latency: the rule's window, and the most compute one tick bills.
    pub window_ms: i64,
    /// Disk growth a running sprite is allowed per second in the worst case.
    pub disk_growth_bytes_per_s: u64,
    /// Bill CPU time for all the time since the baseline, not one window: the first
    /// tick after a start, when the counters hold what ran while no meter did.
    pub catch_up: bool,
}

/// A sprite's last sample as stored (`meter_samples`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Baseline {
    /// When it was taken.
    pub at_ms: i64,
    /// The driver's cumulative CPU counter then.
    pub cpu_ns: u64,
    /// Memory in use then.
    pub memory_bytes: u64,
    /// Bytes stored then.
    pub disk_bytes: u64,
    /// The network counter then.
    pub network_bytes: u64,
    /// Everything the sprite has cost up to then.
    pub cost: Nanos,
}

/// A ledger row as stored: totals and cost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LedgerRow {
    /// Usage totals of the minute.
    pub usage: Usage,
    /// Their cost.
    pub cost: Nanos,
}

/// What the tick writes for one sprite.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpriteUpdate {
    /// `sprites.id`.
    pub sprite_id: i64,
    /// The minute row's new totals, when the sprite used anything this tick.
    pub row: Option<LedgerRow>,
    /// How much the sprite's spend grew.
    pub grew: Nanos,
    /// The new baseline.
    pub baseline: Baseline,
}

/// Per-scope sums of one tick.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScopeTotals {
    /// Spend added this tick.
    pub grew: Nanos,
    /// Bytes the scope's sprites store now or may store (whole disks, checkpoints).
    pub stored_bytes: u64,
    /// Sprites in the scope.
    pub sprites: u64,
    /// vCPUs of the running ones.
    pub running_cpus: u64,
    /// Memory limits of the running ones, bytes.
    pub running_memory_bytes: u64,
    /// Bandwidth of the running ones, bytes per second.
    pub running_network_bytes_per_s: u64,
    /// The running sprites, to pause if the scope does not fit.
    pub running: Vec<i64>,
    /// Compute of the running ones flat out, per second.
    pub worst_burn_per_s: Nanos,
}

impl ScopeTotals {
    /// The rule's input for this scope.
    pub fn rule_input(&self, cfg: &TickConfig, cap: Nanos, spent: Nanos) -> ScopeInput {
        let growth = cfg
            .disk_growth_bytes_per_s
            .saturating_mul(self.running.len() as u64);
        ScopeInput {
            cap,
            spent,
            stored_bytes: self.stored_bytes,
            running_cpus: self.running_cpus,
            running_memory_bytes: self.running_memory_bytes,
            running_network_bytes_per_s: self.running_network_bytes_per_s,
            disk_growth_bytes: growth.saturating_mul(cfg.window_ms.max(0) as u64) / 1000,
            sprites: self.sprites,
        }
    }
}

/// The whole tick's arithmetic.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// One per sprite that had a sample or a baseline.
    pub updates: Vec<SpriteUpdate>,
    /// Totals per scope.
    pub scopes: HashMap<Scope, ScopeTotals>,
    /// What the whole tick cost.
    pub cost: Nanos,
    /// Sprites whose usage was cut to the declared worst case.
    pub clamped: u64,
}

/// Usage of one sprite since its baseline, and its new baseline (cost not yet added).
/// Compute is capped at all vCPUs and all memory for at most one window, so a stalled
/// meter never bills past what the rule allowed; on a catch-up tick CPU time is billed
/// for all the time elapsed (still at most all vCPUs), the outage's cap being applied
/// by the meter (`meter::outage`). Disk accrues for the real time elapsed, within the
/// current period.
pub fn sprite_usage(
    cfg: &TickConfig,
    now_ms: i64,
    period: Period,
    sprite: &FleetSprite,
    sample: Sample,
    baseline: Option<&Baseline>,
) -> (Usage, Baseline, bool) {
    let elapsed = baseline.map_or(cfg.tick_ms, |b| now_ms - b.at_ms).max(0);
    let compute_ms = elapsed.min(cfg.window_ms) as u64;
    let disk_ms = elapsed.min(now_ms - period.start_ms).max(0) as u64;
    // A counter below its baseline means the machine was started again from zero:
    // everything it counts was used since then.
    let cpu_used = match baseline {
        Some(b) if sample.cpu_ns >= b.cpu_ns => sample.cpu_ns - b.cpu_ns,
        _ => sample.cpu_ns,
    };
    let cpu_ms = if cfg.catch_up {
        elapsed as u64
    } else {
        compute_ms
    };
    let cpu_max = u64::from(sprite.cpus)
        .saturating_mul(cpu_ms)
        .saturating_mul(1_000_000);
    let memory_max = u64::from(sprite.memory_mb).saturating_mul(BYTES_PER_MIB);
    let memory_bytes = if sprite.running {
        sample.memory_bytes.min(memory_max)
    } else {
        0
    };
    // Network bytes are what the gateway counted, never more than the bandwidth could
    // move in the window the rule reserved for (the counter restarts with the server).
    let network_used = match baseline {
        Some(b) if sample.network_bytes >= b.network_bytes => {
            sample.network_bytes - b.network_bytes
        }
        _ => sample.network_bytes,
    };
    let network_max =
        crate::prices::network_worst_bytes(sprite.network_bytes_per_s, compute_ms as i64);
    let clamped = cpu_used > cpu_max
        || (sprite.running && sample.memory_bytes > memory_max)
        || network_used > network_max;
    let usage = Usage {
        cpu_ns: cpu_used.min(cpu_max),
        memory_byte_ms: memory_bytes.saturating_mul(compute_ms),
        disk_byte_ms: sample.disk_bytes.saturating_mul(disk_ms),
        network_bytes: network_used.min(network_max),
    };
    let next = Baseline {
        at_ms: now_ms,
        cpu_ns: sample.cpu_ns,
        memory_bytes: sample.memory_bytes,
        disk_bytes: sample.disk_bytes,
        network_bytes: sample.network_bytes,
        cost: baseline.map_or(Nanos::ZERO, |b| b.cost),
    };
    (usage, next, clamped)
}

/// Plans a tick: `samples[i]` belongs to `fleet[i]`, `rows` are this minute's ledger
/// rows by sprite, `scopes_of` gives each sprite's scopes (tenant, then token chain).
#[allow(clippy::too_many_arguments)]
pub fn plan<'a>(
    cfg: &TickConfig,
    now_ms: i64,
    period: Period,
    fleet: &'a [FleetSprite],
    samples: &[Option<Sample>],
    baselines: &HashMap<i64, Baseline>,
    rows: &HashMap<i64, LedgerRow>,
    mut scopes_of: impl FnMut(&'a FleetSprite) -> Vec<Scope>,
) -> Plan {
    let mut plan = Plan::default();
    for (sprite, sample) in fleet.iter().zip(samples) {
        let baseline = baselines.get(&sprite.sprite_id);
        let (update, stored) = match (sample, baseline) {
            (Some(sample), _) => {
                let (usage, mut next, clamped) =
                    sprite_usage(cfg, now_ms, period, sprite, *sample, baseline);
                plan.clamped += u64::from(clamped);
                let (row, grew) = if usage.is_zero() {
                    (None, Nanos::ZERO)
                } else {
                    let old = rows.get(&sprite.sprite_id).copied().unwrap_or_default();
                    let (totals, grew) = cfg.prices.price_row(old.usage, usage);
                    (
                        Some(LedgerRow {
                            usage: totals,
                            cost: old.cost + grew,
                        }),
                        grew,
                    )
                };
                next.cost += grew;
                let update = SpriteUpdate {
                    sprite_id: sprite.sprite_id,
                    row,
                    grew,
                    baseline: next,
                };
                (Some(update), sample.disk_bytes.max(sprite.reserve_bytes))
            }
            // Unreadable now: bill nothing, keep the baseline, still count its bytes.
            (None, Some(b)) => (None, b.disk_bytes.max(sprite.reserve_bytes)),
            (None, None) => (None, sprite.reserve_bytes),
        };
        let grew = update.as_ref().map_or(Nanos::ZERO, |u| u.grew);
        plan.cost += grew;
        if let Some(update) = update {
            plan.updates.push(update);
        }
        let worst = cfg.prices.sprite_worst_burn_per_s(
            sprite.cpus,
            sprite.memory_mb,
            sprite.network_bytes_per_s,
        );
        for scope in scopes_of(sprite) {
            let t = plan.scopes.entry(scope).or_default();
            t.grew += grew;
            t.stored_bytes = t.stored_bytes.saturating_add(stored);
            t.sprites += 1;
            if sprite.running {
                t.running_cpus += u64::from(sprite.cpus);
                t.running_memory_bytes += u64::from(sprite.memory_mb) * BYTES_PER_MIB;
                t.running_network_bytes_per_s += sprite.network_bytes_per_s;
                t.running.push(sprite.sprite_id);
                t.worst_burn_per_s += worst;
            }
        }
    }
    plan
}

#[cfg(test)]
#[path = "tick_tests.rs"]
mod tests;
