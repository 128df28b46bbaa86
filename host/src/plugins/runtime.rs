//! The wasmtime side of the plugin platform: one [`Engine`], the on-disk compile cache,
//! sandbox limits, deadlines, and the linkers of the two worlds.
//!
//! Execution model (why synchronous): every guest call is a plain synchronous wasmtime call.
//! Codec calls are CPU-bound (about 10 ms per MiB for zstd), so the engine runs them on a
//! blocking thread (`spawn_blocking` or its own pool) where they cannot stall the tokio
//! reactor; the async [`crate::plugins::storage::Storage`] adapter moves each call onto
//! `spawn_blocking` itself. Sync calls need no fiber stacks in the pool, and deadlines are
//! enforced by epoch interruption either way. Do not call a codec stream directly from an
//! async task: WASI stdio inside the guest blocks on tokio and would panic there.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, Trap};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::bindings;
use super::crypto::CryptoState;
use super::error::{PluginError, PluginResult};

/// Version of wasmtime the cache keys are bound to (pinned at the workspace root).
pub const WASMTIME_VERSION: &str = "48.0.8";

const MIB: usize = 1024 * 1024;

/// Tunables of the runtime. Defaults follow DESIGN §4 and WASM-PLUGINS.md §4.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Directory for compiled `.cwasm` artifacts (made private, mode 0700); `None` compiles
    /// in memory at every start (about a second per default plugin in release builds).
    /// Use a per-user location such as `$XDG_CACHE_HOME/aerospike-backup-service/cwasm`.
    pub cache_dir: Option<PathBuf>,
    /// Wall-clock bound of one codec call (`push`, `finish`, `create`).
    pub codec_call_timeout: Duration,
    /// Wall-clock bound of one storage call (`write-part` of a whole part included).
    pub storage_call_timeout: Duration,
    /// Largest chunk the host pushes through a codec; sets the codec memory limit.
    pub chunk_size_bytes: usize,
    /// Largest part the host writes to storage; sets the storage memory limit.
    pub part_size_bytes: usize,
    /// Codec state allowed on top of 2x the chunk (default 16 MiB, DESIGN §4). zstd needs
    /// more above level ~11; raise this to allow such levels (validation's dry run shows
    /// whether options fit).
    pub codec_state_bytes: usize,
    /// Instances that may exist at once (pool size). Keep the storage concurrency layer
    /// and the engine's parallelism below this.
    pub max_instances: u32,
    /// Epoch tick; deadlines are rounded up to whole ticks.
    pub epoch_tick: Duration,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            cache_dir: None,
            codec_call_timeout: Duration::from_secs(30),
            storage_call_timeout: Duration::from_secs(300),
            chunk_size_bytes: MIB,
            part_size_bytes: 16 * MIB,
            codec_state_bytes: 16 * MIB,
            max_instances: 64,
            epoch_tick: Duration::from_millis(10),
        }
    }
}

impl RuntimeConfig {
    /// The service's defaults with the on-disk compile cache in `ABS_CACHE_DIR`, else
    /// `$XDG_CACHE_HOME/aerospike-backup-service`, else `~/.cache/aerospike-backup-service`
    /// (subdirectory `cwasm`). With none of them set, components compile in memory.
    pub fn for_service() -> Self {
        let base = std::env::var_os("ABS_CACHE_DIR")
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("XDG_CACHE_HOME")
                    .map(|d| PathBuf::from(d).join("aerospike-backup-service"))
            })
            .or_else(|| {
                std::env::var_os("HOME")
                    .map(|d| PathBuf::from(d).join(".cache/aerospike-backup-service"))
            });
        RuntimeConfig {
            cache_dir: base.map(|b| b.join("cwasm")),
            // ABS accepts zstd levels up to 22, whose encoder needs ~840 MiB of state
            // (level 19: ~93 MiB). Only what an instance touches is committed.
            codec_state_bytes: 1024 * MIB,
            ..RuntimeConfig::default()
        }
    }

    /// Memory a codec instance may use: 2x chunk (one in, one out) + codec state.
    pub fn codec_memory_limit(&self) -> usize {
        2 * self.chunk_size_bytes + self.codec_state_bytes
    }

    /// Memory a storage instance may use: 2x part + 16 MiB.
    pub fn storage_memory_limit(&self) -> usize {
        2 * self.part_size_bytes + 16 * MIB
    }
}

/// Which world a component implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum World {
    Codec,
    Storage,
}

