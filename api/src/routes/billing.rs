//! Billing over HTTP: the tenant's billing, Checkout and portal URLs, auto-recharge,
//! and Stripe's signed webhook (no bearer token: the signature is the credential).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::billing::recharge::{AutoRechargeRequest, AutoRechargeView};
use crate::billing::view::BillingView;
use crate::billing::webhook::Applied;
use crate::billing::CheckoutRequest;
use crate::error::{problem_response, ApiResult};
use crate::extract::{AppJson, Billing, Scoped};
use crate::state::AppState;

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(show))
        .routes(routes!(checkout))
        .routes(routes!(portal))
        .routes(routes!(auto_recharge))
        .routes(routes!(webhook))
        .routes(routes!(stripe_webhook))
}

/// A URL to send the person to.
#[derive(Serialize, ToSchema)]
pub struct UrlAnswer {
    /// Stripe's page.
    url: String,
}

/// Whether an event changed anything (a duplicate changes nothing, and is still 200).
#[derive(Serialize, ToSchema)]
pub struct WebhookAnswer {
    /// `true` when this delivery changed the tenant's billing.
    applied: bool,
}

/// The tenant's billing: mode, prepaid balance or invoice estimate, payment state.
#[utoipa::path(get, path = "/v1/billing", tag = "money", security(("bearer" = [])),
    responses((status = 200, body = BillingView)))]
async fn show(
    State(state): State<AppState>,
    Scoped(caller, ..): Scoped<Billing>,
) -> ApiResult<AppJson<BillingView>> {
    Ok(AppJson(state.billing.view(&caller.tenant_id).await?))
}

/// A Stripe Checkout URL: prepaid credit of `amount_usd`, or (metered mode) a card and
/// the metered subscription. 404 when billing is off.
#[utoipa::path(post, path = "/v1/billing/checkout", tag = "money", security(("bearer" = [])),
    request_body = CheckoutRequest,
    responses((status = 200, body = UrlAnswer), (status = 404, body = crate::error::Problem),
        (status = 422, body = crate::error::Problem), (status = 503, body = crate::error::Problem)))]
async fn checkout(
    State(state): State<AppState>,
    Scoped(caller, ..): Scoped<Billing>,
    body: Bytes,
) -> ApiResult<AppJson<UrlAnswer>> {
    // An empty body is fine in metered mode (nothing to choose there).
    let request: CheckoutRequest = if body.iter().all(u8::is_ascii_whitespace) {
        CheckoutRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            crate::error::ApiError::Validation(format!("the body is not valid: {e}"))
        })?
    };
    let url = state.billing.checkout(&caller.tenant_id, request).await?;
    Ok(AppJson(UrlAnswer { url }))
}

/// A Stripe billing portal URL (cards, invoices). 404 when billing is off.
#[utoipa::path(post, path = "/v1/billing/portal", tag = "money", security(("bearer" = [])),
    responses((status = 200, body = UrlAnswer), (status = 404, body = crate::error::Problem),
        (status = 503, body = crate::error::Problem)))]
async fn portal(
    State(state): State<AppState>,
    Scoped(caller, ..): Scoped<Billing>,
) -> ApiResult<AppJson<UrlAnswer>> {
    let url = state.billing.portal(&caller.tenant_id).await?;
    Ok(AppJson(UrlAnswer { url }))
}

/// Prepaid: turns auto-recharge on (`below_usd`, `amount_usd`: when the balance falls
/// below the one, the saved card is charged the other, off-session) or off. 409 without
/// a saved card (a paid Checkout saves one) or in metered mode; 404 when billing is off.
#[utoipa::path(put, path = "/v1/billing/auto_recharge", tag = "money", security(("bearer" = [])),
    request_body = AutoRechargeRequest,
    responses((status = 200, body = AutoRechargeView), (status = 404, body = crate::error::Problem),
        (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem),
        (status = 503, body = crate::error::Problem)))]
async fn auto_recharge(
    State(state): State<AppState>,
    Scoped(caller, ..): Scoped<Billing>,
    AppJson(request): AppJson<AutoRechargeRequest>,
) -> ApiResult<AppJson<AutoRechargeView>> {
    let view = state
        .billing
        .set_auto_recharge(&caller.tenant_id, request)
        .await?;
    Ok(AppJson(view))
}

/// Stripe's events, signed with `CORRAL_STRIPE_WEBHOOK_SECRET`: applied once each, in
/// any order. A bad or missing signature, or a timestamp more than 300 s away, is a
/// 400 (`invalid_signature`) and changes nothing.
#[utoipa::path(post, path = "/v1/billing/webhook", tag = "money",
    request_body(content = String, content_type = "application/json"),
    params(("Stripe-Signature" = String, Header)),
    responses((status = 200, body = WebhookAnswer), (status = 400, body = crate::error::Problem)))]
async fn webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    receive(state, headers, body).await
}

/// The same as `POST /v1/billing/webhook` (the path `API.md` names).
#[utoipa::path(post, path = "/v1/stripe/webhook", tag = "money",
    request_body(content = String, content_type = "application/json"),
    params(("Stripe-Signature" = String, Header)),
    responses((status = 200, body = WebhookAnswer), (status = 400, body = crate::error::Problem)))]
async fn stripe_webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    receive(state, headers, body).await
}

async fn receive(state: AppState, headers: HeaderMap, body: Bytes) -> ApiResult<Response> {
    let signature = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    Ok(match state.billing.webhook(signature, &body).await? {
        Ok(applied) => AppJson(WebhookAnswer {
            applied: applied == Applied::Changed,
        })
        .into_response(),
        Err(why) => problem_response(
            StatusCode::BAD_REQUEST,
            "invalid_signature",
            why.to_string(),
        ),
    })
}
