//! Backups checked without restoring them (issue 27).
//!
//! Write side: every object of a namespace folder is hashed as it is stored (SHA-256 of the
//! bytes after the codecs, streaming in [`crate::storage::files::upload_files`]), and the folder's
//! `checksums.yaml` lists each file's size and digest. It is written after the data files
//! and before `metadata.yaml`, so a complete backup always has it.
//!
//! Read side: [`verify`] reads every file of a backup once, hashing the stored bytes while
//! the codec chain decrypts and decompresses them and the `.asb` decoder reads every record;
//! it reports the records and bytes, and the first problems with file and stored offset:
//! a size or digest that differs from `checksums.yaml`, a file missing or not listed, a
//! stream that does not decode, a record count that differs from `metadata.yaml`. Backups
//! without `checksums.yaml` (asbackup's, or ours from before) are decoded only, and the
//! report says so.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::config::RestorePolicy;
use crate::plugins::{Pipeline, Registry, Storage};

use crate::asb::AsbItem;
use crate::error::EngineError;
use crate::jobs::restore::FolderPlan;
use crate::progress::Progress;
use crate::secrets::ResolvedKeys;
use crate::storage::files::{FileReader, StoredDigest};
use crate::storage::layout;

pub use crate::storage::checksums::{CHECKSUMS_FILE, ChecksumsSidecar, FileSum, read_checksums};

/// Problems kept in a report; the count goes on.
pub const MAX_PROBLEMS: usize = 20;
/// Files verified at once (each on its own blocking thread).
const FILES_AT_ONCE: usize = 4;

/// One thing wrong with a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct Problem {
    /// The object (storage key).
    pub file: String,
    /// Stored bytes read when the problem showed (within the last chunk read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    pub problem: String,
}

/// What a verify found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct VerifyReport {
    /// Namespace folders checked.
    pub folders: u64,
    pub files: u64,
    pub records: u64,
    /// Stored bytes read.
    pub bytes: u64,
    /// Files whose size and SHA-256 were compared with `checksums.yaml`.
    pub checksummed_files: u64,
    /// Folders without `checksums.yaml` (asbackup's, or older backups): decoded only.
    pub decode_only: Vec<String>,
    /// The first [`MAX_PROBLEMS`] problems.
    pub problems: Vec<Problem>,
    /// Every problem found.
    pub problem_count: u64,
}

impl VerifyReport {
    pub fn is_ok(&self) -> bool {
        self.problem_count == 0
    }

    fn problem(&mut self, file: impl Into<String>, offset: Option<u64>, text: impl Into<String>) {
        self.problem_count += 1;
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(Problem {
                file: file.into(),
                offset,
                problem: text.into(),
            });
        }
    }
}

/// What reading one file gave.
struct FileResult {
    key: String,
    records: u64,
    size: u64,
    sha256: String,
    /// Stored offset and what went wrong, when the file did not read to its end.
    error: Option<(u64, String)>,
}

