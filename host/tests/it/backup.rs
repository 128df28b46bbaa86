//! The backup engine end to end: the test node → scans → .asb → codec plugins → storage-local
//! under a tempdir, decoded back and compared record by record; the REST endpoints on top.
//!
//! Length: one test per backup behaviour, each standing alone on its own node and folder;
//! the helpers shared with other groups are in `common.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use abs::api::{self, AppState};
use abs::asb::convert::record_from_client;
use abs::asb::{AsbDecoder, AsbItem, AsbRecord, BinValue};
use abs::config::{Config, ConfigStore};
use abs::jobs::backup::{Clock, EngineContext, ManualClock, SystemClock, build_pipeline};
use abs::jobs::registry::{JobOutcome, JobRegistry, Trigger};
use abs::metrics::Metrics;
use abs::plugins::Registry;
use abs::scheduler::rules::admission;
use abs::storage::layout::{BackupKind, BackupMetadata};
use aerospike::query::{PartitionFilter, Statement};
use aerospike::{
    AdminPolicy, Bins, Client, ClientPolicy, CollectionIndexType, Expiration, IndexType, Key,
    QueryPolicy, Task, UdfLang, Value, WritePolicy, as_bin,
};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use futures::StreamExt;
use http_body_util::BodyExt;
use testkit::fixtures::{self, FixtureSpec};
use testkit::{AerospikeNode, NodeConfig};
use tower::ServiceExt;

use crate::common::routine_config;
pub(crate) use crate::common::{key_pem, plugins};

/// A routine `r` on the node, local storage in `dir`, with policy fields `policy` (YAML
/// flow mapping body) and routine fields `routine`.
fn config(node: &AerospikeNode, dir: &Path, policy: &str, routine: &str) -> Config {
    config_with(node, dir, policy, routine, "")
}

/// [`config`] with more top-level sections (`top`, YAML at column 0).
fn config_with(node: &AerospikeNode, dir: &Path, policy: &str, routine: &str, top: &str) -> Config {
    routine_config(node, dir, policy, routine, top)
}

struct Harness {
    jobs: JobRegistry,
    metrics: Arc<Metrics>,
    store: Arc<ConfigStore>,
    clock: Arc<ManualClock>,
    dir: tempfile::TempDir,
}

fn harness(node: &AerospikeNode, policy: &str, routine: &str) -> Harness {
    harness_with(node, policy, routine, "")
}

/// [`harness`] with more top-level config sections.
fn harness_with(node: &AerospikeNode, policy: &str, routine: &str, top: &str) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(ConfigStore::in_memory(config_with(
        node,
        dir.path(),
        policy,
        routine,
        top,
    )));
    let clock = Arc::new(ManualClock::at_ms(1_800_000_000_000));
    let ctx = Arc::new(EngineContext::new(plugins(), clock.clone()));
    let metrics = Arc::new(Metrics::new());
    Harness {
        jobs: JobRegistry::with_context(store.clone(), Some(metrics.clone()), ctx),
        metrics,
        store,
        clock,
        dir,
    }
}

impl Harness {
    async fn run(&self, kind: BackupKind) -> JobOutcome {
        let t = self
            .jobs
            .start("r", kind, admission)
            .await
            .expect("trigger");
        if let Trigger::Skipped(why) = t {
            return JobOutcome::Skipped(why);
        }
        self.jobs.wait("r", kind).await.expect("an outcome")
    }

    async fn run_ok(&self, kind: BackupKind) -> abs::jobs::backup::JobReport {
        match self.run(kind).await {
            JobOutcome::Success(r) => r,
            other => panic!("backup did not succeed: {other:?}"),
        }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    /// The `test` namespace folder of the routine's full backup at `ts_ms`.
    fn data_folder(&self, ts_ms: i64) -> PathBuf {
        self.root().join(format!("r/backup/{ts_ms}/data/test"))
    }
}

/// The `.asb` files of a folder, in name order.
fn asb_files(folder: &Path) -> Vec<PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(folder)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "asb"))
        .collect();
    files.sort();
    files
}

