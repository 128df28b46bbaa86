//! A second copy of each backup (issue 27, the 3-2-1 rule): a routine's `copy-to` names
//! storages that receive every completed backup, any store to any store, streaming through
//! the storage plugins.
//!
//! A copy writes the data files first and each namespace's `metadata.yaml` last, as a
//! backup does, so a copy cut short is never listed as complete. Every data file is hashed
//! while it is copied and compared with the source's `checksums.yaml`, then read back from
//! the target and hashed again: a copy is complete only when what the target holds is what
//! the backup wrote. A failed copy removes what it wrote and is tried again
//! ([`ATTEMPTS`] times); it is logged, counted and shown in `currentBackup`, and never
//! touches the primary backup. After a full backup's copy, the routine's retention runs on
//! the copy too.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::plugins::{Registry, Storage};

use crate::jobs::backup::{JobReport, JobSpec};
use crate::jobs::context::EngineContext;
use crate::jobs::integrity::{self, FileSum};
use crate::storage::files::{READ_CHUNK_BYTES, StoredDigest};
use crate::storage::layout::{self, BackupKind, METADATA_FILE};

/// Tries of one copy before it is reported failed.
pub const ATTEMPTS: u32 = 3;
/// Wait before the second try; doubled before each next one.
const FIRST_RETRY_DELAY: Duration = Duration::from_secs(1);

/// How the newest copy of a routine's backup to one storage ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct CopyResult {
    /// `success` or `failure`.
    pub outcome: String,
    /// The backup folder copied.
    pub backup: String,
    #[schema(value_type = String, format = DateTime)]
    pub time: DateTime<Utc>,
    pub files: u64,
    pub bytes: u64,
    /// Tries made.
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The newest copy result per routine and target storage.
#[derive(Debug, Clone, Default)]
pub struct CopyResults(Arc<Mutex<HashMap<String, HashMap<String, CopyResult>>>>);

impl CopyResults {
    fn note(&self, routine: &str, storage: &str, result: CopyResult) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(routine.to_string())
            .or_default()
            .insert(storage.to_string(), result);
    }

    /// The routine's newest results by target storage.
    pub fn of(&self, routine: &str) -> HashMap<String, CopyResult> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(routine)
            .cloned()
            .unwrap_or_default()
    }
}

