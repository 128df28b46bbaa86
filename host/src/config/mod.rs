//! Configuration: the ABS v3 model, parsing with located errors, validation, and the store that
//! persists changes atomically. Its one job is the configuration document: what it may say,
//! what a valid one is, and keeping the saved file and the running copy in step.
//!
//! This module is a leaf of the crate: it imports nothing from the modules above it (`api`,
//! `engine`, `secrets`, `plugins`, ...), tests included. What validation needs of them lives
//! here as pure text parsing (`tls.rs`, `secret_ref.rs`) that they import, or reaches it
//! through a seam it defines ([`PluginCheck`], supplied by `plugin_check.rs`).

pub mod cron;
pub mod given;
pub mod limits;
pub mod model;
pub mod restore;
pub mod secret_ref;
pub(crate) mod serde_util;
pub mod store;
pub mod tls;
pub mod validate;

pub use given::{Given, Spelled};
pub use model::*;
pub use restore::*;
pub use store::{ChangeError, ConfigStore, PluginCheck, RemoteDocument};
pub use validate::{ConfigError, validate};

use serde::de::DeserializeOwned;

/// The encoding of a configuration document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
}

/// Parses a document into `T`, naming the path of the first offending field on error.
pub fn parse<T: DeserializeOwned>(text: &str, format: Format) -> Result<T, ConfigError> {
    match format {
        Format::Yaml => {
            if text.trim().is_empty() {
                // An empty file is an empty config (everything default), as for ABS.
                return parse("{}", Format::Yaml);
            }
            let de = serde_yaml::Deserializer::from_str(text);
            serde_path_to_error::deserialize(de)
                .map_err(|e| located(e.path().to_string(), e.inner().to_string()))
        }
        Format::Json => {
            let mut de = serde_json::Deserializer::from_str(text);
            serde_path_to_error::deserialize(&mut de)
                .map_err(|e| located(e.path().to_string(), e.inner().to_string()))
        }
    }
}

fn located(path: String, message: String) -> ConfigError {
    // serde_path_to_error renders the root as "."; we use "" for "the whole document".
    let path = if path == "." { String::new() } else { path };
    // serde_yaml already prefixes its message with the path; don't say it twice.
    let message = message
        .strip_prefix(&format!("{path}: "))
        .map(str::to_string)
        .unwrap_or(message);
    // serde_yaml appends " at line N column M" which is useful for files; keep it.
    ConfigError::new(path, message)
}

/// Rewrites keys deprecated since ABS 3.0 into their replacements (DESIGN D5) and returns one
/// warning per rewritten key. A policy setting both `remove-files` and `retention` is left
/// alone so validation rejects it naming both.
pub fn migrate(cfg: &mut Config) -> Vec<String> {
    let mut warnings = Vec::new();
    for (name, p) in &mut cfg.backup_policies {
        if let Some(rf) = p.remove_files
            && p.retention.is_none()
        {
            p.retention = match rf {
                RemoveFiles::KeepAll => None,
                RemoveFiles::RemoveIncremental => Some(RetentionPolicy {
                    full: None,
                    incremental: Some(0),
                }),
                RemoveFiles::RemoveAll => Some(RetentionPolicy {
                    full: Some(1),
                    incremental: Some(0),
                }),
            };
            p.remove_files = None;
            warnings.push(format!(
                "backup-policies.{name}.remove-files is deprecated; it was read as retention {}",
                match rf {
                    RemoveFiles::KeepAll => "(keep everything)",
                    RemoveFiles::RemoveIncremental => "{incremental: 0}",
                    RemoveFiles::RemoveAll => "{full: 1, incremental: 0}",
                }
            ));
        }
        if p.max_retries.is_some() || p.retry_delay.is_some() {
            let mut rp = p.retry_policy.clone().unwrap_or_default();
            if let Some(m) = p.max_retries.take() {
                rp.max_retries.get_or_insert(m);
                warnings.push(format!(
                    "backup-policies.{name}.max-retries is deprecated; use retry-policy.max-retries"
                ));
            }
            if let Some(d) = p.retry_delay.take() {
                rp.base_timeout.get_or_insert(d);
                warnings.push(format!(
                    "backup-policies.{name}.retry-delay is deprecated; use retry-policy.base-timeout"
                ));
            }
            p.retry_policy = Some(rp);
        }
    }
    for (name, p) in cfg.backup_policies.iter() {
        // ABS 3.7 requires `mode`; 3.6 and older read a missing one as NONE (the level, if
        // any, then unused). The file is left as written; the warning says what it means.
        if p.compression.as_ref().is_some_and(|c| c.mode.is_none()) {
            warnings.push(format!(
                "backup-policies.{name}.compression has no mode; read as NONE (no compression) \
                 as ABS 3.6 did; set mode: ZSTD to compress"
            ));
        }
        if p.encryption.as_ref().is_some_and(|e| e.mode.is_none()) {
            warnings.push(format!(
                "backup-policies.{name}.encryption has no mode; read as NONE (no encryption) \
                 as ABS 3.6 did; set mode: AES128 or AES256 to encrypt"
            ));
        }
    }
    for (name, r) in &mut cfg.backup_routines {
        if r.prefer_racks.is_some() {
            warnings.push(format!(
                "backup-routines.{name}.prefer-racks is deprecated since ABS 3.4; set prefer-racks on the cluster"
            ));
        }
    }
    warnings
}

