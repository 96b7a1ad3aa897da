//! Auto-recharge in prepaid mode: a tenant opts in with a threshold and an amount; when
//! its balance falls below the threshold Corral charges the card its last Checkout
//! saved, off-session, once per numbered recharge (the Idempotency-Key names the tenant
//! and the number). The credit is added only by `payment_intent.succeeded` (see
//! `webhook`); a declined card turns auto-recharge off, says why and mails the tenant.
//! The hard-cap rule is untouched: sprites still pause before the credit runs out.

use serde::{Deserialize, Serialize};
use sqlx::SqliteConnection;
use utoipa::ToSchema;

use super::stripe::StripeError;
use super::{parse_cents, stripe_unavailable, Billing, Mode, NANOS_PER_CENT};
use crate::db::billing as accounts;
use crate::db::recharge as db;
use crate::error::{ApiError, ApiResult};
use crate::names::TenantId;
use corral_metering::{now_ms, Nanos, Period};

/// `PUT /v1/billing/auto_recharge`'s body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AutoRechargeRequest {
    /// Turn auto-recharge on or off.
    pub enabled: bool,
    /// Recharge when the balance falls below this many dollars (`"5"`, `"5.50"` or a
    /// number, 1 to 10000); required to turn it on.
    #[schema(value_type = Option<String>, example = "5.00")]
    pub below_usd: Option<serde_json::Value>,
    /// Dollars to charge each time (1 to 10000); required to turn it on.
    #[schema(value_type = Option<String>, example = "20.00")]
    pub amount_usd: Option<serde_json::Value>,
}

/// A tenant's auto-recharge as `GET /v1/billing` shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AutoRechargeView {
    /// On: the balance is topped up with the saved card when it falls below `below`.
    pub enabled: bool,
    /// The threshold, nano-dollars.
    pub below_nanos: Option<i64>,
    /// The threshold in dollars.
    pub below_usd: Option<String>,
    /// Charged each time, nano-dollars.
    pub amount_nanos: Option<i64>,
    /// The amount in dollars.
    pub amount_usd: Option<String>,
    /// A card is saved (a paid Checkout saves it for off-session charges).
    pub card_saved: bool,
    /// Why Corral turned it off (a declined card), if it did.
    pub off_reason: Option<String>,
    /// The newest recharge.
    pub last: Option<RechargeView>,
}

/// One recharge.
#[derive(Debug, Serialize, ToSchema)]
pub struct RechargeView {
    /// Its number (per tenant).
    pub seq: i64,
    /// `pending` (being charged), `charged` (waiting for Stripe's confirmation),
    /// `succeeded` (credited) or `failed`.
    pub state: String,
    /// Nano-dollars.
    pub amount_nanos: i64,
    /// Stripe's PaymentIntent.
    pub payment_intent: Option<String>,
    /// The last error (a refusal, or why a try must be repeated).
    pub error: Option<String>,
    /// When it last changed (RFC 3339).
    pub updated_at: String,
}

/// Least and most seconds between tries of a recharge Stripe did not answer.
const RETRY_MIN_MS: i64 = 1_000;
const RETRY_MAX_MS: i64 = 60_000;

impl Billing {
    /// Turns auto-recharge on or off (prepaid mode only). Turning it on needs a saved
    /// card: the tenant's last paid Checkout's.
    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    pub async fn set_auto_recharge(
        &self,
        tenant: &TenantId,
        request: AutoRechargeRequest,
    ) -> ApiResult<AutoRechargeView> {
        match self.mode {
            Mode::Prepaid => {}
            Mode::Off => return Err(ApiError::NotFound("billing is not configured".into())),
            Mode::Metered => {
                return Err(ApiError::Conflict(
                    "auto-recharge is for prepaid billing; this server invoices usage".into(),
                ))
            }
        }
        let now = now_ms();
        if !request.enabled {
            db::set(self.pool(), &tenant.0, false, None, None, now).await?;
            return self.auto_recharge_view(&tenant.0).await;
        }
        let need = |v: Option<serde_json::Value>, name: &str| {
            v.ok_or_else(|| ApiError::Validation(format!("{name} is required to turn it on")))
        };
        let below = parse_cents(&need(request.below_usd, "below_usd")?, "below_usd")?;
        let amount = parse_cents(&need(request.amount_usd, "amount_usd")?, "amount_usd")?;
        let settings = db::settings(self.pool(), &tenant.0)
            .await?
            .unwrap_or_default();
        if self.card(&tenant.0, &settings).await?.is_none() {
            return Err(ApiError::Conflict(
                "no saved card yet: buy credit once with POST /v1/billing/checkout (Checkout \
                 saves the card for auto-recharge)"
                    .into(),
            ));
        }
        db::set(
            self.pool(),
            &tenant.0,
            true,
            Some(below * NANOS_PER_CENT),
            Some(amount * NANOS_PER_CENT),
            now,
        )
        .await?;
        tracing::info!(below, amount, "auto-recharge on");
        self.auto_recharge_view(&tenant.0).await
    }

