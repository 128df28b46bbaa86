//! The real-server suite: the service end to end against a real Aerospike server, the judge
//! of the wire (issue 22). It runs only when `ABS_REAL_AEROSPIKE=HOST:PORT` names one (each
//! test says it was skipped otherwise); CI has none, so there the test node's transcripts
//! (testkit) hold the node to the server instead.
//!
//! `ABS_REAL_ASRESTORE=/path/to/asrestore` adds the checks that Aerospike's own tools agree:
//! asrestore reads our backups back record for record, and (with `asbackup` beside it, or
//! `ABS_REAL_ASBACKUP`) our backup of a set is, record for record and byte for byte, what
//! asbackup writes for it.
//!
//! The tests share the server's `test` namespace, so they run one at a time (a lock), each in
//! sets of its own that it empties first.
//!
//! ```sh
//! ABS_REAL_AEROSPIKE=127.0.0.1:3000 ABS_REAL_ASRESTORE=/opt/aerospike/bin/asrestore \
//!   cargo test -p aerospike-backup-service --test it real_server -- --test-threads 1
//! ```
//!
//! Length: the whole real-server suite in one place, so it runs with one filter; each test
//! stands alone.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use abs::aerospike::scan::partition_of;
use abs::asb::convert::value_from_bin_value;
use abs::asb::{AsbDecoder, AsbItem, AsbRecord, UserKey};
use abs::config::{Config, ConfigStore, Format};
use abs::jobs::backup::{EngineContext, JobReport, SystemClock};
use abs::jobs::registry::{JobOutcome, JobRegistry, Trigger};
use abs::jobs::restore_jobs::{RestoreJobs, RestoreStatus, RestoreView};
use abs::metrics::Metrics;
use abs::storage::layout::BackupKind;
use aerospike::expressions as exp;
use aerospike::operations::{hll, lists, maps};
use aerospike::query::{PartitionFilter, Statement};
use aerospike::{
    AdminPolicy, Bin, Bins, Client, ClientPolicy, CollectionIndexType, Expiration, IndexType, Key,
    QueryPolicy, Task, UdfLang, Value, WritePolicy, as_bin,
};
use futures::StreamExt;

use crate::backup::{decode_folder, plugins};

/// The tests share one namespace: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
/// Deadline of a wait, not a measurement.
const PATIENCE: Duration = Duration::from_secs(120);

/// `HOST:PORT` of the real server, or `None` (and a line saying the test was skipped).
fn real(test: &str) -> Option<(String, u16)> {
    let Some(target) = std::env::var("ABS_REAL_AEROSPIKE")
        .ok()
        .filter(|s| !s.trim().is_empty())
    else {
        // Straight to stderr, past the test harness's capture, so a run shows the skip.
        let _ = writeln!(
            std::io::stderr(),
            "real_server::{test}: skipped: ABS_REAL_AEROSPIKE is not set \
             (HOST:PORT of a real Aerospike server runs this suite)"
        );
        return None;
    };
    let (host, port) = target
        .trim()
        .rsplit_once(':')
        .expect("ABS_REAL_AEROSPIKE is HOST:PORT");
    Some((host.to_string(), port.parse().expect("a port number")))
}

fn asrestore() -> Option<PathBuf> {
    std::env::var_os("ABS_REAL_ASRESTORE")
        .map(PathBuf::from)
        .filter(|p| !p.as_os_str().is_empty())
}

fn asbackup() -> Option<PathBuf> {
    std::env::var_os("ABS_REAL_ASBACKUP")
        .map(PathBuf::from)
        .or_else(|| asrestore().map(|r| r.with_file_name("asbackup")))
        .filter(|p| p.is_file())
}

use crate::common::key_pem;

async fn client(host: &str, port: u16) -> Client {
    Client::new(&ClientPolicy::default(), &format!("{host}:{port}"))
        .await
        .expect("the real server accepts the client")
}

async fn info(client: &Client, command: &str) -> String {
    client
        .info(&AdminPolicy::default(), &[command])
        .await
        .unwrap_or_else(|e| panic!("info {command}: {e}"))
        .get(command)
        .cloned()
        .unwrap_or_default()
}

/// Empties `set` and waits until the server counts no object in it.
async fn truncate(client: &Client, set: &str) {
    client
        .truncate(&AdminPolicy::default(), "test", set, 0)
        .await
        .unwrap();
    let start = Instant::now();
    loop {
        let rs = client
            .query(
                &QueryPolicy::default(),
                PartitionFilter::all(),
                Statement::new("test", set, Bins::None),
            )
            .await
            .unwrap();
        let mut s = rs.into_stream();
        let mut any = false;
        while let Some(r) = s.next().await {
            r.unwrap();
            any = true;
        }
        if !any {
            break;
        }
        assert!(start.elapsed() < PATIENCE, "set {set} never emptied");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A truncation applies to records written before it, on the server's clock: a record
    // written in the same millisecond would be dropped with the rest.
    tokio::time::sleep(Duration::from_millis(20)).await;
}

/// The records of `set` (every set when empty) as the client reads them, by digest.
async fn read_set(client: &Client, set: &str) -> BTreeMap<[u8; 20], aerospike::Record> {
    let rs = client
        .query(
            &QueryPolicy::default(),
            PartitionFilter::all(),
            Statement::new("test", set, Bins::All),
        )
        .await
        .unwrap();
    let mut out = BTreeMap::new();
    let mut s = rs.into_stream();
    while let Some(r) = s.next().await {
        let r = r.unwrap();
        let digest = r.key.as_ref().expect("a key").digest();
        out.insert(digest, r);
    }
    out
}

/// A value in one canonical text, so that map variants (hash, ordered, sorted) and the
/// decoder's choice of them compare by content.
fn canon(v: &Value) -> String {
    fn map<'a>(entries: impl Iterator<Item = (&'a Value, &'a Value)>) -> String {
        let mut e: Vec<String> = entries
            .map(|(k, v)| format!("{}:{}", canon(k), canon(v)))
            .collect();
        e.sort();
        format!("{{{}}}", e.join(","))
    }
    match v {
        Value::Nil => "nil".into(),
        Value::Bool(b) => format!("bool:{b}"),
        Value::Int(i) => format!("int:{i}"),
        Value::Float(f) => format!("float:{}", f64::from(f).to_bits()),
        Value::String(s) => format!("str:{s:?}"),
        Value::Blob(b) => format!("blob:{}", hex::encode(b)),
        Value::List(l) | Value::MultiResult(l) => {
            format!("[{}]", l.iter().map(canon).collect::<Vec<_>>().join(","))
        }
        Value::HashMap(m) => map(m.iter()),
        Value::OrderedMap(m) => map(m.iter()),
        Value::SortedMap(m) => map(m.iter()),
        Value::KeyValueList(m) => map(m.iter().map(|(k, v)| (k, v))),
        Value::GeoJson(g) => format!("geo:{g}"),
        Value::Hll(h) => format!("hll:{}", hex::encode(h)),
        other => format!("{other:?}"),
    }
}

fn canon_record(r: &aerospike::Record) -> BTreeMap<String, String> {
    r.bins.iter().map(|(n, v)| (n.clone(), canon(v))).collect()
}

fn canon_backup(r: &AsbRecord) -> BTreeMap<String, String> {
    r.bins
        .iter()
        .map(|b| {
            let v = value_from_bin_value(&b.value)
                .unwrap_or_else(|e| panic!("bin {} does not decode: {e}", b.name));
            (b.name.clone(), canon(&v))
        })
        .collect()
}

