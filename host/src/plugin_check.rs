//! The second validation phase for plugins (DESIGN D4): the configuration names plugins by
//! name; this checks them against the registry (files, hashes, kinds, option schemas) before a
//! change is saved, reporting config paths.

use crate::config::{Config, ConfigError, PluginCheck, Storage};
use crate::plugins::{PluginKind, Registry, Runtime, UserPluginSpec, validate_plugin_options};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// [`PluginCheck`] backed by the plugin registry.
#[derive(Debug, Clone)]
pub struct RegistryCheck {
    runtime: Runtime,
    /// The default plugins, loaded by the first check that needs them and kept: only the
    /// user plugins (whose files may change) are read and hash-checked again per check.
    defaults: Arc<Mutex<Option<Arc<Registry>>>>,
}

impl RegistryCheck {
    pub fn new(runtime: Runtime) -> Self {
        Self {
            runtime,
            defaults: Arc::default(),
        }
    }

    fn defaults(&self) -> Result<Arc<Registry>, Vec<ConfigError>> {
        let mut slot = self.defaults.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = slot.as_ref() {
            return Ok(r.clone());
        }
        let loaded = Arc::new(Registry::with_defaults(&self.runtime).map_err(|e| {
            vec![ConfigError::new(
                "plugins.<defaults>.path".to_string(),
                e.to_string(),
            )]
        })?);
        *slot = Some(loaded.clone());
        Ok(loaded)
    }

    /// The registry for `cfg`: defaults plus its `plugins:` entries.
    pub fn registry(&self, cfg: &Config) -> Result<Registry, Vec<ConfigError>> {
        self.defaults()?
            .with_user_plugins(&user_plugin_specs(cfg))
            .map_err(|errs| {
                errs.into_iter()
                    .map(|e| {
                        ConfigError::new(
                            format!("plugins.{}.{}", e.plugin, e.field),
                            e.error.to_string(),
                        )
                    })
                    .collect()
            })
    }
}

/// The `plugins:` section of `cfg` as the registry takes it.
pub fn user_plugin_specs(cfg: &Config) -> BTreeMap<String, UserPluginSpec> {
    cfg.plugins
        .iter()
        .map(|(n, d)| {
            (
                n.clone(),
                UserPluginSpec {
                    path: d.path.clone().into(),
                    sha256: d.sha256.clone(),
                },
            )
        })
        .collect()
}

fn uses_plugins(cfg: &Config) -> bool {
    !cfg.plugins.is_empty()
        || cfg.backup_policies.values().any(|p| p.pipeline.is_some())
        || cfg
            .storage
            .values()
            .any(|s| matches!(s, Storage::PluginStorage(_)))
}

fn check_one(
    registry: &Registry,
    path: &str,
    plugin: &str,
    want: PluginKind,
    options: &serde_json::Value,
    out: &mut Vec<ConfigError>,
) {
    let plugin = crate::plugins::pipeline::resolve_plugin_name(registry, plugin);
    match registry.get(plugin) {
        Err(_) => {
            let known: Vec<&str> = registry
                .plugins()
                .filter(|p| p.plugin.info().kind == want)
                .map(|p| p.name.as_str())
                .collect();
            out.push(ConfigError::new(
                format!("{path}.plugin"),
                format!(
                    "unknown {} plugin \"{plugin}\" (available: {})",
                    want.as_str(),
                    known.join(", ")
                ),
            ));
        }
        Ok(entry) if entry.plugin.info().kind != want => out.push(ConfigError::new(
            format!("{path}.plugin"),
            format!(
                "\"{plugin}\" is a {} plugin, not a {} plugin",
                entry.plugin.info().kind.as_str(),
                want.as_str()
            ),
        )),
        Ok(_) => {
            if let Err(m) = validate_plugin_options(registry, plugin, options) {
                out.push(ConfigError::new(format!("{path}.options"), m));
            }
        }
    }
}

impl PluginCheck for RegistryCheck {
    fn check(&self, cfg: &Config) -> Vec<ConfigError> {
        if !uses_plugins(cfg) {
            // Only the embedded defaults are involved, and those are tested at build time.
            return Vec::new();
        }
        let registry = match self.registry(cfg) {
            Ok(r) => r,
            Err(errs) => return errs,
        };
        let mut out = Vec::new();
        for (name, p) in &cfg.backup_policies {
            for (i, step) in p.pipeline.iter().flatten().enumerate() {
                let path = format!("backup-policies.{name}.pipeline[{i}]");
                check_one(
                    &registry,
                    &path,
                    &step.plugin,
                    PluginKind::Codec,
                    &step.options,
                    &mut out,
                );
            }
        }
        for (name, s) in &cfg.storage {
            if let Storage::PluginStorage(ps) = s {
                let path = format!("storage.{name}.plugin-storage");
                check_one(
                    &registry,
                    &path,
                    &ps.plugin,
                    PluginKind::Storage,
                    &ps.options,
                    &mut out,
                );
            }
        }
        out
    }
}
