//! Billing's chores: metered usage pushed to Stripe as meter events through the outbox,
//! reconciliation of Stripe's meter summaries with the ledger, and the end of a failed
//! payment's grace. Pushes and reconciliation run as operator jobs (see `jobs`).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use corral_metering::period::minute_start;
use corral_metering::{now_ms, Period};

use super::stripe::MeterEvent;
use super::{Billing, Mode};
use crate::db::billing as db;
use crate::state::Background;

/// Meter events sent per batch read from the outbox.
const BATCH: i64 = 500;

/// Puts every closed ledger minute of each metered tenant into the outbox (with the
/// watermark, in one transaction), then sends what the outbox holds. A crash between
/// the two, or a Stripe outage, leaves the events queued; a resend after a lost answer
/// carries the same identifier, which Stripe de-duplicates.
#[tracing::instrument(skip_all)]
pub async fn push_usage(billing: &Billing) -> anyhow::Result<()> {
    if billing.mode != Mode::Metered {
        return Ok(());
    }
    let now = now_ms();
    let lag_ms =
        i64::try_from(billing.config().billing_push_lag_s.saturating_mul(1000)).unwrap_or(i64::MAX);
    // Minutes before `until` ended at least the lag ago: no late tick lands in them.
    let until = minute_start(now.saturating_sub(lag_ms));
    for account in db::metered_accounts(billing.pool()).await? {
        if until > account.pushed_through_ms {
            let queued = db::enqueue_minutes(
                billing.pool(),
                &account.tenant_id,
                &account.customer_id,
                account.pushed_through_ms,
                until,
                now,
            )
            .await?;
            tracing::debug!(tenant = %account.tenant_id, queued, "usage minutes queued");
        }
    }
    send_pending(billing).await
}

/// Sends the outbox's events, oldest first, until it is empty or Stripe fails; a
/// refusal (a 4xx other than 429) is final and recorded, for reconciliation to make up.
async fn send_pending(billing: &Billing) -> anyhow::Result<()> {
    let client = billing.client().map_err(|e| anyhow::anyhow!("{e}"))?;
    let event_name = billing.config().stripe_meter_event_name.clone();
    loop {
        let batch = db::pending_events(billing.pool(), BATCH).await?;
        if batch.is_empty() {
            return Ok(());
        }
        for e in &batch {
            let event = MeterEvent {
                event_name: &event_name,
                customer: &e.customer_id,
                value: e.value_nanos,
                identifier: &e.identifier,
                timestamp_s: e.timestamp_s,
            };
            match client.meter_event(&event).await {
                Ok(()) => db::mark_event(billing.pool(), &e.identifier, now_ms(), None).await?,
                Err(error) if error.is_transient() => {
                    db::event_failed(billing.pool(), &e.identifier, &error.to_string()).await?;
                    return Err(error)
                        .context("sending meter events; the rest wait for the next run");
                }
                Err(error) => {
                    tracing::warn!(identifier = %e.identifier, %error, "Stripe refused a meter event");
                    let why = error.to_string();
                    db::mark_event(billing.pool(), &e.identifier, now_ms(), Some(&why)).await?;
                }
            }
        }
    }
}

/// Compares, per metered tenant whose outbox is empty, Stripe's meter total for this
/// period with the ledger minutes pushed so far, and queues one correcting event for
/// any difference; then sends it.
#[tracing::instrument(skip_all)]
pub async fn reconcile(billing: &Billing) -> anyhow::Result<()> {
    if billing.mode != Mode::Metered {
        return Ok(());
    }
    let Some(meter_id) = billing.config().stripe_meter_id.clone() else {
        tracing::warn!("reconciliation needs CORRAL_STRIPE_METER_ID; skipped");
        return Ok(());
    };
    let client = billing.client().map_err(|e| anyhow::anyhow!("{e}"))?;
    // Whatever is queued goes first, so the comparison sees as much as possible.
    if let Err(error) = send_pending(billing).await {
        tracing::warn!(%error, "reconciliation: Stripe is not taking events; later");
        return Ok(());
    }
    let now = now_ms();
    let period = Period::containing(now);
    for account in db::metered_accounts(billing.pool()).await? {
        let from = period.start_ms.max(account.metered_since_ms);
        let until = account.pushed_through_ms;
        if until <= from {
            continue;
        }
        let (ledger, unsent) =
            db::reconcile_inputs(billing.pool(), &account.tenant_id, from, until).await?;
        if unsent != 0 {
            // Events are still on their way (Stripe may even hold some already, its
            // answer lost): comparing now could correct what needs no correction.
            continue;
        }
        let end_s = minute_start(now) / 1000 + 60;
        let stripe = client
            .meter_total(
                &meter_id,
                &account.customer_id,
                minute_start(from) / 1000,
                end_s,
            )
            .await
            .context("reading Stripe's meter summary")?;
        let difference = ledger - stripe;
        tracing::info!(tenant = %account.tenant_id, ledger, stripe, difference, "reconciled");
        if difference != 0 {
            db::enqueue_adjustment(
                billing.pool(),
                &account.tenant_id,
                &account.customer_id,
                difference,
                now,
            )
            .await?;
        }
    }
    send_pending(billing).await
}

/// Tenants whose failed payment's grace is over become suspended: the meter's next
/// tick pauses their sprites with `pause_reason: billing`.
#[tracing::instrument(skip_all)]
pub async fn end_grace(billing: &Billing) -> anyhow::Result<()> {
    if billing.mode == Mode::Off {
        return Ok(());
    }
    let now = now_ms();
    let grace_ms =
        i64::try_from(billing.config().billing_grace_s.saturating_mul(1000)).unwrap_or(i64::MAX);
    for tenant in db::suspend_overdue(billing.pool(), now.saturating_sub(grace_ms), now).await? {
        tracing::warn!(%tenant, "payment grace over: sprites pause for billing");
    }
    Ok(())
}

/// Starts the grace check and (prepaid) the auto-recharge pass, once a second (usage
/// pushes and reconciliation are operator jobs on cron: `CORRAL_JOB_BILLING_PUSH`,
/// `CORRAL_JOB_BILLING_RECONCILE`); a failed run is logged and the next one tries again.
pub fn start(billing: Arc<Billing>, background: &mut Background) {
    if billing.mode == Mode::Off {
        return;
    }
    background.spawn("billing-grace", move |mut stop| async move {
        let mut grace = tokio::time::interval(Duration::from_secs(1));
        grace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.changed() => return Ok(()),
                _ = grace.tick() => {
                    if let Err(error) = end_grace(&billing).await {
                        tracing::warn!(error = format!("{error:#}"), "billing grace check failed");
                    }
                    if let Err(error) = super::recharge::run(&billing).await {
                        tracing::warn!(error = format!("{error:#}"), "auto-recharge pass failed");
                    }
                }
            }
        }
    });
}
