//! What every job shares and what one job starts from: the [`EngineContext`]
//! (plugins, scan slots, claimed backup folders) and a routine resolved from the config.
//!
//! This module sits above [`crate::aerospike::cluster`], [`crate::storage::wiring`] and [`crate::storage::files`], which
//! take plain values; nothing below uses it back.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

use aerospike::Client;

use crate::config::{
    AerospikeCluster, BackupPolicy, BackupRoutine, Config, PluginDefinition,
    Storage as StorageConfig,
};
use crate::plugins::Registry;

use crate::aerospike::cluster::{self, ScanSlots};
use crate::error::EngineError;

pub use crate::clock::{Clock, ManualClock, SystemClock};

/// What every job shares: plugins, the clusters' scan slots, the clock, and the backup
/// timestamps jobs have claimed but not yet written.
pub struct EngineContext {
    /// The default plugins; a job takes its registry from [`EngineContext::plugins_for`].
    pub plugins: Arc<Registry>,
    pub slots: ScanSlots,
    pub clock: Arc<dyn Clock>,
    claimed: Mutex<HashSet<(String, i64)>>,
    /// The registry with the user plugins of the last `plugins:` section seen, keyed by it.
    user_plugins: tokio::sync::Mutex<Option<UserRegistry>>,
    /// Set when the service cancels jobs to stop: a checkpointed full backup then keeps its
    /// files to resume at the next start instead of deleting them.
    suspending: std::sync::atomic::AtomicBool,
}

/// A `plugins:` section and the registry built from it.
type UserRegistry = (BTreeMap<String, PluginDefinition>, Arc<Registry>);

impl fmt::Debug for EngineContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EngineContext")
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

