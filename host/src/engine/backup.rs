//! One backup job: one run of a routine, full or incremental.
//!
//! Per namespace, `parallel` workers each run this pipeline:
//! ```text
//! scan (node streams, .asb rendered in the callback) ─batches─▶ file writer thread
//!   (rotation, codec chain) ─chunks─▶ uploader task (parts → storage plugin)
//! ```
//! Both arrows are bounded channels, so storage speed paces the scan and a job holds
//! O(parallel × (batch queue + chunk queue + part)) bytes whatever the backup's size.
//! Data files of every namespace are finished before any `metadata.yaml` is written (see
//! [`super::layout`]); a failed or cancelled job deletes what it wrote, newest first.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use aerospike::{AdminPolicy, Client};
use base64::Engine as _;
use bytes::Bytes;
use chrono::{DateTime, TimeZone, Utc};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::{
    AerospikeCluster, BackupPolicy, BackupRoutine, CompressionMode, Config, EncryptionMode,
    PipelineStep, PluginDefinition, Storage as StorageConfig,
};
use crate::plugins::keys::KeySource;
use crate::plugins::layers::{RetryPolicy, standard_stack};
use crate::plugins::pipeline::LOCAL_STORAGE_PLUGIN;
use crate::plugins::{
    CodecStream, CompressionSpec, EncryptionSpec, Pipeline, Registry, StepSpec, Storage,
    StorageSecrets,
};

use super::EngineError;
use super::asb::{AsbEncoder, EncoderOptions, IndexType, IndexValueType, SecondaryIndex, Udf};
use super::cluster::{self, ScanSlots};
use super::layout::{
    self, BackupKind, BackupMetadata, METADATA_FILE, PIPELINE_FILE, data_file_name,
    metadata_asb_name, namespace_folder,
};
use super::progress::Progress;
use super::scan::{self, EncodedBatch, RateLimiter, ScanRange, ScanSpec};

/// Encoded batches ([`scan::BATCH_BYTES`] each) between a worker's scan and its file writer:
/// enough to ride out a codec stall of a few ms, 256 KiB per worker at most.
const BATCH_CHANNEL_CAPACITY: usize = 4;
/// Encoded chunks between an encoder and its uploader: two, so encoding the next chunk
/// overlaps the upload of the previous one.
const CHUNK_CHANNEL_CAPACITY: usize = 2;
/// Plain `.asb` bytes encoded before they go through the codec chain (DESIGN §3: ~1 MiB).
pub const CHUNK_BYTES: usize = 1024 * 1024;
/// Largest part sent to storage; the runtime's default storage memory limit fits it twice.
const MAX_PART_BYTES: u64 = 16 * 1024 * 1024;
/// Storage calls in flight per job.
const STORAGE_CONCURRENCY: usize = 16;
/// One MB of `file-limit` (asbackup counts MiB).
const FILE_LIMIT_UNIT: u64 = 1024 * 1024;

/// Where "now" comes from; tests inject a fixed clock (D17).
pub trait Clock: Send + Sync + fmt::Debug {
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that moves only when told to.
#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn at_ms(ms: i64) -> Self {
        ManualClock(Mutex::new(
            Utc.timestamp_millis_opt(ms).single().unwrap_or_default(),
        ))
    }

    pub fn set_ms(&self, ms: i64) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) =
            Utc.timestamp_millis_opt(ms).single().unwrap_or_default();
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What every job shares: plugins, the clusters' scan slots, the clock, and the backup
/// timestamps jobs have claimed but not yet written.
pub struct EngineContext {
    /// The default plugins; a job takes its registry from [`EngineContext::plugins_for`].
    pub plugins: Arc<Registry>,
    pub slots: ScanSlots,
    pub clock: Arc<dyn Clock>,
    claimed: Mutex<HashSet<(String, i64)>>,
    /// The registry with the user plugins of the last `plugins:` section seen, keyed by it.
    user_plugins: tokio::sync::Mutex<Option<UserRegistry>>,
}

/// A `plugins:` section and the registry built from it.
type UserRegistry = (BTreeMap<String, PluginDefinition>, Arc<Registry>);

impl fmt::Debug for EngineContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EngineContext")
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

impl EngineContext {
    pub fn new(plugins: Arc<Registry>, clock: Arc<dyn Clock>) -> Self {
        EngineContext {
            plugins,
            slots: ScanSlots::default(),
            clock,
            claimed: Mutex::new(HashSet::new()),
            user_plugins: tokio::sync::Mutex::new(None),
        }
    }

    /// The plugins of a job running with `config`: the defaults, plus the config's
    /// `plugins:` entries when it has any. That registry is built (hash-checked and compiled,
    /// on a blocking thread) once per distinct `plugins:` section and reused until the
    /// section changes; a job keeps the `Arc` it got, so a config change never swaps the
    /// plugins of a running job.
    ///
    /// # Errors
    /// A configured plugin that cannot be read, fails its hash or does not load.
    pub async fn plugins_for(&self, config: &Config) -> Result<Arc<Registry>, EngineError> {
        if config.plugins.is_empty() {
            return Ok(self.plugins.clone());
        }
        let mut cached = self.user_plugins.lock().await;
        if let Some((section, registry)) = cached.as_ref()
            && *section == config.plugins
        {
            return Ok(registry.clone());
        }
        let defaults = self.plugins.clone();
        let user = crate::plugin_check::user_plugin_specs(config);
        let registry = tokio::task::spawn_blocking(move || defaults.with_user_plugins(&user))
            .await
            .map_err(|e| EngineError::Config(format!("plugin loader: {e}")))?
            .map_err(|errs| {
                let errs: Vec<String> = errs.iter().map(ToString::to_string).collect();
                EngineError::Config(format!(
                    "loading the configured plugins: {}",
                    errs.join("; ")
                ))
            })?;
        let registry = Arc::new(registry);
        *cached = Some((config.plugins.clone(), registry.clone()));
        Ok(registry)
    }

    /// True while a running job of `routine` holds the backup folder timestamp `ts_ms`.
    pub fn is_claimed(&self, routine: &str, ts_ms: i64) -> bool {
        self.claimed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&(routine.to_string(), ts_ms))
    }
}

