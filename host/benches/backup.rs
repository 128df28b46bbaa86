//! Backup engine throughput against the test node: records/s and MB/s of a full backup
//! (no codecs, then zstd + AES-256) next to the raw client scan rate of the same data in the
//! same run, with the peak RSS of each phase and CPU seconds per million records.
//!
//! The node runs in a separate process (this binary re-started with `--serve-node`), as a
//! server would (DESIGN D12): CPU is reported apart for this process (client + engine) and
//! for the node.
//!
//! `cargo bench -p aerospike-backup-service --bench backup` measures 1 M records (cargo
//! passes `--bench`; `ABS_BENCH_RECORDS=N` sets another count); without it (e.g.
//! `cargo test --all-targets`) it does a 1k-record smoke run. Figures are recorded in docs/PERFORMANCE.md ("Backup engine").

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use abs::config::{Config, Format};
use abs::jobs::backup::{EngineContext, JobSpec, SystemClock, run_job};
use abs::plugins::{Registry, Runtime, RuntimeConfig};
use abs::progress::Progress;
use abs::storage::layout::BackupKind;
use aerospike::query::{PartitionFilter, Statement};
use aerospike::{Bins, Client, ClientPolicy, QueryPolicy};

use tokio_util::sync::CancellationToken;

#[path = "common/node_process.rs"]
mod node_process;
#[path = "common/procfs.rs"]
mod procfs;
use node_process::NodeProcess;
use procfs::{cpu_seconds_of, peak_rss_mib, reset_peak_rss, rss_mib};

/// User + system CPU seconds of this process.
fn cpu_seconds() -> f64 {
    cpu_seconds_of("self")
}

/// Scans in parallel, for the raw rate and the backups alike.
const PARALLEL: u32 = 4;

async fn raw_scan(client: &Client) -> u64 {
    let count = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for i in 0..PARALLEL as usize {
        let begin = 4096 * i / PARALLEL as usize;
        let end = 4096 * (i + 1) / PARALLEL as usize;
        let count = count.clone();
        let handle = client
            .query_foreach(
                &QueryPolicy::default(),
                PartitionFilter::by_range(begin, end - begin),
                Statement::new("test", "", Bins::All),
                move |r| {
                    let count = count.clone();
                    async move {
                        if r.is_ok() {
                            count.fetch_add(1, Ordering::Relaxed);
                        }
                        true
                    }
                },
            )
            .await
            .expect("query");
        tasks.push(handle);
    }
    for mut h in tasks {
        h.wait().await.expect("scan");
    }
    count.load(Ordering::Relaxed)
}

fn config(port: u16, storage: &str, policy: &str, routine: &str) -> Config {
    let yaml = format!(
        r#"
aerospike-clusters:
  c: {{seed-nodes: [{{host-name: 127.0.0.1, port: {port}}}]}}
storage:
  s: {storage}
backup-policies:
  p: {{parallel: {PARALLEL}{policy}}}
backup-routines:
  r: {{interval-cron: "@daily", source-cluster: c, storage: s, backup-policy: p, namespaces: [test]{routine}}}
"#
    );
    abs::config::parse::<Config>(&yaml, Format::Yaml).expect("bench config")
}

struct Phase {
    name: &'static str,
    records: u64,
    bytes: u64,
    elapsed: Duration,
    cpu: f64,
    node_cpu: f64,
    peak_mib: f64,
    /// RSS when the phase started (the node's store dominates it).
    base_mib: f64,
}

impl Phase {
    fn print(&self, raw_rate: f64) {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let rate = self.records as f64 / secs;
        println!(
            "{:<22} {:>9} rec  {:>7.2} s  {:>10.0} rec/s  {:>7.1} MB/s  {:>5.0}% of raw  CPU-s/M rec: {:>5.2} here + {:>5.2} node  peak RSS {:>6.1} MiB (+{:.1} over start)",
            self.name,
            self.records,
            secs,
            rate,
            self.bytes as f64 / 1e6 / secs,
            100.0 * rate / raw_rate.max(1e-9),
            self.cpu * 1e6 / self.records.max(1) as f64,
            self.node_cpu * 1e6 / self.records.max(1) as f64,
            self.peak_mib,
            self.peak_mib - self.base_mib,
        );
    }
}

