//! The configuration store: the current config as an `Arc` others watch, and the one path by
//! which it changes (parse → validate → resolve → atomic write → swap).

use super::validate::{ConfigError, validate};
use super::{Config, Format, load_str};
use futures::future::BoxFuture;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::{Mutex, watch};

/// Why a change was refused.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// The resulting config is invalid; every problem is listed.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<ConfigError>),
    /// The named entity does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// Creating an entity whose name is taken.
    #[error("item already exists: {0}")]
    AlreadyExists(String),
    /// Deleting an entity that others use.
    #[error("{what} is in use by {users}")]
    InUse { what: String, users: String },
    /// The file could not be written; the old file is intact.
    #[error("could not save the configuration: {0}")]
    Io(#[from] std::io::Error),
    /// The configuration came from a read-only source (a URL); nothing was changed.
    #[error("the configuration is read-only: {0}")]
    ReadOnly(String),
}

/// The phase-2 checks that need local I/O or the plugin registry (DESIGN D4). Implemented by the
/// plugin registry; the config module knows only this seam.
pub trait PluginCheck: Send + Sync {
    /// Checks plugin files, hashes and options that `cfg` names. Errors carry config paths.
    fn check(&self, cfg: &Config) -> Vec<ConfigError>;
}

/// Records an error at `field` unless the local file `file` can be read.
fn check_readable(errs: &mut Vec<ConfigError>, field: String, file: &str) {
    if let Err(e) = std::fs::metadata(file) {
        errs.push(ConfigError::new(
            field,
            format!("cannot read \"{file}\": {e}"),
        ));
    }
}

/// Checks that need local files: password files, key files, plugin files and their sha256.
pub fn resolve(cfg: &Config, plugins: Option<&dyn PluginCheck>) -> Vec<ConfigError> {
    let mut errs = resolve_files(cfg);
    errs.extend(resolve_plugins(cfg, plugins));
    errs
}

/// Password and key files: a file that is missing at load may be mounted later (a job that
/// needs it fails clearly), so loading a file only warns about these; API changes refuse them.
pub fn resolve_files(cfg: &Config) -> Vec<ConfigError> {
    let mut errs = Vec::new();
    for (name, c) in &cfg.aerospike_clusters {
        if let Some(p) = c
            .credentials
            .as_ref()
            .and_then(|c| c.password_path.as_ref())
        {
            let field = format!("aerospike-clusters.{name}.credentials.password-path");
            check_readable(&mut errs, field, p);
        }
    }
    for (name, p) in &cfg.backup_policies {
        if let Some(k) = p.encryption.as_ref().and_then(|e| e.key_file.as_ref()) {
            let field = format!("backup-policies.{name}.encryption.key-file");
            check_readable(&mut errs, field, k);
        }
        for (i, step) in p.pipeline.iter().flatten().enumerate() {
            if let Some(k) = &step.key_file {
                let field = format!("backup-policies.{name}.pipeline[{i}].key-file");
                check_readable(&mut errs, field, k);
            }
        }
    }
    errs
}

/// Plugin files, their pinned sha256 and the options the plugins accept. The point of a pin
/// is that a swapped plugin never runs, so every path refuses these alike: `validate`, start
/// (exit with the errors), `POST /v1/config/apply` and API changes (400).
pub fn resolve_plugins(cfg: &Config, plugins: Option<&dyn PluginCheck>) -> Vec<ConfigError> {
    let mut errs = Vec::new();
    for (name, def) in &cfg.plugins {
        match std::fs::read(&def.path) {
            Err(e) => errs.push(ConfigError::new(
                format!("plugins.{name}.path"),
                format!("cannot read \"{}\": {e}", def.path),
            )),
            Ok(bytes) => {
                let actual = hex::encode(Sha256::digest(&bytes));
                if !actual.eq_ignore_ascii_case(&def.sha256) {
                    errs.push(ConfigError::new(
                        format!("plugins.{name}.sha256"),
                        format!("does not match the file (its sha256 is {actual})"),
                    ));
                }
            }
        }
    }
    // The registry loads the same files; with one of them missing or altered it would only
    // report the same problem again, under the same path.
    if let Some(p) = plugins.filter(|_| errs.is_empty()) {
        errs.extend(p.check(cfg));
    }
    errs
}

