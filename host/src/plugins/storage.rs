//! Host trait for storage backends (mirror of WIT `storage`) and its wasm adapter.
//!
//! The trait is async and object safe (`Arc<dyn Storage>`), so layers (retry, concurrency,
//! metrics) wrap any backend. The wasm adapter runs every guest call on `spawn_blocking`.
//! Each upload and download owns its own instance: concurrent writers never share a store,
//! and a trap kills only the transfer that caused it. `list`/`stat`/`delete` share one
//! control instance, re-created after a trap.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use futures::future::BoxFuture;
use wasmtime::Store;
use wasmtime::component::{Component, ResourceAny};

use super::bindings::storage as wit;
use super::error::{PluginError, PluginResult};
use super::net::NetPolicy;
use super::registry::{PluginInfo, PluginKind};
use super::runtime::{HostState, Runtime, World};

/// Metadata of a stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
    pub modified_ms: Option<u64>,
    pub etag: Option<String>,
}

/// How the host should drive a backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    pub min_part_size: u64,
    pub max_part_size: u64,
    pub max_parts: u32,
    pub range_reads: bool,
    pub max_concurrency: Option<u32>,
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListPage {
    pub objects: Vec<ObjectInfo>,
    pub prefixes: Vec<String>,
    pub next_cursor: Option<String>,
}

/// An object being written in parts (WIT `upload`).
pub trait Upload: Send {
    /// Writes part `part_number` (1, 2, ...). Re-sending the latest part replaces it.
    ///
    /// # Errors
    /// `Temporary` may be retried with the same bytes; anything else fails the upload.
    fn write_part(&mut self, part_number: u32, data: Bytes) -> BoxFuture<'_, PluginResult<()>>;

    /// Makes the object visible atomically and durably.
    ///
    /// # Errors
    /// As for `write_part`.
    fn finish(&mut self) -> BoxFuture<'_, PluginResult<ObjectInfo>>;

    /// Discards everything written; leaves nothing behind.
    ///
    /// # Errors
    /// Best effort: callers log it.
    fn abort(&mut self) -> BoxFuture<'_, PluginResult<()>>;
}

/// A byte range being read (WIT `download`).
pub trait Download: Send {
    /// Up to `max` bytes, or `None` at the end. A returned chunk is never empty.
    ///
    /// # Errors
    /// What the backend reported, or a sandbox error.
    fn next(&mut self, max: u32) -> BoxFuture<'_, PluginResult<Option<Vec<u8>>>>;
}

/// An object store (WIT `backend`). The contract of each method is the WIT's.
pub trait Storage: Send + Sync + fmt::Debug {
    /// Registry name of the plugin behind this backend (metrics label).
    fn plugin_name(&self) -> &str;

    /// Fixed for the life of the backend.
    fn capabilities(&self) -> &Capabilities;

    /// Hosts this backend may reach (empty for storage-local).
    fn allowed_hosts(&self) -> &[String];

    /// Starts writing `key`; nothing is visible before `finish`.
    fn begin_upload(
        &self,
        key: &str,
        size_hint: Option<u64>,
    ) -> BoxFuture<'_, PluginResult<Box<dyn Upload>>>;

    /// Reads `len` bytes (to the end if `None`) of `key` from `offset`.
    fn open(
        &self,
        key: &str,
        offset: u64,
        len: Option<u64>,
    ) -> BoxFuture<'_, PluginResult<Box<dyn Download>>>;

    /// One page of the objects under `prefix`.
    fn list(
        &self,
        prefix: &str,
        recursive: bool,
        cursor: Option<String>,
        max_results: u32,
    ) -> BoxFuture<'_, PluginResult<ListPage>>;

    /// Metadata of `key`, or `NotFound`.
    fn stat(&self, key: &str) -> BoxFuture<'_, PluginResult<ObjectInfo>>;

    /// Deletes `key`; deleting a missing key succeeds.
    fn delete(&self, key: &str) -> BoxFuture<'_, PluginResult<()>>;
}

/// Credentials handed to a storage plugin; never printed.
#[derive(Clone, Default)]
pub struct StorageSecrets(pub Vec<(String, String)>);