/// Copies the backup `report` of `spec` to each of the routine's `copy-to` storages.
/// Failures are logged and recorded; they never fail the backup.
pub async fn after_backup(
    ctx: &EngineContext,
    spec: &JobSpec,
    kind: BackupKind,
    report: &JobReport,
    results: &CopyResults,
    metrics: Option<&crate::metrics::Metrics>,
) {
    let Some(routine) = spec.config.backup_routines.get(&spec.routine) else {
        return;
    };
    let targets = routine.copy_to.clone().unwrap_or_default();
    if targets.is_empty() {
        return;
    }
    // `<routine>/<kind>/<ts>` of the namespace folders (an empty incremental has none).
    let Some(folder) = report
        .namespaces
        .iter()
        .filter_map(|n| n.key.as_deref())
        .find_map(|k| k.split_once("/data/").map(|(f, _)| f.to_string()))
    else {
        return;
    };
    for target in targets {
        let mut attempts = 0;
        let mut delay = FIRST_RETRY_DELAY;
        let outcome = loop {
            attempts += 1;
            match copy_once(ctx, &spec.config, &spec.routine, &target, &folder).await {
                Ok(done) => break Ok(done),
                Err(e) if attempts >= ATTEMPTS => break Err(e),
                Err(e) => {
                    tracing::warn!(routine = %spec.routine, storage = %target, backup = %folder,
                        attempt = attempts, error = %e, "Copy failed; trying again.");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
            }
        };
        let now = ctx.clock.now();
        let result = match outcome {
            Ok((files, bytes)) => {
                tracing::info!(routine = %spec.routine, storage = %target, backup = %folder,
                    files, bytes, "Backup copied.");
                if kind == BackupKind::Full {
                    retention_on_copy(ctx, spec, &target, report.timestamp_ms).await;
                }
                CopyResult {
                    outcome: "success".into(),
                    backup: folder.clone(),
                    time: now,
                    files,
                    bytes,
                    attempts,
                    message: None,
                }
            }
            Err(e) => {
                tracing::error!(routine = %spec.routine, storage = %target, backup = %folder,
                    attempts, error = %e, "Copy failed; the backup itself is complete.");
                CopyResult {
                    outcome: "failure".into(),
                    backup: folder.clone(),
                    time: now,
                    files: 0,
                    bytes: 0,
                    attempts,
                    message: Some(e),
                }
            }
        };
        if let Some(m) = metrics {
            m.copy_events
                .with_label_values(&[spec.routine.as_str(), target.as_str(), &result.outcome])
                .inc();
        }
        results.note(&spec.routine, &target, result);
    }
}

/// Opens storage `name` of `config` with its credentials resolved (the routine's agent).
async fn open_named(
    plugins: &Registry,
    config: &Config,
    routine: &str,
    name: &str,
) -> Result<Arc<dyn Storage>, String> {
    let resolved = crate::jobs::job_secrets::routine_storage_named(config, routine, name)
        .await
        .map_err(|e| e.to_string())?;
    crate::storage::wiring::open_storage(plugins, &resolved)
        .map_err(|e| format!("storage {name}: {e}"))
}

/// One try: every object of `folder`, `metadata.yaml` files last; on failure what was
/// written is removed again. Returns the files and bytes copied.
async fn copy_once(
    ctx: &EngineContext,
    config: &Arc<Config>,
    routine: &str,
    target_name: &str,
    folder: &str,
) -> Result<(u64, u64), String> {
    let plugins = ctx.plugins_for(config).await.map_err(|e| e.to_string())?;
    let source = open_named(
        &plugins,
        config,
        routine,
        &config.backup_routines[routine].storage,
    )
    .await?;
    let target = open_named(&plugins, config, routine, target_name).await?;
    let keys = layout::list_keys(&source, &format!("{folder}/"))
        .await
        .map_err(|e| format!("listing {folder}: {e}"))?;
    // Expected digests of every data file, from each namespace folder's checksums.yaml.
    let mut expected: HashMap<String, FileSum> = HashMap::new();
    for k in keys
        .iter()
        .filter(|k| k.ends_with(&format!("/{METADATA_FILE}")))
    {
        let ns_folder = k.trim_end_matches(&format!("/{METADATA_FILE}"));
        if let Some(sums) = integrity::read_checksums(&source, ns_folder, &keys).await? {
            for f in sums.files {
                expected.insert(format!("{ns_folder}/{}", f.name), f);
            }
        }
    }
    let (markers, data): (Vec<&String>, Vec<&String>) = keys
        .iter()
        .partition(|k| k.ends_with(&format!("/{METADATA_FILE}")));
    let mut written: Vec<String> = Vec::new();
    let result = async {
        let (mut files, mut bytes) = (0u64, 0u64);
        for key in data.iter().chain(markers.iter()) {
            written.push((*key).clone());
            let digest = copy_object(&source, &target, key).await?;
            if let Some(want) = expected.get(*key) {
                check(key, "source", &digest, want)?;
                // What the target holds, read back: the copy is verified, not assumed.
                let mut back = StoredDigest::default();
                crate::storage::files::hash_stored(&target, key, 0, &mut back, None)
                    .await
                    .map_err(|e| format!("reading back {key}: {e}"))?;
                check(key, "copy", &back, want)?;
            }
            files += 1;
            bytes += digest.size;
        }
        Ok::<_, String>((files, bytes))
    }
    .await;
    if result.is_err() {
        crate::storage::files::remove_written(&target, written).await;
    }
    result
}

fn check(key: &str, which: &str, got: &StoredDigest, want: &FileSum) -> Result<(), String> {
    if got.size != want.size || got.hex() != want.sha256 {
        return Err(format!(
            "{key}: the {which} differs from checksums.yaml ({} bytes, {} recorded)",
            got.size, want.size
        ));
    }
    Ok(())
}

/// Streams one object from `source` to `target` in parts, hashing it on the way.
async fn copy_object(
    source: &Arc<dyn Storage>,
    target: &Arc<dyn Storage>,
    key: &str,
) -> Result<StoredDigest, String> {
    let part_size = target
        .capabilities()
        .min_part_size
        .max(u64::from(READ_CHUNK_BYTES)) as usize;
    let mut dl = source
        .open(key, 0, None)
        .await
        .map_err(|e| format!("reading {key}: {e}"))?;
    let mut up = target
        .begin_upload(key, None)
        .await
        .map_err(|e| format!("writing {key}: {e}"))?;
    let mut digest = StoredDigest::default();
    let mut buf: Vec<u8> = Vec::new();
    let mut part = 1u32;
    let copied = async {
        while let Some(chunk) = dl
            .next(READ_CHUNK_BYTES)
            .await
            .map_err(|e| format!("reading {key}: {e}"))?
        {
            digest.update(&chunk);
            buf.extend_from_slice(&chunk);
            if buf.len() >= part_size {
                up.write_part(part, Bytes::from(std::mem::take(&mut buf)))
                    .await
                    .map_err(|e| format!("writing {key}: {e}"))?;
                part += 1;
            }
        }
        if !buf.is_empty() || part == 1 {
            up.write_part(part, Bytes::from(std::mem::take(&mut buf)))
                .await
                .map_err(|e| format!("writing {key}: {e}"))?;
        }
        Ok::<_, String>(())
    }
    .await;
    match copied {
        Ok(()) => {
            up.finish()
                .await
                .map_err(|e| format!("finishing {key}: {e}"))?;
            Ok(digest)
        }
        Err(e) => {
            let _ = up.abort().await;
            Err(e)
        }
    }
}

/// The routine's retention applied to the copy in `target`, after a full was copied.
async fn retention_on_copy(ctx: &EngineContext, spec: &JobSpec, target: &str, new_full_ms: i64) {
    let run = async {
        let storage =
            crate::jobs::job_secrets::routine_storage_named(&spec.config, &spec.routine, target)
                .await
                .map_err(|e| e.to_string())?;
        crate::jobs::retention::apply(ctx, spec, &storage, new_full_ms).await
    };
    match run.await {
        Ok(removed) => {
            for f in removed {
                tracing::info!(routine = %spec.routine, storage = %target, key = %f,
                    "Retention removed a copied backup.");
            }
        }
        Err(e) => tracing::warn!(routine = %spec.routine, storage = %target, error = %e,
            "Retention did not run on the copy."),
    }
}
