//! `/v1/backups`: on-demand backups, their progress and cancellation, and the lists of
//! complete backups (ABS-API.md §1.3).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use crate::api::entity::Name;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use super::error::{ApiError, ErrorBody};
use crate::config::Storage;
use crate::jobs::backup::open_storage;
use crate::jobs::registry::{JobError, RunningView, Trigger};
use crate::storage::layout::{self, BackupKind, FoundBackup, PipelineStepRecord};

/// One complete backup of one namespace (dto.BackupDetails).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct BackupDetails {
    /// Start of the backup (RFC 3339).
    pub created: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished: Option<String>,
    /// Seconds from `created` to `finished`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<i64>,
    /// The backup folder's timestamp, epoch ms.
    pub timestamp: i64,
    /// Lower bound of an incremental's window; omitted for full backups.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    pub namespace: String,
    pub record_count: u64,
    pub byte_count: u64,
    pub file_count: u64,
    pub secondary_index_count: u64,
    pub udf_count: u64,
    /// The namespace folder from the storage root: restore's `backup-data-path`.
    pub key: String,
    /// The routine's storage (secrets redacted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage: Option<Storage>,
    /// NONE or ZSTD.
    pub compression: String,
    /// NONE, AES128 or AES256.
    pub encryption: String,
    /// Our extension (DESIGN D10), present only for backups written with a policy's
    /// `pipeline:`: the codec plugins the files went through, in encoding order (from the
    /// backup's `pipeline.yaml`). `compression`/`encryption` are then `NONE`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<Vec<PipelineStepDetails>>,
}

/// One codec of a backup's pipeline.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PipelineStepDetails {
    /// Plugin name in the registry.
    pub plugin: String,
    /// The plugin's version when the backup was written.
    pub version: String,
    /// sha256 of the plugin's component.
    pub sha256: String,
    /// The step's options (keys are never options).
    #[schema(value_type = Object)]
    pub options: serde_json::Value,
}

impl From<PipelineStepRecord> for PipelineStepDetails {
    fn from(s: PipelineStepRecord) -> Self {
        PipelineStepDetails {
            plugin: s.plugin,
            version: s.version,
            sha256: s.sha256,
            options: s.options,
        }
    }
}

/// Throughput of a running job.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct JobMetrics {
    pub records_per_second: u64,
    pub kilobytes_per_second: u64,
}

/// A running job (dto.RunningJob).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct RunningJob {
    /// Estimated from the namespaces' object counts.
    pub total_records: u64,
    pub done_records: u64,
    pub start_time: String,
    pub percentage_done: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimated_end_time: Option<String>,
    pub metrics: JobMetrics,
}

/// Backups of a routine in progress and the last ones done (dto.RoutineState).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct RoutineState {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full: Option<RunningJob>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incremental: Option<RunningJob>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_full: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_incremental: Option<String>,
    /// Next scheduled full backup (RFC 3339); omitted when none is scheduled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_full: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_incremental: Option<String>,
    /// Ours: how the last full run (or skipped request) ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_full_result: Option<LastRun>,
    /// Ours: how the last incremental run (or skipped request) ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_incremental_result: Option<LastRun>,
    /// Ours: why the routine's storage could not be read (start-up check, config change).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_error: Option<String>,
    /// Ours: the next `verify-cron` fire (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_verify: Option<String>,
    /// Ours: the newest verify of this routine's backups since the service started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_verify: Option<crate::jobs::verify_jobs::VerifyStatus>,
    /// Ours: the newest `copy-to` copy per target storage since the service started.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub copies: std::collections::BTreeMap<String, crate::jobs::copies::CopyResult>,
}

/// How a run ended (our extension of dto.RoutineState).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct LastRun {
    /// `success`, `failure`, `canceled` or `skip`.
    pub outcome: String,
    /// When it ended (RFC 3339).
    pub time: String,
    /// The failure or skip reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn details(b: FoundBackup, storage: &Storage) -> BackupDetails {
    let m = b.metadata;
    let full = m.from == layout::zero_time();
    BackupDetails {
        created: rfc3339(m.created),
        finished: m.finished.map(rfc3339),
        duration: m.finished.map(|f| (f - m.created).num_seconds().max(0)),
        timestamp: b.timestamp_ms,
        from: (!full).then(|| rfc3339(m.from)),
        namespace: m.namespace,
        record_count: m.record_count,
        byte_count: m.byte_count,
        file_count: m.file_count,
        secondary_index_count: m.secondary_index_count,
        udf_count: m.udf_count,
        key: b.key,
        storage: Some(storage.redacted()),
        compression: m.compression,
        encryption: m.encryption,
        pipeline: b
            .pipeline
            .map(|steps| steps.into_iter().map(Into::into).collect()),
    }
}

