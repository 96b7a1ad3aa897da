//! Tests of the hard-cap rule, including the property that spend never passes the cap.

use super::*;
use crate::prices::{Usage, BYTES_PER_MIB};

const GB: u64 = 1_000_000_000;
const DAY_MS: i64 = 86_400_000;

#[test]
fn storage_reservation_covers_the_rest_of_the_period() {
    let p = Prices::default();
    // 2 GB for 365 hours (half a 730-hour month) at $0.50/GB-month is $0.50, plus one
    // nano per sprite and remaining ledger minute (21_900 minutes + 1).
    let half_month = 365 * 3_600_000;
    assert_eq!(
        storage_reserved(&p, 2 * GB, 1, half_month),
        Nanos(500_000_000 + 21_901)
    );
    assert_eq!(
        storage_reserved(&p, 2 * GB, 3, half_month),
        Nanos(500_000_000 + 3 * 21_901)
    );
    // Nothing stored, nothing reserved but the rounding; nothing left, nothing at all.
    assert_eq!(storage_reserved(&p, 0, 1, 60_000), Nanos(2));
    assert_eq!(storage_reserved(&p, 2 * GB, 1, 0), Nanos(0));
}

#[test]
fn pauses_when_the_next_window_does_not_fit() {
    let p = Prices::default();
    let mut scope = ScopeInput {
        cap: Nanos(1_000_000),
        spent: Nanos(0),
        running_cpus: 2,
        running_memory_bytes: 1024 * BYTES_PER_MIB,
        sprites: 1,
        ..ScopeInput::default()
    };
    // Worst case for 2 s: 2 * (2 * 19_444 + 13_049.2) rounded up, plus 3 of slack.
    let worst = worst_case_next_tick(&p, &scope, 2000, DAY_MS);
    assert_eq!(worst, Nanos(77_776 + 26_099 + 3));
    scope.spent = Nanos(1_000_000 - 2 - worst.get() - 1441);
    let v = evaluate(&p, &scope, 2000, DAY_MS);
    assert_eq!(v.storage_reserved, Nanos(1441)); // rounding reserve only: a day of minutes + 1
    assert_eq!(v.available, worst + Nanos(2));
    assert!(!v.pause);
    scope.spent += Nanos(3);
    let v = evaluate(&p, &scope, 2000, DAY_MS);
    assert_eq!(v.available, worst - Nanos(1));
    assert!(v.pause);
    // Nothing running: nothing to pause, even with the budget gone.
    scope.running_cpus = 0;
    scope.running_memory_bytes = 0;
    scope.spent = Nanos(2_000_000);
    assert!(!evaluate(&p, &scope, 2000, DAY_MS).pause);
}

#[test]
fn stored_bytes_and_growth_count_against_what_is_available() {
    let p = Prices::default();
    let scope = ScopeInput {
        cap: Nanos::from_usd(1),
        stored_bytes: 2 * GB,
        running_cpus: 1,
        running_memory_bytes: 256 * BYTES_PER_MIB,
        disk_growth_bytes: GB,
        sprites: 1,
        ..ScopeInput::default()
    };
    let remaining = 730 * 3_600_000; // a whole price month left
    let v = evaluate(&p, &scope, 2000, remaining);
    // $1.00 of storage reserved for 2 GB, so nothing is available: pause.
    assert_eq!(
        v.available,
        Nanos::from_usd(1) - Nanos(1_000_000_000 + 43_801)
    );
    assert!(v.pause);
    // The allowed growth is charged to the period's end: 1 GB is $0.50.
    assert!(v.worst_case > Nanos(500_000_000));
}

#[test]
fn runway_needs_the_whole_runway_of_worst_burn() {
    assert!(runway_ok(Nanos(600), Nanos(4), Nanos(6), 60));
    assert!(!runway_ok(Nanos(599), Nanos(4), Nanos(6), 60));
    assert!(!runway_ok(Nanos(0), Nanos(0), Nanos(0), 60));
    assert!(!runway_ok(Nanos(-5), Nanos(0), Nanos(0), 60));
    assert!(!runway_ok(
        Nanos::MAX - Nanos(1),
        Nanos::MAX,
        Nanos(1),
        u64::MAX
    ));
}

/// A small deterministic PRNG (xorshift64*) so the property test needs no crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

struct SimSprite {
    cpus: u64,
    memory_bytes: u64,
    disk_bytes: u64,
    /// 0 running, 1 pausing (runs for at most the pause latency), 2 paused.
    state: u8,
    row: Usage,
}

