//! Bringing back a sprite whose sandbox died under it (killed for memory, crashed):
//! the database still says running, so without this every call would fail for good.

use std::time::Duration;

use vmm_driver::{DriverError, ExecRequest, MachineState};

use super::{machine, Sprites};
use crate::db::{self, sprites::SpriteRow};
use crate::error::ApiError;
use crate::names::SpriteState;

/// How long the liveness probe may take before the sandbox counts as alive but busy.
const PROBE: Duration = Duration::from_secs(5);

impl Sprites {
    /// After a call failed with `error`: when the sprite should be running but its
    /// sandbox is gone, starts it again on its disk and records why in its last
    /// activity. Answers the reason when it did, `None` when the sandbox is fine (the
    /// failure was something else) or the sprite is not meant to run.
    #[tracing::instrument(skip_all, fields(tenant = %sprite.tenant_id, sprite = %sprite.name))]
    pub(super) async fn revive(
        &self,
        sprite: &SpriteRow,
        error: &DriverError,
    ) -> Result<Option<String>, ApiError> {
        if !matches!(error, DriverError::InvalidState(_)) {
            return Ok(None);
        }
        let lock = self.lock_of(sprite.id);
        let _held = lock.lock().await;
        let current = db::sprites::by_id(&self.pool, &sprite.tenant_id, sprite.id).await?;
        if current
            .as_ref()
            .is_none_or(|c| c.state != SpriteState::Running)
        {
            return Ok(None);
        }
        let id = machine(sprite);
        // A call on a dead sandbox is what makes the driver notice (and say why).
        let probe = ExecRequest {
            argv: vec!["true".into()],
            timeout: Some(PROBE),
            ..Default::default()
        };
        let probed = tokio::time::timeout(PROBE, self.driver.exec(&id, probe)).await;
        let why_probe = match probed {
            Ok(Err(DriverError::InvalidState(why))) => why,
            _ => return Ok(None),
        };
        let listed = self.driver.list().await.map_err(super::driver_error)?;
        if !listed
            .iter()
            .any(|m| m.id == id && m.state == MachineState::Stopped)
        {
            return Ok(None);
        }
        let why = [error.to_string(), why_probe]
            .into_iter()
            .find_map(|w| w.split_once("unexpectedly: ").map(|(_, r)| r.to_string()))
            .unwrap_or_else(|| "the sandbox stopped".into());
        tracing::warn!(%why, "sandbox died; restarting the sprite on its disk");
        let activity = format!("restart: {why}");
        if let Err(e) = self.driver.start(&id).await {
            // Left stopped, with the reason; `resume` starts it again.
            tracing::warn!(error = ?e, "restarting the sprite failed");
            db::sprites::set_state(&self.pool, sprite.id, SpriteState::Stopped, None).await?;
            db::sprites::touch(&self.pool, sprite.id, &activity, db::now_s()).await?;
            return Err(ApiError::Conflict(format!(
                "sprite {:?} stopped unexpectedly ({why}) and could not be restarted; \
                 resume it to try again",
                sprite.name
            )));
        }
        db::sprites::touch(&self.pool, sprite.id, &activity, db::now_s()).await?;
        Ok(Some(why))
    }
}
