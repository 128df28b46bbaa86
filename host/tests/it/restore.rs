//! Restore end to end: backups written by the engine (or by asbackup: the golden files) are
//! read back from storage-local through the codec plugins and written into the test node,
//! then compared record by record with what was there; the REST endpoints on top.
//!
//! Length: one test per restore behaviour, each standing alone; shared helpers are in
//! `common.rs`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use abs::api::{self, AppState};
use abs::asb::convert::record_from_client;
use abs::asb::{AsbRecord, BinValue};
use abs::config::{Config, ConfigStore, RestoreRequest, RestoreTimestampRequest};
use abs::jobs::backup::{EngineContext, ManualClock};
use abs::jobs::registry::{JobOutcome, JobRegistry, Trigger};
use abs::jobs::restore_jobs::{RestoreJobs, RestoreStatus, RestoreView, StartError};
use abs::metrics::Metrics;
use abs::storage::layout::BackupKind;
use aerospike::query::{PartitionFilter, Statement};
use aerospike::{
    AdminPolicy, Bins, Client, ClientPolicy, CollectionIndexType, IndexType, Key, QueryPolicy,
    Task, UdfLang, Value, WritePolicy, as_bin,
};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use futures::StreamExt;
use http_body_util::BodyExt;
use testkit::fixtures::{self, FixtureSpec};
use testkit::{AerospikeNode, NodeConfig};
use tower::ServiceExt;

/// The engine's clock and the node's: one instant, so void time → TTL → void time is exact.
use crate::common::{key_pem, plugins, repo, routine_config};

const T0: i64 = 1_800_000_000_000;

fn config(node: &AerospikeNode, dir: &Path, policy: &str, top: &str) -> Config {
    routine_config(node, dir, policy, "incr-interval-cron: \"@hourly\"", top)
}

struct Harness {
    jobs: JobRegistry,
    restores: RestoreJobs,
    store: Arc<ConfigStore>,
    clock: Arc<ManualClock>,
    dir: tempfile::TempDir,
}

fn harness(node: &AerospikeNode, policy: &str) -> Harness {
    harness_with(node, policy, "")
}

/// [`harness`] with more top-level config sections (`top`, YAML at column 0).
fn harness_with(node: &AerospikeNode, policy: &str, top: &str) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(ConfigStore::in_memory(config(
        node,
        dir.path(),
        policy,
        top,
    )));
    let clock = Arc::new(ManualClock::at_ms(T0));
    node.clock().pin_ms(T0 as u64);
    let ctx = Arc::new(EngineContext::new(plugins(), clock.clone()));
    let metrics = Some(Arc::new(Metrics::new()));
    let jobs = JobRegistry::with_context(store.clone(), metrics.clone(), ctx);
    Harness {
        restores: RestoreJobs::new(store.clone(), metrics, jobs.clone()),
        jobs,
        store,
        clock,
        dir,
    }
}

impl Harness {
    async fn backup(&self, kind: BackupKind) -> abs::jobs::backup::JobReport {
        let t = self
            .jobs
            .start("r", kind, abs::scheduler::rules::admission)
            .await
            .unwrap();
        assert!(!matches!(t, Trigger::Skipped(_)), "{t:?}");
        match self.jobs.wait("r", kind).await {
            Some(JobOutcome::Success(r)) => r,
            other => panic!("backup failed: {other:?}"),
        }
    }

    /// The `test` namespace folder of a backup.
    async fn backup_key(&self, kind: BackupKind) -> String {
        let r = self.backup(kind).await;
        r.namespaces[0].key.clone().expect("a folder")
    }

    fn request(&self, path: &str, policy: serde_json::Value) -> RestoreRequest {
        serde_json::from_value(serde_json::json!({
            "backup-data-path": path,
            "destination-name": "c",
            "source-name": "s",
            "policy": policy,
        }))
        .unwrap()
    }

    async fn restore(&self, path: &str, policy: serde_json::Value) -> RestoreView {
        let id = self
            .restores
            .start_request(&self.request(path, policy), "full")
            .await
            .unwrap_or_else(|e| panic!("restore refused: {e}"));
        self.restores.wait(id).await.unwrap()
    }

    async fn restore_ok(&self, path: &str, policy: serde_json::Value) -> RestoreView {
        let v = self.restore(path, policy).await;
        assert_eq!(v.status, RestoreStatus::Success, "{:?}", v.error);
        assert_invariant(&v);
        v
    }
}

fn assert_invariant(v: &RestoreView) {
    let c = v.counters;
    assert_eq!(
        c.read_records,
        c.accounted(),
        "read = sum of outcomes: {c:?}"
    );
}

async fn connect(node: &AerospikeNode) -> Client {
    Client::new(&ClientPolicy::default(), &node.hosts())
        .await
        .unwrap()
}

/// The namespace as the client scans it, by digest.
pub(crate) async fn scan_all(client: &Client, ns: &str) -> BTreeMap<[u8; 20], AsbRecord> {
    let rs = client
        .query(
            &QueryPolicy::default(),
            PartitionFilter::all(),
            Statement::new(ns, "", Bins::All),
        )
        .await
        .unwrap();
    let mut out = BTreeMap::new();
    let mut s = rs.into_stream();
    while let Some(r) = s.next().await {
        let mut rec = record_from_client(&r.unwrap()).unwrap();
        rec.bins.sort_by(|a, b| a.name.cmp(&b.name));
        out.insert(rec.digest, rec);
    }
    out
}

/// Compares two scans: keys, sets, bins, void times (and generations when asked).
fn assert_same(
    got: &BTreeMap<[u8; 20], AsbRecord>,
    want: &BTreeMap<[u8; 20], AsbRecord>,
    generations: bool,
    what: &str,
) {
    assert_eq!(got.len(), want.len(), "{what}: record count");
    for (d, w) in want {
        let g = got
            .get(d)
            .unwrap_or_else(|| panic!("{what}: missing {d:?}"));
        assert_eq!(
            (&g.key, &g.set, g.void_time, &g.bins),
            (&w.key, &w.set, w.void_time, &w.bins),
            "{what}: record {d:?}"
        );
        if generations {
            assert_eq!(g.generation, w.generation, "{what}: generation of {d:?}");
        }
    }
}

