//! The configuration REST API end to end through the router: status codes, bodies, persistence.
//!
//! Length: one test per configuration endpoint and error case, each standing alone.

use abs::api::{self, AppState};
use abs::config::ConfigStore;
use abs::metrics::Metrics;
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tower::ServiceExt;

pub const CONFIG: &str = r#"
service:
  http: {port: 8080}
aerospike-clusters:
  main:
    seed-nodes: [{host-name: 127.0.0.1, port: 3000}]
    credentials: {user: admin, password: s3cr3t-pw}
storage:
  disk: {local-storage: {path: /tmp/abs-test-backups}}
  s3:
    s3-storage: {bucket: b, s3-region: eu-1, access-key-id: AK, secret-access-key: s3cr3t-sk}
backup-policies:
  daily: {parallel: 4}
  spare: {parallel: 1}
backup-routines:
  nightly:
    interval-cron: "@daily"
    source-cluster: main
    storage: disk
    backup-policy: daily
    namespaces: [test]
secret-agents:
  agent: {connection-type: tcp, address: 127.0.0.1, port: 5000}
"#;

pub struct Fixture {
    pub app: Router,
    pub path: PathBuf,
    pub store: Arc<ConfigStore>,
    _dir: tempfile::TempDir,
}

pub fn fixture_with(yaml: &str) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("abs.yml");
    std::fs::write(&path, yaml).unwrap();
    let store = Arc::new(ConfigStore::load_file(&path, None).unwrap().store);
    let state = AppState::new(store.clone(), Arc::new(Metrics::new()));
    state.health.set_ready();
    Fixture {
        app: api::router(state),
        path,
        store,
        _dir: dir,
    }
}

pub fn fixture() -> Fixture {
    fixture_with(CONFIG)
}

pub async fn call(
    app: &Router,
    method: &str,
    uri: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let req = Request::builder().method(method).uri(uri);
    let req = match body {
        Some(b) => req
            .header("content-type", "application/json")
            .body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    }
    .unwrap();
    send(app, req).await
}

pub async fn send(app: &Router, req: Request<Body>) -> (StatusCode, Value) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes).to_string();
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

