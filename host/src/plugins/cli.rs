//! Library side of `aerospike-backup-service plugin list` and `plugin check <file.wasm>`;
//! `main.rs` parses the arguments and prints what these return.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use super::codec::Codec;
use super::crypto::{Key, KeyMaterial};
use super::error::PluginError;
use super::registry::{LoadedPlugin, RegisteredPlugin, Registry, load_component, sha256_hex};
use super::runtime::Runtime;
use super::storage::StorageSecrets;
use super::suite::{SuiteOptions, encode_with, run_codec_properties, run_storage_suite};

/// What `plugin check` verifies of a codec, printed with every report so that a pass is not
/// read as more than it is (docs/PLUGINS.md §2 lists the same).
const CODEC_CHECKED: &str = "\
checked for codecs:
  - it loads in the production sandbox (no files, sockets or HTTP), api-version 1.x
  - its options-schema is a JSON Schema and accepts the options used here
  - encode then decode gives the input back: empty input, one byte, compressible and random
    data (1 MiB + 17 bytes), under several chunkings on each side
  - decoding the first half of a stream does not return the whole input
not checked (your tests must cover them):
  - truncation detection: a framed format must fail in decoder finish on a cut-off stream;
    reported below as a note, not a failure, since a byte-wise transform (XOR) cannot tell
  - wrong keys, corrupted input, other options, memory and time limits at your data sizes";

/// Whether the decoder notices a stream cut in half: one line for the report.
fn truncation_note(codec: &dyn Codec, options: &str, keys: &[Key]) -> String {
    let data: Vec<u8> = (0..20_000u32)
        .flat_map(|i| format!("+ k I {i}\n").into_bytes())
        .collect();
    let encoded = match codec
        .encoder(options, keys)
        .and_then(|mut e| encode_with(e.as_mut(), &data, &[1 << 20]))
    {
        Ok(e) => e,
        Err(e) => {
            // A trap's backtrace is in the failures above already.
            let e = e.to_string();
            let e = e
                .split("; error while executing at wasm backtrace:")
                .next()
                .unwrap_or_default();
            return format!("truncation: not tried (encode failed: {e})");
        }
    };
    let cut = &encoded[..encoded.len() / 2];
    match codec
        .decoder(options, keys)
        .and_then(|mut d| encode_with(d.as_mut(), cut, &[64 * 1024]))
    {
        Err(e) => format!("truncation: detected (decoding half the stream failed: {e})"),
        Ok(out) => format!(
            "note: truncation not detected: half the stream decoded to {} of {} bytes without \
             an error. Fine for a byte-wise transform; a framed format must fail in finish",
            out.len(),
            data.len()
        ),
    }
}

fn describe(out: &mut String, name: &str, source: &str, sha256: &str, plugin: &LoadedPlugin) {
    let info = plugin.info();
    let _ = writeln!(out, "{name}");
    let _ = writeln!(out, "  kind:        {}", info.kind.as_str());
    let _ = writeln!(out, "  version:     {}", info.version);
    let _ = writeln!(out, "  api-version: {}", info.api_version);
    let _ = writeln!(out, "  source:      {source}");
    let _ = writeln!(out, "  sha256:      {sha256}");
    let schema = serde_json::from_str::<serde_json::Value>(&info.options_schema)
        .map(|v| v.to_string())
        .unwrap_or_else(|_| info.options_schema.clone());
    let _ = writeln!(out, "  options:     {schema}");
}

/// Text for `plugin list`: every registered plugin (embedded and configured) with its info.
pub fn plugin_list(registry: &Registry) -> String {
    let mut out = String::new();
    for RegisteredPlugin {
        name,
        source,
        sha256,
        plugin,
        ..
    } in registry.plugins()
    {
        describe(&mut out, name, &source.to_string(), sha256, plugin);
        if plugin.info().name != *name {
            let _ = writeln!(
                out,
                "  note:        the component calls itself `{}`; jobs use the plugins: key `{name}`",
                plugin.info().name
            );
        }
    }
    out
}

/// Prefix of the environment variables that hand `plugin check` a storage plugin's
/// secrets: `ABS_PLUGIN_SECRET_ACCESS_KEY_ID` becomes secret `access-key-id` (kept off the
/// command line, where other users could read it).
pub const SECRET_ENV_PREFIX: &str = "ABS_PLUGIN_SECRET_";

