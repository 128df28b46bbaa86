//! One restore job: backup folders → destination cluster. Orchestration only: planning
//! (which folders, which files, which codecs) happens before the job starts, so a request
//! that cannot work is refused with the field to fix; the job then reads
//! ([`crate::storage::files::FileReader`]) and writes ([`crate::aerospike::writer::RecordWriter`]).
//!
//! ```text
//! per folder, in order (a full, then its incrementals):
//!   metadata_*.asb(33) files first, then the data files, `parallel` at a time:
//!   download task ─chunks─▶ decoder thread (codecs, .asb) ─record batches─▶ writer tasks
//! then, after every folder: the secondary indexes
//! ```
//! Channels are bounded, so the cluster's write speed paces the reads; a job holds
//! O(parallel × (2 chunks + 2 batches) + max-async-batches × batch) whatever the backup's size,
//! and its records read but not yet written stay within [`IN_FLIGHT_BYTES`].
//!
//! Length: the plans (folder and point in time) and the pipeline that runs them share the
//! folder types and the channel sizes above; the writes themselves are in
//! `crate::aerospike::writer`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aerospike::Client;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::{
    AerospikeCluster, CompressionMode, Config, EncryptionMode, RestorePolicy, RetryPolicy,
    Storage as StorageConfig,
};
use crate::plugins::{Pipeline, Registry, StepSpec, Storage};

use crate::aerospike::scan::RateLimiter;
use crate::aerospike::writer::{Counters, RecordWriter, WriteRules};
use crate::asb::{AsbItem, AsbRecord, SecondaryIndex};
use crate::error::EngineError;
use crate::error::FirstError;
use crate::jobs::context::EngineContext;
use crate::progress::Progress;
use crate::secrets::ResolvedKeys;
use crate::storage::files::{FileReader, ReadError};
use crate::storage::layout::{self, BackupKind, BackupMetadata, METADATA_FILE, PipelineStepRecord};
use crate::storage::wiring::{self, key_source};

/// Record batches waiting for a writer, per file being read: two, so a reader decodes the
/// next batch while its last one is being written.
const BATCHES_PER_READER: usize = 2;

/// Bytes of records (by [`AsbRecord::approx_bytes`]) read but not yet written, per job.
/// `max-async-batches` bounds batches, not bytes: with 4 KiB records its 128 batches held
/// ~230 MiB, and with 1 MiB records they would hold gigabytes. A batch larger than the whole
/// budget still goes, alone.
pub const IN_FLIGHT_BYTES: usize = 32 << 20;
/// The budget's unit: a semaphore permit per KiB.
const BUDGET_UNIT: usize = 1024;
/// Largest `metadata.yaml` / `pipeline.yaml` read.
const MAX_SIDECAR_BYTES: u64 = 1024 * 1024;

/// Why a request cannot be served: the field to fix and what is wrong (400).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct RequestError {
    pub field: String,
    pub message: String,
}

impl RequestError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        RequestError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// One backup folder (one namespace of one backup) to restore.
#[derive(Debug, Clone)]
pub struct FolderPlan {
    /// The namespace folder.
    pub key: String,
    pub kind: BackupKind,
    /// `None` for a folder written by asbackup (no `metadata.yaml`).
    pub metadata: Option<BackupMetadata>,
    /// From the `pipeline.yaml` sidecar.
    pub pipeline: Option<Vec<PipelineStepRecord>>,
    /// `metadata_*.asb` first, then the data files, each group in key order.
    pub files: Vec<String>,
    /// Size and SHA-256 of each file by key, from `checksums.yaml` (none for asbackup's and
    /// older backups): a file that differs is refused before any of its records is written.
    pub checksums: std::collections::HashMap<String, crate::jobs::integrity::FileSum>,
}

/// A checked restore: where from, where to, what, how.
#[derive(Debug, Clone)]
pub struct RestorePlan {
    /// Names the job in logs (`full`, `incremental`, `timestamp`).
    pub label: String,
    pub cluster_name: String,
    pub cluster: AerospikeCluster,
    pub storage: StorageConfig,
    pub policy: RestorePolicy,
    /// Restored in this order.
    pub folders: Vec<FolderPlan>,
    /// The config snapshot the job runs with (its plugins).
    pub config: Arc<Config>,
    /// `key-secret` material asked of the Secret Agent when the request was accepted;
    /// `cluster` and `storage` hold their resolved credentials likewise.
    pub keys: ResolvedKeys,
}

