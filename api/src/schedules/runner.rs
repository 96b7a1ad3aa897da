//! Fires tenants' schedules: every second, each due schedule is claimed (moved on to its
//! next time, so missed times are skipped, never queued) and run in its own task. A run
//! wakes an idle sprite through the sprites service (which keeps it busy, then lets it
//! go idle again), records exit code and output tail, and is refused and recorded when
//! it may not spend: budget exhausted, sprite paused for budget, billing or by a person,
//! its token revoked, or the previous run still going.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use sqlx::SqlitePool;
use tokio::sync::watch;

use super::crontab::Crontab;
use crate::caller::Caller;
use crate::config::Config;
use crate::db::{self, schedules::RunEnd, schedules::ScheduleRow, sprites::SpriteRow};
use crate::error::ApiError;
use crate::jobs::JobMetrics;
use crate::names::{PauseReason, SpriteState};
use crate::sprites::{ExecParams, Sprites};

/// Bytes of output kept per run.
const TAIL_BYTES: usize = 4096;

/// The schedule runner of one process.
pub struct Runner {
    pool: SqlitePool,
    config: Arc<Config>,
    sprites: Arc<Sprites>,
    metrics: Arc<JobMetrics>,
    /// The rule's window the meter publishes: the runway a run must afford follows it.
    window: Arc<corral_metering::RuleWindow>,
    /// Schedules with a run in flight: a due time meanwhile is refused, not queued.
    running: Mutex<HashSet<i64>>,
}

impl Runner {
    /// A runner over the server's pool and sprites, with the rule's window the meter
    /// publishes.
    pub fn new(
        pool: SqlitePool,
        config: Arc<Config>,
        sprites: Arc<Sprites>,
        metrics: Arc<JobMetrics>,
        window: Arc<corral_metering::RuleWindow>,
    ) -> Self {
        Self {
            pool,
            config,
            sprites,
            metrics,
            window,
            running: Mutex::default(),
        }
    }

    /// Checks for due schedules every second until shutdown.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) -> anyhow::Result<()> {
        let abandoned =
            db::schedules::abandon_running(&self.pool, Utc::now().timestamp_millis()).await?;
        if abandoned > 0 {
            tracing::warn!(
                abandoned,
                "schedule runs cut short by the last stop were marked failed"
            );
        }
        loop {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = stop.changed() => return Ok(()),
            }
            if let Err(error) = self.fire_due().await {
                tracing::warn!(%error, "schedule check failed");
            }
        }
    }

    async fn fire_due(self: &Arc<Self>) -> anyhow::Result<()> {
        let now = Utc::now();
        let seconds = super::seconds_allowed(&self.config);
        for row in db::schedules::due(&self.pool, now.timestamp_millis()).await? {
            let next = Crontab::parse(&row.cron, seconds)
                .ok()
                .and_then(|c| c.after(now))
                .map(|t| t.timestamp_millis());
            // An expression the server no longer accepts (seconds turned off) waits a
            // day at a time, recorded as refused, rather than spinning.
            let next_ms = next.unwrap_or(now.timestamp_millis() + 86_400_000);
            if !db::schedules::claim(&self.pool, row.id, row.next_run_ms, next_ms).await? {
                continue;
            }
            if next.is_none() {
                self.record_refused(&row, "the schedule's cron is no longer accepted by this server; delete it and add it again")
                    .await?;
                continue;
            }
            if !self.running.lock().expect("running").insert(row.id) {
                self.record_refused(&row, "the previous run is still going")
                    .await?;
                continue;
            }
            let runner = self.clone();
            tokio::spawn(async move {
                let id = row.id;
                if let Err(error) = runner.run_one(row).await {
                    tracing::warn!(schedule = id, %error, "could not record a schedule run");
                }
                runner.running.lock().expect("running").remove(&id);
            });
        }
        Ok(())
    }

    async fn record_refused(&self, row: &ScheduleRow, why: &str) -> sqlx::Result<()> {
        let now = Utc::now().timestamp_millis();
        let run = db::schedules::start_run(&self.pool, row.id, now).await?;
        let end = RunEnd {
            outcome: "refused",
            detail: Some(why.into()),
            ..RunEnd::default()
        };
        self.metrics.count_schedule_run("refused");
        db::schedules::finish_run(&self.pool, run, now, &end).await
    }

    #[tracing::instrument(skip_all, fields(tenant = %row.tenant_id, schedule = row.id))]
    async fn run_one(&self, row: ScheduleRow) -> sqlx::Result<()> {
        let run =
            db::schedules::start_run(&self.pool, row.id, Utc::now().timestamp_millis()).await?;
        let end = self.perform(&row).await;
        tracing::info!(
            outcome = end.outcome,
            exit_code = end.exit_code,
            detail = end.detail.as_deref(),
            "schedule ran"
        );
        self.metrics.count_schedule_run(end.outcome);
        db::schedules::finish_run(&self.pool, run, Utc::now().timestamp_millis(), &end).await
    }

    async fn perform(&self, row: &ScheduleRow) -> RunEnd {
        let refused = |why: String| RunEnd {
            outcome: "refused",
            detail: Some(why),
            ..RunEnd::default()
        };
        let sprite = match self.ready(row).await {
            Ok(sprite) => sprite,
            Err(why) => return refused(why),
        };
        let result = if row.action == "checkpoint" {
            self.sprites
                .checkpoint(&sprite, &row.comment)
                .await
                .map(|c| RunEnd {
                    outcome: "ok",
                    checkpoint_id: Some(c.id),
                    ..RunEnd::default()
                })
        } else {
            let argv: Vec<String> = row
                .cmd
                .as_deref()
                .and_then(|c| serde_json::from_str(c).ok())
                .unwrap_or_default();
            let params = ExecParams {
                argv,
                timeout_s: Some(self.config.schedule_timeout_s.max(1)),
                ..ExecParams::default()
            };
            self.sprites.exec(&sprite, params).await.map(|out| RunEnd {
                outcome: "ok",
                exit_code: Some(i64::from(out.exit_code)),
                output_tail: Some(tail(&out.stdout, &out.stderr)),
                detail: out
                    .timed_out
                    .then(|| "the command was killed at its timeout".into()),
                ..RunEnd::default()
            })
        };
        match result {
            Ok(end) => end,
            Err(error) => match refusal(&error) {
                Some(code) => refused(format!("{code}: {error}")),
                None => RunEnd {
                    outcome: "failed",
                    detail: Some(visible(&error)),
                    ..RunEnd::default()
                },
            },
        }
    }

    /// The sprite, when this run may make it work; else why not.
    async fn ready(&self, row: &ScheduleRow) -> Result<SpriteRow, String> {
        let sprite = db::sprites::by_id(&self.pool, &row.tenant_id, row.sprite_id)
            .await
            .map_err(|e| format!("the sprite could not be read: {e}"))?
            .ok_or("the sprite is gone")?;
        if let Some(token_id) = &row.created_by_token {
            let token = db::tokens::by_id(&self.pool, token_id)
                .await
                .map_err(|e| format!("the token could not be read: {e}"))?
                .ok_or("the API token that made this schedule is gone")?;
            // A session ends with its login; what a person scheduled on the web page
            // stays. An API token's schedules stop with the token.
            if token.kind != "session" {
                if token.revoked_at.is_some() {
                    return Err("the API token that made this schedule was revoked".into());
                }
                if token.expires_at <= db::now_s() {
                    return Err("the API token that made this schedule has expired".into());
                }
            }
            let caller = Caller::from_token(token).map_err(|e| e.to_string())?;
            if let Err(error) = self.sprites.may_run(&caller, &sprite).await {
                return Err(error.to_string());
            }
        }
        match (sprite.state, sprite.pause_reason) {
            (SpriteState::Paused, Some(reason @ (PauseReason::Budget | PauseReason::Billing))) => {
                Err(format!(
                    "the sprite is paused ({reason}); a schedule does not resume it"
                ))
            }
            (SpriteState::Paused, Some(PauseReason::Idle)) => Ok(sprite),
            (SpriteState::Paused, reason) => Err(format!(
                "the sprite is paused ({}); a schedule wakes only an idle sprite",
                reason.unwrap_or(PauseReason::User)
            )),
            (SpriteState::Running, _) => {
                // Waking an idle sprite is admitted by the resume; a running one is
                // checked here, so a run never starts work the budget cannot pay for.
                match self.runway(&sprite).await {
                    Ok(()) => Ok(sprite),
                    Err(error) => Err(format!("{}: {error}", refusal(&error).unwrap_or("refused"))),
                }
            }
            (state, _) => Err(format!("the sprite is {state}")),
        }
    }
}

