//! The scheduler against the test node: cron fires on a manual clock, the overlap rules for
//! scheduled and on-demand runs, the first-full rule across a restart, retention, live
//! reconfiguration, shutdown, the metrics, and one end-to-end run on real cron seconds.
//!
//! Length: one test per scheduling rule, each standing alone on a manual clock.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use abs::api::{self, AppState};
use abs::config::{Config, ConfigStore, Format};
use abs::jobs::backup::Clock;
use abs::jobs::backup::{EngineContext, open_storage};
use abs::jobs::registry::{JobOutcome, JobRegistry, Trigger};
use abs::jobs::retention;
use abs::metrics::Metrics;
use abs::scheduler::rules::SkipReason;
use abs::scheduler::{Event, ManualTimer, Origin, Scheduler, SystemTimer};
use abs::storage::layout::{self, BackupKind};
use aerospike::{Key, Value, WritePolicy, as_bin};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::{DateTime, Utc};
use http_body_util::BodyExt;
use testkit::AerospikeNode;
use tokio::sync::broadcast;
use tower::ServiceExt;

use super::backup::{connect, decode_folder, plugins, seed};

/// Guards against a hang only; nothing here measures time.
const EVENT_WAIT: Duration = Duration::from_secs(60);

fn ms(rfc3339: &str) -> i64 {
    DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .timestamp_millis()
}

fn t(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .with_timezone(&Utc)
}

/// A routine line for [`config`]: `name: {interval-cron, incr-interval-cron, ...}`.
fn routine(name: &str, full: &str, inc: &str, extra: &str) -> String {
    format!(
        "  {name}: {{interval-cron: \"{full}\", incr-interval-cron: \"{inc}\", source-cluster: c, storage: s, backup-policy: p, namespaces: [test]{extra}}}\n"
    )
}

fn config(port: u16, dir: &Path, policy: &str, routines: &str) -> Config {
    config_with(port, dir, policy, routines, "")
}

/// [`config`] with more top-level YAML (`top`, at column 0).
fn config_with(port: u16, dir: &Path, policy: &str, routines: &str, top: &str) -> Config {
    let yaml = format!(
        "{top}\naerospike-clusters:\n  c: {{seed-nodes: [{{host-name: 127.0.0.1, port: {port}}}]}}\n\
         storage:\n  s: {{local-storage: {{path: \"{}\"}}}}\n\
         backup-policies:\n  p: {{{policy}}}\n\
         backup-routines:\n{routines}",
        dir.display()
    );
    abs::config::parse::<Config>(&yaml, Format::Yaml).expect("test config parses")
}

struct Rig {
    sched: Scheduler,
    timer: Arc<ManualTimer>,
    store: Arc<ConfigStore>,
    metrics: Arc<Metrics>,
}

/// A scheduler on a manual clock standing at `start_ms`, over `store`; recovery done.
async fn rig(store: Arc<ConfigStore>, start_ms: i64) -> Rig {
    let timer = Arc::new(ManualTimer::at_ms(start_ms));
    let metrics = Arc::new(Metrics::new());
    metrics.sync_routines(&store.current());
    let ctx = Arc::new(EngineContext::new(plugins(), timer.clone()));
    let jobs = JobRegistry::with_context(store.clone(), Some(metrics.clone()), ctx);
    let sched = Scheduler::new(jobs, store.clone(), timer.clone(), Some(metrics.clone()));
    Rig {
        sched,
        timer,
        store,
        metrics,
    }
}

impl Rig {
    async fn start(&self) -> broadcast::Receiver<Event> {
        let rx = self.sched.subscribe();
        self.sched.start().await.unwrap();
        rx
    }

    fn storage(&self) -> Arc<dyn abs::plugins::Storage> {
        open_storage(&plugins(), &self.store.current().storage["s"]).unwrap()
    }

