//! Bad input refused (issue 15): content types other than JSON/YAML, numbers outside their
//! meaningful range, entity names outside the safe set. Each refusal is a 4xx in our error
//! shape naming the field, and nothing is saved.

use crate::api_config::{call, fixture, send};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::json;

fn post(uri: &str, content_type: Option<&str>, body: &str) -> Request<Body> {
    let mut req = Request::builder().method("POST").uri(uri);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    req.body(Body::from(body.to_string())).unwrap()
}

#[tokio::test]
async fn non_json_content_types_are_415_and_nothing_is_saved() {
    let f = fixture();
    let before = std::fs::read(&f.path).unwrap();
    for ct in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/xml",
        "",
    ] {
        let (s, body) = send(
            &f.app,
            post("/v1/config/policies/x", Some(ct), r#"{"parallel": 2}"#),
        )
        .await;
        assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{ct}: {body}");
        assert_eq!(body["field"], "Content-Type", "{ct}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains("application/json"),
            "{body}"
        );
    }
    // The same on a restore request, which is refused before anything starts.
    let (s, body) = send(
        &f.app,
        post(
            "/v1/restore/full",
            Some("text/plain"),
            r#"{"backup-data-path": "x"}"#,
        ),
    )
    .await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
    assert_eq!(std::fs::read(&f.path).unwrap(), before, "nothing saved");
}

