//! The job runner's counters for `/metrics`: runs, failures, last duration and last
//! success of each job.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// One job's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JobCounters {
    /// Attempts, retries included.
    pub runs: u64,
    /// Attempts that failed.
    pub failures: u64,
    /// How long the last attempt took, milliseconds.
    pub last_duration_ms: u64,
    /// When an attempt last succeeded, unix seconds (0: never).
    pub last_success_s: u64,
}

/// A metric family: name, type, help and the counter it shows.
type Family = (
    &'static str,
    &'static str,
    &'static str,
    fn(&JobCounters) -> u64,
);

/// Counters of every job, by name.
#[derive(Default)]
pub struct JobMetrics {
    jobs: Mutex<BTreeMap<&'static str, JobCounters>>,
    /// Tenants' schedule runs by outcome.
    schedule_runs: Mutex<BTreeMap<&'static str, u64>>,
}

impl JobMetrics {
    /// Shows a job (with zeros) before its first run.
    pub fn register(&self, name: &'static str) {
        self.jobs
            .lock()
            .expect("job metrics")
            .entry(name)
            .or_default();
    }

    /// Counts one attempt.
    pub fn record(&self, name: &'static str, ok: bool, took: Duration) {
        let mut jobs = self.jobs.lock().expect("job metrics");
        let c = jobs.entry(name).or_default();
        c.runs += 1;
        c.last_duration_ms = took.as_millis() as u64;
        if ok {
            c.last_success_s = crate::db::now_s().max(0) as u64;
        } else {
            c.failures += 1;
        }
    }

    /// Counts one run of a tenant's schedule by outcome.
    pub fn count_schedule_run(&self, outcome: &'static str) {
        *self
            .schedule_runs
            .lock()
            .expect("schedule metrics")
            .entry(outcome)
            .or_default() += 1;
    }

    /// One job's counters.
    pub fn get(&self, name: &str) -> Option<JobCounters> {
        self.jobs.lock().expect("job metrics").get(name).copied()
    }

    /// Prometheus text.
    pub fn render(&self) -> String {
        let jobs = self.jobs.lock().expect("job metrics");
        let mut out = String::new();
        let families: [Family; 4] = [
            (
                "corral_job_runs_total",
                "counter",
                "Operator job attempts, retries included.",
                |c| c.runs,
            ),
            (
                "corral_job_failures_total",
                "counter",
                "Operator job attempts that failed.",
                |c| c.failures,
            ),
            (
                "corral_job_last_duration_ms",
                "gauge",
                "How long the job's last attempt took.",
                |c| c.last_duration_ms,
            ),
            (
                "corral_job_last_success_timestamp_seconds",
                "gauge",
                "When the job last succeeded (0: never).",
                |c| c.last_success_s,
            ),
        ];
        for (name, kind, help, value) in families {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (job, c) in jobs.iter() {
                let _ = writeln!(out, "{name}{{job=\"{job}\"}} {}", value(c));
            }
        }
        let runs = self.schedule_runs.lock().expect("schedule metrics");
        let _ = writeln!(out, "# HELP corral_schedule_runs_total Runs of tenants' schedules by outcome.\n# TYPE corral_schedule_runs_total counter");
        for (outcome, n) in runs.iter() {
            let _ = writeln!(
                out,
                "corral_schedule_runs_total{{outcome=\"{outcome}\"}} {n}"
            );
        }
        out
    }
}
