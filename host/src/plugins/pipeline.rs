//! Codec chains built from configuration.
//!
//! Two ways in: the ABS policy fields (`compression: {mode: ZSTD, level}`,
//! `encryption: {mode: AES128|AES256, key-…}`) map to the default plugins in
//! asbackup-compatible settings; our extension `pipeline: [{plugin, options}]` names any
//! codec. Either way the write order is the configured order (compress → encrypt) and reads
//! run it backwards. The input structs here are this module's own: the config model maps
//! into them, so `plugins` stays independent of `config` (DESIGN §2).

use std::sync::Arc;

use serde_json::json;

use super::codec::{Codec, CodecStream};
use super::crypto::Key;
use super::error::{PluginError, PluginResult};
use super::keys::{KeySource, resolve_key};
use super::registry::{Registry, validate_plugin_options};

/// Registry name of the default compression plugin.
pub const ZSTD_PLUGIN: &str = "compression-zstd";
/// Registry name of the default encryption plugin.
pub const AES_PLUGIN: &str = "encryption-aes";
/// Registry name of the default storage plugin.
pub const LOCAL_STORAGE_PLUGIN: &str = "storage-local";
/// Registry name of the S3 (and S3-compatible) storage plugin.
pub const S3_STORAGE_PLUGIN: &str = "storage-s3";
/// Registry name of the Azure Blob storage plugin.
pub const AZURE_STORAGE_PLUGIN: &str = "storage-azure";
/// Registry name of the Google Cloud Storage plugin.
pub const GCS_STORAGE_PLUGIN: &str = "storage-gcs";

/// The registry name a config's plugin name refers to: registered names first, then the
/// short names of the defaults (`zstd`, `aes`, `local`) that configs may use.
pub fn resolve_plugin_name<'a>(registry: &Registry, name: &'a str) -> &'a str {
    if registry.get(name).is_ok() {
        return name;
    }
    match name {
        "zstd" => ZSTD_PLUGIN,
        "aes" => AES_PLUGIN,
        "local" => LOCAL_STORAGE_PLUGIN,
        "s3" => S3_STORAGE_PLUGIN,
        "azure" => AZURE_STORAGE_PLUGIN,
        "gcs" => GCS_STORAGE_PLUGIN,
        other => other,
    }
}

/// Decoders get at most this much input per call: compressed data expands, and one call's
/// output must fit the instance memory limit (WIT `codec`: 64–256 KiB).
pub const DECODE_SUB_CHUNK_BYTES: usize = 64 * 1024;

/// ABS `compression-policy`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompressionSpec {
    /// `NONE` or `ZSTD` (case-insensitive).
    pub mode: String,
    /// zstd level; the plugin's default when absent.
    pub level: Option<i32>,
}

/// ABS `encryption-policy`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptionSpec {
    /// `NONE`, `AES128` or `AES256` (case-insensitive).
    pub mode: String,
    /// Where the key comes from (`key-file`, `key-env`, `key-secret`).
    pub key: Option<KeySource>,
}

/// One entry of our `pipeline:` extension.
#[derive(Debug, Clone, PartialEq)]
pub struct StepSpec {
    pub plugin: String,
    pub options: serde_json::Value,
    /// Keys handed to the codec as handles, in order (empty for most codecs).
    pub keys: Vec<KeySource>,
}

/// Maps the ABS policy fields to steps on the default plugins (compress, then encrypt).
///
/// # Errors
/// [`PluginError::InvalidConfig`] for an unknown mode or an encryption mode without a key.
pub fn steps_from_policy(
    compression: Option<&CompressionSpec>,
    encryption: Option<&EncryptionSpec>,
) -> PluginResult<Vec<StepSpec>> {
    let mut steps = Vec::new();
    if let Some(c) = compression {
        match c.mode.to_ascii_uppercase().as_str() {
            "NONE" => {}
            "ZSTD" => {
                let options = match c.level {
                    Some(level) => json!({ "level": level }),
                    None => json!({}),
                };
                steps.push(StepSpec {
                    plugin: ZSTD_PLUGIN.into(),
                    options,
                    keys: vec![],
                });
            }
            other => {
                return Err(PluginError::InvalidConfig(format!(
                    "compression mode: unknown mode `{other}`"
                )));
            }
        }
    }
    if let Some(e) = encryption {
        let mode = match e.mode.to_ascii_uppercase().as_str() {
            "NONE" => None,
            // asbackup-compatible CTR with its IV header (BACKUP-FORMAT.md §4).
            "AES128" => Some("aes128-ctr"),
            "AES256" => Some("aes256-ctr"),
            other => {
                return Err(PluginError::InvalidConfig(format!(
                    "encryption mode: unknown mode `{other}`"
                )));
            }
        };
        if let Some(mode) = mode {
            let key = e.key.clone().ok_or_else(|| {
                PluginError::InvalidConfig(
                    "encryption: one of key-file, key-env or key-secret is required".into(),
                )
            })?;
            steps.push(StepSpec {
                plugin: AES_PLUGIN.into(),
                options: json!({ "mode": mode }),
                keys: vec![key],
            });
        }
    }
    Ok(steps)
}

