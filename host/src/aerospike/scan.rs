//! Partition scans: which partitions each worker reads, the filter expression of a routine,
//! and one worker's scan loop with resume after a dropped connection or node change.
//!
//! Records come off the nodes as raw particles through our own connections
//! ([`crate::aerospike::node_reader`]; the crate's client would decode them into `Value` trees and lose
//! CDT flags). Each partition's cursor moves as its records are rendered, so a resume
//! continues after the last record taken (exactly-once). Records are rendered as `.asb` text
//! on the spot (no intermediate model, no hand-off per record) into a batch of
//! [`BATCH_BYTES`]; full batches go into a bounded channel, so a slow codec or storage slows
//! the node streams, never grows a buffer.
//!
//! Length: the scan's partition bookkeeping (cursors, node map, retries, rack preference) and
//! the node streams it drives change together; split, each half would need the other's
//! private state. Tests are in `scan_tests.rs`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aerospike::expressions::{self as exp, Expression};
use aerospike::{Client, Node};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use crate::config::validate::{PartitionSpec, parse_partition_list};

use crate::aerospike::node_reader::{
    self, Credentials, Message, NodeConn, RC_PARAMETER, RawRecord, ReadError, ScanRequest,
    next_message,
};
use crate::asb::EncoderOptions;
use crate::asb::encode::encode_raw_record;
use crate::error::EngineError;
use crate::progress::Progress;

/// Partitions of a namespace.
pub const PARTITIONS: u16 = 4096;
/// Pause before the first resume of a failed scan; doubled for each further one. Short on
/// purpose: a resume continues from the last record received, so it costs nothing to try.
const SCAN_RESUME_BACKOFF: Duration = Duration::from_millis(200);
/// Encoded bytes a worker collects before handing them on: a few hundred records, so the
/// hand-off cost is spread thin, while a file can still rotate at any record boundary.
pub const BATCH_BYTES: usize = 64 * 1024;

/// Records of one worker rendered as `.asb` text, in scan order.
#[derive(Debug, Default)]
pub struct EncodedBatch {
    pub bytes: Vec<u8>,
    /// End offset in `bytes` of each record.
    pub ends: Vec<u32>,
    /// Digest of each record, for the resume checkpoint's partition cursors.
    pub digests: Vec<[u8; 20]>,
    /// Partitions whose every record is in this batch or an earlier one.
    pub done: Vec<u16>,
}

impl EncodedBatch {
    fn with_capacity() -> Self {
        EncodedBatch {
            // One record past the threshold fits without a reallocation in the common case.
            bytes: Vec::with_capacity(BATCH_BYTES + 16 * 1024),
            ends: Vec::with_capacity(512),
            digests: Vec::with_capacity(512),
            done: Vec::new(),
        }
    }

    /// No records and no finished partitions: nothing to hand on.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty() && self.done.is_empty()
    }
}

/// A worker's batch being filled by its scan callbacks (possibly several node streams at once).
#[derive(Debug)]
struct Batcher {
    batch: EncodedBatch,
    /// The first record that could not be encoded; it fails the scan.
    error: Option<String>,
    progress: Arc<Progress>,
    /// Records encoded but not yet added to `progress`.
    uncounted: u64,
    /// Records between progress updates: 1 for rate-limited (slow) scans, else a few dozen so
    /// the workers do not contend on the shared counter for every record.
    count_every: u64,
}

impl Batcher {
    /// Adds a record; returns the batch when it is full.
    fn add(&mut self, record: &RawRecord<'_>, options: EncoderOptions) -> Option<EncodedBatch> {
        if let Err(e) = encode_raw_record(&mut self.batch.bytes, record, options) {
            self.error.get_or_insert_with(|| e.to_string());
            return None;
        }
        self.batch.ends.push(self.batch.bytes.len() as u32);
        self.batch.digests.push(record.digest);
        self.uncounted += 1;
        if self.uncounted >= self.count_every {
            self.count();
        }
        (self.batch.bytes.len() >= BATCH_BYTES)
            .then(|| std::mem::replace(&mut self.batch, EncodedBatch::with_capacity()))
    }

