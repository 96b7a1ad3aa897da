//! The pages a person sees: signup, login and the dashboard, compiled into the binary.
//!
//! The page is plain HTML, CSS and JavaScript modules with no build step. Every answer
//! carries a strict Content-Security-Policy: scripts, styles and API calls come only
//! from this origin, and nothing inline runs.

#![warn(missing_docs)]

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

#[cfg(test)]
mod tests;

/// The policy sent with every page and asset. Styles may be inline because the
/// terminal (xterm.js) writes its theme into a `<style>` element it creates; scripts
/// still come only from this origin.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self' 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; \
    form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// Each asset: its path, its content type and its text.
const ASSETS: [(&str, &str, &str); 26] = [
    ("/", HTML, include_str!("../assets/index.html")),
    ("/docs", HTML, include_str!("../assets/docs.html")),
    ("/docs.js", JS, include_str!("../assets/docs.js")),
    ("/style.css", CSS, include_str!("../assets/style.css")),
    ("/app.js", JS, include_str!("../assets/app.js")),
    ("/api.js", JS, include_str!("../assets/api.js")),
    ("/billing.js", JS, include_str!("../assets/billing.js")),
    ("/budget.js", JS, include_str!("../assets/budget.js")),
    ("/chart.js", JS, include_str!("../assets/chart.js")),
    ("/dom.js", JS, include_str!("../assets/dom.js")),
    ("/images.js", JS, include_str!("../assets/images.js")),
    ("/money.js", JS, include_str!("../assets/money.js")),
    ("/network.js", JS, include_str!("../assets/network.js")),
    ("/schedules.js", JS, include_str!("../assets/schedules.js")),
    ("/secrets.js", JS, include_str!("../assets/secrets.js")),
    ("/spend.js", JS, include_str!("../assets/spend.js")),
    (
        "/sprite-page.js",
        JS,
        include_str!("../assets/sprite-page.js"),
    ),
    ("/sprites.js", JS, include_str!("../assets/sprites.js")),
    ("/terminal.js", JS, include_str!("../assets/terminal.js")),
    ("/tokens.js", JS, include_str!("../assets/tokens.js")),
    ("/words.js", JS, include_str!("../assets/words.js")),
    // xterm.js 6.0.0 and its fit addon 0.11.0, from the npm registry (MIT, see
    // assets/vendor/LICENSE-xterm).
    (
        "/vendor/xterm.js",
        JS,
        include_str!("../assets/vendor/xterm.js"),
    ),
    (
        "/vendor/xterm-addon-fit.js",
        JS,
        include_str!("../assets/vendor/xterm-addon-fit.js"),
    ),
    (
        "/vendor/xterm.css",
        CSS,
        include_str!("../assets/vendor/xterm.css"),
    ),
    // Swagger UI 5.35.0 from the npm registry (Apache-2.0, see
    // assets/vendor/LICENSE-swagger-ui), for the API reference at /docs.
    (
        "/vendor/swagger-ui-bundle.js",
        JS,
        include_str!("../assets/vendor/swagger-ui-bundle.js"),
    ),
    (
        "/vendor/swagger-ui.css",
        CSS,
        include_str!("../assets/vendor/swagger-ui.css"),
    ),
];

/// The page (`/`) and its assets, for merging into the API's router.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    ASSETS
        .iter()
        .fold(Router::new(), |router, &(path, content_type, body)| {
            router.route(path, get(move || async move { asset(content_type, body) }))
        })
}

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::REFERRER_POLICY, "no-referrer"),
            // Small and compiled in: revalidating costs nothing and a new build shows at once.
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}
