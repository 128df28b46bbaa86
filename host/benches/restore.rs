//! Restore engine throughput against the test node: records/s and MB/s of restoring a full
//! backup (no codecs, then zstd + AES-256) from local storage into an empty node, next to the
//! raw client batch-write rate of the same records in the same run, with CPU seconds per
//! million records (this process and the node apart) and the peak RSS of each phase.
//!
//! Nodes run in separate processes (this binary re-started with `--serve-node N`), as a
//! server would (DESIGN D12): a source node filled with N records, backed up once per
//! pipeline; then one empty destination node per phase.
//!
//! `cargo bench -p aerospike-backup-service --bench restore` measures 1 M records (cargo
//! passes `--bench`; `ABS_BENCH_RECORDS=N` sets another count); without it (e.g.
//! `cargo test --all-targets`) it does a 1k-record smoke run. Figures are recorded in
//! docs/PERFORMANCE.md ("Restore engine").

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use abs::aerospike::writer::Counters;
use abs::config::{Config, Format, RestorePolicy};
use abs::jobs::backup::{EngineContext, JobSpec, SystemClock, open_storage, run_job};
use abs::jobs::restore::{self, RestorePlan};
use abs::plugins::{Registry, Runtime, RuntimeConfig};
use abs::progress::Progress;
use abs::storage::layout::BackupKind;
use aerospike::{
    BatchOperation, BatchPolicy, BatchWritePolicy, Bin, Client, ClientPolicy, Key, Value,
    operations,
};
use testkit::fixtures;
use testkit::node::wire::Val;
use tokio_util::sync::CancellationToken;

/// Files read (and batch writers) in parallel, for the raw writes and the restores alike.
const PARALLEL: usize = 4;
/// Records per batch call (ABS default).
const BATCH: usize = 128;
/// Batches in flight in the raw phase: what the restore's writer pool keeps busy too.
const RAW_IN_FLIGHT: usize = 8;

#[path = "common/node_process.rs"]
mod node_process;
#[path = "common/procfs.rs"]
mod procfs;
use node_process::NodeProcess;
use procfs::{cpu_seconds_of, peak_rss_mib, reset_peak_rss, rss_mib};

