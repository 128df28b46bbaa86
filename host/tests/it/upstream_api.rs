//! Upstream ABS's integration cases about the service's own listener and the cluster login
//! (`test/integration/https_test.go`, `auth_test.go`), ported call for call against the test
//! node: the same configuration shapes (ABS 3.7 keys, inline Secret Agents, legacy encrypted
//! PEM keys), the same requests through the REST API, the same assertions.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use abs::config::{Config, ConfigStore, Format};
use serde_json::Value;
use testkit::node::NodeTls;
use testkit::secret_agent::SecretAgentDouble;
use testkit::{AerospikeNode, NodeConfig};

use crate::api_auth::raw_call;

const USER: &str = "abs-int-user";
const PASSWORD: &str = "Upstream-int-pw-5c2e";
/// The password of tests/data/tls/client-legacy-aes256.key (a test key).
const CLIENT_KEY_PASSWORD: &str = "test-key-password";
/// The password of tests/data/tls/server-legacy-aes256.key (a test key).
const SERVER_KEY_PASSWORD: &str = "server-key-password";

fn tls_file(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data/tls")
        .join(name)
        .display()
        .to_string()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An inline `secret-agent` block (flow YAML) for the double.
fn inline_agent(double: &SecretAgentDouble) -> String {
    format!(
        "{{connection-type: tcp, address: 127.0.0.1, port: {}, timeout: 3000}}",
        double.port()
    )
}

/// A whole config: `service` and cluster `c` given as flow YAML bodies, local storage in
/// `dir`, and routine `r` backing up namespace `test` of `c`.
fn config(dir: &Path, service: &str, cluster: &str) -> Config {
    let yaml = format!(
        r#"
service: {{{service}}}
aerospike-clusters:
  c: {{{cluster}}}
storage:
  s: {{local-storage: {{path: "{path}"}}}}
backup-policies:
  p: {{parallel: 2, retry-policy: {{base-timeout: 10, multiplier: 1, max-retries: 0}}}}
backup-routines:
  r: {{interval-cron: "@yearly", source-cluster: c, storage: s, backup-policy: p, namespaces: [test]}}
"#,
        path = dir.display(),
    );
    let cfg = abs::config::parse::<Config>(&yaml, Format::Yaml).expect("test config parses");
    abs::config::validate(&cfg).expect("test config is valid");
    cfg
}

/// The API as a client sees it: over HTTPS through `connector`, or in process.
enum Api {
    Tls(std::net::SocketAddr, tokio_rustls::TlsConnector),
    InProcess(axum::Router),
}

impl Api {
    async fn call(&self, method: &str, path: &str) -> (u16, Value) {
        match self {
            Api::Tls(addr, c) => raw_call(*addr, Some(c), method, path, None, None)
                .await
                .unwrap_or_else(|e| panic!("{method} {path}: {e}")),
            Api::InProcess(app) => {
                let (s, v) = crate::api_config::call(app, method, path, None).await;
                (s.as_u16(), v)
            }
        }
    }

    /// `triggerFullBackup` then `waitForFullBackup`: the one full backup's details.
    async fn full_backup(&self) -> Value {
        let (s, b) = self.call("POST", "/v1/backups/full/r").await;
        assert_eq!(s, 202, "trigger: {b}");
        for _ in 0..300 {
            let (s, list) = self.call("GET", "/v1/backups/full/r").await;
            assert_eq!(s, 200, "{list}");
            if let Some(first) = list.as_array().and_then(|l| l.first()) {
                return first.clone();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (_, status) = self.call("GET", "/v1/backups/currentBackup/r").await;
        panic!("no full backup was listed; current state: {status}");
    }
}

/// `assertBackupDetails`: the backup holds `records` records of namespace `test`.
fn assert_backup_details(details: &Value, records: u64) {
    assert_eq!(details["namespace"], "test", "{details}");
    assert_eq!(details["record-count"], records, "{details}");
    assert!(details["key"].as_str().is_some_and(|k| !k.is_empty()));
}

// ---- https_test.go -------------------------------------------------------------------------

/// TestHTTPSListenerWithSecretAgentKeyPassword: the API over HTTPS only, from a legacy
/// encrypted key whose passphrase ABS asks of the listener's inline Secret Agent; a full
/// backup through it.
#[tokio::test]
async fn https_listener_with_secret_agent_key_password() {
    let node = AerospikeNode::start().unwrap();
    let double = SecretAgentDouble::start().unwrap();
    double.set("tls", "keypass", SERVER_KEY_PASSWORD.as_bytes());
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let service = format!(
        "http: {{address: 127.0.0.1, disabled: true}}, \
         https: {{address: 127.0.0.1, port: {port}, cert-file: \"{}\", key-file: \"{}\", \
         key-file-password: \"secrets:tls:keypass\", secret-agent: {}}}",
        tls_file("server.pem"),
        tls_file("server-legacy-aes256.key"),
        inline_agent(&double)
    );
    let cluster = format!(
        "seed-nodes: [{{host-name: 127.0.0.1, port: {}}}]",
        node.port()
    );
    let cfg = config(dir.path(), &service, &cluster);
    let running = abs::service::start(Arc::new(ConfigStore::in_memory(cfg)), None)
        .await
        .expect("the service starts on HTTPS");
    let addr = running.https_addr.expect("an HTTPS listener");
    assert_eq!((addr.port(), running.addr), (port, addr), "HTTPS only");
    assert_eq!(double.asked(), [("tls".to_string(), "keypass".to_string())]);

    // upstream's seedRecords([10, 20, 30]): three records
    crate::backup::seed(&node, 3);
    let api = Api::Tls(addr, crate::api_auth::tls_client(None));
    assert_backup_details(&api.full_backup().await, 3);

    // The configuration answers with the reference as given (it is no secret).
    let (s, cfg) = api.call("GET", "/v1/config").await;
    assert_eq!(s, 200, "{cfg}");
    assert_eq!(
        cfg["service"]["https"]["key-file-password"],
        "secrets:tls:keypass"
    );
    running.stop(Duration::from_secs(5)).await.unwrap();
}

/// Every `service.https` key of ABS 3.7 loads, shows in `GET /v1/config` as given (literal
/// passwords redacted), and acts: its own context path, TLS 1.3 only, the cipher list,
/// `client-auth: request`.
#[tokio::test]
async fn https_takes_every_abs_key() {
    let dir = tempfile::tempdir().unwrap();
    let node = AerospikeNode::start().unwrap();
    let port = free_port();
    let https = format!(
        "{{disabled: false, address: 127.0.0.1, port: {port}, context-path: /abs, timeout: 4000, \
         read-timeout: 20000, write-timeout: 50000, idle-timeout: 90000, \
         rate: {{tps: 500, size: 600, white-list: [127.0.0.1]}}, \
         cert-file: \"{}\", key-file: \"{}\", key-file-password: {SERVER_KEY_PASSWORD}, \
         min-version: \"1.3\", cipher-suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256], \
         client-ca-file: \"{}\", client-auth: request}}",
        tls_file("server.pem"),
        tls_file("server-legacy-aes256.key"),
        tls_file("ca.pem"),
    );
    let service = format!(
        "http: {{address: 127.0.0.1, port: {}}}, https: {https}",
        free_port()
    );
    let cluster = format!(
        "seed-nodes: [{{host-name: 127.0.0.1, port: {}}}]",
        node.port()
    );
    let cfg = config(dir.path(), &service, &cluster);
    let running = abs::service::start(Arc::new(ConfigStore::in_memory(cfg)), None)
        .await
        .expect("the service starts");
    let addr = running.https_addr.expect("an HTTPS listener");
    // `request`: a client without a certificate is let in.
    let api = Api::Tls(addr, crate::api_auth::tls_client(None));
    let (s, shown) = api.call("GET", "/abs/v1/config").await;
    assert_eq!(s, 200, "{shown}");
    let h = &shown["service"]["https"];
    assert_eq!(h["key-file-password"], "[secret]", "{h}");
    assert_eq!(h["min-version"], "1.3");
    assert_eq!(h["client-auth"], "request");
    assert_eq!(h["context-path"], "/abs");
    assert_eq!(h["rate"]["tps"], 500);
    assert_eq!(
        h["cipher-suites"][0],
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
    );
    assert_eq!(h["idle-timeout"], 90000);
    assert!(!shown.to_string().contains(SERVER_KEY_PASSWORD));
    // The HTTPS context path is its own; HTTP keeps `/`.
    let (s, _) = api.call("GET", "/v1/config").await;
    assert_eq!(s, 404);
    let http = Api::InProcess(abs::api::router(running.state.clone()));
    let (s, _) = http.call("GET", "/v1/config").await;
    assert_eq!(s, 200);
    // A client certificate from the trusted CA is verified and accepted too.
    let with_cert = Api::Tls(addr, crate::api_auth::tls_client(Some("client")));
    let (s, _) = with_cert.call("GET", "/abs/health").await;
    assert_eq!(s, 200);
    // TLS 1.2 is below min-version.
    let tls12 = tls12_client(None);
    assert!(
        raw_call(addr, Some(&tls12), "GET", "/abs/health", None, None)
            .await
            .is_err()
    );
    running.stop(Duration::from_secs(5)).await.unwrap();
}

/// A TLS 1.2-only client trusting our CA, offering only `suite` when given.
fn tls12_client(suite: Option<&str>) -> tokio_rustls::TlsConnector {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(tls_file("ca.pem")).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let mut provider = rustls::crypto::ring::default_provider();
    if let Some(s) = suite {
        provider
            .cipher_suites
            .retain(|c| c.suite().as_str() == Some(s));
        assert_eq!(provider.cipher_suites.len(), 1, "{s}");
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// `cipher-suites` limits TLS 1.2 to the suites named; TLS 1.3 stays on (as in ABS).
#[tokio::test]
async fn https_cipher_suites_limit_tls12_only() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let service = format!(
        "http: {{address: 127.0.0.1, disabled: true}}, \
         https: {{address: 127.0.0.1, port: {port}, cert-file: \"{}\", key-file: \"{}\", \
         cipher-suites: [TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384]}}",
        tls_file("server.pem"),
        tls_file("server.key"),
    );
    let cfg = config(
        dir.path(),
        &service,
        "seed-nodes: [{host-name: 127.0.0.1, port: 3000}]",
    );
    let running = abs::service::start(Arc::new(ConfigStore::in_memory(cfg)), None)
        .await
        .unwrap();
    let addr = running.https_addr.unwrap();
    let listed = tls12_client(Some("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"));
    let (s, _) = raw_call(addr, Some(&listed), "GET", "/health", None, None)
        .await
        .unwrap();
    assert_eq!(s, 200);
    let other = tls12_client(Some("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"));
    assert!(
        raw_call(addr, Some(&other), "GET", "/health", None, None)
            .await
            .is_err()
    );
    let tls13 = crate::api_auth::tls_client(None);
    let (s, _) = raw_call(addr, Some(&tls13), "GET", "/health", None, None)
        .await
        .unwrap();
    assert_eq!(s, 200);
    running.stop(Duration::from_secs(5)).await.unwrap();
}

/// Misconfigured `service.https` keys are refused naming the field, as ABS's validation
/// does; a wrong key password stops the start naming the field, never the password.
#[tokio::test]
async fn https_misconfigurations_name_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "client-auth: require-and-verify",
            "service.https.client-auth",
        ),
        ("client-auth: sometimes", "service.https.client-auth"),
        ("min-version: \"1.1\"", "service.https.min-version"),
        (
            "cipher-suites: [TLS_RSA_WITH_RC4_128_SHA]",
            "service.https.cipher-suites",
        ),
        (
            "key-file-password: \"secrets:tls:keypass\"",
            "service.https.key-file-password",
        ),
        ("secret-agent-name: nope", "service.https.secret-agent-name"),
    ];
    for (extra, field) in cases {
        let yaml = format!(
            "service:\n  https: {{port: {}, cert-file: \"{}\", key-file: \"{}\", {extra}}}\n",
            free_port(),
            tls_file("server.pem"),
            tls_file("server-legacy-aes256.key"),
        );
        let cfg = abs::config::parse::<Config>(&yaml, Format::Yaml).unwrap();
        let errors = abs::config::validate(&cfg).expect_err(extra);
        let text = format!("{errors:?}");
        assert!(text.contains(field), "{extra}: {text}");
    }
    // Without cert and key only a disabled listener is valid.
    let cfg = abs::config::parse::<Config>("service:\n  https: {disabled: true}\n", Format::Yaml)
        .unwrap();
    abs::config::validate(&cfg).unwrap();
    let cfg =
        abs::config::parse::<Config>("service:\n  https: {port: 8443}\n", Format::Yaml).unwrap();
    let text = format!("{:?}", abs::config::validate(&cfg).unwrap_err());
    assert!(text.contains("service.https.cert-file"), "{text}");

    let service = format!(
        "http: {{address: 127.0.0.1, port: {}}}, https: {{address: 127.0.0.1, port: {}, \
         cert-file: \"{}\", key-file: \"{}\", key-file-password: Not-the-password-77}}",
        free_port(),
        free_port(),
        tls_file("server.pem"),
        tls_file("server-legacy-aes256.key"),
    );
    let cfg = config(
        dir.path(),
        &service,
        "seed-nodes: [{host-name: 127.0.0.1, port: 3000}]",
    );
    let err = abs::service::start(Arc::new(ConfigStore::in_memory(cfg)), None)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("service.https.key-file") && err.contains("wrong password"),
        "{err}"
    );
    assert!(!err.contains("Not-the-password-77"), "{err}");
}

