//! Typed names stored as TEXT: tenant ids, sprite states and pause reasons.
//!
//! Each is stored and sent as the same text it always was (serde and sqlx both use the
//! snake_case names), so the database and the API are unchanged; only the code stops
//! comparing strings.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The tenant a row, a token or a caller belongs to.
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, sqlx::Type,
)]
#[serde(transparent)]
#[sqlx(transparent)]
pub struct TenantId(pub String);

impl TenantId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for TenantId {
    fn from(id: String) -> Self {
        Self(id)
    }
}

/// Where a sprite is in its life.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
#[sqlx(rename_all = "snake_case")]
pub enum SpriteState {
    /// Its row exists; its machine is being made.
    Creating,
    /// Its machine runs (and is metered).
    Running,
    /// Its machine is frozen; see the pause reason.
    Paused,
    /// Its machine was found stopped (a crash); resuming starts it again.
    Stopped,
    /// Its machine could not be found or recovered.
    Lost,
    /// Its machine is being destroyed.
    Deleting,
    /// Gone; the row stays for the ledger.
    Deleted,
}

impl SpriteState {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Creating => "creating",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Stopped => "stopped",
            Self::Lost => "lost",
            Self::Deleting => "deleting",
            Self::Deleted => "deleted",
        }
    }
}

impl fmt::Display for SpriteState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a sprite is paused.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
#[sqlx(rename_all = "snake_case")]
pub enum PauseReason {
    /// Nothing used it for its idle timeout; any work wakes it.
    Idle,
    /// Its owner paused it.
    User,
    /// A scaling limit no longer allows it.
    Limit,
    /// Billing stopped it.
    Billing,
    /// The hard cap: it could not run for the minimum runway.
    Budget,
}

impl PauseReason {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::User => "user",
            Self::Limit => "limit",
            Self::Billing => "billing",
            Self::Budget => "budget",
        }
    }

    /// A stronger reason replaces a weaker one on a paused sprite: idle < user <
    /// limit, billing < budget (so the budget's pause is never hidden by a weaker one).
    pub fn strength(self) -> u8 {
        match self {
            Self::Idle => 1,
            Self::User => 2,
            Self::Limit | Self::Billing => 3,
            Self::Budget => 4,
        }
    }
}

impl fmt::Display for PauseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_stored_text() {
        assert_eq!(
            serde_json::to_string(&SpriteState::Running).unwrap(),
            "\"running\""
        );
        assert_eq!(
            serde_json::to_string(&PauseReason::Budget).unwrap(),
            "\"budget\""
        );
        let state: SpriteState = serde_json::from_str("\"deleting\"").unwrap();
        assert_eq!(state.as_str(), "deleting");
        assert!(PauseReason::Budget.strength() > PauseReason::User.strength());
    }
}

/// Who may open a sprite's URL.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
#[sqlx(rename_all = "snake_case")]
pub enum UrlAuth {
    /// A token of the tenant with the `sprites:http` scope, or a link's cookie.
    #[default]
    Sprite,
    /// Anyone.
    Public,
}

impl fmt::Display for UrlAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UrlAuth::Sprite => "sprite",
            UrlAuth::Public => "public",
        })
    }
}