/// Every file under `dir` (relative paths), skipping the storage plugin's temp dir.
fn files(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, d: &Path, out: &mut Vec<String>) {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        for e in rd.flatten() {
            let p = e.path();
            if p.file_name().is_some_and(|n| n == ".abs-tmp") {
                continue;
            }
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.push(p.strip_prefix(base).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Decodes every `.asb` file of a namespace folder through the policy's pipeline.
pub(super) fn decode_folder(store: &ConfigStore, folder: &Path) -> (Vec<AsbRecord>, Vec<AsbItem>) {
    decode_folder_with(&plugins(), store, folder)
}

/// [`decode_folder`] with the plugins of `registry`.
fn decode_folder_with(
    registry: &Registry,
    store: &ConfigStore,
    folder: &Path,
) -> (Vec<AsbRecord>, Vec<AsbItem>) {
    let cfg = store.current();
    let (pipeline, _, _) = build_pipeline(registry, &cfg.backup_policies["p"]).unwrap();
    let mut records = Vec::new();
    let mut globals = Vec::new();
    for path in asb_files(folder) {
        let stored = std::fs::read(&path).unwrap();
        let mut dec = pipeline.decoder().unwrap();
        let mut plain = dec.push(&stored).unwrap();
        plain.extend(dec.finish().unwrap());
        let mut d = AsbDecoder::new(&plain[..]);
        while let Some(item) = d
            .next_item()
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        {
            match item {
                AsbItem::Record(r) => records.push(r),
                other => globals.push(other),
            }
        }
    }
    (records, globals)
}

fn metadata(folder: &Path) -> BackupMetadata {
    serde_yaml::from_slice(&std::fs::read(folder.join("metadata.yaml")).unwrap()).unwrap()
}

pub(crate) async fn connect(node: &AerospikeNode) -> Client {
    Client::new(&ClientPolicy::default(), &node.hosts())
        .await
        .unwrap()
}

/// The namespace as the node stores it, by digest: what the client scans, converted to the
/// backup model, with each list and map bin replaced by the exact msgpack particle the node
/// holds (the client decodes CDTs into values and re-encodes them, which loses order flags
/// and the integer widths the writer chose; a backup keeps the stored bytes).
pub(crate) async fn scan_all(
    node: &AerospikeNode,
    client: &Client,
) -> BTreeMap<[u8; 20], AsbRecord> {
    let rs = client
        .query(
            &QueryPolicy::default(),
            PartitionFilter::all(),
            Statement::new("test", "", Bins::All),
        )
        .await
        .unwrap();
    let mut out = BTreeMap::new();
    let mut s = rs.into_stream();
    while let Some(r) = s.next().await {
        let mut rec = record_from_client(&r.unwrap()).unwrap();
        for bin in &mut rec.bins {
            if let BinValue::List(b) | BinValue::Map(b) = &mut bin.value {
                *b = stored_particle(node, &rec.digest, &bin.name);
            }
        }
        out.insert(rec.digest, rec);
    }
    out
}

/// A bin's particle bytes as the test node stores them.
fn stored_particle(node: &AerospikeNode, digest: &[u8; 20], bin: &str) -> Vec<u8> {
    let ns = node.store().ns(b"test").unwrap();
    let part = testkit::node::store::read(ns.part(digest));
    part.get(digest)
        .unwrap()
        .bin(bin.as_bytes())
        .unwrap()
        .data
        .to_vec()
}

pub(crate) fn by_digest(records: Vec<AsbRecord>) -> BTreeMap<[u8; 20], AsbRecord> {
    let n = records.len();
    let map: BTreeMap<_, _> = records.into_iter().map(|r| (r.digest, r)).collect();
    assert_eq!(map.len(), n, "a record was backed up twice");
    map
}

/// Compares records ignoring bin order (a property of the scan, not of the data).
pub(crate) fn assert_same_records(
    got: &BTreeMap<[u8; 20], AsbRecord>,
    want: &BTreeMap<[u8; 20], AsbRecord>,
) {
    assert_eq!(got.len(), want.len(), "record count");
    for (d, w) in want {
        let g = got.get(d).unwrap_or_else(|| panic!("missing record {d:?}"));
        let mut gb = g.bins.clone();
        let mut wb = w.bins.clone();
        gb.sort_by(|a, b| a.name.cmp(&b.name));
        wb.sort_by(|a, b| a.name.cmp(&b.name));
        assert_eq!(
            (&g.key, &g.set, g.generation, g.void_time, &gb),
            (&w.key, &w.set, w.generation, w.void_time, &wb),
            "record {d:?}"
        );
    }
}

/// A numeric index on bin `int` of namespace `test`: with it, a full backup writes its
/// `metadata_test_1.asb` (sindexes, UDFs) before the scans start.
async fn create_int_index(node: &AerospikeNode) {
    connect(node)
        .await
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
}

pub(crate) fn seed(node: &AerospikeNode, records: usize) {
    fixtures::fill(
        node,
        &FixtureSpec {
            records,
            ..FixtureSpec::default()
        },
    );
}

#[tokio::test]
async fn backup_full_of_every_type_decodes_back_record_by_record() {
    let node = AerospikeNode::start().unwrap();
    seed(&node, 600);
    let client = connect(&node).await;
    // Beyond the fixture: a set-less record, a string key, a TTL, a sindex and a UDF.
    let wp = WritePolicy {
        send_key: true,
        expiration: Expiration::Seconds(3600),
        ..WritePolicy::default()
    };
    client
        .put(
            &wp,
            &Key::new("test", "", Value::from("no-set")).unwrap(),
            &[as_bin!("a", 1), as_bin!("s", "x y\nz")],
        )
        .await
        .unwrap();
    client
        .create_index_on_bin(
            &AdminPolicy::default(),
            "test",
            "set_a",
            "int",
            "idx_int",
            IndexType::Numeric,
            CollectionIndexType::Default,
            None,
        )
        .await
        .unwrap();
    let lua = b"function f(rec)\n  return 1\nend\n";
    client
        .register_udf(&AdminPolicy::default(), lua, "f.lua", UdfLang::Lua)
        .await
        .unwrap()
        .wait_till_complete(None)
        .await
        .unwrap();
    let want = scan_all(&node, &client).await;
    assert_eq!(want.len(), 601);

    let h = harness(&node, "parallel: 3", "");
    let report = h.run_ok(BackupKind::Full).await;
    assert_eq!(report.records(), 601);
    let folder = h.data_folder(report.timestamp_ms);
    assert_eq!(
        report.timestamp_ms % 1000,
        0,
        "folder timestamps are whole seconds"
    );
    let names = files(h.root());
    assert!(
        names.iter().any(|n| n.ends_with("/metadata_test_1.asb")),
        "{names:?}"
    );
    assert!(
        names
            .iter()
            .filter(|n| n.ends_with(".asb") && !n.contains("metadata_"))
            .all(|n| {
                let f = n.rsplit('/').next().unwrap();
                f.split('_').nth(1) == Some("test") && f.ends_with(".asb")
            }),
        "{names:?}"
    );
    let (records, globals) = decode_folder(&h.store, &folder);
    assert_same_records(&by_digest(records), &want);
    assert!(globals.contains(&AsbItem::FirstFile), "{globals:?}");
    assert!(
        globals
            .iter()
            .any(|g| matches!(g, AsbItem::Udf(u) if u.name == "f.lua" && u.content == lua))
    );
    assert!(globals.iter().any(|g| matches!(g, AsbItem::SecondaryIndex(s) if s.name == "idx_int" && s.set.as_deref() == Some("set_a"))));
    let m = metadata(&folder);
    assert_eq!(
        (
            m.namespace.as_str(),
            m.record_count,
            m.secondary_index_count,
            m.udf_count
        ),
        ("test", 601, 1, 1)
    );
    assert_eq!(m.created.timestamp_millis(), report.timestamp_ms);
    assert_eq!(m.from, abs::storage::layout::zero_time());
    let stored: u64 = names
        .iter()
        .filter(|n| n.ends_with(".asb"))
        .map(|n| std::fs::metadata(h.root().join(n)).unwrap().len())
        .sum();
    assert_eq!(m.byte_count, stored);
    assert_eq!(
        m.file_count as usize,
        names.iter().filter(|n| n.ends_with(".asb")).count()
    );
    let ttl = want
        .values()
        .find(|r| r.set.is_none())
        .expect("set-less record");
    assert!(ttl.void_time > 0, "the TTL record has a void time");
}

#[tokio::test]
async fn backup_set_bin_and_partition_filters_select_exactly() {
    let node = AerospikeNode::start().unwrap();
    seed(&node, 900);
    let client = connect(&node).await;
    let all = scan_all(&node, &client).await;
    let h = harness(
        &node,
        "parallel: 2",
        "set-list: [set_a, set_c]\n    bin-list: [int, str]\n    partition-list: \"0-2048\"",
    );
    let report = h.run_ok(BackupKind::Full).await;
    let folder = h.data_folder(report.timestamp_ms);
    let (records, _) = decode_folder(&h.store, &folder);
    let got = by_digest(records);
    let expected: BTreeSet<[u8; 20]> = all
        .values()
        .filter(|r| matches!(r.set.as_deref(), Some("set_a" | "set_c")))
        .filter(|r| abs::aerospike::scan::partition_of(&r.digest) < 2048)
        .map(|r| r.digest)
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(got.keys().copied().collect::<BTreeSet<_>>(), expected);
    for r in got.values() {
        let names: BTreeSet<&str> = r.bins.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, BTreeSet::from(["int", "str"]));
    }

    // One set is scanned natively.
    let h = harness(&node, "parallel: 4", "set-list: [set_b]");
    let report = h.run_ok(BackupKind::Full).await;
    let (records, _) = decode_folder(&h.store, &h.data_folder(report.timestamp_ms));
    assert_eq!(records.len(), 300);
    assert!(records.iter().all(|r| r.set.as_deref() == Some("set_b")));

    // The routine's own filter expression (base64, as ABS 3.7 takes it).
    use aerospike::expressions as exp;
    let b64 = exp::eq(exp::bool_bin("bool"), exp::bool_val(true))
        .base64()
        .unwrap();
    let h = harness(&node, "parallel: 2", &format!("filter-exp: \"{b64}\""));
    let report = h.run_ok(BackupKind::Full).await;
    let (records, _) = decode_folder(&h.store, &h.data_folder(report.timestamp_ms));
    let expected: BTreeSet<[u8; 20]> = all
        .values()
        .filter(|r| {
            r.bins
                .iter()
                .any(|b| b.name == "bool" && b.value == abs::asb::BinValue::Bool(true))
        })
        .map(|r| r.digest)
        .collect();
    assert!(!expected.is_empty() && expected.len() < all.len());
    assert_eq!(
        records.iter().map(|r| r.digest).collect::<BTreeSet<_>>(),
        expected
    );
}

#[tokio::test]
async fn incremental_picks_up_exactly_the_records_written_in_its_window() {
    let node = AerospikeNode::start().unwrap();
    let t0: i64 = 1_800_000_000_000;
    node.clock().pin_ms(t0 as u64);
    seed(&node, 200);
    let client = connect(&node).await;
    let h = harness(&node, "parallel: 2", "incr-interval-cron: \"@hourly\"");

    // No full yet: the incremental is skipped.
    assert!(matches!(
        h.run(BackupKind::Incremental).await,
        JobOutcome::Skipped(_)
    ));

    let t1 = t0 + 10_000;
    h.clock.set_ms(t1);
    let full = h.run_ok(BackupKind::Full).await;
    assert_eq!(full.timestamp_ms, t1);
    assert_eq!(full.records(), 200);

    let put = |k: i64| {
        let client = &client;
        async move {
            client
                .put(
                    &WritePolicy::default(),
                    &Key::new("test", "inc", Value::from(k)).unwrap(),
                    &[as_bin!("v", k)],
                )
                .await
                .unwrap();
            Key::new("test", "inc", Value::from(k)).unwrap().digest()
        }
    };
    node.clock().pin_ms((t1 - 1) as u64);
    let before = put(1).await; // just before the window
    node.clock().pin_ms(t1 as u64);
    let at_start = put(2).await; // on the lower edge: in
    node.clock().pin_ms((t1 + 700) as u64);
    let inside = put(3).await;
    let t2 = t1 + 5_000;
    node.clock().pin_ms(t2 as u64);
    let at_end = put(4).await; // on the upper edge: next window

    h.clock.set_ms(t2);
    let inc = h.run_ok(BackupKind::Incremental).await;
    assert_eq!(inc.timestamp_ms, t2);
    let folder = h.root().join(format!("r/incremental/{t2}/data/test"));
    let (records, globals) = decode_folder(&h.store, &folder);
    assert!(
        globals.iter().all(|g| matches!(g, AsbItem::Namespace(_))),
        "no sindex/UDF in incrementals"
    );
    let got: BTreeSet<_> = records.iter().map(|r| r.digest).collect();
    assert_eq!(got, BTreeSet::from([at_start, inside]));
    assert!(!got.contains(&before));
    let m = metadata(&folder);
    assert_eq!(m.from.timestamp_millis(), t1);
    assert_eq!(m.created.timestamp_millis(), t2);

    // The next incremental starts where this one ended: no gap, no duplicate.
    let t3 = t2 + 5_000;
    h.clock.set_ms(t3);
    let inc2 = h.run_ok(BackupKind::Incremental).await;
    let (records, _) = decode_folder(
        &h.store,
        &h.root().join(format!("r/incremental/{t3}/data/test")),
    );
    assert_eq!(
        records.iter().map(|r| r.digest).collect::<Vec<_>>(),
        vec![at_end]
    );
    assert_eq!(inc2.records(), 1);

    // Nothing changed since: the empty incremental leaves nothing behind.
    h.clock.set_ms(t3 + 5_000);
    let last_success = || {
        h.metrics
            .last_successful_backup
            .with_label_values(&["r", "incremental"])
            .get()
    };
    assert_eq!(last_success(), t3 / 1000);
    let empty = h.run_ok(BackupKind::Incremental).await;
    assert_eq!(empty.records(), 0);
    // As ABS: an empty incremental does not move the last-success gauge.
    assert_eq!(last_success(), t3 / 1000);
    assert!(
        !h.root()
            .join(format!("r/incremental/{}", t3 + 5_000))
            .exists()
    );
    let listed = abs::storage::layout::list_backups(
        &abs::jobs::backup::open_storage(&plugins(), &h.store.current().storage["s"]).unwrap(),
        "r",
        BackupKind::Incremental,
    )
    .await
    .unwrap();
    assert_eq!(
        listed.iter().map(|b| b.timestamp_ms).collect::<Vec<_>>(),
        vec![t2, t3]
    );
}

#[tokio::test]
async fn file_limit_rotates_files_and_every_file_stands_alone() {
    let node = AerospikeNode::start().unwrap();
    seed(&node, 4000);
    let h = harness(&node, "parallel: 1, file-limit: 1", "");
    let report = h.run_ok(BackupKind::Full).await;
    let folder = h.data_folder(report.timestamp_ms);
    let data = asb_files(&folder);
    assert!(data.len() >= 2, "expected rotation, got {data:?}");
    let limit = 1024 * 1024;
    for p in &data {
        let len = std::fs::metadata(p).unwrap().len();
        // A file passes the limit by at most one record (a few KiB here).
        assert!(len < limit + 16 * 1024, "{}: {len}", p.display());
        let text = std::fs::read(p).unwrap();
        assert!(
            text.starts_with(b"Version 3.1\n# namespace test\n"),
            "{}",
            p.display()
        );
    }
    let names: BTreeSet<String> = data
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for k in 1..=data.len() {
        assert!(names.contains(&format!("0_test_{k}.asb")), "{names:?}");
    }
    let (records, _) = decode_folder(&h.store, &folder);
    assert_eq!(by_digest(records).len(), 4000);
    assert_eq!(metadata(&folder).file_count as usize, data.len());
}

#[tokio::test]
async fn every_codec_pipeline_backs_up_and_decodes_back() {
    let node = AerospikeNode::start().unwrap();
    seed(&node, 500);
    let client = connect(&node).await;
    let want = scan_all(&node, &client).await;
    let key = key_pem();
    let key = key.display();
    let cases = [
        ("none", "parallel: 2".to_string(), "NONE", "NONE"),
        (
            "zstd",
            "parallel: 2, compression: {mode: ZSTD, level: 3}".to_string(),
            "ZSTD",
            "NONE",
        ),
        (
            "aes128",
            format!("parallel: 2, encryption: {{mode: AES128, key-file: \"{key}\"}}"),
            "NONE",
            "AES128",
        ),
        (
            "zstd+aes256",
            format!(
                "parallel: 2, compression: {{mode: ZSTD}}, encryption: {{mode: AES256, key-file: \"{key}\"}}"
            ),
            "ZSTD",
            "AES256",
        ),
        (
            "aes-gcm",
            format!(
                "parallel: 2, pipeline: [{{plugin: compression-zstd}}, {{plugin: encryption-aes, options: {{mode: aes-256-gcm}}, key-file: \"{key}\"}}]"
            ),
            "NONE",
            "NONE",
        ),
    ];
    for (name, policy, compression, encryption) in cases {
        let h = harness(&node, &policy, "");
        let report = h.run_ok(BackupKind::Full).await;
        let folder = h.data_folder(report.timestamp_ms);
        let m = metadata(&folder);
        assert_eq!(
            (m.compression.as_str(), m.encryption.as_str()),
            (compression, encryption),
            "{name}"
        );
        let first = std::fs::read_dir(&folder)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "asb"))
            .unwrap();
        let head = std::fs::read(&first).unwrap();
        match name {
            "none" => assert!(head.starts_with(b"Version 3.1"), "{name}"),
            "zstd" => assert!(
                head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]),
                "{name}: zstd frame"
            ),
            _ => assert!(
                !head.starts_with(b"Version") && !head.starts_with(&[0x28, 0xb5]),
                "{name}: encrypted"
            ),
        }
        assert_eq!(
            folder.join("pipeline.yaml").exists(),
            name == "aes-gcm",
            "{name}"
        );
        let (records, _) = decode_folder(&h.store, &folder);
        assert_same_records(&by_digest(records), &want);
    }
}

