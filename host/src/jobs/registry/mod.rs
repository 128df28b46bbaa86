//! The registry of backup jobs: start, cancel, status, completion, retention after a full.
//!
//! Whether a job may start is not decided here: the caller passes its overlap rule
//! ([`Admission`], the scheduler's `rules::decide`), which this registry applies to the
//! routine's [`Activity`] under the same lock that claims the job's slot, so two starts can
//! never both pass. Skips, runs, failures, durations, records and bytes go to the metrics.
//!
//! Length: the registry's one lock guards start, finish, cancel and state together; the
//! start-up sweep is in `sweep.rs`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::{OnceCell, watch};
use tokio_util::sync::CancellationToken;

use crate::config::ConfigStore;
use crate::metrics::Metrics;
use crate::plugins::{Registry, Runtime, RuntimeConfig};

use crate::error::EngineError;
use crate::jobs::backup::{
    EngineContext, JobReport, JobSpec, SystemClock, open_storage, resolve_routine, run_job,
};
use crate::jobs::retention;
use crate::progress::{Progress, ProgressSnapshot};
use crate::storage::layout::{self, BackupKind};

mod sweep;

/// How often the progress gauge of a running job is refreshed (ABS refreshes every 1 s).
const PROGRESS_GAUGE_INTERVAL: Duration = Duration::from_secs(1);
/// How often a running job logs its progress: an operator reading the log of a long backup
/// sees it move (or stall) without polling the API.
const PROGRESS_LOG_INTERVAL: Duration = Duration::from_secs(30);

/// How a job ended.
#[derive(Debug, Clone, PartialEq)]
pub enum JobOutcome {
    Success(JobReport),
    Failure(String),
    Canceled,
    Skipped(String),
}

impl JobOutcome {
    fn label(&self) -> &'static str {
        match self {
            JobOutcome::Success(_) => "success",
            JobOutcome::Failure(_) => "failure",
            JobOutcome::Canceled => "canceled",
            JobOutcome::Skipped(_) => "skip",
        }
    }
}

/// The answer to a start request.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    Started,
    /// Will start after the delay (skip rules apply then).
    Scheduled,
    Skipped(String),
}

/// What the overlap rule sees of a routine when a job of it is asked to start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Activity {
    pub full_running: bool,
    pub incremental_running: bool,
    /// A full backup of the routine succeeded (in this process, or is found in storage).
    pub full_succeeded: bool,
    /// The routine's policy sets `concurrent-incremental`.
    pub concurrent_incremental: bool,
}

/// An overlap rule: `Err(reason)` skips the job.
pub type Admission = fn(BackupKind, &Activity) -> Result<(), String>;

/// Why a request was refused.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("routine {0} not found")]
    UnknownRoutine(String),
    #[error("{0}")]
    Engine(#[from] EngineError),
}

/// A running job as the status endpoint shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunningView {
    pub progress: ProgressSnapshot,
}

/// The state of one routine.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoutineView {
    pub full: Option<RunningView>,
    pub incremental: Option<RunningView>,
    pub last_full: Option<DateTime<Utc>>,
    pub last_incremental: Option<DateTime<Utc>>,
    /// How the last full and the last incremental request ended, and when.
    pub last_result: Vec<(BackupKind, LastResult)>,
}

/// How the last job (or skipped request) of one type ended.
#[derive(Debug, Clone, PartialEq)]
pub struct LastResult {
    /// `success`, `failure`, `canceled` or `skip` (the metrics' outcomes).
    pub outcome: &'static str,
    /// The failure or skip reason.
    pub message: Option<String>,
    pub at: DateTime<Utc>,
}

struct Running {
    progress: Arc<Progress>,
    cancel: CancellationToken,
    done: watch::Receiver<Option<JobOutcome>>,
}

