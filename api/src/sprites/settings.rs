//! Changing a sprite's settings after create: the port its URL reaches, who may open
//! the URL, and its idle timeout.

use super::lifecycle::in_range;
use super::Sprites;
use crate::caller::Caller;
use crate::db::{self, sprites::SpriteRow};
use crate::error::ApiError;
use crate::names::UrlAuth;

/// What a caller changes; absent fields stay as they are.
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSprite {
    /// The port inside the sprite its URL reaches.
    pub http_port: Option<i64>,
    /// Who may open its URL: `sprite` or `public`.
    pub url_auth: Option<UrlAuth>,
    /// Idle seconds before it pauses (0 = never).
    pub idle_timeout_s: Option<i64>,
}

impl Sprites {
    /// Applies `update` to the caller's sprite called `name`.
    #[tracing::instrument(skip_all, fields(tenant = %caller.tenant_id, sprite = name))]
    pub async fn update(
        &self,
        caller: &Caller,
        name: &str,
        update: UpdateSprite,
    ) -> Result<SpriteRow, ApiError> {
        let sprite = self.get(caller, name).await?;
        let http_port = match update.http_port {
            Some(port) => in_range("http_port", port, 1, 65_535)?,
            None => sprite.http_port,
        };
        let idle_timeout_s = match update.idle_timeout_s {
            Some(s) => in_range("idle_timeout_s", s, 0, 30 * 86_400)?,
            None => sprite.idle_timeout_s,
        };
        let url_auth = update.url_auth.unwrap_or(sprite.url_auth);
        db::sprites::set_settings(&self.pool, sprite.id, http_port, url_auth, idle_timeout_s)
            .await?;
        if url_auth != sprite.url_auth {
            tracing::info!(%url_auth, "sprite URL access changed");
        }
        self.reload(&sprite).await
    }
}
