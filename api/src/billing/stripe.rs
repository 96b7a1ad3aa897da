//! The Stripe calls Corral makes, through async-stripe's typed requests (pinned release
//! candidate, only the request areas used): customers, Checkout and portal sessions,
//! meter events and their summaries, and off-session PaymentIntents. Each create carries
//! an `Idempotency-Key` Corral derives, and each call a timeout; the errors keep the one
//! distinction the callers act on, [`StripeError::is_transient`].

use std::collections::HashMap;
use std::time::Duration;

use stripe::{Client, ClientBuilder, IdempotencyKey, RequestStrategy, StripeRequest};
use stripe_billing::billing_meter_event::CreateBillingMeterEvent;
use stripe_billing::billing_meter_event_summary::ListIdBillingMeterEventSummary;
use stripe_billing::billing_portal_session::CreateBillingPortalSession;
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionLineItems, CreateCheckoutSessionLineItemsPriceData,
    CreateCheckoutSessionPaymentIntentData, CreateCheckoutSessionPaymentIntentDataSetupFutureUsage,
    ProductData,
};
use stripe_core::customer::CreateCustomer;
use stripe_core::payment_intent::{
    CreatePaymentIntent, CreatePaymentIntentOffSession, RetrievePaymentIntent,
};
use stripe_shared::{CheckoutSessionMode, PaymentIntentStatus};
use stripe_types::Currency;

use crate::config::Secret;