/// A configuration document kept in a storage backend (`-r`, ABS "remote config"). The
/// config module sees whole documents only; the engine implements this over a storage plugin.
pub trait RemoteDocument: Send + Sync + std::fmt::Debug {
    /// Where it lives, for logs and errors (never a secret).
    fn describe(&self) -> String;
    /// The whole document.
    fn read(&self) -> BoxFuture<'_, Result<Vec<u8>, String>>;
    /// Replaces the whole document; a failed write leaves the old one (object stores replace
    /// an object whole, local storage stages and renames).
    fn write(&self, bytes: Vec<u8>) -> BoxFuture<'_, Result<(), String>>;
    /// Why the document cannot be written (e.g. it was read from a URL), if so: then every
    /// change is refused before anything is applied.
    fn read_only(&self) -> Option<String> {
        None
    }
}

/// Where the configuration lives.
#[derive(Debug, Clone)]
pub enum Source {
    /// A local YAML file, rewritten on every change.
    File(PathBuf),
    /// A document in a storage backend, rewritten on every change.
    Remote(Arc<dyn RemoteDocument>),
    /// In memory only (tests, or `service.http` checks); changes are not persisted.
    Memory,
}

/// Holds the current configuration and serialises changes to it.
pub struct ConfigStore {
    source: Source,
    tx: watch::Sender<Arc<Config>>,
    /// Held for a whole change, so concurrent API requests apply one after another.
    write_lock: Mutex<()>,
    plugins: Option<Arc<dyn PluginCheck>>,
}

impl std::fmt::Debug for ConfigStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigStore")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// Result of loading a file: the store plus what an operator should hear about.
#[derive(Debug)]
pub struct Loaded {
    pub store: ConfigStore,
    /// Deprecated keys that were rewritten, and local files that could not be checked.
    pub warnings: Vec<String>,
}

impl ConfigStore {
    /// Loads and validates the file at `path`. Deprecated keys and missing password or key
    /// files are warnings here (a job that needs them fails clearly); invalid config and any
    /// plugin problem (missing file, sha256 mismatch, options the plugin refuses) are errors.
    pub fn load_file(
        path: impl Into<PathBuf>,
        plugins: Option<Arc<dyn PluginCheck>>,
    ) -> Result<Loaded, LoadError> {
        let path = path.into();
        let text = std::fs::read_to_string(&path).map_err(|e| LoadError::Read(path.clone(), e))?;
        let format = if path.extension().is_some_and(|e| e == "json") {
            Format::Json
        } else {
            Format::Yaml
        };
        let (cfg, mut warnings) =
            load_str(&text, format).map_err(|e| LoadError::Invalid(path.clone(), e))?;
        let refused = resolve_plugins(&cfg, plugins.as_deref());
        if !refused.is_empty() {
            return Err(LoadError::Invalid(path, refused));
        }
        warnings.extend(resolve_files(&cfg).into_iter().map(|e| e.to_string()));
        Ok(Loaded {
            store: Self::with_source(cfg, Source::File(path), plugins),
            warnings,
        })
    }

    /// Loads and validates the document `remote` holds, with the same rules as
    /// [`ConfigStore::load_file`]; changes are written back to it.
    pub async fn load_remote(
        remote: Arc<dyn RemoteDocument>,
        plugins: Option<Arc<dyn PluginCheck>>,
    ) -> Result<Loaded, LoadError> {
        let origin = PathBuf::from(remote.describe());
        let bytes = remote
            .read()
            .await
            .map_err(|e| LoadError::Read(origin.clone(), std::io::Error::other(e)))?;
        let text = String::from_utf8(bytes).map_err(|_| {
            LoadError::Read(origin.clone(), std::io::Error::other("not UTF-8 text"))
        })?;
        let format = remote_format(remote.as_ref());
        let (cfg, mut warnings) =
            load_str(&text, format).map_err(|e| LoadError::Invalid(origin.clone(), e))?;
        let refused = resolve_plugins(&cfg, plugins.as_deref());
        if !refused.is_empty() {
            return Err(LoadError::Invalid(origin, refused));
        }
        warnings.extend(resolve_files(&cfg).into_iter().map(|e| e.to_string()));
        Ok(Loaded {
            store: Self::with_source(cfg, Source::Remote(remote), plugins),
            warnings,
        })
    }

    /// A store that keeps changes in memory only.
    pub fn in_memory(cfg: Config) -> Self {
        Self::with_source(cfg, Source::Memory, None)
    }

    fn with_source(cfg: Config, source: Source, plugins: Option<Arc<dyn PluginCheck>>) -> Self {
        let (tx, _) = watch::channel(Arc::new(cfg));
        Self {
            source,
            tx,
            write_lock: Mutex::new(()),
            plugins,
        }
    }

    /// The current configuration. Work that starts now keeps this `Arc` to its end.
    pub fn current(&self) -> Arc<Config> {
        self.tx.borrow().clone()
    }

