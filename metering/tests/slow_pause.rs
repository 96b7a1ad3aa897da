//! A budget pause slower than the declared pause latency (a loaded host) must not let
//! billing pass the cap: the tick after the pause bills only what the rule reserved.

mod common;

use std::sync::Arc;

use common::{cpu_only, db, spent, sprite, t0, tenant};
use corral_metering::recorded::RecordedFleet;
use corral_metering::{Meter, Nanos, Sample, Scope};
use sqlx::SqlitePool;
use tempfile::TempDir;

/// Tenant `t1` with `cap` and one sprite of it (id 1) in a recorded fleet.
async fn one_sprite(cap: i64) -> (TempDir, SqlitePool, Arc<RecordedFleet>) {
    let (dir, pool) = db().await;
    tenant(&pool, "t1", Some(cap)).await;
    let fleet = Arc::new(RecordedFleet::default());
    fleet.insert(sprite(&pool, 1, "t1", None).await);
    (dir, pool, fleet)
}

/// Sprite 1's cumulative CPU counter now reads `cpu_ns`.
fn set_cpu(fleet: &RecordedFleet, cpu_ns: u64) {
    fleet.set_sample(
        1,
        Some(Sample {
            cpu_ns,
            ..Sample::default()
        }),
    );
}

#[tokio::test]
async fn a_pause_slower_than_declared_is_never_billed_past_the_cap() {
    for pause_ms in [1_000, 1_500, 3_000, 10_000] {
        for cap in [19_000_000, 20_500_000, 21_999_999] {
            let (_dir, pool, fleet) = one_sprite(cap).await;
            let mut meter = Meter::new(pool.clone(), fleet.clone(), cpu_only());
            let (mut now, mut counter, mut burning) = (t0(), 0u64, true);
            fleet.set_sample(1, Some(Sample::default()));
            meter.tick_at(now).await.unwrap();
            for _ in 0..40 {
                // Asked to pause by the last tick: it burns on until the slow pause lands,
                // and the next tick comes that much later.
                let pausing = burning && !fleet.is_running(1);
                let dt = if pausing { pause_ms } else { 1_000 };
                if burning {
                    counter += 2 * dt as u64 * 1_000_000; // both vCPUs flat out
                }
                burning &= !pausing;
                now += dt;
                set_cpu(&fleet, counter);
                meter.tick_at(now).await.unwrap();
                let spent = spent(&pool, &Scope::Tenant("t1".into()), now).await;
                assert!(
                    spent <= Nanos(cap),
                    "pause {pause_ms} ms, cap {cap}: spent {spent:?}"
                );
            }
            assert!(!burning, "paused (pause {pause_ms} ms, cap {cap})");
        }
    }
}

#[tokio::test]
async fn a_restart_right_after_a_slow_pause_bills_no_more_than_reserved() {
    for pause_ms in [1_000, 1_500, 3_000] {
        for cap in [19_000_000, 20_500_000, 21_999_999] {
            let (_dir, pool, fleet) = one_sprite(cap).await;
            let mut meter = Meter::new(pool.clone(), fleet.clone(), cpu_only());
            let (mut now, mut counter) = (t0(), 0u64);
            fleet.set_sample(1, Some(Sample::default()));
            meter.tick_at(now).await.unwrap();
            while fleet.is_running(1) {
                counter += 2_000_000_000;
                now += 1_000;
                set_cpu(&fleet, counter);
                meter.tick_at(now).await.unwrap();
            }
            // The pause lands late, the server dies and comes back a minute later.
            counter += 2 * pause_ms as u64 * 1_000_000;
            now += 60_000;
            set_cpu(&fleet, counter);
            let mut meter = Meter::new(pool.clone(), fleet.clone(), cpu_only());
            meter.tick_at(now).await.unwrap();
            let spent = spent(&pool, &Scope::Tenant("t1".into()), now).await;
            assert!(
                spent <= Nanos(cap),
                "pause {pause_ms} ms, cap {cap}: spent {spent:?}"
            );
        }
    }
}
