//! The process's malloc settings.
//!
//! glibc gives each thread that meets contention an arena of its own, up to eight per core,
//! and an arena keeps the pages it freed. The engine's threads (scan workers, encoders,
//! readers, the runtime's workers) each touch a few MiB, so on two cores a backup's resident
//! memory was a fifth arenas holding freed chunks (docs/PERFORMANCE.md, "Memory").

/// Limits glibc's malloc arenas to two per core, unless `MALLOC_ARENA_MAX` chooses. Call it
/// first thing in `main`, before any thread starts.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
            return;
        }
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        let arenas = i32::try_from(cores.saturating_mul(2)).unwrap_or(i32::MAX);
        // SAFETY: mallopt only changes malloc's parameters; before threads start nothing
        // else calls into malloc concurrently.
        #[allow(unsafe_code)]
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, arenas);
        }
    }
}