impl RestorePlan {
    /// Records the backups hold, for progress.
    pub fn estimated_records(&self) -> u64 {
        self.folders
            .iter()
            .filter_map(|f| f.metadata.as_ref().map(|m| m.record_count))
            .sum()
    }

    /// The namespaces the restore writes to (after mapping).
    pub fn destination_namespaces(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .folders
            .iter()
            .filter_map(|f| {
                f.metadata
                    .as_ref()
                    .map(|m| m.namespace.clone())
                    .or_else(|| f.key.rsplit('/').next().map(str::to_string))
            })
            .map(|ns| match &self.policy.namespace {
                Some(m) if m.source == ns => m.destination.clone(),
                _ => ns,
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

/// True for a folder of our (ABS 3.x) layout: `<routine>/<backup|incremental>/<ts>[/data[/<ns>]]`.
/// Such folders are complete only with their `metadata.yaml`.
fn layout_kind(key: &str) -> Option<BackupKind> {
    let parts: Vec<&str> = key.trim_matches('/').split('/').collect();
    if parts.len() < 3 || parts.len() > 5 {
        return None;
    }
    let kind = match parts[1] {
        "backup" => BackupKind::Full,
        "incremental" => BackupKind::Incremental,
        _ => return None,
    };
    let ts_ok = parts[2]
        .split('_')
        .next()
        .is_some_and(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()));
    let data_ok = parts.get(3).is_none_or(|d| *d == "data");
    (ts_ok && data_ok).then_some(kind)
}

/// The folders under `backup-data-path`: the path itself when it holds `.asb` files, else
/// each namespace folder under it (a whole backup folder `<ts>` or `<ts>/data`). A folder
/// of our layout without `metadata.yaml` is incomplete and refused (ABS 3.5+); a foreign
/// folder (asbackup's output copied to storage) is taken as it is.
///
/// # Errors
/// [`RequestError`] on `backup-data-path` when nothing restorable is there.
pub async fn plan_path(
    storage: &Arc<dyn Storage>,
    path: &str,
) -> Result<Vec<FolderPlan>, RequestError> {
    let field = "backup-data-path";
    let path = path.trim_matches('/');
    if path.is_empty() || path.split('/').any(|p| p == "..") {
        return Err(RequestError::new(field, "a backup folder is required"));
    }
    let keys = layout::list_keys(storage, &format!("{path}/"))
        .await
        .map_err(|e| RequestError::new(field, format!("cannot list {path}: {e}")))?;
    if keys.is_empty() {
        return Err(RequestError::new(field, format!("no backup at {path}")));
    }
    // Group by the folder that directly holds each `.asb` / metadata file.
    let mut folders: Vec<String> = keys
        .iter()
        .filter(|k| k.ends_with(".asb") || k.ends_with(&format!("/{METADATA_FILE}")))
        .filter_map(|k| k.rsplit_once('/').map(|(d, _)| d.to_string()))
        .filter(|d| !d.ends_with("/configuration"))
        .collect();
    folders.sort();
    folders.dedup();
    if folders.is_empty() {
        return Err(RequestError::new(
            field,
            format!("no .asb files under {path}"),
        ));
    }
    let mut out = Vec::new();
    for folder in folders {
        out.push(plan_folder(storage, &folder, &keys).await?);
    }
    Ok(out)
}

async fn plan_folder(
    storage: &Arc<dyn Storage>,
    folder: &str,
    keys: &[String],
) -> Result<FolderPlan, RequestError> {
    let field = "backup-data-path";
    let in_folder = |k: &&String| k.rsplit_once('/').is_some_and(|(d, _)| d == folder);
    let names: Vec<&String> = keys.iter().filter(in_folder).collect();
    let has = |name: &str| names.iter().any(|k| k.ends_with(&format!("/{name}")));
    let kind = layout_kind(folder);
    let metadata = if has(METADATA_FILE) {
        let bytes = layout::read_object(
            storage,
            &format!("{folder}/{METADATA_FILE}"),
            MAX_SIDECAR_BYTES,
        )
        .await
        .map_err(|e| RequestError::new(field, format!("{folder}: {e}")))?;
        Some(
            serde_yaml::from_slice::<BackupMetadata>(&bytes)
                .map_err(|e| RequestError::new(field, format!("{folder}/{METADATA_FILE}: {e}")))?,
        )
    } else if kind.is_some() {
        return Err(RequestError::new(
            field,
            format!("{folder} is not a complete backup (no {METADATA_FILE})"),
        ));
    } else {
        None
    };
    let pipeline = if has(layout::PIPELINE_FILE) {
        let bytes = layout::read_object(
            storage,
            &format!("{folder}/{}", layout::PIPELINE_FILE),
            MAX_SIDECAR_BYTES,
        )
        .await
        .map_err(|e| RequestError::new(field, format!("{folder}: {e}")))?;
        Some(
            serde_yaml::from_slice::<layout::PipelineSidecar>(&bytes)
                .map_err(|e| {
                    RequestError::new(field, format!("{folder}/{}: {e}", layout::PIPELINE_FILE))
                })?
                .pipeline,
        )
    } else {
        None
    };
    let mut files: Vec<String> = names
        .iter()
        .filter(|k| k.ends_with(".asb") || k.ends_with(layout::EXTENDED_ASB_SUFFIX))
        .map(|k| k.to_string())
        .collect();
    // System files first (UDFs before records); the sort is stable within each group.
    files.sort_by_key(|k| {
        let name = k.rsplit('/').next().unwrap_or_default();
        (!name.starts_with("metadata_"), k.clone())
    });
    let owned: Vec<String> = names.iter().map(|k| k.to_string()).collect();
    let checksums = crate::jobs::integrity::read_checksums(storage, folder, &owned)
        .await
        .map_err(|e| RequestError::new(field, e))?
        .map(|s| {
            s.files
                .into_iter()
                .map(|f| (format!("{folder}/{}", f.name), f))
                .collect()
        })
        .unwrap_or_default();
    Ok(FolderPlan {
        key: folder.to_string(),
        kind: kind.unwrap_or(BackupKind::Full),
        metadata,
        pipeline,
        files,
        checksums,
    })
}

/// Point in time (ABS): per namespace, the newest complete full backup created before
/// `time`, then that namespace's incrementals with `full.created <= created < time`, in
/// order.
///
/// # Errors
/// [`RequestError`] on `time` when no full backup precedes it.
pub async fn plan_timestamp(
    storage: &Arc<dyn Storage>,
    routine: &str,
    time_ms: i64,
) -> Result<Vec<FolderPlan>, RequestError> {
    let listing = |e: crate::plugins::PluginError| {
        RequestError::new(
            "routine",
            format!("cannot list the backups of {routine}: {e}"),
        )
    };
    let fulls = layout::list_backups(storage, routine, BackupKind::Full)
        .await
        .map_err(listing)?;
    let incs = layout::list_backups(storage, routine, BackupKind::Incremental)
        .await
        .map_err(listing)?;
    let mut namespaces: Vec<&str> = fulls
        .iter()
        .map(|b| b.metadata.namespace.as_str())
        .collect();
    namespaces.sort_unstable();
    namespaces.dedup();
    let mut chosen = Vec::new();
    for ns in namespaces {
        let Some(full) = fulls
            .iter()
            .filter(|b| {
                b.metadata.namespace == ns && b.metadata.created.timestamp_millis() < time_ms
            })
            .max_by_key(|b| b.metadata.created)
        else {
            continue;
        };
        chosen.push(full.clone());
        let mut after: Vec<_> = incs
            .iter()
            .filter(|b| {
                b.metadata.namespace == ns
                    && b.metadata.created >= full.metadata.created
                    && b.metadata.created.timestamp_millis() < time_ms
            })
            .cloned()
            .collect();
        after.sort_by_key(|b| b.metadata.created);
        chosen.extend(incremental_chain(after));
    }
    if chosen.is_empty() {
        return Err(RequestError::new(
            "time",
            format!("no full backup of routine {routine} before {time_ms}"),
        ));
    }
    let mut out = Vec::new();
    for b in chosen {
        let keys = layout::list_keys(storage, &format!("{}/", b.key))
            .await
            .map_err(listing)?;
        out.push(plan_folder(storage, &b.key, &keys).await?);
    }
    Ok(out)
}

/// The incrementals (sorted by `created`) a restore needs: from the newest back, each one
/// covers the changes since its `from`, so older ones are needed only when created at or
/// before that bound. A differential incremental's `from` is the previous backup's
/// `created`, so the whole chain is taken; a cumulative one's (`incr-mode: cumulative`) is
/// the full's, so only the newest is. A `from` that is missing (zero) keeps the next one.
fn incremental_chain(sorted: Vec<layout::FoundBackup>) -> Vec<layout::FoundBackup> {
    let mut bound = None;
    let mut chain: Vec<_> = sorted
        .into_iter()
        .rev()
        .filter(|b| {
            let needed = bound.is_none_or(|upto| b.metadata.created <= upto);
            if needed {
                bound = Some(if b.metadata.from > layout::zero_time() {
                    b.metadata.from
                } else {
                    b.metadata.created
                });
            }
            needed
        })
        .collect();
    chain.reverse();
    chain
}

/// The codec chain to read `folder` with: the sidecar's `pipeline:` steps (each handed the
/// request's key, which a codec without keys ignores), else the request's `compression` /
/// `encryption`, else what `metadata.yaml` says was used (the key still comes from the
/// request).
///
/// # Errors
/// [`RequestError`] on `policy.encryption` for an encrypted backup without a key, or on
/// `backup-data-path` for a pipeline whose plugins are not loaded.
pub fn folder_pipeline(
    plugins: &Registry,
    policy: &RestorePolicy,
    keys: &ResolvedKeys,
    folder: &FolderPlan,
) -> Result<Pipeline, RequestError> {
    let key = policy
        .encryption
        .as_ref()
        .and_then(|e| key_source(&e.key_file, &e.key_env, &e.key_secret, keys));
    if let Some(steps) = &folder.pipeline {
        let specs: Vec<StepSpec> = steps
            .iter()
            .map(|s| StepSpec {
                plugin: s.plugin.clone(),
                options: s.options.clone(),
                keys: key.clone().into_iter().collect(),
            })
            .collect();
        return Pipeline::build(plugins, &specs).map_err(|e| {
            RequestError::new(
                "backup-data-path",
                format!("{}: the backup's pipeline cannot be built: {e}", folder.key),
            )
        });
    }
    let meta = folder.metadata.as_ref();
    let compression = match (&policy.compression, meta) {
        (Some(c), _) => Some(c.clone()),
        (None, Some(m)) if m.compression.eq_ignore_ascii_case("ZSTD") => {
            Some(crate::config::CompressionPolicy {
                mode: Some(CompressionMode::Zstd.into()),
                level: None,
            })
        }
        _ => None,
    };
    let encryption = policy.encryption.clone();
    if encryption
        .as_ref()
        .is_none_or(|e| e.mode() == EncryptionMode::None)
        && let Some(m) = meta
        && !m.encryption.eq_ignore_ascii_case("NONE")
    {
        return Err(RequestError::new(
            "policy.encryption",
            format!(
                "{} is encrypted ({}): give its mode and key",
                folder.key, m.encryption
            ),
        ));
    }
    let backup_policy = crate::config::BackupPolicy {
        compression,
        encryption,
        ..Default::default()
    };
    wiring::build_pipeline_with(plugins, &backup_policy, keys)
        .map(|(p, _, _)| p)
        .map_err(|e| RequestError::new("policy.encryption", e.to_string()))
}

/// What a finished restore did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreReport {
    pub folders: usize,
    pub files: usize,
}

/// Runs one restore job.
///
/// # Errors
/// Whatever stopped it; records already written stay (as ABS).
pub async fn run_job(
    ctx: &EngineContext,
    plan: &RestorePlan,
    counters: Arc<Counters>,
    progress: Arc<Progress>,
    cancel: CancellationToken,
) -> Result<RestoreReport, EngineError> {
    let plugins = ctx.plugins_for(&plan.config).await?;
    let storage = wiring::open_storage(&plugins, &plan.storage)?;
    let mut pipelines = Vec::new();
    for f in &plan.folders {
        pipelines.push(Arc::new(
            folder_pipeline(&plugins, &plan.policy, &plan.keys, f)
                .map_err(|e| EngineError::Config(e.to_string()))?,
        ));
    }
    let retry = plan.policy.retry();
    let connect_retry = RetryPolicy {
        base_timeout: Some(retry.base_ms),
        multiplier: Some(retry.multiplier),
        max_retries: Some(retry.max_retries),
    };
    let client = Arc::new(
        crate::aerospike::cluster::connect_with_retries(
            &plan.cluster_name,
            &plan.cluster,
            &connect_retry,
            &plan.label,
            &cancel,
        )
        .await?,
    );
    progress.add_estimate(plan.estimated_records());
    let run = RestoreRun {
        plan,
        client: client.clone(),
        storage,
        counters,
        progress,
        cancel,
        bandwidth: RateLimiter::per_second(
            plan.policy
                .bandwidth
                .unwrap_or(0)
                .saturating_mul(1024 * 1024),
        ),
        tps: RateLimiter::per_second(plan.policy.tps.unwrap_or(0)),
        now_unix: ctx.clock.now().timestamp(),
    };
    let result = run.run(&pipelines).await;
    if let Err(e) = client.close().await {
        tracing::debug!(error = %e, "Closing the cluster client failed.");
    }
    result
}

/// A running restore's handles.
struct RestoreRun<'a> {
    plan: &'a RestorePlan,
    client: Arc<Client>,
    storage: Arc<dyn Storage>,
    counters: Arc<Counters>,
    progress: Arc<Progress>,
    cancel: CancellationToken,
    bandwidth: Option<Arc<RateLimiter>>,
    tps: Option<Arc<RateLimiter>>,
    now_unix: i64,
}

/// What a decoder thread hands the writers.
enum Item {
    /// A batch, with its share of the in-flight budget, given back once it is written.
    Records(Vec<AsbRecord>, tokio::sync::OwnedSemaphorePermit),
    Udf(crate::asb::Udf),
    Index(SecondaryIndex),
}

impl RestoreRun<'_> {
    async fn run(&self, pipelines: &[Arc<Pipeline>]) -> Result<RestoreReport, EngineError> {
        let mut indexes = Vec::new();
        let mut files = 0;
        for (folder, pipeline) in self.plan.folders.iter().zip(pipelines) {
            tracing::info!(job = %self.plan.label, folder = %folder.key, files = folder.files.len(),
                "Restoring a backup folder.");
            // asbackup and backup-go put UDFs and indexes first; read those files before
            // any record so UDFs exist before records (and indexes come last anyway).
            let (system, data): (Vec<&String>, Vec<&String>) = folder.files.iter().partition(|k| {
                k.rsplit('/')
                    .next()
                    .is_some_and(|n| n.starts_with("metadata_"))
            });
            let rules = self.rules_for(folder);
            let sums = Arc::new(if self.plan.policy.check_checksums.unwrap_or(true) {
                folder.checksums.clone()
            } else {
                Default::default()
            });
            indexes.extend(
                self.restore_files(&system, pipeline, &rules, &sums, 1)
                    .await?,
            );
            let parallel = self.plan.policy.parallel() as usize;
            indexes.extend(
                self.restore_files(&data, pipeline, &rules, &sums, parallel)
                    .await?,
            );
            files += folder.files.len();
        }
        if !self.plan.policy.no_indexes.unwrap_or(false) {
            for idx in &indexes {
                let ns = self.map_namespace(&idx.namespace);
                crate::aerospike::cluster::create_sindex(&self.client, idx, &ns).await?;
                self.counters.indexes.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(RestoreReport {
            folders: self.plan.folders.len(),
            files,
        })
    }

    fn map_namespace(&self, ns: &str) -> String {
        match &self.plan.policy.namespace {
            Some(m) if m.source == ns => m.destination.clone(),
            _ => ns.to_string(),
        }
    }

    /// The write rules of a folder. An incremental of a point-in-time restore holds each
    /// changed record whole, so with the default exists action it replaces the record:
    /// bins deleted since the full must not survive from it.
    fn rules_for(&self, folder: &FolderPlan) -> Arc<WriteRules> {
        let mut rules = WriteRules::new(&self.plan.policy, self.now_unix);
        if folder.kind == BackupKind::Incremental
            && self.plan.label == "timestamp"
            && rules.exists == aerospike::RecordExistsAction::Update
        {
            rules.exists = aerospike::RecordExistsAction::Replace;
        }
        Arc::new(rules)
    }

    /// Restores `keys`, `parallel` files at a time, through a shared pool of writers;
    /// returns the secondary indexes the files define.
    async fn restore_files(
        &self,
        keys: &[&String],
        pipeline: &Arc<Pipeline>,
        rules: &Arc<WriteRules>,
        sums: &Arc<std::collections::HashMap<String, crate::jobs::integrity::FileSum>>,
        parallel: usize,
    ) -> Result<Vec<SecondaryIndex>, EngineError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let policy = &self.plan.policy;
        let parallel = parallel.min(keys.len()).max(1);
        // Readers stop on their first error, or when a writer fails; writers drain what was
        // read before they stop, so every record read is counted.
        let read_stop = self.cancel.child_token();
        let write_stop = self.cancel.child_token();
        let (tx, rx) = mpsc::channel::<Item>(parallel * BATCHES_PER_READER);
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        let (batch_policy, write_policy) = RecordWriter::policies(policy);
        let writer = Arc::new(RecordWriter {
            client: self.client.clone(),
            rules: rules.clone(),
            counters: self.counters.clone(),
            batch_writes: policy.batch_writes(),
            retry: policy.retry(),
            tps: self.tps.clone(),
            batch_policy,
            write_policy,
            cancel: write_stop.clone(),
        });
        let indexes = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut writers = tokio::task::JoinSet::new();
        for _ in 0..policy.max_async_batches() {
            writers.spawn(write_items(
                writer.clone(),
                rx.clone(),
                indexes.clone(),
                policy.no_udfs.unwrap_or(false),
                read_stop.clone(),
            ));
        }
        drop(rx);
        let queue = Arc::new(std::sync::Mutex::new(
            keys.iter()
                .map(|k| k.to_string())
                .collect::<std::collections::VecDeque<_>>(),
        ));
        let budget = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT_BYTES / BUDGET_UNIT));
        let mut readers = tokio::task::JoinSet::new();
        for _ in 0..parallel {
            let reader = ReaderTask {
                runtime: tokio::runtime::Handle::current(),
                budget: budget.clone(),
                storage: self.storage.clone(),
                pipeline: pipeline.clone(),
                sums: sums.clone(),
                queue: queue.clone(),
                tx: tx.clone(),
                batch: policy.batch_size() as usize,
                bandwidth: self.bandwidth.clone(),
                counters: self.counters.clone(),
                progress: self.progress.clone(),
                stop: read_stop.clone(),
                skip_records: policy.no_records.unwrap_or(false),
            };
            readers.spawn_blocking(move || reader.run());
        }
        drop(tx);
        let mut read_error = FirstError::new(read_stop);
        while let Some(r) = readers.join_next().await {
            match r {
                Ok(Ok(())) => {}
                Ok(Err(e)) => read_error.note(e),
                Err(e) => read_error.note(EngineError::Encode(format!("reader thread: {e}"))),
            }
        }
        let mut write_error = FirstError::new(write_stop);
        while let Some(r) = writers.join_next().await {
            match r {
                Ok(Ok(())) => {}
                Ok(Err(e)) => write_error.note(e),
                Err(e) => write_error.note(EngineError::Write(format!("writer task: {e}"))),
            }
        }
        if self.cancel.is_cancelled() {
            return Err(EngineError::Cancelled);
        }
        // A writer failure stops the readers, which then report `Cancelled`: the writer's
        // error is the cause.
        match (read_error.into_result(), write_error.into_result()) {
            (_, Err(e)) => return Err(e),
            (Err(e), Ok(())) => return Err(e),
            (Ok(()), Ok(())) => {}
        }
        let out = std::mem::take(&mut *indexes.lock().unwrap_or_else(|p| p.into_inner()));
        Ok(out)
    }
}

