//! A meter that was not running (the server killed) while a sprite spun: the next
//! meter bills the CPU the counters show for the outage, and never past the cap.

mod common;

use std::sync::Arc;

use common::{cpu_only, db, spent, sprite, t0, tenant};
use corral_metering::db as mdb;
use corral_metering::recorded::RecordedFleet;
use corral_metering::{BudgetContext, Meter, Nanos, Sample, Scope};

fn cpu(fleet: &RecordedFleet, cpu_ns: u64) {
    fleet.set_sample(
        1,
        Some(Sample {
            cpu_ns,
            ..Sample::default()
        }),
    );
}

/// Spins sprite 1 (2 vCPUs) for 2 s, kills the meter, lets 20 s of both vCPUs run
/// unmetered, starts a new meter and ticks it for 10 s more (the sprite spinning until
/// it is paused). Returns (spent after the first new tick, spent at the end, paused).
async fn outage(cap: i64) -> (Nanos, Nanos, bool) {
    let (_dir, pool) = db().await;
    tenant(&pool, "t1", Some(cap)).await;
    let fleet = Arc::new(RecordedFleet::default());
    fleet.insert(sprite(&pool, 1, "t1", None).await);
    let scope = Scope::Tenant("t1".into());
    let (mut now, mut counter) = (t0(), 0u64);
    let mut meter = Meter::new(pool.clone(), fleet.clone(), cpu_only());
    cpu(&fleet, 0);
    for _ in 0..3 {
        meter.tick_at(now).await.unwrap();
        now += 1_000;
        counter += 2_000_000_000;
        cpu(&fleet, counter);
    }
    drop(meter); // killed: nothing meters the next 20 s
    now += 20_000;
    counter += 40_000_000_000;
    cpu(&fleet, counter);
    let mut meter = Meter::new(pool.clone(), fleet.clone(), cpu_only());
    meter.tick_at(now).await.unwrap();
    let first = spent(&pool, &scope, now).await;
    for _ in 0..10 {
        if fleet.is_running(1) {
            counter += 2_000_000_000;
        }
        now += 1_000;
        cpu(&fleet, counter);
        meter.tick_at(now).await.unwrap();
        let s = spent(&pool, &scope, now).await;
        assert!(s <= Nanos(cap), "spent {s:?} of {cap}");
    }
    let mut conn = pool.acquire().await.unwrap();
    let ctx = BudgetContext {
        prices: cpu_only().prices,
        default_tenant_cap: None,
        now_ms: now,
        prepaid: false,
    };
    let b = mdb::tenant_budget(&mut conn, "t1", &ctx)
        .await
        .unwrap()
        .unwrap();
    assert!(b.spent + b.storage_reserved <= Nanos(cap), "{b:?}");
    (first, b.spent, !fleet.is_running(1))
}

#[tokio::test]
async fn the_outage_is_billed_in_full_when_the_cap_allows() {
    // $0.001 per CPU-second: 6 CPU-s before the kill, 40 during the outage.
    let (first, last, paused) = outage(1_000_000_000).await;
    assert!(!paused);
    assert_eq!(first, Nanos(6_000_000 + 40_000_000));
    assert_eq!(last, Nanos(6_000_000 + 40_000_000 + 20_000_000));
}

#[tokio::test]
async fn the_outage_is_billed_up_to_the_cap_and_the_sprite_paused_at_once() {
    let cap = 20_000_000; // room for 16 of the 40 CPU-s that ran
    let (first, last, paused) = outage(cap).await;
    assert!(paused);
    // Billed up to the cap at the first tick, less what the rule keeps for the next
    // window (2 vCPUs for 2 s: 4,000,000) and its rounding slack (a nano-dollar per
    // minute left in the month, ~30,000 here).
    assert!(
        first > Nanos(cap - 4_040_000) && first <= Nanos(cap - 4_000_000),
        "{first:?}"
    );
    assert_eq!(last, first, "nothing more billed once paused");
}