/// `from`/`to` in epoch ms: from inclusive, to exclusive; and which storage to list.
#[derive(Debug, Clone, Default)]
struct TimeBounds {
    from: Option<i64>,
    to: Option<i64>,
    /// Ours: list the copies in this `copy-to` storage instead of the routine's own.
    storage: Option<String>,
}

impl TimeBounds {
    fn parse(q: &HashMap<String, String>) -> Result<Self, ApiError> {
        let one = |name: &str| -> Result<Option<i64>, ApiError> {
            match q.get(name).map(|s| s.trim()) {
                None | Some("") => Ok(None),
                Some(v) => match v.parse::<i64>() {
                    Ok(n) if n >= 0 => Ok(Some(n)),
                    _ => Err(ApiError::bad_field(
                        name,
                        format!("{name} must be a non-negative epoch time in milliseconds"),
                    )),
                },
            }
        };
        let b = TimeBounds {
            from: one("from")?,
            to: one("to")?,
            storage: q
                .get("storage")
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty()),
        };
        if let (Some(f), Some(t)) = (b.from, b.to)
            && f >= t
        {
            return Err(ApiError::bad_field(
                "from",
                "fromTime should be less than toTime",
            ));
        }
        Ok(b)
    }

    fn contains(&self, created_ms: i64) -> bool {
        self.from.is_none_or(|f| created_ms >= f) && self.to.is_none_or(|t| created_ms < t)
    }
}

fn parse_delay(q: &HashMap<String, String>) -> Result<Duration, ApiError> {
    match q.get("delay").map(|s| s.trim()) {
        None | Some("") => Ok(Duration::ZERO),
        Some(v) => v.parse::<u64>().map(Duration::from_millis).map_err(|_| {
            ApiError::bad_field(
                "delay",
                "delay must be a non-negative number of milliseconds",
            )
        }),
    }
}

fn engine_error(e: impl std::fmt::Display + Send + Sync + 'static) -> ApiError {
    ApiError::Internal(anyhow::anyhow!("{e}"))
}

async fn list_routine(
    state: &AppState,
    routine: &str,
    kind: BackupKind,
    bounds: TimeBounds,
) -> Result<Vec<BackupDetails>, ApiError> {
    let cfg = state.store.current();
    let r = cfg
        .backup_routines
        .get(routine)
        .ok_or_else(|| ApiError::NotFound(format!("routine {routine} not found")))?;
    // The routine's own storage, or with `?storage=` one of its `copy-to` storages.
    let storage_name = match &bounds.storage {
        None => r.storage.clone(),
        Some(s) if *s == r.storage || r.copy_to.iter().flatten().any(|c| c == s) => s.clone(),
        Some(s) => {
            return Err(ApiError::bad_field(
                "storage",
                format!(
                    "routine {routine} keeps no backups in storage {s} (neither its storage nor a copy-to)"
                ),
            ));
        }
    };
    let storage_cfg = cfg
        .storage
        .get(&storage_name)
        .ok_or_else(|| ApiError::NotFound(format!("storage {storage_name} not found")))?;
    // Right after a start, the sweep may still be removing what a crash left.
    state.backups.sweep_done().await;
    let ctx = state.backups.engine().await.map_err(engine_error)?;
    let plugins = ctx.plugins_for(&cfg).await.map_err(engine_error)?;
    // From here on a failure is the storage's (its credentials, its agent, the store's
    // answer): named with the storage and shown, never a bare 500.
    let storage_error = |e: &dyn std::fmt::Display| ApiError::Storage {
        storage: storage_name.clone(),
        message: e.to_string(),
    };
    // Resolved credentials open the storage; the response shows the configured one.
    let resolved = crate::jobs::job_secrets::routine_storage_named(&cfg, routine, &storage_name)
        .await
        .map_err(|e| storage_error(&e))?;
    let storage = open_storage(&plugins, &resolved).map_err(|e| storage_error(&e))?;
    let found = layout::list_backups(&storage, routine, kind)
        .await
        .map_err(|e| storage_error(&e))?;
    Ok(found
        .into_iter()
        // By the backup's timestamp (its folder, the `timestamp` listed): `created` is the
        // trigger's millisecond within that second.
        .filter(|b| bounds.contains(b.timestamp_ms))
        .map(|b| details(b, storage_cfg))
        .collect())
}

