//! `/v1/config`: the whole configuration.

use super::AppState;
use super::body::Body;
use super::error::{ApiError, ErrorBody};
use crate::config::Config;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Reads the whole configuration as it was loaded, key for key; secrets shown as `"[secret]"`
/// unless `service.reveal-secrets-in-api` is true.
#[utoipa::path(get, path = "/v1/config", tag = "Configuration",
    responses((status = 200, body = Config)))]
pub async fn get_config(State(state): State<AppState>) -> Json<Config> {
    Json(state.store.current().shown())
}

/// Replaces the whole configuration, applies it and saves it to the config file.
#[utoipa::path(put, path = "/v1/config", tag = "Configuration", request_body = Config,
    responses((status = 200, description = "Applied and saved"), (status = 400, body = ErrorBody),
        (status = 415, description = "Content-Type is not JSON or YAML", body = ErrorBody)))]
pub async fn put_config(
    State(state): State<AppState>,
    body: Result<Body<Config>, ApiError>,
) -> Result<Response, ApiError> {
    let mut cfg = body?.0;
    cfg.keep_secrets_from(&state.store.current());
    let warnings = state.store.replace(cfg).await?;
    for w in &warnings {
        tracing::warn!("{w}");
    }
    tracing::info!("Configuration replaced.");
    Ok(StatusCode::OK.into_response())
}

/// Re-reads the configuration file and applies it.
#[utoipa::path(post, path = "/v1/config/apply", tag = "Configuration",
    responses((status = 200, description = "Applied"), (status = 400, body = ErrorBody)))]
pub async fn apply_config(State(state): State<AppState>) -> Result<Response, ApiError> {
    let warnings = state.store.reload().await?;
    for w in &warnings {
        tracing::warn!("{w}");
    }
    tracing::info!("Configuration file re-read and applied.");
    Ok(StatusCode::OK.into_response())
}

pub fn router() -> axum::Router<AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/v1/config", get(get_config).put(put_config))
        .route("/v1/config/apply", post(apply_config))
}
