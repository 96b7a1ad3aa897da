//! Stripe's webhook events: the signature checked (HMAC-SHA256 over `"{t}.{body}"`,
//! any `v1`, 300 s tolerance, constant-time), then each event applied exactly once
//! (by event id) and in any order (invoice events carry their time; credit adds up; an
//! auto-recharge is settled once, by its number, whichever event comes first).

use ring::hmac;
use serde_json::Value;

use super::recharge::record_failure;
use super::{Billing, NANOS_PER_CENT};
use crate::db::billing as db;
use crate::db::recharge as recharge_db;
use crate::error::ApiResult;
use crate::names::{PauseReason, SpriteState};

/// Seconds a signed event may be away from now.
pub const TOLERANCE_S: i64 = 300;

/// Why an event was refused (answered 400; nothing changes).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    /// No `Stripe-Signature` header.
    #[error("no Stripe-Signature header")]
    Missing,
    /// The header has no `t` or no `v1`.
    #[error("the Stripe-Signature header is malformed")]
    Malformed,
    /// `t` is more than 300 s from now: possibly a replay.
    #[error("the event's timestamp is outside the 300 s tolerance")]
    Stale,
    /// No `v1` matches.
    #[error("no signature matches")]
    BadSignature,
    /// Signed, but not an event.
    #[error("the body is not a Stripe event")]
    NotAnEvent,
}

/// Checks `header` (`t=…,v1=…[,v1=…]`) against `body` signed with `secret` at `now_s`.
pub fn verify(secret: &str, header: Option<&str>, body: &[u8], now_s: i64) -> Result<(), Rejected> {
    let header = header.ok_or(Rejected::Missing)?;
    let mut t = None;
    let mut v1 = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => t = value.parse::<i64>().ok(),
            Some(("v1", value)) => v1.extend(hex::decode(value).ok()),
            _ => {}
        }
    }
    let t = t.ok_or(Rejected::Malformed)?;
    if v1.is_empty() {
        return Err(Rejected::Malformed);
    }
    if (now_s - t).abs() > TOLERANCE_S {
        return Err(Rejected::Stale);
    }
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut signed = format!("{t}.").into_bytes();
    signed.extend_from_slice(body);
    // ring's verify compares in constant time.
    if v1
        .iter()
        .any(|sig| hmac::verify(&key, &signed, sig).is_ok())
    {
        Ok(())
    } else {
        Err(Rejected::BadSignature)
    }
}

/// The recharge number of an auto-recharge PaymentIntent of `tenant` (`None` for any
/// other payment, e.g. a Checkout's, which `checkout.session.completed` credits).
fn recharge_of(intent: &Value, tenant: &str) -> Option<i64> {
    let metadata = &intent["metadata"];
    if metadata["corral_purpose"] != "auto_recharge" || metadata["corral_tenant"] != tenant {
        return None;
    }
    metadata["corral_recharge"].as_str()?.parse().ok()
}

/// What applying an event did.
#[derive(Debug, PartialEq, Eq)]
pub enum Applied {
    /// It changed the tenant's billing.
    Changed,
    /// Seen before (a duplicate delivery), or nothing to do: nothing changed.
    Nothing,
}

impl Billing {
    /// Verifies and applies one delivery. `Err(Rejected)` is the caller's 400.
    #[tracing::instrument(skip_all)]
    pub async fn webhook(
        &self,
        signature: Option<&str>,
        body: &[u8],
    ) -> ApiResult<Result<Applied, Rejected>> {
        let Some(secret) = &self.config().stripe_webhook_secret else {
            return Err(crate::error::ApiError::NotFound(
                "billing is not configured".into(),
            ));
        };
        let now_s = corral_metering::now_ms() / 1000;
        if let Err(why) = verify(secret.expose(), signature, body, now_s) {
            tracing::warn!(%why, "Stripe webhook refused");
            return Ok(Err(why));
        }
        let Ok(event) = serde_json::from_slice::<Value>(body) else {
            return Ok(Err(Rejected::NotAnEvent));
        };
        let (Some(id), Some(kind), Some(created)) = (
            event["id"].as_str(),
            event["type"].as_str(),
            event["created"].as_i64(),
        ) else {
            return Ok(Err(Rejected::NotAnEvent));
        };
        let object = &event["data"]["object"];
        let (applied, resume) = self.apply(id, kind, created, object).await?;
        tracing::info!(event = id, kind, ?applied, "Stripe event");
        if let Some(tenant) = resume {
            self.resume_billing_paused(tenant);
        }
        Ok(Ok(applied))
    }