impl EngineContext {
    pub fn new(plugins: Arc<Registry>, clock: Arc<dyn Clock>) -> Self {
        EngineContext {
            plugins,
            slots: ScanSlots::default(),
            clock,
            claimed: Mutex::new(HashSet::new()),
            user_plugins: tokio::sync::Mutex::new(None),
            suspending: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Jobs canceled from now on are cut off by a shutdown (see [`EngineContext::is_suspending`]).
    pub fn suspend(&self) {
        self.suspending
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// True once [`EngineContext::suspend`] was called.
    pub fn is_suspending(&self) -> bool {
        self.suspending.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The plugins of a job running with `config`: the defaults, plus the config's
    /// `plugins:` entries when it has any. That registry is built (hash-checked and compiled,
    /// on a blocking thread) once per distinct `plugins:` section and reused until the
    /// section changes; a job keeps the `Arc` it got, so a config change never swaps the
    /// plugins of a running job.
    ///
    /// A configured plugin that cannot be read, fails its hash or does not load is refused
    /// by name when asked for, not by the whole registry.
    ///
    /// # Errors
    /// Only if the loader task itself fails.
    pub async fn plugins_for(&self, config: &Config) -> Result<Arc<Registry>, EngineError> {
        if config.plugins.is_empty() {
            return Ok(self.plugins.clone());
        }
        let mut cached = self.user_plugins.lock().await;
        let user = crate::plugin_check::user_plugin_specs(config);
        if let Some((section, registry)) = cached.as_ref()
            && *section == *config.plugins
        {
            // The pins hold for the files on disk now, not only when the config was
            // accepted: a build copied over a pinned file is refused, not silently ignored.
            let specs = user.clone();
            let changed = tokio::task::spawn_blocking(move || {
                specs.into_iter().find(|(_, s)| {
                    std::fs::read(&s.path).map_or(true, |b| {
                        !crate::plugins::registry::sha256_hex(&b)
                            .eq_ignore_ascii_case(s.sha256.trim())
                    })
                })
            })
            .await
            .map_err(|e| EngineError::Config(format!("plugin loader: {e}")))?;
            match changed {
                None => return Ok(registry.clone()),
                Some((name, s)) => tracing::error!(plugin = %name, path = %s.path.display(),
                    "A plugin file changed on disk since it was loaded; it no longer matches its sha256 pin."),
            }
        }
        let defaults = self.plugins.clone();
        let (registry, refused) =
            tokio::task::spawn_blocking(move || defaults.with_user_plugins_or_refused(&user))
                .await
                .map_err(|e| EngineError::Config(format!("plugin loader: {e}")))?;
        // Checked when the config was accepted, so this is a file changed on disk since: the
        // jobs that need the plugin fail naming it, the rest go on.
        for e in &refused {
            tracing::error!(
                plugin = %e.plugin,
                error = %e,
                "A configured plugin no longer loads; jobs that use it will fail."
            );
        }
        let registry = Arc::new(registry);
        // Not kept while something is refused, so that a restored file is picked up.
        if refused.is_empty() {
            *cached = Some(((*config.plugins).clone(), registry.clone()));
        }
        Ok(registry)
    }

    /// True while a running job of `routine` holds the backup folder timestamp `ts_ms`.
    pub fn is_claimed(&self, routine: &str, ts_ms: i64) -> bool {
        self.claimed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&(routine.to_string(), ts_ms))
    }

    /// Claims the backup folder timestamp `ts_ms` of `routine`; false if a job holds it.
    pub(crate) fn claim(&self, routine: &str, ts_ms: i64) -> bool {
        self.claimed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((routine.to_string(), ts_ms))
    }

    /// Gives a claimed timestamp back (the job ended).
    pub(crate) fn release(&self, routine: &str, ts_ms: i64) {
        self.claimed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(routine.to_string(), ts_ms));
    }
}

/// A routine with everything it names looked up.
#[derive(Debug, Clone)]
pub struct ResolvedRoutine {
    pub name: String,
    pub routine: BackupRoutine,
    pub policy: BackupPolicy,
    pub cluster_name: String,
    pub cluster: AerospikeCluster,
    pub storage: StorageConfig,
}

/// Looks up `name` and what it refers to in `config`.
///
/// # Errors
/// [`EngineError::Config`] naming what is missing.
pub fn resolve_routine(config: &Config, name: &str) -> Result<ResolvedRoutine, EngineError> {
    let routine = config
        .backup_routines
        .get(name)
        .ok_or_else(|| EngineError::Config(format!("routine {name} not found")))?;
    let policy = match &routine.backup_policy {
        Some(p) => config
            .backup_policies
            .get(p)
            .cloned()
            .ok_or_else(|| EngineError::Config(format!("policy {p} not found")))?,
        None => BackupPolicy::default(),
    };
    let cluster = config
        .aerospike_clusters
        .get(&routine.source_cluster)
        .cloned()
        .ok_or_else(|| {
            EngineError::Config(format!("cluster {} not found", routine.source_cluster))
        })?;
    let storage = config
        .storage
        .get(&routine.storage)
        .cloned()
        .ok_or_else(|| EngineError::Config(format!("storage {} not found", routine.storage)))?;
    Ok(ResolvedRoutine {
        name: name.to_string(),
        routine: routine.clone(),
        policy,
        cluster_name: routine.source_cluster.clone(),
        cluster,
        storage,
    })
}

impl ResolvedRoutine {
    /// Connects to the routine's cluster with its policy's `retry-policy`.
    ///
    /// # Errors
    /// As [`cluster::connect_with_retries`].
    pub async fn connect(&self, cancel: &CancellationToken) -> Result<Client, EngineError> {
        cluster::connect_with_retries(
            &self.cluster_name,
            &self.cluster,
            &self.policy.retry_policy(),
            &self.name,
            cancel,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_is_settable() {
        let c = ManualClock::at_ms(1_000);
        assert_eq!(c.now().timestamp_millis(), 1_000);
        c.set_ms(5_500);
        assert_eq!(c.now().timestamp_millis(), 5_500);
    }
}
