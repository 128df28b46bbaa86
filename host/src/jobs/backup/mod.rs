//! One backup job: one run of a routine, full or incremental. Orchestration only: cluster
//! access is [`crate::aerospike::cluster`], plugin wiring [`crate::storage::wiring`], files [`crate::storage::files`].
//!
//! Per namespace, `parallel` workers each run this pipeline:
//! ```text
//! scan (node streams, .asb rendered in the callback) ─batches─▶ file writer thread
//!   (rotation, codec chain) ─chunks─▶ uploader task (parts → storage plugin)
//! ```
//! Both arrows are bounded channels, so storage speed paces the scan and a job holds
//! O(parallel × (batch queue + chunk queue + part)) bytes whatever the backup's size.
//! Data files of every namespace are finished before any `metadata.yaml` is written (see
//! [`crate::storage::layout`]); a failed or cancelled job deletes what it wrote, newest first.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use aerospike::Client;
use chrono::{DateTime, TimeZone, Utc};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, IncrMode};
use crate::plugins::{Pipeline, Storage};

use crate::aerospike::cluster;
use crate::aerospike::scan::{self, EncodedBatch, RateLimiter, ScanRange, ScanSpec};
use crate::asb::{ASB_EXTENDED_VERSION, AsbEncoder, EncoderOptions};
use crate::error::EngineError;
use crate::error::FirstError;
use crate::jobs::integrity::{CHECKSUMS_FILE, ChecksumsSidecar};
use crate::progress::Progress;
use crate::storage::files::{
    CHUNK_BYTES, FileMsg, FileSpec, FileStats, FileWriter, MAX_PART_BYTES, UploadOptions, Written,
    put_object, remove_written, upload_files,
};
use crate::storage::layout::{
    self, BackupKind, BackupMetadata, METADATA_FILE, PIPELINE_FILE, extended_asb_name,
    metadata_asb_name, namespace_folder_named,
};
use crate::storage::resume::{Checkpoint, Checkpointer, NamespaceState, RESUME_FILE};
use crate::storage::wiring::pipeline_sidecar;

// The engine's shared pieces, where callers have always found them.
pub use crate::jobs::context::{
    Clock, EngineContext, ManualClock, ResolvedRoutine, SystemClock, resolve_routine,
};
pub use crate::storage::wiring::{build_pipeline, open_storage};

mod resuming;
use resuming::resume_job;
mod system_files;

/// Encoded batches ([`scan::BATCH_BYTES`] each) between a worker's scan and its file writer:
/// enough to ride out a codec stall of a few ms, 256 KiB per worker at most.
const BATCH_CHANNEL_CAPACITY: usize = 4;
/// Encoded chunks between an encoder and its uploader: two, so encoding the next chunk
/// overlaps the upload of the previous one.
const CHUNK_CHANNEL_CAPACITY: usize = 2;
/// One MB of `file-limit` (asbackup counts MiB).
const FILE_LIMIT_UNIT: u64 = 1024 * 1024;

/// What one job should do.
#[derive(Debug, Clone)]
pub struct JobSpec {
    pub routine: String,
    pub kind: BackupKind,
    /// The config snapshot the job runs with (a running job keeps it across changes).
    pub config: Arc<Config>,
    /// The checkpoint of a full backup cut off by a restart, which this job finishes.
    pub resume: Option<Arc<Checkpoint>>,
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
    let mut r = resolve_routine(&spec.config, &spec.routine)?;
    // Secret Agent references are asked now, once per job: a rotated secret is used by the
    // next job, and nothing below sees a reference.
    let keys = crate::jobs::job_secrets::resolve_routine_secrets(&spec.config, &mut r).await?;
    let plugins = ctx.plugins_for(&spec.config).await?;
    let storage = open_storage(&plugins, &r.storage)?;
    let (pipeline, compression, encryption) =
        crate::storage::wiring::build_pipeline_with(&plugins, &r.policy, &keys)?;
    let sidecar = r
        .policy
        .pipeline
        .is_some()
        .then(|| pipeline_sidecar(&pipeline, &plugins));
    let pipeline = Arc::new(pipeline);

