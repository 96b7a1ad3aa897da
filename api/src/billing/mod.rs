//! Billing through Stripe: the operator's mode, each tenant's Stripe customer, prepaid
//! credit bought through Checkout (and auto-recharged with the saved card), the billing
//! portal and what `GET /v1/billing` shows.
//! Corral's ledger stays the source of truth and its caps the enforcement: prepaid
//! credit is a second cap of the hard-cap rule (metering), and Stripe only collects.

pub mod chores;
pub mod recharge;
pub mod stripe;
pub mod view;
pub mod webhook;

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use sqlx::SqlitePool;
use utoipa::ToSchema;

use crate::config::Config;
use crate::db::billing as db;
use crate::error::{ApiError, ApiResult};
use crate::names::TenantId;
use crate::sprites::Sprites;
use stripe::{Checkout, Purchase, StripeClient, StripeError};

/// Nano-dollars in one US cent (Stripe's amounts are cents).
pub const NANOS_PER_CENT: i64 = 10_000_000;

/// The operator's billing mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// No billing (also whenever no Stripe key is configured): caps only, as before.
    Off,
    /// Tenants buy credit through Checkout; the balance is a cap.
    Prepaid,
    /// Usage goes to a Stripe billing meter and is invoiced.
    Metered,
}

impl Mode {
    /// The mode configuration sets: `off` without a Stripe key, whatever the mode says.
    pub fn of(config: &Config) -> Mode {
        if config.stripe_secret_key.is_none() {
            return Mode::Off;
        }
        match config.billing_mode.as_str() {
            "prepaid" => Mode::Prepaid,
            "metered" => Mode::Metered,
            _ => Mode::Off,
        }
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::Prepaid => "prepaid",
            Mode::Metered => "metered",
        }
    }
}

/// `POST /v1/billing/checkout`'s body.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct CheckoutRequest {
    /// Prepaid mode: dollars of credit to buy, e.g. `"25.00"` (a string or a number).
    #[schema(value_type = Option<String>, example = "25.00")]
    pub amount_usd: Option<serde_json::Value>,
}

/// The billing service of one process.
pub struct Billing {
    /// The mode in force.
    pub mode: Mode,
    pool: SqlitePool,
    config: Arc<Config>,
    client: Option<StripeClient>,
    sprites: Option<Arc<Sprites>>,
}

impl Billing {
    /// Billing from configuration; a mode other than `off` without a Stripe key, or an
    /// unknown mode, is a configuration error (silently billing nobody would be worse).
    pub fn new(
        pool: SqlitePool,
        config: Arc<Config>,
        sprites: Option<Arc<Sprites>>,
    ) -> anyhow::Result<Self> {
        let mode = Mode::of(&config);
        match config.billing_mode.as_str() {
            "off" | "prepaid" | "metered" => {}
            other => anyhow::bail!("CORRAL_BILLING_MODE {other:?}: use off, prepaid or metered"),
        }
        if config.billing_mode != "off" && mode == Mode::Off {
            anyhow::bail!(
                "CORRAL_BILLING_MODE is {} but CORRAL_STRIPE_SECRET_KEY is not set",
                config.billing_mode
            );
        }
        if mode != Mode::Off && config.stripe_webhook_secret.is_none() {
            anyhow::bail!("billing needs CORRAL_STRIPE_WEBHOOK_SECRET to trust Stripe's events");
        }
        let client = match &config.stripe_secret_key {
            Some(key) if mode != Mode::Off => Some(StripeClient::new(
                &config.stripe_api_base,
                key.clone(),
                Duration::from_millis(config.stripe_timeout_ms.max(100)),
            )?),
            _ => None,
        };
        Ok(Self {
            mode,
            pool,
            config,
            client,
            sprites,
        })
    }

    /// The Stripe client; billing that is off is not found (as `API.md` says).
    fn client(&self) -> ApiResult<&StripeClient> {
        self.client
            .as_ref()
            .ok_or_else(|| ApiError::NotFound("billing is not configured on this server".into()))
    }

    /// The tenant's Stripe customer, created on first use.
    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    pub async fn customer(&self, tenant: &TenantId) -> ApiResult<String> {
        let client = self.client()?;
        if let Some(id) = db::account(&self.pool, &tenant.0)
            .await?
            .and_then(|a| a.customer_id)
        {
            return Ok(id);
        }
        let email = db::tenant_email(&self.pool, &tenant.0)
            .await?
            .ok_or_else(|| ApiError::not_found("tenant"))?;
        let id = client
            .create_customer(&tenant.0, &email)
            .await
            .map_err(stripe_unavailable)?;
        db::set_customer(&self.pool, &tenant.0, &id, corral_metering::now_ms()).await?;
        // Re-read: a racing call may have stored the same customer first.
        Ok(db::account(&self.pool, &tenant.0)
            .await?
            .and_then(|a| a.customer_id)
            .unwrap_or(id))
    }