/// Asserts that a backup holds exactly the records the client reads, bin for bin, with
/// their keys (where stored), sets and generations.
fn assert_backup_is(
    got: &BTreeMap<[u8; 20], AsbRecord>,
    want: &BTreeMap<[u8; 20], aerospike::Record>,
    what: &str,
) {
    let missing: Vec<_> = want.keys().filter(|d| !got.contains_key(*d)).collect();
    let extra: Vec<_> = got.keys().filter(|d| !want.contains_key(*d)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{what}: {} records missing from the backup, {} not expected (of {} / {})",
        missing.len(),
        extra.len(),
        want.len(),
        got.len()
    );
    for (d, w) in want {
        let g = &got[d];
        assert_eq!(canon_backup(g), canon_record(w), "{what}: bins of {d:?}");
        assert_eq!(
            u32::from(g.generation),
            w.generation,
            "{what}: generation of {d:?}"
        );
        if let Some(k) = w.key.as_ref().and_then(|k| k.user_key().cloned()) {
            let gk = match g.key.as_ref().expect("a stored key is backed up") {
                UserKey::Int(i) => Value::Int(*i),
                UserKey::Double(f) => Value::Float((*f).into()),
                UserKey::String(s) => Value::String(String::from_utf8_lossy(s).into_owned()),
                UserKey::Bytes(b) => Value::Blob(b.clone()),
            };
            assert_eq!(gk, k, "{what}: key of {d:?}");
        }
    }
}

fn by_digest(records: Vec<AsbRecord>) -> BTreeMap<[u8; 20], AsbRecord> {
    let n = records.len();
    let map: BTreeMap<_, _> = records.into_iter().map(|r| (r.digest, r)).collect();
    assert_eq!(map.len(), n, "a record was backed up twice");
    map
}

/// The engine on the real server: a routine `r` over namespace `test` into local storage.
struct Harness {
    jobs: JobRegistry,
    restores: RestoreJobs,
    store: Arc<ConfigStore>,
    dir: tempfile::TempDir,
}

fn routine_config(host: &str, port: u16, dir: &Path, policy: &str, routine: &str) -> Config {
    let yaml = format!(
        r#"
aerospike-clusters:
  c: {{seed-nodes: [{{host-name: "{host}", port: {port}}}]}}
storage:
  s: {{local-storage: {{path: "{path}"}}}}
backup-policies:
  p: {{{policy}}}
backup-routines:
  r:
    interval-cron: "@daily"
    incr-interval-cron: "@hourly"
    source-cluster: c
    storage: s
    backup-policy: p
    namespaces: [test]
    {routine}
"#,
        path = dir.display(),
    );
    abs::config::parse::<Config>(&yaml, Format::Yaml).expect("test config parses")
}

fn harness(host: &str, port: u16, policy: &str, routine: &str) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(ConfigStore::in_memory(routine_config(
        host,
        port,
        dir.path(),
        policy,
        routine,
    )));
    let ctx = Arc::new(EngineContext::new(plugins(), Arc::new(SystemClock)));
    let metrics = Some(Arc::new(Metrics::new()));
    let jobs = JobRegistry::with_context(store.clone(), metrics.clone(), ctx);
    Harness {
        restores: RestoreJobs::new(store.clone(), metrics, jobs.clone()),
        jobs,
        store,
        dir,
    }
}

impl Harness {
    async fn run(&self, kind: BackupKind) -> JobReport {
        match self.outcome(kind).await {
            JobOutcome::Success(r) => r,
            other => panic!("the backup did not succeed on the real server: {other:?}"),
        }
    }

    async fn outcome(&self, kind: BackupKind) -> JobOutcome {
        let t = self
            .jobs
            .start("r", kind, abs::scheduler::rules::admission)
            .await
            .expect("trigger");
        assert!(!matches!(t, Trigger::Skipped(_)), "{t:?}");
        self.jobs.wait("r", kind).await.expect("an outcome")
    }

    /// The namespace folder of a report (`None` for an empty incremental).
    fn folder(&self, report: &JobReport) -> Option<PathBuf> {
        report.namespaces[0]
            .key
            .as_ref()
            .map(|k| self.dir.path().join(k))
    }

    /// A full backup's records, by digest.
    async fn full(&self) -> (BTreeMap<[u8; 20], AsbRecord>, Vec<AsbItem>, PathBuf) {
        let report = self.run(BackupKind::Full).await;
        let folder = self.folder(&report).expect("a full backup has a folder");
        let (records, globals) = decode_folder(&self.store, &folder);
        assert_eq!(
            report.records(),
            records.len() as u64,
            "metadata counts what the files hold"
        );
        (by_digest(records), globals, folder)
    }

    async fn restore(&self, folder: &Path, policy: serde_json::Value) -> RestoreView {
        let path = folder
            .strip_prefix(self.dir.path())
            .unwrap()
            .display()
            .to_string();
        let request = serde_json::from_value(serde_json::json!({
            "backup-data-path": path,
            "destination-name": "c",
            "source-name": "s",
            "policy": policy,
        }))
        .unwrap();
        let id = self
            .restores
            .start_request(&request, "full")
            .await
            .unwrap_or_else(|e| panic!("restore refused: {e}"));
        let v = self.restores.wait(id).await.unwrap();
        assert_eq!(v.status, RestoreStatus::Success, "{:?}", v.error);
        v
    }
}

/// Writes records of every particle type and key form into `set`; returns their count.
async fn write_every_type(client: &Client, set: &str) -> usize {
    let with_key = WritePolicy {
        send_key: true,
        ..WritePolicy::default()
    };
    let digest_only = WritePolicy::default();
    let ttl = WritePolicy {
        send_key: true,
        expiration: Expiration::Seconds(86_400),
        ..WritePolicy::default()
    };
    let mut n = 0;
    for i in 0..120i64 {
        let key = match i % 3 {
            0 => Key::new("test", set, Value::from(i)).unwrap(),
            1 => Key::new("test", set, Value::from(format!("k-{i}-ключ"))).unwrap(),
            _ => Key::new("test", set, Value::Blob(vec![i as u8, 0, 255, 10])).unwrap(),
        };
        let policy = match i % 5 {
            0 => &digest_only,
            1 => &ttl,
            _ => &with_key,
        };
        let mut bins = vec![
            as_bin!("int", i * 1_000_003 - 60_000_000),
            as_bin!("big", i64::MAX - i),
            as_bin!("neg", i64::MIN + i),
            as_bin!("float", i as f64 * 1.25 - 7.5),
            as_bin!("str", format!("string {i} with \\ and \n and ünïcode")),
            as_bin!("blob", vec![i as u8; (i as usize % 40) + 1]),
            as_bin!("bool", i % 2 == 0),
            Bin::new(
                "list",
                Value::List(vec![
                    Value::from(i),
                    Value::from("two"),
                    Value::Float(2.5.into()),
                    Value::List(vec![Value::Nil, Value::Bool(true)]),
                ]),
            ),
            Bin::new(
                "map",
                Value::HashMap(
                    [
                        (Value::from("a"), Value::from(i)),
                        (Value::from(7), Value::Blob(vec![1, 2, 3])),
                        (
                            Value::from("nested"),
                            Value::HashMap([(Value::from("x"), Value::from(-1))].into()),
                        ),
                    ]
                    .into(),
                ),
            ),
        ];
        if i % 4 == 0 {
            bins.push(Bin::new(
                "geo",
                Value::GeoJson(format!(
                    r#"{{"type":"Point","coordinates":[{}.5,{}.25]}}"#,
                    i % 90,
                    i % 45
                )),
            ));
        }
        if i % 7 == 0 {
            // A bin-less name edge: 15 characters, the server's limit.
            bins.push(as_bin!("fifteen_chars_x", "edge"));
        }
        client.put(policy, &key, &bins).await.unwrap();
        // Ordered CDTs and HLL come from operations, as applications make them.
        let list_policy = lists::ListPolicy::new(
            lists::ListOrderType::Ordered,
            lists::ListWriteFlags::DEFAULT,
        );
        let k_ordered =
            maps::MapPolicy::new(maps::MapOrder::KeyOrdered, maps::MapWriteFlags::DEFAULT);
        let kv_ordered = maps::MapPolicy::new(
            maps::MapOrder::KeyValueOrdered,
            maps::MapWriteFlags::DEFAULT,
        );
        let items: Vec<(Value, Value)> = (0..5)
            .map(|j| {
                (
                    Value::from(format!("k{}", (j * 7 + i) % 11)),
                    Value::from(j - i),
                )
            })
            .collect();
        let ops = vec![
            lists::append_items(
                &list_policy,
                "olist",
                vec![
                    Value::from(i % 9),
                    Value::from(3),
                    Value::from(-4),
                    Value::from(100),
                ],
            ),
            maps::put_items(
                &k_ordered,
                "kmap",
                items.iter().cloned().collect::<BTreeMap<_, _>>(),
            ),
            maps::put_items(
                &kv_ordered,
                "kvmap",
                items.into_iter().collect::<BTreeMap<_, _>>(),
            ),
            hll::init(&hll::HllPolicy::default(), "hll", 8),
            hll::add(
                &hll::HllPolicy::default(),
                "hll",
                (0..(i % 13 + 1)).map(Value::from).collect(),
            ),
        ];
        client.operate(policy, &key, &ops).await.unwrap();
        n += 1;
    }
    // One large record: a blob just under 1 MiB, the server's default `max-record-size`
    // (a record of 1 MiB and its overhead is refused with 13, RECORD_TOO_BIG).
    let big = Key::new("test", set, Value::from("large")).unwrap();
    client
        .put(
            &with_key,
            &big,
            &[as_bin!(
                "blob",
                (0..1_048_576u32 - 2048)
                    .map(|b| (b % 251) as u8)
                    .collect::<Vec<u8>>()
            )],
        )
        .await
        .unwrap();
    n + 1
}

