//! What the benches read of processes from Linux `/proc`: CPU seconds, state and resident
//! memory, of this process (`"self"`) or another by pid. Shared by the bench binaries through
//! `#[path]` (each bench is its own crate).

// Each bench uses its own subset.
#![allow(dead_code)]

/// A `kB` field of `/proc/<pid>/status` (e.g. `VmHWM:`), in KiB; `None` when the process or
/// the field is gone (a zombie has no `Vm*` fields).
pub fn status_kib(pid: &str, field: &str) -> Option<f64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
}

/// A `kB` field of this process's status, in MiB (0 when missing).
pub fn self_mib(field: &str) -> f64 {
    status_kib("self", field).map_or(0.0, |kb| kb / 1024.0)
}

/// Peak resident set of this process since the last reset, in MiB (`VmHWM`).
pub fn peak_rss_mib() -> f64 {
    self_mib("VmHWM:")
}

/// Resident set of this process now, in MiB.
pub fn rss_mib() -> f64 {
    self_mib("VmRSS:")
}

/// Resets this process's peak-RSS mark to its current RSS, so a phase is measured alone.
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// (state letter, user + system CPU seconds) of a process; `('?', 0.0)` when it is gone.
pub fn stat_of(pid: &str) -> (char, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // Fields after the command: state is index 0, utime 11, stime 12 (clock ticks, 100/s).
    let state = fields.first().and_then(|s| s.chars().next()).unwrap_or('?');
    (state, (ticks(11) + ticks(12)) / 100.0)
}

/// User + system CPU seconds of process `pid` ("self" for this one).
pub fn cpu_seconds_of(pid: &str) -> f64 {
    stat_of(pid).1
}