    /// A receiver that sees every applied configuration.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Config>> {
        self.tx.subscribe()
    }

    pub fn source(&self) -> &Source {
        &self.source
    }

    /// Applies `change` to a copy of the current config; if the result is valid, persists it
    /// atomically and publishes it. On any error nothing changes, on disk or in memory.
    pub async fn update<T>(
        &self,
        change: impl FnOnce(&mut Config) -> Result<T, ChangeError>,
    ) -> Result<T, ChangeError> {
        let _guard = self.write_lock.lock().await;
        self.writable()?;
        let mut next = (*self.current()).clone();
        let out = change(&mut next)?;
        self.commit(next).await?;
        Ok(out)
    }

    /// Replaces the whole configuration (PUT /v1/config).
    pub async fn replace(&self, mut cfg: Config) -> Result<Vec<String>, ChangeError> {
        let _guard = self.write_lock.lock().await;
        self.writable()?;
        let warnings = super::migrate(&mut cfg);
        self.commit(cfg).await?;
        Ok(warnings)
    }

    fn writable(&self) -> Result<(), ChangeError> {
        match &self.source {
            Source::Remote(r) => r
                .read_only()
                .map_or(Ok(()), |why| Err(ChangeError::ReadOnly(why))),
            _ => Ok(()),
        }
    }

    /// Re-reads the file and applies it (POST /v1/config/apply).
    pub async fn reload(&self) -> Result<Vec<String>, ChangeError> {
        let _guard = self.write_lock.lock().await;
        let (text, format) = match &self.source {
            Source::File(path) => (tokio::fs::read_to_string(path).await?, Format::Yaml),
            Source::Remote(r) => {
                let bytes = r.read().await.map_err(std::io::Error::other)?;
                let text = String::from_utf8(bytes)
                    .map_err(|_| std::io::Error::other(format!("{}: not UTF-8", r.describe())))?;
                (text, remote_format(r.as_ref()))
            }
            Source::Memory => return Ok(vec![]),
        };
        let (cfg, mut warnings) = load_str(&text, format).map_err(ChangeError::Invalid)?;
        let refused = resolve_plugins(&cfg, self.plugins.as_deref());
        if !refused.is_empty() {
            return Err(ChangeError::Invalid(refused));
        }
        warnings.extend(resolve_files(&cfg).into_iter().map(|e| e.to_string()));
        self.tx.send_replace(Arc::new(cfg));
        Ok(warnings)
    }

    async fn commit(&self, cfg: Config) -> Result<(), ChangeError> {
        validate(&cfg).map_err(ChangeError::Invalid)?;
        let mut errs = cfg
            .unresolved_placeholders()
            .into_iter()
            .map(|p| {
                ConfigError::new(
                    p,
                    "\"[secret]\" can only be sent back for a secret that is already stored",
                )
            })
            .collect::<Vec<_>>();
        errs.extend(resolve(&cfg, self.plugins.as_deref()));
        if !errs.is_empty() {
            return Err(ChangeError::Invalid(errs));
        }
        match &self.source {
            Source::File(path) => {
                let yaml = serde_yaml::to_string(&cfg)
                    .map_err(|e| std::io::Error::other(format!("serialising: {e}")))?;
                let path = path.clone();
                tokio::task::spawn_blocking(move || {
                    write_atomically(&path, yaml.as_bytes()).map_err(|e| {
                        std::io::Error::new(e.kind(), format!("{}: {e}", path.display()))
                    })
                })
                .await
                .map_err(std::io::Error::other)??;
            }
            Source::Remote(r) => {
                let yaml = serde_yaml::to_string(&cfg)
                    .map_err(|e| std::io::Error::other(format!("serialising: {e}")))?;
                r.write(yaml.into_bytes())
                    .await
                    .map_err(|e| std::io::Error::other(format!("{}: {e}", r.describe())))?;
            }
            Source::Memory => {}
        }
        self.tx.send_replace(Arc::new(cfg));
        Ok(())
    }
}

/// A remote document is JSON when its name says so, else YAML.
fn remote_format(remote: &dyn RemoteDocument) -> Format {
    if remote.describe().ends_with(".json") {
        Format::Json
    } else {
        Format::Yaml
    }
}

/// Why the configuration could not be loaded at start.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read configuration file {path}: {err}", path = .0.display(), err = .1)]
    Read(PathBuf, std::io::Error),
    #[error("invalid configuration in {path}:\n  {list}", path = .0.display(), list = .1.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n  "))]
    Invalid(PathBuf, Vec<ConfigError>),
}