    /// The tenant's auto-recharge as shown.
    pub(crate) async fn auto_recharge_view(&self, tenant: &str) -> ApiResult<AutoRechargeView> {
        let s = db::settings(self.pool(), tenant).await?.unwrap_or_default();
        let last = db::latest(self.pool(), tenant)
            .await?
            .map(|r| RechargeView {
                seq: r.seq,
                state: r.state,
                amount_nanos: r.amount_nanos,
                payment_intent: r.payment_intent_id,
                error: r.last_error,
                updated_at: corral_metering::period::rfc3339(r.updated_ms),
            });
        Ok(AutoRechargeView {
            enabled: s.enabled,
            below_nanos: s.below_nanos,
            below_usd: s.below_nanos.map(|n| Nanos(n).usd()),
            amount_nanos: s.amount_nanos,
            amount_usd: s.amount_nanos.map(|n| Nanos(n).usd()),
            card_saved: s.payment_method_id.is_some() || s.checkout_payment_intent.is_some(),
            off_reason: s.off_reason,
            last,
        })
    }

    /// The saved card: known, or read once from the last paid Checkout's PaymentIntent.
    async fn card(&self, tenant: &str, s: &db::Settings) -> ApiResult<Option<String>> {
        if let Some(card) = &s.payment_method_id {
            return Ok(Some(card.clone()));
        }
        let Some(intent) = &s.checkout_payment_intent else {
            return Ok(None);
        };
        let card = self
            .client()?
            .payment_method_of(intent)
            .await
            .map_err(stripe_unavailable)?;
        if let Some(card) = &card {
            db::set_card(self.pool(), tenant, intent, card).await?;
        }
        Ok(card)
    }
}

/// One pass over the tenants with auto-recharge on: a recharge in flight is retried
/// (same number, same key) when due; otherwise a balance below the threshold starts the
/// next one. Run every second with the grace check.
#[tracing::instrument(skip_all)]
pub async fn run(billing: &Billing) -> anyhow::Result<()> {
    if billing.mode != Mode::Prepaid {
        return Ok(());
    }
    for account in db::enabled(billing.pool()).await? {
        if let Err(error) = one(billing, &account).await {
            tracing::warn!(tenant = %account.tenant_id, error = format!("{error:#}"),
                "auto-recharge pass failed");
        }
    }
    Ok(())
}