/// Empties the node: records, indexes, UDFs.
pub(crate) fn wipe(node: &AerospikeNode) {
    let store = node.store();
    for ns in &store.namespaces {
        for p in &ns.parts {
            let mut p = p.write().unwrap();
            let digests: Vec<_> = p.keys().copied().collect();
            for d in digests {
                p.remove(&d);
            }
        }
    }
    store.sindexes.lock().unwrap().clear();
    store.udfs.lock().unwrap().clear();
}

fn seed(node: &AerospikeNode, records: usize) {
    fixtures::fill(
        node,
        &FixtureSpec {
            records,
            ..FixtureSpec::default()
        },
    );
}

const UDF: &[u8] = b"function one(rec)\n  return 1\nend\n";

async fn add_index_and_udf(client: &Client) {
    client
        .create_index_on_bin(
            &AdminPolicy::default(),
            "test",
            "",
            "int",
            "idx",
            IndexType::Numeric,
            CollectionIndexType::Default,
            None,
        )
        .await
        .unwrap();
    client
        .register_udf(&AdminPolicy::default(), UDF, "one.lua", UdfLang::Lua)
        .await
        .unwrap()
        .wait_till_complete(None)
        .await
        .unwrap();
}

fn assert_index_and_udf(node: &AerospikeNode, what: &str) {
    let store = node.store();
    let idx = store.sindexes.lock().unwrap();
    assert!(
        idx.iter()
            .any(|i| i.name == "idx" && i.bin == "int" && i.ns == "test"),
        "{what}: index back: {idx:?}"
    );
    let udfs = store.udfs.lock().unwrap();
    assert_eq!(
        udfs.get("one.lua").map(|u| u.content.as_slice()),
        Some(UDF),
        "{what}: UDF back"
    );
}

fn pipelines() -> Vec<(&'static str, String, serde_json::Value)> {
    let key = key_pem().display().to_string();
    let enc = |mode: &str| serde_json::json!({"encryption": {"mode": mode, "key-file": key}});
    vec![
        ("none", "parallel: 2".into(), serde_json::json!({})),
        (
            "zstd",
            "parallel: 2, compression: {mode: ZSTD}".into(),
            serde_json::json!({}),
        ),
        (
            "aes128",
            format!("parallel: 2, encryption: {{mode: AES128, key-file: \"{key}\"}}"),
            enc("AES128"),
        ),
        (
            "aes256",
            format!("parallel: 2, encryption: {{mode: AES256, key-file: \"{key}\"}}"),
            enc("AES256"),
        ),
        (
            "zstd+aes256",
            format!(
                "parallel: 2, compression: {{mode: ZSTD}}, encryption: {{mode: AES256, key-file: \"{key}\"}}"
            ),
            enc("AES256"),
        ),
        (
            "aes-gcm",
            format!(
                "parallel: 2, pipeline: [{{plugin: compression-zstd}}, {{plugin: encryption-aes, options: {{mode: aes-256-gcm}}, key-file: \"{key}\"}}]"
            ),
            serde_json::json!({"encryption": {"mode": "AES256", "key-file": key}}),
        ),
    ]
}

async fn round_trip(node: &AerospikeNode, what: &str) {
    seed(node, 400);
    let client = connect(node).await;
    add_index_and_udf(&client).await;
    let want = scan_all(&client, "test").await;
    for (name, policy, restore_policy) in pipelines() {
        let h = harness(node, &policy);
        let key = h.backup_key(BackupKind::Full).await;
        wipe(node);
        assert_eq!(node.record_count("test"), 0);
        let v = h.restore_ok(&key, restore_policy).await;
        let what = format!("{what} {name}");
        assert_eq!(v.counters.read_records, 400, "{what}");
        assert_eq!(v.counters.inserted_records, 400, "{what}");
        assert_eq!(
            (v.counters.index_count, v.counters.udf_count),
            (1, 1),
            "{what}"
        );
        assert!(v.counters.total_bytes > 0, "{what}");
        assert_same(&scan_all(&client, "test").await, &want, true, &what);
        assert_index_and_udf(node, &what);
    }
}

#[tokio::test]
async fn every_pipeline_round_trips_records_indexes_and_udfs_on_one_node() {
    let node = AerospikeNode::start().unwrap();
    round_trip(&node, "1 node").await;
}

#[tokio::test]
async fn every_pipeline_round_trips_on_three_nodes() {
    let node = AerospikeNode::start_with(NodeConfig {
        nodes: 3,
        ..NodeConfig::default()
    })
    .unwrap();
    round_trip(&node, "3 nodes").await;
}

#[tokio::test]
async fn lists_and_maps_are_written_back_byte_for_byte_with_their_flags() {
    use abs::asb::{AsbEncoder, Bin as AsbBin, EncoderOptions};
    let node = AerospikeNode::start().unwrap();
    let h = harness(&node, "parallel: 1");
    // Particles as a server holds them (and asbackup writes them): an ordered list (ext
    // header with flag 1), a key-ordered map, an unordered list holding an ordered one,
    // empty collections.
    let particles: Vec<(&str, BinValue)> = vec![
        (
            "ol",
            BinValue::List(vec![0x94, 0xc7, 0x00, 0x01, 0x01, 0x02, 0x03]),
        ),
        (
            "km",
            BinValue::Map(vec![0x82, 0xc7, 0x00, 0x01, 0xc0, 0xa2, 0x03, b'a', 0x01]),
        ),
        (
            "nest",
            BinValue::List(vec![0x92, 0x01, 0x93, 0xc7, 0x00, 0x01, 0x05, 0x06]),
        ),
        ("el", BinValue::List(vec![0x90])),
        ("em", BinValue::Map(vec![0x80])),
    ];
    let key = Key::new("test", "cdt", Value::from(1)).unwrap();
    let rec = AsbRecord {
        key: Some(abs::asb::UserKey::Int(1)),
        namespace: "test".into(),
        digest: key.digest(),
        set: Some("cdt".into()),
        generation: 1,
        void_time: 0,
        bins: particles
            .iter()
            .map(|(n, v)| AsbBin::new(*n, v.clone()))
            .collect(),
    };
    let mut enc = AsbEncoder::new(Vec::new(), EncoderOptions::default());
    enc.write_header("test").unwrap();
    enc.write_record(&rec).unwrap();
    let folder = h.dir.path().join("handmade");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("test_00000.asb"), enc.into_inner()).unwrap();
    h.restore_ok("handmade", serde_json::json!({})).await;
    let ns = node.store().ns(b"test").unwrap();
    let part = ns.part(&key.digest()).read().unwrap();
    let stored = part.get(&key.digest()).expect("restored").clone();
    for (name, value) in &particles {
        let b = stored.bin(name.as_bytes()).expect(name);
        let (ptype, bytes) = match value {
            BinValue::List(b) => (20, b),
            BinValue::Map(b) => (19, b),
            _ => unreachable!(),
        };
        assert_eq!((b.ptype, b.data), (ptype, bytes.as_slice()), "{name}");
    }
}