    fn count(&mut self) {
        self.progress
            .add_records(std::mem::take(&mut self.uncounted));
    }
}

/// One unit of scan work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanRange {
    /// Partitions `begin .. begin + count`.
    Partitions { begin: u16, count: u16 },
    /// Records after `digest` in its partition.
    AfterDigest([u8; 20]),
    /// Partitions, each from its beginning or after a digest (a resumed backup's rest).
    Cursors(Vec<(u16, Option<[u8; 20]>)>),
}

impl ScanRange {
    /// Partitions covered (a digest range counts as its one partition).
    pub fn partition_count(&self) -> u32 {
        match self {
            ScanRange::Partitions { count, .. } => u32::from(*count),
            ScanRange::AfterDigest(_) => 1,
            ScanRange::Cursors(parts) => parts.len() as u32,
        }
    }
}

/// The partition of a digest, as the client and server compute it.
pub fn partition_of(digest: &[u8; 20]) -> u16 {
    (u32::from_le_bytes([digest[0], digest[1], digest[2], digest[3]]) % u32::from(PARTITIONS))
        as u16
}

/// The scan ranges of a routine's `partition-list` (all partitions when absent), as asbackup
/// splits them: a single range is cut into `parallel` even sub-ranges; several filters are
/// one unit each.
///
/// # Errors
/// A `partition-list` that does not parse (validation normally caught it).
pub fn split_ranges(partition_list: Option<&str>, parallel: u32) -> Result<Vec<ScanRange>, String> {
    let specs = match partition_list.map(str::trim).filter(|s| !s.is_empty()) {
        Some(list) => parse_partition_list(list)?,
        None => vec![PartitionSpec::Range {
            begin: 0,
            count: PARTITIONS,
        }],
    };
    let parallel = parallel.max(1);
    if let [PartitionSpec::Range { begin, count }] = specs.as_slice() {
        let (begin, count) = (u32::from(*begin), u32::from(*count));
        let n = parallel.min(count);
        return Ok((0..n)
            .map(|i| {
                let start = begin + count * i / n;
                let end = begin + count * (i + 1) / n;
                ScanRange::Partitions {
                    begin: start as u16,
                    count: (end - start) as u16,
                }
            })
            .collect());
    }
    Ok(specs
        .into_iter()
        .map(|s| match s {
            PartitionSpec::Range { begin, count } => ScanRange::Partitions { begin, count },
            PartitionSpec::AfterDigest(d) => ScanRange::AfterDigest(d),
        })
        .collect())
}

/// The partitions a `replicas` info answer says this node masters for `namespace`
/// (`ns:regime,n,<b64 master bitmap>,<b64 replica bitmaps>...;`; bit p of the bitmap,
/// most significant first, is partition p).
///
/// # Errors
/// A namespace missing from the answer, or a bitmap that does not decode.
pub fn mastered_partitions(replicas: &str, namespace: &str) -> Result<Vec<u16>, String> {
    let bitmaps = replica_bitmaps(replicas, namespace)?;
    let master = bitmaps.first().map(Vec::as_slice).unwrap_or_default();
    Ok((0..PARTITIONS).filter(|p| bit(master, *p)).collect())
}

/// The partition bitmaps of `namespace` in a `replicas` answer: the master copy's first, then
/// each replica's (bit p, most significant first, is partition p).
///
/// # Errors
/// A namespace missing from the answer, or a bitmap that does not decode.
pub fn replica_bitmaps(replicas: &str, namespace: &str) -> Result<Vec<Vec<u8>>, String> {
    use base64::Engine as _;
    let entry = replicas
        .split(';')
        .filter_map(|e| e.split_once(':'))
        .find(|(ns, _)| ns.trim() == namespace)
        .map(|(_, rest)| rest)
        .ok_or_else(|| format!("namespace {namespace} not in the partition map"))?;
    let fields: Vec<&str> = entry.split(',').collect();
    // Modern form has regime and copy count first; the old one is the master bitmap alone.
    let bitmaps = if fields.len() >= 3 {
        &fields[2..]
    } else {
        &fields[..1]
    };
    bitmaps
        .iter()
        .map(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .map_err(|e| format!("partition bitmap of {namespace}: {e}"))
        })
        .collect()
}