async fn one(billing: &Billing, account: &db::Settings) -> anyhow::Result<()> {
    let (Some(customer), Some(below), Some(amount)) = (
        account.customer_id.as_deref(),
        account.below_nanos,
        account.amount_nanos,
    ) else {
        return Ok(());
    };
    let tenant = account.tenant_id.as_str();
    let now = now_ms();
    let recharge = match db::open(billing.pool(), tenant).await? {
        // Stripe took it; the credit comes with `payment_intent.succeeded`.
        Some(r) if r.state == "charged" => return Ok(()),
        Some(r) if r.next_attempt_ms > now => return Ok(()),
        Some(r) => r,
        None => {
            let spent = accounts::lifetime_spent(billing.pool(), tenant).await?;
            if account.credited_nanos - spent >= below {
                return Ok(());
            }
            match db::start(billing.pool(), tenant, amount, now).await? {
                Some(r) => r,
                None => return Ok(()),
            }
        }
    };
    let card = match billing.card(tenant, account).await {
        Ok(Some(card)) => card,
        Ok(None) => {
            let why = "no saved card: buy credit once through Checkout to save one";
            return fail(billing, tenant, recharge.seq, why).await;
        }
        Err(error) => {
            let next = now + backoff(recharge.attempts);
            let why = format!("reading the saved card: {error}");
            db::retry_later(billing.pool(), tenant, recharge.seq, &why, next, now).await?;
            return Ok(());
        }
    };
    let cents = recharge.amount_nanos / NANOS_PER_CENT;
    let key = format!("corral-recharge-{tenant}-{}", recharge.seq);
    let client = billing.client().map_err(|e| anyhow::anyhow!("{e}"))?;
    match client
        .charge(customer, &card, tenant, recharge.seq, cents, &key)
        .await
    {
        Ok(charge) if charge.status == "succeeded" || charge.status == "processing" => {
            tracing::info!(seq = recharge.seq, intent = %charge.id, "auto-recharge charged");
            db::charged(billing.pool(), tenant, recharge.seq, &charge.id, now).await?;
        }
        Ok(charge) => {
            let why = format!(
                "the card needs its holder (PaymentIntent {} is {})",
                charge.id, charge.status
            );
            fail(billing, tenant, recharge.seq, &why).await?;
        }
        Err(error) if error.is_transient() => {
            tracing::warn!(seq = recharge.seq, %error, "auto-recharge: Stripe did not answer; later");
            let next = now + backoff(recharge.attempts);
            db::retry_later(
                billing.pool(),
                tenant,
                recharge.seq,
                &error.to_string(),
                next,
                now,
            )
            .await?;
        }
        Err(error) => fail(billing, tenant, recharge.seq, &refusal(&error)).await?,
    }
    Ok(())
}

/// Doubling waits between tries, from 1 s up to a minute.
fn backoff(attempts: i64) -> i64 {
    let shift = u32::try_from(attempts.clamp(0, 10)).unwrap_or(10);
    (RETRY_MIN_MS << shift).min(RETRY_MAX_MS)
}

/// A refusal as the tenant reads it.
fn refusal(error: &StripeError) -> String {
    match error {
        StripeError::Api { code, message, .. } => {
            format!("the charge was refused: {code}: {message}")
        }
        other => other.to_string(),
    }
}

/// Closes recharge `seq` as failed, turns auto-recharge off with `why` and mails the
/// tenant, in one transaction.
async fn fail(billing: &Billing, tenant: &str, seq: i64, why: &str) -> anyhow::Result<()> {
    let email = accounts::tenant_email(billing.pool(), tenant).await?;
    let mut tx = billing.pool().begin().await?;
    if record_failure(&mut tx, tenant, seq, why, email.as_deref(), now_ms()).await? {
        tracing::warn!(%tenant, seq, why, "auto-recharge failed and was turned off");
    }
    tx.commit().await?;
    Ok(())
}

/// In the caller's transaction: recharge `seq` failed with `why`, so it is closed,
/// auto-recharge turned off and a mail queued to `email`. Once: `false` when the
/// recharge was already settled (a second report of the same failure changes nothing).
pub(crate) async fn record_failure(
    conn: &mut SqliteConnection,
    tenant: &str,
    seq: i64,
    why: &str,
    email: Option<&str>,
    now: i64,
) -> sqlx::Result<bool> {
    if !db::failed(conn, tenant, seq, why, now).await? {
        return Ok(false);
    }
    if let Some(email) = email {
        let scope = format!("auto_recharge:{tenant}:{seq}");
        let alert = corral_metering::db::NewAlert {
            tenant_id: tenant,
            kind: "billing",
            scope: &scope,
            threshold_pct: 0,
            period_start_ms: Period::containing(now).start_ms,
            to_email: email,
            subject: "Corral: auto-recharge failed and is now off".into(),
            body: format!(
                "Corral tried to add credit with your saved card and could not: {why}.\n\n\
                 Auto-recharge is now off. Your sprites keep running on the credit left and \
                 pause (pause_reason: billing) before it runs out. Add credit with POST \
                 /v1/billing/checkout (or `corral billing topup`), then turn auto-recharge \
                 on again with PUT /v1/billing/auto_recharge (or `corral billing \
                 auto-recharge on`).\n"
            ),
            now_ms: now,
        };
        corral_metering::db::queue_alert(conn, &alert).await?;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_to_a_minute() {
        assert_eq!(backoff(0), 1_000);
        assert_eq!(backoff(3), 8_000);
        assert_eq!(backoff(9), 60_000);
        assert_eq!(backoff(500), 60_000);
    }
}
