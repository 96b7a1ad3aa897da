//! Tests of one tick's arithmetic: deltas, counter resets, clamps and scope sums.

use super::*;

const NOW: i64 = 1_795_000_000_000; // somewhere in November 2026

fn cfg() -> TickConfig {
    TickConfig {
        prices: Prices::default(),
        tick_ms: 1000,
        window_ms: 2000,
        disk_growth_bytes_per_s: 0,
        catch_up: false,
    }
}

fn sprite(id: i64, running: bool) -> FleetSprite {
    FleetSprite {
        network_bytes_per_s: 0,
        sprite_id: id,
        tenant_id: "t1".into(),
        name: format!("s{id}"),
        created_by_token: None,
        running,
        cpus: 2,
        memory_mb: 1024,
        reserve_bytes: 0,
    }
}

fn base(at_ms: i64, cpu_ns: u64) -> Baseline {
    Baseline {
        at_ms,
        cpu_ns,
        ..Baseline::default()
    }
}

#[test]
fn usage_is_the_counter_delta_over_the_elapsed_time() {
    let p = Period::containing(NOW);
    let s = Sample {
        network_bytes: 0,
        cpu_ns: 5_500_000_000,
        memory_bytes: 100 << 20,
        disk_bytes: 1_000,
    };
    let (u, next, clamped) = sprite_usage(
        &cfg(),
        NOW,
        p,
        &sprite(1, true),
        s,
        Some(&base(NOW - 1000, 5_000_000_000)),
    );
    assert_eq!(
        u,
        Usage {
            network_bytes: 0,
            cpu_ns: 500_000_000,
            memory_byte_ms: (100 << 20) * 1000,
            disk_byte_ms: 1_000_000
        }
    );
    assert_eq!((next.at_ms, next.cpu_ns), (NOW, 5_500_000_000));
    assert!(!clamped);
}

#[test]
fn a_counter_that_went_backwards_is_a_restarted_machine() {
    let p = Period::containing(NOW);
    let s = Sample {
        cpu_ns: 300_000_000,
        ..Sample::default()
    };
    let (u, next, _) = sprite_usage(
        &cfg(),
        NOW,
        p,
        &sprite(1, true),
        s,
        Some(&base(NOW - 1000, 9_000_000_000)),
    );
    // Everything since the restart, nothing negative, and the new counter as baseline.
    assert_eq!(u.cpu_ns, 300_000_000);
    assert_eq!(next.cpu_ns, 300_000_000);
    // The next tick counts from the new baseline only.
    let s2 = Sample {
        cpu_ns: 400_000_000,
        ..Sample::default()
    };
    let (u2, _, _) = sprite_usage(&cfg(), NOW + 1000, p, &sprite(1, true), s2, Some(&next));
    assert_eq!(u2.cpu_ns, 100_000_000);
}

#[test]
fn compute_is_clamped_to_the_declared_worst_case_and_one_window() {
    let p = Period::containing(NOW);
    // Ten minutes since the last tick (a restart after downtime): compute bills at
    // most one window of 2 vCPUs and 1024 MiB; disk bills the real ten minutes.
    let s = Sample {
        network_bytes: 0,
        cpu_ns: 1_000_000_000_000,
        memory_bytes: 4 << 30,
        disk_bytes: 10,
    };
    let (u, _, clamped) = sprite_usage(
        &cfg(),
        NOW,
        p,
        &sprite(1, true),
        s,
        Some(&base(NOW - 600_000, 0)),
    );
    assert!(clamped);
    assert_eq!(u.cpu_ns, 2 * 2000 * 1_000_000);
    assert_eq!(u.memory_byte_ms, (1024 << 20) * 2000);
    assert_eq!(u.disk_byte_ms, 10 * 600_000);
}

#[test]
fn paused_sprites_pay_for_disk_only_and_new_ones_for_one_tick() {
    let p = Period::containing(NOW);
    let s = Sample {
        network_bytes: 0,
        cpu_ns: 7,
        memory_bytes: 1 << 30,
        disk_bytes: 2_000,
    };
    let (u, _, _) = sprite_usage(
        &cfg(),
        NOW,
        p,
        &sprite(1, false),
        s,
        Some(&base(NOW - 1000, 7)),
    );
    assert_eq!(
        u,
        Usage {
            network_bytes: 0,
            cpu_ns: 0,
            memory_byte_ms: 0,
            disk_byte_ms: 2_000_000
        }
    );
    // First sight: the counter since the machine started, one tick of memory and disk.
    let (u, next, _) = sprite_usage(&cfg(), NOW, p, &sprite(1, true), s, None);
    assert_eq!(
        u,
        Usage {
            network_bytes: 0,
            cpu_ns: 7,
            memory_byte_ms: (1 << 30) * 1000,
            disk_byte_ms: 2_000_000
        }
    );
    assert_eq!(next.cost, Nanos::ZERO);
}

#[test]
fn disk_does_not_accrue_into_a_period_from_before_it() {
    let p = Period::containing(NOW);
    let s = Sample {
        disk_bytes: 3,
        ..Sample::default()
    };
    let now = p.start_ms + 400; // 400 ms into the month, last sample 1 s ago
    let (u, _, _) = sprite_usage(
        &cfg(),
        now,
        p,
        &sprite(1, false),
        s,
        Some(&base(now - 1000, 0)),
    );
    assert_eq!(u.disk_byte_ms, 3 * 400);
}