    /// Starts a full backup of `r` now and returns once it has written `records` records.
    async fn full_under_way(&self, r: &str, records: u64) {
        let t = self.sched.trigger(r, BackupKind::Full, Duration::ZERO);
        assert_eq!(t.await.unwrap(), Trigger::Started);
        while self
            .sched
            .jobs()
            .state(r)
            .full
            .is_some_and(|f| f.progress.records < records)
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn listed(&self, r: &str, kind: BackupKind) -> Vec<i64> {
        let found = layout::list_backups(&self.storage(), r, kind)
            .await
            .unwrap();
        let set: BTreeSet<i64> = found.iter().map(|b| b.timestamp_ms).collect();
        set.into_iter().collect()
    }

    async fn on_demand_ok(&self, r: &str, kind: BackupKind) -> i64 {
        let t = self.sched.trigger(r, kind, Duration::ZERO).await.unwrap();
        assert_eq!(t, Trigger::Started);
        match self.sched.jobs().wait(r, kind).await {
            Some(JobOutcome::Success(rep)) => rep.timestamp_ms,
            other => panic!("{kind:?} of {r} did not succeed: {other:?}"),
        }
    }

    fn metric(&self, name: &str, labels: &str) -> f64 {
        metric_value(&self.metrics.render(), name, labels)
    }
}

fn metric_value(text: &str, name: &str, labels: &str) -> f64 {
    let prefix = if labels.is_empty() {
        format!("{name} ")
    } else {
        format!("{name}{{{labels}}} ")
    };
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
        .trim()
        .parse()
        .unwrap()
}

/// Receives events until one matches `done`; returns all received, that one last.
async fn until(rx: &mut broadcast::Receiver<Event>, done: impl Fn(&Event) -> bool) -> Vec<Event> {
    let mut seen = Vec::new();
    loop {
        let e = tokio::time::timeout(EVENT_WAIT, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("no matching event; saw {seen:#?}"))
            .expect("event channel open");
        let last = done(&e);
        seen.push(e);
        if last {
            return seen;
        }
    }
}

fn fire(kind: BackupKind, at: &str) -> impl Fn(&Event) -> bool {
    let at = t(at);
    move |e: &Event| e.kind == kind && e.at == at && e.origin == Origin::Schedule
}

fn skipped(e: &Event, why: SkipReason) -> bool {
    e.result == Ok(Trigger::Skipped(why.to_string()))
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
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (status, json)
}

#[tokio::test]
async fn cron_fires_at_the_next_matching_second_and_every_overlap_rule_holds() {
    let node = AerospikeNode::start().unwrap();
    // ~5 s per full at 200 records/s, so later fires meet it running.
    seed(&node, 1000);
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(ConfigStore::in_memory(config(
        node.port(),
        dir.path(),
        "parallel: 1, records-per-second: 200",
        &routine("r", "0 * * * * ?", "3/5 * * * * ?", ""),
    )));
    let rig = rig(store, ms("2027-01-15T08:00:17.300Z")).await;
    let mut rx = rig.start().await;

    // Full every minute, incremental every 5 s: the first fires are the next matching
    // seconds, not a period after the start (the issue-10 demo config).
    let v = rig.sched.view("r");
    assert_eq!(v.next_full, Some(t("2027-01-15T08:01:00Z")));
    assert_eq!(v.next_incremental, Some(t("2027-01-15T08:00:18Z")));

    // No full yet: the incremental is skipped.
    rig.timer.set_ms(ms("2027-01-15T08:00:18Z"));
    let seen = until(
        &mut rx,
        fire(BackupKind::Incremental, "2027-01-15T08:00:18Z"),
    )
    .await;
    assert!(
        skipped(seen.last().unwrap(), SkipReason::NoFullYet),
        "{seen:?}"
    );
    assert_eq!(
        rig.sched.view("r").next_incremental,
        Some(t("2027-01-15T08:00:23Z"))
    );

    // The first full starts on its minute.
    rig.timer.set_ms(ms("2027-01-15T08:01:00Z"));
    let seen = until(&mut rx, fire(BackupKind::Full, "2027-01-15T08:01:00Z")).await;
    assert_eq!(
        seen.last().unwrap().result,
        Ok(Trigger::Started),
        "{seen:?}"
    );
    assert!(rig.sched.jobs().state("r").full.is_some());

    // While it runs: a scheduled incremental is skipped, so is an on-demand one (and the
    // API says why), and the next full is skipped, not queued.
    rig.timer.set_ms(ms("2027-01-15T08:01:03Z"));
    let seen = until(
        &mut rx,
        fire(BackupKind::Incremental, "2027-01-15T08:01:03Z"),
    )
    .await;
    assert!(
        skipped(seen.last().unwrap(), SkipReason::FullRunning),
        "{seen:?}"
    );
    assert_eq!(
        rig.sched
            .trigger("r", BackupKind::Incremental, Duration::ZERO)
            .await
            .unwrap(),
        Trigger::Skipped(SkipReason::FullRunning.to_string())
    );
    let mut state = AppState::new(rig.store.clone(), rig.metrics.clone());
    state.set_scheduler(rig.sched.clone());
    let app = api::router(state);
    // Skipped as ABS answers it: 202, the reason in the routine state and a header.
    let resp = app
        .clone()
        .oneshot(
            axum::http::Request::post("/v1/backups/full/r")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let why = resp.headers()["x-backup-skipped"].to_str().unwrap();
    assert!(
        why.contains("a full backup of the routine is running"),
        "{why}"
    );
    let (_, body) = call(&app, "GET", "/v1/backups/currentBackup/r").await;
    assert_eq!(body["last-full-result"]["outcome"], "skip", "{body}");
    rig.timer.set_ms(ms("2027-01-15T08:02:00Z"));
    let seen = until(&mut rx, fire(BackupKind::Full, "2027-01-15T08:02:00Z")).await;
    assert!(
        skipped(seen.last().unwrap(), SkipReason::FullRunning),
        "{seen:?}"
    );
    // The clock jumped a minute: the incremental fired once for the jump, not 11 times.
    let incs: Vec<_> = seen
        .iter()
        .filter(|e| e.kind == BackupKind::Incremental && e.origin == Origin::Schedule)
        .collect();
    assert!(incs.len() <= 1, "{incs:?}");

    // The full ends; now an incremental runs, and a full starts while it runs.
    assert!(matches!(
        rig.sched.jobs().wait("r", BackupKind::Full).await,
        Some(JobOutcome::Success(_))
    ));
    // 600 records changed inside the next incremental's window (on the node's clock), so
    // it runs for a few seconds.
    node.clock().pin_ms(ms("2027-01-15T08:01:30Z") as u64);
    seed(&node, 600);
    rig.timer.set_ms(ms("2027-01-15T08:02:03Z"));
    let seen = until(
        &mut rx,
        fire(BackupKind::Incremental, "2027-01-15T08:02:03Z"),
    )
    .await;
    assert_eq!(
        seen.last().unwrap().result,
        Ok(Trigger::Started),
        "{seen:?}"
    );
    assert!(rig.sched.jobs().state("r").incremental.is_some());
    assert_eq!(
        rig.sched
            .trigger("r", BackupKind::Full, Duration::ZERO)
            .await
            .unwrap(),
        Trigger::Started,
        "a full starts while an incremental runs"
    );
    for kind in [BackupKind::Incremental, BackupKind::Full] {
        assert!(matches!(
            rig.sched.jobs().wait("r", kind).await,
            Some(JobOutcome::Success(_))
        ));
    }

    // Every skip and run is counted, under both the seed's and the 3.x names.
    let skips = |kind| {
        rig.metric(
            "aerospike_backup_service_backup_events_total",
            &format!("outcome=\"skip\",routine=\"r\",type=\"{}\"", kind),
        )
    };
    assert_eq!(skips("full"), 2.0); // the 08:02 fire and the API request
    assert_eq!(
        rig.metric("aerospike_backup_service_skip_total", ""),
        skips("full")
    );
    assert!(skips("incremental") >= 3.0);
    assert_eq!(
        rig.metric("aerospike_backup_service_incremental_skip_total", ""),
        skips("incremental")
    );
    assert_eq!(rig.metric("aerospike_backup_service_runs_total", ""), 2.0);
    assert_eq!(
        rig.metric("aerospike_backup_service_incremental_runs_total", ""),
        1.0
    );
    assert_eq!(
        rig.metric(
            "aerospike_backup_service_backup_records_total",
            "routine=\"r\",type=\"full\""
        ),
        2000.0
    );
    assert_eq!(
        rig.metric(
            "aerospike_backup_service_next_scheduled_backup_timestamp",
            "routine=\"r\",type=\"full\""
        ),
        t("2027-01-15T08:03:00Z").timestamp() as f64
    );
    let (s, body) = call(&app, "GET", "/v1/backups/currentBackup/r").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["next-full"], "2027-01-15T08:03:00Z", "{body}");
    assert_eq!(body["last-full-result"]["outcome"], "success", "{body}");
    assert!(body.get("storage-error").is_none(), "{body}");
}

#[tokio::test]
async fn a_restart_finds_the_full_in_storage_and_keeps_the_chain() {
    let node = AerospikeNode::start().unwrap();
    seed(&node, 20);
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(ConfigStore::in_memory(config(
        node.port(),
        dir.path(),
        "parallel: 1",
        &routine("r", "@daily", "*/2 * * * * ?", ""),
    )));
    let first = rig(store.clone(), ms("2027-01-15T08:00:00.500Z")).await;
    first.start().await;
    let full = first.on_demand_ok("r", BackupKind::Full).await;
    first.sched.shutdown(Duration::from_secs(5)).await;

    // A new process: the scheduler reads the full from storage before the first fire.
    let second = rig(store, ms("2027-01-15T08:00:10.500Z")).await;
    let mut rx = second.start().await;
    assert_eq!(
        second
            .sched
            .jobs()
            .state("r")
            .last_full
            .map(|t| t.timestamp_millis()),
        // The full's folder is its whole second; its window (`created`) the trigger's ms.
        Some(ms("2027-01-15T08:00:00.500Z"))
    );
    assert_eq!(full, ms("2027-01-15T08:00:00Z"));
    second.timer.set_ms(ms("2027-01-15T08:00:12Z"));
    let seen = until(
        &mut rx,
        fire(BackupKind::Incremental, "2027-01-15T08:00:12Z"),
    )
    .await;
    assert_eq!(
        seen.last().unwrap().result,
        Ok(Trigger::Started),
        "{seen:?}"
    );
    assert!(matches!(
        second.sched.jobs().wait("r", BackupKind::Incremental).await,
        Some(JobOutcome::Success(_))
    ));
}

#[tokio::test]
async fn an_unreadable_storage_is_named_in_the_routine_state_without_failing_start() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let store = Arc::new(ConfigStore::in_memory(config(
        1,
        &file,
        "",
        &routine("r", "@daily", "", ""),
    )));
    let rig = rig(store, ms("2027-01-15T08:00:00Z")).await;
    rig.start().await;
    assert!(rig.sched.is_running());
    let v = rig.sched.view("r");
    assert!(v.next_full.is_some());
    let problem = v.storage_problem.expect("a storage problem");
    assert!(problem.contains("storage s"), "{problem}");
}

