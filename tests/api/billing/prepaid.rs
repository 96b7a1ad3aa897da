//! Prepaid credit: Checkout completions add exactly once whatever the delivery (twice,
//! out of order, tampered, stale, wrongly signed); the credit pauses a spinning sprite
//! with `pause_reason: billing` before it runs out; no Stripe keys, no billing.

use std::time::Duration;

use serde_json::{json, Value};

use super::*;
use crate::helpers::{expect_problem, expect_status};
use crate::money::{self, int, CPU_PRICE};

const DOLLAR: i64 = 1_000_000_000;

#[tokio::test]
async fn checkout_completion_adds_credit_exactly_once_in_any_order() {
    let stripe = Stripe::start().await;
    let app = money::spawn(&stripe.env("prepaid")).await;
    stripe.deliver_to(&app).await;
    let (tenant, token) = app.signup("prepaid@example.com").await;
    let b = billing(&app, &token).await;
    assert_eq!(
        (b["mode"].as_str(), b["balance_nanos"].as_i64()),
        (Some("prepaid"), Some(0)),
        "{b}"
    );
    assert_eq!(
        b["customer"], false,
        "the customer is made on first use: {b}"
    );

    expect_problem(
        app.post(
            "/v1/billing/checkout",
            &token,
            json!({"amount_usd": "0.10"}),
        )
        .await,
        422,
        "validation",
    )
    .await;
    let first = checkout(&app, &token, json!({"amount_usd": "25.00"})).await;
    let second = checkout(&app, &token, json!({"amount_usd": 10})).await;
    let third = checkout(&app, &token, json!({"amount_usd": "5"})).await;
    // One customer, made once, named on every session, with the tenant as reference.
    let sessions = [&first, &second, &third].map(|id| id.to_string());
    let mut customers = Vec::new();
    for id in &sessions {
        let s = stripe.api_get(&format!("/v1/checkout/sessions/{id}")).await;
        assert_eq!(
            (s["mode"].as_str(), s["client_reference_id"].as_str()),
            (Some("payment"), Some(tenant.as_str()))
        );
        customers.push(s["customer"].as_str().unwrap().to_owned());
    }
    customers.dedup();
    assert_eq!(customers.len(), 1, "{customers:?}");
    assert_eq!(billing(&app, &token).await["customer"], true);

    let e1 = stripe.complete(&first).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let e2 = stripe.complete(&second).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let e3 = stripe.complete(&third).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The later event first, then the earlier, then both again.
    assert_eq!(stripe.deliver(&e2, json!({})).await, 200);
    assert_eq!(stripe.deliver(&e1, json!({})).await, 200);
    assert_eq!(stripe.deliver(&e1, json!({})).await, 200);
    assert_eq!(stripe.deliver(&e2, json!({})).await, 200);
    // Tampered, signed with another secret, or 10 minutes old: 400, nothing changes.
    for how in [
        json!({"tamper": true}),
        json!({"wrong_secret": true}),
        json!({"age_s": 600}),
    ] {
        assert_eq!(stripe.deliver(&e3, how.clone()).await, 400, "{how}");
    }
    let b = billing(&app, &token).await;
    assert_eq!(int(&b, "balance_nanos"), 35 * DOLLAR, "{b}");
    assert_eq!(int(&b, "credited_nanos"), 35 * DOLLAR, "{b}");
    // A refused delivery did not use the event up: the genuine one still counts, once.
    assert_eq!(stripe.deliver(&e3, json!({})).await, 200);
    assert_eq!(stripe.deliver(&e3, json!({})).await, 200);
    assert_eq!(
        int(&billing(&app, &token).await, "balance_nanos"),
        40 * DOLLAR
    );

    // Without a signature at all: 400 in problem form.
    let r = app
        .request(reqwest::Method::POST, "/v1/billing/webhook", None)
        .body("{}")
        .send()
        .await
        .unwrap();
    expect_problem(r, 400, "invalid_signature").await;
    let portal = expect_status(app.post("/v1/billing/portal", &token, json!({})).await, 200).await;
    assert!(
        portal["url"]
            .as_str()
            .unwrap()
            .starts_with("https://billing.stripe.com/"),
        "{portal}"
    );
    // Another tenant sees none of it.
    let (_, other) = app.signup("other@example.com").await;
    assert_eq!(int(&billing(&app, &other).await, "balance_nanos"), 0);
}

#[tokio::test]
async fn without_stripe_keys_billing_is_off_and_nothing_changes() {
    let app = App::spawn().await;
    let (_, token) = app.signup("off@example.com").await;
    let b = billing(&app, &token).await;
    assert_eq!(b["mode"], "off", "{b}");
    assert!(b["balance_nanos"].is_null(), "{b}");
    expect_problem(
        app.post("/v1/billing/checkout", &token, json!({"amount_usd": "5"}))
            .await,
        404,
        "not_found",
    )
    .await;
    expect_problem(
        app.post("/v1/billing/portal", &token, json!({})).await,
        404,
        "not_found",
    )
    .await;
    let r = app
        .request(
            reqwest::Method::PUT,
            "/v1/billing/auto_recharge",
            Some(&token),
        )
        .json(&json!({"enabled": true, "below_usd": 5, "amount_usd": 20}))
        .send()
        .await
        .unwrap();
    expect_problem(r, 404, "not_found").await;
    // The calls are documented.
    let doc = expect_status(
        app.client
            .get(format!("{}/v1/openapi.json", app.url))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    for path in [
        "/v1/billing",
        "/v1/billing/checkout",
        "/v1/billing/portal",
        "/v1/billing/auto_recharge",
        "/v1/billing/webhook",
    ] {
        assert!(
            doc["paths"][path].is_object(),
            "{path} missing from the OpenAPI document"
        );
    }
    assert!(doc["components"]["schemas"]["BillingView"].is_object());
    assert!(doc["components"]["schemas"]["AutoRechargeView"].is_object());
    // A mode without a key is refused at start rather than billing nobody.
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_corral"))
        .arg("serve")
        .env("CORRAL_DATA_DIR", app.path().join("second"))
        .env("CORRAL_LISTEN", "127.0.0.1:0")
        .env("CORRAL_BILLING_MODE", "prepaid")
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("CORRAL_STRIPE_SECRET_KEY"));
}