/// The nodes a `racks:` info answer lists for `racks` in `namespace`
/// (`ns=<ns>:rack_<id>=<node>,<node>:rack_<id>=...;ns=...`).
///
/// # Errors
/// The namespace missing from the answer, or a rack with no nodes in it.
pub fn rack_nodes(answer: &str, racks: &[u32], namespace: &str) -> Result<Vec<String>, String> {
    let entry = answer
        .split(';')
        .map(str::trim)
        .find(|e| {
            e.split(':')
                .next()
                .and_then(|f| f.strip_prefix("ns="))
                .is_some_and(|n| n == namespace)
        })
        .ok_or_else(|| format!("namespace {namespace} is not in the cluster's rack list"))?;
    let mut out = Vec::new();
    for rack in racks {
        let key = format!("rack_{rack}");
        let nodes: Vec<String> = entry
            .split(':')
            .filter_map(|f| f.split_once('='))
            .filter(|(k, _)| k.eq_ignore_ascii_case(&key))
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_string)
            .collect();
        if nodes.is_empty() {
            return Err(format!(
                "rack {rack} has no nodes for namespace {namespace}"
            ));
        }
        out.extend(nodes);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Contiguous runs of sorted partition ids as scan ranges.
pub fn ranges_of(partitions: &[u16]) -> Vec<ScanRange> {
    let mut out: Vec<ScanRange> = Vec::new();
    for &p in partitions {
        match out.last_mut() {
            Some(ScanRange::Partitions { begin, count }) if *begin + *count == p => *count += 1,
            _ => out.push(ScanRange::Partitions { begin: p, count: 1 }),
        }
    }
    out
}

/// The filter expression for a scan: the routine's own `filter-exp` (base64, ABS 3.7), set
/// selection (when more than one set) and the last-update-time window `[from, to)` in ms,
/// server LUT being ns at ms precision (D17), all AND-ed.
///
/// # Errors
/// A `filter-exp` that is not base64.
pub fn filter_expression(
    user: Option<&str>,
    sets: &[String],
    lut_from_ms: Option<i64>,
    lut_to_ms: Option<i64>,
) -> Result<Option<Expression>, String> {
    let mut parts = Vec::new();
    if let Some(b64) = user.map(str::trim).filter(|s| !s.is_empty()) {
        parts.push(exp::from_base64(b64).map_err(|e| format!("filter-exp: {e}"))?);
    }
    if sets.len() > 1 {
        parts.push(exp::or(
            sets.iter()
                .map(|s| exp::eq(exp::set_name(), exp::string_val(s.clone())))
                .collect(),
        ));
    }
    if let Some(from) = lut_from_ms {
        parts.push(exp::ge(
            exp::last_update(),
            exp::int_val(from.saturating_mul(1_000_000)),
        ));
    }
    if let Some(to) = lut_to_ms {
        parts.push(exp::lt(
            exp::last_update(),
            exp::int_val(to.saturating_mul(1_000_000)),
        ));
    }
    Ok(match parts.len() {
        0 => None,
        1 => parts.pop(),
        _ => Some(exp::and(parts)),
    })
}

/// A client-side rate limiter shared by a job's workers (D18): records per second for
/// `records-per-second`, bytes per second for `bandwidth`. Each unit takes the next free
/// slot of width 1/rate, so the long-run rate never exceeds the limit.
#[derive(Debug)]
pub struct RateLimiter {
    per_second: f64,
    next: Mutex<Instant>,
}

impl RateLimiter {
    /// `None` for 0 (unlimited).
    pub fn per_second(rate: u64) -> Option<Arc<RateLimiter>> {
        (rate > 0).then(|| {
            Arc::new(RateLimiter {
                per_second: rate as f64,
                next: Mutex::new(Instant::now()),
            })
        })
    }

    /// Waits for one unit's slot.
    pub async fn acquire(&self) {
        self.acquire_n(1).await;
    }

    /// Waits until `n` units may pass.
    pub async fn acquire_n(&self, n: u64) {
        let slot = {
            let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            // Idle time does not bank a burst beyond one slot.
            let slot = (*next).max(now);
            *next = slot + Duration::from_secs_f64(n as f64 / self.per_second);
            slot
        };
        tokio::time::sleep_until(slot.into()).await;
    }
}

/// What one job scans in one namespace.
#[derive(Debug, Clone)]
pub struct ScanSpec {
    pub namespace: String,
    /// The one set to scan natively, or "" (all sets, or several sets through the filter).
    pub set: String,
    pub bins: Option<Vec<String>>,
    pub filter: Option<Expression>,
    pub socket_timeout_ms: u32,
    pub total_timeout_ms: u32,
    pub prefer_rack: bool,
    /// Nodes scanned at once (policy `max-concurrent-nodes`); 0 = all.
    pub max_concurrent_nodes: usize,
    /// Ask nodes to compress replies (policy `use-scan-compression`).
    pub compress: bool,
    /// How records are rendered (policy `compact`).
    pub encoder: EncoderOptions,
    /// Resumes of one range after a failed scan (dropped connection, timeout): the policy's
    /// `retry-policy.max-retries`.
    pub resume_attempts: u32,
}

/// What a namespace's scan workers share: the ranges not yet taken, and the slots that bound
/// how many scans run on the cluster at once.
#[derive(Debug, Clone)]
pub struct ScanQueue {
    pub ranges: Arc<Mutex<VecDeque<ScanRange>>>,
    pub slots: Arc<Semaphore>,
}

/// Scans ranges taken from `queue` until it is empty, sending encoded batches into `tx`.
/// Each scan holds a permit of the cluster's `max-parallel-scans`.
///
/// # Errors
/// [`EngineError::Cancelled`] when `cancel` fires or the receiver is gone (the consumer
/// failed), [`EngineError::Scan`] when a range still fails after its resumes or a record
/// cannot be encoded.
pub async fn run_worker(
    client: Arc<Client>,
    spec: Arc<ScanSpec>,
    queue: ScanQueue,
    limiter: Option<Arc<RateLimiter>>,
    tx: mpsc::Sender<EncodedBatch>,
    progress: Arc<Progress>,
    cancel: CancellationToken,
) -> Result<(), EngineError> {
    let scan_err = |m: String| EngineError::Scan {
        namespace: spec.namespace.clone(),
        message: m,
    };
    let filter = match &spec.filter {
        Some(e) => {
            use base64::Engine as _;
            let b64 = e
                .base64()
                .map_err(|e| scan_err(format!("filter expression: {e}")))?;
            Some(
                base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map_err(|e| scan_err(format!("filter expression: {e}")))?,
            )
        }
        None => None,
    };
    let paced = limiter.is_some();
    let worker = Worker {
        client,
        spec: spec.clone(),
        filter,
        credentials: tokio::sync::OnceCell::new(),
        conns: Mutex::new(Vec::new()),
        owners: Mutex::new(None),
        limiter,
        tx,
        batcher: Mutex::new(Batcher {
            batch: EncodedBatch::with_capacity(),
            error: None,
            progress,
            uncounted: 0,
            count_every: if paced { 1 } else { 64 },
        }),
        cancel,
    };
    loop {
        let next = queue
            .ranges
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop_front();
        let Some(range) = next else { break };
        let _permit = tokio::select! {
            p = queue.slots.clone().acquire_owned() => p.map_err(|_| EngineError::Cancelled)?,
            () = worker.cancel.cancelled() => return Err(EngineError::Cancelled),
        };
        worker.scan_range(&range).await?;
    }
    let rest = {
        let mut b = worker.batcher_mut();
        b.count();
        std::mem::take(&mut b.batch)
    };
    if !rest.is_empty() && worker.tx.send(rest).await.is_err() {
        return Err(EngineError::Cancelled);
    }
    Ok(())
}

/// Where a partition of a range stands.
#[derive(Debug, Clone, Copy)]
struct PartStatus {
    id: u16,
    /// The last record received: a resume continues after it.
    digest: Option<[u8; 20]>,
    done: bool,
    /// The node of this round said it could not serve the partition.
    unavailable: bool,
}

/// Why a round of a range's scan stopped early.
#[derive(Debug)]
enum RoundError {
    /// Retry from the partitions' cursors (dropped connection, node change, timeout).
    Failed(String),
    /// Do not retry: a record cannot be encoded, or the consumer is gone.
    Stop,
    /// Do not retry: the server refused the request itself (e.g. parameter error 4 for a
    /// filter expression it cannot parse); asking again gets the same answer. ABS fails the
    /// backup at once with the server's code too.
    Refused(String),
}

impl From<ReadError> for RoundError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Server {
                code: RC_PARAMETER, ..
            } => RoundError::Refused(e.to_string()),
            e => RoundError::Failed(e.to_string()),
        }
    }
}