#[tokio::test]
async fn every_particle_type_and_key_form_backs_up_as_the_server_stores_it() {
    let Some((host, port)) =
        real("every_particle_type_and_key_form_backs_up_as_the_server_stores_it")
    else {
        return;
    };
    let _serial = SERIAL.lock().await;
    let client = client(&host, port).await;
    let set = "rs_types";
    truncate(&client, set).await;
    let n = write_every_type(&client, set).await;
    let want = read_set(&client, set).await;
    assert_eq!(want.len(), n);

    for (what, policy) in [
        ("plain", "parallel: 4"),
        ("compact", "parallel: 2, compact: true"),
        (
            "zstd+aes256",
            &*format!(
                "parallel: 3, compression: {{mode: ZSTD, level: 3}}, \
                 encryption: {{mode: AES256, key-file: \"{}\"}}",
                key_pem().display()
            ),
        ),
        (
            "scan compression",
            "parallel: 1, use-scan-compression: true",
        ),
    ] {
        let h = harness(&host, port, policy, &format!("set-list: [{set}]"));
        let (got, _, folder) = h.full().await;
        assert_backup_is(&got, &want, what);
        // TTLs: void times come through (non-zero exactly where the server has one).
        let with_ttl = got.values().filter(|r| r.void_time != 0).count();
        assert_eq!(with_ttl, 24, "{what}: records with a TTL");

        if what == "plain"
            && let Some(asbackup) = asbackup()
        {
            // The same set through asbackup: record for record, bin for bin, byte for byte.
            let theirs = tempfile::tempdir().unwrap();
            let out = Command::new(&asbackup)
                .args([
                    "-h",
                    &host,
                    "-p",
                    &port.to_string(),
                    "-n",
                    "test",
                    "-s",
                    set,
                    "-d",
                ])
                .arg(theirs.path().join("ab"))
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "asbackup: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let theirs = by_digest(decode_plain(&theirs.path().join("ab")));
            assert_eq!(theirs.len(), got.len(), "asbackup's record count");
            for (d, t) in &theirs {
                let ours = &got[d];
                let mut ob = ours.bins.clone();
                let mut tb = t.bins.clone();
                ob.sort_by(|a, b| a.name.cmp(&b.name));
                tb.sort_by(|a, b| a.name.cmp(&b.name));
                assert_eq!(
                    (&ours.key, &ours.set, ours.generation, ours.void_time, &ob),
                    (&t.key, &t.set, t.generation, t.void_time, &tb),
                    "record {d:?} differs from asbackup's"
                );
            }
            let _ = folder;
        }
    }
}

/// The records of plain `.asb` files in `dir`.
fn decode_plain(dir: &Path) -> Vec<AsbRecord> {
    let mut out = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "asb"))
        .collect();
    files.sort();
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        let mut d = AsbDecoder::new(&bytes[..]);
        while let Some(item) = d.next_item().unwrap() {
            if let AsbItem::Record(r) = item {
                out.push(r);
            }
        }
    }
    out
}

/// Writes `n` simple records (`a` = i, `b` = "v<i>") into `set`.
async fn write_simple(client: &Client, set: &str, n: i64) {
    let wp = WritePolicy {
        send_key: true,
        ..WritePolicy::default()
    };
    for i in 0..n {
        let key = Key::new("test", set, Value::from(i)).unwrap();
        client
            .put(&wp, &key, &[as_bin!("a", i), as_bin!("b", format!("v{i}"))])
            .await
            .unwrap();
    }
}

fn digests(m: &BTreeMap<[u8; 20], AsbRecord>) -> BTreeSet<[u8; 20]> {
    m.keys().copied().collect()
}

/// Asserts two digest sets are equal, naming how many differ (not every digest).
#[track_caller]
fn assert_digests(got: &BTreeSet<[u8; 20]>, want: &BTreeSet<[u8; 20]>, what: &str) {
    let missing = want.difference(got).count();
    let extra = got.difference(want).count();
    assert!(
        missing == 0 && extra == 0,
        "{what}: {missing} records missing, {extra} not expected (got {}, want {})",
        got.len(),
        want.len()
    );
}

