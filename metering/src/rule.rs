//! The hard-cap rule as pure functions: what a scope has available, the worst the next
//! tick could cost, whether to pause its sprites now, and the runway check for 402s.

use crate::money::Nanos;
use crate::period::MINUTE_MS;
use crate::prices::Prices;

/// The runway a create, resume, exec or wake needs by default: a minute of worst case.
pub const DEFAULT_RUNWAY_S: u64 = 60;

/// Per running sprite and per tick, the ledger may round each resource up by one
/// nano-dollar: the rule keeps that much room too.
pub const ROUNDING_SLACK_PER_SPRITE: i64 = 3;

/// What the rule needs to know about one scope (a tenant, or one token of a chain).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScopeInput {
    /// The scope's cap for this period.
    pub cap: Nanos,
    /// Spent in this period so far.
    pub spent: Nanos,
    /// Bytes the scope's sprites store now (running or not, checkpoints included).
    pub stored_bytes: u64,
    /// vCPUs of the scope's running sprites, summed.
    pub running_cpus: u64,
    /// Memory limits of the scope's running sprites, summed, in bytes.
    pub running_memory_bytes: u64,
    /// Bandwidth of the scope's running sprites, summed, bytes per second.
    pub running_network_bytes_per_s: u64,
    /// Disk growth to allow for within one window (running sprites writing data):
    /// its storage to the period's end is part of the worst case.
    pub disk_growth_bytes: u64,
    /// Sprites in the scope (each adds rounding slack).
    pub sprites: u64,
}

/// The rule's answer for one scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// `cap − spent − storage_reserved` (may be negative).
    pub available: Nanos,
    /// The cost of keeping today's bytes stored until the period's end.
    pub storage_reserved: Nanos,
    /// The most the next window could cost.
    pub worst_case: Nanos,
    /// Pause the scope's running sprites now.
    pub pause: bool,
}

/// `storage_reserved`: keeping `stored_bytes` until the period ends, plus the one
/// nano-dollar per sprite and ledger minute that rounding each row up may add, so
/// paused sprites' disk accrual can never push spend past the cap.
pub fn storage_reserved(
    prices: &Prices,
    stored_bytes: u64,
    sprites: u64,
    remaining_ms: i64,
) -> Nanos {
    if remaining_ms <= 0 {
        return Nanos::ZERO;
    }
    let minutes = (remaining_ms + MINUTE_MS - 1) / MINUTE_MS + 1;
    prices.storage_cost(stored_bytes, remaining_ms)
        + Nanos(minutes).saturating_mul(i64::try_from(sprites).unwrap_or(i64::MAX))
}

/// `available = cap − spent − storage_reserved`.
pub fn available(cap: Nanos, spent: Nanos, storage_reserved: Nanos) -> Nanos {
    cap - spent - storage_reserved
}

/// The worst the next `window_ms` (one tick plus the pause latency) could cost: every
/// running sprite at all of its vCPUs, all of its memory and all of its bandwidth, disk
/// accrual of every stored byte, the allowed disk growth stored to the period's end,
/// and rounding.
pub fn worst_case_next_tick(
    prices: &Prices,
    scope: &ScopeInput,
    window_ms: i64,
    remaining_ms: i64,
) -> Nanos {
    prices.compute_worst(scope.running_cpus, scope.running_memory_bytes, window_ms)
        + prices.network_worst(scope.running_network_bytes_per_s, window_ms)
        + prices.storage_cost(scope.stored_bytes, window_ms)
        + prices.storage_cost(scope.disk_growth_bytes, remaining_ms.max(window_ms))
        + Nanos(ROUNDING_SLACK_PER_SPRITE).saturating_mul(scope.sprites as i64)
}

/// The rule: pause the scope's running sprites now when the worst case of the next
/// window does not fit in what is available. A scope with nothing running has nothing
/// to pause; its stored data is never touched.
pub fn evaluate(prices: &Prices, scope: &ScopeInput, window_ms: i64, remaining_ms: i64) -> Verdict {
    let storage_reserved =
        storage_reserved(prices, scope.stored_bytes, scope.sprites, remaining_ms);
    let available = available(scope.cap, scope.spent, storage_reserved);
    let worst_case = worst_case_next_tick(prices, scope, window_ms, remaining_ms);
    let running = scope.running_cpus > 0 || scope.running_memory_bytes > 0;
    Verdict {
        available,
        storage_reserved,
        worst_case,
        pause: running && worst_case > available,
    }
}

/// The runway check behind the 402s: could the scope's running sprites plus `extra`
/// (both as worst-case nano-dollars per second) run for `runway_s` seconds?
pub fn runway_ok(
    available: Nanos,
    worst_burn_per_s: Nanos,
    extra_worst_burn_per_s: Nanos,
    runway_s: u64,
) -> bool {
    let need = (worst_burn_per_s + extra_worst_burn_per_s)
        .saturating_mul(i64::try_from(runway_s).unwrap_or(i64::MAX));
    available > Nanos::ZERO && need <= available
}

#[cfg(test)]
#[path = "rule_tests.rs"]
mod tests;