fn config(port: u16, dir: &std::path::Path, policy: &str) -> Config {
    let yaml = format!(
        r#"
aerospike-clusters:
  c: {{seed-nodes: [{{host-name: 127.0.0.1, port: {port}}}]}}
storage:
  s: {{local-storage: {{path: "{path}"}}}}
backup-policies:
  p: {{parallel: {PARALLEL}{policy}}}
backup-routines:
  r: {{interval-cron: "@daily", source-cluster: c, storage: s, backup-policy: p, namespaces: [test]}}
"#,
        path = dir.display(),
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
    base_mib: f64,
}

impl Phase {
    fn print(&self, raw_rate: f64) {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let rate = self.records as f64 / secs;
        println!(
            "{:<26} {:>9} rec  {:>7.2} s  {:>10.0} rec/s  {:>7.1} MB/s  {:>5.0}% of raw  CPU-s/M rec: {:>5.2} here + {:>5.2} node  peak RSS {:>6.1} MiB (+{:.1} over start)",
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

/// A fixture value as the client sends it (lists as their particle, as restore does).
fn value(v: &Val) -> Value {
    match v {
        Val::Int(i) => Value::Int(*i),
        Val::Float(f) => Value::from(*f),
        Val::Str(s) => Value::String(String::from_utf8_lossy(s).into_owned()),
        Val::Blob(b) => Value::Blob(b.clone()),
        other => {
            let (ptype, data) = other.to_particle();
            Value::Unknown(ptype, data)
        }
    }
}

/// The raw rate: the same records, generated here, written with batch calls of [`BATCH`],
/// [`RAW_IN_FLIGHT`] at a time, default policies plus send-key.
async fn raw_batch_writes(client: Arc<Client>, records: usize) -> u64 {
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<BatchOperation>>(RAW_IN_FLIGHT);
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let mut tasks = Vec::new();
    for _ in 0..RAW_IN_FLIGHT {
        let (client, rx) = (client.clone(), rx.clone());
        tasks.push(tokio::spawn(async move {
            let mut ok = 0u64;
            loop {
                let next = rx.lock().await.recv().await;
                let Some(mut ops) = next else { return ok };
                client
                    .batch(&BatchPolicy::default(), &mut ops)
                    .await
                    .expect("batch");
                ok += ops
                    .iter()
                    .filter(|o| o.result_code() == Some(aerospike::ResultCode::Ok))
                    .count() as u64;
            }
        }));
    }
    let policy = BatchWritePolicy {
        send_key: true,
        ..BatchWritePolicy::default()
    };
    let s = node_process::small_records(records);
    let mut batch = Vec::with_capacity(BATCH);
    for r in fixtures::generate(&s) {
        let key = Key::with_digest("test", &r.set, Some(Value::Int(r.user_key)), r.digest);
        let bins: Vec<Bin> = r
            .bins
            .iter()
            .map(|(n, v)| Bin::new(n.clone(), value(v)))
            .collect();
        let ops: Vec<_> = bins.iter().map(operations::put).collect();
        batch.push(BatchOperation::write(&policy, key, ops));
        if batch.len() == BATCH {
            tx.send(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)))
                .await
                .expect("writers");
        }
    }
    if !batch.is_empty() {
        tx.send(batch).await.expect("writers");
    }
    drop(tx);
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("writer");
    }
    total
}

fn main() {
    if node_process::serve_if_asked() {
        return;
    }
    let args: Vec<String> = std::env::args().collect();
    let full = args.iter().any(|a| a == "--bench");
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
    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("plugin-cwasm");
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(cache),
        ..RuntimeConfig::default()
    })
    .expect("runtime");
    let plugins = Arc::new(Registry::with_defaults(&runtime).expect("plugins"));
    let ctx = EngineContext::new(plugins.clone(), Arc::new(SystemClock));
    let key = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/data/golden/key.pem");
    let key = key.display().to_string();
    let cases = [
        ("restore, no codecs", String::new(), serde_json::json!({})),
        (
            "restore, zstd + AES-256",
            format!(
                ", compression: {{mode: ZSTD}}, encryption: {{mode: AES256, key-file: \"{key}\"}}"
            ),
            serde_json::json!({"encryption": {"mode": "AES256", "key-file": key}}),
        ),
    ];

    // The backups to restore, written once from a filled source node.
    let mut backups = Vec::new();
    {
        let source = NodeProcess::spawn(records);
        for (name, policy, _) in &cases {
            let dir = tempfile::tempdir().expect("tempdir");
            let cfg = Arc::new(config(source.port, dir.path(), policy));
            let spec = JobSpec {
                routine: "r".into(),
                kind: BackupKind::Full,
                config: cfg.clone(),
                resume: None,
            };
            let report = run_job(
                &ctx,
                &spec,
                Arc::new(Progress::new(chrono::Utc::now())),
                CancellationToken::new(),
            )
            .await
            .expect("backup");
            assert_eq!(report.records(), records as u64, "{name}: backed up");
            let folder = report.namespaces[0].key.clone().expect("folder");
            backups.push((dir, cfg, folder));
        }
    }

    // Raw batch writes into an empty node.
    let raw_rate = {
        let dest = NodeProcess::spawn(0);
        let client = Arc::new(
            Client::new(
                &ClientPolicy::default(),
                &format!("127.0.0.1:{}", dest.port),
            )
            .await
            .expect("connect"),
        );
        reset_peak_rss();
        let base_mib = rss_mib();
        let (cpu0, ncpu0, t) = (cpu_seconds_of("self"), dest.cpu(), Instant::now());
        let n = raw_batch_writes(client, records).await;
        let raw = Phase {
            name: "raw batch writes",
            records: n,
            bytes: 0,
            elapsed: t.elapsed(),
            cpu: cpu_seconds_of("self") - cpu0,
            node_cpu: dest.cpu() - ncpu0,
            peak_mib: peak_rss_mib(),
            base_mib,
        };
        assert_eq!(n, records as u64, "every raw write succeeded");
        let rate = n as f64 / raw.elapsed.as_secs_f64();
        raw.print(rate);
        rate
    };

    for ((name, _, restore_policy), (_dir, cfg, folder)) in cases.iter().zip(&backups) {
        let dest = NodeProcess::spawn(0);
        let mut cfg = (**cfg).clone();
        cfg.aerospike_clusters
            .get_mut("c")
            .expect("cluster")
            .seed_nodes[0]
            .port = u32::from(dest.port);
        let storage = open_storage(&plugins, &cfg.storage["s"]).expect("storage");
        let folders = restore::plan_path(&storage, folder).await.expect("plan");
        let mut policy: RestorePolicy =
            serde_json::from_value(restore_policy.clone()).expect("policy");
        policy.parallel = Some(PARALLEL as u32);
        let plan = RestorePlan {
            label: "bench".into(),
            cluster_name: "c".into(),
            cluster: cfg.aerospike_clusters["c"].clone(),
            storage: cfg.storage["s"].clone(),
            policy,
            folders,
            config: Arc::new(cfg),
            keys: Default::default(),
        };
        reset_peak_rss();
        let base_mib = rss_mib();
        let counters = Arc::new(Counters::default());
        let progress = Arc::new(Progress::new(chrono::Utc::now()));
        let (cpu0, ncpu0, t) = (cpu_seconds_of("self"), dest.cpu(), Instant::now());
        restore::run_job(
            &ctx,
            &plan,
            counters.clone(),
            progress,
            CancellationToken::new(),
        )
        .await
        .expect("restore");
        let c = counters.snapshot();
        let phase = Phase {
            name,
            records: c.inserted_records,
            bytes: c.total_bytes,
            elapsed: t.elapsed(),
            cpu: cpu_seconds_of("self") - cpu0,
            node_cpu: dest.cpu() - ncpu0,
            peak_mib: peak_rss_mib(),
            base_mib,
        };
        assert_eq!(
            phase.records, records as u64,
            "{name}: every record restored"
        );
        phase.print(raw_rate);
        let restore_rate = phase.records as f64 / phase.elapsed.as_secs_f64();

        // The same restore without the checksum check (each file read once), for its cost.
        {
            let dest = NodeProcess::spawn(0);
            let mut plan = plan.clone();
            plan.cluster.seed_nodes[0].port = u32::from(dest.port);
            for f in &mut plan.folders {
                f.checksums.clear();
            }
            reset_peak_rss();
            let base_mib = rss_mib();
            let counters = Arc::new(Counters::default());
            let (cpu0, ncpu0, t) = (cpu_seconds_of("self"), dest.cpu(), Instant::now());
            restore::run_job(
                &ctx,
                &plan,
                counters.clone(),
                Arc::new(Progress::new(chrono::Utc::now())),
                CancellationToken::new(),
            )
            .await
            .expect("restore");
            let c = counters.snapshot();
            Phase {
                name: "  the same, checksum check off",
                records: c.inserted_records,
                bytes: c.total_bytes,
                elapsed: t.elapsed(),
                cpu: cpu_seconds_of("self") - cpu0,
                node_cpu: dest.cpu() - ncpu0,
                peak_mib: peak_rss_mib(),
                base_mib,
            }
            .print(raw_rate);
        }

        // Verify of the same backup (issue 27): every file read once, hashed, decoded.
        let storage = open_storage(&plugins, &plan.storage).expect("storage");
        reset_peak_rss();
        let base_mib = rss_mib();
        let (cpu0, t) = (cpu_seconds_of("self"), Instant::now());
        let report = abs::jobs::integrity::verify(
            &plugins,
            storage,
            &plan.folders,
            &plan.policy,
            &plan.keys,
            Arc::new(Progress::new(chrono::Utc::now())),
            CancellationToken::new(),
        )
        .await
        .expect("verify");
        assert!(report.is_ok(), "{name}: {report:?}");
        assert_eq!(
            report.records, records as u64,
            "{name}: every record verified"
        );
        let verify = Phase {
            name: "  verify of the same backup",
            records: report.records,
            bytes: report.bytes,
            elapsed: t.elapsed(),
            cpu: cpu_seconds_of("self") - cpu0,
            node_cpu: 0.0,
            peak_mib: peak_rss_mib(),
            base_mib,
        };
        verify.print(raw_rate);
        println!(
            "  verify / restore rate: {:.2}x",
            report.records as f64 / verify.elapsed.as_secs_f64() / restore_rate
        );
    }
}
