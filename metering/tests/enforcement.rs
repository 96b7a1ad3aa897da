//! The hard cap on a real SQLite file: tenants and token chains paused before their cap,
//! never past it; disk of paused sprites covered by the reservation; the runway 402;
//! threshold alerts queued once in the tick's transaction.

mod common;

use std::sync::Arc;

use common::{cpu_only, db, spent, sprite, t0, tenant, token};
use corral_metering::db as mdb;
use corral_metering::period::{days_from_civil, DAY_MS};
use corral_metering::recorded::RecordedFleet;
use corral_metering::{Meter, MeterConfig, Nanos, Prices, Sample, Scope};

/// Runs `ticks` one-second ticks; running sprites burn both vCPUs flat out, and a sprite
/// paused by the last tick still burns one more second (the pause latency).
async fn burn(
    meter: &mut Meter,
    fleet: &RecordedFleet,
    ids: &[i64],
    counters: &mut [u64],
    start: i64,
    ticks: i64,
    mut check: impl FnMut(i64),
) {
    let mut was_running: Vec<bool> = ids.iter().map(|id| fleet.is_running(*id)).collect();
    for i in 0..ticks {
        for (k, id) in ids.iter().enumerate() {
            if was_running[k] {
                counters[k] += 2_000_000_000;
            }
            fleet.set_sample(
                *id,
                Some(Sample {
                    network_bytes: 0,
                    cpu_ns: counters[k],
                    memory_bytes: 1 << 30,
                    disk_bytes: 0,
                }),
            );
            was_running[k] = fleet.is_running(*id);
        }
        let now = start + i * 1000;
        meter.tick_at(now).await.unwrap();
        check(now);
    }
}

