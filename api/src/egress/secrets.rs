//! Secrets that never enter a sprite: the value is sealed at rest with the install's key
//! (`DATA_DIR/secrets.key`, ChaCha20-Poly1305) and never logged; sprites get
//! `CORRAL_SECRET_<NAME>` holding a placeholder, which the way out swaps for the value
//! in requests to the secret's hosts only (see `intercept`).

use std::path::Path;

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use sqlx::SqlitePool;
use utoipa::ToSchema;

use super::policy;
use crate::db::{self, secrets::SecretRow};
use crate::domain::rfc3339;
use crate::error::ApiError;
use crate::names::TenantId;

/// What a caller sends to add (or replace) a secret.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSecret {
    /// `A-Z`, `0-9` and `_`: sprites see `CORRAL_SECRET_<NAME>`.
    pub name: String,
    /// The value; never shown again, never stored in clear, never logged.
    pub value: String,
    /// Domains it may go to (`api.example.com`, `*.example.com`).
    pub hosts: Vec<String>,
    /// A header the way out adds to requests to those hosts that do not carry it
    /// (e.g. `Authorization`), with `format`'s `{}` as the value.
    pub header: Option<String>,
    /// `Bearer {}` by default when `header` is set.
    pub format: Option<String>,
}

/// A secret as the API shows it: never its value.
#[derive(Serialize, ToSchema)]
pub struct SecretView {
    pub name: String,
    pub hosts: Vec<String>,
    pub header: Option<String>,
    pub format: Option<String>,
    /// What sprites see in `CORRAL_SECRET_<NAME>`.
    pub placeholder: String,
    pub env: String,
    pub created_at: String,
}

/// A secret with its value, for the way out.
#[derive(Clone, Debug)]
pub struct Open {
    pub name: String,
    pub value: String,
    pub hosts: Vec<String>,
    pub header: Option<String>,
    pub format: String,
    pub placeholder: String,
}

impl Open {
    /// Whether the secret may go to `host`.
    pub fn for_host(&self, host: &str) -> bool {
        let rules: Vec<policy::Effective> = self
            .hosts
            .iter()
            .map(|h| policy::Effective {
                domain: h.clone(),
                action: policy::Action::Allow,
                ports: None,
                from: None,
            })
            .collect();
        policy::decide(&rules, host, 0).is_some_and(|r| r.domain != "*")
    }
}

/// The install's sealing key and the secrets store.
pub struct Secrets {
    pool: SqlitePool,
    key: LessSafeKey,
    rng: SystemRandom,
}

fn view(row: SecretRow) -> SecretView {
    SecretView {
        env: format!("CORRAL_SECRET_{}", row.name),
        hosts: serde_json::from_str(&row.hosts).unwrap_or_default(),
        name: row.name,
        header: row.header,
        format: row.format,
        placeholder: row.placeholder,
        created_at: rfc3339(row.created_at),
    }
}

impl Secrets {
    /// Opens the store with the key in `data_dir` (made, readable by root only, the
    /// first time).
    pub fn open(pool: SqlitePool, data_dir: &Path) -> anyhow::Result<Secrets> {
        let path = data_dir.join("secrets.key");
        let rng = SystemRandom::new();
        let bytes = match std::fs::read(&path) {
            Ok(bytes) if bytes.len() == 32 => bytes,
            Ok(_) => anyhow::bail!("{} is not a 32-byte key", path.display()),
            Err(_) => {
                let mut bytes = vec![0u8; 32];
                rng.fill(&mut bytes)
                    .map_err(|_| anyhow::anyhow!("no randomness for the secrets key"))?;
                let tmp = path.with_extension("tmp");
                std::fs::write(&tmp, &bytes)?;
                std::fs::set_permissions(
                    &tmp,
                    std::os::unix::fs::PermissionsExt::from_mode(0o600),
                )?;
                std::fs::rename(&tmp, &path)?;
                bytes
            }
        };
        let key = UnboundKey::new(&CHACHA20_POLY1305, &bytes)
            .map_err(|_| anyhow::anyhow!("the secrets key cannot be used"))?;
        Ok(Secrets {
            pool,
            key: LessSafeKey::new(key),
            rng,
        })
    }

