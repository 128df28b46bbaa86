//! The restore writer: decoded records → the destination cluster, with the restore policy's
//! write rules (BACKUP-FORMAT.md §7) and ABS's counters.
//!
//! Per record: set filter → bin filter → namespace mapping → expiry → write. A record with
//! no bins left is `skipped`, one already expired is `expired`; the server's answer sorts the
//! rest into `inserted`, `existed` (create-only on an existing record), `fresher` (the
//! server's generation is not below the backup's), `ignored` (record-level errors asrestore
//! ignores too) and `failed`. So `read = inserted + fresher + existed + ignored + skipped +
//! expired + failed` holds at every moment a batch is not in flight.
//!
//! Lists and maps go back as the backup's msgpack bytes: `Value::Unknown(particle, bytes)`
//! is written verbatim by the client as a whole-bin value, so every CDT flag survives.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aerospike::{
    BatchOperation, BatchPolicy, BatchWritePolicy, Bin, Client, Expiration, GenerationPolicy, Key,
    RecordExistsAction, ResultCode, WritePolicy, operations,
};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::config::{RestorePolicy, WriteRetry};

use crate::aerospike::scan::RateLimiter;
use crate::asb::convert::{into_restore_value, restore_key};
use crate::asb::{AsbRecord, CITRUSLEAF_EPOCH_UNIX_SECS};
use crate::error::EngineError;

/// The counters of a restore job (dto.RestoreJobStatus).
#[derive(Debug, Default)]
pub struct Counters {
    pub read: AtomicU64,
    pub inserted: AtomicU64,
    pub existed: AtomicU64,
    pub fresher: AtomicU64,
    pub ignored: AtomicU64,
    pub skipped: AtomicU64,
    pub expired: AtomicU64,
    pub failed: AtomicU64,
    pub in_doubt: AtomicU64,
    pub retries: AtomicU64,
    /// Stored bytes read.
    pub bytes: AtomicU64,
    pub indexes: AtomicU64,
    pub udfs: AtomicU64,
}

/// A copy of [`Counters`] at one moment, in ABS's JSON names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct CounterSnapshot {
    pub read_records: u64,
    pub total_bytes: u64,
    pub expired_records: u64,
    pub skipped_records: u64,
    pub ignored_records: u64,
    pub inserted_records: u64,
    pub existed_records: u64,
    pub fresher_records: u64,
    /// Ours: records that could not be written (the job fails when there are any, and its
    /// `error` says how many). Not in the answer: ABS's `RestoreJobStatus` has no such field
    /// and its clients decode strictly.
    #[serde(skip_serializing)]
    pub failed_records: u64,
    pub index_count: u64,
    pub udf_count: u64,
    pub errors_in_doubt: u64,
}

impl Counters {
    pub fn snapshot(&self) -> CounterSnapshot {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        CounterSnapshot {
            read_records: g(&self.read),
            total_bytes: g(&self.bytes),
            expired_records: g(&self.expired),
            skipped_records: g(&self.skipped),
            ignored_records: g(&self.ignored),
            inserted_records: g(&self.inserted),
            existed_records: g(&self.existed),
            fresher_records: g(&self.fresher),
            failed_records: g(&self.failed),
            index_count: g(&self.indexes),
            udf_count: g(&self.udfs),
            errors_in_doubt: g(&self.in_doubt),
        }
    }

