//! Upstream ABS's integration cases (`test/integration/*_test.go` of
//! aerospike/aerospike-backup-service, 3.x), step for step against our service on the test
//! node: `backup_test`, `restore_test`, `restore_path_test`, `restore_timestamp_test`,
//! `restore_timestamp_cumulative_test` and `filter_expression_test`. Each drives the REST API
//! as upstream's `api.go` does (trigger, list, restore, status, `/metrics`) and checks what
//! upstream's assertions check. What needs a real server is in `real_server.rs`.
//!
//! Differences from upstream, all in the harness: the node and the engine share a manual
//! clock, moved a few seconds between steps (upstream waits on the wall clock), and the
//! service is the in-process router rather than an HTTP listener.

use std::sync::Arc;
use std::time::{Duration, Instant};

use abs::api::{self, AppState};
use abs::config::{Config, ConfigStore, Format};
use abs::jobs::backup::{EngineContext, ManualClock};
use abs::jobs::registry::JobRegistry;
use abs::metrics::Metrics;
use aerospike::{AdminPolicy, Bins, Client, ClientPolicy, Key, ReadPolicy, Value, WritePolicy};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use testkit::AerospikeNode;
use tower::ServiceExt;

use crate::backup::plugins;

const CLUSTER: &str = "absCluster";
const STORAGE: &str = "absStorage";
const POLICY: &str = "absPolicy";
const ROUTINE: &str = "absRoutine";
const NAMESPACE: &str = "test";
const SET: &str = "testSet";
/// Upstream's `backupTimeout` is 5 s on the wall clock; ours only bounds a hang.
const PATIENCE: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(20);
/// The engine's and the node's clock at the start (whole seconds: folder timestamps are).
const T0: i64 = 1_800_000_000_000;

/// One service under test: upstream's `env` plus the node and the shared clock.
struct Env {
    app: axum::Router,
    node: AerospikeNode,
    client: Client,
    clock: Arc<ManualClock>,
    now_ms: std::sync::atomic::AtomicI64,
    _dir: tempfile::TempDir,
}

/// Upstream's `baseConfig`: one cluster, one local storage, a policy with `parallel: 1` and
/// retention of 10 fulls (no incrementals of older fulls), and a `@yearly` routine that
/// only runs when triggered. `policy` and `routine` add keys (upstream's customize funcs).
async fn setup_env(policy: &str, routine: &str) -> Env {
    let node = AerospikeNode::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        r#"
service:
  logger: {{level: ERROR}}
aerospike-clusters:
  {CLUSTER}:
    seed-nodes: [{{host-name: 127.0.0.1, port: {port}}}]
    use-services-alternate: true
storage:
  {STORAGE}: {{local-storage: {{path: "{path}"}}}}
backup-policies:
  {POLICY}:
    parallel: 1
    retention: {{full: 10, incremental: 0}}
    {policy}
backup-routines:
  {ROUTINE}:
    backup-policy: {POLICY}
    source-cluster: {CLUSTER}
    storage: {STORAGE}
    interval-cron: "@yearly"
    namespaces: [{NAMESPACE}]
    {routine}
"#,
        port = node.port(),
        path = dir.path().display(),
    );
    let config = abs::config::parse::<Config>(&yaml, Format::Yaml).expect("the config parses");
    let store = Arc::new(ConfigStore::in_memory(config));
    let clock = Arc::new(ManualClock::at_ms(T0));
    node.clock().pin_ms(T0 as u64);
    let metrics = Arc::new(Metrics::new());
    let ctx = Arc::new(EngineContext::new(plugins(), clock.clone()));
    let jobs = JobRegistry::with_context(store.clone(), Some(metrics.clone()), ctx);
    let mut state = AppState::new(store, metrics);
    state.set_jobs(jobs);
    let client = Client::new(&ClientPolicy::default(), &node.hosts())
        .await
        .unwrap();
    Env {
        app: api::router(state),
        node,
        client,
        clock,
        now_ms: std::sync::atomic::AtomicI64::new(T0),
        _dir: dir,
    }
}

impl Env {
    /// Moves both clocks on by two seconds: each step of a case happens later than the last,
    /// as it does on the wall clock upstream.
    fn tick(&self) -> i64 {
        use std::sync::atomic::Ordering;
        let now = self.now_ms.fetch_add(2_000, Ordering::SeqCst) + 2_000;
        self.clock.set_ms(now);
        self.node.clock().pin_ms(now as u64);
        now
    }