/// A routine with everything it names looked up.
#[derive(Debug, Clone)]
pub struct ResolvedRoutine {
    pub name: String,
    pub routine: BackupRoutine,
    pub policy: BackupPolicy,
    pub cluster_name: String,
    pub cluster: AerospikeCluster,
    pub storage: StorageConfig,
}

/// Looks up `name` and what it refers to in `config`.
///
/// # Errors
/// [`EngineError::Config`] naming what is missing.
pub fn resolve_routine(config: &Config, name: &str) -> Result<ResolvedRoutine, EngineError> {
    let routine = config
        .backup_routines
        .get(name)
        .ok_or_else(|| EngineError::Config(format!("routine {name} not found")))?;
    let policy = match &routine.backup_policy {
        Some(p) => config
            .backup_policies
            .get(p)
            .cloned()
            .ok_or_else(|| EngineError::Config(format!("policy {p} not found")))?,
        None => BackupPolicy::default(),
    };
    let cluster = config
        .aerospike_clusters
        .get(&routine.source_cluster)
        .cloned()
        .ok_or_else(|| {
            EngineError::Config(format!("cluster {} not found", routine.source_cluster))
        })?;
    let storage = config
        .storage
        .get(&routine.storage)
        .cloned()
        .ok_or_else(|| EngineError::Config(format!("storage {} not found", routine.storage)))?;
    Ok(ResolvedRoutine {
        name: name.to_string(),
        routine: routine.clone(),
        policy,
        cluster_name: routine.source_cluster.clone(),
        cluster,
        storage,
    })
}

/// A backend for a storage config, wrapped in the standard retry/concurrency layers.
///
/// # Errors
/// A storage kind without a plugin in this build, or what the plugin reports.
pub fn open_storage(
    plugins: &Registry,
    storage: &StorageConfig,
) -> Result<Arc<dyn Storage>, EngineError> {
    let inner = match storage {
        StorageConfig::LocalStorage(l) => plugins.open_storage(
            LOCAL_STORAGE_PLUGIN,
            &json!({ "path": l.path }),
            StorageSecrets::default(),
        ),
        StorageConfig::PluginStorage(p) => plugins.open_storage(
            &p.plugin,
            &p.options,
            StorageSecrets(
                p.secrets
                    .iter()
                    .map(|(k, v)| (k.clone(), v.expose().to_string()))
                    .collect(),
            ),
        ),
        other => {
            return Err(EngineError::Config(format!(
                "{} has no storage plugin in this build yet",
                other.kind()
            )));
        }
    }
    .map_err(|e| EngineError::plugin("opening storage", e))?;
    Ok(standard_stack(
        inner,
        RetryPolicy::default(),
        STORAGE_CONCURRENCY,
        None,
    ))
}

/// The policy's codec chain, plus the `compression`/`encryption` labels of `metadata.yaml`.
///
/// # Errors
/// An unknown plugin or mode, bad options, or a key that cannot be loaded.
pub fn build_pipeline(
    plugins: &Registry,
    policy: &BackupPolicy,
) -> Result<(Pipeline, &'static str, &'static str), EngineError> {
    let fail = |e| EngineError::plugin("building the codec pipeline", e);
    if let Some(steps) = &policy.pipeline {
        let specs = steps
            .iter()
            .map(|s| pipeline_step(plugins, s))
            .collect::<Vec<_>>();
        return Ok((
            Pipeline::build(plugins, &specs).map_err(fail)?,
            "NONE",
            "NONE",
        ));
    }
    let compression = policy.compression.as_ref().map(|c| CompressionSpec {
        mode: c.mode.as_str().to_string(),
        level: c.level.filter(|l| *l != 0),
    });
    let encryption = policy.encryption.as_ref().map(|e| EncryptionSpec {
        mode: e.mode.as_str().to_string(),
        key: key_source(&e.key_file, &e.key_env, &e.key_secret),
    });
    let pipeline =
        Pipeline::from_policy(plugins, compression.as_ref(), encryption.as_ref()).map_err(fail)?;
    let c = match policy.compression.as_ref().map(|c| c.mode) {
        Some(CompressionMode::Zstd) => "ZSTD",
        _ => "NONE",
    };
    let e = match policy.encryption.as_ref().map(|e| e.mode) {
        Some(EncryptionMode::Aes128) => "AES128",
        Some(EncryptionMode::Aes256) => "AES256",
        _ => "NONE",
    };
    Ok((pipeline, c, e))
}

/// A `pipeline:` entry as a plugin step. The short names `zstd`/`aes` (config docs) name
/// the defaults. The step's key source (`key-file`, `key-env`, `key-secret`) becomes a key
/// handle: the plugin gets the key, never where it lives.
fn pipeline_step(plugins: &Registry, step: &PipelineStep) -> StepSpec {
    let plugin = crate::plugins::pipeline::resolve_plugin_name(plugins, &step.plugin).to_string();
    let key = key_source(&step.key_file, &step.key_env, &step.key_secret);
    StepSpec {
        plugin,
        options: step.options.clone(),
        keys: key.into_iter().collect(),
    }
}

/// The key a policy's `encryption` or a `pipeline:` step names (validation allows one source;
/// the first set one wins here).
fn key_source(
    file: &Option<String>,
    env: &Option<String>,
    secret: &Option<String>,
) -> Option<KeySource> {
    match (file, env, secret) {
        (Some(f), _, _) => Some(KeySource::File(f.into())),
        (None, Some(v), _) => Some(KeySource::Env(v.clone())),
        (None, None, Some(s)) => Some(KeySource::Secret(s.clone())),
        _ => None,
    }
}

/// What one job should do.
#[derive(Debug, Clone)]
pub struct JobSpec {
    pub routine: String,
    pub kind: BackupKind,
    /// The config snapshot the job runs with (a running job keeps it across changes).
    pub config: Arc<Config>,
}

/// One namespace of a finished job.
#[derive(Debug, Clone, PartialEq)]
pub struct NamespaceReport {
    /// The namespace folder; `None` for an empty incremental (nothing kept).
    pub key: Option<String>,
    pub metadata: BackupMetadata,
}

/// What a successful job produced.
#[derive(Debug, Clone, PartialEq)]
pub struct JobReport {
    pub timestamp_ms: i64,
    pub namespaces: Vec<NamespaceReport>,
}