/// Verifies `folders` (as planned for a restore) with `policy`'s decryption key.
///
/// # Errors
/// A folder whose codec chain cannot be built (e.g. an encrypted backup and no key), a
/// storage listing that fails, or `cancel`. Problems with the backup itself are in the
/// report, not errors.
pub async fn verify(
    plugins: &Registry,
    storage: Arc<dyn Storage>,
    folders: &[FolderPlan],
    policy: &RestorePolicy,
    keys: &ResolvedKeys,
    progress: Arc<Progress>,
    cancel: CancellationToken,
) -> Result<VerifyReport, EngineError> {
    let mut report = VerifyReport::default();
    progress.add_estimate(
        folders
            .iter()
            .filter_map(|f| f.metadata.as_ref().map(|m| m.record_count))
            .sum(),
    );
    for folder in folders {
        let pipeline = Arc::new(
            crate::jobs::restore::folder_pipeline(plugins, policy, keys, folder)
                .map_err(|e| EngineError::Config(e.to_string()))?,
        );
        let keys_in = layout::list_keys(&storage, &format!("{}/", folder.key))
            .await
            .map_err(|e| EngineError::plugin(format!("listing {}", folder.key), e))?;
        report.folders += 1;
        let expected = match read_checksums(&storage, &folder.key, &keys_in).await {
            Ok(Some(s)) => Some(s),
            Ok(None) => {
                report.decode_only.push(folder.key.clone());
                None
            }
            Err(e) => {
                report.problem(format!("{}/{CHECKSUMS_FILE}", folder.key), None, e);
                None
            }
        };
        let listed: BTreeMap<String, FileSum> = expected
            .iter()
            .flat_map(|s| s.files.iter())
            .map(|f| (format!("{}/{}", folder.key, f.name), f.clone()))
            .collect();
        if expected.is_some() {
            for (key, sum) in &listed {
                if !folder.files.contains(key) {
                    report.problem(
                        key.clone(),
                        None,
                        format!("missing: checksums.yaml lists it with {} bytes", sum.size),
                    );
                }
            }
            for key in &folder.files {
                if !listed.contains_key(key) {
                    report.problem(key.clone(), None, "not listed in checksums.yaml");
                }
            }
        }
        let results = read_files(&storage, &pipeline, &folder.files, &progress, &cancel).await?;
        let mut records = 0;
        for r in results {
            report.files += 1;
            report.bytes += r.size;
            records += r.records;
            if let Some((offset, e)) = &r.error {
                report.problem(r.key.clone(), Some(*offset), e.clone());
            }
            if let Some(sum) = listed.get(&r.key) {
                report.checksummed_files += 1;
                if r.size != sum.size {
                    report.problem(
                        r.key.clone(),
                        Some(r.size.min(sum.size)),
                        format!(
                            "size {} bytes, checksums.yaml says {} (truncated or extended)",
                            r.size, sum.size
                        ),
                    );
                } else if r.sha256 != sum.sha256 {
                    report.problem(
                        r.key.clone(),
                        None,
                        "SHA-256 differs from checksums.yaml (the stored bytes changed)",
                    );
                }
            }
        }
        report.records += records;
        if let Some(m) = &folder.metadata
            && m.record_count != records
        {
            report.problem(
                format!("{}/{}", folder.key, layout::METADATA_FILE),
                None,
                format!(
                    "metadata.yaml counts {} records, the files hold {records}",
                    m.record_count
                ),
            );
        }
    }
    Ok(report)
}

/// Reads `files`, a few at once, each on a blocking thread; results in `files`' order.
async fn read_files(
    storage: &Arc<dyn Storage>,
    pipeline: &Arc<Pipeline>,
    files: &[String],
    progress: &Arc<Progress>,
    cancel: &CancellationToken,
) -> Result<Vec<FileResult>, EngineError> {
    let mut out: HashMap<String, FileResult> = HashMap::new();
    let mut tasks = tokio::task::JoinSet::new();
    let mut queue = files.iter().cloned();
    loop {
        while tasks.len() < FILES_AT_ONCE {
            let Some(key) = queue.next() else { break };
            let (storage, pipeline, progress) =
                (storage.clone(), pipeline.clone(), progress.clone());
            let runtime = tokio::runtime::Handle::current();
            tasks.spawn_blocking(move || read_one(runtime, storage, &pipeline, key, &progress));
        }
        let Some(done) = tasks.join_next().await else {
            break;
        };
        let r = done.map_err(|e| EngineError::Encode(format!("verify thread: {e}")))?;
        if cancel.is_cancelled() {
            return Err(EngineError::Cancelled);
        }
        out.insert(r.key.clone(), r);
    }
    Ok(files.iter().filter_map(|k| out.remove(k)).collect())
}

