//! A sprite's bandwidth: one token bucket per sprite for all its connections, both ways
//! (`CORRAL_NETWORK_MBPS`), so the bytes it can move in a window — and what they may
//! cost — are bounded.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Bytes a sprite may move, refilled at `rate` per second up to `burst`.
#[derive(Debug)]
pub struct Limiter {
    mbps: u32,
    rate: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl Limiter {
    /// A bucket of `mbps` megabits per second (1 Mbit = 125,000 bytes), with a burst of
    /// a tenth of a second (what the hard-cap rule reserves on top of the rate).
    pub fn new(mbps: u32) -> Limiter {
        let rate = f64::from(mbps.max(1)) * 125_000.0;
        let burst = rate / 10.0;
        Limiter {
            mbps,
            rate,
            burst,
            state: Mutex::new((burst, Instant::now())),
        }
    }

    /// The bandwidth it holds, megabits per second.
    pub fn mbps(&self) -> u32 {
        self.mbps
    }

    /// Takes up to `want` bytes: how many may go now, or how long until some may.
    pub fn take(&self, want: usize) -> Result<usize, Duration> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let (tokens, last) = *state;
        let tokens = (tokens + now.duration_since(last).as_secs_f64() * self.rate).min(self.burst);
        if tokens < 1.0 {
            *state = (tokens, now);
            return Err(
                Duration::from_secs_f64((1.0 - tokens) / self.rate).max(Duration::from_millis(1))
            );
        }
        let granted = (want as f64).min(tokens).floor().max(1.0);
        *state = (tokens - granted, now);
        Ok(granted as usize)
    }

    /// Gives back bytes taken but not moved.
    pub fn refund(&self, bytes: usize) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.0 = (state.0 + bytes as f64).min(self.burst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_holds_its_rate() {
        let limiter = Limiter::new(8); // 1,000,000 bytes per second
        let started = Instant::now();
        let mut moved = 0usize;
        while started.elapsed() < Duration::from_millis(500) {
            match limiter.take(64 << 10) {
                Ok(n) => moved += n,
                Err(wait) => std::thread::sleep(wait),
            }
        }
        let rate = moved as f64 / started.elapsed().as_secs_f64();
        // The first burst (100 ms) comes on top of the rate.
        assert!((950_000.0..1_300_000.0).contains(&rate), "{rate} bytes/s");
        limiter.refund(10);
    }
}