#[tokio::test]
async fn existence_actions_and_generation_rules_count_as_abs_does() {
    let node = AerospikeNode::start().unwrap();
    let client = connect(&node).await;
    let h = harness(&node, "parallel: 1");
    let keys: Vec<Key> = (0..10)
        .map(|i| Key::new("test", "g", Value::from(i)).unwrap())
        .collect();
    let wp = WritePolicy {
        send_key: true,
        ..WritePolicy::default()
    };
    for k in &keys {
        client
            .put(&wp, k, &[as_bin!("a", 1), as_bin!("b", 1)])
            .await
            .unwrap();
    }
    let path = h.backup_key(BackupKind::Full).await; // every record at generation 1
    // Records 0..5 move on to generation 3 with other bins; 5..10 are deleted.
    for k in &keys[..5] {
        client.put(&wp, k, &[as_bin!("a", 2)]).await.unwrap();
        client.put(&wp, k, &[as_bin!("c", 2)]).await.unwrap();
    }
    for k in &keys[5..] {
        client.delete(&WritePolicy::default(), k).await.unwrap();
    }
    let bins_of = |scan: &BTreeMap<[u8; 20], AsbRecord>, k: &Key| {
        scan[&k.digest()]
            .bins
            .iter()
            .map(|b| (b.name.clone(), b.value.clone()))
            .collect::<Vec<_>>()
    };
    let int = |n: i64| BinValue::Int(n);

    // Default: the server's generation 3 is not below the backup's 1 → fresher.
    let v = h.restore_ok(&path, serde_json::json!({})).await;
    let c = v.counters;
    assert_eq!(
        (c.read_records, c.inserted_records, c.fresher_records),
        (10, 5, 5)
    );
    let scan = scan_all(&client, "test").await;
    // Untouched: the two updates merged into the first write's bins.
    assert_eq!(
        bins_of(&scan, &keys[0]),
        vec![
            ("a".into(), int(2)),
            ("b".into(), int(1)),
            ("c".into(), int(2))
        ]
    );

    // unique: create only → every record exists now.
    let v = h
        .restore_ok(&path, serde_json::json!({"unique": true}))
        .await;
    assert_eq!(
        (v.counters.existed_records, v.counters.inserted_records),
        (10, 0)
    );

    // no-generation: the backup's bins merge in (update), whatever the generation.
    let v = h
        .restore_ok(&path, serde_json::json!({"no-generation": true}))
        .await;
    assert_eq!(v.counters.inserted_records, 10);
    let scan = scan_all(&client, "test").await;
    assert_eq!(
        bins_of(&scan, &keys[0]),
        vec![
            ("a".into(), int(1)),
            ("b".into(), int(1)),
            ("c".into(), int(2))
        ]
    );

    // replace + no-generation: bins not in the backup go.
    let v = h
        .restore_ok(
            &path,
            serde_json::json!({"replace": true, "no-generation": true}),
        )
        .await;
    assert_eq!(v.counters.inserted_records, 10);
    let scan = scan_all(&client, "test").await;
    assert_eq!(
        bins_of(&scan, &keys[0]),
        vec![("a".into(), int(1)), ("b".into(), int(1))]
    );

    // replace + unique contradict: refused before the job starts, naming the field.
    let e = h
        .restores
        .start_request(
            &h.request(&path, serde_json::json!({"replace": true, "unique": true})),
            "full",
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&e, StartError::Request(r) if r.field == "policy.unique"),
        "{e}"
    );

    // set-list / bin-list / namespace mapping: other sets skipped, bins filtered.
    let v = h
        .restore_ok(
            &path,
            serde_json::json!({"set-list": ["nope"], "no-generation": true}),
        )
        .await;
    assert_eq!(
        (v.counters.skipped_records, v.counters.inserted_records),
        (10, 0)
    );
    let v = h
        .restore_ok(
            &path,
            serde_json::json!({"bin-list": ["zzz"], "no-generation": true}),
        )
        .await;
    assert_eq!(v.counters.skipped_records, 10, "no bins left: skipped");
}

#[tokio::test]
async fn expired_records_are_counted_and_extra_ttl_keeps_them() {
    let node = AerospikeNode::start().unwrap();
    let client = connect(&node).await;
    let h = harness(&node, "parallel: 1");
    let wp = WritePolicy {
        expiration: aerospike::Expiration::Seconds(100),
        ..WritePolicy::default()
    };
    for i in 0..4 {
        let k = Key::new("test", "t", Value::from(i)).unwrap();
        client.put(&wp, &k, &[as_bin!("a", i)]).await.unwrap();
    }
    let path = h.backup_key(BackupKind::Full).await;
    wipe(&node);
    // 200 s later the records are past their void time.
    h.clock.set_ms(T0 + 200_000);
    node.clock().pin_ms((T0 + 200_000) as u64);
    let v = h.restore_ok(&path, serde_json::json!({})).await;
    assert_eq!(
        (v.counters.expired_records, v.counters.inserted_records),
        (4, 0)
    );
    assert_eq!(node.record_count("test"), 0);
    // 150 s extra: 100 - 200 + 150 = 50 s left.
    let v = h
        .restore_ok(&path, serde_json::json!({"extra-ttl": 150}))
        .await;
    assert_eq!(v.counters.inserted_records, 4);
    let scan = scan_all(&client, "test").await;
    let now_cl = ((T0 + 200_000) / 1000 - abs::asb::CITRUSLEAF_EPOCH_UNIX_SECS) as u32;
    for r in scan.values() {
        assert_eq!(r.void_time, now_cl + 50);
    }
}

