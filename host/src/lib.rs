//! Aerospike Backup Service: library behind the `aerospike-backup-service` binary.

pub mod api;
pub mod config;
pub mod engine;
pub mod logging;
pub mod malloc;
pub mod metrics;
pub mod notify;
pub mod outbound;
pub mod pem_key;
pub mod plugin_check;
pub mod plugins;
pub mod scheduler;
pub mod secrets;
pub mod service;
