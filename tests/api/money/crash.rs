//! kill -9 of the server mid-run and while paused: the ledger stays consistent.

use std::time::{Duration, Instant};

use serde_json::json;

use super::*;
use crate::helpers::expect_status;

#[tokio::test]
async fn kill_9_mid_run_keeps_the_ledger_consistent() {
    let mut app = spawn(&[]).await;
    let (_, token) = app.signup("crash@example.com").await;
    let cap = 4 * CPU_PRICE;
    set_budget(&app, &token, json!({"cap_nanos": cap})).await;
    spin(&app, &token, "crash").await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let before = loop {
        let (spent, _, _) = tenant_spend(&app, &token).await;
        if spent > CPU_PRICE / 2 {
            break spent;
        }
        assert!(Instant::now() < deadline, "nothing metered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    app.kill9();
    tokio::time::sleep(Duration::from_millis(700)).await;
    app.start().await;
    let last = std::sync::atomic::AtomicI64::new(before);
    let run = until_paused(&app, &token, "crash", || {
        let (app, token, last) = (&app, &token, &last);
        async move {
            let (spent, cap, available) = tenant_spend(app, token).await;
            let prev = last.swap(spent, std::sync::atomic::Ordering::Relaxed);
            assert!(spent >= prev, "spend went back from {prev} to {spent}");
            (spent, cap, available)
        }
    })
    .await;
    assert!(run.max_spent <= cap);

    // Killed again while paused: it stays paused, spend stays put (but for disk).
    settle().await;
    let paused_spent = int(&budget(&app, &token).await, "spent_nanos");
    app.kill9();
    app.start().await;
    tokio::time::sleep(Duration::from_millis(3 * TICK_MS as u64)).await;
    let s = sprite(&app, &token, "crash").await;
    assert_eq!(
        (s["state"].as_str(), s["pause_reason"].as_str()),
        (Some("paused"), Some("budget"))
    );
    let b = budget(&app, &token).await;
    let spent = int(&b, "spent_nanos");
    assert!(
        spent >= paused_spent && spent - paused_spent < CPU_PRICE / 100,
        "{paused_spent} -> {b}"
    );
    assert!(spent + int(&b, "storage_reserved_nanos") <= cap, "{b}");
    // The ledger and the spend agree, by minute and by day.
    let minutes = int(&usage(&app, &token, "by=minute").await, "total_nanos");
    let days = int(&usage(&app, &token, "by=day").await, "total_nanos");
    assert_eq!(minutes, days);
    assert!((int(&budget(&app, &token).await, "spent_nanos") - minutes).abs() < CPU_PRICE / 100);
    expect_status(app.delete("/v1/sprites/crash", &token).await, 204).await;
}
