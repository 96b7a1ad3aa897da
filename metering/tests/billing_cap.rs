//! Billing as a second cap of the hard-cap rule: a prepaid tenant's credit (less what
//! earlier periods spent) pauses its sprites for billing before it is crossed, the
//! monthly cap still wins when it leaves less, and a suspended tenant (a failed
//! payment's grace over) is paused for billing in any mode; alerts say why once.

mod common;

use std::sync::Arc;

use common::{cpu_only, db, spent, sprite, t0, tenant};
use corral_metering::recorded::RecordedFleet;
use corral_metering::{Meter, MeterConfig, Sample, Scope};
use sqlx::SqlitePool;

async fn account(pool: &SqlitePool, tenant: &str, credited: i64, state: &str) {
    sqlx::query(
        "INSERT INTO billing_accounts (tenant_id, credited_nanos, payment_state, updated_ms) \
         VALUES (?, ?, ?, 0)",
    )
    .bind(tenant)
    .bind(credited)
    .bind(state)
    .execute(pool)
    .await
    .unwrap();
}

/// Ticks once a second for `ticks` seconds; running sprites burn both vCPUs.
async fn burn(meter: &mut Meter, fleet: &RecordedFleet, ids: &[i64], ticks: i64) {
    let mut counters = vec![0u64; ids.len()];
    for i in 0..ticks {
        for (k, id) in ids.iter().enumerate() {
            if fleet.is_running(*id) {
                counters[k] += 2_000_000_000;
            }
            let sample = Sample {
                network_bytes: 0,
                cpu_ns: counters[k],
                memory_bytes: 0,
                disk_bytes: 0,
            };
            fleet.set_sample(*id, Some(sample));
        }
        meter.tick_at(t0() + i * 1000).await.unwrap();
    }
}

fn prepaid() -> MeterConfig {
    MeterConfig {
        prepaid: true,
        ..cpu_only()
    }
}

#[tokio::test]
async fn the_credit_or_the_cap_whichever_leaves_less_and_the_reason_says_which() {
    let (_dir, pool) = db().await;
    // t1: $0.05 cap, $0.02 credit left: billing pauses it. t2: $0.01 cap, $0.03 credit: the
    // budget does. t3: prepaid without credit never runs long.
    tenant(&pool, "t1", Some(50_000_000)).await;
    tenant(&pool, "t2", Some(10_000_000)).await;
    tenant(&pool, "t3", Some(50_000_000)).await;
    // t1 bought $0.025 and spent $0.005 of it last month: $0.02 is left for this one.
    account(&pool, "t1", 25_000_000, "ok").await;
    sqlx::query(
        "INSERT INTO scope_spend (scope, period_start_ms, spent_nanos, updated_ms) \
         VALUES ('tenant:t1', ?, 5000000, 0)",
    )
    .bind(t0() - 40 * 86_400_000)
    .execute(&pool)
    .await
    .unwrap();
    account(&pool, "t2", 30_000_000, "ok").await;
    let fleet = Arc::new(RecordedFleet::default());
    for (id, t) in [(1, "t1"), (2, "t2"), (3, "t3")] {
        fleet.insert(sprite(&pool, id, t, None).await);
    }
    let mut meter = Meter::new(pool.clone(), fleet.clone(), prepaid());
    burn(&mut meter, &fleet, &[1, 2, 3], 30).await;
    let mut billing = fleet.paused_for_billing();
    billing.sort_unstable();
    assert_eq!(billing, vec![1, 3], "t3 first: it had nothing");
    assert_eq!(fleet.paused_for_budget(), vec![2]);
    let s1 = spent(&pool, &Scope::Tenant("t1".into()), t0()).await;
    let s2 = spent(&pool, &Scope::Tenant("t2".into()), t0()).await;
    assert!(
        s1.get() <= 20_000_000 && s1.get() >= 15_000_000,
        "t1 spent {s1:?}"
    );
    assert!(s2.get() <= 10_000_000, "t2 spent {s2:?}");
    // Billing mails: t1 warned at 50 % and 80 % of its credit, then told of the pause;
    // t3 (nothing to spend) only of the pause; t2's cap mails are threshold mails.
    let mails: Vec<(String, i64)> = sqlx::query_as(
        "SELECT tenant_id, threshold_pct FROM outbox WHERE kind = 'billing' ORDER BY tenant_id, id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let expected: Vec<(String, i64)> = [("t1", 50), ("t1", 80), ("t1", 100), ("t3", 100)]
        .iter()
        .map(|(t, p)| (t.to_string(), *p))
        .collect();
    assert_eq!(mails, expected);
}

#[tokio::test]
async fn a_suspended_tenant_is_paused_for_billing_even_without_prepaid() {
    let (_dir, pool) = db().await;
    tenant(&pool, "t1", Some(50_000_000)).await;
    tenant(&pool, "t2", Some(50_000_000)).await;
    account(&pool, "t1", 0, "suspended").await;
    account(&pool, "t2", 0, "past_due").await;
    let fleet = Arc::new(RecordedFleet::default());
    fleet.insert(sprite(&pool, 1, "t1", None).await);
    fleet.insert(sprite(&pool, 2, "t2", None).await);
    let mut meter = Meter::new(pool.clone(), fleet.clone(), cpu_only());
    burn(&mut meter, &fleet, &[1, 2], 3).await;
    assert_eq!(fleet.paused_for_billing(), vec![1], "past due still runs");
    assert!(fleet.paused_for_budget().is_empty());
    assert!(fleet.is_running(2));
}
