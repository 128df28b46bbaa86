//! Webhook notifications through the whole service: a receiver in the test gets exactly one
//! signed delivery per job end (backup success, skip and failure, restore, verify), and a
//! delivery made while the receiver is down arrives through the retries once it is back.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use abs::config::{Config, ConfigStore, Format};
use abs::jobs::registry::JobOutcome;
use abs::storage::layout::BackupKind;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use testkit::AerospikeNode;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::backup::seed;

const KEY: &str = "whk-3c9a0f1e-signing-key";

/// What the receiver got: the signature header and the body of each request.
type Got = Arc<Mutex<Vec<(Option<String>, Bytes)>>>;

/// A webhook receiver on `port` (0: any) that answers 204 and keeps what it got.
struct Receiver {
    port: u16,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start(port: u16, got: Got) -> Receiver {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let got = got.clone();
                async move {
                    let sig = headers
                        .get("x-abs-signature-256")
                        .map(|v| v.to_str().unwrap().to_string());
                    got.lock().unwrap().push((sig, body));
                    StatusCode::NO_CONTENT
                }
            }),
        );
        let stop = CancellationToken::new();
        let token = stop.clone();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { token.cancelled().await })
                .await
                .unwrap();
        });
        Receiver { port, stop, task }
    }

    async fn stop(self) {
        self.stop.cancel();
        self.task.await.unwrap();
    }
}

fn config(node_port: u16, dir: &Path, hook_port: u16, retry: &str) -> Config {
    // A closed port for the failing routine: nothing listens on port 1.
    let yaml = format!(
        r#"
aerospike-clusters:
  c: {{seed-nodes: [{{host-name: 127.0.0.1, port: {node_port}}}]}}
  down: {{seed-nodes: [{{host-name: 127.0.0.1, port: 1}}], conn-timeout: 500}}
storage:
  s: {{local-storage: {{path: "{dir}"}}}}
backup-policies:
  p: {{parallel: 2, retry-policy: {{base-timeout: 10, multiplier: 1, max-retries: 0}}}}
backup-routines:
  r: {{interval-cron: "@yearly", source-cluster: c, storage: s, backup-policy: p, namespaces: [test]}}
  broken: {{interval-cron: "@yearly", source-cluster: down, storage: s, backup-policy: p, namespaces: [test]}}
notifications:
  webhooks:
    ops:
      url: "http://127.0.0.1:{hook_port}/hook"
      secret: "{KEY}"
      retry-policy: {retry}
"#,
        dir = dir.display(),
    );
    abs::config::parse::<Config>(&yaml, Format::Yaml).expect("test config parses")
}

async fn call(app: &axum::Router, method: &str, uri: &str, body: &str) -> serde_json::Value {
    let resp = app
        .clone()
        .oneshot(
            Request::builder()
                .method(method)
                .uri(uri)
                .header("content-type", "application/json")
                .body(Body::from(body.to_string()))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    assert!(
        status.is_success(),
        "{method} {uri}: {status} {}",
        String::from_utf8_lossy(&bytes)
    );
    serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null)
}

/// Checks each delivery's HMAC with the key and returns the bodies.
fn verified(got: &Got) -> Vec<serde_json::Value> {
    got.lock()
        .unwrap()
        .iter()
        .map(|(sig, body)| {
            let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, KEY.as_bytes());
            let sig = sig.as_deref().expect("a signature header");
            let mac = hex::decode(sig.strip_prefix("sha256=").expect("sha256= prefix")).unwrap();
            ring::hmac::verify(&key, body, &mac).expect("the signature matches the body");
            let text = String::from_utf8_lossy(body);
            assert!(!text.contains(KEY), "the key is never in the body");
            serde_json::from_slice(body).unwrap()
        })
        .collect()
}

