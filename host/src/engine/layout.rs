//! Where backups live in storage, what `metadata.yaml` says, and which backups exist.
//!
//! Layout (ABS 3.x, D16):
//! ```text
//! <routine>/backup/<ts>/data/<ns>/{metadata_<ns>_<k>.asb, <w>_<ns>_<k>.asb, metadata.yaml}
//! <routine>/backup/<ts>/configuration/aerospike_<i>.conf   (with-cluster-configuration)
//! <routine>/incremental/<ts>/data/<ns>/...
//! ```
//! Write order (the invariant listing and restore rely on): every data file of every
//! namespace of a job is finished, then the node configurations, the optional
//! `pipeline.yaml` sidecar, and last each namespace's `metadata.yaml`. A folder without `metadata.yaml` is incomplete and is never
//! listed. Deletion runs in reverse: `metadata.yaml` first.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use crate::plugins::{PluginError, Storage};

/// Name of the per-namespace completion marker.
pub const METADATA_FILE: &str = "metadata.yaml";
/// Name of the codec sidecar written when a policy uses `pipeline:` (D10).
pub const PIPELINE_FILE: &str = "pipeline.yaml";
/// Objects asked for per listing page.
const LIST_PAGE: u32 = 1000;
/// Largest `metadata.yaml` we read; a real one is a few hundred bytes.
const MAX_METADATA_BYTES: u64 = 64 * 1024;

/// Full or incremental.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackupKind {
    Full,
    Incremental,
}

impl BackupKind {
    /// The folder under the routine.
    pub fn dir(self) -> &'static str {
        match self {
            BackupKind::Full => "backup",
            BackupKind::Incremental => "incremental",
        }
    }

    /// The metrics label (ABS `type`).
    pub fn label(self) -> &'static str {
        match self {
            BackupKind::Full => "Full",
            BackupKind::Incremental => "Incremental",
        }
    }
}

/// `<routine>/<backup|incremental>/<ts>`.
pub fn backup_folder(routine: &str, kind: BackupKind, ts_ms: i64) -> String {
    format!("{routine}/{}/{ts_ms}", kind.dir())
}

/// `<routine>/<backup|incremental>/<ts>/data/<ns>`: a BackupDetails `key`.
pub fn namespace_folder(routine: &str, kind: BackupKind, ts_ms: i64, namespace: &str) -> String {
    format!("{}/data/{namespace}", backup_folder(routine, kind, ts_ms))
}

/// backup-go's data file name: writer index, namespace, per-namespace counter from 1.
pub fn data_file_name(writer: usize, namespace: &str, k: u64) -> String {
    format!("{writer}_{namespace}_{k}.asb")
}

/// The file holding `# first-file`, UDFs and sindexes.
pub fn metadata_asb_name(namespace: &str, k: u64) -> String {
    format!("metadata_{namespace}_{k}.asb")
}

/// `metadata.yaml` exactly as ABS writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct BackupMetadata {
    pub created: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<DateTime<Utc>>,
    /// Lower bound of an incremental's window; `0001-01-01T00:00:00Z` for full backups.
    // ABS marks these `omitempty`: a zero count or a full backup's zero `from` may be absent.
    #[serde(default = "zero_time")]
    pub from: DateTime<Utc>,
    pub namespace: String,
    #[serde(default)]
    pub record_count: u64,
    #[serde(default)]
    pub byte_count: u64,
    #[serde(default)]
    pub file_count: u64,
    #[serde(default)]
    pub secondary_index_count: u64,
    #[serde(default)]
    pub udf_count: u64,
    #[serde(default = "none_mode")]
    pub compression: String,
    #[serde(default = "none_mode")]
    pub encryption: String,
}

fn none_mode() -> String {
    "NONE".into()
}

/// The zero time ABS writes as `from` of full backups.
pub fn zero_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(1, 1, 1, 0, 0, 0)
        .single()
        .expect("0001-01-01 is representable")
}

/// One step of a `pipeline.yaml` sidecar (D10): the codec a backup's files went through.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineStepRecord {
    pub plugin: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub sha256: String,
    /// The step's options (never key material: keys are handles, not options).
    #[serde(default)]
    pub options: serde_json::Value,
}

