//! Our OpenAPI document against the original's: every configuration and system path and
//! method of upstream exists in ours (DESIGN D8); the rest is listed as a known difference.

use std::collections::BTreeSet;

/// Upstream paths that later issues add (backups, restore); see docs/API-DIFFERENCES.md.
fn methods(doc: &serde_json::Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for m in ["get", "put", "post", "delete", "patch"] {
            if item.get(m).is_some() {
                out.insert((path.clone(), m.to_string()));
            }
        }
    }
    out
}

#[test]
fn every_upstream_config_and_system_path_exists() {
    let upstream_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data/upstream-openapi.yaml");
    let text = std::fs::read_to_string(&upstream_path)
        .unwrap_or_else(|e| panic!("{}: {e}", upstream_path.display()));
    let upstream: serde_json::Value = serde_yaml::from_str(&text).unwrap();
    let ours = serde_json::to_value(abs::api::openapi::document()).unwrap();
    let ours = methods(&ours);
    let mut missing = Vec::new();
    for (path, m) in methods(&upstream) {
        if !ours.contains(&(path.clone(), m.clone())) {
            missing.push(format!("{} {path}", m.to_uppercase()));
        }
    }
    assert!(missing.is_empty(), "missing from our OpenAPI: {missing:?}");
    // Our additions beyond ABS.
    for extra in [
        "/v1/config/secret-agents/{name}",
        "/v1/config/routines/{name}/enable",
        "/v1/restore/jobs",
        "/v1/restore/cancel/{jobId}",
    ] {
        assert!(ours.iter().any(|(p, _)| p == extra), "{extra}");
    }
}

/// A validator for one schema of our document; `$ref`s resolve into its components.
fn validator(doc: &serde_json::Value, schema: &serde_json::Value) -> jsonschema::Validator {
    let root = serde_json::json!({
        "components": doc["components"],
        "allOf": [schema],
    });
    jsonschema::validator_for(&root).unwrap_or_else(|e| panic!("schema {schema}: {e}"))
}

/// The 200 response schema of `GET path` in our document.
fn get_200_schema<'a>(doc: &'a serde_json::Value, path: &str) -> &'a serde_json::Value {
    let schema =
        &doc["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"];
    assert!(!schema.is_null(), "no 200 JSON schema for GET {path}");
    schema
}