/// Writes one record at the node's clock `at_ms`, so it falls in the incremental window
/// that contains it.
async fn write_at(node: &AerospikeNode, client: &aerospike::Client, at_ms: i64, k: i64) {
    node.clock().pin_ms(at_ms as u64);
    client
        .put(
            &WritePolicy::default(),
            &Key::new("test", "w", Value::from(k)).unwrap(),
            &[as_bin!("v", k)],
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn retention_keeps_the_policy_s_fulls_and_their_incrementals() {
    let node = AerospikeNode::start().unwrap();
    let t0 = ms("2027-01-15T08:00:00Z");
    node.clock().pin_ms(t0 as u64);
    seed(&node, 10);
    let client = connect(&node).await;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(ConfigStore::in_memory(config(
        node.port(),
        dir.path(),
        "parallel: 1, retention: {full: 2, incremental: 1}",
        &routine("r", "@yearly", "", ""),
    )));
    let rig = rig(store, t0 + 1000).await;
    rig.start().await;
    let mut fulls = Vec::new();
    let mut incs = Vec::new();
    for step in 0..3 {
        let base = t0 + 100_000 * (step + 1);
        rig.timer.set_ms(base);
        node.clock().pin_ms((base - 10) as u64);
        fulls.push(rig.on_demand_ok("r", BackupKind::Full).await);
        write_at(&node, &client, base + 5_000, step).await;
        rig.timer.set_ms(base + 10_000);
        incs.push(rig.on_demand_ok("r", BackupKind::Incremental).await);
    }
    // After the third full: fulls 2 and 3; incrementals from the newest full on (K = 1).
    // The incremental taken after full 3 stays (it is newer than the full).
    assert_eq!(rig.listed("r", BackupKind::Full).await, fulls[1..]);
    assert_eq!(rig.listed("r", BackupKind::Incremental).await, incs[2..]);
    // Deleted folders are gone whole, not only unlisted.
    assert!(!dir.path().join(format!("r/backup/{}", fulls[0])).exists());
    assert!(
        !dir.path()
            .join(format!("r/incremental/{}", incs[0]))
            .exists()
    );
}

#[tokio::test]
async fn without_retention_a_full_deletes_the_incrementals_before_it() {
    let node = AerospikeNode::start().unwrap();
    let t0 = ms("2027-01-15T08:00:00Z");
    node.clock().pin_ms(t0 as u64);
    seed(&node, 10);
    let client = connect(&node).await;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(ConfigStore::in_memory(config(
        node.port(),
        dir.path(),
        "parallel: 1",
        &routine("r", "@yearly", "", ""),
    )));
    let rig = rig(store, t0 + 1000).await;
    rig.start().await;
    node.clock().pin_ms((t0 + 500) as u64);
    let f1 = rig.on_demand_ok("r", BackupKind::Full).await;
    let mut incs = Vec::new();
    for i in 0..2 {
        write_at(&node, &client, t0 + 2_000 + i * 10_000, i).await;
        rig.timer.set_ms(t0 + 5_000 + i * 10_000);
        incs.push(rig.on_demand_ok("r", BackupKind::Incremental).await);
    }
    assert_eq!(rig.listed("r", BackupKind::Incremental).await, incs);
    rig.timer.set_ms(t0 + 60_000);
    let f2 = rig.on_demand_ok("r", BackupKind::Full).await;
    assert_eq!(rig.listed("r", BackupKind::Full).await, vec![f1, f2]);
    assert!(rig.listed("r", BackupKind::Incremental).await.is_empty());
    assert!(
        !dir.path()
            .join(format!("r/incremental/{}", incs[0]))
            .exists()
    );
}

#[tokio::test]
async fn a_crash_between_marker_and_data_deletion_leaves_nothing_listed_and_the_sweep_cleans_up() {
    let node = AerospikeNode::start().unwrap();
    seed(&node, 10);
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(ConfigStore::in_memory(config(
        node.port(),
        dir.path(),
        "parallel: 1, retention: {full: 5}",
        &routine("r", "@yearly", "", ""),
    )));
    let rig = rig(store, ms("2027-01-15T08:00:00Z")).await;
    rig.start().await;
    let f1 = rig.on_demand_ok("r", BackupKind::Full).await;
    rig.timer.set_ms(ms("2027-01-15T08:01:00Z"));
    let f2 = rig.on_demand_ok("r", BackupKind::Full).await;

    // Retention's first phase on f1 only: its markers go, the process "dies".
    let storage = rig.storage();
    let keys = layout::list_keys(&storage, &format!("r/backup/{f1}/"))
        .await
        .unwrap();
    assert!(keys.iter().any(|k| k.ends_with(".asb")));
    retention::delete_markers(&storage, &keys).await.unwrap();
    assert_eq!(rig.listed("r", BackupKind::Full).await, vec![f2]);
    assert!(dir.path().join(format!("r/backup/{f1}/data/test")).exists());

    // The next start's sweep removes what is left; f2 is untouched.
    let removed = rig.sched.jobs().sweep_incomplete().await;
    assert_eq!(removed, vec![format!("r/backup/{f1}")]);
    assert!(!dir.path().join(format!("r/backup/{f1}")).exists());
    assert_eq!(rig.listed("r", BackupKind::Full).await, vec![f2]);
}

#[tokio::test]
async fn a_config_change_reschedules_only_the_routines_it_touched_and_a_running_job_keeps_its_config()
 {
    let node = AerospikeNode::start().unwrap();
    seed(&node, 400);
    let dir = tempfile::tempdir().unwrap();
    let routines = routine("r", "0 * * * * ?", "", "")
        + &routine("q", "30 * * * * ?", "", "")
        + &routine("d", "* * * * * ?", "* * * * * ?", ", disabled: true");
    let store = Arc::new(ConfigStore::in_memory(config(
        node.port(),
        dir.path(),
        "parallel: 1, records-per-second: 200",
        &routines,
    )));
    let rig = rig(store, ms("2027-01-15T08:00:05Z")).await;
    let mut rx = rig.start().await;
    assert_eq!(
        rig.sched.view("d").next_full,
        None,
        "disabled: not scheduled"
    );
    let q_since = rig.sched.view("q").scheduled_at;

    rig.timer.set_ms(ms("2027-01-15T08:01:00Z"));
    let seen = until(&mut rx, fire(BackupKind::Full, "2027-01-15T08:01:00Z")).await;
    assert_eq!(seen.last().unwrap().result, Ok(Trigger::Started));
    assert!(seen.iter().all(|e| e.routine != "d"), "{seen:?}");

    // Mid-run: r's policy gains compression, r's cron changes, d stays disabled.
    rig.timer.set_ms(ms("2027-01-15T08:01:01Z"));
    rig.store
        .update(|cfg| {
            cfg.backup_policies.insert(
                "z".into(),
                abs::config::parse("{compression: {mode: ZSTD}}", Format::Yaml).unwrap(),
            );
            let r = cfg.backup_routines.get_mut("r").unwrap();
            r.backup_policy = Some("z".into());
            r.interval_cron = "0 */5 * * * ?".into();
            Ok(())
        })
        .await
        .unwrap();
    // The watcher applies it: r's next full follows the new cron; q was not touched.
    for _ in 0..200 {
        if rig.sched.view("r").next_full == Some(t("2027-01-15T08:05:00Z")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        rig.sched.view("r").next_full,
        Some(t("2027-01-15T08:05:00Z"))
    );
    assert_eq!(rig.sched.view("q").scheduled_at, q_since);
    assert_eq!(
        rig.sched.view("q").next_full,
        Some(t("2027-01-15T08:01:30Z"))
    );

    // The running full finishes on the config it started with.
    let first = match rig.sched.jobs().wait("r", BackupKind::Full).await {
        Some(JobOutcome::Success(rep)) => rep,
        other => panic!("{other:?}"),
    };
    assert_eq!(first.namespaces[0].metadata.compression, "NONE");
    let next = rig.on_demand_ok("r", BackupKind::Full).await;
    let found = layout::list_backups(&rig.storage(), "r", BackupKind::Full)
        .await
        .unwrap();
    let by_ts: BTreeMap<i64, String> = found
        .into_iter()
        .map(|b| (b.timestamp_ms, b.metadata.compression))
        .collect();
    assert_eq!(by_ts[&next], "ZSTD");

    // Deleting q stops its schedule.
    rig.store
        .update(|cfg| {
            cfg.backup_routines.remove("q");
            Ok(())
        })
        .await
        .unwrap();
    for _ in 0..200 {
        if rig.sched.view("q").scheduled_at.is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(rig.sched.view("q"), Default::default());
    rig.timer.set_ms(ms("2027-01-15T08:05:00Z"));
    let seen = until(&mut rx, fire(BackupKind::Full, "2027-01-15T08:05:00Z")).await;
    // q fired at 08:00:30 (that event may arrive late); never again after its deletion.
    assert!(
        seen.iter()
            .all(|e| e.routine == "r" || e.at == t("2027-01-15T08:00:30Z")),
        "{seen:?}"
    );
}

#[tokio::test]
async fn shutdown_cancels_what_outlives_the_grace_period_and_leaves_nothing_listed() {
    let node = AerospikeNode::start().unwrap();
    seed(&node, 2000);
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(ConfigStore::in_memory(config(
        node.port(),
        dir.path(),
        // Without a resume checkpoint: a canceled full removes every file it wrote.
        "parallel: 1, records-per-second: 100, resume-max-age: 0",
        &routine("r", "@yearly", "", ""),
    )));
    let rig = rig(store, ms("2027-01-15T08:00:00Z")).await;
    rig.start().await;
    // Let it write some data first.
    rig.full_under_way("r", 50).await;
    let report = rig.sched.shutdown(Duration::from_millis(100)).await;
    assert_eq!(
        (report.running, report.canceled, report.abandoned),
        (1, 1, 0)
    );
    assert_eq!(
        rig.sched.jobs().wait("r", BackupKind::Full).await,
        Some(JobOutcome::Canceled)
    );
    assert!(rig.listed("r", BackupKind::Full).await.is_empty());
    let left = layout::list_keys(&rig.storage(), "r/").await.unwrap();
    assert!(left.is_empty(), "{left:?}");
    // Nothing starts any more.
    assert!(!rig.sched.is_running());
    assert_eq!(
        rig.sched
            .trigger("r", BackupKind::Full, Duration::ZERO)
            .await
            .unwrap(),
        Trigger::Skipped("the service is shutting down".into())
    );
}

/// Issue 27: a full backup cut off by a shutdown keeps its checkpoint (nothing listed), and
/// the next process's start-up sweep resumes it instead of removing it.
#[tokio::test]
async fn shutdown_keeps_a_checkpointed_full_that_the_next_start_resumes() {
    let node = AerospikeNode::start().unwrap();
    seed(&node, 2000);
    let dir = tempfile::tempdir().unwrap();
    let cfg = |policy: &str| {
        Arc::new(ConfigStore::in_memory(config(
            node.port(),
            dir.path(),
            policy,
            &routine("r", "@yearly", "", ""),
        )))
    };
    let rig1 = rig(
        cfg("parallel: 1, records-per-second: 100"),
        ms("2027-01-15T08:00:00Z"),
    )
    .await;
    rig1.start().await;
    rig1.full_under_way("r", 50).await;
    let report = rig1.sched.shutdown(Duration::from_millis(100)).await;
    assert_eq!((report.running, report.canceled), (1, 1));
    assert_eq!(
        rig1.sched.jobs().wait("r", BackupKind::Full).await,
        Some(JobOutcome::Canceled)
    );
    assert!(rig1.listed("r", BackupKind::Full).await.is_empty());
    let left = layout::list_keys(&rig1.storage(), "r/").await.unwrap();
    assert!(left.iter().any(|k| k.ends_with("/resume.yaml")), "{left:?}");

    // The next process (unthrottled: speed is not part of what a backup holds).
    let rig2 = rig(cfg("parallel: 2"), ms("2027-01-15T08:05:00Z")).await;
    let removed = rig2.sched.jobs().sweep_incomplete_at_start().await.unwrap();
    assert!(removed.is_empty(), "{removed:?}");
    match rig2.sched.jobs().wait("r", BackupKind::Full).await {
        Some(JobOutcome::Success(rep)) => assert_eq!(rep.records(), 2000),
        other => panic!("the resumed backup did not succeed: {other:?}"),
    }
    assert_eq!(rig2.listed("r", BackupKind::Full).await.len(), 1);
    let left = layout::list_keys(&rig2.storage(), "r/").await.unwrap();
    assert!(
        !left.iter().any(|k| k.ends_with("/resume.yaml")),
        "{left:?}"
    );

    // Too old to resume: swept like any incomplete backup.
    let rig3 = rig(
        cfg("parallel: 1, records-per-second: 100"),
        ms("2027-02-15T08:00:00Z"),
    )
    .await;
    rig3.start().await;
    rig3.full_under_way("r", 50).await;
    rig3.sched.shutdown(Duration::from_millis(100)).await;
    let rig4 = rig(cfg("parallel: 2"), ms("2027-02-17T08:00:00Z")).await;
    let removed = rig4.sched.jobs().sweep_incomplete_at_start().await.unwrap();
    assert_eq!(removed.len(), 1, "{removed:?}");
    assert_eq!(rig4.sched.jobs().wait("r", BackupKind::Full).await, None);
    assert_eq!(rig4.listed("r", BackupKind::Full).await.len(), 1);
}

#[tokio::test]
async fn shutdown_lets_a_job_finish_within_the_grace_period() {
    let node = AerospikeNode::start().unwrap();
    seed(&node, 300);
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(ConfigStore::in_memory(config(
        node.port(),
        dir.path(),
        "parallel: 1, records-per-second: 300",
        &routine("r", "@yearly", "", ""),
    )));
    let rig = rig(store, ms("2027-01-15T08:00:00Z")).await;
    rig.start().await;
    rig.sched
        .trigger("r", BackupKind::Full, Duration::ZERO)
        .await
        .unwrap();
    let report = rig.sched.shutdown(Duration::from_secs(120)).await;
    assert_eq!((report.running, report.canceled), (1, 0));
    assert!(matches!(
        rig.sched.jobs().wait("r", BackupKind::Full).await,
        Some(JobOutcome::Success(_))
    ));
    assert_eq!(rig.listed("r", BackupKind::Full).await.len(), 1);
}

/// Families on `/metrics`: name → (type, label names).
fn families(text: &str) -> BTreeMap<String, (String, BTreeSet<String>)> {
    let mut out: BTreeMap<String, (String, BTreeSet<String>)> = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, ty) = rest.split_once(' ').unwrap();
            out.entry(name.into()).or_default().0 = ty.into();
        } else if !line.starts_with('#') && !line.is_empty() {
            let (series, _) = line.rsplit_once(' ').unwrap();
            let (name, labels) = match series.split_once('{') {
                Some((n, l)) => (n, l.trim_end_matches('}')),
                None => (series, ""),
            };
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s).filter(|b| out.contains_key(*b)))
                .unwrap_or(name);
            let entry = out.entry(base.into()).or_default();
            for l in labels.split(',').filter(|l| !l.is_empty()) {
                let key = l.split_once('=').unwrap().0;
                if key != "le" {
                    entry.1.insert(key.into());
                }
            }
        }
    }
    out
}