#[tokio::test]
async fn every_scan_option_selects_exactly_what_it_names() {
    let Some((host, port)) = real("every_scan_option_selects_exactly_what_it_names") else {
        return;
    };
    let _serial = SERIAL.lock().await;
    let client = client(&host, port).await;
    for s in ["rs_scan", "rs_scan2"] {
        truncate(&client, s).await;
    }
    write_simple(&client, "rs_scan", 3000).await;
    write_simple(&client, "rs_scan2", 500).await;
    let one = read_set(&client, "rs_scan").await;
    let two = read_set(&client, "rs_scan2").await;
    let ours: BTreeSet<[u8; 20]> = one.keys().chain(two.keys()).copied().collect();
    let node_name = info(&client, "node").await;

    // The whole namespace (other sets of the server included: compared with the client).
    let h = harness(&host, port, "parallel: 4", "");
    let (got, _, _) = h.full().await;
    let all = read_set(&client, "").await;
    assert_digests(
        &digests(&got),
        &all.keys().copied().collect(),
        "whole namespace",
    );
    assert!(ours.is_subset(&digests(&got)));

    // One set; two sets (through a filter expression).
    let h = harness(&host, port, "parallel: 8", "set-list: [rs_scan]");
    let (got, _, _) = h.full().await;
    assert_backup_is(&got, &one, "set-list one set");
    let h = harness(&host, port, "parallel: 2", "set-list: [rs_scan, rs_scan2]");
    let (got, _, _) = h.full().await;
    assert_digests(&digests(&got), &ours, "set-list two sets");

    // Bins.
    let h = harness(
        &host,
        port,
        "parallel: 2",
        "set-list: [rs_scan]\n    bin-list: [b]",
    );
    let (got, _, _) = h.full().await;
    assert_eq!(got.len(), one.len());
    assert!(
        got.values()
            .all(|r| r.bins.len() == 1 && r.bins[0].name == "b")
    );

    // Partitions: a range, single partitions, and records after a digest.
    let h = harness(
        &host,
        port,
        "parallel: 3",
        "set-list: [rs_scan]\n    partition-list: \"100-400\"",
    );
    let (got, _, _) = h.full().await;
    let want: BTreeSet<_> = one
        .keys()
        .filter(|d| (100..500).contains(&partition_of(d)))
        .copied()
        .collect();
    assert_digests(&digests(&got), &want, "partition-list range");
    let h = harness(
        &host,
        port,
        "parallel: 3",
        "set-list: [rs_scan]\n    partition-list: \"7,4095,2000-2\"",
    );
    let (got, _, _) = h.full().await;
    let want: BTreeSet<_> = one
        .keys()
        .filter(|d| matches!(partition_of(d), 7 | 4095 | 2000 | 2001))
        .copied()
        .collect();
    assert_digests(&digests(&got), &want, "partition-list filters");
    // After a digest (within its partition, as ABS documents it and asbackup's
    // `--partition-list` reads it): the partition holding most records, from its first
    // record on.
    let mut per_part: BTreeMap<u16, Vec<[u8; 20]>> = BTreeMap::new();
    for d in one.keys() {
        per_part.entry(partition_of(d)).or_default().push(*d);
    }
    let (p, in_part) = per_part.iter().max_by_key(|(_, v)| v.len()).unwrap();
    let first = in_part[0];
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(first);
    let h = harness(
        &host,
        port,
        "parallel: 1",
        &format!("set-list: [rs_scan]\n    partition-list: \"{b64}\""),
    );
    let (got, _, _) = h.full().await;
    assert!(
        !got.contains_key(&first),
        "after-digest excludes its digest"
    );
    assert!(
        got.keys().all(|d| partition_of(d) == *p),
        "after-digest stays in partition {p}"
    );
    if let Some(asbackup) = asbackup() {
        let theirs = tempfile::tempdir().unwrap();
        let out = Command::new(&asbackup)
            .args([
                "-h",
                &host,
                "-p",
                &port.to_string(),
                "-n",
                "test",
                "-s",
                "rs_scan",
            ])
            .args(["--partition-list", &b64, "-d"])
            .arg(theirs.path().join("ab"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "asbackup: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let theirs = by_digest(decode_plain(&theirs.path().join("ab")));
        assert_digests(
            &digests(&got),
            &digests(&theirs),
            &format!(
                "after-digest as asbackup reads it ({} in partition {p})",
                in_part.len()
            ),
        );
    }

    // Nodes and racks (a single node, rack 0 on Community Edition).
    for (what, routine) in [
        (
            "node-list",
            format!("set-list: [rs_scan]\n    node-list: [\"{host}:{port}\"]"),
        ),
        (
            "rack-list",
            "set-list: [rs_scan]\n    rack-list: [0]".to_string(),
        ),
        (
            "prefer-racks",
            "set-list: [rs_scan]\n    prefer-racks: [0]".to_string(),
        ),
    ] {
        let h = harness(&host, port, "parallel: 2", &routine);
        let (got, _, _) = h.full().await;
        assert_digests(
            &digests(&got),
            &one.keys().copied().collect(),
            &format!("{what} ({node_name})"),
        );
    }

    // Community Edition has no racks: rack 0 is every node, another rack none.
    if info(&client, "edition").await.contains("Community") {
        let h = harness(
            &host,
            port,
            "parallel: 2",
            "set-list: [rs_scan]\n    rack-list: [1]",
        );
        match h.outcome(BackupKind::Full).await {
            JobOutcome::Failure(e) => assert!(e.contains("rack"), "{e}"),
            other => panic!("rack-list [1] on Community Edition: {other:?}"),
        }
    }

    // A user filter expression: a < 1000.
    let filter = exp::lt(exp::int_bin("a"), exp::int_val(1000))
        .base64()
        .unwrap();
    let h = harness(
        &host,
        port,
        "parallel: 2",
        &format!("set-list: [rs_scan]\n    filter-exp: \"{filter}\""),
    );
    let (got, _, _) = h.full().await;
    let want: BTreeSet<_> = one
        .iter()
        .filter(|(_, r)| matches!(r.bins.get("a"), Some(Value::Int(a)) if *a < 1000))
        .map(|(d, _)| *d)
        .collect();
    assert_eq!(want.len(), 1000);
    assert_digests(&digests(&got), &want, "filter-exp");

    // No records; a paced scan; a socket and total timeout that do not fire.
    let h = harness(
        &host,
        port,
        "parallel: 2, no-records: true",
        "set-list: [rs_scan]",
    );
    let (got, _, _) = h.full().await;
    assert!(got.is_empty(), "no-records");
    let h = harness(
        &host,
        port,
        "parallel: 2, records-per-second: 5000, socket-timeout: 10000, total-timeout: 60000",
        "set-list: [rs_scan]",
    );
    let (got, _, _) = h.full().await;
    assert_digests(
        &digests(&got),
        &one.keys().copied().collect(),
        "records-per-second",
    );
}

#[tokio::test]
async fn an_incremental_holds_exactly_what_changed_since_the_full() {
    let Some((host, port)) = real("an_incremental_holds_exactly_what_changed_since_the_full")
    else {
        return;
    };
    let _serial = SERIAL.lock().await;
    let client = client(&host, port).await;
    let set = "rs_incr";
    truncate(&client, set).await;
    write_simple(&client, set, 1000).await;
    let h = harness(&host, port, "parallel: 4", &format!("set-list: [{set}]"));
    let (full, _, _) = h.full().await;
    assert_eq!(full.len(), 1000);

    // Changes after the full: updates, new records, a record written in the very second the
    // incremental starts (it must not wait for the next one).
    let wp = WritePolicy {
        send_key: true,
        ..WritePolicy::default()
    };
    let mut changed = BTreeSet::new();
    for i in (0..1000).step_by(10).chain(5000..5050) {
        let key = Key::new("test", set, Value::from(i)).unwrap();
        client
            .put(&wp, &key, &[as_bin!("a", i), as_bin!("c", "changed")])
            .await
            .unwrap();
        changed.insert(key.digest());
    }
    let report = h.run(BackupKind::Incremental).await;
    let folder = h.folder(&report).expect("a non-empty incremental");
    let (records, _) = decode_folder(&h.store, &folder);
    let got = by_digest(records);
    assert_digests(
        &digests(&got),
        &changed,
        "the incremental holds exactly the changed records",
    );
    let now = read_set(&client, set).await;
    let want: BTreeMap<_, _> = now
        .into_iter()
        .filter(|(d, _)| changed.contains(d))
        .collect();
    assert_backup_is(&got, &want, "incremental");

    // Nothing changed since: the next incremental is empty.
    let report = h.run(BackupKind::Incremental).await;
    assert_eq!(report.records(), 0, "an incremental with no change");

    // A record written just before the trigger, in its second, is in that incremental.
    let key = Key::new("test", set, Value::from(-1)).unwrap();
    client.put(&wp, &key, &[as_bin!("a", -1)]).await.unwrap();
    let report = h.run(BackupKind::Incremental).await;
    let folder = h.folder(&report).expect("a non-empty incremental");
    let (records, _) = decode_folder(&h.store, &folder);
    assert_eq!(
        records.iter().map(|r| r.digest).collect::<Vec<_>>(),
        vec![key.digest()],
        "the record written in the trigger's second"
    );
}

/// A TCP relay to the server that cuts, once, the first connection whose replies pass
/// `cut_after` bytes (a scan's stream): the engine must resume from the last record taken.
struct CuttingRelay {
    port: u16,
    cuts: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl CuttingRelay {
    fn start(host: &str, port: u16, cut_after: u64) -> CuttingRelay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let local = listener.local_addr().unwrap().port();
        let cuts = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let target = format!("{host}:{port}");
        let (c, s) = (cuts.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(down) = conn else { continue };
                let Ok(up) = TcpStream::connect(&target) else {
                    continue;
                };
                let (d2, u2) = (down.try_clone().unwrap(), up.try_clone().unwrap());
                std::thread::spawn(move || pipe(d2, u2, None));
                let c = c.clone();
                std::thread::spawn(move || pipe(up, down, Some((cut_after, c))));
            }
        });
        CuttingRelay {
            port: local,
            cuts,
            stop,
        }
    }
}

