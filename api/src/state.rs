//! What every handler shares: configuration, the pool, keys, limits, metrics, services;
//! and the supervised background tasks.

use std::sync::Arc;
use std::time::Duration;

use sqlx::SqlitePool;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::accounts::Accounts;
use crate::config::Config;
use crate::egress::addresses::Exceptions;
use crate::egress::{Gateway, OperatorDefault};
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::money::budget::Budgets;
use crate::money::{self, Money};
use crate::ratelimit::RateLimits;
use crate::sprites::{BudgetGate, Sprites};
use crate::tokens::auth::Keys;
use crate::tokens::cache::TokenCache;
use crate::tokens::Tokens;
use vmm_driver::DriverConfig;

/// Shared state, cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// Settings in force.
    pub config: Arc<Config>,
    /// The database.
    pub pool: SqlitePool,
    /// Token signing keys.
    pub keys: Keys,
    /// Rate limiters (per token, per client address); not the scaling limits.
    pub rate_limits: Arc<RateLimits>,
    /// Counters for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// The sprites service; `None` when the backend cannot run here.
    pub sprites: Option<Arc<Sprites>>,
    /// Why the backend cannot run here.
    pub driver_problem: Option<String>,
    /// Sprites' way out; `None` with the backend.
    pub egress: Option<Arc<Gateway>>,
    /// Tenants' secrets; `None` with the backend.
    pub secrets: Option<Arc<crate::egress::secrets::Secrets>>,
    /// Metering and alert mail.
    pub money: Arc<Money>,
    /// Token rows recently read for authentication.
    pub token_cache: Arc<TokenCache>,
    /// Sprites' URLs: where they point and how requests to them are served.
    pub front: Arc<crate::ingress::FrontDoor>,
    /// Billing through Stripe (mode `off` without keys).
    pub billing: Arc<crate::billing::Billing>,
    /// Operator jobs' and tenant schedules' counters.
    pub jobs: Arc<crate::jobs::JobMetrics>,
}

/// Opens the database and builds the services from configuration.
pub async fn build(config: Config) -> anyhow::Result<AppState> {
    let pool = crate::db::open(&config.data_dir, config.db_pool_size).await?;
    crate::jobs::check(&pool, &config)?;
    let keys = Keys::load(config.jwt_secret.as_ref(), &config.data_dir)?;
    let rate_limits = RateLimits::new(
        config.token_rate_per_s,
        config.token_rate_burst,
        config.auth_rate_per_min,
    );
    let config = Arc::new(config);
    let driver_config = DriverConfig {
        kind: config.driver.clone(),
        state_dir: config.data_dir.join("machines"),
        image_dir: config.image_dir(),
        agent_path: match &config.agent_path {
            Some(path) => path.into(),
            None => std::env::current_exe()?,
        },
    };
    // The rule's window: the meter publishes it, admission's runway reads it.
    let window = Arc::new(corral_metering::RuleWindow::new(&money::meter_config(
        &config,
    )));
    let (sprites, driver_problem) = match vmm_driver::from_config(&driver_config).await {
        Ok(driver) => {
            let gate: Arc<dyn BudgetGate> =
                Arc::new(money::MeterGate::new(pool.clone(), &config, window.clone()));
            let sprites = Arc::new(Sprites::new(pool.clone(), driver, config.clone(), gate));
            sprites.reconcile().await?;
            sprites.configure_pool(
                crate::sprites::pool::parse(&config.warm_pool, &config)
                    .map_err(anyhow::Error::msg)?,
            );
            sprites.collect_images().await?;
            let _ = std::fs::remove_dir_all(crate::sprites::export::scratch_dir(&config.data_dir));
            if !sprites
                .driver()
                .images()
                .iter()
                .any(|i| i.name == config.default_image)
            {
                tracing::error!(
                    image = %config.default_image,
                    "the default image is not built: creates without `image` answer 503 until \
                     `corral image build {}` has run",
                    config.default_image
                );
            }
            (Some(sprites), None)
        }
        Err(error) => {
            tracing::error!(%error, "the sandbox backend is unavailable; sprite calls answer 503");
            (None, Some(error.to_string()))
        }
    };
    let mut secrets_store = None;
    let egress = match &sprites {
        Some(sprites) => {
            let default =
                OperatorDefault::parse(&config.egress_default).map_err(anyhow::Error::msg)?;
            let exceptions = Exceptions::parse(
                config.egress_allow_ranges.as_deref(),
                config.egress_resolve.as_deref(),
            )
            .map_err(anyhow::Error::msg)?;
            let secrets = Arc::new(crate::egress::secrets::Secrets::open(
                pool.clone(),
                &config.data_dir,
            )?);
            let extra_ca = config.egress_extra_ca.as_deref().map(std::path::Path::new);
            let tls = Arc::new(crate::egress::tls::Tls::open(
                &config.data_dir.join("egress-ca"),
                extra_ca,
            )?);
            // Sprites trust the install's authority: its certificate, and the system's
            // roots with it, shared at /.corral.
            let mut bundle =
                std::fs::read("/etc/ssl/certs/ca-certificates.crt").unwrap_or_default();
            bundle.extend_from_slice(tls.ca_pem().as_bytes());
            sprites
                .driver()
                .share("corral-ca.pem", tls.ca_pem().as_bytes())?;
            sprites.driver().share("ca-bundle.pem", &bundle)?;
            sprites.set_secrets(secrets.clone());
            secrets_store = Some(secrets.clone());
            let gateway = Arc::new(
                Gateway::new(pool.clone(), default, exceptions, config.network_mbps)
                    .with_secrets(secrets, tls),
            );
            sprites.driver().set_egress(gateway.clone());
            Some(gateway)
        }
        None => None,
    };
    let front = Arc::new(crate::ingress::FrontDoor::new(&config));
    if let Some(sprites) = &sprites {
        sprites.set_front(front.clone());
    }
    let meter = sprites.as_ref().map(|sprites| {
        let fleet = money::fleet::SpritesFleet::new(sprites.clone(), egress.clone());
        corral_metering::Meter::new(pool.clone(), Arc::new(fleet), money::meter_config(&config))
            .with_window(window.clone())
    });
    let billing = crate::billing::Billing::new(pool.clone(), config.clone(), sprites.clone())?;
    Ok(AppState {
        billing: Arc::new(billing),
        money: Arc::new(Money::new(meter, window)),
        config,
        pool,
        keys,
        rate_limits: Arc::new(rate_limits),
        metrics: Arc::new(Metrics::default()),
        sprites,
        driver_problem,
        egress,
        secrets: secrets_store,
        token_cache: Arc::default(),
        front,
        jobs: Arc::default(),
    })
}

