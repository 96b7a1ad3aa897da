//! Tokens: credentials (`auth`), minting (`mint`), the row cache (`cache`), and the
//! tokens service that authenticates callers and mints, lists and revokes tokens.

pub mod auth;
pub mod cache;
pub mod mint;
pub mod settings;

use sqlx::{SqliteConnection, SqlitePool};

use corral_metering::period::Period;
use corral_metering::{now_ms, Scope};

use self::auth::{fingerprint, Keys};
use self::cache::TokenCache;
use self::mint::{MintRequest, NewToken};
use crate::caller::{Caller, Permissions};
use crate::config::Config;
use crate::db::{self, tokens::TokenRow};
use crate::error::{ApiError, ApiResult};
use crate::names::TenantId;

/// A token and its ancestors, nearest first: whose budgets its spend counts against.
/// For other services (the sprites service asks which budgets a caller carries).
pub async fn chain(pool: &SqlitePool, token_id: &str) -> ApiResult<Vec<TokenRow>> {
    Ok(db::tokens::chain(pool, token_id).await?)
}

/// The tokens service over one server's pool, keys and row cache.
pub struct Tokens<'a> {
    pub(crate) pool: &'a SqlitePool,
    pub(crate) keys: &'a Keys,
    pub(crate) config: &'a Config,
    pub(crate) cache: &'a TokenCache,
}

impl Tokens<'_> {
    /// The caller a bearer string stands for: signed by us, unexpired, its row present,
    /// unrevoked and matching the secret.
    pub async fn authenticate(&self, bearer: &str) -> ApiResult<Caller> {
        let unauthorized = |why: &str| ApiError::Unauthorized(why.to_string());
        let claims = self
            .keys
            .verify(bearer)
            .ok_or_else(|| unauthorized("the token is invalid or expired"))?;
        let token = match self.cache.get(&claims.jti) {
            Some(row) => Some(row),
            None => {
                let generation = self.cache.generation();
                let row = db::tokens::by_id(self.pool, &claims.jti).await?;
                if let Some(row) = &row {
                    self.cache.put(generation, row.clone());
                }
                row
            }
        };
        let token = token
            .filter(|row| {
                row.tenant_id.as_str() == claims.sub && row.secret_sha256 == fingerprint(bearer)
            })
            .ok_or_else(|| unauthorized("the token is invalid or expired"))?;
        if token.revoked_at.is_some() {
            return Err(unauthorized("the token has been revoked"));
        }
        if token.expires_at <= db::now_s() {
            return Err(unauthorized("the token is invalid or expired"));
        }
        self.record_use(&token);
        Caller::from_token(token)
    }

    /// A new session of `tenant_id` holding every permission: (bearer, expires_at).
    pub async fn session(
        &self,
        conn: &mut SqliteConnection,
        tenant_id: &TenantId,
    ) -> ApiResult<(String, i64)> {
        let expires_at = db::now_s() + self.config.session_ttl_s as i64;
        let new = NewToken {
            kind: "session",
            name: "session".into(),
            scopes: Permissions::all(),
            parent_id: None,
            expires_at,
            budget_nanos: None,
            sprites: None,
        };
        let (_, bearer) = mint::issue(conn, self.keys, tenant_id, new).await?;
        Ok((bearer, expires_at))
    }

    /// What token `token_id` and its descendants' sprites spent this billing period.
    pub async fn spent(&self, token_id: &str) -> ApiResult<i64> {
        let period = Period::containing(now_ms());
        let mut conn = self.pool.acquire().await?;
        let spent = corral_metering::db::scope_spent(
            &mut conn,
            &Scope::Token(token_id.to_owned()),
            period.start_ms,
        )
        .await?;
        Ok(spent.get())
    }

    /// Mints a token for `caller`: a child of an API token is never wider than it.
    /// Answers the row and the bearer string (shown once).
    pub async fn mint(
        &self,
        caller: &Caller,
        request: MintRequest,
    ) -> ApiResult<(TokenRow, String)> {
        let parent_remaining = match caller.token.budget_nanos {
            Some(budget) if !caller.is_session() => {
                Some(budget - self.spent(&caller.token.id).await?)
            }
            _ => None,
        };
        let new = mint::narrow(
            caller,
            request,
            self.config.token_max_ttl_s,
            parent_remaining,
        )?;
        // After the request's own checks: a refused request is refused for its reason.
        if self.name_taken(caller, &new.name).await? {
            return Err(ApiError::Conflict(format!(
                "a token named {:?} already exists: pick another name, or revoke that one first",
                new.name
            )));
        }
        let mut conn = self.pool.acquire().await?;
        let (row, bearer) = mint::issue(&mut conn, self.keys, &caller.tenant_id, new).await?;
        tracing::info!(tenant = %caller.tenant_id, token = %row.id, "token minted");
        Ok((row, bearer))
    }

    /// The tokens `caller` may see: all for a session, else itself and its descendants.
    pub async fn list(&self, caller: &Caller) -> ApiResult<Vec<TokenRow>> {
        let root = (!caller.is_session()).then_some(caller.token.id.as_str());
        Ok(db::tokens::list(self.pool, &caller.tenant_id, root).await?)
    }

    /// Revokes API token `id` and every token minted below it; 404 unless `caller` may
    /// see it. Answers how many were revoked.
    pub async fn revoke(&self, caller: &Caller, id: &str) -> ApiResult<u64> {
        let target = db::tokens::by_id(self.pool, id)
            .await?
            .filter(|row| row.tenant_id == caller.tenant_id && row.kind == "api")
            .ok_or_else(|| ApiError::not_found(format!("token {id:?}")))?;
        if !caller.is_session()
            && !db::tokens::is_within(self.pool, &caller.token.id, &target.id).await?
        {
            return Err(ApiError::not_found(format!("token {id:?}")));
        }
        let mut conn = self.pool.acquire().await?;
        let revoked =
            db::tokens::revoke_tree(&mut conn, &caller.tenant_id, &target.id, db::now_s()).await?;
        self.cache.clear();
        tracing::info!(tenant = %caller.tenant_id, token = %target.id, revoked, "token revoked");
        Ok(revoked)
    }

    /// Ends the calling session at once (API tokens are revoked instead: 422).
    pub async fn logout(&self, caller: &Caller) -> ApiResult<()> {
        if !caller.is_session() {
            return Err(ApiError::Validation(
                "this is an API token, not a session: revoke it with DELETE /v1/tokens/{id}".into(),
            ));
        }
        let mut conn = self.pool.acquire().await?;
        db::tokens::revoke_session(&mut conn, &caller.tenant_id, &caller.token.id, db::now_s())
            .await?;
        self.cache.clear();
        tracing::info!(tenant = %caller.tenant_id, "logged out");
        Ok(())
    }
}