/// Which node serves each partition, from the nodes' `replicas` answers; valid while every
/// node keeps its partition generation.
#[derive(Debug)]
struct Owners {
    generations: Vec<(String, isize)>,
    /// Per partition, the node index (into `nodes`) that serves it.
    serving: Vec<Option<usize>>,
    nodes: Vec<Arc<Node>>,
}

/// One scan worker: its batch, its own node connections, its view of the partition map.
struct Worker {
    client: Arc<Client>,
    spec: Arc<ScanSpec>,
    /// The packed filter expression.
    filter: Option<Vec<u8>>,
    /// Hashed once (bcrypt is slow) on the first connection.
    credentials: tokio::sync::OnceCell<Credentials>,
    /// Idle connections, reused across ranges and resumes.
    conns: Mutex<Vec<NodeConn>>,
    owners: Mutex<Option<Arc<Owners>>>,
    limiter: Option<Arc<RateLimiter>>,
    tx: mpsc::Sender<EncodedBatch>,
    /// Shared by the node streams of a range that run at once; held per frame, never across
    /// an await.
    batcher: Mutex<Batcher>,
    cancel: CancellationToken,
}

impl Worker {
    fn batcher_mut(&self) -> std::sync::MutexGuard<'_, Batcher> {
        self.batcher.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn scan_err(&self, message: String) -> EngineError {
        EngineError::Scan {
            namespace: self.spec.namespace.clone(),
            message,
        }
    }