impl fmt::Debug for StorageSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.0.iter().map(|(n, _)| n.as_str()).collect();
        write!(f, "StorageSecrets({names:?}: **redacted**)")
    }
}

fn from_wit_error(e: wit::aerospike::backup_plugin::types::Error) -> PluginError {
    use wit::aerospike::backup_plugin::types::Error as E;
    match e {
        E::NotFound => PluginError::NotFound,
        E::Denied => PluginError::Denied,
        E::AlreadyExists => PluginError::AlreadyExists,
        E::Temporary(m) => PluginError::Temporary(m),
        E::Unsupported(m) => PluginError::Unsupported(m),
        E::InvalidConfig(m) => PluginError::InvalidConfig(m),
        E::Other(m) => PluginError::Other(m),
    }
}

fn info_from_wit(i: wit::aerospike::backup_plugin::types::PluginInfo) -> PluginInfo {
    use wit::aerospike::backup_plugin::types::PluginKind as K;
    PluginInfo {
        name: i.name,
        kind: match i.kind {
            K::Codec => PluginKind::Codec,
            K::Storage => PluginKind::Storage,
        },
        version: i.version,
        api_version: i.api_version,
        options_schema: i.options_schema,
    }
}

fn object_from_wit(o: wit::exports::aerospike::backup_plugin::storage::ObjectInfo) -> ObjectInfo {
    ObjectInfo {
        key: o.key,
        size: o.size,
        modified_ms: o.modified_ms,
        etag: o.etag,
    }
}

/// The directory a storage plugin's options name (`path`), which becomes its only preopen.
pub(crate) fn storage_root(options: &str) -> PluginResult<Option<PathBuf>> {
    let v: serde_json::Value = serde_json::from_str(options)
        .map_err(|e| PluginError::InvalidConfig(format!("options are not JSON: {e}")))?;
    Ok(v.get("path").and_then(|p| p.as_str()).map(PathBuf::from))
}

/// A loaded storage component; [`WasmStoragePlugin::open_backend`] builds backends from it.
pub struct WasmStoragePlugin {
    runtime: Runtime,
    name: String,
    info: PluginInfo,
    pre: wit::StoragePluginPre<HostState>,
    /// Imports wasi:http: a network backend, whose `path` option is a key prefix rather
    /// than a directory to preopen.
    network: bool,
}

impl fmt::Debug for WasmStoragePlugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WasmStoragePlugin")
            .field("name", &self.name)
            .field("info", &self.info)
            .finish()
    }
}

impl WasmStoragePlugin {
    pub(crate) fn new(
        runtime: &Runtime,
        name: &str,
        component: &Component,
    ) -> PluginResult<WasmStoragePlugin> {
        let load = |m: String| PluginError::Load {
            plugin: name.to_string(),
            message: m,
        };
        let ip = runtime
            .linker(World::Storage)
            .instantiate_pre(component)
            .map_err(|e| load(format!("{e:#}")))?;
        let pre = wit::StoragePluginPre::new(ip).map_err(|e| load(format!("{e:#}")))?;
        let network = component
            .component_type()
            .imports(runtime.engine())
            .any(|(name, _)| name.starts_with("wasi:http/"));
        let mut store = runtime.new_store(World::Storage, None)?;
        let b = runtime.guarded(&mut store, World::Storage, name, |s| pre.instantiate(s))?;
        let info = runtime.guarded(&mut store, World::Storage, name, |s| {
            b.aerospike_backup_plugin_plugin().call_info(s)
        })?;
        Ok(WasmStoragePlugin {
            runtime: runtime.clone(),
            name: name.to_string(),
            info: info_from_wit(info),
            pre,
            network,
        })
    }

    /// Whether the component talks to the network (imports wasi:http).
    pub fn uses_network(&self) -> bool {
        self.network
    }

    /// The plugin's self-description.
    pub fn info(&self) -> &PluginInfo {
        &self.info
    }