#[derive(Default)]
struct RoutineJobs {
    full: Option<Running>,
    incremental: Option<Running>,
    last_full: Option<DateTime<Utc>>,
    last_incremental: Option<DateTime<Utc>>,
    last_outcome: HashMap<&'static str, (JobOutcome, DateTime<Utc>)>,
}

impl RoutineJobs {
    fn slot(&mut self, kind: BackupKind) -> &mut Option<Running> {
        match kind {
            BackupKind::Full => &mut self.full,
            BackupKind::Incremental => &mut self.incremental,
        }
    }
}

type ContextFactory = Box<dyn Fn() -> Result<EngineContext, EngineError> + Send + Sync>;

struct Inner {
    store: Arc<ConfigStore>,
    metrics: Option<Arc<Metrics>>,
    ctx: OnceCell<Arc<EngineContext>>,
    factory: ContextFactory,
    routines: Mutex<HashMap<String, RoutineJobs>>,
    /// Held for writing by the start-up sweep; a job starts only once it can read it.
    gate: Arc<tokio::sync::RwLock<()>>,
    /// Set at shutdown: no job starts any more.
    stopping: std::sync::atomic::AtomicBool,
    /// When this registry was made: staged upload parts older than this belong to no job of
    /// this process (see [`crate::storage::partial_uploads`]).
    created: std::time::SystemTime,
    /// Bumped whenever a job ends, so shutdown can wait for the registry to empty.
    ended: watch::Sender<u64>,
    /// The newest `copy-to` result per routine and storage.
    copies: crate::jobs::copies::CopyResults,
    /// Told of every job end and skip (notifications).
    events: crate::jobs::events::JobEvents,
}

/// One progress line of a running job.
fn log_progress(routine: &str, kind: BackupKind, p: &ProgressSnapshot) {
    tracing::info!(
        routine = %routine,
        kind = kind.label(),
        records = p.records,
        estimated_total = p.estimated_total,
        percent = p.percent,
        records_per_second = p.records_per_second,
        bytes = p.bytes,
        files = p.files,
        estimated_end = p.estimated_end.map(|t| t.to_rfc3339()).unwrap_or_default(),
        "Backup in progress."
    );
}

/// The registry of backup jobs; cheap to clone.
#[derive(Clone)]
pub struct JobRegistry {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for JobRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobRegistry").finish_non_exhaustive()
    }
}

impl JobRegistry {
    /// A registry with its own plugin runtime, started with the first job (tests and tools;
    /// the service shares one runtime through [`JobRegistry::with_runtime`]).
    pub fn new(store: Arc<ConfigStore>, metrics: Option<Arc<Metrics>>) -> Self {
        Self::with_factory(
            store,
            metrics,
            Box::new(|| {
                // An unwritable compile cache only costs start-up time.
                let runtime = Runtime::new(RuntimeConfig::for_service())
                    .or_else(|_| Runtime::new(RuntimeConfig::default()))
                    .map_err(|e| EngineError::plugin("starting the plugin runtime", e))?;
                Self::default_context(&runtime)
            }),
        )
    }

    /// A registry on the process's plugin runtime, whose default plugins load on the first
    /// job, so the service starts without compiling components. Every wasmtime runtime
    /// reserves gigabytes of address space for its instance pool: share one.
    pub fn with_runtime(
        store: Arc<ConfigStore>,
        metrics: Option<Arc<Metrics>>,
        runtime: Runtime,
    ) -> Self {
        Self::with_factory(
            store,
            metrics,
            Box::new(move || Self::default_context(&runtime)),
        )
    }

    fn default_context(runtime: &Runtime) -> Result<EngineContext, EngineError> {
        let plugins = Registry::with_defaults(runtime)
            .map_err(|e| EngineError::plugin("loading the default plugins", e))?;
        Ok(EngineContext::new(Arc::new(plugins), Arc::new(SystemClock)))
    }

