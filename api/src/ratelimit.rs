//! Rate limits (governor): per token on every call, per client address on signup/login.

use std::net::IpAddr;
use std::num::NonZeroU32;

use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use crate::error::ApiError;

type Keyed<K> = RateLimiter<K, DefaultKeyedStateStore<K>, DefaultClock>;

/// The process's rate limiters.
pub struct RateLimits {
    tokens: Keyed<String>,
    auth: Keyed<IpAddr>,
    clock: DefaultClock,
}

fn non_zero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n.max(1)).expect("max(1) is non-zero")
}

impl RateLimits {
    /// Limits from configuration.
    pub fn new(token_per_s: u32, token_burst: u32, auth_per_min: u32) -> Self {
        let token_quota =
            Quota::per_second(non_zero(token_per_s)).allow_burst(non_zero(token_burst));
        let auth_quota = Quota::per_minute(non_zero(auth_per_min));
        Self {
            tokens: RateLimiter::keyed(token_quota),
            auth: RateLimiter::keyed(auth_quota),
            clock: DefaultClock::default(),
        }
    }

    /// One call by the token `id`.
    pub fn check_token(&self, id: &str) -> Result<(), ApiError> {
        self.tokens.check_key(&id.to_string()).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            ApiError::RateLimited {
                retry_after_s: wait.as_secs() + 1,
            }
        })
    }

    /// One signup or login attempt from `ip`.
    pub fn check_auth(&self, ip: IpAddr) -> Result<(), ApiError> {
        self.auth.check_key(&ip).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            ApiError::RateLimited {
                retry_after_s: wait.as_secs() + 1,
            }
        })
    }

    /// Forgets keys that are back to full quota, so the tables stay small.
    pub fn shrink(&self) {
        self.tokens.retain_recent();
        self.auth.retain_recent();
    }
}