impl JobReport {
    pub fn records(&self) -> u64 {
        self.namespaces
            .iter()
            .map(|n| n.metadata.record_count)
            .sum()
    }
}

/// Keys a job has written (or begun), in order, so a failure can remove them newest first.
#[derive(Debug, Default)]
struct Written(Mutex<Vec<String>>);

impl Written {
    fn push(&self, key: String) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(key);
    }

    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// Runs one backup job to completion.
///
/// # Errors
/// Whatever stopped it; by then the job's files are deleted again.
pub async fn run_job(
    ctx: &EngineContext,
    spec: &JobSpec,
    progress: Arc<Progress>,
    cancel: CancellationToken,
) -> Result<JobReport, EngineError> {
    let r = resolve_routine(&spec.config, &spec.routine)?;
    let plugins = ctx.plugins_for(&spec.config).await?;
    let storage = open_storage(&plugins, &r.storage)?;
    let (pipeline, compression, encryption) = build_pipeline(&plugins, &r.policy)?;
    let sidecar = r
        .policy
        .pipeline
        .is_some()
        .then(|| pipeline_sidecar(&pipeline, &plugins));
    let pipeline = Arc::new(pipeline);

    let from = match spec.kind {
        BackupKind::Full => None,
        BackupKind::Incremental => Some(
            last_backup_created(&storage, &r.name)
                .await?
                .ok_or_else(|| EngineError::Config("no full backup of the routine yet".into()))?,
        ),
    };
    let ts = claim_timestamp(ctx, &storage, &r.name, from).await?;
    let _claim = ClaimGuard {
        ctx,
        key: (r.name.clone(), ts),
    };
    let created = Utc.timestamp_millis_opt(ts).single().unwrap_or_default();
    // A timestamp pushed past "now" by a collision: wait until it is in the past, so the
    // window's upper bound never runs ahead of the writes it must include.
    let ahead = ts - ctx.clock.now().timestamp_millis();
    if ahead > 0 {
        tokio::select! {
            () = tokio::time::sleep(std::time::Duration::from_millis(ahead as u64)) => {}
            () = cancel.cancelled() => return Err(EngineError::Cancelled),
        }
    }

    let client = Arc::new(connect_with_retries(&r, &cancel).await?);
    let written = Arc::new(Written::default());
    let result = run_connected(
        ctx,
        &r,
        spec.kind,
        &client,
        &storage,
        &pipeline,
        Labels {
            compression,
            encryption,
        },
        sidecar.as_deref(),
        Window { from, created, ts },
        &written,
        &progress,
        &cancel,
    )
    .await;
    if let Err(e) = client.close().await {
        tracing::debug!(error = %e, "Closing the cluster client failed.");
    }
    match result {
        Ok(report) => Ok(report),
        Err(e) => {
            remove_written(&storage, written.take()).await;
            Err(e)
        }
    }
}

/// Connects to the routine's cluster, retrying as the policy's `retry-policy` says (ABS: the
/// cluster connection is retried; `max-retries` more attempts, the first after `base-timeout`
/// ms, each further one `multiplier` times later).
async fn connect_with_retries(
    r: &ResolvedRoutine,
    cancel: &CancellationToken,
) -> Result<Client, EngineError> {
    let retry = r.policy.retry_policy();
    let mut delay_ms = retry.base_timeout_ms() as f64;
    let mut attempt = 0;
    loop {
        let outcome = tokio::select! {
            c = cluster::connect(&r.cluster_name, &r.cluster) => c,
            () = cancel.cancelled() => return Err(EngineError::Cancelled),
        };
        match outcome {
            Ok(client) => return Ok(client),
            Err(e) if attempt >= retry.max_retries() => return Err(e),
            Err(e) => {
                attempt += 1;
                tracing::warn!(
                    routine = %r.name,
                    attempt,
                    of = retry.max_retries(),
                    retry_in_ms = delay_ms as u64,
                    error = %e,
                    "Cannot connect to the cluster; retrying."
                );
                tokio::select! {
                    () = tokio::time::sleep(std::time::Duration::from_millis(delay_ms as u64)) => {}
                    () = cancel.cancelled() => return Err(EngineError::Cancelled),
                }
                delay_ms *= retry.multiplier().max(1.0);
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Labels {
    compression: &'static str,
    encryption: &'static str,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    from: Option<DateTime<Utc>>,
    created: DateTime<Utc>,
    ts: i64,
}

struct ClaimGuard<'a> {
    ctx: &'a EngineContext,
    key: (String, i64),
}

impl Drop for ClaimGuard<'_> {
    fn drop(&mut self) {
        self.ctx
            .claimed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.key);
    }
}

/// The newest `created` among the routine's complete backups of either kind.
async fn last_backup_created(
    storage: &Arc<dyn Storage>,
    routine: &str,
) -> Result<Option<DateTime<Utc>>, EngineError> {
    let mut last = None;
    for kind in [BackupKind::Full, BackupKind::Incremental] {
        let found = layout::list_backups(storage, routine, kind)
            .await
            .map_err(|e| EngineError::plugin("listing backups", e))?;
        if kind == BackupKind::Full && found.is_empty() {
            return Ok(None);
        }
        last = found.iter().map(|b| b.metadata.created).chain(last).max();
    }
    Ok(last)
}

/// The job's folder timestamp: start time truncated to seconds, moved to the next free
/// second while the routine already has a folder there (or a running job claimed it), and
/// always after the incremental's lower bound (D17).
async fn claim_timestamp(
    ctx: &EngineContext,
    storage: &Arc<dyn Storage>,
    routine: &str,
    from: Option<DateTime<Utc>>,
) -> Result<i64, EngineError> {
    let mut ts = ctx.clock.now().timestamp() * 1000;
    if let Some(f) = from {
        ts = ts.max((f.timestamp() + 1) * 1000);
    }
    loop {
        let mut taken = ctx
            .claimed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&(routine.to_string(), ts));
        for kind in [BackupKind::Full, BackupKind::Incremental] {
            taken = taken
                || layout::folder_exists(storage, routine, kind, ts)
                    .await
                    .map_err(|e| EngineError::plugin("checking the backup folder", e))?;
        }
        if !taken
            && ctx
                .claimed
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert((routine.to_string(), ts))
        {
            return Ok(ts);
        }
        ts += 1000;
    }
}

