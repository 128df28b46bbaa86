//! Helpers every group of integration tests uses: the repository's files, the default plugins
//! (loaded once per test binary) and a one-routine configuration on a test node.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use abs::config::{Config, Format};
use abs::plugins::{Registry, Runtime, RuntimeConfig};
use testkit::AerospikeNode;

/// The repository's root.
pub(crate) fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The AES key the golden backups were encrypted with.
pub(crate) fn key_pem() -> PathBuf {
    repo().join("tests/data/golden/key.pem")
}

/// The default plugins, loaded once; the compiled modules are cached beside the build.
pub(crate) fn plugins() -> Arc<Registry> {
    static REG: OnceLock<Arc<Registry>> = OnceLock::new();
    REG.get_or_init(|| {
        let rt = Runtime::new(RuntimeConfig {
            cache_dir: Some(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("plugin-cwasm")),
            max_instances: 48,
            ..RuntimeConfig::default()
        })
        .expect("runtime");
        Arc::new(Registry::with_defaults(&rt).expect("default plugins load"))
    })
    .clone()
}

/// Routine `r` backing up namespace `test` of the node to local storage in `dir`: `policy`
/// is the body of policy `p` (a YAML flow mapping), `routine` more fields of the routine and
/// `top` more top-level sections (YAML at column 0).
pub(crate) fn routine_config(
    node: &AerospikeNode,
    dir: &Path,
    policy: &str,
    routine: &str,
    top: &str,
) -> Config {
    let yaml = format!(
        r#"
{top}
aerospike-clusters:
  c: {{seed-nodes: [{{host-name: 127.0.0.1, port: {port}}}]}}
storage:
  s: {{local-storage: {{path: "{path}"}}}}
backup-policies:
  p: {{{policy}}}
backup-routines:
  r:
    interval-cron: "@daily"
    source-cluster: c
    storage: s
    backup-policy: p
    namespaces: [test]
    {routine}
"#,
        port = node.port(),
        path = dir.display(),
    );
    abs::config::parse::<Config>(&yaml, Format::Yaml).expect("test config parses")
}
