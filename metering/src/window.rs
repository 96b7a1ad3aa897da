//! The rule's window, one value shared by the meter and admission: tick plus pause
//! latency plus the slowest recent tick's own wall time (sprites run on while the next
//! tick lists, prices and decides). The meter publishes it; admission's runway reads it,
//! so a scope the rule has paused is never readmitted with less than that window left.

use std::sync::atomic::{AtomicI64, Ordering};

use crate::MeterConfig;

/// The window of one process's meter (share it with `Arc`).
#[derive(Debug)]
pub struct RuleWindow {
    /// Tick plus pause latency, ms.
    bare_ms: i64,
    /// The slowest of the latest ticks, ms (rounded up), as the meter last published it.
    slowest_tick_ms: AtomicI64,
}

impl RuleWindow {
    /// The window of a meter with `config`, before any tick has run.
    pub fn new(config: &MeterConfig) -> RuleWindow {
        RuleWindow {
            bare_ms: config.window_ms(),
            slowest_tick_ms: AtomicI64::new(0),
        }
    }

    /// Tick plus pause latency, ms: the most compute one tick bills.
    pub fn bare_ms(&self) -> i64 {
        self.bare_ms
    }

    /// The rule's window now, ms: the bare window plus the slowest recent tick.
    pub fn ms(&self) -> i64 {
        self.bare_ms
            .saturating_add(self.slowest_tick_ms.load(Ordering::Acquire))
    }

    /// Sets the slowest recent tick's wall time, ms (the meter, after each tick).
    pub fn publish_slowest_tick(&self, ms: i64) {
        self.slowest_tick_ms.store(ms.max(0), Ordering::Release);
    }

    /// The runway a sprite must afford to start or resume, whole seconds: the configured
    /// minimum, and never less than the rule's window (a sprite admitted between two
    /// ticks runs until the next one without a reservation of that tick's rule, and a
    /// scope the rule paused must not be readmitted at once).
    pub fn runway_s(&self, min_runway_s: u64) -> u64 {
        let window_s = u64::try_from(self.ms().max(0) as u128).unwrap_or(u64::MAX);
        min_runway_s.max(window_s.div_ceil(1000))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn window(tick_ms: u64, latency_ms: u64) -> RuleWindow {
        RuleWindow::new(&MeterConfig {
            tick: Duration::from_millis(tick_ms),
            pause_latency: Duration::from_millis(latency_ms),
            ..MeterConfig::default()
        })
    }

    #[test]
    fn a_slow_tick_lengthens_the_runway_with_the_window() {
        let w = window(1000, 1000);
        assert_eq!((w.ms(), w.runway_s(0)), (2000, 2));
        w.publish_slowest_tick(400);
        assert_eq!((w.ms(), w.runway_s(0)), (2400, 3));
        assert_eq!(w.bare_ms(), 2000, "billing stays at the bare window");
        w.publish_slowest_tick(0);
        assert_eq!(
            w.runway_s(0),
            2,
            "it shrinks again once the slow tick is forgotten"
        );
    }

    #[test]
    fn the_configured_minimum_wins_when_longer() {
        let w = window(200, 1000);
        w.publish_slowest_tick(300);
        assert_eq!(w.runway_s(60), 60);
        assert_eq!(w.runway_s(1), 2, "1.5 s rounds up");
    }
}