async fn wait_for(got: &Got, n: usize) {
    for _ in 0..600 {
        if got.lock().unwrap().len() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("expected {n} deliveries, got {}", got.lock().unwrap().len());
}

fn metric(running: &abs::service::Running, family: &str, labels: &[&str]) -> u64 {
    let m = &running.state.metrics;
    match family {
        "attempts" => m.webhook_attempts.with_label_values(labels).get(),
        _ => m.webhook_deliveries.with_label_values(labels).get(),
    }
}

#[tokio::test]
async fn every_job_end_is_delivered_once_signed() {
    let node = AerospikeNode::start().unwrap();
    seed(&node, 200);
    let dir = tempfile::tempdir().unwrap();
    let got: Got = Arc::default();
    let receiver = Receiver::start(0, got.clone()).await;
    let cfg = config(
        node.port(),
        dir.path(),
        receiver.port,
        "{base-timeout: 100}",
    );
    let store = Arc::new(ConfigStore::in_memory(cfg));
    let running = abs::service::start(store, Some("127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap();
    let app = abs::api::router(running.state.clone());
    let jobs = running.state.backups.clone();

    // No full yet: the incremental is skipped.
    call(&app, "POST", "/v1/backups/incremental/r", "").await;
    call(&app, "POST", "/v1/backups/full/r", "").await;
    let Some(JobOutcome::Success(report)) = jobs.wait("r", BackupKind::Full).await else {
        panic!("the full backup succeeds");
    };
    call(&app, "POST", "/v1/backups/full/broken", "").await;
    assert!(matches!(
        jobs.wait("broken", BackupKind::Full).await,
        Some(JobOutcome::Failure(_))
    ));
    let ts = report.timestamp_ms;
    let v = call(&app, "POST", &format!("/v1/backups/verify/r/{ts}"), "").await;
    let id = v
        .as_i64()
        .or_else(|| v["id"].as_i64())
        .expect("a verify id");
    running.state.verifies.wait(id).await.unwrap();
    // A time after the backup ended: its state then.
    let now = chrono::Utc::now().timestamp_millis() + 1000;
    let body = format!(r#"{{"routine": "r", "time": {now}, "destination-name": "c"}}"#);
    let r = call(&app, "POST", "/v1/restore/timestamp", &body).await;
    let id = r
        .as_i64()
        .or_else(|| r["jobId"].as_i64())
        .expect("a restore id");
    running.state.restores.wait(id).await.unwrap();

    wait_for(&got, 5).await;
    // Anything more (a duplicate) would have arrived by now.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let bodies = verified(&got);
    let mut seen: Vec<(String, String, String)> = bodies
        .iter()
        .map(|b| {
            (
                b["kind"].as_str().unwrap().to_string(),
                b["routine"].as_str().unwrap_or("").to_string(),
                b["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    seen.sort();
    let want = [
        ("backup", "broken", "failure"),
        ("backup", "r", "skip"),
        ("backup", "r", "success"),
        ("restore", "r", "success"),
        ("verify", "r", "success"),
    ];
    assert_eq!(
        seen,
        want.map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string())),
        "{bodies:#?}"
    );
    let full = bodies
        .iter()
        .find(|b| b["kind"] == "backup" && b["outcome"] == "success")
        .unwrap();
    assert_eq!(full["type"], "full");
    assert_eq!(full["records"], 200);
    assert!(full["bytes"].as_u64().unwrap() > 0);
    assert!(full["duration-ms"].is_u64());
    let failed = bodies.iter().find(|b| b["outcome"] == "failure").unwrap();
    assert!(
        failed["error"].as_str().unwrap().contains("cluster"),
        "{failed}"
    );
    let restored = bodies.iter().find(|b| b["kind"] == "restore").unwrap();
    assert!(restored["records"].is_u64() && restored["job-id"].is_i64());
    assert_eq!(metric(&running, "deliveries", &["ops", "success"]), 5);
    assert_eq!(metric(&running, "attempts", &["ops"]), 5);
    // The URL and key are secrets of the config: never shown by the API.
    let shown = call(&app, "GET", "/v1/config", "").await.to_string();
    assert!(!shown.contains(KEY) && !shown.contains("/hook"), "{shown}");
    receiver.stop().await;
    running.stop(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn a_delivery_made_while_the_receiver_is_down_arrives_after_its_restart() {
    let node = AerospikeNode::start().unwrap();
    seed(&node, 50);
    let dir = tempfile::tempdir().unwrap();
    let got: Got = Arc::default();
    let receiver = Receiver::start(0, got.clone()).await;
    let port = receiver.port;
    let cfg = config(
        node.port(),
        dir.path(),
        port,
        "{base-timeout: 200, multiplier: 2, max-retries: 8}",
    );
    let store = Arc::new(ConfigStore::in_memory(cfg));
    let running = abs::service::start(store, Some("127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap();
    let app = abs::api::router(running.state.clone());
    let jobs = running.state.backups.clone();

    call(&app, "POST", "/v1/backups/full/r", "").await;
    jobs.wait("r", BackupKind::Full).await.unwrap();
    wait_for(&got, 1).await;

    receiver.stop().await;
    call(&app, "POST", "/v1/backups/incremental/r", "").await;
    jobs.wait("r", BackupKind::Incremental).await.unwrap();
    // At least one attempt failed against the closed port before the receiver is back.
    for _ in 0..100 {
        if metric(&running, "attempts", &["ops"]) >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(metric(&running, "attempts", &["ops"]) >= 3);
    assert_eq!(got.lock().unwrap().len(), 1);

    let receiver = Receiver::start(port, got.clone()).await;
    wait_for(&got, 2).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let bodies = verified(&got);
    assert_eq!(bodies.len(), 2, "one delivery per job end: {bodies:#?}");
    assert_eq!(bodies[0]["type"], "full");
    assert_eq!(bodies[1]["type"], "incremental");
    assert_ne!(bodies[0]["id"], bodies[1]["id"]);
    assert_eq!(metric(&running, "deliveries", &["ops", "success"]), 2);
    assert_eq!(metric(&running, "deliveries", &["ops", "failure"]), 0);
    receiver.stop().await;
    running.stop(Duration::from_secs(5)).await.unwrap();
}
