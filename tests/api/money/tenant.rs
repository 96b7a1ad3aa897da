//! A tenant cap: a spinning sprite paused before it, 402 until raised, disk accruing
//! within the reservation, threshold alerts once each over a real SMTP peer.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::smtp::SmtpServer;
use super::*;
use crate::helpers::{expect_problem, expect_status};

#[tokio::test]
async fn a_spinning_sprite_is_paused_before_the_tenant_cap() {
    let smtp = SmtpServer::start(1).await;
    let app = spawn(&[
        ("CORRAL_SMTP_URL", smtp.url.clone()),
        ("CORRAL_SMTP_FROM", "Corral <alerts@corral.test>".into()),
        ("CORRAL_MAIL_RETRY_BASE_S", "1".into()),
    ])
    .await;
    let (_, token) = app.signup("cap@example.com").await;
    // Five CPU-seconds: the pause comes one window (tick, pause latency and the slowest
    // recent tick) short of the cap, which must stay above the 80 % alert even when a
    // busy host slows the ticks (with 3, 80 % was 0.1 CPU-s below the bare window's
    // pause).
    let cap = 5 * CPU_PRICE;
    let set = set_budget(
        &app,
        &token,
        json!({"cap_nanos": cap, "thresholds_pct": [50, 80, 100], "alert_email": "ops@example.com"}),
    )
    .await;
    assert_eq!(int(&set, "cap_nanos"), cap);
    assert_eq!(set["alert_email"], "ops@example.com");

    spin(&app, &token, "spin").await;
    tokio::time::sleep(Duration::from_millis(3 * TICK_MS as u64)).await;
    let running = budget(&app, &token).await;
    assert!(int(&running, "burn_nanos_per_s") > 0, "{running}");
    assert!(
        int(&running, "worst_burn_nanos_per_s") >= CPU_PRICE,
        "{running}"
    );
    assert!(running["exhausts_at"].is_string(), "{running}");
    let run = until_paused(&app, &token, "spin", || tenant_spend(&app, &token)).await;
    let pause_us = metric(&app, "corral_budget_last_pause_microseconds").await;
    eprintln!(
        "tenant cap: paused after {:?}, seen {:?} after the window stopped fitting, max spent {} of {cap} (overshoot {}), pause took {pause_us} us",
        run.took,
        run.exhausted_to_paused,
        run.max_spent,
        (run.max_spent - cap).max(0),
    );
    // From the tick that found the scope out of room to the sprite paused: about
    // 25 ms on an idle host, several hundred under a parallel build. A pause slower
    // than the declared latency is not billed past the cap (metering bills only the
    // rest of the reserved window), so only a stuck pause fails here.
    assert!(pause_us < 2_000_000, "pause took {pause_us} us");
    let ticks = metric(&app, "corral_meter_ticks_total").await;
    assert!(ticks > 5);
    eprintln!(
        "meter: {ticks} ticks, mean {} us, max {} us (wall, real gVisor sprite)",
        metric(&app, "corral_meter_tick_microseconds_total").await / ticks,
        metric(&app, "corral_meter_max_tick_microseconds").await
    );

    // Afterwards: spend stays under the cap, compute stops, disk keeps accruing
    // within the reservation.
    settle().await;
    let totals = |report: &Value, key: &str| -> i64 {
        report["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| int(r, key))
            .sum()
    };
    let first = budget(&app, &token).await;
    let report = usage(&app, &token, "by=minute&sprite=spin").await;
    let (cpu_first, disk_first) = (totals(&report, "cpu_ns"), totals(&report, "disk_byte_s"));
    assert!(cpu_first > 1_000_000_000, "yes ran for over a CPU-second");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let later = budget(&app, &token).await;
    let report = usage(&app, &token, "by=minute&sprite=spin").await;
    let (cpu_later, disk_later) = (totals(&report, "cpu_ns"), totals(&report, "disk_byte_s"));
    let (s1, s2) = (int(&first, "spent_nanos"), int(&later, "spent_nanos"));
    eprintln!(
        "paused 1.5 s: spent {s1} -> {s2}, cpu_ns {cpu_first} -> {cpu_later}, disk_byte_s \
         {disk_first} -> {disk_later}, storage reserved {} -> {}",
        first["storage_reserved_nanos"], later["storage_reserved_nanos"]
    );
    // 16 MB for a second, at least.
    assert!(
        disk_later - disk_first >= 16_000_000,
        "disk keeps accruing: {report}"
    );
    assert!(s2 > s1, "the paused sprite keeps costing: {s1} -> {s2}");
    assert!(
        cpu_later - cpu_first < 50_000_000,
        "a paused sprite uses no CPU: {report}"
    );
    for b in [&first, &later] {
        let reserved = int(b, "storage_reserved_nanos");
        assert!(reserved > 0, "{b}");
        assert!(int(b, "spent_nanos") + reserved <= cap, "{b}");
        assert_eq!(b["paused_for_budget"], 1, "{b}");
    }
    assert!(
        int(&later, "storage_reserved_nanos") < int(&first, "storage_reserved_nanos"),
        "what accrued came out of the reservation"
    );
    assert!(int(&report, "total_nanos") <= cap, "{report}");
    let spent_now = int(&budget(&app, &token).await, "spent_nanos");
    assert!(
        (spent_now - int(&report, "total_nanos")).abs() < 10_000_000,
        "{report}"
    );
    let cost = int(&sprite(&app, &token, "spin").await, "cost_nanos");
    assert!(cost > 0 && cost <= cap, "cost {cost}");

    // Paused for budget: work is refused with 402 saying what is left and when.
    let refused = expect_problem(
        app.post("/v1/sprites/spin/exec", &token, json!({"cmd": ["true"]}))
            .await,
        402,
        "budget_exhausted",
    )
    .await;
    let detail = refused["detail"].as_str().unwrap();
    assert!(
        detail.contains("left") && detail.contains("resets at"),
        "{detail}"
    );
    expect_problem(
        app.post("/v1/sprites/spin/resume", &token, json!({})).await,
        402,
        "budget_exhausted",
    )
    .await;

    // Raising the cap and resume_paused: it runs again, and is paused again below
    // the new cap (yes is still spinning inside).
    let cap = 8 * CPU_PRICE;
    let raised = set_budget(
        &app,
        &token,
        json!({"cap_nanos": cap, "resume_paused": true}),
    )
    .await;
    assert_eq!(raised["resumed"], json!(["spin"]), "{raised}");
    assert_eq!(sprite(&app, &token, "spin").await["state"], "running");
    let run = until_paused(&app, &token, "spin", || tenant_spend(&app, &token)).await;
    assert!(run.max_spent <= cap);
    // Without more money resume_paused says why it stays paused.
    let again = set_budget(&app, &token, json!({"resume_paused": true})).await;
    assert_eq!(again["resumed"], json!([]), "{again}");
    assert_eq!(again["still_paused"][0]["sprite"], "spin", "{again}");
    assert_eq!(
        again["still_paused"][0]["code"], "budget_exhausted",
        "{again}"
    );

    // Thresholds: each queued once, delivered over SMTP after the first refusal.
    let deadline = Instant::now() + Duration::from_secs(15);
    let alerts = loop {
        let alerts = expect_status(app.get("/v1/alerts", &token).await, 200).await;
        let list = alerts["alerts"].as_array().unwrap().clone();
        if list.len() >= 3 && list.iter().all(|a| a["state"] == "sent") {
            break list;
        }
        assert!(Instant::now() < deadline, "alerts not all sent: {alerts}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut pcts: Vec<i64> = alerts.iter().map(|a| int(a, "threshold_pct")).collect();
    pcts.sort_unstable();
    assert_eq!(pcts, vec![50, 80, 100], "once each per period: {alerts:?}");
    assert!(
        alerts.iter().any(|a| int(a, "attempts") >= 2),
        "one was retried"
    );
    let mails = smtp.mails();
    assert_eq!(mails.len(), 3, "{mails:?}");
    assert!(
        *smtp.connections.lock().unwrap() >= 4,
        "one refused, three delivered"
    );
    for mail in &mails {
        assert_eq!(mail.to, vec!["<ops@example.com>"]);
        assert!(mail.from.contains("alerts@corral.test"));
        assert!(mail.data.contains("Subject:"), "{}", mail.data);
    }
    assert_eq!(metric(&app, "corral_outbox_sent_total").await, 3);
    assert_eq!(metric(&app, "corral_outbox_backlog").await, 0);
    expect_status(app.delete("/v1/sprites/spin", &token).await, 204).await;
}
