//! Schedules on a sprite over HTTP: create (answers the next three times), list with
//! the last runs, delete.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::ApiResult;
use crate::extract::{AppJson, Schedules as SchedulesScope, Scoped};
use crate::schedules::view::ScheduleView;
use crate::schedules::{NewSchedule, Schedules};
use crate::state::AppState;

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(delete))
}

/// `POST /v1/sprites/{name}/schedules`: a command or a checkpoint on a cron schedule.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSchedule {
    /// Five-field crontab in UTC (`minute hour day-of-month month day-of-week`, Sunday
    /// 0 or 7, names like `mon` and `jan`), or `@yearly`, `@monthly`, `@weekly`,
    /// `@daily`, `@hourly`. With the operator's `CORRAL_SCHEDULE_SECONDS=on`, a leading
    /// sixth field of seconds.
    #[schema(example = "0 3 * * *")]
    cron: String,
    /// The command to run (needs the `exec` scope).
    cmd: Option<Vec<String>>,
    /// Take a checkpoint instead (needs the `checkpoints` scope).
    #[serde(default)]
    checkpoint: bool,
    /// A note; a checkpoint schedule gives it to its checkpoints.
    comment: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ScheduleList {
    schedules: Vec<ScheduleView>,
}

fn service(state: &AppState) -> ApiResult<Schedules<'_>> {
    Ok(Schedules {
        pool: &state.pool,
        config: &state.config,
        sprites: state.sprites()?,
    })
}

/// Adds a schedule; the answer holds its next three times (`next_runs`).
#[utoipa::path(post, path = "/v1/sprites/{name}/schedules", tag = "schedules", security(("bearer" = [])),
    params(("name" = String, Path)), request_body = CreateSchedule,
    responses((status = 201, body = ScheduleView), (status = 403, body = crate::error::Problem),
              (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
async fn create(
    State(state): State<AppState>,
    Scoped(caller, ..): Scoped<SchedulesScope>,
    Path(name): Path<String>,
    AppJson(body): AppJson<CreateSchedule>,
) -> ApiResult<(StatusCode, AppJson<ScheduleView>)> {
    let new = NewSchedule {
        cron: body.cron,
        cmd: body.cmd,
        checkpoint: body.checkpoint,
        comment: body.comment,
    };
    let view = service(&state)?.create(&caller, &name, new).await?;
    Ok((StatusCode::CREATED, AppJson(view)))
}

/// The sprite's schedules with their next times and last runs (newest first).
#[utoipa::path(get, path = "/v1/sprites/{name}/schedules", tag = "schedules", security(("bearer" = [])),
    params(("name" = String, Path)), responses((status = 200, body = ScheduleList)))]
async fn list(
    State(state): State<AppState>,
    Scoped(caller, ..): Scoped<SchedulesScope>,
    Path(name): Path<String>,
) -> ApiResult<AppJson<ScheduleList>> {
    let schedules = service(&state)?.list(&caller, &name).await?;
    Ok(AppJson(ScheduleList { schedules }))
}

/// Deletes a schedule (a run in flight finishes).
#[utoipa::path(delete, path = "/v1/sprites/{name}/schedules/{id}", tag = "schedules", security(("bearer" = [])),
    params(("name" = String, Path), ("id" = String, Path)),
    responses((status = 204), (status = 404, body = crate::error::Problem)))]
async fn delete(
    State(state): State<AppState>,
    Scoped(caller, ..): Scoped<SchedulesScope>,
    Path((name, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    service(&state)?.delete(&caller, &name, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