    if let Some(cp) = &spec.resume {
        let wiring = Wiring {
            storage,
            pipeline,
            labels: Labels {
                compression,
                encryption,
            },
            sidecar,
        };
        return resume_job(ctx, spec, cp.clone(), r, wiring, progress, cancel).await;
    }
    let from = match spec.kind {
        BackupKind::Full => None,
        BackupKind::Incremental => Some(
            last_backup_created(&storage, &r.name, r.policy.incr_mode())
                .await?
                .ok_or_else(|| EngineError::Config("no full backup of the routine yet".into()))?,
        ),
    };
    let ts = claim_timestamp(ctx, &storage, &r.name, from).await?;
    let _claim = ClaimGuard {
        ctx,
        key: (r.name.clone(), ts),
    };
    // A timestamp pushed past "now" by a collision: wait until it is in the past, so the
    // window's upper bound never runs ahead of the writes it must include.
    let ahead = ts - ctx.clock.now().timestamp_millis();
    if ahead > 0 {
        tokio::select! {
            () = tokio::time::sleep(std::time::Duration::from_millis(ahead as u64)) => {}
            () = cancel.cancelled() => return Err(EngineError::Cancelled),
        }
    }
    // The window ends at the trigger's millisecond, not at the folder's whole second: a
    // record written earlier in that second belongs to this incremental, not the next
    // (whose window starts exactly here, so each change lands in one incremental).
    let created = Utc
        .timestamp_millis_opt(ts.max(ctx.clock.now().timestamp_millis()))
        .single()
        .unwrap_or_default();

    let window = Window {
        from,
        created,
        ts,
        name: layout::folder_name(
            ts,
            spec.config
                .service
                .backup
                .as_ref()
                .and_then(|b| b.timestamp_format.map(|f| *f)),
        ),
    };
    let written = Arc::new(Written::default());
    // A full backup keeps a checkpoint to resume from after a restart (unless the policy's
    // `resume-max-age` is 0). Written before any data, so a folder that has data but no
    // checkpoint is never mistaken for a resumable one.
    let checkpoint = if spec.kind == BackupKind::Full && r.policy.resume_max_age != Some(0) {
        let folder = layout::backup_folder_named(&r.name, spec.kind, &window.name);
        let cp = crate::storage::resume::start(
            &r.name,
            ts,
            &window.name,
            created,
            crate::storage::resume::fingerprint(&r.routine, &r.policy),
        );
        let cp = Checkpointer::new(storage.clone(), &folder, ctx.clock.clone(), cp)
            .map_err(EngineError::Config)?;
        written.push(cp.key().to_string());
        if let Err(e) = cp.write().await {
            remove_written(&storage, written.take()).await;
            return Err(e);
        }
        Some(Arc::new(cp))
    } else {
        None
    };
    let parts = JobParts {
        wiring: Wiring {
            storage,
            pipeline,
            labels: Labels {
                compression,
                encryption,
            },
            sidecar,
        },
        window,
        written,
        checkpoint,
        resumed: None,
    };
    run_parts(ctx, spec, &r, parts, progress, cancel).await
}

/// The storage and codecs a job writes with.
struct Wiring {
    storage: Arc<dyn Storage>,
    pipeline: Arc<Pipeline>,
    labels: Labels,
    /// The `pipeline.yaml` text, for a `pipeline:` chain.
    sidecar: Option<String>,
}

/// What a job runs with once its folder is decided.
struct JobParts {
    wiring: Wiring,
    window: Window,
    written: Arc<Written>,
    checkpoint: Option<Arc<Checkpointer>>,
    resumed: Option<Arc<Checkpoint>>,
}

