//! Prometheus collectors of the plugin platform, registered in a registry passed in (the
//! service's own lives in `crate::metrics`). Labels are bounded: plugin names come from
//! the registry, operations and error kinds are fixed sets.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

/// Calls, errors, bytes and latency per plugin and operation.
#[derive(Debug, Clone)]
pub struct PluginMetrics {
    /// `aerospike_backup_service_plugin_calls_total{plugin, op}`
    pub calls: IntCounterVec,
    /// `aerospike_backup_service_plugin_errors_total{plugin, op, kind}`
    pub errors: IntCounterVec,
    /// `aerospike_backup_service_plugin_bytes_total{plugin, direction}` (`in` = into the
    /// plugin: written parts, pushed chunks; `out` = downloaded or codec output)
    pub bytes: IntCounterVec,
    /// `aerospike_backup_service_plugin_call_duration_seconds{plugin, op}`
    pub latency: HistogramVec,
}

impl PluginMetrics {
    /// Creates the collectors and registers them in `registry`.
    ///
    /// # Errors
    /// If collectors of the same names are already registered there.
    pub fn register(registry: &Registry) -> prometheus::Result<PluginMetrics> {
        let calls = IntCounterVec::new(
            Opts::new(
                "aerospike_backup_service_plugin_calls_total",
                "Plugin calls made by the host.",
            ),
            &["plugin", "op"],
        )?;
        let errors = IntCounterVec::new(
            Opts::new(
                "aerospike_backup_service_plugin_errors_total",
                "Plugin calls that failed, by error kind.",
            ),
            &["plugin", "op", "kind"],
        )?;
        let bytes = IntCounterVec::new(
            Opts::new(
                "aerospike_backup_service_plugin_bytes_total",
                "Bytes moved through plugins.",
            ),
            &["plugin", "direction"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "aerospike_backup_service_plugin_call_duration_seconds",
                "Wall time of plugin calls.",
            )
            .buckets(vec![
                0.0001, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0,
            ]),
            &["plugin", "op"],
        )?;
        registry.register(Box::new(calls.clone()))?;
        registry.register(Box::new(errors.clone()))?;
        registry.register(Box::new(bytes.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        Ok(PluginMetrics {
            calls,
            errors,
            bytes,
            latency,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_once_per_registry() {
        let r = Registry::new();
        let m = PluginMetrics::register(&r).unwrap();
        m.calls.with_label_values(&["p", "stat"]).inc();
        assert!(PluginMetrics::register(&r).is_err());
        let names: Vec<String> = r.gather().iter().map(|f| f.name().to_string()).collect();
        assert!(
            names.contains(&"aerospike_backup_service_plugin_calls_total".to_string()),
            "{names:?}"
        );
    }
}