impl World {
    pub(crate) fn name(self) -> &'static str {
        match self {
            World::Codec => "codec",
            World::Storage => "storage",
        }
    }
}

/// Memory limiter that remembers whether it refused a request, so a trap can be reported
/// as "memory limit" rather than as the guest's own abort.
pub(crate) struct SandboxLimits {
    limit: usize,
    exceeded: bool,
}

impl wasmtime::ResourceLimiter for SandboxLimits {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit {
            self.exceeded = true;
            // Trapping at once (instead of returning false) keeps the outcome independent of
            // how the guest's allocator handles a failed `memory.grow`.
            wasmtime::bail!(
                "memory limit of {} bytes exceeded (wanted {desired})",
                self.limit
            );
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// Data of every store: an empty or one-directory WASI context, the resource table
/// (key handles, WASI streams), limits and crypto state.
pub(crate) struct HostState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limits: SandboxLimits,
    pub(crate) crypto: CryptoState,
    /// Host path of the one preopened directory (storage plugins only).
    pub(crate) storage_root: Option<PathBuf>,
    /// wasi:http state; only storage plugins have it linked.
    pub(crate) http: wasmtime_wasi_http::WasiHttpCtx,
    /// Where this store's wasi:http requests may go (nowhere until a backend says).
    pub(crate) net: super::net::NetGuard,
    /// The end of the guest's stderr (a panic message, for the trap error).
    pub(crate) stderr: super::stderr::StderrTail,
}

impl wasmtime_wasi_http::WasiHttpView for HostState {
    fn http(&mut self) -> wasmtime_wasi_http::WasiHttpCtxView<'_> {
        wasmtime_wasi_http::WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.net,
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Advances the engine epoch every tick so that deadlines fire; stopped on drop.
struct Ticker {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

struct Inner {
    engine: Engine,
    config: RuntimeConfig,
    /// Seed of `crypto.random-bytes`; only [`Runtime::new_with_test_rng_seed`] sets it.
    rng_seed: Option<u64>,
    /// Stores created so far; mixed into a test seed so two streams never share IVs.
    stores: std::sync::atomic::AtomicU64,
    codec_linker: Linker<HostState>,
    storage_linker: Linker<HostState>,
    config_hash: String,
    _ticker: Ticker,
}

/// Handle to the one plugin runtime of the process. Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

fn runtime_err(message: impl std::fmt::Display) -> PluginError {
    PluginError::Load {
        plugin: "<runtime>".into(),
        message: message.to_string(),
    }
}

impl Runtime {
    /// Builds the engine (pooling allocator, epoch interruption), both linkers and the
    /// epoch ticker thread.
    ///
    /// # Errors
    /// [`PluginError::Load`] if wasmtime rejects the configuration or the cache directory
    /// cannot be created.
    pub fn new(config: RuntimeConfig) -> PluginResult<Runtime> {
        Runtime::build(config, None)
    }

    /// A runtime whose `crypto.random-bytes` is a seeded generator. For tests only: IVs
    /// must be unpredictable in production, and configuration can never reach this
    /// (DESIGN D9).
    ///
    /// # Errors
    /// As [`Runtime::new`].
    #[doc(hidden)]
    pub fn new_with_test_rng_seed(config: RuntimeConfig, seed: u64) -> PluginResult<Runtime> {
        Runtime::build(config, Some(seed))
    }

    fn build(config: RuntimeConfig, rng_seed: Option<u64>) -> PluginResult<Runtime> {
        let max_memory = config
            .codec_memory_limit()
            .max(config.storage_memory_limit());
        let mut pool = PoolingAllocationConfig::default();
        let n = config.max_instances.max(1);
        pool.total_component_instances(n)
            .total_core_instances(n * 8)
            .total_memories(n * 2)
            .total_tables(n * 8)
            .max_core_instances_per_component(32)
            .max_memories_per_component(4)
            .max_tables_per_component(16)
            .max_memory_size(max_memory.next_multiple_of(64 * 1024));
        let mut wcfg = Config::new();
        wcfg.wasm_component_model(true)
            .epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&wcfg).map_err(runtime_err)?;

        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let config_hash = format!("{:016x}", hasher.finish());

        if let Some(dir) = &config.cache_dir {
            create_private_dir(dir)
                .map_err(|e| runtime_err(format!("cache dir {}: {e}", dir.display())))?;
        }

