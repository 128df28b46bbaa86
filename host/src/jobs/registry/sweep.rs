//! The start-up sweep of the job registry: backups cut off by the last stop are resumed from
//! their checkpoint or removed, and local staging left by a killed upload is emptied, before
//! any job may start (`docs/RELIABILITY.md`).

use super::*;

impl JobRegistry {
    /// Returns once the start-up sweep (if one runs) is done, so that a listing never walks
    /// folders while the sweep deletes them.
    pub async fn sweep_done(&self) {
        drop(self.inner.gate.read().await);
    }

    /// Starts [`JobRegistry::sweep_incomplete`] in the background and holds back every job
    /// until it is done. Call once at start-up, before anything can trigger a job.
    pub fn sweep_incomplete_at_start(&self) -> tokio::task::JoinHandle<Vec<String>> {
        let gate = self.inner.gate.clone().try_write_owned();
        let this = self.clone();
        tokio::spawn(async move {
            let _gate = match gate {
                Ok(g) => g,
                Err(_) => this.inner.gate.clone().write_owned().await,
            };
            let (removed, resumable) = this.sweep().await;
            // Registered before the gate opens, so a scheduled full of the same routine
            // finds this one running instead of starting beside it.
            for (routine, cp) in resumable {
                let ts = cp.timestamp;
                let started = this
                    .launch(
                        &routine,
                        BackupKind::Full,
                        |_, _| Ok(()),
                        Some(Arc::new(cp)),
                    )
                    .await;
                if let Err(e) = started {
                    tracing::warn!(routine = %routine, timestamp = ts, error = %e,
                        "Cannot resume the backup cut off by the last stop.");
                }
            }
            removed
        })
    }

    /// Deletes what crashed jobs left behind: for every routine, in its storage, the backup
    /// folders (or namespace folders) that never got their `metadata.yaml`, as
    /// [`layout::find_incomplete`] decides. Folders of jobs running in this process are
    /// skipped. Each removed folder is logged (warn) with its routine and key; a storage
    /// that cannot be opened or listed is logged and left alone.
    ///
    /// Then removes the partial uploads of killed processes from local storages' staging
    /// directories ([`crate::storage::partial_uploads`]).
    ///
    /// Returns the removed folders.
    pub async fn sweep_incomplete(&self) -> Vec<String> {
        self.sweep().await.0
    }

    /// The sweep, and the checkpointed full backups it kept to resume.
    async fn sweep(
        &self,
    ) -> (
        Vec<String>,
        Vec<(String, crate::storage::resume::Checkpoint)>,
    ) {
        let config = self.inner.store.current();
        let found = self.sweep_folders(&config).await;
        self.sweep_partial_uploads(&config).await;
        found
    }

    /// Removes staged upload parts older than this registry from every local storage.
    async fn sweep_partial_uploads(&self, config: &crate::config::Config) {
        use crate::storage::partial_uploads::{local_staging_dirs, remove_stale_parts};
        let before = self.inner.created;
        for (storage, dir) in local_staging_dirs(config) {
            let d = dir.clone();
            let result = tokio::task::spawn_blocking(move || remove_stale_parts(&d, before))
                .await
                .map_err(std::io::Error::other)
                .and_then(|r| r);
            match result {
                Ok(r) if r.files > 0 => tracing::warn!(storage = %storage, dir = %dir.display(),
                    files = r.files, bytes = r.bytes,
                    "Removed partial uploads (the service stopped while writing them)."),
                Ok(_) => {}
                Err(e) => tracing::warn!(storage = %storage, dir = %dir.display(), error = %e,
                    "Cannot remove partial uploads."),
            }
        }
    }

    async fn sweep_folders(
        &self,
        config: &crate::config::Config,
    ) -> (
        Vec<String>,
        Vec<(String, crate::storage::resume::Checkpoint)>,
    ) {
        let ctx = match self.context().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "Cannot look for incomplete backups.");
                return (Vec::new(), Vec::new());
            }
        };
        let mut resumable = Vec::new();
        // One registry for every routine: they all run with this config.
        let plugins = ctx.plugins_for(config).await.map_err(|e| e.to_string());
        let mut removed = Vec::new();
        for (routine, r) in &config.backup_routines {
            if !config.storage.contains_key(&r.storage) {
                continue;
            }
            let storage_cfg = crate::jobs::job_secrets::routine_storage(config, routine)
                .await
                .map_err(|e| e.to_string());
            let storage = plugins.clone().and_then(|plugins| {
                open_storage(&plugins, &storage_cfg?).map_err(|e| e.to_string())
            });
            let found = match storage {
                Ok(storage) => layout::incomplete_folders(&storage, routine)
                    .await
                    .map(|f| (storage, f))
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e),
            };
            let (storage, folders) = match found {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(routine = %routine, storage = %r.storage, error = %e,
                        "Cannot look for incomplete backups of the routine.");
                    continue;
                }
            };
            for f in folders {
                if ctx.is_claimed(routine, f.timestamp_ms) {
                    continue;
                }
                if let Some(cp) = self.resumable(&storage, routine, &f, config).await {
                    resumable.push((routine.clone(), cp));
                    continue;
                }
                let mut failed = None;
                for key in &f.keys {
                    if let Err(e) = crate::storage::files::remove_leftover(&storage, key).await {
                        failed = Some(e);
                    }
                }
                match failed {
                    None => {
                        tracing::warn!(routine = %routine, key = %f.folder, files = f.keys.len(),
                            "Removed an incomplete backup (the service stopped before its metadata was written).");
                        removed.push(f.folder);
                    }
                    Some(e) => tracing::warn!(routine = %routine, key = %f.folder, error = %e,
                        "Cannot remove an incomplete backup."),
                }
            }
        }
        (removed, resumable)
    }

    /// The checkpoint of an incomplete full backup folder, if the backup may be resumed
    /// under `config` now; a refusal is logged with its reason (the folder is then swept).
    async fn resumable(
        &self,
        storage: &Arc<dyn crate::plugins::Storage>,
        routine: &str,
        f: &layout::IncompleteFolder,
        config: &crate::config::Config,
    ) -> Option<crate::storage::resume::Checkpoint> {
        let checkpoint_key = format!("{}/{}", f.folder, crate::storage::resume::RESUME_FILE);
        if f.kind != BackupKind::Full || !f.keys.contains(&checkpoint_key) {
            return None;
        }
        let why = match crate::storage::resume::load(storage, &f.folder).await {
            Ok(Some(cp)) if cp.routine != routine || cp.timestamp != f.timestamp_ms => {
                "its checkpoint names another backup".to_string()
            }
            Ok(Some(cp)) => match cp.refusal(config, self.now()) {
                None => return Some(cp),
                Some(why) => why,
            },
            Ok(None) => return None,
            Err(e) => format!("its checkpoint cannot be read: {e}"),
        };
        tracing::warn!(routine = %routine, key = %f.folder, reason = %why,
            "Not resuming a backup cut off by the last stop; it is removed.");
        None
    }
}
