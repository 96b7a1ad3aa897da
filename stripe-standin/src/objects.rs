//! Stripe's routes as Corral uses them: customers, Checkout and portal sessions,
//! subscriptions and invoices (read), billing meters, meter events (identifier
//! de-duplication, the 35-day / 5-minute timestamp window) and meter event summaries.
//! Objects have Stripe's shape (`id`, `object`, `created`, `livemode` and every field
//! Stripe always sends, `null` where it would be), so typed clients can read them.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::HashMap;

use crate::form::{self, text};
use crate::state::{now_s, MeterEvent};
use crate::{stripe_error, Shared};

/// Stripe's routes.
pub fn router() -> Router<Shared> {
    Router::new()
        .route("/v1/customers", post(create_customer))
        .route("/v1/customers/{id}", read("customers"))
        .route("/v1/checkout/sessions", post(create_checkout))
        .route("/v1/checkout/sessions/{id}", read("checkout_sessions"))
        .route("/v1/checkout/sessions/{id}/line_items", get(line_items))
        .route("/v1/billing_portal/sessions", post(create_portal))
        .route("/v1/subscriptions", list("subscriptions"))
        .route("/v1/invoices", list("invoices"))
        .route("/v1/billing/meters", list("meters").post(create_meter))
        .route("/v1/billing/meter_events", post(create_meter_event))
        .route("/v1/billing/meters/{id}/event_summaries", get(summaries))
        .merge(crate::payments::router())
}

pub(crate) fn missing(param: &str) -> Response {
    stripe_error(
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        "parameter_missing",
        &format!("Missing required param: {param}."),
    )
}

pub(crate) fn no_such(kind: &str, id: &str) -> Response {
    stripe_error(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        "resource_missing",
        &format!("No such {kind}: '{id}'"),
    )
}

pub(crate) fn store(s: &Shared, kind: &'static str, object: Value) -> Value {
    let id = object["id"].as_str().unwrap_or_default().to_owned();
    let mut o = s.objects.lock().expect("objects");
    o.by_kind
        .entry(kind)
        .or_default()
        .insert(id, object.clone());
    object
}

pub(crate) fn exists(s: &Shared, kind: &'static str, id: &str) -> bool {
    let o = s.objects.lock().expect("objects");
    o.by_kind.get(kind).is_some_and(|m| m.contains_key(id))
}

pub(crate) fn read(kind: &'static str) -> MethodRouter<Shared> {
    get(
        move |State(s): State<Shared>, Path(id): Path<String>| async move {
            let o = s.objects.lock().expect("objects");
            match o.by_kind.get(kind).and_then(|m| m.get(&id)) {
                Some(v) => Json(v.clone()).into_response(),
                None => no_such(kind, &id),
            }
        },
    )
}

