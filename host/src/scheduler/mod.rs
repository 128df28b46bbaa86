//! The scheduler: each routine backs up on its cron schedules, on-demand runs obey the same
//! overlap rules, config changes reschedule only the routines they touched, and shutdown
//! lets running jobs finish within a grace period.
//!
//! - [`clock`]: the injectable time source ([`Timer`]); tests use [`ManualTimer`].
//! - [`triggers`]: parsed schedules and next-fire times.
//! - [`rules`]: the overlap rules, one pure function.
//!
//! Every fire goes through [`Scheduler::trigger`] → `JobRegistry::start` with
//! [`rules::admission`]; the registry applies the rule under the lock that claims the job's
//! slot. A job takes the config `Arc` current when it starts and keeps it to the end.

pub mod clock;
pub mod rules;
pub mod triggers;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::config::cron::CronSchedule;
use crate::config::{BackupRoutine, Config, ConfigStore};
use crate::jobs::registry::{JobError, JobRegistry, Trigger};
use crate::metrics::Metrics;
use crate::storage::layout::BackupKind;

pub use clock::{ManualTimer, SystemTimer, Timer};

/// Scheduler events kept for slow subscribers (tests, logs): one per fire or on-demand
/// request; a subscriber more than this far behind loses the oldest.
const EVENT_CHANNEL_CAPACITY: usize = 1024;
/// After the grace period, canceled jobs still delete what they wrote; this bounds that.
pub const CANCEL_CLEANUP_BOUND: Duration = Duration::from_secs(30);
/// Default grace period for running jobs at shutdown.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Why a run was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Schedule,
    OnDemand,
}

/// What happened when a run was asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub routine: String,
    pub kind: BackupKind,
    pub origin: Origin,
    /// The scheduled time of a fire; the request time of an on-demand run.
    pub at: DateTime<Utc>,
    /// `Started`, or `Skipped(reason)`; `Err` when the job could not be set up.
    pub result: Result<Trigger, String>,
}

/// How shutdown went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Jobs running when shutdown began.
    pub running: usize,
    /// Of those, canceled after the grace period.
    pub canceled: usize,
    /// Jobs still not ended after the cleanup bound (their folders have no marker).
    pub abandoned: usize,
}

/// The schedule state of one routine.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScheduleView {
    pub next_full: Option<DateTime<Utc>>,
    pub next_incremental: Option<DateTime<Utc>>,
    /// Next `verify-cron` fire.
    pub next_verify: Option<DateTime<Utc>>,
    /// Why the routine's storage could not be read at start-up or after a change.
    pub storage_problem: Option<String>,
    /// When the routine's triggers were (re)created; `None` if it was never scheduled.
    pub scheduled_at: Option<DateTime<Utc>>,
}

/// The next full, incremental and verify fire of a routine, shared with its trigger tasks.
type NextFires = Arc<Mutex<[Option<DateTime<Utc>>; 3]>>;
/// The `NextFires` slot of `verify-cron`.
const VERIFY_SLOT: usize = 2;

/// One scheduled routine: the config its triggers were made from, and their stop switch.
struct Scheduled {
    routine: BackupRoutine,
    since: DateTime<Utc>,
    cancel: CancellationToken,
    next: NextFires,
}

struct Inner {
    jobs: JobRegistry,
    store: Arc<ConfigStore>,
    timer: Arc<dyn Timer>,
    metrics: Option<Arc<Metrics>>,
    routines: Mutex<HashMap<String, Scheduled>>,
    problems: Mutex<HashMap<String, String>>,
    stop: CancellationToken,
    running: AtomicBool,
    events: broadcast::Sender<Event>,
    /// Runs `verify-cron` fires (set by the API state, which owns the verify jobs).
    verifier: Mutex<Option<crate::jobs::verify_jobs::VerifyJobs>>,
}

/// The scheduler; cheap to clone.
#[derive(Clone)]
pub struct Scheduler {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("running", &self.is_running())
            .finish_non_exhaustive()
    }
}

fn slot(kind: BackupKind) -> usize {
    match kind {
        BackupKind::Full => 0,
        BackupKind::Incremental => 1,
    }
}

