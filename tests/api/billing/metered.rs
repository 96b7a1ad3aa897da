//! Metered usage: every ledger minute reaches the stand-in's meter once, with the
//! ledger's total, although half the calls failed, answers were lost or late, and the
//! server was killed with -9 mid-push; reconciliation then corrects a difference.

use std::time::{Duration, Instant};

use serde_json::json;

use super::*;
use crate::helpers::expect_status;
use crate::money::{self, int};

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn total(events: &[Value], customer: &str) -> i64 {
    events
        .iter()
        .filter(|e| e["customer"] == customer)
        .map(|e| e["value"].as_i64().unwrap())
        .sum()
}

#[tokio::test]
async fn metered_usage_reaches_stripe_once_through_an_outage_and_a_kill_9() {
    let stripe = Stripe::start().await;
    let meter = stripe
        .api_post(
            "/v1/billing/meters",
            &[("event_name", "corral_usage"), ("display_name", "Corral")],
        )
        .await;
    let mut env = stripe.env("metered");
    env.extend([
        (
            "CORRAL_STRIPE_METER_ID",
            meter["id"].as_str().unwrap().to_owned(),
        ),
        ("CORRAL_STRIPE_METERED_PRICE", "price_metered".into()),
        ("CORRAL_JOB_BILLING_PUSH", "* * * * * *".into()),
        ("CORRAL_BILLING_PUSH_LAG_S", "1".into()),
        ("CORRAL_JOB_BILLING_RECONCILE", "*/4 * * * * *".into()),
        ("CORRAL_STRIPE_TIMEOUT_MS", "800".into()),
        // A cent per CPU-second: the default cap is far away.
        ("CORRAL_PRICE_CPU_NANOS_PER_CPU_S", "10000000".into()),
    ]);
    let mut app = money::spawn(&env).await;
    stripe.deliver_to(&app).await;
    let (_, token) = app.signup("metered@example.com").await;
    let session = checkout(&app, &token, json!({})).await;
    let s = stripe
        .api_get(&format!("/v1/checkout/sessions/{session}"))
        .await;
    assert_eq!(s["mode"], "subscription", "{s}");
    let items = stripe
        .api_get(&format!("/v1/checkout/sessions/{session}/line_items"))
        .await;
    assert_eq!(items["data"][0]["price"]["id"], "price_metered", "{items}");
    let customer = s["customer"].as_str().unwrap().to_owned();
    let event = stripe.complete(&session).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(stripe.deliver(&event, json!({})).await, 200);

    // The first meter-event calls fail: three 500s, one carried out with its answer
    // lost, one answered only after the client gave up, one 429; the server is killed
    // with -9 as soon as Stripe holds an event Corral has not seen acknowledged.
    let path = "/v1/billing/meter_events";
    let faults = [
        json!({"path_prefix": path, "kind": "error500", "count": 3}),
        json!({"path_prefix": path, "kind": "lost_answer", "count": 1}),
        json!({"path_prefix": path, "kind": "timeout", "delay_ms": 1500, "count": 1}),
        json!({"path_prefix": path, "kind": "rate_limit", "count": 1}),
    ];
    for fault in &faults {
        stripe.hook_post("/_test/faults", fault.clone()).await;
    }
    money::spin(&app, &token, "work").await;
    // Spin into the next minute, so more than one minute is billed.
    let started_minute = now_ms() / 60_000;
    let mut killed = false;
    while now_ms() / 60_000 == started_minute || now_ms() % 60_000 < 5_000 {
        // kill -9 while pushes are failing and retrying.
        if !killed && !stripe.meter_events().await.is_empty() {
            app.kill9();
            app.start().await;
            killed = true;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    expect_status(app.delete("/v1/sprites/work", &token).await, 204).await;
    if !killed {
        app.kill9();
        app.start().await;
    }
    // The last ledger minute closes; then the outage ends.
    let last_minute = now_ms() / 60_000;
    while now_ms() / 60_000 == last_minute || now_ms() % 60_000 < 3_000 {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let faults = stripe.hook_get("/_test/faults").await;
    let hits: Vec<u64> = faults["faults"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["hits"].as_u64().unwrap())
        .collect();
    let r = reqwest::Client::new()
        .delete(format!("{}/_test/faults", stripe.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let b = until_billing(&app, &token, Duration::from_secs(20), |b| {
        b["meter_events"]["pending"] == 0
    })
    .await;
    let ledger = int(
        &money::usage(&app, &token, "by=minute").await,
        "total_nanos",
    );
    assert!(ledger > 0, "nothing metered");
    let events = stripe.meter_events().await;
    let usage: Vec<&Value> = events
        .iter()
        .filter(|e| !e["identifier"].as_str().unwrap().contains(":adjust:"))
        .collect();
    // Pushes alone made it exact: no correction was needed.
    assert_eq!(
        usage.len(),
        events.len(),
        "adjustments were needed: {events:?}"
    );
    assert_eq!(
        total(&events, &customer),
        ledger,
        "stand-in vs ledger; billing {b}"
    );
    let mut ids: Vec<&str> = events
        .iter()
        .map(|e| e["identifier"].as_str().unwrap())
        .collect();
    let n = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), n, "an identifier twice");
    assert!(n >= 2, "{events:?}");
    assert!(ids.iter().all(|i| i.starts_with("corral:")), "{ids:?}");
    assert_eq!(int(&b, "invoice_estimate_nanos"), ledger, "{b}");
    eprintln!("metered: {n} events, total {ledger} = ledger; fault hits (500, lost, timeout, 429) {hits:?}; killed mid-run: {killed}");
    assert!(hits == [3, 1, 1, 1], "a fault never fired: {hits:?}");

    // Reconciliation: a stray event makes Stripe count more than the ledger; the next
    // run queues a correction and the totals agree again.
    let stray = (now_ms() / 1000).to_string();
    stripe
        .api_post(
            "/v1/billing/meter_events",
            &[
                ("event_name", "corral_usage"),
                ("identifier", "stray-1"),
                ("timestamp", &stray),
                ("payload[stripe_customer_id]", &customer),
                ("payload[value]", "123456789"),
            ],
        )
        .await;
    assert_eq!(
        total(&stripe.meter_events().await, &customer),
        ledger + 123_456_789
    );
    let started = Instant::now();
    loop {
        let events = stripe.meter_events().await;
        if total(&events, &customer) == ledger {
            let adjust: Vec<&Value> = events
                .iter()
                .filter(|e| e["identifier"].as_str().unwrap().contains(":adjust:"))
                .collect();
            assert_eq!(adjust.len(), 1, "{adjust:?}");
            assert_eq!(adjust[0]["value"], -123_456_789);
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "not reconciled: {events:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // And it stays corrected (no second adjustment on the next runs).
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(total(&stripe.meter_events().await, &customer), ledger);
}
