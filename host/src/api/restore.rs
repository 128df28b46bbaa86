//! `/v1/restore` and `/v1/retrieve`: start, follow, list and cancel restore jobs, and fetch
//! the node configurations saved with a full backup (ABS-API.md §1.4).

use std::collections::{BTreeMap, HashMap};

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use super::backups::JobMetrics;
use super::body::Body;
use super::error::{ApiError, ErrorBody};
use crate::aerospike::writer::CounterSnapshot;
use crate::config::{RestoreRequest, RestoreTimestampRequest};
use crate::jobs::backup::open_storage;
use crate::jobs::restore_jobs::{RestoreStatus, RestoreView, StartError};
use crate::storage::layout::{self, BackupKind};

/// Largest saved node configuration returned.
const MAX_CONFIGURATION_BYTES: u64 = 16 * 1024 * 1024;

/// Progress of a restore job (dto.RunningJob).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct RestoreCurrentJob {
    /// Records of the restored backups (from their metadata).
    pub total_records: u64,
    /// Records read so far.
    pub done_records: u64,
    pub start_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finish_time: Option<String>,
    pub percentage_done: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimated_end_time: Option<String>,
    pub metrics: JobMetrics,
}

/// dto.RestoreJobStatus.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct RestoreJobStatus {
    /// running, success, failure or canceled.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub current_job: RestoreCurrentJob,
    #[serde(flatten)]
    pub counters: CounterSnapshot,
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn status_body(v: RestoreView) -> RestoreJobStatus {
    let p = v.progress;
    RestoreJobStatus {
        status: v.status.as_str().to_string(),
        error: v.error,
        current_job: RestoreCurrentJob {
            total_records: p.estimated_total,
            done_records: p.records,
            start_time: rfc3339(p.started_at),
            finish_time: v.finished_at.map(rfc3339),
            percentage_done: if v.status == RestoreStatus::Success {
                100
            } else {
                p.percent
            },
            estimated_end_time: p
                .estimated_end
                .filter(|_| v.finished_at.is_none())
                .map(rfc3339),
            metrics: JobMetrics {
                records_per_second: p.records_per_second,
                kilobytes_per_second: p.bytes_per_second / 1024,
            },
        },
        counters: v.counters,
    }
}

fn start_error(e: StartError) -> ApiError {
    match e {
        StartError::Request(r) => ApiError::bad_field(r.field, r.message),
        StartError::Engine(e) => ApiError::Internal(anyhow::anyhow!("{e}")),
    }
}

/// 202 with the job id as a bare JSON number (ABS).
fn accepted(id: i64) -> Response {
    (StatusCode::ACCEPTED, Json(id)).into_response()
}

pub(super) fn parse_id(id: &str) -> Result<i64, ApiError> {
    id.trim()
        .parse::<i64>()
        .map_err(|_| ApiError::bad_field("jobId", format!("invalid job id {id:?}")))
}

/// Restores a full backup folder (or every namespace of a backup).
#[utoipa::path(post, path = "/v1/restore/full", tag = "Restore", request_body = RestoreRequest,
    responses((status = 202, body = i64, content_type = "application/json",
            description = "The job id, a bare JSON number"),
        (status = 400, body = ErrorBody),
        (status = 415, description = "Content-Type is not JSON or YAML", body = ErrorBody)))]
pub async fn restore_full(
    State(state): State<AppState>,
    Body(req): Body<RestoreRequest>,
) -> Result<Response, ApiError> {
    let id = state
        .restores
        .start_request(&req, "full")
        .await
        .map_err(start_error)?;
    Ok(accepted(id))
}

/// Restores an incremental backup folder.
#[utoipa::path(post, path = "/v1/restore/incremental", tag = "Restore",
    request_body = RestoreRequest,
    responses((status = 202, body = i64, content_type = "application/json",
            description = "The job id, a bare JSON number"),
        (status = 400, body = ErrorBody),
        (status = 415, description = "Content-Type is not JSON or YAML", body = ErrorBody)))]
pub async fn restore_incremental(
    State(state): State<AppState>,
    Body(req): Body<RestoreRequest>,
) -> Result<Response, ApiError> {
    let id = state
        .restores
        .start_request(&req, "incremental")
        .await
        .map_err(start_error)?;
    Ok(accepted(id))
}

/// Restores a routine to its state at `time`: per namespace the newest full backup before
/// it, then its incrementals before it, in order.
#[utoipa::path(post, path = "/v1/restore/timestamp", tag = "Restore",
    request_body = RestoreTimestampRequest,
    responses((status = 202, body = i64, content_type = "application/json",
            description = "The job id, a bare JSON number"),
        (status = 400, body = ErrorBody),
        (status = 415, description = "Content-Type is not JSON or YAML", body = ErrorBody)))]
