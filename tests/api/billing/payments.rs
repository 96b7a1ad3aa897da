//! A failed invoice payment pauses the tenant's sprites (`pause_reason: billing`) once
//! the grace period ends, a paid invoice lifts it and resumes them, and an older
//! failure delivered late changes nothing.

use std::time::{Duration, Instant};

use serde_json::json;

use super::*;
use crate::helpers::{expect_problem, expect_status};
use crate::money;

#[tokio::test]
async fn payment_failed_pauses_after_grace_and_paid_lifts_it() {
    let stripe = Stripe::start().await;
    stripe
        .api_post("/v1/billing/meters", &[("event_name", "corral_usage")])
        .await;
    let mut env = stripe.env("metered");
    env.extend([
        ("CORRAL_STRIPE_METERED_PRICE", "price_metered".into()),
        ("CORRAL_BILLING_GRACE_S", "4".into()),
        ("CORRAL_PRICE_CPU_NANOS_PER_CPU_S", "10000000".into()),
    ]);
    let app = money::spawn(&env).await;
    stripe.deliver_to(&app).await;
    let (_, token) = app.signup("late-payer@example.com").await;
    let session = checkout(&app, &token, json!({})).await;
    let customer = stripe
        .api_get(&format!("/v1/checkout/sessions/{session}"))
        .await["customer"]
        .as_str()
        .unwrap()
        .to_owned();
    let completed = stripe.complete(&session).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(stripe.deliver(&completed, json!({})).await, 200);
    // One subscription per tenant: a second Checkout is refused.
    expect_problem(
        app.post("/v1/billing/checkout", &token, json!({})).await,
        409,
        "conflict",
    )
    .await;
    money::spin(&app, &token, "job").await;

    let failed = stripe
        .hook_post(
            "/_test/invoices",
            json!({"customer": customer, "paid": false, "amount_due": 1200}),
        )
        .await;
    let failed_at = Instant::now();
    assert_eq!(
        stripe
            .deliver(failed["id"].as_str().unwrap(), json!({}))
            .await,
        200
    );
    let b = billing(&app, &token).await;
    assert_eq!(b["payment_state"], "past_due", "{b}");
    let suspends_at = chrono::DateTime::parse_from_rfc3339(b["suspends_at"].as_str().unwrap())
        .unwrap_or_else(|e| panic!("suspends_at: {e}: {b}"));
    // Within the grace it runs on.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(money::sprite(&app, &token, "job").await["state"], "running");
    let paused = until_sprite(&app, &token, "job", "paused", Duration::from_secs(15)).await;
    assert_eq!(paused["pause_reason"], "billing", "{paused}");
    // The grace runs from the invoice's failure as Stripe stamps it (whole seconds), so
    // it is checked against the end the server announced, not this test's clock.
    assert!(
        chrono::Utc::now() >= suspends_at,
        "paused before the grace ended ({suspends_at})"
    );
    assert!(failed_at.elapsed() >= Duration::from_secs(3));
    assert_eq!(billing(&app, &token).await["payment_state"], "suspended");
    expect_problem(
        app.post("/v1/sprites/job/resume", &token, json!({})).await,
        402,
        "budget_exhausted",
    )
    .await;

    // A second failure, then the payment a second later; delivered in the other order.
    let late_failure = stripe
        .hook_post(
            "/_test/invoices",
            json!({"customer": customer, "paid": false}),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let paid = stripe
        .hook_post(
            "/_test/invoices",
            json!({"customer": customer, "paid": true}),
        )
        .await;
    assert_eq!(
        stripe
            .deliver(paid["id"].as_str().unwrap(), json!({}))
            .await,
        200
    );
    until_sprite(&app, &token, "job", "running", Duration::from_secs(10)).await;
    assert_eq!(
        stripe
            .deliver(late_failure["id"].as_str().unwrap(), json!({}))
            .await,
        200
    );
    assert_eq!(billing(&app, &token).await["payment_state"], "ok");
    // Past another grace period, it still runs.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(money::sprite(&app, &token, "job").await["state"], "running");
    expect_status(app.delete("/v1/sprites/job", &token).await, 204).await;
}