async fn list_all(
    state: &AppState,
    kind: BackupKind,
    q: &HashMap<String, String>,
) -> Result<Json<BTreeMap<String, Vec<BackupDetails>>>, ApiError> {
    let bounds = TimeBounds::parse(q)?;
    let routines: Vec<String> = state
        .store
        .current()
        .backup_routines
        .keys()
        .cloned()
        .collect();
    let mut out = BTreeMap::new();
    let cfg = state.store.current();
    for r in routines {
        if let Some(s) = &bounds.storage {
            let keeps = cfg
                .backup_routines
                .get(&r)
                .is_some_and(|x| x.storage == *s || x.copy_to.iter().flatten().any(|c| c == s));
            if !keeps {
                continue;
            }
        }
        match list_routine(state, &r, kind, bounds.clone()).await {
            Ok(list) => {
                out.insert(r, list);
            }
            // A storage that fails the listing fails it whole, as in ABS, but named (502):
            // an answer without the routine would read as "no backups". Anything else
            // internal leaves the routine out and logs the cause.
            Err(ApiError::Internal(e)) => {
                tracing::warn!(routine = %r, error = format!("{e:#}"), "Cannot list the routine's backups.");
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Json(out))
}

/// Full backups of every routine.
#[utoipa::path(get, path = "/v1/backups/full", tag = "Backup",
    params(("from" = Option<i64>, Query, description = "Lower bound of `created`, epoch ms, inclusive"),
        ("to" = Option<i64>, Query, description = "Upper bound of `created`, epoch ms, exclusive"),
        ("storage" = Option<String>, Query, description = "Ours: list the copies in this copy-to storage")),
    responses((status = 200, description = "Full backups by routine", body = BTreeMap<String, Vec<BackupDetails>>),
        (status = 400, body = ErrorBody), (status = 500, body = ErrorBody),
        (status = 502, description = "The storage refused or could not be reached", body = ErrorBody)))]
pub async fn list_full(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<BTreeMap<String, Vec<BackupDetails>>>, ApiError> {
    list_all(&state, BackupKind::Full, &q).await
}

/// Incremental backups of every routine.
#[utoipa::path(get, path = "/v1/backups/incremental", tag = "Backup",
    params(("from" = Option<i64>, Query, description = "Lower bound of `created`, epoch ms, inclusive"),
        ("to" = Option<i64>, Query, description = "Upper bound of `created`, epoch ms, exclusive"),
        ("storage" = Option<String>, Query, description = "Ours: list the copies in this copy-to storage")),
    responses((status = 200, description = "Incremental backups by routine", body = BTreeMap<String, Vec<BackupDetails>>),
        (status = 400, body = ErrorBody), (status = 500, body = ErrorBody),
        (status = 502, description = "The storage refused or could not be reached", body = ErrorBody)))]
pub async fn list_incremental(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<BTreeMap<String, Vec<BackupDetails>>>, ApiError> {
    list_all(&state, BackupKind::Incremental, &q).await
}

/// Full backups of one routine.
#[utoipa::path(get, path = "/v1/backups/full/{name}", tag = "Backup",
    params(("name" = String, Path, description = "Routine"),
        ("from" = Option<i64>, Query, description = "Lower bound of `created`, epoch ms, inclusive"),
        ("to" = Option<i64>, Query, description = "Upper bound of `created`, epoch ms, exclusive"),
        ("storage" = Option<String>, Query, description = "Ours: list the copies in this copy-to storage")),
    responses((status = 200, body = Vec<BackupDetails>), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 500, body = ErrorBody),
        (status = 502, description = "The storage refused or could not be reached", body = ErrorBody)))]
pub async fn list_full_routine(
    State(state): State<AppState>,
    Name(name): Name,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Vec<BackupDetails>>, ApiError> {
    let bounds = TimeBounds::parse(&q)?;
    Ok(Json(
        list_routine(&state, &name, BackupKind::Full, bounds).await?,
    ))
}

/// Incremental backups of one routine.
#[utoipa::path(get, path = "/v1/backups/incremental/{name}", tag = "Backup",
    params(("name" = String, Path, description = "Routine"),
        ("from" = Option<i64>, Query, description = "Lower bound of `created`, epoch ms, inclusive"),
        ("to" = Option<i64>, Query, description = "Upper bound of `created`, epoch ms, exclusive"),
        ("storage" = Option<String>, Query, description = "Ours: list the copies in this copy-to storage")),
    responses((status = 200, body = Vec<BackupDetails>), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 500, body = ErrorBody),
        (status = 502, description = "The storage refused or could not be reached", body = ErrorBody)))]