// ---- auth_test.go --------------------------------------------------------------------------

/// A node with INTERNAL users, serving TLS when `tls` is `Some(mutual)`.
fn secured_node(tls: Option<bool>) -> AerospikeNode {
    AerospikeNode::start_with(NodeConfig {
        user: Some((USER.into(), PASSWORD.into())),
        tls: tls.map(|mutual| NodeTls {
            cert_file: tls_file("server.pem").into(),
            key_file: tls_file("server.key").into(),
            tls_name: "localhost".into(),
            client_ca_file: mutual.then(|| tls_file("ca.pem").into()),
        }),
        ..NodeConfig::default()
    })
    .unwrap()
}

/// `assertBackupFromCluster`: the service backs up `cluster` (flow YAML body after the
/// seed list) through the API; the backup holds the seeded records.
async fn assert_backup_from_cluster(node: &AerospikeNode, seed_extra: &str, cluster: &str) {
    let dir = tempfile::tempdir().unwrap();
    let body = format!(
        "seed-nodes: [{{host-name: 127.0.0.1, port: {}{seed_extra}}}], conn-timeout: 5000, {cluster}",
        node.port()
    );
    let cfg = config(dir.path(), "http: {address: 127.0.0.1}", &body);
    let running = abs::service::start(
        Arc::new(ConfigStore::in_memory(cfg)),
        Some("127.0.0.1:0".parse().unwrap()),
    )
    .await
    .unwrap();
    let api = Api::InProcess(abs::api::router(running.state.clone()));
    assert_backup_details(&api.full_backup().await, 3);
    running.stop(Duration::from_secs(5)).await.unwrap();
}