#[tokio::test]
async fn a_tenant_is_paused_before_its_cap_and_alerted_once_per_threshold() {
    let (_dir, pool) = db().await;
    let cap = Nanos(50_000_000);
    tenant(&pool, "t1", Some(cap.get())).await;
    let fleet = Arc::new(RecordedFleet::default());
    fleet.insert(sprite(&pool, 1, "t1", None).await);
    let mut meter = Meter::new(pool.clone(), fleet.clone(), cpu_only());
    let mut counters = [0u64];
    let mut paused_at = None;
    let scope = Scope::Tenant("t1".into());
    burn(&mut meter, &fleet, &[1], &mut counters, t0(), 60, |now| {
        if paused_at.is_none() && !fleet.is_running(1) {
            paused_at = Some(now);
        }
    })
    .await;
    let paused_at = paused_at.expect("the sprite was paused");
    assert_eq!(fleet.paused_for_budget(), [1]);
    let final_spent = spent(&pool, &scope, t0()).await;
    // Never past the cap, and not far below it: the last window (2 s at 2 vCPUs is
    // $0.004) plus the rounding reserve is all that is left.
    assert!(final_spent <= cap, "{final_spent:?}");
    assert!(
        cap - final_spent < Nanos(4_000_000 + 2_000_000 + 40_000),
        "{final_spent:?}"
    );
    assert!(paused_at < t0() + 30_000);
    let m = meter.metrics();
    assert_eq!(
        m.sprites_paused_for_budget
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );

    // 50, 80 and 100 %: one row each, the last one saying the sprites were paused.
    let mut conn = pool.acquire().await.unwrap();
    let alerts = mdb::alerts(&mut conn, "t1", 10).await.unwrap();
    let mut pcts: Vec<i64> = alerts.iter().map(|a| a.threshold_pct).collect();
    pcts.sort_unstable();
    assert_eq!(pcts, [50, 80, 100]);
    let top = alerts.iter().find(|a| a.threshold_pct == 100).unwrap();
    assert!(top.subject.contains("paused"), "{}", top.subject);
    assert_eq!(top.to_email, "t1@example.com");
    // Delivery bookkeeping.
    let now = t0() + 100_000;
    let pending = mdb::undelivered(&mut conn, 20, 10).await.unwrap();
    assert_eq!(pending.len(), 3);
    assert!(
        pending.windows(2).all(|w| w[0].id < w[1].id),
        "oldest first"
    );
    mdb::mark_sent(&mut conn, pending[0].id, now).await.unwrap();
    mdb::mark_failed(&mut conn, pending[1].id, "smtp down", now + 60_000)
        .await
        .unwrap();
    let left = mdb::undelivered(&mut conn, 20, 10).await.unwrap();
    assert_eq!(
        left.iter().map(|m| m.id).collect::<Vec<_>>(),
        [pending[1].id, pending[2].id]
    );
    assert_eq!(left[0].attempts, 1);
    assert_eq!(mdb::backlog(&mut conn, 20).await.unwrap(), 2);
    assert_eq!(mdb::undelivered(&mut conn, 1, 10).await.unwrap().len(), 1);

    // Creating another sprite now would not have a minute of runway: 402.
    let ctx = cpu_only().budget_context(t0() + 61_000);
    let extra = mdb::Extra {
        worst_burn_per_s: cpu_only().prices.sprite_worst_burn_per_s(2, 1024, 0),
        reserve: Nanos::ZERO,
    };
    let refusal = mdb::check_runway(&mut conn, "t1", None, &|_| extra, 60, &ctx)
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(refusal.code, "budget_exhausted");
    assert_eq!(refusal.scope, scope);
    assert_eq!(refusal.resets_at_ms, days_from_civil(2026, 12, 1) * DAY_MS);
    let budget = mdb::tenant_budget(&mut conn, "t1", &ctx)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(budget.cap, Some(cap));
    assert_eq!(budget.spent, final_spent);
    assert_eq!(
        budget.available,
        Some(cap - final_spent - budget.storage_reserved)
    );
    // Raising the cap lets it run again.
    sqlx::query("UPDATE tenants SET cap_nanos = ? WHERE id = 't1'")
        .bind(cap.get() * 10)
        .execute(&mut *conn)
        .await
        .unwrap();
    assert_eq!(
        mdb::check_runway(&mut conn, "t1", None, &|_| extra, 60, &ctx)
            .await
            .unwrap(),
        Ok(vec![scope.clone()])
    );
    drop(conn);
    fleet.set_running(1, true);
    burn(
        &mut meter,
        &fleet,
        &[1],
        &mut counters,
        t0() + 61_000,
        20,
        |_| {},
    )
    .await;
    assert!(fleet.is_running(1));
    assert_eq!(fleet.paused_for_budget(), [1]);
}