pub async fn list_incremental_routine(
    State(state): State<AppState>,
    Name(name): Name,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Vec<BackupDetails>>, ApiError> {
    let bounds = TimeBounds::parse(&q)?;
    Ok(Json(
        list_routine(&state, &name, BackupKind::Incremental, bounds).await?,
    ))
}

/// Set on a 202 answer to an on-demand backup that the overlap rules skipped, with the reason.
pub const SKIPPED_HEADER: &str = "x-backup-skipped";

async fn trigger(
    state: &AppState,
    name: &str,
    kind: BackupKind,
    q: &HashMap<String, String>,
) -> Result<Response, ApiError> {
    let delay = parse_delay(q)?;
    match state.scheduler.trigger(name, kind, delay).await {
        Ok(Trigger::Started | Trigger::Scheduled) => Ok(StatusCode::ACCEPTED.into_response()),
        // As ABS: 202, and the skip is logged and counted (`outcome="skip"`) and shows in
        // `currentBackup`'s `last-<type>-result`; our header says why on the answer itself.
        Ok(Trigger::Skipped(why)) => {
            let reason = format!("{} backup of routine {name} skipped: {why}", kind.label());
            let value = axum::http::HeaderValue::from_str(&reason)
                .unwrap_or_else(|_| axum::http::HeaderValue::from_static("skipped"));
            Ok((StatusCode::ACCEPTED, [(SKIPPED_HEADER, value)]).into_response())
        }
        Err(JobError::UnknownRoutine(r)) => {
            Err(ApiError::NotFound(format!("routine {r} not found")))
        }
        Err(e @ JobError::Engine(_)) => Err(engine_error(e)),
    }
}

/// Starts a full backup of a routine (deprecated ABS path; same as POST `/v1/backups/full/{name}`).
#[utoipa::path(post, path = "/v1/backups/schedule/{name}", tag = "Backup",
    params(("name" = String, Path, description = "Routine"),
        ("delay" = Option<u64>, Query, description = "Delay before the start, ms")),
    responses((status = 202, description = "Accepted; or skipped by the overlap rules, as ABS answers, with the reason in the `X-Backup-Skipped` header"),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn schedule(
    State(state): State<AppState>,
    Name(name): Name,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    trigger(&state, &name, BackupKind::Full, &q).await
}

/// Starts a full backup of a routine now (or after `delay` ms).
#[utoipa::path(post, path = "/v1/backups/full/{name}", tag = "Backup",
    params(("name" = String, Path, description = "Routine"),
        ("delay" = Option<u64>, Query, description = "Delay before the start, ms")),
    responses((status = 202, description = "Accepted; or skipped by the overlap rules, as ABS answers, with the reason in the `X-Backup-Skipped` header"),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn start_full(
    State(state): State<AppState>,
    Name(name): Name,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    trigger(&state, &name, BackupKind::Full, &q).await
}

/// Starts an incremental backup of a routine now (or after `delay` ms).
#[utoipa::path(post, path = "/v1/backups/incremental/{name}", tag = "Backup",
    params(("name" = String, Path, description = "Routine"),
        ("delay" = Option<u64>, Query, description = "Delay before the start, ms")),
    responses((status = 202, description = "Accepted; or skipped by the overlap rules, as ABS answers, with the reason in the `X-Backup-Skipped` header"),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn start_incremental(
    State(state): State<AppState>,
    Name(name): Name,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    trigger(&state, &name, BackupKind::Incremental, &q).await
}

fn running(v: RunningView) -> RunningJob {
    let p = v.progress;
    RunningJob {
        total_records: p.estimated_total,
        done_records: p.records,
        start_time: rfc3339(p.started_at),
        percentage_done: p.percent,
        estimated_end_time: p.estimated_end.map(rfc3339),
        metrics: JobMetrics {
            records_per_second: p.records_per_second,
            kilobytes_per_second: p.bytes_per_second / 1024,
        },
    }
}

/// Progress of the routine's running backups.
#[utoipa::path(get, path = "/v1/backups/currentBackup/{name}", tag = "Backup",
    params(("name" = String, Path, description = "Routine")),
    responses((status = 200, body = RoutineState), (status = 404, body = ErrorBody)))]
pub async fn current_backup(
    State(state): State<AppState>,
    Name(name): Name,
) -> Result<Json<RoutineState>, ApiError> {
    if !state.store.current().backup_routines.contains_key(&name) {
        return Err(ApiError::NotFound(format!("routine {name} not found")));
    }
    let v = state.backups.state(&name);
    // After a restart the service knows its last backups only from storage (ABS reads the
    // metadata at start-up); a storage that cannot be read leaves them unknown.
    let stored_last = |kind| {
        let state = &state;
        let name = &name;
        async move {
            list_routine(state, name, kind, TimeBounds::default())
                .await
                .ok()
                .and_then(|list| list.into_iter().max_by_key(|b| b.timestamp))
                .map(|b| b.created)
        }
    };
    let last_full = match v.last_full {
        Some(t) => Some(rfc3339(t)),
        None => stored_last(BackupKind::Full).await,
    };
    let last_incremental = match v.last_incremental {
        Some(t) => Some(rfc3339(t)),
        None => stored_last(BackupKind::Incremental).await,
    };
    let sched = state.scheduler.view(&name);
    let result = |kind| {
        v.last_result
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, r)| LastRun {
                outcome: r.outcome.to_string(),
                time: rfc3339(r.at),
                message: r.message.clone(),
            })
    };
    Ok(Json(RoutineState {
        full: v.full.clone().map(running),
        incremental: v.incremental.clone().map(running),
        last_full,
        last_incremental,
        next_full: sched.next_full.map(rfc3339),
        next_incremental: sched.next_incremental.map(rfc3339),
        last_full_result: result(BackupKind::Full),
        last_incremental_result: result(BackupKind::Incremental),
        storage_error: sched.storage_problem,
        next_verify: sched.next_verify.map(rfc3339),
        last_verify: state.verifies.last_of(&name),
        copies: state.backups.copies(&name).into_iter().collect(),
    }))
}