fn seed_plain(node: &AerospikeNode) {
    crate::backup::seed(node, 3);
}

/// TestInternalPlain: INTERNAL over plaintext, the password literal, from a file, and from
/// an inline Secret Agent.
#[tokio::test]
async fn internal_plain() {
    let node = secured_node(None);
    seed_plain(&node);
    // literal password
    assert_backup_from_cluster(
        &node,
        "",
        &format!(
            "use-services-alternate: true, credentials: {{user: {USER}, password: {PASSWORD}, auth-mode: INTERNAL}}"
        ),
    )
    .await;
    // password path (the file ends with a newline, as upstream writes it)
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("password.txt");
    std::fs::write(&path, format!("{PASSWORD}\n")).unwrap();
    assert_backup_from_cluster(
        &node,
        "",
        &format!(
            "use-services-alternate: true, credentials: {{user: {USER}, password-path: \"{}\", auth-mode: INTERNAL}}",
            path.display()
        ),
    )
    .await;
    // password from secret agent: a `secrets:` reference resolved at connect time
    let double = SecretAgentDouble::start().unwrap();
    double.set("abs", "password", PASSWORD.as_bytes());
    assert_backup_from_cluster(
        &node,
        "",
        &format!(
            "use-services-alternate: true, credentials: {{user: {USER}, password: \"secrets:abs:password\", \
             auth-mode: INTERNAL, secret-agent: {}}}",
            inline_agent(&double)
        ),
    )
    .await;
    assert!(!double.asked().is_empty());
}