    fn add(&self, counter: &AtomicU64, n: u64) {
        let _ = self;
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

impl CounterSnapshot {
    /// The outcomes that account for the records read.
    pub fn accounted(&self) -> u64 {
        self.inserted_records
            + self.fresher_records
            + self.existed_records
            + self.ignored_records
            + self.skipped_records
            + self.expired_records
            + self.failed_records
    }
}

/// What the policy says about each record, fixed when the job starts.
#[derive(Debug, Clone)]
pub struct WriteRules {
    /// `(source, destination)` namespace mapping.
    pub namespace: Option<(String, String)>,
    pub sets: HashSet<String>,
    pub bins: HashSet<String>,
    pub exists: RecordExistsAction,
    /// Write only when the backup's generation is higher (default).
    pub generation_check: bool,
    pub extra_ttl: u64,
    /// "Now" in seconds since the Citrusleaf epoch, for the void-time → TTL rule.
    pub now_cl: i64,
}

impl WriteRules {
    pub fn new(policy: &RestorePolicy, now_unix_secs: i64) -> Self {
        let exists = if policy.replace.unwrap_or(false) {
            RecordExistsAction::Replace
        } else if policy.unique.unwrap_or(false) {
            RecordExistsAction::CreateOnly
        } else {
            RecordExistsAction::Update
        };
        WriteRules {
            namespace: policy
                .namespace
                .as_ref()
                .map(|n| (n.source.clone(), n.destination.clone())),
            sets: policy.set_list.iter().cloned().collect(),
            bins: policy.bin_list.iter().cloned().collect(),
            exists,
            generation_check: !policy.no_generation.unwrap_or(false),
            extra_ttl: policy.extra_ttl.unwrap_or(0),
            now_cl: now_unix_secs - CITRUSLEAF_EPOCH_UNIX_SECS,
        }
    }

    /// What to do with one record.
    pub fn prepare(&self, mut rec: AsbRecord) -> Prepared {
        if !self.sets.is_empty() && !rec.set.as_ref().is_some_and(|s| self.sets.contains(s)) {
            return Prepared::Skip;
        }
        if !self.bins.is_empty() {
            rec.bins.retain(|b| self.bins.contains(&b.name));
        }
        if rec.bins.is_empty() {
            return Prepared::Skip;
        }
        let expiration = if rec.void_time == 0 {
            Expiration::Never
        } else {
            let ttl = i64::from(rec.void_time) + self.extra_ttl as i64 - self.now_cl;
            if ttl <= 0 {
                return Prepared::Expired;
            }
            Expiration::Seconds(u32::try_from(ttl).unwrap_or(u32::MAX))
        };
        let namespace = match &self.namespace {
            Some((src, dst)) if *src == rec.namespace => Some(dst.as_str()),
            _ => None,
        };
        let key = match restore_key(&rec, namespace) {
            Ok(k) => k,
            Err(e) => return Prepared::Ignore(e.to_string()),
        };
        let mut bins = Vec::with_capacity(rec.bins.len());
        for b in rec.bins {
            match into_restore_value(b.value) {
                Ok(v) => bins.push(Bin::new(b.name, v)),
                Err(m) => return Prepared::Ignore(format!("bin {}: {m}", b.name)),
            }
        }
        Prepared::Write(Box::new(Write {
            key,
            bins,
            generation: u32::from(rec.generation),
            expiration,
            send_key: rec.key.is_some(),
        }))
    }

    fn batch_policy(&self, w: &Write) -> BatchWritePolicy {
        let mut p = BatchWritePolicy {
            record_exists_action: self.exists,
            expiration: w.expiration,
            send_key: w.send_key,
            ..Default::default()
        };
        if self.generation_check {
            p.generation_policy = GenerationPolicy::ExpectGenGreater;
            p.generation = w.generation;
        }
        p
    }

    fn write_policy(&self, w: &Write, base: &WritePolicy) -> WritePolicy {
        let mut p = base.clone();
        p.record_exists_action = self.exists;
        p.expiration = w.expiration;
        p.send_key = w.send_key;
        if self.generation_check {
            p.generation_policy = GenerationPolicy::ExpectGenGreater;
            p.generation = w.generation;
        }
        p
    }
}

/// One record ready to be written.
#[derive(Debug, Clone)]
pub struct Write {
    key: Key,
    bins: Vec<Bin>,
    generation: u32,
    expiration: Expiration,
    send_key: bool,
}

/// [`WriteRules::prepare`]'s verdict.
#[derive(Debug)]
pub enum Prepared {
    Write(Box<Write>),
    Skip,
    Expired,
    /// The record cannot be sent (e.g. a non-UTF-8 string key); counted `ignored`.
    Ignore(String),
}

/// How the server's answer for a record is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Inserted,
    Existed,
    Fresher,
    Ignored,
    Retry,
    Fatal,
}

/// asrestore's classification of result codes (BACKUP-FORMAT.md §7).
fn classify(code: &ResultCode) -> Verdict {
    use ResultCode as R;
    match code {
        R::Ok => Verdict::Inserted,
        R::KeyExistsError => Verdict::Existed,
        R::GenerationError => Verdict::Fresher,
        R::RecordTooBig
        | R::KeyMismatch
        | R::BinNameTooLong
        | R::AlwaysForbidden
        | R::FailForbidden
        | R::BinTypeError
        | R::BinNotFound => Verdict::Ignored,
        R::ParameterError
        | R::ServerMemError
        | R::InvalidNamespace
        | R::InvalidGeojson
        | R::UnsupportedFeature
        | R::EnterpriseOnly
        | R::BinExistsError
        | R::KeyNotFoundError
        | R::FilteredOut
        | R::InvalidUser
        | R::InvalidPassword
        | R::InvalidCredential
        | R::InvalidRole
        | R::InvalidPrivilege
        | R::NotAuthenticated
        | R::RoleViolation
        | R::NotAllowlisted
        | R::QuotaExceeded
        | R::SecurityNotSupported
        | R::SecurityNotEnabled
        | R::ExpiredSession => Verdict::Fatal,
        _ => Verdict::Retry,
    }
}

/// Writes batches of records to one cluster.
pub struct RecordWriter {
    pub client: Arc<Client>,
    pub rules: Arc<WriteRules>,
    pub counters: Arc<Counters>,
    pub batch_writes: bool,
    pub retry: WriteRetry,
    /// `tps`: records per second.
    pub tps: Option<Arc<RateLimiter>>,
    pub batch_policy: BatchPolicy,
    pub write_policy: WritePolicy,
    pub cancel: CancellationToken,
}

impl std::fmt::Debug for RecordWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordWriter")
            .field("batch_writes", &self.batch_writes)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl RecordWriter {
    /// Client policies from the restore policy's timeouts.
    pub fn policies(policy: &RestorePolicy) -> (BatchPolicy, WritePolicy) {
        let socket = u32::try_from(policy.socket_timeout_ms()).unwrap_or(u32::MAX);
        let total = u32::try_from(policy.total_timeout.unwrap_or(0)).unwrap_or(u32::MAX);
        let mut bp = BatchPolicy::default();
        bp.base_policy.socket_timeout = socket;
        bp.base_policy.total_timeout = total;
        // Our retry loop owns retries, so counters see each attempt.
        bp.base_policy.max_retries = 0;
        let mut wp = WritePolicy::default();
        wp.base_policy.socket_timeout = socket;
        wp.base_policy.total_timeout = total;
        wp.base_policy.max_retries = 0;
        (bp, wp)
    }

    /// Writes `records` (already counted as read), counting every outcome.
    ///
    /// # Errors
    /// A record failed for good (permanent error or retries exhausted), or the job was
    /// cancelled; the counters include everything up to then.
    pub async fn write(&self, records: Vec<AsbRecord>) -> Result<(), EngineError> {
        let c = &self.counters;
        let mut writes = Vec::with_capacity(records.len());
        for rec in records {
            match self.rules.prepare(rec) {
                Prepared::Write(w) => writes.push(*w),
                Prepared::Skip => c.add(&c.skipped, 1),
                Prepared::Expired => c.add(&c.expired, 1),
                Prepared::Ignore(why) => {
                    tracing::debug!(reason = %why, "Record ignored.");
                    c.add(&c.ignored, 1);
                }
            }
        }
        if writes.is_empty() {
            return Ok(());
        }
        if let Some(t) = &self.tps {
            t.acquire_n(writes.len() as u64).await;
        }
        if self.batch_writes {
            self.write_batch(writes).await
        } else {
            self.write_singly(writes).await
        }
    }

    async fn backoff(&self, attempt: u32) -> Result<(), EngineError> {
        let ms = self.retry.base_ms as f64 * self.retry.multiplier.max(1.0).powi(attempt as i32);
        self.counters.add(&self.counters.retries, 1);
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(ms as u64)) => Ok(()),
            () = self.cancel.cancelled() => Err(EngineError::Cancelled),
        }
    }

    fn count(&self, verdict: Verdict) {
        let c = &self.counters;
        match verdict {
            Verdict::Inserted => c.add(&c.inserted, 1),
            Verdict::Existed => c.add(&c.existed, 1),
            Verdict::Fresher => c.add(&c.fresher, 1),
            Verdict::Ignored => c.add(&c.ignored, 1),
            Verdict::Retry | Verdict::Fatal => c.add(&c.failed, 1),
        }
    }

    fn failure(&self, n: u64, in_doubt: u64, what: String) -> EngineError {
        let c = &self.counters;
        c.add(&c.failed, n);
        c.add(&c.in_doubt, in_doubt);
        EngineError::Write(what)
    }

    async fn write_batch(&self, writes: Vec<Write>) -> Result<(), EngineError> {
        // Each record's key moves into its row and its bins are dropped once the row's
        // operations hold them: with up to `max-async-batches` batches waiting on the
        // cluster, a second copy of every batch would double the restore's memory.
        let mut pending: Vec<BatchOperation> = writes
            .into_iter()
            .map(|w| {
                let policy = self.rules.batch_policy(&w);
                let ops: Vec<_> = w.bins.iter().map(operations::put).collect();
                BatchOperation::write(&policy, w.key, ops)
            })
            .collect();
        let mut attempt = 0;
        loop {
            let call = tokio::select! {
                r = self.client.batch(&self.batch_policy, &mut pending) => r,
                () = self.cancel.cancelled() => return Err(EngineError::Cancelled),
            };
            if let Err(e) = call {
                let code = ResultCode::from(e.result_code().clamp(0, 255) as u8);
                let retryable = classify(&code) == Verdict::Retry;
                if retryable && attempt < self.retry.max_retries {
                    self.backoff(attempt).await?;
                    attempt += 1;
                    continue;
                }
                let n = pending.len() as u64;
                let doubt = if e.in_doubt() { n } else { 0 };
                return Err(self.failure(n, doubt, format!("batch write of {n} records: {e}")));
            }
            let mut retry = Vec::new();
            let mut fatal = None;
            for op in pending {
                let code = op.result_code().unwrap_or(ResultCode::Timeout);
                match classify(&code) {
                    Verdict::Retry if attempt < self.retry.max_retries => retry.push(op),
                    Verdict::Retry | Verdict::Fatal => {
                        if op.in_doubt() {
                            self.counters.add(&self.counters.in_doubt, 1);
                        }
                        self.count(Verdict::Fatal);
                        fatal.get_or_insert(code);
                    }
                    v => self.count(v),
                }
            }
            if let Some(code) = fatal {
                // The rows still to retry fail with the batch.
                let n = retry.len() as u64;
                return Err(self.failure(n, 0, format!("a record could not be written: {code:?}")));
            }
            if retry.is_empty() {
                return Ok(());
            }
            self.backoff(attempt).await?;
            attempt += 1;
            pending = retry;
        }
    }

    async fn write_singly(&self, writes: Vec<Write>) -> Result<(), EngineError> {
        let results = futures::future::join_all(writes.iter().map(|w| self.put_one(w))).await;
        results.into_iter().collect()
    }

    async fn put_one(&self, w: &Write) -> Result<(), EngineError> {
        let policy = self.rules.write_policy(w, &self.write_policy);
        let mut attempt = 0;
        loop {
            let r = tokio::select! {
                r = self.client.put(&policy, &w.key, &w.bins) => r,
                () = self.cancel.cancelled() => return Err(EngineError::Cancelled),
            };
            let (code, err) = match r {
                Ok(()) => (ResultCode::Ok, None),
                Err(e) => (
                    ResultCode::from(e.result_code().clamp(0, 255) as u8),
                    Some(e),
                ),
            };
            match classify(&code) {
                Verdict::Retry if attempt < self.retry.max_retries => {
                    self.backoff(attempt).await?;
                    attempt += 1;
                }
                Verdict::Retry | Verdict::Fatal => {
                    let doubt = u64::from(err.as_ref().is_some_and(|e| e.in_doubt()));
                    let msg = err.map(|e| e.to_string()).unwrap_or_default();
                    return Err(self.failure(
                        1,
                        doubt,
                        format!("a record could not be written: {msg}"),
                    ));
                }
                v => {
                    self.count(v);
                    return Ok(());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asb::{Bin as AsbBin, BinValue};

    fn record(void_time: u32, bins: &[&str]) -> AsbRecord {
        AsbRecord {
            key: None,
            namespace: "test".into(),
            digest: [7; 20],
            set: Some("s".into()),
            generation: 3,
            void_time,
            bins: bins
                .iter()
                .map(|b| AsbBin::new(*b, BinValue::Int(1)))
                .collect(),
        }
    }

    #[test]
    fn expiry_filters_and_namespace_mapping() {
        let policy = RestorePolicy {
            extra_ttl: Some(10),
            bin_list: vec!["a".into()],
            namespace: Some(crate::config::RestoreNamespace {
                source: "test".into(),
                destination: "other".into(),
            }),
            ..Default::default()
        };
        let rules = WriteRules::new(&policy, CITRUSLEAF_EPOCH_UNIX_SECS + 1000);
        // void 995 + 10 extra - now 1000 = 5 s left.
        match rules.prepare(record(995, &["a", "b"])) {
            Prepared::Write(w) => {
                assert_eq!(w.expiration, Expiration::Seconds(5));
                assert_eq!(w.bins.len(), 1);
                assert_eq!(w.key.namespace(), "other");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            rules.prepare(record(990, &["a"])),
            Prepared::Expired
        ));
        assert!(matches!(rules.prepare(record(0, &["b"])), Prepared::Skip));
        match rules.prepare(record(0, &["a"])) {
            Prepared::Write(w) => assert_eq!(w.expiration, Expiration::Never),
            other => panic!("{other:?}"),
        }
        let sets = RestorePolicy {
            set_list: vec!["other".into()],
            ..Default::default()
        };
        let rules = WriteRules::new(&sets, 0);
        assert!(matches!(rules.prepare(record(0, &["a"])), Prepared::Skip));
    }

    #[test]
    fn policies_map_to_exists_actions_and_generation() {
        let rules = WriteRules::new(&RestorePolicy::default(), 0);
        let Prepared::Write(w) = rules.prepare(record(0, &["a"])) else {
            panic!()
        };
        let p = rules.batch_policy(&w);
        assert_eq!(p.record_exists_action, RecordExistsAction::Update);
        assert_eq!(p.generation_policy, GenerationPolicy::ExpectGenGreater);
        assert_eq!(p.generation, 3);
        let rules = WriteRules::new(
            &RestorePolicy {
                unique: Some(true),
                no_generation: Some(true),
                ..Default::default()
            },
            0,
        );
        let p = rules.batch_policy(&w);
        assert_eq!(p.record_exists_action, RecordExistsAction::CreateOnly);
        assert_eq!(p.generation_policy, GenerationPolicy::None);
        assert_eq!(classify(&ResultCode::GenerationError), Verdict::Fresher);
        assert_eq!(classify(&ResultCode::KeyExistsError), Verdict::Existed);
        assert_eq!(classify(&ResultCode::Timeout), Verdict::Retry);
        assert_eq!(classify(&ResultCode::InvalidNamespace), Verdict::Fatal);
    }
}