pub(crate) fn list(kind: &'static str) -> MethodRouter<Shared> {
    get(
        move |State(s): State<Shared>, Query(q): Query<HashMap<String, String>>| async move {
            let o = s.objects.lock().expect("objects");
            let data: Vec<Value> = o
                .by_kind
                .get(kind)
                .map(|m| {
                    m.values()
                        .filter(|v| {
                            q.get("customer")
                                .is_none_or(|c| v["customer"] == c.as_str())
                        })
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            let url = format!("/v1/{kind}");
            Json(json!({"object": "list", "data": data, "has_more": false, "url": url}))
                .into_response()
        },
    )
}

async fn create_customer(State(s): State<Shared>, body: Bytes) -> Response {
    let p = form::parse(&body);
    let id = s.id("cus_");
    let customer = json!({
        "id": id, "object": "customer", "created": now_s(), "livemode": false,
        "address": null, "balance": 0, "currency": null, "default_source": null,
        "delinquent": false, "description": p.get("description"), "discount": null,
        "email": p.get("email"), "invoice_prefix": id.trim_start_matches("cus_").to_uppercase(),
        "invoice_settings": {
            "custom_fields": null, "default_payment_method": null, "footer": null,
            "rendering_options": null,
        },
        "metadata": p.get("metadata").cloned().unwrap_or(json!({})),
        "name": p.get("name"), "next_invoice_sequence": 1, "phone": null,
        "preferred_locales": [], "shipping": null, "tax_exempt": "none", "test_clock": null,
    });
    Json(store(&s, "customers", customer)).into_response()
}

async fn create_checkout(State(s): State<Shared>, body: Bytes) -> Response {
    let p = form::parse(&body);
    let Some(mode) = text(&p, "mode") else {
        return missing("mode");
    };
    if !["payment", "setup", "subscription"].contains(&mode) {
        return stripe_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "parameter_invalid_empty",
            "Invalid mode.",
        );
    }
    for param in ["success_url", "customer"] {
        if text(&p, param).is_none() {
            return missing(param);
        }
    }
    let customer = text(&p, "customer").unwrap_or_default();
    if !exists(&s, "customers", customer) {
        return no_such("customer", customer);
    }
    let items = p["line_items"].as_array().cloned().unwrap_or_default();
    if mode != "setup" && items.is_empty() {
        return missing("line_items");
    }
    // Only inline prices have an amount here; a subscription's metered price is 0 now.
    let amount: i64 = items
        .iter()
        .map(|i| {
            let unit = i["price_data"]["unit_amount"]
                .as_str()
                .and_then(|v| v.parse::<i64>().ok());
            let qty = i["quantity"]
                .as_str()
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(1);
            unit.unwrap_or(0) * qty
        })
        .sum();
    let id = s.id("cs_test_");
    let now = now_s();
    let session = json!({
        "id": id, "object": "checkout.session", "created": now, "livemode": false,
        "mode": mode, "status": "open", "payment_status": "unpaid",
        "customer": customer, "customer_email": null, "customer_creation": null,
        "amount_subtotal": amount, "amount_total": amount, "currency": "usd",
        "client_reference_id": p.get("client_reference_id"),
        "metadata": p.get("metadata").cloned().unwrap_or(json!({})),
        "success_url": p.get("success_url"), "cancel_url": p.get("cancel_url"),
        "automatic_tax": {"enabled": false, "liability": null, "provider": null, "status": null},
        "custom_fields": [],
        "custom_text": {
            "after_submit": null, "shipping_address": null, "submit": null,
            "terms_of_service_acceptance": null,
        },
        "expires_at": now + 24 * 3600, "payment_method_types": ["card"],
        "shipping_options": [], "payment_intent": null, "setup_intent": null,
        "subscription": null, "invoice": null, "locale": null, "ui_mode": "hosted_page",
        "url": format!("https://checkout.stripe.com/c/pay/{id}"),
    });
    // What Stripe keeps but does not show on the session (line items are a separate
    // list; `payment_intent_data` goes to the PaymentIntent made on completion).
    let params = json!({
        "id": id, "line_items": items,
        "payment_intent_data": p.get("payment_intent_data").cloned().unwrap_or(json!({})),
    });
    store(&s, "checkout_params", params);
    Json(store(&s, "checkout_sessions", session)).into_response()
}

/// A session's line items, as Stripe lists them apart from the session.
async fn line_items(State(s): State<Shared>, Path(id): Path<String>) -> Response {
    let o = s.objects.lock().expect("objects");
    let Some(params) = o.by_kind.get("checkout_params").and_then(|m| m.get(&id)) else {
        return no_such("checkout session", &id);
    };
    let number = |v: &Value| v.as_str().and_then(|t| t.parse::<i64>().ok());
    let data: Vec<Value> = params["line_items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let unit = number(&item["price_data"]["unit_amount"]);
            let quantity = number(&item["quantity"]).unwrap_or(1);
            json!({
                "id": format!("li_{id}_{i}"), "object": "item", "quantity": quantity,
                "currency": "usd", "amount_total": unit.unwrap_or(0) * quantity,
                "description": item["price_data"]["product_data"]["name"],
                "price": {"id": item["price"], "object": "price", "unit_amount": unit},
            })
        })
        .collect();
    let url = format!("/v1/checkout/sessions/{id}/line_items");
    Json(json!({"object": "list", "data": data, "has_more": false, "url": url})).into_response()
}

async fn create_portal(State(s): State<Shared>, body: Bytes) -> Response {
    let p = form::parse(&body);
    let Some(customer) = text(&p, "customer") else {
        return missing("customer");
    };
    if !exists(&s, "customers", customer) {
        return no_such("customer", customer);
    }
    let id = s.id("bps_");
    let session = json!({
        "id": id, "object": "billing_portal.session", "created": now_s(), "livemode": false,
        "configuration": "bpc_standin_default", "customer": customer, "flow": null,
        "locale": null, "on_behalf_of": null, "return_url": p.get("return_url"),
        "url": format!("https://billing.stripe.com/p/session/{id}"),
    });
    Json(store(&s, "portal_sessions", session)).into_response()
}

