//! The operator's job runner: named chores on cron expressions from the configuration,
//! each in its own supervised task, each run logged and counted, a failure retried with
//! backoff (never past the job's next time) and never stopping the other jobs.

pub mod chores;
pub mod metrics;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use sqlx::SqlitePool;
use tokio::sync::watch;

use crate::config::Config;
use crate::schedules::crontab::Crontab;
use crate::state::{AppState, Background};
pub use metrics::JobMetrics;

/// What a job runs: a fresh future per attempt.
pub type JobFn =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>> + Send + Sync>;

struct Job {
    name: &'static str,
    schedule: Crontab,
    run: JobFn,
}

/// Jobs to start, with the retry policy they share.
pub struct Jobs {
    jobs: Vec<Job>,
    metrics: Arc<JobMetrics>,
    retries: u32,
    retry_base: Duration,
}

impl Jobs {
    /// No jobs yet; failures are retried `retries` times, first after `retry_base`.
    pub fn new(metrics: Arc<JobMetrics>, retries: u32, retry_base: Duration) -> Self {
        Self {
            jobs: Vec::new(),
            metrics,
            retries,
            retry_base,
        }
    }

    /// Adds `run` as job `name` on `cron`: five-field crontab in UTC, six fields with a
    /// leading second, an `@name`, or `off` (the job is not run). A bad expression is
    /// an error naming the job, so a typo stops the start instead of a chore.
    pub fn add<F, Fut>(&mut self, name: &'static str, cron: &str, run: F) -> anyhow::Result<()>
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        if cron.trim().eq_ignore_ascii_case("off") {
            tracing::info!(job = name, "job is off");
            return Ok(());
        }
        let schedule = Crontab::parse(cron, true)
            .map_err(|why| anyhow::anyhow!("job {name}: cron {cron:?}: {why}"))?;
        self.jobs.push(Job {
            name,
            schedule,
            run: Arc::new(move || Box::pin(run())),
        });
        Ok(())
    }

    /// The names of the jobs that will run.
    pub fn names(&self) -> Vec<&'static str> {
        self.jobs.iter().map(|j| j.name).collect()
    }

    /// Starts each job as its own background task.
    pub fn start(self, background: &mut Background) {
        for job in self.jobs {
            let metrics = self.metrics.clone();
            let (retries, base) = (self.retries, self.retry_base);
            tracing::info!(job = job.name, cron = %job.schedule.text, "job scheduled");
            background.spawn(job.name, move |stop| {
                job_loop(job, metrics, retries, base, stop)
            });
        }
    }
}

/// Which of billing's chores run: Stripe's (metered billing), or none; `Check` parses
/// their times without running them, so a bad one is refused whatever the mode.
pub enum BillingJobs {
    Run(Arc<crate::billing::Billing>),
    Check,
    Off,
}

/// The operator's jobs from `config`, with billing's chores when billing is on.
pub fn operator_jobs(
    pool: &SqlitePool,
    config: &Config,
    metrics: Arc<JobMetrics>,
    billing: BillingJobs,
) -> anyhow::Result<Jobs> {
    let mut jobs = Jobs::new(
        metrics,
        config.job_retries,
        Duration::from_secs(config.job_retry_base_s),
    );
    chores::add_builtin(&mut jobs, pool, config)?;
    let billing = match billing {
        BillingJobs::Run(billing) => Some(billing),
        BillingJobs::Check => None,
        // Nothing to push or reconcile: no job to log every minute.
        BillingJobs::Off => return Ok(jobs),
    };
    let b = billing.clone();
    jobs.add("billing-push", &config.job_billing_push, move || {
        let b = b.clone();
        async move {
            match b {
                Some(billing) => crate::billing::chores::push_usage(&billing).await,
                None => Ok(()),
            }
        }
    })?;
    jobs.add(
        "billing-reconcile",
        &config.job_billing_reconcile,
        move || {
            let b = billing.clone();
            async move {
                match b {
                    Some(billing) => crate::billing::chores::reconcile(&billing).await,
                    None => Ok(()),
                }
            }
        },
    )?;
    Ok(jobs)
}

/// Refuses a configuration whose job times do not parse (at start, not at 3 a.m.).
pub fn check(pool: &SqlitePool, config: &Config) -> anyhow::Result<()> {
    let seconds = config.schedule_seconds.trim().to_ascii_lowercase();
    anyhow::ensure!(
        seconds == "on" || seconds == "off",
        "CORRAL_SCHEDULE_SECONDS must be on or off, got {:?}",
        config.schedule_seconds
    );
    operator_jobs(pool, config, Arc::default(), BillingJobs::Check).map(drop)
}