/// Connects, runs the job and cleans up after it: a failure or a cancel removes what the
/// job wrote, except a checkpointed full backup cut off by a shutdown, which the next start
/// resumes.
async fn run_parts(
    ctx: &EngineContext,
    spec: &JobSpec,
    r: &ResolvedRoutine,
    parts: JobParts,
    progress: Arc<Progress>,
    cancel: CancellationToken,
) -> Result<JobReport, EngineError> {
    let client = match r.connect(&cancel).await {
        Ok(c) => Arc::new(c),
        Err(e) => {
            if !(matches!(e, EngineError::Cancelled) && ctx.is_suspending())
                || parts.checkpoint.is_none()
            {
                remove_written(&parts.wiring.storage, parts.written.take()).await;
            }
            return Err(e);
        }
    };
    let run = BackupRun {
        ctx,
        routine: r,
        kind: spec.kind,
        client: client.clone(),
        storage: parts.wiring.storage.clone(),
        pipeline: parts.wiring.pipeline,
        labels: parts.wiring.labels,
        sidecar: parts.wiring.sidecar,
        window: parts.window,
        written: parts.written,
        checkpoint: parts.checkpoint,
        resumed: parts.resumed,
        progress,
        cancel,
    };
    let result = run.run().await;
    if let Err(e) = client.close().await {
        tracing::debug!(error = %e, "Closing the cluster client failed.");
    }
    match result {
        Ok(report) => Ok(report),
        Err(EngineError::Cancelled) if ctx.is_suspending() && run.checkpoint.is_some() => {
            if let Some(cp) = &run.checkpoint
                && let Err(e) = cp.write().await
            {
                tracing::warn!(key = %cp.key(), error = %e,
                    "Cannot update the backup's resume checkpoint.");
            }
            tracing::info!(routine = %r.name, timestamp = run.window.ts,
                "Backup cut off by the shutdown; its stored files and checkpoint are kept and the next start resumes it.");
            Err(EngineError::Cancelled)
        }
        Err(e) => {
            remove_written(&parts.wiring.storage, run.written.take()).await;
            Err(e)
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Labels {
    compression: &'static str,
    encryption: &'static str,
}

#[derive(Debug, Clone)]
struct Window {
    from: Option<DateTime<Utc>>,
    created: DateTime<Utc>,
    ts: i64,
    /// The folder name: `<ts>`, or `<ts>_<time>` with `timestamp-format`.
    name: String,
}

/// Gives the job's folder timestamp back when the job ends, however it ends.
struct ClaimGuard<'a> {
    ctx: &'a EngineContext,
    key: (String, i64),
}

impl Drop for ClaimGuard<'_> {
    fn drop(&mut self) {
        self.ctx.release(&self.key.0, self.key.1);
    }
}

/// One running job's handles, so its steps take `&self` instead of long parameter lists.
struct BackupRun<'a> {
    ctx: &'a EngineContext,
    routine: &'a ResolvedRoutine,
    kind: BackupKind,
    client: Arc<Client>,
    storage: Arc<dyn Storage>,
    pipeline: Arc<Pipeline>,
    labels: Labels,
    /// The `pipeline.yaml` text, for a `pipeline:` chain.
    sidecar: Option<String>,
    window: Window,
    written: Arc<Written>,
    /// The full backup's resume checkpoint, kept up to date as files finish.
    checkpoint: Option<Arc<Checkpointer>>,
    /// The checkpoint this job resumes from.
    resumed: Option<Arc<Checkpoint>>,
    progress: Arc<Progress>,
    cancel: CancellationToken,
}

/// Whether a storage keeps unfinished uploads invisibly and forever, so that each object
/// being written needs a marker for the crash sweep: S3 multipart uploads (Azure drops staged
/// blocks and GCS resumable sessions after a week; storage-local stages in `.abs-tmp`, which
/// the host sweeps itself).
fn marks_open_uploads(storage: &crate::config::Storage) -> bool {
    match storage {
        crate::config::Storage::S3Storage(_) => true,
        crate::config::Storage::PluginStorage(p) => {
            p.plugin == crate::plugins::pipeline::S3_STORAGE_PLUGIN
        }
        _ => false,
    }
}

/// What a namespace's workers share.
struct NamespaceRun<'a> {
    ns: &'a str,
    ranges: &'a [ScanRange],
    limiter: Option<Arc<RateLimiter>>,
    bandwidth: Option<Arc<RateLimiter>>,
}

