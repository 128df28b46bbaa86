//! Which backups go after a successful full backup, and deleting them safely.
//!
//! The rule ([`plan`]) is pure: given the routine's complete backups, the new full's
//! timestamp and the policy's `retention`, it names the backup folders to delete.
//! - With `retention {full: N}`: the N newest full backups are kept (the new one counts).
//! - With `retention {incremental: K}`: incrementals are kept only from the oldest of the K
//!   newest fulls on (`0`: none before the new full). Without `incremental`, from the oldest
//!   kept full on: an incremental whose full is gone cannot be restored.
//! - Without `retention` (the seed's rule): every incremental before the new full goes.
//! - Empty incrementals (no records) always go.
//!
//! Nothing at or after the new full's timestamp is touched except empty incrementals, so a
//! concurrent incremental that finished after the full keeps its chain.
//!
//! Deleting ([`delete_folders`]) removes every `metadata.yaml` of a folder first, then its
//! other objects: a folder is unlisted before any of its data goes, and a crash in between
//! leaves an unmarked folder that the start-up sweep removes (`layout::find_incomplete`).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::RetentionPolicy;
use crate::plugins::{PluginError, Storage};

use crate::jobs::backup::{EngineContext, JobSpec, open_storage, resolve_routine};
use crate::storage::layout::{self, BackupKind, FoundBackup, METADATA_FILE};

/// One backup folder (all its namespaces) as retention sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBackup {
    pub kind: BackupKind,
    pub timestamp_ms: i64,
    /// `<routine>/<backup|incremental>/<name>` (the name may carry a timestamp-format suffix).
    pub folder: String,
    /// Records over its namespaces.
    pub records: u64,
}

/// Groups a listing (one entry per namespace) into backup folders, oldest first.
pub fn folders(found: &[FoundBackup], kind: BackupKind) -> Vec<StoredBackup> {
    let mut by_folder: BTreeMap<(i64, String), u64> = BTreeMap::new();
    for b in found {
        let folder = b
            .key
            .rsplit_once("/data/")
            .map_or(b.key.as_str(), |(f, _)| f)
            .to_string();
        *by_folder.entry((b.timestamp_ms, folder)).or_default() += b.metadata.record_count;
    }
    by_folder
        .into_iter()
        .map(|((timestamp_ms, folder), records)| StoredBackup {
            kind,
            timestamp_ms,
            folder,
            records,
        })
        .collect()
}

/// The folders to delete after the full backup at `new_full_ms` succeeded (module docs).
/// `fulls` and `incrementals` are the routine's complete backups, the new full among them.
pub fn plan(
    fulls: &[StoredBackup],
    incrementals: &[StoredBackup],
    new_full_ms: i64,
    policy: Option<&RetentionPolicy>,
) -> Vec<StoredBackup> {
    let mut older_fulls: Vec<&StoredBackup> = fulls
        .iter()
        .filter(|f| f.timestamp_ms <= new_full_ms)
        .collect();
    older_fulls.sort_by_key(|f| f.timestamp_ms);
    let mut delete = Vec::new();
    // Incrementals before this time go.
    let incremental_floor = match policy {
        None => new_full_ms,
        Some(p) => {
            let keep_full = p.full.map_or(older_fulls.len(), |n| n.max(1) as usize);
            let cut = older_fulls.len().saturating_sub(keep_full);
            delete.extend(older_fulls[..cut].iter().map(|f| (*f).clone()));
            let kept = &older_fulls[cut..];
            match p.incremental {
                Some(0) => new_full_ms,
                Some(k) => {
                    let k = (k as usize).min(kept.len());
                    kept.get(kept.len() - k)
                        .map_or(new_full_ms, |f| f.timestamp_ms)
                }
                // No `full` limit and no `incremental` limit: keep them all.
                None if p.full.is_none() => i64::MIN,
                None => kept.first().map_or(new_full_ms, |f| f.timestamp_ms),
            }
        }
    };
    delete.extend(
        incrementals
            .iter()
            .filter(|i| i.timestamp_ms < incremental_floor || i.records == 0)
            .cloned(),
    );
    delete
}

