//! Prometheus counters for `/metrics`: requests, sprites by state, metering, outbox.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Counters kept by the process.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    /// Driver calls that failed.
    pub driver_errors: AtomicU64,
}

impl Metrics {
    /// Counts one answered request by method, matched route and status.
    pub fn record_request(&self, method: &str, route: &str, status: u16) {
        let mut requests = self.requests.lock().expect("metrics lock");
        *requests
            .entry((method.to_string(), route.to_string(), status))
            .or_default() += 1;
    }

    /// The request counters as Prometheus text.
    pub fn render_requests(&self, out: &mut String) {
        out.push_str("# HELP corral_http_requests_total HTTP requests answered.\n");
        out.push_str("# TYPE corral_http_requests_total counter\n");
        let requests = self.requests.lock().expect("metrics lock");
        for ((method, route, status), count) in requests.iter() {
            let _ = writeln!(
                out,
                "corral_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {count}"
            );
        }
        let _ = writeln!(
            out,
            "# TYPE corral_driver_errors_total counter\ncorral_driver_errors_total {}",
            self.driver_errors.load(Ordering::Relaxed)
        );
    }
}

/// Appends one gauge line with its type.
pub fn gauge(out: &mut String, name: &str, help: &str, samples: &[(&str, u64)]) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
    for (labels, value) in samples {
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {value}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    }
}