#[tokio::test]
async fn point_in_time_restores_exactly_the_data_at_each_incremental() {
    let node = AerospikeNode::start().unwrap();
    let client = connect(&node).await;
    let h = harness(&node, "parallel: 2");
    let key = |i: i64| Key::new("test", "pit", Value::from(i)).unwrap();
    let wp = WritePolicy::default();
    for i in 0..20 {
        client
            .put(&wp, &key(i), &[as_bin!("v", 0), as_bin!("w", 0)])
            .await
            .unwrap();
    }
    let t0 = T0 + 10_000;
    h.clock.set_ms(t0);
    node.clock().pin_ms(t0 as u64 - 1);
    h.backup(BackupKind::Full).await;
    let at = |ms: i64| node.clock().pin_ms(ms as u64);

    at(t0 + 1_000);
    for i in 0..10 {
        client.put(&wp, &key(i), &[as_bin!("v", 1)]).await.unwrap();
    }
    for i in 20..25 {
        client.put(&wp, &key(i), &[as_bin!("v", 1)]).await.unwrap();
    }
    let t1 = t0 + 5_000;
    at(t1 - 1);
    let state_t1 = scan_all(&client, "test").await;
    h.clock.set_ms(t1);
    h.backup(BackupKind::Incremental).await;

    at(t1 + 1_000);
    for i in 0..5 {
        // Bin `w` deleted: the record at t2 has `v` only.
        client
            .put(
                &wp,
                &key(i),
                &[
                    as_bin!("v", 2),
                    aerospike::Bin::new("w".to_string(), Value::Nil),
                ],
            )
            .await
            .unwrap();
    }
    let t2 = t1 + 5_000;
    at(t2 - 1);
    let state_t2 = scan_all(&client, "test").await;
    h.clock.set_ms(t2);
    h.backup(BackupKind::Incremental).await;

    for (t, want, what) in [(t1, &state_t1, "t1"), (t2, &state_t2, "t2")] {
        wipe(&node);
        let req: RestoreTimestampRequest = serde_json::from_value(serde_json::json!({
            "routine": "r", "time": t + 1, "destination-name": "c",
        }))
        .unwrap();
        let id = h.restores.start_timestamp(&req).await.unwrap();
        let v = h.restores.wait(id).await.unwrap();
        assert_eq!(v.status, RestoreStatus::Success, "{what}: {:?}", v.error);
        assert_invariant(&v);
        assert_same(&scan_all(&client, "test").await, want, false, what);
    }
    // Before the full: nothing to restore.
    let req: RestoreTimestampRequest = serde_json::from_value(serde_json::json!({
        "routine": "r", "time": t0, "destination-name": "c",
    }))
    .unwrap();
    let e = h.restores.start_timestamp(&req).await.unwrap_err();
    assert!(
        matches!(&e, StartError::Request(r) if r.field == "time"),
        "{e}"
    );
}

/// Copies a golden folder to `<storage>/asbackup/<name>`.
fn install_golden(h: &Harness, name: &str) -> String {
    let src = repo().join("tests/data/golden").join(name);
    let dst = h.dir.path().join("asbackup").join(name);
    std::fs::create_dir_all(&dst).unwrap();
    for e in std::fs::read_dir(&src).unwrap().flatten() {
        std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
    }
    format!("asbackup/{name}")
}

#[tokio::test]
async fn every_golden_asbackup_backup_restores_every_record_exactly() {
    let node = AerospikeNode::start().unwrap();
    let client = connect(&node).await;
    let h = harness(&node, "parallel: 1");
    let key = key_pem().display().to_string();
    let cases = [
        ("plain", serde_json::json!({})),
        ("compact", serde_json::json!({})),
        ("parallel4", serde_json::json!({"parallel": 4})),
        ("zstd", serde_json::json!({"compression": {"mode": "ZSTD"}})),
        (
            "aes256",
            serde_json::json!({"encryption": {"mode": "AES256", "key-file": key}}),
        ),
        (
            "zstd-aes128",
            serde_json::json!({"compression": {"mode": "ZSTD"},
                "encryption": {"mode": "AES128", "key-file": key}}),
        ),
    ];
    let mut reference: Option<BTreeMap<[u8; 20], AsbRecord>> = None;
    for (name, policy) in cases {
        wipe(&node);
        let path = install_golden(&h, name);
        let v = h.restore_ok(&path, policy).await;
        assert_eq!(v.counters.read_records, 200, "{name}");
        assert_eq!(v.counters.inserted_records, 200, "{name}");
        assert_eq!(
            (v.counters.index_count, v.counters.udf_count),
            (1, 1),
            "{name}"
        );
        let got = scan_all(&client, "test").await;
        check_expected(&got, name);
        // Every variant restores the same data as the plain one.
        match &reference {
            None => reference = Some(got),
            Some(r) => assert_same(&got, r, false, name),
        }
    }
}