impl Drop for CuttingRelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream, cut: Option<(u64, Arc<AtomicU64>)>) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        total += n as u64;
        if let Some((limit, cuts)) = &cut
            && total > *limit
            && cuts.fetch_add(1, Ordering::SeqCst) < 2
        {
            break;
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = from.shutdown(std::net::Shutdown::Both);
    let _ = to.shutdown(std::net::Shutdown::Both);
}

#[tokio::test]
async fn a_scan_cut_mid_stream_resumes_without_loss_or_duplicates() {
    let Some((host, port)) = real("a_scan_cut_mid_stream_resumes_without_loss_or_duplicates")
    else {
        return;
    };
    let _serial = SERIAL.lock().await;
    let client = client(&host, port).await;
    let set = "rs_cut";
    truncate(&client, set).await;
    write_simple(&client, set, 20_000).await;
    let want = read_set(&client, set).await;
    // The relay stands in for the server: the client knows the node by the seed's address.
    let relay = CuttingRelay::start(&host, port, 256 * 1024);
    let h = harness(
        "127.0.0.1",
        relay.port,
        "parallel: 1, retry-policy: {max-retries: 5, base-timeout: 100}",
        &format!("set-list: [{set}]"),
    );
    let (got, _, _) = h.full().await;
    assert!(
        relay.cuts.load(Ordering::SeqCst) >= 1,
        "the relay cut a stream"
    );
    assert_backup_is(&got, &want, "a scan cut twice");
}

