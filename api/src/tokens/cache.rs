//! Recently read token rows, so an authenticated request need not read its token from
//! SQLite every time. A revocation through this server empties the cache at once (a
//! read that raced with it is not kept), and every row is read again after [`MAX_AGE`]
//! anyway, for changes made to the database behind the server's back.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::db::tokens::TokenRow;

/// How long a cached row is trusted.
pub const MAX_AGE: Duration = Duration::from_secs(2);
/// Rows kept at most; past it the cache starts over.
const MAX_ROWS: usize = 10_000;

/// The cache; one per server.
#[derive(Default)]
pub struct TokenCache {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Bumped by every revocation: a row read before it is not kept.
    generation: u64,
    rows: HashMap<String, (Instant, TokenRow)>,
    /// The minute (unix seconds / 60) each token was last recorded as used.
    used: HashMap<String, i64>,
}

impl TokenCache {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The row of token `id`, if it was read less than [`MAX_AGE`] ago.
    pub fn get(&self, id: &str) -> Option<TokenRow> {
        let inner = self.inner();
        let (at, row) = inner.rows.get(id)?;
        (at.elapsed() < MAX_AGE).then(|| row.clone())
    }

    /// The generation to pass to [`TokenCache::put`] for a read starting now.
    pub fn generation(&self) -> u64 {
        self.inner().generation
    }

    /// Keeps `row`, read from the database after [`TokenCache::generation`] returned
    /// `generation`, unless a revocation happened since.
    pub fn put(&self, generation: u64, row: TokenRow) {
        let mut inner = self.inner();
        if inner.generation != generation {
            return;
        }
        if inner.rows.len() >= MAX_ROWS {
            inner.rows.clear();
        }
        inner.rows.insert(row.id.clone(), (Instant::now(), row));
    }

    /// Whether a use of token `id` at `now` (unix seconds) is its first this minute, so
    /// `last_used_at` is written at most once a minute per token.
    pub fn first_use_this_minute(&self, id: &str, now: i64) -> bool {
        let mut inner = self.inner();
        if inner.used.len() >= MAX_ROWS {
            inner.used.clear();
        }
        inner.used.insert(id.to_string(), now / 60) != Some(now / 60)
    }

    /// Forgets every row: call after revoking tokens.
    pub fn clear(&self) {
        let mut inner = self.inner();
        inner.generation += 1;
        inner.rows.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str) -> TokenRow {
        TokenRow {
            id: id.into(),
            tenant_id: crate::names::TenantId("t".into()),
            parent_id: None,
            kind: "api".into(),
            name: "n".into(),
            scopes: "sprites:read".into(),
            secret_sha256: "f".into(),
            created_at: 0,
            expires_at: i64::MAX,
            budget_nanos: None,
            sprites: None,
            revoked_at: None,
        }
    }

    #[test]
    fn a_read_that_raced_with_a_revocation_is_not_kept() {
        let cache = TokenCache::default();
        let before = cache.generation();
        cache.clear();
        cache.put(before, row("a"));
        assert!(cache.get("a").is_none());
        cache.put(cache.generation(), row("a"));
        assert_eq!(cache.get("a").map(|r| r.id), Some("a".into()));
        cache.clear();
        assert!(cache.get("a").is_none());
    }
}