    /// A Checkout URL: credit in prepaid mode, a card and the metered subscription in
    /// metered mode.
    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    pub async fn checkout(&self, tenant: &TenantId, request: CheckoutRequest) -> ApiResult<String> {
        let client = self.client()?;
        let purchase = match self.mode {
            Mode::Prepaid => {
                let raw = request.amount_usd.ok_or_else(|| {
                    ApiError::Validation(
                        "amount_usd is required: the dollars of credit to buy".into(),
                    )
                })?;
                // The card is kept for auto-recharge (off-session charges later).
                Purchase::Credit {
                    cents: parse_cents(&raw, "amount_usd")?,
                    save_card: true,
                }
            }
            Mode::Metered => {
                let account = db::account(&self.pool, &tenant.0).await?;
                if account.and_then(|a| a.subscription_id).is_some() {
                    return Err(ApiError::Conflict(
                        "the tenant already has a subscription; change its card in the portal"
                            .into(),
                    ));
                }
                let price = self.config.stripe_metered_price.clone().ok_or_else(|| {
                    ApiError::Unavailable(
                        "the operator has not set CORRAL_STRIPE_METERED_PRICE".into(),
                    )
                })?;
                Purchase::Subscription { price }
            }
            Mode::Off => return Err(ApiError::NotFound("billing is not configured".into())),
        };
        let customer = self.customer(tenant).await?;
        let base = self.config.public_url.trim_end_matches('/');
        let key = format!("corral-checkout-{}", uuid::Uuid::new_v4());
        client
            .checkout(Checkout {
                customer: &customer,
                tenant: &tenant.0,
                purchase,
                success_url: format!("{base}/?billing=done"),
                cancel_url: format!("{base}/?billing=cancelled"),
                idempotency_key: &key,
            })
            .await
            .map_err(stripe_unavailable)
    }

    /// A billing portal URL for the tenant's customer.
    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    pub async fn portal(&self, tenant: &TenantId) -> ApiResult<String> {
        let client = self.client()?;
        let customer = self.customer(tenant).await?;
        let back = format!("{}/", self.config.public_url.trim_end_matches('/'));
        client
            .portal(&customer, &back)
            .await
            .map_err(stripe_unavailable)
    }

    /// The pool (for the chores and the view).
    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// The settings (for the chores and the view).
    pub(crate) fn config(&self) -> &Config {
        &self.config
    }
}

/// A Stripe failure as the caller's 503; the detail (never a key) goes to the log.
fn stripe_unavailable(error: StripeError) -> ApiError {
    tracing::warn!(%error, "Stripe call failed");
    ApiError::Unavailable("Stripe did not answer; try again in a moment".into())
}

/// Dollars (`"25"`, `"25.50"` or a number) in cents, between $1 and $10,000; `name`
/// is the field, for the error.
pub(crate) fn parse_cents(raw: &serde_json::Value, name: &str) -> ApiResult<i64> {
    let text = match raw {
        serde_json::Value::String(s) => s.trim().to_owned(),
        serde_json::Value::Number(n) => n.to_string(),
        _ => String::new(),
    };
    let bad = || ApiError::Validation(format!("{name} {raw} is not dollars like 25.00"));
    let (whole, frac) = text.split_once('.').unwrap_or((&text, ""));
    let digits = |s: &str| !s.is_empty() && s.len() <= 6 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !(frac.is_empty() || (frac.len() <= 2 && digits(frac))) {
        return Err(bad());
    }
    let cents = whole.parse::<i64>().map_err(|_| bad())? * 100
        + format!("{frac:0<2}").parse::<i64>().map_err(|_| bad())?;
    if !(100..=1_000_000).contains(&cents) {
        return Err(ApiError::Validation(format!(
            "{name} must be between 1.00 and 10000.00"
        )));
    }
    Ok(cents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_exact_cents() {
        let cents = |v: serde_json::Value| parse_cents(&v, "amount_usd").ok();
        assert_eq!(cents("25".into()), Some(2500));
        assert_eq!(cents("25.5".into()), Some(2550));
        assert_eq!(cents("0.99".into()), None);
        assert_eq!(cents(serde_json::json!(12.34)), Some(1234));
        assert_eq!(cents("1.234".into()), None);
        assert_eq!(cents("-5".into()), None);
        assert_eq!(cents("20000".into()), None);
    }
}