/// The secrets named by [`SECRET_ENV_PREFIX`] variables.
pub fn secrets_from_env(vars: impl Iterator<Item = (String, String)>) -> StorageSecrets {
    let mut out: Vec<(String, String)> = vars
        .filter_map(|(k, v)| {
            let name = k.strip_prefix(SECRET_ENV_PREFIX)?;
            (!name.is_empty()).then(|| (name.to_ascii_lowercase().replace('_', "-"), v))
        })
        .collect();
    out.sort();
    StorageSecrets(out)
}

/// Options to check a codec with when none are given: the schema's first `examples` entry,
/// else an object of the properties' `default`s (and first `examples`). Returns them with
/// where they came from.
///
/// # Errors
/// A required property with neither, naming it and asking for `--options`.
pub fn options_from_schema(
    schema: &serde_json::Value,
) -> Result<(serde_json::Value, &'static str), String> {
    if let Some(first) = schema
        .get("examples")
        .and_then(|e| e.as_array())
        .and_then(|e| e.first())
    {
        return Ok((first.clone(), "examples"));
    }
    let mut opts = serde_json::Map::new();
    if let Some(props) = schema.get("properties").and_then(|p| p.as_object()) {
        for (name, prop) in props {
            let value = prop.get("default").cloned().or_else(|| {
                prop.get("examples")
                    .and_then(|e| e.as_array())
                    .and_then(|e| e.first())
                    .cloned()
            });
            if let Some(v) = value {
                opts.insert(name.clone(), v);
            }
        }
    }
    let missing: Vec<&str> = schema
        .get("required")
        .and_then(|r| r.as_array())
        .into_iter()
        .flatten()
        .filter_map(|r| r.as_str())
        .filter(|r| !opts.contains_key(*r))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "the options schema requires {} with no default or example: pass --options '{{...}}'",
            missing
                .iter()
                .map(|m| format!("`{m}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok((serde_json::Value::Object(opts), "defaults"))
}

/// `plugin check <file.wasm>`: loads the component (import and version checks), prints its
/// info, validates its options schema, then runs the codec round-trip properties or the
/// storage behaviour suite against a temporary root. Without `options`, codecs get
/// [`options_from_schema`] and storage plugins `{"path": <temp dir>}`.
///
/// Returns the report text; `Err` carries the same text ending with the violation.
///
/// # Errors
/// Load failure, an invalid schema, or any failed property/suite case.
pub async fn plugin_check(
    runtime: &Runtime,
    wasm_path: &Path,
    options: Option<serde_json::Value>,
) -> Result<String, String> {
    let mut out = String::new();
    let fail = |mut out: String, msg: String| {
        let _ = writeln!(out, "FAILED: {msg}");
        Err(out)
    };
    let wasm = std::fs::read(wasm_path)
        .map_err(|e| format!("cannot read {}: {e}", wasm_path.display()))?;
    let name = wasm_path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("plugin")
        .to_string();
    let (mut plugin, sha) = match load_component(runtime, &name, &wasm) {
        Ok(p) => p,
        Err(e) => return fail(out, e.to_string()),
    };
    // Errors and traps then name the plugin as the author does (its registry name), not by
    // the file name cargo gave it (the compiled component is cached: a second load is cheap).
    let own = plugin.info().name.clone();
    if own != name
        && !own.is_empty()
        && let Ok((renamed, _)) = load_component(runtime, &own, &wasm)
    {
        plugin = renamed;
    }
    debug_assert_eq!(sha, sha256_hex(&wasm));
    describe(
        &mut out,
        &name,
        &wasm_path.display().to_string(),
        &sha,
        &plugin,
    );
    let schema: serde_json::Value = match serde_json::from_str(&plugin.info().options_schema) {
        Ok(v) => v,
        Err(e) => return fail(out, format!("options-schema is not JSON: {e}")),
    };
    let validator = match jsonschema::validator_for(&schema) {
        Ok(v) => v,
        Err(e) => {
            return fail(
                out,
                format!("options-schema is not a valid JSON Schema: {e}"),
            );
        }
    };
    // cargo names the file after the crate with `-` as `_` (`codec-xor` → `codec_xor.wasm`).
    if plugin.info().name.replace('-', "_") != name.replace('-', "_") {
        let _ = writeln!(
            out,
            "note: plugin-info name `{}` differs from the file name",
            plugin.info().name
        );
    }
    match plugin {
        LoadedPlugin::Codec(codec) => {
            let opts = match options {
                Some(o) => o,
                None => match options_from_schema(&schema) {
                    Ok((o, from)) => {
                        let _ = writeln!(
                            out,
                            "options: {o} (from the schema's {from}; pass --options to choose)"
                        );
                        o
                    }
                    Err(why) => return fail(out, why),
                },
            };
            if let Err(e) = validator.validate(&opts) {
                return fail(
                    out,
                    format!("options {opts} rejected by the plugin's own schema: {e}"),
                );
            }
            let text = opts.to_string();
            let report = tokio::task::spawn_blocking(move || {
                // A codec that needs a key says so at create; give it a throwaway one.
                let keys: Vec<Key> = match codec.encoder(&text, &[]) {
                    Err(PluginError::InvalidConfig(_)) => {
                        vec![Arc::new(KeyMaterial::new(
                            super::crypto::HostRng::Os.bytes(32),
                        ))]
                    }
                    _ => vec![],
                };
                let report = run_codec_properties(codec.as_ref(), &text, &keys);
                let note = truncation_note(codec.as_ref(), &text, &keys);
                (report, note)
            })
            .await
            .map_err(|e| format!("codec check panicked: {e}"))?;
            let (report, note) = report;
            let _ = writeln!(out, "{CODEC_CHECKED}");
            let _ = writeln!(out, "codec round-trip properties:\n{report}");
            let _ = writeln!(out, "{note}");
            if !report.is_success() {
                return fail(out, "codec contract violated".into());
            }
        }
        LoadedPlugin::Storage(storage) => {
            let root = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
            let opts = options.unwrap_or_else(|| serde_json::json!({ "path": root.path() }));
            if let Err(e) = validator.validate(&opts) {
                return fail(
                    out,
                    format!("options {opts} rejected by the plugin's own schema: {e}"),
                );
            }
            let secrets = secrets_from_env(std::env::vars());
            let backend = match storage.open_backend(&opts.to_string(), secrets) {
                Ok(b) => b,
                Err(e) => return fail(out, format!("backend.create: {e}")),
            };
            // A folder of its own per run, removed afterwards whatever the outcome.
            let prefix = format!("plugin-check/{:016x}/", rand::random::<u64>());
            let suite = SuiteOptions {
                prefix: prefix.clone(),
                // A network backend's `path` is a key prefix, not a directory.
                local_root: opts
                    .get("path")
                    .and_then(|p| p.as_str())
                    .filter(|_| !storage.uses_network())
                    .map(std::path::PathBuf::from),
                large_object_bytes: 0,
            };
            let report = run_storage_suite(backend.clone(), &suite).await;
            let _ = writeln!(out, "options: {opts}");
            let _ = writeln!(
                out,
                "checked for storage: the behaviour suite below (uploads, re-sent parts, \
                 atomic finish, ranged reads, paged listings, stat, delete, key rules) against \
                 these options; not checked: durability across crashes, concurrency limits, \
                 the backend's own failure modes"
            );
            let _ = writeln!(out, "storage behaviour suite:\n{report}");
            // Local folders the suite made go too (deleting files leaves the directories).
            if let Some(root) = &suite.local_root {
                let _ = std::fs::remove_dir_all(root.join(&prefix));
                let _ = std::fs::remove_dir(root.join("plugin-check"));
            }
            match super::suite::remove_prefix(backend.as_ref(), &prefix).await {
                Ok(0) => {
                    let _ = writeln!(out, "cleanup: nothing left under {prefix}");
                }
                Ok(n) => {
                    let _ = writeln!(out, "cleanup: removed the {n} objects left under {prefix}");
                }
                Err(e) => {
                    let _ = writeln!(out, "cleanup: objects may remain under {prefix}: {e}");
                }
            }
            if !report.is_success() {
                return fail(out, "storage contract violated".into());
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::options_from_schema;
    use serde_json::json;

    #[test]
    fn options_come_from_examples_then_defaults_and_a_missing_required_one_is_named() {
        let with_examples =
            json!({"examples": [{"byte": 7}], "properties": {"byte": {"default": 1}}});
        assert_eq!(
            options_from_schema(&with_examples).unwrap(),
            (json!({"byte": 7}), "examples")
        );
        let defaults = json!({
            "required": ["level"],
            "properties": {"level": {"default": 3}, "window": {"examples": [20]}, "x": {}}
        });
        assert_eq!(
            options_from_schema(&defaults).unwrap(),
            (json!({"level": 3, "window": 20}), "defaults")
        );
        let err = options_from_schema(&json!({"required": ["key"], "properties": {"key": {}}}))
            .unwrap_err();
        assert!(err.contains("`key`") && err.contains("--options"), "{err}");
        assert_eq!(options_from_schema(&json!({})).unwrap().0, json!({}));
    }
}