impl AppState {
    /// Why the sandbox backend cannot serve, if it cannot.
    pub fn driver_problem(&self) -> Option<String> {
        self.driver_problem.clone()
    }

    /// The sprites service, or 503 naming what the backend is missing.
    pub fn sprites(&self) -> Result<&Arc<Sprites>, ApiError> {
        self.sprites
            .as_ref()
            .ok_or_else(|| crate::sprites::unavailable(self.driver_problem.as_deref()))
    }

    /// Tenants' secrets.
    pub fn secrets(&self) -> Result<&Arc<crate::egress::secrets::Secrets>, ApiError> {
        self.secrets
            .as_ref()
            .ok_or_else(|| crate::sprites::unavailable(self.driver_problem.as_deref()))
    }

    /// Sprites' way out (policies, the decision log).
    pub fn egress(&self) -> Result<&Arc<Gateway>, ApiError> {
        self.egress
            .as_ref()
            .ok_or_else(|| crate::sprites::unavailable(self.driver_problem.as_deref()))
    }

    /// The tokens service.
    pub fn tokens(&self) -> Tokens<'_> {
        Tokens {
            pool: &self.pool,
            keys: &self.keys,
            config: &self.config,
            cache: &self.token_cache,
        }
    }

    /// The budgets service.
    pub fn budgets(&self) -> Budgets<'_> {
        Budgets {
            pool: &self.pool,
            config: &self.config,
            sprites: self
                .sprites
                .as_deref()
                .ok_or(self.driver_problem.as_deref()),
        }
    }

    /// The accounts service.
    pub fn accounts(&self) -> Accounts<'_> {
        Accounts {
            pool: &self.pool,
            tokens: self.tokens(),
        }
    }

    /// Appends the services' own metrics (metering, outbox).
    pub fn render_service_metrics(&self, out: &mut String) {
        self.money.render(out);
        out.push_str(&self.jobs.render());
    }

    /// Starts the supervised background loops.
    pub fn start_background(&self) -> Background {
        let mut background = Background::new();
        let limits = self.rate_limits.clone();
        let front = self.front.clone();
        background.spawn("rate-limit-cleanup", move |mut stop| async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(60)) => {
                        limits.shrink();
                        front.pool.sweep();
                    }
                    _ = stop.changed() => return Ok(()),
                }
            }
        });
        if let Some(sprites) = &self.sprites {
            let sprites = sprites.clone();
            background.spawn("idle-pause", move |stop| {
                crate::sprites::idle::reaper(sprites, stop)
            });
            let sprites = self.sprites.clone().expect("sprites");
            background.spawn("warm-pool", move |stop| {
                crate::sprites::pool::filler(sprites, stop)
            });
        }
        if let Some(meter) = self.money.take_meter() {
            background.spawn("metering", move |mut stop| async move {
                meter
                    .run(async move {
                        let _ = stop.changed().await;
                    })
                    .await;
                Ok(())
            });
        }
        crate::billing::chores::start(self.billing.clone(), &mut background);
        let (pool, retry_base_s) = (self.pool.clone(), self.config.mail_retry_base_s);
        let mail_metrics = self.money.mail.clone();
        match money::mail::Mailer::from_config(&self.config) {
            Ok(mailer) => background.spawn("alert-mail", move |stop| {
                money::mail::outbox_loop(pool, mailer, retry_base_s, mail_metrics, stop)
            }),
            Err(error) => tracing::error!(%error, "alert mail is off"),
        }
        crate::jobs::start(self, &mut background);
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
