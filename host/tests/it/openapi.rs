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