#[tokio::test]
async fn indexes_and_udfs_are_backed_up_and_restored() {
    let Some((host, port)) = real("indexes_and_udfs_are_backed_up_and_restored") else {
        return;
    };
    let _serial = SERIAL.lock().await;
    let client = client(&host, port).await;
    let set = "rs_sidx";
    truncate(&client, set).await;
    write_simple(&client, set, 50).await;
    let admin = AdminPolicy::default();
    for (bin, name, t, c) in [
        (
            "a",
            "rs_idx_num",
            IndexType::Numeric,
            CollectionIndexType::Default,
        ),
        (
            "b",
            "rs_idx_str",
            IndexType::String,
            CollectionIndexType::Default,
        ),
        (
            "l",
            "rs_idx_list",
            IndexType::Numeric,
            CollectionIndexType::List,
        ),
        (
            "m",
            "rs_idx_mapk",
            IndexType::String,
            CollectionIndexType::MapKeys,
        ),
    ] {
        let _ = client.drop_index(&admin, "test", set, name).await;
        client
            .create_index_on_bin(&admin, "test", set, bin, name, t, c, None)
            .await
            .unwrap()
            .wait_till_complete(None)
            .await
            .unwrap();
    }
    let lua = b"function rs_hello(rec)\n  return 'hello'\nend\n".to_vec();
    client
        .register_udf(&admin, &lua, "rs_module.lua", UdfLang::Lua)
        .await
        .unwrap()
        .wait_till_complete(None)
        .await
        .unwrap();

    let h = harness(&host, port, "parallel: 2", &format!("set-list: [{set}]"));
    let report = h.run(BackupKind::Full).await;
    let folder = h.folder(&report).unwrap();
    let (_, globals) = decode_folder(&h.store, &folder);
    let names: BTreeSet<String> = globals
        .iter()
        .filter_map(|g| match g {
            AsbItem::SecondaryIndex(i) => Some(i.name.clone()),
            _ => None,
        })
        .collect();
    for n in ["rs_idx_num", "rs_idx_str", "rs_idx_list", "rs_idx_mapk"] {
        assert!(names.contains(n), "index {n} backed up: {names:?}");
    }
    let udf = globals
        .iter()
        .find_map(|g| match g {
            AsbItem::Udf(u) if u.name == "rs_module.lua" => Some(u.content.clone()),
            _ => None,
        })
        .expect("the UDF is backed up");
    assert_eq!(udf, lua);

    // Drop them, restore, and they are back.
    for n in ["rs_idx_num", "rs_idx_str", "rs_idx_list", "rs_idx_mapk"] {
        client.drop_index(&admin, "test", set, n).await.unwrap();
    }
    client.remove_udf(&admin, "rs_module.lua").await.unwrap();
    let start = Instant::now();
    while info(&client, "sindex-list:ns=test")
        .await
        .contains("rs_idx_num")
    {
        assert!(start.elapsed() < PATIENCE, "the index never went");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let v = h
        .restore(&folder, serde_json::json!({"no-records": true}))
        .await;
    assert!(v.counters.index_count >= 4, "{:?}", v.counters);
    let start = Instant::now();
    loop {
        let list = info(&client, "sindex-list:ns=test").await;
        let udfs = info(&client, "udf-list").await;
        if ["rs_idx_num", "rs_idx_str", "rs_idx_list", "rs_idx_mapk"]
            .iter()
            .all(|n| list.contains(n))
            && udfs.contains("rs_module.lua")
        {
            break;
        }
        assert!(start.elapsed() < PATIENCE, "restored: {list} / {udfs}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for n in ["rs_idx_num", "rs_idx_str", "rs_idx_list", "rs_idx_mapk"] {
        let _ = client.drop_index(&admin, "test", set, n).await;
    }
    let _ = client.remove_udf(&admin, "rs_module.lua").await;
}

#[tokio::test]
async fn restore_honours_each_write_policy_on_the_server() {
    let Some((host, port)) = real("restore_honours_each_write_policy_on_the_server") else {
        return;
    };
    let _serial = SERIAL.lock().await;
    let client = client(&host, port).await;
    let set = "rs_restore";
    truncate(&client, set).await;
    let n = write_every_type(&client, set).await as u64;
    let want = read_set(&client, set).await;
    let h = harness(
        &host,
        port,
        "parallel: 2, compression: {mode: ZSTD}",
        &format!("set-list: [{set}]"),
    );
    let (_, _, folder) = h.full().await;
    let same = |now: &BTreeMap<[u8; 20], aerospike::Record>, what: &str| {
        assert_eq!(now.len(), want.len(), "{what}: record count");
        for (d, w) in &want {
            assert_eq!(canon_record(&now[d]), canon_record(w), "{what}: {d:?}");
        }
    };
    let zstd = serde_json::json!({"mode": "ZSTD"});

    // Into an empty set: everything inserted, identical.
    truncate(&client, set).await;
    let v = h
        .restore(&folder, serde_json::json!({"compression": zstd}))
        .await;
    assert_eq!(v.counters.inserted_records, n, "{:?}", v.counters);
    same(&read_set(&client, set).await, "empty set");

    // Again: a record is written only where the backup's generation is higher than the
    // server's. The first restore created every record at generation 1, so those the
    // backup holds at 2 (put, then operate) are written again; the large record (1) is not.
    let v = h
        .restore(&folder, serde_json::json!({"compression": zstd}))
        .await;
    assert_eq!(v.counters.inserted_records, n - 1, "{:?}", v.counters);
    assert_eq!(v.counters.fresher_records, 1, "{:?}", v.counters);
    // And once more: now the server's generations are not older anywhere.
    let v = h
        .restore(&folder, serde_json::json!({"compression": zstd}))
        .await;
    assert_eq!(v.counters.inserted_records, 0, "{:?}", v.counters);
    assert_eq!(v.counters.fresher_records, n, "{:?}", v.counters);

    // unique: existing records are left alone.
    let v = h
        .restore(
            &folder,
            serde_json::json!({"compression": zstd, "unique": true}),
        )
        .await;
    assert_eq!(v.counters.existed_records, n, "{:?}", v.counters);

    // A changed record with an extra bin: no-generation writes over it and keeps the extra bin
    // (update); replace drops it.
    let k = Key::new("test", set, Value::from(3)).unwrap();
    let wp = WritePolicy {
        send_key: true,
        ..WritePolicy::default()
    };
    client
        .put(&wp, &k, &[as_bin!("int", -1), as_bin!("extra", 1)])
        .await
        .unwrap();
    let v = h
        .restore(
            &folder,
            serde_json::json!({"compression": zstd, "no-generation": true}),
        )
        .await;
    assert_eq!(v.counters.inserted_records, n, "{:?}", v.counters);
    let r = client
        .get(&Default::default(), &k, Bins::All)
        .await
        .unwrap();
    assert_eq!(
        r.bins.get("extra"),
        Some(&Value::from(1)),
        "update keeps other bins"
    );
    assert_eq!(
        r.bins.get("int").map(canon),
        want[&k.digest()].bins.get("int").map(canon)
    );
    let v = h
        .restore(
            &folder,
            serde_json::json!({"compression": zstd, "no-generation": true, "replace": true}),
        )
        .await;
    assert_eq!(v.counters.inserted_records, n, "{:?}", v.counters);
    let r = client
        .get(&Default::default(), &k, Bins::All)
        .await
        .unwrap();
    assert_eq!(r.bins.get("extra"), None, "replace drops other bins");
    same(&read_set(&client, set).await, "after replace");

    // Single-record writes instead of batches.
    truncate(&client, set).await;
    let v = h
        .restore(
            &folder,
            serde_json::json!({"compression": zstd, "disable-batch-writes": true}),
        )
        .await;
    assert_eq!(v.counters.inserted_records, n, "{:?}", v.counters);
    same(&read_set(&client, set).await, "single-record writes");
}

#[tokio::test]
async fn asrestore_reads_our_backups_back_record_for_record() {
    let Some((host, port)) = real("asrestore_reads_our_backups_back_record_for_record") else {
        return;
    };
    let Some(asrestore) = asrestore() else {
        let _ = writeln!(
            std::io::stderr(),
            "real_server::asrestore_reads_our_backups_back_record_for_record: skipped: ABS_REAL_ASRESTORE is not set"
        );
        return;
    };
    let _serial = SERIAL.lock().await;
    let client = client(&host, port).await;
    let set = "rs_asrestore";
    truncate(&client, set).await;
    write_every_type(&client, set).await;
    let want = read_set(&client, set).await;
    let key = key_pem().display().to_string();
    for (what, policy, args) in [
        ("plain", "parallel: 3".to_string(), vec![]),
        ("compact", "parallel: 1, compact: true".to_string(), vec![]),
        (
            "zstd",
            "parallel: 2, compression: {mode: ZSTD, level: 5}".to_string(),
            vec!["--compress", "zstd"],
        ),
        (
            "zstd+aes256",
            format!(
                "parallel: 2, compression: {{mode: ZSTD}}, encryption: {{mode: AES256, key-file: \"{key}\"}}"
            ),
            vec![
                "--compress",
                "zstd",
                "--encrypt",
                "aes256",
                "--encryption-key-file",
                &key,
            ],
        ),
        (
            "aes128",
            format!("parallel: 2, encryption: {{mode: AES128, key-file: \"{key}\"}}"),
            vec!["--encrypt", "aes128", "--encryption-key-file", &key],
        ),
    ] {
        let h = harness(&host, port, &policy, &format!("set-list: [{set}]"));
        let (_, _, folder) = h.full().await;
        truncate(&client, set).await;
        let out = Command::new(&asrestore)
            .args(["-h", &host, "-p", &port.to_string(), "-d"])
            .arg(&folder)
            .args(&args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{what}: asrestore failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let now = read_set(&client, set).await;
        assert_eq!(now.len(), want.len(), "{what}: asrestore's record count");
        for (d, w) in &want {
            let g = now
                .get(d)
                .unwrap_or_else(|| panic!("{what}: {d:?} not restored"));
            assert_eq!(canon_record(g), canon_record(w), "{what}: {d:?}");
        }
    }
}

/// The service binary as an operator runs it, on a config whose routine fires every few
/// seconds: on-demand and scheduled fulls and incrementals all land, listed through the API.
#[test]
fn the_service_binary_backs_up_on_demand_and_on_schedule() {
    let Some((host, port)) = real("the_service_binary_backs_up_on_demand_and_on_schedule") else {
        return;
    };
    use crate::crash::{Service, wait_for};
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _serial = rt.block_on(SERIAL.lock());
    let set = "rs_service";
    let client = rt.block_on(client(&host, port));
    rt.block_on(truncate(&client, set));
    rt.block_on(write_simple(&client, set, 2000));

    let dir = tempfile::tempdir().unwrap();
    let api = testkit::emulators::free_port().unwrap();
    let config = dir.path().join("abs.yml");
    std::fs::write(
        &config,
        format!(
            "service:\n  http: {{address: 127.0.0.1, port: {api}}}\n\
             aerospike-clusters:\n  c: {{seed-nodes: [{{host-name: \"{host}\", port: {port}}}]}}\n\
             storage:\n  disk: {{local-storage: {{path: {}}}}}\n\
             backup-policies:\n  p: {{parallel: 2}}\n\
             backup-routines:\n  \
               sched: {{interval-cron: \"*/20 * * * * *\", incr-interval-cron: \"*/5 * * * * *\", \
                 source-cluster: c, storage: disk, backup-policy: p, namespaces: [test], set-list: [{set}]}}\n  \
               manual: {{interval-cron: \"@yearly\", source-cluster: c, storage: disk, \
                 backup-policy: p, namespaces: [test], set-list: [{set}]}}\n",
            dir.path().join("backups").display()
        ),
    )
    .unwrap();
    let svc = Service::start(dir.path(), &config, api, "service.log");
    let log = || std::fs::read_to_string(dir.path().join("service.log")).unwrap_or_default();
    let listed = |kind: &str, routine: &str| -> Vec<serde_json::Value> {
        let (s, body) = svc.call("GET", &format!("/v1/backups/{kind}/{routine}"), None);
        assert_eq!(s, 200, "{body}");
        body.as_array().cloned().unwrap_or_default()
    };

    // On demand.
    let (s, body) = svc.call("POST", "/v1/backups/full/manual", None);
    assert_eq!(s, 202, "{body}");
    wait_for("the on-demand full is listed", || {
        !listed("full", "manual").is_empty()
    });
    let full = &listed("full", "manual")[0];
    assert_eq!(full["record-count"], 2000, "{full}");

    // Scheduled: a full at the next 20 s mark, then incrementals every 5 s that hold the
    // records changed in between.
    wait_for("a scheduled full is listed", || {
        !listed("full", "sched").is_empty()
    });
    rt.block_on(async {
        let wp = WritePolicy {
            send_key: true,
            ..WritePolicy::default()
        };
        for i in 0..25 {
            let key = Key::new("test", set, Value::from(i)).unwrap();
            client.put(&wp, &key, &[as_bin!("a", -i)]).await.unwrap();
        }
    });
    wait_for(
        "a scheduled incremental with the 25 changes is listed",
        || {
            listed("incremental", "sched")
                .iter()
                .any(|b| b["record-count"] == 25)
        },
    );
    let (s, metrics) = svc.call("GET", "/metrics", None);
    assert_eq!(s, 200);
    let metrics = metrics.as_str().unwrap_or_default().to_string();
    assert!(
        metrics.lines().any(
            |l| l.starts_with("aerospike_backup_service_backup_events_total")
                && l.contains("sched")
        ),
        "metrics count the scheduled backups:\n{metrics}"
    );
    assert!(!log().contains("Backup failed"), "{}", log());
    drop(svc);
}

/// Issue 27 on the real server: a full backup killed (`kill -9`) after some of its files were
/// stored is resumed by the restarted service from its checkpoint's partition cursors, which
/// rely on the server sending each partition's records in digest order and resuming after a
/// digest. The backup then holds every record of the set exactly once, and restores it.
#[test]
fn a_backup_killed_mid_way_resumes_from_its_checkpoint() {
    let Some((host, port)) = real("a_backup_killed_mid_way_resumes_from_its_checkpoint") else {
        return;
    };
    use crate::crash::{Service, files, wait_for};
    const N: i64 = 60_000;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _serial = rt.block_on(SERIAL.lock());
    let set = "rs_resume";
    let client = rt.block_on(client(&host, port));
    rt.block_on(truncate(&client, set));
    rt.block_on(write_simple(&client, set, N));
    let want: BTreeSet<[u8; 20]> = rt.block_on(read_set(&client, set)).into_keys().collect();
    assert_eq!(want.len(), N as usize);

    let dir = tempfile::tempdir().unwrap();
    let api = testkit::emulators::free_port().unwrap();
    let config = dir.path().join("abs.yml");
    let folders = dir.path().join("backups/r/backup");
    let write_config = |throttle: &str| {
        std::fs::write(
            &config,
            format!(
                "service:\n  http: {{address: 127.0.0.1, port: {api}}}\n\
                 aerospike-clusters:\n  c: {{seed-nodes: [{{host-name: \"{host}\", port: {port}}}]}}\n\
                 storage:\n  disk: {{local-storage: {{path: {}}}}}\n\
                 backup-policies:\n  p: {{parallel: 2, file-limit: 1{throttle}}}\n\
                 backup-routines:\n  r: {{interval-cron: \"@yearly\", source-cluster: c, storage: disk, \
                 backup-policy: p, namespaces: [test], set-list: [{set}]}}\n",
                dir.path().join("backups").display()
            ),
        )
        .unwrap();
    };
    let stored_files = |cp: &Path| -> usize {
        let text = std::fs::read_to_string(cp).unwrap_or_default();
        let v: serde_yaml::Value = serde_yaml::from_str(&text).unwrap_or_default();
        v["namespaces"][0]["files"]
            .as_sequence()
            .map_or(0, |f| f.len())
    };
    write_config(", records-per-second: 6000");
    let mut svc = Service::start(dir.path(), &config, api, "first.log");
    let (s, body) = svc.call("POST", "/v1/backups/full/r", None);
    assert_eq!(s, 202, "{body}");
    wait_for("the checkpoint lists two stored files", || {
        files(&folders)
            .iter()
            .find(|f| f.ends_with("resume.yaml"))
            .is_some_and(|cp| stored_files(cp) >= 2)
    });
    svc.child.kill().unwrap(); // SIGKILL
    svc.child.wait().unwrap();
    drop(svc);

    write_config("");
    let svc = Service::start(dir.path(), &config, api, "second.log");
    let mut listed = serde_json::Value::Null;
    wait_for("the resumed backup is listed", || {
        listed = svc.call("GET", "/v1/backups/full/r", None).1;
        listed.as_array().is_some_and(|a| !a.is_empty())
    });
    let log = std::fs::read_to_string(dir.path().join("second.log")).unwrap();
    assert!(
        log.contains("Resuming a backup cut off by a restart"),
        "{log}"
    );
    let backup = &listed.as_array().unwrap()[0];
    assert_eq!(backup["record-count"], N, "{listed}");
    let key = backup["key"].as_str().unwrap().to_string();
    let records = decode_plain(&dir.path().join("backups").join(&key));
    assert_eq!(records.len(), N as usize, "records in the files");
    let got: BTreeSet<[u8; 20]> = records.iter().map(|r| r.digest).collect();
    assert_digests(&got, &want, "the resumed backup");

    rt.block_on(truncate(&client, set));
    let st = svc.restore_full(&key, "c");
    assert_eq!(st["status"], "success", "{st}");
    let back: BTreeSet<[u8; 20]> = rt.block_on(read_set(&client, set)).into_keys().collect();
    assert_digests(&back, &want, "restored");
    drop(svc);
}

/// Set indexes (`indextype=set`) and expression indexes (`exp=`), which 8.1 lists with no
/// bin, are backed up beside the bin indexes and counted in `secondary-index-count`, in a
/// `.asb33` sidecar that asrestore skips; our restore creates them again with the syntax
/// the server takes, and asrestore still restores the rest of the backup.
#[tokio::test]
async fn set_and_expression_indexes_are_backed_up_and_restored() {
    let Some((host, port)) = real("set_and_expression_indexes_are_backed_up_and_restored") else {
        return;
    };
    let _serial = SERIAL.lock().await;
    let client = client(&host, port).await;
    let set = "rs_setidx";
    let names = ["rs_setidx_age", "rs_setidx_set", "rs_setidx_exp"];
    let admin = AdminPolicy::default();
    let drop_all = || async {
        for n in names {
            let _ = client.drop_index(&admin, "test", set, n).await;
        }
        let start = Instant::now();
        loop {
            let list = info(&client, "sindex-list:ns=test;b64=true").await;
            if names.iter().all(|n| sindex_entry(&list, n).is_none()) {
                break;
            }
            assert!(start.elapsed() < PATIENCE, "the indexes never went: {list}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    drop_all().await;
    truncate(&client, set).await;
    write_simple(&client, set, 20).await;
    client
        .create_index_on_bin(
            &admin,
            "test",
            set,
            "a",
            names[0],
            IndexType::Numeric,
            CollectionIndexType::Default,
            None,
        )
        .await
        .unwrap()
        .wait_till_complete(None)
        .await
        .unwrap();
    let exp_b64 = exp::int_bin("a").base64().unwrap();
    for command in [
        format!(
            "sindex-create:namespace=test;set={set};indexname={};indextype=set",
            names[1]
        ),
        format!(
            "sindex-create:namespace=test;set={set};indexname={};exp={exp_b64};type=numeric",
            names[2]
        ),
    ] {
        assert_eq!(info(&client, &command).await, "ok", "{command}");
    }
    let before = info(&client, "sindex-list:ns=test;b64=true").await;
    let set_entry = sindex_entry(&before, names[1]).expect("the set index is listed");
    assert_eq!(
        set_entry,
        format!("ns=test:indexname={}:set={set}:indextype=set", names[1])
    );
    assert!(
        sindex_entry(&before, names[2])
            .is_some_and(|e| e.contains("bin=null") && e.contains(&format!("exp={exp_b64}"))),
        "{before}"
    );

    let h = harness(&host, port, "parallel: 2", &format!("set-list: [{set}]"));
    let report = h.run(BackupKind::Full).await;
    let folder = h.folder(&report).unwrap();
    let meta: abs::storage::layout::BackupMetadata =
        serde_yaml::from_slice(&std::fs::read(folder.join("metadata.yaml")).unwrap()).unwrap();
    // The namespace may hold other tests' indexes too; ours are three of them.
    assert!(meta.secondary_index_count >= 3, "{meta:?}");
    // The `.asb` files hold the bin index only; the sidecar the other two.
    let (_, globals) = decode_folder(&h.store, &folder);
    let in_asb: BTreeSet<String> = globals
        .iter()
        .filter_map(|g| match g {
            AsbItem::SecondaryIndex(i) => Some(i.name.clone()),
            _ => None,
        })
        .collect();
    assert!(in_asb.contains(names[0]), "{in_asb:?}");
    assert!(
        !in_asb.contains(names[1]) && !in_asb.contains(names[2]),
        "{in_asb:?}"
    );
    let sidecar: Vec<PathBuf> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".asb33"))
        .collect();
    assert_eq!(sidecar.len(), 1, "{sidecar:?}");
    let text = std::fs::read(&sidecar[0]).unwrap();
    let mut d = AsbDecoder::new(&text[..]);
    let mut extended = BTreeMap::new();
    while let Some(item) = d.next_item().unwrap() {
        if let AsbItem::SecondaryIndex(i) = item {
            extended.insert(i.name.clone(), i);
        }
    }
    let s = &extended[names[1]];
    assert_eq!(
        (s.index_type, s.set.as_deref(), s.bin.as_str()),
        (abs::asb::IndexType::Set, Some(set), "")
    );
    assert_eq!(
        extended[names[2]].expression.as_deref(),
        Some(exp_b64.as_str())
    );

    // Dropped, then restored by the service: each comes back as the server listed it.
    drop_all().await;
    let v = h
        .restore(&folder, serde_json::json!({"no-records": true}))
        .await;
    assert!(v.counters.index_count >= 3, "{:?}", v.counters);
    let start = Instant::now();
    loop {
        let after = info(&client, "sindex-list:ns=test;b64=true").await;
        let got: Vec<Option<String>> = names.iter().map(|n| sindex_entry(&after, n)).collect();
        let want: Vec<Option<String>> = names.iter().map(|n| sindex_entry(&before, n)).collect();
        // `state=` moves from building (WO) to ready (RW); the definitions must be equal.
        let strip = |v: Vec<Option<String>>| -> Vec<Option<String>> {
            v.into_iter()
                .map(|e| e.map(|e| e.replace(":state=WO", ":state=RW")))
                .collect()
        };
        if strip(got.clone()) == strip(want.clone()) {
            break;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "restored {got:?}, want {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // asrestore reads the backup (it skips the sidecar): records and the bin index.
    if let Some(asrestore) = asrestore() {
        drop_all().await;
        truncate(&client, set).await;
        let out = Command::new(&asrestore)
            .args(["-h", &host, "-p", &port.to_string(), "-d"])
            .arg(&folder)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "asrestore failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(read_set(&client, set).await.len(), 20);
        let after = info(&client, "sindex-list:ns=test;b64=true").await;
        assert!(sindex_entry(&after, names[0]).is_some(), "{after}");
        assert!(sindex_entry(&after, names[1]).is_none(), "{after}");
    }
    drop_all().await;
}

/// The `sindex-list` entry of the index `name`.
fn sindex_entry(list: &str, name: &str) -> Option<String> {
    list.split(';')
        .find(|e| e.split(':').any(|f| f == format!("indexname={name}")))
        .map(str::to_string)
}

/// A `filter-exp` the server cannot parse (`[GT, 1]`: one operand) fails the backup with
/// the server's parameter error (4), at once, as ABS reports it.
#[tokio::test]
async fn a_filter_expression_the_server_cannot_parse_fails_with_code_4() {
    let Some((host, port)) = real("a_filter_expression_the_server_cannot_parse_fails_with_code_4")
    else {
        return;
    };
    let _serial = SERIAL.lock().await;
    let client = client(&host, port).await;
    let set = "rs_badexp";
    truncate(&client, set).await;
    write_simple(&client, set, 10).await;
    let h = harness(
        &host,
        port,
        "parallel: 2",
        &format!("set-list: [{set}]\n    filter-exp: \"kgMB\""),
    );
    let start = Instant::now();
    match h.outcome(BackupKind::Full).await {
        JobOutcome::Failure(e) => assert!(
            e.contains("server error 4 (parameter error)") && !e.contains("attempts"),
            "{e}"
        ),
        other => panic!("a filter the server cannot parse: {other:?}"),
    }
    assert!(start.elapsed() < Duration::from_secs(10), "not retried");
}

/// `incr-mode: cumulative` on the server: the second incremental holds every change since
/// the full, and a point-in-time restore applies the full and that incremental only.
#[tokio::test]
async fn cumulative_incrementals_cover_everything_since_the_full() {
    let Some((host, port)) = real("cumulative_incrementals_cover_everything_since_the_full") else {
        return;
    };
    let _serial = SERIAL.lock().await;
    let client = client(&host, port).await;
    let set = "rs_cumul";
    truncate(&client, set).await;
    write_simple(&client, set, 10).await;
    let h = harness(
        &host,
        port,
        "parallel: 2, incr-mode: cumulative",
        &format!("set-list: [{set}]"),
    );
    let full = h.run(BackupKind::Full).await;
    assert_eq!(full.records(), 10);
    let wp = WritePolicy {
        send_key: true,
        ..WritePolicy::default()
    };
    let put = |i: i64, v: &'static str| {
        let key = Key::new("test", set, Value::from(i)).unwrap();
        let client = &client;
        let wp = &wp;
        async move {
            client
                .put(wp, &key, &[as_bin!("a", i), as_bin!("b", v)])
                .await
                .unwrap();
        }
    };
    put(0, "one").await;
    put(1, "one").await;
    let incr1 = h.run(BackupKind::Incremental).await;
    assert_eq!(incr1.records(), 2);
    put(2, "two").await;
    let incr2 = h.run(BackupKind::Incremental).await;
    assert_eq!(incr2.records(), 3, "cumulative: records 0, 1 and 2");
    let meta = |r: &JobReport| -> abs::storage::layout::BackupMetadata {
        let folder = h.folder(r).unwrap();
        serde_yaml::from_slice(&std::fs::read(folder.join("metadata.yaml")).unwrap()).unwrap()
    };
    assert_eq!(meta(&incr2).from, meta(&full).created);

    let want = read_set(&client, set).await;
    truncate(&client, set).await;
    let req = serde_json::from_value(serde_json::json!({
        "routine": "r",
        "time": chrono::Utc::now().timestamp_millis() + 1,
        "destination-name": "c",
    }))
    .unwrap();
    let id = h.restores.start_timestamp(&req).await.unwrap();
    let v = h.restores.wait(id).await.unwrap();
    assert_eq!(v.status, RestoreStatus::Success, "{:?}", v.error);
    // The full (10) and the second incremental (3); the first is not read.
    assert_eq!(v.counters.read_records, 13, "{:?}", v.counters);
    let now = read_set(&client, set).await;
    assert_eq!(now.len(), want.len());
    for (d, w) in &want {
        assert_eq!(canon_record(&now[d]), canon_record(w), "{d:?}");
    }
}
