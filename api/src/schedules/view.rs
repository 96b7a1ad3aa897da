//! A schedule and a run as the API shows them.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::crontab::Crontab;
use crate::db::schedules::{RunRow, ScheduleRow};

/// A schedule on a sprite.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct ScheduleView {
    pub id: String,
    pub sprite: String,
    /// As it was given (crontab in UTC, or an `@name`).
    pub cron: String,
    /// The `cron` crate's seconds-first form it runs as (two when crontab's "day of
    /// month or day of week" rule applies).
    pub cron_expressions: Vec<String>,
    /// The command it runs; `null` for a checkpoint schedule.
    pub cmd: Option<Vec<String>>,
    /// Whether it takes a checkpoint.
    pub checkpoint: bool,
    pub comment: String,
    pub created_at: String,
    /// The next three times it fires, RFC 3339 UTC.
    pub next_runs: Vec<String>,
    /// The last runs, newest first.
    pub last_runs: Vec<RunView>,
}

/// One run of a schedule.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct RunView {
    pub started_at: String,
    pub finished_at: Option<String>,
    /// `running`, `ok` (it ran; see `exit_code`), `failed` or `refused`.
    pub outcome: String,
    pub exit_code: Option<i64>,
    /// The end of what the command wrote (stdout, then stderr).
    pub output_tail: Option<String>,
    /// Why it was refused (budget exhausted, sprite paused for budget or billing, …).
    pub refused_reason: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
    /// The checkpoint it made.
    pub checkpoint_id: Option<String>,
}

fn time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn time_ms(ms: i64) -> String {
    time(&DateTime::from_timestamp_millis(ms).unwrap_or_default())
}

impl ScheduleView {
    /// The view of a schedule just made.
    pub fn new(
        row: &ScheduleRow,
        sprite: &str,
        crontab: &Crontab,
        next: Vec<DateTime<Utc>>,
        runs: Vec<RunView>,
    ) -> Self {
        Self::from_parts(row, sprite, Some(crontab), next, runs)
    }

    /// The view of a stored schedule.
    pub fn from_parts(
        row: &ScheduleRow,
        sprite: &str,
        crontab: Option<&Crontab>,
        next: Vec<DateTime<Utc>>,
        runs: Vec<RunView>,
    ) -> Self {
        Self {
            id: row.id.to_string(),
            sprite: sprite.to_string(),
            cron: row.cron.clone(),
            cron_expressions: crontab.map(|c| c.expressions.clone()).unwrap_or_default(),
            cmd: row
                .cmd
                .as_deref()
                .and_then(|c| serde_json::from_str(c).ok()),
            checkpoint: row.action == "checkpoint",
            comment: row.comment.clone(),
            created_at: crate::domain::rfc3339(row.created_at),
            next_runs: next.iter().map(time).collect(),
            last_runs: runs,
        }
    }
}

impl From<RunRow> for RunView {
    fn from(r: RunRow) -> Self {
        let refused = r.outcome == "refused";
        Self {
            started_at: time_ms(r.started_ms),
            finished_at: r.finished_ms.map(time_ms),
            exit_code: r.exit_code,
            output_tail: r.output_tail,
            refused_reason: if refused { r.detail.clone() } else { None },
            error: if refused { None } else { r.detail },
            checkpoint_id: r.checkpoint_id.map(|id| id.to_string()),
            outcome: r.outcome,
        }
    }
}
