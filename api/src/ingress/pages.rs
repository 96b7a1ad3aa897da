//! The front door's own answers, as small HTML pages a person opening a sprite's URL
//! can read (and `curl` can too): why the sprite did not answer and what to do.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// An HTML page for `status` saying `detail`.
pub fn page(status: StatusCode, detail: &str) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{code} {title}</title>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"></head>\
         <body style=\"font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto; padding: 0 1rem\">\
         <h1>{code} {title}</h1><p>{detail}</p><p><small>Answered by Corral, in front of this sprite.</small></p>\
         </body></html>\n",
        code = status.as_u16(),
        detail = escape(detail),
    );
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// An API error as a page (an internal error logged, not shown).
pub fn error_page(error: ApiError) -> Response {
    let (status, _) = error.status_code();
    let detail = match &error {
        ApiError::Internal(inner) => {
            tracing::error!(error = ?inner, "front door: internal error");
            "something went wrong on our side; it has been logged".to_string()
        }
        other => other.to_string(),
    };
    page(status, &detail)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
