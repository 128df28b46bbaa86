//! The node's TLS listener and login modes with the official Rust client: TLS with each auth
//! mode over three nodes (peers found through `peers-tls-std`), mutual TLS refusing an
//! untrusted or missing client certificate, PKI refused without a certificate, and wrong
//! credentials answered with the server's codes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use aerospike::{
    AuthMode, Bins, Client, ClientPolicy, Key, ReadPolicy, TlsPolicy, Value, WritePolicy, as_bin,
};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use testkit::node::NodeTls;
use testkit::{AerospikeNode, NodeConfig};

const USER: &str = "abs-client";
const PASSWORD: &str = "tls-node-pw";

fn tls_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data/tls")
        .join(name)
}

fn node(nodes: usize, mutual: bool) -> AerospikeNode {
    AerospikeNode::start_with(NodeConfig {
        nodes,
        user: Some((USER.into(), PASSWORD.into())),
        tls: Some(NodeTls {
            cert_file: tls_file("server.pem"),
            key_file: tls_file("server.key"),
            tls_name: "localhost".into(),
            client_ca_file: mutual.then(|| tls_file("ca.pem")),
        }),
        ..NodeConfig::default()
    })
    .unwrap()
}

/// A rustls client config trusting the test CA, presenting `client` (`client` or
/// `other-client`) when given.
fn client_tls(client: Option<&str>) -> TlsPolicy {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(tls_file("ca.pem")).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match client {
        None => builder.with_no_client_auth(),
        Some(name) => {
            let chain = CertificateDer::pem_file_iter(tls_file(&format!("{name}.pem")))
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            let key = PrivateKeyDer::from_pem_file(tls_file(&format!("{name}.key"))).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
    };
    TlsPolicy::new(config)
}

fn policy(auth: AuthMode, client: Option<&str>) -> ClientPolicy {
    let mut p = ClientPolicy::default();
    p.auth_mode = auth;
    p.tls_policy = Some(client_tls(client));
    p.timeout = 5000;
    p
}

async fn write_and_read(client: &Client, n: i64) {
    let key = Key::new("test", "tls", Value::from(n)).unwrap();
    client
        .put(&WritePolicy::default(), &key, &[as_bin!("v", n)])
        .await
        .unwrap();
    let rec = client
        .get(&ReadPolicy::default(), &key, Bins::All)
        .await
        .unwrap();
    assert_eq!(rec.bins["v"], Value::from(n));
}

#[tokio::test]
async fn rust_client_uses_every_auth_mode_over_tls_on_three_nodes() {
    let node = node(3, true);
    let hosts = node.hosts();
    assert!(hosts.starts_with("127.0.0.1:localhost:"), "{hosts}");
    let modes = [
        AuthMode::Internal(USER.into(), PASSWORD.into()),
        AuthMode::External(USER.into(), PASSWORD.into()),
        AuthMode::Pki,
    ];
    for (i, mode) in modes.into_iter().enumerate() {
        // One seed: the others come from peers-tls-std, with their TLS name.
        let seed = hosts.split(',').next().unwrap();
        let client = Client::new(&policy(mode, Some("client")), &seed)
            .await
            .unwrap_or_else(|e| panic!("mode {i}: {e}"));
        assert_eq!(client.nodes().len(), 3, "mode {i}");
        for n in 0..30 {
            write_and_read(&client, n).await;
        }
        client.close().await.unwrap();
    }
    let stat = |f: fn(&testkit::NodeStats) -> u64| (0..3).map(|i| f(node.stats(i))).sum::<u64>();
    assert!(stat(|s| s.pki_logins.load(Ordering::Relaxed)) >= 3);
    assert!(stat(|s| s.external_logins.load(Ordering::Relaxed)) >= 3);
    assert_eq!(
        stat(|s| s.tls_handshake_failures.load(Ordering::Relaxed)),
        0
    );
    let log = node.info_log();
    assert!(log.iter().any(|c| c == "peers-tls-std"), "{log:?}");
}

#[tokio::test]
async fn mutual_tls_refuses_untrusted_and_missing_client_certificates() {
    let node = node(1, true);
    for client in [Some("other-client"), None] {
        let p = policy(AuthMode::Pki, client);
        let Err(e) = Client::new(&p, &node.hosts()).await else {
            panic!("{client:?} must not connect");
        };
        assert!(e.to_string().contains("host"), "{e}");
    }
    assert!(node.stats(0).tls_handshake_failures.load(Ordering::Relaxed) >= 2);
}

#[tokio::test]
async fn wrong_credentials_get_the_server_codes() {
    // Without mutual TLS a PKI login has no certificate to take the user from.
    let node = node(1, false);
    let cases = [
        (AuthMode::Pki, "Error 80,"),
        (AuthMode::Internal(USER.into(), "wrong".into()), "Error 65,"),
        (AuthMode::External(USER.into(), "wrong".into()), "Error 65,"),
        (
            AuthMode::Internal("nobody".into(), PASSWORD.into()),
            "Error 60,",
        ),
    ];
    for (mode, code) in cases {
        let Err(e) = Client::new(&policy(mode, None), &node.hosts()).await else {
            panic!("{code}: must not connect");
        };
        let text = e.to_string();
        assert!(text.contains(code), "expected {code}: {text}");
    }
    // The right password over TLS without a client certificate works.
    let p = policy(AuthMode::Internal(USER.into(), PASSWORD.into()), None);
    let client = Client::new(&p, &node.hosts()).await.unwrap();
    write_and_read(&client, 1).await;
}
