//! A namespace folder's `checksums.yaml`: every data file's stored size and SHA-256, written
//! after the data files and before `metadata.yaml` (so a complete backup always has it) and
//! read back by restore, verify, copies and the file listing of the API.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::plugins::Storage;
use crate::storage::layout;

/// The sidecar listing a namespace folder's files with their stored size and SHA-256.
pub const CHECKSUMS_FILE: &str = "checksums.yaml";
/// Largest `checksums.yaml` read (a folder of many thousand files fits).
const MAX_CHECKSUMS_BYTES: u64 = 16 * 1024 * 1024;

/// One file of a folder: its name in the folder, stored size and lowercase hex SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSum {
    pub name: String,
    pub size: u64,
    pub sha256: String,
}

/// `checksums.yaml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChecksumsSidecar {
    /// Always `sha256`; named so another digest can come without a format change.
    pub algorithm: String,
    pub files: Vec<FileSum>,
}

impl ChecksumsSidecar {
    pub fn new(files: Vec<FileSum>) -> Self {
        ChecksumsSidecar {
            algorithm: "sha256".into(),
            files,
        }
    }

    /// Stored bytes of every file listed.
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

/// The folder's `checksums.yaml`, `None` when it has none.
///
/// # Errors
/// The file exists but cannot be read or parsed.
pub async fn read_checksums(
    storage: &Arc<dyn Storage>,
    folder: &str,
    keys: &[String],
) -> Result<Option<ChecksumsSidecar>, String> {
    let key = format!("{folder}/{CHECKSUMS_FILE}");
    if !keys.contains(&key) {
        return Ok(None);
    }
    let bytes = layout::read_object(storage, &key, MAX_CHECKSUMS_BYTES)
        .await
        .map_err(|e| format!("{key}: {e}"))?;
    let sidecar: ChecksumsSidecar =
        serde_yaml::from_slice(&bytes).map_err(|e| format!("{key}: {e}"))?;
    if sidecar.algorithm != "sha256" {
        return Err(format!(
            "{key}: unknown algorithm {:?} (sha256 is known)",
            sidecar.algorithm
        ));
    }
    Ok(Some(sidecar))
}