/// Writes one record with a raw list or map particle straight over the wire, as a client
/// holding an ordered CDT sends it (the Rust client cannot: it encodes from `Value`s and has
/// no order flags for lists). Returns the record's digest.
async fn put_raw_particle(node: &AerospikeNode, key: &str, ptype: u8, particle: &[u8]) -> [u8; 20] {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let digest = Key::new("test", "cdt", Value::from(key)).unwrap().digest();
    let field = |out: &mut Vec<u8>, ty: u8, data: &[u8]| {
        out.extend_from_slice(&(data.len() as u32 + 1).to_be_bytes());
        out.push(ty);
        out.extend_from_slice(data);
    };
    let mut msg = vec![0u8; 8];
    // header: size 22, info1 0, info2 WRITE, info3 0, _, result, gen, ttl, timeout, 4 fields, 1 op
    msg.extend_from_slice(&[22, 0, 1, 0, 0, 0]);
    msg.extend_from_slice(&[0; 12]);
    msg.extend_from_slice(&4u16.to_be_bytes());
    msg.extend_from_slice(&1u16.to_be_bytes());
    field(&mut msg, 0, b"test");
    field(&mut msg, 1, b"cdt");
    let mut user_key = vec![3u8]; // string particle
    user_key.extend_from_slice(key.as_bytes());
    field(&mut msg, 2, &user_key);
    field(&mut msg, 4, &digest);
    let name = b"cdt";
    msg.extend_from_slice(&((4 + name.len() + particle.len()) as u32).to_be_bytes());
    msg.extend_from_slice(&[2, ptype, 0, name.len() as u8]); // op WRITE
    msg.extend_from_slice(name);
    msg.extend_from_slice(particle);
    let size = (msg.len() - 8) as u64 | (2u64 << 56) | (3u64 << 48);
    msg[..8].copy_from_slice(&size.to_be_bytes());
    let mut sock = tokio::net::TcpStream::connect(node.addr()).await.unwrap();
    sock.write_all(&msg).await.unwrap();
    let mut hdr = [0u8; 8];
    sock.read_exact(&mut hdr).await.unwrap();
    let mut body = vec![0u8; (u64::from_be_bytes(hdr) & 0xFFFF_FFFF_FFFF) as usize];
    sock.read_exact(&mut body).await.unwrap();
    assert_eq!(body[5], 0, "write of {key} failed");
    digest
}

