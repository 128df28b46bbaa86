//! Where backups live in storage, what `metadata.yaml` says, and which backups exist.
//!
//! Layout (ABS 3.x, D16):
//! ```text
//! <routine>/backup/<ts>/data/<ns>/{metadata_<ns>_<k>.asb[33], <w>_<ns>_<k>.asb, metadata.yaml}
//! <routine>/backup/<ts>/configuration/aerospike_<i>.conf   (with-cluster-configuration)
//! <routine>/incremental/<ts>/data/<ns>/...
//! ```
//! Write order (the invariant listing and restore rely on): every data file of every
//! namespace of a job is finished, then the node configurations, the optional
//! `pipeline.yaml` sidecar, and last each namespace's `metadata.yaml`. A folder without
//! `metadata.yaml` is incomplete: it is never listed, and the start-up sweep removes it
//! ([`find_incomplete`]). Deletion runs in reverse: `metadata.yaml` first.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use crate::config::TimestampFormat;
use crate::plugins::{PluginError, Storage};

/// Name of the per-namespace completion marker.
pub const METADATA_FILE: &str = "metadata.yaml";
/// Name of the codec sidecar written when a policy uses `pipeline:` (D10).
pub const PIPELINE_FILE: &str = "pipeline.yaml";
/// Objects asked for per listing page.
const LIST_PAGE: u32 = 1000;
/// Objects looked at to tell whether a backup folder exists.
const FOLDER_PROBE: u32 = 16;
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

    /// The metrics label (ABS `type`, as ABS 3.x writes it).
    pub fn label(self) -> &'static str {
        match self {
            BackupKind::Full => "full",
            BackupKind::Incremental => "incremental",
        }
    }
}

/// `<routine>/<backup|incremental>/<ts>`.
pub fn backup_folder(routine: &str, kind: BackupKind, ts_ms: i64) -> String {
    format!("{routine}/{}/{ts_ms}", kind.dir())
}

/// A backup folder's name: `<ts>`, or with `service.backup.timestamp-format` (ABS 3.4+)
/// `<ts>_<UTC start time>` as ABS formats it (ISO `2006-01-02T15-04-05`, EU
/// `02-Jan-2006-15-04-05`, US `Jan-02-2006-15-04-05`). Listing reads both.
pub fn folder_name(ts_ms: i64, format: Option<TimestampFormat>) -> String {
    let Some(format) = format else {
        return ts_ms.to_string();
    };
    let t = Utc.timestamp_millis_opt(ts_ms).single().unwrap_or_default();
    let pattern = match format {
        TimestampFormat::Iso => "%Y-%m-%dT%H-%M-%S",
        TimestampFormat::Eu => "%d-%b-%Y-%H-%M-%S",
        TimestampFormat::Us => "%b-%d-%Y-%H-%M-%S",
    };
    format!("{ts_ms}_{}", t.format(pattern))
}

/// `<routine>/<backup|incremental>/<name>` for a [`folder_name`].
pub fn backup_folder_named(routine: &str, kind: BackupKind, name: &str) -> String {
    format!("{routine}/{}/{name}", kind.dir())
}

