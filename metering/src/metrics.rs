//! The meter's counters for `/metrics`: tick time, enforcement and alerts (atomics).

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Counters the metering loop updates and `/metrics` reads.
#[derive(Debug, Default)]
pub struct MeterMetrics {
    /// Ticks recorded.
    pub ticks: AtomicU64,
    /// Ticks that failed (database or fleet errors); the next tick catches up.
    pub tick_errors: AtomicU64,
    /// Ticks refused because another tick already covered that instant.
    pub ticks_skipped: AtomicU64,
    /// Wall time of the last tick, microseconds.
    pub last_tick_us: AtomicU64,
    /// Longest tick so far, microseconds.
    pub max_tick_us: AtomicU64,
    /// All ticks' wall time, microseconds.
    pub tick_us_total: AtomicU64,
    /// Sprites metered by the last tick.
    pub last_tick_sprites: AtomicU64,
    /// Nano-dollars recorded, all ticks.
    pub recorded_nanos: AtomicU64,
    /// Scope decisions to pause (one per scope and tick).
    pub scopes_enforced: AtomicU64,
    /// Sprites asked to pause for budget.
    pub sprites_paused_for_budget: AtomicU64,
    /// Time the last budget pause call took, microseconds.
    pub last_pause_us: AtomicU64,
    /// Threshold alerts queued.
    pub alerts_queued: AtomicU64,
    /// Samples cut to the declared worst case (a late tick or an over-limit reading).
    pub clamped_samples: AtomicU64,
    /// The rule's window in force, ms: tick plus pause latency plus the slowest recent
    /// tick (see [`crate::RuleWindow`]).
    pub rule_window_ms: AtomicU64,
    /// Wall time of each [`Phase`] over all recorded ticks, microseconds.
    pub phase_us_total: [AtomicU64; Phase::ALL.len()],
}

/// The parts of a tick, timed one after the other (their sum is the tick's wall time).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Listing the fleet (`Fleet::sprites`).
    List,
    /// Reading baselines, the minute's rows, tenants and tokens in the transaction
    /// (usage is sampled meanwhile, on another thread).
    Read,
    /// Waiting for the usage samples (`Fleet::sample`) the reads did not cover.
    Sample,
    /// Pricing (`tick::plan`), the outage catch-up included.
    Plan,
    /// Writing ledger rows and baselines.
    Write,
    /// Spend per scope: reading it, the rule, writing it and the alerts.
    Spend,
    /// Committing the transaction.
    Commit,
}

impl Phase {
    /// Every phase, in tick order.
    pub const ALL: [Phase; 7] = [
        Phase::List,
        Phase::Read,
        Phase::Sample,
        Phase::Plan,
        Phase::Write,
        Phase::Spend,
        Phase::Commit,
    ];

    /// Its label on `/metrics`.
    pub fn label(self) -> &'static str {
        match self {
            Phase::List => "list",
            Phase::Sample => "sample",
            Phase::Read => "read",
            Phase::Plan => "plan",
            Phase::Write => "write",
            Phase::Spend => "spend",
            Phase::Commit => "commit",
        }
    }
}

/// A tick's phases, timed as it goes: each [`Laps::lap`] charges the time since the
/// previous one to a phase.
#[derive(Debug)]
pub struct Laps {
    last: std::time::Instant,
    us: [u64; Phase::ALL.len()],
}

impl Default for Laps {
    fn default() -> Laps {
        Laps {
            last: std::time::Instant::now(),
            us: [0; Phase::ALL.len()],
        }
    }
}

impl Laps {
    /// Charges the time since the last lap to `phase`.
    pub fn lap(&mut self, phase: Phase) {
        let now = std::time::Instant::now();
        self.us[phase as usize] += now.duration_since(self.last).as_micros() as u64;
        self.last = now;
    }
}

impl MeterMetrics {
    /// Records a tick's wall time.
    pub fn observe_tick(&self, us: u64) {
        self.ticks.fetch_add(1, Relaxed);
        self.last_tick_us.store(us, Relaxed);
        self.max_tick_us.fetch_max(us, Relaxed);
        self.tick_us_total.fetch_add(us, Relaxed);
    }