/// `pipeline.yaml`: the codec chain, in encoding order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineSidecar {
    pub pipeline: Vec<PipelineStepRecord>,
}

/// One complete backup of one namespace, as found in storage.
#[derive(Debug, Clone, PartialEq)]
pub struct FoundBackup {
    /// The namespace folder (BackupDetails `key`, restore `backup-data-path`).
    pub key: String,
    /// The folder timestamp, epoch ms.
    pub timestamp_ms: i64,
    pub metadata: BackupMetadata,
    /// The codec chain from the `pipeline.yaml` sidecar; `None` for backups written with
    /// the ABS fields (or none), whose `compression`/`encryption` say it all.
    pub pipeline: Option<Vec<PipelineStepRecord>>,
}

/// Reads a whole small object.
///
/// # Errors
/// What the storage reports; `Other` if the object is larger than `max`.
pub async fn read_object(
    storage: &Arc<dyn Storage>,
    key: &str,
    max: u64,
) -> Result<Vec<u8>, PluginError> {
    let mut dl = storage.open(key, 0, None).await?;
    let mut out = Vec::new();
    while let Some(chunk) = dl.next(64 * 1024).await? {
        out.extend_from_slice(&chunk);
        if out.len() as u64 > max {
            return Err(PluginError::Other(format!(
                "{key} is larger than {max} bytes"
            )));
        }
    }
    Ok(out)
}

/// Every object key under `prefix` (recursive), in key order.
///
/// # Errors
/// What the storage reports.
pub async fn list_keys(
    storage: &Arc<dyn Storage>,
    prefix: &str,
) -> Result<Vec<String>, PluginError> {
    let mut keys = Vec::new();
    let mut cursor = None;
    loop {
        let page = storage.list(prefix, true, cursor, LIST_PAGE).await?;
        keys.extend(page.objects.into_iter().map(|o| o.key));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return Ok(keys),
        }
    }
}

/// The complete backups of `routine` of `kind`, oldest first. Folders without
/// `metadata.yaml` are skipped; so is a metadata file that does not parse (logged).
///
/// # Errors
/// What the storage reports while listing or reading.
pub async fn list_backups(
    storage: &Arc<dyn Storage>,
    routine: &str,
    kind: BackupKind,
) -> Result<Vec<FoundBackup>, PluginError> {
    let prefix = format!("{routine}/{}/", kind.dir());
    let keys = list_keys(storage, &prefix).await?;
    let sidecars: HashSet<&str> = keys
        .iter()
        .filter_map(|k| k.strip_suffix(&format!("/{PIPELINE_FILE}")))
        .collect();
    let mut found = Vec::new();
    for key in &keys {
        let Some(folder) = key.strip_suffix(&format!("/{METADATA_FILE}")) else {
            continue;
        };
        // <prefix><ts>/data/<ns>
        let Some(ts) = folder
            .strip_prefix(&prefix)
            .and_then(|rest| rest.split('/').next())
            .and_then(folder_timestamp)
        else {
            continue;
        };
        let bytes = read_object(storage, key, MAX_METADATA_BYTES).await?;
        match serde_yaml::from_slice::<BackupMetadata>(&bytes) {
            Ok(metadata) => {
                let pipeline = if sidecars.contains(folder) {
                    read_sidecar(storage, folder).await
                } else {
                    None
                };
                found.push(FoundBackup {
                    key: folder.to_string(),
                    timestamp_ms: ts,
                    metadata,
                    pipeline,
                });
            }
            Err(e) => {
                tracing::warn!(key = %key, error = %e, "Ignoring an unreadable backup metadata file.")
            }
        }
    }
    found.sort_by(|a, b| {
        (a.timestamp_ms, &a.metadata.namespace).cmp(&(b.timestamp_ms, &b.metadata.namespace))
    });
    Ok(found)
}

/// The epoch-ms timestamp of a backup folder name: `<ts>` or, with ABS's
/// `timestamp-format`, `<ts>_<formatted time>`.
fn folder_timestamp(name: &str) -> Option<i64> {
    name.split('_').next().and_then(|ts| ts.parse::<i64>().ok())
}