/// `<routine>/<backup|incremental>/<name>/data/<ns>` for a [`folder_name`].
pub fn namespace_folder_named(routine: &str, kind: BackupKind, name: &str, ns: &str) -> String {
    format!("{}/data/{ns}", backup_folder_named(routine, kind, name))
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

/// The suffix of the sidecar holding the index lines asrestore 4.5.8 cannot read (set
/// and expression indexes, file version 3.3): not `.asb`, so asrestore and backup-go,
/// which read every `*.asb` of a folder, skip it and restore everything else.
pub const EXTENDED_ASB_SUFFIX: &str = ".asb33";

/// `metadata_<ns>_<k>.asb33`: the set and expression indexes of a full backup.
pub fn extended_asb_name(namespace: &str, k: u64) -> String {
    format!("metadata_{namespace}_{k}{EXTENDED_ASB_SUFFIX}")
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

/// Objects of a backup that never completed: a whole backup folder, or one namespace
/// folder of it (see [`find_incomplete`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncompleteFolder {
    pub kind: BackupKind,
    /// The backup folder's timestamp, epoch ms.
    pub timestamp_ms: i64,
    /// `<routine>/<kind>/<ts>` or `<routine>/<kind>/<ts>/data/<ns>`.
    pub folder: String,
    /// Every object under `folder`.
    pub keys: Vec<String>,
}

/// The incomplete folders among `keys` (a listing of `<routine>/<kind>/`), which a crash
/// between a job's first data file and its last `metadata.yaml` leaves behind.
///
/// What is safe to delete follows from the write order (module docs): every data file of
/// every namespace is finished before the first `metadata.yaml` is written.
/// - A backup folder with no `metadata.yaml` in any namespace never completed and is never
///   listed: the whole folder goes (data, `configuration/`, sidecars).
/// - A backup folder where some namespaces have `metadata.yaml` and others not crashed while
///   writing the markers. Each namespace that has its marker is a complete backup of that
///   namespace (its data was finished first), is listed and may be restored, so it is kept
///   with the folder's `configuration/`; only the namespace folders without a marker go.
/// - Anything holding a `metadata.yaml`, even one that does not parse, is never touched; nor
///   are names that are not backup folders (`<ts>` or `<ts>_<time>`), such as ABS 2.x's
///   `<routine>/backup/data/<ns>` layout.
///
/// A job that is still writing looks exactly like a crashed one, so callers must skip the
/// timestamps of running jobs (and no second service may write to the same routine's
/// folder while this runs).
pub fn find_incomplete(routine: &str, kind: BackupKind, keys: &[String]) -> Vec<IncompleteFolder> {
    let prefix = format!("{routine}/{}/", kind.dir());
    // backup folder name → (ts, its keys)
    let mut folders: BTreeMap<&str, (i64, Vec<&String>)> = BTreeMap::new();
    for key in keys {
        let Some((name, _)) = key.strip_prefix(&prefix).and_then(|r| r.split_once('/')) else {
            continue;
        };
        let Some(ts) = folder_timestamp(name) else {
            continue;
        };
        folders.entry(name).or_insert((ts, Vec::new())).1.push(key);
    }
    let mut out = Vec::new();
    for (name, (ts, keys)) in folders {
        let base = format!("{prefix}{name}");
        // namespace → (has metadata.yaml, its keys)
        let mut namespaces: BTreeMap<&str, (bool, Vec<String>)> = BTreeMap::new();
        let mut checkpoint = None;
        for key in &keys {
            let inner = &key[base.len() + 1..];
            if inner == crate::storage::resume::RESUME_FILE {
                checkpoint = Some((*key).clone());
            }
            if let Some((ns, file)) = inner.strip_prefix("data/").and_then(|r| r.split_once('/')) {
                let entry = namespaces.entry(ns).or_default();
                entry.0 |= file == METADATA_FILE;
                entry.1.push((*key).clone());
            }
        }
        if namespaces.values().any(|(complete, _)| *complete) {
            for (ns, (complete, keys)) in namespaces {
                if !complete {
                    out.push(IncompleteFolder {
                        kind,
                        timestamp_ms: ts,
                        folder: format!("{base}/data/{ns}"),
                        keys,
                    });
                }
            }
            // A resume checkpoint left beside finished metadata: nothing to resume.
            if let Some(key) = checkpoint {
                out.push(IncompleteFolder {
                    kind,
                    timestamp_ms: ts,
                    folder: key.clone(),
                    keys: vec![key],
                });
            }
        } else {
            out.push(IncompleteFolder {
                kind,
                timestamp_ms: ts,
                folder: base,
                keys: keys.into_iter().cloned().collect(),
            });
        }
    }
    out
}

/// The incomplete folders of `routine`, full and incremental (see [`find_incomplete`]).
///
/// # Errors
/// What the storage reports while listing.
pub async fn incomplete_folders(
    storage: &Arc<dyn Storage>,
    routine: &str,
) -> Result<Vec<IncompleteFolder>, PluginError> {
    let mut out = Vec::new();
    for kind in [BackupKind::Full, BackupKind::Incremental] {
        let keys = list_keys(storage, &format!("{routine}/{}/", kind.dir())).await?;
        out.extend(find_incomplete(routine, kind, &keys));
    }
    Ok(out)
}

/// True when the routine has a `<kind>` folder for `ts_ms`, named `<ts>` or `<ts>_<time>`
/// (a timestamp is taken).
///
/// # Errors
/// What the storage reports.
pub async fn folder_exists(
    storage: &Arc<dyn Storage>,
    routine: &str,
    kind: BackupKind,
    ts_ms: i64,
) -> Result<bool, PluginError> {
    let prefix = backup_folder(routine, kind, ts_ms);
    // `<ts>` followed by `/` or `_`; a longer number sharing the digits is another folder.
    let page = storage.list(&prefix, true, None, FOLDER_PROBE).await?;
    Ok(page.objects.iter().any(|o| {
        o.key[prefix.len()..]
            .chars()
            .next()
            .is_some_and(|c| c == '/' || c == '_')
    }))
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
    fn timestamp_format_suffixes_folder_names_as_abs_does() {
        let ts = 1_707_915_600_000; // 2024-02-14T13:00:00Z
        assert_eq!(folder_name(ts, None), "1707915600000");
        assert_eq!(
            folder_name(ts, Some(TimestampFormat::Iso)),
            "1707915600000_2024-02-14T13-00-00"
        );
        assert_eq!(
            folder_name(ts, Some(TimestampFormat::Eu)),
            "1707915600000_14-Feb-2024-13-00-00"
        );
        assert_eq!(
            folder_name(ts, Some(TimestampFormat::Us)),
            "1707915600000_Feb-14-2024-13-00-00"
        );
        let name = folder_name(ts, Some(TimestampFormat::Iso));
        assert_eq!(folder_timestamp(&name), Some(ts));
        assert_eq!(
            namespace_folder_named("r", BackupKind::Full, &name, "test"),
            "r/backup/1707915600000_2024-02-14T13-00-00/data/test"
        );
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

    fn keys(list: &[&str]) -> Vec<String> {
        list.iter().map(|k| k.to_string()).collect()
    }

    #[test]
    fn incomplete_folders_are_those_without_any_metadata() {
        let listing = keys(&[
            // complete: kept
            "r/backup/1000/data/a/0_a_1.asb",
            "r/backup/1000/data/a/metadata.yaml",
            "r/backup/1000/configuration/aerospike_0.conf",
            // crashed before any metadata: the whole folder goes
            "r/backup/2000/data/a/0_a_1.asb",
            "r/backup/2000/data/b/0_b_1.asb",
            "r/backup/2000/configuration/aerospike_0.conf",
            // crashed while writing metadata: only namespace b goes
            "r/backup/3000/configuration/aerospike_0.conf",
            "r/backup/3000/data/a/0_a_1.asb",
            "r/backup/3000/data/a/pipeline.yaml",
            "r/backup/3000/data/a/metadata.yaml",
            "r/backup/3000/data/b/0_b_1.asb",
            "r/backup/3000/data/b/pipeline.yaml",
            // ABS timestamp-format folder name, complete (its metadata does not parse: kept)
            "r/backup/4000_2024-01-01/data/a/metadata.yaml",
            // complete, but its resume checkpoint was not removed: only that goes
            "r/backup/4500/data/a/0_a_1.asb",
            "r/backup/4500/data/a/metadata.yaml",
            "r/backup/4500/resume.yaml",
            // not backup folders: never touched
            "r/backup/data/a/0_a_1.asb",
            "r/backup/notes.txt",
            "other/backup/5000/data/a/0_a_1.asb",
        ]);
        let found = find_incomplete("r", BackupKind::Full, &listing);
        assert_eq!(
            found,
            vec![
                IncompleteFolder {
                    kind: BackupKind::Full,
                    timestamp_ms: 2000,
                    folder: "r/backup/2000".into(),
                    keys: keys(&[
                        "r/backup/2000/data/a/0_a_1.asb",
                        "r/backup/2000/data/b/0_b_1.asb",
                        "r/backup/2000/configuration/aerospike_0.conf",
                    ]),
                },
                IncompleteFolder {
                    kind: BackupKind::Full,
                    timestamp_ms: 3000,
                    folder: "r/backup/3000/data/b".into(),
                    keys: keys(&[
                        "r/backup/3000/data/b/0_b_1.asb",
                        "r/backup/3000/data/b/pipeline.yaml",
                    ]),
                },
                IncompleteFolder {
                    kind: BackupKind::Full,
                    timestamp_ms: 4500,
                    folder: "r/backup/4500/resume.yaml".into(),
                    keys: keys(&["r/backup/4500/resume.yaml"]),
                },
            ]
        );
        // The incremental prefix sees none of the full backups.
        assert!(find_incomplete("r", BackupKind::Incremental, &listing).is_empty());
        let inc = keys(&["r/incremental/6000/data/a/0_a_1.asb"]);
        let found = find_incomplete("r", BackupKind::Incremental, &inc);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].folder, "r/incremental/6000");
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
