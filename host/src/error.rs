//! The error of a job's data path, shared by the rooms it crosses: the Aerospike wire
//! ([`crate::aerospike`]), storage ([`crate::storage`]) and the jobs ([`crate::jobs`]).
//! It sits below all three so none of them imports another for its error type.

use crate::plugins::PluginError;

/// Why reading a backup file failed: the file and, for bad content, the line.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Storage or a codec failed (wrong key, corrupt stream, missing object...).
    #[error("{key}: {source}")]
    Plugin {
        key: String,
        #[source]
        source: PluginError,
    },
    /// The stored bytes are not what `checksums.yaml` recorded: nothing of the file is
    /// restored.
    #[error("{key}: {message}; the file is not restored")]
    Checksum { key: String, message: String },
    /// The decoded text is not a valid `.asb` stream.
    #[error("{key}: {source}")]
    Decode {
        key: String,
        #[source]
        source: crate::asb::DecodeError,
    },
}

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
    Read(#[from] ReadError),
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
