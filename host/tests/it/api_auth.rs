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

// ---- Tokens from the Secret Agent ---------------------------------------------------------

const AGENT_ADMIN: &str = "agent-admin-token-7f3a9c";
const AGENT_READER: &str = "agent-reader-token-51be02";

/// Two callers whose tokens the agent on `port` holds: `ops` (admin) and `dash` (read-only).
fn agent_config(port: u16, extra_service: &str) -> Config {
    let yaml = format!(
        r#"
service:
  http:
    auth:
      tokens:
        - {{name: ops, token-secret: "api:ops-token", secret-agent-name: vault}}
        - {{name: dash, token-secret: "secrets:api:dash-token", secret-agent-name: vault, role: read-only}}
{extra_service}
secret-agents:
  vault: {{connection-type: tcp, address: 127.0.0.1, port: {port}, timeout: 2000}}
"#
    );
    let cfg = abs::config::parse::<Config>(&yaml, Format::Yaml).expect("config parses");
    abs::config::validate(&cfg).expect("valid");
    cfg
}

#[tokio::test]
async fn a_token_from_the_secret_agent_opens_the_api_is_never_shown_and_rotates_with_the_config() {
    let agent = testkit::secret_agent::SecretAgentDouble::start().unwrap();
    agent.set("api", "ops-token", AGENT_ADMIN.as_bytes());
    agent.set("api", "dash-token", format!("{AGENT_READER}\n").as_bytes());
    let store = Arc::new(ConfigStore::in_memory(agent_config(agent.port(), "")));
    let app = api::router(AppState::new(store, Arc::new(Metrics::new())));

    let (s, cfg) = call(&app, "GET", "/v1/config", Some(AGENT_ADMIN), None).await;
    assert_eq!(s, StatusCode::OK, "{cfg}");
    // The configuration shows the references, never what the agent holds.
    let text = cfg.to_string();
    assert!(text.contains("api:ops-token"), "{text}");
    assert!(
        !text.contains(AGENT_ADMIN) && !text.contains(AGENT_READER),
        "{text}"
    );
    for token in [None, Some("wrong"), Some("api:ops-token")] {
        let (s, b) = call(&app, "GET", "/v1/config", token, None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{token:?}: {b}");
        assert_eq!(b["field"], "Authorization", "{b}");
    }
    // The agent's value is trimmed like a token file's; this one only reads.
    let (s, _) = call(&app, "GET", "/v1/config/policies", Some(AGENT_READER), None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, b) = call(
        &app,
        "POST",
        "/v1/config/policies/p",
        Some(AGENT_READER),
        Some(json!({"parallel": 1})),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    assert!(b["error"].as_str().unwrap().contains("\"dash\""), "{b}");
    // Asked once for the configuration in force, not per request.
    assert_eq!(agent.asked().len(), 2, "{:?}", agent.asked());

    // Rotated in the agent: a config change asks again, and the old token stops working.
    let rotated = "agent-admin-token-rotated-22";
    agent.set("api", "ops-token", rotated.as_bytes());
    let (s, b) = call(&app, "PUT", "/v1/config", Some(AGENT_ADMIN), Some(cfg)).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, _) = call(&app, "GET", "/v1/config", Some(AGENT_ADMIN), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = call(&app, "GET", "/v1/config", Some(rotated), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(agent.asked().len(), 4, "{:?}", agent.asked());

    // A change while the agent is down: its callers are refused (fail closed), never kept.
    agent.set_mode(testkit::secret_agent::Mode::BadMagic);
    let (_, cfg) = call(&app, "GET", "/v1/config", Some(rotated), None).await;
    let (s, b) = call(&app, "PUT", "/v1/config", Some(rotated), Some(cfg)).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, _) = call(&app, "GET", "/v1/config", Some(rotated), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_unreachable_agent_stops_the_start_naming_the_field() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = agent_config(closed, "");
    let err = abs::service::start(
        Arc::new(ConfigStore::in_memory(cfg)),
        Some("127.0.0.1:0".parse().unwrap()),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("service.http.auth.tokens[0].token-secret")
            && err.contains("secret agent vault")
            && err.contains("cannot connect"),
        "{err}"
    );
}

#[test]
fn agent_and_certificate_entries_are_checked_naming_their_field() {
    let yaml = r#"
service:
  http:
    auth:
      tokens:
        - {name: a, token-secret: "api:a"}
        - {name: b, token-secret: "api:b", secret-agent-name: nowhere}
        - {name: c, sha256: "0000000000000000000000000000000000000000000000000000000000000000", secret-agent-name: vault}
        - {name: d, token-secret: "a:b:c", secret-agent-name: vault}
        - {name: e, client-cert-sha256: "AB:CD"}
        - {name: f, client-cert-sha256: "0000000000000000000000000000000000000000000000000000000000000000", sha256: "0000000000000000000000000000000000000000000000000000000000000000"}
secret-agents:
  vault: {connection-type: tcp, address: 127.0.0.1, port: 3005}
"#;
    let cfg = abs::config::parse::<Config>(yaml, Format::Yaml).unwrap();
    let errs = abs::config::validate(&cfg).unwrap_err();
    let text: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
    for (field, says) in [
        ("service.http.auth.tokens[0].secret-agent-name", "required"),
        ("service.http.auth.tokens[1].secret-agent-name", "nowhere"),
        (
            "service.http.auth.tokens[2].secret-agent-name",
            "token-secret",
        ),
        ("service.http.auth.tokens[3].token-secret", "expected"),
        ("service.http.auth.tokens[4].client-cert-sha256", "64 hex"),
        (
            "service.http.auth.tokens[4].client-cert-sha256",
            "client-ca-file",
        ),
        ("service.http.auth.tokens[5]", "exactly one"),
    ] {
        assert!(
            text.iter()
                .any(|t| t.starts_with(field) && t.contains(says)),
            "{field} {says}: {text:?}"
        );
    }
}

// ---- Client certificates over mutual TLS --------------------------------------------------

fn tls_file(name: &str) -> String {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data/tls")
        .join(name)
        .display()
        .to_string()
}

/// The SHA-256 of a certificate file's first certificate, as openssl prints it
/// (`AB:CD:...`) when `openssl_style`, else as lowercase hex.
fn fingerprint(pem: &str, openssl_style: bool) -> String {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let der = CertificateDer::pem_file_iter(tls_file(pem))
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let d = Sha256::digest(der.as_ref());
    if openssl_style {
        d.iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":")
    } else {
        hex::encode(d)
    }
}

/// A TLS client trusting our CA, offering the certificate `name` (`name.pem`, `name.key`).
pub(crate) fn tls_client(name: Option<&str>) -> tokio_rustls::TlsConnector {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(tls_file("ca.pem")).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let config = match name {
        Some(n) => builder
            .with_client_auth_cert(
                CertificateDer::pem_file_iter(tls_file(&format!("{n}.pem")))
                    .unwrap()
                    .map(Result::unwrap)
                    .collect(),
                PrivateKeyDer::from_pem_file(tls_file(&format!("{n}.key"))).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// One HTTP/1.1 request; `connector` makes it HTTPS. The status and the body, or why the
/// connection failed.
pub(crate) async fn raw_call(
    addr: std::net::SocketAddr,
    connector: Option<&tokio_rustls::TlsConnector>,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Result<(u16, Value), String> {
    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
    async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
        mut s: S,
        request: &[u8],
    ) -> std::io::Result<String> {
        s.write_all(request).await?;
        let mut out = Vec::new();
        s.read_to_end(&mut out).await?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(t) = token {
        request.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(&body);
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let answer = match connector {
        Some(c) => {
            let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
            let tls = c.connect(name, tcp).await.map_err(|e| e.to_string())?;
            exchange(tls, request.as_bytes()).await
        }
        None => exchange(tcp, request.as_bytes()).await,
    }
    .map_err(|e| e.to_string())?;
    let status = answer
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no HTTP answer: {answer:?}"))?;
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Ok((
        status,
        serde_json::from_str(body).unwrap_or(Value::String(body.into())),
    ))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn client_certificates_name_callers_over_mutual_tls_only() {
    let agent = testkit::secret_agent::SecretAgentDouble::start().unwrap();
    agent.set("api", "ops-token", AGENT_ADMIN.as_bytes());
    agent.set("api", "dash-token", AGENT_READER.as_bytes());
    // The admin's fingerprint as openssl prints it, the reader's as plain hex.
    let extra = format!(
        r#"        - {{name: operator, client-cert-sha256: "{}"}}
        - {{name: dashboards, client-cert-sha256: "{}", role: read-only}}
  https:
    address: 127.0.0.1
    port: {}
    cert-file: "{}"
    key-file: "{}"
    client-ca-file: "{}""#,
        fingerprint("api-admin.pem", true),
        fingerprint("api-reader.pem", false),
        free_port(),
        tls_file("server.pem"),
        tls_file("server.key"),
        tls_file("ca.pem"),
    );
    let cfg = agent_config(agent.port(), &extra);
    let running = abs::service::start(
        Arc::new(ConfigStore::in_memory(cfg)),
        Some("127.0.0.1:0".parse().unwrap()),
    )
    .await
    .expect("the service starts");
    let https = running.https_addr.expect("an HTTPS listener");
    let admin = tls_client(Some("api-admin"));
    let reader = tls_client(Some("api-reader"));
    let unnamed = tls_client(Some("client"));

    // The admin's certificate alone reads and replaces the configuration.
    let (s, mut cfg) = raw_call(https, Some(&admin), "GET", "/v1/config", None, None)
        .await
        .unwrap();
    assert_eq!(s, 200, "{cfg}");
    cfg["backup-policies"] = json!({"by-cert": {"parallel": 2}});
    let (s, b) = raw_call(https, Some(&admin), "PUT", "/v1/config", None, Some(&cfg))
        .await
        .unwrap();
    assert_eq!(s, 200, "{b}");

    // The read-only one reads (and sees the change), and gets 403 for anything else.
    let (s, b) = raw_call(
        https,
        Some(&reader),
        "GET",
        "/v1/config/policies",
        None,
        None,
    )
    .await
    .unwrap();
    assert_eq!(s, 200, "{b}");
    assert!(b.get("by-cert").is_some(), "{b}");
    let (s, b) = raw_call(
        https,
        Some(&reader),
        "POST",
        "/v1/config/policies/other",
        None,
        Some(&json!({"parallel": 1})),
    )
    .await
    .unwrap();
    assert_eq!(s, 403, "{b}");
    assert_eq!(b["field"], "Authorization", "{b}");
    assert!(
        b["error"]
            .as_str()
            .unwrap()
            .contains("client certificate \"dashboards\" is read-only"),
        "{b}"
    );

    // A certificate of our CA that no entry names: 401 without a token, a token decides.
    let (s, b) = raw_call(https, Some(&unnamed), "GET", "/v1/config", None, None)
        .await
        .unwrap();
    assert_eq!(s, 401, "{b}");
    let (s, _) = raw_call(
        https,
        Some(&unnamed),
        "GET",
        "/v1/config",
        Some(AGENT_ADMIN),
        None,
    )
    .await
    .unwrap();
    assert_eq!(s, 200);
    // A bearer token that is wrong is not rescued by a known certificate.
    let (s, _) = raw_call(https, Some(&admin), "GET", "/v1/config", Some("nope"), None)
        .await
        .unwrap();
    assert_eq!(s, 401);

    // A certificate from another CA (with the admin's subject) fails the handshake.
    let mut other = tls_client(Some("api-other"));
    assert!(
        raw_call(https, Some(&other), "GET", "/health", None, None)
            .await
            .is_err()
    );
    other = tls_client(None);
    assert!(
        raw_call(https, Some(&other), "GET", "/health", None, None)
            .await
            .is_err(),
        "mutual TLS: no certificate, no connection"
    );

    // Plain HTTP knows no certificates: only tokens.
    let (s, _) = raw_call(running.addr, None, "GET", "/v1/config", None, None)
        .await
        .unwrap();
    assert_eq!(s, 401);
    let (s, _) = raw_call(
        running.addr,
        None,
        "GET",
        "/v1/config",
        Some(AGENT_READER),
        None,
    )
    .await
    .unwrap();
    assert_eq!(s, 200);
    running
        .stop(std::time::Duration::from_secs(1))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_config_change_cannot_open_a_guarded_api_nor_guard_an_open_one() {
    let dir = tempfile::tempdir().unwrap();
    let guarded = app(dir.path(), "/");
    let (_, mut cfg) = call(&guarded, "GET", "/v1/config", Some(ADMIN), None).await;
    cfg["service"]["http"]
        .as_object_mut()
        .unwrap()
        .remove("auth");
    let (s, b) = call(
        &guarded,
        "PUT",
        "/v1/config",
        Some(ADMIN),
        Some(cfg.clone()),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, _) = call(&guarded, "GET", "/v1/config", None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "still guarded until a restart");
    let (s, _) = call(&guarded, "GET", "/v1/config", Some(ADMIN), None).await;
    assert_eq!(s, StatusCode::OK);

    // An API that started open stays open when a change adds callers.
    let store = Arc::new(ConfigStore::in_memory(Config::default()));
    let open = api::router(AppState::new(store, Arc::new(Metrics::new())));
    cfg["service"]["http"]["auth"] = json!({"tokens": [{"name": "x", "sha256": "0".repeat(64)}]});
    let (s, b) = call(&open, "PUT", "/v1/config", None, Some(cfg)).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = call(&open, "GET", "/v1/config", None, None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert!(b["service"]["http"].get("auth").is_some(), "{b}");
}

/// The example of docs/SECURITY.md is a valid configuration, and its `operator` fingerprint,
/// in openssl's form, is the one of the test certificate `api-admin.pem`.
#[test]
fn the_security_doc_example_validates() {
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/SECURITY.md"),
    )
    .unwrap();
    let section = doc
        .split("## Who may call the API")
        .nth(1)
        .expect("the API auth section");
    let yaml = section
        .split("```yaml\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a yaml example");
    let cfg = abs::config::parse::<Config>(yaml, Format::Yaml).expect("the example parses");
    abs::config::validate(&cfg).expect("the example is valid");
    let tokens = &cfg.service.http.auth.as_ref().unwrap().tokens;
    let operator = tokens.iter().find(|t| t.name == "operator").unwrap();
    assert_eq!(
        operator.client_cert_sha256.as_deref(),
        Some(fingerprint("api-admin.pem", true).as_str())
    );
}