#[test]
fn plan_sums_scopes_and_grows_rows_from_their_totals() {
    let c = cfg();
    let p = Period::containing(NOW);
    let fleet = vec![sprite(1, true), sprite(2, false), sprite(3, true)];
    let samples = vec![
        Some(Sample {
            network_bytes: 0,
            cpu_ns: 1_000_000_000,
            memory_bytes: 0,
            disk_bytes: 5,
        }),
        Some(Sample {
            network_bytes: 0,
            cpu_ns: 0,
            memory_bytes: 0,
            disk_bytes: 7,
        }),
        None, // unreadable: billed nothing, its last bytes still counted
    ];
    let baselines: HashMap<i64, Baseline> = [
        (1, base(NOW - 1000, 0)),
        (2, base(NOW - 1000, 0)),
        (
            3,
            Baseline {
                disk_bytes: 11,
                ..base(NOW - 1000, 0)
            },
        ),
    ]
    .into();
    let old = LedgerRow {
        usage: Usage {
            cpu_ns: 1,
            ..Usage::default()
        },
        cost: Nanos(1),
    };
    let rows: HashMap<i64, LedgerRow> = [(1, old)].into();
    let scopes_of = |s: &FleetSprite| {
        let mut v = vec![Scope::Tenant(s.tenant_id.clone())];
        if s.sprite_id != 2 {
            v.push(Scope::Token("tok".into()));
        }
        v
    };
    let plan = plan(&c, NOW, p, &fleet, &samples, &baselines, &rows, scopes_of);
    assert_eq!(plan.updates.len(), 2);
    let u1 = &plan.updates[0];
    let row = u1.row.unwrap();
    assert_eq!(row.usage.cpu_ns, 1_000_000_001);
    assert_eq!(row.cost, c.prices.cost(row.usage));
    assert_eq!(u1.grew, row.cost - Nanos(1));
    assert_eq!(u1.baseline.cost, u1.grew);
    let tenant = &plan.scopes[&Scope::Tenant("t1".into())];
    assert_eq!(
        (tenant.sprites, tenant.stored_bytes, tenant.running_cpus),
        (3, 23, 4)
    );
    assert_eq!(tenant.running, vec![1, 3]);
    assert_eq!(tenant.grew, plan.cost);
    let token = &plan.scopes[&Scope::Token("tok".into())];
    assert_eq!((token.sprites, token.stored_bytes), (2, 16));
    assert_eq!(
        token.worst_burn_per_s,
        c.prices
            .sprite_worst_burn_per_s(2, 1024, 0)
            .saturating_mul(2)
    );
}

#[test]
fn network_is_the_counters_delta_within_the_bandwidth_and_priced() {
    let p = Period::containing(NOW);
    let mut s1 = sprite(1, true);
    s1.network_bytes_per_s = 1_000_000;
    let before = Baseline {
        at_ms: NOW - 1000,
        network_bytes: 2_000_000,
        ..Baseline::default()
    };
    let moved = Sample {
        network_bytes: 2_600_000,
        ..Sample::default()
    };
    let (u, next, clamped) = sprite_usage(&cfg(), NOW, p, &s1, moved, Some(&before));
    assert_eq!(
        (u.network_bytes, next.network_bytes, clamped),
        (600_000, 2_600_000, false)
    );
    // $0.09 per GB: 600 kB cost 54,000 nano-dollars.
    assert_eq!(cfg().prices.network_cost(u.network_bytes), Nanos(54_000));
    // More than the bandwidth could move in the window is cut to it (and said); a
    // counter that went back (the server restarted) counts from zero.
    let flood = Sample {
        network_bytes: 50_000_000,
        ..Sample::default()
    };
    let (u, _, clamped) = sprite_usage(&cfg(), NOW, p, &s1, flood, Some(&before));
    assert!(clamped);
    assert_eq!(
        u.network_bytes,
        crate::prices::network_worst_bytes(1_000_000, 1000)
    );
    let restarted = Sample {
        network_bytes: 5_000,
        ..Sample::default()
    };
    let (u, _, _) = sprite_usage(&cfg(), NOW, p, &s1, restarted, Some(&before));
    assert_eq!(u.network_bytes, 5_000);
}

#[test]
fn the_rule_reserves_the_running_sprites_bandwidth() {
    let prices = Prices::default();
    let quiet = ScopeInput {
        cap: Nanos(1_000_000_000),
        running_cpus: 1,
        sprites: 1,
        ..ScopeInput::default()
    };
    let busy = ScopeInput {
        running_network_bytes_per_s: 125_000_000,
        ..quiet
    };
    let (q, b) = (
        crate::rule::worst_case_next_tick(&prices, &quiet, 2000, 60_000),
        crate::rule::worst_case_next_tick(&prices, &busy, 2000, 60_000),
    );
    // 1 Gbit/s for the 2 s window and its 0.1 s burst: 262.5 MB at $0.09 per GB.
    assert_eq!(b - q, Nanos(23_625_000));
}
