//! A sprite and a checkpoint as the API shows them.

use serde::Serialize;
use utoipa::ToSchema;

use crate::db::sprites::{CheckpointRow, SpriteRow};
use crate::domain::rfc3339;

/// A sprite.
#[derive(Serialize, ToSchema)]
pub struct SpriteView {
    pub name: String,
    /// creating, running, paused, lost, deleting.
    pub state: String,
    /// user, idle, budget, limit or billing when paused.
    pub pause_reason: Option<String>,
    pub cpus: i64,
    pub memory_mb: i64,
    pub disk_mb: i64,
    pub disk_used_bytes: u64,
    pub idle_timeout_s: i64,
    pub created_at: String,
    pub last_active_at: String,
    /// What last kept the sprite awake: create, exec, files, console, checkpoint, resume, restore.
    pub last_activity: String,
    pub created_by_token: Option<String>,
    /// Spent by this sprite so far, in nano-dollars.
    pub cost_nanos: i64,
}

impl SpriteView {
    /// The view of a row with its disk use and cost.
    pub fn new(row: SpriteRow, disk_used_bytes: u64, cost_nanos: i64) -> Self {
        Self {
            name: row.name,
            state: row.state,
            pause_reason: row.pause_reason,
            cpus: row.cpus,
            memory_mb: row.memory_mb,
            disk_mb: row.disk_mb,
            disk_used_bytes,
            idle_timeout_s: row.idle_timeout_s,
            created_at: rfc3339(row.created_at),
            last_active_at: rfc3339(row.last_active_at),
            last_activity: row.last_activity,
            created_by_token: row.created_by_token,
            cost_nanos,
        }
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