/// What a Stripe call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StripeError {
    /// No usable answer: connection refused, timeout, or a body not in Stripe's shape
    /// (a proxy's error page, a cut-off answer).
    #[error("Stripe could not be reached: {0}")]
    Transport(String),
    /// Stripe answered with an error object.
    #[error("Stripe answered {status}: {code}: {message}")]
    Api {
        /// The HTTP status.
        status: u16,
        /// `error.code` (e.g. `card_declined`), else `error.type`.
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

impl From<stripe::StripeError> for StripeError {
    fn from(error: stripe::StripeError) -> Self {
        match error {
            stripe::StripeError::Stripe(e, status) => StripeError::Api {
                status,
                code: e
                    .code
                    .as_ref()
                    .map(|c| c.as_str().to_owned())
                    .unwrap_or_else(|| e.type_.as_str().to_owned()),
                // A decline's reason is worth keeping (`insufficient_funds`, …).
                message: match (&e.decline_code, &e.message) {
                    (Some(d), Some(m)) => format!("{m} ({d})"),
                    (None, Some(m)) => m.clone(),
                    (Some(d), None) => d.clone(),
                    (None, None) => String::new(),
                },
            },
            stripe::StripeError::Timeout => StripeError::Transport("timed out".into()),
            other => StripeError::Transport(other.to_string()),
        }
    }
}

/// A client for one Stripe account (or the stand-in at `CORRAL_STRIPE_API_BASE`).
pub struct StripeClient {
    client: Client,
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

/// What a Checkout session sells.
pub enum Purchase {
    /// Prepaid credit of this many cents; `save_card` keeps the card for off-session
    /// charges (auto-recharge).
    Credit {
        /// US cents.
        cents: i64,
        /// `payment_intent_data.setup_future_usage=off_session`.
        save_card: bool,
    },
    /// The metered subscription at this price.
    Subscription {
        /// The metered price's id.
        price: String,
    },
}

/// A Checkout session to create.
pub struct Checkout<'a> {
    /// The tenant's Stripe customer.
    pub customer: &'a str,
    /// The tenant (`client_reference_id` and `metadata[corral_tenant]`).
    pub tenant: &'a str,
    /// What it sells.
    pub purchase: Purchase,
    /// Where Stripe sends the browser after paying.
    pub success_url: String,
    /// Where Stripe sends the browser on cancel.
    pub cancel_url: String,
    /// The create's Idempotency-Key.
    pub idempotency_key: &'a str,
}

/// An off-session charge as Stripe answered it.
#[derive(Debug, PartialEq, Eq)]
pub struct Charge {
    /// The PaymentIntent's id.
    pub id: String,
    /// Its status (`succeeded`, `processing`, `requires_action`, …).
    pub status: String,
}

fn key(key: &str) -> Result<RequestStrategy, StripeError> {
    IdempotencyKey::new(key)
        .map(RequestStrategy::Idempotent)
        .map_err(|e| StripeError::Transport(format!("idempotency key: {e}")))
}

fn tenant_metadata(tenant: &str) -> HashMap<String, String> {
    HashMap::from([("corral_tenant".to_owned(), tenant.to_owned())])
}

impl StripeClient {
    /// A client for `base` with secret `key`; each attempt may take `timeout` (the
    /// callers retry on their own schedule, so the client tries once).
    pub fn new(base: &str, key: Secret, timeout: Duration) -> anyhow::Result<Self> {
        let client = ClientBuilder::new(key.expose())
            .url(format!("{}/", base.trim_end_matches('/')))
            .timeout(timeout)
            .request_strategy(RequestStrategy::Once)
            .build()
            .map_err(|e| anyhow::anyhow!("Stripe client: {e}"))?;
        Ok(Self { client })
    }

    /// Creates the tenant's customer; the Idempotency-Key names the tenant, so two
    /// racing first calls (or a retry after a lost answer) make one customer.
    pub async fn create_customer(
        &self,
        tenant_id: &str,
        email: &str,
    ) -> Result<String, StripeError> {
        let customer = CreateCustomer::new()
            .email(email)
            .metadata(tenant_metadata(tenant_id))
            .customize()
            .request_strategy(key(&format!("corral-customer-{tenant_id}"))?)
            .send(&self.client)
            .await?;
        Ok(customer.id.to_string())
    }

    /// A Checkout session; answers its URL.
    pub async fn checkout(&self, c: Checkout<'_>) -> Result<String, StripeError> {
        let mut request = CreateCheckoutSession::new()
            .customer(c.customer)
            .client_reference_id(c.tenant)
            .metadata(tenant_metadata(c.tenant))
            .success_url(c.success_url)
            .cancel_url(c.cancel_url);
        request = match c.purchase {
            Purchase::Credit { cents, save_card } => {
                let mut price = CreateCheckoutSessionLineItemsPriceData::new(Currency::USD);
                price.unit_amount = Some(cents);
                price.product_data = Some(ProductData::new("Corral prepaid credit"));
                let mut item = CreateCheckoutSessionLineItems::new();
                item.quantity = Some(1);
                item.price_data = Some(price);
                let mut request = request
                    .mode(CheckoutSessionMode::Payment)
                    .line_items(vec![item]);
                if save_card {
                    let mut intent = CreateCheckoutSessionPaymentIntentData::new();
                    intent.setup_future_usage =
                        Some(CreateCheckoutSessionPaymentIntentDataSetupFutureUsage::OffSession);
                    request = request.payment_intent_data(intent);
                }
                request
            }
            Purchase::Subscription { price } => {
                let mut item = CreateCheckoutSessionLineItems::new();
                item.price = Some(price);
                request
                    .mode(CheckoutSessionMode::Subscription)
                    .line_items(vec![item])
            }
        };
        let session = request
            .customize()
            .request_strategy(key(c.idempotency_key)?)
            .send(&self.client)
            .await?;
        session.url.ok_or_else(|| StripeError::Api {
            status: 200,
            code: "unexpected_answer".into(),
            message: "the Checkout session has no url".into(),
        })
    }

    /// A billing portal session for `customer`; answers its URL.
    pub async fn portal(&self, customer: &str, return_url: &str) -> Result<String, StripeError> {
        let session = CreateBillingPortalSession::new()
            .customer(customer)
            .return_url(return_url)
            .send(&self.client)
            .await?;
        Ok(session.url)
    }

    /// Sends one meter event. An identifier Stripe already holds is success: the event
    /// was recorded by an earlier try whose answer was lost.
    pub async fn meter_event(&self, e: &MeterEvent<'_>) -> Result<(), StripeError> {
        let payload = HashMap::from([
            ("stripe_customer_id".to_owned(), e.customer.to_owned()),
            ("value".to_owned(), e.value.to_string()),
        ]);
        let sent = CreateBillingMeterEvent::new(e.event_name, payload)
            .identifier(e.identifier)
            .timestamp(e.timestamp_s)
            .customize()
            .request_strategy(key(e.identifier)?)
            .send(&self.client)
            .await;
        match sent.map_err(StripeError::from) {
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
        let list = ListIdBillingMeterEventSummary::new(meter_id, customer, end_s, start_s)
            .send(&self.client)
            .await?;
        // Stripe sends the aggregate as a JSON number (a float in the types); the
        // meter's values are whole nano-dollars.
        Ok(list
            .data
            .iter()
            .map(|s| s.aggregated_value.round() as i64)
            .sum())
    }

    /// The card a completed Checkout payment used (saved for off-session use when the
    /// session asked to), from its PaymentIntent.
    pub async fn payment_method_of(
        &self,
        payment_intent: &str,
    ) -> Result<Option<String>, StripeError> {
        let intent = RetrievePaymentIntent::new(payment_intent)
            .send(&self.client)
            .await?;
        Ok(intent.payment_method.map(|m| m.id().to_string()))
    }

    /// Charges `cents` to the customer's saved `payment_method` off-session, confirmed
    /// at once, as recharge `seq` of `tenant` (in the metadata, for the webhook).
    /// `idempotency_key` names the tenant and the number, so a retry after a lost answer
    /// (or a crash) never charges twice.
    pub async fn charge(
        &self,
        customer: &str,
        payment_method: &str,
        tenant: &str,
        seq: i64,
        cents: i64,
        idempotency_key: &str,
    ) -> Result<Charge, StripeError> {
        let mut metadata = tenant_metadata(tenant);
        metadata.insert("corral_purpose".into(), "auto_recharge".into());
        metadata.insert("corral_recharge".into(), seq.to_string());
        let intent = CreatePaymentIntent::new(cents, Currency::USD)
            .customer(customer)
            .payment_method(payment_method)
            .off_session(CreatePaymentIntentOffSession::Bool(true))
            .confirm(true)
            .metadata(metadata)
            .description("Corral auto-recharge")
            .customize()
            .request_strategy(key(idempotency_key)?)
            .send(&self.client)
            .await?;
        let status = match intent.status {
            PaymentIntentStatus::Unknown(s) => s,
            known => known.as_str().to_owned(),
        };
        Ok(Charge {
            id: intent.id.to_string(),
            status,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stripe_shared::{ApiErrors, ApiErrorsCode, ApiErrorsType};

    fn answered(status: u16, kind: ApiErrorsType, code: Option<ApiErrorsCode>) -> StripeError {
        let e = ApiErrors {
            advice_code: None,
            charge: None,
            code,
            decline_code: Some("insufficient_funds".into()),
            doc_url: None,
            message: Some("Your card has insufficient funds.".into()),
            network_advice_code: None,
            network_decline_code: None,
            param: None,
            payment_intent: None,
            payment_method: None,
            payment_method_type: None,
            request_log_url: None,
            setup_intent: None,
            source: None,
            type_: kind,
        };
        stripe::StripeError::Stripe(Box::new(e), status).into()
    }

    #[test]
    fn no_answer_429_and_5xx_are_transient_other_4xx_final() {
        let transient = [
            stripe::StripeError::Timeout.into(),
            stripe::StripeError::ClientError("connection refused".into()).into(),
            stripe::StripeError::JSONDeserialize("a proxy's page".into()).into(),
            answered(
                429,
                ApiErrorsType::InvalidRequestError,
                Some(ApiErrorsCode::RateLimit),
            ),
            answered(500, ApiErrorsType::ApiError, None),
            answered(503, ApiErrorsType::ApiError, None),
        ];
        for e in &transient {
            assert!(e.is_transient(), "{e}");
        }
        let declined = answered(
            402,
            ApiErrorsType::CardError,
            Some(ApiErrorsCode::CardDeclined),
        );
        assert!(!declined.is_transient());
        assert!(!answered(400, ApiErrorsType::InvalidRequestError, None).is_transient());
        match declined {
            StripeError::Api { code, message, .. } => {
                assert_eq!(code, "card_declined");
                assert!(message.contains("(insufficient_funds)"), "{message}");
            }
            other => panic!("{other}"),
        }
        // Without a code, the type names it.
        let StripeError::Api { code, .. } = answered(500, ApiErrorsType::ApiError, None) else {
            panic!("not an answer");
        };
        assert_eq!(code, "api_error");
    }
}