    /// The plugin's semantic options check (no I/O, no secrets).
    ///
    /// # Errors
    /// [`PluginError::InvalidConfig`] naming the option, or a sandbox error.
    pub fn validate_options(&self, options: &str) -> PluginResult<()> {
        let mut store = self.runtime.new_store(World::Storage, None)?;
        let b = self
            .runtime
            .guarded(&mut store, World::Storage, &self.name, |s| {
                self.pre.instantiate(s)
            })?;
        self.runtime
            .guarded(&mut store, World::Storage, &self.name, |s| {
                b.aerospike_backup_plugin_plugin()
                    .call_validate_options(s, options)
            })?
            .map_err(from_wit_error)
    }

    /// Builds a backend from options and secrets. If the options name a `path`, that
    /// directory (created if missing) is the only one the plugin can reach.
    ///
    /// # Errors
    /// Invalid options (as the plugin reports them), an unusable root, or a sandbox error.
    pub fn open_backend(
        &self,
        options: &str,
        secrets: StorageSecrets,
    ) -> PluginResult<Arc<dyn Storage>> {
        self.open_backend_with(options, secrets, None)
    }

    /// As [`Self::open_backend`]; with `bearer`, every request of the backend that carries a
    /// bearer token gets the source's current one instead (tokens outlived by a job).
    ///
    /// # Errors
    /// As [`Self::open_backend`].
    pub fn open_backend_with(
        &self,
        options: &str,
        secrets: StorageSecrets,
        bearer: Option<super::net::BearerSource>,
    ) -> PluginResult<Arc<dyn Storage>> {
        let parsed: serde_json::Value = serde_json::from_str(options)
            .map_err(|e| PluginError::InvalidConfig(format!("options are not JSON: {e}")))?;
        let root = if self.network {
            None
        } else {
            storage_root(options)?
        };
        if let Some(r) = &root {
            std::fs::create_dir_all(r).map_err(|e| {
                PluginError::Other(format!("cannot create storage root {}: {e}", r.display()))
            })?;
        }
        let shared = Arc::new(Shared {
            runtime: self.runtime.clone(),
            name: self.name.clone(),
            pre: self.pre.clone(),
            options: options.to_string(),
            secrets,
            root,
            net: OnceLock::new(),
            bearer,
        });
        let mut control = shared.instantiate()?;
        let (caps, hosts) = {
            let StorageInstance { store, b, backend } = &mut control;
            let be = b.aerospike_backup_plugin_storage().backend();
            let caps = shared
                .runtime
                .guarded(store, World::Storage, &shared.name, |s| {
                    be.call_capabilities(s, *backend)
                })?;
            let hosts = shared
                .runtime
                .guarded(store, World::Storage, &shared.name, |s| {
                    be.call_allowed_hosts(s, *backend)
                })?;
            (caps, hosts)
        };
        // From now on every instance of this backend (this one included) may reach the
        // hosts it declared, and only those.
        let policy = NetPolicy::new(&hosts, &parsed);
        control.store.data_mut().net.policy = policy.clone();
        let _ = shared.net.set(policy);
        if !hosts.is_empty() {
            tracing::debug!(plugin = %shared.name, hosts = ?hosts, "storage backend network allowlist");
        }
        Ok(Arc::new(WasmStorage {
            shared,
            control: Arc::new(Mutex::new(Some(control))),
            caps: Capabilities {
                min_part_size: caps.min_part_size,
                max_part_size: caps.max_part_size,
                max_parts: caps.max_parts,
                range_reads: caps.range_reads,
                max_concurrency: caps.max_concurrency,
            },
            hosts,
        }))
    }
}

struct Shared {
    runtime: Runtime,
    name: String,
    pre: wit::StoragePluginPre<HostState>,
    options: String,
    secrets: StorageSecrets,
    root: Option<PathBuf>,
    /// Set once the backend declared its hosts; until then requests are refused.
    net: OnceLock<NetPolicy>,
    bearer: Option<super::net::BearerSource>,
}

struct StorageInstance {
    store: Store<HostState>,
    b: wit::StoragePlugin,
    backend: ResourceAny,
}

