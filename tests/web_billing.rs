//! The billing card's auto-recharge form in a real headless Chromium (chromedriver,
//! WebDriver) against the real `corral` binary in prepaid mode, with the Stripe
//! stand-in (Stripe's API cannot be reached from here): a refused amount shows the
//! server's words, a saved setting shows what it will do, and the API agrees.

use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use fantoccini::{Client, Locator};
use serde_json::{json, Value};

#[path = "common/browser.rs"]
mod browser;
#[path = "common/machines.rs"]
mod machines;

#[path = "common/page.rs"]
mod page;

use browser::{start_browser, start_server};
use page::{text_where, WAIT};

const KEY: &str = "sk_test_web_billing";
const WEBHOOK_SECRET: &str = "whsec_web_billing";

async fn send(request: reqwest::RequestBuilder) -> Value {
    let response = request.send().await.expect("call");
    let status = response.status();
    let body = response.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{status}: {body}");
    body
}

async fn type_into(client: &Client, css: &str, text: &str) -> Result<()> {
    let field = client.find(Locator::Css(css)).await?;
    field.clear().await?;
    field.send_keys(text).await?;
    Ok(())
}

async fn scenario(client: &Client, url: &str, token: &str) -> Result<()> {
    client.goto(url).await?;
    client
        .execute(
            "sessionStorage.setItem('corral.session', arguments[0])",
            vec![json!(token)],
        )
        .await?;
    client.refresh().await?;
    text_where(client, "#recharge-state", |t| t == "Off.").await?;

    client
        .find(Locator::Css("#recharge-enabled"))
        .await?
        .click()
        .await?;
    type_into(client, "#recharge-below", "five").await?;
    type_into(client, "#recharge-amount", "20").await?;
    client
        .find(Locator::Css("#recharge-save"))
        .await?
        .click()
        .await?;
    text_where(client, "#recharge-error", |t| t.contains("below_usd")).await?;

    type_into(client, "#recharge-below", "5").await?;
    client
        .find(Locator::Css("#recharge-save"))
        .await?
        .click()
        .await?;
    text_where(client, "#recharge-state", |t| {
        t.contains("below $5.00") && t.contains("charged $20.00")
    })
    .await?;
    let billing = send(
        reqwest::Client::new()
            .get(format!("{url}/v1/billing"))
            .bearer_auth(token),
    )
    .await;
    let a = &billing["auto_recharge"];
    ensure!(
        a["enabled"] == true
            && a["below_nanos"] == 5_000_000_000_i64
            && a["amount_nanos"] == 20_000_000_000_i64,
        "{billing}"
    );
    Ok(())
}

#[tokio::test]
async fn the_billing_card_turns_auto_recharge_on() {
    let (addr, _standin) = stripe_standin::spawn("127.0.0.1:0", KEY)
        .await
        .expect("stand-in");
    let stripe = format!("http://{addr}");
    let data_dir = tempfile::tempdir().expect("temp dir");
    let profile = tempfile::tempdir().expect("temp dir");
    let (server, url) = start_server(
        data_dir.path(),
        &[
            ("CORRAL_BILLING_MODE", "prepaid"),
            ("CORRAL_STRIPE_SECRET_KEY", KEY),
            ("CORRAL_STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET),
            ("CORRAL_STRIPE_API_BASE", &stripe),
        ],
    )
    .await;
    let http = reqwest::Client::new();
    let signup = send(http.post(format!("{url}/v1/signup")).json(&json!({
        "email": "web-billing@example.com", "password": "correct horse battery", "org": "Acme"
    })))
    .await;
    let token = signup["token"].as_str().expect("token").to_string();
    // Credit bought once through Checkout saves the card.
    send(http.post(format!("{stripe}/_test/endpoint")).json(
        &json!({"url": format!("{url}/v1/billing/webhook"), "secret": WEBHOOK_SECRET, "auto_deliver": true}),
    ))
    .await;
    let checkout = send(
        http.post(format!("{url}/v1/billing/checkout"))
            .bearer_auth(&token)
            .json(&json!({"amount_usd": "10"})),
    )
    .await;
    let session = checkout["url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap();
    send(http.post(format!(
        "{stripe}/_test/checkout/sessions/{session}/complete"
    )))
    .await;
    let deadline = Instant::now() + WAIT;
    loop {
        let b = send(http.get(format!("{url}/v1/billing")).bearer_auth(&token)).await;
        if b["auto_recharge"]["card_saved"] == true {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the completion never arrived: {b}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let (_driver, client) = start_browser(profile.path()).await;
    let outcome = scenario(&client, &url, &token).await;
    let _ = client.close().await;
    let mut server = server;
    machines::stop_server(&mut server.0);
    machines::destroy_machines(data_dir.path().join("machines"));
    if let Err(error) = outcome {
        let log = std::fs::read_to_string(data_dir.path().join("server.log")).unwrap_or_default();
        panic!("{error:#}\n(the server's log:)\n{log}");
    }
}