fn file(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

fn reload(path: &Path) -> Arc<abs::config::Config> {
    ConfigStore::load_file(path, None).unwrap().store.current()
}

#[tokio::test]
async fn get_config_redacts_secrets() {
    let f = fixture();
    let (s, v) = call(&f.app, "GET", "/v1/config", None).await;
    assert_eq!(s, StatusCode::OK);
    let text = v.to_string();
    assert!(!text.contains("s3cr3t"), "{text}");
    assert_eq!(
        v["aerospike-clusters"]["main"]["credentials"]["password"],
        "[secret]"
    );
    assert_eq!(
        v["storage"]["s3"]["s3-storage"]["secret-access-key"],
        "[secret]"
    );
    assert_eq!(v["backup-routines"]["nightly"]["storage"], "disk");
}

/// One resource's five operations with their ABS status codes.
async fn crud_cycle(
    section: &str,
    config_key: &str,
    new_item: Value,
    changed: Value,
    in_use: &str,
    bad: (Value, &str),
) {
    let f = fixture();
    let base = format!("/v1/config/{section}");
    let (s, list) = call(&f.app, "GET", &base, None).await;
    assert_eq!(s, StatusCode::OK, "{section} list");
    assert!(list.as_object().unwrap().contains_key(in_use));

    let (s, _) = call(&f.app, "GET", &format!("{base}/nope"), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{section} get unknown");

    let (s, body) = call(
        &f.app,
        "POST",
        &format!("{base}/fresh"),
        Some(new_item.clone()),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{section} create: {body}");
    assert!(
        reload(&f.path).to_owned_json()[config_key]["fresh"].is_object(),
        "{section} persisted"
    );

    let (s, body) = call(
        &f.app,
        "POST",
        &format!("{base}/fresh"),
        Some(new_item.clone()),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{section} create twice");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("item already exists"),
        "{body}"
    );

    let (s, got) = call(&f.app, "GET", &format!("{base}/fresh"), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(got, new_item, "{section} get returns what was created");

    let (s, body) = call(
        &f.app,
        "PUT",
        &format!("{base}/fresh"),
        Some(changed.clone()),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{section} update: {body}");
    let (_, got) = call(&f.app, "GET", &format!("{base}/fresh"), None).await;
    assert_eq!(got, changed);

    let (s, _) = call(
        &f.app,
        "PUT",
        &format!("{base}/nope"),
        Some(changed.clone()),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{section} update unknown");

    let before = file(&f.path);
    let (s, body) = call(&f.app, "POST", &format!("{base}/broken"), Some(bad.0)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{section} bad body: {body}");
    assert_eq!(body["field"], bad.1, "{section}: {body}");
    assert_eq!(
        file(&f.path),
        before,
        "{section}: a rejected change leaves the file byte-identical"
    );

    if section != "routines" {
        let (s, body) = call(&f.app, "DELETE", &format!("{base}/{in_use}"), None).await;
        assert_eq!(s, StatusCode::CONFLICT, "{section} delete in use: {body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("backup-routines.nightly"),
            "{body}"
        );
    }

    let (s, _) = call(&f.app, "DELETE", &format!("{base}/fresh"), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = call(&f.app, "DELETE", &format!("{base}/fresh"), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(
        reload(&f.path).to_owned_json()[config_key]
            .get("fresh")
            .is_none()
    );
}

trait ToJson {
    fn to_owned_json(&self) -> Value;
}
impl ToJson for Arc<abs::config::Config> {
    fn to_owned_json(&self) -> Value {
        serde_json::to_value(&**self).unwrap()
    }
}

#[tokio::test]
async fn clusters_crud() {
    crud_cycle(
        "clusters",
        "aerospike-clusters",
        json!({"seed-nodes": [{"host-name": "10.0.0.1", "port": 3000}], "max-parallel-scans": 4}),
        json!({"seed-nodes": [{"host-name": "10.0.0.2", "port": 3100}], "label": "two"}),
        "main",
        (
            json!({"seed-nodes": [{"host-name": "h", "port": 3000}], "conn-timeot": 5}),
            "aerospike-clusters.broken.conn-timeot",
        ),
    )
    .await;
}

#[tokio::test]
async fn storage_crud() {
    crud_cycle(
        "storage",
        "storage",
        json!({"local-storage": {"path": "/tmp/x"}}),
        json!({"gcp-storage": {"bucket-name": "bk", "path": "p"}}),
        "disk",
        (
            json!({"s3-storage": {"bucket": "b"}}),
            "storage.broken.s3-storage",
        ),
    )
    .await;
}

#[tokio::test]
async fn policies_crud() {
    crud_cycle(
        "policies",
        "backup-policies",
        json!({"parallel": 2, "compression": {"mode": "ZSTD", "level": 5}}),
        json!({"file-limit": 100, "retention": {"full": 3, "incremental": 1}}),
        "daily",
        (json!({"parallel": 0}), "backup-policies.broken.parallel"),
    )
    .await;
}

#[tokio::test]
async fn routines_crud() {
    crud_cycle(
        "routines",
        "backup-routines",
        json!({"interval-cron": "0 0 1 * * ?", "source-cluster": "main", "storage": "disk", "namespaces": []}),
        json!({"interval-cron": "@hourly", "source-cluster": "main", "storage": "s3", "namespaces": ["a"], "set-list": ["s"]}),
        "nightly",
        (
            json!({"interval-cron": "@daily", "source-cluster": "main", "storage": "s4", "namespaces": []}),
            "backup-routines.broken.storage",
        ),
    )
    .await;
}

#[tokio::test]
async fn secret_agents_crud() {
    let f = fixture();
    // Make the agent used, so delete must be refused.
    let (s, _) = call(
        &f.app,
        "PUT",
        "/v1/config/routines/nightly",
        Some(
            json!({"interval-cron": "@daily", "source-cluster": "main", "storage": "disk",
                    "namespaces": [], "secret-agent": "agent"}),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, body) = call(&f.app, "DELETE", "/v1/config/secret-agents/agent", None).await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");
    let (s, _) = call(
        &f.app,
        "POST",
        "/v1/config/secret-agents/other",
        Some(json!({"connection-type": "unix", "address": "/run/agent.sock"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, body) = call(
        &f.app,
        "POST",
        "/v1/config/secret-agents/bad",
        Some(json!({"connection-type": "tcp", "address": "h"})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(body["field"], "secret-agents.bad.port");
    let (s, list) = call(&f.app, "GET", "/v1/config/secret-agents", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list.as_object().unwrap().len(), 2);
    let (s, _) = call(&f.app, "DELETE", "/v1/config/secret-agents/other", None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn yaml_bodies_are_accepted() {
    let f = fixture();
    let req = Request::builder()
        .method("POST")
        .uri("/v1/config/storage/yaml")
        .header("content-type", "application/yaml")
        .body(Body::from("local-storage:\n  path: /tmp/y\n"))
        .unwrap();
    let (s, body) = send(&f.app, req).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let (_, got) = call(&f.app, "GET", "/v1/config/storage/yaml", None).await;
    assert_eq!(got, json!({"local-storage": {"path": "/tmp/y"}}));
}

#[tokio::test]
async fn malformed_and_empty_bodies_are_400() {
    let f = fixture();
    let req = Request::builder()
        .method("POST")
        .uri("/v1/config/policies/x")
        .header("content-type", "application/json")
        .body(Body::from("{not json"))
        .unwrap();
    let (s, body) = send(&f.app, req).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(body["error"].is_string());
    let (s, body) = call(&f.app, "PUT", "/v1/config", None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("body is required"));
}

/// A body of the wrong JSON type at any depth (an array where the document wants an object,
/// a string where it wants a list, ...) is a 400 naming the field, and nothing is saved.
#[tokio::test]
async fn wrong_json_types_are_400_naming_the_field() {
    let f = fixture();
    let before = file(&f.path);
    let cases = [
        (
            "POST",
            "/v1/config/policies/x",
            json!([null, null]),
            "backup-policies.x",
        ),
        (
            "POST",
            "/v1/config/policies/x",
            json!("policy"),
            "backup-policies.x",
        ),
        (
            "POST",
            "/v1/config/policies/x",
            json!({"retry-policy": [1, 2]}),
            "backup-policies.x.retry-policy",
        ),
        (
            "POST",
            "/v1/config/clusters/c",
            json!({"seed-nodes": {"host-name": "h"}}),
            "aerospike-clusters.c.seed-nodes",
        ),
        (
            "POST",
            "/v1/config/clusters/c",
            json!({"seed-nodes": [[1]]}),
            "aerospike-clusters.c.seed-nodes[0]",
        ),
        (
            "POST",
            "/v1/config/routines/r",
            json!({"namespaces": "test", "source-cluster": "main", "storage": "disk",
                   "backup-policy": "daily", "interval-cron": "@daily"}),
            "backup-routines.r.namespaces",
        ),
    ];
    for (method, uri, body, field) in cases {
        let (s, b) = call(&f.app, method, uri, Some(body.clone())).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{method} {uri} {body}: {b}");
        assert_eq!(b["field"], field, "{method} {uri} {body}: {b}");
    }
    let (_, mut cfg) = call(&f.app, "GET", "/v1/config", None).await;
    cfg["service"]["http"] = json!([null, null]);
    let (s, b) = call(&f.app, "PUT", "/v1/config", Some(cfg)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert_eq!(b["field"], "service.http", "{b}");
    assert!(
        b["error"].as_str().unwrap().contains("must be object"),
        "{b}"
    );
    assert_eq!(file(&f.path), before, "nothing saved");
    // Scalars the parser reads leniently, as ABS files hold them, still work.
    let (s, b) = call(
        &f.app,
        "POST",
        "/v1/config/policies/lenient",
        Some(json!({"parallel": "4", "compression": {"mode": "zstd"}})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (_, got) = call(&f.app, "GET", "/v1/config/policies/lenient", None).await;
    assert_eq!(got["parallel"], 4, "{got}");
    // Enum values come back spelled as they were sent (the config round trip).
    assert_eq!(got["compression"]["mode"], "zstd", "{got}");
}

#[tokio::test]
async fn put_whole_config_persists_and_keeps_redacted_secrets() {
    let f = fixture();
    let (_, mut cfg) = call(&f.app, "GET", "/v1/config", None).await;
    cfg["backup-policies"]["daily"]["parallel"] = json!(2);
    let (s, body) = call(&f.app, "PUT", "/v1/config", Some(cfg.clone())).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let saved = reload(&f.path);
    assert_eq!(saved.backup_policies["daily"].parallel, Some(2));
    let pw = saved.aerospike_clusters["main"]
        .credentials
        .as_ref()
        .unwrap()
        .password
        .as_ref()
        .unwrap();
    assert_eq!(
        pw.expose(),
        "s3cr3t-pw",
        "GET → edit → PUT keeps the password"
    );

    // A placeholder with no stored secret behind it is an error, not a literal password.
    cfg["aerospike-clusters"]["new"] = json!({"seed-nodes": [{"host-name": "h", "port": 1}],
        "credentials": {"user": "u", "password": "[secret]"}});
    let before = file(&f.path);
    let (s, body) = call(&f.app, "PUT", "/v1/config", Some(cfg)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["field"], "aerospike-clusters.new.credentials.password");
    assert_eq!(file(&f.path), before);
}

#[tokio::test]
async fn put_invalid_config_lists_every_error() {
    let f = fixture();
    let before = file(&f.path);
    let bad = json!({
        "aerospike-clusters": {"c": {"seed-nodes": []}},
        "backup-routines": {"r": {"interval-cron": "nope", "source-cluster": "c", "storage": "s", "namespaces": []}}
    });
    let (s, body) = call(&f.app, "PUT", "/v1/config", Some(bad)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        vec![
            "aerospike-clusters.c.seed-nodes",
            "backup-routines.r.storage",
            "backup-routines.r.interval-cron"
        ]
    );
    assert_eq!(file(&f.path), before);
}

#[tokio::test]
async fn apply_rereads_the_file() {
    let f = fixture();
    let edited = CONFIG.replace("daily: {parallel: 4}", "daily: {parallel: 6}");
    std::fs::write(&f.path, &edited).unwrap();
    let (s, _) = call(&f.app, "POST", "/v1/config/apply", None).await;
    assert_eq!(s, StatusCode::OK);
    let (_, p) = call(&f.app, "GET", "/v1/config/policies/daily", None).await;
    assert_eq!(p["parallel"], 6);

    std::fs::write(&f.path, CONFIG.replace("storage: disk", "storage: gone")).unwrap();
    let (s, body) = call(&f.app, "POST", "/v1/config/apply", None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(body["field"], "backup-routines.nightly.storage");
    let (_, r) = call(&f.app, "GET", "/v1/config/routines/nightly", None).await;
    assert_eq!(r["storage"], "disk", "a bad file is not applied");
}

#[tokio::test]
async fn enable_and_disable_routines() {
    let f = fixture();
    let (s, _) = call(&f.app, "PUT", "/v1/config/routines/nightly/disable", None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert!(*reload(&f.path).backup_routines["nightly"].disabled);
    let (_, r) = call(&f.app, "GET", "/v1/config/routines/nightly", None).await;
    assert_eq!(r["disabled"], true);
    let (s, _) = call(&f.app, "PUT", "/v1/config/routines/nightly/enable", None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert!(!*reload(&f.path).backup_routines["nightly"].disabled);
    let (s, _) = call(&f.app, "PUT", "/v1/config/routines/ghost/enable", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn concurrent_api_updates_all_land() {
    let f = fixture();
    let mut tasks = Vec::new();
    for i in 0..16 {
        let app = f.app.clone();
        tasks.push(tokio::spawn(async move {
            call(
                &app,
                "POST",
                &format!("/v1/config/policies/p{i}"),
                Some(json!({"parallel": i + 1})),
            )
            .await
            .0
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::CREATED);
    }
    assert_eq!(reload(&f.path).backup_policies.len(), 18);
}

#[tokio::test]
async fn system_routes() {
    let f = fixture();
    let (s, body) = call(&f.app, "GET", "/", None).await;
    assert_eq!((s, body), (StatusCode::OK, Value::String(String::new())));
    let (s, body) = call(&f.app, "GET", "/health", None).await;
    assert_eq!((s, body), (StatusCode::OK, Value::String("Ok".into())));
    let (s, body) = call(&f.app, "GET", "/ready", None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(body.as_str().unwrap().starts_with("Ok"));
    let (s, v) = call(&f.app, "GET", "/version", None).await;
    assert_eq!(s, StatusCode::OK);
    // ABS's form, the ABS release first: `v3.7.0+rs.<ours>`.
    assert_eq!(
        v["version"],
        format!("v3.7.0+rs.{}", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(v.as_object().unwrap().len(), 3, "exactly ABS's fields: {v}");
    assert!(v["commit"].is_string() && v["build-time"].is_string());
    let (s, m) = call(&f.app, "GET", "/metrics", None).await;
    assert_eq!(s, StatusCode::OK);
    let m = m.as_str().unwrap();
    assert!(m.contains("aerospike_backup_service_runs_total 0"));
    assert!(m.contains("aerospike_backup_service_http_requests_total{method=\"GET\",route=\"/version\",status=\"200\"} 1"), "{m}");
    let (s, doc) = call(&f.app, "GET", "/api-docs/openapi.json", None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(doc["paths"]["/v1/config/clusters/{name}"]["delete"].is_object());
    let (s, page) = call(&f.app, "GET", "/api-docs/", None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        page.as_str()
            .unwrap()
            .contains("/v1/config/routines/{name}/enable")
    );
}

#[tokio::test]
async fn ready_is_503_until_started() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.yml");
    std::fs::write(&path, CONFIG).unwrap();
    let store = Arc::new(ConfigStore::load_file(&path, None).unwrap().store);
    let state = AppState::new(store, Arc::new(Metrics::new()));
    let app = api::router(state.clone());
    let (s, _) = call(&app, "GET", "/ready", None).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    state.health.set_cluster("main", Some("unreachable".into()));
    state.health.set_ready();
    let (s, body) = call(&app, "GET", "/ready", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body, Value::String("Ok\ncluster main: unreachable".into()));
}

#[tokio::test]
async fn context_path_prefixes_every_route() {
    let f = fixture_with(&CONFIG.replace(
        "http: {port: 8080}",
        "http: {port: 8080, context-path: /abs}",
    ));
    let (s, _) = call(&f.app, "GET", "/abs/health", None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = call(&f.app, "GET", "/abs/v1/config/routines/nightly", None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = call(&f.app, "GET", "/health", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = call(&f.app, "GET", "/v1/config", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn rate_limit_answers_429_per_client() {
    let f = fixture_with(&CONFIG.replace(
        "http: {port: 8080}",
        "http: {port: 8080, rate: {tps: 1, size: 3, white-list: [10.9.9.9]}}",
    ));
    let req = |ip: &str| {
        let mut r = Request::builder()
            .uri("/health")
            .body(Body::empty())
            .unwrap();
        let addr: SocketAddr = format!("{ip}:4000").parse().unwrap();
        r.extensions_mut().insert(ConnectInfo(addr));
        r
    };
    for _ in 0..3 {
        assert_eq!(send(&f.app, req("10.1.1.1")).await.0, StatusCode::OK);
    }
    let (s, body) = send(&f.app, req("10.1.1.1")).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["error"], "Too Many Requests");
    assert_eq!(send(&f.app, req("10.1.1.2")).await.0, StatusCode::OK);
    for _ in 0..10 {
        assert_eq!(
            send(&f.app, req("10.9.9.9")).await.0,
            StatusCode::OK,
            "white-listed"
        );
    }
    // A saved change of the rate waits for the next start, as the listener's does: the
    // white-listed client is not locked out by a config that no longer lists it.
    let mut cfg = (*f.store.current()).clone();
    cfg.service.http.rate = Some(abs::config::RateLimiterConfig {
        tps: Some(1),
        size: Some(1),
        white_list: Default::default(),
    });
    f.store.replace(cfg).await.unwrap();
    for _ in 0..5 {
        assert_eq!(send(&f.app, req("10.9.9.9")).await.0, StatusCode::OK);
    }
}

#[tokio::test]
async fn store_changes_reach_subscribers_and_running_work_keeps_its_arc() {
    let f = fixture();
    let snapshot = f.store.current();
    let mut rx = f.store.subscribe();
    let (s, _) = call(
        &f.app,
        "PUT",
        "/v1/config/policies/daily",
        Some(json!({"parallel": 9})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    rx.changed().await.unwrap();
    assert_eq!(rx.borrow().backup_policies["daily"].parallel, Some(9));
    assert_eq!(snapshot.backup_policies["daily"].parallel, Some(4));
}

/// Plugins named by the config are checked against the registry before anything is saved.
#[tokio::test]
async fn plugin_references_are_checked_before_saving() {
    use abs::plugin_check::RegistryCheck;
    use abs::plugins::{Runtime, RuntimeConfig};
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("plugin-cwasm")),
        ..RuntimeConfig::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("abs.yml");
    std::fs::write(&path, CONFIG).unwrap();
    let check = Arc::new(RegistryCheck::new(runtime));
    let store = Arc::new(ConfigStore::load_file(&path, Some(check)).unwrap().store);
    let app = api::router(AppState::new(store, Arc::new(Metrics::new())));
    let before = file(&path);

    let cases = [
        (
            "/v1/config/policies/p1",
            json!({"pipeline": [{"plugin": "no-such-codec"}]}),
            "backup-policies.p1.pipeline[0].plugin",
        ),
        (
            "/v1/config/policies/p2",
            json!({"pipeline": [{"plugin": "compression-zstd", "options": {"level": 99}}]}),
            "backup-policies.p2.pipeline[0].options",
        ),
        (
            "/v1/config/policies/p3",
            json!({"pipeline": [{"plugin": "storage-local", "options": {"path": "/tmp"}}]}),
            "backup-policies.p3.pipeline[0].plugin",
        ),
        (
            "/v1/config/storage/s1",
            json!({"plugin-storage": {"plugin": "compression-zstd"}}),
            "storage.s1.plugin-storage.plugin",
        ),
    ];
    for (uri, body, field) in cases {
        let (s, b) = call(&app, "POST", uri, Some(body)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{uri}: {b}");
        assert_eq!(b["field"], field, "{uri}: {b}");
    }
    // A plugin file whose hash does not match.
    let wasm = dir.path().join("x.wasm");
    std::fs::write(&wasm, b"\0asm\x0d\0\x01\0").unwrap();
    let mut cfg: Value = serde_json::to_value(&*reload(&path)).unwrap();
    cfg["plugins"] = json!({"x": {"path": wasm.display().to_string(), "sha256": "ab".repeat(32)}});
    let (s, b) = call(&app, "PUT", "/v1/config", Some(cfg)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert_eq!(b["field"], "plugins.x.sha256", "{b}");
    assert!(
        b.get("errors").is_none(),
        "reported once, not again by the registry: {b}"
    );
    assert_eq!(file(&path), before, "nothing rejected was saved");

    // A valid pipeline is accepted and saved.
    let (s, b) = call(
        &app,
        "POST",
        "/v1/config/policies/ok",
        Some(json!({"pipeline": [{"plugin": "compression-zstd", "options": {"level": 5}}]})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert!(reload(&path).backup_policies["ok"].pipeline.is_some());
    // The short names of the defaults work too.
    let (s, b) = call(
        &app,
        "POST",
        "/v1/config/policies/short",
        Some(json!({"pipeline": [{"plugin": "zstd", "options": {"level": 1}}]})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");

    // The same pin, edited into the file and applied: refused the same way, and the running
    // config keeps what it had.
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(&format!(
        "plugins:\n  x: {{path: \"{}\", sha256: \"{}\"}}\n",
        wasm.display(),
        "ab".repeat(32)
    ));
    std::fs::write(&path, text).unwrap();
    let (s, b) = call(&app, "POST", "/v1/config/apply", None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert_eq!(b["field"], "plugins.x.sha256", "{b}");
    let (_, running) = call(&app, "GET", "/v1/config", None).await;
    assert!(running["plugins"].get("x").is_none(), "{running}");
}

fn operator_config(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data/operator-config")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The operator compares `GET /v1/config` with the file it wrote (both decoded to plain JSON
/// values): it must be equal, with no section or default added and the password as written
/// once the file asks for secrets in answers.
#[tokio::test]
async fn get_config_answers_the_loaded_file_key_for_key() {
    let yaml = operator_config("merged.yml").replace(
        "service:\n  http:\n",
        "service:\n  reveal-secrets-in-api: true\n  http:\n",
    );
    let f = fixture_with(&yaml);
    let want: Value = serde_yaml::from_str(&yaml).unwrap();
    let (s, got) = call(&f.app, "GET", "/v1/config", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(got, want);
    let (_, clusters) = call(&f.app, "GET", "/v1/config/clusters", None).await;
    assert_eq!(clusters, want["aerospike-clusters"]);
    // After an apply of the same file, still the same.
    let (s, _) = call(&f.app, "POST", "/v1/config/apply", None).await;
    assert_eq!(s, StatusCode::OK);
    let (_, again) = call(&f.app, "GET", "/v1/config", None).await;
    assert_eq!(again, want);

    // The default: every other key as loaded, the password as "[secret]".
    let yaml = operator_config("service-spec.yml");
    let f = fixture_with(&yaml);
    let (_, got) = call(&f.app, "GET", "/v1/config", None).await;
    assert_eq!(got, serde_yaml::from_str::<Value>(&yaml).unwrap());
    let f = fixture_with(&operator_config("merged.yml"));
    let (_, got) = call(&f.app, "GET", "/v1/config", None).await;
    let creds = &got["aerospike-clusters"]["aerospike-backup1-test-cluster"]["credentials"];
    assert_eq!(creds["password"], "[secret]", "{got}");
    assert!(!got.to_string().contains("admin123"), "{got}");
    let (_, one) = call(
        &f.app,
        "GET",
        "/v1/config/clusters/aerospike-backup1-test-cluster",
        None,
    )
    .await;
    assert_eq!(one["credentials"]["password"], "[secret]", "{one}");
}

/// The operator's apply loop, as its reconciler runs it against the ConfigMap mounted as the
/// service's file: the file changes (a backup added, its cluster switched to TLS, the backup
/// removed), `POST /v1/config/apply` must answer 200, then `GET /v1/config` must equal the
/// file decoded to plain values (its `reflect.DeepEqual` after `sigs.k8s.io/yaml`), at every
/// step; a second check with nothing changed finds it synced too (no restart of the pods).
#[tokio::test]
async fn the_operators_apply_loop_finds_the_file_applied_at_every_step() {
    // The operator mounts the cluster's TLS secret at /etc/aerospike/secret; here a folder
    // holds the same file names (the test certificates).
    let secret = tempfile::tempdir().unwrap();
    let tls = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/tls");
    std::fs::create_dir(secret.path().join("cacerts")).unwrap();
    for (from, to) in [
        ("client.pem", "svc_cluster_chain.pem"),
        ("client.key", "svc_key.pem"),
        ("ca.pem", "cacerts/ca.pem"),
    ] {
        std::fs::copy(tls.join(from), secret.path().join(to)).unwrap();
    }
    let reveal = |yaml: String| {
        yaml.replacen(
            "service:\n  http:\n",
            "service:\n  reveal-secrets-in-api: true\n  http:\n",
            1,
        )
        .replace(
            "/etc/aerospike/secret",
            &secret.path().display().to_string(),
        )
    };
    let first = reveal(operator_config("service-spec.yml"));
    let f = fixture_with(&first);
    let synced = |got: &Value, file: &str| *got == serde_yaml::from_str::<Value>(file).unwrap();
    let (_, got) = call(&f.app, "GET", "/v1/config", None).await;
    assert!(synced(&got, &first), "{got}");
    for step in ["merged.yml", "merged-tls.yml", "service-spec.yml"] {
        let file = reveal(operator_config(step));
        std::fs::write(&f.path, &file).unwrap();
        // Before the apply the service still runs the old file: the operator sees a mismatch.
        let (_, before) = call(&f.app, "GET", "/v1/config", None).await;
        assert!(!synced(&before, &file), "{step}: no change seen");
        let (s, b) = call(&f.app, "POST", "/v1/config/apply", None).await;
        assert_eq!(s, StatusCode::OK, "{step}: {b}");
        let (s, got) = call(&f.app, "GET", "/v1/config", None).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(got, serde_yaml::from_str::<Value>(&file).unwrap(), "{step}");
        // The next reconcile: nothing to do.
        let (_, again) = call(&f.app, "GET", "/v1/config", None).await;
        assert!(synced(&again, &file), "{step}");
    }
}
