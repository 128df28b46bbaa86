//! Restore jobs: checked start (the request → a [`RestorePlan`]), status, list, cancel.
//!
//! Jobs live in memory only, as in ABS; ids are random non-negative int64. Finished jobs are
//! kept for [`FINISHED_JOB_TTL`] and at most [`MAX_FINISHED_JOBS`] of them, oldest dropped
//! first, so the registry's memory is bounded however many restores run.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::config::{
    AerospikeCluster, Config, ConfigStore, RestorePolicy, RestoreRequest, RestoreTimestampRequest,
    SecretAgent, Storage as StorageConfig, exactly_one,
};
use crate::metrics::Metrics;

use crate::aerospike::writer::{CounterSnapshot, Counters};
use crate::error::EngineError;
use crate::jobs::job_secrets;
use crate::jobs::registry::JobRegistry;
use crate::jobs::restore::{self, FolderPlan, RequestError, RestorePlan};
use crate::progress::{Progress, ProgressSnapshot};
use crate::secrets::ResolvedKeys;
use crate::storage::wiring;

/// Finished jobs kept at most (ABS keeps all until restart; we bound it).
pub const MAX_FINISHED_JOBS: usize = 1000;
/// How long a finished job stays listed.
pub const FINISHED_JOB_TTL: Duration = Duration::from_secs(24 * 3600);
/// How often a running restore logs its progress (as backups do).
const PROGRESS_LOG_INTERVAL: Duration = Duration::from_secs(30);

/// A restore job's state, lowercase as ABS 3.6+.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RestoreStatus {
    Running,
    Success,
    Failure,
    Canceled,
}

impl RestoreStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RestoreStatus::Running => "running",
            RestoreStatus::Success => "success",
            RestoreStatus::Failure => "failure",
            RestoreStatus::Canceled => "canceled",
        }
    }

    /// Parses a status filter word (case-insensitive; ABS aliases `done`, `failed`).
    pub fn parse(word: &str) -> Option<RestoreStatus> {
        Some(match word.trim().to_ascii_lowercase().as_str() {
            "running" => RestoreStatus::Running,
            "success" | "done" => RestoreStatus::Success,
            "failure" | "failed" => RestoreStatus::Failure,
            "canceled" | "cancelled" => RestoreStatus::Canceled,
            _ => return None,
        })
    }
}

/// A job as the status endpoints show it.
#[derive(Debug, Clone, PartialEq)]
pub struct RestoreView {
    pub id: i64,
    pub status: RestoreStatus,
    pub error: Option<String>,
    pub progress: ProgressSnapshot,
    pub finished_at: Option<DateTime<Utc>>,
    pub counters: CounterSnapshot,
}

struct Job {
    status: RestoreStatus,
    error: Option<String>,
    progress: Arc<Progress>,
    counters: Arc<Counters>,
    cancel: CancellationToken,
    finished_at: Option<DateTime<Utc>>,
    /// When the job finished, for expiry (monotonic).
    finished: Option<std::time::Instant>,
    /// The request kind (`full`, `incremental`, `timestamp`) and the routine restored, for
    /// the job's end event.
    label: String,
    routine: Option<String>,
}

/// Why a restore could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// 400, naming the field.
    #[error("{0}")]
    Request(#[from] RequestError),
    /// 500.
    #[error("{0}")]
    Engine(#[from] EngineError),
}

/// The registry of restore jobs; cheap to clone.
#[derive(Clone)]
pub struct RestoreJobs {
    store: Arc<ConfigStore>,
    metrics: Option<Arc<Metrics>>,
    backups: JobRegistry,
    jobs: Arc<Mutex<HashMap<i64, Job>>>,
    /// Told of every job end (notifications).
    events: crate::jobs::events::JobEvents,
}

impl std::fmt::Debug for RestoreJobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestoreJobs").finish_non_exhaustive()
    }
}