#[tokio::test]
async fn metrics_have_the_seed_and_abs_3x_names_labels_and_types() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(ConfigStore::in_memory(config(
        1,
        dir.path(),
        "",
        &routine("r", "@daily", "@hourly", ""),
    )));
    let metrics = Arc::new(Metrics::new());
    metrics.sync_routines(&store.current());
    let app = api::router(AppState::new(store, metrics));
    let resp = app
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let text = String::from_utf8(
        resp.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    let fam = families(&text);
    let want = |name: &str, ty: &str, labels: &[&str]| {
        let full = format!("aerospike_backup_service_{name}");
        let (got_ty, got_labels) = fam
            .get(&full)
            .unwrap_or_else(|| panic!("{full} missing in\n{text}"));
        assert_eq!(got_ty, ty, "{full}");
        let labels: BTreeSet<String> = labels.iter().map(|s| s.to_string()).collect();
        assert_eq!(got_labels, &labels, "{full}");
    };
    // The seed's eight, unlabelled.
    for n in [
        "runs_total",
        "incremental_runs_total",
        "skip_total",
        "incremental_skip_total",
        "failure_total",
        "incremental_failure_total",
    ] {
        want(n, "counter", &[]);
    }
    want("duration_millis", "gauge", &[]);
    want("incremental_duration_millis", "gauge", &[]);
    // ABS 3.x.
    want(
        "backup_events_total",
        "counter",
        &["routine", "type", "outcome"],
    );
    want("backup_duration_seconds", "histogram", &["routine", "type"]);
    want("backup_in_progress", "gauge", &["routine", "type"]);
    want("backup_progress_pct", "gauge", &["routine", "type"]);
    want(
        "last_successful_backup_timestamp",
        "gauge",
        &["routine", "type"],
    );
    want("restore_events_total", "counter", &["outcome"]);
    want("restore_in_progress", "gauge", &[]);
    // Ours.
    want("backup_records_total", "counter", &["routine", "type"]);
    want("backup_bytes_total", "counter", &["routine", "type"]);
    want(
        "next_scheduled_backup_timestamp",
        "gauge",
        &["routine", "type"],
    );
    // Every outcome of every type of the routine is there at zero from the start.
    for ty in ["full", "incremental"] {
        for o in ["success", "failure", "canceled", "retry", "skip"] {
            assert_eq!(
                metric_value(
                    &text,
                    "aerospike_backup_service_backup_events_total",
                    &format!("outcome=\"{o}\",routine=\"r\",type=\"{ty}\"")
                ),
                0.0
            );
        }
    }
}