#[tokio::test]
async fn prepaid_credit_pauses_a_spinning_sprite_for_billing_before_it_runs_out() {
    let stripe = Stripe::start().await;
    let app = money::spawn(&stripe.env("prepaid")).await;
    stripe.deliver_to(&app).await;
    let (_, token) = app.signup("spinner@example.com").await;
    // No credit yet: nothing may run.
    let refused = app
        .post(
            "/v1/sprites",
            &token,
            json!({"name": "spin", "cpus": 1, "memory_mb": 512, "disk_mb": 256}),
        )
        .await;
    expect_problem(refused, 402, "budget_exhausted").await;

    let session = checkout(&app, &token, json!({"amount_usd": "4.00"})).await;
    let event = stripe.complete(&session).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(stripe.deliver(&event, json!({})).await, 200);
    let credit = 4 * DOLLAR;
    money::spin(&app, &token, "spin").await;
    // $1 per CPU-second: a few seconds of `yes`. The balance never goes below zero, and
    // spend plus the storage reservation never passes the credit.
    let started = std::time::Instant::now();
    let paused = loop {
        let b = billing(&app, &token).await;
        let balance = int(&b, "balance_nanos");
        assert!(balance >= 0, "balance went negative: {b}");
        let budget = money::budget(&app, &token).await;
        let committed = int(&budget, "spent_nanos") + int(&budget, "storage_reserved_nanos");
        assert!(
            committed <= credit,
            "committed {committed} past the credit {credit}: {budget}"
        );
        let s = money::sprite(&app, &token, "spin").await;
        if s["state"] == "paused" {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "never paused: {s} {b}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(paused["pause_reason"], "billing", "{paused}");
    money::settle().await;
    let b = billing(&app, &token).await;
    let balance = int(&b, "balance_nanos");
    let reserved = int(&money::budget(&app, &token).await, "storage_reserved_nanos");
    eprintln!(
        "prepaid: credit {credit}, paused after {:?}, balance left {balance} (reserved for disk {reserved})",
        started.elapsed()
    );
    // What is left pays for the stored disk to the month's end, and little more: the
    // credit was used, not wasted.
    assert!(
        balance >= reserved && balance - reserved < CPU_PRICE,
        "after the pause: {b}, reserved {reserved}"
    );
    // It stays paused (402 on resume), and a mail says why.
    expect_problem(
        app.post("/v1/sprites/spin/resume", &token, json!({})).await,
        402,
        "budget_exhausted",
    )
    .await;
    let alerts = expect_status(app.get("/v1/alerts", &token).await, 200).await;
    let billing_mails: Vec<&Value> = alerts["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == "billing")
        .collect();
    // Warned at 50 % and 80 % of the credit, then told of the pause.
    let mut pcts: Vec<i64> = billing_mails
        .iter()
        .map(|a| a["threshold_pct"].as_i64().unwrap())
        .collect();
    pcts.sort_unstable();
    assert_eq!(pcts, [50, 80, 100], "{alerts}");
    let mail = billing_mails
        .iter()
        .find(|a| a["threshold_pct"] == 100)
        .cloned();
    assert!(
        mail.is_some_and(|m| m["subject"].as_str().unwrap().contains("credit")),
        "{alerts}"
    );

    // A top-up lets it run again.
    let session = checkout(&app, &token, json!({"amount_usd": "20"})).await;
    let event = stripe.complete(&session).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(stripe.deliver(&event, json!({})).await, 200);
    until_sprite(&app, &token, "spin", "running", Duration::from_secs(10)).await;
    expect_status(app.delete("/v1/sprites/spin", &token).await, 204).await;
}

/// Runs the `corral` CLI against `app` as the holder of `token`.
pub(super) async fn cli(app: &App, token: &str, args: &[&str]) -> String {
    let home = app.path().join("cli-home");
    std::fs::create_dir_all(&home).unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_corral"))
        .args(args)
        .env("CORRAL_URL", &app.url)
        .env("CORRAL_TOKEN", token)
        .env("HOME", &home)
        .env("XDG_CONFIG_HOME", &home)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{args:?}: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test]
async fn the_cli_tops_up_and_shows_the_balance() {
    let stripe = Stripe::start().await;
    let app = money::spawn(&stripe.env("prepaid")).await;
    stripe.deliver_to(&app).await;
    let (_, token) = app.signup("cli-billing@example.com").await;
    let said = cli(&app, &token, &["billing", "topup", "7.50"]).await;
    let url = said
        .trim()
        .strip_prefix("open this link to pay: ")
        .expect(&said);
    let session = url.rsplit('/').next().unwrap();
    let event = stripe.complete(session).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(stripe.deliver(&event, json!({})).await, 200);
    let shown = cli(&app, &token, &["billing"]).await;
    assert!(
        shown.contains("prepaid") && shown.contains("$7.50"),
        "{shown}"
    );
    let portal = cli(&app, &token, &["billing", "portal"]).await;
    assert!(
        portal.starts_with("https://billing.stripe.com/"),
        "{portal}"
    );
}
