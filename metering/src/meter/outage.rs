//! Billing what ran while no meter did. The cgroup's CPU counters survive a crash of
//! the server (`kill -9`, an OOM kill), so the first tick after a start bills each
//! sprite's CPU time since its stored baseline in full — but never more than a scope
//! had available: the part that does not fit is written off (the baseline moves past
//! it, so it is never billed later), and the rule then pauses the scope at once.
//!
//! One window of CPU was already reserved by the rule's last verdict before the
//! outage, so only CPU beyond that window ("extra") is ever cut; and the scope is left
//! just short of the rule's worst case for the next window, as after any budget pause.

use std::collections::HashMap;

use crate::fleet::{FleetSprite, Sample};
use crate::money::Nanos;
use crate::period::Period;
use crate::rule;
use crate::scope::Scope;
use crate::tick::{Baseline, Plan, TickConfig};

/// What a catch-up tick knows besides the samples.
pub(super) struct Scopes<'a, F: Fn(&Scope) -> Option<Nanos>> {
    /// The tick's knobs (with `catch_up` set).
    pub cfg: &'a TickConfig,
    /// The tick's instant.
    pub now_ms: i64,
    /// The period it falls in.
    pub period: Period,
    /// The tick planned with the uncut samples.
    pub trial: &'a Plan,
    /// Each sprite's scopes (tenant, then its token chain).
    pub of_sprite: &'a HashMap<i64, Vec<Scope>>,
    /// Spend before this tick, by scope key.
    pub before: &'a HashMap<String, Nanos>,
    /// A scope's cap (`None`: no cap).
    pub cap: F,
}

/// CPU nanoseconds of `sample` since `base`, and of those the ones beyond one window
/// (what only a catch-up bills), both bounded by all vCPUs for the time elapsed.
fn cpu_split(
    cfg: &TickConfig,
    now_ms: i64,
    sprite: &FleetSprite,
    sample: &Sample,
    base: &Baseline,
) -> (u64, u64, u64) {
    let from = if sample.cpu_ns >= base.cpu_ns {
        base.cpu_ns
    } else {
        0 // the counter restarted: all of it is new
    };
    let used = sample.cpu_ns - from;
    let elapsed = (now_ms - base.at_ms).max(0) as u64;
    let per_ms = u64::from(sprite.cpus).saturating_mul(1_000_000);
    let full = used.min(per_ms.saturating_mul(elapsed));
    let window = used.min(per_ms.saturating_mul(elapsed.min(cfg.window_ms.max(0) as u64)));
    (from, window, full - window)
}

