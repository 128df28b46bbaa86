//! Live progress of one backup job: one handle that the stages update and that the job
//! status, logs and metrics read.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use chrono::{DateTime, Utc};

/// Counters of a running job. Cheap to update from any stage (relaxed atomics): readers
/// want a recent picture, not a consistent cut.
#[derive(Debug)]
pub struct Progress {
    started_at: DateTime<Utc>,
    started: Instant,
    records: AtomicU64,
    /// Bytes as stored, after the codec chain.
    bytes: AtomicU64,
    files: AtomicU64,
    /// Estimated records of the whole job (namespace object counts); 0 = unknown.
    estimated_total: AtomicU64,
    /// Scan resumes after a failure (ABS's `retry` outcome).
    retries: AtomicU64,
}

/// A point-in-time view of [`Progress`].
#[derive(Debug, Clone, PartialEq)]
pub struct ProgressSnapshot {
    pub started_at: DateTime<Utc>,
    pub records: u64,
    pub bytes: u64,
    pub files: u64,
    pub estimated_total: u64,
    pub records_per_second: u64,
    pub bytes_per_second: u64,
    /// 0..=100; 100 only once the records reach the estimate.
    pub percent: u8,
    /// Known once at least 1% is done.
    pub estimated_end: Option<DateTime<Utc>>,
}

impl Progress {
    pub fn new(started_at: DateTime<Utc>) -> Self {
        Progress {
            started_at,
            started: Instant::now(),
            records: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            files: AtomicU64::new(0),
            estimated_total: AtomicU64::new(0),
            retries: AtomicU64::new(0),
        }
    }

    pub fn add_records(&self, n: u64) {
        self.records.fetch_add(n, Ordering::Relaxed);
    }

    pub fn add_bytes(&self, n: u64) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
    }

    pub fn add_file(&self) {
        self.files.fetch_add(1, Ordering::Relaxed);
    }

    pub fn add_estimate(&self, n: u64) {
        self.estimated_total.fetch_add(n, Ordering::Relaxed);
    }

    pub fn add_retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    pub fn records(&self) -> u64 {
        self.records.load(Ordering::Relaxed)
    }

    pub fn snapshot(&self) -> ProgressSnapshot {
        let records = self.records.load(Ordering::Relaxed);
        let bytes = self.bytes.load(Ordering::Relaxed);
        let files = self.files.load(Ordering::Relaxed);
        let estimated_total = self.estimated_total.load(Ordering::Relaxed);
        let elapsed = self.started.elapsed().as_secs_f64();
        let rate = |n: u64| {
            if elapsed > 0.0 {
                (n as f64 / elapsed) as u64
            } else {
                0
            }
        };
        let fraction = if estimated_total == 0 {
            0.0
        } else {
            (records as f64 / estimated_total as f64).min(1.0)
        };
        let estimated_end = (0.01..1.0).contains(&fraction).then(|| {
            let remaining = elapsed * (1.0 - fraction) / fraction;
            Utc::now() + chrono::Duration::milliseconds((remaining * 1000.0) as i64)
        });
        ProgressSnapshot {
            started_at: self.started_at,
            records,
            bytes,
            files,
            estimated_total,
            records_per_second: rate(records),
            bytes_per_second: rate(bytes),
            percent: (fraction * 100.0).floor() as u8,
            estimated_end,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_and_eta_follow_the_estimate() {
        let p = Progress::new(Utc::now());
        let s = p.snapshot();
        assert_eq!((s.percent, s.estimated_end), (0, None));
        p.add_estimate(1000);
        p.add_records(5);
        assert_eq!(p.snapshot().percent, 0);
        assert!(p.snapshot().estimated_end.is_none(), "below 1%: no ETA");
        p.add_records(495);
        let s = p.snapshot();
        assert_eq!(s.percent, 50);
        assert!(s.estimated_end.is_some());
        // Estimates can be low: never report more than 100%.
        p.add_records(10_000);
        assert_eq!(p.snapshot().percent, 100);
        p.add_bytes(7);
        p.add_file();
        let s = p.snapshot();
        assert_eq!((s.bytes, s.files, s.records), (7, 1, 10_500));
    }
}
