//! The Prometheus registry and the service's named metric families.
//!
//! Families carry the names ABS exports (`aerospike_backup_service_*`): the legacy unlabelled
//! counters of the seed, registered at zero from the start, and the 3.x labelled families,
//! pre-initialised for every configured routine so dashboards see zeros, not gaps (DESIGN D8).

use crate::config::Config;
use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

const NS: &str = "aerospike_backup_service";

/// Backup types as ABS labels them.
pub const BACKUP_TYPES: [&str; 2] = ["full", "incremental"];
/// Backup outcomes as ABS labels them.
pub const OUTCOMES: [&str; 5] = ["success", "failure", "canceled", "retry", "skip"];

/// Every metric the service exports.
#[derive(Debug, Clone)]
pub struct Metrics {
    pub registry: Registry,
    // Legacy (seed) families, unlabelled.
    pub runs_total: IntCounter,
    pub incremental_runs_total: IntCounter,
    pub skip_total: IntCounter,
    pub incremental_skip_total: IntCounter,
    pub failure_total: IntCounter,
    pub incremental_failure_total: IntCounter,
    pub duration_millis: Gauge,
    pub incremental_duration_millis: Gauge,
    // ABS 3.x labelled families.
    pub backup_events: IntCounterVec,
    pub backup_duration: HistogramVec,
    pub backup_in_progress: IntGaugeVec,
    pub backup_progress_pct: IntGaugeVec,
    pub last_successful_backup: IntGaugeVec,
    /// Ours: records and stored bytes of successful backups.
    pub backup_records: IntCounterVec,
    pub backup_bytes: IntCounterVec,
    /// Ours: the next scheduled run of each routine and type (unix s; 0 = none).
    pub next_scheduled_backup: IntGaugeVec,
    pub restore_events: IntCounterVec,
    pub restore_in_progress: IntGauge,
    /// Verify jobs by outcome (`ok`, `problems`, `failure`, `canceled`).
    pub verify_events: IntCounterVec,
    /// Verify jobs per routine that found problems or could not run.
    pub verify_failure: IntCounterVec,
    /// `copy-to` copies by routine, target storage and outcome.
    pub copy_events: IntCounterVec,
    /// Ours: records written and stored bytes read by finished restores.
    pub restore_records: IntCounter,
    pub restore_bytes: IntCounter,
    // Ours: the HTTP API.
    pub http_requests: IntCounterVec,
    pub http_request_duration: HistogramVec,
    pub http_rate_limited: IntCounter,
    /// Ours: webhook delivery attempts (each try, retries included) by webhook.
    pub webhook_attempts: IntCounterVec,
    /// Ours: webhook deliveries by webhook and outcome (`success`, `failure` = gave up after
    /// the retries, `dropped` = pushed out of the full queue).
    pub webhook_deliveries: IntCounterVec,
    /// Ours: deliveries waiting in the queue.
    pub webhook_queue_length: IntGauge,
    /// Ours: 1 when the last periodic check listed the configured storage, 0 when it could
    /// not (see `/ready` and the log for the reason).
    pub storage_reachable: IntGaugeVec,
}

fn name(n: &str) -> String {
    format!("{NS}_{n}")
}