impl Shared {
    fn instantiate(&self) -> PluginResult<StorageInstance> {
        let mut store = self
            .runtime
            .new_store(World::Storage, self.root.as_deref())?;
        {
            let net = &mut store.data_mut().net;
            net.plugin.clone_from(&self.name);
            net.policy = self.net.get().cloned().unwrap_or_default();
            net.bearer.clone_from(&self.bearer);
        }
        let b = self
            .runtime
            .guarded(&mut store, World::Storage, &self.name, |s| {
                self.pre.instantiate(s)
            })?;
        let backend = self
            .runtime
            .guarded(&mut store, World::Storage, &self.name, |s| {
                b.aerospike_backup_plugin_storage().backend().call_create(
                    s,
                    &self.options,
                    &self.secrets.0,
                )
            })?
            .map_err(from_wit_error)?;
        Ok(StorageInstance { store, b, backend })
    }

    /// One guest call; the outer error (trap/timeout) tells the caller to drop the instance.
    fn call<R>(
        &self,
        inst: &mut StorageInstance,
        f: impl FnOnce(&mut Store<HostState>, &wit::StoragePlugin, ResourceAny) -> wasmtime::Result<R>,
    ) -> PluginResult<R> {
        let StorageInstance { store, b, backend } = inst;
        let backend = *backend;
        self.runtime
            .guarded(store, World::Storage, &self.name, |s| f(s, b, backend))
    }
}

/// Runs blocking guest work off the reactor.
async fn blocking<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> PluginResult<R> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| PluginError::Other(format!("plugin call panicked: {e}")))
}

struct WasmStorage {
    shared: Arc<Shared>,
    control: Arc<Mutex<Option<StorageInstance>>>,
    caps: Capabilities,
    hosts: Vec<String>,
}

impl fmt::Debug for WasmStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WasmStorage")
            .field("plugin", &self.shared.name)
            .field("root", &self.shared.root)
            .field("secrets", &self.shared.secrets)
            .finish()
    }
}

impl WasmStorage {
    /// Runs `f` on the control instance (created on demand, dropped after a trap).
    fn with_control<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store<HostState>, &wit::StoragePlugin, ResourceAny) -> wasmtime::Result<R>
        + Send
        + 'static,
    ) -> BoxFuture<'_, PluginResult<R>> {
        let shared = self.shared.clone();
        let control = self.control.clone();
        Box::pin(async move {
            blocking(move || {
                let mut guard = control.lock().unwrap_or_else(|p| p.into_inner());
                if guard.is_none() {
                    *guard = Some(shared.instantiate()?);
                }
                let inst = guard.as_mut().expect("instance just created");
                let r = shared.call(inst, f);
                if r.as_ref().is_err_and(PluginError::is_sandbox_violation) {
                    *guard = None;
                }
                r
            })
            .await?
        })
    }
}

impl Storage for WasmStorage {
    fn plugin_name(&self) -> &str {
        &self.shared.name
    }

    fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    fn allowed_hosts(&self) -> &[String] {
        &self.hosts
    }