/// The newest `created` among the routine's complete backups of either kind.
async fn last_backup_created(
    storage: &Arc<dyn Storage>,
    routine: &str,
    mode: IncrMode,
) -> Result<Option<DateTime<Utc>>, EngineError> {
    let mut last = None;
    // Cumulative (ABS 3.7 `incr-mode`): each incremental starts where the last full did.
    let kinds: &[BackupKind] = match mode {
        IncrMode::Differential => &[BackupKind::Full, BackupKind::Incremental],
        IncrMode::Cumulative => &[BackupKind::Full],
    };
    for &kind in kinds {
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
        let mut taken = ctx.is_claimed(routine, ts);
        for kind in [BackupKind::Full, BackupKind::Incremental] {
            taken = taken
                || layout::folder_exists(storage, routine, kind, ts)
                    .await
                    .map_err(|e| EngineError::plugin("checking the backup folder", e))?;
        }
        if !taken && ctx.claim(routine, ts) {
            return Ok(ts);
        }
        ts += 1000;
    }
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

impl BackupRun<'_> {
    async fn run(&self) -> Result<JobReport, EngineError> {
        let r = self.routine;
        let client = &self.client;
        let namespaces = if r.routine.namespaces.is_empty() {
            cluster::namespaces(client).await?
        } else {
            r.routine.namespaces.clone()
        };
        let racks = r.routine.rack_list.as_deref().unwrap_or_default();
        let mut ranges_by_ns = Vec::new();
        for ns in &namespaces {
            let ranges = if !racks.is_empty() {
                // As backup-go: the racks' nodes, then the partitions those nodes master.
                let nodes = cluster::rack_nodes(client, racks, ns).await?;
                cluster::node_list_ranges(client, &nodes, ns).await?
            } else if !r.routine.node_list.is_empty() {
                cluster::node_list_ranges(client, &r.routine.node_list, ns).await?
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
                let estimate = cluster::estimate_records(client, ns).await as f64 * fraction;
                self.progress.add_estimate(estimate as u64);
            }
        }
        let limiter = RateLimiter::per_second(r.policy.records_per_second.unwrap_or(0));
        // `bandwidth` is MiB/s of stored bytes (ABS 3.2+), enforced as parts go to storage.
        let bandwidth =
            RateLimiter::per_second(r.policy.bandwidth.unwrap_or(0).saturating_mul(1024 * 1024));
        let mut reports = Vec::new();
        for (ns, ranges) in namespaces.iter().zip(&ranges_by_ns) {
            let nsr = NamespaceRun {
                ns,
                ranges,
                limiter: limiter.clone(),
                bandwidth: bandwidth.clone(),
            };
            let stats = match self.resumed.as_ref().and_then(|c| c.namespace(ns)) {
                Some(n) if n.state != NamespaceState::Pending => {
                    self.resume_namespace(&nsr, n).await?
                }
                _ => self.backup_namespace(&nsr).await?,
            };
            reports.push((ns.clone(), stats));
        }
        if self.kind == BackupKind::Full && r.policy.with_cluster_configuration.unwrap_or(false) {
            self.write_configurations(&namespaces).await?;
        }
        // Every data file is durable: now the sidecars, then the completion markers.
        let finished = self.ctx.clock.now().max(self.window.created);
        let mut out = Vec::new();
        for (ns, stats) in reports {
            out.push(self.finish_namespace(&ns, stats, finished).await?);
        }
        // Complete: the checkpoint has nothing left to resume.
        if let Some(cp) = &self.checkpoint
            && let Err(e) = self.storage.delete(cp.key()).await
        {
            tracing::warn!(key = %cp.key(), error = %e,
                "Cannot remove the finished backup's resume checkpoint; the start-up sweep removes it.");
        }
        Ok(JobReport {
            timestamp_ms: self.window.ts,
            namespaces: out,
        })
    }

    /// The namespace's sidecar and `metadata.yaml` (last: the completion marker).
    async fn finish_namespace(
        &self,
        ns: &str,
        stats: NamespaceStats,
        finished: DateTime<Utc>,
    ) -> Result<NamespaceReport, EngineError> {
        let window = &self.window;
        let folder = namespace_folder_named(&self.routine.name, self.kind, &window.name, ns);
        let metadata = BackupMetadata {
            created: window.created,
            finished: Some(finished),
            from: window.from.unwrap_or_else(layout::zero_time),
            namespace: ns.to_string(),
            record_count: stats.records,
            byte_count: stats.bytes,
            file_count: stats.files,
            secondary_index_count: stats.sindexes,
            udf_count: stats.udfs,
            compression: self.labels.compression.to_string(),
            encryption: self.labels.encryption.to_string(),
        };
        if self.kind == BackupKind::Incremental && stats.records == 0 {
            // ABS keeps no empty incrementals; nothing was written for this namespace.
            return Ok(NamespaceReport {
                key: None,
                metadata,
            });
        }
        if let Some(text) = &self.sidecar {
            let key = format!("{folder}/{PIPELINE_FILE}");
            self.written.push(key.clone());
            put_object(&self.storage, &key, text.as_bytes().to_vec()).await?;
        }
        // Every data file's size and SHA-256, hashed as it was stored: after the data and
        // before metadata.yaml, so a backup listed as complete always has it.
        let sums = ChecksumsSidecar::new(self.written.sums_in(&folder));
        let text = serde_yaml::to_string(&sums)
            .map_err(|e| EngineError::Encode(format!("{CHECKSUMS_FILE}: {e}")))?;
        let key = format!("{folder}/{CHECKSUMS_FILE}");
        self.written.push(key.clone());
        put_object(&self.storage, &key, text.into_bytes()).await?;
        let yaml = serde_yaml::to_string(&metadata)
            .map_err(|e| EngineError::Encode(format!("metadata.yaml: {e}")))?;
        let key = format!("{folder}/{METADATA_FILE}");
        self.written.push(key.clone());
        put_object(&self.storage, &key, yaml.into_bytes()).await?;
        Ok(NamespaceReport {
            key: Some(folder),
            metadata,
        })
    }

    /// Where and how namespace `ns`'s files are written, numbered from `first`.
    fn file_spec(&self, ns: &str, first: u64) -> FileSpec {
        let r = self.routine;
        FileSpec {
            namespace: ns.to_string(),
            folder: namespace_folder_named(&r.name, self.kind, &self.window.name, ns),
            counter: Arc::new(AtomicU64::new(first)),
            file_limit: r.policy.file_limit_mb().max(1) * FILE_LIMIT_UNIT,
            pipeline: self.pipeline.clone(),
            options: EncoderOptions {
                compact: r.policy.compact.unwrap_or(false),
            },
        }
    }

    /// Backs up one namespace: its UDF/sindex file (full only), then the records.
    async fn backup_namespace(
        &self,
        nsr: &NamespaceRun<'_>,
    ) -> Result<NamespaceStats, EngineError> {
        let r = self.routine;
        let files = self.file_spec(nsr.ns, 1);
        let mut stats = NamespaceStats::default();
        if self.kind == BackupKind::Full {
            self.write_system_file(&files, &mut stats).await?;
        }
        if let Some(cp) = &self.checkpoint {
            let system = self.written.sums_in(&files.folder);
            cp.begin_namespace(nsr.ns, nsr.ranges, system, (stats.sindexes, stats.udfs))
                .await?;
        }
        if !r.policy.no_records.unwrap_or(false) {
            self.scan_namespace(nsr, files.clone(), &mut stats).await?;
        }
        if let Some(cp) = &self.checkpoint {
            cp.namespace_scanned(nsr.ns, files.counter.load(Ordering::Relaxed))
                .await?;
        }
        Ok(stats)
    }

    /// The scan of one namespace over `parallel` workers, each with its file writer and
    /// uploader.
    async fn scan_namespace(
        &self,
        nsr: &NamespaceRun<'_>,
        files: FileSpec,
        stats: &mut NamespaceStats,
    ) -> Result<(), EngineError> {
        let (r, ns, window, kind) = (self.routine, nsr.ns, &self.window, self.kind);
        let sets = &r.routine.set_list;
        let spec = Arc::new(ScanSpec {
            namespace: ns.to_string(),
            set: if sets.len() == 1 {
                sets[0].clone()
            } else {
                String::new()
            },
            bins: (!r.routine.bin_list.is_empty()).then(|| r.routine.bin_list.to_vec()),
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
            total_timeout_ms: u32::try_from(r.policy.total_timeout.unwrap_or(0))
                .unwrap_or(u32::MAX),
            prefer_rack: r
                .cluster
                .prefer_racks
                .as_ref()
                .is_some_and(|p| !p.is_empty()),
            max_concurrent_nodes: r.policy.max_concurrent_nodes.unwrap_or(0) as usize,
            compress: r.policy.use_scan_compression.unwrap_or(false),
            encoder: files.options,
            resume_attempts: r.policy.retry_policy().max_retries(),
        });
        let workers = (r.policy.parallel().max(1) as usize)
            .min(nsr.ranges.len())
            .max(1);
        let queue = Arc::new(Mutex::new(
            nsr.ranges.iter().cloned().collect::<VecDeque<_>>(),
        ));
        let slots = self.ctx.slots.for_cluster(&r.cluster_name, &r.cluster);
        // A part is sent once it reaches `part_size`, so it can be up to one chunk larger.
        let part_size = self
            .storage
            .capabilities()
            .min_part_size
            .clamp(CHUNK_BYTES as u64, MAX_PART_BYTES - CHUNK_BYTES as u64);
        // A failing stage cancels the others of this namespace; the job's token cancels all.
        let stop = self.cancel.child_token();

        let mut scans = tokio::task::JoinSet::new();
        let mut encoders = tokio::task::JoinSet::new();
        let mut uploaders = tokio::task::JoinSet::new();
        for w in 0..workers {
            let (rec_tx, rec_rx) = mpsc::channel::<EncodedBatch>(BATCH_CHANNEL_CAPACITY);
            let (chunk_tx, chunk_rx) = mpsc::channel::<FileMsg>(CHUNK_CHANNEL_CAPACITY);
            scans.spawn(scan::run_worker(
                self.client.clone(),
                spec.clone(),
                scan::ScanQueue {
                    ranges: queue.clone(),
                    slots: slots.clone(),
                },
                nsr.limiter.clone(),
                rec_tx,
                self.progress.clone(),
                stop.clone(),
            ));
            let writer = FileWriter::new(files.clone(), w, chunk_tx, self.progress.clone());
            let runtime = tokio::runtime::Handle::current();
            encoders.spawn_blocking(move || writer.run(runtime, rec_rx));
            uploaders.spawn(upload_files(
                self.storage.clone(),
                chunk_rx,
                part_size,
                nsr.bandwidth.clone(),
                self.written.clone(),
                self.progress.clone(),
                UploadOptions {
                    mark_open: marks_open_uploads(&self.routine.storage),
                    checkpoint: self.checkpoint.clone().map(|c| (c, ns.to_string())),
                },
            ));
        }
        let mut first = FirstError::new(stop);
        while let Some(r) = scans.join_next().await {
            match r {
                Ok(Ok(())) => {}
                Ok(Err(e)) => first.note(e),
                Err(e) => first.note(EngineError::Scan {
                    namespace: ns.to_string(),
                    message: format!("scan task: {e}"),
                }),
            }
        }
        while let Some(r) = encoders.join_next().await {
            match r {
                Ok(Ok(s)) => stats.add(s),
                Ok(Err(e)) => first.note(e),
                Err(e) => first.note(EngineError::Encode(format!("encoder thread: {e}"))),
            }
        }
        while let Some(r) = uploaders.join_next().await {
            match r {
                Ok(Ok(())) => {}
                Ok(Err(e)) => first.note(e),
                Err(e) => first.note(EngineError::Encode(format!("upload task: {e}"))),
            }
        }
        if self.cancel.is_cancelled() {
            return Err(EngineError::Cancelled);
        }
        first.into_result()
    }
}