        let mut codec_linker = Linker::new(&engine);
        bindings::codec::CodecPlugin::add_to_linker::<HostState, HasSelf<HostState>>(
            &mut codec_linker,
            |s| s,
        )
        .map_err(runtime_err)?;
        link_codec_wasi(&mut codec_linker).map_err(runtime_err)?;
        super::codec::link_ctr_apply(&mut codec_linker).map_err(runtime_err)?;

        let mut storage_linker = Linker::new(&engine);
        bindings::storage::StoragePlugin::add_to_linker::<HostState, HasSelf<HostState>>(
            &mut storage_linker,
            |s| s,
        )
        .map_err(runtime_err)?;
        wasmtime_wasi::p2::add_to_linker_sync(&mut storage_linker).map_err(runtime_err)?;
        // Network for storage plugins: every request passes `NetGuard` (DESIGN §4).
        wasmtime_wasi_http::p2::add_only_http_to_linker_sync(&mut storage_linker)
            .map_err(runtime_err)?;

        let stop = Arc::new(AtomicBool::new(false));
        let ticker_engine = engine.clone();
        let tick = config.epoch_tick;
        let stop2 = stop.clone();
        let handle = std::thread::Builder::new()
            .name("plugin-epoch".into())
            .spawn(move || {
                while !stop2.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    ticker_engine.increment_epoch();
                }
            })
            .map_err(runtime_err)?;

        Ok(Runtime {
            inner: Arc::new(Inner {
                engine,
                config,
                rng_seed,
                stores: std::sync::atomic::AtomicU64::new(0),
                codec_linker,
                storage_linker,
                config_hash,
                _ticker: Ticker {
                    stop,
                    handle: Some(handle),
                },
            }),
        })
    }

