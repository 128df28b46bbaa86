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
