//! Tenants' schedules on sprites: create (checked crontab, a command or a checkpoint,
//! the next three times), list with the last runs, delete. The runner that fires them
//! is [`runner`]; the crontab conversion is [`crontab`].

pub mod crontab;
pub mod runner;
pub mod view;

use chrono::Utc;
use sqlx::SqlitePool;

use self::crontab::Crontab;
use self::view::{RunView, ScheduleView};
use crate::caller::{Caller, Permission};
use crate::config::Config;
use crate::db::{self, schedules::ScheduleRow};
use crate::error::{ApiError, ApiResult};
use crate::sprites::{ExecParams, Sprites};

/// Runs shown per schedule in a list.
pub const RUNS_SHOWN: i64 = 5;
/// Times answered in `next_runs`.
pub const NEXT_RUNS: usize = 3;

/// What a tenant asks for.
#[derive(Clone, Debug, Default)]
pub struct NewSchedule {
    pub cron: String,
    pub cmd: Option<Vec<String>>,
    pub checkpoint: bool,
    pub comment: Option<String>,
}

/// The schedules service over one server's pool, configuration and sprites.
pub struct Schedules<'a> {
    pub pool: &'a SqlitePool,
    pub config: &'a Config,
    pub sprites: &'a Sprites,
}

/// Whether the operator lets tenants' schedules have a seconds field.
pub fn seconds_allowed(config: &Config) -> bool {
    config.schedule_seconds.trim().eq_ignore_ascii_case("on")
}

impl Schedules<'_> {
    /// Adds a schedule to the caller's sprite `name`.
    pub async fn create(
        &self,
        caller: &Caller,
        name: &str,
        new: NewSchedule,
    ) -> ApiResult<ScheduleView> {
        let crontab = Crontab::parse(&new.cron, seconds_allowed(self.config))
            .map_err(ApiError::Validation)?;
        let (action, cmd) = match (new.cmd, new.checkpoint) {
            (Some(cmd), false) => {
                caller.require(Permission::Exec)?;
                ExecParams {
                    argv: cmd.clone(),
                    ..ExecParams::default()
                }
                .check()?;
                (
                    "exec",
                    Some(serde_json::to_string(&cmd).map_err(anyhow::Error::from)?),
                )
            }
            (None, true) => {
                caller.require(Permission::Checkpoints)?;
                ("checkpoint", None)
            }
            _ => {
                return Err(ApiError::Validation(
                    "give either cmd (a command to run) or \"checkpoint\": true".into(),
                ))
            }
        };
        let comment = new.comment.unwrap_or_default();
        if comment.chars().count() > 500 {
            return Err(ApiError::Validation(
                "comment must be at most 500 characters".into(),
            ));
        }
        if cmd.as_ref().is_some_and(|c| c.len() > 16_384) {
            return Err(ApiError::Validation(
                "cmd must be at most 16 KiB as JSON".into(),
            ));
        }
        let sprite = self.sprites.get_to_run(caller, name).await?;
        let existing = db::schedules::for_sprite(self.pool, &caller.tenant_id, sprite.id).await?;
        let max = i64::from(self.config.max_schedules_per_sprite);
        if existing.len() as i64 >= max {
            return Err(ApiError::LimitExceeded(format!(
                "max_schedules_per_sprite: sprite {:?} already has {} schedules, the limit is {max}",
                sprite.name,
                existing.len()
            )));
        }
        let now = Utc::now();
        let next_runs = crontab.next_runs(now, NEXT_RUNS);
        let first = next_runs
            .first()
            .ok_or_else(|| ApiError::Validation(format!("{:?} never fires", crontab.text)))?;
        let mut row = ScheduleRow {
            id: 0,
            tenant_id: caller.tenant_id.clone(),
            sprite_id: sprite.id,
            cron: crontab.text.clone(),
            action: action.into(),
            cmd,
            comment,
            created_by_token: Some(caller.token.id.clone()),
            created_at: db::now_s(),
            next_run_ms: first.timestamp_millis(),
        };
        row.id = db::schedules::insert(self.pool, &row).await?;
        tracing::info!(tenant = %caller.tenant_id, sprite = %sprite.name, schedule = row.id,
            cron = %crontab.text, action, "schedule added");
        Ok(ScheduleView::new(
            &row,
            &sprite.name,
            &crontab,
            next_runs,
            Vec::new(),
        ))
    }

    /// The schedules of the caller's sprite `name`, each with its last runs.
    pub async fn list(&self, caller: &Caller, name: &str) -> ApiResult<Vec<ScheduleView>> {
        let sprite = self.sprites.get(caller, name).await?;
        let rows = db::schedules::for_sprite(self.pool, &caller.tenant_id, sprite.id).await?;
        let seconds = seconds_allowed(self.config);
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let runs = db::schedules::runs(self.pool, &caller.tenant_id, row.id, RUNS_SHOWN)
                .await?
                .into_iter()
                .map(RunView::from)
                .collect();
            // A stored expression always parsed once; one the operator no longer
            // accepts (seconds turned off) shows no next times.
            let (crontab, next) = match Crontab::parse(&row.cron, seconds) {
                Ok(c) => {
                    let next = c.next_runs(Utc::now(), NEXT_RUNS);
                    (Some(c), next)
                }
                Err(_) => (None, Vec::new()),
            };
            out.push(ScheduleView::from_parts(
                &row,
                &sprite.name,
                crontab.as_ref(),
                next,
                runs,
            ));
        }
        Ok(out)
    }

    /// Deletes schedule `id` of the caller's sprite `name`.
    pub async fn delete(&self, caller: &Caller, name: &str, id: &str) -> ApiResult<()> {
        let sprite = self.sprites.get(caller, name).await?;
        let not_found = || ApiError::not_found(format!("schedule {id:?}"));
        let id: i64 = id.parse().map_err(|_| not_found())?;
        if !db::schedules::delete(self.pool, &caller.tenant_id, sprite.id, id).await? {
            return Err(not_found());
        }
        tracing::info!(tenant = %caller.tenant_id, sprite = %sprite.name, schedule = id,
            "schedule deleted");
        Ok(())
    }
}
