//! Scaling limits: the operator's maximums from configuration, which a tenant may lower
//! but never raise.

use serde::{Deserialize, Serialize};
use sqlx::SqlitePool;
use utoipa::ToSchema;

use crate::config::Config;
use crate::db;
use crate::error::ApiError;
use crate::names::TenantId;

/// Limits in force for one tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Limits {
    pub max_running_sprites: i64,
    pub max_total_cpus: i64,
    pub max_total_memory_mb: i64,
    pub max_disk_mb_per_sprite: i64,
    pub max_checkpoints_per_sprite: i64,
    /// Idle seconds before a new sprite pauses, unless it sets its own (0 = never).
    pub default_idle_timeout_s: i64,
}

/// Longest idle timeout a sprite or tenant may set (30 days).
pub const MAX_IDLE_TIMEOUT_S: i64 = 30 * 86_400;

/// A tenant's change: each field lowers (or restores up to the operator's maximum).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsUpdate {
    pub max_running_sprites: Option<i64>,
    pub max_total_cpus: Option<i64>,
    pub max_total_memory_mb: Option<i64>,
    pub max_disk_mb_per_sprite: Option<i64>,
    pub max_checkpoints_per_sprite: Option<i64>,
    pub default_idle_timeout_s: Option<i64>,
}

impl Limits {
    /// The operator's maximums.
    pub fn operator(config: &Config) -> Self {
        Self {
            max_running_sprites: config.max_running_sprites.into(),
            max_total_cpus: config.max_total_cpus.into(),
            max_total_memory_mb: config.max_total_memory_mb as i64,
            max_disk_mb_per_sprite: config.max_disk_mb_per_sprite as i64,
            max_checkpoints_per_sprite: config.max_checkpoints_per_sprite.into(),
            default_idle_timeout_s: config.default_idle_timeout_s as i64,
        }
    }
}

/// The limits in force for `tenant_id`.
#[tracing::instrument(skip_all)]
pub async fn effective(
    pool: &SqlitePool,
    config: &Config,
    tenant_id: &TenantId,
) -> Result<Limits, ApiError> {
    let stored = db::limits::stored(pool, tenant_id).await?;
    let op = Limits::operator(config);
    let pick = |own: Option<i64>, max: i64| own.map_or(max, |own| own.min(max));
    Ok(Limits {
        max_running_sprites: pick(stored.0, op.max_running_sprites),
        max_total_cpus: pick(stored.1, op.max_total_cpus),
        max_total_memory_mb: pick(stored.2, op.max_total_memory_mb),
        max_disk_mb_per_sprite: pick(stored.3, op.max_disk_mb_per_sprite),
        max_checkpoints_per_sprite: pick(stored.4, op.max_checkpoints_per_sprite),
        default_idle_timeout_s: stored.5.unwrap_or(op.default_idle_timeout_s),
    })
}

/// Applies a tenant's change, refusing anything above the operator's maximum.
#[tracing::instrument(skip_all)]
pub async fn update(
    pool: &SqlitePool,
    config: &Config,
    tenant_id: &TenantId,
    change: LimitsUpdate,
) -> Result<Limits, ApiError> {
    let op = Limits::operator(config);
    let fields = [
        (
            "max_running_sprites",
            change.max_running_sprites,
            op.max_running_sprites,
        ),
        ("max_total_cpus", change.max_total_cpus, op.max_total_cpus),
        (
            "max_total_memory_mb",
            change.max_total_memory_mb,
            op.max_total_memory_mb,
        ),
        (
            "max_disk_mb_per_sprite",
            change.max_disk_mb_per_sprite,
            op.max_disk_mb_per_sprite,
        ),
        (
            "max_checkpoints_per_sprite",
            change.max_checkpoints_per_sprite,
            op.max_checkpoints_per_sprite,
        ),
    ];
    // Everything is checked before anything is saved: a refused change saves nothing.
    if let Some(idle) = change.default_idle_timeout_s {
        if !(0..=MAX_IDLE_TIMEOUT_S).contains(&idle) {
            return Err(ApiError::Validation(format!(
                "default_idle_timeout_s must be between 0 and {MAX_IDLE_TIMEOUT_S}"
            )));
        }
    }
    for (name, value, max) in fields {
        let Some(value) = value else { continue };
        if value < 0 {
            return Err(ApiError::Validation(format!("{name} must not be negative")));
        }
        if value > max {
            return Err(ApiError::LimitExceeded(format!(
                "{name} cannot be raised above the operator's maximum of {max}"
            )));
        }
    }
    let change = (
        change.max_running_sprites,
        change.max_total_cpus,
        change.max_total_memory_mb,
        change.max_disk_mb_per_sprite,
        change.max_checkpoints_per_sprite,
        change.default_idle_timeout_s,
    );
    db::limits::save(pool, tenant_id, change).await?;
    effective(pool, config, tenant_id).await
}
