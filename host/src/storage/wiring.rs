//! Wiring a job to its plugins: the storage backend (with the host's retry and concurrency
//! layers), the codec chain a policy selects, key sources, and the `pipeline.yaml` sidecar
//! that records a `pipeline:` chain for restore.

use std::sync::Arc;

use serde_json::json;

use crate::config::{
    BackupPolicy, CompressionMode, EncryptionMode, PipelineStep, Storage as StorageConfig,
};
use crate::plugins::keys::KeySource;
use crate::plugins::layers::{RetryPolicy, standard_stack};
use crate::plugins::pipeline::{
    AZURE_STORAGE_PLUGIN, GCS_STORAGE_PLUGIN, LOCAL_STORAGE_PLUGIN, S3_STORAGE_PLUGIN,
};
use crate::plugins::{
    CompressionSpec, EncryptionSpec, Pipeline, Registry, StepSpec, Storage, StorageSecrets,
};
use crate::secrets::ResolvedKeys;

use crate::error::EngineError;

/// Storage calls in flight per job.
const STORAGE_CONCURRENCY: usize = 16;

/// A backend for a storage config, wrapped in the standard retry/concurrency layers.
///
/// # Errors
/// Unresolvable credentials, or what the plugin reports.
pub fn open_storage(
    plugins: &Registry,
    storage: &StorageConfig,
) -> Result<Arc<dyn Storage>, EngineError> {
    let inner = match storage {
        StorageConfig::LocalStorage(l) => plugins.open_storage(
            LOCAL_STORAGE_PLUGIN,
            &json!({ "path": l.path }),
            StorageSecrets::default(),
        ),
        StorageConfig::S3Storage(s3) => {
            let (options, secrets) = crate::storage::cloud::s3_plugin_config(
                s3,
                &crate::storage::cloud::AwsEnvironment::from_process(),
            )?;
            plugins.open_storage(S3_STORAGE_PLUGIN, &options, secrets)
        }
        StorageConfig::AzureStorage(a) => {
            let (options, secrets) = crate::storage::cloud::azure_plugin_config(a)?;
            match crate::storage::cloud::azure_bearer_source(a) {
                Some(b) => {
                    plugins.open_storage_with_bearer(AZURE_STORAGE_PLUGIN, &options, secrets, b)
                }
                None => plugins.open_storage(AZURE_STORAGE_PLUGIN, &options, secrets),
            }
        }
        StorageConfig::GcpStorage(g) => {
            let token = std::env::var("CLOUDSDK_AUTH_ACCESS_TOKEN").ok();
            let (options, secrets) = crate::storage::cloud::gcp_plugin_config(g, token)?;
            match crate::storage::cloud::gcp_bearer_source(g)? {
                Some(b) => {
                    plugins.open_storage_with_bearer(GCS_STORAGE_PLUGIN, &options, secrets, b)
                }
                None => plugins.open_storage(GCS_STORAGE_PLUGIN, &options, secrets),
            }
        }
        StorageConfig::PluginStorage(p) => plugins.open_storage(
            &p.plugin,
            &p.options,
            StorageSecrets(
                p.secrets
                    .iter()
                    .map(|(k, v)| (k.clone(), v.expose().to_string()))
                    .collect(),
            ),
        ),
    }
    .map_err(|e| EngineError::plugin("opening storage", e))?;
    Ok(standard_stack(
        inner,
        RetryPolicy::default(),
        STORAGE_CONCURRENCY,
        None,
    ))
}

/// The policy's codec chain, plus the `compression`/`encryption` labels of `metadata.yaml`.
///
/// # Errors
/// An unknown plugin or mode, bad options, or a key that cannot be loaded.
pub fn build_pipeline(
    plugins: &Registry,
    policy: &BackupPolicy,
) -> Result<(Pipeline, &'static str, &'static str), EngineError> {
    build_pipeline_with(plugins, policy, &ResolvedKeys::default())
}