    fn seal(&self, aad: &str, value: &str) -> Result<Vec<u8>, ApiError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| ApiError::Internal(anyhow::anyhow!("no randomness")))?;
        let mut sealed = value.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut sealed,
            )
            .map_err(|_| ApiError::Internal(anyhow::anyhow!("sealing failed")))?;
        let mut out = nonce.to_vec();
        out.extend(sealed);
        Ok(out)
    }

    fn unseal(&self, aad: &str, sealed: &[u8]) -> Option<String> {
        let (nonce, body) = sealed.split_at_checked(NONCE_LEN)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut body = body.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(aad), &mut body)
            .ok()?;
        String::from_utf8(plain.to_vec()).ok()
    }

    /// Adds (or replaces) a secret; the answer holds no value.
    pub async fn put(&self, tenant_id: &TenantId, new: NewSecret) -> Result<SecretView, ApiError> {
        let bad = |why: String| Err(ApiError::Validation(why));
        let name_ok = (1..=64).contains(&new.name.len())
            && new
                .name
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
        if !name_ok {
            return bad(format!(
                "secret name {:?}: use 1 to 64 of A-Z, 0-9 and _",
                new.name
            ));
        }
        if new.value.is_empty() || new.value.len() > 8192 || new.value.contains(['\r', '\n']) {
            return bad("the value must be 1 to 8192 bytes on one line".into());
        }
        if new.hosts.is_empty() || new.hosts.iter().any(|h| h == "*") {
            return bad("hosts must name where the secret may go (not *)".into());
        }
        let rules: Vec<policy::Rule> = new
            .hosts
            .iter()
            .map(|h| policy::Rule::Domain {
                domain: h.clone(),
                action: policy::Action::Allow,
                ports: None,
            })
            .collect();
        policy::expand(&rules)?;
        let header = new
            .header
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty());
        if let Some(h) = &header {
            if !h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                return bad(format!("header {h:?} is not a header name"));
            }
        }
        let format = new.format.filter(|f| !f.is_empty());
        if format
            .as_ref()
            .is_some_and(|f| !f.contains("{}") || f.contains(['\r', '\n']))
        {
            return bad("format must hold {} where the value goes, on one line".into());
        }
        let mut tag = [0u8; 12];
        self.rng
            .fill(&mut tag)
            .map_err(|_| ApiError::Internal(anyhow::anyhow!("no randomness")))?;
        let placeholder = format!(
            "corral-secret-{}-{}",
            new.name.to_ascii_lowercase(),
            hex::encode(tag)
        );
        let row = SecretRow {
            sealed: self.seal(&format!("{tenant_id}/{}", new.name), &new.value)?,
            name: new.name,
            hosts: serde_json::to_string(&new.hosts).map_err(|e| ApiError::Internal(e.into()))?,
            header,
            format,
            placeholder,
            created_at: db::now_s(),
        };
        db::secrets::put(&self.pool, tenant_id, &row).await?;
        Ok(view(row))
    }

    /// The tenant's secrets, without values.
    pub async fn list(&self, tenant_id: &TenantId) -> Result<Vec<SecretView>, ApiError> {
        Ok(db::secrets::list(&self.pool, tenant_id)
            .await?
            .into_iter()
            .map(view)
            .collect())
    }

    /// Deletes one.
    pub async fn delete(&self, tenant_id: &TenantId, name: &str) -> Result<(), ApiError> {
        if db::secrets::delete(&self.pool, tenant_id, name).await? {
            Ok(())
        } else {
            Err(ApiError::not_found(format!("secret {name:?}")))
        }
    }

    /// `CORRAL_SECRET_<NAME>` = placeholder, for every command in the tenant's sprites.
    pub async fn env(&self, tenant_id: &TenantId) -> Result<Vec<(String, String)>, ApiError> {
        Ok(db::secrets::list(&self.pool, tenant_id)
            .await?
            .into_iter()
            .map(|r| (format!("CORRAL_SECRET_{}", r.name), r.placeholder))
            .collect())
    }

    /// The tenant's secrets with their values (for the way out only).
    pub async fn open_all(&self, tenant_id: &TenantId) -> Result<Vec<Open>, ApiError> {
        let rows = db::secrets::list(&self.pool, tenant_id).await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                let value = self.unseal(&format!("{tenant_id}/{}", r.name), &r.sealed)?;
                Some(Open {
                    hosts: serde_json::from_str(&r.hosts).unwrap_or_default(),
                    format: r.format.unwrap_or_else(|| "Bearer {}".into()),
                    header: r.header,
                    placeholder: r.placeholder,
                    name: r.name,
                    value,
                })
            })
            .collect())
    }
}