/// Where a request restores to and from, resolved against the config.
struct Target {
    cluster_name: String,
    cluster: AerospikeCluster,
    storage: StorageConfig,
    policy: RestorePolicy,
    keys: ResolvedKeys,
    /// The routine whose backup is restored, when known.
    routine: Option<String>,
}

impl Target {
    /// Asks the Secret Agent for everything the request's destination, source and key name
    /// (now: the request is the job's start). The request's `secret-agent` /
    /// `secret-agent-name`, else `fallback` (the routine's), serves the key and any cluster
    /// or storage that names no agent of its own.
    async fn resolve_secrets(
        mut self,
        config: &Config,
        inline: Option<&SecretAgent>,
        name: Option<&str>,
        fallback: Option<&str>,
    ) -> Result<Target, RequestError> {
        let agents = &config.secret_agents;
        let agent = crate::secrets::agent_for(agents, inline, name, fallback)
            .map_err(|e| RequestError::new("secret-agent", e.to_string()))?;
        self.cluster =
            job_secrets::resolve_cluster(agents, &self.cluster_name, &self.cluster, agent.as_ref())
                .await
                .map_err(|e| RequestError::new("destination", e.to_string()))?;
        self.storage =
            job_secrets::resolve_storage(agents, "(restore source)", &self.storage, agent.as_ref())
                .await
                .map_err(|e| RequestError::new("source", e.to_string()))?;
        self.keys =
            job_secrets::resolve_restore_keys(self.policy.encryption.as_ref(), agent.as_ref())
                .await
                .map_err(|e| RequestError::new("policy.encryption", e))?;
        Ok(self)
    }
}

fn check_policy(policy: &Option<RestorePolicy>) -> Result<RestorePolicy, RequestError> {
    let policy = policy.clone().unwrap_or_default();
    policy
        .check()
        .map_err(|(field, message)| RequestError::new(field, message))?;
    Ok(policy)
}

fn resolve_destination(
    config: &Config,
    inline: &Option<AerospikeCluster>,
    name: &Option<String>,
) -> Result<(String, AerospikeCluster), RequestError> {
    exactly_one(inline, name, "destination", "destination-name")
        .map_err(|(f, m)| RequestError::new(f, m))?;
    match (inline, name) {
        (Some(c), _) => {
            // The rules of a stored cluster (seed nodes, port and timeout ranges, ...).
            if let Some(e) = crate::config::validate::inline_cluster(config, "destination", c)
                .into_iter()
                .next()
            {
                return Err(RequestError::new(e.path, e.message));
            }
            Ok(("(inline destination)".to_string(), c.clone()))
        }
        (None, Some(n)) => config
            .aerospike_clusters
            .get(n)
            .cloned()
            .map(|c| (n.clone(), c))
            .ok_or_else(|| RequestError::new("destination-name", format!("cluster {n} not found"))),
        (None, None) => unreachable!("checked by exactly_one"),
    }
}

fn resolve_source(
    config: &Config,
    inline: &Option<StorageConfig>,
    name: &Option<String>,
) -> Result<StorageConfig, RequestError> {
    exactly_one(inline, name, "source", "source-name").map_err(|(f, m)| RequestError::new(f, m))?;
    match (inline, name) {
        (Some(s), _) => {
            if let Some(e) = crate::config::validate::inline_storage(config, "source", s)
                .into_iter()
                .next()
            {
                return Err(RequestError::new(e.path, e.message));
            }
            Ok(s.clone())
        }
        (None, Some(n)) => config
            .storage
            .get(n)
            .cloned()
            .ok_or_else(|| RequestError::new("source-name", format!("storage {n} not found"))),
        (None, None) => unreachable!("checked by exactly_one"),
    }
}

