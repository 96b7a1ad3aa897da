//! Typed configuration: defaults, then an optional TOML file, then `CORRAL_*` variables.

use std::path::{Path, PathBuf};

/// A value that must never reach a log: `Debug` prints `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl Secret {
    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// How a setting is read from text (a TOML value or an environment variable) and shown.
trait Setting: Sized {
    fn parse(raw: &str) -> Result<Self, String>;
    fn show(&self) -> String;
}

macro_rules! numeric_setting {
    ($($t:ty),*) => {$(
        impl Setting for $t {
            fn parse(raw: &str) -> Result<Self, String> {
                raw.trim().replace('_', "").parse().map_err(|e| format!("{e}"))
            }
            fn show(&self) -> String {
                self.to_string()
            }
        }
    )*};
}
numeric_setting!(u32, u64, i64);

impl Setting for String {
    fn parse(raw: &str) -> Result<Self, String> {
        Ok(raw.to_string())
    }
    fn show(&self) -> String {
        self.clone()
    }
}

impl Setting for PathBuf {
    fn parse(raw: &str) -> Result<Self, String> {
        Ok(raw.into())
    }
    fn show(&self) -> String {
        self.display().to_string()
    }
}

impl Setting for Option<String> {
    fn parse(raw: &str) -> Result<Self, String> {
        Ok((!raw.is_empty()).then(|| raw.to_string()))
    }
    fn show(&self) -> String {
        self.clone().unwrap_or_else(|| "(unset)".into())
    }
}

impl Setting for Option<Secret> {
    fn parse(raw: &str) -> Result<Self, String> {
        Ok((!raw.is_empty()).then(|| Secret(raw.to_string())))
    }
    fn show(&self) -> String {
        match self {
            Some(_) => "[redacted]".into(),
            None => "(unset)".into(),
        }
    }
}