impl Metrics {
    /// Creates and registers every family.
    pub fn new() -> Self {
        let registry = Registry::new();
        let counter = |n: &str, help: &str| {
            let c = IntCounter::new(name(n), help).expect("valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("unique metric");
            c
        };
        let gauge = |n: &str, help: &str| {
            let g = Gauge::new(name(n), help).expect("valid metric");
            registry
                .register(Box::new(g.clone()))
                .expect("unique metric");
            g
        };
        let runs_total = counter("runs_total", "Successful backup runs counter");
        let incremental_runs_total = counter(
            "incremental_runs_total",
            "Successful incremental backup runs counter",
        );
        let skip_total = counter("skip_total", "Full backup skip counter");
        let incremental_skip_total =
            counter("incremental_skip_total", "Incremental backup skip counter");
        let failure_total = counter("failure_total", "Full backup failure counter");
        let incremental_failure_total = counter(
            "incremental_failure_total",
            "Incremental backup failure counter",
        );
        let duration_millis = gauge("duration_millis", "Full backup duration in milliseconds");
        let incremental_duration_millis = gauge(
            "incremental_duration_millis",
            "Incremental backup duration in milliseconds",
        );

        let backup_events = IntCounterVec::new(
            Opts::new(
                name("backup_events_total"),
                "Backup events by routine, type and outcome",
            ),
            &["routine", "type", "outcome"],
        )
        .expect("valid metric");
        let backup_duration = HistogramVec::new(
            HistogramOpts::new(
                name("backup_duration_seconds"),
                "Backup duration in seconds",
            )
            .buckets(vec![
                1.0,
                5.0,
                15.0,
                60.0,
                300.0,
                900.0,
                3600.0,
                4.0 * 3600.0,
                12.0 * 3600.0,
            ]),
            &["routine", "type"],
        )
        .expect("valid metric");
        let backup_in_progress = IntGaugeVec::new(
            Opts::new(
                name("backup_in_progress"),
                "1 while a backup of the routine and type runs",
            ),
            &["routine", "type"],
        )
        .expect("valid metric");
        let backup_progress_pct = IntGaugeVec::new(
            Opts::new(
                name("backup_progress_pct"),
                "Progress of the running backup, 0-100",
            ),
            &["routine", "type"],
        )
        .expect("valid metric");
        let last_successful_backup = IntGaugeVec::new(
            Opts::new(
                name("last_successful_backup_timestamp"),
                "Unix time of the last successful backup",
            ),
            &["routine", "type"],
        )
        .expect("valid metric");
        let backup_records = IntCounterVec::new(
            Opts::new(
                name("backup_records_total"),
                "Records written by successful backups",
            ),
            &["routine", "type"],
        )
        .expect("valid metric");
        let backup_bytes = IntCounterVec::new(
            Opts::new(
                name("backup_bytes_total"),
                "Bytes stored by successful backups",
            ),
            &["routine", "type"],
        )
        .expect("valid metric");
        let next_scheduled_backup = IntGaugeVec::new(
            Opts::new(
                name("next_scheduled_backup_timestamp"),
                "Unix time of the next scheduled backup; 0 when none is scheduled",
            ),
            &["routine", "type"],
        )
        .expect("valid metric");
        let restore_events = IntCounterVec::new(
            Opts::new(name("restore_events_total"), "Restore jobs by outcome"),
            &["outcome"],
        )
        .expect("valid metric");
        let restore_in_progress =
            IntGauge::new(name("restore_in_progress"), "Restore jobs running")
                .expect("valid metric");
        let verify_events = IntCounterVec::new(
            Opts::new(name("verify_events_total"), "Verify jobs by outcome"),
            &["outcome"],
        )
        .expect("valid metric");
        let verify_failure = IntCounterVec::new(
            Opts::new(
                name("verify_failure_total"),
                "Verify jobs that found problems in a backup or could not read it",
            ),
            &["routine"],
        )
        .expect("valid metric");
        let copy_events = IntCounterVec::new(
            Opts::new(
                name("copy_events_total"),
                "Copies of backups to copy-to storages by routine, storage and outcome",
            ),
            &["routine", "storage", "outcome"],
        )
        .expect("valid metric");
        let restore_records = IntCounter::new(
            name("restore_records_total"),
            "Records written by finished restore jobs",
        )
        .expect("valid metric");
        let restore_bytes = IntCounter::new(
            name("restore_bytes_total"),
            "Stored backup bytes read by finished restore jobs",
        )
        .expect("valid metric");
        let http_requests = IntCounterVec::new(
            Opts::new(
                name("http_requests_total"),
                "HTTP requests by method, route and status",
            ),
            &["method", "route", "status"],
        )
        .expect("valid metric");
        let http_request_duration = HistogramVec::new(
            HistogramOpts::new(
                name("http_request_duration_seconds"),
                "HTTP request latency",
            )
            .buckets(vec![0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0]),
            &["method", "route"],
        )
        .expect("valid metric");
        let http_rate_limited = IntCounter::new(
            name("http_rate_limited_total"),
            "HTTP requests refused with 429 by the per-client rate limit",
        )
        .expect("valid metric");
        let webhook_attempts = IntCounterVec::new(
            Opts::new(
                name("webhook_attempts_total"),
                "Webhook delivery attempts (retries included) by webhook",
            ),
            &["webhook"],
        )
        .expect("valid metric");
        let webhook_deliveries = IntCounterVec::new(
            Opts::new(
                name("webhook_deliveries_total"),
                "Webhook deliveries by webhook and outcome (success, failure, dropped)",
            ),
            &["webhook", "outcome"],
        )
        .expect("valid metric");
        let webhook_queue_length = IntGauge::new(
            name("webhook_queue_length"),
            "Webhook deliveries waiting to be sent",
        )
        .expect("valid metric");
        let storage_reachable = IntGaugeVec::new(
            Opts::new(
                name("storage_reachable"),
                "1 when the last check could list the storage, 0 when it could not",
            ),
            &["storage"],
        )
        .expect("valid metric");
        for c in [
            Box::new(webhook_attempts.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(storage_reachable.clone()),
            Box::new(webhook_deliveries.clone()),
            Box::new(webhook_queue_length.clone()),
            Box::new(backup_events.clone()),
            Box::new(backup_duration.clone()),
            Box::new(backup_in_progress.clone()),
            Box::new(backup_progress_pct.clone()),
            Box::new(last_successful_backup.clone()),
            Box::new(backup_records.clone()),
            Box::new(backup_bytes.clone()),
            Box::new(next_scheduled_backup.clone()),
            Box::new(restore_events.clone()),
            Box::new(restore_in_progress.clone()),
            Box::new(verify_events.clone()),
            Box::new(verify_failure.clone()),
            Box::new(copy_events.clone()),
            Box::new(restore_records.clone()),
            Box::new(restore_bytes.clone()),
            Box::new(http_requests.clone()),
            Box::new(http_request_duration.clone()),
            Box::new(http_rate_limited.clone()),
        ] {
            registry.register(c).expect("unique metric");
        }
        for outcome in ["success", "failure", "canceled"] {
            restore_events.with_label_values(&[outcome]);
        }
        for outcome in ["ok", "problems", "failure", "canceled"] {
            verify_events.with_label_values(&[outcome]);
        }
        Self {
            registry,
            runs_total,
            incremental_runs_total,
            skip_total,
            incremental_skip_total,
            failure_total,
            incremental_failure_total,
            duration_millis,
            incremental_duration_millis,
            backup_events,
            backup_duration,
            backup_in_progress,
            backup_progress_pct,
            last_successful_backup,
            backup_records,
            backup_bytes,
            next_scheduled_backup,
            restore_events,
            restore_in_progress,
            verify_events,
            verify_failure,
            copy_events,
            restore_records,
            restore_bytes,
            http_requests,
            http_request_duration,
            http_rate_limited,
            webhook_attempts,
            webhook_deliveries,
            webhook_queue_length,
            storage_reachable,
        }
    }

    /// Drops the reachability series of storages that are no longer configured.
    pub fn retain_storages(&self, names: &[&String]) {
        for mf in prometheus::core::Collector::collect(&self.storage_reachable) {
            for m in mf.get_metric() {
                for l in m.get_label() {
                    if l.name() == "storage" && !names.iter().any(|n| n.as_str() == l.value()) {
                        let _ = self.storage_reachable.remove_label_values(&[l.value()]);
                    }
                }
            }
        }
    }

    /// Creates the labelled series of every configured routine at zero. Series of routines
    /// that no longer exist are removed, so label cardinality follows the config.
    pub fn sync_routines(&self, cfg: &Config) {
        let wanted: std::collections::BTreeSet<&str> =
            cfg.backup_routines.keys().map(String::as_str).collect();
        // Drop series of removed routines: gather the current label sets and delete stale ones.
        for mf in prometheus::core::Collector::collect(&self.backup_events) {
            for m in mf.get_metric() {
                let labels: Vec<(&str, &str)> = m
                    .get_label()
                    .iter()
                    .map(|l| (l.name(), l.value()))
                    .collect();
                let routine = labels.iter().find(|l| l.0 == "routine").map(|l| l.1);
                if let Some(r) = routine.filter(|r| !wanted.contains(r)) {
                    let r = r.to_string();
                    for t in BACKUP_TYPES {
                        for o in OUTCOMES {
                            let _ = self.backup_events.remove_label_values(&[&r, t, o]);
                        }
                        let _ = self.backup_duration.remove_label_values(&[&r, t]);
                        let _ = self.backup_in_progress.remove_label_values(&[&r, t]);
                        let _ = self.backup_progress_pct.remove_label_values(&[&r, t]);
                        let _ = self.last_successful_backup.remove_label_values(&[&r, t]);
                        let _ = self.backup_records.remove_label_values(&[&r, t]);
                        let _ = self.backup_bytes.remove_label_values(&[&r, t]);
                        let _ = self.next_scheduled_backup.remove_label_values(&[&r, t]);
                    }
                }
            }
        }
        for r in wanted {
            for t in BACKUP_TYPES {
                for o in OUTCOMES {
                    self.backup_events.with_label_values(&[r, t, o]);
                }
                let _: Histogram = self.backup_duration.with_label_values(&[r, t]);
                self.backup_in_progress.with_label_values(&[r, t]);
                self.backup_progress_pct.with_label_values(&[r, t]);
                self.last_successful_backup.with_label_values(&[r, t]);
                self.backup_records.with_label_values(&[r, t]);
                self.backup_bytes.with_label_values(&[r, t]);
                self.next_scheduled_backup.with_label_values(&[r, t]);
            }
        }
    }

    /// The Prometheus text exposition of every family.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding cannot fail");
        String::from_utf8(buf).expect("prometheus text is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_families_start_at_zero_and_routines_are_preinitialised() {
        let m = Metrics::new();
        let cfg: Config = serde_yaml::from_str(
            "backup-routines:\n  daily: {interval-cron: '@daily', source-cluster: c, storage: s, namespaces: []}\n",
        )
        .unwrap();
        m.sync_routines(&cfg);
        let text = m.render();
        for n in [
            "aerospike_backup_service_runs_total 0",
            "aerospike_backup_service_incremental_failure_total 0",
            "aerospike_backup_service_duration_millis 0",
            r#"aerospike_backup_service_backup_events_total{outcome="skip",routine="daily",type="incremental"} 0"#,
            r#"aerospike_backup_service_backup_in_progress{routine="daily",type="full"} 0"#,
            r#"aerospike_backup_service_restore_events_total{outcome="failure"} 0"#,
        ] {
            assert!(text.contains(n), "missing {n}\n{text}");
        }
        m.sync_routines(&Config::default());
        assert!(!m.render().contains("routine=\"daily\""));
    }
}