/// One scope, priced and ledgered the way the meter does it (per-sprite minute rows,
/// cost recomputed from totals), with samples drawn at random within the declared
/// worst case. Returns (spent plus the final storage reservation, cap, paused?).
fn simulate(seed: u64) -> (Nanos, Nanos, bool) {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let prices = Prices {
        network_nanos_per_gb: 0,
        cpu_nanos_per_cpu_s: rng.range(1, 2_000_000),
        memory_nanos_per_gb_s: rng.range(1, 1_000_000),
        disk_nanos_per_gb_month: rng.range(1, 50_000_000_000),
    };
    let tick_ms = rng.range(100, 2000) as i64;
    let latency_ms = rng.range(0, 1500) as i64;
    let window = tick_ms + latency_ms;
    // Disk growth is declared as a rate (bytes per ms of running), like the meter's
    // `disk_growth_bytes_per_s`; three in four runs declare none.
    let growth_per_ms = rng.range(0, 50_000) * u64::from(rng.range(0, 3) == 0);
    let mut remaining = rng.range(window as u64 * 3, 40 * DAY_MS as u64) as i64;
    let mut clock = rng.range(0, 59_999) as i64; // where in a ledger minute we start
    let mut sprites: Vec<SimSprite> = (0..rng.range(1, 5))
        .map(|_| SimSprite {
            cpus: rng.range(1, 8),
            memory_bytes: rng.range(64, 8192) * BYTES_PER_MIB,
            disk_bytes: rng.range(0, 20 * GB),
            state: 0,
            row: Usage::default(),
        })
        .collect();
    let input = |sprites: &[SimSprite], cap: Nanos, spent: Nanos| {
        let running = sprites.iter().filter(|s| s.state == 0);
        ScopeInput {
            running_network_bytes_per_s: 0,
            cap,
            spent,
            stored_bytes: sprites.iter().map(|s| s.disk_bytes).sum(),
            running_cpus: running.clone().map(|s| s.cpus).sum(),
            running_memory_bytes: running.clone().map(|s| s.memory_bytes).sum(),
            disk_growth_bytes: growth_per_ms * window as u64 * running.count() as u64,
            sprites: sprites.len() as u64,
        }
    };
    // The cap passes the runway check at the start (that is what let them run), with
    // a random amount of headroom: from a few ticks to hours.
    let start = input(&sprites, Nanos(0), Nanos(0));
    let v = evaluate(&prices, &start, window, remaining);
    let ticks_of_headroom = rng.range(1, 1000);
    let per_tick = prices.compute_worst(start.running_cpus, start.running_memory_bytes, tick_ms);
    let headroom = Nanos(rng.range(0, per_tick.get().max(1) as u64 * ticks_of_headroom) as i64);
    let cap = v.worst_case + v.storage_reserved + headroom;
    let mut spent = Nanos(0);
    let mut paused_any = false;
    let mut committed = Nanos(0);
    for _ in 0..3000 {
        if remaining <= tick_ms {
            break;
        }
        let v = evaluate(&prices, &input(&sprites, cap, spent), window, remaining);
        if v.pause {
            paused_any = true;
            sprites
                .iter_mut()
                .filter(|s| s.state == 0)
                .for_each(|s| s.state = 1);
        }
        // The next tick comes on time (or early); each sprite uses anything up to its
        // declared maximum, a pausing one for at most the pause latency.
        let elapsed = rng.range(1, tick_ms as u64) as i64;
        let minute_before = clock / 60_000;
        clock += elapsed;
        remaining -= elapsed;
        for s in sprites.iter_mut() {
            if clock / 60_000 != minute_before {
                s.row = Usage::default(); // a new ledger row
            }
            let busy_ms = match s.state {
                0 => elapsed,
                1 => rng.range(0, latency_ms.min(window) as u64) as i64,
                _ => 0,
            } as u64;
            if s.state < 2 {
                // Now and then a sprite deletes a little data.
                s.disk_bytes = if rng.range(0, 50) == 0 {
                    s.disk_bytes - rng.range(0, s.disk_bytes / 100)
                } else {
                    s.disk_bytes + rng.range(0, growth_per_ms * busy_ms)
                };
            }
            // Often flat out, otherwise anything below.
            let flat_out = rng.range(0, 1) == 0;
            let mut upto = |max: u64| if flat_out { max } else { rng.range(0, max) };
            let delta = Usage {
                network_bytes: 0,
                cpu_ns: upto(s.cpus * busy_ms * 1_000_000),
                memory_byte_ms: upto(s.memory_bytes) * busy_ms,
                disk_byte_ms: s.disk_bytes * elapsed as u64,
            };
            let (row, grew) = prices.price_row(s.row, delta);
            s.row = row;
            spent += grew;
            if s.state == 1 {
                s.state = 2;
            }
        }
        assert!(spent <= cap, "seed {seed}: spent {spent:?} > cap {cap:?}");
        let stored = sprites.iter().map(|s| s.disk_bytes).sum();
        let reserved = storage_reserved(&prices, stored, sprites.len() as u64, remaining);
        committed = spent + reserved;
        assert!(
            committed <= cap,
            "seed {seed}: spent {spent:?} + reserved {reserved:?} > cap {cap:?}"
        );
    }
    (committed, cap, paused_any)
}

#[test]
fn property_spend_never_passes_the_cap() {
    let mut paused = 0;
    let mut close = 0;
    for seed in 0..1500 {
        let (committed, cap, paused_any) = simulate(seed);
        if paused_any {
            paused += 1;
            // The rule is not trivially safe: a paused scope ends within 1 % of its cap.
            if (cap - committed).get() * 100 < cap.get() {
                close += 1;
            }
        }
    }
    assert!(paused > 300, "only {paused} runs reached their cap");
    assert!(
        close > 100,
        "only {close} paused runs used 90 % of their cap"
    );
}