fn pipeline_sidecar(pipeline: &Pipeline, plugins: &Registry) -> String {
    let steps: Vec<serde_json::Value> = pipeline
        .describe(plugins)
        .into_iter()
        .map(|s| {
            json!({
                "plugin": s.plugin,
                "version": s.version,
                "sha256": s.sha256,
                "options": serde_json::from_str::<serde_json::Value>(&s.options)
                    .unwrap_or(serde_json::Value::String(s.options)),
            })
        })
        .collect();
    serde_yaml::to_string(&json!({ "pipeline": steps })).unwrap_or_default()
}

#[allow(clippy::too_many_arguments)]
async fn run_connected(
    ctx: &EngineContext,
    r: &ResolvedRoutine,
    kind: BackupKind,
    client: &Arc<Client>,
    storage: &Arc<dyn Storage>,
    pipeline: &Arc<Pipeline>,
    labels: Labels,
    sidecar: Option<&str>,
    window: Window,
    written: &Arc<Written>,
    progress: &Arc<Progress>,
    cancel: &CancellationToken,
) -> Result<JobReport, EngineError> {
    let namespaces = if r.routine.namespaces.is_empty() {
        let all = info_one(client, "namespaces").await?;
        all.split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    } else {
        r.routine.namespaces.clone()
    };
    let racks = r.routine.rack_list.as_deref().unwrap_or_default();
    let mut ranges_by_ns = Vec::new();
    for ns in &namespaces {
        let ranges = if !racks.is_empty() {
            // As backup-go: the racks' nodes, then the partitions those nodes master.
            let nodes = rack_nodes(client, racks, ns).await?;
            node_list_ranges(client, &nodes, ns).await?
        } else if !r.routine.node_list.is_empty() {
            node_list_ranges(client, &r.routine.node_list, ns).await?
        } else {
            scan::split_ranges(r.routine.partition_list.as_deref(), r.policy.parallel())
                .map_err(|m| EngineError::Config(format!("partition-list: {m}")))?
        };
        ranges_by_ns.push(ranges);
    }
    if !r.policy.no_records.unwrap_or(false) {
        for (ns, ranges) in namespaces.iter().zip(&ranges_by_ns) {
            let fraction = ranges.iter().map(ScanRange::partition_count).sum::<u32>() as f64
                / f64::from(scan::PARTITIONS);
            progress.add_estimate((estimate_records(client, ns).await as f64 * fraction) as u64);
        }
    }
    let limiter = RateLimiter::per_second(r.policy.records_per_second.unwrap_or(0));
    // `bandwidth` is MiB/s of stored bytes (ABS 3.2+), enforced as parts go to storage.
    let bandwidth =
        RateLimiter::per_second(r.policy.bandwidth.unwrap_or(0).saturating_mul(1024 * 1024));
    let mut reports = Vec::new();
    for (ns, ranges) in namespaces.iter().zip(&ranges_by_ns) {
        let stats = backup_namespace(
            ctx, r, kind, client, storage, pipeline, window, ns, ranges, &limiter, &bandwidth,
            written, progress, cancel,
        )
        .await?;
        reports.push((ns.clone(), stats));
    }
    if kind == BackupKind::Full && r.policy.with_cluster_configuration.unwrap_or(false) {
        let folder = layout::backup_folder(&r.name, kind, window.ts);
        for (i, text) in cluster_configurations(client, &namespaces)
            .await?
            .into_iter()
            .enumerate()
        {
            let key = format!("{folder}/configuration/aerospike_{i}.conf");
            written.push(key.clone());
            put_object(storage, &key, text.into_bytes()).await?;
        }
    }
    // Every data file is durable: now the sidecars, then the completion markers.
    let finished = ctx.clock.now().max(window.created);
    let mut out = Vec::new();
    for (ns, stats) in reports {
        let folder = namespace_folder(&r.name, kind, window.ts, &ns);
        let metadata = BackupMetadata {
            created: window.created,
            finished: Some(finished),
            from: window.from.unwrap_or_else(layout::zero_time),
            namespace: ns.clone(),
            record_count: stats.records,
            byte_count: stats.bytes,
            file_count: stats.files,
            secondary_index_count: stats.sindexes,
            udf_count: stats.udfs,
            compression: labels.compression.to_string(),
            encryption: labels.encryption.to_string(),
        };
        if kind == BackupKind::Incremental && stats.records == 0 {
            // ABS keeps no empty incrementals; nothing was written for this namespace.
            out.push(NamespaceReport {
                key: None,
                metadata,
            });
            continue;
        }
        if let Some(text) = sidecar {
            let key = format!("{folder}/{PIPELINE_FILE}");
            written.push(key.clone());
            put_object(storage, &key, text.as_bytes().to_vec()).await?;
        }
        let yaml = serde_yaml::to_string(&metadata)
            .map_err(|e| EngineError::Encode(format!("metadata.yaml: {e}")))?;
        let key = format!("{folder}/{METADATA_FILE}");
        written.push(key.clone());
        put_object(storage, &key, yaml.into_bytes()).await?;
        out.push(NamespaceReport {
            key: Some(folder),
            metadata,
        });
    }
    Ok(JobReport {
        timestamp_ms: window.ts,
        namespaces: out,
    })
}

/// Totals of one namespace.
#[derive(Debug, Default, Clone, Copy)]
struct NamespaceStats {
    records: u64,
    bytes: u64,
    files: u64,
    sindexes: u64,
    udfs: u64,
}

impl NamespaceStats {
    fn add(&mut self, o: FileStats) {
        self.records += o.records;
        self.bytes += o.bytes;
        self.files += o.files;
    }
}

