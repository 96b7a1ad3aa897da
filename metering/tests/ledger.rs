//! The ledger on a real SQLite file: what a tick records, tick idempotency, a crash in
//! the middle of a tick, counter resets, usage reports and the month rollover.

mod common;

use std::sync::Arc;

use common::{db, sprite, t0, tenant, token};
use corral_metering::db::{self as mdb, UsageQuery};
use corral_metering::period::{days_from_civil, DAY_MS};
use corral_metering::recorded::RecordedFleet;
use corral_metering::{Granularity, Meter, MeterConfig, Nanos, Sample, Scope};
use sqlx::SqlitePool;

const GB: u64 = 1_000_000_000;

fn sample(cpu_ns: u64) -> Option<Sample> {
    Some(Sample {
        network_bytes: 0,
        cpu_ns,
        memory_bytes: 512 << 20,
        disk_bytes: GB,
    })
}

async fn ledger_cpu(pool: &SqlitePool) -> i64 {
    sqlx::query_scalar("SELECT COALESCE(SUM(cpu_ns), 0) FROM usage_minutes")
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn ledger_cost(pool: &SqlitePool) -> Nanos {
    Nanos(
        sqlx::query_scalar("SELECT COALESCE(SUM(cost_nanos), 0) FROM usage_minutes")
            .fetch_one(pool)
            .await
            .unwrap(),
    )
}

async fn spent(pool: &SqlitePool, scope: Scope, at_ms: i64) -> Nanos {
    let mut conn = pool.acquire().await.unwrap();
    let period = corral_metering::Period::containing(at_ms);
    mdb::scope_spent(&mut conn, &scope, period.start_ms)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_tick_records_ledger_spend_and_costs_that_agree() {
    let (_dir, pool) = db().await;
    tenant(&pool, "t1", None).await;
    token(&pool, "root", "t1", None, None).await;
    token(&pool, "child", "t1", Some("root"), None).await;
    let fleet = Arc::new(RecordedFleet::default());
    fleet.insert(sprite(&pool, 1, "t1", Some("child")).await);
    fleet.insert(sprite(&pool, 2, "t1", None).await);
    let mut meter = Meter::new(pool.clone(), fleet.clone(), MeterConfig::default());
    for i in 0..130 {
        fleet.set_sample(1, sample(i * 500_000_000));
        fleet.set_sample(2, sample(i * 100_000_000));
        let report = meter.tick_at(t0() + i as i64 * 1000).await.unwrap();
        assert_eq!(report.tick_id, Some(i as i64 + 1));
    }
    // Sprite 1 used half a CPU for 129 s, sprite 2 a tenth (the first tick is a
    // counter of zero). Three ledger minutes each.
    assert_eq!(ledger_cpu(&pool).await, 129 * 600_000_000);
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM usage_minutes")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 6);
    // Every row's cost is its totals' cost, and the spend of each scope adds up.
    let prices = MeterConfig::default().prices;
    let all: Vec<(i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT cpu_ns, memory_byte_ms, disk_byte_ms, cost_nanos FROM usage_minutes",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    for (cpu, mem, disk, cost) in all {
        let usage = corral_metering::Usage {
            network_bytes: 0,
            cpu_ns: cpu as u64,
            memory_byte_ms: mem as u64,
            disk_byte_ms: disk as u64,
        };
        assert_eq!(prices.cost(usage), Nanos(cost));
    }
    let total = ledger_cost(&pool).await;
    assert!(total > Nanos::ZERO);
    assert_eq!(spent(&pool, Scope::Tenant("t1".into()), t0()).await, total);
    let mut conn = pool.acquire().await.unwrap();
    let costs = mdb::sprite_costs(&mut conn, "t1").await.unwrap();
    assert_eq!(costs[&1] + costs[&2], total);
    assert_eq!(
        mdb::sprite_cost(&mut conn, "t1", 1).await.unwrap(),
        costs[&1]
    );
    assert_eq!(
        mdb::sprite_cost(&mut conn, "other-tenant", 1)
            .await
            .unwrap(),
        Nanos::ZERO
    );
    drop(conn);
    // The token chain: child and root both carry sprite 1's spend, and only that.
    assert_eq!(
        spent(&pool, Scope::Token("child".into()), t0()).await,
        costs[&1]
    );
    assert_eq!(
        spent(&pool, Scope::Token("root".into()), t0()).await,
        costs[&1]
    );
}

#[tokio::test]
async fn a_replayed_or_crashed_tick_counts_nothing_twice_and_loses_nothing() {
    let (_dir, pool) = db().await;
    tenant(&pool, "t1", None).await;
    let fleet = Arc::new(RecordedFleet::default());
    fleet.insert(sprite(&pool, 1, "t1", None).await);
    let mut meter = Meter::new(pool.clone(), fleet.clone(), MeterConfig::default());
    fleet.set_sample(1, sample(0));
    meter.tick_at(t0()).await.unwrap();
    fleet.set_sample(1, sample(1_000_000_000));
    meter.tick_at(t0() + 1000).await.unwrap();
    let cost = ledger_cost(&pool).await;
    // The same instant again (a second meter, or a clock that stepped back): refused.
    let replay = meter.tick_at(t0() + 1000).await.unwrap();
    assert_eq!(replay.tick_id, None);
    assert_eq!(ledger_cost(&pool).await, cost);

    // A tick that dies inside its transaction, after its ledger rows were written
    // (a trigger makes the spend write fail, as a kill -9 would stop it), leaves no
    // trace at all.
    sqlx::query("CREATE TRIGGER crash BEFORE UPDATE ON scope_spend BEGIN SELECT RAISE(ABORT, 'killed'); END")
        .execute(&pool)
        .await
        .unwrap();
    fleet.set_sample(1, sample(2_000_000_000));
    assert!(meter.tick_at(t0() + 2000).await.is_err());
    assert_eq!(ledger_cost(&pool).await, cost);
    let (tick_id, _) = mdb::last_tick(&mut pool.acquire().await.unwrap())
        .await
        .unwrap();
    assert_eq!(tick_id, 2);
    sqlx::query("DROP TRIGGER crash")
        .execute(&pool)
        .await
        .unwrap();

    // A sprite the database does not know is skipped, not a reason to stop metering.
    let ghost = corral_metering::FleetSprite {
        network_bytes_per_s: 0,
        sprite_id: 999,
        tenant_id: "t1".into(),
        name: "ghost".into(),
        created_by_token: None,
        running: true,
        cpus: 1,
        memory_mb: 256,
        reserve_bytes: 0,
    };
    fleet.insert(ghost);
    fleet.set_sample(999, sample(0));

    // Restart: a new meter picks up from the stored baselines; the usage of the lost
    // tick is counted by the next one, once.
    let mut meter = Meter::new(pool.clone(), fleet.clone(), MeterConfig::default());
    fleet.set_sample(1, sample(2_500_000_000));
    let report = meter.tick_at(t0() + 3000).await.unwrap();
    assert_eq!(report.tick_id, Some(3));
    assert_eq!(ledger_cpu(&pool).await, 2_500_000_000);
    let stored: (i64, i64) =
        sqlx::query_as("SELECT tick_id, cpu_ns FROM meter_samples WHERE sprite_id = 1")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(stored, (3, 2_500_000_000));
    assert_eq!(
        spent(&pool, Scope::Tenant("t1".into()), t0()).await,
        ledger_cost(&pool).await
    );
}

#[tokio::test]
async fn a_counter_that_restarts_from_zero_is_a_new_baseline() {
    let (_dir, pool) = db().await;
    tenant(&pool, "t1", None).await;
    let fleet = Arc::new(RecordedFleet::default());
    fleet.insert(sprite(&pool, 1, "t1", None).await);
    let mut meter = Meter::new(pool.clone(), fleet.clone(), MeterConfig::default());
    for (i, cpu) in [0, 1_500_000_000, 200_000_000, 900_000_000]
        .into_iter()
        .enumerate()
    {
        fleet.set_sample(1, sample(cpu));
        meter.tick_at(t0() + i as i64 * 1000).await.unwrap();
    }
    assert_eq!(
        ledger_cpu(&pool).await,
        1_500_000_000 + 200_000_000 + 700_000_000
    );
}

#[tokio::test]
async fn usage_reports_group_filter_and_total() {
    let (_dir, pool) = db().await;
    tenant(&pool, "t1", None).await;
    tenant(&pool, "t2", None).await;
    let fleet = Arc::new(RecordedFleet::default());
    fleet.insert(sprite(&pool, 1, "t1", None).await);
    fleet.insert(sprite(&pool, 2, "t1", None).await);
    fleet.insert(sprite(&pool, 3, "t2", None).await);
    let mut meter = Meter::new(pool.clone(), fleet.clone(), MeterConfig::default());
    // Ticks every 30 s for two hours: 240 ticks across 120 minutes and 2 hours.
    for i in 0..240u64 {
        for id in 1..=3 {
            fleet.set_sample(id, sample(i * 1_000_000_000));
        }
        meter.tick_at(t0() + i as i64 * 30_000).await.unwrap();
    }
    let mut conn = pool.acquire().await.unwrap();
    let q = |by, sprite: Option<&str>| UsageQuery {
        from_ms: t0(),
        to_ms: t0() + 2 * 3_600_000,
        by,
        sprite: sprite.map(str::to_owned),
    };
    let by_hour = mdb::usage(&mut conn, "t1", &q(Granularity::Hour, None))
        .await
        .unwrap();
    assert_eq!(by_hour.rows.len(), 4); // 2 hours x 2 sprites; t2's sprite is not there
    assert_eq!(by_hour.rows[0].start_ms, t0());
    assert_eq!(by_hour.rows[2].start_ms, t0() + 3_600_000);
    let by_minute = mdb::usage(&mut conn, "t1", &q(Granularity::Minute, None))
        .await
        .unwrap();
    assert_eq!(by_minute.rows.len(), 240);
    assert_eq!(by_minute.total_nanos, by_hour.total_nanos);
    let tenant_spent = mdb::scope_spent(
        &mut conn,
        &Scope::Tenant("t1".into()),
        corral_metering::Period::containing(t0()).start_ms,
    )
    .await
    .unwrap();
    assert_eq!(by_hour.total_nanos, tenant_spent);
    let one = mdb::usage(&mut conn, "t1", &q(Granularity::Day, Some("s2")))
        .await
        .unwrap();
    assert_eq!(one.rows.len(), 1);
    assert_eq!(one.rows[0].sprite, "s2");
    // 1 GB stored for 239 ticks of 30 s (the first tick bills one 1 s tick).
    assert_eq!(one.rows[0].disk_byte_s, GB * (239 * 30 + 1));
    // Second-level memory: 512 MiB over the same time (compute is capped at a window
    // of 2 s per tick, so a 30 s gap bills 2 s).
    assert_eq!(one.rows[0].memory_byte_s, (512 << 20) * (239 * 2 + 1));
}

#[tokio::test]
async fn spend_starts_again_in_a_new_month() {
    let (_dir, pool) = db().await;
    tenant(&pool, "t1", Some(1_000_000_000)).await;
    let fleet = Arc::new(RecordedFleet::default());
    fleet.insert(sprite(&pool, 1, "t1", None).await);
    let mut meter = Meter::new(pool.clone(), fleet.clone(), MeterConfig::default());
    let dec1 = days_from_civil(2026, 12, 1) * DAY_MS;
    fleet.set_sample(
        1,
        Some(Sample {
            network_bytes: 0,
            cpu_ns: 0,
            memory_bytes: 0,
            disk_bytes: 1000 * GB,
        }),
    );
    meter.tick_at(dec1 - 1500).await.unwrap();
    meter.tick_at(dec1 - 500).await.unwrap();
    meter.tick_at(dec1 + 500).await.unwrap();
    let nov = spent(&pool, Scope::Tenant("t1".into()), dec1 - 1).await;
    let dec = spent(&pool, Scope::Tenant("t1".into()), dec1).await;
    let prices = MeterConfig::default().prices;
    // November: one first-sight tick of 1 s and one of 1 s; December: only its 500 ms.
    assert_eq!(nov, prices.disk_cost(1000 * GB * 1000).saturating_mul(2));
    assert_eq!(dec, prices.disk_cost(1000 * GB * 500));
    let ctx = MeterConfig::default().budget_context(dec1 + 600);
    let budget = mdb::tenant_budget(&mut pool.acquire().await.unwrap(), "t1", &ctx)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(budget.period_start_ms, dec1);
    assert_eq!(budget.period_end_ms, days_from_civil(2027, 1, 1) * DAY_MS);
    assert_eq!(budget.spent, dec);
}

#[tokio::test]
async fn the_loop_ticks_until_shutdown_and_survives_failed_ticks() {
    use std::sync::atomic::Ordering::Relaxed;
    let (_dir, pool) = db().await;
    tenant(&pool, "t1", None).await;
    let fleet = Arc::new(RecordedFleet::default());
    fleet.insert(sprite(&pool, 1, "t1", None).await);
    fleet.set_sample(1, sample(0));
    let cfg = MeterConfig {
        tick: std::time::Duration::from_millis(20),
        ..MeterConfig::default()
    };
    let meter = Meter::new(pool.clone(), fleet.clone(), cfg);
    let metrics = meter.metrics();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(meter.run(async move {
        let _ = stopped.await;
    }));
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    fleet.fail_listing(true);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    fleet.fail_listing(false);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    stop.send(()).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
    assert!(metrics.ticks.load(Relaxed) >= 5, "{}", metrics.render());
    assert!(metrics.tick_errors.load(Relaxed) >= 1);
    let (tick_id, _) = mdb::last_tick(&mut pool.acquire().await.unwrap())
        .await
        .unwrap();
    assert_eq!(tick_id as u64, metrics.ticks.load(Relaxed));
}
