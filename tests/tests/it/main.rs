//! The testkit integration suite: the official Rust and Python clients against the test
//! node (one binary per crate, DESIGN D14).
// Client policies are tweaked field by field after `default()`, as the client documents it.
#![allow(clippy::field_reassign_with_default)]

mod node_cluster;
mod node_faults;
mod node_python;
mod node_restore;
mod node_rust;
mod node_tls;
mod transcripts;

use aerospike::{Client, ClientPolicy};
use testkit::AerospikeNode;

/// Connects the official Rust client to a running node.
pub async fn connect(node: &AerospikeNode) -> Client {
    connect_with(node, ClientPolicy::default()).await
}

pub async fn connect_with(node: &AerospikeNode, policy: ClientPolicy) -> Client {
    Client::new(&policy, &node.hosts())
        .await
        .unwrap_or_else(|e| panic!("client connect to {}: {e}", node.hosts()))
}
