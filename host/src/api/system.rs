//! System routes: `/`, `/health`, `/ready`, `/version`, `/metrics`, `/api-docs`.

use super::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// The ABS release whose API and configuration this service matches. `/version` leads with
/// it so that clients gating features on ABS's version (`>= 3.5` for the 3.5 endpoints) judge
/// the service as the ABS it stands in for.
pub const ABS_COMPATIBLE_VERSION: &str = "3.7.0";

/// Build information, in ABS 3.7's shape (`dto.VersionResponse`, exactly its three fields).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct VersionResponse {
    pub version: String,
    pub commit: String,
    pub build_time: String,
}

impl VersionResponse {
    pub fn current() -> Self {
        let build_time = env!("ABS_BUILD_EPOCH")
            .parse::<i64>()
            .ok()
            .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default();
        Self {
            // `v3.7.0+rs.0.1.0`: semver comparisons see the ABS release (build metadata does
            // not order); people see this service's own version after the `+`.
            version: format!("v{ABS_COMPATIBLE_VERSION}+rs.{}", env!("CARGO_PKG_VERSION")),
            commit: env!("ABS_GIT_COMMIT").to_string(),
            build_time,
        }
    }
}

/// Root: 200 with an empty body, as ABS.
#[utoipa::path(get, path = "/", tag = "System", responses((status = 200, description = "Empty")))]
pub async fn root() -> StatusCode {
    StatusCode::OK
}

/// Liveness: the process serves HTTP.
#[utoipa::path(get, path = "/health", tag = "System",
    responses((status = 200, description = "Ok", body = String, content_type = "text/plain")))]
pub async fn health() -> &'static str {
    "Ok"
}

/// Readiness: 200 `Ok` once the configuration is loaded and the service runs; further lines
/// name clusters, and storages the start-up check could not list, with the reason (neither
/// makes the service unready, DESIGN D7).
#[utoipa::path(get, path = "/ready", tag = "System",
    responses((status = 200, description = "Ready", body = String, content_type = "text/plain"),
        (status = 503, description = "Starting", body = String, content_type = "text/plain")))]
pub async fn ready(State(state): State<AppState>) -> Response {
    if !state.health.is_ready() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "Not ready: the service is starting\n",
        )
            .into_response();
    }
    let mut body = String::from("Ok");
    for (name, problem) in state.health.cluster_problems() {
        body.push_str(&format!("\ncluster {name}: {problem}"));
    }
    for (name, problem) in state.health.storage_problems() {
        body.push_str(&format!("\nstorage {name}: {problem}"));
    }
    body.into_response()
}

/// Build version, commit and time.
#[utoipa::path(get, path = "/version", tag = "System",
    responses((status = 200, body = VersionResponse)))]
pub async fn version() -> Json<VersionResponse> {
    Json(VersionResponse::current())
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "System",
    responses((status = 200, description = "Prometheus text exposition", body = String, content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

/// The OpenAPI document of this service.
pub async fn openapi_json() -> Response {
    Json(super::openapi::served()).into_response()
}

/// A small page listing the API, linking the OpenAPI document (no external assets, so it works
/// on machines without internet access).
#[utoipa::path(get, path = "/api-docs/", tag = "System",
    responses((status = 200, description = "API overview page", content_type = "text/html")))]
pub async fn api_docs(State(state): State<AppState>) -> Html<String> {
    let doc = super::openapi::document();
    let base = state.context_path.trim_end_matches('/');
    let mut rows = String::new();
    for (path, item) in &doc.paths.paths {
        let ops = serde_json::to_value(item).unwrap_or_default();
        if let Some(obj) = ops.as_object() {
            for (method, op) in obj {
                let summary = op.get("summary").and_then(|s| s.as_str()).unwrap_or("");
                rows.push_str(&format!(
                    "<tr><td><code>{}</code></td><td><code>{}{}</code></td><td>{}</td></tr>\n",
                    method.to_uppercase(),
                    base,
                    html_escape(path),
                    html_escape(summary)
                ));
            }
        }
    }
    Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Aerospike Backup Service API</title></head>\
         <body><h1>Aerospike Backup Service API</h1><p>OpenAPI document: \
         <a href=\"{base}/api-docs/openapi.json\">openapi.json</a></p>\
         <table border=\"1\" cellpadding=\"4\"><tr><th>Method</th><th>Path</th><th>Summary</th></tr>\n{rows}</table></body></html>"
    ))
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

pub fn router() -> axum::Router<AppState> {
    use axum::routing::get;
    axum::Router::new()
        .route("/", get(root))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/version", get(version))
        .route("/metrics", get(metrics))
        .route("/api-docs/", get(api_docs))
        .route("/api-docs/openapi.json", get(openapi_json))
}