/// Deletes `folders`: first every `metadata.yaml` in all of them, then the rest (module
/// docs). Returns the folders whose objects are all gone; a folder that failed part-way is
/// logged and left for the start-up sweep (its markers go first, so it is never listed
/// with missing files).
pub async fn delete_folders(storage: &Arc<dyn Storage>, folders: &[StoredBackup]) -> Vec<String> {
    let mut listed = Vec::new();
    for f in folders {
        match layout::list_keys(storage, &format!("{}/", f.folder)).await {
            Ok(keys) => listed.push((f, keys)),
            Err(e) => tracing::warn!(key = %f.folder, error = %e,
                "Retention cannot list a backup; it stays."),
        }
    }
    let mut ok = vec![true; listed.len()];
    for (i, (f, keys)) in listed.iter().enumerate() {
        if let Err(e) = delete_markers(storage, keys).await {
            tracing::warn!(key = %f.folder, error = %e,
                "Retention cannot remove a backup's metadata; it stays.");
            ok[i] = false;
        }
    }
    let mut removed = Vec::new();
    for (i, (f, keys)) in listed.iter().enumerate() {
        if !ok[i] {
            continue;
        }
        let mut failed = None;
        for key in keys.iter().filter(|k| !is_marker(k)) {
            if let Err(e) = storage.delete(key).await {
                failed = Some(e);
            }
        }
        match failed {
            None => removed.push(f.folder.clone()),
            Some(e) => tracing::warn!(key = %f.folder, error = %e,
                "Retention removed a backup's metadata but not all its files; the start-up sweep removes the rest."),
        }
    }
    removed
}

fn is_marker(key: &str) -> bool {
    key.rsplit('/').next() == Some(METADATA_FILE)
}

/// The first phase of [`delete_folders`]: every `metadata.yaml` among `keys`.
///
/// # Errors
/// The first delete that failed.
pub async fn delete_markers(
    storage: &Arc<dyn Storage>,
    keys: &[String],
) -> Result<(), PluginError> {
    for key in keys.iter().filter(|k| is_marker(k)) {
        storage.delete(key).await?;
    }
    Ok(())
}

/// Applies retention for the routine of `spec` after its full backup at `new_full_ms`
/// succeeded, with the config the job ran with. Failures are logged, never fail the backup.
pub async fn after_full(ctx: &EngineContext, spec: &JobSpec, new_full_ms: i64) -> Vec<String> {
    let run = async {
        let storage_cfg = crate::jobs::job_secrets::routine_storage(&spec.config, &spec.routine)
            .await
            .map_err(|e| e.to_string())?;
        apply(ctx, spec, &storage_cfg, new_full_ms).await
    };
    match run.await {
        Ok(removed) => {
            for f in &removed {
                tracing::info!(routine = %spec.routine, key = %f, "Retention removed a backup.");
            }
            removed
        }
        Err(e) => {
            tracing::warn!(routine = %spec.routine, error = %e, "Retention did not run.");
            Vec::new()
        }
    }
}

