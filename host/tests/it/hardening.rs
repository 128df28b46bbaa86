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