    /// The configuration this runtime was built with.
    pub fn config(&self) -> &RuntimeConfig {
        &self.inner.config
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    pub(crate) fn linker(&self, world: World) -> &Linker<HostState> {
        match world {
            World::Codec => &self.inner.codec_linker,
            World::Storage => &self.inner.storage_linker,
        }
    }

    /// Cache file name for a wasm: binds the artifact to wasmtime's version, the engine
    /// configuration and the exact input bytes.
    pub fn cache_key(&self, wasm_sha256: &str) -> String {
        let mut h = Sha256::new();
        h.update(WASMTIME_VERSION.as_bytes());
        h.update([0]);
        h.update(self.inner.config_hash.as_bytes());
        h.update([0]);
        h.update(wasm_sha256.as_bytes());
        hex::encode(h.finalize())
    }

    /// Compiles a component, or loads the `.cwasm` this host wrote for the same key.
    pub(crate) fn compile(
        &self,
        plugin: &str,
        wasm: &[u8],
        wasm_sha256: &str,
    ) -> PluginResult<Component> {
        let load_err = |m: String| PluginError::Load {
            plugin: plugin.to_string(),
            message: m,
        };
        let Some(dir) = &self.inner.config.cache_dir else {
            return Component::new(&self.inner.engine, wasm)
                .map_err(|e| load_err(format!("{e:#}")));
        };
        let key = self.cache_key(wasm_sha256);
        let artifact = dir.join(format!("{key}.cwasm"));
        let digest_file = dir.join(format!("{key}.sha256"));
        if let Some(component) = self.load_cached(&artifact, &digest_file) {
            return Ok(component);
        }
        let bytes = self
            .inner
            .engine
            .precompile_component(wasm)
            .map_err(|e| load_err(format!("{e:#}")))?;
        // Best effort: a failed cache write only costs a compile next time.
        let _ = write_atomically(&artifact, &bytes).and_then(|()| {
            write_atomically(&digest_file, hex::encode(Sha256::digest(&bytes)).as_bytes())
        });
        self.deserialize(&bytes).map_err(load_err)
    }

    fn load_cached(&self, artifact: &Path, digest_file: &Path) -> Option<Component> {
        let bytes = std::fs::read(artifact).ok()?;
        let recorded = std::fs::read_to_string(digest_file).ok()?;
        // The digest file was written by us after the artifact; a mismatch means a torn or
        // foreign file, which we never hand to `deserialize`.
        if recorded.trim() != hex::encode(Sha256::digest(&bytes)) {
            return None;
        }
        self.deserialize(&bytes).ok()
    }

    #[allow(unsafe_code)]
    fn deserialize(&self, bytes: &[u8]) -> Result<Component, String> {
        if Engine::detect_precompiled(bytes) != Some(wasmtime::Precompiled::Component) {
            return Err("not a precompiled component".into());
        }
        // SAFETY: `bytes` were produced by `precompile_component` of an engine with this
        // exact configuration: either just now, or read from our private cache directory
        // (mode 0700) and matched against the digest we recorded when writing it.
        unsafe { Component::deserialize(&self.inner.engine, bytes) }.map_err(|e| format!("{e:#}"))
    }

    /// A fresh store with the world's WASI context and limits, its deadline already set
    /// (a fresh store's deadline is 0, which would trap during instantiation).
    pub(crate) fn new_store(
        &self,
        world: World,
        preopen: Option<&Path>,
    ) -> PluginResult<Store<HostState>> {
        let cfg = &self.inner.config;
        let mut wasi = WasiCtxBuilder::new();
        let stderr = super::stderr::StderrTail::default();
        wasi.stderr(stderr.clone());
        if let Some(root) = preopen {
            wasi.preopened_dir(root, "/", FsPerms::ReadWrite)
                .map_err(|e| {
                    PluginError::Other(format!(
                        "cannot open storage root {}: {e:#}",
                        root.display()
                    ))
                })?;
        }
        let limit = match world {
            World::Codec => cfg.codec_memory_limit(),
            World::Storage => cfg.storage_memory_limit(),
        };
        let state =
            HostState {
                wasi: wasi.build(),
                table: ResourceTable::new(),
                limits: SandboxLimits {
                    limit,
                    exceeded: false,
                },
                crypto: CryptoState::new(self.inner.rng_seed.map(|seed| {
                    seed.wrapping_add(self.inner.stores.fetch_add(1, Ordering::Relaxed))
                })),
                storage_root: preopen.map(Path::to_path_buf),
                http: wasmtime_wasi_http::WasiHttpCtx::new(),
                net: super::net::NetGuard::deny_all("<unnamed>"),
                stderr,
            };
        let mut store = Store::new(&self.inner.engine, state);
        store.limiter(|s| &mut s.limits);
        store.epoch_deadline_trap();
        store.set_epoch_deadline(self.deadline_ticks(self.timeout(world)));
        Ok(store)
    }

    pub(crate) fn timeout(&self, world: World) -> Duration {
        match world {
            World::Codec => self.inner.config.codec_call_timeout,
            World::Storage => self.inner.config.storage_call_timeout,
        }
    }

    fn deadline_ticks(&self, timeout: Duration) -> u64 {
        let tick = self.inner.config.epoch_tick.as_nanos().max(1);
        // +1: the current tick may be about to end.
        (timeout.as_nanos().div_ceil(tick) as u64).saturating_add(1)
    }

    /// Runs one guest call under a fresh deadline and maps traps to typed errors. After an
    /// `Err` that is a sandbox violation the caller must drop the store.
    pub(crate) fn guarded<R>(
        &self,
        store: &mut Store<HostState>,
        world: World,
        plugin: &str,
        f: impl FnOnce(&mut Store<HostState>) -> wasmtime::Result<R>,
    ) -> PluginResult<R> {
        let timeout = self.timeout(world);
        store.set_epoch_deadline(self.deadline_ticks(timeout));
        f(store).map_err(|e| classify_trap(e, store, plugin, timeout))
    }
}

/// Turns a wasmtime error from a guest call into the error the job sees.
pub(crate) fn classify_trap(
    err: wasmtime::Error,
    store: &Store<HostState>,
    plugin: &str,
    timeout: Duration,
) -> PluginError {
    let limits = &store.data().limits;
    if limits.exceeded {
        return PluginError::MemoryLimit {
            plugin: plugin.to_string(),
            limit_bytes: limits.limit,
        };
    }
    if err.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
        return PluginError::Timeout {
            plugin: plugin.to_string(),
            deadline: timeout,
        };
    }
    // A Rust guest's panic message comes first: what went wrong and where in its source,
    // then the wasm backtrace once.
    let message = match store.data().stderr.panic_message() {
        Some(panic) => format!("panicked: {panic}; {err:#}"),
        None => format!("{err:#}"),
    };
    PluginError::Trap {
        plugin: plugin.to_string(),
        message,
    }
}

/// Links only the capability-free WASI interfaces a std `wasm32-wasip2` codec imports
/// (DESIGN D9): clocks, random, cli (empty env/args, null stdio) and io. Filesystem,
/// sockets and http are deliberately absent, so even a component that slipped past the
/// import check could not be instantiated with them.
fn link_codec_wasi(l: &mut Linker<HostState>) -> wasmtime::Result<()> {
    use wasmtime_wasi::cli::{WasiCli, WasiCliView as _};
    use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView as _};
    use wasmtime_wasi::p2::bindings::{cli, clocks, random, sync};
    use wasmtime_wasi::random::WasiRandom;

