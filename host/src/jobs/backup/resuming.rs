//! A full backup cut off by a stop or crash, taken up again from its `resume.yaml`: the
//! stored files are kept and each namespace's scans go on from their partition cursors.

use super::*;

/// Finishes a full backup from its checkpoint: the folder keeps exactly the files the
/// checkpoint lists (anything newer is deleted, partial uploads aborted), and each namespace
/// goes on from where its stored files end.
pub(super) async fn resume_job(
    ctx: &EngineContext,
    spec: &JobSpec,
    cp: Arc<Checkpoint>,
    r: ResolvedRoutine,
    wiring: Wiring,
    progress: Arc<Progress>,
    cancel: CancellationToken,
) -> Result<JobReport, EngineError> {
    let storage = wiring.storage.clone();
    if !ctx.claim(&r.name, cp.timestamp) {
        return Err(EngineError::Config(format!(
            "backup {} of routine {} is already being written",
            cp.timestamp, r.name
        )));
    }
    let _claim = ClaimGuard {
        ctx,
        key: (r.name.clone(), cp.timestamp),
    };
    let folder = layout::backup_folder_named(&r.name, BackupKind::Full, &cp.folder);
    let kept: std::collections::HashSet<String> = cp.kept_keys(&folder).into_iter().collect();
    let resume_key = format!("{folder}/{RESUME_FILE}");
    let keys = layout::list_keys(&storage, &format!("{folder}/"))
        .await
        .map_err(|e| EngineError::plugin("listing backups", e))?;
    let mut dropped = 0usize;
    for key in keys
        .iter()
        .filter(|k| !kept.contains(*k) && **k != resume_key)
    {
        crate::storage::files::remove_leftover(&storage, key)
            .await
            .map_err(|e| {
                let step = match crate::storage::files::marked_object(key) {
                    Some(object) => format!("removing the marker of {object}"),
                    None => format!("writing {key}"),
                };
                EngineError::plugin(step, e)
            })?;
        dropped += 1;
    }
    let written = Arc::new(Written::default());
    for n in cp
        .namespaces
        .iter()
        .filter(|n| n.state != NamespaceState::Pending)
    {
        let ns_folder = format!("{folder}/data/{}", n.namespace);
        for f in &n.files {
            let key = format!("{ns_folder}/{}", f.name);
            written.push(key.clone());
            written.sum(&key, f.size, f.sha256.clone());
        }
    }
    written.push(resume_key);
    let kept_records: u64 = cp
        .namespaces
        .iter()
        .filter(|n| n.state != NamespaceState::Pending)
        .map(|n| n.records)
        .sum();
    tracing::info!(routine = %r.name, timestamp = cp.timestamp, kept_files = kept.len(),
        kept_records, dropped_files = dropped, "Resuming a backup cut off by a restart.");
    progress.add_records(kept_records);
    let checkpoint = Checkpointer::new(storage.clone(), &folder, ctx.clock.clone(), (*cp).clone())
        .map_err(|e| EngineError::Config(format!("{RESUME_FILE}: {e}")))?;
    let parts = JobParts {
        wiring,
        window: Window {
            from: None,
            created: cp.created,
            ts: cp.timestamp,
            name: cp.folder.clone(),
        },
        written,
        checkpoint: Some(Arc::new(checkpoint)),
        resumed: Some(cp),
    };
    run_parts(ctx, spec, &r, parts, progress, cancel).await
}

impl BackupRun<'_> {
    /// A namespace of a resumed backup: what its checkpoint keeps, plus the scan of the
    /// partitions it had not finished.
    pub(super) async fn resume_namespace(
        &self,
        nsr: &NamespaceRun<'_>,
        n: &crate::storage::resume::NamespaceCheckpoint,
    ) -> Result<NamespaceStats, EngineError> {
        let r = self.routine;
        let mut stats = NamespaceStats {
            records: n.records,
            bytes: n.bytes,
            files: n.files.len() as u64,
            sindexes: n.sindexes,
            udfs: n.udfs,
        };
        self.progress.add_bytes(n.bytes);
        for _ in &n.files {
            self.progress.add_file();
        }
        if n.state == NamespaceState::Scanned {
            return Ok(stats);
        }
        let files = self.file_spec(nsr.ns, n.next_file.max(1));
        let ranges = n
            .ranges(r.policy.parallel())
            .map_err(|m| EngineError::Config(format!("{RESUME_FILE}: {m}")))?;
        if !ranges.is_empty() {
            let rest = NamespaceRun {
                ns: nsr.ns,
                ranges: &ranges,
                limiter: nsr.limiter.clone(),
                bandwidth: nsr.bandwidth.clone(),
            };
            self.scan_namespace(&rest, files.clone(), &mut stats)
                .await?;
        }
        if let Some(cp) = &self.checkpoint {
            cp.namespace_scanned(nsr.ns, files.counter.load(Ordering::Relaxed))
                .await?;
        }
        Ok(stats)
    }
}