    /// A registry over a ready context (tests: a shared plugin registry, a manual clock).
    pub fn with_context(
        store: Arc<ConfigStore>,
        metrics: Option<Arc<Metrics>>,
        ctx: Arc<EngineContext>,
    ) -> Self {
        let reg = Self::with_factory(
            store,
            metrics,
            Box::new(|| Err(EngineError::Config("context already set".into()))),
        );
        let _ = reg.inner.ctx.set(ctx);
        reg
    }

    fn with_factory(
        store: Arc<ConfigStore>,
        metrics: Option<Arc<Metrics>>,
        factory: ContextFactory,
    ) -> Self {
        JobRegistry {
            inner: Arc::new(Inner {
                store,
                metrics,
                ctx: OnceCell::new(),
                factory,
                routines: Mutex::new(HashMap::new()),
                gate: Arc::new(tokio::sync::RwLock::new(())),
                stopping: std::sync::atomic::AtomicBool::new(false),
                created: std::time::SystemTime::now(),
                ended: watch::channel(0).0,
                copies: crate::jobs::copies::CopyResults::default(),
                events: crate::jobs::events::JobEvents::default(),
            }),
        }
    }

    async fn context(&self) -> Result<Arc<EngineContext>, EngineError> {
        let inner = self.inner.clone();
        self.inner
            .ctx
            .get_or_try_init(|| async move {
                tokio::task::spawn_blocking(move || (inner.factory)().map(Arc::new))
                    .await
                    .map_err(|e| EngineError::Config(format!("plugin loader: {e}")))?
            })
            .await
            .cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, RoutineJobs>> {
        self.inner
            .routines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Starts a backup of `routine` now if `admit` lets it, given what the routine is
    /// doing; a refused start is a skip (logged, counted, remembered as the last result).
    ///
    /// # Errors
    /// [`JobError::UnknownRoutine`]; engine errors only while loading the plugins.
    pub async fn start(
        &self,
        routine: &str,
        kind: BackupKind,
        admit: Admission,
    ) -> Result<Trigger, JobError> {
        if !self
            .inner
            .store
            .current()
            .backup_routines
            .contains_key(routine)
        {
            return Err(JobError::UnknownRoutine(routine.to_string()));
        }
        if self.is_stopping() {
            let why = "the service is shutting down";
            self.record_skip(routine, kind, why);
            return Ok(Trigger::Skipped(why.to_string()));
        }
        // Wait for the start-up sweep, if one runs.
        drop(self.inner.gate.read().await);
        self.launch(routine, kind, admit, None).await
    }

    /// [`JobRegistry::start`] once the start-up sweep is out of the way (or from the sweep
    /// itself, for a backup it resumes).
    async fn launch(
        &self,
        routine: &str,
        kind: BackupKind,
        admit: Admission,
        resume: Option<Arc<crate::storage::resume::Checkpoint>>,
    ) -> Result<Trigger, JobError> {
        let config = self.inner.store.current();
        let ctx = self.context().await?;
        let resolved = resolve_routine(&config, routine).map_err(|e| match e {
            EngineError::Config(_) if !config.backup_routines.contains_key(routine) => {
                JobError::UnknownRoutine(routine.to_string())
            }
            e => JobError::Engine(e),
        })?;
        // "A full succeeded" is known from storage after a restart, or before the start-up
        // recovery has read it.
        let needs_full_check = kind == BackupKind::Incremental
            && self
                .lock()
                .get(routine)
                .is_none_or(|r| r.last_full.is_none());
        let mut stored_full = None;
        if needs_full_check {
            let storage = match ctx.plugins_for(&config).await {
                Ok(plugins) => {
                    match crate::jobs::job_secrets::routine_storage(&config, routine).await {
                        Ok(s) => open_storage(&plugins, &s),
                        Err(e) => Err(e),
                    }
                }
                Err(e) => Err(e),
            };
            if let Ok(storage) = storage {
                stored_full = layout::list_backups(&storage, routine, BackupKind::Full)
                    .await
                    .ok()
                    .and_then(|b| b.last().map(|b| b.metadata.created));
            }
        }
        let concurrent = resolved.policy.concurrent_incremental.unwrap_or(false);
        let spec = JobSpec {
            routine: routine.to_string(),
            kind,
            config,
            resume,
        };
        let progress = Arc::new(Progress::new(ctx.clock.now()));
        let cancel = CancellationToken::new();
        let (done_tx, done_rx) = watch::channel(None);
        {
            let mut routines = self.lock();
            let jobs = routines.entry(routine.to_string()).or_default();
            if jobs.last_full.is_none() {
                jobs.last_full = stored_full;
            }
            let activity = Activity {
                full_running: jobs.full.is_some(),
                incremental_running: jobs.incremental.is_some(),
                full_succeeded: jobs.last_full.is_some(),
                concurrent_incremental: concurrent,
            };
            if let Err(why) = admit(kind, &activity) {
                drop(routines);
                self.record_skip(routine, kind, &why);
                return Ok(Trigger::Skipped(why));
            }
            *jobs.slot(kind) = Some(Running {
                progress: progress.clone(),
                cancel: cancel.clone(),
                done: done_rx,
            });
        }
        if let Some(m) = &self.inner.metrics {
            m.backup_in_progress
                .with_label_values(&[routine, kind.label()])
                .set(1);
        }
        tracing::info!(routine = %routine, kind = kind.label(), "Backup started.");
        let this = self.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let job = run_job(&ctx, &spec, progress.clone(), cancel.clone());
            tokio::pin!(job);
            let mut tick = tokio::time::interval(PROGRESS_GAUGE_INTERVAL);
            let mut log_tick = tokio::time::interval(PROGRESS_LOG_INTERVAL);
            log_tick.tick().await; // the first tick is immediate; "started" was just logged
            let result = loop {
                tokio::select! {
                    r = &mut job => break r,
                    _ = tick.tick() => this.publish_progress(&spec.routine, kind, &progress),
                    _ = log_tick.tick() => log_progress(&spec.routine, kind, &progress.snapshot()),
                }
            };
            let outcome = match result {
                Ok(report) => JobOutcome::Success(report),
                Err(EngineError::Cancelled) => JobOutcome::Canceled,
                Err(e) => JobOutcome::Failure(failure_text(&spec, &e)),
            };
            if let JobOutcome::Success(report) = &outcome
                && kind == BackupKind::Full
            {
                // Still holding the full's slot: no other full can prune beside this one.
                retention::after_full(&ctx, &spec, report.timestamp_ms).await;
            }
            if let JobOutcome::Success(report) = &outcome {
                // The backup is complete before any copy starts; a copy never changes that.
                crate::jobs::copies::after_backup(
                    &ctx,
                    &spec,
                    kind,
                    report,
                    &this.inner.copies,
                    this.inner.metrics.as_deref(),
                )
                .await;
            }
            this.finish(&spec.routine, kind, &outcome, started.elapsed(), &progress);
            let _ = done_tx.send(Some(outcome));
            this.inner.ended.send_modify(|n| *n += 1);
        });
        Ok(Trigger::Started)
    }

