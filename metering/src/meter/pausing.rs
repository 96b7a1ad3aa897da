//! Billing the tick after a budget pause: a sprite asked to pause may only be billed
//! what the rule had reserved for it, even when the pause took longer than declared.
//!
//! The rule at tick T−1 let a scope run because the window from T−1 (tick plus pause
//! latency) fitted. If tick T then pauses the scope, the sprite's compute up to the
//! pause is covered only by what is left of that window, `window − (T − T−1)`. The
//! ordinary per-tick clamp (one whole window) would bill more when the pause was slow
//! (a loaded host, a busy sandbox) and push spend past the cap; here it is cut to the
//! remainder instead, and a sprite whose pause failed (asked again) is billed nothing
//! more until it stops. Baselines keep the real counters so nothing is billed later.

use std::collections::HashMap;

use crate::fleet::{FleetSprite, Sample};
use crate::tick::{Baseline, SpriteUpdate};

/// What each sprite asked to pause at this tick may still be billed at the next one,
/// in milliseconds of its declared worst case.
pub fn allowances(
    pause: &[i64],
    previous: &HashMap<i64, i64>,
    baselines: &HashMap<i64, Baseline>,
    now_ms: i64,
    window_ms: i64,
    tick_ms: i64,
) -> HashMap<i64, i64> {
    pause
        .iter()
        .map(|id| {
            let allowance = if previous.contains_key(id) {
                0 // already asked last tick: the reservation is used up
            } else {
                let billed_ms = baselines.get(id).map_or(tick_ms, |b| now_ms - b.at_ms);
                (window_ms - billed_ms).clamp(0, window_ms)
            };
            (*id, allowance)
        })
        .collect()
}

/// Cuts the samples of sprites with an allowance to it. Returns the real samples (to
/// put back into the baselines) and how many were cut.
pub fn limit(
    fleet: &[FleetSprite],
    samples: &mut [Option<Sample>],
    allowances: &HashMap<i64, i64>,
    baselines: &HashMap<i64, Baseline>,
    now_ms: i64,
    window_ms: i64,
) -> (HashMap<i64, Sample>, u64) {
    let (mut real, mut cut) = (HashMap::new(), 0);
    for (sprite, slot) in fleet.iter().zip(samples.iter_mut()) {
        let (Some(sample), Some(allow)) = (slot.as_mut(), allowances.get(&sprite.sprite_id)) else {
            continue;
        };
        let Some(base) = baselines.get(&sprite.sprite_id) else {
            continue;
        };
        real.insert(sprite.sprite_id, *sample);
        let allow = (*allow).max(0) as u64;
        let cpu_allowed = u64::from(sprite.cpus)
            .saturating_mul(allow)
            .saturating_mul(1_000_000);
        // A counter below its baseline is a restart: all of it would be billed.
        let from = if sample.cpu_ns >= base.cpu_ns {
            base.cpu_ns
        } else {
            0
        };
        let cpu_max = from.saturating_add(cpu_allowed);
        let mut was_cut = false;
        if sample.cpu_ns > cpu_max {
            sample.cpu_ns = cpu_max;
            was_cut = true;
        }
        let elapsed = (now_ms - base.at_ms).clamp(1, window_ms.max(1)) as u64;
        if sprite.running && allow < elapsed {
            let scaled = u128::from(sample.memory_bytes) * u128::from(allow) / u128::from(elapsed);
            sample.memory_bytes = scaled as u64;
            was_cut = true;
        }
        cut += u64::from(was_cut);
    }
    (real, cut)
}

/// Puts the real counters back into the new baselines, so what was not billed is not
/// billed later either.
pub fn restore(updates: &mut [SpriteUpdate], real: &HashMap<i64, Sample>) {
    for update in updates {
        if let Some(sample) = real.get(&update.sprite_id) {
            update.baseline.cpu_ns = sample.cpu_ns;
            update.baseline.memory_bytes = sample.memory_bytes;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(at_ms: i64, cpu_ns: u64) -> Baseline {
        Baseline {
            at_ms,
            cpu_ns,
            ..Baseline::default()
        }
    }

    fn sprite(id: i64, running: bool) -> FleetSprite {
        FleetSprite {
            network_bytes_per_s: 0,
            sprite_id: id,
            tenant_id: "t".into(),
            name: format!("s{id}"),
            created_by_token: None,
            running,
            cpus: 2,
            memory_mb: 1024,
            reserve_bytes: 0,
        }
    }

    #[test]
    fn the_remainder_of_the_window_and_nothing_for_a_repeat() {
        let baselines = HashMap::from([(1, base(800, 0)), (2, base(500, 0)), (3, base(0, 0))]);
        let previous = HashMap::from([(3, 100)]);
        let a = allowances(&[1, 2, 3, 4], &previous, &baselines, 1000, 500, 200);
        assert_eq!(a[&1], 300); // on time: the pause latency is left
        assert_eq!(a[&2], 0); // a late tick used the whole window
        assert_eq!(a[&3], 0); // asked again: its pause failed
        assert_eq!(a[&4], 300); // first seen this tick: billed one tick
    }

    #[test]
    fn samples_are_cut_to_the_allowance_and_restored_in_baselines() {
        let fleet = [sprite(1, false), sprite(2, true), sprite(3, true)];
        let baselines = HashMap::from([(1, base(1000, 5_000_000_000)), (2, base(1000, 0))]);
        let mut samples = vec![
            Some(Sample {
                network_bytes: 0,
                cpu_ns: 6_000_000_000,
                memory_bytes: 1 << 30,
                disk_bytes: 7,
            }),
            Some(Sample {
                network_bytes: 0,
                cpu_ns: 100,
                memory_bytes: 1000,
                disk_bytes: 7,
            }),
            Some(Sample {
                network_bytes: 0,
                cpu_ns: 9,
                memory_bytes: 9,
                disk_bytes: 9,
            }),
        ];
        let allowed = HashMap::from([(1, 300), (2, 300)]);
        let (real, cut) = limit(&fleet, &mut samples, &allowed, &baselines, 1500, 500);
        assert_eq!(cut, 2);
        // 2 vCPUs for 300 ms at most.
        assert_eq!(samples[0].unwrap().cpu_ns, 5_600_000_000);
        assert_eq!(
            samples[0].unwrap().memory_bytes,
            1 << 30,
            "not running: unbilled"
        );
        assert_eq!(samples[1].unwrap().cpu_ns, 100, "under the allowance");
        assert_eq!(samples[1].unwrap().memory_bytes, 600, "300 of 500 ms");
        assert_eq!(samples[2].unwrap().cpu_ns, 9, "not being paused");
        let mut updates = vec![SpriteUpdate {
            sprite_id: 1,
            row: None,
            grew: crate::Nanos::ZERO,
            baseline: base(1500, 5_600_000_000),
        }];
        restore(&mut updates, &real);
        assert_eq!(updates[0].baseline.cpu_ns, 6_000_000_000);
    }
}
