//! Images as tenants see them: the operator's (built on the host) and their own, saved
//! from a sprite. Which image a create uses, saving, deleting (a deleted image stays,
//! billed, until nothing stands on it), and noticing when its files are gone.

use serde::Serialize;
use utoipa::ToSchema;
use vmm_driver::{ImageId, ImageRef};

use super::{driver_error, machine, Sprites};
use crate::caller::Caller;
use crate::db::{self, images::ImageRow, sprites::SpriteRow};
use crate::domain::rfc3339;
use crate::error::ApiError;
use crate::names::TenantId;

/// An image a tenant may create sprites from.
#[derive(Serialize, ToSchema)]
pub struct ImageView {
    pub name: String,
    /// `operator` (built on the host) or `tenant` (saved from one of your sprites).
    pub owner: &'static str,
    /// Bytes it occupies; a tenant image's are billed as disk.
    pub size_bytes: u64,
    /// Debian packages over the minimal base (operator images).
    pub packages: Vec<String>,
    /// The sprite it was saved from (tenant images).
    pub source_sprite: Option<String>,
    /// `ready`, or `saving` while a save is under way.
    pub state: String,
    pub created_at: String,
}

/// `GET /v1/images`.
#[derive(Serialize, ToSchema)]
pub struct ImageList {
    /// The image a create without `image` uses.
    pub default: String,
    pub images: Vec<ImageView>,
}

/// The answer to deleting an image.
#[derive(Serialize, ToSchema)]
pub struct DeletedImage {
    pub name: String,
    /// `deleted` (its files are gone), or `deleting`: sprites made from it still
    /// exist, so its files stay, billed, until the last of them is deleted.
    pub state: &'static str,
    /// Live sprites made from it.
    pub sprites: i64,
}

/// What a create stands on: the image's name, its tenant row, and the driver's ref.
pub struct Chosen {
    pub name: String,
    pub image_id: Option<i64>,
}

/// The driver's name for a sprite's image.
pub fn image_ref(sprite: &SpriteRow) -> ImageRef {
    match sprite.image_id {
        Some(id) => ImageRef::Saved(image_id(id)),
        None => ImageRef::Operator(sprite.image.clone()),
    }
}

fn image_id(row_id: i64) -> ImageId {
    ImageId::from_key(row_id as u64)
}

fn tenant_view(row: ImageRow) -> ImageView {
    ImageView {
        name: row.name,
        owner: "tenant",
        size_bytes: u64::try_from(row.size_bytes).unwrap_or(0),
        packages: Vec::new(),
        source_sprite: Some(row.source_sprite),
        state: row.state,
        created_at: rfc3339(row.created_at),
    }
}

impl Sprites {
    /// The operator's images and the tenant's own.
    pub async fn images(&self, tenant_id: &TenantId) -> Result<ImageList, ApiError> {
        let mut images: Vec<ImageView> = self
            .driver
            .images()
            .into_iter()
            .map(|i| ImageView {
                name: i.name,
                owner: "operator",
                size_bytes: i.size_bytes,
                packages: i.packages,
                source_sprite: None,
                state: "ready".into(),
                created_at: rfc3339(i.built_at),
            })
            .collect();
        let own = db::images::list(&self.pool, tenant_id).await?;
        images.extend(own.into_iter().map(tenant_view));
        Ok(ImageList {
            default: self.config.default_image.clone(),
            images,
        })
    }

    /// The image a create asked for (or the default): a tenant image of the caller's
    /// tenant, else an operator image; 422 naming the ones there are.
    pub(super) async fn choose_image(
        &self,
        tenant_id: &TenantId,
        asked: Option<&str>,
    ) -> Result<Chosen, ApiError> {
        let name = asked.unwrap_or(&self.config.default_image);
        if let Some(row) = db::images::by_name(&self.pool, tenant_id, name).await? {
            if row.state != "ready" {
                return Err(ApiError::Conflict(format!(
                    "image {name:?} is still being saved; try again when it is ready"
                )));
            }
            return Ok(Chosen {
                name: row.name,
                image_id: Some(row.id),
            });
        }
        if self.driver.images().iter().any(|i| i.name == name) {
            return Ok(Chosen {
                name: name.to_string(),
                image_id: None,
            });
        }
        if asked.is_none() {
            return Err(ApiError::Unavailable(format!(
                "the default image {name:?} is not built on this server (its operator runs \
                 `corral image build {name}`)"
            )));
        }
        let available = self.images(tenant_id).await?;
        let names: Vec<String> = available.images.into_iter().map(|i| i.name).collect();
        Err(ApiError::Validation(if names.is_empty() {
            format!(
                "no image {name:?}: this server has no images yet (its operator builds them \
                 with `corral image build default`)"
            )
        } else {
            format!(
                "no image {name:?}; the images you may use: {}",
                names.join(", ")
            )
        }))
    }