#[tokio::test]
async fn lists_and_maps_are_backed_up_as_the_exact_msgpack_the_node_stores() {
    const LIST: u8 = 20;
    const MAP: u8 = 19;
    // (key, particle type, msgpack sent, msgpack the node stores when it differs); flags:
    // list 1 = ordered, map 1 = key-ordered, 3 = key-value-ordered, 0x10 = persisted index.
    // Strings inside CDTs carry their particle type (3) first, as clients send them.
    type Case<'a> = (&'a str, u8, &'a [u8], Option<&'a [u8]>);
    let cases: &[Case] = &[
        ("unordered list", LIST, &[0x93, 0x01, 0x02, 0x03], None),
        (
            "ordered list",
            LIST,
            &[0x94, 0xc7, 0x00, 0x01, 0x01, 0x02, 0x03],
            None,
        ),
        // The server strips the persisted-index bit and keeps the order flag.
        (
            "ordered list, persisted index",
            LIST,
            &[0x93, 0xc7, 0x00, 0x11, 0x01, 0x02],
            Some(&[0x93, 0xc7, 0x00, 0x01, 0x01, 0x02]),
        ),
        // The server re-encodes integers in their shortest form.
        (
            "wide ints",
            LIST,
            &[0x92, 0xd3, 0, 0, 0, 0, 0, 0, 0, 1, 0xcc, 0x02],
            Some(&[0x92, 0x01, 0x02]),
        ),
        // ... and key-sorts unordered maps.
        (
            "unordered map",
            MAP,
            &[0x82, 0xa2, 3, b'b', 0x02, 0xa2, 3, b'a', 0x01],
            Some(&[0x82, 0xa2, 3, b'a', 0x01, 0xa2, 3, b'b', 0x02]),
        ),
        (
            "key-ordered map",
            MAP,
            &[
                0x83, 0xc7, 0x00, 0x01, 0xc0, 0xa2, 3, b'a', 0x01, 0xa2, 3, b'b', 0x02,
            ],
            None,
        ),
        (
            "key-value-ordered map",
            MAP,
            &[
                0x83, 0xc7, 0x00, 0x03, 0xc0, 0xa2, 3, b'a', 0x02, 0xa2, 3, b'b', 0x01,
            ],
            None,
        ),
        (
            "nested ordered in unordered list",
            LIST,
            &[
                0x92, 0x94, 0xc7, 0x00, 0x01, 0x01, 0x02, 0x03, 0x82, 0xc7, 0x00, 0x03, 0xc0, 0xa2,
                3, b'k', 0x07,
            ],
            None,
        ),
        (
            "nested ordered in unordered map",
            MAP,
            &[
                // Keys already in order, so the node's key sort keeps the bytes.
                0x82, 0xa2, 3, b'a', 0x82, 0xc7, 0x00, 0x01, 0xc0, 0x01, 0x02, 0xa2, 3, b'z', 0x93,
                0xc7, 0x00, 0x01, 0x05, 0x06,
            ],
            None,
        ),
        ("empty list", LIST, &[0x90], None),
        ("empty ordered list", LIST, &[0x91, 0xc7, 0x00, 0x01], None),
        ("empty map", MAP, &[0x80], None),
        (
            "empty key-ordered map",
            MAP,
            &[0x81, 0xc7, 0x00, 0x01, 0xc0],
            None,
        ),
    ];
    let node = AerospikeNode::start().unwrap();
    let mut digests = BTreeMap::new();
    for (key, ptype, particle, canonical) in cases {
        let d = put_raw_particle(&node, key, *ptype, particle).await;
        digests.insert(d, (*key, *ptype, canonical.unwrap_or(particle)));
    }
    for compact in [false, true] {
        let h = harness(&node, &format!("parallel: 2, compact: {compact}"), "");
        let report = h.run_ok(BackupKind::Full).await;
        let folder = h.data_folder(report.timestamp_ms);
        let (records, _) = decode_folder(&h.store, &folder);
        let records = by_digest(records);
        assert_eq!(records.len(), cases.len());
        let text: Vec<u8> = asb_files(&folder)
            .iter()
            .flat_map(|f| std::fs::read(f).unwrap())
            .collect();
        for (digest, (key, ptype, canonical)) in &digests {
            let stored = stored_particle(&node, digest, "cdt");
            let rec = &records[digest];
            assert_eq!(rec.bins.len(), 1, "{key}");
            let (label, got) = match &rec.bins[0].value {
                BinValue::List(b) => ('L', b),
                BinValue::Map(b) => ('M', b),
                other => panic!("{key}: {other:?}"),
            };
            assert_eq!(label, if *ptype == LIST { 'L' } else { 'M' }, "{key}");
            assert_eq!(got, &stored, "{key}: the backup holds the node's particle");
            // The node keeps what it was sent, or the server's canonical form of it.
            assert_eq!(&stored, canonical, "{key}");
            // And the .asb line carries those bytes (raw with compact, else base64).
            let line = if compact {
                let mut l = format!("- {label}! cdt {} ", stored.len()).into_bytes();
                l.extend_from_slice(&stored);
                l.push(b'\n');
                l
            } else {
                use base64::Engine as _;
                let b64 = base64::engine::general_purpose::STANDARD.encode(&stored);
                format!("- {label} cdt {} {b64}\n", b64.len()).into_bytes()
            };
            assert!(
                text.windows(line.len()).any(|w| w == line.as_slice()),
                "{key}: no line {:?}",
                String::from_utf8_lossy(&line)
            );
        }
    }
    // The issue's example: asbackup writes an ordered [1, 2, 3] as `- L l 12 lMcAAQECAw==`.
    let h = harness(&node, "parallel: 1", "");
    let report = h.run_ok(BackupKind::Full).await;
    let text: Vec<u8> = asb_files(&h.data_folder(report.timestamp_ms))
        .iter()
        .flat_map(|f| std::fs::read(f).unwrap())
        .collect();
    let line = b"- L cdt 12 lMcAAQECAw==\n";
    assert!(text.windows(line.len()).any(|w| w == line));
}

