//! The accounts service: signup, login and who a caller's tenant is.

use sqlx::SqlitePool;

use crate::caller::Caller;
use crate::db::{self, accounts::Tenant};
use crate::domain::{self, Email, Password};
use crate::error::{ApiError, ApiResult};
use crate::names::TenantId;
use crate::tokens::{auth, Tokens};

/// A new tenant with its first session.
pub struct SignedUp {
    /// The new tenant.
    pub tenant_id: TenantId,
    /// A session holding every permission.
    pub bearer: String,
    /// When the session expires (unix seconds).
    pub expires_at: i64,
}

/// The accounts service over one server's pool and tokens.
pub struct Accounts<'a> {
    pub(crate) pool: &'a SqlitePool,
    pub(crate) tokens: Tokens<'a>,
}

impl Accounts<'_> {
    /// Creates a tenant and its first session; 409 when the e-mail is taken.
    pub async fn signup(&self, email: &str, password: &str, org: &str) -> ApiResult<SignedUp> {
        let email = Email::parse(email)?;
        let password = Password::parse(password)?;
        let org = domain::display_name("org", org)?;
        let password_hash = hash(password.0).await?;
        // The id's first characters name the tenant in its sprites' host names: they
        // must be unique (a clash is one in four billion; draw again).
        let mut tenant_id = TenantId(uuid::Uuid::new_v4().simple().to_string());
        while db::accounts::handle_taken(self.pool, crate::ingress::host::handle(&tenant_id))
            .await?
        {
            tenant_id = TenantId(uuid::Uuid::new_v4().simple().to_string());
        }
        let mut tx = self.pool.begin().await?;
        if !db::accounts::insert(
            &mut tx,
            &tenant_id,
            &email.0,
            &password_hash,
            &org,
            db::now_s(),
        )
        .await?
        {
            return Err(ApiError::Conflict(
                "an account with this e-mail already exists; log in instead".into(),
            ));
        }
        let (bearer, expires_at) = self.tokens.session(&mut tx, &tenant_id).await?;
        tx.commit().await?;
        tracing::info!(tenant = %tenant_id, "tenant signed up");
        Ok(SignedUp {
            tenant_id,
            bearer,
            expires_at,
        })
    }

    /// A new session for the right e-mail and password: (bearer, expires_at).
    pub async fn login(&self, email: &str, password: String) -> ApiResult<(String, i64)> {
        let wrong = || ApiError::Unauthorized("the e-mail or the password is wrong".into());
        let tenant = match Email::parse(email) {
            Ok(email) => db::accounts::by_email(self.pool, &email.0).await?,
            Err(_) => None,
        };
        // Verify against a decoy when the account does not exist, so timing says nothing.
        let stored = tenant
            .as_ref()
            .map(|t| t.password_hash.clone())
            .unwrap_or_else(|| auth::decoy_hash().to_string());
        let matches =
            tokio::task::spawn_blocking(move || auth::verify_password(&password, &stored))
                .await
                .map_err(anyhow::Error::from)?;
        let tenant = tenant.filter(|_| matches).ok_or_else(wrong)?;
        let mut conn = self.pool.acquire().await?;
        self.tokens.session(&mut conn, &tenant.id).await
    }

    /// The caller's tenant (401 when the account no longer exists).
    pub async fn tenant(&self, caller: &Caller) -> ApiResult<Tenant> {
        db::accounts::by_id(self.pool, &caller.tenant_id)
            .await?
            .ok_or_else(|| ApiError::Unauthorized("the account no longer exists".into()))
    }
}

async fn hash(password: String) -> ApiResult<String> {
    tokio::task::spawn_blocking(move || auth::hash_password(&password))
        .await
        .map_err(anyhow::Error::from)?
        .map_err(ApiError::Internal)
}
