//! `service.http.auth`: bearer tokens, a read-only role, open probes, 401/403 in our shape.

use std::sync::Arc;

use abs::api::{self, AppState};
use abs::config::{Config, ConfigStore, Format};
use abs::metrics::Metrics;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::api_config::send;

const ADMIN: &str = "admin-token-0123456789";
const READER: &str = "reader-token-abcdef";

fn app(dir: &std::path::Path, context_path: &str) -> axum::Router {
    let reader_file = dir.join("reader.token");
    std::fs::write(&reader_file, format!("{READER}\n")).unwrap();
    let yaml = format!(
        r#"
service:
  http:
    context-path: {context_path}
    auth:
      tokens:
        - {{name: ops, sha256: "{}"}}
        - {{name: dashboards, token-file: "{}", role: read-only}}
storage:
  s: {{local-storage: {{path: "{}"}}}}
"#,
        hex::encode(Sha256::digest(ADMIN.as_bytes())),
        reader_file.display(),
        dir.join("backups").display()
    );
    let cfg = abs::config::parse::<Config>(&yaml, Format::Yaml).expect("config parses");
    abs::config::validate(&cfg).expect("valid");
    let store = Arc::new(ConfigStore::in_memory(cfg));
    api::router(AppState::new(store, Arc::new(Metrics::new())))
}

async fn call(
    app: &axum::Router,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let req = match body {
        Some(b) => req
            .header("content-type", "application/json")
            .body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    }
    .unwrap();
    send(app, req).await
}

#[tokio::test]
async fn tokens_guard_the_api_and_the_read_only_role_only_reads() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), "/");

    // The probes and the metrics stay open (`/ready` answers 503 here: no service runs).
    for uri in ["/health", "/ready", "/metrics"] {
        let (s, b) = call(&app, "GET", uri, None, None).await;
        assert!(
            s.is_success() || s == StatusCode::SERVICE_UNAVAILABLE,
            "{uri}: {s} {b}"
        );
    }
    // Everything else needs a token: none, a wrong one, or a non-bearer scheme → 401.
    for token in [None, Some("wrong"), Some("")] {
        let (s, b) = call(&app, "GET", "/v1/config", token, None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{token:?}: {b}");
        assert_eq!(b["field"], "Authorization", "{b}");
        assert!(!b.to_string().contains(ADMIN) && !b.to_string().contains(READER));
    }
    // The admin token does everything.
    let (s, _) = call(&app, "GET", "/v1/config", Some(ADMIN), None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, b) = call(
        &app,
        "POST",
        "/v1/config/policies/nightly",
        Some(ADMIN),
        Some(json!({"parallel": 2})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    // The read-only one (from its file) reads, and changes nothing.
    let (s, cfg) = call(&app, "GET", "/v1/config", Some(READER), None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(cfg["backup-policies"].get("nightly").is_some(), "{cfg}");
    for (method, uri, body) in [
        (
            "POST",
            "/v1/config/policies/other",
            Some(json!({"parallel": 1})),
        ),
        ("DELETE", "/v1/config/policies/nightly", None),
        ("PUT", "/v1/config", Some(cfg.clone())),
        ("POST", "/v1/config/apply", None),
    ] {
        let (s, b) = call(&app, method, uri, Some(READER), body).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{method} {uri}: {b}");
        assert!(b["error"].as_str().unwrap().contains("dashboards"), "{b}");
    }
    let (_, after) = call(&app, "GET", "/v1/config", Some(ADMIN), None).await;
    assert_eq!(after, cfg, "a refused request changed nothing");
}

#[tokio::test]
async fn under_a_context_path_the_probes_stay_open_and_the_rest_is_guarded() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), "/abs");
    let (s, _) = call(&app, "GET", "/abs/health", None, None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = call(&app, "GET", "/abs/v1/config", None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = call(&app, "GET", "/abs/v1/config", Some(ADMIN), None).await;
    assert_eq!(s, StatusCode::OK);
}

#[test]
fn bad_token_entries_name_their_field() {
    let yaml = r#"
service:
  http:
    auth:
      tokens:
        - {name: a, sha256: "abc"}
        - {name: a, token-file: /t, sha256: "00"}
        - {name: b, role: owner, token-file: /t}
"#;
    let cfg = abs::config::parse::<Config>(yaml, Format::Yaml).unwrap();
    let errs = abs::config::validate(&cfg).unwrap_err();
    let text: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
    for field in [
        "service.http.auth.tokens[0].sha256",
        "service.http.auth.tokens[1].name",
        "service.http.auth.tokens[1]",
        "service.http.auth.tokens[2].role",
    ] {
        assert!(
            text.iter().any(|t| t.starts_with(field)),
            "{field}: {text:?}"
        );
    }
}
