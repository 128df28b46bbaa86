//! Partition scans: which partitions each worker reads, the filter expression of a routine,
//! and one worker's scan loop with resume after a dropped connection.
//!
//! Records are delivered through the client's callback API, which commits the resume cursor
//! as each record is handed over (exactly-once). The callback renders each record as `.asb`
//! text on the spot (no intermediate model, no hand-off per record) into a batch of
//! [`BATCH_BYTES`]; full batches go into a bounded channel, so a slow codec or storage slows
//! the node streams, never grows a buffer.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aerospike::expressions::{self as exp, Expression};
use aerospike::query::{PartitionFilter, Statement};
use aerospike::{Bins, Client, QueryPolicy, Record, Replica};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use crate::config::validate::{PartitionSpec, parse_partition_list};

use super::EngineError;
use super::asb::EncoderOptions;
use super::asb::encode::encode_client_record;
use super::progress::Progress;

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
}

impl EncodedBatch {
    fn with_capacity() -> Self {
        EncodedBatch {
            // One record past the threshold fits without a reallocation in the common case.
            bytes: Vec::with_capacity(BATCH_BYTES + 16 * 1024),
            ends: Vec::with_capacity(512),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }
}

/// A worker's batch being filled by its scan callbacks (possibly several node streams at once).
#[derive(Debug)]
struct Batcher {
    batch: EncodedBatch,
    /// Scratch for list/map particles.
    cdt: Vec<u8>,
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
    fn add(&mut self, record: &Record, options: EncoderOptions) -> Option<EncodedBatch> {
        if let Err(e) = encode_client_record(&mut self.batch.bytes, record, options, &mut self.cdt)
        {
            self.error.get_or_insert_with(|| e.to_string());
            return None;
        }
        self.batch.ends.push(self.batch.bytes.len() as u32);
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
}

impl ScanRange {
    pub fn filter(&self) -> PartitionFilter {
        match self {
            ScanRange::Partitions { begin, count } => {
                PartitionFilter::by_range(*begin as usize, *count as usize)
            }
            ScanRange::AfterDigest(d) => {
                let mut pf = PartitionFilter::by_id(partition_of(d) as usize);
                pf.digest = Some(*d);
                pf
            }
        }
    }

