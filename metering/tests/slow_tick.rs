//! A tick is part of the rule's window: sprites run on until the next tick has finished
//! deciding, so after a slow tick the worst case is that much longer, and a scope that
//! fit the bare window (tick plus pause latency) is paused when it no longer fits. The
//! runway admission asks for follows the same window, so the paused scope is not let
//! run again at once.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{cpu_only, db, sprite, t0, tenant};
use corral_metering::recorded::RecordedFleet;
use corral_metering::{Admissions, Candidate, Fleet, FleetError, FleetSprite, Meter, Sample};

/// A recorded fleet whose listing takes `delay_ms` (a slow database, a loaded host).
struct SlowFleet {
    inner: Arc<RecordedFleet>,
    delay_ms: AtomicU64,
}

#[async_trait::async_trait]
impl Fleet for SlowFleet {
    async fn sprites(&self) -> Result<Vec<FleetSprite>, FleetError> {
        let delay = self.delay_ms.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        self.inner.sprites().await
    }

    fn sample(&self, sprite_id: i64) -> Option<Sample> {
        self.inner.sample(sprite_id)
    }

    async fn pause_for_budget(&self, sprite_ids: &[i64]) {
        self.inner.pause_for_budget(sprite_ids).await;
    }
}

/// Whether an idle two-vCPU sprite under a cap of 4.5 milli-dollars is still running
/// after ticks whose listing takes `delay_ms`, and whether admission (with no minimum
/// runway of its own) would then let it run. Its worst case over the bare window
/// (1 s tick + 1 s pause latency, both vCPUs at $0.001 per CPU-second) is 4.0; with a
/// 400 ms tick on top it is 4.8, and the runway of whole seconds is 3 s: 6.0 (on the
/// bare window's 2 s runway, 4.0, it would be let run again at once).
async fn runs_after_ticks_taking(delay_ms: u64) -> (bool, bool) {
    let (_dir, pool) = db().await;
    tenant(&pool, "t1", Some(4_500_000)).await;
    let inner = Arc::new(RecordedFleet::default());
    inner.insert(sprite(&pool, 1, "t1", None).await);
    inner.set_sample(1, Some(Sample::default()));
    let fleet = Arc::new(SlowFleet {
        inner: inner.clone(),
        delay_ms: AtomicU64::new(delay_ms),
    });
    let mut meter = Meter::new(pool.clone(), fleet, cpu_only());
    let admissions = Admissions::new(pool.clone(), cpu_only(), 0, meter.window());
    let mut now = t0();
    for _ in 0..3 {
        meter.tick_at(now).await.unwrap();
        now += 1_000;
    }
    let candidate = Candidate {
        sprite_id: 1,
        tenant_id: "t1",
        created_by_token: None,
        cpus: 2,
        memory_mb: 1024,
        disk_bytes: 0,
        network_bytes_per_s: 0,
    };
    let admitted = admissions.would_admit(&candidate).await.unwrap().is_ok();
    (inner.is_running(1), admitted)
}

#[tokio::test]
async fn a_slow_tick_widens_the_rules_window() {
    assert!(
        runs_after_ticks_taking(0).await.0,
        "fits the bare window: keeps running"
    );
    assert_eq!(
        runs_after_ticks_taking(400).await,
        (false, false),
        "with 400 ms ticks the worst case passes the cap: paused, and not readmitted"
    );
}