macro_rules! settings {
    ($( $field:ident : $ty:ty = $default:expr, $env:literal, $help:literal; )*) => {
        /// Every setting of `corral serve`.
        #[derive(Clone, Debug)]
        pub struct Config {
            $( #[doc = $help] pub $field: $ty, )*
        }

        impl Default for Config {
            fn default() -> Self {
                Self { $( $field: $default, )* }
            }
        }

        impl Config {
            fn set(&mut self, key: &str, raw: &str, source: &str) -> Result<bool, ConfigError> {
                match key {
                    $( stringify!($field) => {
                        self.$field = <$ty as Setting>::parse(raw).map_err(|why| ConfigError::Invalid {
                            key: format!("{source} {key}"),
                            why,
                        })?;
                        Ok(true)
                    } )*
                    _ => Ok(false),
                }
            }

            fn apply_env(&mut self, env: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
                $( if let Some(raw) = env($env) {
                    self.set(stringify!($field), &raw, "environment variable")?;
                } )*
                Ok(())
            }

            /// One line per setting: file key, variable, default, meaning.
            pub fn help() -> String {
                let defaults = Self::default();
                let mut out = String::from("Settings (config-file key / environment variable, default):\n");
                $( out.push_str(&format!(
                    "  {:<28} {:<38} {}\n      {}\n",
                    stringify!($field), $env, Setting::show(&defaults.$field), $help
                )); )*
                out
            }
        }
    };
}

settings! {
    data_dir: PathBuf = "./corral-data".into(), "CORRAL_DATA_DIR", "Where the database, sprites and checkpoints live.";
    listen: String = "127.0.0.1:8080".into(), "CORRAL_LISTEN", "Address the HTTP API listens on.";
    driver: String = "gvisor".into(), "CORRAL_DRIVER", "Sandbox backend: gvisor or qemu.";
    image_dir: Option<String> = None, "CORRAL_IMAGE_DIR", "Where the operator's images are built (default: DATA_DIR/images).";
    agent_path: Option<String> = None, "CORRAL_AGENT_PATH", "The in-sprite agent program (default: this corral binary).";
    public_url: String = "http://127.0.0.1:8080".into(), "CORRAL_PUBLIC_URL", "The address people reach Corral at, for links in e-mails.";
    jwt_secret: Option<Secret> = None, "CORRAL_JWT_SECRET", "Key that signs tokens (default: generated once into DATA_DIR/jwt.key).";
    db_pool_size: u32 = 8, "CORRAL_DB_POOL_SIZE", "SQLite connections in the pool.";
    tick_ms: u64 = 1000, "CORRAL_TICK_MS", "Metering tick in milliseconds.";
    price_cpu_nanos_per_cpu_s: u64 = 19_444, "CORRAL_PRICE_CPU_NANOS_PER_CPU_S", "Nano-dollars per second of CPU time used.";
    price_memory_nanos_per_gb_s: u64 = 12_153, "CORRAL_PRICE_MEMORY_NANOS_PER_GB_S", "Nano-dollars per GB-second of memory in use.";
    price_disk_nanos_per_gb_month: u64 = 500_000_000, "CORRAL_PRICE_DISK_NANOS_PER_GB_MONTH", "Nano-dollars per GB-month of bytes stored.";
    price_network_nanos_per_gb: u64 = 90_000_000, "CORRAL_PRICE_NETWORK_NANOS_PER_GB", "Nano-dollars per GB moved through a sprite's way out (either direction).";
    default_cap_nanos: i64 = 100_000_000_000, "CORRAL_DEFAULT_CAP_NANOS", "A new tenant's monthly spend cap ($100; 0 = no cap).";
    min_runway_s: u64 = 60, "CORRAL_MIN_RUNWAY_S", "Seconds of worst-case burn a sprite must afford to start.";
    pause_latency_ms: u64 = 1000, "CORRAL_PAUSE_LATENCY_MS", "Longest a budget pause may take to stop a sprite (part of the worst case).";
    disk_growth_bytes_per_s: u64 = 0, "CORRAL_DISK_GROWTH_BYTES_PER_S", "Extra disk growth per running sprite reserved ahead (each sprite's whole disk is always reserved).";
    mail_retry_base_s: u64 = 5, "CORRAL_MAIL_RETRY_BASE_S", "First wait before retrying an alert mail; doubles per attempt up to an hour.";
    session_ttl_s: u64 = 86_400, "CORRAL_SESSION_TTL_S", "Lifetime of a login session token.";
    token_max_ttl_s: u64 = 31_536_000, "CORRAL_TOKEN_MAX_TTL_S", "Longest lifetime of an API token (and its default).";
    token_rate_per_s: u32 = 200, "CORRAL_TOKEN_RATE_PER_S", "Requests per second one token may make.";
    token_rate_burst: u32 = 400, "CORRAL_TOKEN_RATE_BURST", "Burst of requests one token may make at once.";
    auth_rate_per_min: u32 = 10, "CORRAL_AUTH_RATE_PER_MIN", "Signup and login attempts per minute from one client address.";
    request_timeout_s: u64 = 30, "CORRAL_REQUEST_TIMEOUT_S", "Longest a non-exec request may take.";
    max_body_bytes: u64 = 1_048_576, "CORRAL_MAX_BODY_BYTES", "Largest JSON request body.";
    max_file_bytes: u64 = 104_857_600, "CORRAL_MAX_FILE_BYTES", "Largest file upload or download.";
    max_exec_output_bytes: u64 = 1_048_576, "CORRAL_MAX_EXEC_OUTPUT_BYTES", "Most stdout (and stderr) kept from one exec.";
    max_running_sprites: u32 = 10, "CORRAL_MAX_RUNNING_SPRITES", "Operator maximum: running sprites per tenant.";
    max_total_cpus: u32 = 8, "CORRAL_MAX_TOTAL_CPUS", "Operator maximum: vCPUs of a tenant's running sprites.";
    max_total_memory_mb: u64 = 8192, "CORRAL_MAX_TOTAL_MEMORY_MB", "Operator maximum: memory of a tenant's running sprites.";
    max_disk_mb_per_sprite: u64 = 10_240, "CORRAL_MAX_DISK_MB_PER_SPRITE", "Operator maximum: disk of one sprite.";
    max_checkpoints_per_sprite: u32 = 20, "CORRAL_MAX_CHECKPOINTS_PER_SPRITE", "Operator maximum: checkpoints kept per sprite.";
    network_mbps: u32 = 100, "CORRAL_NETWORK_MBPS", "Bandwidth of one sprite's connections (both ways together), in megabits per second.";
    egress_extra_ca: Option<String> = None, "CORRAL_EGRESS_EXTRA_CA", "A PEM file of extra authorities the way out trusts for secrets' hosts (tests and private servers).";
    egress_default: String = "allow-public".into(), "CORRAL_EGRESS_DEFAULT", "What sprites may reach when no rule of theirs or their tenant's matches: allow-public or deny.";
    egress_allow_ranges: Option<String> = None, "CORRAL_EGRESS_ALLOW_RANGES", "Address ranges sprites may reach despite being private (tests and development only), e.g. 127.0.0.0/8.";
    egress_resolve: Option<String> = None, "CORRAL_EGRESS_RESOLVE", "Names resolved to fixed addresses for sprites (tests and development only): host=ip[:port],…";
    sprites_domain: String = "sprites.localhost".into(), "CORRAL_SPRITES_DOMAIN", "Sprites' URLs are {sprite}--{handle}.DOMAIN (*.localhost reaches loopback with no DNS set-up).";
    sprites_listen: Option<String> = None, "CORRAL_SPRITES_LISTEN", "A second address serving sprites' URLs (default: only the API's listener, which serves them too).";
    sprites_url_scheme: String = "http".into(), "CORRAL_SPRITES_URL_SCHEME", "Scheme of sprites' URLs: https behind a proxy that terminates TLS.";
    sprites_url_port: u32 = 0, "CORRAL_SPRITES_URL_PORT", "Port in sprites' URLs (0: the port sprites' URLs are served on).";
    wake_wait_ms: u64 = 10_000, "CORRAL_WAKE_WAIT_MS", "How long a request to an idle sprite waits for it to wake and its port to accept.";
    default_image: String = "default".into(), "CORRAL_DEFAULT_IMAGE", "Image of a sprite created without `image` (built with `corral image build`).";
    default_cpus: u32 = 1, "CORRAL_DEFAULT_CPUS", "vCPUs of a sprite created without `cpus`.";
    default_memory_mb: u64 = 512, "CORRAL_DEFAULT_MEMORY_MB", "Memory of a sprite created without `memory_mb`.";
    default_disk_mb: u64 = 1024, "CORRAL_DEFAULT_DISK_MB", "Disk of a sprite created without `disk_mb`.";
    warm_pool: String = "2".into(), "CORRAL_WARM_POOL", "Machines made ahead and handed to creates of their shape: N (of the default shape), or image:cpus:memory_mb:disk_mb=N, comma-separated; 0 turns the pool off.";
    default_idle_timeout_s: u64 = 60, "CORRAL_DEFAULT_IDLE_TIMEOUT_S", "Idle seconds before a sprite pauses (0 = never).";
    idle_cpu_busy_pct: u32 = 5, "CORRAL_IDLE_CPU_BUSY_PCT", "CPU use (percent of one vCPU over CORRAL_IDLE_CPU_WINDOW_S) that counts as activity: a sprite this busy is not paused as idle (0 = only API calls count).";
    idle_cpu_window_s: u64 = 10, "CORRAL_IDLE_CPU_WINDOW_S", "Seconds of CPU use the idle rule looks back over.";
    smtp_url: Option<Secret> = None, "CORRAL_SMTP_URL", "Mail server for alerts, e.g. smtp://127.0.0.1:2525.";
    smtp_from: String = "corral@localhost".into(), "CORRAL_SMTP_FROM", "Sender address of alert e-mails.";
    stripe_secret_key: Option<Secret> = None, "CORRAL_STRIPE_SECRET_KEY", "Stripe secret key; billing is off without it.";
    stripe_webhook_secret: Option<Secret> = None, "CORRAL_STRIPE_WEBHOOK_SECRET", "Secret that signs Stripe's webhook events.";
    stripe_api_base: String = "https://api.stripe.com".into(), "CORRAL_STRIPE_API_BASE", "Where Stripe's API is.";
    billing_mode: String = "off".into(), "CORRAL_BILLING_MODE", "Billing through Stripe: off, prepaid (credit bought through Checkout) or metered (usage invoiced monthly). Needs the Stripe secret key.";
    stripe_metered_price: Option<String> = None, "CORRAL_STRIPE_METERED_PRICE", "Metered mode: the Stripe price (on the billing meter) a subscription is created with.";
    stripe_meter_id: Option<String> = None, "CORRAL_STRIPE_METER_ID", "Metered mode: the Stripe billing meter whose summaries reconciliation reads.";
    stripe_meter_event_name: String = "corral_usage".into(), "CORRAL_STRIPE_METER_EVENT_NAME", "Metered mode: the meter's event name; each event's value is nano-dollars of usage.";
    stripe_timeout_ms: u64 = 10_000, "CORRAL_STRIPE_TIMEOUT_MS", "Longest one call to Stripe may take.";
    billing_grace_s: u64 = 259_200, "CORRAL_BILLING_GRACE_S", "After a failed invoice payment, seconds before the tenant's sprites pause (pause_reason: billing).";
    job_billing_push: String = "* * * * *".into(), "CORRAL_JOB_BILLING_PUSH", "Metered mode: when closed ledger minutes are sent to Stripe as meter events (crontab in UTC, six fields with seconds, or off).";
    billing_push_lag_s: u64 = 120, "CORRAL_BILLING_PUSH_LAG_S", "Metered mode: a ledger minute is sent once it ended this long ago (late ticks land in it until then).";
    job_billing_reconcile: String = "23 * * * *".into(), "CORRAL_JOB_BILLING_RECONCILE", "Metered mode: when Stripe's meter summaries are compared with the ledger and corrected (crontab in UTC, or off).";
    job_period_close: String = "5 0 1 * *".into(), "CORRAL_JOB_PERIOD_CLOSE", "When the last month's totals are closed per tenant (crontab in UTC, six fields with seconds, or off).";
    job_ledger_compact: String = "17 3 * * *".into(), "CORRAL_JOB_LEDGER_COMPACT", "When old minute rows of the ledger are folded into hours (crontab in UTC, or off).";
    job_prune: String = "41 * * * *".into(), "CORRAL_JOB_PRUNE", "When expired idempotency keys and old schedule runs are deleted (crontab in UTC, or off).";
    job_retries: u32 = 3, "CORRAL_JOB_RETRIES", "Retries of a failed operator job before it waits for its next time.";
    job_retry_base_s: u64 = 10, "CORRAL_JOB_RETRY_BASE_S", "First wait before retrying a failed operator job; doubles per retry.";
    ledger_compact_after_days: u64 = 35, "CORRAL_LEDGER_COMPACT_AFTER_DAYS", "Ledger minutes older than this many days become hour rows (hour and day reports and all totals stay the same).";
    idempotency_keep_h: u64 = 24, "CORRAL_IDEMPOTENCY_KEEP_H", "Hours an Idempotency-Key of a sprite create is remembered.";
    schedule_seconds: String = "off".into(), "CORRAL_SCHEDULE_SECONDS", "on: tenants' schedules may have a sixth, leading seconds field (faster than once a minute).";
    schedule_timeout_s: u64 = 3600, "CORRAL_SCHEDULE_TIMEOUT_S", "Longest a scheduled command may run.";
    schedule_runs_kept: u32 = 20, "CORRAL_SCHEDULE_RUNS_KEPT", "Runs kept per schedule (older ones are pruned).";
    max_schedules_per_sprite: u32 = 20, "CORRAL_MAX_SCHEDULES_PER_SPRITE", "Schedules one sprite may have.";
}

/// Why configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not TOML, or holds an unknown key.
    #[error("config file {path}: {why}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        why: String,
    },
    /// A value does not parse.
    #[error("{key}: {why}")]
    Invalid {
        /// Which key or variable.
        key: String,
        /// Why.
        why: String,
    },
    /// A configured path cannot be made absolute (the working directory is gone).
    #[error("{key} {}: cannot be made absolute ({source}); give an absolute path", path.display())]
    Path {
        /// Which setting.
        key: &'static str,
        /// The path as given.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl Config {
    /// Defaults, then `file` when given, then the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_with(file, &|key| std::env::var(key).ok())
    }

    /// Like [`Config::load`] with an injected environment (for tests).
    pub fn load_with(
        file: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut config = Self::default();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.into(),
                source,
            })?;
            config.apply_toml(path, &text)?;
        }
        config.apply_env(env)?;
        config.resolve_paths()?;
        Ok(config)
    }

    /// Makes every configured path absolute, once, against the directory `corral` was
    /// started in: runsc, mount(2) and child processes run elsewhere, so a relative path
    /// handed to them names the wrong place (a relative `./corral-data` once made every
    /// create fail inside runsc's gofer).
    pub fn resolve_paths(&mut self) -> Result<(), ConfigError> {
        fn absolute(key: &'static str, path: &Path) -> Result<PathBuf, ConfigError> {
            std::path::absolute(path).map_err(|source| ConfigError::Path {
                key,
                path: path.into(),
                source,
            })
        }
        self.data_dir = absolute("data_dir", &self.data_dir)?;
        for (key, value) in [
            ("image_dir", &mut self.image_dir),
            ("agent_path", &mut self.agent_path),
        ] {
            if let Some(raw) = value.as_mut() {
                *raw = absolute(key, Path::new(raw))?.display().to_string();
            }
        }
        Ok(())
    }

    fn apply_toml(&mut self, path: &Path, text: &str) -> Result<(), ConfigError> {
        let file_error = |why: String| ConfigError::File {
            path: path.into(),
            why,
        };
        let table: toml::Table = text.parse().map_err(|e| file_error(format!("{e}")))?;
        for (key, value) in table {
            let raw = match value {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                other => return Err(file_error(format!("{key}: unsupported value {other:?}"))),
            };
            if !self.set(&key, &raw, "config key")? {
                return Err(file_error(format!("unknown key {key:?}")));
            }
        }
        Ok(())
    }

    /// Where the operator's images live.
    pub fn image_dir(&self) -> PathBuf {
        self.image_dir
            .as_ref()
            .map(PathBuf::from)
            .unwrap_or_else(|| self.data_dir.join("images"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_then_environment_override_defaults() {
        let dir = std::env::temp_dir().join(format!("corral-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("corral.toml");
        std::fs::write(&file, "tick_ms = 250\nlisten = \"0.0.0.0:9000\"\n").unwrap();
        let env = |key: &str| (key == "CORRAL_LISTEN").then(|| "127.0.0.1:1".to_string());
        let config = Config::load_with(Some(&file), &env).unwrap();
        assert_eq!(config.tick_ms, 250);
        assert_eq!(config.listen, "127.0.0.1:1");
        assert_eq!(config.driver, "gvisor");
    }

    #[test]
    fn bad_values_and_unknown_keys_are_named() {
        let env = |key: &str| (key == "CORRAL_TICK_MS").then(|| "soon".to_string());
        let err = Config::load_with(None, &env).unwrap_err().to_string();
        assert!(err.contains("tick_ms"), "{err}");
        let mut config = Config::default();
        let err = config
            .apply_toml(Path::new("x.toml"), "tick_msec = 5")
            .unwrap_err();
        assert!(err.to_string().contains("tick_msec"));
    }

    #[test]
    fn relative_paths_become_absolute() {
        let env = |key: &str| match key {
            "CORRAL_DATA_DIR" => Some("rel/data".to_string()),
            "CORRAL_IMAGE_DIR" => Some("./images".to_string()),
            _ => None,
        };
        let config = Config::load_with(None, &env).unwrap();
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(config.data_dir, cwd.join("rel/data"));
        assert_eq!(config.image_dir(), cwd.join("images"));
        let defaults = Config::load_with(None, &|_| None).unwrap();
        assert_eq!(defaults.data_dir, cwd.join("corral-data"));
        assert!(defaults.image_dir().is_absolute());
    }

    #[test]
    fn secrets_never_show() {
        let env =
            |key: &str| (key == "CORRAL_STRIPE_SECRET_KEY").then(|| "sk_live_xyz".to_string());
        let config = Config::load_with(None, &env).unwrap();
        assert!(!format!("{config:?}").contains("sk_live_xyz"));
        assert!(!Config::help().contains("sk_live"));
    }
}