#[tokio::test]
async fn the_readme_default_config_starts_and_shows_its_schedules() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/aerospike-backup-service.yml");
    let text = std::fs::read_to_string(path).unwrap();
    let mut cfg = abs::config::parse::<Config>(&text, Format::Yaml).unwrap();
    // Backups under a temporary directory instead of ./backups.
    let dir = tempfile::tempdir().unwrap();
    let storage = cfg.storage.get_mut("local").unwrap();
    *storage = abs::config::parse(
        &format!("{{local-storage: {{path: \"{}\"}}}}", dir.path().display()),
        Format::Yaml,
    )
    .unwrap();
    let store = Arc::new(ConfigStore::in_memory(cfg));
    let running = abs::service::start(store, Some("127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap();
    let app = api::router(running.state.clone());
    let (s, _) = call(&app, "GET", "/ready").await;
    assert_eq!(s, StatusCode::OK);
    let (s, body) = call(&app, "GET", "/v1/backups/currentBackup/daily").await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let now = SystemTimer.now();
    let next_full = t(body["next-full"].as_str().expect("next-full"));
    let next_inc = t(body["next-incremental"].as_str().expect("next-incremental"));
    // "@daily" and "0 0 * * * ?": the next midnight and the next full hour, UTC.
    assert_eq!(next_full.timestamp() % 86_400, 0);
    assert!(next_full > now && next_full - now <= chrono::Duration::days(1));
    assert_eq!(next_inc.timestamp() % 3600, 0);
    assert!(next_inc > now && next_inc - now <= chrono::Duration::hours(1));
    running.stop(Duration::from_secs(5)).await.unwrap();
}

/// The issue's end-to-end check on real cron seconds: full every 10 s, incremental every
/// 3 s, a writer adding records all along. Every incremental holds what was written in its
/// window and nothing else, so no record is in two incrementals, and the newest full plus
/// the incrementals after it hold every record written.
#[tokio::test]
async fn real_cron_seconds_with_a_writer_cover_every_record_once_per_chain() {
    let node = AerospikeNode::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(ConfigStore::in_memory(config(
        node.port(),
        dir.path(),
        // Keep every backup, so every chain can be checked.
        "parallel: 2, retention: {full: 100}",
        &routine("r", "*/10 * * * * ?", "*/3 * * * * ?", ""),
    )));
    let metrics = Arc::new(Metrics::new());
    metrics.sync_routines(&store.current());
    let timer = Arc::new(SystemTimer);
    let ctx = Arc::new(EngineContext::new(plugins(), timer.clone()));
    let jobs = JobRegistry::with_context(store.clone(), Some(metrics.clone()), ctx);
    let sched = Scheduler::new(jobs, store.clone(), timer, Some(metrics.clone()));
    let mut rx = sched.subscribe();
    sched.start().await.unwrap();

    let client = Arc::new(connect(&node).await);
    let stop = tokio_util::sync::CancellationToken::new();
    let writer = {
        let client = client.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut written = Vec::new();
            let mut k: i64 = 0;
            while !stop.is_cancelled() {
                let key = Key::new("test", "w", Value::from(k)).unwrap();
                client
                    .put(&WritePolicy::default(), &key, &[as_bin!("v", k)])
                    .await
                    .unwrap();
                written.push(key.digest());
                k += 1;
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
            written
        })
    };
    let mut events = Vec::new();
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        if let Ok(Ok(e)) = tokio::time::timeout(Duration::from_millis(200), rx.recv()).await {
            events.push(e);
        }
    }
    stop.cancel();
    let written = writer.await.unwrap();
    // One more incremental that starts after the last write covers the tail.
    let last_write = Utc::now();
    events.extend(
        until(&mut rx, |e| {
            e.kind == BackupKind::Incremental
                && e.at > last_write + chrono::Duration::milliseconds(1100)
                && e.result == Ok(Trigger::Started)
        })
        .await,
    );
    sched.jobs().wait("r", BackupKind::Incremental).await;
    let report = sched.shutdown(Duration::from_secs(60)).await;
    assert_eq!(report.canceled, 0);
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }

    let storage = open_storage(&plugins(), &store.current().storage["s"]).unwrap();
    let digests = |key: &str| -> BTreeSet<[u8; 20]> {
        let (records, _) = decode_folder(&store, &dir.path().join(key));
        let set: BTreeSet<_> = records.iter().map(|r| r.digest).collect();
        assert_eq!(set.len(), records.len(), "a record twice in {key}");
        set
    };
    let fulls = layout::list_backups(&storage, "r", BackupKind::Full)
        .await
        .unwrap();
    let incs = layout::list_backups(&storage, "r", BackupKind::Incremental)
        .await
        .unwrap();
    assert!(fulls.len() >= 2, "fulls: {fulls:?}");
    assert!(incs.len() >= 3, "incrementals: {incs:?}");
    // No record in two incrementals, and each incremental's window follows on from the
    // backup before it.
    let mut seen_in_incs: BTreeSet<[u8; 20]> = BTreeSet::new();
    for i in &incs {
        for d in digests(&i.key) {
            assert!(
                seen_in_incs.insert(d),
                "a record in two incrementals ({})",
                i.key
            );
        }
        let before = fulls
            .iter()
            .chain(incs.iter())
            .map(|b| b.metadata.created)
            .filter(|c| *c < i.metadata.created)
            .max();
        assert_eq!(
            Some(i.metadata.from),
            before,
            "{} does not start where the previous backup started",
            i.key
        );
    }
    // The writer wrote keys 0, 1, 2, ... one after the other, so the records of a full and
    // the incrementals up to the next full are keys 0..n without a gap; the newest chain
    // holds every key written.
    let index: BTreeMap<[u8; 20], usize> =
        written.iter().enumerate().map(|(i, d)| (*d, i)).collect();
    for (n, f) in fulls.iter().enumerate() {
        let until_next = fulls.get(n + 1).map(|next| next.metadata.created);
        let mut chain = digests(&f.key);
        for i in incs.iter().filter(|i| {
            i.metadata.created > f.metadata.created
                && until_next.is_none_or(|next| i.metadata.created < next)
        }) {
            chain.extend(digests(&i.key));
        }
        let mut keys: Vec<usize> = chain
            .iter()
            .map(|d| *index.get(d).expect("only written records"))
            .collect();
        keys.sort_unstable();
        assert!(
            keys.iter().enumerate().all(|(i, k)| i == *k),
            "the chain of {} has a gap",
            f.key
        );
        if until_next.is_none() {
            assert_eq!(keys.len(), written.len(), "the newest chain misses records");
        }
    }
    // The metrics count what ran and what was skipped, as the events say.
    let text = metrics.render();
    for (kind, label) in [
        (BackupKind::Full, "full"),
        (BackupKind::Incremental, "incremental"),
    ] {
        let started = events
            .iter()
            .filter(|e| e.kind == kind && e.result == Ok(Trigger::Started))
            .count() as f64;
        let skipped = events
            .iter()
            .filter(|e| e.kind == kind && matches!(e.result, Ok(Trigger::Skipped(_))))
            .count() as f64;
        let value = |o: &str| {
            metric_value(
                &text,
                "aerospike_backup_service_backup_events_total",
                &format!("outcome=\"{o}\",routine=\"r\",type=\"{label}\""),
            )
        };
        assert_eq!(value("success"), started, "{label} runs");
        assert_eq!(value("skip"), skipped, "{label} skips");
    }
}

