//! Who is calling, as the services see it: the tenant, the token, its permissions and
//! the sprites it is limited to. The HTTP extractor builds one from a bearer token;
//! code that is not a handler (schedules, a front door) builds one from a token row.

use crate::db::tokens::TokenRow;
use crate::error::ApiError;
use crate::names::TenantId;
use crate::tokens::auth::{Permission, Permissions};

/// An authenticated caller: a valid, unexpired, unrevoked token of one tenant.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The tenant every query is limited to.
    pub tenant_id: TenantId,
    /// The token's row.
    pub token: TokenRow,
    /// What the token may do.
    pub permissions: Permissions,
    /// Sprite names the token is limited to; `None` means all of the tenant's.
    pub sprites: Option<Vec<String>>,
}

impl Caller {
    /// The caller a token row stands for (the row must already be checked: signature,
    /// expiry, revocation).
    pub fn from_token(token: TokenRow) -> Result<Self, ApiError> {
        let sprites = token
            .sprites
            .as_deref()
            .map(serde_json::from_str::<Vec<String>>)
            .transpose()
            .map_err(|e| ApiError::Internal(e.into()))?;
        Ok(Self {
            tenant_id: token.tenant_id.clone(),
            permissions: Permissions::from_stored(&token.scopes),
            sprites,
            token,
        })
    }

    /// Whether this is a session from signup or login.
    pub fn is_session(&self) -> bool {
        self.token.kind == "session"
    }

    /// Refuses when the token lacks `permission`.
    pub fn require(&self, permission: Permission) -> Result<(), ApiError> {
        if self.permissions.has(permission) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "this token lacks the {:?} scope",
                permission.as_str()
            )))
        }
    }

    /// Whether the token may act on the sprite called `name`.
    pub fn may_use_sprite(&self, name: &str) -> bool {
        self.sprites
            .as_ref()
            .is_none_or(|names| names.iter().any(|n| n == name))
    }
}
