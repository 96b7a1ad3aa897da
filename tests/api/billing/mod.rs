//! Billing end to end: the real server against the Stripe stand-in (Stripe's API
//! cannot be reached from here), started on 127.0.0.1 per test. Prepaid credit through
//! completed Checkout sessions, webhooks signed, replayed, tampered, stale and out of
//! order, a real gVisor sprite paused for billing before its credit runs out, metered
//! usage through an outage and a kill -9, reconciliation, and a failed payment's grace.
mod metered;
mod payments;
mod prepaid;
mod recharge;

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{expect_status, App};

pub const KEY: &str = "sk_test_corral_billing";
pub const WEBHOOK_SECRET: &str = "whsec_corral_test";

/// The stand-in for Stripe, reached over HTTP like Stripe would be.
pub struct Stripe {
    pub url: String,
    client: reqwest::Client,
}

impl Stripe {
    pub async fn start() -> Stripe {
        let (addr, _state) = stripe_standin::spawn("127.0.0.1:0", KEY)
            .await
            .expect("stand-in");
        Stripe {
            url: format!("http://{addr}"),
            client: reqwest::Client::new(),
        }
    }

    /// The settings pointing Corral at this stand-in, in `mode`.
    pub fn env(&self, mode: &str) -> Vec<(&'static str, String)> {
        vec![
            ("CORRAL_BILLING_MODE", mode.into()),
            ("CORRAL_STRIPE_SECRET_KEY", KEY.into()),
            ("CORRAL_STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET.into()),
            ("CORRAL_STRIPE_API_BASE", self.url.clone()),
        ]
    }

    /// Events go to `app`'s webhook; each is delivered when the test says so.
    pub async fn deliver_to(&self, app: &App) {
        let body =
            json!({"url": format!("{}/v1/billing/webhook", app.url), "secret": WEBHOOK_SECRET});
        self.hook_post("/_test/endpoint", body).await;
    }

    pub async fn hook_post(&self, path: &str, body: Value) -> Value {
        let r = self
            .client
            .post(format!("{}{path}", self.url))
            .json(&body)
            .send()
            .await
            .expect("stand-in");
        expect_status(
            r,
            if path == "/_test/endpoint" || path == "/_test/faults" {
                204
            } else {
                200
            },
        )
        .await
    }

    pub async fn hook_get(&self, path: &str) -> Value {
        let r = self
            .client
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .expect("stand-in");
        expect_status(r, 200).await
    }

    /// A call to Stripe's own API on the stand-in (with the secret key).
    pub async fn api_post(&self, path: &str, form: &[(&str, &str)]) -> Value {
        let r = self
            .client
            .post(format!("{}{path}", self.url))
            .bearer_auth(KEY)
            .form(form)
            .send()
            .await
            .expect("stand-in");
        expect_status(r, 200).await
    }

    pub async fn api_get(&self, path: &str) -> Value {
        let r = self
            .client
            .get(format!("{}{path}", self.url))
            .bearer_auth(KEY)
            .send()
            .await
            .expect("stand-in");
        expect_status(r, 200).await
    }

    /// Completes Checkout session `id` as a paying person; answers the event.
    pub async fn complete(&self, id: &str) -> Value {
        self.hook_post(
            &format!("/_test/checkout/sessions/{id}/complete"),
            json!({}),
        )
        .await
    }

    /// Delivers event `id` (`how`: `{age_s, tamper, wrong_secret}`); answers the status
    /// Corral gave.
    pub async fn deliver(&self, id: &str, how: Value) -> u16 {
        let r = self
            .hook_post(&format!("/_test/events/{id}/deliver"), how)
            .await;
        r["status"].as_u64().expect("status") as u16
    }

    /// Every meter event the stand-in holds.
    pub async fn meter_events(&self) -> Vec<Value> {
        self.hook_get("/_test/meter_events").await["data"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

/// Starts a Checkout (prepaid: `amount_usd`); answers the session's id.
pub async fn checkout(app: &App, token: &str, body: Value) -> String {
    let answer = expect_status(app.post("/v1/billing/checkout", token, body).await, 200).await;
    let url = answer["url"].as_str().expect("url");
    url.rsplit('/').next().expect("session id").to_owned()
}

pub async fn billing(app: &App, token: &str) -> Value {
    expect_status(app.get("/v1/billing", token).await, 200).await
}

/// Polls `check` on the tenant's billing until it holds (or fails after `limit`).
pub async fn until_billing(
    app: &App,
    token: &str,
    limit: Duration,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let started = Instant::now();
    loop {
        let b = billing(app, token).await;
        if check(&b) {
            return b;
        }
        assert!(started.elapsed() < limit, "billing never got there: {b}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls a sprite until it is in `state` (with `reason` when paused).
pub async fn until_sprite(
    app: &App,
    token: &str,
    name: &str,
    state: &str,
    limit: Duration,
) -> Value {
    let started = Instant::now();
    loop {
        let s = crate::money::sprite(app, token, name).await;
        if s["state"] == state {
            return s;
        }
        assert!(started.elapsed() < limit, "{name} never got {state}: {s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
