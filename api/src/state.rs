//! What every handler shares: configuration, the pool, keys, limits, metrics, services;
//! and the supervised background tasks.

use std::sync::Arc;
use std::time::Duration;

use sqlx::SqlitePool;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::auth::Keys;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::ratelimit::RateLimits;

/// Shared state, cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// Settings in force.
    pub config: Arc<Config>,
    /// The database.
    pub pool: SqlitePool,
    /// Token signing keys.
    pub keys: Keys,
    /// Rate limiters.
    pub limits: Arc<RateLimits>,
    /// Counters for `/metrics`.
    pub metrics: Arc<Metrics>,
}

/// Opens the database and builds the services from configuration.
pub async fn build(config: Config) -> anyhow::Result<AppState> {
    let pool = crate::db::open(&config.data_dir, config.db_pool_size).await?;
    let keys = Keys::load(config.jwt_secret.as_ref(), &config.data_dir)?;
    let limits = RateLimits::new(
        config.token_rate_per_s,
        config.token_rate_burst,
        config.auth_rate_per_min,
    );
    Ok(AppState {
        config: Arc::new(config),
        pool,
        keys,
        limits: Arc::new(limits),
        metrics: Arc::new(Metrics::default()),
    })
}

impl AppState {
    /// Why the sandbox backend cannot serve, if it cannot.
    pub fn driver_problem(&self) -> Option<String> {
        None
    }

    /// Appends the services' own metrics (metering, outbox).
    pub fn render_service_metrics(&self, _out: &mut String) {}

    /// Starts the supervised background loops.
    pub fn start_background(&self) -> Background {
        let mut background = Background::new();
        let limits = self.limits.clone();
        background.spawn("rate-limit-cleanup", move |mut stop| async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(60)) => limits.shrink(),
                    _ = stop.changed() => return Ok(()),
                }
            }
        });
        background
    }
}

/// Supervised background tasks sharing one shutdown signal.
pub struct Background {
    stop: watch::Sender<bool>,
    tasks: Vec<(&'static str, JoinHandle<()>)>,
}

impl Default for Background {
    fn default() -> Self {
        Self::new()
    }
}

impl Background {
    /// No tasks yet.
    pub fn new() -> Self {
        Self {
            stop: watch::channel(false).0,
            tasks: Vec::new(),
        }
    }

    /// Runs `task` until it returns or shutdown; logs how it ended.
    pub fn spawn<F, Fut>(&mut self, name: &'static str, task: F)
    where
        F: FnOnce(watch::Receiver<bool>) -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let future = task(self.stop.subscribe());
        let handle = tokio::spawn(async move {
            match future.await {
                Ok(()) => tracing::info!(task = name, "background task stopped"),
                Err(error) => {
                    tracing::error!(task = name, error = ?error, "background task failed")
                }
            }
        });
        self.tasks.push((name, handle));
    }

    /// Signals shutdown and waits (at most 10 s) for every task.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for (name, handle) in self.tasks {
            if tokio::time::timeout(Duration::from_secs(10), handle)
                .await
                .is_err()
            {
                tracing::warn!(task = name, "background task did not stop in time");
            }
        }
    }
}