/// The `pipeline.yaml` of a namespace folder; `None` (logged) when it cannot be read, so
/// one damaged sidecar does not hide the backup.
async fn read_sidecar(storage: &Arc<dyn Storage>, folder: &str) -> Option<Vec<PipelineStepRecord>> {
    let key = format!("{folder}/{PIPELINE_FILE}");
    let parsed = read_object(storage, &key, MAX_METADATA_BYTES)
        .await
        .map_err(|e| e.to_string())
        .and_then(|b| serde_yaml::from_slice::<PipelineSidecar>(&b).map_err(|e| e.to_string()));
    match parsed {
        Ok(s) => Some(s.pipeline),
        Err(e) => {
            tracing::warn!(key = %key, error = %e, "Ignoring an unreadable pipeline sidecar.");
            None
        }
    }
}

/// True when anything exists under `<routine>/<kind>/<ts>/` (a timestamp is taken).
///
/// # Errors
/// What the storage reports.
pub async fn folder_exists(
    storage: &Arc<dyn Storage>,
    routine: &str,
    kind: BackupKind,
    ts_ms: i64,
) -> Result<bool, PluginError> {
    let prefix = format!("{}/", backup_folder(routine, kind, ts_ms));
    let page = storage.list(&prefix, true, None, 1).await?;
    Ok(!page.objects.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_abs_and_backup_go() {
        assert_eq!(
            namespace_folder("daily", BackupKind::Full, 1_707_915_600_000, "test"),
            "daily/backup/1707915600000/data/test"
        );
        assert_eq!(
            namespace_folder("daily", BackupKind::Incremental, 5, "ns"),
            "daily/incremental/5/data/ns"
        );
        assert_eq!(data_file_name(0, "test", 1), "0_test_1.asb");
        assert_eq!(metadata_asb_name("test", 3), "metadata_test_3.asb");
    }

    #[test]
    fn metadata_yaml_uses_abs_keys_and_round_trips() {
        let m = BackupMetadata {
            created: Utc.timestamp_millis_opt(1_707_915_600_123).unwrap(),
            finished: Some(Utc.timestamp_millis_opt(1_707_915_601_000).unwrap()),
            from: zero_time(),
            namespace: "test".into(),
            record_count: 10,
            byte_count: 2048,
            file_count: 2,
            secondary_index_count: 1,
            udf_count: 0,
            compression: "ZSTD".into(),
            encryption: "NONE".into(),
        };
        let text = serde_yaml::to_string(&m).unwrap();
        for key in [
            "created:",
            "finished:",
            "from: 0001-01-01T00:00:00Z",
            "namespace: test",
            "record-count: 10",
            "byte-count: 2048",
            "file-count: 2",
            "secondary-index-count: 1",
            "udf-count: 0",
            "compression: ZSTD",
            "encryption: NONE",
        ] {
            assert!(text.contains(key), "{key} missing in\n{text}");
        }
        assert!(text.contains("2024-02-14T13:00:00.123Z"), "ms kept: {text}");
        assert_eq!(serde_yaml::from_str::<BackupMetadata>(&text).unwrap(), m);
    }

    #[test]
    fn pipeline_sidecar_reads_what_the_engine_writes() {
        let text = "pipeline:\n- plugin: compression-zstd\n  version: 1.0.0\n  sha256: ab\n  options:\n    level: 3\n";
        let s: PipelineSidecar = serde_yaml::from_str(text).unwrap();
        assert_eq!(s.pipeline.len(), 1);
        assert_eq!(s.pipeline[0].plugin, "compression-zstd");
        assert_eq!(s.pipeline[0].options["level"], 3);
    }

    /// ABS omits zero counts and a full backup's zero `from`; such files still list.
    #[test]
    fn metadata_written_by_abs_with_omitted_zero_fields_reads() {
        let text =
            "created: 2024-02-14T13:00:00Z\nnamespace: test\nrecord-count: 5\nfile-count: 1\n";
        let m: BackupMetadata = serde_yaml::from_str(text).unwrap();
        assert_eq!(m.from, zero_time());
        assert_eq!((m.record_count, m.udf_count, m.byte_count), (5, 0, 0));
        assert_eq!(m.compression, "NONE");
    }
}
