//! The dashboard (ours): a few static files under `/ui/`, embedded in the binary, that show
//! and steer the service through its own REST API. The files hold no data, so they are served
//! without authentication (a browser cannot send a bearer token when it opens a page); every
//! API call the page makes carries the token the user typed and is checked as any other.

use axum::Router;
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use super::AppState;

const INDEX: &str = include_str!("../../assets/ui/index.html");
const SCRIPT: &str = include_str!("../../assets/ui/app.js");
const STYLE: &str = include_str!("../../assets/ui/app.css");

/// Whether `route` (the path under the context path) is a dashboard file.
pub fn is_ui_route(route: &str) -> bool {
    route == "/ui" || route.starts_with("/ui/")
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            // Only our own files; no inline script, no framing by other sites.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

pub fn router() -> Router<AppState> {
    Router::new()
        // Relative links in the page need the trailing slash.
        .route("/ui", get(|| async { Redirect::permanent("ui/") }))
        .route(
            "/ui/",
            get(|| async { asset("text/html; charset=utf-8", INDEX) }),
        )
        .route(
            "/ui/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }),
        )
        .route(
            "/ui/app.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE) }),
        )
}
