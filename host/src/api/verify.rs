//! `/v1/backups/verify`: check a backup without restoring it (ours; issue 27). A job reads
//! every file once: size and SHA-256 against `checksums.yaml`, decryption, decompression,
//! every `.asb` record; its status shows progress and, when done, the report.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::restore::parse_id;
use crate::jobs::verify_jobs::{VerifyStartError, VerifyStatus};

/// `storage`: the routine's storage, named in a 502 when the store failed.
fn start_error(e: VerifyStartError, storage: Option<String>) -> ApiError {
    match (e, storage) {
        (VerifyStartError::NotFound(m), _) => ApiError::NotFound(m),
        (VerifyStartError::Request(r), _) => ApiError::bad_field(r.field, r.message),
        (VerifyStartError::Engine(e @ crate::error::EngineError::Plugin { .. }), Some(s)) => {
            ApiError::Storage {
                storage: s,
                message: e.to_string(),
            }
        }
        (VerifyStartError::Engine(e), _) => ApiError::Internal(anyhow::anyhow!("{e}")),
    }
}

/// Starts verifying the backup of a routine taken at `timestamp` (the backup folder's epoch
/// ms, the `key` of the backup list): every namespace, with the routine's storage and key.
#[utoipa::path(post, path = "/v1/backups/verify/{name}/{timestamp}", tag = "Backup",
    params(("name" = String, Path, description = "Backup routine"),
        ("timestamp" = i64, Path, description = "The backup folder's epoch ms")),
    responses((status = 202, body = i64, content_type = "application/json",
            description = "The job id, a bare JSON number"),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 500, body = ErrorBody),
        (status = 502, description = "The storage refused or could not be reached", body = ErrorBody)))]
pub async fn verify_backup(
    State(state): State<AppState>,
    Path((name, timestamp)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let ts = timestamp
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|t| *t > 0)
        .ok_or_else(|| ApiError::bad_field("timestamp", "timestamp must be epoch ms"))?;
    let ctx = state
        .backups
        .engine()
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("{e}")))?;
    let config = state.store.current();
    let storage = config.backup_routines.get(&name).map(|r| r.storage.clone());
    let id = state
        .verifies
        .start(ctx, config, &name, ts)
        .await
        .map_err(|e| start_error(e, storage))?;
    Ok((StatusCode::ACCEPTED, Json(id)).into_response())
}

/// A verify job's progress and, once done, its report.
#[utoipa::path(get, path = "/v1/backups/verify/status/{jobId}", tag = "Backup",
    params(("jobId" = i64, Path, description = "Job id")),
    responses((status = 200, body = VerifyStatus), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn verify_status(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<VerifyStatus>, ApiError> {
    let id = parse_id(&id)?;
    state
        .verifies
        .status(id)
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("job {id} not found")))
}

/// Cancels a running verify job.
#[utoipa::path(post, path = "/v1/backups/verify/cancel/{jobId}", tag = "Backup",
    params(("jobId" = i64, Path, description = "Job id")),
    responses((status = 202, description = "Canceling"), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn verify_cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id(&id)?;
    state
        .verifies
        .cancel(id)
        .map(|()| StatusCode::ACCEPTED)
        .ok_or_else(|| ApiError::NotFound(format!("job {id} not found")))
}

/// The `/v1/backups/verify` routes.
pub fn router() -> axum::Router<AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/v1/backups/verify/{name}/{timestamp}", post(verify_backup))
        .route("/v1/backups/verify/status/{jobId}", get(verify_status))
        .route("/v1/backups/verify/cancel/{jobId}", post(verify_cancel))
}