pub async fn restore_timestamp(
    State(state): State<AppState>,
    Body(req): Body<RestoreTimestampRequest>,
) -> Result<Response, ApiError> {
    let id = state
        .restores
        .start_timestamp(&req)
        .await
        .map_err(start_error)?;
    Ok(accepted(id))
}

/// A restore job's status, progress and counters.
#[utoipa::path(get, path = "/v1/restore/status/{jobId}", tag = "Restore",
    params(("jobId" = i64, Path, description = "Job id")),
    responses((status = 200, body = RestoreJobStatus), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn restore_status(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<RestoreJobStatus>, ApiError> {
    let id = parse_id(&id)?;
    state
        .restores
        .status(id)
        .map(|v| Json(status_body(v)))
        .ok_or_else(|| ApiError::NotFound(format!("job {id} not found")))
}

/// The `status` filter: a comma list of statuses, each optionally negated with `!`.
fn status_filter(q: Option<&String>) -> Result<impl Fn(RestoreStatus) -> bool, ApiError> {
    let mut include = Vec::new();
    let mut exclude = Vec::new();
    for word in q.map(String::as_str).unwrap_or_default().split(',') {
        let word = word.trim();
        if word.is_empty() {
            continue;
        }
        let (negated, name) = match word.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, word),
        };
        let s = RestoreStatus::parse(name)
            .ok_or_else(|| ApiError::bad_field("status", format!("unknown status {name:?}")))?;
        if negated {
            exclude.push(s);
        } else {
            include.push(s);
        }
    }
    Ok(move |s| (include.is_empty() || include.contains(&s)) && !exclude.contains(&s))
}

fn time_param(q: &HashMap<String, String>, name: &str, default: i64) -> Result<i64, ApiError> {
    match q.get(name).map(|s| s.trim()) {
        None | Some("") => Ok(default),
        Some(v) => v.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
            ApiError::bad_field(
                name,
                format!("{name} must be a non-negative epoch time in milliseconds"),
            )
        }),
    }
}

/// Restore jobs started in `[from, to)`, optionally filtered by status.
#[utoipa::path(get, path = "/v1/restore/jobs", tag = "Restore",
    params(("from" = Option<i64>, Query, description = "Started at or after, epoch ms"),
        ("to" = Option<i64>, Query, description = "Started before, epoch ms"),
        ("status" = Option<String>, Query,
            description = "Comma list of running, success, failure, canceled; `!` excludes")),
    responses((status = 200, body = BTreeMap<String, RestoreJobStatus>),
        (status = 400, body = ErrorBody)))]
pub async fn restore_jobs(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<BTreeMap<String, RestoreJobStatus>>, ApiError> {
    let from = time_param(&q, "from", 0)?;
    let to = time_param(&q, "to", i64::MAX)?;
    if from >= to {
        return Err(ApiError::bad_field(
            "from",
            "fromTime should be less than toTime",
        ));
    }
    let keep = status_filter(q.get("status"))?;
    Ok(Json(
        state
            .restores
            .list(from, to, keep)
            .into_iter()
            .map(|v| (v.id.to_string(), status_body(v)))
            .collect(),
    ))
}

/// Cancels a restore job; records already written stay.
#[utoipa::path(post, path = "/v1/restore/cancel/{jobId}", tag = "Restore",
    params(("jobId" = i64, Path, description = "Job id")),
    responses((status = 202, description = "Accepted"), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn restore_cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    state
        .restores
        .cancel(id)
        .ok_or_else(|| ApiError::NotFound(format!("job {id} not found")))?;
    tracing::info!(job = id, "Restore cancellation requested.");
    Ok(StatusCode::ACCEPTED.into_response())
}

/// A zip of the node configurations saved with the routine's newest full backup at or
/// before `timestamp`.
#[utoipa::path(get, path = "/v1/retrieve/configuration/{name}/{timestamp}", tag = "Restore",
    params(("name" = String, Path, description = "Routine"),
        ("timestamp" = i64, Path, description = "Epoch ms")),
    responses((status = 200, content_type = "application/zip", description = "archive.zip"),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn retrieve_configuration(
    State(state): State<AppState>,
    Path((name, timestamp)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let ts = timestamp
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|t| *t >= 0)
        .ok_or_else(|| ApiError::bad_field("timestamp", "timestamp must be epoch ms"))?;
    let config = state.store.current();
    let routine = config
        .backup_routines
        .get(&name)
        .ok_or_else(|| ApiError::NotFound(format!("routine {name} not found")))?;
    config
        .storage
        .get(&routine.storage)
        .ok_or_else(|| ApiError::NotFound(format!("storage {} not found", routine.storage)))?;
    let internal = |e: String| ApiError::Internal(anyhow::anyhow!(e));
    let ctx = state
        .backups
        .engine()
        .await
        .map_err(|e| internal(e.to_string()))?;
    let plugins = ctx
        .plugins_for(&config)
        .await
        .map_err(|e| internal(e.to_string()))?;
    let storage_cfg = crate::jobs::job_secrets::routine_storage(&config, &name)
        .await
        .map_err(|e| internal(e.to_string()))?;
    let storage = open_storage(&plugins, &storage_cfg).map_err(|e| internal(e.to_string()))?;
    let fulls = layout::list_backups(&storage, &name, BackupKind::Full)
        .await
        .map_err(|e| internal(e.to_string()))?;
    // Folders from the listing, newest first: with `timestamp-format` a folder's name is
    // `<ts>_<time>`, so it cannot be rebuilt from the timestamp alone.
    let mut folders: Vec<(i64, String)> = fulls
        .iter()
        .filter(|b| b.timestamp_ms <= ts)
        .map(|b| {
            let folder = b
                .key
                .rsplit_once("/data/")
                .map_or(b.key.as_str(), |(f, _)| f);
            (b.timestamp_ms, folder.to_string())
        })
        .collect();
    folders.sort_unstable();
    folders.dedup();
    for (_, folder) in folders.into_iter().rev() {
        let prefix = format!("{folder}/configuration/");
        let keys = layout::list_keys(&storage, &prefix)
            .await
            .map_err(|e| internal(e.to_string()))?;
        if keys.is_empty() {
            continue;
        }
        let mut files = Vec::new();
        for key in keys {
            let data = layout::read_object(&storage, &key, MAX_CONFIGURATION_BYTES)
                .await
                .map_err(|e| internal(e.to_string()))?;
            let file = key.rsplit('/').next().unwrap_or_default().to_string();
            files.push((file, data));
        }
        return Ok((
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "application/zip"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"archive.zip\"",
                ),
            ],
            zip_stored(&files),
        )
            .into_response());
    }
    Err(ApiError::NotFound(format!(
        "no configuration saved with a full backup of {name} at or before {ts}"
    )))
}