/// The restored records against `expected.json`: digests, stored keys, bin names and the
/// values' meaning (ints, strings, floats), void time for the `long` TTL.
fn check_expected(got: &BTreeMap<[u8; 20], AsbRecord>, what: &str) {
    use base64::Engine as _;
    let text = std::fs::read_to_string(repo().join("tests/data/golden/expected.json")).unwrap();
    let exp: serde_json::Value = serde_json::from_str(&text).unwrap();
    let records = exp["records"].as_array().unwrap();
    assert_eq!(got.len(), records.len(), "{what}");
    for r in records {
        let digest: [u8; 20] = base64::engine::general_purpose::STANDARD
            .decode(r["digest"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        let g = got
            .get(&digest)
            .unwrap_or_else(|| panic!("{what}: missing {}", r["digest"]));
        assert_eq!(g.set.as_deref(), Some("golden"), "{what}");
        match r["key"].as_i64() {
            Some(k) => assert_eq!(g.key, Some(abs::asb::UserKey::Int(k)), "{what}"),
            None => assert_eq!(g.key, None, "{what}"),
        }
        let names: Vec<&str> = r["bins"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut want_names = names.clone();
        want_names.sort_unstable();
        let got_names: Vec<&str> = g.bins.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(got_names, want_names, "{what}: bins of {}", r["digest"]);
        let id = r["bins"]["id"]["int"]
            .as_str()
            .unwrap()
            .parse::<i64>()
            .unwrap();
        let gid = g.bins.iter().find(|b| b.name == "id").unwrap();
        assert_eq!(gid.value, BinValue::Int(id), "{what}");
        if r["ttl"] == "long" {
            assert_eq!(g.void_time, 844_517_181, "{what}: void time kept");
        } else {
            assert_eq!(g.void_time, 0, "{what}");
        }
    }
}

#[tokio::test]
async fn bad_files_fail_the_job_clearly_and_the_service_goes_on() {
    let node = AerospikeNode::start().unwrap();
    seed(&node, 300);
    let key = key_pem().display().to_string();
    let h = harness(
        &node,
        &format!("parallel: 1, encryption: {{mode: AES256, key-file: \"{key}\"}}"),
    );
    let path = h.backup_key(BackupKind::Full).await;
    let folder = h.dir.path().join(&path);
    let data = std::fs::read_dir(&folder)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "asb"))
        .unwrap();
    let original = std::fs::read(&data).unwrap();
    let enc = serde_json::json!({"encryption": {"mode": "AES256", "key-file": key}});
    let fname = data.file_name().unwrap().to_string_lossy().to_string();

    // Wrong key (AES-128 derived from the file, not AES-256): the plain text is garbage,
    // so the decoder stops at line 1 of the file.
    let wrong = serde_json::json!({"encryption": {"mode": "AES128", "key-file": key}});
    let v = h.restore(&path, wrong).await;
    assert_eq!(v.status, RestoreStatus::Failure);
    let err = v.error.clone().unwrap();
    assert!(err.contains(&fname) && err.contains("line 1"), "{err}");
    assert_invariant(&v);

    // Truncated mid-stream, with checksums.yaml: refused before any of its records.
    std::fs::write(&data, &original[..original.len() / 2]).unwrap();
    wipe(&node);
    let v = h.restore(&path, enc.clone()).await;
    assert_eq!(v.status, RestoreStatus::Failure);
    let err = v.error.clone().unwrap();
    assert!(
        err.contains(&fname) && err.contains("checksums.yaml"),
        "{err}"
    );
    assert_eq!(v.counters.inserted_records, 0, "{:?}", v.counters);
    assert_invariant(&v);

    // Without checksums.yaml (asbackup's backups, older ones): the decoder finds the cut;
    // the records before it are written and counted.
    let sums = std::fs::read(folder.join("checksums.yaml")).unwrap();
    std::fs::remove_file(folder.join("checksums.yaml")).unwrap();
    wipe(&node);
    let v = h.restore(&path, enc.clone()).await;
    assert_eq!(v.status, RestoreStatus::Failure);
    let err = v.error.clone().unwrap();
    assert!(err.contains(&fname) && err.contains("line"), "{err}");
    assert!(v.counters.inserted_records > 0, "{:?}", v.counters);
    assert_invariant(&v);
    std::fs::write(folder.join("checksums.yaml"), sums).unwrap();

    // Corrupt plain text: a flipped byte in a record line names the line.
    let h2 = harness(&node, "parallel: 1");
    let path2 = h2.backup_key(BackupKind::Full).await;
    let f2 = std::fs::read_dir(h2.dir.path().join(&path2))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "asb"))
        .unwrap();
    let text = std::fs::read_to_string(&f2).unwrap();
    let broken = text.replacen("\n+ g ", "\n+ g x", 5);
    std::fs::write(&f2, broken).unwrap();
    // (Without checksums.yaml, so the decoder is what finds it.)
    std::fs::remove_file(h2.dir.path().join(&path2).join("checksums.yaml")).unwrap();
    let v = h2.restore(&path2, serde_json::json!({})).await;
    assert_eq!(v.status, RestoreStatus::Failure);
    assert!(
        v.error.as_deref().unwrap().contains("line"),
        "{:?}",
        v.error
    );
    assert_invariant(&v);

    // Unknown plugin in the sidecar: refused before the job starts.
    std::fs::write(
        h2.dir.path().join(&path2).join("pipeline.yaml"),
        "pipeline:\n- plugin: no-such-codec\n  options: {}\n",
    )
    .unwrap();
    let e = h2
        .restores
        .start_request(&h2.request(&path2, serde_json::json!({})), "full")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no-such-codec"), "{e}");

    // The service still serves: a good restore runs.
    std::fs::write(&data, &original).unwrap();
    wipe(&node);
    let v = h.restore_ok(&path, enc).await;
    assert_eq!(v.counters.inserted_records, 300);
}

#[tokio::test]
async fn an_abs_3x_layout_backup_with_backup_go_names_restores() {
    let node = AerospikeNode::start().unwrap();
    let client = connect(&node).await;
    let h = harness(&node, "parallel: 1");
    // The layout ABS 3.x writes: <routine>/backup/<ts>/data/<ns>/ with backup-go names and
    // metadata.yaml; the golden records stand in for a backup-go data file.
    let folder = h.dir.path().join("daily/backup/1700000000000/data/test");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::copy(
        repo().join("tests/data/golden/plain/test_00000.asb"),
        folder.join("0_test_1.asb"),
    )
    .unwrap();
    // Without metadata.yaml the backup is incomplete: refused.
    let e = h
        .restores
        .start_request(
            &h.request(
                "daily/backup/1700000000000/data/test",
                serde_json::json!({}),
            ),
            "full",
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&e, StartError::Request(r) if r.field == "backup-data-path"),
        "{e}"
    );
    std::fs::write(
        folder.join("metadata.yaml"),
        "created: 2023-11-14T22:13:20Z\nfinished: 2023-11-14T22:13:21Z\n\
         from: 0001-01-01T00:00:00Z\nnamespace: test\nrecord-count: 200\nbyte-count: 1\n\
         file-count: 1\nsecondary-index-count: 1\nudf-count: 1\ncompression: NONE\n\
         encryption: NONE\n",
    )
    .unwrap();
    // The whole backup folder works as well as the namespace folder.
    let v = h
        .restore_ok("daily/backup/1700000000000", serde_json::json!({}))
        .await;
    assert_eq!(v.counters.inserted_records, 200);
    assert_eq!(v.progress.estimated_total, 200);
    check_expected(&scan_all(&client, "test").await, "abs 3.x layout");
}

async fn call(
    app: &axum::Router,
    method: &str,
    uri: &str,
    body: Option<serde_json::Value>,
) -> (StatusCode, Vec<u8>) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json");
    let req = match body {
        Some(b) => req.body(Body::from(b.to_string())).unwrap(),
        None => req.body(Body::empty()).unwrap(),
    };
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, bytes.to_vec())
}

fn json(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes).unwrap_or(serde_json::Value::Null)
}