/// The routine's retention policy applied in `storage` (its own or a `copy-to` storage, with
/// credentials resolved): the folders removed.
///
/// # Errors
/// The routine, plugins or storage cannot be had, or a listing failed.
pub async fn apply(
    ctx: &EngineContext,
    spec: &JobSpec,
    storage: &crate::config::Storage,
    new_full_ms: i64,
) -> Result<Vec<String>, String> {
    let r = resolve_routine(&spec.config, &spec.routine).map_err(|e| e.to_string())?;
    let plugins = ctx
        .plugins_for(&spec.config)
        .await
        .map_err(|e| e.to_string())?;
    let storage = open_storage(&plugins, storage).map_err(|e| e.to_string())?;
    let mut listed = Vec::new();
    for kind in [BackupKind::Full, BackupKind::Incremental] {
        let found = layout::list_backups(&storage, &spec.routine, kind)
            .await
            .map_err(|e| e.to_string())?;
        listed.push(folders(&found, kind));
    }
    let doomed = plan(
        &listed[0],
        &listed[1],
        new_full_ms,
        r.policy.retention.as_ref(),
    );
    Ok(delete_folders(&storage, &doomed).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(kind: BackupKind, ts: i64, records: u64) -> StoredBackup {
        StoredBackup {
            kind,
            timestamp_ms: ts,
            folder: format!("r/{}/{ts}", kind.dir()),
            records,
        }
    }

    fn full(ts: i64) -> StoredBackup {
        b(BackupKind::Full, ts, 10)
    }

    fn inc(ts: i64) -> StoredBackup {
        b(BackupKind::Incremental, ts, 1)
    }

    fn stamps(v: &[StoredBackup]) -> Vec<(BackupKind, i64)> {
        v.iter().map(|s| (s.kind, s.timestamp_ms)).collect()
    }

    use BackupKind::{Full as F, Incremental as I};

    #[test]
    fn without_a_policy_the_incrementals_before_the_new_full_go_and_fulls_stay() {
        let fulls = [full(1), full(5)];
        let incs = [inc(2), inc(3), inc(6)];
        assert_eq!(stamps(&plan(&fulls, &incs, 5, None)), [(I, 2), (I, 3)]);
    }

    #[test]
    fn retention_keeps_the_newest_fulls_and_the_incrementals_of_the_kept_ones() {
        let fulls = [full(10), full(20), full(30), full(40)];
        let incs = [inc(11), inc(21), inc(31), inc(35)];
        let p = RetentionPolicy {
            full: Some(2),
            incremental: Some(1),
        };
        assert_eq!(
            stamps(&plan(&fulls, &incs, 40, Some(&p))),
            [(F, 10), (F, 20), (I, 11), (I, 21), (I, 31), (I, 35)]
        );
        let p = RetentionPolicy {
            full: Some(3),
            incremental: Some(2),
        };
        assert_eq!(
            stamps(&plan(&fulls, &incs, 40, Some(&p))),
            [(F, 10), (I, 11), (I, 21)]
        );
        // incremental: 0 keeps none before the new full.
        let p = RetentionPolicy {
            full: Some(4),
            incremental: Some(0),
        };
        assert_eq!(
            stamps(&plan(&fulls, &incs, 40, Some(&p))),
            [(I, 11), (I, 21), (I, 31), (I, 35)]
        );
    }

    #[test]
    fn retention_without_incremental_drops_only_incrementals_of_deleted_fulls() {
        let fulls = [full(10), full(20), full(30)];
        let incs = [inc(11), inc(21), inc(31)];
        let p = RetentionPolicy {
            full: Some(2),
            incremental: None,
        };
        assert_eq!(
            stamps(&plan(&fulls, &incs, 30, Some(&p))),
            [(F, 10), (I, 11)]
        );
        // An empty policy keeps everything (but empty incrementals).
        assert!(plan(&fulls, &incs, 30, Some(&RetentionPolicy::default())).is_empty());
    }

    #[test]
    fn empty_incrementals_go_and_nothing_after_the_new_full_is_touched() {
        let fulls = [full(10), full(20), full(30)];
        let incs = [b(I, 25, 0), inc(31), b(I, 32, 0)];
        let p = RetentionPolicy {
            full: Some(1),
            incremental: Some(0),
        };
        // The new full is 20: the full at 30 (newer) and incremental 31 stay.
        assert_eq!(
            stamps(&plan(&fulls, &incs, 20, Some(&p))),
            [(F, 10), (I, 25), (I, 32)]
        );
    }

    #[test]
    fn folders_group_namespaces_and_keep_suffixed_names() {
        let meta = |ns: &str, records| layout::BackupMetadata {
            created: chrono::Utc::now(),
            finished: None,
            from: layout::zero_time(),
            namespace: ns.into(),
            record_count: records,
            byte_count: 0,
            file_count: 0,
            secondary_index_count: 0,
            udf_count: 0,
            compression: "NONE".into(),
            encryption: "NONE".into(),
        };
        let found = vec![
            FoundBackup {
                key: "r/incremental/1000_2024-01-01T00-00-01/data/a".into(),
                timestamp_ms: 1000,
                metadata: meta("a", 0),
                pipeline: None,
            },
            FoundBackup {
                key: "r/incremental/1000_2024-01-01T00-00-01/data/b".into(),
                timestamp_ms: 1000,
                metadata: meta("b", 3),
                pipeline: None,
            },
        ];
        assert_eq!(
            folders(&found, I),
            vec![StoredBackup {
                kind: I,
                timestamp_ms: 1000,
                folder: "r/incremental/1000_2024-01-01T00-00-01".into(),
                records: 3,
            }]
        );
    }
}