    /// Scans one range to its end, resuming unfinished partitions from their last record.
    async fn scan_range(&self, range: &ScanRange) -> Result<(), EngineError> {
        let mut parts: Vec<PartStatus> = match range {
            ScanRange::Partitions { begin, count } => (*begin..begin + count)
                .map(|id| PartStatus {
                    id,
                    digest: None,
                    done: false,
                    unavailable: false,
                })
                .collect(),
            ScanRange::AfterDigest(d) => vec![PartStatus {
                id: partition_of(d),
                digest: Some(*d),
                done: false,
                unavailable: false,
            }],
            ScanRange::Cursors(parts) => {
                let mut v: Vec<PartStatus> = parts
                    .iter()
                    .map(|(id, digest)| PartStatus {
                        id: *id,
                        digest: *digest,
                        done: false,
                        unavailable: false,
                    })
                    .collect();
                // `round` merges results back by binary search on the id.
                v.sort_by_key(|p| p.id);
                v
            }
        };
        let mut attempt = 0;
        loop {
            // The total timeout ends a round from inside its node streams, so the partition
            // cursors of what they already took come back (dropping them would re-read those
            // records on the resume).
            let deadline = (self.spec.total_timeout_ms > 0).then(|| {
                tokio::time::Instant::now()
                    + Duration::from_millis(u64::from(self.spec.total_timeout_ms))
            });
            let outcome = tokio::select! {
                r = self.round(&mut parts, deadline) => r,
                () = self.cancel.cancelled() => return Err(EngineError::Cancelled),
            };
            if let Some(e) = self.batcher_mut().error.take() {
                return Err(self.scan_err(format!("a record cannot be backed up: {e}")));
            }
            if self.cancel.is_cancelled() || self.tx.is_closed() {
                return Err(EngineError::Cancelled);
            }
            let why = match outcome {
                Err(RoundError::Stop) => return Err(EngineError::Cancelled),
                Err(RoundError::Refused(why)) => return Err(self.scan_err(why)),
                Ok(()) if parts.iter().all(|p| p.done) => return Ok(()),
                Ok(()) => format!(
                    "{} partitions were unavailable on the nodes asked (the partition map is moving)",
                    parts.iter().filter(|p| !p.done).count()
                ),
                Err(RoundError::Failed(why)) => why,
            };
            attempt += 1;
            if attempt > self.spec.resume_attempts {
                return Err(self.scan_err(format!("gave up after {attempt} attempts: {why}")));
            }
            tracing::warn!(
                namespace = %self.spec.namespace,
                attempt,
                error = %why,
                "Scan interrupted; resuming from the last record received."
            );
            self.batcher_mut().progress.add_retry();
            // The partition map may be what changed.
            *self.owners.lock().unwrap_or_else(|p| p.into_inner()) = None;
            let pause = SCAN_RESUME_BACKOFF * 2u32.pow((attempt - 1).min(6));
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = self.cancel.cancelled() => return Err(EngineError::Cancelled),
            }
        }
    }

    /// One pass over the unfinished partitions: one stream per serving node, at most
    /// `max-concurrent-nodes` at once.
    async fn round(
        &self,
        parts: &mut [PartStatus],
        deadline: Option<tokio::time::Instant>,
    ) -> Result<(), RoundError> {
        use futures::StreamExt as _;
        let owners = self.owners().await?;
        // Each node stream works on its own copy of its partitions; merged back below.
        let mut groups: Vec<(usize, Vec<PartStatus>)> = Vec::new();
        for p in parts.iter().filter(|p| !p.done) {
            let node = owners.serving[usize::from(p.id)].ok_or_else(|| {
                RoundError::Failed(format!(
                    "partition {} has no node in the partition map",
                    p.id
                ))
            })?;
            match groups.iter_mut().find(|(n, _)| *n == node) {
                Some((_, g)) => g.push(*p),
                None => groups.push((node, vec![*p])),
            }
        }
        let limit = match self.spec.max_concurrent_nodes {
            0 => groups.len().max(1),
            n => n,
        };
        let streams: Vec<_> = groups
            .into_iter()
            .map(|(node, group)| self.scan_node(owners.nodes[node].clone(), group, deadline))
            .collect();
        let finished: Vec<(Vec<PartStatus>, Result<(), RoundError>)> =
            futures::stream::iter(streams)
                .buffer_unordered(limit)
                .collect()
                .await;
        let mut results = Vec::with_capacity(finished.len());
        for (group, result) in finished {
            for g in group {
                // `parts` is in partition order (see `scan_range`).
                if let Ok(i) = parts.binary_search_by_key(&g.id, |p| p.id) {
                    parts[i] = g;
                }
            }
            results.push(result);
        }
        // A stop wins over a failure: it must not be retried.
        let mut first: Option<RoundError> = None;
        for r in results {
            match r {
                Ok(()) => {}
                Err(RoundError::Stop) => return Err(RoundError::Stop),
                // A refusal wins over a failure: retrying would only be refused again.
                Err(e @ RoundError::Refused(_)) => first = Some(e),
                Err(e) => {
                    first.get_or_insert(e);
                }
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// The partition map, refreshed when a node's partition generation moved.
    async fn owners(&self) -> Result<Arc<Owners>, RoundError> {
        let nodes = self.client.nodes();
        if nodes.is_empty() {
            return Err(RoundError::Failed("the cluster has no active node".into()));
        }
        let mut generations: Vec<(String, isize)> = nodes
            .iter()
            .map(|n| (n.name().to_string(), n.partition_generation()))
            .collect();
        generations.sort();
        if let Some(o) = &*self.owners.lock().unwrap_or_else(|p| p.into_inner())
            && o.generations == generations
        {
            return Ok(o.clone());
        }
        let ns = &self.spec.namespace;
        let racks: Vec<usize> = if self.spec.prefer_rack {
            nodes[0]
                .client_policy()
                .rack_ids
                .clone()
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        // serving[p] = (replica index, node): the master unless a replica is in a preferred rack.
        let mut best: Vec<Option<((bool, usize), usize)>> = vec![None; usize::from(PARTITIONS)];
        for (i, node) in nodes.iter().enumerate() {
            let answer = node
                .info(&aerospike::AdminPolicy::default(), &["replicas"])
                .await
                .map_err(|e| {
                    RoundError::Failed(format!("info replicas on {}: {e}", node.name()))
                })?;
            let text = answer
                .get("replicas")
                .map(String::as_str)
                .unwrap_or_default();
            let bitmaps = replica_bitmaps(text, ns).map_err(RoundError::Failed)?;
            let in_rack = racks.iter().any(|r| node.has_rack(ns, *r));
            for (copy, bits) in bitmaps.iter().enumerate() {
                for p in 0..PARTITIONS {
                    if !bit(bits, p) {
                        continue;
                    }
                    let slot = &mut best[usize::from(p)];
                    // Rank: a preferred-rack copy first, then the lowest copy index (master).
                    let rank = (!in_rack, copy);
                    if slot.is_none_or(|(r, _)| rank < r) {
                        *slot = Some((rank, i));
                    }
                }
            }
        }
        let owners = Arc::new(Owners {
            generations,
            serving: best.into_iter().map(|b| b.map(|(_, n)| n)).collect(),
            nodes,
        });
        *self.owners.lock().unwrap_or_else(|p| p.into_inner()) = Some(owners.clone());
        Ok(owners)
    }

    async fn connection(&self, node: &Node) -> Result<NodeConn, RoundError> {
        let idle = {
            let mut conns = self.conns.lock().unwrap_or_else(|p| p.into_inner());
            conns
                .iter()
                .position(|c| c.node() == node.name())
                .map(|i| conns.swap_remove(i))
        };
        if let Some(c) = idle {
            return Ok(c);
        }
        let policy = node.client_policy();
        let credentials = self
            .credentials
            .get_or_try_init(|| async {
                let policy = policy.clone();
                tokio::task::spawn_blocking(move || Credentials::from_policy(&policy))
                    .await
                    .map_err(|e| e.to_string())?
            })
            .await
            .map_err(|e| RoundError::Failed(format!("credentials: {e}")))?;
        let connect = Duration::from_millis(u64::from(match policy.connect_timeout {
            0 => policy.timeout.max(1000),
            t => t,
        }));
        let socket = (self.spec.socket_timeout_ms > 0)
            .then(|| Duration::from_millis(u64::from(self.spec.socket_timeout_ms)));
        let tls = crate::aerospike::node_reader::TlsTarget::of_node(node);
        Ok(NodeConn::open(
            node.name(),
            node.address(),
            connect,
            socket,
            credentials,
            tls.as_ref(),
        )
        .await?)
    }

    /// Streams the partitions `parts` from `node`, encoding records into the worker's batch
    /// and moving each partition's cursor as its records are taken.
    async fn scan_node(
        &self,
        node: Arc<Node>,
        mut parts: Vec<PartStatus>,
        deadline: Option<tokio::time::Instant>,
    ) -> (Vec<PartStatus>, Result<(), RoundError>) {
        let result = self.stream_node(&node, &mut parts, deadline).await;
        (parts, result)
    }

    async fn stream_node(
        &self,
        node: &Node,
        parts: &mut [PartStatus],
        deadline: Option<tokio::time::Instant>,
    ) -> Result<(), RoundError> {
        let mut conn = self.connection(node).await?;
        let full: Vec<u16> = parts
            .iter()
            .filter(|p| p.digest.is_none())
            .map(|p| p.id)
            .collect();
        let resume: Vec<[u8; 20]> = parts.iter().filter_map(|p| p.digest).collect();
        // Partition id → index in `parts`.
        let mut index = vec![u16::MAX; usize::from(PARTITIONS)];
        for (i, p) in parts.iter().enumerate() {
            index[usize::from(p.id)] = i as u16;
        }
        let request = ScanRequest {
            namespace: &self.spec.namespace,
            set: &self.spec.set,
            bins: self.spec.bins.as_deref().filter(|b| !b.is_empty()),
            filter: self.filter.as_deref(),
            socket_timeout_ms: self.spec.socket_timeout_ms,
            task_id: rand::random(),
            partitions: &full,
            resume: &resume,
            compress: self.spec.compress,
        }
        .encode();
        conn.write(&request).await?;
        let options = self.spec.encoder;
        let paced = self.limiter.is_some();
        loop {
            let frame = match deadline {
                None => conn.read_frame().await?,
                Some(at) => tokio::time::timeout_at(at, conn.read_frame())
                    .await
                    .map_err(|_| {
                        RoundError::Failed(format!(
                            "no end within the total timeout of {} ms",
                            self.spec.total_timeout_ms
                        ))
                    })??,
            };
            let mut pos = 0;
            while pos < frame.len() {
                // Under the lock: messages up to a full batch (or one record when paced).
                let (full_batch, records, last) = {
                    let mut b = self.batcher_mut();
                    let mut records = 0u64;
                    let mut full_batch = None;
                    let mut last = false;
                    while pos < frame.len() {
                        let message = next_message(frame, &mut pos).map_err(|m| {
                            match node_reader::server_code(&m) {
                                Some(code) => RoundError::from(ReadError::Server {
                                    node: node.name().to_string(),
                                    code,
                                }),
                                None => RoundError::Failed(format!("node {}: {m}", node.name())),
                            }
                        })?;
                        match message {
                            Message::Record(r) => {
                                let i = index[usize::from(partition_of(&r.digest))];
                                if let Some(p) = parts.get_mut(usize::from(i)) {
                                    p.digest = Some(r.digest);
                                }
                                full_batch = b.add(&r, options);
                                if b.error.is_some() {
                                    return Err(RoundError::Stop);
                                }
                                records += 1;
                                if full_batch.is_some() || paced {
                                    break;
                                }
                            }
                            // A real server sends this only for a partition it could
                            // not serve (result `UNAVAILABLE`): that one waits for the
                            // next round, wherever the partition map then puts it. A zero
                            // result changes nothing (the official clients ignore it).
                            Message::PartitionDone { partition, ok } => {
                                let i = index[usize::from(partition % PARTITIONS)];
                                if let Some(p) = parts.get_mut(usize::from(i))
                                    && !ok
                                {
                                    p.unavailable = true;
                                }
                            }
                            Message::Skipped => {}
                            Message::Last => {
                                // Every partition asked for and served is finished once the
                                // records before this point are stored: the checkpoint
                                // learns it with the batch that carries them.
                                b.batch
                                    .done
                                    .extend(parts.iter().filter(|p| !p.unavailable).map(|p| p.id));
                                last = true;
                                break;
                            }
                        }
                    }
                    (full_batch, records, last)
                };
                if let Some(batch) = full_batch {
                    // Cancellation is looked at once per batch; `scan_range` also drops this
                    // stream when it fires.
                    if self.cancel.is_cancelled() || self.tx.send(batch).await.is_err() {
                        return Err(RoundError::Stop);
                    }
                }
                if let Some(l) = &self.limiter {
                    l.acquire_n(records).await;
                }
                if last {
                    // The end of a node's stream finishes every partition it was asked
                    // for, except those it said it could not serve.
                    for p in parts.iter_mut() {
                        p.done = !p.unavailable;
                        p.unavailable = false;
                    }
                    self.conns
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(conn);
                    return Ok(());
                }
            }
        }
    }
}

fn bit(bits: &[u8], p: u16) -> bool {
    bits.get(usize::from(p) / 8)
        .is_some_and(|b| b & (0x80 >> (p % 8)) != 0)
}

#[cfg(test)]
#[path = "scan_tests.rs"]
mod tests;