    /// Partitions covered (a digest range counts as its one partition).
    pub fn partition_count(&self) -> u32 {
        match self {
            ScanRange::Partitions { count, .. } => u32::from(*count),
            ScanRange::AfterDigest(_) => 1,
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
    use base64::Engine as _;
    let entry = replicas
        .split(';')
        .filter_map(|e| e.split_once(':'))
        .find(|(ns, _)| ns.trim() == namespace)
        .map(|(_, rest)| rest)
        .ok_or_else(|| format!("namespace {namespace} not in the partition map"))?;
    let fields: Vec<&str> = entry.split(',').collect();
    // Modern form has regime and copy count first; the old one is the bitmap alone.
    let bitmap = if fields.len() >= 3 {
        fields[2]
    } else {
        fields[0]
    };
    let bits = base64::engine::general_purpose::STANDARD
        .decode(bitmap.trim())
        .map_err(|e| format!("partition bitmap of {namespace}: {e}"))?;
    Ok((0..PARTITIONS)
        .filter(|p| {
            bits.get(usize::from(*p) / 8)
                .is_some_and(|b| b & (0x80 >> (p % 8)) != 0)
        })
        .collect())
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

impl ScanSpec {
    fn statement(&self) -> Statement {
        let bins = match &self.bins {
            Some(b) if !b.is_empty() => Bins::Some(b.clone()),
            _ => Bins::All,
        };
        Statement::new(self.namespace.clone(), self.set.clone(), bins)
    }

    fn policy(&self) -> QueryPolicy {
        let mut qp = QueryPolicy::default();
        qp.base_policy.filter_expression = self.filter.clone();
        qp.base_policy.socket_timeout = self.socket_timeout_ms;
        qp.base_policy.total_timeout = self.total_timeout_ms;
        if self.prefer_rack {
            qp.base_policy.replica = Replica::PreferRack;
        }
        qp.max_concurrent_nodes = self.max_concurrent_nodes;
        qp.base_policy.use_compression = self.compress;
        qp
    }
}

/// Scans ranges taken from `queue` until it is empty, sending encoded batches into `tx`.
/// Each scan holds a permit of the cluster's `max-parallel-scans`.
///
/// # Errors
/// [`EngineError::Cancelled`] when `cancel` fires or the receiver is gone (the consumer
/// failed), [`EngineError::Scan`] when a range still fails after its resumes or a record
/// cannot be encoded.
#[allow(clippy::too_many_arguments)]
pub async fn run_worker(
    client: Arc<Client>,
    spec: Arc<ScanSpec>,
    queue: Arc<Mutex<VecDeque<ScanRange>>>,
    slots: Arc<Semaphore>,
    limiter: Option<Arc<RateLimiter>>,
    tx: mpsc::Sender<EncodedBatch>,
    progress: Arc<Progress>,
    cancel: CancellationToken,
) -> Result<(), EngineError> {
    let batcher = Arc::new(Mutex::new(Batcher {
        batch: EncodedBatch::with_capacity(),
        cdt: Vec::with_capacity(256),
        error: None,
        progress,
        uncounted: 0,
        count_every: if limiter.is_some() { 1 } else { 64 },
    }));
    loop {
        let next = queue.lock().unwrap_or_else(|p| p.into_inner()).pop_front();
        let Some(range) = next else { break };
        let _permit = tokio::select! {
            p = slots.clone().acquire_owned() => p.map_err(|_| EngineError::Cancelled)?,
            () = cancel.cancelled() => return Err(EngineError::Cancelled),
        };
        scan_range(
            &client,
            &spec,
            range.filter(),
            &limiter,
            &batcher,
            &tx,
            &cancel,
        )
        .await?;
    }
    let rest = {
        let mut b = batcher.lock().unwrap_or_else(|p| p.into_inner());
        b.count();
        std::mem::take(&mut b.batch)
    };
    if !rest.is_empty() && tx.send(rest).await.is_err() {
        return Err(EngineError::Cancelled);
    }
    Ok(())
}

async fn scan_range(
    client: &Client,
    spec: &Arc<ScanSpec>,
    mut filter: PartitionFilter,
    limiter: &Option<Arc<RateLimiter>>,
    batcher: &Arc<Mutex<Batcher>>,
    tx: &mpsc::Sender<EncodedBatch>,
    cancel: &CancellationToken,
) -> Result<(), EngineError> {
    let scan_err = |m: String| EngineError::Scan {
        namespace: spec.namespace.clone(),
        message: m,
    };
    let mut attempt = 0;
    loop {
        let sender = tx.clone();
        let token = cancel.clone();
        let limiter = limiter.clone();
        let state = batcher.clone();
        let options = spec.encoder;
        // Per record: encode under the worker's lock, then (rarely) a send of a full batch.
        // No select, no cancellation future: a full channel cannot block for ever, because
        // the writer drains until every sender is gone, and cancellation ends the query from
        // `scan_range` below.
        let callback = move |r: aerospike::Result<Record>| {
            let (go_on, full) = match r {
                Ok(rec) => {
                    let mut b = state.lock().unwrap_or_else(|p| p.into_inner());
                    let full = b.add(&rec, options);
                    // Cancellation is looked at once per batch (the token takes a lock);
                    // `scan_range` also ends the query itself when it fires.
                    let stop = full.is_some() && token.is_cancelled();
                    (b.error.is_none() && !stop, full)
                }
                // The error also ends the query and comes back from `wait`.
                Err(_) => (true, None),
            };
            let limiter = if go_on { limiter.clone() } else { None };
            let sender = full.as_ref().map(|_| sender.clone());
            async move {
                if let Some(l) = &limiter {
                    l.acquire().await;
                }
                match (sender, full) {
                    (Some(tx), Some(batch)) => go_on && tx.send(batch).await.is_ok(),
                    _ => go_on,
                }
            }
        };
        let mut handle = client
            .query_foreach(&spec.policy(), filter.clone(), spec.statement(), callback)
            .await
            .map_err(|e| scan_err(e.to_string()))?;
        // A stalled node never calls back, so cancellation must not wait for a record.
        let result = tokio::select! {
            r = handle.wait() => r,
            () = cancel.cancelled() => {
                handle.cancel();
                return Err(EngineError::Cancelled);
            }
        };
        if let Some(e) = batcher
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .error
            .take()
        {
            return Err(scan_err(format!("a record cannot be backed up: {e}")));
        }
        if cancel.is_cancelled() || tx.is_closed() {
            return Err(EngineError::Cancelled);
        }
        let cursor = handle.partition_filter();
        match result {
            Ok(()) if cursor.as_ref().is_none_or(PartitionFilter::done) => return Ok(()),
            outcome => {
                attempt += 1;
                let why = match outcome {
                    Err(e) => e.to_string(),
                    Ok(()) => "the scan ended with partitions unfinished".into(),
                };
                if attempt > spec.resume_attempts {
                    return Err(scan_err(format!("gave up after {attempt} attempts: {why}")));
                }
                let Some(cursor) = cursor else {
                    return Err(scan_err(format!("no resume cursor after: {why}")));
                };
                tracing::warn!(
                    namespace = %spec.namespace,
                    attempt,
                    error = %why,
                    "Scan interrupted; resuming from the last record received."
                );
                filter = cursor;
                let pause = SCAN_RESUME_BACKOFF * 2u32.pow((attempt - 1).min(6));
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    () = cancel.cancelled() => return Err(EngineError::Cancelled),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(r: &[ScanRange]) -> Vec<(u16, u16)> {
        r.iter()
            .map(|r| match r {
                ScanRange::Partitions { begin, count } => (*begin, *count),
                ScanRange::AfterDigest(_) => panic!("digest"),
            })
            .collect()
    }

    #[test]
    fn all_partitions_split_evenly_over_workers() {
        let r = split_ranges(None, 3).unwrap();
        assert_eq!(parts(&r), vec![(0, 1365), (1365, 1365), (2730, 1366)]);
        let total: u32 = r.iter().map(ScanRange::partition_count).sum();
        assert_eq!(total, 4096);
        assert_eq!(parts(&split_ranges(Some("10-4"), 8).unwrap()).len(), 4);
        assert_eq!(parts(&split_ranges(Some("7"), 8).unwrap()), vec![(7, 1)]);
    }

    #[test]
    fn several_filters_are_one_unit_each() {
        let r = split_ranges(Some("0-10,100,200-5"), 2).unwrap();
        assert_eq!(parts(&r), vec![(0, 10), (100, 1), (200, 5)]);
        let d = "AAECAwQFBgcICQoLDA0ODxAREhM=";
        let r = split_ranges(Some(d), 4).unwrap();
        let ScanRange::AfterDigest(digest) = r[0] else {
            panic!("digest expected")
        };
        let pf = r[0].filter();
        assert_eq!(pf.digest, Some(digest));
        assert_eq!(pf.begin, partition_of(&digest) as usize);
        assert!(split_ranges(Some("5000"), 1).is_err());
    }

    #[test]
    fn partition_of_matches_the_client() {
        let key = aerospike::Key::new("test", "s", aerospike::Value::from(42)).unwrap();
        assert_eq!(partition_of(&key.digest()) as usize, key.partition_id());
    }

    #[test]
    fn mastered_partitions_read_the_replicas_bitmap() {
        use base64::Engine as _;
        let mut bits = vec![0u8; 512];
        for p in [0u16, 1, 2, 9, 4095] {
            bits[usize::from(p) / 8] |= 0x80 >> (p % 8);
        }
        let b64 = base64::engine::general_purpose::STANDARD.encode(&bits);
        let other = base64::engine::general_purpose::STANDARD.encode(vec![0xffu8; 512]);
        let answer = format!("bar:0,2,{other},{other};test:0,2,{b64},{other}");
        let parts = mastered_partitions(&answer, "test").unwrap();
        assert_eq!(parts, vec![0, 1, 2, 9, 4095]);
        assert_eq!(
            ranges_of(&parts),
            vec![
                ScanRange::Partitions { begin: 0, count: 3 },
                ScanRange::Partitions { begin: 9, count: 1 },
                ScanRange::Partitions {
                    begin: 4095,
                    count: 1
                },
            ]
        );
        assert_eq!(
            mastered_partitions(&format!("test:{b64}"), "test")
                .unwrap()
                .len(),
            5
        );
        assert!(mastered_partitions(&answer, "nope").is_err());
    }

    #[test]
    fn rack_nodes_read_the_racks_answer() {
        let answer = "ns=bar:rack_1=C;ns=test:rack_1=A,B:rack_2=C";
        assert_eq!(rack_nodes(answer, &[1], "test").unwrap(), vec!["A", "B"]);
        assert_eq!(
            rack_nodes(answer, &[2, 1], "test").unwrap(),
            vec!["A", "B", "C"]
        );
        assert_eq!(rack_nodes(answer, &[1], "bar").unwrap(), vec!["C"]);
        let e = rack_nodes(answer, &[3], "test").unwrap_err();
        assert!(e.contains("rack 3"), "{e}");
        assert!(rack_nodes(answer, &[1], "nope").is_err());
    }

    #[test]
    fn filter_expression_combines_sets_and_window() {
        assert!(filter_expression(None, &[], None, None).unwrap().is_none());
        assert!(
            filter_expression(None, &["a".into()], None, None)
                .unwrap()
                .is_none()
        );
        let two = ["a".to_string(), "b".to_string()];
        assert!(filter_expression(None, &two, None, None).unwrap().is_some());
        assert!(
            filter_expression(None, &[], Some(1), Some(2))
                .unwrap()
                .is_some()
        );
        // `eq(1, 1)` packed by the client, as ABS users paste it.
        let packed = aerospike::expressions::eq(
            aerospike::expressions::int_val(1),
            aerospike::expressions::int_val(1),
        );
        let b64 = packed.base64().unwrap();
        assert!(
            filter_expression(Some(&b64), &[], None, None)
                .unwrap()
                .is_some()
        );
        assert!(filter_expression(Some("not base64!"), &[], None, None).is_err());
    }

    #[tokio::test]
    async fn rate_limiter_spaces_slots() {
        assert!(RateLimiter::per_second(0).is_none());
        let l = RateLimiter::per_second(1000).unwrap();
        let start = Instant::now();
        for _ in 0..5 {
            l.acquire().await;
        }
        let next = *l.next.lock().unwrap();
        // Five slots taken: the next free one is at least 5 intervals after the start.
        assert!(next >= start + Duration::from_millis(5));
        let bytes = RateLimiter::per_second(1024 * 1024).unwrap();
        let start = Instant::now();
        bytes.acquire_n(512 * 1024).await;
        let next = *bytes.next.lock().unwrap();
        assert!(
            next >= start + Duration::from_millis(500),
            "half a MiB at 1 MiB/s"
        );
    }
}