    fn begin_upload(
        &self,
        key: &str,
        size_hint: Option<u64>,
    ) -> BoxFuture<'_, PluginResult<Box<dyn Upload>>> {
        let shared = self.shared.clone();
        let key = key.to_string();
        Box::pin(async move {
            let s2 = shared.clone();
            let (inst, upload) = blocking(move || -> PluginResult<_> {
                let mut inst = s2.instantiate()?;
                let up = s2
                    .call(&mut inst, |s, b, be| {
                        b.aerospike_backup_plugin_storage()
                            .backend()
                            .call_begin_upload(s, be, &key, size_hint)
                    })?
                    .map_err(from_wit_error)?;
                Ok((inst, up))
            })
            .await??;
            Ok(Box::new(WasmUpload {
                shared,
                inst: Some(inst),
                upload,
                done: false,
            }) as Box<dyn Upload>)
        })
    }

    fn open(
        &self,
        key: &str,
        offset: u64,
        len: Option<u64>,
    ) -> BoxFuture<'_, PluginResult<Box<dyn Download>>> {
        let shared = self.shared.clone();
        let key = key.to_string();
        Box::pin(async move {
            let s2 = shared.clone();
            let (inst, download) = blocking(move || -> PluginResult<_> {
                let mut inst = s2.instantiate()?;
                let d = s2
                    .call(&mut inst, |s, b, be| {
                        b.aerospike_backup_plugin_storage()
                            .backend()
                            .call_open(s, be, &key, offset, len)
                    })?
                    .map_err(from_wit_error)?;
                Ok((inst, d))
            })
            .await??;
            Ok(Box::new(WasmDownload {
                shared,
                inst: Some(inst),
                download,
            }) as Box<dyn Download>)
        })
    }

    fn list(
        &self,
        prefix: &str,
        recursive: bool,
        cursor: Option<String>,
        max_results: u32,
    ) -> BoxFuture<'_, PluginResult<ListPage>> {
        let prefix = prefix.to_string();
        let fut = self.with_control(move |s, b, be| {
            b.aerospike_backup_plugin_storage().backend().call_list(
                s,
                be,
                &prefix,
                recursive,
                cursor.as_deref(),
                max_results.max(1),
            )
        });
        Box::pin(async move {
            let page = fut.await?.map_err(from_wit_error)?;
            Ok(ListPage {
                objects: page.objects.into_iter().map(object_from_wit).collect(),
                prefixes: page.prefixes,
                next_cursor: page.next_cursor,
            })
        })
    }

    fn stat(&self, key: &str) -> BoxFuture<'_, PluginResult<ObjectInfo>> {
        let key = key.to_string();
        let fut = self.with_control(move |s, b, be| {
            b.aerospike_backup_plugin_storage()
                .backend()
                .call_stat(s, be, &key)
        });
        Box::pin(async move { fut.await?.map(object_from_wit).map_err(from_wit_error) })
    }

    fn delete(&self, key: &str) -> BoxFuture<'_, PluginResult<()>> {
        let key = key.to_string();
        let fut = self.with_control(move |s, b, be| {
            b.aerospike_backup_plugin_storage()
                .backend()
                .call_delete(s, be, &key)
        });
        Box::pin(async move { fut.await?.map_err(from_wit_error) })
    }
}

struct WasmUpload {
    shared: Arc<Shared>,
    /// Taken while a call runs on the blocking pool; `None` afterwards means it trapped.
    inst: Option<StorageInstance>,
    upload: ResourceAny,
    /// Finished or aborted: nothing to clean up on drop.
    done: bool,
}

type UploadCall<R> = Box<
    dyn FnOnce(&mut Store<HostState>, &wit::StoragePlugin, ResourceAny) -> wasmtime::Result<R>
        + Send,
>;

impl WasmUpload {
    async fn run<R: Send + 'static>(&mut self, f: UploadCall<R>) -> PluginResult<R> {
        let Some(mut inst) = self.inst.take() else {
            return Err(PluginError::Poisoned(self.shared.name.clone()));
        };
        let shared = self.shared.clone();
        let upload = self.upload;
        let (inst, r) = blocking(move || {
            let r = shared.call(&mut inst, |s, b, _| f(s, b, upload));
            (inst, r)
        })
        .await?;
        if !r.as_ref().is_err_and(PluginError::is_sandbox_violation) {
            self.inst = Some(inst);
        }
        r
    }
}

impl Upload for WasmUpload {
    fn write_part(&mut self, part_number: u32, data: Bytes) -> BoxFuture<'_, PluginResult<()>> {
        Box::pin(async move {
            self.run(Box::new(move |s, b, up| {
                b.aerospike_backup_plugin_storage()
                    .upload()
                    .call_write_part(s, up, part_number, &data)
            }))
            .await?
            .map_err(from_wit_error)
        })
    }

    fn finish(&mut self) -> BoxFuture<'_, PluginResult<ObjectInfo>> {
        Box::pin(async move {
            let r = self
                .run(Box::new(|s, b, up| {
                    b.aerospike_backup_plugin_storage()
                        .upload()
                        .call_finish(s, up)
                }))
                .await?
                .map(object_from_wit)
                .map_err(from_wit_error);
            if r.is_ok() {
                self.done = true;
            }
            r
        })
    }

    fn abort(&mut self) -> BoxFuture<'_, PluginResult<()>> {
        Box::pin(async move {
            let r = self
                .run(Box::new(|s, b, up| {
                    b.aerospike_backup_plugin_storage()
                        .upload()
                        .call_abort(s, up)
                }))
                .await;
            self.done = true;
            r?.map_err(from_wit_error)
        })
    }
}

