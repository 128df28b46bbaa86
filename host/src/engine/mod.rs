//! The backup and restore engine.
//!
//! A backup job ([`backup`]) connects to the routine's cluster ([`cluster`]), runs partition
//! scans ([`scan`]) whose records stream through the `.asb` encoder ([`asb`]) and the policy's
//! codec chain into the storage plugin, with live [`progress`]; [`layout`] names the files and
//! reads back what backups exist; [`jobs`] runs on-demand jobs with ABS's overlap rules.

pub mod asb;
pub mod backup;
pub mod cluster;
pub mod jobs;
pub mod layout;
pub mod progress;
pub mod retention;
pub mod scan;

use crate::plugins::PluginError;

/// Why a backup job failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The routine (or something it names) is not in the configuration.
    #[error("{0}")]
    Config(String),
    /// The cluster could not be reached or refused us.
    #[error("cluster {cluster}: {message}")]
    Cluster { cluster: String, message: String },
    /// A scan failed after its retries.
    #[error("scan of namespace {namespace}: {message}")]
    Scan { namespace: String, message: String },
    /// A record could not be encoded.
    #[error("encoding: {0}")]
    Encode(String),
    /// A codec or storage plugin failed.
    #[error("{context}: {source}")]
    Plugin {
        context: String,
        #[source]
        source: PluginError,
    },
    /// The job was cancelled.
    #[error("cancelled")]
    Cancelled,
}

impl EngineError {
    pub(crate) fn plugin(context: impl Into<String>, source: PluginError) -> Self {
        EngineError::Plugin {
            context: context.into(),
            source,
        }
    }
}
