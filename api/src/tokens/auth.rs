//! Credentials: password hashes (argon2id), signed bearer tokens (JWT, HS256), scopes.

use std::collections::BTreeSet;
use std::path::Path;

use argon2::password_hash::{rand_core::OsRng, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Argon2, PasswordHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::Secret;

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
}

impl Permission {
    /// Every scope, as a session token holds them.
    pub const ALL: [Permission; 8] = [
        Permission::SpritesRead,
        Permission::SpritesWrite,
        Permission::Exec,
        Permission::Files,
        Permission::Checkpoints,
        Permission::TokensCreate,
        Permission::Billing,
        Permission::Budget,
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

/// What a bearer token carries, signed.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// The tenant.
    pub sub: String,
    /// The token's id (row in `api_tokens`).
    pub jti: String,
    /// Issued at (unix seconds).
    pub iat: i64,
    /// Expires at (unix seconds).
    pub exp: i64,
}

/// The signing key.
#[derive(Clone)]
pub struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl Keys {
    /// Keys from a secret.
    pub fn from_secret(secret: &[u8]) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        }
    }

    /// The configured secret, or one generated once and kept (mode 0600) in `data_dir`.
    pub fn load(configured: Option<&Secret>, data_dir: &Path) -> std::io::Result<Self> {
        if let Some(secret) = configured {
            return Ok(Self::from_secret(secret.expose().as_bytes()));
        }
        let path = data_dir.join("jwt.key");
        match std::fs::read(&path) {
            Ok(secret) if secret.len() >= 32 => Ok(Self::from_secret(&secret)),
            _ => {
                use std::io::Write;
                use std::os::unix::fs::OpenOptionsExt;
                let secret: [u8; 32] = rand::random();
                let tmp = data_dir.join("jwt.key.tmp");
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(&tmp)?;
                file.write_all(&secret)?;
                file.sync_all()?;
                std::fs::rename(&tmp, &path)?;
                Ok(Self::from_secret(&secret))
            }
        }
    }

    /// Signs claims into a bearer string.
    pub fn sign(&self, claims: &Claims) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .expect("HS256 signing of plain claims cannot fail")
    }

    /// Checks signature, algorithm and expiry (no leeway).
    pub fn verify(&self, token: &str) -> Option<Claims> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub", "jti"]);
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .ok()
            .map(|data| data.claims)
    }
}

/// The stored fingerprint of a bearer string.
pub fn fingerprint(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Hashes a password with argon2id and a random salt.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| anyhow::anyhow!("hashing password: {e}"))
}

/// Checks a password against a stored hash.
pub fn verify_password(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .map(|hash| {
            Argon2::default()
                .verify_password(password.as_bytes(), &hash)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A hash of a password nobody has, verified against when an e-mail is unknown so
/// that login takes as long whether or not the account exists.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("corral decoy password").expect("argon2 works"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions_round_trip_and_reject_unknown_names() {
        let scopes = Permissions::parse(["exec", "sprites:read"]).unwrap();
        assert_eq!(Permissions::from_stored(&scopes.to_stored()), scopes);
        assert!(scopes.is_subset(&Permissions::all()));
        assert!(Permissions::parse(["root"]).unwrap_err().contains("root"));
    }

    #[test]
    fn tokens_from_another_key_or_tampered_are_refused() {
        let keys = Keys::from_secret(b"one key that is long enough......");
        let other = Keys::from_secret(b"another key that is long enough..");
        let claims = Claims {
            sub: "t".into(),
            jti: "k".into(),
            iat: 0,
            exp: i64::MAX / 2,
        };
        let token = keys.sign(&claims);
        assert_eq!(keys.verify(&token).unwrap().jti, "k");
        assert!(other.verify(&token).is_none());
        let mut tampered = token.clone();
        tampered.pop();
        tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
        assert!(keys.verify(&tampered).is_none());
    }

    #[test]
    fn passwords_verify_only_themselves() {
        let hash = hash_password("correct horse").unwrap();
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("wrong horse", &hash));
        assert!(!verify_password("x", "not a hash"));
    }
}