/// Checks every step's plugin and options without resolving keys (config validation).
/// Returns `(step index, message)` for each bad step.
pub fn validate_steps(registry: &Registry, steps: &[StepSpec]) -> Vec<(usize, String)> {
    steps
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            registry
                .codec(&s.plugin)
                .map_err(|e| e.to_string())
                .and_then(|_| validate_plugin_options(registry, &s.plugin, &s.options))
                .err()
                .map(|m| (i, m))
        })
        .collect()
}

struct Step {
    plugin: String,
    codec: Arc<dyn Codec>,
    options: String,
    keys: Vec<Key>,
}

/// A resolved codec chain: plugins looked up, options checked, keys loaded.
pub struct Pipeline {
    steps: Vec<Step>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.steps.iter().map(|s| s.plugin.as_str()).collect();
        write!(f, "Pipeline({names:?})")
    }
}

/// What a step was, for the `pipeline.yaml` sidecar (DESIGN D10). Options only: keys are
/// never described.
#[derive(Debug, Clone, PartialEq)]
pub struct StepDescription {
    pub plugin: String,
    pub version: String,
    pub sha256: String,
    pub options: String,
}

impl Pipeline {
    /// Resolves steps: plugin lookup, options validation, key resolution.
    ///
    /// # Errors
    /// The first failing step's error, prefixed with its index and plugin.
    pub fn build(registry: &Registry, specs: &[StepSpec]) -> PluginResult<Pipeline> {
        let mut steps = Vec::with_capacity(specs.len());
        for (i, s) in specs.iter().enumerate() {
            let at = |m: String| {
                PluginError::InvalidConfig(format!("pipeline[{i}] ({}): {m}", s.plugin))
            };
            let codec = registry.codec(&s.plugin).map_err(|e| at(e.to_string()))?;
            validate_plugin_options(registry, &s.plugin, &s.options).map_err(at)?;
            let keys = s
                .keys
                .iter()
                .map(resolve_key)
                .collect::<PluginResult<Vec<_>>>()?;
            steps.push(Step {
                plugin: s.plugin.clone(),
                codec,
                options: s.options.to_string(),
                keys,
            });
        }
        Ok(Pipeline { steps })
    }

    /// The ABS policy fields as a pipeline.
    ///
    /// # Errors
    /// As [`steps_from_policy`] and [`Pipeline::build`].
    pub fn from_policy(
        registry: &Registry,
        compression: Option<&CompressionSpec>,
        encryption: Option<&EncryptionSpec>,
    ) -> PluginResult<Pipeline> {
        Pipeline::build(registry, &steps_from_policy(compression, encryption)?)
    }

    /// True when there is nothing to do (bytes pass through unchanged).
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Step descriptions for the backup's sidecar.
    pub fn describe(&self, registry: &Registry) -> Vec<StepDescription> {
        self.steps
            .iter()
            .map(|s| StepDescription {
                plugin: s.plugin.clone(),
                version: s.codec.info().version.clone(),
                sha256: registry
                    .get(&s.plugin)
                    .map(|r| r.sha256.clone())
                    .unwrap_or_default(),
                options: s.options.clone(),
            })
            .collect()
    }

    /// A stream that encodes through every step in order (write path).
    ///
    /// # Errors
    /// A step that fails to start (bad options, missing key, sandbox).
    pub fn encoder(&self) -> PluginResult<Box<dyn CodecStream>> {
        let stages = self
            .steps
            .iter()
            .map(|s| s.codec.encoder(&s.options, &s.keys))
            .collect::<PluginResult<Vec<_>>>()?;
        Ok(Box::new(Chain {
            stages,
            max_input: usize::MAX,
        }))
    }

    /// A stream that decodes through every step in reverse (read path).
    ///
    /// # Errors
    /// As [`Pipeline::encoder`].
    pub fn decoder(&self) -> PluginResult<Box<dyn CodecStream>> {
        let stages = self
            .steps
            .iter()
            .rev()
            .map(|s| s.codec.decoder(&s.options, &s.keys))
            .collect::<PluginResult<Vec<_>>>()?;
        Ok(Box::new(Chain {
            stages,
            max_input: DECODE_SUB_CHUNK_BYTES,
        }))
    }
}

