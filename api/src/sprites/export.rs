//! Exporting a sprite as an OCI image archive: the driver writes the sprite's files as
//! a tar into a scratch file under the data directory (unlinked once open, so nothing
//! is left behind), and `oci` streams the archive around it.

use std::path::PathBuf;

use futures_util::Stream;

use super::oci::{self, ImageConfig};
use super::{driver_error, machine, Sprites};
use crate::db::{self, sprites::SpriteRow};
use crate::error::ApiError;

/// The scratch directory of exports (emptied when the server starts).
pub fn scratch_dir(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("exports")
}

impl Sprites {
    /// The sprite's filesystem as an OCI archive: its length and its bytes.
    #[tracing::instrument(skip_all, fields(tenant = %sprite.tenant_id, sprite = %sprite.name))]
    pub async fn export(
        &self,
        sprite: &SpriteRow,
    ) -> Result<(u64, impl Stream<Item = std::io::Result<Vec<u8>>>), ApiError> {
        self.until_started().await;
        let layer = {
            let _busy = self.busy(sprite.id);
            let lock = self.lock_of(sprite.id);
            let _held = lock.lock().await;
            let sprite = self.reload(sprite).await?;
            let dir = scratch_dir(&self.config.data_dir);
            std::fs::create_dir_all(&dir).map_err(|e| ApiError::Internal(e.into()))?;
            let path = dir.join(format!(
                "{}-{}.tar",
                sprite.id,
                uuid::Uuid::new_v4().simple()
            ));
            let written = self.driver.export(&machine(&sprite), &path).await;
            let opened = match written {
                Ok(()) => tokio::fs::File::open(&path)
                    .await
                    .map_err(|e| ApiError::Internal(e.into())),
                Err(error) => Err(driver_error(error)),
            };
            let _ = std::fs::remove_file(&path);
            opened?
        };
        db::sprites::touch(&self.pool, sprite.id, "export", db::now_s()).await?;
        let image = ImageConfig {
            title: sprite.name.clone(),
            created: db::now_s(),
        };
        oci::archive(layer, image)
            .await
            .map_err(|e| ApiError::Internal(e.into()))
    }
}
