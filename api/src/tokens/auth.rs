//! Credentials: password hashes (argon2id) and signed bearer tokens (JWT, HS256).

use std::path::Path;

use argon2::password_hash::{rand_core::OsRng, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Argon2, PasswordHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::Secret;

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

    /// Signs other claims (a sprite link, a sprite cookie) for audience `aud`: they carry
    /// no `jti`, so they never pass as a bearer token.
    pub fn sign_for<T: Serialize>(&self, claims: &T) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .expect("HS256 signing of plain claims cannot fail")
    }

    /// Checks claims signed by [`Keys::sign_for`] for audience `aud`: signature,
    /// algorithm, audience and expiry (no leeway).
    pub fn verify_for<T: serde::de::DeserializeOwned>(&self, token: &str, aud: &str) -> Option<T> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_audience(&[aud]);
        validation.set_required_spec_claims(&["exp", "aud"]);
        jsonwebtoken::decode::<T>(token, &self.decoding, &validation)
            .ok()
            .map(|data| data.claims)
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
