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
