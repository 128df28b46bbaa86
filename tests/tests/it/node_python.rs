//! The official Python client (`pip install aerospike`) against the test node. A missing
//! python3 or a missing package fails these tests; they never skip.

use std::path::PathBuf;
use std::process::Command;

use testkit::node::wire::{PT_INTEGER, PT_LIST, PT_MAP};
use testkit::node::{compute_digest, store};
use testkit::{AerospikeNode, NodeConfig};

fn run_python_checks(node: &AerospikeNode, extra: &[&str]) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python/node_client_check.py");
    // Run from a scratch directory: the client may drop files (UDF copies) in its cwd.
    let scratch = std::env::temp_dir();
    let out = Command::new("python3")
        .current_dir(&scratch)
        .arg(&script)
        .args([
            "--hosts",
            &node.hosts(),
            "--nodes",
            &node.node_count().to_string(),
        ])
        .args(extra)
        .output()
        .expect("python3 must be installed to run the Python client checks");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("ALL PYTHON CHECKS PASSED"),
        "python client checks failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
}

/// The bins `check_restore_cdt` wrote, as the node stores them.
fn python_cdt_bins(node: &AerospikeNode) -> Vec<(String, u8, Vec<u8>)> {
    let digest = compute_digest("py_cdt", PT_INTEGER, &1i64.to_be_bytes());
    let ns = node.store().ns(b"test").unwrap();
    let part = store::read(ns.part(&digest));
    let rec = part.get(&digest).expect("the Python client wrote py_cdt/1");
    rec.bins()
        .map(|b| {
            (
                String::from_utf8_lossy(b.name).into_owned(),
                b.ptype,
                b.data.to_vec(),
            )
        })
        .collect()
}

#[test]
fn python_client_passes_all_checks_against_one_node() {
    let node = AerospikeNode::start().unwrap();
    run_python_checks(&node, &[]);
    // A key-ordered map keeps its flag (ext type 1) and key order; an unordered one is stored
    // key-sorted; a list as given.
    let str2 = |c: u8| [0xa2, 3, c];
    let km = [
        &[0x83, 0xc7, 0x00, 0x01, 0xc0][..],
        &str2(b'a'),
        &[2],
        &str2(b'b'),
        &[1],
    ]
    .concat();
    let um = [&[0x82][..], &str2(b'a'), &[2], &str2(b'b'), &[1]].concat();
    let bins = python_cdt_bins(&node);
    let get = |n: &str| bins.iter().find(|b| b.0 == n).map(|b| (b.1, b.2.clone()));
    assert_eq!(get("km"), Some((PT_MAP, km)), "{bins:02x?}");
    assert_eq!(get("um"), Some((PT_MAP, um)), "{bins:02x?}");
    assert_eq!(
        get("l"),
        Some((PT_LIST, vec![0x93, 3, 1, 2])),
        "{bins:02x?}"
    );
    // The C client underneath asked for the partition map and peers like against a server.
    let log = node.info_log();
    assert!(log.iter().any(|c| c.starts_with("replicas")), "{log:?}");
    assert!(
        log.iter().any(|c| c.starts_with("peers-clear-std")),
        "{log:?}"
    );
}

#[test]
fn python_client_passes_all_checks_against_three_nodes_with_auth() {
    let node = AerospikeNode::start_with(NodeConfig {
        nodes: 3,
        racks: 3,
        replication_factor: 2,
        user: Some(("admin".into(), "pw".into())),
        ..NodeConfig::default()
    })
    .unwrap();
    run_python_checks(&node, &["--user", "admin", "--password", "pw"]);
    let logins: u64 = (0..3)
        .map(|i| {
            node.stats(i)
                .logins
                .load(std::sync::atomic::Ordering::Relaxed)
        })
        .sum();
    assert!(
        logins >= 3,
        "every node must have seen logins, saw {logins}"
    );
}

fn tls_node(mutual: bool) -> AerospikeNode {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/tls");
    AerospikeNode::start_with(NodeConfig {
        nodes: 2,
        user: Some(("abs-client".into(), "py-tls-pw".into())),
        tls: Some(testkit::node::NodeTls {
            cert_file: dir.join("server.pem"),
            key_file: dir.join("server.key"),
            tls_name: "localhost".into(),
            client_ca_file: mutual.then(|| dir.join("ca.pem")),
        }),
        ..NodeConfig::default()
    })
    .unwrap()
}

fn tls_arg(name: &str) -> String {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data/tls")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn python_client_passes_all_checks_over_tls_as_an_internal_user() {
    let node = tls_node(false);
    let ca = tls_arg("ca.pem");
    run_python_checks(
        &node,
        &[
            "--tls-cafile",
            &ca,
            "--user",
            "abs-client",
            "--password",
            "py-tls-pw",
        ],
    );
    let log = node.info_log();
    assert!(
        log.iter().any(|c| c.starts_with("peers-tls-std")),
        "{log:?}"
    );
    assert_eq!(
        node.stats(0)
            .tls_handshake_failures
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}

#[test]
fn python_client_passes_all_checks_over_mutual_tls_with_pki_and_external() {
    let node = tls_node(true);
    let (ca, cert, key) = (
        tls_arg("ca.pem"),
        tls_arg("client.pem"),
        tls_arg("client.key"),
    );
    let tls = [
        "--tls-cafile",
        ca.as_str(),
        "--tls-certfile",
        cert.as_str(),
        "--tls-keyfile",
        key.as_str(),
    ];
    run_python_checks(&node, &[&tls[..], &["--auth-mode", "pki"]].concat());
    let pki: u64 = (0..2)
        .map(|i| {
            node.stats(i)
                .pki_logins
                .load(std::sync::atomic::Ordering::Relaxed)
        })
        .sum();
    assert!(pki > 0, "the C client logged in with its certificate");
    // A fresh node: the checks expect an empty one.
    let node = tls_node(true);
    let args = [
        &tls[..],
        &[
            "--auth-mode",
            "external",
            "--user",
            "abs-client",
            "--password",
            "py-tls-pw",
        ],
    ]
    .concat();
    run_python_checks(&node, &args);
    let external: u64 = (0..2)
        .map(|i| {
            node.stats(i)
                .external_logins
                .load(std::sync::atomic::Ordering::Relaxed)
        })
        .sum();
    assert!(external > 0, "the C client sent an EXTERNAL login");
}