/// Cuts the samples of a catch-up tick so that no scope is billed past its cap. The
/// uncut samples go into `real` (unless a budget pause already put them there).
/// Returns how many were cut.
pub(super) fn fit<F: Fn(&Scope) -> Option<Nanos>>(
    scopes: &Scopes<'_, F>,
    fleet: &[FleetSprite],
    samples: &mut [Option<Sample>],
    baselines: &HashMap<i64, Baseline>,
    real: &mut HashMap<i64, Sample>,
) -> u64 {
    let (cfg, now_ms, period, trial) = (scopes.cfg, scopes.now_ms, scopes.period, scopes.trial);
    let remaining = period.remaining_ms(now_ms);
    // The extra CPU of each sprite and what it costs.
    let mut extra: HashMap<i64, (u64, u64, u64, Nanos)> = HashMap::new();
    for (sprite, sample) in fleet.iter().zip(samples.iter()) {
        let (Some(sample), Some(base)) = (sample, baselines.get(&sprite.sprite_id)) else {
            continue;
        };
        let (from, window, more) = cpu_split(cfg, now_ms, sprite, sample, base);
        if more > 0 {
            let cost = cfg.prices.cpu_cost(more);
            extra.insert(sprite.sprite_id, (from, window, more, cost));
        }
    }
    if extra.is_empty() {
        return 0;
    }
    // Per scope, the fraction of its sprites' extra CPU it can pay for: (keep, of).
    let mut keep: HashMap<&Scope, (i128, i128)> = HashMap::new();
    for (scope, t) in &trial.scopes {
        let Some(cap) = (scopes.cap)(scope) else {
            continue;
        };
        let before = scopes.before.get(&scope.key()).copied().unwrap_or_default();
        let reserved = rule::storage_reserved(&cfg.prices, t.stored_bytes, t.sprites, remaining);
        // Leave the scope one nano-dollar short of the rule's worst case for the next
        // window, as an ordinary tick would: the rule pauses it now, and what a paused
        // sandbox still uses (the pause landing, its idle threads) has room.
        let input = t.rule_input(cfg, cap, before + t.grew);
        let worst = rule::worst_case_next_tick(&cfg.prices, &input, cfg.window_ms, remaining);
        let over = (before + t.grew + reserved + worst - Nanos(1) - cap).get();
        if over <= 0 {
            continue;
        }
        let sheddable: i128 = scopes
            .of_sprite
            .iter()
            .filter(|(_, list)| list.contains(scope))
            .filter_map(|(id, _)| extra.get(id))
            .map(|(_, _, _, cost)| i128::from(cost.get()))
            .sum();
        if sheddable > 0 {
            keep.insert(scope, ((sheddable - i128::from(over)).max(0), sheddable));
        }
    }
    let mut cut = 0;
    for (sprite, slot) in fleet.iter().zip(samples.iter_mut()) {
        let (Some(sample), Some((from, window, more, _))) =
            (slot.as_mut(), extra.get(&sprite.sprite_id))
        else {
            continue;
        };
        let fraction = scopes
            .of_sprite
            .get(&sprite.sprite_id)
            .into_iter()
            .flatten()
            .filter_map(|s| keep.get(s))
            .min_by(|(a, b), (c, d)| (a * d).cmp(&(c * b)));
        let Some((k, of)) = fraction else {
            continue;
        };
        let kept = (i128::from(*more) * k / of) as u64;
        real.entry(sprite.sprite_id).or_insert(*sample);
        sample.cpu_ns = from + window + kept;
        cut += 1;
        tracing::warn!(
            sprite = sprite.sprite_id,
            ran_ns = more,
            billed_ns = kept,
            "CPU that ran while no meter did exceeds the budget; the rest is written off"
        );
    }
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prices::Prices;

    fn sprite(id: i64) -> FleetSprite {
        FleetSprite {
            network_bytes_per_s: 0,
            sprite_id: id,
            tenant_id: "t".into(),
            name: format!("s{id}"),
            created_by_token: None,
            running: true,
            cpus: 1,
            memory_mb: 64,
            reserve_bytes: 0,
        }
    }

    #[test]
    fn extra_cpu_is_cut_to_what_the_scope_has_left() {
        let cfg = TickConfig {
            prices: Prices {
                network_nanos_per_gb: 0,
                cpu_nanos_per_cpu_s: 1_000_000_000,
                memory_nanos_per_gb_s: 0,
                disk_nanos_per_gb_month: 0,
            },
            tick_ms: 200,
            window_ms: 500,
            disk_growth_bytes_per_s: 0,
            catch_up: true,
        };
        let fleet = vec![sprite(1)];
        // 10 s of one CPU ran since the baseline.
        let mut samples = vec![Some(Sample {
            cpu_ns: 10_000_000_000,
            ..Sample::default()
        })];
        let baselines = HashMap::from([(1, Baseline::default())]);
        let scope = Scope::Tenant("t".into());
        let of_sprite = HashMap::from([(1, vec![scope.clone()])]);
        let mut trial = Plan::default();
        trial.scopes.insert(
            scope.clone(),
            crate::tick::ScopeTotals {
                grew: Nanos(10_000_000_000),
                sprites: 1,
                running_cpus: 1,
                running: vec![1],
                ..Default::default()
            },
        );
        let before = HashMap::from([(scope.key(), Nanos(1_000_000_000))]);
        let period = Period::containing(10_000);
        let scopes = Scopes {
            cfg: &cfg,
            now_ms: 10_000,
            period,
            trial: &trial,
            of_sprite: &of_sprite,
            before: &before,
            cap: |_: &Scope| Some(Nanos(5_000_000_000)),
        };
        let mut real = HashMap::new();
        let cut = fit(&scopes, &fleet, &mut samples, &baselines, &mut real);
        assert_eq!(cut, 1);
        // $4 left less one window ($0.5) kept for the pause: the window's 0.5 s of
        // CPU plus about 3 s more.
        let billed = samples[0].unwrap().cpu_ns;
        assert!(
            (3_499_000_000..=3_500_000_000).contains(&billed),
            "{billed}"
        );
        assert_eq!(real[&1].cpu_ns, 10_000_000_000);
    }
}
