//! Checkpoints: create (within the per-sprite limit), list, restore, delete.

use vmm_driver::CheckpointId;

use super::limits;
use super::{driver_error, machine, Sprites};
use crate::db::{self, sprites::CheckpointRow, sprites::SpriteRow};
use crate::error::ApiError;
use crate::names::SpriteState;

fn checkpoint_id(row_id: i64) -> CheckpointId {
    CheckpointId::from_key(row_id as u64)
}

impl Sprites {
    /// Saves memory, processes and disk of a sprite.
    #[tracing::instrument(skip_all, fields(tenant = %sprite.tenant_id, sprite = %sprite.name))]
    pub async fn checkpoint(
        &self,
        sprite: &SpriteRow,
        comment: &str,
    ) -> Result<CheckpointRow, ApiError> {
        self.until_started().await;
        if comment.chars().count() > 500 {
            return Err(ApiError::Validation(
                "comment must be at most 500 characters".into(),
            ));
        }
        let _busy = self.busy(sprite.id);
        let sprite = self.wake(sprite, "checkpoint").await?;
        let lock = self.lock_of(sprite.id);
        let _held = lock.lock().await;
        let limits = limits::effective(&self.pool, &self.config, &sprite.tenant_id).await?;
        let existing = db::sprites::checkpoints(&self.pool, sprite.id).await?;
        if existing.len() as i64 >= limits.max_checkpoints_per_sprite {
            return Err(ApiError::LimitExceeded(format!(
                "max_checkpoints_per_sprite: the sprite already has {} checkpoints, the limit is {}",
                existing.len(),
                limits.max_checkpoints_per_sprite
            )));
        }
        let now = db::now_s();
        let id = db::sprites::insert_checkpoint(&self.pool, sprite.id, comment, now).await?;
        match self
            .driver
            .checkpoint(&machine(&sprite), &checkpoint_id(id))
            .await
        {
            Ok(info) => {
                db::sprites::set_checkpoint_size(&self.pool, id, info.size_bytes as i64).await?;
                db::sprites::touch(&self.pool, sprite.id, "checkpoint", db::now_s()).await?;
                Ok(CheckpointRow {
                    id,
                    sprite_id: sprite.id,
                    comment: comment.into(),
                    created_at: now,
                    size_bytes: info.size_bytes as i64,
                })
            }
            Err(error) => {
                db::sprites::delete_checkpoint(&self.pool, sprite.id, id).await?;
                Err(driver_error(error))
            }
        }
    }

    /// A sprite's checkpoints.
    pub async fn checkpoints(&self, sprite: &SpriteRow) -> Result<Vec<CheckpointRow>, ApiError> {
        Ok(db::sprites::checkpoints(&self.pool, sprite.id).await?)
    }

    async fn find_checkpoint(
        &self,
        sprite: &SpriteRow,
        id: i64,
    ) -> Result<CheckpointRow, ApiError> {
        db::sprites::checkpoints(&self.pool, sprite.id)
            .await?
            .into_iter()
            .find(|c| c.id == id)
            .ok_or_else(|| ApiError::not_found(format!("checkpoint {id}")))
    }

    /// Puts the sprite back exactly as it was at the checkpoint; it is left running.
    #[tracing::instrument(skip_all, fields(tenant = %sprite.tenant_id, sprite = %sprite.name))]
    pub async fn restore(&self, sprite: &SpriteRow, id: i64) -> Result<SpriteRow, ApiError> {
        self.until_started().await;
        let checkpoint = self.find_checkpoint(sprite, id).await?;
        let _busy = self.busy(sprite.id);
        let lock = self.lock_of(sprite.id);
        let _held = lock.lock().await;
        let current = self.reload(sprite).await?;
        // Restoring starts a sprite that is not running: like a resume, it must fit the
        // scaling limits and the budget.
        let _admitted = match current.state {
            SpriteState::Running => None,
            _ => Some(self.admit(&current).await?),
        };
        self.driver
            .restore(&machine(sprite), &checkpoint_id(checkpoint.id))
            .await
            .map_err(driver_error)?;
        db::sprites::set_state(&self.pool, sprite.id, SpriteState::Running, None).await?;
        db::sprites::touch(&self.pool, sprite.id, "restore", db::now_s()).await?;
        db::sprites::by_id(&self.pool, &sprite.tenant_id, sprite.id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("sprite {:?}", sprite.name)))
    }

    /// Removes a checkpoint.
    pub async fn delete_checkpoint(&self, sprite: &SpriteRow, id: i64) -> Result<(), ApiError> {
        let checkpoint = self.find_checkpoint(sprite, id).await?;
        self.driver
            .delete_checkpoint(&machine(sprite), &checkpoint_id(checkpoint.id))
            .await
            .map_err(driver_error)?;
        db::sprites::delete_checkpoint(&self.pool, sprite.id, checkpoint.id).await?;
        Ok(())
    }
}