/// Every configuration read answers a body its own document accepts, with every optional
/// enum and struct set (what generated clients choke on first).
#[tokio::test]
async fn config_responses_validate_against_the_document() {
    use crate::api_config::{call, fixture_with};
    let yaml = format!(
        "{}{}",
        crate::api_config::CONFIG.replace(
            "service:\n  http: {port: 8080}",
            "service:\n  http: {port: 8080}\n  logger: {level: INFO, format: PLAIN, \
             stdout-writer: true}"
        ),
        r#"
"#
    )
    .replace(
        "  daily: {parallel: 4}",
        "  daily:\n    parallel: 4\n    compression: {mode: ZSTD, level: 3}\n    \
         encryption: {mode: AES256, key-file: /tmp/k}\n    retry-policy: {base-timeout: 1000, \
         multiplier: 2, max-retries: 3}\n    no-records: false\n    sealed: true",
    );
    let fx = fixture_with(&yaml);
    let doc = serde_json::to_value(abs::api::openapi::document()).unwrap();
    let reads = [
        ("/v1/config", "/v1/config"),
        ("/v1/config/clusters", "/v1/config/clusters"),
        ("/v1/config/clusters/{name}", "/v1/config/clusters/main"),
        ("/v1/config/storage", "/v1/config/storage"),
        ("/v1/config/storage/{name}", "/v1/config/storage/disk"),
        ("/v1/config/storage/{name}", "/v1/config/storage/s3"),
        ("/v1/config/policies", "/v1/config/policies"),
        ("/v1/config/policies/{name}", "/v1/config/policies/daily"),
        ("/v1/config/routines", "/v1/config/routines"),
        ("/v1/config/routines/{name}", "/v1/config/routines/nightly"),
        ("/v1/config/secret-agents", "/v1/config/secret-agents"),
        (
            "/v1/config/secret-agents/{name}",
            "/v1/config/secret-agents/agent",
        ),
    ];
    let mut failures = Vec::new();
    for (template, uri) in reads {
        let (status, body) = call(&fx.app, "GET", uri, None).await;
        assert_eq!(status, 200, "GET {uri}: {body}");
        let v = validator(&doc, get_200_schema(&doc, template));
        for e in v.iter_errors(&body) {
            failures.push(format!("GET {uri}: {} at {}", e, e.instance_path));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// What the issue found the document got wrong: enum spellings we accept (and answer as
/// written), the restore's `source`, and the restore's 202 content type.
#[test]
fn the_document_describes_what_the_service_reads_and_sends() {
    let doc = serde_json::to_value(abs::api::openapi::document()).unwrap();
    let level = validator(
        &doc,
        &serde_json::json!({"$ref": "#/components/schemas/LogLevel"}),
    );
    for ok in ["WARNING", "warn", "Info", "TRACE"] {
        assert!(level.is_valid(&serde_json::json!(ok)), "{ok}");
    }
    for bad in ["LOUD", "WARNINGS", ""] {
        assert!(!level.is_valid(&serde_json::json!(bad)), "{bad}");
    }
    let auth = validator(
        &doc,
        &serde_json::json!({"$ref": "#/components/schemas/AuthMode"}),
    );
    assert!(auth.is_valid(&serde_json::json!("external_insecure")));
    let request = validator(
        &doc,
        &serde_json::json!({"$ref": "#/components/schemas/RestoreRequest"}),
    );
    let with = |source: serde_json::Value| {
        serde_json::json!({"backup-data-path": "r/backup/1/data/test", "destination-name": "c",
            "source": source})
    };
    assert!(request.is_valid(&with(serde_json::json!({"local-storage": {"path": "/b"}}))));
    assert!(!request.is_valid(&with(serde_json::json!({"local-storage": {}}))));
    for kind in ["full", "incremental", "timestamp"] {
        let content =
            &doc["paths"][format!("/v1/restore/{kind}")]["post"]["responses"]["202"]["content"];
        assert!(content["application/json"].is_object(), "{kind}: {content}");
        assert!(content.get("text/plain").is_none(), "{kind}: {content}");
    }
}

/// ABS reads an empty `from=` / `to=` as no bound, and so do we; the served document says so
/// (`allowEmptyValue`), so a client or fuzzer does not take `?to=` for an invalid request.
#[tokio::test]
async fn empty_time_bounds_are_accepted_and_documented_as_such() {
    use crate::api_config::{CONFIG, call, fixture_with};
    let fx = fixture_with(CONFIG);
    let (status, body) = call(&fx.app, "GET", "/api-docs/openapi.json", None).await;
    assert_eq!(status, 200);
    let mut marked = 0;
    for item in body["paths"].as_object().unwrap().values() {
        for op in item.as_object().unwrap().values() {
            for p in op["parameters"].as_array().into_iter().flatten() {
                if p["in"] == "query" && (p["name"] == "from" || p["name"] == "to") {
                    assert_eq!(p["allowEmptyValue"], true, "{p}");
                    marked += 1;
                }
            }
        }
    }
    assert!(marked >= 8, "the four listings' from and to: {marked}");
    for uri in [
        "/v1/backups/full?from=&to=",
        "/v1/backups/incremental/nightly?to=",
    ] {
        let (status, body) = call(&fx.app, "GET", uri, None).await;
        assert_eq!(status, 200, "GET {uri}: {body}");
    }
    let (status, body) = call(&fx.app, "GET", "/v1/backups/full?to=x", None).await;
    assert_eq!(status, 400, "{body}");
}