#[tokio::test]
async fn json_types_with_parameters_and_a_missing_type_are_accepted() {
    let f = fixture();
    for (name, ct) in [
        ("a", Some("application/json; charset=utf-8")),
        ("b", Some("Application/JSON")),
        ("c", Some("application/vnd.abs+json")),
        ("d", None),
    ] {
        let (s, body) = send(
            &f.app,
            post(
                &format!("/v1/config/policies/{name}"),
                ct,
                r#"{"parallel": 2}"#,
            ),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{ct:?}: {body}");
    }
    let (_, got) = call(&f.app, "GET", "/v1/config/policies/d", None).await;
    assert_eq!(got, json!({"parallel": 2}));
    let (s, body) = send(
        &f.app,
        post("/v1/config/policies/e", Some("text/yaml"), "parallel: 3\n"),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
}

/// Every operation that takes a body documents the 415 with our error shape.
#[test]
fn every_body_taking_operation_documents_415() {
    let doc = serde_json::to_value(abs::api::openapi::document()).unwrap();
    let mut seen = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if op.get("requestBody").is_none() {
                continue;
            }
            seen += 1;
            let r = &op["responses"]["415"];
            assert_eq!(
                r["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/ErrorBody",
                "{method} {path}: {r}"
            );
        }
    }
    assert!(seen >= 14, "only {seen} operations take a body");
}

/// Out-of-range numbers in an entity body are 400 naming the field, and nothing is saved.
#[tokio::test]
async fn out_of_range_numbers_are_400_naming_the_field() {
    let f = fixture();
    let before = std::fs::read(&f.path).unwrap();
    let cases = [
        (
            "/v1/config/policies/x",
            json!({"retry-delay": 2066540437521813504u64}),
            "backup-policies.x.retry-delay",
        ),
        (
            "/v1/config/policies/x",
            json!({"parallel": 0}),
            "backup-policies.x.parallel",
        ),
        (
            "/v1/config/policies/x",
            json!({"parallel": 100000}),
            "backup-policies.x.parallel",
        ),
        (
            "/v1/config/policies/x",
            json!({"retry-policy": {"max-retries": 1000000}}),
            "backup-policies.x.retry-policy.max-retries",
        ),
        (
            "/v1/config/policies/x",
            json!({"retention": {"full": 0}}),
            "backup-policies.x.retention.full",
        ),
        (
            "/v1/config/policies/x",
            json!({"socket-timeout": 604800001u64}),
            "backup-policies.x.socket-timeout",
        ),
        (
            "/v1/config/clusters/x",
            json!({"seed-nodes": [{"host-name": "h", "port": 70000}]}),
            "aerospike-clusters.x.seed-nodes[0].port",
        ),
        (
            "/v1/config/secret-agents/x",
            json!({"connection-type": "tcp", "address": "h", "port": 5000, "timeout": 0}),
            "secret-agents.x.timeout",
        ),
        (
            "/v1/config/storage/x",
            json!({"s3-storage": {"bucket": "b", "s3-region": "r", "max-async-connections": 0}}),
            "storage.x.s3-storage.max-async-connections",
        ),
    ];
    for (uri, body, field) in cases {
        let (s, got) = call(&f.app, "POST", uri, Some(body.clone())).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{uri} {body}: {got}");
        assert_eq!(got["field"], field, "{uri} {body}: {got}");
        assert!(
            got["error"].as_str().unwrap().contains("must be between"),
            "{got}"
        );
    }
    assert_eq!(std::fs::read(&f.path).unwrap(), before, "nothing saved");
    // The bounds themselves are accepted.
    let (s, got) = call(
        &f.app,
        "POST",
        "/v1/config/policies/edge",
        Some(
            json!({"parallel": 4096, "retry-delay": 604800000u64, "bandwidth": 0,
            "records-per-second": 0, "retention": {"full": 1, "incremental": 0}}),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{got}");
}

/// A restore request's policy, inline cluster and inline storage are held to the same ranges
/// before anything starts.
#[tokio::test]
async fn restore_policy_numbers_are_bounded() {
    let f = fixture();
    let (s, got) = call(
        &f.app,
        "POST",
        "/v1/restore/full",
        Some(json!({"backup-data-path": "x", "destination-name": "main",
            "source-name": "disk", "policy": {"total-timeout": 9223372036854775807u64}})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{got}");
    assert_eq!(got["field"], "policy.total-timeout", "{got}");
    // Inline clusters and storages follow the rules of stored ones.
    let (s, got) = call(
        &f.app,
        "POST",
        "/v1/restore/full",
        Some(json!({"backup-data-path": "x", "source-name": "disk",
            "destination": {"seed-nodes": [{"host-name": "h", "port": 0}]}})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{got}");
    assert_eq!(got["field"], "destination.seed-nodes[0].port", "{got}");
    let (s, got) = call(
        &f.app,
        "POST",
        "/v1/restore/full",
        Some(json!({"backup-data-path": "x", "destination-name": "main",
            "source": {"gcp-storage": {"bucket-name": "b", "min-part-size": 0}}})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{got}");
    assert_eq!(got["field"], "source.gcp-storage.min-part-size", "{got}");
}

/// `validate` names every out-of-range field of a config file and fails.
#[test]
fn validate_refuses_out_of_range_numbers_in_files() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yml");
    std::fs::write(
        &bad,
        "service:\n  http: {port: 8080, idle-timeout: 999999999999}\n\
         aerospike-clusters:\n  c: {seed-nodes: [{host-name: h, port: 0}], conn-timeout: 0}\n\
         backup-policies:\n  p: {parallel: 0, retry-delay: 2066540437521813504, bandwidth: 5000000, \
         resume-max-age: 9223372036854775808}\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_aerospike-backup-service"))
        .arg("validate")
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    for field in [
        "service.http.idle-timeout: must be between 1 and 604800000",
        "aerospike-clusters.c.seed-nodes[0].port: must be between 1 and 65535",
        "aerospike-clusters.c.conn-timeout",
        "backup-policies.p.parallel",
        // The deprecated key is read as its 3.x spelling (with a warning), and named so.
        "backup-policies.p.retry-policy.base-timeout",
        "backup-policies.p.bandwidth",
        "backup-policies.p.resume-max-age: must be between 0 and 31622400000",
    ] {
        assert!(err.contains(field), "{field} missing from: {err}");
    }
}

/// Names outside the safe set are refused in API paths and in bodies (400 naming the field),
/// and the document publishes the rule.
#[tokio::test]
async fn entity_names_are_limited_to_the_safe_set() {
    let f = fixture();
    let before = std::fs::read(&f.path).unwrap();
    for name in [
        "%87%84",
        ".hidden",
        "a%20b",
        "tab%09",
        "caf%C3%A9",
        &"n".repeat(256),
    ] {
        for method in ["POST", "PUT"] {
            let (s, got) = call(
                &f.app,
                method,
                &format!("/v1/config/policies/{name}"),
                Some(json!({"parallel": 1})),
            )
            .await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{method} {name}: {got}");
            assert_eq!(got["field"], "name", "{method} {name}: {got}");
        }
    }
    // Inside a whole config, the map key is named (printably).
    let (_, mut cfg) = call(&f.app, "GET", "/v1/config", None).await;
    cfg["backup-policies"]["\u{87}\u{84}"] = json!({"parallel": 1});
    let (s, got) = call(&f.app, "PUT", "/v1/config", Some(cfg)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{got}");
    assert_eq!(got["field"], "backup-policies.\\u{87}\\u{84}", "{got}");
    assert_eq!(std::fs::read(&f.path).unwrap(), before, "nothing saved");
    // Names of the ABS sample configs keep working.
    for name in ["dailyLocalBackupRoutine", "abs-cluster", "policy_1.v2"] {
        let (s, got) = call(
            &f.app,
            "POST",
            &format!("/v1/config/policies/{name}"),
            Some(json!({"parallel": 1})),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{name}: {got}");
    }

    let doc = serde_json::to_value(abs::api::openapi::document()).unwrap();
    let param = &doc["paths"]["/v1/config/policies/{name}"]["post"]["parameters"][0];
    assert_eq!(
        param["schema"]["pattern"],
        abs::config::validate::NAME_PATTERN
    );
    let keys = &doc["components"]["schemas"]["Config"]["properties"]["backup-routines"];
    assert_eq!(
        keys["propertyNames"]["pattern"],
        abs::config::validate::NAME_PATTERN
    );
}

/// Every entity name in the upstream sample configs passes the rule.
#[test]
fn upstream_sample_names_are_valid() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/upstream-config");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yml") {
            continue;
        }
        let doc: serde_yaml::Value =
            serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for section in [
            "aerospike-clusters",
            "storage",
            "backup-policies",
            "backup-routines",
            "secret-agents",
            "secret-agent",
        ] {
            for key in doc[section].as_mapping().into_iter().flat_map(|m| m.keys()) {
                let name = key.as_str().unwrap();
                seen += 1;
                assert_eq!(
                    abs::config::validate::name_problem(name),
                    None,
                    "{}: {name}",
                    path.display()
                );
            }
        }
    }
    assert!(seen > 20, "only {seen} names found");
}
