//! Side by side with Aerospike's own tools on one server, one data set, one run: asbackup
//! against our backup and asrestore against our restore (of asbackup's files), plain and with
//! ZSTD level 3 + AES-256, alternating A B A B over rounds. Each row: wall time, records/s, CPU
//! seconds of the tool and of the server, the tool's peak RSS; then per-round ratios and their
//! median. Each row also gives MiB/s and CPU seconds per GiB of record data (records × the
//! nominal record size), so cost per record and per byte are both visible.
//!
//! ```sh
//! ABS_REAL_AEROSPIKE=127.0.0.1:3000 ABS_REAL_ASRESTORE=/opt/aerospike/bin/asrestore \
//!   ABS_BENCH_RECORDS=1000000 ABS_BENCH_ROUNDS=3 \
//!   cargo bench -p aerospike-backup-service --bench side_by_side
//! ```
//!
//! `asbackup` is looked for beside `asrestore` (or named by `ABS_REAL_ASBACKUP`); the server's
//! CPU is read from `/proc/<pid>` and summed over every process named `asd` (a cluster of
//! several on one machine; `ABS_REAL_ASD_PID=<pid>,<pid>,…` names them instead). The data is
//! set `bench` of namespace `test`: loaded (records of ~240 B: four small bins and a 120-byte
//! blob) when it does not hold the asked count. `ABS_BENCH_RECORD_BYTES=N` asks for records of
//! ~N bytes instead (the blob grows to N − 120 bytes, the part past 120 pseudo-random letters
//! from a 16-letter alphabet: 2:1 for zstd, and slow for it), in set `bench<N>` so that each size
//! keeps its own data. `ABS_BENCH_ONLY=<text>` runs only the cases whose name contains it
//! (`plain`, `zstd`). Without `ABS_REAL_AEROSPIKE` (or without `--bench`, as `cargo test
//! --all-targets` runs it) it says so and does a 1k-record smoke run of our half against the
//! test node in this process. Figures are recorded in docs/PERFORMANCE.md.
//!
//! Each of our phases runs in a process of its own (this binary again, with `ABS_BENCH_CHILD`
//! set), measured from outside as the tools are: its peak RSS is its own, not what an earlier
//! phase left in the allocator, and start-up (plugin loading included) is counted as it is
//! for the tools.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use abs::aerospike::writer::Counters;
use abs::config::{Config, Format, RestorePolicy};
use abs::jobs::backup::{EngineContext, JobSpec, SystemClock, open_storage, run_job};
use abs::jobs::restore::{self, RestorePlan};
use abs::plugins::{Registry, Runtime, RuntimeConfig};
use abs::progress::Progress;
use abs::storage::layout::BackupKind;
use aerospike::{AdminPolicy, Client, ClientPolicy, Key, Value, WritePolicy, as_bin};
use tokio_util::sync::CancellationToken;

/// Scans, files and writers in parallel, for both tools.
const PARALLEL: u32 = 4;
/// The default record size, in bytes (four small bins and a 120-byte blob).
const DEFAULT_RECORD_BYTES: usize = 240;

/// The asked record size (`ABS_BENCH_RECORD_BYTES`), ~240 B by default.
fn record_bytes() -> usize {
    std::env::var("ABS_BENCH_RECORD_BYTES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(DEFAULT_RECORD_BYTES)
}

/// The bench's set: `bench` for the default record size, `bench<N>` for records of ~N bytes.
fn set() -> &'static str {
    static SET: OnceLock<String> = OnceLock::new();
    SET.get_or_init(|| match record_bytes() {
        DEFAULT_RECORD_BYTES => "bench".to_string(),
        n => format!("bench{n}"),
    })
}

#[path = "common/procfs.rs"]
mod procfs;
use procfs::{cpu_seconds_of, peak_rss_mib, reset_peak_rss, stat_of, status_kib};

