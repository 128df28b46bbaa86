//! The official Python client (`pip install aerospike`) against the test node. A missing
//! python3 or a missing package fails these tests; they never skip.

use std::path::PathBuf;
use std::process::Command;

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

#[test]
fn python_client_passes_all_checks_against_one_node() {
    let node = AerospikeNode::start().unwrap();
    run_python_checks(&node, &[]);
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
