//! Auto-recharge in prepaid mode: a spinning sprite takes the balance below the
//! threshold and the saved card is charged exactly once (through a 500, a lost answer
//! and a duplicated webhook), the balance rising by the amount only when
//! `payment_intent.succeeded` arrives; a declined card turns it off (once, however often
//! Stripe reports it), mails the tenant over real SMTP, and the hard cap still pauses
//! the sprite before the credit runs out.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::prepaid::cli;
use super::*;
use crate::helpers::{expect_problem, expect_status};
use crate::money::smtp::SmtpServer;
use crate::money::{self, int};

const DOLLAR: i64 = 1_000_000_000;

impl Stripe {
    /// The auto-recharge PaymentIntents the stand-in holds.
    async fn recharges(&self) -> Vec<Value> {
        let list = self.api_get("/v1/payment_intents").await;
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["metadata"]["corral_purpose"] == "auto_recharge")
            .cloned()
            .collect()
    }

    /// The events of `kind` emitted so far.
    async fn events_of(&self, kind: &str) -> Vec<Value> {
        self.hook_get("/_test/events").await["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["type"] == kind)
            .cloned()
            .collect()
    }
}

async fn put_recharge(app: &App, token: &str, body: Value) -> reqwest::Response {
    app.request(
        reqwest::Method::PUT,
        "/v1/billing/auto_recharge",
        Some(token),
    )
    .json(&body)
    .send()
    .await
    .unwrap()
}

/// Buys `usd` of credit through Checkout and delivers its completion.
async fn buy(stripe: &Stripe, app: &App, token: &str, usd: &str) {
    let session = checkout(app, token, json!({ "amount_usd": usd })).await;
    let event = stripe.complete(&session).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(stripe.deliver(&event, json!({})).await, 200);
}