#[tokio::test]
async fn rest_endpoints_start_follow_list_and_cancel_restores() {
    let node = AerospikeNode::start().unwrap();
    seed(&node, 200);
    let h = harness(&node, "parallel: 2, with-cluster-configuration: true");
    let path = h.backup_key(BackupKind::Full).await;
    let metrics = Arc::new(Metrics::new());
    let mut state = AppState::new(h.store.clone(), metrics.clone());
    state.set_jobs(h.jobs.clone());
    let restores = state.restores.clone();
    let app = api::router(state);

    // Bad requests name the field.
    for (body, field) in [
        (
            serde_json::json!({"destination-name": "c", "source-name": "s"}),
            "backup-data-path",
        ),
        (
            serde_json::json!({"backup-data-path": path, "source-name": "s"}),
            "destination",
        ),
        (
            serde_json::json!({"backup-data-path": path, "destination-name": "c",
                "destination": {"seed-nodes": [{"host-name": "h", "port": 1}]}, "source-name": "s"}),
            "destination",
        ),
        (
            serde_json::json!({"backup-data-path": path, "destination-name": "nope", "source-name": "s"}),
            "destination-name",
        ),
        (
            serde_json::json!({"backup-data-path": "r/backup/1/data/test", "destination-name": "c",
                "source-name": "s"}),
            "backup-data-path",
        ),
        (
            serde_json::json!({"backup-data-path": path, "destination-name": "c", "source-name": "s",
                "policy": {"replace": true, "unique": true}}),
            "policy.unique",
        ),
    ] {
        let (s, b) = call(&app, "POST", "/v1/restore/full", Some(body.clone())).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(
            json(&b)["field"],
            field,
            "{body}: {}",
            String::from_utf8_lossy(&b)
        );
    }
    let (s, _) = call(
        &app,
        "POST",
        "/v1/restore/timestamp",
        Some(serde_json::json!({"routine": "r", "time": 1, "destination-name": "c"})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    wipe(&node);
    let (s, b) = call(
        &app,
        "POST",
        "/v1/restore/full",
        Some(
            serde_json::json!({"backup-data-path": path, "destination-name": "c",
            "source-name": "s"}),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let id: i64 = serde_json::from_slice(&b).unwrap();
    assert!(id >= 0);
    restores.wait(id).await.expect("the job is known");
    let (s, b) = call(&app, "GET", &format!("/v1/restore/status/{id}"), None).await;
    assert_eq!(s, StatusCode::OK);
    let st = json(&b);
    assert_eq!(st["status"], "success", "{st}");
    assert_eq!(st["read-records"], 200);
    assert_eq!(st["inserted-records"], 200);
    assert_eq!(st["current-job"]["done-records"], 200);
    assert_eq!(st["current-job"]["percentage-done"], 100);
    assert!(st["current-job"]["finish-time"].is_string());
    assert_eq!(node.record_count("test"), 200);

    let (_, b) = call(&app, "GET", "/v1/restore/jobs", None).await;
    assert!(json(&b)[id.to_string()].is_object());
    let (_, b) = call(&app, "GET", "/v1/restore/jobs?status=!success", None).await;
    assert!(json(&b)[id.to_string()].is_null());
    let (_, b) = call(&app, "GET", "/v1/restore/jobs?status=done,running", None).await;
    assert!(json(&b)[id.to_string()].is_object());
    let (s, _) = call(&app, "GET", "/v1/restore/jobs?status=weird", None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    for (m, uri, want) in [
        (
            "GET",
            "/v1/restore/status/12345".to_string(),
            StatusCode::NOT_FOUND,
        ),
        (
            "GET",
            "/v1/restore/status/x".to_string(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "POST",
            "/v1/restore/cancel/12345".to_string(),
            StatusCode::NOT_FOUND,
        ),
        (
            "POST",
            format!("/v1/restore/cancel/{id}"),
            StatusCode::ACCEPTED,
        ),
    ] {
        assert_eq!(call(&app, m, &uri, None).await.0, want, "{m} {uri}");
    }

    // The saved node configuration comes back as a zip.
    let (s, b) = call(
        &app,
        "GET",
        &format!("/v1/retrieve/configuration/r/{}", T0 + 1),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(&b[..4], b"PK\x03\x04");
    assert!(b.windows(15).any(|w| w == b"aerospike_0.con"));
    let (s, _) = call(&app, "GET", "/v1/retrieve/configuration/r/1", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = call(&app, "GET", "/v1/retrieve/configuration/nope/1", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let (_, b) = call(&app, "GET", "/metrics", None).await;
    let text = String::from_utf8_lossy(&b);
    assert!(
        text.contains(r#"aerospike_backup_service_restore_events_total{outcome="success"} 1"#),
        "{text}"
    );
    assert!(text.contains("aerospike_backup_service_restore_records_total 200"));
}

#[tokio::test]
async fn a_restore_into_a_namespace_a_running_backup_reads_starts_as_in_abs() {
    let node = AerospikeNode::start().unwrap();
    seed(&node, 2000);
    // One record per second: the backup runs long enough to be seen.
    let h = harness(&node, "parallel: 1, records-per-second: 1");
    let path = {
        let h0 = harness(&node, "parallel: 1");
        // A complete backup in the same storage layout to restore from.
        let key = h0.backup_key(BackupKind::Full).await;
        let src = h0.dir.path().join(&key);
        let dst = h.dir.path().join(&key);
        std::fs::create_dir_all(&dst).unwrap();
        for e in std::fs::read_dir(&src).unwrap().flatten() {
            std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
        }
        key
    };
    h.clock.set_ms(T0 + 10_000);
    let t = h
        .jobs
        .start("r", BackupKind::Full, abs::scheduler::rules::admission)
        .await
        .unwrap();
    assert_eq!(t, Trigger::Started);
    let id = h
        .restores
        .start_request(&h.request(&path, serde_json::json!({})), "full")
        .await
        .unwrap();
    let done = h.restores.wait(id).await.unwrap();
    assert_eq!(done.status, RestoreStatus::Success, "{:?}", done.error);
    h.jobs.cancel("r");
    h.jobs.wait("r", BackupKind::Full).await;
}

#[tokio::test]
async fn the_lz4_example_plugin_pipeline_round_trips() {
    let node = AerospikeNode::start().unwrap();
    seed(&node, 300);
    let client = connect(&node).await;
    let want = scan_all(&client, "test").await;
    let path = repo().join("host/assets/plugins/examples/codec-lz4.wasm");
    let sha = abs::plugins::registry::sha256_hex(&std::fs::read(&path).unwrap());
    let top = format!(
        "plugins:\n  codec-lz4: {{path: \"{}\", sha256: \"{sha}\"}}\n",
        path.display()
    );
    let h = harness_with(
        &node,
        "parallel: 2, pipeline: [{plugin: codec-lz4, options: {block-size: 65536}}]",
        &top,
    );
    let key = h.backup_key(BackupKind::Full).await;
    wipe(&node);
    let v = h.restore_ok(&key, serde_json::json!({})).await;
    assert_eq!(v.counters.inserted_records, 300);
    assert_same(&scan_all(&client, "test").await, &want, true, "lz4");
}

#[tokio::test]
async fn retryable_errors_are_retried_and_permanent_ones_fail_with_counters() {
    let node = AerospikeNode::start().unwrap();
    seed(&node, 100);
    let client = connect(&node).await;
    let want = scan_all(&client, "test").await;
    let h = harness(&node, "parallel: 1");
    let key = h.backup_key(BackupKind::Full).await;
    let fast_retry = serde_json::json!({"max-retries": 2, "base-timeout": 5, "multiplier": 1});

    // Key busy (14) on every write: retried, then the job fails; every record read is
    // accounted for as failed.
    wipe(&node);
    node.all_faults(|f| f.fail_writes(Some(14)));
    let v = h
        .restore(&key, serde_json::json!({"retry-policy": fast_retry}))
        .await;
    assert_eq!(v.status, RestoreStatus::Failure);
    assert!(v.counters.failed_records > 0, "{:?}", v.counters);
    assert_eq!(v.counters.inserted_records, 0);
    assert_invariant(&v);

    // A parameter error (4) is permanent: no retry can help.
    node.all_faults(|f| f.fail_writes(Some(4)));
    let v = h
        .restore(&key, serde_json::json!({"retry-policy": fast_retry}))
        .await;
    assert_eq!(v.status, RestoreStatus::Failure);
    assert!(
        v.error.as_deref().unwrap_or_default().contains("written"),
        "{:?}",
        v.error
    );
    assert_invariant(&v);

    // Single-record writes (batch writes disabled) restore everything too.
    node.all_faults(|f| f.fail_writes(None));
    let v = h
        .restore_ok(
            &key,
            serde_json::json!({"disable-batch-writes": true, "batch-size": 7}),
        )
        .await;
    assert_eq!(v.counters.inserted_records, 100);
    assert_same(
        &scan_all(&client, "test").await,
        &want,
        true,
        "single writes",
    );
}

#[tokio::test]
async fn a_running_restore_can_be_cancelled_and_tps_paces_it() {
    let node = AerospikeNode::start().unwrap();
    seed(&node, 300);
    let h = harness(&node, "parallel: 1");
    let key = h.backup_key(BackupKind::Full).await;
    wipe(&node);
    let id = h
        .restores
        .start_request(
            &h.request(&key, serde_json::json!({"tps": 100, "batch-size": 10})),
            "full",
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let running = h.restores.status(id).unwrap();
    assert_eq!(running.status, RestoreStatus::Running);
    assert!(
        running.counters.inserted_records < 300,
        "100 records/s: not done after 0.5 s"
    );
    h.restores.cancel(id).unwrap();
    let v = h.restores.wait(id).await.unwrap();
    assert_eq!(v.status, RestoreStatus::Canceled);
    assert!(
        (node.record_count("test") as u64) < 300,
        "records written stay; not all"
    );
}

#[tokio::test]
async fn no_records_no_indexes_and_no_udfs_leave_out_exactly_their_part() {
    let node = AerospikeNode::start().unwrap();
    seed(&node, 120);
    let client = connect(&node).await;
    add_index_and_udf(&client).await;
    let h = harness(&node, "parallel: 2");
    let key = h.backup_key(BackupKind::Full).await;
    let store = node.store();
    let has_index = || {
        store
            .sindexes
            .lock()
            .unwrap()
            .iter()
            .any(|i| i.name == "idx")
    };
    let has_udf = || store.udfs.lock().unwrap().contains_key("one.lua");

    wipe(&node);
    let v = h
        .restore_ok(&key, serde_json::json!({"no-records": true}))
        .await;
    assert_eq!(node.record_count("test"), 0, "no-records writes none");
    assert_eq!(v.counters.inserted_records, 0);
    assert!(has_index() && has_udf(), "indexes and UDFs still restored");

    wipe(&node);
    let v = h
        .restore_ok(&key, serde_json::json!({"no-indexes": true}))
        .await;
    assert_eq!(node.record_count("test"), 120);
    assert_eq!((v.counters.index_count, v.counters.udf_count), (0, 1));
    assert!(!has_index() && has_udf(), "only the index is left out");

    wipe(&node);
    let v = h
        .restore_ok(&key, serde_json::json!({"no-udfs": true}))
        .await;
    assert_eq!(node.record_count("test"), 120);
    assert_eq!((v.counters.index_count, v.counters.udf_count), (1, 0));
    assert!(has_index() && !has_udf(), "only the UDF is left out");
}

/// ABS's `RestoreJobStatus` and `RunningJob`, field for field, decoded as a strict upstream
/// client decodes them (an unknown field is an error).
#[derive(serde::Deserialize, Debug)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
#[allow(dead_code)]
struct AbsRestoreJobStatus {
    status: String,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    current_job: Option<AbsRunningJob>,
    #[serde(default)]
    read_records: u64,
    #[serde(default)]
    total_bytes: u64,
    #[serde(default)]
    expired_records: u64,
    #[serde(default)]
    skipped_records: u64,
    #[serde(default)]
    ignored_records: u64,
    #[serde(default)]
    inserted_records: u64,
    #[serde(default)]
    existed_records: u64,
    #[serde(default)]
    fresher_records: u64,
    #[serde(default)]
    index_count: u64,
    #[serde(default)]
    udf_count: u64,
    #[serde(default)]
    errors_in_doubt: u64,
}

#[derive(serde::Deserialize, Debug)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
#[allow(dead_code)]
struct AbsRunningJob {
    total_records: u64,
    done_records: u64,
    start_time: String,
    #[serde(default)]
    finish_time: Option<String>,
    percentage_done: u64,
    #[serde(default)]
    estimated_end_time: Option<String>,
    #[serde(default)]
    metrics: Option<serde_json::Value>,
}

/// The Kubernetes operator's calls in its order (operator pinned to ABS 3.6.1, new on-demand
/// API from 3.5.0), each answer checked as its client checks it: anything but the status it
/// expects is an error it retries; bodies decoded as it decodes them.
#[tokio::test]
async fn the_kubernetes_operators_calls_succeed_as_against_abs() {
    let node = AerospikeNode::start().unwrap();
    seed(&node, 120);
    let h = harness(&node, "parallel: 2");
    let mut state = AppState::new(h.store.clone(), Arc::new(Metrics::new()));
    state.set_jobs(h.jobs.clone());
    let restores = state.restores.clone();
    let app = api::router(state);
    async fn post(app: &axum::Router, uri: &str) -> (StatusCode, Vec<u8>) {
        call(app, "POST", uri, None).await
    }

    // Health, then the config the operator compares with its ConfigMap.
    let (s, _) = call(&app, "GET", "/health", None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, b) = call(&app, "GET", "/v1/config", None).await;
    assert_eq!(s, StatusCode::OK);
    let cfg: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&b).unwrap();
    assert!(!cfg.contains_key("logger"));

    // An on-demand incremental before any full: ABS skips it and answers 202.
    let (s, b) = post(&app, "/v1/backups/incremental/r").await;
    assert_eq!(s, StatusCode::ACCEPTED, "{}", String::from_utf8_lossy(&b));
    // On-demand full, then the operator lists the routine's backups.
    h.clock.set_ms(T0 + 10_000);
    let (s, _) = post(&app, "/v1/backups/full/r").await;
    assert_eq!(s, StatusCode::ACCEPTED);
    assert!(matches!(
        h.jobs.wait("r", BackupKind::Full).await,
        Some(JobOutcome::Success(_))
    ));
    let (s, b) = call(&app, "GET", "/v1/backups/full/r", None).await;
    assert_eq!(s, StatusCode::OK);
    let fulls: Vec<serde_json::Value> = serde_json::from_slice(&b).unwrap();
    assert_eq!(fulls.len(), 1);
    let (s, b) = call(&app, "GET", "/v1/backups/full", None).await;
    assert_eq!(s, StatusCode::OK);
    let _: BTreeMap<String, Vec<serde_json::Value>> = serde_json::from_slice(&b).unwrap();
    // The legacy on-demand path (ABS < 3.5) too.
    h.clock.set_ms(T0 + 20_000);
    let (s, _) = post(&app, "/v1/backups/schedule/r").await;
    assert_eq!(s, StatusCode::ACCEPTED);
    h.jobs.wait("r", BackupKind::Full).await;
    let (s, b) = call(&app, "GET", "/v1/backups/incremental/r", None).await;
    assert_eq!(s, StatusCode::OK);
    let _: Vec<serde_json::Value> = serde_json::from_slice(&b).unwrap();

    // Restores: full, then by timestamp; status polled and decoded strictly; one canceled.
    let key = fulls[0]["key"].as_str().unwrap().to_string();
    wipe(&node);
    let restore = |kind: &str, body: serde_json::Value| {
        let uri = format!("/v1/restore/{kind}");
        let app = app.clone();
        async move {
            let (s, b) = call(&app, "POST", &uri, Some(body)).await;
            assert_eq!(s, StatusCode::ACCEPTED, "{}", String::from_utf8_lossy(&b));
            serde_json::from_slice::<i64>(&b).expect("a bare int64 job id")
        }
    };
    let poll = |id: i64| {
        let app = app.clone();
        let restores = restores.clone();
        async move {
            restores.wait(id).await.unwrap();
            let (s, b) = call(&app, "GET", &format!("/v1/restore/status/{id}"), None).await;
            assert_eq!(s, StatusCode::OK);
            let st: AbsRestoreJobStatus = serde_json::from_slice(&b)
                .unwrap_or_else(|e| panic!("strict decode: {e}: {}", String::from_utf8_lossy(&b)));
            st
        }
    };
    let id = restore(
        "full",
        serde_json::json!({"backup-data-path": key, "destination-name": "c", "source-name": "s"}),
    )
    .await;
    let st = poll(id).await;
    assert_eq!((st.status.as_str(), st.inserted_records), ("success", 120));
    wipe(&node);
    let id = restore(
        "timestamp",
        serde_json::json!({"routine": "r", "time": T0 + 30_000, "destination-name": "c"}),
    )
    .await;
    let st = poll(id).await;
    assert_eq!((st.status.as_str(), st.read_records), ("success", 120));
    let id = restore(
        "full",
        serde_json::json!({"backup-data-path": key, "destination-name": "c", "source-name": "s",
            "policy": {"tps": 1}}),
    )
    .await;
    let (s, _) = post(&app, &format!("/v1/restore/cancel/{id}")).await;
    assert!(s == StatusCode::OK || s == StatusCode::ACCEPTED, "{s}");
    let st = poll(id).await;
    assert!(st.status == "canceled" || st.status == "success", "{st:?}");
}

/// Records of ~900 KiB: a default batch (128 records) is over the job's in-flight budget of
/// 32 MiB and must still go, alone; batches of 8 (~7 MiB) wait for the budget, four at a time.
#[tokio::test]
async fn large_records_restore_within_the_in_flight_byte_budget() {
    let node = AerospikeNode::start().unwrap();
    let client = connect(&node).await;
    let records = 48usize;
    for i in 0..records {
        let key = Key::new("test", "big", Value::from(i as i64)).unwrap();
        let blob: Vec<u8> = (0..900 * 1024).map(|j| (i + j) as u8).collect();
        let bins = [as_bin!("b", Value::Blob(blob))];
        client
            .put(&WritePolicy::default(), &key, &bins)
            .await
            .unwrap();
    }
    let want = scan_all(&client, "test").await;
    assert_eq!(want.len(), records);
    assert!(
        records * 900 * 1024 > abs::jobs::restore::IN_FLIGHT_BYTES,
        "one default batch is over the budget"
    );
    let h = harness(&node, "");
    let key = h.backup_key(BackupKind::Full).await;
    for policy in [serde_json::json!({}), serde_json::json!({"batch-size": 8})] {
        wipe(&node);
        let v = tokio::time::timeout(Duration::from_secs(300), h.restore_ok(&key, policy.clone()))
            .await
            .unwrap_or_else(|_| panic!("the restore with {policy} ends"));
        assert_eq!(v.counters.inserted_records, records as u64, "{policy}");
        assert_same(
            &scan_all(&client, "test").await,
            &want,
            true,
            &policy.to_string(),
        );
    }
}