/// Streams composed in order: each stage's output is the next stage's input.
pub struct Chain {
    stages: Vec<Box<dyn CodecStream>>,
    /// Largest input per call to any stage.
    max_input: usize,
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Chain({} stages)", self.stages.len())
    }
}

impl Chain {
    /// Composes `stages` (first = first applied); an empty chain passes bytes through.
    pub fn new(stages: Vec<Box<dyn CodecStream>>, max_input: usize) -> Chain {
        Chain {
            stages,
            max_input: max_input.max(1),
        }
    }

    fn push_from(&mut self, first: usize, input: Vec<u8>) -> PluginResult<Vec<u8>> {
        let mut data = input;
        for stage in &mut self.stages[first..] {
            if data.is_empty() {
                return Ok(data);
            }
            let mut out = Vec::new();
            for piece in data.chunks(self.max_input) {
                out.extend(stage.push(piece)?);
            }
            data = out;
        }
        Ok(data)
    }
}

impl CodecStream for Chain {
    fn push(&mut self, chunk: &[u8]) -> PluginResult<Vec<u8>> {
        if self.stages.is_empty() {
            return Ok(chunk.to_vec());
        }
        self.push_from(0, chunk.to_vec())
    }

    fn finish(&mut self) -> PluginResult<Vec<u8>> {
        // Finishing stage i may emit bytes that stages i+1.. must still see before they
        // finish themselves.
        let mut out = Vec::new();
        for i in 0..self.stages.len() {
            let tail = self.stages[i].finish()?;
            out = if i + 1 < self.stages.len() {
                let mut pushed = self.push_from(i + 1, tail)?;
                let mut carried = std::mem::take(&mut out);
                carried.append(&mut pushed);
                carried
            } else {
                let mut carried = std::mem::take(&mut out);
                carried.extend(tail);
                carried
            };
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abs_fields_map_to_default_plugins_in_order() {
        let steps = steps_from_policy(
            Some(&CompressionSpec {
                mode: "zstd".into(),
                level: Some(7),
            }),
            Some(&EncryptionSpec {
                mode: "AES128".into(),
                key: Some(KeySource::File("/k.pem".into())),
            }),
        )
        .unwrap();
        assert_eq!(steps.len(), 2);
        assert_eq!(steps[0].plugin, ZSTD_PLUGIN);
        assert_eq!(steps[0].options, json!({"level": 7}));
        assert_eq!(steps[1].plugin, AES_PLUGIN);
        assert_eq!(steps[1].options, json!({"mode": "aes128-ctr"}));
        assert_eq!(steps[1].keys, vec![KeySource::File("/k.pem".into())]);
    }

    #[test]
    fn none_modes_and_errors() {
        let none = steps_from_policy(
            Some(&CompressionSpec {
                mode: "NONE".into(),
                level: None,
            }),
            Some(&EncryptionSpec {
                mode: "none".into(),
                key: None,
            }),
        )
        .unwrap();
        assert!(none.is_empty());
        let err = steps_from_policy(
            None,
            Some(&EncryptionSpec {
                mode: "AES256".into(),
                key: None,
            }),
        )
        .unwrap_err();
        assert!(err.to_string().contains("key-file"), "{err}");
        assert!(
            steps_from_policy(
                Some(&CompressionSpec {
                    mode: "LZ4".into(),
                    level: None
                }),
                None
            )
            .is_err()
        );
    }

    /// A host-side stream that frames each push and emits a trailer, to check chaining.
    struct Tag(u8, Vec<u8>);
    impl CodecStream for Tag {
        fn push(&mut self, chunk: &[u8]) -> PluginResult<Vec<u8>> {
            self.1.extend_from_slice(chunk);
            Ok(chunk.iter().map(|b| b ^ self.0).collect())
        }
        fn finish(&mut self) -> PluginResult<Vec<u8>> {
            Ok(vec![self.0; 3])
        }
    }

    #[test]
    fn chain_feeds_trailers_through_later_stages() {
        let mut c = Chain::new(vec![Box::new(Tag(1, vec![])), Box::new(Tag(2, vec![]))], 2);
        let mut out = c.push(&[0, 0, 0, 0, 0]).unwrap();
        out.extend(c.finish().unwrap());
        // 5 data bytes through both (^3), stage 1's trailer through stage 2 (1^2), stage 2's trailer.
        assert_eq!(out, vec![3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2]);
        let mut empty = Chain::new(vec![], 4);
        assert_eq!(empty.push(b"ab").unwrap(), b"ab");
        assert!(empty.finish().unwrap().is_empty());
    }
}