/// Reads one file to its end: records decoded, stored size and digest. After a decode
/// error the rest of the stored bytes is still read, so size and digest cover the object.
fn read_one(
    runtime: tokio::runtime::Handle,
    storage: Arc<dyn Storage>,
    pipeline: &Pipeline,
    key: String,
    progress: &Progress,
) -> FileResult {
    let digest = Arc::new(Mutex::new(StoredDigest::default()));
    let stored = Arc::new(AtomicU64::new(0));
    let mut records = 0u64;
    let mut reported = 0u64;
    let mut error = None;
    match FileReader::open_hashed(
        runtime.clone(),
        storage.clone(),
        key.clone(),
        pipeline,
        stored.clone(),
        digest.clone(),
    ) {
        Err(e) => error = Some((0, e.to_string())),
        Ok(mut reader) => loop {
            match reader.next_item() {
                Ok(Some(AsbItem::Record(_))) => {
                    records += 1;
                    // Progress in steps, not per record.
                    if records.is_multiple_of(1024) {
                        progress.add_records(1024);
                        reported += 1024;
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => {
                    let at = digest.lock().unwrap_or_else(|p| p.into_inner()).size;
                    error = Some((at, e.to_string()));
                    break;
                }
            }
        },
    }
    progress.add_records(records - reported);
    if error.is_some() {
        // The decoder stopped early: hash the rest of the object, so a size or digest
        // mismatch is told apart from a damaged stream that was stored as written.
        let mut rest = digest.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let from = rest.size;
        let read = runtime.block_on(crate::storage::files::hash_stored(
            &storage, &key, from, &mut rest, None,
        ));
        // What was read counts even when the read then failed.
        *digest.lock().unwrap_or_else(|p| p.into_inner()) = rest;
        if let Err(e) = read {
            tracing::debug!(key = %key, error = %e, "Reading the rest of a damaged file failed.");
        }
    }
    let d = digest.lock().unwrap_or_else(|p| p.into_inner()).clone();
    progress.add_bytes(d.size);
    progress.add_file();
    FileResult {
        key,
        records,
        size: d.size,
        sha256: d.hex(),
        error,
    }
}

/// `aerospike-backup-service verify`: verifies the backup folder `path` of the storage a
/// descriptor (one storage entry, as in a config's `storage:`) names, without a service or
/// a configuration. `encryption` gives the key; its mode, when left out, is the one the
/// backup's `metadata.yaml` names.
///
/// # Errors
/// A descriptor that does not parse, a storage that cannot be opened, no backup at `path`,
/// or an encrypted backup without a key; problems with the backup are in the report.
pub async fn verify_with_descriptor(
    plugins: &Registry,
    descriptor: &str,
    path: &str,
    encryption: Option<crate::config::EncryptionPolicy>,
) -> Result<VerifyReport, String> {
    let storage: crate::config::Storage = serde_yaml::from_str(descriptor).map_err(|e| {
        format!("storage descriptor: expected one storage entry (local-storage, s3-storage, azure-storage or gcp-storage): {e}")
    })?;
    let storage =
        crate::jobs::job_secrets::resolve_storage(&BTreeMap::new(), "verify", &storage, None)
            .await
            .map_err(|e| format!("storage descriptor: {e}"))?;
    let storage = crate::storage::wiring::open_storage(plugins, &storage)
        .map_err(|e| format!("storage descriptor: {e}"))?;
    let folders = crate::jobs::restore::plan_path(&storage, path)
        .await
        .map_err(|e| e.to_string())?;
    let encryption = encryption.map(|mut e| {
        if e.mode.is_none() {
            e.mode = folders
                .iter()
                .filter_map(|f| f.metadata.as_ref())
                .find_map(|m| {
                    m.encryption
                        .parse::<crate::config::EncryptionMode>()
                        .ok()
                        .filter(|m| *m != crate::config::EncryptionMode::None)
                })
                .map(crate::config::Spelled::new);
        }
        e
    });
    let policy = RestorePolicy {
        encryption,
        ..RestorePolicy::default()
    };
    let keys = ResolvedKeys::default();
    for f in &folders {
        crate::jobs::restore::folder_pipeline(plugins, &policy, &keys, f)
            .map_err(|e| e.to_string())?;
    }
    let progress = Arc::new(Progress::new(chrono::Utc::now()));
    verify(
        plugins,
        storage,
        &folders,
        &policy,
        &keys,
        progress,
        CancellationToken::new(),
    )
    .await
    .map_err(|e| e.to_string())
}