#[allow(clippy::too_many_arguments)]
async fn backup_namespace(
    ctx: &EngineContext,
    r: &ResolvedRoutine,
    kind: BackupKind,
    client: &Arc<Client>,
    storage: &Arc<dyn Storage>,
    pipeline: &Arc<Pipeline>,
    window: Window,
    ns: &str,
    ranges: &[ScanRange],
    limiter: &Option<Arc<RateLimiter>>,
    bandwidth: &Option<Arc<RateLimiter>>,
    written: &Arc<Written>,
    progress: &Arc<Progress>,
    cancel: &CancellationToken,
) -> Result<NamespaceStats, EngineError> {
    let folder = namespace_folder(&r.name, kind, window.ts, ns);
    let counter = Arc::new(AtomicU64::new(1));
    let mut stats = NamespaceStats::default();
    let options = EncoderOptions {
        compact: r.policy.compact.unwrap_or(false),
    };

    if kind == BackupKind::Full {
        let udfs = if r.policy.no_udfs.unwrap_or(false) {
            Vec::new()
        } else {
            read_udfs(client).await?
        };
        let sindexes = if r.policy.no_indexes.unwrap_or(false) {
            Vec::new()
        } else {
            read_sindexes(client, ns).await?
        };
        stats.udfs = udfs.len() as u64;
        stats.sindexes = sindexes.len() as u64;
        if !udfs.is_empty() || !sindexes.is_empty() {
            let mut enc = AsbEncoder::new(Vec::new(), options);
            let io = |e: std::io::Error| EngineError::Encode(e.to_string());
            enc.write_header(ns).map_err(io)?;
            enc.write_first_file().map_err(io)?;
            // backup-go order: UDFs, then indexes (an index may need no UDF, but restore
            // applies them in file order either way).
            for u in &udfs {
                enc.write_udf(u).map_err(io)?;
            }
            for s in &sindexes {
                enc.write_sindex(s).map_err(io)?;
            }
            let plain = enc.into_inner();
            let p = pipeline.clone();
            let stored = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, EngineError> {
                let mut codec = p
                    .encoder()
                    .map_err(|e| EngineError::plugin("starting the codec chain", e))?;
                let mut out = codec
                    .push(&plain)
                    .map_err(|e| EngineError::plugin("encoding", e))?;
                out.extend(
                    codec
                        .finish()
                        .map_err(|e| EngineError::plugin("encoding", e))?,
                );
                Ok(out)
            })
            .await
            .map_err(|e| EngineError::Encode(format!("encoder thread: {e}")))??;
            let key = format!(
                "{folder}/{}",
                metadata_asb_name(ns, counter.fetch_add(1, Ordering::Relaxed))
            );
            stats.bytes += stored.len() as u64;
            stats.files += 1;
            progress.add_bytes(stored.len() as u64);
            progress.add_file();
            written.push(key.clone());
            put_object(storage, &key, stored).await?;
        }
    }
    if r.policy.no_records.unwrap_or(false) {
        return Ok(stats);
    }

    let sets = &r.routine.set_list;
    let spec = Arc::new(ScanSpec {
        namespace: ns.to_string(),
        set: if sets.len() == 1 {
            sets[0].clone()
        } else {
            String::new()
        },
        bins: (!r.routine.bin_list.is_empty()).then(|| r.routine.bin_list.clone()),
        filter: scan::filter_expression(
            r.routine.filter_exp.as_deref(),
            sets,
            window.from.map(|f| f.timestamp_millis()),
            match kind {
                BackupKind::Incremental => Some(window.created.timestamp_millis()),
                BackupKind::Full => r
                    .policy
                    .sealed
                    .unwrap_or(false)
                    .then(|| window.created.timestamp_millis()),
            },
        )
        .map_err(EngineError::Config)?,
        socket_timeout_ms: u32::try_from(r.policy.socket_timeout_ms()).unwrap_or(u32::MAX),
        total_timeout_ms: u32::try_from(r.policy.total_timeout.unwrap_or(0)).unwrap_or(u32::MAX),
        prefer_rack: r
            .cluster
            .prefer_racks
            .as_ref()
            .is_some_and(|p| !p.is_empty()),
        max_concurrent_nodes: r.policy.max_concurrent_nodes.unwrap_or(0) as usize,
        compress: r.policy.use_scan_compression.unwrap_or(false),
        encoder: options,
        resume_attempts: r.policy.retry_policy().max_retries(),
    });
    let workers = (r.policy.parallel().max(1) as usize)
        .min(ranges.len())
        .max(1);
    let queue = Arc::new(Mutex::new(ranges.iter().cloned().collect::<VecDeque<_>>()));
    let slots = ctx.slots.for_cluster(&r.cluster_name, &r.cluster);
    let file_limit = r.policy.file_limit_mb().max(1) * FILE_LIMIT_UNIT;
    // A part is sent once it reaches `part_size`, so it can be up to one chunk larger.
    let part_size = storage
        .capabilities()
        .min_part_size
        .clamp(CHUNK_BYTES as u64, MAX_PART_BYTES - CHUNK_BYTES as u64);
    // A failing stage cancels the others of this namespace; the job's token cancels all.
    let stop = cancel.child_token();

    let mut scans = tokio::task::JoinSet::new();
    let mut encoders = tokio::task::JoinSet::new();
    let mut uploaders = tokio::task::JoinSet::new();
    for w in 0..workers {
        let (rec_tx, rec_rx) = mpsc::channel::<EncodedBatch>(BATCH_CHANNEL_CAPACITY);
        let (chunk_tx, chunk_rx) = mpsc::channel::<FileMsg>(CHUNK_CHANNEL_CAPACITY);
        scans.spawn(scan::run_worker(
            client.clone(),
            spec.clone(),
            queue.clone(),
            slots.clone(),
            limiter.clone(),
            rec_tx,
            progress.clone(),
            stop.clone(),
        ));
        let writer = FileWriter {
            namespace: ns.to_string(),
            folder: folder.clone(),
            worker: w,
            counter: counter.clone(),
            file_limit,
            chunk_bytes: (CHUNK_BYTES as u64).min(file_limit) as usize,
            pipeline: pipeline.clone(),
            options,
            tx: chunk_tx,
            progress: progress.clone(),
            current: None,
            stats: FileStats::default(),
        };
        let runtime = tokio::runtime::Handle::current();
        encoders.spawn_blocking(move || writer.run(runtime, rec_rx));
        uploaders.spawn(upload_files(
            storage.clone(),
            chunk_rx,
            part_size,
            bandwidth.clone(),
            written.clone(),
            progress.clone(),
        ));
    }
    let mut first_error: Option<EngineError> = None;
    let mut note = |e: EngineError, stop: &CancellationToken| {
        stop.cancel();
        // The root cause wins over the cancellations it set off.
        if first_error
            .as_ref()
            .is_none_or(|f| matches!(f, EngineError::Cancelled))
        {
            first_error = Some(e);
        }
    };
    while let Some(r) = scans.join_next().await {
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => note(e, &stop),
            Err(e) => note(
                EngineError::Scan {
                    namespace: ns.to_string(),
                    message: format!("scan task: {e}"),
                },
                &stop,
            ),
        }
    }
    while let Some(r) = encoders.join_next().await {
        match r {
            Ok(Ok(s)) => stats.add(s),
            Ok(Err(e)) => note(e, &stop),
            Err(e) => note(EngineError::Encode(format!("encoder thread: {e}")), &stop),
        }
    }
    while let Some(r) = uploaders.join_next().await {
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => note(e, &stop),
            Err(e) => note(EngineError::Encode(format!("upload task: {e}")), &stop),
        }
    }
    if cancel.is_cancelled() {
        return Err(EngineError::Cancelled);
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(stats),
    }
}

