//! Verify jobs started through the API (`POST /v1/backups/verify/{routine}/{timestamp}`):
//! ids, live progress like a restore's, the report when done, cancel. Finished jobs are
//! kept as restores are (`restore_jobs::prune_finished`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, RestorePolicy};
use crate::metrics::Metrics;

use crate::error::EngineError;
use crate::jobs::context::EngineContext;
use crate::jobs::integrity::{self, VerifyReport};
use crate::jobs::restore::{self, RequestError};
use crate::progress::Progress;
use crate::storage::layout::{self, BackupKind};

/// Where a verify job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum VerifyState {
    Running,
    /// Every file read, every check passed.
    Ok,
    /// Read to the end; the report lists what is wrong.
    Problems,
    /// The job could not run (storage, key); `error` says why.
    Failure,
    Canceled,
}

impl VerifyState {
    pub fn as_str(self) -> &'static str {
        match self {
            VerifyState::Running => "running",
            VerifyState::Ok => "ok",
            VerifyState::Problems => "problems",
            VerifyState::Failure => "failure",
            VerifyState::Canceled => "canceled",
        }
    }
}

/// `GET /v1/backups/verify/status/{id}`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct VerifyStatus {
    pub id: i64,
    pub status: VerifyState,
    pub routine: String,
    /// The backup folder verified.
    pub backup: String,
    #[schema(value_type = String, format = DateTime)]
    pub start_time: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub finish_time: Option<DateTime<Utc>>,
    /// Records decoded so far.
    pub records: u64,
    /// Stored bytes read so far.
    pub bytes: u64,
    pub files: u64,
    /// Of the records `metadata.yaml` counts.
    pub percentage_done: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub estimated_end_time: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<VerifyReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

struct Job {
    status: VerifyState,
    routine: String,
    backup: String,
    progress: Arc<Progress>,
    cancel: CancellationToken,
    report: Option<VerifyReport>,
    error: Option<String>,
    finished_at: Option<DateTime<Utc>>,
    finished: Option<Instant>,
}

/// The verify jobs of the service.
#[derive(Clone, Default)]
pub struct VerifyJobs {
    jobs: Arc<Mutex<HashMap<i64, Job>>>,
    /// The newest job of each routine (scheduled or asked for), for `currentBackup`.
    last: Arc<Mutex<HashMap<String, i64>>>,
    metrics: Option<Arc<Metrics>>,
    /// Told of every job end (notifications).
    events: crate::jobs::events::JobEvents,
}

impl std::fmt::Debug for VerifyJobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyJobs").finish_non_exhaustive()
    }
}