/// What one run of one tool cost.
#[derive(Debug, Clone, Copy)]
struct Run {
    secs: f64,
    cpu: f64,
    server_cpu: f64,
    peak_mib: f64,
    records: u64,
}

/// CPU seconds of the server, summed over its processes (none: 0).
fn server_cpu(pids: &[String]) -> f64 {
    pids.iter().map(|p| cpu_seconds_of(p)).sum()
}

/// Runs a command to its end, sampling its peak RSS while it runs; its CPU is read from the
/// exited process before it is reaped (a zombie keeps its accounting).
fn run_tool(cmd: &mut Command, server: &[String]) -> Run {
    let server_cpu0 = server_cpu(server);
    let t = Instant::now();
    let child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the tool starts");
    let pid = child.id().to_string();
    let mut peak = 0.0f64;
    let cpu = loop {
        if let Some(kb) = status_kib(&pid, "VmHWM:") {
            peak = peak.max(kb);
        }
        let (state, cpu) = stat_of(&pid);
        if state == 'Z' || state == '?' {
            break cpu;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let out = child.wait_with_output().expect("the tool ends");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // What our phase has to say beside its figures (see `ours_restore`).
    for note in String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.starts_with("note: "))
    {
        println!("    {note}");
    }
    Run {
        secs: t.elapsed().as_secs_f64(),
        cpu,
        server_cpu: server_cpu(server) - server_cpu0,
        peak_mib: peak / 1024.0,
        records: 0,
    }
}

fn config(host: &str, port: u16, root: &Path, policy: &str) -> Config {
    let yaml = format!(
        r#"
aerospike-clusters:
  c: {{seed-nodes: [{{host-name: "{host}", port: {port}}}]}}
storage:
  s: {{local-storage: {{path: "{root}"}}}}
backup-policies:
  p: {{parallel: {PARALLEL}{policy}}}
backup-routines:
  r: {{interval-cron: "@daily", source-cluster: c, storage: s, backup-policy: p, namespaces: [test], set-list: [{set}]}}
"#,
        root = root.display(),
        set = set(),
    );
    abs::config::parse::<Config>(&yaml, Format::Yaml).expect("bench config")
}

struct Bench {
    host: String,
    port: u16,
    server_pids: Vec<String>,
    ctx: EngineContext,
    plugins: Arc<Registry>,
    key: PathBuf,
    asbackup: Option<PathBuf>,
    asrestore: Option<PathBuf>,
}

impl Bench {
    fn server(&self) -> &[String] {
        &self.server_pids
    }

    async fn ours_backup(&self, root: &Path, policy: &str) -> Run {
        let spec = JobSpec {
            routine: "r".into(),
            kind: BackupKind::Full,
            config: Arc::new(config(&self.host, self.port, root, policy)),
            resume: None,
        };
        reset_peak_rss();
        let (cpu0, scpu0, t) = (
            cpu_seconds_of("self"),
            server_cpu(self.server()),
            Instant::now(),
        );
        let progress = Arc::new(Progress::new(chrono::Utc::now()));
        let report = run_job(&self.ctx, &spec, progress, CancellationToken::new())
            .await
            .expect("our backup");
        Run {
            secs: t.elapsed().as_secs_f64(),
            cpu: cpu_seconds_of("self") - cpu0,
            server_cpu: server_cpu(self.server()) - scpu0,
            peak_mib: peak_rss_mib(),
            records: report.records(),
        }
    }

    async fn ours_restore(&self, root: &Path, folder: &str, policy: serde_json::Value) -> Run {
        let cfg = config(&self.host, self.port, root, "");
        let storage = open_storage(&self.plugins, &cfg.storage["s"]).expect("storage");
        let folders = restore::plan_path(&storage, folder).await.expect("plan");
        let mut policy: RestorePolicy = serde_json::from_value(policy).expect("policy");
        policy.parallel = Some(PARALLEL);
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
        let counters = Arc::new(Counters::default());
        let (cpu0, scpu0, t) = (
            cpu_seconds_of("self"),
            server_cpu(self.server()),
            Instant::now(),
        );
        restore::run_job(
            &self.ctx,
            &plan,
            counters.clone(),
            Arc::new(Progress::new(chrono::Utc::now())),
            CancellationToken::new(),
        )
        .await
        .expect("our restore");
        let (secs, cpu, server_cpu) = (
            t.elapsed().as_secs_f64(),
            cpu_seconds_of("self") - cpu0,
            server_cpu(self.server()) - scpu0,
        );
        // Into an emptied set a record counts as existing or fresher only when an earlier
        // attempt of ours wrote it (a timed-out, in-doubt write that its retry found written):
        // it is restored all the same, and the note says how the counters split.
        let c = counters.snapshot();
        if c.inserted_records != c.read_records {
            eprintln!(
                "note: {} read, {} inserted, {} existed, {} fresher, {} in doubt, {} failed",
                c.read_records,
                c.inserted_records,
                c.existed_records,
                c.fresher_records,
                c.errors_in_doubt,
                c.failed_records,
            );
        }
        Run {
            secs,
            cpu,
            server_cpu,
            peak_mib: peak_rss_mib(),
            records: c.inserted_records + c.existed_records + c.fresher_records,
        }
    }

    fn tool_args(&self, cmd: &mut Command, codecs: bool, backup: bool) {
        cmd.args(["-h", &self.host, "-p", &self.port.to_string()]);
        if codecs {
            cmd.args(["--compress", "zstd"]);
            if backup {
                cmd.args(["--compression-level", "3"]);
            }
            cmd.args(["--encrypt", "aes256", "--encryption-key-file"]);
            cmd.arg(&self.key);
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// One measured run: per record (CPU-s per million) and per byte of record data (MiB/s and
/// CPU-s per GiB, with `records` × the nominal record size).
fn row(what: &str, r: &Run, records: u64) {
    let gib = (records as f64 * record_bytes() as f64 / (1u64 << 30) as f64).max(1e-12);
    let m = records.max(1) as f64 / 1e6;
    println!(
        "  {what:<28} {:>7.2} s {:>8.0} rec/s {:>6.1} MiB/s  CPU-s/M: {:>5.2} tool + {:>5.2} server  CPU-s/GiB: {:>6.2} + {:>6.2}  peak RSS {:>6.1} MiB",
        r.secs,
        records as f64 / r.secs.max(1e-9),
        gib * 1024.0 / r.secs.max(1e-9),
        r.cpu / m,
        r.server_cpu / m,
        r.cpu / gib,
        r.server_cpu / gib,
        r.peak_mib,
    );
}

/// The seed node's `sets/test/<set>` statistic `name` (0 when missing).
async fn set_stat(client: &Client, name: &str) -> u64 {
    let cmd = format!("sets/test/{}", set());
    let prefix = format!("{name}=");
    client
        .info(&AdminPolicy::default(), &[&cmd])
        .await
        .ok()
        .and_then(|m| {
            m.get(&cmd).and_then(|a| {
                a.split(':')
                    .find_map(|kv| kv.strip_prefix(prefix.as_str()))
                    .and_then(|v| v.parse().ok())
            })
        })
        .unwrap_or(0)
}

/// Record `i`'s blob: `len` bytes, the first 120 one repeated byte (the default record's
/// blob), the rest pseudo-random letters from a 16-letter alphabet.
fn blob(i: u64, len: usize) -> Vec<u8> {
    let mut b = vec![(i % 251) as u8; len.min(120)];
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while b.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        b.extend(
            (0..16)
                .map(|k| b'a' + ((x >> (4 * k)) & 15) as u8)
                .take(len - b.len()),
        );
    }
    b
}

/// Fills the bench's set with `n` records of ~[`record_bytes`] unless it already holds
/// exactly `n` (on the seed node: with replicas on a cluster the count differs, and it reloads).
async fn load(client: &Arc<Client>, n: u64) {
    let set = set();
    if set_stat(client, "objects").await == n {
        eprintln!("set {set} already holds {n} records");
        return;
    }
    truncate(client).await;
    let t = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let per = n.div_ceil(64);
    let blob_len = record_bytes().saturating_sub(120);
    for w in 0..64u64 {
        let client = client.clone();
        tasks.spawn(async move {
            let wp = WritePolicy {
                send_key: true,
                ..WritePolicy::default()
            };
            for i in (w * per)..((w + 1) * per).min(n) {
                let key = Key::new("test", set, Value::from(i as i64)).expect("key");
                let bins = [
                    as_bin!("id", i as i64),
                    as_bin!("name", format!("user-{i:012}")),
                    as_bin!("score", (i % 1000) as f64 * 0.75),
                    as_bin!("tags", format!("tag-{}-{}-{}", i % 7, i % 11, i % 13)),
                    as_bin!("blob", blob(i, blob_len)),
                ];
                client.put(&wp, &key, &bins).await.expect("load put");
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.expect("loader");
    }
    eprintln!(
        "loaded {n} records into {set} in {:.1} s",
        t.elapsed().as_secs_f64()
    );
}

async fn truncate(client: &Client) {
    client
        .truncate(&AdminPolicy::default(), "test", set(), 0)
        .await
        .expect("truncate");
    let cmd = format!("sets/test/{}", set());
    for _ in 0..600 {
        let answer = client
            .info(&AdminPolicy::default(), &[&cmd])
            .await
            .ok()
            .and_then(|m| m.get(&cmd).cloned())
            .unwrap_or_default();
        if answer.contains("objects=0:") || answer.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
}

fn main() {
    if let Ok(phase) = std::env::var(CHILD) {
        // As the service's `main` does.
        abs::malloc::limit_arenas();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("tokio");
        rt.block_on(child(&phase));
        return;
    }
    let full = std::env::args().any(|a| a == "--bench");
    let real = std::env::var("ABS_REAL_AEROSPIKE")
        .ok()
        .filter(|s| !s.is_empty());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio");
    match (full, real) {
        (true, Some(target)) => rt.block_on(side_by_side(&target)),
        (_, real) => {
            println!(
                "side_by_side: {}; smoke run of our half against the test node (1k records)",
                if real.is_none() {
                    "no ABS_REAL_AEROSPIKE"
                } else {
                    "no --bench"
                }
            );
            rt.block_on(smoke());
        }
    }
}

/// Set to `backup` or `restore`, this binary runs one of our phases and exits; the phase's
/// inputs come in the `ABS_BENCH_CHILD_*` variables.
const CHILD: &str = "ABS_BENCH_CHILD";

fn child_var(name: &str) -> String {
    std::env::var(format!("{CHILD}_{name}")).unwrap_or_else(|_| panic!("{CHILD}_{name} is set"))
}

/// One of our phases in this process (see [`CHILD`]); a short count fails the process.
async fn child(phase: &str) {
    let (ctx, plugins) = engine();
    let bench = Bench {
        host: child_var("HOST"),
        port: child_var("PORT").parse().expect("port"),
        server_pids: Vec::new(),
        ctx,
        plugins,
        key: PathBuf::new(),
        asbackup: None,
        asrestore: None,
    };
    let root = PathBuf::from(child_var("ROOT"));
    let expect: u64 = child_var("EXPECT").parse().expect("count");
    let run = match phase {
        "backup" => bench.ours_backup(&root, &child_var("POLICY")).await,
        "restore" => {
            let policy = serde_json::from_str(&child_var("POLICY")).expect("restore policy");
            bench
                .ours_restore(&root, &child_var("FOLDER"), policy)
                .await
        }
        other => panic!("{CHILD}={other}: backup or restore"),
    };
    assert_eq!(run.records, expect, "our {phase}: every record");
}

/// Runs one of our phases in a process of its own, measured as the tools are.
fn ours_in_child(
    bench: &Bench,
    phase: &str,
    root: &Path,
    folder: &str,
    policy: &str,
    expect: u64,
) -> Run {
    let mut cmd = Command::new(std::env::current_exe().expect("this bench's path"));
    cmd.env(CHILD, phase)
        .env(format!("{CHILD}_HOST"), &bench.host)
        .env(format!("{CHILD}_PORT"), bench.port.to_string())
        .env(format!("{CHILD}_ROOT"), root)
        .env(format!("{CHILD}_FOLDER"), folder)
        .env(format!("{CHILD}_POLICY"), policy)
        .env(format!("{CHILD}_EXPECT"), expect.to_string());
    let mut run = run_tool(&mut cmd, bench.server());
    run.records = expect;
    run
}

fn engine() -> (EngineContext, Arc<Registry>) {
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("plugin-cwasm")),
        ..RuntimeConfig::default()
    })
    .expect("runtime");
    let plugins = Arc::new(Registry::with_defaults(&runtime).expect("plugins"));
    (
        EngineContext::new(plugins.clone(), Arc::new(SystemClock)),
        plugins,
    )
}

async fn smoke() {
    let node = testkit::AerospikeNode::start().expect("test node");
    let client = Arc::new(
        Client::new(
            &ClientPolicy::default(),
            &format!("127.0.0.1:{}", node.port()),
        )
        .await
        .expect("connect"),
    );
    load(&client, 1000).await;
    let (ctx, plugins) = engine();
    let bench = Bench {
        host: "127.0.0.1".into(),
        port: node.port(),
        server_pids: Vec::new(),
        ctx,
        plugins,
        key: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/data/golden/key.pem"),
        asbackup: None,
        asrestore: None,
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let b = bench.ours_backup(dir.path(), "").await;
    assert_eq!(b.records, 1000);
    row("our backup (test node)", &b, b.records);
    truncate(&client).await;
    let folder = std::fs::read_dir(dir.path().join("r/backup"))
        .expect("a backup")
        .flatten()
        .next()
        .expect("its folder")
        .file_name();
    let r = bench
        .ours_restore(
            dir.path(),
            &format!("r/backup/{}/data/test", folder.to_string_lossy()),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(r.records, 1000);
    row("our restore (test node)", &r, r.records);
}

async fn side_by_side(target: &str) {
    let (host, port) = target.rsplit_once(':').expect("HOST:PORT");
    let port: u16 = port.parse().expect("port");
    let records: u64 = std::env::var("ABS_BENCH_RECORDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let rounds: usize = std::env::var("ABS_BENCH_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2);
    let asrestore = std::env::var_os("ABS_REAL_ASRESTORE").map(PathBuf::from);
    let asbackup = std::env::var_os("ABS_REAL_ASBACKUP")
        .map(PathBuf::from)
        .or_else(|| asrestore.as_ref().map(|r| r.with_file_name("asbackup")))
        .filter(|p| p.is_file());
    let server_pids: Vec<String> = match std::env::var("ABS_REAL_ASD_PID") {
        Ok(list) => list.split(',').map(|p| p.trim().to_string()).collect(),
        Err(_) => Command::new("pgrep")
            .args(["-x", "asd"])
            .output()
            .map(|out| {
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
    };
    let only = std::env::var("ABS_BENCH_ONLY").unwrap_or_default();
    let client = Arc::new(
        Client::new(&ClientPolicy::default(), &target.to_string())
            .await
            .expect("connect to the real server"),
    );
    load(&client, records).await;
    let (objects, used) = (
        set_stat(&client, "objects").await,
        set_stat(&client, "data_used_bytes").await,
    );
    let (ctx, plugins) = engine();
    let bench = Bench {
        host: host.to_string(),
        port,
        server_pids,
        ctx,
        plugins,
        key: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/data/golden/key.pem"),
        asbackup,
        asrestore,
    };
    println!(
        "side by side on {target} ({} server node(s), asd pids {:?}), {records} records of ~{} B in set {}, parallel {PARALLEL}, {rounds} rounds; the seed node stores {:.0} B per record",
        client.nodes().len(),
        bench.server_pids,
        record_bytes(),
        set(),
        used as f64 / objects.max(1) as f64,
    );
    let key = bench.key.display().to_string();
    let mut cases = vec![
        ("plain", String::new(), serde_json::json!({})),
        (
            "zstd 3 + aes256",
            format!(
                ", compression: {{mode: ZSTD, level: 3}}, encryption: {{mode: AES256, key-file: \"{key}\"}}"
            ),
            serde_json::json!({
                "compression": {"mode": "ZSTD"},
                "encryption": {"mode": "AES256", "key-file": key},
            }),
        ),
    ];
    cases.retain(|(name, _, _)| name.contains(only.as_str()));
    // (case, phase) -> ratios (ours / theirs, in records per second) per round.
    let mut ratios: Vec<(String, Vec<f64>)> = Vec::new();
    let mut push = |name: String, v: f64| match ratios.iter_mut().find(|(n, _)| *n == name) {
        Some((_, l)) => l.push(v),
        None => ratios.push((name, vec![v])),
    };
    for round in 1..=rounds {
        println!("round {round}");
        for (name, policy, restore_policy) in &cases {
            let codecs = !policy.is_empty();
            // Backup: A then B.
            let theirs_dir = tempfile::tempdir().expect("tempdir");
            let theirs = bench.asbackup.as_ref().map(|ab| {
                let mut cmd = Command::new(ab);
                bench.tool_args(&mut cmd, codecs, true);
                cmd.args([
                    "-n",
                    "test",
                    "-s",
                    set(),
                    "--parallel",
                    &PARALLEL.to_string(),
                ]);
                cmd.arg("-d").arg(theirs_dir.path().join("ab"));
                let r = run_tool(&mut cmd, bench.server());
                row(&format!("asbackup, {name}"), &r, records);
                r
            });
            let ours_dir = tempfile::tempdir().expect("tempdir");
            let ours = ours_in_child(&bench, "backup", ours_dir.path(), "", policy, records);
            row(&format!("our backup, {name}"), &ours, records);
            if let Some(t) = theirs {
                push(format!("backup {name}"), t.secs / ours.secs);
            }
            // Restore of asbackup's files (ours where there is no asbackup): A then B.
            let (root, folder) = if bench.asbackup.is_some() {
                (theirs_dir.path(), "ab".to_string())
            } else {
                let ts = std::fs::read_dir(ours_dir.path().join("r/backup"))
                    .expect("our backup")
                    .flatten()
                    .next()
                    .expect("its folder")
                    .file_name();
                (
                    ours_dir.path(),
                    format!("r/backup/{}/data/test", ts.to_string_lossy()),
                )
            };
            let theirs = match (&bench.asrestore, bench.asbackup.is_some()) {
                (Some(ar), true) => {
                    truncate(&client).await;
                    let mut cmd = Command::new(ar);
                    bench.tool_args(&mut cmd, codecs, false);
                    cmd.args(["--parallel", &PARALLEL.to_string()]);
                    cmd.arg("-d").arg(root.join(&folder));
                    let r = run_tool(&mut cmd, bench.server());
                    row(&format!("asrestore, {name}"), &r, records);
                    Some(r)
                }
                _ => None,
            };
            truncate(&client).await;
            let ours = ours_in_child(
                &bench,
                "restore",
                root,
                &folder,
                &restore_policy.to_string(),
                records,
            );
            row(&format!("our restore, {name}"), &ours, records);
            if let Some(t) = theirs {
                push(format!("restore {name}"), t.secs / ours.secs);
            }
        }
    }
    if !ratios.is_empty() {
        println!("ours / theirs, records per second (per round; median):");
        for (name, v) in &ratios {
            let list: Vec<String> = v.iter().map(|r| format!("{r:.2}")).collect();
            println!(
                "  {name:<24} {:<24} median {:.2}",
                list.join(" "),
                median(v.clone())
            );
        }
    }
}