    async fn call(
        &self,
        method: &str,
        uri: &str,
        body: Option<serde_json::Value>,
    ) -> (StatusCode, Vec<u8>) {
        let req = Request::builder().method(method).uri(uri);
        let req = match body {
            Some(b) => req
                .header("content-type", "application/json")
                .body(Body::from(b.to_string()))
                .unwrap(),
            None => req.body(Body::empty()).unwrap(),
        };
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (status, bytes.to_vec())
    }

    fn backups_url(kind: &str) -> String {
        format!("/v1/backups/{kind}/{ROUTINE}")
    }

    async fn trigger(&self, kind: &str) {
        self.wait_idle().await;
        let req = Request::builder()
            .method("POST")
            .uri(Self::backups_url(kind))
            .body(Body::empty())
            .unwrap();
        let resp = self.app.clone().oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::ACCEPTED, "trigger {kind} backup");
        // Ours: a skipped request says why; upstream's steps never expect one.
        assert!(
            resp.headers().get("x-backup-skipped").is_none(),
            "{kind} backup skipped: {:?}",
            resp.headers().get("x-backup-skipped")
        );
    }

    /// Until the routine runs no backup. A backup is listed once its metadata is written,
    /// a moment before its job ends, and an incremental asked for while the full still runs
    /// is skipped (202 all the same); upstream's waits on the wall clock hide that moment.
    async fn wait_idle(&self) {
        let start = Instant::now();
        loop {
            let (s, b) = self
                .call("GET", &format!("/v1/backups/currentBackup/{ROUTINE}"), None)
                .await;
            assert_eq!(s, StatusCode::OK);
            let state: serde_json::Value = serde_json::from_slice(&b).unwrap();
            if state.get("full").is_none() && state.get("incremental").is_none() {
                return;
            }
            assert!(start.elapsed() < PATIENCE, "a backup still runs: {state}");
            tokio::time::sleep(POLL).await;
        }
    }

    async fn trigger_full_backup(&self) {
        self.trigger("full").await;
    }

    async fn trigger_incremental_backup(&self) {
        self.trigger("incremental").await;
    }

    async fn get_backups(&self, kind: &str) -> Vec<serde_json::Value> {
        let (s, b) = self.call("GET", &Self::backups_url(kind), None).await;
        assert_eq!(
            s,
            StatusCode::OK,
            "list {kind}: {}",
            String::from_utf8_lossy(&b)
        );
        serde_json::from_slice(&b).unwrap()
    }

    /// Upstream's `waitForBackups`: until `want` backups of `kind` are listed, failing as
    /// soon as a failure of that kind is counted; the last one.
    async fn wait_for_backups(&self, kind: &str, want: usize) -> serde_json::Value {
        let start = Instant::now();
        loop {
            assert_eq!(
                self.metric_backup_events(kind, "failure").await,
                0.0,
                "{kind} backup failed"
            );
            let backups = self.get_backups(kind).await;
            if backups.len() == want {
                return backups[want - 1].clone();
            }
            assert!(
                start.elapsed() < PATIENCE,
                "{} {kind} backups listed, want {want}",
                backups.len()
            );
            tokio::time::sleep(POLL).await;
        }
    }

    async fn wait_for_full_backup(&self) -> serde_json::Value {
        self.wait_for_backups("full", 1).await
    }

    async fn wait_for_incremental_backup(&self, want: usize) -> serde_json::Value {
        self.wait_for_backups("incremental", want).await
    }

    async fn metrics(&self) -> String {
        let (s, b) = self.call("GET", "/metrics", None).await;
        assert_eq!(s, StatusCode::OK);
        String::from_utf8(b).unwrap()
    }

    /// The value of the series `name{labels}`, or `None` when it is not exported.
    async fn metric(&self, name: &str, labels: &str) -> Option<f64> {
        let text = self.metrics().await;
        let series = format!("{name}{{{labels}}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&series))
            .map(|v| v.trim().parse().unwrap())
    }

    /// `backup_events_total` of `outcome` for `kind`; a missing series counts as zero, as
    /// upstream reads it.
    async fn metric_backup_events(&self, kind: &str, outcome: &str) -> f64 {
        self.metric(
            "aerospike_backup_service_backup_events_total",
            &format!(r#"outcome="{outcome}",routine="{ROUTINE}",type="{kind}""#),
        )
        .await
        .unwrap_or(0.0)
    }

    async fn metric_backup_success_event_count(&self, kind: &str) -> f64 {
        self.metric_backup_events(kind, "success").await
    }

    async fn wait_for_metric_backup_success_event(&self, kind: &str, previous: f64) {
        let start = Instant::now();
        while self.metric_backup_success_event_count(kind).await <= previous {
            assert!(start.elapsed() < PATIENCE, "no {kind} backup success event");
            tokio::time::sleep(POLL).await;
        }
    }

    async fn assert_metric_backup_success_event_count(&self, kind: &str, want: f64) {
        assert_eq!(
            self.metric_backup_success_event_count(kind).await,
            want,
            "{kind}"
        );
    }

    async fn assert_metric_last_successful_backup(&self, kind: &str, created: &serde_json::Value) {
        let want = created_unix(created);
        let got = self
            .metric(
                "aerospike_backup_service_last_successful_backup_timestamp",
                &format!(r#"routine="{ROUTINE}",type="{kind}""#),
            )
            .await
            .expect("the last successful backup gauge");
        assert_eq!(got as i64, want, "last successful {kind} backup");
    }

    async fn metric_restore_success_event_count(&self) -> f64 {
        self.metric(
            "aerospike_backup_service_restore_events_total",
            r#"outcome="success""#,
        )
        .await
        .unwrap_or(0.0)
    }

    async fn assert_backup_listed(&self, kind: &str, backup: &serde_json::Value) {
        let listed = self.get_backups(kind).await;
        assert!(listed.contains(backup), "{backup} in {listed:?}");
    }

    async fn assert_incremental_backup_count(&self, want: usize) {
        assert_eq!(self.get_backups("incremental").await.len(), want);
    }

    /// Upstream's `restoreByPath` with `defaultRestoreRequest(key)`.
    async fn restore_by_path(&self, key: &serde_json::Value) -> serde_json::Value {
        self.restore(
            "/v1/restore/full",
            serde_json::json!({
                "destination-name": CLUSTER,
                "source-name": STORAGE,
                "policy": {},
                "backup-data-path": key,
            }),
        )
        .await
    }

    async fn restore_by_timestamp(&self, time_ms: i64) -> serde_json::Value {
        self.restore(
            "/v1/restore/timestamp",
            serde_json::json!({
                "destination-name": CLUSTER,
                "policy": {},
                "time": time_ms,
                "routine": ROUTINE,
            }),
        )
        .await
    }

    /// Posts the request, then polls the job until it stops running; it must succeed.
    async fn restore(&self, url: &str, request: serde_json::Value) -> serde_json::Value {
        let (s, b) = self.call("POST", url, Some(request)).await;
        assert_eq!(
            s,
            StatusCode::ACCEPTED,
            "start restore: {}",
            String::from_utf8_lossy(&b)
        );
        let id: i64 = String::from_utf8(b).unwrap().trim().parse().unwrap();
        let start = Instant::now();
        loop {
            let (s, b) = self
                .call("GET", &format!("/v1/restore/status/{id}"), None)
                .await;
            assert_eq!(s, StatusCode::OK);
            let job: serde_json::Value = serde_json::from_slice(&b).unwrap();
            if job["status"] != "running" {
                assert_eq!(job["status"], "success", "restore failed: {}", job["error"]);
                return job;
            }
            assert!(start.elapsed() < PATIENCE, "restore {id} still running");
            tokio::time::sleep(POLL).await;
        }
    }

    /// Upstream's `seedRecords`: one record per age, keyed by its position.
    async fn seed_records(&self, ages: &[i64]) {
        for (i, age) in ages.iter().enumerate() {
            let key = Key::new(NAMESPACE, SET, Value::from(i as i64)).unwrap();
            self.client
                .put(
                    &WritePolicy::default(),
                    &key,
                    &[aerospike::Bin::new("age", Value::from(*age))],
                )
                .await
                .unwrap();
        }
    }

    async fn truncate_namespace(&self) {
        self.client
            .truncate(&AdminPolicy::default(), NAMESPACE, "", 0)
            .await
            .unwrap();
        assert_eq!(self.node.record_count(NAMESPACE), 0);
        self.tick();
    }

    /// Each `ages[i]` is back under key `i`.
    async fn assert_records_restored(&self, ages: &[i64]) {
        for (i, age) in ages.iter().enumerate() {
            let key = Key::new(NAMESPACE, SET, Value::from(i as i64)).unwrap();
            let rec = self
                .client
                .get(&ReadPolicy::default(), &key, Bins::All)
                .await
                .unwrap_or_else(|e| panic!("record {i} restored: {e}"));
            assert_eq!(rec.bins.get("age"), Some(&Value::from(*age)), "record {i}");
        }
    }

    async fn info(&self, command: &str) -> String {
        self.client
            .info(&AdminPolicy::default(), &[command])
            .await
            .unwrap()
            .shift_remove(command)
            .unwrap_or_default()
    }
}

fn created_unix(created: &serde_json::Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(created.as_str().expect("created is a string"))
        .expect("created is RFC 3339")
        .timestamp()
}

/// Upstream's `assertBackupDetails`.
fn assert_backup_details(backup: &serde_json::Value, records: u64) {
    assert_eq!(backup["namespace"], NAMESPACE, "{backup}");
    assert_eq!(backup["record-count"], records, "{backup}");
    assert!(created_unix(&backup["created"]) > 0, "{backup}");
    assert!(backup["finished"].is_string(), "{backup}");
    assert!(
        backup["key"].as_str().is_some_and(|k| !k.is_empty()),
        "{backup}"
    );
}

/// `backup_test.go` `TestBackup`: a full, an incremental, an empty incremental.
#[tokio::test]
async fn test_backup() {
    let e = setup_env("", "").await;
    let (full, incr) = backup_full_incremental_and_empty(&e).await;
    assert!(created_unix(&incr["created"]) >= created_unix(&full["created"]));
}

/// The `full`, `incremental` and `empty_incremental` steps that `TestBackup` and
/// `TestRestoreByTimestampWorkflow` share.
async fn backup_full_incremental_and_empty(e: &Env) -> (serde_json::Value, serde_json::Value) {
    // full
    e.tick();
    let success = e.metric_backup_success_event_count("full").await;
    e.trigger_full_backup().await;
    e.wait_for_metric_backup_success_event("full", success)
        .await;
    let full = e.wait_for_full_backup().await;
    assert_backup_details(&full, 0);
    e.assert_backup_listed("full", &full).await;
    e.assert_metric_backup_success_event_count("full", success + 1.0)
        .await;
    e.assert_metric_last_successful_backup("full", &full["created"])
        .await;

    // incremental
    e.tick();
    e.seed_records(&[1]).await;
    e.tick();
    e.trigger_incremental_backup().await;
    let incr = e.wait_for_incremental_backup(1).await;
    assert_backup_details(&incr, 1);
    e.assert_backup_listed("incremental", &incr).await;
    assert!(created_unix(&incr["created"]) >= created_unix(&full["created"]));
    e.assert_metric_last_successful_backup("incremental", &incr["created"])
        .await;

    // empty_incremental
    e.tick();
    let success = e.metric_backup_success_event_count("incremental").await;
    e.trigger_incremental_backup().await;
    e.wait_for_metric_backup_success_event("incremental", success)
        .await;
    e.assert_incremental_backup_count(1).await;
    e.assert_metric_backup_success_event_count("incremental", success + 1.0)
        .await;
    e.assert_metric_last_successful_backup("incremental", &incr["created"])
        .await;
    (full, incr)
}

/// `restore_test.go` `TestRestore` (and `restore_path_test.go` `TestRestoreByPath`, the
/// same steps through `defaultRestoreRequest`).
#[tokio::test]
async fn test_restore_and_restore_by_path() {
    let e = setup_env("", "").await;
    e.seed_records(&[10, 20, 30]).await;
    let success = e.metric_restore_success_event_count().await;
    e.tick();
    e.trigger_full_backup().await;
    let full = e.wait_for_full_backup().await;
    assert_backup_details(&full, 3);

    e.truncate_namespace().await;

    let status = e.restore_by_path(&full["key"]).await;
    assert_eq!(status["status"], "success");
    assert_eq!(status["inserted-records"], 3, "{status}");
    assert!(status.get("error").is_none_or(|v| v.is_null() || v == ""));

    e.assert_records_restored(&[10, 20, 30]).await;
    assert_eq!(e.metric_restore_success_event_count().await, success + 1.0);
}

/// `restore_path_test.go` `TestBackupRestoreWithIndexes` (`backup_test.go` had it with the
/// set index commented out): a bin index and a set index are backed up (two in
/// `secondary-index-count`), dropped, and both restored (`index-count` 2).
#[tokio::test]
async fn test_backup_restore_with_indexes() {
    const WANT_INDEXES: u64 = 2; // age_sidx + set_sidx
    let e = setup_env("", "").await;
    let admin = AdminPolicy::default();
    e.client
        .create_index_on_bin(
            &admin,
            NAMESPACE,
            SET,
            "age",
            "age_sidx",
            aerospike::IndexType::Numeric,
            aerospike::CollectionIndexType::Default,
            None,
        )
        .await
        .unwrap();
    // What Go's `CreateSetIndex` sends (the Rust client has no call for it).
    let answer = e
        .info(&format!(
            "sindex-create:namespace={NAMESPACE};set={SET};indexname=set_sidx;indextype=set"
        ))
        .await;
    assert_eq!(answer, "ok");

    // No records: the indexes are backed up and restored on their own.
    e.tick();
    e.trigger_full_backup().await;
    let full = e.wait_for_full_backup().await;
    assert_eq!(full["secondary-index-count"], WANT_INDEXES, "{full}");
    // Ours: the set index's `.asb33` sidecar is checksummed and read by a verify like the
    // `.asb` files (two files: the bin index's and the sidecar).
    let (s, b) = e
        .call(
            "POST",
            &format!("/v1/backups/verify/{ROUTINE}/{}", full["timestamp"]),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{}", String::from_utf8_lossy(&b));
    let id = String::from_utf8(b).unwrap();
    let start = Instant::now();
    let verify = loop {
        let (_, b) = e
            .call("GET", &format!("/v1/backups/verify/status/{id}"), None)
            .await;
        let st: serde_json::Value = serde_json::from_slice(&b).unwrap();
        if st["status"] != "running" {
            break st;
        }
        assert!(start.elapsed() < PATIENCE, "verify still running");
        tokio::time::sleep(POLL).await;
    };
    assert_eq!(verify["status"], "ok", "{verify}");
    assert_eq!(verify["report"]["files"], 2, "{verify}");
    assert_eq!(verify["report"]["checksummed-files"], 2, "{verify}");

    e.client
        .drop_index(&admin, NAMESPACE, SET, "age_sidx")
        .await
        .unwrap();
    e.client
        .drop_index(&admin, NAMESPACE, SET, "set_sidx")
        .await
        .unwrap();
    assert_eq!(e.info(&format!("sindex-list:ns={NAMESPACE}")).await, "");

    let status = e.restore_by_path(&full["key"]).await;
    assert_eq!(status["index-count"], WANT_INDEXES, "{status}");
    let list = e.info(&format!("sindex-list:ns={NAMESPACE}")).await;
    assert!(
        list.contains(&format!(
            "ns={NAMESPACE}:indexname=set_sidx:set={SET}:indextype=set"
        )),
        "{list}"
    );
    assert!(list.contains("indexname=age_sidx"), "{list}");
}

/// `restore_timestamp_test.go` `TestRestoreByTimestampWorkflow`.
#[tokio::test]
async fn test_restore_by_timestamp_workflow() {
    let e = setup_env("", "").await;
    backup_full_incremental_and_empty(&e).await;

    // restore_by_timestamp
    let success = e.metric_restore_success_event_count().await;
    e.truncate_namespace().await;
    let now = e.tick();
    let status = e.restore_by_timestamp(now).await;
    assert_eq!(status["status"], "success");
    assert_eq!(status["inserted-records"], 1, "{status}");
    e.assert_records_restored(&[1]).await;
    assert_eq!(e.metric_restore_success_event_count().await, success + 1.0);
}

/// `restore_timestamp_cumulative_test.go` `TestRestoreByTimestampCumulativeWorkflow`: with
/// `incr-mode: cumulative` the second incremental covers the first, and a point-in-time
/// restore takes the full and the last incremental only.
#[tokio::test]
async fn test_restore_by_timestamp_cumulative_workflow() {
    let e = setup_env("incr-mode: cumulative", "").await;

    // full
    e.tick();
    e.trigger_full_backup().await;
    let full = e.wait_for_full_backup().await;
    assert_backup_details(&full, 0);
    e.assert_backup_listed("full", &full).await;

    // incremental_1
    e.tick();
    e.seed_records(&[1]).await;
    e.tick();
    e.trigger_incremental_backup().await;
    let incr1 = e.wait_for_incremental_backup(1).await;
    assert_backup_details(&incr1, 1);
    e.assert_backup_listed("incremental", &incr1).await;
    assert!(created_unix(&incr1["created"]) > created_unix(&full["created"]));

    // incremental_2: records 0 (again) and 1; cumulative, so both, and the window starts
    // at the full.
    e.tick();
    e.seed_records(&[1, 2]).await;
    e.tick();
    e.trigger_incremental_backup().await;
    let incr2 = e.wait_for_incremental_backup(2).await;
    assert_backup_details(&incr2, 2);
    e.assert_backup_listed("incremental", &incr2).await;
    assert!(created_unix(&incr2["created"]) > created_unix(&incr1["created"]));
    assert_eq!(incr2["from"], full["created"], "{incr2}");

    // restore_by_timestamp: only the second incremental is applied.
    e.truncate_namespace().await;
    let now = e.tick();
    let status = e.restore_by_timestamp(now).await;
    assert_eq!(status["status"], "success");
    assert_eq!(status["inserted-records"], 2, "{status}");
    e.assert_records_restored(&[1, 2]).await;
}

/// The same workflow with the default (differential) mode for contrast: the second
/// incremental holds only what changed since the first, and the restore applies both.
#[tokio::test]
async fn differential_incrementals_chain_where_cumulative_ones_do_not() {
    let e = setup_env("incr-mode: differential", "").await;
    e.tick();
    e.trigger_full_backup().await;
    let full = e.wait_for_full_backup().await;
    e.tick();
    e.seed_records(&[1]).await;
    e.tick();
    e.trigger_incremental_backup().await;
    let incr1 = e.wait_for_incremental_backup(1).await;
    e.tick();
    e.seed_records(&[7, 2]).await;
    e.tick();
    e.trigger_incremental_backup().await;
    let incr2 = e.wait_for_incremental_backup(2).await;
    assert_backup_details(&incr2, 2);
    assert_eq!(incr1["from"], full["created"]);
    assert_eq!(incr2["from"], incr1["created"]);
    e.truncate_namespace().await;
    let now = e.tick();
    let status = e.restore_by_timestamp(now).await;
    // Record 0 from the first incremental, then records 0 and 1 from the second.
    assert_eq!(status["inserted-records"], 3, "{status}");
    e.assert_records_restored(&[7, 2]).await;
}

/// `filter_expression_test.go` `TestBackupWithFilterExpression`: `age > 25` over ages 10,
/// 20, 30, 40, 25 backs up two records.
#[tokio::test]
async fn test_backup_with_filter_expression() {
    use aerospike::expressions as exp;
    let filter = exp::gt(exp::int_bin("age"), exp::int_val(25))
        .base64()
        .unwrap();
    let e = setup_env(
        "",
        &format!("set-list: [{SET}]\n    filter-exp: \"{filter}\""),
    )
    .await;
    e.seed_records(&[10, 20, 30, 40, 25]).await;
    e.tick();
    e.trigger_full_backup().await;
    let backup = e.wait_for_full_backup().await;
    assert_eq!(backup["namespace"], NAMESPACE);
    assert_eq!(backup["record-count"], 2, "{backup}");
}

/// A `filter-exp` the server cannot parse fails the backup with the server's answer,
/// parameter error (4), as ABS reports it; nothing is listed.
#[tokio::test]
async fn a_filter_expression_the_server_cannot_parse_fails_the_backup_with_code_4() {
    // `[GT, 1]`: a comparison with one operand. Valid base64 and msgpack, so only the
    // server can refuse it.
    let e = setup_env("", &format!("set-list: [{SET}]\n    filter-exp: \"kgMB\"")).await;
    e.seed_records(&[10, 30]).await;
    e.tick();
    e.trigger_full_backup().await;
    let start = Instant::now();
    while e.metric_backup_events("full", "failure").await < 1.0 {
        assert!(start.elapsed() < PATIENCE, "the backup did not fail");
        tokio::time::sleep(POLL).await;
    }
    assert!(e.get_backups("full").await.is_empty());
    let (s, b) = e
        .call("GET", &format!("/v1/backups/currentBackup/{ROUTINE}"), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let state: serde_json::Value = serde_json::from_slice(&b).unwrap();
    let result = &state["last-full-result"];
    assert_eq!(result["outcome"], "failure", "{state}");
    let message = result["message"].as_str().unwrap_or_default();
    // Refused at once, not retried: the same request gets the same answer.
    assert!(
        message.contains("server error 4 (parameter error)") && !message.contains("attempts"),
        "{message}"
    );
}