/// One writer: takes items off the shared channel until it closes.
async fn write_items(
    writer: Arc<RecordWriter>,
    rx: Arc<tokio::sync::Mutex<mpsc::Receiver<Item>>>,
    indexes: Arc<std::sync::Mutex<Vec<SecondaryIndex>>>,
    no_udfs: bool,
    read_stop: CancellationToken,
) -> Result<(), EngineError> {
    let result = write_loop(&writer, &rx, &indexes, no_udfs).await;
    if result.is_err() {
        read_stop.cancel();
    }
    result
}

async fn write_loop(
    writer: &RecordWriter,
    rx: &tokio::sync::Mutex<mpsc::Receiver<Item>>,
    indexes: &std::sync::Mutex<Vec<SecondaryIndex>>,
    no_udfs: bool,
) -> Result<(), EngineError> {
    loop {
        let item = rx.lock().await.recv().await;
        match item {
            None => return Ok(()),
            Some(Item::Records(batch, budget)) => {
                writer.write(batch).await?;
                drop(budget);
            }
            Some(Item::Udf(u)) if !no_udfs => {
                crate::aerospike::cluster::register_udf(&writer.client, &u).await?;
                writer.counters.udfs.fetch_add(1, Ordering::Relaxed);
            }
            Some(Item::Udf(_)) => {}
            Some(Item::Index(i)) => indexes.lock().unwrap_or_else(|p| p.into_inner()).push(i),
        }
    }
}

