//! Which sprites a token may make run: a token whose chain holds a budget may only run
//! (exec, files, console, checkpoint, restore, resume, wake) sprites whose spend counts
//! against that budget, so the budget bounds all the compute the token can cause.
//!
//! A sprite's spend counts against its creator token and that token's ancestors. So for
//! every budgeted token in the caller's chain (itself and its ancestors), the sprite's
//! creator must be that token or one minted below it.

use std::collections::HashSet;

use super::Sprites;
use crate::caller::Caller;
use crate::db::sprites::SpriteRow;
use crate::db::tokens::TokenRow;
use crate::error::ApiError;
use crate::tokens;

impl Sprites {
    /// The caller's sprite called `name`, refused (403) when running it would spend
    /// money outside a budget of the caller's chain.
    pub async fn get_to_run(&self, caller: &Caller, name: &str) -> Result<SpriteRow, ApiError> {
        let sprite = self.get(caller, name).await?;
        self.may_run(caller, &sprite).await?;
        Ok(sprite)
    }

    /// Refuses (403) when `caller` holds a budget that `sprite`'s spend does not count
    /// against.
    pub async fn may_run(&self, caller: &Caller, sprite: &SpriteRow) -> Result<(), ApiError> {
        // Sessions and unbudgeted root tokens: nothing to check, no query.
        if caller.token.parent_id.is_none() && caller.token.budget_nanos.is_none() {
            return Ok(());
        }
        let chain = tokens::chain(&self.pool, &caller.token.id).await?;
        let budgeted: Vec<&TokenRow> = chain.iter().filter(|t| t.budget_nanos.is_some()).collect();
        if budgeted.is_empty() {
            return Ok(());
        }
        let creators = match &sprite.created_by_token {
            Some(creator) => tokens::chain(&self.pool, creator).await?,
            None => Vec::new(),
        };
        let counted: HashSet<&str> = creators.iter().map(|t| t.id.as_str()).collect();
        match budgeted.iter().find(|b| !counted.contains(b.id.as_str())) {
            None => Ok(()),
            Some(outside) => Err(ApiError::Forbidden(format!(
                "sprite {:?} was not created under API token {:?} ({}), whose budget caps \
                 this token: its compute would not count against that budget. Run it with a \
                 token without a budget, or create a sprite with this one",
                sprite.name, outside.name, outside.id
            ))),
        }
    }
}