/// Parses, migrates and validates a whole configuration document.
pub fn load_str(text: &str, format: Format) -> Result<(Config, Vec<String>), Vec<ConfigError>> {
    let mut cfg: Config = parse(text, format).map_err(|e| vec![e])?;
    let warnings = migrate(&mut cfg);
    validate(&cfg)?;
    Ok((cfg, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str) -> String {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/data/upstream-config")
            .join(name);
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    #[test]
    fn upstream_v3_example_validates() {
        let (cfg, warnings) = load_str(&sample("v3-configuration-md-example.yml"), Format::Yaml)
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert!(warnings.is_empty(), "{warnings:?}");
        let s3 = match &cfg.storage["s3"] {
            Storage::S3Storage(s) => s,
            other => panic!("{other:?}"),
        };
        assert_eq!(s3.min_part_size, Some(50_000_000));
        assert_eq!(
            cfg.backup_routines["dailyLocalBackupRoutine"].incr_cron(),
            Some("0 0 0/2 * * ? *")
        );
        assert_eq!(
            *cfg.secret_agents["secret-agent"].connection_type,
            ConnectionType::Tcp
        );
    }

    #[test]
    fn upstream_30_era_configs_load_with_deprecation_warnings() {
        for f in ["config.yml", "minio_config.yml"] {
            let (cfg, warnings) =
                load_str(&sample(f), Format::Yaml).unwrap_or_else(|e| panic!("{f}: {e:?}"));
            assert!(
                warnings
                    .iter()
                    .any(|w| w.contains("remove-files is deprecated")),
                "{f}: {warnings:?}"
            );
            for p in cfg.backup_policies.values() {
                assert!(
                    p.remove_files.is_none() && p.max_retries.is_none() && p.retry_delay.is_none()
                );
            }
        }
        let (cfg, _) = load_str(&sample("config.yml"), Format::Yaml).unwrap();
        let p = &cfg.backup_policies["keepFilesMaxRecordsPolicy"];
        let rp = p.retry_policy.as_ref().unwrap();
        assert_eq!((rp.max_retries, rp.base_timeout), (Some(10), Some(10_000)));
        assert_eq!(
            cfg.backup_policies["removeFilesPolicy"].retention,
            Some(RetentionPolicy {
                full: Some(1),
                incremental: Some(0)
            })
        );
        assert_eq!(cfg.backup_policies["keepFilesPolicy"].retention, None);
    }

    /// The document as a client reading the YAML file sees it. YAML 1.1 readers (the operator's
    /// Go YAML) read `50_000_000` as a number where serde_yaml (YAML 1.2) sees a string.
    fn as_written(yaml: &str) -> serde_json::Value {
        fn numbers(v: &mut serde_json::Value) {
            match v {
                serde_json::Value::String(s)
                    if s.contains('_')
                        && s.chars().all(|c| c.is_ascii_digit() || c == '_')
                        && s.starts_with(|c: char| c.is_ascii_digit()) =>
                {
                    *v = serde_json::Value::from(s.replace('_', "").parse::<u64>().unwrap());
                }
                serde_json::Value::Array(a) => a.iter_mut().for_each(numbers),
                serde_json::Value::Object(o) => o.values_mut().for_each(numbers),
                _ => {}
            }
        }
        let mut v: serde_json::Value = serde_yaml::from_str(yaml).unwrap();
        numbers(&mut v);
        v
    }

    /// What `GET /v1/config` answers for a loaded document (secrets shown as configured).
    /// Files the config names need not exist here: validation is not what is tested.
    fn round_trip(yaml: &str) -> serde_json::Value {
        let mut cfg: Config = parse(yaml, Format::Yaml).unwrap_or_else(|e| panic!("{e:?}"));
        assert!(migrate(&mut cfg).is_empty());
        serde_json::to_value(&cfg).unwrap()
    }

    #[test]
    fn loaded_configs_come_back_key_for_key() {
        let operator = |f: &str| {
            let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../tests/data/operator-config")
                .join(f);
            std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        };
        let docs = [
            (
                "v3-configuration-md-example.yml",
                sample("v3-configuration-md-example.yml"),
            ),
            ("service-spec.yml", operator("service-spec.yml")),
            ("merged.yml", operator("merged.yml")),
            ("merged-tls.yml", operator("merged-tls.yml")),
        ];
        for (name, yaml) in docs {
            assert_eq!(round_trip(&yaml), as_written(&yaml), "{name}");
        }
    }

    /// Sections, lists and flags written empty or false come back; absent ones stay absent.
    #[test]
    fn empty_and_default_values_round_trip() {
        let yaml = r#"
service:
  http: {port: 8081, disabled: false, rate: {white-list: []}}
  logger: {}
aerospike-clusters: {}
storage:
  l: {local-storage: {path: /tmp/x}}
backup-policies: {}
backup-routines: {}
secret-agents: {}
"#;
        assert_eq!(round_trip(yaml), as_written(yaml));
        let yaml = "storage:\n  l: {local-storage: {path: /tmp/x}}\n";
        let back = round_trip(yaml);
        assert_eq!(back, as_written(yaml));
        assert!(back.get("service").is_none(), "{back}");
        let yaml = r#"
aerospike-clusters:
  c: {seed-nodes: [{host-name: h, port: 3000}]}
storage:
  l: {local-storage: {path: /tmp/x}}
backup-routines:
  r: {interval-cron: "@daily", source-cluster: c, storage: l, namespaces: [],
      set-list: [], bin-list: [], node-list: [], disabled: false}
"#;
        assert_eq!(round_trip(yaml), as_written(yaml));
    }

    /// ABS 3.7's `incr-mode` comes back as written (any case), is absent when not given,
    /// and an unknown mode is refused naming the values.
    #[test]
    fn incr_mode_round_trips_and_defaults_to_differential() {
        for mode in ["cumulative", "CUMULATIVE", "differential"] {
            let yaml = format!("backup-policies:\n  p: {{incr-mode: {mode}}}\n");
            assert_eq!(round_trip(&yaml), as_written(&yaml), "{mode}");
        }
        let (cfg, _) = load_str(
            "backup-policies:\n  p: {incr-mode: Cumulative}\n",
            Format::Yaml,
        )
        .unwrap();
        assert_eq!(cfg.backup_policies["p"].incr_mode(), IncrMode::Cumulative);
        let yaml = "backup-policies:\n  p: {parallel: 2}\n";
        let back = round_trip(yaml);
        assert!(
            back["backup-policies"]["p"].get("incr-mode").is_none(),
            "{back}"
        );
        let (cfg, _) = load_str(yaml, Format::Yaml).unwrap();
        assert_eq!(cfg.backup_policies["p"].incr_mode(), IncrMode::Differential);
        let e = load_str("backup-policies:\n  p: {incr-mode: weekly}\n", Format::Yaml).unwrap_err();
        assert!(format!("{e:?}").contains("cumulative"), "{e:?}");
    }

    #[test]
    fn secrets_are_redacted_unless_the_service_reveals_them() {
        let yaml = operator_merged_with_reveal(None);
        let (cfg, _) = load_str(&yaml, Format::Yaml).unwrap();
        let shown = serde_json::to_value(cfg.shown()).unwrap();
        let creds = &shown["aerospike-clusters"]["aerospike-backup1-test-cluster"]["credentials"];
        assert_eq!(creds["password"], REDACTED);
        let yaml = operator_merged_with_reveal(Some(true));
        let (cfg, _) = load_str(&yaml, Format::Yaml).unwrap();
        assert_eq!(
            serde_json::to_value(cfg.shown()).unwrap(),
            as_written(&yaml)
        );
    }

    fn operator_merged_with_reveal(reveal: Option<bool>) -> String {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/data/operator-config/merged.yml");
        let yaml = std::fs::read_to_string(p).unwrap();
        match reveal {
            None => yaml,
            Some(b) => yaml.replace(
                "service:\n  http:\n",
                &format!("service:\n  reveal-secrets-in-api: {b}\n  http:\n"),
            ),
        }
    }

    /// ABS 3.6 configs may leave `mode` out of `compression`/`encryption`: they load, with one
    /// warning each, as NONE (ABS 3.6's default), and come back as written.
    #[test]
    fn policies_without_a_mode_load_as_abs_36_read_them() {
        let yaml = r#"
backup-policies:
  legacy:
    compression: {level: 1}
    encryption: {key-file: /etc/abs/key.pem}
  modern:
    compression: {mode: ZSTD, level: 1}
"#;
        let (cfg, warnings) = load_str(yaml, Format::Yaml).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].contains("backup-policies.legacy.compression has no mode"));
        assert!(warnings[1].contains("backup-policies.legacy.encryption has no mode"));
        let legacy = &cfg.backup_policies["legacy"];
        assert_eq!(
            legacy.compression.as_ref().unwrap().mode(),
            CompressionMode::None
        );
        assert_eq!(
            legacy.encryption.as_ref().unwrap().mode(),
            EncryptionMode::None
        );
        assert_eq!(
            cfg.backup_policies["modern"]
                .compression
                .as_ref()
                .unwrap()
                .mode(),
            CompressionMode::Zstd
        );
        assert_eq!(serde_json::to_value(&cfg).unwrap(), as_written(yaml));
    }

    #[test]
    fn remove_files_with_retention_is_rejected_naming_both() {
        let y = "backup-policies:\n  p:\n    remove-files: KeepAll\n    retention: {full: 2}\n";
        let errs = load_str(y, Format::Yaml).unwrap_err();
        assert_eq!(errs.len(), 1);
        assert!(errs[0].message.contains("remove-files") && errs[0].message.contains("retention"));
    }

    /// Each struct rejects an unknown key, and the error names where it was.
    #[test]
    fn unknown_keys_are_rejected_with_their_path() {
        let base = r#"
service: {http: {port: 8080, rate: {tps: 5}}, logger: {level: INFO, file-writer: {filename: x}}, backup: {timestamp-format: ISO}}
aerospike-clusters:
  c:
    seed-nodes: [{host-name: h, port: 3000}]
    credentials: {user: u, password: p}
    tls: {name: t}
storage:
  l: {local-storage: {path: /tmp}}
  s3: {s3-storage: {bucket: b, s3-region: r}}
  az: {azure-storage: {endpoint: "http://x", container-name: c}}
  g: {gcp-storage: {bucket-name: b}}
  pl: {plugin-storage: {plugin: x}}
backup-policies:
  p: {retry-policy: {max-retries: 1}, retention: {full: 1}, compression: {mode: ZSTD}, encryption: {mode: NONE}, pipeline: [{plugin: z}]}
backup-routines:
  r: {interval-cron: "@daily", source-cluster: c, storage: l, namespaces: []}
secret-agents:
  a: {connection-type: tcp, address: h, port: 1}
plugins:
  x: {path: /p.wasm, sha256: "00"}
"#;
        let cfg: Config = parse(base, Format::Yaml).unwrap_or_else(|e| panic!("{e}"));
        let json = serde_json::to_value(&cfg).unwrap();
        let cases: &[&[&str]] = &[
            &[],
            &["service"],
            &["service", "http"],
            &["service", "http", "rate"],
            &["service", "logger"],
            &["service", "logger", "file-writer"],
            &["service", "backup"],
            &["aerospike-clusters", "c"],
            &["aerospike-clusters", "c", "seed-nodes", "0"],
            &["aerospike-clusters", "c", "credentials"],
            &["aerospike-clusters", "c", "tls"],
            &["storage", "l", "local-storage"],
            &["storage", "s3", "s3-storage"],
            &["storage", "az", "azure-storage"],
            &["storage", "g", "gcp-storage"],
            &["storage", "pl", "plugin-storage"],
            &["backup-policies", "p"],
            &["backup-policies", "p", "retry-policy"],
            &["backup-policies", "p", "retention"],
            &["backup-policies", "p", "compression"],
            &["backup-policies", "p", "encryption"],
            &["backup-policies", "p", "pipeline", "0"],
            &["backup-routines", "r"],
            &["secret-agents", "a"],
            &["plugins", "x"],
        ];
        for path in cases {
            let mut doc = json.clone();
            let mut node = &mut doc;
            for seg in *path {
                node = match seg.parse::<usize>() {
                    Ok(i) => &mut node[i],
                    Err(_) => &mut node[*seg],
                };
            }
            node.as_object_mut()
                .unwrap_or_else(|| panic!("{path:?} is not an object"))
                .insert("bogus-key".into(), serde_json::json!(1));
            let err = parse::<Config>(&doc.to_string(), Format::Json).unwrap_err();
            assert!(err.message.contains("bogus-key"), "{path:?}: {err}");
            let want: Vec<String> = path
                .iter()
                .map(|s| {
                    if s.parse::<usize>().is_ok() {
                        format!("[{s}]")
                    } else {
                        s.to_string()
                    }
                })
                .collect();
            let want = want.join(".").replace(".[", "[");
            assert!(
                err.path.starts_with(&want),
                "{path:?}: error path {:?} should start with {want:?}",
                err.path
            );
        }
    }

    #[test]
    fn malformed_values_name_their_field() {
        let e = parse::<Config>("backup-policies:\n  p:\n    parallel: lots\n", Format::Yaml)
            .unwrap_err();
        assert_eq!(e.path, "backup-policies.p.parallel");
        let e = parse::<Config>(r#"{"storage": {"s": {"local-storage": {}}}}"#, Format::Json)
            .unwrap_err();
        assert!(e.message.contains("missing field `path`"), "{e}");
        assert!(e.path.starts_with("storage.s"), "{e:?}");
    }
}
