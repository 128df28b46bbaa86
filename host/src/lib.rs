//! Aerospike Backup Service: library behind the `aerospike-backup-service` binary.
//!
//! The modules follow the path data takes (`docs/ARCHITECTURE.md` has the picture and the
//! import rules, which `tests/layers.rs` checks):
//! `config` (the ground floor) → `plugins` and `asb` (the format) → `aerospike` (the wire) →
//! `storage` (where backups live) → `jobs` → `scheduler`, `notify` → `api` → `service`.

pub mod aerospike;
pub mod api;
pub mod asb;
pub mod clock;
pub mod config;
pub mod error;
pub mod jobs;
pub mod logging;
pub mod malloc;
pub mod metrics;
pub mod notify;
pub mod outbound;
pub mod pem_key;
pub mod plugin_check;
pub mod plugins;
pub mod progress;
pub mod remote_config;
pub mod scheduler;
pub mod secrets;
pub mod service;
pub mod storage;
