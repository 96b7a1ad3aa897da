//! A tick is part of the rule's window: sprites run on until the next tick has finished
//! deciding, so after a slow tick the worst case is that much longer, and a scope that
//! fit the bare window (tick plus pause latency) is paused when it no longer fits.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{cpu_only, db, sprite, t0, tenant};
use corral_metering::recorded::RecordedFleet;
use corral_metering::{Fleet, FleetError, FleetSprite, Meter, Sample};

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
/// after ticks whose listing takes `delay_ms`. Its worst case over the bare window
/// (1 s tick + 1 s pause latency, both vCPUs at $0.001 per CPU-second) is 4.0; with a
/// 400 ms tick on top it is 4.8.
async fn runs_after_ticks_taking(delay_ms: u64) -> bool {
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
    let mut now = t0();
    for _ in 0..3 {
        meter.tick_at(now).await.unwrap();
        now += 1_000;
    }
    inner.is_running(1)
}

#[tokio::test]
async fn a_slow_tick_widens_the_rules_window() {
    assert!(
        runs_after_ticks_taking(0).await,
        "fits the bare window: keeps running"
    );
    assert!(
        !runs_after_ticks_taking(400).await,
        "with 400 ms ticks the worst case passes the cap: paused"
    );
}
