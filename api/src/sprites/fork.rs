//! Forking a sprite: a new sprite with the same disk and memory, made by the driver from
//! a checkpoint of the source, admitted and charged like a create.

use super::limits;
use super::{machine, spec_of, Sprites};
use crate::caller::Caller;
use crate::db::{self, sprites::SpriteRow};
use crate::domain::SpriteName;
use crate::error::ApiError;
use crate::names::SpriteState;

impl Sprites {
    /// Makes `name` from `source`: the same sizes, image, disk contents and running
    /// processes. The fork is the caller's (its spend counts against the caller's
    /// token chain) and must fit the scaling limits and the budget, like a create.
    #[tracing::instrument(skip_all, fields(tenant = %source.tenant_id, sprite = %source.name))]
    pub async fn fork(
        &self,
        caller: &Caller,
        source: &SpriteRow,
        name: &str,
    ) -> Result<SpriteRow, ApiError> {
        self.until_started().await;
        let name = SpriteName::parse(name)?;
        if !caller.may_use_sprite(&name.0) {
            return Err(ApiError::Forbidden(format!(
                "this token cannot use a sprite named {:?}",
                name.0
            )));
        }
        let _busy = self.busy(source.id);
        let lock = self.lock_of(source.id);
        let _held = lock.lock().await;
        let source = self.reload(source).await?;
        if matches!(source.state, SpriteState::Creating | SpriteState::Deleting) {
            return Err(ApiError::Conflict(format!(
                "sprite {:?} is {}; fork it when it is running",
                source.name,
                source.state.as_str()
            )));
        }
        let limits = limits::effective(&self.pool, &self.config, &caller.tenant_id).await?;
        let now = db::now_s();
        let mut row = SpriteRow {
            id: 0,
            tenant_id: caller.tenant_id.clone(),
            name: name.0,
            state: SpriteState::Creating,
            pause_reason: None,
            created_by_token: Some(caller.token.id.clone()),
            created_at: now,
            last_active_at: now,
            last_activity: "fork".into(),
            ..source.clone()
        };
        self.register(caller, &limits, &mut row, None).await?;
        let forked = self.driver.fork(&machine(&source), &spec_of(&row)).await;
        self.started_or_removed(&mut row, forked).await?;
        db::sprites::touch(&self.pool, source.id, "fork", db::now_s()).await?;
        tracing::info!(fork = %row.name, "sprite forked");
        Ok(row)
    }
}
