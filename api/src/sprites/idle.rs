//! Idle pause: a sprite with no exec, file or console activity for its idle timeout is
//! paused with reason `idle`, and wakes on the next call.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::Sprites;
use crate::db;
use crate::names::{PauseReason, SpriteState};

impl Sprites {
    /// Pauses every running sprite idle past its timeout; returns how many.
    pub async fn pause_idle(&self) -> anyhow::Result<usize> {
        let now = db::now_s();
        let mut paused = 0;
        for sprite in db::sprites::all_live(&self.pool).await? {
            let idle_for = now - sprite.last_active_at;
            if sprite.state != SpriteState::Running
                || sprite.idle_timeout_s == 0
                || idle_for < sprite.idle_timeout_s
                || self.is_busy(sprite.id)
            {
                continue;
            }
            match self.pause(&sprite, PauseReason::Idle).await {
                Ok(_) => paused += 1,
                Err(error) => {
                    tracing::warn!(sprite = sprite.id, error = %error, "idle pause failed")
                }
            }
        }
        Ok(paused)
    }
}

/// Checks for idle sprites every second until shutdown.
pub async fn reaper(sprites: Arc<Sprites>, mut stop: watch::Receiver<bool>) -> anyhow::Result<()> {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {
                if let Err(error) = sprites.pause_idle().await {
                    tracing::warn!(error = ?error, "idle check failed");
                }
            }
            _ = stop.changed() => return Ok(()),
        }
    }
}
