//! Issuing tokens: sessions at signup/login, and minted tokens that are never wider
//! than the token that minted them.

use sqlx::SqliteConnection;

use super::auth::{fingerprint, Claims, Keys};
use crate::caller::{Caller, Permissions};
use crate::db::{self, tokens::TokenRow};
use crate::error::ApiError;
use crate::names::TenantId;

/// What a new token should be.
pub struct NewToken {
    /// `session` or `api`.
    pub kind: &'static str,
    /// A name for people.
    pub name: String,
    /// What it may do.
    pub scopes: Permissions,
    /// The token it was minted with (`None` for top-level tokens).
    pub parent_id: Option<String>,
    /// Unix seconds.
    pub expires_at: i64,
    /// A spend cap of its own, per billing period.
    pub budget_nanos: Option<i64>,
    /// Sprite names it is limited to.
    pub sprites: Option<Vec<String>>,
}

/// Stores a token and returns its row with the bearer string (shown once).
pub async fn issue(
    conn: &mut SqliteConnection,
    keys: &Keys,
    tenant_id: &TenantId,
    new: NewToken,
) -> Result<(TokenRow, String), ApiError> {
    let now = db::now_s();
    let id = uuid::Uuid::new_v4().simple().to_string();
    let bearer = keys.sign(&Claims {
        sub: tenant_id.to_string(),
        jti: id.clone(),
        iat: now,
        exp: new.expires_at,
    });
    let row = TokenRow {
        id,
        tenant_id: tenant_id.clone(),
        parent_id: new.parent_id,
        kind: new.kind.to_string(),
        name: new.name,
        scopes: new.scopes.to_stored(),
        secret_sha256: fingerprint(&bearer),
        created_at: now,
        expires_at: new.expires_at,
        budget_nanos: new.budget_nanos,
        sprites: new
            .sprites
            .map(|names| serde_json::to_string(&names).expect("names serialize")),
        revoked_at: None,
    };
    db::tokens::insert(conn, &row).await?;
    Ok((row, bearer))
}

/// A mint request as the caller asked for it.
pub struct MintRequest {
    pub name: String,
    pub scopes: Permissions,
    pub expires_in_s: Option<u64>,
    pub budget_nanos: Option<i64>,
    pub sprites: Option<Vec<String>>,
}

/// Checks a mint request against the minting token and fills in inherited limits.
/// `parent_remaining` is the parent's budget left this period, when it has one.
pub fn narrow(
    minter: &Caller,
    request: MintRequest,
    max_ttl_s: u64,
    parent_remaining: Option<i64>,
) -> Result<NewToken, ApiError> {
    let now = db::now_s();
    let ttl = request.expires_in_s.unwrap_or(max_ttl_s);
    if ttl == 0 || ttl > max_ttl_s {
        return Err(ApiError::Validation(format!(
            "expires_in_s must be between 1 and {max_ttl_s}"
        )));
    }
    if let Some(budget) = request.budget_nanos {
        if budget < 0 {
            return Err(ApiError::Validation(
                "budget_nanos must not be negative".into(),
            ));
        }
    }
    let mut expires_at = now.saturating_add(ttl as i64);
    let child = !minter.is_session();
    if child {
        if !request.scopes.is_subset(&minter.permissions) {
            let extra: Vec<_> = request
                .scopes
                .names()
                .into_iter()
                .filter(|n| !minter.permissions.names().contains(n))
                .collect();
            return Err(ApiError::Forbidden(format!(
                "a child token cannot hold scopes its parent lacks: {}",
                extra.join(", ")
            )));
        }
        if request.expires_in_s.is_some() && expires_at > minter.token.expires_at {
            return Err(ApiError::Forbidden(
                "a child token cannot outlive its parent".into(),
            ));
        }
        expires_at = expires_at.min(minter.token.expires_at);
        if let (Some(remaining), Some(budget)) = (parent_remaining, request.budget_nanos) {
            if budget > remaining {
                return Err(ApiError::Forbidden(format!(
                    "a child token's budget ({budget} nanos) cannot exceed its parent's remaining budget ({remaining} nanos)"
                )));
            }
        }
    }
    let sprites = match (&minter.sprites, request.sprites) {
        (Some(allowed), Some(asked)) => {
            if let Some(outside) = asked.iter().find(|n| !allowed.contains(n)) {
                return Err(ApiError::Forbidden(format!(
                    "a child token cannot reach sprite {outside:?}, which its parent cannot"
                )));
            }
            Some(asked)
        }
        (Some(allowed), None) => Some(allowed.clone()),
        (None, asked) => asked,
    };
    if let Some(names) = &sprites {
        for name in names {
            crate::domain::SpriteName::parse(name)?;
        }
    }
    Ok(NewToken {
        kind: "api",
        name: request.name,
        scopes: request.scopes,
        parent_id: child.then(|| minter.token.id.clone()),
        expires_at,
        budget_nanos: request.budget_nanos,
        sprites,
    })
}