/// What an encoder hands its uploader.
#[derive(Debug)]
enum FileMsg {
    /// Start object `key`.
    Begin(String),
    /// Stored (post-codec) bytes of the current object.
    Data(Vec<u8>),
    /// The current object is complete.
    End,
}

/// Per-writer totals.
#[derive(Debug, Default, Clone, Copy)]
struct FileStats {
    records: u64,
    /// Stored bytes, after the codec chain.
    bytes: u64,
    files: u64,
}

struct OpenFile {
    encoder: AsbEncoder<Vec<u8>>,
    codec: Box<dyn CodecStream>,
    /// Stored bytes of this file so far.
    stored: u64,
}

/// One worker's file writer: appends encoded records, runs the codec chain and rotates files
/// at `file-limit`. Runs on a blocking thread: the codecs are CPU work.
struct FileWriter {
    namespace: String,
    folder: String,
    worker: usize,
    /// Per-namespace file number, shared by the workers (backup-go numbering from 1).
    counter: Arc<AtomicU64>,
    file_limit: u64,
    chunk_bytes: usize,
    pipeline: Arc<Pipeline>,
    options: EncoderOptions,
    tx: mpsc::Sender<FileMsg>,
    progress: Arc<Progress>,
    current: Option<OpenFile>,
    stats: FileStats,
}

impl FileWriter {
    fn run(
        mut self,
        runtime: tokio::runtime::Handle,
        mut rx: mpsc::Receiver<EncodedBatch>,
    ) -> Result<FileStats, EngineError> {
        while let Some(batch) = runtime.block_on(rx.recv()) {
            self.write_batch(&batch)?;
        }
        self.close_file()?;
        Ok(self.stats)
    }

    /// Appends a batch, as many records at a time as the current file takes. asbackup checks
    /// the limit before each record, so a file may pass it by one record; so do we.
    fn write_batch(&mut self, batch: &EncodedBatch) -> Result<(), EngineError> {
        let ends = &batch.ends;
        let (mut i, mut start) = (0, 0usize);
        while i < ends.len() {
            if let Some(f) = &self.current
                && f.stored + f.encoder.buffered_len() as u64 >= self.file_limit
            {
                self.close_file()?;
            }
            if self.current.is_none() {
                self.open_file()?;
            }
            let f = self.current.as_mut().expect("a file is open");
            let room = self.file_limit - (f.stored + f.encoder.buffered_len() as u64);
            // Record i goes in; each next one while the bytes before it stay under the limit.
            let mut j = i + 1;
            while j < ends.len() && ((ends[j - 1] as usize - start) as u64) < room {
                j += 1;
            }
            let end = ends[j - 1] as usize;
            let n = (j - i) as u64;
            f.encoder
                .write_encoded(&batch.bytes[start..end], n)
                .map_err(|e| EngineError::Encode(e.to_string()))?;
            // Progress counted these records as the scan encoded them.
            self.stats.records += n;
            if f.encoder.buffered_len() >= self.chunk_bytes {
                self.flush_chunk()?;
            }
            (i, start) = (j, end);
        }
        Ok(())
    }

    fn open_file(&mut self) -> Result<(), EngineError> {
        let k = self.counter.fetch_add(1, Ordering::Relaxed);
        let key = format!(
            "{}/{}",
            self.folder,
            data_file_name(self.worker, &self.namespace, k)
        );
        let codec = self
            .pipeline
            .encoder()
            .map_err(|e| EngineError::plugin("starting the codec chain", e))?;
        let mut encoder = AsbEncoder::new(
            Vec::with_capacity(self.chunk_bytes + 64 * 1024),
            self.options,
        );
        encoder
            .write_header(&self.namespace)
            .map_err(|e| EngineError::Encode(e.to_string()))?;
        self.send(FileMsg::Begin(key))?;
        self.current = Some(OpenFile {
            encoder,
            codec,
            stored: 0,
        });
        Ok(())
    }

    fn flush_chunk(&mut self) -> Result<(), EngineError> {
        let Some(f) = self.current.as_mut() else {
            return Ok(());
        };
        let out = if self.pipeline.is_empty() {
            // Nothing to transform: the encoded buffer itself goes to storage, uncopied.
            f.encoder.take_buffer()
        } else {
            let out = f
                .codec
                .push(f.encoder.get_ref())
                .map_err(|e| EngineError::plugin("encoding", e))?;
            // The plain buffer is reused for the next chunk: no fresh pages per chunk.
            f.encoder.get_mut().clear();
            out
        };
        f.stored += out.len() as u64;
        if !out.is_empty() {
            self.emit(out)?;
        }
        Ok(())
    }

    fn close_file(&mut self) -> Result<(), EngineError> {
        if self.current.is_none() {
            return Ok(());
        }
        self.flush_chunk()?;
        let mut f = self.current.take().expect("checked above");
        let tail = f
            .codec
            .finish()
            .map_err(|e| EngineError::plugin("encoding", e))?;
        if !tail.is_empty() {
            self.emit(tail)?;
        }
        self.stats.files += 1;
        self.send(FileMsg::End)
    }

    fn emit(&mut self, data: Vec<u8>) -> Result<(), EngineError> {
        self.stats.bytes += data.len() as u64;
        self.progress.add_bytes(data.len() as u64);
        self.send(FileMsg::Data(data))
    }

    fn send(&self, msg: FileMsg) -> Result<(), EngineError> {
        // A closed channel means the uploader failed; it reports why.
        self.tx
            .blocking_send(msg)
            .map_err(|_| EngineError::Cancelled)
    }
}

