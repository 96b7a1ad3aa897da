//! Metering wired into the API: the fleet the meter samples, the budget gate behind
//! the 402s, alert mail, and the settings they share.

pub mod budget;
pub mod fleet;
pub mod gate;
pub mod mail;
pub mod reports;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use corral_metering::{BudgetContext, Meter, MeterConfig, MeterMetrics, Nanos, Prices, RuleWindow};

use crate::config::Config;

pub use gate::MeterGate;
pub use mail::MailMetrics;

/// The price table configuration sets.
pub fn prices(config: &Config) -> Prices {
    Prices {
        cpu_nanos_per_cpu_s: config.price_cpu_nanos_per_cpu_s,
        memory_nanos_per_gb_s: config.price_memory_nanos_per_gb_s,
        disk_nanos_per_gb_month: config.price_disk_nanos_per_gb_month,
        network_nanos_per_gb: config.price_network_nanos_per_gb,
    }
}

/// A sprite's bandwidth through the way out in bytes per second (1 Mbit = 125,000
/// bytes): its own setting within the operator's `operator_mbps`, else the operator's.
pub fn network_bytes_per_s(operator_mbps: u32, own: Option<i64>) -> u64 {
    let operator = u64::from(operator_mbps.max(1));
    let mbps = own
        .and_then(|m| u64::try_from(m).ok())
        .filter(|m| *m >= 1)
        .map_or(operator, |m| m.min(operator));
    mbps * 125_000
}

/// The meter's settings from configuration.
pub fn meter_config(config: &Config) -> MeterConfig {
    MeterConfig {
        tick: Duration::from_millis(config.tick_ms.max(10)),
        pause_latency: Duration::from_millis(config.pause_latency_ms),
        prices: prices(config),
        // 0 (or less) is "no default cap": tenants without a cap of their own may spend
        // without limit.
        default_tenant_cap: (config.default_cap_nanos > 0)
            .then_some(Nanos(config.default_cap_nanos)),
        disk_growth_bytes_per_s: config.disk_growth_bytes_per_s,
        prepaid: crate::billing::Mode::of(config) == crate::billing::Mode::Prepaid,
    }
}

/// What budget reads need now.
pub fn budget_context(config: &Config) -> BudgetContext {
    meter_config(config).budget_context(corral_metering::now_ms())
}

/// The money services of one process: the meter (until the background starts it),
/// its counters and the outbox's.
pub struct Money {
    meter: Mutex<Option<Meter>>,
    /// The meter's counters; `None` when no meter runs (no sandbox backend).
    pub meter_metrics: Option<Arc<MeterMetrics>>,
    /// The outbox's counters.
    pub mail: Arc<MailMetrics>,
    /// The rule's window the meter publishes (admission's runway follows it).
    pub window: Arc<RuleWindow>,
}

impl Money {
    /// Holds `meter` until [`Money::take_meter`]; `window` is the one it publishes.
    pub fn new(meter: Option<Meter>, window: Arc<RuleWindow>) -> Self {
        Self {
            meter_metrics: meter.as_ref().map(Meter::metrics),
            meter: Mutex::new(meter),
            mail: Arc::default(),
            window,
        }
    }

    /// The runway a sprite must afford now (metering's rule; shown by `GET /v1/prices`).
    pub fn runway_s(&self, config: &Config) -> u64 {
        self.window.runway_s(config.min_runway_s)
    }

    /// The meter, once: the background task runs it.
    pub fn take_meter(&self) -> Option<Meter> {
        self.meter.lock().expect("meter").take()
    }

    /// Meter and outbox counters as Prometheus text.
    pub fn render(&self, out: &mut String) {
        if let Some(metrics) = &self.meter_metrics {
            out.push_str(&metrics.render());
        }
        self.mail.render(out);
    }
}