impl Scheduler {
    /// A scheduler over `jobs`, not yet running ([`Scheduler::start`]). `timer` must be the
    /// clock the jobs' engine context uses.
    pub fn new(
        jobs: JobRegistry,
        store: Arc<ConfigStore>,
        timer: Arc<dyn Timer>,
        metrics: Option<Arc<Metrics>>,
    ) -> Self {
        Scheduler {
            inner: Arc::new(Inner {
                jobs,
                store,
                timer,
                metrics,
                routines: Mutex::new(HashMap::new()),
                problems: Mutex::new(HashMap::new()),
                stop: CancellationToken::new(),
                running: AtomicBool::new(false),
                events: broadcast::channel(EVENT_CHANNEL_CAPACITY).0,
                verifier: Mutex::new(None),
            }),
        }
    }

    /// Where `verify-cron` fires start their jobs.
    pub fn set_verifier(&self, verifies: crate::jobs::verify_jobs::VerifyJobs) {
        *self
            .inner
            .verifier
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(verifies);
    }

    /// The job registry (state, cancel, wait).
    pub fn jobs(&self) -> &JobRegistry {
        &self.inner.jobs
    }

    /// Fires and on-demand requests from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }

    /// True from [`Scheduler::start`] until shutdown.
    pub fn is_running(&self) -> bool {
        self.inner.running.load(Ordering::SeqCst)
    }