/// One reader thread: takes files off the queue and decodes them into record batches.
struct ReaderTask {
    runtime: tokio::runtime::Handle,
    /// The job's in-flight budget ([`IN_FLIGHT_BYTES`]), in [`BUDGET_UNIT`]s.
    budget: Arc<tokio::sync::Semaphore>,
    storage: Arc<dyn Storage>,
    pipeline: Arc<Pipeline>,
    sums: Arc<std::collections::HashMap<String, crate::jobs::integrity::FileSum>>,
    queue: Arc<std::sync::Mutex<std::collections::VecDeque<String>>>,
    tx: mpsc::Sender<Item>,
    batch: usize,
    bandwidth: Option<Arc<RateLimiter>>,
    counters: Arc<Counters>,
    progress: Arc<Progress>,
    stop: CancellationToken,
    skip_records: bool,
}

impl ReaderTask {
    fn run(self) -> Result<(), EngineError> {
        loop {
            let next = self
                .queue
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .pop_front();
            let Some(key) = next else {
                return Ok(());
            };
            if self.stop.is_cancelled() {
                return Err(EngineError::Cancelled);
            }
            self.read_file(key)?;
            self.progress.add_file();
        }
    }

    /// Sends a batch once the budget has room for it (a batch over the whole budget waits
    /// for all of it).
    fn send_records(&self, batch: Vec<AsbRecord>) -> Result<(), EngineError> {
        let bytes: usize = batch.iter().map(AsbRecord::approx_bytes).sum();
        let units = bytes
            .div_ceil(BUDGET_UNIT)
            .clamp(1, IN_FLIGHT_BYTES / BUDGET_UNIT) as u32;
        let permit = self.runtime.block_on(async {
            tokio::select! {
                p = self.budget.clone().acquire_many_owned(units) => {
                    p.map_err(|_| EngineError::Cancelled)
                }
                () = self.stop.cancelled() => Err(EngineError::Cancelled),
            }
        })?;
        self.send(Item::Records(batch, permit))
    }