/// Why a verify did not start.
#[derive(Debug, thiserror::Error)]
pub enum VerifyStartError {
    /// No such routine (404).
    #[error("{0}")]
    NotFound(String),
    /// A request field is wrong (400).
    #[error(transparent)]
    Request(#[from] RequestError),
    /// The engine or storage could not be set up.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl VerifyJobs {
    pub fn new(metrics: Option<Arc<Metrics>>) -> Self {
        VerifyJobs {
            jobs: Arc::default(),
            last: Arc::default(),
            metrics,
            events: crate::jobs::events::JobEvents::default(),
        }
    }

    /// Where job ends are reported.
    pub fn events(&self) -> &crate::jobs::events::JobEvents {
        &self.events
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Job>> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts verifying the backup of `routine` taken at `timestamp_ms` (its folder's
    /// timestamp; a full backup and an incremental of the same millisecond are both taken),
    /// with the routine's storage and decryption key.
    ///
    /// # Errors
    /// An unknown routine (404), no backup at that time (400 on `timestamp`), or a storage
    /// or key that cannot be set up.
    pub async fn start(
        &self,
        ctx: Arc<EngineContext>,
        config: Arc<Config>,
        routine: &str,
        timestamp_ms: i64,
    ) -> Result<i64, VerifyStartError> {
        if !config.backup_routines.contains_key(routine) {
            return Err(VerifyStartError::NotFound(format!(
                "routine {routine} not found"
            )));
        }
        let mut r = crate::jobs::context::resolve_routine(&config, routine)?;
        let keys = crate::jobs::job_secrets::resolve_routine_secrets(&config, &mut r).await?;
        let plugins = ctx.plugins_for(&config).await?;
        let storage = crate::storage::wiring::open_storage(&plugins, &r.storage)?;
        let mut folders = Vec::new();
        for kind in [BackupKind::Full, BackupKind::Incremental] {
            let found = layout::list_backups(&storage, routine, kind)
                .await
                .map_err(|e| EngineError::plugin("listing backups", e))?;
            for b in found.into_iter().filter(|b| b.timestamp_ms == timestamp_ms) {
                folders.extend(restore::plan_path(&storage, &b.key).await?);
            }
        }
        if folders.is_empty() {
            return Err(RequestError::new(
                "timestamp",
                format!("routine {routine} has no complete backup at {timestamp_ms}"),
            )
            .into());
        }
        let policy = RestorePolicy {
            encryption: r.policy.encryption.clone(),
            ..RestorePolicy::default()
        };
        // A key that cannot open the backup is a 400 now, not a failed job.
        for f in &folders {
            restore::folder_pipeline(&plugins, &policy, &keys, f)?;
        }
        let backup = common_folder(&folders);
        let progress = Arc::new(Progress::new(ctx.clock.now()));
        let cancel = CancellationToken::new();
        let id = {
            let mut jobs = self.lock();
            prune(&mut jobs);
            let id = crate::jobs::restore_jobs::new_job_id(&jobs);
            jobs.insert(
                id,
                Job {
                    status: VerifyState::Running,
                    routine: routine.to_string(),
                    backup: backup.clone(),
                    progress: progress.clone(),
                    cancel: cancel.clone(),
                    report: None,
                    error: None,
                    finished_at: None,
                    finished: None,
                },
            );
            id
        };
        self.last
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(routine.to_string(), id);
        tracing::info!(job = id, routine = %routine, backup = %backup, "Verify started.");
        let this = self.clone();
        let routine = routine.to_string();
        tokio::spawn(async move {
            let result = integrity::verify(
                &plugins, storage, &folders, &policy, &keys, progress, cancel,
            )
            .await;
            this.finish(id, &routine, result, ctx.clock.now());
        });
        Ok(id)
    }

    fn finish(
        &self,
        id: i64,
        routine: &str,
        result: Result<VerifyReport, EngineError>,
        now: DateTime<Utc>,
    ) {
        let (status, report, error) = match result {
            Ok(r) if r.is_ok() => (VerifyState::Ok, Some(r), None),
            Ok(r) => (VerifyState::Problems, Some(r), None),
            Err(EngineError::Cancelled) => (VerifyState::Canceled, None, None),
            Err(e) => (VerifyState::Failure, None, Some(e.to_string())),
        };
        match (&report, &error) {
            (Some(r), _) if r.is_ok() => tracing::info!(job = id, routine = %routine,
                files = r.files, records = r.records, bytes = r.bytes,
                decode_only = r.decode_only.len(), "Verify finished: the backup is intact."),
            (Some(r), _) => tracing::error!(job = id, routine = %routine,
                problems = r.problem_count, first = ?r.problems.first(),
                "Verify finished: the backup has problems."),
            (None, Some(e)) => tracing::error!(job = id, routine = %routine, error = %e,
                "Verify failed."),
            (None, None) => tracing::info!(job = id, "Verify canceled."),
        }
        if let Some(m) = &self.metrics {
            m.verify_events.with_label_values(&[status.as_str()]).inc();
            if matches!(status, VerifyState::Problems | VerifyState::Failure) {
                m.verify_failure.with_label_values(&[routine]).inc();
            }
        }
        use crate::jobs::events::{JobEnded, JobKind, JobResult};
        let mut jobs = self.lock();
        let Some(job) = jobs.get_mut(&id) else {
            return;
        };
        let p = job.progress.snapshot();
        let event = JobEnded {
            kind: JobKind::Verify,
            detail: "verify".into(),
            routine: Some(routine.to_string()),
            job_id: Some(id),
            result: match status {
                VerifyState::Ok => JobResult::Success,
                VerifyState::Canceled => JobResult::Canceled,
                _ => JobResult::Failure,
            },
            records: p.records,
            bytes: p.bytes,
            duration: (now - p.started_at).to_std().unwrap_or_default(),
            error: error.clone().or_else(|| {
                report
                    .as_ref()
                    .filter(|r| !r.is_ok())
                    .map(|r| format!("{} problem(s) found in {}", r.problem_count, job.backup))
            }),
            finished_at: now,
        };
        job.status = status;
        job.report = report;
        job.error = error;
        job.finished_at = Some(now);
        job.finished = Some(Instant::now());
        drop(jobs);
        self.events.emit(event);
    }

    /// Job `id`, `None` if unknown.
    pub fn status(&self, id: i64) -> Option<VerifyStatus> {
        let mut jobs = self.lock();
        prune(&mut jobs);
        let j = jobs.get(&id)?;
        let p = j.progress.snapshot();
        Some(VerifyStatus {
            id,
            status: j.status,
            routine: j.routine.clone(),
            backup: j.backup.clone(),
            start_time: p.started_at,
            finish_time: j.finished_at,
            records: p.records,
            bytes: p.bytes,
            files: p.files,
            percentage_done: if j.status == VerifyState::Running {
                p.percent
            } else {
                100
            },
            estimated_end_time: (j.status == VerifyState::Running)
                .then_some(p.estimated_end)
                .flatten(),
            report: j.report.clone(),
            error: j.error.clone(),
        })
    }

    /// Starts verifying the newest full backup of `routine` (`verify-cron`).
    ///
    /// # Errors
    /// As [`VerifyJobs::start`]; a routine with no full backup yet is a request error.
    pub async fn start_newest(
        &self,
        ctx: Arc<EngineContext>,
        config: Arc<Config>,
        routine: &str,
    ) -> Result<i64, VerifyStartError> {
        let mut r = crate::jobs::context::resolve_routine(&config, routine)?;
        crate::jobs::job_secrets::resolve_routine_secrets(&config, &mut r).await?;
        let plugins = ctx.plugins_for(&config).await?;
        let storage = crate::storage::wiring::open_storage(&plugins, &r.storage)?;
        let newest = layout::list_backups(&storage, routine, BackupKind::Full)
            .await
            .map_err(|e| EngineError::plugin("listing backups", e))?
            .into_iter()
            .map(|b| b.timestamp_ms)
            .max()
            .ok_or_else(|| RequestError::new("routine", "no full backup to verify yet"))?;
        self.start(ctx, config, routine, newest).await
    }

    /// The newest verify job of `routine`, if one ran since the service started.
    pub fn last_of(&self, routine: &str) -> Option<VerifyStatus> {
        let id = *self
            .last
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(routine)?;
        self.status(id)
    }

    /// Cancels job `id`; `None` if unknown.
    pub fn cancel(&self, id: i64) -> Option<()> {
        self.lock().get(&id).map(|j| j.cancel.cancel())
    }

    /// Waits until job `id` is no longer running (tests, tools).
    pub async fn wait(&self, id: i64) -> Option<VerifyStatus> {
        loop {
            let s = self.status(id)?;
            if s.status != VerifyState::Running {
                return Some(s);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The backup folder of the namespace folders (`<routine>/backup/<ts>`), for display.
fn common_folder(folders: &[restore::FolderPlan]) -> String {
    let first = folders.first().map(|f| f.key.as_str()).unwrap_or_default();
    first.split("/data/").next().unwrap_or(first).to_string()
}

fn prune(jobs: &mut HashMap<i64, Job>) {
    crate::jobs::restore_jobs::prune_finished(jobs, |j| j.finished);
}
