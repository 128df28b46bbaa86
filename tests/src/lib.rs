//! Test support for the Aerospike Backup Service.
//!
//! - [`AerospikeNode`]: an in-process Aerospike wire-protocol server (one or more nodes)
//!   that the official clients talk to unmodified; see `docs/TEST-NODE.md`.
//! - [`emulators`]: launchers for the S3 / Azure / GCS stand-ins on free ports.
//! - [`fixtures`]: deterministic records of every particle type for tests and benches.

pub mod emulators;
pub mod fixtures;
pub mod node;

pub use node::{AerospikeNode, Faults, NodeConfig, NodeStats};
