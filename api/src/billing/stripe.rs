//! The few Stripe calls Corral makes, over reqwest with Stripe's form encoding
//! (bracketed keys), `Idempotency-Key`s and Stripe's error shape.
//!
//! Why not async-stripe: its 1.0 release candidates are generated crates per API area
//! (core, checkout, billing, types, shared) whose compile cost on this shared 2-core
//! box, for six calls, outweighed what they give; these calls are small and the
//! stand-in's tests pin their shape.

use std::time::Duration;

use serde_json::Value;

use crate::config::Secret;

/// What a Stripe call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StripeError {
    /// No answer (connection refused, timeout, broken body).
    #[error("Stripe could not be reached: {0}")]
    Transport(#[source] reqwest::Error),
    /// Stripe answered with an error object.
    #[error("Stripe answered {status}: {code}: {message}")]
    Api {
        /// The HTTP status.
        status: u16,
        /// `error.code` (or `error.type` without one).
        code: String,
        /// `error.message`.
        message: String,
    },
}

impl StripeError {
    /// Worth trying again later (no answer, 429, 5xx); a 4xx otherwise is final.
    pub fn is_transient(&self) -> bool {
        match self {
            StripeError::Transport(_) => true,
            StripeError::Api { status, .. } => *status == 429 || *status >= 500,
        }
    }
}

/// Form parameters with Stripe's bracketed keys, in order.
pub type Params = Vec<(String, String)>;

/// A client for one Stripe account (or the stand-in at `CORRAL_STRIPE_API_BASE`).
pub struct StripeClient {
    http: reqwest::Client,
    base: String,
    key: Secret,
}

/// A meter event as Corral sends it.
pub struct MeterEvent<'a> {
    /// The meter's event name.
    pub event_name: &'a str,
    /// The Stripe customer.
    pub customer: &'a str,
    /// Nano-dollars (may be negative for a correction).
    pub value: i64,
    /// `corral:{tenant}:{minute}` (or an adjustment's identifier): Stripe de-duplicates.
    pub identifier: &'a str,
    /// Unix seconds.
    pub timestamp_s: i64,
}

impl StripeClient {
    /// A client for `base` with secret `key`.
    pub fn new(base: &str, key: Secret, timeout: Duration) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            key,
        })
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        idempotency_key: Option<&str>,
    ) -> Result<Value, StripeError> {
        let mut request = request.bearer_auth(self.key.expose());
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        let response = request.send().await.map_err(StripeError::Transport)?;
        let status = response.status().as_u16();
        let body: Value = response
            .json()
            .await
            .map_err(StripeError::Transport)
            .or_else(|e| {
                if status >= 400 {
                    Ok(Value::Null)
                } else {
                    Err(e)
                }
            })?;
        if status >= 400 {
            let error = &body["error"];
            let text = |k: &str| error[k].as_str().map(str::to_owned);
            return Err(StripeError::Api {
                status,
                code: text("code")
                    .or_else(|| text("type"))
                    .unwrap_or_else(|| "unknown".into()),
                message: text("message").unwrap_or_default(),
            });
        }
        Ok(body)
    }

    /// `POST {path}` with a form body.
    pub async fn post(
        &self,
        path: &str,
        params: &Params,
        idempotency_key: Option<&str>,
    ) -> Result<Value, StripeError> {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params.iter())
            .finish();
        let request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body);
        self.send(request, idempotency_key).await
    }

    /// `GET {path}?{query}`.
    pub async fn get(&self, path: &str, query: &Params) -> Result<Value, StripeError> {
        let request = self.http.get(format!("{}{path}", self.base)).query(query);
        self.send(request, None).await
    }

    /// Creates the tenant's customer; the Idempotency-Key names the tenant, so two
    /// racing first calls (or a retry after a lost answer) make one customer.
    pub async fn create_customer(
        &self,
        tenant_id: &str,
        email: &str,
    ) -> Result<String, StripeError> {
        let params = vec![
            ("email".into(), email.into()),
            ("metadata[corral_tenant]".into(), tenant_id.into()),
        ];
        let key = format!("corral-customer-{tenant_id}");
        let customer = self.post("/v1/customers", &params, Some(&key)).await?;
        id_of(&customer)
    }

    /// A Checkout session; answers its URL.
    pub async fn checkout(
        &self,
        params: &Params,
        idempotency_key: &str,
    ) -> Result<String, StripeError> {
        let session = self
            .post("/v1/checkout/sessions", params, Some(idempotency_key))
            .await?;
        field(&session, "url")
    }

    /// A billing portal session for `customer`; answers its URL.
    pub async fn portal(&self, customer: &str, return_url: &str) -> Result<String, StripeError> {
        let params = vec![
            ("customer".into(), customer.into()),
            ("return_url".into(), return_url.into()),
        ];
        let session = self
            .post("/v1/billing_portal/sessions", &params, None)
            .await?;
        field(&session, "url")
    }

    /// Sends one meter event. An identifier Stripe already holds is success: the event
    /// was recorded by an earlier try whose answer was lost.
    pub async fn meter_event(&self, e: &MeterEvent<'_>) -> Result<(), StripeError> {
        let params = vec![
            ("event_name".into(), e.event_name.into()),
            ("identifier".into(), e.identifier.into()),
            ("timestamp".into(), e.timestamp_s.to_string()),
            ("payload[stripe_customer_id]".into(), e.customer.into()),
            ("payload[value]".into(), e.value.to_string()),
        ];
        match self
            .post("/v1/billing/meter_events", &params, Some(e.identifier))
            .await
        {
            Ok(_) => Ok(()),
            Err(StripeError::Api { code, .. }) if code == "resource_already_exists" => Ok(()),
            Err(other) => Err(other),
        }
    }

    /// The sum of a customer's meter events with timestamps in `[start_s, end_s)`.
    pub async fn meter_total(
        &self,
        meter_id: &str,
        customer: &str,
        start_s: i64,
        end_s: i64,
    ) -> Result<i64, StripeError> {
        let query = vec![
            ("customer".into(), customer.into()),
            ("start_time".into(), start_s.to_string()),
            ("end_time".into(), end_s.to_string()),
        ];
        let list = self
            .get(
                &format!("/v1/billing/meters/{meter_id}/event_summaries"),
                &query,
            )
            .await?;
        let rows = list["data"].as_array().cloned().unwrap_or_default();
        // Values are summed as Stripe sends them (numbers); anything else is corrupt.
        Ok(rows
            .iter()
            .filter_map(|r| {
                let v = &r["aggregated_value"];
                v.as_i64().or_else(|| v.as_f64().map(|f| f.round() as i64))
            })
            .sum())
    }
}

fn field(object: &Value, name: &str) -> Result<String, StripeError> {
    object[name]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| StripeError::Api {
            status: 200,
            code: "unexpected_answer".into(),
            message: format!("no `{name}` in Stripe's answer"),
        })
}

fn id_of(object: &Value) -> Result<String, StripeError> {
    field(object, "id")
}
