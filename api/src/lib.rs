//! Corral's HTTP API: the router, the server, configuration and the services behind it.

pub mod accounts;
pub mod billing;
pub mod caller;
pub mod config;
pub mod db;
pub mod domain;
pub mod egress;
pub mod error;
pub mod extract;
pub mod ingress;
pub mod jobs;
pub mod listener;
pub mod metrics;
pub mod middleware;
pub mod money;
pub mod names;
pub mod passwords;
pub mod ratelimit;
pub mod routes;
pub mod schedules;
pub mod sprites;
pub mod state;
pub mod telemetry;
pub mod tokens;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, Method};
use axum::routing::get;
use axum::Router;
use tower_http::compression::CompressionLayer;
use tower_http::cors::{Any, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::config::Config;
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "Corral", description = "Sandbox sprites with hard spend caps."),
    modifiers(&BearerAuth),
    components(schemas(error::Problem))
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The whole HTTP surface over `state`.
pub fn router(state: AppState) -> Router {
    let timeout = Duration::from_secs(state.config.request_timeout_s);
    let (api, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(routes::accounts::router())
        .merge(routes::tokens::router())
        .merge(routes::token_settings::router())
        .merge(routes::sprites::router())
        .merge(routes::limits::router())
        .merge(routes::money::router())
        .merge(routes::network::router())
        .merge(routes::secrets::router())
        .merge(routes::billing::router())
        .merge(routes::schedules::router())
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        // Exec, files, checkpoints and images run as long as their own limits allow.
        .merge(routes::exec::router())
        .merge(routes::files::router(state.config.max_file_bytes))
        .merge(routes::checkpoints::router())
        .merge(routes::images::router())
        .merge(routes::ingress::router())
        .split_for_parts();
    let openapi = Arc::new(openapi);
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .expose_headers([header::RETRY_AFTER]);
    Router::new()
        .merge(api)
        .merge(routes::health::router())
        .merge(corral_web::router())
        .route(
            "/v1/openapi.json",
            get(move || {
                let openapi = openapi.clone();
                async move { axum::Json(openapi.as_ref().clone()) }
            }),
        )
        .fallback(middleware::fallback)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::problems_and_metrics,
        ))
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes as usize))
        .layer(CompressionLayer::new())
        .layer(cors)
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http().make_span_with(middleware::span))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        // Outermost: a request for a sprite's host goes to the sprite, past the API's
        // limits (its bodies stream), its compression and its problem+json.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            ingress::by_host,
        ))
        .with_state(state)
}

/// Serves `state` on `listener` until `shutdown` resolves, then drains connections.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state).into_make_service_with_connect_info::<listener::Peer>();
    axum::serve(listener::ProblemListener(listener), app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Builds everything from configuration and runs until SIGINT or SIGTERM.
pub async fn run(config: Config) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)?;
    let state = state::build(config).await?;
    let listener = tokio::net::TcpListener::bind(&state.config.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", state.config.listen))?;
    let addr = listener.local_addr()?;
    // Tests and scripts started with port 0 learn the real address from this file.
    std::fs::write(state.config.data_dir.join("corral.addr"), addr.to_string())?;
    tracing::info!(%addr, data_dir = %state.config.data_dir.display(), "listening");
    let sprites_listener = match &state.config.sprites_listen {
        Some(sprites_addr) => {
            let listener = tokio::net::TcpListener::bind(sprites_addr)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen on {sprites_addr}: {e}"))?;
            let bound = listener.local_addr()?;
            std::fs::write(
                state.config.data_dir.join("sprites.addr"),
                bound.to_string(),
            )?;
            tracing::info!(addr = %bound, domain = %state.front.domain, "sprites' URLs listening");
            state.front.listening_on(bound.port());
            Some(listener)
        }
        None => {
            state.front.listening_on(addr.port());
            None
        }
    };
    let tasks = state.start_background();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let second = sprites_listener.map(|listener| {
        let state = state.clone();
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            let until = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            serve(listener, state, until).await
        })
    });
    serve(listener, state.clone(), shutdown_signal()).await?;
    let _ = stop.send(true);
    if let Some(second) = second {
        let _ = second.await;
    }
    tracing::info!("shutting down");
    tasks.stop().await;
    if let Some(sprites) = &state.sprites {
        let removed = sprites.empty_pool().await;
        tracing::info!(removed, "removed the warm pool's machines");
        sprites.freeze_for_shutdown().await?;
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