    /// Creates the triggers of every enabled routine and follows config changes. Then, in
    /// the background (the returned task), each routine's storage is read for its last
    /// backups, so the first-full rule and the routine state survive a restart (a start
    /// before that reads storage itself); a storage that cannot be read is logged with its
    /// name and shown in the routine state, and does not fail start-up.
    pub fn start(&self) -> tokio::task::JoinHandle<()> {
        let cfg = self.inner.store.current();
        let mut rx = self.inner.store.subscribe();
        rx.borrow_and_update();
        self.reconcile(&cfg);
        self.inner.running.store(true, Ordering::SeqCst);
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    changed = rx.changed() => {
                        if changed.is_err() { return; }
                        let next = rx.borrow_and_update().clone();
                        let touched = this.reconcile(&next);
                        this.recover(&next, touched.iter()).await;
                    }
                    () = this.inner.stop.cancelled() => return,
                }
            }
        });
        let this = self.clone();
        tokio::spawn(async move {
            this.recover(&cfg, cfg.backup_routines.keys()).await;
        })
    }

    async fn recover<'a>(&self, cfg: &Config, routines: impl Iterator<Item = &'a String>) {
        for name in routines {
            let Some(r) = cfg.backup_routines.get(name) else {
                continue;
            };
            let result = self.inner.jobs.recover(name).await;
            let mut problems = self
                .inner
                .problems
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            match result {
                Ok(()) => {
                    problems.remove(name);
                }
                Err(e) => {
                    tracing::warn!(routine = %name, storage = %r.storage, error = %e,
                        "Cannot read the routine's storage; its backups will fail until it is reachable.");
                    problems.insert(name.clone(), e);
                }
            }
        }
    }

    /// Brings the triggers in line with `cfg`: routines that are new, changed or removed get
    /// their triggers re-created or stopped; unchanged ones keep theirs. Returns the names
    /// of the routines (re)scheduled.
    pub fn reconcile(&self, cfg: &Config) -> Vec<String> {
        if self.inner.stop.is_cancelled() {
            return Vec::new();
        }
        let mut routines = self
            .inner
            .routines
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        routines.retain(|name, s| {
            let keep = cfg.backup_routines.get(name) == Some(&s.routine);
            if !keep {
                s.cancel.cancel();
                for kind in [BackupKind::Full, BackupKind::Incremental] {
                    if cfg.backup_routines.contains_key(name) {
                        self.set_next_gauge(name, kind, None);
                    } else if let Some(m) = &self.inner.metrics {
                        // A deleted routine's series go (label cardinality follows the config).
                        let _ = m
                            .next_scheduled_backup
                            .remove_label_values(&[name, kind.label()]);
                    }
                }
                tracing::info!(routine = %name, "Routine schedule stopped (changed or removed); a running backup finishes on its old config.");
            }
            keep
        });
        self.inner
            .problems
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|name, _| cfg.backup_routines.contains_key(name));
        let mut touched = Vec::new();
        for (name, r) in &cfg.backup_routines {
            if routines.contains_key(name) {
                continue;
            }
            routines.insert(name.clone(), self.schedule(name, r));
            touched.push(name.clone());
        }
        touched
    }

    fn schedule(&self, name: &str, routine: &BackupRoutine) -> Scheduled {
        let cancel = self.inner.stop.child_token();
        let next: NextFires = Arc::new(Mutex::new([None, None, None]));
        let (schedules, errors) = triggers::RoutineSchedules::of(routine);
        for e in errors {
            tracing::error!(routine = %name, error = %e, "Routine schedule does not parse; it never fires.");
        }
        let now = self.inner.timer.now();
        for kind in [BackupKind::Full, BackupKind::Incremental] {
            let Some(s) = schedules.get(kind) else {
                continue;
            };
            let first = triggers::first_fire(s, now);
            next.lock().unwrap_or_else(|p| p.into_inner())[slot(kind)] = first;
            self.set_next_gauge(name, kind, first);
            tokio::spawn(self.clone().fire_loop(
                name.to_string(),
                kind,
                s.clone(),
                first,
                (cancel.clone(), next.clone()),
            ));
        }
        let verify = routine
            .verify_cron()
            .filter(|_| !*routine.disabled)
            .and_then(|c| match c.parse::<CronSchedule>() {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::error!(routine = %name, error = %e, "verify-cron does not parse; it never fires.");
                    None
                }
            });
        if let Some(s) = verify {
            let first = triggers::first_fire(&s, now);
            next.lock().unwrap_or_else(|p| p.into_inner())[VERIFY_SLOT] = first;
            tokio::spawn(self.clone().verify_loop(
                name.to_string(),
                s,
                first,
                (cancel.clone(), next.clone()),
            ));
        }
        if *routine.disabled {
            tracing::info!(routine = %name, "Routine is disabled; not scheduled.");
        } else {
            let n = next.lock().unwrap_or_else(|p| p.into_inner());
            tracing::info!(routine = %name,
                next_full = n[0].map(|t| t.to_rfc3339()).unwrap_or_default(),
                next_incremental = n[1].map(|t| t.to_rfc3339()).unwrap_or_default(),
                "Routine scheduled.");
        }
        Scheduled {
            routine: routine.clone(),
            since: now,
            cancel,
            next,
        }
    }

    async fn fire_loop(
        self,
        routine: String,
        kind: BackupKind,
        schedule: CronSchedule,
        mut next: Option<DateTime<Utc>>,
        (cancel, slots): (CancellationToken, NextFires),
    ) {
        while let Some(at) = next {
            tokio::select! {
                () = self.inner.timer.sleep_until(at) => {}
                () = cancel.cancelled() => return,
            }
            if cancel.is_cancelled() {
                return;
            }
            // The following fire is known before this one runs, so the state shows it.
            next = triggers::next_fire(&schedule, at, self.inner.timer.now());
            slots.lock().unwrap_or_else(|p| p.into_inner())[slot(kind)] = next;
            self.set_next_gauge(&routine, kind, next);
            let _ = self.run(&routine, kind, Origin::Schedule, at).await;
        }
    }

    /// `verify-cron`: each fire verifies the routine's newest full backup.
    async fn verify_loop(
        self,
        routine: String,
        schedule: CronSchedule,
        mut next: Option<DateTime<Utc>>,
        (cancel, slots): (CancellationToken, NextFires),
    ) {
        while let Some(at) = next {
            tokio::select! {
                () = self.inner.timer.sleep_until(at) => {}
                () = cancel.cancelled() => return,
            }
            if cancel.is_cancelled() {
                return;
            }
            next = triggers::next_fire(&schedule, at, self.inner.timer.now());
            slots.lock().unwrap_or_else(|p| p.into_inner())[VERIFY_SLOT] = next;
            let verifier = self
                .inner
                .verifier
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            let Some(verifier) = verifier else {
                continue;
            };
            let started = match self.inner.jobs.engine().await {
                Ok(ctx) => verifier
                    .start_newest(ctx, self.inner.store.current(), &routine)
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            if let Err(e) = started {
                tracing::warn!(routine = %routine, error = %e, "Scheduled verify did not start.");
                if let Some(m) = &self.inner.metrics {
                    m.verify_failure.with_label_values(&[&routine]).inc();
                }
            }
        }
    }

    fn set_next_gauge(&self, routine: &str, kind: BackupKind, at: Option<DateTime<Utc>>) {
        if let Some(m) = &self.inner.metrics {
            m.next_scheduled_backup
                .with_label_values(&[routine, kind.label()])
                .set(at.map_or(0, |t| t.timestamp()));
        }
    }

    async fn run(
        &self,
        routine: &str,
        kind: BackupKind,
        origin: Origin,
        at: DateTime<Utc>,
    ) -> Result<Trigger, JobError> {
        let result = self.inner.jobs.start(routine, kind, rules::admission).await;
        if let Err(e) = &result {
            tracing::warn!(routine = %routine, kind = kind.label(), error = %e, "Backup did not start.");
        }
        let _ = self.inner.events.send(Event {
            routine: routine.to_string(),
            kind,
            origin,
            at,
            result: result
                .as_ref()
                .map(Clone::clone)
                .map_err(ToString::to_string),
        });
        result
    }

    /// An on-demand run: now, or after `delay` on the scheduler's clock (the rules apply
    /// when it starts). Answers `Skipped(reason)` when the rules refuse it now.
    ///
    /// # Errors
    /// [`JobError::UnknownRoutine`]; engine errors while loading the plugins.
    pub async fn trigger(
        &self,
        routine: &str,
        kind: BackupKind,
        delay: Duration,
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
        let now = self.inner.timer.now();
        if delay.is_zero() {
            return self.run(routine, kind, Origin::OnDemand, now).await;
        }
        let this = self.clone();
        let routine = routine.to_string();
        tokio::spawn(async move {
            tokio::select! {
                () = this.inner.timer.sleep_for(delay) => {}
                () = this.inner.stop.cancelled() => return,
            }
            let at = this.inner.timer.now();
            let _ = this.run(&routine, kind, Origin::OnDemand, at).await;
        });
        Ok(Trigger::Scheduled)
    }

    /// Next fires and storage problems of `routine`.
    pub fn view(&self, routine: &str) -> ScheduleView {
        let (next, since) = self
            .inner
            .routines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(routine)
            .map(|s| {
                (
                    *s.next.lock().unwrap_or_else(|p| p.into_inner()),
                    Some(s.since),
                )
            })
            .unwrap_or_default();
        ScheduleView {
            scheduled_at: since,
            next_full: next[0],
            next_incremental: next[1],
            next_verify: next[VERIFY_SLOT],
            storage_problem: self
                .inner
                .problems
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(routine)
                .cloned(),
        }
    }

    /// Stops every trigger and refuses new runs, waits up to `grace` for running jobs to
    /// finish, then cancels the rest and waits up to [`CANCEL_CLEANUP_BOUND`] while they
    /// delete what they wrote. A job's `metadata.yaml` is written last, so a job cut off at
    /// any point leaves nothing listed; an abandoned one leaves an unmarked folder that the
    /// next start-up sweep removes.
    pub async fn shutdown(&self, grace: Duration) -> ShutdownReport {
        self.inner.running.store(false, Ordering::SeqCst);
        self.inner.stop.cancel();
        let jobs = &self.inner.jobs;
        jobs.stop();
        let running = jobs.running_count();
        if running > 0 {
            tracing::info!(
                running,
                grace_s = grace.as_secs(),
                "Waiting for running backups to finish."
            );
        }
        let mut canceled = 0;
        if tokio::time::timeout(grace, jobs.wait_idle()).await.is_err() {
            canceled = jobs.suspend_all();
            tracing::warn!(
                canceled,
                "Grace period over: running backups canceled; full backups with a checkpoint resume at the next start, the others' files are removed."
            );
            let _ = tokio::time::timeout(CANCEL_CLEANUP_BOUND, jobs.wait_idle()).await;
        }
        let abandoned = jobs.running_count();
        if abandoned > 0 {
            tracing::warn!(
                abandoned,
                "Backups still cleaning up at exit; the next start removes their folders."
            );
        }
        ShutdownReport {
            running,
            canceled,
            abandoned,
        }
    }
}
