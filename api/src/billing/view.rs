//! What `GET /v1/billing` shows a tenant: the mode, the prepaid balance (and
//! auto-recharge) or this period's invoice estimate, and the payment state.

use serde::Serialize;
use utoipa::ToSchema;

use super::recharge::AutoRechargeView;
use super::{Billing, Mode};
use crate::db::billing as db;
use crate::error::ApiResult;
use crate::names::TenantId;
use corral_metering::{Nanos, Period, Scope};

/// A tenant's billing.
#[derive(Debug, Serialize, ToSchema)]
pub struct BillingView {
    /// `off`, `prepaid` or `metered`.
    pub mode: &'static str,
    /// A Stripe customer exists for the tenant.
    pub customer: bool,
    /// `ok`, `past_due` (an invoice failed; sprites run until `suspends_at`) or
    /// `suspended` (sprites paused with `pause_reason: billing` until it is paid).
    pub payment_state: String,
    /// When a past-due tenant's sprites pause (RFC 3339).
    pub suspends_at: Option<String>,
    /// Prepaid: credit left, nano-dollars (credit bought less everything spent).
    pub balance_nanos: Option<i64>,
    /// Prepaid: the balance in dollars.
    pub balance_usd: Option<String>,
    /// Prepaid: credit ever bought, nano-dollars.
    pub credited_nanos: Option<i64>,
    /// Metered: what this period's usage will be invoiced so far, nano-dollars.
    pub invoice_estimate_nanos: Option<i64>,
    /// Metered: the estimate in dollars.
    pub invoice_estimate_usd: Option<String>,
    /// Metered: meter events sent to Stripe, waiting, and refused by Stripe.
    pub meter_events: Option<MeterEvents>,
    /// Prepaid: auto-recharge with the saved card.
    pub auto_recharge: Option<AutoRechargeView>,
}

/// The meter-event outbox of one tenant.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeterEvents {
    /// Accepted by Stripe.
    pub sent: i64,
    /// Waiting (Stripe unreachable or not yet due).
    pub pending: i64,
    /// Refused by Stripe (reconciliation makes up for them).
    pub rejected: i64,
}

impl Billing {
    /// The tenant's billing as `GET /v1/billing` shows it.
    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    pub async fn view(&self, tenant: &TenantId) -> ApiResult<BillingView> {
        let account = db::account(self.pool(), &tenant.0)
            .await?
            .unwrap_or_default();
        let mut view = BillingView {
            mode: self.mode.as_str(),
            customer: account.customer_id.is_some(),
            payment_state: if account.payment_state.is_empty() {
                "ok".into()
            } else {
                account.payment_state.clone()
            },
            suspends_at: account
                .past_due_since_ms
                .filter(|_| account.payment_state == "past_due")
                .map(|ms| {
                    let grace = i64::try_from(self.config().billing_grace_s).unwrap_or(i64::MAX);
                    corral_metering::period::rfc3339(ms.saturating_add(grace.saturating_mul(1000)))
                }),
            balance_nanos: None,
            balance_usd: None,
            credited_nanos: None,
            invoice_estimate_nanos: None,
            invoice_estimate_usd: None,
            meter_events: None,
            auto_recharge: None,
        };
        match self.mode {
            Mode::Prepaid => {
                let spent = db::lifetime_spent(self.pool(), &tenant.0).await?;
                let balance = account.credited_nanos - spent;
                view.balance_nanos = Some(balance);
                view.balance_usd = Some(Nanos(balance).usd());
                view.credited_nanos = Some(account.credited_nanos);
                view.auto_recharge = Some(self.auto_recharge_view(&tenant.0).await?);
            }
            Mode::Metered => {
                let now = corral_metering::now_ms();
                let mut conn = self.pool().acquire().await?;
                let scope = Scope::Tenant(tenant.0.clone());
                let period = Period::containing(now);
                let spent =
                    corral_metering::db::scope_spent(&mut conn, &scope, period.start_ms).await?;
                view.invoice_estimate_nanos = Some(spent.get());
                view.invoice_estimate_usd = Some(spent.usd());
                let (sent, pending, rejected) = db::outbox_counts(self.pool(), &tenant.0).await?;
                view.meter_events = Some(MeterEvents {
                    sent,
                    pending,
                    rejected,
                });
            }
            Mode::Off => {}
        }
        Ok(view)
    }
}