/// Starts the operator's jobs and, with a sandbox backend, the tenants' schedules.
pub fn start(state: &AppState, background: &mut Background) {
    let billing = if state.billing.mode == crate::billing::Mode::Metered {
        BillingJobs::Run(state.billing.clone())
    } else {
        BillingJobs::Off
    };
    match operator_jobs(&state.pool, &state.config, state.jobs.clone(), billing) {
        Ok(jobs) => jobs.start(background),
        Err(error) => tracing::error!(%error, "operator jobs are off"),
    }
    if let Some(sprites) = &state.sprites {
        let runner = Arc::new(crate::schedules::runner::Runner::new(
            state.pool.clone(),
            state.config.clone(),
            sprites.clone(),
            state.jobs.clone(),
            state.money.window.clone(),
        ));
        background.spawn("schedules", move |stop| runner.run(stop));
    }
}

async fn job_loop(
    job: Job,
    metrics: Arc<JobMetrics>,
    retries: u32,
    base: Duration,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    metrics.register(job.name);
    loop {
        let Some(next) = job.schedule.after(Utc::now()) else {
            tracing::warn!(job = job.name, "job has no next time; it stops");
            return Ok(());
        };
        let wait = (next - Utc::now()).to_std().unwrap_or_default();
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return Ok(()),
        }
        let mut failures = 0u32;
        loop {
            if attempt(&job, &metrics).await {
                break;
            }
            failures += 1;
            let backoff = base.saturating_mul(1 << (failures - 1).min(16));
            let following = job.schedule.after(Utc::now());
            let too_late = following.is_some_and(|f| {
                Utc::now() + chrono::Duration::from_std(backoff).unwrap_or_default() >= f
            });
            if failures > retries || too_late {
                tracing::error!(
                    job = job.name,
                    failures,
                    "job failed; waiting for its next time"
                );
                break;
            }
            tracing::info!(
                job = job.name,
                retry_in_s = backoff.as_secs_f64(),
                "job will be retried"
            );
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                _ = stop.changed() => return Ok(()),
            }
        }
    }
}

/// One run in its own task (a panic is a failure, not the end of the loop); true on
/// success.
async fn attempt(job: &Job, metrics: &JobMetrics) -> bool {
    let started = Instant::now();
    let outcome = tokio::spawn((job.run)()).await;
    let took = started.elapsed();
    let error = match outcome {
        Ok(Ok(())) => None,
        Ok(Err(error)) => Some(format!("{error:#}")),
        Err(join) => Some(format!("the job panicked: {join}")),
    };
    metrics.record(job.name, error.is_none(), took);
    match error {
        None => {
            tracing::info!(job = job.name, took_ms = took.as_millis() as u64, "job ran");
            true
        }
        Some(error) => {
            tracing::warn!(job = job.name, took_ms = took.as_millis() as u64, %error, "job failed");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test]
    async fn a_failing_job_is_retried_and_never_stops_the_others() {
        let metrics = Arc::new(JobMetrics::default());
        let mut jobs = Jobs::new(metrics.clone(), 2, Duration::from_millis(100));
        let calls = Arc::new(AtomicU32::new(0));
        let counted = calls.clone();
        jobs.add("flaky", "* * * * * *", move || {
            let n = counted.fetch_add(1, Ordering::SeqCst);
            async move {
                match n {
                    0 => anyhow::bail!("first attempt fails"),
                    1 => panic!("second attempt panics"),
                    _ => Ok(()),
                }
            }
        })
        .unwrap();
        jobs.add("steady", "* * * * * *", || async { Ok(()) })
            .unwrap();
        jobs.add("broken", "* * * * * *", || async {
            anyhow::bail!("always")
        })
        .unwrap();
        jobs.add("disabled", "off", || async { Ok(()) }).unwrap();
        assert_eq!(jobs.names(), ["flaky", "steady", "broken"]);
        assert!(jobs.add("typo", "61 * * * *", || async { Ok(()) }).is_err());
        let mut background = Background::new();
        jobs.start(&mut background);
        tokio::time::sleep(Duration::from_millis(3500)).await;
        background.stop().await;

        let flaky = metrics.get("flaky").unwrap();
        // Failed, panicked, then the third attempt (the second retry) succeeded.
        assert!(flaky.failures >= 2 && flaky.runs >= 3, "{flaky:?}");
        assert!(flaky.last_success_s > 0);
        let steady = metrics.get("steady").unwrap();
        assert!(steady.runs >= 3 && steady.failures == 0, "{steady:?}");
        let broken = metrics.get("broken").unwrap();
        assert!(
            broken.failures >= 2 && broken.failures == broken.runs,
            "{broken:?}"
        );
        assert!(metrics.get("disabled").is_none());
        let text = metrics.render();
        assert!(
            text.contains("corral_job_runs_total{job=\"steady\"}"),
            "{text}"
        );
        assert!(
            text.contains("corral_job_failures_total{job=\"broken\"}"),
            "{text}"
        );
    }
}