fn main() {
    if node_process::serve_if_asked() {
        return;
    }
    let args: Vec<String> = std::env::args().collect();
    let full = args.iter().any(|a| a == "--bench");
    // ABS_BENCH_RECORDS overrides the count, e.g. 10000000 to show memory does not grow.
    let records = std::env::var("ABS_BENCH_RECORDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(if full { 1_000_000 } else { 1_000 });
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio")
        .block_on(bench(records));
}

async fn bench(records: usize) {
    let node = NodeProcess::spawn(records);
    let port = node.port;
    let client = Client::new(&ClientPolicy::default(), &format!("127.0.0.1:{port}"))
        .await
        .expect("connect");

    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("plugin-cwasm");
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(cache),
        ..RuntimeConfig::default()
    })
    .expect("runtime");
    let plugins = Arc::new(Registry::with_defaults(&runtime).expect("plugins"));
    let ctx = EngineContext::new(plugins, Arc::new(SystemClock));

    // Raw client scan, same parallelism, same data.
    reset_peak_rss();
    let base_mib = rss_mib();
    let (cpu0, ncpu0, t) = (cpu_seconds(), node.cpu(), Instant::now());
    let n = raw_scan(&client).await;
    let raw = Phase {
        name: "raw client scan",
        records: n,
        bytes: 0,
        elapsed: t.elapsed(),
        cpu: cpu_seconds() - cpu0,
        node_cpu: node.cpu() - ncpu0,
        peak_mib: peak_rss_mib(),
        base_mib,
    };
    assert_eq!(n, records as u64, "raw scan saw every record");
    let raw_rate = n as f64 / raw.elapsed.as_secs_f64();
    raw.print(raw_rate);

    let key = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/data/golden/key.pem");
    let zstd_aes = format!(
        ", compression: {{mode: ZSTD}}, encryption: {{mode: AES256, key-file: \"{}\"}}",
        key.display()
    );
    // The 1% run (41 of 4096 partitions) shows whether peak memory grows with backup size.
    let cases = [
        (
            "backup 1%, no codecs",
            String::new(),
            ", partition-list: \"0-41\"",
        ),
        ("backup, no codecs", String::new(), ""),
        ("backup, zstd + AES-256", zstd_aes, ""),
        ("backup to S3 (moto), no codecs", String::new(), ""),
    ];
    // The S3 stand-in, started only when its phase runs (it holds every object in memory).
    let mut moto = None;
    // ABS_BENCH_ONLY=<text> runs only the backup phases whose name contains it (profiling).
    let only = std::env::var("ABS_BENCH_ONLY").unwrap_or_default();
    for (name, policy, routine) in cases {
        if !name.contains(only.as_str()) {
            continue;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = if name.contains("S3") {
            let m = moto.get_or_insert_with(|| {
                let m = testkit::emulators::moto().expect("moto (scripts/test installs it)");
                let (status, _) = m.request("PUT", "/bench", b"").expect("create bucket");
                assert_eq!(status, 200, "create bucket");
                m
            });
            format!(
                "{{s3-storage: {{bucket: bench, s3-region: us-east-1, path: run, s3-endpoint-override: \"{}\", access-key-id: AKIDBENCH, secret-access-key: bench-secret}}}}",
                m.endpoint()
            )
        } else {
            format!("{{local-storage: {{path: \"{}\"}}}}", dir.path().display())
        };
        let spec = JobSpec {
            routine: "r".into(),
            kind: BackupKind::Full,
            config: Arc::new(config(port, &storage, &policy, routine)),
            resume: None,
        };
        reset_peak_rss();
        let base_mib = rss_mib();
        let (cpu0, ncpu0, t) = (cpu_seconds(), node.cpu(), Instant::now());
        let progress = Arc::new(Progress::new(chrono::Utc::now()));
        let report = run_job(&ctx, &spec, progress.clone(), CancellationToken::new())
            .await
            .expect("backup");
        let phase = Phase {
            name,
            records: report.records(),
            bytes: progress.snapshot().bytes,
            elapsed: t.elapsed(),
            cpu: cpu_seconds() - cpu0,
            node_cpu: node.cpu() - ncpu0,
            peak_mib: peak_rss_mib(),
            base_mib,
        };
        if routine.is_empty() {
            assert_eq!(
                phase.records, records as u64,
                "{name}: every record backed up"
            );
        }
        phase.print(raw_rate);
    }
}
