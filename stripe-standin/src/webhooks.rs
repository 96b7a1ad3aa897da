//! The signed webhook emitter: events signed as Stripe signs them
//! (`Stripe-Signature: t=…,v1=HMAC-SHA256(secret, "{t}.{body}")`), delivered on demand
//! any number of times, in any order, with a stale timestamp or a tampered body.

use ring::hmac;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::state::now_s;
use crate::Shared;

/// How one delivery is made.
#[derive(Clone, Copy, Debug, Default, Deserialize)]
pub struct Delivery {
    /// Sign with a timestamp this many seconds old (e.g. 600: past the tolerance).
    #[serde(default)]
    pub age_s: i64,
    /// Change the body after signing it.
    #[serde(default)]
    pub tamper: bool,
    /// Sign with another secret.
    #[serde(default)]
    pub wrong_secret: bool,
}

/// The `Stripe-Signature` header for `body` signed with `secret` at `t`.
pub fn signature(secret: &str, t: i64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut signed = format!("{t}.").into_bytes();
    signed.extend_from_slice(body);
    format!(
        "t={t},v1={}",
        hex::encode(hmac::sign(&key, &signed).as_ref())
    )
}

/// Records a new event about `object` (and delivers it when the endpoint auto-delivers).
pub fn emit(s: &Shared, kind: &str, object: Value) -> Value {
    let event = json!({
        "id": s.id("evt_"), "object": "event", "type": kind, "created": now_s(),
        "livemode": false, "api_version": "2025-03-31.basil", "data": {"object": object},
    });
    s.objects
        .lock()
        .expect("objects")
        .events
        .push(event.clone());
    let endpoint = s.endpoint.lock().expect("endpoint").clone();
    if endpoint.auto_deliver {
        let (s, id) = (
            s.clone(),
            event["id"].as_str().unwrap_or_default().to_owned(),
        );
        tokio::spawn(async move {
            if let Err(error) = deliver(&s, &id, Delivery::default()).await {
                tracing::warn!(%error, "stand-in webhook delivery failed");
            }
        });
    }
    event
}

/// Delivers event `id` once; answers the endpoint's status.
pub async fn deliver(s: &Shared, id: &str, how: Delivery) -> anyhow::Result<u16> {
    let event = {
        let o = s.objects.lock().expect("objects");
        o.events.iter().find(|e| e["id"] == id).cloned()
    }
    .ok_or_else(|| anyhow::anyhow!("no event {id}"))?;
    let endpoint = s.endpoint.lock().expect("endpoint").clone();
    let url = endpoint
        .url
        .ok_or_else(|| anyhow::anyhow!("no webhook endpoint configured"))?;
    let body = serde_json::to_vec(&event)?;
    let secret = if how.wrong_secret {
        format!("{}-not", endpoint.secret)
    } else {
        endpoint.secret
    };
    let header = signature(&secret, now_s() - how.age_s, &body);
    let sent = if how.tamper {
        let mut tampered = event.clone();
        tampered["data"]["object"]["amount_total"] = json!(99_999_999);
        serde_json::to_vec(&tampered)?
    } else {
        body
    };
    let response = reqwest::Client::new()
        .post(url)
        .header("Stripe-Signature", header)
        .header("Content-Type", "application/json")
        .body(sent)
        .send()
        .await?;
    Ok(response.status().as_u16())
}
