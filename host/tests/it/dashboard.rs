//! The dashboard's server side: its files are served under the context path without a token
//! (and nothing else is), with a strict content security policy; the files endpoint lists a
//! backup's files with the SHA-256 that matches the stored bytes. The pages themselves are
//! tested in a real browser by `scripts/ui-test`.

use std::sync::Arc;

use abs::api::{self, AppState};
use abs::config::{Config, ConfigStore, Format};
use abs::jobs::registry::JobOutcome;
use abs::metrics::Metrics;
use abs::storage::layout::BackupKind;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};
use testkit::AerospikeNode;
use tower::ServiceExt;

use crate::backup::seed;

const ADMIN: &str = "dash-admin-token-5b1e";

async fn get(
    app: &axum::Router,
    uri: &str,
    token: Option<&str>,
) -> (StatusCode, axum::http::HeaderMap, String) {
    let mut req = Request::builder().uri(uri);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let (parts, body) = resp.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    (
        parts.status,
        parts.headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

#[tokio::test]
async fn dashboard_files_are_served_under_the_context_path_without_a_token() {
    let yaml = format!(
        r#"
service:
  http:
    context-path: /abs
    auth:
      tokens:
        - {{name: ops, sha256: "{}"}}
"#,
        hex::encode(Sha256::digest(ADMIN.as_bytes()))
    );
    let cfg = abs::config::parse::<Config>(&yaml, Format::Yaml).unwrap();
    let app = api::router(AppState::new(
        Arc::new(ConfigStore::in_memory(cfg)),
        Arc::new(Metrics::new()),
    ));
    let (s, h, body) = get(&app, "/abs/ui/", None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(h["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(
        h["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'self'")
    );
    assert!(body.contains("<script src=\"app.js\""), "{body}");
    let (s, h, js) = get(&app, "/abs/ui/app.js", None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        h["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    // The page reaches the API relative to itself, so any context path works.
    assert!(js.contains("new URL('../', location.href)"));
    let (s, _, _) = get(&app, "/abs/ui/app.css", None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, h, _) = get(&app, "/abs/ui", None).await;
    assert_eq!(s, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(h["location"], "ui/");
    // Only the files are open: the API the page calls is not, nor an unknown /ui path.
    let (s, _, _) = get(&app, "/abs/v1/config", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _, _) = get(&app, "/abs/v1/config", Some(ADMIN)).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, _) = get(&app, "/abs/ui/nothing-here", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, _) = get(&app, "/ui/", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "outside the context path");
}

#[tokio::test]
async fn dashboard_files_endpoint_lists_each_file_with_its_sha256() {
    let node = AerospikeNode::start().unwrap();
    seed(&node, 300);
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        r#"
aerospike-clusters:
  c: {{seed-nodes: [{{host-name: 127.0.0.1, port: {}}}]}}
storage:
  s: {{local-storage: {{path: "{}"}}}}
backup-policies:
  p: {{parallel: 2}}
backup-routines:
  r: {{interval-cron: "@yearly", source-cluster: c, storage: s, backup-policy: p, namespaces: [test]}}
"#,
        node.port(),
        dir.path().display()
    );
    let cfg = abs::config::parse::<Config>(&yaml, Format::Yaml).unwrap();
    let store = Arc::new(ConfigStore::in_memory(cfg));
    let mut state = AppState::new(store.clone(), Arc::new(Metrics::new()));
    let ctx = Arc::new(abs::jobs::backup::EngineContext::new(
        crate::backup::plugins(),
        Arc::new(abs::jobs::backup::SystemClock),
    ));
    state.set_jobs(abs::jobs::registry::JobRegistry::with_context(
        store, None, ctx,
    ));
    let app = api::router(state.clone());
    let resp = app
        .clone()
        .oneshot(
            Request::builder()
                .method("POST")
                .uri("/v1/backups/full/r")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let Some(JobOutcome::Success(report)) = state.backups.wait("r", BackupKind::Full).await else {
        panic!("the backup succeeds");
    };
    let ts = report.timestamp_ms;
    let (s, _, body) = get(&app, &format!("/v1/backups/files/r/{ts}"), None).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let folders: serde_json::Value = serde_json::from_str(&body).unwrap();
    let folder = &folders[0];
    assert_eq!(folder["kind"], "full");
    assert_eq!(folder["algorithm"], "sha256");
    let files = folder["files"].as_array().unwrap();
    assert!(
        files
            .iter()
            .any(|f| f["name"].as_str().unwrap().ends_with(".asb")),
        "{body}"
    );
    let key = folder["key"].as_str().unwrap();
    for f in files {
        let bytes = std::fs::read(dir.path().join(key).join(f["name"].as_str().unwrap())).unwrap();
        assert_eq!(f["size"], bytes.len());
        assert_eq!(f["sha256"], hex::encode(Sha256::digest(&bytes)), "{f}");
    }
    let (s, _, _) = get(&app, &format!("/v1/backups/files/r/{}", ts + 1), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, _) = get(&app, "/v1/backups/files/r/yesterday", None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _, _) = get(&app, &format!("/v1/backups/files/nope/{ts}"), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}