    fn send(&self, item: Item) -> Result<(), EngineError> {
        // A closed channel means the writers stopped; they report why.
        self.tx
            .blocking_send(item)
            .map_err(|_| EngineError::Cancelled)
    }

    fn read_file(&self, key: String) -> Result<(), EngineError> {
        // Checked whole before its first record goes out: a changed file (a flipped byte
        // in a plain value would restore silently) is refused, never half-written.
        if let Some(expected) = self.sums.get(&key) {
            crate::storage::files::check_stored(
                &self.runtime,
                &self.storage,
                &key,
                expected,
                self.bandwidth.as_ref(),
            )?;
        }
        let stored = Arc::new(AtomicU64::new(0));
        let mut reader = FileReader::open(
            self.runtime.clone(),
            self.storage.clone(),
            key,
            &self.pipeline,
            self.bandwidth.clone(),
            stored.clone(),
        )?;
        let mut batch = Vec::with_capacity(self.batch);
        let mut counted = 0u64;
        let result = loop {
            let item = match reader.next_item() {
                Ok(Some(item)) => item,
                Ok(None) => break Ok(()),
                Err(e) => break Err(EngineError::Read(e)),
            };
            match item {
                AsbItem::Record(r) => {
                    if self.skip_records {
                        continue;
                    }
                    self.counters.read.fetch_add(1, Ordering::Relaxed);
                    self.progress.add_records(1);
                    batch.push(r);
                    if batch.len() >= self.batch {
                        let full = std::mem::replace(&mut batch, Vec::with_capacity(self.batch));
                        self.send_records(full)?;
                        if self.stop.is_cancelled() {
                            break Err(EngineError::Cancelled);
                        }
                    }
                }
                AsbItem::Udf(u) => self.send(Item::Udf(u))?,
                AsbItem::SecondaryIndex(i) => self.send(Item::Index(i))?,
                AsbItem::Namespace(_) | AsbItem::FirstFile => {}
            }
            let now = stored.load(Ordering::Relaxed);
            if now > counted {
                self.counters
                    .bytes
                    .fetch_add(now - counted, Ordering::Relaxed);
                self.progress.add_bytes(now - counted);
                counted = now;
            }
        };
        let now = stored.load(Ordering::Relaxed);
        self.counters
            .bytes
            .fetch_add(now - counted, Ordering::Relaxed);
        self.progress.add_bytes(now - counted);
        if !batch.is_empty() {
            self.send_records(batch)?;
        }
        result
    }
}