#[tokio::test]
async fn secured_node_and_compressed_replies_back_up_every_record() {
    let node = AerospikeNode::start_with(NodeConfig {
        user: Some(("backup".into(), "s3cret".into())),
        ..NodeConfig::default()
    })
    .unwrap();
    seed(&node, 600);
    let client = Client::new(
        &ClientPolicy {
            auth_mode: aerospike::AuthMode::Internal("backup".into(), "s3cret".into()),
            ..ClientPolicy::default()
        },
        &node.hosts(),
    )
    .await
    .unwrap();
    let want = scan_all(&node, &client).await;
    let h = harness(&node, "parallel: 2, use-scan-compression: true", "");
    let mut cfg = (*h.store.current()).clone();
    cfg.aerospike_clusters.get_mut("c").unwrap().credentials = Some(abs::config::Credentials {
        user: Some("backup".into()),
        password: Some(abs::config::Secret::new("s3cret")),
        ..Default::default()
    });
    h.store.replace(cfg).await.unwrap();
    let report = h.run_ok(BackupKind::Full).await;
    let (records, _) = decode_folder(&h.store, &h.data_folder(report.timestamp_ms));
    // The node answers scans on a connection that has not logged in with "not
    // authenticated", so every record here came over a connection of ours that did.
    assert_same_records(&by_digest(records), &want);
}

