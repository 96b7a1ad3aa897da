//! Who is calling, as the services see it: the tenant, the token, its permissions and
//! the sprites it is limited to; and the permissions themselves. The HTTP extractor
//! builds one from a bearer token; code that is not a handler (schedules, a front door)
//! builds one from a token row.

use std::collections::BTreeSet;

use crate::db::tokens::TokenRow;
use crate::error::ApiError;
use crate::names::TenantId;

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

/// What a token may do (its wire name is a "scope"; `Permission` keeps it apart from
/// metering's budget `Scope`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Permission {
    /// List and read sprites.
    SpritesRead,
    /// Create, pause, resume and delete sprites.
    SpritesWrite,
    /// Run commands in sprites.
    Exec,
    /// Read and write files in sprites.
    Files,
    /// Create, restore and delete checkpoints.
    Checkpoints,
    /// Mint child tokens.
    TokensCreate,
    /// Payment and invoices.
    Billing,
    /// Read and change the budget and limits.
    Budget,
    /// Add, list and delete secrets.
    Secrets,
    /// Open sprites' URLs and tunnels into their ports.
    SpritesHttp,
    /// Add, list and delete schedules on sprites.
    Schedules,
}

impl Permission {
    /// Every scope, as a session token holds them.
    pub const ALL: [Permission; 11] = [
        Permission::SpritesRead,
        Permission::SpritesWrite,
        Permission::Exec,
        Permission::Files,
        Permission::Checkpoints,
        Permission::TokensCreate,
        Permission::Billing,
        Permission::Budget,
        Permission::Secrets,
        Permission::SpritesHttp,
        Permission::Schedules,
    ];

    /// The scope's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::SpritesRead => "sprites:read",
            Permission::SpritesWrite => "sprites:write",
            Permission::Exec => "exec",
            Permission::Files => "files",
            Permission::Checkpoints => "checkpoints",
            Permission::TokensCreate => "tokens:create",
            Permission::Billing => "billing",
            Permission::Budget => "budget",
            Permission::Secrets => "secrets",
            Permission::SpritesHttp => "sprites:http",
            Permission::Schedules => "schedules",
        }
    }

    /// Parses a wire name.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }
}

/// A set of scopes, stored as space-separated names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Permissions(pub BTreeSet<Permission>);

impl Permissions {
    /// Every scope.
    pub fn all() -> Self {
        Self(Permission::ALL.into_iter().collect())
    }

    /// Parses wire names, naming the first unknown one.
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        names
            .into_iter()
            .map(|n| Permission::parse(n).ok_or_else(|| format!("unknown scope {n:?}")))
            .collect::<Result<_, _>>()
            .map(Self)
    }

    /// Reads the stored form.
    pub fn from_stored(stored: &str) -> Self {
        Self(
            stored
                .split_whitespace()
                .filter_map(Permission::parse)
                .collect(),
        )
    }

    /// The stored form.
    pub fn to_stored(&self) -> String {
        self.names().join(" ")
    }

    /// Wire names in a stable order.
    pub fn names(&self) -> Vec<&'static str> {
        self.0.iter().map(|s| s.as_str()).collect()
    }

    /// Whether the set holds `scope`.
    pub fn has(&self, scope: Permission) -> bool {
        self.0.contains(&scope)
    }

    /// Whether every scope here is also in `other`.
    pub fn is_subset(&self, other: &Permissions) -> bool {
        self.0.is_subset(&other.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caller_from_a_token_row_keeps_its_permissions_and_sprites() {
        let row = TokenRow {
            id: "k".into(),
            tenant_id: TenantId("t".into()),
            parent_id: Some("p".into()),
            kind: "api".into(),
            name: "ci".into(),
            scopes: "exec sprites:read".into(),
            secret_sha256: String::new(),
            created_at: 0,
            expires_at: i64::MAX,
            budget_nanos: None,
            sprites: Some(r#"["dev"]"#.into()),
            revoked_at: None,
        };
        let caller = Caller::from_token(row).unwrap();
        assert_eq!(caller.tenant_id.as_str(), "t");
        assert!(!caller.is_session());
        assert!(caller.may_use_sprite("dev") && !caller.may_use_sprite("prod"));
        assert!(caller.require(Permission::Exec).is_ok());
        let refused = caller.require(Permission::SpritesWrite).unwrap_err();
        assert!(refused.to_string().contains("sprites:write"), "{refused}");
    }

    #[test]
    fn permissions_round_trip_and_reject_unknown_names() {
        let scopes = Permissions::parse(["exec", "sprites:read"]).unwrap();
        assert_eq!(Permissions::from_stored(&scopes.to_stored()), scopes);
        assert!(scopes.is_subset(&Permissions::all()));
        assert!(Permissions::parse(["root"]).unwrap_err().contains("root"));
    }
}