    /// Adds a recorded tick's phases to their totals.
    pub fn observe_phases(&self, laps: &Laps) {
        for (total, us) in self.phase_us_total.iter().zip(laps.us) {
            total.fetch_add(us, Relaxed);
        }
    }

    /// Prometheus text exposition of every counter.
    pub fn render(&self) -> String {
        let rows: [(&str, &str, &str, &AtomicU64); 14] = [
            (
                "corral_meter_ticks_total",
                "counter",
                "Metering ticks recorded.",
                &self.ticks,
            ),
            (
                "corral_meter_tick_errors_total",
                "counter",
                "Metering ticks that failed.",
                &self.tick_errors,
            ),
            (
                "corral_meter_ticks_skipped_total",
                "counter",
                "Ticks refused as already covered.",
                &self.ticks_skipped,
            ),
            (
                "corral_meter_last_tick_microseconds",
                "gauge",
                "Wall time of the last tick.",
                &self.last_tick_us,
            ),
            (
                "corral_meter_max_tick_microseconds",
                "gauge",
                "Longest tick.",
                &self.max_tick_us,
            ),
            (
                "corral_meter_tick_microseconds_total",
                "counter",
                "Wall time of all ticks.",
                &self.tick_us_total,
            ),
            (
                "corral_meter_last_tick_sprites",
                "gauge",
                "Sprites metered by the last tick.",
                &self.last_tick_sprites,
            ),
            (
                "corral_meter_recorded_nanodollars_total",
                "counter",
                "Spend recorded.",
                &self.recorded_nanos,
            ),
            (
                "corral_budget_scopes_enforced_total",
                "counter",
                "Scope decisions to pause.",
                &self.scopes_enforced,
            ),
            (
                "corral_budget_sprites_paused_total",
                "counter",
                "Sprites paused for budget.",
                &self.sprites_paused_for_budget,
            ),
            (
                "corral_budget_last_pause_microseconds",
                "gauge",
                "Time the last budget pause took.",
                &self.last_pause_us,
            ),
            (
                "corral_alerts_queued_total",
                "counter",
                "Threshold alerts queued.",
                &self.alerts_queued,
            ),
            (
                "corral_meter_clamped_samples_total",
                "counter",
                "Samples cut to the worst case.",
                &self.clamped_samples,
            ),
            (
                "corral_meter_rule_window_milliseconds",
                "gauge",
                "The rule's window: tick, pause latency and the slowest recent tick.",
                &self.rule_window_ms,
            ),
        ];
        let mut out = String::new();
        for (name, kind, help, v) in rows {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {}",
                v.load(Relaxed)
            );
        }
        let name = "corral_meter_phase_microseconds_total";
        let _ = writeln!(
            out,
            "# HELP {name} Wall time of each part of all ticks.\n# TYPE {name} counter"
        );
        for (phase, v) in Phase::ALL.iter().zip(&self.phase_us_total) {
            let _ = writeln!(
                out,
                "{name}{{phase=\"{}\"}} {}",
                phase.label(),
                v.load(Relaxed)
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = MeterMetrics::default();
        m.observe_tick(1500);
        m.observe_tick(700);
        let text = m.render();
        assert!(
            text.contains("# TYPE corral_meter_ticks_total counter\ncorral_meter_ticks_total 2\n")
        );
        assert!(text.contains("corral_meter_max_tick_microseconds 1500\n"));
        assert!(text.contains("corral_meter_last_tick_microseconds 700\n"));
    }

    #[test]
    fn phases_add_up_per_label() {
        let m = MeterMetrics::default();
        let mut laps = Laps::default();
        laps.us[Phase::Write as usize] = 40;
        laps.us[Phase::List as usize] = 3;
        m.observe_phases(&laps);
        m.observe_phases(&laps);
        let text = m.render();
        assert!(text.contains("corral_meter_phase_microseconds_total{phase=\"write\"} 80\n"));
        assert!(text.contains("corral_meter_phase_microseconds_total{phase=\"list\"} 6\n"));
        assert!(text.contains("corral_meter_phase_microseconds_total{phase=\"commit\"} 0\n"));
    }
}