/// An object being uploaded: key, upload, next part number, bytes not yet sent.
type OpenUpload = (String, Box<dyn crate::plugins::Upload>, u32, Vec<u8>);

/// Writes the objects an encoder streams, in parts of `part_size`. An object left without
/// its `End` (the encoder failed) is aborted.
async fn upload_files(
    storage: Arc<dyn Storage>,
    mut rx: mpsc::Receiver<FileMsg>,
    part_size: u64,
    bandwidth: Option<Arc<RateLimiter>>,
    written: Arc<Written>,
    progress: Arc<Progress>,
) -> Result<(), EngineError> {
    let part_size = part_size as usize;
    let mut current: Option<OpenUpload> = None;
    let result: Result<(), EngineError> = async {
        while let Some(msg) = rx.recv().await {
            match msg {
                FileMsg::Begin(key) => {
                    let up = storage
                        .begin_upload(&key, None)
                        .await
                        .map_err(|e| EngineError::plugin(format!("writing {key}"), e))?;
                    written.push(key.clone());
                    current = Some((key, up, 1, Vec::with_capacity(part_size)));
                }
                FileMsg::Data(data) => {
                    let Some((key, up, part, buf)) = current.as_mut() else {
                        return Err(EngineError::Encode("data outside a file".into()));
                    };
                    // Parts may exceed `part_size` by one chunk (only a minimum matters to
                    // stores); in exchange a chunk is moved, never copied, when it starts a part.
                    if buf.is_empty() {
                        *buf = data;
                    } else {
                        buf.extend_from_slice(&data);
                    }
                    if buf.len() >= part_size {
                        let full = std::mem::take(buf);
                        if let Some(b) = &bandwidth {
                            b.acquire_n(full.len() as u64).await;
                        }
                        up.write_part(*part, Bytes::from(full))
                            .await
                            .map_err(|e| EngineError::plugin(format!("writing {key}"), e))?;
                        *part += 1;
                    }
                }
                FileMsg::End => {
                    let Some((key, mut up, part, buf)) = current.take() else {
                        return Err(EngineError::Encode("end outside a file".into()));
                    };
                    if !buf.is_empty() || part == 1 {
                        if let Some(b) = &bandwidth {
                            b.acquire_n(buf.len() as u64).await;
                        }
                        up.write_part(part, Bytes::from(buf))
                            .await
                            .map_err(|e| EngineError::plugin(format!("writing {key}"), e))?;
                    }
                    up.finish()
                        .await
                        .map_err(|e| EngineError::plugin(format!("finishing {key}"), e))?;
                    progress.add_file();
                }
            }
        }
        Ok(())
    }
    .await;
    if let Some((key, mut up, ..)) = current.take()
        && let Err(e) = up.abort().await
    {
        tracing::warn!(key = %key, error = %e, "Aborting an unfinished upload failed.");
    }
    result
}

/// Writes a small object in one part.
async fn put_object(
    storage: &Arc<dyn Storage>,
    key: &str,
    data: Vec<u8>,
) -> Result<(), EngineError> {
    let fail = |e| EngineError::plugin(format!("writing {key}"), e);
    let mut up = storage
        .begin_upload(key, Some(data.len() as u64))
        .await
        .map_err(fail)?;
    if let Err(e) = up.write_part(1, Bytes::from(data)).await {
        let _ = up.abort().await;
        return Err(fail(e));
    }
    up.finish().await.map_err(fail)?;
    Ok(())
}

/// Deletes a failed job's objects, newest first (so `metadata.yaml` goes before data).
async fn remove_written(storage: &Arc<dyn Storage>, keys: Vec<String>) {
    for key in keys.into_iter().rev() {
        if let Err(e) = storage.delete(&key).await {
            tracing::warn!(key = %key, error = %e, "Could not remove a file of a failed backup.");
        }
    }
}

async fn info_one(client: &Client, command: &str) -> Result<String, EngineError> {
    let map = client
        .info(&AdminPolicy::default(), &[command])
        .await
        .map_err(|e| EngineError::Cluster {
            cluster: String::new(),
            message: format!("info {command}: {e}"),
        })?;
    // Servers echo the command as sent; take the only answer if the echo differs.
    Ok(map
        .get(command)
        .or_else(|| map.values().next().filter(|_| map.len() == 1))
        .cloned()
        .unwrap_or_default())
}

/// `key=value` pairs separated by `sep`.
fn info_fields(text: &str, sep: char) -> impl Iterator<Item = (&str, &str)> {
    text.split(sep)
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim()))
}

/// The partitions of `ns` mastered by the nodes of `node-list` (D18), as scan ranges. An
/// entry names a node by id or by `host:port` as the client sees it.
/// The node names of `racks` for `namespace`, from the cluster's `racks:` answer
/// (`ns=<ns>:rack_<id>=<node>,<node>:...;ns=...`).
async fn rack_nodes(
    client: &Client,
    racks: &[u32],
    namespace: &str,
) -> Result<Vec<String>, EngineError> {
    let answer = info_one(client, "racks:").await?;
    let nodes = scan::rack_nodes(&answer, racks, namespace)
        .map_err(|m| EngineError::Config(format!("rack-list: {m}")))?;
    tracing::info!(
        namespace,
        ?racks,
        ?nodes,
        "rack-list: backing up the partitions these nodes master."
    );
    Ok(nodes)
}

async fn node_list_ranges(
    client: &Client,
    node_list: &[String],
    ns: &str,
) -> Result<Vec<ScanRange>, EngineError> {
    let nodes = client.nodes();
    let mut partitions = Vec::new();
    for wanted in node_list {
        let wanted = wanted.trim();
        let node = nodes
            .iter()
            .find(|n| {
                let h = n.host();
                n.name() == wanted || format!("{}:{}", h.name, h.port) == wanted
            })
            .ok_or_else(|| {
                EngineError::Config(format!("node-list: node {wanted} is not in the cluster"))
            })?;
        let answer = node
            .info(&AdminPolicy::default(), &["replicas"])
            .await
            .map_err(|e| EngineError::Cluster {
                cluster: String::new(),
                message: format!("info replicas on {wanted}: {e}"),
            })?;
        let text = answer.get("replicas").cloned().unwrap_or_default();
        partitions.extend(
            scan::mastered_partitions(&text, ns)
                .map_err(|m| EngineError::Config(format!("node-list: {m}")))?,
        );
    }
    partitions.sort_unstable();
    partitions.dedup();
    Ok(scan::ranges_of(&partitions))
}

