//! The way into sprites: the front door that routes a request for
//! `{sprite}--{handle}.{CORRAL_SPRITES_DOMAIN}` to the sprite's `http_port` through its
//! agent (waking it when idle, checking who may open it, metering the bytes like the way
//! out), and the TCP tunnels that ride a WebSocket.

pub mod access;
pub mod forward;
pub mod host;
pub mod pages;
pub mod pool;
pub mod tunnel;

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;

use crate::config::Config;
use crate::db::sprites::SpriteRow;
use crate::state::AppState;

/// Upper bounds (ms) of the wake latency histogram's buckets.
const WAKE_BUCKETS_MS: [u64; 8] = [50, 100, 250, 500, 1000, 2500, 5000, 10000];

/// Requests and wakes at the front door, for `/metrics`.
#[derive(Default)]
pub struct FrontMetrics {
    requests: AtomicU64,
    wakes: AtomicU64,
    wake_ms_sum: AtomicU64,
    wake_buckets: [AtomicU64; 8],
}

impl FrontMetrics {
    fn wake(&self, took: Duration) {
        let ms = took.as_millis() as u64;
        self.wakes.fetch_add(1, Ordering::Relaxed);
        self.wake_ms_sum.fetch_add(ms, Ordering::Relaxed);
        for (bucket, bound) in self.wake_buckets.iter().zip(WAKE_BUCKETS_MS) {
            if ms <= bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The counters as Prometheus text.
    pub fn render(&self, out: &mut String) {
        let wakes = self.wakes.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP corral_sprite_url_requests_total Requests to sprites' URLs.\n\
             # TYPE corral_sprite_url_requests_total counter\n\
             corral_sprite_url_requests_total {}\n\
             # HELP corral_sprite_wakes_total Paused sprites woken by a request or a tunnel.\n\
             # TYPE corral_sprite_wakes_total counter\n\
             corral_sprite_wakes_total {wakes}\n\
             # HELP corral_sprite_wake_seconds From a request to a paused sprite to its port accepting.\n\
             # TYPE corral_sprite_wake_seconds histogram",
            self.requests.load(Ordering::Relaxed)
        );
        for (bucket, bound) in self.wake_buckets.iter().zip(WAKE_BUCKETS_MS) {
            let _ = writeln!(
                out,
                "corral_sprite_wake_seconds_bucket{{le=\"{}\"}} {}",
                bound as f64 / 1000.0,
                bucket.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "corral_sprite_wake_seconds_bucket{{le=\"+Inf\"}} {wakes}\n\
             corral_sprite_wake_seconds_sum {}\n\
             corral_sprite_wake_seconds_count {wakes}",
            self.wake_ms_sum.load(Ordering::Relaxed) as f64 / 1000.0
        );
    }
}

/// Where sprites' URLs point and how requests to them are served.
pub struct FrontDoor {
    /// Host names of sprites end in this domain.
    pub domain: String,
    /// `http` or `https` (behind a proxy that terminates TLS).
    pub scheme: String,
    /// The port in sprites' URLs, known once the listener is bound.
    port: OnceLock<u16>,
    /// How long a request waits for a woken sprite's port.
    pub wake_wait: Duration,
    /// Idle connections into sprites.
    pub pool: pool::Pool,
    /// Counters.
    pub metrics: FrontMetrics,
}

impl FrontDoor {
    /// The front door the configuration describes.
    pub fn new(config: &Config) -> Self {
        let port = OnceLock::new();
        if config.sprites_url_port != 0 {
            let _ = port.set(config.sprites_url_port as u16);
        }
        Self {
            domain: config.sprites_domain.trim_matches('.').to_ascii_lowercase(),
            scheme: config.sprites_url_scheme.clone(),
            port,
            wake_wait: Duration::from_millis(config.wake_wait_ms),
            pool: pool::Pool::default(),
            metrics: FrontMetrics::default(),
        }
    }

    /// Learns the port sprites' URLs use from the listener serving them (unless the
    /// operator set one).
    pub fn listening_on(&self, port: u16) {
        let _ = self.port.set(port);
    }

    /// A sprite's URL.
    pub fn url_of(&self, sprite: &SpriteRow) -> String {
        let label = host::label(&sprite.name, &sprite.tenant_id);
        let port = match (self.scheme.as_str(), self.port.get().copied()) {
            ("http", Some(80)) | ("https", Some(443)) | (_, None) => String::new(),
            (_, Some(port)) => format!(":{port}"),
        };
        format!("{}://{label}.{}{port}", self.scheme, self.domain)
    }
}

/// Serves requests whose host is a sprite's; passes every other request on to the API.
pub async fn by_host(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()));
    match host.and_then(|h| host::parse(h, &state.front.domain)) {
        Some((sprite, handle)) => forward::serve(state, sprite, handle, request).await,
        None => next.run(request).await,
    }
}