impl Drop for WasmUpload {
    fn drop(&mut self) {
        // Dropping a store runs no guest destructors, so an unfinished upload would leave
        // its temporary data behind: abort it explicitly (WIT: drop == abort).
        if self.done {
            return;
        }
        let Some(mut inst) = self.inst.take() else {
            return;
        };
        let shared = self.shared.clone();
        let upload = self.upload;
        let mut abort = move || {
            let _ = shared.call(&mut inst, |s, b, _| {
                b.aerospike_backup_plugin_storage()
                    .upload()
                    .call_abort(s, upload)
            });
        };
        match tokio::runtime::Handle::try_current() {
            Ok(h) => {
                h.spawn_blocking(abort);
            }
            Err(_) => abort(),
        }
    }
}

struct WasmDownload {
    shared: Arc<Shared>,
    inst: Option<StorageInstance>,
    download: ResourceAny,
}

impl Download for WasmDownload {
    fn next(&mut self, max: u32) -> BoxFuture<'_, PluginResult<Option<Vec<u8>>>> {
        Box::pin(async move {
            let Some(mut inst) = self.inst.take() else {
                return Err(PluginError::Poisoned(self.shared.name.clone()));
            };
            let shared = self.shared.clone();
            let d = self.download;
            let (inst, r) = blocking(move || {
                let r = shared.call(&mut inst, |s, b, _| {
                    b.aerospike_backup_plugin_storage()
                        .download()
                        .call_next(s, d, max.max(1))
                });
                (inst, r)
            })
            .await?;
            if !r.as_ref().is_err_and(PluginError::is_sandbox_violation) {
                self.inst = Some(inst);
            }
            r?.map_err(from_wit_error)
        })
    }
}

// ---- host side of the `storage-host` import --------------------------------------------

/// Key rules of the WIT: relative, no empty / `.` / `..` segment, no NUL, no backslash.
pub(crate) fn valid_relative_path(p: &str) -> bool {
    !p.starts_with('/')
        && !p.contains('\0')
        && !p.contains('\\')
        && p.split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != "..")
}

fn sync_dir(root: &Path, rel: &str) -> std::io::Result<()> {
    let dir = if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(rel)
    };
    std::fs::File::open(dir)?.sync_all()
}

impl wit::aerospike::backup_plugin::storage_host::Host for HostState {
    fn sync_dir(
        &mut self,
        path: String,
    ) -> wasmtime::Result<Result<(), wit::aerospike::backup_plugin::types::Error>> {
        use wit::aerospike::backup_plugin::types::Error as E;
        let Some(root) = &self.storage_root else {
            return Ok(Err(E::Unsupported(
                "no directory is preopened for this plugin".into(),
            )));
        };
        if !path.is_empty() && !valid_relative_path(path.trim_end_matches('/')) {
            return Ok(Err(E::Denied));
        }
        Ok(match sync_dir(root, path.trim_end_matches('/')) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(E::NotFound),
            Err(e) => Err(E::Other(format!("fsync of directory failed: {e}"))),
        })
    }
}

impl wit::aerospike::backup_plugin::types::Host for HostState {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_path_rules() {
        assert!(valid_relative_path("a/b/c.asb"));
        for bad in [
            "", "/a", "a//b", "a/../b", "./a", "a/.", "a\0b", "..", "a\\b",
        ] {
            assert!(!valid_relative_path(bad), "{bad:?}");
        }
    }

    #[test]
    fn secrets_debug_hides_values() {
        let s = StorageSecrets(vec![("access-key".into(), "AKIA-SECRET".into())]);
        let d = format!("{s:?}");
        assert!(d.contains("access-key") && !d.contains("AKIA"), "{d}");
    }

    #[test]
    fn storage_root_comes_from_path_option() {
        assert_eq!(
            storage_root(r#"{"path":"/tmp/x"}"#).unwrap(),
            Some(PathBuf::from("/tmp/x"))
        );
        assert_eq!(storage_root("{}").unwrap(), None);
        assert!(storage_root("nope").is_err());
    }
}
