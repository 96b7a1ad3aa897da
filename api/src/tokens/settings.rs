//! Changing a minted token after minting: its budget, raised or lowered within its
//! ancestors' rules; and recording when each token was last used.

use corral_metering::Nanos;

use super::Tokens;
use crate::caller::Caller;
use crate::db::{self, tokens::TokenRow};
use crate::error::{ApiError, ApiResult};

impl Tokens<'_> {
    /// Sets API token `id`'s budget (`None`: none of its own; its ancestors' still
    /// bound it). A session may change any of the tenant's tokens; an API token only
    /// the tokens minted below it (never its own: a token cannot raise its own cap).
    /// What the token may still spend never exceeds what any ancestor with a budget
    /// has left this period.
    pub async fn set_budget(
        &self,
        caller: &Caller,
        id: &str,
        budget_nanos: Option<i64>,
    ) -> ApiResult<TokenRow> {
        let not_found = || ApiError::not_found(format!("token {id:?}"));
        let target = db::tokens::by_id(self.pool, id)
            .await?
            .filter(|row| row.tenant_id == caller.tenant_id && row.kind == "api")
            .ok_or_else(not_found)?;
        if !caller.is_session() {
            if !db::tokens::is_within(self.pool, &caller.token.id, &target.id).await? {
                return Err(not_found());
            }
            if target.id == caller.token.id {
                return Err(ApiError::Forbidden(
                    "a token cannot change its own budget: ask whoever minted it".into(),
                ));
            }
        }
        if target.revoked_at.is_some() {
            return Err(ApiError::Conflict(format!(
                "token {} is revoked: mint a new one instead",
                target.name
            )));
        }
        if let Some(budget) = budget_nanos {
            if budget < 0 {
                return Err(ApiError::Validation(
                    "a budget cannot be negative: give 0 to stop the token's spending, or null for no budget of its own".into(),
                ));
            }
            let spent = self.spent(&target.id).await?;
            for ancestor in db::tokens::chain(self.pool, &target.id)
                .await?
                .iter()
                .skip(1)
            {
                let Some(theirs) = ancestor.budget_nanos else {
                    continue;
                };
                let left = theirs - self.spent(&ancestor.id).await?;
                // The target's own spend is already inside the ancestor's.
                if budget - spent > left {
                    let most = Nanos((left + spent).max(0));
                    return Err(ApiError::Forbidden(format!(
                        "{}'s budget can be at most {most}: the token it was minted with, {}, has {} left this period",
                        target.name,
                        ancestor.name,
                        Nanos(left.max(0))
                    )));
                }
            }
        }
        if !db::token_settings::set_budget(self.pool, &caller.tenant_id, &target.id, budget_nanos)
            .await?
        {
            return Err(not_found());
        }
        self.cache.clear();
        tracing::info!(tenant = %caller.tenant_id, token = %target.id, ?budget_nanos, "token budget changed");
        Ok(TokenRow {
            budget_nanos,
            ..target
        })
    }

    /// Whether a live API token of the caller's tenant is already called `name`.
    pub async fn name_taken(&self, caller: &Caller, name: &str) -> ApiResult<bool> {
        Ok(db::token_settings::name_taken(self.pool, &caller.tenant_id, name, db::now_s()).await?)
    }

    /// Notes that `token` authenticated a call, at most once a minute per token, in the
    /// background so that no request waits for the write.
    pub fn record_use(&self, token: &TokenRow) {
        let now = db::now_s();
        if !self.cache.first_use_this_minute(&token.id, now) {
            return;
        }
        let (pool, id) = (self.pool.clone(), token.id.clone());
        tokio::spawn(async move {
            if let Err(error) = db::token_settings::record_use(&pool, &id, now).await {
                tracing::warn!(%error, "could not record a token's use");
            }
        });
    }

    /// When token `id` was last used (unix seconds), if ever.
    pub async fn last_used(&self, id: &str) -> ApiResult<Option<i64>> {
        Ok(db::token_settings::last_used(self.pool, id).await?)
    }
}