/// As [`build_pipeline`], with the `key-secret` material resolved for the job.
///
/// # Errors
/// As [`build_pipeline`]; a `key-secret` not in `keys` is refused by the key loader.
pub fn build_pipeline_with(
    plugins: &Registry,
    policy: &BackupPolicy,
    keys: &ResolvedKeys,
) -> Result<(Pipeline, &'static str, &'static str), EngineError> {
    let fail = |e| EngineError::plugin("building the codec pipeline", e);
    if let Some(steps) = &policy.pipeline {
        let specs = steps
            .iter()
            .map(|s| pipeline_step(plugins, s, keys))
            .collect::<Vec<_>>();
        return Ok((
            Pipeline::build(plugins, &specs).map_err(fail)?,
            "NONE",
            "NONE",
        ));
    }
    let compression = policy.compression.as_ref().map(|c| CompressionSpec {
        mode: c.mode().as_str().to_string(),
        level: c.level.filter(|l| *l != 0),
    });
    let encryption = policy.encryption.as_ref().map(|e| EncryptionSpec {
        mode: e.mode().as_str().to_string(),
        key: key_source(&e.key_file, &e.key_env, &e.key_secret, keys),
    });
    let pipeline =
        Pipeline::from_policy(plugins, compression.as_ref(), encryption.as_ref()).map_err(fail)?;
    let c = match policy.compression.as_ref().map(|c| c.mode()) {
        Some(CompressionMode::Zstd) => "ZSTD",
        _ => "NONE",
    };
    let e = match policy.encryption.as_ref().map(|e| e.mode()) {
        Some(EncryptionMode::Aes128) => "AES128",
        Some(EncryptionMode::Aes256) => "AES256",
        _ => "NONE",
    };
    Ok((pipeline, c, e))
}

/// A `pipeline:` entry as a plugin step. The short names `zstd`/`aes` (config docs) name
/// the defaults. The step's key source (`key-file`, `key-env`, `key-secret`) becomes a key
/// handle: the plugin gets the key, never where it lives.
fn pipeline_step(plugins: &Registry, step: &PipelineStep, keys: &ResolvedKeys) -> StepSpec {
    let plugin = crate::plugins::pipeline::resolve_plugin_name(plugins, &step.plugin).to_string();
    let key = key_source(&step.key_file, &step.key_env, &step.key_secret, keys);
    StepSpec {
        plugin,
        options: step.options.clone(),
        keys: key.into_iter().collect(),
    }
}

/// The key a policy's `encryption` or a `pipeline:` step names (validation allows one source;
/// the first set one wins here). A `key-secret` becomes the material resolved for the job.
pub fn key_source(
    file: &Option<String>,
    env: &Option<String>,
    secret: &Option<String>,
    keys: &ResolvedKeys,
) -> Option<KeySource> {
    match (file, env, secret) {
        (Some(f), _, _) => Some(KeySource::File(f.into())),
        (None, Some(v), _) => Some(KeySource::Env(v.clone())),
        (None, None, Some(s)) => Some(match keys.get(s) {
            Some(v) => KeySource::Material(v.clone()),
            None => KeySource::Secret(s.clone()),
        }),
        _ => None,
    }
}

/// The `pipeline.yaml` text for a `pipeline:` chain: plugin names, versions, sha256 and
/// non-secret options (D10).
pub fn pipeline_sidecar(pipeline: &Pipeline, plugins: &Registry) -> String {
    let steps: Vec<serde_json::Value> = pipeline
        .describe(plugins)
        .into_iter()
        .map(|s| {
            json!({
                "plugin": s.plugin,
                "version": s.version,
                "sha256": s.sha256,
                "options": serde_json::from_str::<serde_json::Value>(&s.options)
                    .unwrap_or(serde_json::Value::String(s.options)),
            })
        })
        .collect();
    serde_yaml::to_string(&json!({ "pipeline": steps })).unwrap_or_default()
}
