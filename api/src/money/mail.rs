//! Delivering the alert outbox over SMTP (lettre): due messages every second, retries
//! with exponential backoff, nothing sent when `CORRAL_SMTP_URL` is unset.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use corral_metering::db::{self, OutboxMessage};
use corral_metering::now_ms;
use lettre::message::{header::ContentType, Mailbox};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use sqlx::SqlitePool;
use tokio::sync::watch;

use crate::config::Config;

/// Attempts after which a message is left alone (its last error stays visible).
const MAX_ATTEMPTS: i64 = 20;
/// The longest wait between two attempts.
const MAX_BACKOFF_MS: i64 = 3_600_000;

/// The outbox's counters for `/metrics`.
#[derive(Default)]
pub struct MailMetrics {
    /// Messages delivered.
    pub sent: AtomicU64,
    /// Delivery attempts that failed.
    pub failed: AtomicU64,
    /// Messages waiting (queued or retrying) at the last look.
    pub backlog: AtomicU64,
}

impl MailMetrics {
    /// Prometheus text.
    pub fn render(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP corral_outbox_sent_total Alert mails delivered.\n\
             # TYPE corral_outbox_sent_total counter\ncorral_outbox_sent_total {}\n\
             # HELP corral_outbox_failed_total Alert mail attempts that failed.\n\
             # TYPE corral_outbox_failed_total counter\ncorral_outbox_failed_total {}\n\
             # HELP corral_outbox_backlog Alert mails not yet delivered.\n\
             # TYPE corral_outbox_backlog gauge\ncorral_outbox_backlog {}",
            self.sent.load(Relaxed),
            self.failed.load(Relaxed),
            self.backlog.load(Relaxed)
        );
    }
}

/// An SMTP sender.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// The web page's budget card (`CORRAL_PUBLIC_URL`), linked from every alert.
    budget_url: String,
}

impl Mailer {
    /// The mailer configuration asks for; `None` when `CORRAL_SMTP_URL` is unset.
    pub fn from_config(config: &Config) -> anyhow::Result<Option<Mailer>> {
        let Some(url) = &config.smtp_url else {
            return Ok(None);
        };
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose())
            .map_err(|e| anyhow::anyhow!("CORRAL_SMTP_URL is not a usable SMTP URL: {e}"))?
            .timeout(Some(Duration::from_secs(20)))
            .build();
        let from = config.smtp_from.parse().map_err(|e| {
            anyhow::anyhow!(
                "CORRAL_SMTP_FROM {:?} is not an address: {e}",
                config.smtp_from
            )
        })?;
        let budget_url = format!("{}/#budget", config.public_url.trim_end_matches('/'));
        Ok(Some(Mailer {
            transport,
            from,
            budget_url,
        }))
    }

    async fn send(&self, message: &OutboxMessage) -> Result<(), String> {
        let to: Mailbox = message
            .to_email
            .parse()
            .map_err(|e| format!("bad recipient {:?}: {e}", message.to_email))?;
        let email = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(message.subject.clone())
            .header(ContentType::TEXT_PLAIN)
            .body(format!(
                "{}\nYour budget, spend and sprites: {}\n",
                message.body, self.budget_url
            ))
            .map_err(|e| e.to_string())?;
        self.transport
            .send(email)
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }
}

/// When to try again after `attempts` failed attempts (this one included).
pub fn retry_at(now_ms: i64, attempts: i64, base_s: u64) -> i64 {
    if attempts >= MAX_ATTEMPTS {
        return i64::MAX;
    }
    let base = i64::try_from(base_s.max(1) * 1000).unwrap_or(MAX_BACKOFF_MS);
    let shift = u32::try_from(attempts.clamp(1, 20) - 1).unwrap_or(0);
    now_ms.saturating_add(base.saturating_mul(1 << shift).min(MAX_BACKOFF_MS))
}

/// Delivers due messages until shutdown; without a mailer only counts the backlog.
pub async fn outbox_loop(
    pool: SqlitePool,
    mailer: Option<Mailer>,
    retry_base_s: u64,
    metrics: Arc<MailMetrics>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    if mailer.is_none() {
        tracing::info!("CORRAL_SMTP_URL is unset: alerts are queued, not mailed");
    }
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.changed() => return Ok(()),
        }
        if let Err(error) = deliver_due(&pool, mailer.as_ref(), retry_base_s, &metrics).await {
            tracing::warn!(%error, "outbox pass failed");
        }
    }
}

/// One pass over the outbox. Each recipient's mails go out in the order they were
/// queued: a mail waits while an earlier one to the same address is not delivered (its
/// retry not yet due, or failing now), so the 80 % alert never arrives before the 50 %
/// one after an SMTP outage.
async fn deliver_due(
    pool: &SqlitePool,
    mailer: Option<&Mailer>,
    retry_base_s: u64,
    metrics: &MailMetrics,
) -> Result<(), sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let backlog = db::backlog(&mut conn, MAX_ATTEMPTS).await?;
    metrics.backlog.store(backlog.max(0) as u64, Relaxed);
    let Some(mailer) = mailer else {
        return Ok(());
    };
    let undelivered = db::undelivered(&mut conn, MAX_ATTEMPTS, 200).await?;
    drop(conn);
    let mut held_up = std::collections::HashSet::new();
    for message in undelivered {
        if held_up.contains(&message.to_email) {
            continue;
        }
        if message.next_attempt_at_ms > now_ms() {
            held_up.insert(message.to_email.clone());
            continue;
        }
        let result = mailer.send(&message).await;
        let mut conn = pool.acquire().await?;
        match result {
            Ok(()) => {
                db::mark_sent(&mut conn, message.id, now_ms()).await?;
                metrics.sent.fetch_add(1, Relaxed);
                metrics.backlog.fetch_sub(1, Relaxed);
                tracing::info!(id = message.id, scope = %message.scope, "alert mailed");
            }
            Err(error) => {
                let at = retry_at(now_ms(), message.attempts + 1, retry_base_s);
                db::mark_failed(&mut conn, message.id, &error, at).await?;
                metrics.failed.fetch_add(1, Relaxed);
                held_up.insert(message.to_email.clone());
                tracing::warn!(id = message.id, attempts = message.attempts + 1, %error, "alert mail failed; will retry");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_an_hour_then_gives_up() {
        assert_eq!(retry_at(0, 1, 5), 5_000);
        assert_eq!(retry_at(0, 2, 5), 10_000);
        assert_eq!(retry_at(0, 3, 5), 20_000);
        assert_eq!(retry_at(0, 15, 5), MAX_BACKOFF_MS);
        assert_eq!(retry_at(0, MAX_ATTEMPTS, 5), i64::MAX);
    }
}
