//! Test support for the Aerospike Backup Service.
//!
//! - [`AerospikeNode`]: an in-process Aerospike wire-protocol server (one or more nodes)
//!   that the official clients talk to unmodified; see `docs/TEST-NODE.md`.
//! - [`emulators`]: launchers for the S3 / Azure / GCS stand-ins on free ports.
//! - [`fault_proxy`]: an HTTP proxy in front of a stand-in that breaks chosen requests.
//! - [`fixtures`]: deterministic records of every particle type for tests and benches.
//! - [`secret_agent`]: a Secret Agent test double (TCP, TLS, unix socket).
//! - [`demo`]: the README demo's sample data and background writer.
//! - [`transcript`]: recorded exchanges with a real server, replayed against the test node.

pub mod demo;
pub mod emulators;
pub mod fault_proxy;
pub mod fixtures;
pub mod node;
pub mod secret_agent;
pub mod transcript;

pub use node::{AerospikeNode, Faults, NodeConfig, NodeStats};