impl Runner {
    /// Whether the running sprite's scopes can keep what runs now (itself included, the
    /// meter counts it) going for the minimum runway: the check a resume makes, without
    /// counting the sprite twice.
    async fn runway(&self, sprite: &SpriteRow) -> Result<(), ApiError> {
        let runway_s = self.window.runway_s(self.config.min_runway_s);
        let ctx = crate::money::budget_context(&self.config);
        let nothing_more = |_: &corral_metering::Scope| corral_metering::db::Extra::default();
        let mut conn = self.pool.acquire().await.map_err(anyhow::Error::from)?;
        let checked = corral_metering::db::check_runway(
            &mut conn,
            sprite.tenant_id.as_str(),
            sprite.created_by_token.as_deref(),
            &nothing_more,
            runway_s,
            &ctx,
        )
        .await
        .map_err(anyhow::Error::from)?;
        match checked {
            Ok(_) => Ok(()),
            Err(refused) => Err(crate::money::gate::refusal_error(&refused, runway_s)),
        }
    }
}

/// The problem code of an error that means "may not spend now".
fn refusal(error: &ApiError) -> Option<&'static str> {
    match error {
        ApiError::BudgetExhausted(_) => Some("budget_exhausted"),
        ApiError::TokenBudgetExhausted(_) => Some("token_budget_exhausted"),
        ApiError::LimitExceeded(_) => Some("limit_exceeded"),
        ApiError::Forbidden(_) => Some("forbidden"),
        _ => None,
    }
}

/// What a tenant may read about a failure (internal errors are logged, not shown).
fn visible(error: &ApiError) -> String {
    match error {
        ApiError::Internal(inner) => {
            tracing::error!(error = ?inner, "schedule run failed");
            "internal error".into()
        }
        other => other.to_string(),
    }
}

/// The last [`TAIL_BYTES`] of stdout then stderr, as text.
fn tail(stdout: &[u8], stderr: &[u8]) -> String {
    let mut all = Vec::with_capacity(stdout.len() + stderr.len());
    all.extend_from_slice(stdout);
    all.extend_from_slice(stderr);
    let start = all.len().saturating_sub(TAIL_BYTES);
    String::from_utf8_lossy(&all[start..]).into_owned()
}