#[tokio::test]
async fn a_low_balance_is_recharged_exactly_once_through_faults_and_duplicates() {
    let stripe = Stripe::start().await;
    let app = money::spawn(&stripe.env("prepaid")).await;
    stripe.deliver_to(&app).await;
    let (_, token) = app.signup("recharge@example.com").await;

    // No card saved yet: a clear 409; bad amounts are 422.
    let on = json!({"enabled": true, "below_usd": "3", "amount_usd": "20"});
    expect_problem(
        put_recharge(&app, &token, on.clone()).await,
        409,
        "conflict",
    )
    .await;
    for bad in [
        json!({"enabled": true, "below_usd": "3"}),
        json!({"enabled": true, "below_usd": "three", "amount_usd": "20"}),
        json!({"enabled": true, "below_usd": "3", "amount_usd": "0.10"}),
    ] {
        expect_problem(
            put_recharge(&app, &token, bad.clone()).await,
            422,
            "validation",
        )
        .await;
    }

    buy(&stripe, &app, &token, "4.00").await;
    // Checkout asked Stripe to keep the card; its own payment is not a recharge.
    let params = stripe.hook_get("/_test/events").await;
    let checkout_paid = stripe.events_of("payment_intent.succeeded").await;
    assert_eq!(checkout_paid.len(), 1, "{params}");
    assert_eq!(
        checkout_paid[0]["data"]["object"]["setup_future_usage"], "off_session",
        "{checkout_paid:?}"
    );
    let id = checkout_paid[0]["id"].as_str().unwrap();
    assert_eq!(stripe.deliver(id, json!({})).await, 200);
    assert_eq!(
        int(&billing(&app, &token).await, "balance_nanos"),
        4 * DOLLAR
    );

    let set = expect_status(put_recharge(&app, &token, on).await, 200).await;
    assert_eq!(
        (set["enabled"].as_bool(), set["card_saved"].as_bool()),
        (Some(true), Some(true)),
        "{set}"
    );
    assert_eq!(int(&set, "below_nanos"), 3 * DOLLAR);
    assert_eq!(int(&set, "amount_nanos"), 20 * DOLLAR);

    // The first try meets a 500 (nothing done), the second is carried out but its
    // answer lost; the third is answered from Stripe's idempotency record.
    for kind in ["error500", "lost_answer"] {
        stripe
            .hook_post(
                "/_test/faults",
                json!({"path_prefix": "/v1/payment_intents", "kind": kind, "count": 1}),
            )
            .await;
    }
    money::spin(&app, &token, "spin").await;
    let started = Instant::now();
    let charged = loop {
        let b = billing(&app, &token).await;
        assert!(int(&b, "balance_nanos") >= 0, "{b}");
        if b["auto_recharge"]["last"]["state"] == "charged" {
            break b;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "never charged: {b}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Stop spending before the credit arrives, so the balance can be compared.
    expect_status(app.delete("/v1/sprites/spin", &token).await, 204).await;
    money::settle().await;
    let faults = stripe.hook_get("/_test/faults").await;
    assert!(
        faults["faults"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["hits"] == 1),
        "both faults were met: {faults}"
    );
    let recharges = stripe.recharges().await;
    assert_eq!(recharges.len(), 1, "one charge: {recharges:?}");
    assert_eq!(recharges[0]["amount"], 2000);
    assert_eq!(recharges[0]["status"], "succeeded");
    assert_eq!(
        charged["auto_recharge"]["last"]["payment_intent"],
        recharges[0]["id"]
    );

    // Charged is not credited: the balance rises only with the event, once.
    let before = billing(&app, &token).await;
    assert!(int(&before, "balance_nanos") < 3 * DOLLAR, "{before}");
    let events = stripe.events_of("payment_intent.succeeded").await;
    let event = events
        .iter()
        .find(|e| e["data"]["object"]["id"] == recharges[0]["id"])
        .expect("the recharge's event");
    let id = event["id"].as_str().unwrap();
    for _ in 0..2 {
        assert_eq!(stripe.deliver(id, json!({})).await, 200);
    }
    let after = billing(&app, &token).await;
    assert_eq!(
        int(&after, "balance_nanos") - int(&before, "balance_nanos"),
        20 * DOLLAR,
        "{before} → {after}"
    );
    assert_eq!(int(&after, "credited_nanos"), 24 * DOLLAR);
    assert_eq!(after["auto_recharge"]["last"]["state"], "succeeded");
    assert_eq!(after["auto_recharge"]["enabled"], true);
    // The balance is above the threshold again: no second charge.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(stripe.recharges().await.len(), 1);

    // The CLI shows it, and turns it off and on.
    let shown = cli(&app, &token, &["billing"]).await;
    assert!(
        shown.contains("on: below $3.00 charge $20.00") && shown.contains("#1 $20.00 succeeded"),
        "{shown}"
    );
    let said = cli(&app, &token, &["billing", "auto-recharge", "off"]).await;
    assert!(
        said.contains("auto-recharge") && said.contains("off"),
        "{said}"
    );
    let off = billing(&app, &token).await;
    assert_eq!(off["auto_recharge"]["enabled"], false, "{off}");
    assert_eq!(
        int(&off["auto_recharge"], "amount_nanos"),
        20 * DOLLAR,
        "settings kept: {off}"
    );
    let said = cli(
        &app,
        &token,
        &[
            "billing",
            "auto-recharge",
            "on",
            "--below",
            "2",
            "--amount",
            "10",
        ],
    )
    .await;
    assert!(said.contains("on: below $2.00 charge $10.00"), "{said}");
}

#[tokio::test]
async fn a_declined_card_turns_it_off_mails_and_the_cap_still_pauses() {
    let smtp = SmtpServer::start(0).await;
    let stripe = Stripe::start().await;
    let mut env = stripe.env("prepaid");
    env.extend([
        ("CORRAL_SMTP_URL", smtp.url.clone()),
        ("CORRAL_SMTP_FROM", "Corral <alerts@corral.test>".into()),
        ("CORRAL_MAIL_RETRY_BASE_S", "1".into()),
    ]);
    let app = money::spawn(&env).await;
    stripe.deliver_to(&app).await;
    let (_, token) = app.signup("declined@example.com").await;
    buy(&stripe, &app, &token, "4").await;
    let on = json!({"enabled": true, "below_usd": 3, "amount_usd": 20});
    expect_status(put_recharge(&app, &token, on).await, 200).await;
    stripe
        .hook_post(
            "/_test/faults",
            json!({"path_prefix": "/v1/payment_intents", "kind": "card_declined"}),
        )
        .await;

    money::spin(&app, &token, "spin").await;
    let credit = 4 * DOLLAR;
    let started = Instant::now();
    let paused = loop {
        let b = billing(&app, &token).await;
        assert!(int(&b, "balance_nanos") >= 0, "balance went negative: {b}");
        let budget = money::budget(&app, &token).await;
        let committed = int(&budget, "spent_nanos") + int(&budget, "storage_reserved_nanos");
        assert!(committed <= credit, "committed {committed} past {credit}");
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

    let b = until_billing(&app, &token, Duration::from_secs(10), |b| {
        b["auto_recharge"]["enabled"] == false
    })
    .await;
    let a = &b["auto_recharge"];
    // Corral read the refusal from Stripe's 402 answer itself.
    let reason = a["off_reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("refused: card_declined") && reason.contains("insufficient_funds"),
        "{b}"
    );
    assert_eq!(a["last"]["state"], "failed", "{b}");
    assert_eq!(int(&b, "credited_nanos"), credit, "nothing credited: {b}");
    let recharges = stripe.recharges().await;
    assert_eq!(recharges.len(), 1, "{recharges:?}");
    assert_eq!(recharges[0]["status"], "requires_payment_method");
    assert_eq!(
        stripe
            .events_of("payment_intent.payment_failed")
            .await
            .len(),
        1
    );

    // One mail says so, delivered over SMTP.
    let started = Instant::now();
    let mail = loop {
        let mails = smtp.mails();
        let found: Vec<_> = mails
            .iter()
            .filter(|m| m.data.contains("auto-recharge failed"))
            .cloned()
            .collect();
        if let Some(m) = found.first() {
            assert_eq!(found.len(), 1, "{mails:?}");
            break m.clone();
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "no mail: {mails:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(mail.to, vec!["<declined@example.com>"]);
    assert!(
        mail.data.contains("Auto-recharge is now off"),
        "{}",
        mail.data
    );
    // Off, it charges nothing more however low the balance stays; one mail was queued.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(stripe.recharges().await.len(), 1);
    let alerts = expect_status(app.get("/v1/alerts", &token).await, 200).await;
    let recharge_mails = alerts["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| {
            a["subject"]
                .as_str()
                .unwrap_or("")
                .contains("auto-recharge")
        })
        .count();
    assert_eq!(recharge_mails, 1, "{alerts}");
    expect_status(app.delete("/v1/sprites/spin", &token).await, 204).await;
}
