//! Cards and payments: the card a Checkout payment saves for off-session use, and
//! PaymentIntents (created, confirmed at once against a saved card, succeeded or
//! declined) with their `payment_intent.succeeded` / `payment_intent.payment_failed`
//! events.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json, Router};
use serde_json::{json, Value};

use crate::faults::Declined;
use crate::form::{self, text};
use crate::objects::{list, missing, no_such, read, store};
use crate::state::now_s;
use crate::{stripe_error, webhooks, Shared};

/// Stripe's smallest USD charge, in cents.
const MIN_CENTS: i64 = 50;

/// The payment routes.
pub fn router() -> Router<Shared> {
    Router::new()
        .route(
            "/v1/payment_intents",
            list("payment_intents").post(create_payment_intent),
        )
        .route("/v1/payment_intents/{id}", read("payment_intents"))
        .route("/v1/payment_methods/{id}", read("payment_methods"))
}

/// A test card, attached to `customer` (as Checkout does with `setup_future_usage`).
pub fn save_card(s: &Shared, customer: &str) -> Value {
    let card = json!({
        "id": s.id("pm_"), "object": "payment_method", "created": now_s(), "livemode": false,
        "type": "card", "customer": customer, "metadata": {},
        "allow_redisplay": "unspecified",
        "billing_details": {"address": null, "email": null, "name": null, "phone": null,
            "tax_id": null},
        "card": {"brand": "visa", "exp_month": 12, "exp_year": 2034, "funding": "credit",
            "last4": "4242", "country": "US", "display_brand": "visa"},
    });
    store(s, "payment_methods", card)
}

/// A PaymentIntent in Stripe's shape.
#[allow(clippy::too_many_arguments)]
pub fn payment_intent(
    s: &Shared,
    amount: i64,
    customer: &str,
    payment_method: Option<&str>,
    status: &str,
    metadata: Value,
    description: Option<&str>,
    setup_future_usage: Option<&str>,
) -> Value {
    let id = s.id("pi_");
    let received = if status == "succeeded" { amount } else { 0 };
    json!({
        "id": id, "object": "payment_intent", "created": now_s(), "livemode": false,
        "amount": amount, "amount_capturable": 0, "amount_received": received,
        "currency": "usd", "customer": customer, "payment_method": payment_method,
        "status": status, "metadata": metadata, "description": description,
        "setup_future_usage": setup_future_usage, "capture_method": "automatic",
        "confirmation_method": "automatic", "payment_method_types": ["card"],
        "client_secret": format!("{id}_secret_standin"), "canceled_at": null,
        "cancellation_reason": null, "last_payment_error": null, "latest_charge": null,
        "next_action": null, "receipt_email": null, "review": null, "shipping": null,
        "statement_descriptor": null, "statement_descriptor_suffix": null,
        "application": null, "application_fee_amount": null, "on_behalf_of": null,
        "transfer_data": null, "transfer_group": null, "processing": null,
    })
}

fn card_of(s: &Shared, id: &str) -> Option<Value> {
    let o = s.objects.lock().expect("objects");
    o.by_kind
        .get("payment_methods")
        .and_then(|m| m.get(id))
        .cloned()
}

async fn create_payment_intent(
    State(s): State<Shared>,
    declined: Option<Extension<Declined>>,
    body: Bytes,
) -> Response {
    let p = form::parse(&body);
    let Some(amount) = text(&p, "amount").and_then(|a| a.parse::<i64>().ok()) else {
        return missing("amount");
    };
    if text(&p, "currency") != Some("usd") {
        return missing("currency (this stand-in charges usd)");
    }
    if amount < MIN_CENTS {
        return stripe_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "amount_too_small",
            "Amount must be at least $0.50 usd.",
        );
    }
    let Some(customer) = text(&p, "customer") else {
        return missing("customer");
    };
    if !crate::objects::exists(&s, "customers", customer) {
        return no_such("customer", customer);
    }
    let method = text(&p, "payment_method");
    if let Some(id) = method {
        match card_of(&s, id) {
            Some(card) if card["customer"] == customer => {}
            Some(_) => {
                return stripe_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request_error",
                    "payment_method_invalid_parameter",
                    "The provided PaymentMethod belongs to another customer.",
                )
            }
            None => return no_such("PaymentMethod", id),
        }
    }
    let confirm = text(&p, "confirm") == Some("true");
    if confirm && method.is_none() {
        return missing("payment_method");
    }
    let metadata = p.get("metadata").cloned().unwrap_or(json!({}));
    let description = text(&p, "description");
    if !confirm {
        let intent = payment_intent(
            &s,
            amount,
            customer,
            method,
            "requires_confirmation",
            metadata,
            description,
            None,
        );
        return Json(store(&s, "payment_intents", intent)).into_response();
    }
    if declined.is_some() {
        let mut intent = payment_intent(
            &s,
            amount,
            customer,
            None,
            "requires_payment_method",
            metadata,
            description,
            None,
        );
        let error = json!({
            "type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds",
            "message": "Your card has insufficient funds.", "payment_method": card_of(&s, method.unwrap_or_default()),
        });
        intent["last_payment_error"] = error.clone();
        let intent = store(&s, "payment_intents", intent);
        webhooks::emit(&s, "payment_intent.payment_failed", intent.clone());
        let mut body = error;
        body["payment_intent"] = intent;
        return (StatusCode::PAYMENT_REQUIRED, Json(json!({"error": body}))).into_response();
    }
    let intent = payment_intent(
        &s,
        amount,
        customer,
        method,
        "succeeded",
        metadata,
        description,
        None,
    );
    let intent = store(&s, "payment_intents", intent);
    webhooks::emit(&s, "payment_intent.succeeded", intent.clone());
    Json(intent).into_response()
}