    /// Applies the event in one transaction with its id; answers what changed and the
    /// tenant whose billing-paused sprites may run again.
    async fn apply(
        &self,
        id: &str,
        kind: &str,
        created: i64,
        object: &Value,
    ) -> ApiResult<(Applied, Option<String>)> {
        let now = corral_metering::now_ms();
        // The tenant is looked up before the transaction, whose first statement is
        // then a write: SQLite cannot upgrade a transaction that began by reading once
        // another connection (the meter's tick) has written, and would answer busy.
        let mut conn = self.pool().acquire().await?;
        let tenant = match kind {
            "checkout.session.completed" => match object["client_reference_id"].as_str() {
                Some(t) if db::tenant_exists(&mut conn, t).await? => Some(t.to_owned()),
                _ => None,
            },
            "invoice.paid"
            | "invoice.payment_failed"
            | "payment_intent.succeeded"
            | "payment_intent.payment_failed" => match object["customer"].as_str() {
                Some(c) => db::tenant_of_customer(&mut conn, c).await?,
                None => None,
            },
            _ => None,
        };
        drop(conn);
        // A failed recharge mails the tenant: the address is read before the writes too.
        let email = match (&tenant, kind) {
            (Some(t), "payment_intent.payment_failed") => db::tenant_email(self.pool(), t).await?,
            _ => None,
        };
        let mut tx = self.pool().begin().await?;
        if !db::claim_event(&mut tx, id, kind, created, tenant.as_deref(), now).await? {
            return Ok((Applied::Nothing, None));
        }
        let Some(tenant) = tenant else {
            tx.commit().await?;
            return Ok((Applied::Nothing, None));
        };
        let mut resume = false;
        let changed = match kind {
            "checkout.session.completed" => {
                let paid = object["payment_status"].as_str() == Some("paid");
                match object["mode"].as_str() {
                    Some("payment") if paid => {
                        let cents = object["amount_total"].as_i64().unwrap_or(0).max(0);
                        db::add_credit(&mut tx, &tenant, cents.saturating_mul(NANOS_PER_CENT), now)
                            .await?;
                        // Its card was saved for off-session use: auto-recharge charges it.
                        if let Some(intent) = object["payment_intent"].as_str() {
                            recharge_db::set_checkout_payment(&mut tx, &tenant, intent, now)
                                .await?;
                        }
                        resume = cents > 0;
                        cents > 0
                    }
                    Some("subscription") => match object["subscription"].as_str() {
                        Some(sub) => {
                            db::set_subscription(&mut tx, &tenant, sub, now).await?;
                            true
                        }
                        None => false,
                    },
                    _ => false,
                }
            }
            "invoice.payment_failed" => {
                db::apply_invoice(&mut tx, &tenant, true, created, now).await?
            }
            "invoice.paid" => {
                let done = db::apply_invoice(&mut tx, &tenant, false, created, now).await?;
                resume = done;
                done
            }
            "payment_intent.succeeded" => match recharge_of(object, &tenant) {
                Some(seq) => {
                    let intent = object["id"].as_str().unwrap_or_default();
                    let done = recharge_db::succeeded(&mut tx, &tenant, seq, intent, now).await?;
                    if done {
                        let cents = object["amount_received"].as_i64().unwrap_or(0).max(0);
                        db::add_credit(&mut tx, &tenant, cents.saturating_mul(NANOS_PER_CENT), now)
                            .await?;
                        resume = cents > 0;
                    }
                    done
                }
                None => false,
            },
            "payment_intent.payment_failed" => match recharge_of(object, &tenant) {
                Some(seq) => {
                    let error = &object["last_payment_error"];
                    let why = format!(
                        "the card was declined: {}: {}",
                        error["decline_code"]
                            .as_str()
                            .or(error["code"].as_str())
                            .unwrap_or("payment_failed"),
                        error["message"].as_str().unwrap_or("no reason given")
                    );
                    record_failure(&mut tx, &tenant, seq, &why, email.as_deref(), now).await?
                }
                None => false,
            },
            _ => false,
        };
        tx.commit().await?;
        let applied = if changed {
            Applied::Changed
        } else {
            Applied::Nothing
        };
        Ok((applied, resume.then_some(tenant)))
    }

    /// Resumes, in the background, the tenant's sprites billing paused: each passes the
    /// budget gate as any resume does, so what still does not fit stays paused.
    fn resume_billing_paused(&self, tenant: String) {
        let Some(sprites) = self.sprites.clone() else {
            return;
        };
        let pool = self.pool().clone();
        tokio::spawn(async move {
            let rows = match crate::db::sprites::all_live(&pool).await {
                Ok(rows) => rows,
                Err(error) => {
                    tracing::warn!(%error, "listing billing-paused sprites failed");
                    return;
                }
            };
            for row in rows.iter().filter(|r| {
                r.tenant_id.0 == tenant
                    && r.state == SpriteState::Paused
                    && r.pause_reason == Some(PauseReason::Billing)
            }) {
                match sprites.resume(row, "billing").await {
                    Ok(_) => tracing::info!(sprite = row.id, %tenant, "resumed after payment"),
                    Err(error) => {
                        tracing::info!(sprite = row.id, %tenant, %error, "still paused for billing")
                    }
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &str, t: i64, body: &[u8]) -> String {
        let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
        let mut msg = format!("{t}.").into_bytes();
        msg.extend_from_slice(body);
        hex::encode(hmac::sign(&key, &msg).as_ref())
    }

    #[test]
    fn signatures_timestamps_and_any_v1() {
        let body = br#"{"id":"evt_1"}"#;
        let good = sign("whsec_a", 1000, body);
        let header = format!("t=1000,v1={good}");
        assert_eq!(verify("whsec_a", Some(&header), body, 1100), Ok(()));
        assert_eq!(
            verify("whsec_a", Some(&header), body, 1301),
            Err(Rejected::Stale)
        );
        assert_eq!(
            verify("whsec_b", Some(&header), body, 1000),
            Err(Rejected::BadSignature)
        );
        assert_eq!(
            verify("whsec_a", Some(&header), br#"{"id":"evt_2"}"#, 1000),
            Err(Rejected::BadSignature)
        );
        let rotated = format!("t=1000,v1={},v1={good},v0=00", "ab".repeat(32));
        assert_eq!(verify("whsec_a", Some(&rotated), body, 1000), Ok(()));
        assert_eq!(
            verify("whsec_a", Some("v1=00"), body, 1000),
            Err(Rejected::Malformed)
        );
        assert_eq!(verify("whsec_a", None, body, 1000), Err(Rejected::Missing));
    }
}