/// Cancels the routine's running backups; their files are removed.
#[utoipa::path(post, path = "/v1/backups/cancel/{name}", tag = "Backup",
    params(("name" = String, Path, description = "Routine")),
    responses((status = 202, description = "Accepted"), (status = 404, body = ErrorBody)))]
pub async fn cancel(State(state): State<AppState>, Name(name): Name) -> Result<Response, ApiError> {
    if !state.store.current().backup_routines.contains_key(&name) {
        return Err(ApiError::NotFound(format!("routine {name} not found")));
    }
    let any = state.backups.cancel(&name);
    tracing::info!(routine = %name, running = any, "Backup cancellation requested.");
    Ok(StatusCode::ACCEPTED.into_response())
}

/// The `/v1/backups` routes.
pub fn router() -> axum::Router<AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/v1/backups/full", get(list_full))
        .route(
            "/v1/backups/full/{name}",
            get(list_full_routine).post(start_full),
        )
        .route("/v1/backups/incremental", get(list_incremental))
        .route(
            "/v1/backups/incremental/{name}",
            get(list_incremental_routine).post(start_incremental),
        )
        .route("/v1/backups/schedule/{name}", post(schedule))
        .route("/v1/backups/currentBackup/{name}", get(current_backup))
        .route("/v1/backups/cancel/{name}", post(cancel))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn time_bounds_are_from_inclusive_to_exclusive() {
        let b = TimeBounds::parse(&q(&[("from", "1000"), ("to", "2000")])).unwrap();
        assert!(b.contains(1000));
        assert!(b.contains(1999));
        assert!(!b.contains(2000));
        assert!(!b.contains(999));
        assert!(TimeBounds::parse(&q(&[])).unwrap().contains(0));
    }

    #[test]
    fn bad_time_bounds_and_delays_are_400() {
        for bad in [
            q(&[("from", "-1")]),
            q(&[("to", "x")]),
            q(&[("from", "5"), ("to", "5")]),
        ] {
            let e = TimeBounds::parse(&bad).unwrap_err();
            assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        }
        assert_eq!(
            parse_delay(&q(&[("delay", "250")])).unwrap(),
            Duration::from_millis(250)
        );
        assert_eq!(
            parse_delay(&q(&[("delay", "-3")])).unwrap_err().status(),
            StatusCode::BAD_REQUEST
        );
    }
}