#[tokio::test]
async fn timestamp_format_names_folders_as_abs_and_they_list_chain_and_prune() {
    let node = AerospikeNode::start().unwrap();
    let t0 = ms("2027-01-15T08:00:00Z");
    node.clock().pin_ms(t0 as u64);
    seed(&node, 10);
    let client = connect(&node).await;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(ConfigStore::in_memory(config_with(
        node.port(),
        dir.path(),
        "parallel: 1, retention: {full: 1}",
        &routine("r", "@yearly", "", ""),
        "service: {backup: {timestamp-format: ISO}}",
    )));
    let rig = rig(store, t0 + 1000).await;
    rig.start().await;
    let f1 = rig.on_demand_ok("r", BackupKind::Full).await;
    let name = layout::folder_name(f1, Some(abs::config::TimestampFormat::Iso));
    assert!(name.ends_with("_2027-01-15T08-00-01"), "{name}");
    assert!(
        dir.path()
            .join(format!("r/backup/{name}/data/test/metadata.yaml"))
            .is_file()
    );
    write_at(&node, &client, t0 + 2000, 1).await;
    rig.timer.set_ms(t0 + 5000);
    let inc = rig.on_demand_ok("r", BackupKind::Incremental).await;
    let found = layout::list_backups(&rig.storage(), "r", BackupKind::Incremental)
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].timestamp_ms, inc);
    assert_eq!(found[0].metadata.from.timestamp_millis(), f1);
    assert_eq!(
        found[0].key,
        format!(
            "r/incremental/{}/data/test",
            layout::folder_name(inc, Some(abs::config::TimestampFormat::Iso))
        )
    );
    // Retention finds and removes suffixed folders too.
    rig.timer.set_ms(t0 + 60_000);
    let f2 = rig.on_demand_ok("r", BackupKind::Full).await;
    assert_eq!(rig.listed("r", BackupKind::Full).await, vec![f2]);
    assert!(rig.listed("r", BackupKind::Incremental).await.is_empty());
    let left = layout::list_keys(&rig.storage(), "r/").await.unwrap();
    assert!(left.iter().all(|k| k.contains(&f2.to_string())), "{left:?}");
}