fn check_secret_agent(
    config: &Config,
    inline: bool,
    name: &Option<String>,
) -> Result<(), RequestError> {
    if inline && name.is_some() {
        return Err(RequestError::new(
            "secret-agent",
            "secret-agent and secret-agent-name are exclusive",
        ));
    }
    if let Some(n) = name
        && !config.secret_agents.contains_key(n)
    {
        return Err(RequestError::new(
            "secret-agent-name",
            format!("secret agent {n} not found"),
        ));
    }
    Ok(())
}

impl RestoreJobs {
    pub fn new(
        store: Arc<ConfigStore>,
        metrics: Option<Arc<Metrics>>,
        backups: JobRegistry,
    ) -> Self {
        RestoreJobs {
            store,
            metrics,
            backups,
            jobs: Arc::new(Mutex::new(HashMap::new())),
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

    /// `POST /v1/restore/full` and `/incremental`: one backup folder (or every namespace
    /// folder under it).
    ///
    /// # Errors
    /// [`StartError`]: 400 with the field, or the engine failing to load.
    pub async fn start_request(
        &self,
        req: &RestoreRequest,
        label: &str,
    ) -> Result<i64, StartError> {
        let config = self.store.current();
        let policy = check_policy(&req.policy)?;
        check_secret_agent(&config, req.secret_agent.is_some(), &req.secret_agent_name)?;
        let (cluster_name, cluster) =
            resolve_destination(&config, &req.destination, &req.destination_name)?;
        let storage = resolve_source(&config, &req.source, &req.source_name)?;
        let target = Target {
            cluster_name,
            cluster,
            storage,
            policy,
            keys: ResolvedKeys::default(),
            routine: routine_of_path(&req.backup_data_path),
        }
        .resolve_secrets(
            &config,
            req.secret_agent.as_ref(),
            req.secret_agent_name.as_deref(),
            None,
        )
        .await?;
        let storage = self.open(&config, &target.storage).await?;
        let folders = restore::plan_path(&storage, &req.backup_data_path).await?;
        self.start(config, target, folders, label).await
    }

    /// `POST /v1/restore/timestamp`.
    ///
    /// # Errors
    /// As [`RestoreJobs::start_request`]; no full backup before `time` is a 400 on `time`.
    pub async fn start_timestamp(&self, req: &RestoreTimestampRequest) -> Result<i64, StartError> {
        let config = self.store.current();
        if req.routine.is_empty() {
            return Err(RequestError::new("routine", "routine is required").into());
        }
        if req.time <= 0 {
            return Err(RequestError::new("time", "time must be a positive epoch ms").into());
        }
        let routine = config.backup_routines.get(&req.routine).ok_or_else(|| {
            RequestError::new("routine", format!("routine {} not found", req.routine))
        })?;
        let policy = check_policy(&req.policy)?;
        check_secret_agent(&config, req.secret_agent.is_some(), &req.secret_agent_name)?;
        let (cluster_name, cluster) =
            resolve_destination(&config, &req.destination, &req.destination_name)?;
        let storage = if req.source.is_some() || req.source_name.is_some() {
            resolve_source(&config, &req.source, &req.source_name)?
        } else {
            config
                .storage
                .get(&routine.storage)
                .cloned()
                .ok_or_else(|| {
                    RequestError::new("routine", format!("storage {} not found", routine.storage))
                })?
        };
        let target = Target {
            cluster_name,
            cluster,
            storage,
            policy,
            keys: ResolvedKeys::default(),
            routine: Some(req.routine.clone()),
        }
        .resolve_secrets(
            &config,
            req.secret_agent.as_ref(),
            req.secret_agent_name.as_deref(),
            routine.secret_agent.as_deref(),
        )
        .await?;
        let storage = self.open(&config, &target.storage).await?;
        let folders = restore::plan_timestamp(&storage, &req.routine, req.time).await?;
        self.start(config, target, folders, "timestamp").await
    }

    async fn open(
        &self,
        config: &Config,
        storage: &StorageConfig,
    ) -> Result<Arc<dyn crate::plugins::Storage>, StartError> {
        let ctx = self.backups.engine().await?;
        let plugins = ctx.plugins_for(config).await?;
        wiring::open_storage(&plugins, storage)
            .map_err(|e| StartError::Request(RequestError::new("source", e.to_string())))
    }

    /// A running backup of `cluster` reading one of `namespaces` (every namespace when its
    /// routine names none): the restore still starts, with a warning.
    fn conflicting_backup(&self, config: &Config, plan: &RestorePlan) -> Option<String> {
        let namespaces = plan.destination_namespaces();
        let hosts = crate::aerospike::cluster::seed_hosts(&plan.cluster);
        for (name, routine) in &config.backup_routines {
            let Some(cluster) = config.aerospike_clusters.get(&routine.source_cluster) else {
                continue;
            };
            let same_cluster = routine.source_cluster == plan.cluster_name
                || crate::aerospike::cluster::seed_hosts(cluster) == hosts;
            let overlap = routine.namespaces.is_empty()
                || routine.namespaces.iter().any(|n| namespaces.contains(n));
            let state = self.backups.state(name);
            if same_cluster && overlap && (state.full.is_some() || state.incremental.is_some()) {
                return Some(name.clone());
            }
        }
        None
    }

    async fn start(
        &self,
        config: Arc<Config>,
        target: Target,
        folders: Vec<FolderPlan>,
        label: &str,
    ) -> Result<i64, StartError> {
        let ctx = self.backups.engine().await?;
        let plugins = ctx.plugins_for(&config).await?;
        // Codecs and keys are checked now, so a wrong key is a 400, not a failed job.
        for f in &folders {
            restore::folder_pipeline(&plugins, &target.policy, &target.keys, f)?;
        }
        let routine = target.routine.clone();
        let plan = RestorePlan {
            label: label.to_string(),
            cluster_name: target.cluster_name,
            cluster: target.cluster,
            storage: target.storage,
            policy: target.policy,
            folders,
            config: config.clone(),
            keys: target.keys,
        };
        // The destination must answer before we accept the job.
        let client = crate::aerospike::cluster::connect(&plan.cluster_name, &plan.cluster)
            .await
            .map_err(|e| RequestError::new("destination", e.to_string()))?;
        let _ = client.close().await;
        // ABS starts a restore whatever backups run (202); so do we, and say what it means.
        if let Some(routine) = self.conflicting_backup(&config, &plan) {
            tracing::warn!(routine = %routine, restore = %plan.label,
                "A backup of this routine is reading a namespace the restore writes: it may \
                 hold some restored records and miss others.");
        }
        let progress = Arc::new(Progress::new(ctx.clock.now()));
        let counters = Arc::new(Counters::default());
        let cancel = CancellationToken::new();
        let id = {
            let mut jobs = self.lock();
            prune(&mut jobs);
            let id = new_job_id(&jobs);
            jobs.insert(
                id,
                Job {
                    status: RestoreStatus::Running,
                    error: None,
                    progress: progress.clone(),
                    counters: counters.clone(),
                    cancel: cancel.clone(),
                    finished_at: None,
                    finished: None,
                    label: label.to_string(),
                    routine,
                },
            );
            id
        };
        if let Some(m) = &self.metrics {
            m.restore_in_progress.inc();
        }
        tracing::info!(
            job = id,
            kind = label,
            folders = plan.folders.len(),
            "Restore started."
        );
        let this = self.clone();
        tokio::spawn(async move {
            let job = restore::run_job(&ctx, &plan, counters.clone(), progress.clone(), cancel);
            tokio::pin!(job);
            let mut log_tick = tokio::time::interval(PROGRESS_LOG_INTERVAL);
            log_tick.tick().await; // immediate; "started" was just logged
            let result = loop {
                tokio::select! {
                    r = &mut job => break r,
                    _ = log_tick.tick() => log_progress(id, &progress.snapshot(), &counters.snapshot()),
                }
            };
            this.finish(id, result, &ctx.clock.now());
        });
        Ok(id)
    }

    fn finish(
        &self,
        id: i64,
        result: Result<restore::RestoreReport, EngineError>,
        now: &DateTime<Utc>,
    ) {
        let (status, error) = match result {
            Ok(_) => (RestoreStatus::Success, None),
            Err(EngineError::Cancelled) => (RestoreStatus::Canceled, None),
            Err(e) => (RestoreStatus::Failure, Some(e.to_string())),
        };
        let mut jobs = self.lock();
        let Some(job) = jobs.get_mut(&id) else {
            return;
        };
        let c = job.counters.snapshot();
        match &error {
            None => tracing::info!(
                job = id,
                status = status.as_str(),
                read = c.read_records,
                inserted = c.inserted_records,
                existed = c.existed_records,
                fresher = c.fresher_records,
                skipped = c.skipped_records,
                expired = c.expired_records,
                ignored = c.ignored_records,
                indexes = c.index_count,
                udfs = c.udf_count,
                "Restore finished."
            ),
            Some(e) => tracing::error!(job = id, error = %e, read = c.read_records,
                inserted = c.inserted_records, failed = c.failed_records, "Restore failed."),
        }
        job.status = status;
        job.error = error;
        job.finished_at = Some(*now);
        job.finished = Some(std::time::Instant::now());
        if let Some(m) = &self.metrics {
            m.restore_in_progress.dec();
            m.restore_events.with_label_values(&[status.as_str()]).inc();
            m.restore_records.inc_by(c.inserted_records);
            m.restore_bytes.inc_by(c.total_bytes);
        }
        use crate::jobs::events::{JobEnded, JobKind, JobResult};
        let event = JobEnded {
            kind: JobKind::Restore,
            detail: job.label.clone(),
            routine: job.routine.clone(),
            job_id: Some(id),
            result: match status {
                RestoreStatus::Success => JobResult::Success,
                RestoreStatus::Canceled => JobResult::Canceled,
                _ => JobResult::Failure,
            },
            records: c.inserted_records,
            bytes: c.total_bytes,
            duration: (*now - job.progress.snapshot().started_at)
                .to_std()
                .unwrap_or_default(),
            error: job.error.clone(),
            finished_at: *now,
        };
        drop(jobs);
        self.events.emit(event);
    }

    /// The job `id`.
    pub fn status(&self, id: i64) -> Option<RestoreView> {
        let mut jobs = self.lock();
        prune(&mut jobs);
        jobs.get(&id).map(|j| view(id, j))
    }

    /// Jobs started in `[from, to)` (epoch ms) whose status passes `keep`.
    pub fn list(
        &self,
        from: i64,
        to: i64,
        keep: impl Fn(RestoreStatus) -> bool,
    ) -> Vec<RestoreView> {
        let mut jobs = self.lock();
        prune(&mut jobs);
        let mut out: Vec<RestoreView> = jobs
            .iter()
            .map(|(id, j)| view(*id, j))
            .filter(|v| {
                let t = v.progress.started_at.timestamp_millis();
                t >= from && t < to && keep(v.status)
            })
            .collect();
        out.sort_by_key(|v| (v.progress.started_at, v.id));
        out
    }

    /// Cancels job `id`; `None` if unknown. Records already written stay.
    pub fn cancel(&self, id: i64) -> Option<()> {
        let jobs = self.lock();
        jobs.get(&id).map(|j| j.cancel.cancel())
    }

    /// Waits until job `id` is no longer running (tests, tools).
    pub async fn wait(&self, id: i64) -> Option<RestoreView> {
        loop {
            let v = self.status(id)?;
            if v.status != RestoreStatus::Running {
                return Some(v);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn view(id: i64, j: &Job) -> RestoreView {
    RestoreView {
        id,
        status: j.status,
        error: j.error.clone(),
        progress: j.progress.snapshot(),
        finished_at: j.finished_at,
        counters: j.counters.snapshot(),
    }
}

/// The routine of a `backup-data-path` of our layout (`<routine>/backup/<ts>/...`).
fn routine_of_path(path: &str) -> Option<String> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    parts
        .windows(2)
        .find(|w| w[1] == "backup" || w[1] == "incremental")
        .map(|w| w[0].to_string())
}

/// Drops finished jobs past their time, then the oldest beyond the cap.
fn prune(jobs: &mut HashMap<i64, Job>) {
    prune_finished(jobs, |j| j.finished);
}

/// Drops finished jobs (`finished` says when each ended) past [`FINISHED_JOB_TTL`], then the
/// oldest beyond [`MAX_FINISHED_JOBS`]. Restore and verify jobs are kept alike.
pub(crate) fn prune_finished<J>(
    jobs: &mut HashMap<i64, J>,
    finished: impl Fn(&J) -> Option<std::time::Instant>,
) {
    jobs.retain(|_, j| finished(j).is_none_or(|f| f.elapsed() < FINISHED_JOB_TTL));
    let mut ended: Vec<(std::time::Instant, i64)> = jobs
        .iter()
        .filter_map(|(id, j)| finished(j).map(|f| (f, *id)))
        .collect();
    if ended.len() > MAX_FINISHED_JOBS {
        ended.sort();
        for (_, id) in &ended[..ended.len() - MAX_FINISHED_JOBS] {
            jobs.remove(id);
        }
    }
}

/// A random positive job id no job in `jobs` has.
pub(crate) fn new_job_id<J>(jobs: &HashMap<i64, J>) -> i64 {
    loop {
        let id = rand::random::<i64>() & i64::MAX;
        if !jobs.contains_key(&id) {
            return id;
        }
    }
}

fn log_progress(id: i64, p: &ProgressSnapshot, c: &CounterSnapshot) {
    tracing::info!(
        job = id,
        records = p.records,
        estimated_total = p.estimated_total,
        percent = p.percent,
        records_per_second = p.records_per_second,
        bytes = p.bytes,
        files = p.files,
        inserted = c.inserted_records,
        estimated_end = p.estimated_end.map(|t| t.to_rfc3339()).unwrap_or_default(),
        "Restore in progress."
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_words_parse_with_aliases() {
        assert_eq!(RestoreStatus::parse("Done"), Some(RestoreStatus::Success));
        assert_eq!(RestoreStatus::parse("FAILED"), Some(RestoreStatus::Failure));
        assert_eq!(
            RestoreStatus::parse("running"),
            Some(RestoreStatus::Running)
        );
        assert_eq!(RestoreStatus::parse("nope"), None);
    }

    fn job(finished: Option<std::time::Instant>) -> Job {
        Job {
            status: RestoreStatus::Success,
            error: None,
            progress: Arc::new(Progress::new(Utc::now())),
            counters: Arc::new(Counters::default()),
            cancel: CancellationToken::new(),
            finished_at: None,
            finished,
            label: "full".into(),
            routine: None,
        }
    }

    #[test]
    fn routines_are_read_from_backup_paths() {
        assert_eq!(
            routine_of_path("daily/backup/1700000000000/data/test"),
            Some("daily".into())
        );
        assert_eq!(routine_of_path("/r/incremental/17/"), Some("r".into()));
        assert_eq!(routine_of_path("some/folder"), None);
    }

    #[test]
    fn finished_jobs_are_bounded() {
        let mut jobs = HashMap::new();
        let now = std::time::Instant::now();
        for i in 0..(MAX_FINISHED_JOBS as i64 + 10) {
            jobs.insert(i, job(Some(now + Duration::from_millis(i as u64))));
        }
        jobs.insert(-1, job(None));
        prune(&mut jobs);
        assert_eq!(jobs.len(), MAX_FINISHED_JOBS + 1);
        assert!(jobs.contains_key(&-1), "running jobs stay");
        assert!(!jobs.contains_key(&0), "the oldest finished go first");
    }
}