async fn create_meter(State(s): State<Shared>, body: Bytes) -> Response {
    let p = form::parse(&body);
    let Some(event_name) = text(&p, "event_name") else {
        return missing("event_name");
    };
    let meter = json!({
        "id": s.id("mtr_"), "object": "billing.meter", "created": now_s(),
        "livemode": false, "updated": now_s(), "event_name": event_name,
        "event_time_window": null,
        "display_name": p.get("display_name"), "status": "active",
        "default_aggregation": {"formula": "sum"},
        "customer_mapping": {"event_payload_key": "stripe_customer_id", "type": "by_id"},
        "value_settings": {"event_payload_key": "value"},
        "status_transitions": {"deactivated_at": null},
    });
    Json(store(&s, "meters", meter)).into_response()
}

/// Stripe accepts events from 35 days back to 5 minutes ahead.
const PAST_S: i64 = 35 * 24 * 3600;
const FUTURE_S: i64 = 5 * 60;

async fn create_meter_event(State(s): State<Shared>, body: Bytes) -> Response {
    let p = form::parse(&body);
    let Some(event_name) = text(&p, "event_name") else {
        return missing("event_name");
    };
    let Some(customer) = p["payload"]["stripe_customer_id"].as_str() else {
        return missing("payload[stripe_customer_id]");
    };
    let Some(value) = p["payload"]["value"]
        .as_str()
        .and_then(|v| v.parse::<i64>().ok())
    else {
        return missing("payload[value]");
    };
    let now = now_s();
    let timestamp = text(&p, "timestamp")
        .and_then(|t| t.parse().ok())
        .unwrap_or(now);
    if timestamp < now - PAST_S || timestamp > now + FUTURE_S {
        return stripe_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "timestamp_out_of_range",
            "Timestamp must be within the past 35 days and no more than 5 minutes in the future.",
        );
    }
    let identifier = text(&p, "identifier").map_or_else(|| s.id("mev_"), str::to_owned);
    let mut o = s.objects.lock().expect("objects");
    let known_meter = o
        .by_kind
        .get("meters")
        .is_some_and(|m| m.values().any(|v| v["event_name"] == event_name));
    if !known_meter {
        return no_such("billing meter with event_name", event_name);
    }
    if !o
        .by_kind
        .get("customers")
        .is_some_and(|m| m.contains_key(customer))
    {
        return no_such("customer", customer);
    }
    if !o.identifiers.insert(identifier.clone()) {
        return stripe_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "resource_already_exists",
            &format!("An event with identifier {identifier} already exists."),
        );
    }
    let event = MeterEvent {
        identifier: identifier.clone(),
        event_name: event_name.to_owned(),
        customer: customer.to_owned(),
        value,
        timestamp,
    };
    o.meter_events.push(event);
    Json(json!({
        "object": "billing.meter_event", "created": now, "livemode": false,
        "event_name": event_name, "identifier": identifier,
        "payload": {"stripe_customer_id": customer, "value": value.to_string()},
        "timestamp": timestamp,
    }))
    .into_response()
}

async fn summaries(
    State(s): State<Shared>,
    Path(meter_id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (Some(customer), Some(start), Some(end)) = (
        q.get("customer"),
        q.get("start_time").and_then(|t| t.parse::<i64>().ok()),
        q.get("end_time").and_then(|t| t.parse::<i64>().ok()),
    ) else {
        return missing("customer, start_time and end_time");
    };
    if start % 60 != 0 || end % 60 != 0 {
        return stripe_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "parameter_invalid",
            "start_time and end_time must be aligned to minute boundaries.",
        );
    }
    let o = s.objects.lock().expect("objects");
    let Some(meter) = o.by_kind.get("meters").and_then(|m| m.get(&meter_id)) else {
        return no_such("billing meter", &meter_id);
    };
    let total: i64 = o
        .meter_events
        .iter()
        .filter(|e| meter["event_name"] == e.event_name.as_str() && &e.customer == customer)
        .filter(|e| e.timestamp >= start && e.timestamp < end)
        .map(|e| e.value)
        .sum();
    let id = format!("mtrusg_{meter_id}_{customer}_{start}");
    Json(json!({
        "object": "list", "has_more": false,
        "url": format!("/v1/billing/meters/{meter_id}/event_summaries"),
        "data": [{
            "id": id, "object": "billing.meter_event_summary", "livemode": false,
            "meter": meter_id, "aggregated_value": total, "start_time": start,
            "end_time": end,
        }],
    }))
    .into_response()
}