#[tokio::test]
async fn dropped_connection_mid_scan_resumes_without_loss_or_duplicates() {
    let node = AerospikeNode::start().unwrap();
    seed(&node, 1500);
    node.faults(0).drop_scan_after(400, 1);
    let h = harness(&node, "parallel: 1", "");
    let report = h.run_ok(BackupKind::Full).await;
    assert_eq!(
        node.stats(0)
            .scans_dropped
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    let folder = h.data_folder(report.timestamp_ms);
    let (records, _) = decode_folder(&h.store, &folder);
    assert_eq!(by_digest(records).len(), 1500);
    assert_eq!(metadata(&folder).record_count, 1500);
    // The resume is counted as ABS's `retry` outcome, beside the success.
    let events = |outcome: &str| {
        h.metrics
            .backup_events
            .with_label_values(&["r", "full", outcome])
            .get()
    };
    assert_eq!((events("success"), events("retry")), (1, 1));
}

#[tokio::test]
async fn scan_that_keeps_failing_fails_the_job_and_leaves_nothing() {
    let node = AerospikeNode::start().unwrap();
    seed(&node, 1500);
    // The sindex makes the job write its metadata file before the scans start.
    create_int_index(&node).await;
    // Every scan is cut after one record: resumes crawl and the retries run out.
    node.faults(0).drop_scan_after(1, 1_000_000);
    let h = harness(&node, "parallel: 1", "");
    match h.run(BackupKind::Full).await {
        JobOutcome::Failure(e) => assert!(e.contains("scan"), "{e}"),
        other => panic!("expected a failure, got {other:?}"),
    }
    assert_eq!(files(h.root()), Vec::<String>::new());
    assert!(h.jobs.state("r").last_full.is_none());
}

#[tokio::test]
async fn running_full_blocks_a_second_full_and_incrementals_and_cancel_cleans_up() {
    let node = AerospikeNode::start().unwrap();
    seed(&node, 400);
    // 400 records at 40/s: the job runs for seconds, long enough to observe it.
    let h = harness(&node, "parallel: 2, records-per-second: 40", "");
    assert_eq!(
        h.jobs
            .start("r", BackupKind::Full, admission)
            .await
            .unwrap(),
        Trigger::Started
    );
    assert!(matches!(
        h.jobs
            .start("r", BackupKind::Full, admission)
            .await
            .unwrap(),
        Trigger::Skipped(_)
    ));
    assert!(matches!(
        h.jobs
            .start("r", BackupKind::Incremental, admission)
            .await
            .unwrap(),
        Trigger::Skipped(_)
    ));
    // Wait until records flow, then check the status shape.
    let mut seen = 0;
    for _ in 0..200 {
        seen = h.jobs.state("r").full.map_or(0, |f| f.progress.records);
        if seen > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(seen > 0, "the running job reports progress");
    let st = h.jobs.state("r").full.unwrap().progress;
    assert_eq!(st.estimated_total, 400);
    assert!(h.jobs.cancel("r"));
    assert_eq!(
        h.jobs.wait("r", BackupKind::Full).await,
        Some(JobOutcome::Canceled)
    );
    assert_eq!(files(h.root()), Vec::<String>::new());
    assert!(!h.jobs.cancel("r"), "nothing runs any more");
}

async fn call(app: &axum::Router, method: &str, uri: &str) -> (StatusCode, serde_json::Value) {
    let resp = app
        .clone()
        .oneshot(
            Request::builder()
                .method(method)
                .uri(uri)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let json = if bytes.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null)
    };
    (status, json)
}

#[tokio::test]
async fn rest_endpoints_start_follow_and_list_backups() {
    let node = AerospikeNode::start().unwrap();
    // Written well before the full backup starts, so the incremental after it is empty.
    let now_ms = chrono::Utc::now().timestamp_millis() as u64;
    node.clock().pin_ms(now_ms - 60_000);
    seed(&node, 300);
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(ConfigStore::in_memory(config(
        &node,
        dir.path(),
        "parallel: 2, compression: {mode: ZSTD}",
        "incr-interval-cron: \"@hourly\"",
    )));
    let metrics = Arc::new(Metrics::new());
    let mut state = AppState::new(store.clone(), metrics.clone());
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    state.set_jobs(JobRegistry::with_context(
        store.clone(),
        Some(metrics.clone()),
        Arc::new(EngineContext::new(plugins(), clock)),
    ));
    let jobs = state.backups.clone();
    let app = api::router(state);

    // Unknown routines and bad parameters.
    for (m, uri) in [
        ("POST", "/v1/backups/full/nope"),
        ("POST", "/v1/backups/incremental/nope"),
        ("POST", "/v1/backups/schedule/nope"),
        ("GET", "/v1/backups/full/nope"),
        ("GET", "/v1/backups/incremental/nope"),
        ("GET", "/v1/backups/currentBackup/nope"),
        ("POST", "/v1/backups/cancel/nope"),
    ] {
        let (s, body) = call(&app, m, uri).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{m} {uri}");
        assert!(body["error"].as_str().unwrap().contains("nope"), "{body}");
    }
    for uri in [
        "/v1/backups/full?from=-1",
        "/v1/backups/full/r?to=abc",
        "/v1/backups/incremental?from=10&to=10",
    ] {
        let (s, body) = call(&app, "GET", uri).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{uri}: {body}");
        assert!(body["field"].is_string(), "{body}");
    }
    let (s, _) = call(&app, "POST", "/v1/backups/full/r?delay=soon").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // Nothing yet.
    let (s, body) = call(&app, "GET", "/v1/backups/full").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body, serde_json::json!({"r": []}));

    // An incremental before any full is skipped: 202 as ABS answers, and the skip shows in
    // the routine's state (and the metrics, below).
    let (s, body) = call(&app, "POST", "/v1/backups/incremental/r").await;
    assert_eq!(s, StatusCode::ACCEPTED, "{body}");
    let (_, state) = call(&app, "GET", "/v1/backups/currentBackup/r").await;
    let last = &state["last-incremental-result"];
    assert_eq!(last["outcome"], "skip", "{state}");
    assert!(
        last["message"]
            .as_str()
            .is_some_and(|e| e.contains("no full backup of the routine has succeeded yet")),
        "{state}"
    );
    assert!(matches!(
        jobs.wait("r", BackupKind::Incremental).await,
        Some(JobOutcome::Skipped(_))
    ));

    let (s, _) = call(&app, "POST", "/v1/backups/full/r").await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let (s, body) = call(&app, "GET", "/v1/backups/currentBackup/r").await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert!(matches!(
        jobs.wait("r", BackupKind::Full).await,
        Some(JobOutcome::Success(_))
    ));
    let (s, body) = call(&app, "GET", "/v1/backups/currentBackup/r").await;
    assert_eq!(s, StatusCode::OK);
    assert!(body.get("full").is_none(), "{body}");
    assert!(body["last-full"].is_string(), "{body}");

    let (s, body) = call(&app, "GET", "/v1/backups/full/r").await;
    assert_eq!(s, StatusCode::OK);
    let list = body.as_array().unwrap();
    assert_eq!(list.len(), 1, "{body}");
    let b = &list[0];
    assert_eq!(b["namespace"], "test");
    assert_eq!(b["record-count"], 300);
    assert_eq!(b["compression"], "ZSTD");
    assert_eq!(b["encryption"], "NONE");
    assert!(b.get("from").is_none(), "full backups have no from: {b}");
    assert!(
        b.get("pipeline").is_none(),
        "only pipeline: backups have a pipeline: {b}"
    );
    let ts = b["timestamp"].as_i64().unwrap();
    let key = b["key"].as_str().unwrap();
    assert_eq!(key, format!("r/backup/{ts}/data/test"));
    assert!(dir.path().join(key).join("metadata.yaml").exists());
    assert_eq!(
        b["storage"]["local-storage"]["path"],
        dir.path().display().to_string()
    );

    // from inclusive, to exclusive.
    let (_, body) = call(&app, "GET", &format!("/v1/backups/full/r?from={ts}")).await;
    assert_eq!(body.as_array().unwrap().len(), 1);
    let (_, body) = call(&app, "GET", &format!("/v1/backups/full/r?to={ts}")).await;
    assert_eq!(body.as_array().unwrap().len(), 0);
    let (_, body) = call(&app, "GET", &format!("/v1/backups/full?from={}", ts + 1)).await;
    assert_eq!(body, serde_json::json!({"r": []}));

    // The incremental now runs; nothing changed, so nothing is listed.
    let (s, _) = call(&app, "POST", "/v1/backups/incremental/r").await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let outcome = jobs.wait("r", BackupKind::Incremental).await;
    assert!(
        matches!(&outcome, Some(JobOutcome::Success(r)) if r.records() == 0),
        "{outcome:?}"
    );
    let (_, body) = call(&app, "GET", "/v1/backups/incremental").await;
    assert_eq!(body, serde_json::json!({"r": []}));

    // A restarted service learns the last full backup from storage.
    let mut fresh = AppState::new(store.clone(), Arc::new(Metrics::new()));
    fresh.set_jobs(JobRegistry::with_context(
        store.clone(),
        None,
        Arc::new(EngineContext::new(plugins(), Arc::new(SystemClock))),
    ));
    let (s, body) = call(&api::router(fresh), "GET", "/v1/backups/currentBackup/r").await;
    assert_eq!(s, StatusCode::OK);
    let created = call(&app, "GET", "/v1/backups/full/r").await.1[0]["created"].clone();
    assert_eq!(body["last-full"], created, "{body}");
    assert!(body.get("last-incremental").is_none(), "{body}");

    let (s, _) = call(&app, "POST", "/v1/backups/cancel/r").await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let (s, _) = call(&app, "POST", "/v1/backups/schedule/r?delay=10").await;
    assert_eq!(s, StatusCode::ACCEPTED);
    // The delayed run starts later; wait for it to be registered, then for its end.
    let mut outcome = None;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if jobs.state("r").full.is_some() {
            outcome = jobs.wait("r", BackupKind::Full).await;
            break;
        }
        if let Some(JobOutcome::Success(r)) = jobs.wait("r", BackupKind::Full).await
            && r.timestamp_ms != ts
        {
            outcome = Some(JobOutcome::Success(r));
            break;
        }
    }
    assert!(
        matches!(outcome, Some(JobOutcome::Success(_))),
        "{outcome:?}"
    );

    let text = metrics_text(&metrics);
    assert!(
        text.contains(r#"aerospike_backup_service_backup_events_total{outcome="success",routine="r",type="full"} 2"#),
        "{text}"
    );
    assert!(
        text.contains(r#"aerospike_backup_service_backup_events_total{outcome="skip",routine="r",type="incremental"} 1"#),
        "{text}"
    );
}

fn metrics_text(m: &Metrics) -> String {
    use prometheus::Encoder;
    let mut buf = Vec::new();
    prometheus::TextEncoder::new()
        .encode(&m.registry.gather(), &mut buf)
        .unwrap();
    String::from_utf8(buf).unwrap()
}

#[tokio::test]
async fn three_node_cluster_full_and_node_list_backups() {
    use testkit::NodeConfig;
    let node = AerospikeNode::start_with(NodeConfig {
        nodes: 3,
        racks: 2,
        replication_factor: 2,
        ..NodeConfig::default()
    })
    .unwrap();
    seed(&node, 1200);
    let client = connect(&node).await;
    let want = scan_all(&node, &client).await;
    assert_eq!(want.len(), 1200);

    // Whole cluster, reading rack-local copies, with each node's configuration.
    let h = harness(&node, "parallel: 4, with-cluster-configuration: true", "");
    {
        let mut cfg = (*h.store.current()).clone();
        cfg.aerospike_clusters.get_mut("c").unwrap().prefer_racks = Some(vec![1]);
        h.store.replace(cfg).await.unwrap();
    }
    let scans_on = |i: usize| {
        node.stats(i)
            .scans
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    let before: Vec<u64> = (0..3).map(scans_on).collect();
    let report = h.run_ok(BackupKind::Full).await;
    let folder = h.data_folder(report.timestamp_ms);
    let (records, _) = decode_folder(&h.store, &folder);
    assert_same_records(&by_digest(records), &want);
    // Copies of partition p live on nodes p % 3 and (p + 1) % 3, and nodes 0 and 2 are in
    // rack 1: every partition has a rack-1 copy, so node 1 (rack 2) is never scanned.
    assert_eq!(scans_on(1), before[1], "node 1 is not in a preferred rack");
    assert!(scans_on(0) > before[0] && scans_on(2) > before[2]);
    let conf = h
        .root()
        .join(format!("r/backup/{}/configuration", report.timestamp_ms));
    for i in 0..3 {
        let text = std::fs::read_to_string(conf.join(format!("aerospike_{i}.conf"))).unwrap();
        assert!(text.contains("namespace test {"), "{text}");
        assert!(text.contains("cluster-name"), "{text}");
    }
    assert!(!conf.join("aerospike_3.conf").exists());

    // node-list / rack-list: exactly the partitions the selected nodes master.
    let owned_by = |owners: &[usize]| -> BTreeSet<_> {
        want.keys()
            .filter(|d| {
                owners.contains(&node.owner_of(abs::aerospike::scan::partition_of(d) as usize))
            })
            .copied()
            .collect()
    };
    let second = format!("127.0.0.1:{}", node.ports()[1]);
    let cases = [
        (format!("node-list: [\"{second}\"]"), owned_by(&[1])),
        // Nodes 0 and 2 are in rack 1.
        ("rack-list: [1]".to_string(), owned_by(&[0, 2])),
    ];
    for (selection, expected) in cases {
        let h = harness(&node, "parallel: 4", &selection);
        let report = h.run_ok(BackupKind::Full).await;
        let folder = h.data_folder(report.timestamp_ms);
        let (records, _) = decode_folder(&h.store, &folder);
        let got: BTreeSet<_> = by_digest(records).into_keys().collect();
        assert!(!expected.is_empty() && expected.len() < 1200, "{selection}");
        assert_eq!(got, expected, "{selection}");
    }
    // A rack without nodes fails the job, naming the rack.
    let h = harness(&node, "parallel: 4", "rack-list: [7]");
    match h.run(BackupKind::Full).await {
        JobOutcome::Failure(e) => assert!(e.contains("rack 7"), "{e}"),
        other => panic!("expected a failure, got {other:?}"),
    }
}

/// The example lz4 codec (built by `scripts/build-plugins`) and its sha256.
fn lz4_plugin() -> (PathBuf, String) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/plugins/examples/codec-lz4.wasm");
    let sha = abs::plugins::registry::sha256_hex(&std::fs::read(&path).unwrap());
    (path, sha)
}

fn lz4_section(path: &Path, sha: &str) -> String {
    format!(
        "plugins:\n  codec-lz4: {{path: \"{}\", sha256: \"{sha}\"}}\n",
        path.display()
    )
}

#[tokio::test]
async fn user_plugin_named_in_plugins_runs_in_a_pipeline_and_is_listed() {
    let node = AerospikeNode::start().unwrap();
    seed(&node, 500);
    let want = scan_all(&node, &connect(&node).await).await;
    let (example, sha) = lz4_plugin();
    let plugin_dir = tempfile::tempdir().unwrap();
    let path = plugin_dir.path().join("lz4.wasm");
    let h = harness_with(
        &node,
        "parallel: 2, pipeline: [{plugin: codec-lz4, options: {block-size: 65536}}]",
        "",
        &lz4_section(&path, &sha),
    );

    // A plugin file that does not match its hash fails the job, naming it; the failure is
    // not cached, so the next job loads the right file.
    std::fs::write(&path, b"not the plugin").unwrap();
    match h.run(BackupKind::Full).await {
        JobOutcome::Failure(e) => assert!(e.contains("codec-lz4") && e.contains("sha256"), "{e}"),
        other => panic!("expected a failure, got {other:?}"),
    }
    assert_eq!(files(h.root()), Vec::<String>::new());
    // Listing the routine's backups needs no user plugin, so it keeps working meanwhile.
    let mut state = AppState::new(h.store.clone(), Arc::new(Metrics::new()));
    state.set_jobs(h.jobs.clone());
    let (s, body) = call(&api::router(state), "GET", "/v1/backups/full/r").await;
    assert_eq!((s, body), (StatusCode::OK, serde_json::json!([])));
    std::fs::copy(&example, &path).unwrap();
    let report = h.run_ok(BackupKind::Full).await;
    assert_eq!(report.records(), 500);
    let folder = h.data_folder(report.timestamp_ms);

    // The files went through the user plugin: its stream magic, not plain .asb.
    let data = asb_files(&folder);
    assert!(!data.is_empty());
    for p in &data {
        let head = std::fs::read(p).unwrap();
        assert!(head.starts_with(b"ABL4\x01"), "{}: not lz4", p.display());
    }
    let sidecar: serde_yaml::Value =
        serde_yaml::from_slice(&std::fs::read(folder.join("pipeline.yaml")).unwrap()).unwrap();
    assert_eq!(sidecar["pipeline"][0]["plugin"].as_str(), Some("codec-lz4"));
    assert_eq!(
        sidecar["pipeline"][0]["sha256"].as_str(),
        Some(sha.as_str())
    );

    // Read back through the same pipeline, with the registry the job used.
    let ctx = h.jobs.engine().await.unwrap();
    let cfg = h.store.current();
    let registry = ctx.plugins_for(&cfg).await.unwrap();
    assert!(registry.get("codec-lz4").is_ok());
    let (records, _) = decode_folder_with(&registry, &h.store, &folder);
    assert_same_records(&by_digest(records), &want);
    assert_eq!(metadata(&folder).record_count, 500);

    // A different build copied over the pinned file while the service runs: the next job
    // refuses it, naming the plugin and both hashes; the right file back, jobs run again.
    let other_build =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/plugins/compression-zstd.wasm");
    std::fs::copy(&other_build, &path).unwrap();
    let other_sha = abs::plugins::registry::sha256_hex(&std::fs::read(&path).unwrap());
    match h.run(BackupKind::Full).await {
        JobOutcome::Failure(e) => assert!(
            e.contains("codec-lz4") && e.contains(&sha) && e.contains(&other_sha),
            "{e}"
        ),
        other => panic!("expected a failure, got {other:?}"),
    }
    std::fs::copy(&example, &path).unwrap();
    assert_eq!(h.run_ok(BackupKind::Full).await.records(), 500);
    let registry = ctx.plugins_for(&cfg).await.unwrap();

    // One registry per `plugins:` section: reused while it is unchanged, the defaults
    // without one, rebuilt when it changes.
    assert!(Arc::ptr_eq(
        &registry,
        &ctx.plugins_for(&cfg).await.unwrap()
    ));
    let mut without = (*cfg).clone();
    without.plugins.clear();
    assert!(Arc::ptr_eq(
        &ctx.plugins_for(&without).await.unwrap(),
        &ctx.plugins
    ));
    let mut renamed = (*cfg).clone();
    let def = renamed.plugins.remove("codec-lz4").unwrap();
    renamed.plugins.insert("lz4-copy".into(), def);
    let other = ctx.plugins_for(&renamed).await.unwrap();
    assert!(!Arc::ptr_eq(&registry, &other));
    assert!(other.get("lz4-copy").is_ok() && other.get("codec-lz4").is_err());

    // The listing shows the pipeline (D10) beside the ABS fields.
    let mut state = AppState::new(h.store.clone(), Arc::new(Metrics::new()));
    state.set_jobs(h.jobs.clone());
    let (s, body) = call(&api::router(state), "GET", "/v1/backups/full/r").await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let b = &body[0];
    assert_eq!(
        (b["compression"].as_str(), b["encryption"].as_str()),
        (Some("NONE"), Some("NONE"))
    );
    let steps = b["pipeline"]
        .as_array()
        .unwrap_or_else(|| panic!("no pipeline: {b}"));
    assert_eq!(steps.len(), 1, "{b}");
    assert_eq!(steps[0]["plugin"], "codec-lz4");
    assert_eq!(steps[0]["sha256"], sha.as_str());
    assert_eq!(steps[0]["options"]["block-size"], 65536);
    assert!(
        steps[0]["version"].as_str().is_some_and(|v| !v.is_empty()),
        "{b}"
    );
}

#[tokio::test]
async fn start_up_sweep_removes_incomplete_backups_and_keeps_complete_and_running_ones() {
    let node = AerospikeNode::start().unwrap();
    seed(&node, 400);
    // The sindex makes a job write its metadata_test_1.asb before the scans start, so a
    // running job has a visible folder without metadata.yaml.
    create_int_index(&node).await;
    let h = harness(&node, "parallel: 2, records-per-second: 400", "");
    let ts = 1_800_000_000_000_i64;

    // A running job's folder looks incomplete, but is not swept.
    assert_eq!(
        h.jobs
            .start("r", BackupKind::Full, admission)
            .await
            .unwrap(),
        Trigger::Started
    );
    let running = h
        .root()
        .join(format!("r/backup/{ts}/data/test/metadata_test_1.asb"));
    for _ in 0..250 {
        if running.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(running.exists(), "the job wrote its first file");
    assert_eq!(h.jobs.sweep_incomplete().await, Vec::<String>::new());
    assert!(running.exists());
    let JobOutcome::Success(report) = h.jobs.wait("r", BackupKind::Full).await.unwrap() else {
        panic!("the job did not succeed")
    };
    assert_eq!((report.timestamp_ms, report.records()), (ts, 400));
    let complete = files(h.root());
    assert!(complete.contains(&format!("r/backup/{ts}/data/test/metadata.yaml")));

    // What crashes leave: copies of the complete backup's files without their markers.
    let src = h.root().join(format!("r/backup/{ts}/data/test"));
    let plant = |folder: &str, with_metadata: bool| {
        let dst = h.root().join(folder);
        std::fs::create_dir_all(&dst).unwrap();
        for e in std::fs::read_dir(&src).unwrap().flatten() {
            let name = e.file_name();
            if name == "metadata.yaml" && !with_metadata {
                continue;
            }
            std::fs::copy(e.path(), dst.join(name)).unwrap();
        }
    };
    let t1 = ts + 1000;
    let t2 = ts + 2000;
    let t3 = ts + 3000;
    // Crashed before any metadata (with a node configuration written).
    plant(&format!("r/backup/{t1}/data/test"), false);
    std::fs::create_dir_all(h.root().join(format!("r/backup/{t1}/configuration"))).unwrap();
    std::fs::write(
        h.root()
            .join(format!("r/backup/{t1}/configuration/aerospike_0.conf")),
        "service {}\n",
    )
    .unwrap();
    // Crashed between two namespaces' metadata: `test` is complete and listed, `other` not.
    plant(&format!("r/backup/{t2}/data/test"), true);
    plant(&format!("r/backup/{t2}/data/other"), false);
    // An incremental that crashed.
    plant(&format!("r/incremental/{t3}/data/test"), false);
    // Not a backup folder: never touched.
    std::fs::write(h.root().join("r/backup/README"), "hands off\n").unwrap();

    // A restarted service: a new job registry over the same storage.
    let fresh = JobRegistry::with_context(
        h.store.clone(),
        None,
        Arc::new(EngineContext::new(plugins(), h.clock.clone())),
    );
    let mut removed = fresh.sweep_incomplete_at_start().await.unwrap();
    removed.sort();
    assert_eq!(
        removed,
        vec![
            format!("r/backup/{t1}"),
            format!("r/backup/{t2}/data/other"),
            format!("r/incremental/{t3}"),
        ]
    );
    let left = files(h.root());
    let mut expected = complete.clone();
    expected.extend(
        complete
            .iter()
            .filter(|f| f.starts_with(&format!("r/backup/{ts}/")))
            .map(|f| f.replace(&ts.to_string(), &t2.to_string())),
    );
    expected.push("r/backup/README".into());
    expected.sort();
    assert_eq!(left, expected);
    assert!(
        !h.root().join(format!("r/backup/{t1}")).exists(),
        "empty folders are pruned"
    );
    assert!(!h.root().join(format!("r/incremental/{t3}")).exists());

    // Both complete backups are still listed; a second sweep finds nothing.
    let mut state = AppState::new(h.store.clone(), Arc::new(Metrics::new()));
    state.set_jobs(fresh.clone());
    let (_, body) = call(&api::router(state), "GET", "/v1/backups/full/r").await;
    let listed: Vec<i64> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["timestamp"].as_i64().unwrap())
        .collect();
    assert_eq!(listed, vec![ts, t2]);
    assert_eq!(fresh.sweep_incomplete().await, Vec::<String>::new());

    // Jobs wait for the start-up sweep: a job triggered at once finds the crashed folder's
    // second free again (ts is taken), instead of moving past it.
    plant(&format!("r/backup/{t1}/data/test"), false);
    let restarted = JobRegistry::with_context(
        h.store.clone(),
        None,
        Arc::new(EngineContext::new(plugins(), h.clock.clone())),
    );
    let sweep = restarted.sweep_incomplete_at_start();
    assert_eq!(
        restarted
            .start("r", BackupKind::Full, admission)
            .await
            .unwrap(),
        Trigger::Started
    );
    assert_eq!(sweep.await.unwrap(), vec![format!("r/backup/{t1}")]);
    match restarted.wait("r", BackupKind::Full).await {
        Some(JobOutcome::Success(r)) => assert_eq!(r.timestamp_ms, t1),
        other => panic!("backup did not succeed: {other:?}"),
    }
    assert!(
        h.root()
            .join(format!("r/backup/{t1}/data/test/metadata.yaml"))
            .exists()
    );
}

#[tokio::test]
async fn records_per_second_paces_the_backup() {
    let node = AerospikeNode::start().unwrap();
    seed(&node, 3000);
    let h = harness(&node, "parallel: 2, records-per-second: 1000", "");
    let started = std::time::Instant::now();
    assert_eq!(
        h.jobs
            .start("r", BackupKind::Full, admission)
            .await
            .unwrap(),
        Trigger::Started
    );
    // While it runs, no more records are done than the rate allows (plus a small burst).
    let mut samples = 0;
    while let Some(full) = h.jobs.state("r").full {
        let done = full.progress.records;
        let allowed = 1000.0 * started.elapsed().as_secs_f64() + 200.0;
        assert!(
            (done as f64) <= allowed,
            "{done} records after {:?}",
            started.elapsed()
        );
        samples += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let report = match h.jobs.wait("r", BackupKind::Full).await {
        Some(JobOutcome::Success(r)) => r,
        other => panic!("backup did not succeed: {other:?}"),
    };
    let elapsed = started.elapsed();
    // 3000 records at 1000/s: at least ~3 s (lower bound only; slow machines take longer).
    assert!(elapsed >= Duration::from_millis(2500), "took {elapsed:?}");
    assert!(samples > 0);
    assert_eq!(report.records(), 3000);
    let folder = h.data_folder(report.timestamp_ms);
    assert_eq!(metadata(&folder).record_count, 3000);
    let (records, _) = decode_folder(&h.store, &folder);
    assert_eq!(by_digest(records).len(), 3000);
}

#[tokio::test]
async fn bandwidth_paces_the_stored_bytes() {
    let node = AerospikeNode::start().unwrap();
    let client = connect(&node).await;
    // 400 records of 10 KiB: over 4 MiB stored (base64 in .asb), in 1 MiB files.
    for i in 0..400_i64 {
        let blob: Vec<u8> = (0..10 * 1024)
            .map(|j| ((i * 7919 + j * 31) % 251) as u8)
            .collect();
        client
            .put(
                &WritePolicy::default(),
                &Key::new("test", "big", Value::from(i)).unwrap(),
                &[as_bin!("b", Value::Blob(blob))],
            )
            .await
            .unwrap();
    }
    let h = harness(&node, "parallel: 1, file-limit: 1, bandwidth: 1", "");
    let started = std::time::Instant::now();
    let report = h.run_ok(BackupKind::Full).await;
    let elapsed = started.elapsed();
    let folder = h.data_folder(report.timestamp_ms);
    let m = metadata(&folder);
    assert_eq!((report.records(), m.record_count), (400, 400));
    assert!(m.byte_count > 4 * 1024 * 1024, "{} bytes", m.byte_count);
    assert!(m.file_count >= 4, "{} files", m.file_count);
    // At 1 MiB/s every part but the last waits for the ones before it: over 3 s for this
    // much (lower bound only; slow machines take longer).
    assert!(elapsed >= Duration::from_secs(2), "took {elapsed:?}");
    let (records, _) = decode_folder(&h.store, &folder);
    assert_eq!(by_digest(records).len(), 400);
}

#[tokio::test]
async fn cluster_connection_is_retried_per_retry_policy() {
    let first = AerospikeNode::start().unwrap();
    let port = first.port();
    let h = harness(
        &first,
        "retry-policy: {base-timeout: 1000, multiplier: 1, max-retries: 3}",
        "",
    );
    // Nothing listens on the seed port when the job starts; a node comes up during the wait.
    drop(first);
    let job = tokio::spawn(async move {
        let outcome = h.run(BackupKind::Full).await;
        (h, outcome)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let node = AerospikeNode::start_with(NodeConfig {
        port,
        ..NodeConfig::default()
    })
    .unwrap();
    seed(&node, 50);
    let (h, outcome) = job.await.unwrap();
    match outcome {
        JobOutcome::Success(r) => assert_eq!(r.records(), 50),
        other => panic!("expected success after a retry, got {other:?}"),
    }
    drop(h);
}

#[tokio::test]
async fn cluster_connection_gives_up_after_max_retries() {
    let node = AerospikeNode::start().unwrap();
    let h = harness(
        &node,
        "retry-policy: {base-timeout: 200, max-retries: 1}",
        "",
    );
    drop(node);
    let started = std::time::Instant::now();
    match h.run(BackupKind::Full).await {
        JobOutcome::Failure(e) => assert!(e.contains("cannot connect"), "{e}"),
        other => panic!("expected a failure, got {other:?}"),
    }
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "one retry after base-timeout"
    );
    assert_eq!(files(h.root()), Vec::<String>::new());
}
