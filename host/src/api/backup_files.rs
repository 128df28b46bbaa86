//! `GET /v1/backups/files/{name}/{timestamp}` (ours): the files of one backup, each namespace
//! folder with the size and SHA-256 its `checksums.yaml` records, for the dashboard's details
//! of a backup and for anyone checking a copy by hand.

use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use super::error::{ApiError, ErrorBody};
use crate::jobs::backup::open_storage;
use crate::jobs::integrity;
use crate::storage::layout::{self, BackupKind};

/// One namespace folder of a backup.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct BackupFolderFiles {
    /// `full` or `incremental`.
    pub kind: String,
    /// The namespace folder (restore's `backup-data-path`).
    pub key: String,
    /// `sha256` when the folder has a `checksums.yaml`; omitted for folders without one
    /// (asbackup's, or ours from before), whose files are listed by name only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<String>,
    pub files: Vec<BackupFile>,
}

/// One stored file.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct BackupFile {
    /// The file's name in its folder.
    pub name: String,
    /// Stored bytes, as `checksums.yaml` records them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Lowercase hex SHA-256 of the stored bytes, as `checksums.yaml` records it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// The files of the backups of routine `name` taken at `timestamp` (its folder's epoch ms; a
/// full and an incremental of the same second are both listed).
#[utoipa::path(get, path = "/v1/backups/files/{name}/{timestamp}", tag = "Backup",
    params(("name" = String, Path, description = "Routine name"),
        ("timestamp" = i64, Path, description = "The backup's `timestamp` (epoch ms)")),
    responses((status = 200, body = Vec<BackupFolderFiles>),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 502, description = "The storage refused or could not be reached", body = ErrorBody)))]
pub async fn backup_files(
    State(state): State<AppState>,
    Path((name, timestamp)): Path<(String, String)>,
) -> Result<Json<Vec<BackupFolderFiles>>, ApiError> {
    let ts = timestamp
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|t| *t > 0)
        .ok_or_else(|| ApiError::bad_field("timestamp", "timestamp must be epoch ms"))?;
    let cfg = state.store.current();
    let routine = cfg
        .backup_routines
        .get(&name)
        .ok_or_else(|| ApiError::NotFound(format!("routine {name} not found")))?;
    let storage_error = |e: &dyn std::fmt::Display| ApiError::Storage {
        storage: routine.storage.clone(),
        message: e.to_string(),
    };
    state.backups.sweep_done().await;
    let ctx = state
        .backups
        .engine()
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("{e}")))?;
    let plugins = ctx
        .plugins_for(&cfg)
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("{e}")))?;
    let resolved = crate::jobs::job_secrets::routine_storage_named(&cfg, &name, &routine.storage)
        .await
        .map_err(|e| storage_error(&e))?;
    let storage = open_storage(&plugins, &resolved).map_err(|e| storage_error(&e))?;
    let mut out = Vec::new();
    for kind in [BackupKind::Full, BackupKind::Incremental] {
        let found = layout::list_backups(&storage, &name, kind)
            .await
            .map_err(|e| storage_error(&e))?;
        for b in found.into_iter().filter(|b| b.timestamp_ms == ts) {
            let keys = layout::list_keys(&storage, &format!("{}/", b.key))
                .await
                .map_err(|e| storage_error(&e))?;
            let sums = integrity::read_checksums(&storage, &b.key, &keys)
                .await
                .map_err(|e| storage_error(&e))?;
            let files = match &sums {
                Some(s) => s
                    .files
                    .iter()
                    .map(|f| BackupFile {
                        name: f.name.clone(),
                        size: Some(f.size),
                        sha256: Some(f.sha256.clone()),
                    })
                    .collect(),
                None => keys
                    .iter()
                    .filter_map(|k| k.strip_prefix(&format!("{}/", b.key)))
                    .filter(|n| !n.contains('/'))
                    .map(|n| BackupFile {
                        name: n.to_string(),
                        size: None,
                        sha256: None,
                    })
                    .collect(),
            };
            out.push(BackupFolderFiles {
                kind: kind.label().to_string(),
                key: b.key,
                algorithm: sums.map(|s| s.algorithm),
                files,
            });
        }
    }
    if out.is_empty() {
        return Err(ApiError::NotFound(format!(
            "routine {name} has no backup at {ts}"
        )));
    }
    Ok(Json(out))
}

pub fn router() -> axum::Router<AppState> {
    axum::Router::new().route(
        "/v1/backups/files/{name}/{timestamp}",
        axum::routing::get(backup_files),
    )
}
