//! Where backups live: the folder layout and `metadata.yaml` ([`layout`]), writing and reading
//! backup files through the codec chain and a storage plugin ([`files`]), each folder's
//! `checksums.yaml` ([`checksums`]), a full backup's resume checkpoint ([`resume`]), local
//! staging left by a crash ([`partial_uploads`]), and opening a storage with its credentials ([`wiring`], [`cloud`], and the token exchanges of
//! [`azure_token`] and [`gcp_token`]).
//!
//! May import: `config`, `plugins`, `asb`, `aerospike` (partition ranges for resume cursors,
//! the encoded batches a scan produces), `error`, `progress`, `clock` and the support modules.
//! Never jobs: a job drives storage, storage does not know jobs.

pub mod azure_token;
pub mod checksums;
pub mod cloud;
pub mod files;
pub mod gcp_token;
pub mod layout;
pub mod partial_uploads;
pub mod resume;
pub mod wiring;
