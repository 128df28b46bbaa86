//! The service on a real socket: start on port 0, talk HTTP over TCP, shut down.

use abs::config::ConfigStore;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn http(addr: std::net::SocketAddr, request: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test]
async fn serves_over_tcp_and_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("abs.yml");
    std::fs::write(&path, super::api_config::CONFIG).unwrap();
    let store = Arc::new(ConfigStore::load_file(&path, None).unwrap().store);
    let running = abs::service::start(store, Some("127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap();
    let addr = running.addr;

    let resp = http(
        addr,
        "GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.ends_with("Ok"), "{resp}");

    let body = r#"{"local-storage":{"path":"/tmp/persisted"}}"#;
    let put = format!(
        "POST /v1/config/storage/kept HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let resp = http(addr, &put).await;
    assert!(resp.starts_with("HTTP/1.1 201"), "{resp}");

    running.shutdown.cancel();
    running.task.await.unwrap().unwrap();
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "listener closed"
    );

    // A new service on the same file sees the change.
    let store = Arc::new(ConfigStore::load_file(&path, None).unwrap().store);
    let running = abs::service::start(store, Some("127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap();
    let resp = http(
        running.addr,
        "GET /v1/config/storage/kept HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(resp.contains("/tmp/persisted"), "{resp}");
    running.shutdown.cancel();
}

#[tokio::test]
async fn slow_headers_are_cut_off() {
    let yaml =
        super::api_config::CONFIG.replace("http: {port: 8080}", "http: {port: 8080, timeout: 200}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("abs.yml");
    std::fs::write(&path, yaml).unwrap();
    let store = Arc::new(ConfigStore::load_file(&path, None).unwrap().store);
    let running = abs::service::start(store, Some("127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap();
    let mut s = tokio::net::TcpStream::connect(running.addr).await.unwrap();
    s.write_all(b"GET /health HTTP/1.1\r\nHost: t\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    // The server closes the connection (possibly after a 408) instead of waiting forever.
    let read =
        tokio::time::timeout(std::time::Duration::from_secs(5), s.read_to_end(&mut buf)).await;
    assert!(
        read.is_ok(),
        "connection still open after the header timeout"
    );
    running.shutdown.cancel();
}

// ---- HTTPS (service.https) ----------------------------------------------------------------

fn tls_file(name: &str) -> String {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data/tls")
        .join(name)
        .display()
        .to_string()
}

/// A TLS client trusting `ca`, offering `client` (cert, key) when given, limited to `versions`.
fn tls_client(
    ca: &str,
    client: Option<(&str, &str)>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> tokio_rustls::TlsConnector {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(tls_file(ca)).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(versions)
    .unwrap()
    .with_root_certificates(roots);
    let config = match client {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                CertificateDer::pem_file_iter(tls_file(cert))
                    .unwrap()
                    .map(Result::unwrap)
                    .collect(),
                PrivateKeyDer::from_pem_file(tls_file(key)).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// GET /health over TLS; `Err` when the handshake or the exchange fails.
async fn https_health(
    addr: std::net::SocketAddr,
    connector: &tokio_rustls::TlsConnector,
) -> Result<String, String> {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut s = connector
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    s.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .map_err(|e| e.to_string())?;
    let mut out = String::new();
    s.read_to_string(&mut out)
        .await
        .map_err(|e| e.to_string())?;
    if out.is_empty() {
        return Err("no answer".into());
    }
    Ok(out)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start_https(https: &str, http_disabled: bool) -> abs::service::Running {
    let yaml = format!(
        "service:\n  http: {{address: 127.0.0.1, port: {}, disabled: {http_disabled}}}\n  https: {https}\n",
        free_port()
    );
    let cfg = abs::config::parse::<abs::config::Config>(&yaml, abs::config::Format::Yaml)
        .expect("config parses");
    abs::config::validate(&cfg).expect("config is valid");
    abs::service::start(Arc::new(ConfigStore::in_memory(cfg)), None)
        .await
        .expect("the service starts")
}

#[tokio::test]
async fn https_serves_the_api_with_the_configured_certificate_and_minimum_version() {
    let port = free_port();
    let running = start_https(
        &format!(
            "{{address: 127.0.0.1, port: {port}, cert-file: \"{}\", key-file: \"{}\", min-version: TLS1.3}}",
            tls_file("server.pem"),
            tls_file("server.key")
        ),
        false,
    )
    .await;
    let addr = running.https_addr.expect("an HTTPS listener");
    assert_eq!(addr.port(), port);
    let all = [&rustls::version::TLS12, &rustls::version::TLS13];
    let ok = https_health(addr, &tls_client("ca.pem", None, &all))
        .await
        .unwrap();
    assert!(ok.starts_with("HTTP/1.1 200") && ok.ends_with("Ok"), "{ok}");
    // A client that does not trust our CA, and one that only speaks TLS 1.2, are refused.
    assert!(
        https_health(addr, &tls_client("other-ca.pem", None, &all))
            .await
            .is_err()
    );
    let tls12 = [&rustls::version::TLS12];
    assert!(
        https_health(addr, &tls_client("ca.pem", None, &tls12))
            .await
            .is_err()
    );
    // Plain HTTP goes on beside it.
    let plain = http(
        running.addr,
        "GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(plain.starts_with("HTTP/1.1 200"), "{plain}");
    running
        .stop(std::time::Duration::from_secs(1))
        .await
        .unwrap();
}

#[tokio::test]
async fn https_with_a_client_ca_requires_a_client_certificate_and_http_can_be_off() {
    let port = free_port();
    let running = start_https(
        &format!(
            "{{address: 127.0.0.1, port: {port}, cert-file: \"{}\", key-file: \"{}\", client-ca-file: \"{}\"}}",
            tls_file("server.pem"),
            tls_file("server.key"),
            tls_file("ca.pem")
        ),
        true,
    )
    .await;
    assert_eq!(running.https_addr, Some(running.addr), "HTTPS only");
    let all = [&rustls::version::TLS12, &rustls::version::TLS13];
    let with_cert = tls_client("ca.pem", Some(("client.pem", "client.key")), &all);
    let ok = https_health(running.addr, &with_cert).await.unwrap();
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    let without = tls_client("ca.pem", None, &all);
    assert!(https_health(running.addr, &without).await.is_err());
    running
        .stop(std::time::Duration::from_secs(1))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_bad_certificate_stops_the_start_naming_the_field() {
    let yaml = format!(
        "service:\n  http: {{address: 127.0.0.1, port: {}}}\n  https: {{port: {}, cert-file: \"{}\", key-file: \"{}\"}}\n",
        free_port(),
        free_port(),
        tls_file("gen.sh"),
        tls_file("server.key")
    );
    let cfg = abs::config::parse::<abs::config::Config>(&yaml, abs::config::Format::Yaml).unwrap();
    let err = abs::service::start(Arc::new(ConfigStore::in_memory(cfg)), None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("service.https.cert-file"), "{err}");
}

/// The body of a GET of `path`.
async fn get_body(addr: std::net::SocketAddr, path: &str) -> String {
    let resp = http(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
    )
    .await;
    resp.split_once("\r\n\r\n")
        .map_or(resp.clone(), |(_, b)| b.to_string())
}

/// Waits until `/metrics` satisfies `ok`, for at most a minute (a closed port may take a
/// storage plugin's retries to give up).
async fn metrics_until(addr: std::net::SocketAddr, ok: impl Fn(&str) -> bool) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let text = get_body(addr, "/metrics").await;
        if ok(&text) || std::time::Instant::now() > deadline {
            return text;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Each storage is listed at start-up and again after every config change: the
/// `storage_reachable` gauge and `/ready` follow what it finds, and a removed storage's
/// series goes with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_reachability_is_exported_and_follows_config_changes() {
    let (moto, bucket) = crate::cloud::moto_with_bucket("probe");
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let s3 = |endpoint: &str| {
        format!(
            r#"{{s3-storage: {{bucket: {bucket}, s3-region: us-east-1, s3-endpoint-override: "{endpoint}", access-key-id: AKIDTEST, secret-access-key: test-secret-not-real}}}}"#
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("abs.yml");
    std::fs::write(
        &path,
        format!(
            "service: {{http: {{port: 8080}}}}\nstorage:\n  good: {}\n  cold: {}\n",
            s3(&moto.endpoint()),
            s3(&format!("http://127.0.0.1:{closed}"))
        ),
    )
    .unwrap();
    let store = Arc::new(ConfigStore::load_file(&path, None).unwrap().store);
    let running = abs::service::start(store, Some("127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap();
    let addr = running.addr;
    let good = r#"aerospike_backup_service_storage_reachable{storage="good"} 1"#;
    let cold_down = r#"aerospike_backup_service_storage_reachable{storage="cold"} 0"#;
    let cold_up = r#"aerospike_backup_service_storage_reachable{storage="cold"} 1"#;
    let text = metrics_until(addr, |t| t.contains(good) && t.contains(cold_down)).await;
    assert!(text.contains(good) && text.contains(cold_down), "{text}");
    let ready = get_body(addr, "/ready").await;
    assert!(ready.contains("storage cold:"), "{ready}");
    assert!(!ready.contains("storage good"), "{ready}");
    assert!(!ready.contains("test-secret-not-real"), "{ready}");

    // The operator points it at a store that answers: the change itself triggers a check.
    let body = format!(
        r#"{{"s3-storage":{{"bucket":"{bucket}","s3-region":"us-east-1","s3-endpoint-override":"{}","access-key-id":"AKIDTEST","secret-access-key":"test-secret-not-real"}}}}"#,
        moto.endpoint()
    );
    let put = format!(
        "PUT /v1/config/storage/cold HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let resp = http(addr, &put).await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    let text = metrics_until(addr, |t| t.contains(cold_up)).await;
    assert!(text.contains(cold_up), "{text}");
    let ready = get_body(addr, "/ready").await;
    assert!(!ready.contains("storage cold"), "{ready}");

    // A removed storage is no longer exported.
    let resp = http(
        addr,
        "DELETE /v1/config/storage/cold HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(resp.starts_with("HTTP/1.1 204"), "{resp}");
    let text = metrics_until(addr, |t| !t.contains(r#"storage="cold""#)).await;
    assert!(!text.contains(r#"storage="cold""#), "{text}");
    assert!(text.contains(good), "{text}");
    running.shutdown.cancel();
    drop(moto);
}
