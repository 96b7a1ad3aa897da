//! A sprite and a checkpoint as the API shows them, built by the sprites service
//! (disk use from the last metering sample, cost from the ledger).

use serde::Serialize;
use utoipa::ToSchema;

use super::Sprites;
use crate::db::sprites::{CheckpointRow, SpriteRow};
use crate::domain::rfc3339;
use crate::error::ApiResult;
use crate::names::{PauseReason, SpriteState, UrlAuth};

/// A sprite.
#[derive(Serialize, ToSchema)]
pub struct SpriteView {
    pub name: String,
    pub state: SpriteState,
    /// The image it was made from (`GET /v1/images`).
    pub image: String,
    /// Set when paused.
    pub pause_reason: Option<PauseReason>,
    /// Why it is paused and what brings it back, in words (set when paused).
    pub pause_why: Option<String>,
    pub cpus: i64,
    pub memory_mb: i64,
    pub disk_mb: i64,
    pub disk_used_bytes: u64,
    /// Its bandwidth through the way out, megabits per second (`null`: the server's).
    pub network_mbps: Option<i64>,
    pub idle_timeout_s: i64,
    pub created_at: String,
    pub last_active_at: String,
    /// What last kept the sprite awake: create, exec, files, console, checkpoint, resume,
    /// restore, or cpu (its processes were busy: `CORRAL_IDLE_CPU_BUSY_PCT`).
    pub last_activity: String,
    pub created_by_token: Option<String>,
    /// Spent by this sprite so far, in nano-dollars.
    pub cost_nanos: i64,
    /// Its URL: requests reach `http_port` inside it (waking it when idle).
    pub url: String,
    /// The port inside the sprite its URL reaches.
    pub http_port: i64,
    /// Who may open its URL: `sprite` (a token with `sprites:http`, or a link's cookie)
    /// or `public`.
    pub url_auth: UrlAuth,
}

impl SpriteView {
    /// The view of a row with its disk use and cost.
    pub fn new(
        row: SpriteRow,
        disk_used_bytes: u64,
        cost_nanos: i64,
        url: String,
        why: Option<String>,
    ) -> Self {
        Self {
            pause_why: why,
            url,
            http_port: row.http_port,
            url_auth: row.url_auth,
            name: row.name,
            state: row.state,
            image: row.image,
            pause_reason: row.pause_reason,
            cpus: row.cpus,
            memory_mb: row.memory_mb,
            disk_mb: row.disk_mb,
            disk_used_bytes,
            network_mbps: row.network_mbps,
            idle_timeout_s: row.idle_timeout_s,
            created_at: rfc3339(row.created_at),
            last_active_at: rfc3339(row.last_active_at),
            last_activity: row.last_activity,
            created_by_token: row.created_by_token,
            cost_nanos,
        }
    }
}

impl Sprites {
    /// A sprite as the API shows it, with disk use and cost so far (as of the last
    /// metering tick).
    pub async fn view(&self, row: SpriteRow) -> ApiResult<SpriteView> {
        let mut conn = self.pool.acquire().await?;
        let cost = corral_metering::db::sprite_cost(&mut conn, row.tenant_id.as_str(), row.id)
            .await?
            .get();
        Ok(self.view_with_cost(row, cost))
    }

    /// Many of one tenant's sprites, with the costs listed beside them.
    pub fn views(&self, rows: Vec<(SpriteRow, i64)>) -> Vec<SpriteView> {
        rows.into_iter()
            .map(|(row, cost)| self.view_with_cost(row, cost))
            .collect()
    }

    fn view_with_cost(&self, row: SpriteRow, cost: i64) -> SpriteView {
        let disk = self.disk_used(&row);
        let url = self.front.get().map(|f| f.url_of(&row)).unwrap_or_default();
        let why = self.pause_why(&row);
        SpriteView::new(row, disk, cost, url, why)
    }
}

/// A checkpoint.
#[derive(Serialize, ToSchema)]
pub struct CheckpointView {
    pub id: String,
    pub comment: String,
    pub created_at: String,
    pub size_bytes: i64,
}

impl From<CheckpointRow> for CheckpointView {
    fn from(row: CheckpointRow) -> Self {
        Self {
            id: row.id.to_string(),
            comment: row.comment,
            created_at: rfc3339(row.created_at),
            size_bytes: row.size_bytes,
        }
    }
}
