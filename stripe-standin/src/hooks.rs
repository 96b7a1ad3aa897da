//! Test hooks under `/_test/` (not Stripe's API): complete a Checkout session (saving
//! its card when asked to), raise an invoice, set the webhook endpoint, list and deliver events, inject faults, and read
//! the meter events received.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::faults::Fault;
use crate::payments;
use crate::state::{now_s, Endpoint};
use crate::webhooks::{self, Delivery};
use crate::Shared;

/// The hooks.
pub fn router() -> Router<Shared> {
    Router::new()
        .route("/_test/endpoint", post(set_endpoint))
        .route("/_test/checkout/sessions/{id}/complete", post(complete))
        .route("/_test/invoices", post(invoice))
        .route("/_test/events", get(events))
        .route("/_test/events/{id}/deliver", post(deliver))
        .route(
            "/_test/faults",
            post(add_fault).delete(clear_faults).get(faults),
        )
        .route("/_test/meter_events", get(meter_events))
}

#[derive(Deserialize)]
struct EndpointBody {
    url: String,
    secret: String,
    #[serde(default)]
    auto_deliver: bool,
}

async fn set_endpoint(State(s): State<Shared>, Json(b): Json<EndpointBody>) -> StatusCode {
    *s.endpoint.lock().expect("endpoint") = Endpoint {
        url: Some(b.url),
        secret: b.secret,
        auto_deliver: b.auto_deliver,
    };
    StatusCode::NO_CONTENT
}

/// Completes an open Checkout session as a paying customer would, and emits
/// `checkout.session.completed` (a subscription session gets its subscription).
async fn complete(State(s): State<Shared>, Path(id): Path<String>) -> Response {
    let session = {
        let mut o = s.objects.lock().expect("objects");
        let Some(session) = o
            .by_kind
            .get_mut("checkout_sessions")
            .and_then(|m| m.get_mut(&id))
        else {
            return (StatusCode::NOT_FOUND, "no such session").into_response();
        };
        if session["status"] != "open" {
            return (StatusCode::CONFLICT, "session is not open").into_response();
        }
        session["status"] = json!("complete");
        session["payment_status"] = json!(if session["mode"] == "setup" {
            "no_payment_required"
        } else {
            "paid"
        });
        session.clone()
    };
    let mut session = session;
    let params = {
        let o = s.objects.lock().expect("objects");
        o.by_kind
            .get("checkout_params")
            .and_then(|m| m.get(&id))
            .cloned()
            .unwrap_or_default()
    };
    let customer = session["customer"].as_str().unwrap_or_default().to_owned();
    if session["mode"] == "subscription" {
        let sub = json!({
            "id": s.id("sub_"), "object": "subscription", "customer": customer,
            "status": "active", "items": {"data": params["line_items"]}, "created": now_s(),
        });
        session["subscription"] = sub["id"].clone();
        let sub_id = sub["id"].as_str().unwrap_or_default().to_owned();
        s.objects
            .lock()
            .expect("objects")
            .by_kind
            .entry("subscriptions")
            .or_default()
            .insert(sub_id, sub);
    }
    if session["mode"] == "payment" {
        // The payment is a PaymentIntent; with `setup_future_usage` its card is saved
        // on the customer for later off-session charges.
        let future = params["payment_intent_data"]["setup_future_usage"]
            .as_str()
            .map(str::to_owned);
        let card = payments::save_card(&s, &customer);
        let card_id = card["id"].as_str().unwrap_or_default().to_owned();
        if future.is_none() {
            // Used once, not kept: detach it again.
            if let Some(c) = s
                .objects
                .lock()
                .expect("objects")
                .by_kind
                .get_mut("payment_methods")
                .and_then(|m| m.get_mut(&card_id))
            {
                c["customer"] = Value::Null;
            }
        }
        let intent = payments::payment_intent(
            &s,
            session["amount_total"].as_i64().unwrap_or(0),
            &customer,
            Some(&card_id),
            "succeeded",
            json!({}),
            None,
            future.as_deref(),
        );
        session["payment_intent"] = intent["id"].clone();
        let intent = crate::objects::store(&s, "payment_intents", intent);
        webhooks::emit(&s, "payment_intent.succeeded", intent);
    }
    {
        let mut o = s.objects.lock().expect("objects");
        if let Some(stored) = o
            .by_kind
            .get_mut("checkout_sessions")
            .and_then(|m| m.get_mut(&id))
        {
            *stored = session.clone();
        }
    }
    Json(webhooks::emit(&s, "checkout.session.completed", session)).into_response()
}

#[derive(Deserialize)]
struct InvoiceBody {
    customer: String,
    paid: bool,
    #[serde(default)]
    amount_due: i64,
}

/// An invoice for `customer`, paid or failed: emits `invoice.paid` or
/// `invoice.payment_failed`.
async fn invoice(State(s): State<Shared>, Json(b): Json<InvoiceBody>) -> Response {
    let status = if b.paid { "paid" } else { "open" };
    let invoice = json!({
        "id": s.id("in_"), "object": "invoice", "customer": b.customer, "status": status,
        "amount_due": b.amount_due, "attempt_count": 1, "created": now_s(),
    });
    {
        let mut o = s.objects.lock().expect("objects");
        let id = invoice["id"].as_str().unwrap_or_default().to_owned();
        o.by_kind
            .entry("invoices")
            .or_default()
            .insert(id, invoice.clone());
    }
    let kind = if b.paid {
        "invoice.paid"
    } else {
        "invoice.payment_failed"
    };
    Json(webhooks::emit(&s, kind, invoice)).into_response()
}

async fn events(State(s): State<Shared>) -> Json<Value> {
    Json(json!({"data": s.objects.lock().expect("objects").events.clone()}))
}

async fn deliver(
    State(s): State<Shared>,
    Path(id): Path<String>,
    body: Option<Json<Delivery>>,
) -> Response {
    let how = body.map(|Json(d)| d).unwrap_or_default();
    match webhooks::deliver(&s, &id, how).await {
        Ok(status) => Json(json!({"status": status})).into_response(),
        Err(error) => (StatusCode::BAD_GATEWAY, error.to_string()).into_response(),
    }
}

async fn add_fault(State(s): State<Shared>, Json(f): Json<Fault>) -> StatusCode {
    s.faults.lock().expect("faults").push(f);
    StatusCode::NO_CONTENT
}

async fn clear_faults(State(s): State<Shared>) -> StatusCode {
    s.faults.lock().expect("faults").clear();
    StatusCode::NO_CONTENT
}

async fn faults(State(s): State<Shared>) -> Json<Value> {
    Json(json!({"faults": s.faults.lock().expect("faults").clone()}))
}

async fn meter_events(State(s): State<Shared>) -> Json<Value> {
    Json(json!({"data": s.objects.lock().expect("objects").meter_events.clone()}))
}