    /// Where job ends and skips are reported.
    pub fn events(&self) -> &crate::jobs::events::JobEvents {
        &self.inner.events
    }

    /// The newest `copy-to` results of `routine`, by target storage.
    pub fn copies(&self, routine: &str) -> HashMap<String, crate::jobs::copies::CopyResult> {
        self.inner.copies.of(routine)
    }

    /// True once [`JobRegistry::stop`] was called.
    pub fn is_stopping(&self) -> bool {
        self.inner
            .stopping
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Refuses every later start (shutdown).
    pub fn stop(&self) {
        self.inner
            .stopping
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// How many backup jobs run now.
    pub fn running_count(&self) -> usize {
        self.lock()
            .values()
            .map(|j| usize::from(j.full.is_some()) + usize::from(j.incremental.is_some()))
            .sum()
    }

    /// Waits until no job runs.
    pub async fn wait_idle(&self) {
        let mut rx = self.inner.ended.subscribe();
        while self.running_count() > 0 {
            if rx.changed().await.is_err() {
                return;
            }
        }
    }

    /// Cancels every running job because the service stops: checkpointed full backups keep
    /// their files to resume at the next start. How many there were.
    pub fn suspend_all(&self) -> usize {
        if let Some(ctx) = self.inner.ctx.get() {
            ctx.suspend();
        }
        self.cancel_all()
    }

    /// Cancels every running job; how many there were.
    pub fn cancel_all(&self) -> usize {
        let routines = self.lock();
        let mut n = 0;
        for jobs in routines.values() {
            for r in [&jobs.full, &jobs.incremental].into_iter().flatten() {
                r.cancel.cancel();
                n += 1;
            }
        }
        n
    }

    /// Reads the routine's last full and incremental backup times from its storage (ABS
    /// does this at start-up), so the first-full rule and the routine state survive a
    /// restart. Times already known in this process are kept.
    ///
    /// # Errors
    /// The storage cannot be opened or listed (the message names it).
    pub async fn recover(&self, routine: &str) -> Result<(), String> {
        let config = self.inner.store.current();
        let Some(r) = config.backup_routines.get(routine) else {
            return Err(format!("routine {routine} not found"));
        };
        if !config.storage.contains_key(&r.storage) {
            return Err(format!("storage {} not found", r.storage));
        }
        let ctx = self.context().await.map_err(|e| e.to_string())?;
        let plugins = ctx.plugins_for(&config).await.map_err(|e| e.to_string())?;
        let storage_cfg = crate::jobs::job_secrets::routine_storage(&config, routine)
            .await
            .map_err(|e| e.to_string())?;
        let storage = open_storage(&plugins, &storage_cfg)
            .map_err(|e| format!("storage {}: {e}", r.storage))?;
        let mut last = [None, None];
        for (i, kind) in [BackupKind::Full, BackupKind::Incremental]
            .into_iter()
            .enumerate()
        {
            last[i] = layout::list_backups(&storage, routine, kind)
                .await
                .map_err(|e| format!("storage {}: {e}", r.storage))?
                .last()
                .map(|b| b.metadata.created);
        }
        let mut routines = self.lock();
        let jobs = routines.entry(routine.to_string()).or_default();
        jobs.last_full = jobs.last_full.or(last[0]);
        jobs.last_incremental = jobs.last_incremental.or(last[1]);
        Ok(())
    }

    fn publish_progress(&self, routine: &str, kind: BackupKind, progress: &Progress) {
        if let Some(m) = &self.inner.metrics {
            m.backup_progress_pct
                .with_label_values(&[routine, kind.label()])
                .set(i64::from(progress.snapshot().percent));
        }
    }

    /// "Now" on the engine's clock (the system clock before the plugins are loaded).
    fn now(&self) -> DateTime<Utc> {
        self.inner
            .ctx
            .get()
            .map_or_else(Utc::now, |c| c.clock.now())
    }

    fn record_skip(&self, routine: &str, kind: BackupKind, why: &str) {
        let now = self.now();
        tracing::info!(routine = %routine, kind = kind.label(), reason = why, "Backup skipped.");
        if let Some(m) = &self.inner.metrics {
            m.backup_events
                .with_label_values(&[routine, kind.label(), "skip"])
                .inc();
            match kind {
                BackupKind::Full => m.skip_total.inc(),
                BackupKind::Incremental => m.incremental_skip_total.inc(),
            }
        }
        self.lock()
            .entry(routine.to_string())
            .or_default()
            .last_outcome
            .insert(kind.label(), (JobOutcome::Skipped(why.to_string()), now));
        self.inner.events.emit(ended(
            routine,
            kind,
            &JobOutcome::Skipped(why.to_string()),
            Duration::ZERO,
            (0, 0),
            now,
        ));
    }

    fn finish(
        &self,
        routine: &str,
        kind: BackupKind,
        outcome: &JobOutcome,
        elapsed: Duration,
        progress: &Progress,
    ) {
        let snap = progress.snapshot();
        match outcome {
            JobOutcome::Success(r) => tracing::info!(
                routine = %routine,
                kind = kind.label(),
                timestamp = r.timestamp_ms,
                records = snap.records,
                bytes = snap.bytes,
                files = snap.files,
                elapsed_ms = elapsed.as_millis() as u64,
                "Backup finished."
            ),
            JobOutcome::Failure(e) => tracing::error!(
                routine = %routine,
                kind = kind.label(),
                error = %e,
                "Backup failed; its files were removed."
            ),
            _ => tracing::info!(routine = %routine, kind = kind.label(), "Backup cancelled."),
        }
        if let Some(m) = &self.inner.metrics {
            let labels = [routine, kind.label()];
            m.backup_in_progress.with_label_values(&labels).set(0);
            m.backup_events
                .with_label_values(&[routine, kind.label(), outcome.label()])
                .inc();
            // Each scan resume is one retry, whatever the job's outcome.
            m.backup_events
                .with_label_values(&[routine, kind.label(), "retry"])
                .inc_by(progress.retries());
            m.backup_duration
                .with_label_values(&labels)
                .observe(elapsed.as_secs_f64());
            let full = kind == BackupKind::Full;
            match outcome {
                JobOutcome::Success(r) => {
                    m.backup_records
                        .with_label_values(&labels)
                        .inc_by(snap.records);
                    m.backup_bytes.with_label_values(&labels).inc_by(snap.bytes);
                    // As ABS: an empty incremental (nothing kept) is no backup to restore,
                    // so the gauge stays at the last one that holds data.
                    if full || r.namespaces.iter().any(|n| n.key.is_some()) {
                        m.last_successful_backup
                            .with_label_values(&labels)
                            .set(r.timestamp_ms / 1000);
                    }
                    m.backup_progress_pct.with_label_values(&labels).set(100);
                    if full {
                        m.runs_total.inc();
                        m.duration_millis.set(elapsed.as_millis() as f64);
                    } else {
                        m.incremental_runs_total.inc();
                        m.incremental_duration_millis
                            .set(elapsed.as_millis() as f64);
                    }
                }
                JobOutcome::Failure(_) if full => m.failure_total.inc(),
                JobOutcome::Failure(_) => m.incremental_failure_total.inc(),
                _ => {}
            }
        }
        let mut routines = self.lock();
        let jobs = routines.entry(routine.to_string()).or_default();
        *jobs.slot(kind) = None;
        if let JobOutcome::Success(r) = outcome {
            let created = r.namespaces.first().map(|n| n.metadata.created);
            match kind {
                BackupKind::Full => jobs.last_full = created.or(jobs.last_full),
                BackupKind::Incremental => {
                    jobs.last_incremental = created.or(jobs.last_incremental);
                }
            }
        }
        jobs.last_outcome
            .insert(kind.label(), (outcome.clone(), self.now()));
        drop(routines);
        self.inner.events.emit(ended(
            routine,
            kind,
            outcome,
            elapsed,
            (snap.records, snap.bytes),
            self.now(),
        ));
    }

    /// Cancels the running backups of `routine`; true if there was one.
    pub fn cancel(&self, routine: &str) -> bool {
        let routines = self.lock();
        let Some(jobs) = routines.get(routine) else {
            return false;
        };
        let mut any = false;
        for r in [&jobs.full, &jobs.incremental].into_iter().flatten() {
            r.cancel.cancel();
            any = true;
        }
        any
    }

    /// Running jobs and last successes of `routine`.
    pub fn state(&self, routine: &str) -> RoutineView {
        let routines = self.lock();
        let Some(jobs) = routines.get(routine) else {
            return RoutineView::default();
        };
        let view = |r: &Option<Running>| {
            r.as_ref().map(|r| RunningView {
                progress: r.progress.snapshot(),
            })
        };
        let last_result = [BackupKind::Full, BackupKind::Incremental]
            .into_iter()
            .filter_map(|kind| {
                let (o, at) = jobs.last_outcome.get(kind.label())?;
                let message = match o {
                    JobOutcome::Failure(m) | JobOutcome::Skipped(m) => Some(m.clone()),
                    _ => None,
                };
                Some((
                    kind,
                    LastResult {
                        outcome: o.label(),
                        message,
                        at: *at,
                    },
                ))
            })
            .collect();
        RoutineView {
            full: view(&jobs.full),
            incremental: view(&jobs.incremental),
            last_full: jobs.last_full,
            last_incremental: jobs.last_incremental,
            last_result,
        }
    }

    /// Waits for the running `kind` job of `routine` and returns how it ended; without a
    /// running job, the last outcome (if any).
    pub async fn wait(&self, routine: &str, kind: BackupKind) -> Option<JobOutcome> {
        let rx = {
            let mut routines = self.lock();
            let jobs = routines.get_mut(routine)?;
            match jobs.slot(kind) {
                Some(r) => r.done.clone(),
                None => return jobs.last_outcome.get(kind.label()).map(|(o, _)| o.clone()),
            }
        };
        let mut rx = rx;
        loop {
            if let Some(o) = rx.borrow_and_update().clone() {
                return Some(o);
            }
            if rx.changed().await.is_err() {
                return rx.borrow().clone();
            }
        }
    }

    /// The shared engine context (plugins, clock), loading it if needed.
    ///
    /// # Errors
    /// The plugins failed to load.
    pub async fn engine(&self) -> Result<Arc<EngineContext>, EngineError> {
        self.context().await
    }
}

/// A backup's end (or skip) as an event; `counts` are (records, bytes).
fn ended(
    routine: &str,
    kind: BackupKind,
    outcome: &JobOutcome,
    elapsed: Duration,
    counts: (u64, u64),
    at: DateTime<Utc>,
) -> crate::jobs::events::JobEnded {
    use crate::jobs::events::{JobEnded, JobKind, JobResult};
    let (result, error) = match outcome {
        JobOutcome::Success(_) => (JobResult::Success, None),
        JobOutcome::Failure(e) => (JobResult::Failure, Some(e.clone())),
        JobOutcome::Canceled => (JobResult::Canceled, None),
        JobOutcome::Skipped(why) => (JobResult::Skip, Some(why.clone())),
    };
    JobEnded {
        kind: JobKind::Backup,
        detail: kind.label().to_string(),
        routine: Some(routine.to_string()),
        job_id: None,
        result,
        records: counts.0,
        bytes: counts.1,
        duration: elapsed,
        error,
        finished_at: at,
    }
}

/// A job's failure as the operator reads it. A storage's failure names the storage, as the
/// backup listings do (`storage <name>: <what>: <the store's answer>`), so a refused key or a
/// missing bucket reads the same in both places.
fn failure_text(spec: &JobSpec, e: &EngineError) -> String {
    let storage = spec
        .config
        .backup_routines
        .get(&spec.routine)
        .map(|r| r.storage.as_str());
    match (e, storage) {
        (EngineError::Plugin { context, .. }, Some(name)) if is_storage_step(context) => {
            format!("storage {name}: {e}")
        }
        _ => e.to_string(),
    }
}

/// Whether a plugin error's context is a step of the storage (rather than of a codec).
fn is_storage_step(context: &str) -> bool {
    [
        "opening storage",
        "listing backups",
        "checking the backup folder",
    ]
    .contains(&context)
        || ["writing ", "finishing ", "removing the marker"]
            .iter()
            .any(|p| context.starts_with(p))
}
