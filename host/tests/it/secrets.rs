//! The Secret Agent client against the testkit double: TCP, unix socket and TLS, base64 values,
//! rotation, and failures whose messages name the agent and the reference but never a secret.

use std::path::{Path, PathBuf};

use abs::config::{ConnectionType, SecretAgent};
use abs::secrets::{SecretAgentClient, SecretError, SecretRef};
use testkit::secret_agent::{DoubleConfig, Mode, SecretAgentDouble};

fn tls_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/tls")
}

fn tcp_agent(port: u16) -> SecretAgent {
    SecretAgent {
        connection_type: ConnectionType::Tcp.into(),
        address: "127.0.0.1".into(),
        port: Some(port.into()),
        timeout: Some(2000),
        tls_ca_file: None,
        is_base64: None,
    }
}

fn reference(text: &str) -> SecretRef {
    SecretRef::parse(text).unwrap()
}

#[tokio::test]
async fn fetches_over_tcp_and_sees_a_rotated_secret() {
    let double = SecretAgentDouble::start().unwrap();
    double.set("db", "password", b"first-value");
    let client = SecretAgentClient::new("sa", &tcp_agent(double.port())).unwrap();
    let r = reference("secrets:db:password");
    assert_eq!(client.fetch(&r).await.unwrap().expose(), b"first-value");
    double.set("db", "password", b"rotated-value");
    assert_eq!(client.fetch(&r).await.unwrap().expose(), b"rotated-value");
    assert_eq!(
        double.asked(),
        vec![("db".to_string(), "password".to_string()); 2]
    );
}

#[tokio::test]
async fn fetches_over_a_unix_socket_and_decodes_base64() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.sock");
    let double = SecretAgentDouble::start_with(DoubleConfig {
        unix_socket: Some(path.clone()),
        base64: true,
        ..DoubleConfig::default()
    })
    .unwrap();
    double.set("", "aes", b"\x00\x01binary key\xff");
    let agent = SecretAgent {
        connection_type: ConnectionType::Unix.into(),
        address: path.display().to_string(),
        port: None,
        timeout: None,
        tls_ca_file: None,
        is_base64: Some(true),
    };
    let client = SecretAgentClient::new("local", &agent).unwrap();
    let v = client.fetch(&reference("secrets:aes")).await.unwrap();
    assert_eq!(v.expose(), b"\x00\x01binary key\xff");
}

#[tokio::test]
async fn tls_trusts_the_configured_ca_only() {
    let double = SecretAgentDouble::start_with(DoubleConfig {
        tls: Some((tls_dir().join("server.pem"), tls_dir().join("server.key"))),
        ..DoubleConfig::default()
    })
    .unwrap();
    double.set("db", "password", b"over-tls");
    let mut agent = tcp_agent(double.port());
    agent.tls_ca_file = Some(tls_dir().join("ca.pem").display().to_string());
    let client = SecretAgentClient::new("sa", &agent).unwrap();
    let r = reference("secrets:db:password");
    assert_eq!(client.fetch(&r).await.unwrap().expose(), b"over-tls");

    agent.tls_ca_file = Some(tls_dir().join("other-ca.pem").display().to_string());
    let client = SecretAgentClient::new("sa", &agent).unwrap();
    let err = client.fetch(&r).await.unwrap_err();
    assert!(matches!(err, SecretError::Connect { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("secret agent sa") && text.contains("tls://127.0.0.1"),
        "{text}"
    );

    agent.tls_ca_file = Some("/nonexistent/ca.pem".into());
    let err = SecretAgentClient::new("sa", &agent).unwrap_err();
    assert!(
        err.to_string().contains("tls-ca-file /nonexistent/ca.pem"),
        "{err}"
    );
}

#[tokio::test]
async fn failures_name_the_reference_never_the_secret() {
    let double = SecretAgentDouble::start().unwrap();
    double.set("db", "password", b"do-not-print-me");
    let mut agent = tcp_agent(double.port());
    agent.timeout = Some(300);
    let client = SecretAgentClient::new("sa", &agent).unwrap();

    let err = client
        .fetch(&reference("secrets:db:missing"))
        .await
        .unwrap_err();
    assert!(matches!(err, SecretError::Refused { .. }), "{err}");
    assert!(err.to_string().contains("secrets:db:missing"), "{err}");

    double.set_mode(Mode::BadMagic);
    let err = client
        .fetch(&reference("secrets:db:password"))
        .await
        .unwrap_err();
    assert!(matches!(err, SecretError::Protocol { .. }), "{err}");
    assert!(!err.to_string().contains("do-not-print-me"), "{err}");

    double.set_mode(Mode::Silent);
    let err = client
        .fetch(&reference("secrets:db:password"))
        .await
        .unwrap_err();
    assert!(matches!(err, SecretError::Timeout { .. }), "{err}");
    assert!(err.to_string().contains("300 ms"), "{err}");

    // Nothing listens: the connection error names where it tried.
    drop(double);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let client = SecretAgentClient::new("sa", &tcp_agent(port)).unwrap();
    let err = client
        .fetch(&reference("secrets:db:password"))
        .await
        .unwrap_err();
    assert!(matches!(err, SecretError::Connect { .. }), "{err}");
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
}

#[tokio::test]
async fn fields_resolve_through_the_agent_their_entity_names() {
    use abs::config::Secret;
    use abs::secrets::{agent_for, resolve_entry, resolve_field};
    use std::collections::BTreeMap;

    let double = SecretAgentDouble::start().unwrap();
    double.set("db", "password", b"from-agent");
    double.set("", "aes", b"key-bytes");
    let agents = BTreeMap::from([("main".to_string(), tcp_agent(double.port()))]);

    let by_name = agent_for(&agents, None, Some("main"), None).unwrap();
    let by_fallback = agent_for(&agents, None, None, Some("main")).unwrap();
    assert!(by_name.is_some() && by_fallback.is_some());
    assert!(agent_for(&agents, None, None, None).unwrap().is_none());
    let err = agent_for(&agents, None, Some("nope"), None).unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");

    let agent = by_name.as_ref();
    let literal = resolve_field(agent, "credentials.password", &Secret::new("plain"))
        .await
        .unwrap();
    assert_eq!(literal.expose(), b"plain");
    let fetched = resolve_field(
        agent,
        "credentials.password",
        &Secret::new("secrets:db:password"),
    )
    .await
    .unwrap();
    assert_eq!(fetched.expose(), b"from-agent");
    let key = resolve_entry(agent, "encryption.key-secret", "aes")
        .await
        .unwrap();
    assert_eq!(key.expose(), b"key-bytes");

    let err = resolve_field(
        None,
        "credentials.password",
        &Secret::new("secrets:db:password"),
    )
    .await
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("credentials.password") && text.contains("no secret agent"),
        "{text}"
    );
}