#[tokio::test]
async fn a_token_budget_pauses_its_own_and_its_descendants_sprites_only() {
    let (_dir, pool) = db().await;
    tenant(&pool, "t1", None).await;
    tenant(&pool, "t2", None).await;
    let budget = Nanos(30_000_000);
    token(&pool, "root", "t1", None, Some(budget.get())).await;
    token(&pool, "child", "t1", Some("root"), None).await;
    token(&pool, "other", "t1", None, None).await;
    let fleet = Arc::new(RecordedFleet::default());
    fleet.insert(sprite(&pool, 1, "t1", Some("child")).await);
    fleet.insert(sprite(&pool, 2, "t1", Some("other")).await);
    let mut meter = Meter::new(pool.clone(), fleet.clone(), cpu_only());
    let mut counters = [0u64, 0];
    burn(&mut meter, &fleet, &[1, 2], &mut counters, t0(), 40, |_| {}).await;
    assert!(
        !fleet.is_running(1),
        "the child token's sprite counts against root"
    );
    assert!(fleet.is_running(2), "another token's sprite is not touched");
    let root = spent(&pool, &Scope::Token("root".into()), t0()).await;
    assert!(root <= budget, "{root:?}");
    assert_eq!(
        root,
        spent(&pool, &Scope::Token("child".into()), t0()).await
    );
    assert!(spent(&pool, &Scope::Tenant("t1".into()), t0()).await > root);

    let mut conn = pool.acquire().await.unwrap();
    let ctx = cpu_only().budget_context(t0() + 40_000);
    let extra = mdb::Extra {
        worst_burn_per_s: cpu_only().prices.sprite_worst_burn_per_s(1, 256, 0),
        reserve: Nanos::ZERO,
    };
    let refusal = mdb::check_runway(&mut conn, "t1", Some("child"), &|_| extra, 60, &ctx)
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(
        (refusal.code, refusal.scope),
        ("token_budget_exhausted", Scope::Token("root".into()))
    );
    assert!(
        mdb::check_runway(&mut conn, "t1", Some("other"), &|_| extra, 60, &ctx)
            .await
            .unwrap()
            .is_ok()
    );
    // What another scope's recent admissions add counts only against that scope: the
    // root token's refusal above goes away when the extra is charged elsewhere.
    let only_tenant = |s: &Scope| {
        if matches!(s, Scope::Tenant(_)) {
            extra
        } else {
            mdb::Extra::default()
        }
    };
    let refusal = mdb::check_runway(&mut conn, "t1", Some("child"), &only_tenant, 60, &ctx)
        .await
        .unwrap();
    assert!(
        !matches!(&refusal, Err(r) if r.scope == Scope::Token("root".into())),
        "{refusal:?}"
    );
    let chain = mdb::chain_budgets(&mut conn, "t1", Some("child"), &ctx)
        .await
        .unwrap();
    let scopes: Vec<String> = chain.iter().map(|b| b.scope.key()).collect();
    assert_eq!(scopes, ["tenant:t1", "token:child", "token:root"]);
    assert_eq!(chain[2].spent, root);
    assert_eq!(chain[1].cap, None);
    // Another tenant cannot read the token's budget.
    assert_eq!(
        mdb::token_budget(&mut conn, "t2", "root", &ctx)
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn stored_data_of_paused_sprites_is_paid_for_to_the_end_of_the_period() {
    let (_dir, pool) = db().await;
    let gb = 1_000_000_000u64;
    // $1 per CPU-second and $1000 per GB-month: 1 GB for the 20 days left is ~$657.
    let cfg = MeterConfig {
        prices: Prices {
            network_nanos_per_gb: 0,
            cpu_nanos_per_cpu_s: 1_000_000_000,
            memory_nanos_per_gb_s: 0,
            disk_nanos_per_gb_month: 1_000_000_000_000,
        },
        ..MeterConfig::default()
    };
    let cap = Nanos::from_usd(700);
    tenant(&pool, "t1", Some(cap.get())).await;
    let fleet = Arc::new(RecordedFleet::default());
    fleet.insert(sprite(&pool, 1, "t1", None).await);
    let mut meter = Meter::new(pool.clone(), fleet.clone(), cfg);
    let scope = Scope::Tenant("t1".into());
    let mut cpu = 0;
    let mut now = t0();
    while fleet.is_running(1) {
        cpu += 2_000_000_000;
        fleet.set_sample(
            1,
            Some(Sample {
                network_bytes: 0,
                cpu_ns: cpu,
                memory_bytes: 0,
                disk_bytes: gb,
            }),
        );
        meter.tick_at(now).await.unwrap();
        assert!(spent(&pool, &scope, now).await <= cap);
        now += 1000;
        assert!(now < t0() + 60_000, "never paused");
    }
    // Paused, the disk keeps accruing: hourly ticks to the last second of the month.
    let end = days_from_civil(2026, 12, 1) * DAY_MS;
    let ctx = |now| cfg.budget_context(now);
    while now < end - 1 {
        now = (now + 3_600_000).min(end - 1);
        meter.tick_at(now).await.unwrap();
        let mut conn = pool.acquire().await.unwrap();
        let b = mdb::tenant_budget(&mut conn, "t1", &ctx(now))
            .await
            .unwrap()
            .unwrap();
        assert!(b.spent <= cap, "{:?} > {cap:?}", b.spent);
        assert!(b.spent + b.storage_reserved <= cap);
        assert_eq!(b.stored_bytes, gb);
    }
    let final_spent = spent(&pool, &scope, end - 1).await;
    assert!(final_spent > Nanos::from_usd(690), "{final_spent:?}");
    assert!(final_spent <= cap);
}

#[tokio::test]
async fn a_scope_without_sprites_keeps_its_spend_and_frees_its_reservation() {
    let (_dir, pool) = db().await;
    tenant(&pool, "t1", Some(1_000_000_000_000)).await;
    let fleet = Arc::new(RecordedFleet::default());
    fleet.insert(sprite(&pool, 1, "t1", None).await);
    fleet.set_sample(
        1,
        Some(Sample {
            network_bytes: 0,
            cpu_ns: 0,
            memory_bytes: 0,
            disk_bytes: 5_000_000_000,
        }),
    );
    let mut meter = Meter::new(pool.clone(), fleet.clone(), MeterConfig::default());
    meter.tick_at(t0()).await.unwrap();
    let ctx = MeterConfig::default().budget_context(t0() + 10);
    let mut conn = pool.acquire().await.unwrap();
    let before = mdb::tenant_budget(&mut conn, "t1", &ctx)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(before.stored_bytes, 5_000_000_000);
    assert!(before.storage_reserved > Nanos::from_usd(1));
    drop(conn);
    fleet.remove(1);
    // A restarted meter also knows the scope had sprites.
    let mut meter = Meter::new(pool.clone(), fleet.clone(), MeterConfig::default());
    meter.tick_at(t0() + 1000).await.unwrap();
    let mut conn = pool.acquire().await.unwrap();
    let after = mdb::tenant_budget(&mut conn, "t1", &ctx)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.stored_bytes, 0);
    assert_eq!(after.spent, before.spent);
    assert!(after.storage_reserved < Nanos(100_000));
    assert_eq!(after.state(), "ok");
}

#[tokio::test]
async fn an_alert_of_a_failed_tick_is_queued_by_the_next_one() {
    let (_dir, pool) = db().await;
    tenant(&pool, "t1", Some(10_000_000)).await;
    let fleet = Arc::new(RecordedFleet::default());
    fleet.insert(sprite(&pool, 1, "t1", None).await);
    let mut meter = Meter::new(pool.clone(), fleet.clone(), cpu_only());
    let tick = |i: i64| {
        fleet.set_sample(
            1,
            Some(Sample {
                network_bytes: 0,
                cpu_ns: i as u64 * 2_000_000_000,
                memory_bytes: 0,
                disk_bytes: 0,
            }),
        );
        t0() + i * 1000
    };
    for i in 0..3 {
        meter.tick_at(tick(i)).await.unwrap(); // 0, 20 %, 40 %
    }
    // The tick that crosses 50 % dies while queueing its alert.
    sqlx::query(
        "CREATE TRIGGER crash BEFORE INSERT ON outbox BEGIN SELECT RAISE(ABORT, 'killed'); END",
    )
    .execute(&pool)
    .await
    .unwrap();
    assert!(meter.tick_at(tick(3)).await.is_err());
    sqlx::query("DROP TRIGGER crash")
        .execute(&pool)
        .await
        .unwrap();
    let report = meter.tick_at(tick(4)).await.unwrap();
    // 50 % (from the failed tick), 80 %, and 100 % as the sprite is paused.
    assert_eq!(report.alerts, 3);
    assert_eq!(report.paused, [1]);
    let alerts = mdb::alerts(&mut pool.acquire().await.unwrap(), "t1", 10)
        .await
        .unwrap();
    let mut pcts: Vec<i64> = alerts.iter().map(|a| a.threshold_pct).collect();
    pcts.sort_unstable();
    assert_eq!(pcts, [50, 80, 100]);
}