    clocks::wall_clock::add_to_linker::<HostState, WasiClocks>(l, HostState::clocks)?;
    clocks::monotonic_clock::add_to_linker::<HostState, WasiClocks>(l, HostState::clocks)?;
    random::random::add_to_linker::<HostState, WasiRandom>(l, |t| t.wasi.random())?;
    random::insecure::add_to_linker::<HostState, WasiRandom>(l, |t| t.wasi.random())?;
    random::insecure_seed::add_to_linker::<HostState, WasiRandom>(l, |t| t.wasi.random())?;
    cli::exit::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    cli::environment::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    cli::stdin::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    cli::stdout::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    cli::stderr::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    cli::terminal_input::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    cli::terminal_output::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    cli::terminal_stdin::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    cli::terminal_stdout::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    cli::terminal_stderr::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    sync::io::error::add_to_linker::<HostState, HasTable>(l, |t| &mut t.table)?;
    sync::io::poll::add_to_linker::<HostState, HasTable>(l, |t| &mut t.table)?;
    sync::io::streams::add_to_linker::<HostState, HasTable>(l, |t| &mut t.table)?;
    Ok(())
}

struct HasTable;

impl wasmtime::component::HasData for HasTable {
    type Data<'a> = &'a mut ResourceTable;
}

/// Creates the cache directory, or takes over an existing one, as private to this user:
/// only its owner may chmod it, so a directory planted by someone else fails here instead
/// of feeding us artifacts to deserialize.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Temp file + rename, so a concurrent reader sees the old file or the whole new one.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Checks a component's imports against what its world may use (DESIGN D9).
pub(crate) fn check_imports(
    runtime: &Runtime,
    component: &Component,
    world: World,
    plugin: &str,
) -> PluginResult<()> {
    let ty = component.component_type();
    for (name, _) in ty.imports(runtime.engine()) {
        let unversioned = name.split('@').next().unwrap_or(name);
        let iface_pkg = unversioned.split('/').next().unwrap_or(unversioned);
        let allowed = match iface_pkg {
            "wasi:cli" | "wasi:io" | "wasi:clocks" | "wasi:random" => true,
            "wasi:filesystem" => world == World::Storage,
            // Filtered per request by `net::NetGuard` against the backend's allowed hosts.
            "wasi:http" => world == World::Storage,
            "aerospike:backup-plugin" => matches!(
                (world, unversioned),
                (_, "aerospike:backup-plugin/types")
                    | (World::Codec, "aerospike:backup-plugin/crypto")
                    | (World::Storage, "aerospike:backup-plugin/storage-host")
            ),
            _ => false,
        };
        if !allowed {
            return Err(PluginError::ForbiddenImport {
                plugin: plugin.to_string(),
                world: world.name(),
                import: name.to_string(),
            });
        }
    }
    Ok(())
}

/// Which world a component exports, from its export names.
pub(crate) fn detect_world(
    runtime: &Runtime,
    component: &Component,
    plugin: &str,
) -> PluginResult<World> {
    let ty = component.component_type();
    let mut world = None;
    for (name, _) in ty.exports(runtime.engine()) {
        let unversioned = name.split('@').next().unwrap_or(name);
        match unversioned {
            "aerospike:backup-plugin/codec" => world = Some(World::Codec),
            "aerospike:backup-plugin/storage" => world = Some(World::Storage),
            _ => {}
        }
    }
    world.ok_or_else(|| PluginError::Load {
        plugin: plugin.to_string(),
        message: "exports neither aerospike:backup-plugin/codec nor /storage (is it built against plugin-api 1.x?)"
            .into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_key_depends_on_wasm_and_is_stable() {
        let rt = Runtime::new(RuntimeConfig {
            max_instances: 2,
            ..RuntimeConfig::default()
        })
        .unwrap();
        assert_eq!(rt.cache_key("aa"), rt.cache_key("aa"));
        assert_ne!(rt.cache_key("aa"), rt.cache_key("ab"));
    }

    #[test]
    fn limits_follow_chunk_and_part_sizes() {
        let c = RuntimeConfig::default();
        assert_eq!(c.codec_memory_limit(), 18 * MIB);
        assert_eq!(c.storage_memory_limit(), 48 * MIB);
    }
}