/// Writes `bytes` to `path` so that a reader (or a crash) sees either the old file or the new
/// one, never a mix: temp file in the same directory, fsync, rename, fsync the directory.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other("configuration path has no file name"))?;
    let tmp = dir.join(format!(".{}.tmp", name.to_string_lossy()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        // Keep the permissions of the file we replace (it may hold passwords).
        if let Ok(meta) = std::fs::metadata(path) {
            f.set_permissions(meta.permissions())?;
        }
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(&dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: &str = r#"
aerospike-clusters:
  c: {seed-nodes: [{host-name: localhost, port: 3000}], credentials: {user: u, password: pw}}
storage:
  s: {local-storage: {path: ./b}}
backup-routines:
  r: {interval-cron: "@daily", source-cluster: c, storage: s, namespaces: [test]}
"#;

    fn store(dir: &Path) -> (ConfigStore, PathBuf) {
        let path = dir.join("abs.yml");
        std::fs::write(&path, CFG).unwrap();
        let loaded = ConfigStore::load_file(&path, None).unwrap();
        (loaded.store, path)
    }

    #[tokio::test]
    async fn valid_change_persists_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let (s, path) = store(dir.path());
        let mut rx = s.subscribe();
        s.update(|c| {
            *c.backup_routines.get_mut("r").unwrap().disabled = true;
            Ok(())
        })
        .await
        .unwrap();
        assert!(rx.has_changed().unwrap());
        assert!(*rx.borrow_and_update().backup_routines["r"].disabled);
        let again = ConfigStore::load_file(&path, None).unwrap().store;
        assert!(*again.current().backup_routines["r"].disabled);
        // The password survives the round trip to disk.
        assert_eq!(
            again.current().aerospike_clusters["c"]
                .credentials
                .as_ref()
                .unwrap()
                .password
                .as_ref()
                .unwrap()
                .expose(),
            "pw"
        );
    }

    #[tokio::test]
    async fn invalid_change_leaves_file_byte_identical() {
        let dir = tempfile::tempdir().unwrap();
        let (s, path) = store(dir.path());
        let before = std::fs::read(&path).unwrap();
        let err = s
            .update(|c| {
                c.backup_routines.get_mut("r").unwrap().storage = "s4".into();
                Ok(())
            })
            .await
            .unwrap_err();
        assert!(matches!(err, ChangeError::Invalid(_)));
        assert_eq!(std::fs::read(&path).unwrap(), before);
        assert_eq!(s.current().backup_routines["r"].storage, "s");
    }

    #[tokio::test]
    async fn failed_write_leaves_old_file_and_old_config() {
        let dir = tempfile::tempdir().unwrap();
        let (s, path) = store(dir.path());
        let before = std::fs::read(&path).unwrap();
        // A directory where the temp file must go makes the write fail part-way.
        std::fs::create_dir(dir.path().join(".abs.yml.tmp")).unwrap();
        let err = s
            .update(|c| {
                *c.backup_routines.get_mut("r").unwrap().disabled = true;
                Ok(())
            })
            .await
            .unwrap_err();
        assert!(matches!(err, ChangeError::Io(_)), "{err:?}");
        assert_eq!(std::fs::read(&path).unwrap(), before);
        assert!(!*s.current().backup_routines["r"].disabled);
    }

    #[tokio::test]
    async fn concurrent_updates_are_serialised() {
        let dir = tempfile::tempdir().unwrap();
        let (s, path) = store(dir.path());
        let s = Arc::new(s);
        let mut tasks = Vec::new();
        for i in 0..20 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                s.update(|c| {
                    c.storage.insert(
                        format!("s{i}"),
                        crate::config::Storage::LocalStorage(crate::config::LocalStorage {
                            path: format!("/tmp/{i}"),
                        }),
                    );
                    Ok(())
                })
                .await
                .unwrap();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(s.current().storage.len(), 21);
        let again = ConfigStore::load_file(&path, None).unwrap().store;
        assert_eq!(again.current().storage.len(), 21);
    }

    #[tokio::test]
    async fn plugin_files_are_hash_checked() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = store(dir.path());
        let wasm = dir.path().join("p.wasm");
        std::fs::write(&wasm, b"\0asm").unwrap();
        let err = s
            .update(|c| {
                c.plugins.insert(
                    "p".into(),
                    crate::config::PluginDefinition {
                        path: wasm.display().to_string(),
                        sha256: "0".repeat(64),
                    },
                );
                Ok(())
            })
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("plugins.p.sha256: does not match"),
            "{err}"
        );
        let good = hex::encode(Sha256::digest(b"\0asm"));
        s.update(|c| {
            c.plugins.insert(
                "p".into(),
                crate::config::PluginDefinition {
                    path: wasm.display().to_string(),
                    sha256: good,
                },
            );
            Ok(())
        })
        .await
        .unwrap();
    }
}