/// TestInternalServerTLS: INTERNAL over TLS where only the server shows a certificate,
/// trusted through `ca-path`; the TLS name is the seed's `tls-name`.
#[tokio::test]
async fn internal_server_tls() {
    let node = secured_node(Some(false));
    seed_plain(&node);
    let ca_dir = tempfile::tempdir().unwrap();
    std::fs::copy(tls_file("ca.pem"), ca_dir.path().join("ca.pem")).unwrap();
    assert_backup_from_cluster(
        &node,
        ", tls-name: localhost",
        &format!(
            "use-services-alternate: true, credentials: {{user: {USER}, password: {PASSWORD}, auth-mode: INTERNAL}}, \
             tls: {{ca-path: \"{}\"}}",
            ca_dir.path().display()
        ),
    )
    .await;
}

/// The `tls` body of mutual TLS with the legacy encrypted client key.
fn mutual_tls(key_password: &str) -> String {
    format!(
        "tls: {{ca-file: \"{}\", name: localhost, cert-file: \"{}\", key-file: \"{}\", key-file-password: \"{key_password}\"}}",
        tls_file("ca.pem"),
        tls_file("client.pem"),
        tls_file("client-legacy-aes256.key"),
    )
}

/// TestMutualTLS: mutual TLS with a legacy encrypted client key, as an INTERNAL user, as a
/// PKI user known by the certificate alone, and with the key's password from the agent.
#[tokio::test]
async fn mutual_tls_with_a_legacy_encrypted_key() {
    let node = secured_node(Some(true));
    seed_plain(&node);
    // internal
    assert_backup_from_cluster(
        &node,
        ", tls-name: localhost",
        &format!(
            "use-services-alternate: true, credentials: {{user: {USER}, password: {PASSWORD}, auth-mode: INTERNAL}}, {}",
            mutual_tls(CLIENT_KEY_PASSWORD)
        ),
    )
    .await;
    // pki: the test node takes the user from the certificate's CN
    let pki_node = AerospikeNode::start_with(NodeConfig {
        user: Some(("abs-client".into(), PASSWORD.into())),
        tls: Some(NodeTls {
            cert_file: tls_file("server.pem").into(),
            key_file: tls_file("server.key").into(),
            tls_name: "localhost".into(),
            client_ca_file: Some(tls_file("ca.pem").into()),
        }),
        ..NodeConfig::default()
    })
    .unwrap();
    seed_plain(&pki_node);
    assert_backup_from_cluster(
        &pki_node,
        ", tls-name: localhost",
        &format!(
            "use-services-alternate: true, credentials: {{auth-mode: PKI}}, {}",
            mutual_tls(CLIENT_KEY_PASSWORD)
        ),
    )
    .await;
    // internal with key-file-password from the credentials' secret agent
    let double = SecretAgentDouble::start().unwrap();
    double.set("abs", "keypass", CLIENT_KEY_PASSWORD.as_bytes());
    assert_backup_from_cluster(
        &node,
        ", tls-name: localhost",
        &format!(
            "use-services-alternate: true, credentials: {{user: {USER}, password: {PASSWORD}, auth-mode: INTERNAL, \
             secret-agent: {}}}, {}",
            inline_agent(&double),
            mutual_tls("secrets:abs:keypass")
        ),
    )
    .await;
    assert_eq!(
        double.asked(),
        [("abs".to_string(), "keypass".to_string())],
        "the key's password is asked once, at the job's start"
    );
}
