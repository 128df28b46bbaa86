//! Job ends as events: each job registry tells one listener (the notifier, `crate::notify`)
//! how each backup, restore and verify ended, without knowing what the listener does.
//!
//! The listener runs on the job's task, so it must return at once (the notifier only queues).

use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

/// Which kind of job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum JobKind {
    Backup,
    Restore,
    Verify,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Backup => "backup",
            JobKind::Restore => "restore",
            JobKind::Verify => "verify",
        }
    }
}

/// How a job ended, in the words of the metrics: `success`, `failure`, `skip`, `canceled`.
/// A verify that found problems is a `failure` (its `error` says how many).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum JobResult {
    Success,
    Failure,
    Skip,
    Canceled,
}

impl JobResult {
    pub fn as_str(self) -> &'static str {
        match self {
            JobResult::Success => "success",
            JobResult::Failure => "failure",
            JobResult::Skip => "skip",
            JobResult::Canceled => "canceled",
        }
    }
}

/// One job's end. Carries nothing secret: the error texts are the ones the job status shows.
#[derive(Debug, Clone, PartialEq)]
pub struct JobEnded {
    pub kind: JobKind,
    /// `full` or `incremental` for backups; the restore's request kind (`full`,
    /// `incremental`, `timestamp`); `verify`.
    pub detail: String,
    /// The routine, when the job belongs to one (a restore by path names none).
    pub routine: Option<String>,
    /// Restore and verify job id.
    pub job_id: Option<i64>,
    pub result: JobResult,
    pub records: u64,
    pub bytes: u64,
    pub duration: Duration,
    pub error: Option<String>,
    pub finished_at: DateTime<Utc>,
}

/// What is told of each job end.
pub type JobListener = Arc<dyn Fn(JobEnded) + Send + Sync>;

/// Where a registry reports job ends; cheap to clone, empty (nobody listens) by default.
#[derive(Clone, Default)]
pub struct JobEvents(Arc<RwLock<Option<JobListener>>>);

impl std::fmt::Debug for JobEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobEvents").finish_non_exhaustive()
    }
}

impl JobEvents {
    /// Sets (or replaces) the listener.
    pub fn listen(&self, listener: JobListener) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Some(listener);
    }

    /// Tells the listener, if there is one.
    pub fn emit(&self, event: JobEnded) {
        let listener = self.0.read().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(l) = listener {
            l(event);
        }
    }
}
