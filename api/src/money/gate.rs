//! The budget gate behind create, resume, exec and wake, over metering's admissions:
//! a refusal becomes the 402 naming the scope, what is left and when the period resets.

use std::sync::Arc;

use async_trait::async_trait;
use corral_metering::{Admissions, Candidate, Refusal, RuleWindow, Scope};
use sqlx::SqlitePool;

use crate::config::Config;
use crate::db::sprites::SpriteRow;
use crate::error::ApiError;
use crate::names::TenantId;
use crate::sprites::BudgetGate;

/// [`BudgetGate`] over metering's [`Admissions`]: the rule decides, this only turns a
/// refusal into the caller's 402.
pub struct MeterGate {
    admissions: Admissions,
    /// The operator's bandwidth per sprite, megabits per second.
    network_mbps: u32,
    /// A sprite of the default size: (cpus, memory MB, disk MB).
    default_shape: (u32, u32, u64),
}

impl MeterGate {
    /// A gate reading `pool` with the prices, tick and runway of `config`, and the
    /// rule's window the meter publishes.
    pub fn new(pool: SqlitePool, config: &Config, window: Arc<RuleWindow>) -> Self {
        Self {
            admissions: Admissions::new(
                pool,
                super::meter_config(config),
                config.min_runway_s,
                window,
            ),
            network_mbps: config.network_mbps,
            default_shape: (
                config.default_cpus,
                u32::try_from(config.default_memory_mb).unwrap_or(u32::MAX),
                config.default_disk_mb,
            ),
        }
    }
}

#[async_trait]
impl BudgetGate for MeterGate {
    #[tracing::instrument(skip_all, fields(tenant = %sprite.tenant_id, sprite = %sprite.name))]
    async fn allow_run(&self, sprite: &SpriteRow) -> Result<(), ApiError> {
        let candidate = Candidate {
            sprite_id: sprite.id,
            tenant_id: sprite.tenant_id.as_str(),
            created_by_token: sprite.created_by_token.as_deref(),
            cpus: u32::try_from(sprite.cpus).unwrap_or(u32::MAX),
            memory_mb: u32::try_from(sprite.memory_mb).unwrap_or(u32::MAX),
            disk_bytes: super::fleet::disk_bytes(sprite.disk_mb),
            network_bytes_per_s: super::network_bytes_per_s(self.network_mbps, sprite.network_mbps),
        };
        match self.admissions.admit(&candidate).await? {
            Ok(()) => Ok(()),
            Err(refusal) => {
                tracing::info!(scope = %refusal.scope, available = refusal.available.get(),
                    needed = refusal.needed.get(), "refused for budget");
                Err(refusal_error(&refusal, self.admissions.runway_s()))
            }
        }
    }

    async fn start_refusal(&self, tenant_id: &TenantId) -> Result<Option<ApiError>, ApiError> {
        let (cpus, memory_mb, disk_mb) = self.default_shape;
        let candidate = Candidate {
            sprite_id: 0,
            tenant_id: tenant_id.as_str(),
            created_by_token: None,
            cpus,
            memory_mb,
            disk_bytes: super::fleet::disk_bytes(disk_mb as i64),
            network_bytes_per_s: super::network_bytes_per_s(self.network_mbps, None),
        };
        Ok(self
            .admissions
            .would_admit(&candidate)
            .await?
            .err()
            .map(|refusal| refusal_error(&refusal, self.admissions.runway_s())))
    }
}

/// A refusal as the 402 the caller sees: which scope, what is left, what the runway
/// needs, when the period resets and how to get going again.
pub fn refusal_error(r: &Refusal, runway_s: u64) -> ApiError {
    let resets = corral_metering::period::rfc3339(r.resets_at_ms);
    let left = format!(
        "{} left ({} nano-dollars) after the reservation for stored data",
        r.available.usd(),
        r.available.get()
    );
    let need = format!(
        "running it for the {runway_s} s minimum runway at full speed (a new sprite's whole \
         disk reserved to the period's end included) needs {}",
        r.needed.usd()
    );
    match &r.scope {
        Scope::Tenant(_) => ApiError::BudgetExhausted(format!(
            "the tenant's monthly budget has {left}; {need}; the period resets at {resets}. \
             Raise the cap with PUT /v1/budget."
        )),
        Scope::Token(id) => ApiError::TokenBudgetExhausted(format!(
            "the budget of API token {id} has {left}; {need}; the period resets at {resets}. \
             A token with a larger budget can run it."
        )),
    }
}
