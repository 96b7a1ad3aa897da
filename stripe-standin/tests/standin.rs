//! The stand-in behaves as Stripe does where Corral depends on it: test keys only,
//! errors in Stripe's shape, `Idempotency-Key` replay (and refusal with other
//! parameters), meter events de-duplicated by identifier within the timestamp window.

use serde_json::Value;

const KEY: &str = "sk_test_standin_tests";

async fn post(
    url: &str,
    key: &str,
    form: &[(&str, &str)],
    idem: Option<&str>,
) -> (u16, Option<String>, Value) {
    let mut request = reqwest::Client::new().post(url).bearer_auth(key).form(form);
    if let Some(k) = idem {
        request = request.header("Idempotency-Key", k);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let replayed = response
        .headers()
        .get("idempotent-replayed")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, replayed, response.json().await.unwrap())
}

fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn keys_errors_idempotency_and_meter_events() {
    let (addr, _) = stripe_standin::spawn("127.0.0.1:0", KEY).await.unwrap();
    let base = format!("http://{addr}");
    let customers = format!("{base}/v1/customers");

    for key in ["sk_live_x", "sk_test_other", "pk_test_x"] {
        let (status, _, body) = post(&customers, key, &[("email", "a@b.c")], None).await;
        assert_eq!(status, 401, "{key}");
        assert_eq!(body["error"]["type"], "invalid_request_error", "{body}");
        assert!(body["error"]["message"].is_string());
    }

    let form = [("email", "a@b.c"), ("metadata[corral_tenant]", "t1")];
    let (s1, r1, first) = post(&customers, KEY, &form, Some("k1")).await;
    let (s2, r2, again) = post(&customers, KEY, &form, Some("k1")).await;
    assert_eq!((s1, r1.as_deref()), (200, None));
    assert_eq!((s2, r2.as_deref()), (200, Some("true")));
    assert_eq!(first["id"], again["id"]);
    assert_eq!(first["metadata"]["corral_tenant"], "t1");
    let (s3, _, refused) = post(&customers, KEY, &[("email", "x@y.z")], Some("k1")).await;
    assert_eq!(
        (s3, refused["error"]["type"].as_str()),
        (400, Some("idempotency_error"))
    );
    let customer = first["id"].as_str().unwrap();

    let (_, _, meter) = post(
        &format!("{base}/v1/billing/meters"),
        KEY,
        &[("event_name", "usage")],
        None,
    )
    .await;
    let events = format!("{base}/v1/billing/meter_events");
    let now = now_s().to_string();
    let event = |id: &'static str, ts: String| {
        vec![
            ("event_name", "usage".to_owned()),
            ("identifier", id.to_owned()),
            ("timestamp", ts),
            ("payload[stripe_customer_id]", customer.to_owned()),
            ("payload[value]", "42".to_owned()),
        ]
    };
    let send = |form: Vec<(&'static str, String)>| {
        let events = events.clone();
        async move {
            let refs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            post(&events, KEY, &refs, None).await
        }
    };
    assert_eq!(send(event("e1", now.clone())).await.0, 200);
    let (status, _, dup) = send(event("e1", now.clone())).await;
    assert_eq!(
        (status, dup["error"]["code"].as_str()),
        (400, Some("resource_already_exists"))
    );
    let old = (now_s() - 36 * 86_400).to_string();
    let ahead = (now_s() + 600).to_string();
    for ts in [old, ahead] {
        let (status, _, body) = send(event("e2", ts)).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("timestamp_out_of_range"))
        );
    }
    let start = (now_s() / 60 * 60 - 60).to_string();
    let end = (now_s() / 60 * 60 + 120).to_string();
    let summary: Value = reqwest::Client::new()
        .get(format!(
            "{base}/v1/billing/meters/{}/event_summaries",
            meter["id"].as_str().unwrap()
        ))
        .bearer_auth(KEY)
        .query(&[
            ("customer", customer),
            ("start_time", &start),
            ("end_time", &end),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(summary["data"][0]["aggregated_value"], 42, "{summary}");
}

/// A paid Checkout that asked to keep its card saves it on the customer; an off-session
/// PaymentIntent confirmed against it succeeds (with its event), against another
/// customer's card it is refused, and under `card_declined` it fails as Stripe's would.
#[tokio::test]
async fn saved_cards_and_off_session_payment_intents() {
    let (addr, _) = stripe_standin::spawn("127.0.0.1:0", KEY).await.unwrap();
    let base = format!("http://{addr}");
    let client = reqwest::Client::new();
    let (_, _, customer) = post(&format!("{base}/v1/customers"), KEY, &[], None).await;
    let customer = customer["id"].as_str().unwrap();
    let (_, _, other) = post(&format!("{base}/v1/customers"), KEY, &[], None).await;
    let form = [
        ("mode", "payment"),
        ("customer", customer),
        ("success_url", "https://corral.test/"),
        ("line_items[0][quantity]", "1"),
        ("line_items[0][price_data][currency]", "usd"),
        ("line_items[0][price_data][unit_amount]", "500"),
        ("line_items[0][price_data][product_data][name]", "credit"),
        ("payment_intent_data[setup_future_usage]", "off_session"),
    ];
    let (status, _, session) =
        post(&format!("{base}/v1/checkout/sessions"), KEY, &form, None).await;
    assert_eq!(status, 200, "{session}");
    let id = session["id"].as_str().unwrap();
    let done: Value = client
        .post(format!("{base}/_test/checkout/sessions/{id}/complete"))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let intent = done["data"]["object"]["payment_intent"].as_str().unwrap();
    let intent: Value = client
        .get(format!("{base}/v1/payment_intents/{intent}"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            intent["status"].as_str(),
            intent["amount_received"].as_i64()
        ),
        (Some("succeeded"), Some(500)),
        "{intent}"
    );
    let card = intent["payment_method"].as_str().unwrap();

    let charge = |customer: &str, key: &str| {
        let form = [
            ("amount", "2000".to_owned()),
            ("currency", "usd".to_owned()),
            ("customer", customer.to_owned()),
            ("payment_method", card.to_owned()),
            ("confirm", "true".to_owned()),
            ("off_session", "true".to_owned()),
            ("metadata[corral_purpose]", "auto_recharge".to_owned()),
        ];
        let (url, key) = (format!("{base}/v1/payment_intents"), key.to_owned());
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            post(&url, KEY, &form, Some(&key)).await
        }
    };
    let (status, _, paid) = charge(customer, "r1").await;
    assert_eq!(
        (status, paid["status"].as_str()),
        (200, Some("succeeded")),
        "{paid}"
    );
    let (status, replayed, again) = charge(customer, "r1").await;
    assert_eq!((status, replayed.as_deref()), (200, Some("true")));
    assert_eq!(again["id"], paid["id"], "one charge per key");
    let (status, _, refused) = charge(other["id"].as_str().unwrap(), "r2").await;
    assert_eq!(status, 400, "{refused}");

    client
        .post(format!("{base}/_test/faults"))
        .json(&serde_json::json!({"path_prefix": "/v1/payment_intents", "kind": "card_declined"}))
        .send()
        .await
        .unwrap();
    let (status, _, declined) = charge(customer, "r3").await;
    assert_eq!(status, 402, "{declined}");
    assert_eq!(declined["error"]["type"], "card_error");
    assert_eq!(declined["error"]["code"], "card_declined");
    assert_eq!(
        declined["error"]["payment_intent"]["status"],
        "requires_payment_method"
    );
    let events: Value = client
        .get(format!("{base}/_test/events"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kinds: Vec<&str> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "payment_intent.succeeded",
            "checkout.session.completed",
            "payment_intent.succeeded",
            "payment_intent.payment_failed"
        ]
    );
}