impl From<ReadError> for RequestError {
    fn from(e: ReadError) -> Self {
        RequestError::new("backup-data-path", e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inc(created_s: i64, from_s: i64) -> layout::FoundBackup {
        let t = |s: i64| chrono::DateTime::from_timestamp(s, 0).unwrap();
        layout::FoundBackup {
            key: format!("r/incremental/{created_s}000/data/test"),
            timestamp_ms: created_s * 1000,
            metadata: BackupMetadata {
                created: t(created_s),
                finished: None,
                from: if from_s == 0 {
                    layout::zero_time()
                } else {
                    t(from_s)
                },
                namespace: "test".into(),
                record_count: 0,
                byte_count: 0,
                file_count: 0,
                secondary_index_count: 0,
                udf_count: 0,
                compression: "NONE".into(),
                encryption: "NONE".into(),
            },
            pipeline: None,
        }
    }

    fn created(chain: Vec<layout::FoundBackup>) -> Vec<i64> {
        chain
            .iter()
            .map(|b| b.metadata.created.timestamp())
            .collect()
    }

    #[test]
    fn the_incremental_chain_follows_each_window_back_to_the_full() {
        // Differential: each starts at the previous backup (full at 100).
        let diff = vec![inc(110, 100), inc(120, 110), inc(130, 120)];
        assert_eq!(created(incremental_chain(diff)), vec![110, 120, 130]);
        // An empty incremental (at 120) was deleted: 130 still needs 110.
        let gap = vec![inc(110, 100), inc(130, 120)];
        assert_eq!(created(incremental_chain(gap)), vec![110, 130]);
        // Cumulative: each starts at the full, so the newest alone covers everything.
        let cumul = vec![inc(110, 100), inc(120, 100), inc(130, 100)];
        assert_eq!(created(incremental_chain(cumul)), vec![130]);
        // A switch from differential to cumulative: the newest covers all since the full.
        let mixed = vec![inc(110, 100), inc(120, 110), inc(130, 100)];
        assert_eq!(created(incremental_chain(mixed)), vec![130]);
        // No `from` recorded (zero): every older one is kept, as before.
        let unknown = vec![inc(110, 0), inc(120, 0)];
        assert_eq!(created(incremental_chain(unknown)), vec![110, 120]);
    }

    #[test]
    fn layout_folders_are_recognised() {
        assert_eq!(
            layout_kind("daily/backup/1700000000000/data/test"),
            Some(BackupKind::Full)
        );
        assert_eq!(
            layout_kind("daily/incremental/1700000000000"),
            Some(BackupKind::Incremental)
        );
        assert_eq!(
            layout_kind("daily/backup/1700000000000_2023-11-14T22-13-20/data"),
            Some(BackupKind::Full)
        );
        assert_eq!(layout_kind("asbackup/run1"), None);
        assert_eq!(layout_kind("x/backup/notanumber/data/ns"), None);
    }
}
