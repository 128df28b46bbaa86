//! The backup and restore engine.
//!
//! A backup job ([`backup`]) connects to the routine's cluster ([`cluster`]), runs partition
//! scans ([`scan`]) whose records stream through the `.asb` encoder ([`asb`]) and the policy's
//! codec chain into the storage plugin, with live [`progress`]; [`layout`] names the files and
//! reads back what backups exist; [`jobs`] runs on-demand jobs with ABS's overlap rules.

pub mod asb;
pub mod azure_token;
pub mod backup;
pub mod cloud;
pub mod cluster;
pub mod context;
pub mod copies;
pub mod events;
pub mod files;
pub mod gcp_token;
pub mod integrity;
pub mod job_secrets;
pub mod jobs;
pub mod layout;
pub mod node_reader;
pub mod partial_uploads;
pub mod progress;
pub mod remote_config;
pub mod restore;
pub mod restore_jobs;
pub mod resume;
pub mod retention;
pub mod scan;
pub mod tls;
pub mod verify_jobs;
pub mod wiring;
pub mod writer;

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
    /// Records could not be written to the destination.
    #[error("writing records: {0}")]
    Write(String),
    /// A backup file could not be read.
    #[error("{0}")]
    Read(#[from] files::ReadError),
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

/// The first real error of a group of tasks: noting one stops the group, and the root cause
/// wins over the cancellations it set off.
#[derive(Debug)]
pub(crate) struct FirstError {
    stop: tokio_util::sync::CancellationToken,
    first: Option<EngineError>,
}

impl FirstError {
    pub(crate) fn new(stop: tokio_util::sync::CancellationToken) -> Self {
        FirstError { stop, first: None }
    }

    pub(crate) fn note(&mut self, e: EngineError) {
        self.stop.cancel();
        if self
            .first
            .as_ref()
            .is_none_or(|f| matches!(f, EngineError::Cancelled))
        {
            self.first = Some(e);
        }
    }

    pub(crate) fn into_result(self) -> Result<(), EngineError> {
        match self.first {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}