/// A zip archive of `files`, stored without compression (configs are small; any unzip
/// reads the stored method).
pub fn zip_stored(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in files {
        let mut crc = flate2::Crc::new();
        crc.update(data);
        let crc = crc.sum();
        let offset = out.len() as u32;
        let size = data.len() as u32;
        let name_len = name.len() as u16;
        // Local file header: version 2.0, no flags, method 0 (stored), no time.
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        for v in [20u16, 0, 0, 0, 0x21] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for v in [crc, size, size] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&name_len.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(data);
        // Its central directory entry.
        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        for v in [20u16, 20, 0, 0, 0, 0x21] {
            central.extend_from_slice(&v.to_le_bytes());
        }
        for v in [crc, size, size] {
            central.extend_from_slice(&v.to_le_bytes());
        }
        for v in [name_len, 0, 0, 0, 0] {
            central.extend_from_slice(&v.to_le_bytes());
        }
        central.extend_from_slice(&0u32.to_le_bytes());
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
    }
    let central_offset = out.len() as u32;
    let central_len = central.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    let count = files.len() as u16;
    for v in [0u16, 0, count, count] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&central_len.to_le_bytes());
    out.extend_from_slice(&central_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

/// The `/v1/restore` and `/v1/retrieve` routes.
pub fn router() -> axum::Router<AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/v1/restore/full", post(restore_full))
        .route("/v1/restore/incremental", post(restore_incremental))
        .route("/v1/restore/timestamp", post(restore_timestamp))
        .route("/v1/restore/status/{jobId}", get(restore_status))
        .route("/v1/restore/jobs", get(restore_jobs))
        .route("/v1/restore/cancel/{jobId}", post(restore_cancel))
        .route(
            "/v1/retrieve/configuration/{name}/{timestamp}",
            get(retrieve_configuration),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_filters_include_and_exclude() {
        let all = status_filter(None).unwrap();
        assert!(all(RestoreStatus::Running) && all(RestoreStatus::Failure));
        let s = "success,failed".to_string();
        let f = status_filter(Some(&s)).unwrap();
        assert!(f(RestoreStatus::Success) && f(RestoreStatus::Failure));
        assert!(!f(RestoreStatus::Running));
        let s = "!running".to_string();
        let f = status_filter(Some(&s)).unwrap();
        assert!(!f(RestoreStatus::Running) && f(RestoreStatus::Canceled));
        assert!(status_filter(Some(&"bogus".to_string())).is_err());
    }

    #[test]
    fn zip_has_entries_and_directory() {
        let z = zip_stored(&[("a.conf".into(), b"hello".to_vec())]);
        assert_eq!(&z[..4], b"PK\x03\x04");
        let tail = &z[z.len() - 22..];
        assert_eq!(&tail[..4], b"PK\x05\x06");
        assert_eq!(u16::from_le_bytes([tail[10], tail[11]]), 1);
        assert!(z.windows(5).any(|w| w == b"hello"));
    }
}
