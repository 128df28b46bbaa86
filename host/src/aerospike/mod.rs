//! The Aerospike wire: connecting to a cluster and asking it (info commands, racks, node
//! ranges, secondary indexes, UDFs), TLS, partition scans read by our own node reader, and
//! the restore's writes.
//!
//! May import: `config`, `asb` (records in and out), `error`, `progress`, `clock` and the
//! support modules (`pem_key`, `metrics`). Never storage or jobs: what is stored where is not
//! this room's business.

pub mod cluster;
pub mod node_reader;
pub mod scan;
pub mod tls;
pub mod writer;