    /// Saves the sprite's files as an image private to the tenant.
    #[tracing::instrument(skip_all, fields(tenant = %sprite.tenant_id, sprite = %sprite.name))]
    pub async fn save_image(
        &self,
        caller: &Caller,
        sprite: &SpriteRow,
        name: &str,
    ) -> Result<ImageView, ApiError> {
        self.until_started().await;
        if !vmm_driver::gvisor::image::valid_name(name) {
            return Err(ApiError::Validation(format!(
                "image name {name:?}: use 1 to 40 of a-z, 0-9, '-', '_', '.', starting with a letter or digit"
            )));
        }
        if self.driver.images().iter().any(|i| i.name == name) {
            return Err(ApiError::Conflict(format!(
                "{name:?} is the name of one of the operator's images; pick another"
            )));
        }
        let _busy = self.busy(sprite.id);
        let lock = self.lock_of(sprite.id);
        let _held = lock.lock().await;
        let sprite = self.reload(sprite).await?;
        let now = db::now_s();
        let Some(id) = db::images::insert(
            &self.pool,
            &sprite.tenant_id,
            name,
            &sprite.name,
            &caller.token.id,
            now,
        )
        .await?
        else {
            return Err(ApiError::Conflict(format!(
                "you already have an image named {name:?}"
            )));
        };
        match self
            .driver
            .save_image(&machine(&sprite), &image_id(id))
            .await
        {
            Ok(bytes) => {
                let size = i64::try_from(bytes).unwrap_or(i64::MAX);
                db::images::set_ready(&self.pool, id, size).await?;
                tracing::info!(image = name, bytes, "image saved");
                let row = db::images::by_name(&self.pool, &sprite.tenant_id, name)
                    .await?
                    .ok_or_else(|| ApiError::not_found(format!("image {name:?}")))?;
                Ok(tenant_view(row))
            }
            Err(error) => {
                db::images::forget(&self.pool, id).await?;
                Err(driver_error(error))
            }
        }
    }

    /// Deletes one of the tenant's images. Its files go at once when no sprite stands
    /// on it, else when the last one does (see [`Sprites::collect_images`]).
    #[tracing::instrument(skip_all, fields(tenant = %tenant_id))]
    pub async fn delete_image(
        &self,
        tenant_id: &TenantId,
        name: &str,
    ) -> Result<DeletedImage, ApiError> {
        let Some(row) = db::images::by_name(&self.pool, tenant_id, name).await? else {
            if self.driver.images().iter().any(|i| i.name == name) {
                return Err(ApiError::Forbidden(format!(
                    "{name:?} is one of the operator's images; only your own can be deleted"
                )));
            }
            return Err(ApiError::not_found(format!("image {name:?}")));
        };
        if row.state == "saving" {
            return Err(ApiError::Conflict(format!(
                "image {name:?} is still being saved; delete it when it is ready"
            )));
        }
        db::images::mark_deleting(&self.pool, row.id, db::now_s()).await?;
        self.driver
            .delete_image(&image_id(row.id))
            .await
            .map_err(driver_error)?;
        let sprites = db::images::sprites_on(&self.pool, row.id).await?;
        self.collect_images().await?;
        let gone = !self.driver.image_exists(&image_id(row.id));
        Ok(DeletedImage {
            name: row.name,
            state: if gone { "deleted" } else { "deleting" },
            sprites,
        })
    }

    /// Tenant images whose bytes are stored and billed (the meter's view).
    pub async fn stored_images(&self) -> sqlx::Result<Vec<ImageRow>> {
        db::images::stored(&self.pool).await
    }

    /// Marks deleted images whose files the driver has removed as gone, so they stop
    /// being billed. Runs after every sprite and image delete, and at start.
    pub async fn collect_images(&self) -> Result<(), ApiError> {
        for id in db::images::deleting(&self.pool).await? {
            if !self.driver.image_exists(&image_id(id)) {
                db::images::mark_gone(&self.pool, id).await?;
                tracing::info!(image = id, "deleted image's files are gone");
            }
        }
        Ok(())
    }
}