/// Each node's configuration (`get-config`), rendered as `aerospike.conf` text, in node
/// name order (`aerospike_<i>.conf`, as ABS numbers them).
async fn cluster_configurations(
    client: &Client,
    namespaces: &[String],
) -> Result<Vec<String>, EngineError> {
    let mut nodes = client.nodes();
    nodes.sort_by(|a, b| a.name().cmp(b.name()));
    let mut out = Vec::new();
    for node in nodes {
        let mut stanzas = Vec::new();
        let mut contexts: Vec<(String, String)> = ["service", "network", "security"]
            .iter()
            .map(|c| (c.to_string(), format!("get-config:context={c}")))
            .collect();
        contexts.extend(namespaces.iter().map(|ns| {
            (
                format!("namespace {ns}"),
                format!("get-config:context=namespace;id={ns}"),
            )
        }));
        for (stanza, cmd) in contexts {
            let answer = node
                .info(&AdminPolicy::default(), &[cmd.as_str()])
                .await
                .map_err(|e| EngineError::Cluster {
                    cluster: String::new(),
                    message: format!("info {cmd} on {}: {e}", node.name()),
                })?;
            let text = answer.get(&cmd).cloned().unwrap_or_default();
            if !text.starts_with("ERROR") && !text.is_empty() {
                stanzas.push((stanza, text));
            }
        }
        out.push(cluster::render_config(&stanzas));
    }
    Ok(out)
}

/// Records of `ns` over the cluster (sum of `master_objects`), or 0 if unknown. Only an
/// estimate for progress: failures are logged, not fatal.
async fn estimate_records(client: &Client, ns: &str) -> u64 {
    let cmd = format!("namespace/{ns}");
    let mut total = 0;
    for node in client.nodes() {
        match node.info(&AdminPolicy::default(), &[cmd.as_str()]).await {
            Ok(map) => {
                let text = map.get(&cmd).cloned().unwrap_or_default();
                let mut master = None;
                let mut objects = None;
                for (k, v) in info_fields(&text, ';') {
                    match k {
                        "master_objects" => master = v.parse::<u64>().ok(),
                        "objects" => objects = v.parse::<u64>().ok(),
                        _ => {}
                    }
                }
                total += master.or(objects).unwrap_or(0);
            }
            Err(e) => tracing::debug!(error = %e, "Namespace statistics unavailable."),
        }
    }
    total
}

/// The secondary indexes of `ns` (`sindex-list`).
async fn read_sindexes(client: &Client, ns: &str) -> Result<Vec<SecondaryIndex>, EngineError> {
    // `b64=true` makes servers report CDT contexts in base64, as the `* i` line stores them.
    let text = info_one(client, &format!("sindex-list:ns={ns};b64=true")).await?;
    let mut out = Vec::new();
    for entry in text.split(';').map(str::trim).filter(|e| !e.is_empty()) {
        let field = |name: &str| {
            info_fields(entry, ':')
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
                .filter(|v| !v.is_empty() && v != "NULL")
        };
        let (Some(name), Some(bin)) = (field("indexname"), field("bin")) else {
            continue;
        };
        if field("ns").or(field("namespace")).is_some_and(|n| n != ns) {
            continue;
        }
        let value_type = match field("type")
            .unwrap_or_default()
            .to_ascii_uppercase()
            .as_str()
        {
            "STRING" | "TEXT" => IndexValueType::String,
            "NUMERIC" | "INT SIGNED" => IndexValueType::Numeric,
            "GEO2DSPHERE" | "GEOJSON" => IndexValueType::Geo,
            "BLOB" => IndexValueType::Blob,
            other => {
                return Err(EngineError::Encode(format!(
                    "secondary index {name}: unknown type {other:?}"
                )));
            }
        };
        let index_type = match field("indextype")
            .unwrap_or_default()
            .to_ascii_uppercase()
            .as_str()
        {
            "" | "NONE" | "DEFAULT" => IndexType::Default,
            "LIST" => IndexType::List,
            "MAPKEYS" => IndexType::MapKeys,
            "MAPVALUES" => IndexType::MapValues,
            other => {
                return Err(EngineError::Encode(format!(
                    "secondary index {name}: unknown index type {other:?}"
                )));
            }
        };
        out.push(SecondaryIndex {
            namespace: ns.to_string(),
            set: field("set"),
            name,
            index_type,
            bin,
            value_type,
            context: field("context"),
            expression: field("exp"),
        });
    }
    Ok(out)
}

/// Every registered UDF module with its source.
async fn read_udfs(client: &Client) -> Result<Vec<Udf>, EngineError> {
    let list = info_one(client, "udf-list").await?;
    let mut out = Vec::new();
    for entry in list.split(';').map(str::trim).filter(|e| !e.is_empty()) {
        let Some(name) = info_fields(entry, ',')
            .find(|(k, _)| *k == "filename")
            .map(|(_, v)| v.to_string())
        else {
            continue;
        };
        let cmd = format!("udf-get:filename={name}");
        let text = info_one(client, &cmd).await?;
        let content = info_fields(&text, ';')
            .find(|(k, _)| *k == "content")
            .map(|(_, v)| v.to_string())
            .ok_or_else(|| EngineError::Encode(format!("UDF {name}: no content in {cmd}")))?;
        let content = base64::engine::general_purpose::STANDARD
            .decode(content)
            .map_err(|e| EngineError::Encode(format!("UDF {name}: {e}")))?;
        out.push(Udf { name, content });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_fields_split_pairs() {
        let v: Vec<_> = info_fields("a=1;b=2;junk;c=x=y", ';').collect();
        assert_eq!(v, vec![("a", "1"), ("b", "2"), ("c", "x=y")]);
    }

    #[test]
    fn manual_clock_is_settable() {
        let c = ManualClock::at_ms(1_000);
        assert_eq!(c.now().timestamp_millis(), 1_000);
        c.set_ms(5_500);
        assert_eq!(c.now().timestamp_millis(), 5_500);
    }
}
