//! The files a backup keeps beside its records: each node's configuration and the
//! secondary-index and UDF definitions of a namespace, written with their checksums.

use super::*;

impl BackupRun<'_> {
    /// `configuration/aerospike_<i>.conf`, one per node (D19).
    pub(super) async fn write_configurations(
        &self,
        namespaces: &[String],
    ) -> Result<(), EngineError> {
        let folder = layout::backup_folder_named(&self.routine.name, self.kind, &self.window.name);
        for (i, text) in cluster::cluster_configurations(&self.client, namespaces)
            .await?
            .into_iter()
            .enumerate()
        {
            let key = format!("{folder}/configuration/aerospike_{i}.conf");
            self.written.push(key.clone());
            put_object(&self.storage, &key, text.into_bytes()).await?;
        }
        Ok(())
    }

    /// The `metadata_<ns>_<k>.asb` file with the UDFs and secondary indexes, if any, and
    /// the `metadata_<ns>_<k>.asb33` sidecar with the indexes asrestore cannot read.
    pub(super) async fn write_system_file(
        &self,
        files: &FileSpec,
        stats: &mut NamespaceStats,
    ) -> Result<(), EngineError> {
        let (r, ns) = (self.routine, files.namespace.as_str());
        let udfs = if r.policy.no_udfs.unwrap_or(false) {
            Vec::new()
        } else {
            cluster::read_udfs(&self.client).await?
        };
        let sindexes = if r.policy.no_indexes.unwrap_or(false) {
            Vec::new()
        } else {
            cluster::read_sindexes(&self.client, ns).await?
        };
        stats.udfs = udfs.len() as u64;
        stats.sindexes = sindexes.len() as u64;
        // asrestore 4.5.8 fails a whole file on a set (`S`) or expression (`* e`) index
        // line, so those go to a file it skips (not `.asb`): the rest stays restorable by it.
        let (readable, extended): (Vec<_>, Vec<_>) =
            sindexes.into_iter().partition(|s| s.asrestore_reads());
        let io = |e: std::io::Error| EngineError::Encode(e.to_string());
        if !udfs.is_empty() || !readable.is_empty() {
            let mut enc = AsbEncoder::new(Vec::new(), files.options);
            enc.write_header(ns).map_err(io)?;
            enc.write_first_file().map_err(io)?;
            // backup-go order: UDFs, then indexes (an index may need no UDF, but restore
            // applies them in file order either way).
            for u in &udfs {
                enc.write_udf(u).map_err(io)?;
            }
            for s in &readable {
                enc.write_sindex(s).map_err(io)?;
            }
            let k = files.counter.fetch_add(1, Ordering::Relaxed);
            self.store_system_file(files, stats, metadata_asb_name(ns, k), enc.into_inner())
                .await?;
        }
        if !extended.is_empty() {
            let mut enc = AsbEncoder::new(Vec::new(), files.options);
            enc.write_header_version(ns, ASB_EXTENDED_VERSION)
                .map_err(io)?;
            for s in &extended {
                enc.write_sindex(s).map_err(io)?;
            }
            let k = files.counter.fetch_add(1, Ordering::Relaxed);
            self.store_system_file(files, stats, extended_asb_name(ns, k), enc.into_inner())
                .await?;
        }
        Ok(())
    }

    /// Runs `plain` through the codec chain and stores it as `name` in the folder.
    async fn store_system_file(
        &self,
        files: &FileSpec,
        stats: &mut NamespaceStats,
        name: String,
        plain: Vec<u8>,
    ) -> Result<(), EngineError> {
        let p = files.pipeline.clone();
        let stored = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, EngineError> {
            let mut codec = p
                .encoder()
                .map_err(|e| EngineError::plugin("starting the codec chain", e))?;
            let mut out = codec
                .push(&plain)
                .map_err(|e| EngineError::plugin("encoding", e))?;
            out.extend(
                codec
                    .finish()
                    .map_err(|e| EngineError::plugin("encoding", e))?,
            );
            Ok(out)
        })
        .await
        .map_err(|e| EngineError::Encode(format!("encoder thread: {e}")))??;
        let key = format!("{}/{name}", files.folder);
        stats.bytes += stored.len() as u64;
        stats.files += 1;
        self.progress.add_bytes(stored.len() as u64);
        self.progress.add_file();
        self.put_summed(&key, stored).await
    }

    /// Writes a whole data object (a `metadata_*.asb`), noting its checksum like the
    /// streamed data files'.
    async fn put_summed(&self, key: &str, stored: Vec<u8>) -> Result<(), EngineError> {
        let mut digest = crate::storage::files::StoredDigest::default();
        digest.update(&stored);
        self.written.push(key.to_string());
        put_object(&self.storage, key, stored).await?;
        self.written.sum(key, digest.size, digest.hex());
        Ok(())
    }
}
