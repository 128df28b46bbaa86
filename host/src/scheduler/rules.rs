//! The overlap rules (seed FAQ, ABS-API.md §4, DESIGN §7) as one pure function.
//!
//! - A full is skipped, not queued, while a full of the routine runs; it starts while an
//!   incremental runs, and both continue.
//! - An incremental is skipped while any backup of the routine runs, unless the policy sets
//!   `concurrent-incremental` (then only while another incremental runs).
//! - No incremental until a full backup of the routine succeeded.
//!
//! Scheduled and on-demand runs go through the same function; its reason is what the log,
//! the routine state and the on-demand answer show.

use std::fmt;

use crate::jobs::registry::Activity;
use crate::storage::layout::BackupKind;

/// Why a run was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    FullRunning,
    IncrementalRunning,
    NoFullYet,
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SkipReason::FullRunning => "a full backup of the routine is running",
            SkipReason::IncrementalRunning => "an incremental backup of the routine is running",
            SkipReason::NoFullYet => "no full backup of the routine has succeeded yet",
        })
    }
}

/// May a `kind` backup of a routine doing `a` start now?
///
/// # Errors
/// The reason it is skipped.
pub fn decide(kind: BackupKind, a: &Activity) -> Result<(), SkipReason> {
    match kind {
        BackupKind::Full if a.full_running => Err(SkipReason::FullRunning),
        BackupKind::Full => Ok(()),
        BackupKind::Incremental if a.incremental_running => Err(SkipReason::IncrementalRunning),
        BackupKind::Incremental if a.full_running && !a.concurrent_incremental => {
            Err(SkipReason::FullRunning)
        }
        BackupKind::Incremental if !a.full_succeeded => Err(SkipReason::NoFullYet),
        BackupKind::Incremental => Ok(()),
    }
}

/// [`decide`] in the shape the job registry applies under its lock.
pub fn admission(kind: BackupKind, a: &Activity) -> Result<(), String> {
    decide(kind, a).map_err(|r| r.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use BackupKind::{Full, Incremental};

    fn act(full: bool, inc: bool, succeeded: bool, concurrent: bool) -> Activity {
        Activity {
            full_running: full,
            incremental_running: inc,
            full_succeeded: succeeded,
            concurrent_incremental: concurrent,
        }
    }

    #[test]
    fn a_full_is_skipped_only_while_a_full_runs() {
        for inc in [false, true] {
            for succeeded in [false, true] {
                for conc in [false, true] {
                    assert_eq!(
                        decide(Full, &act(true, inc, succeeded, conc)),
                        Err(SkipReason::FullRunning)
                    );
                    // A running incremental never holds a full back.
                    assert_eq!(decide(Full, &act(false, inc, succeeded, conc)), Ok(()));
                }
            }
        }
    }

    #[test]
    fn an_incremental_is_skipped_while_any_backup_runs() {
        assert_eq!(
            decide(Incremental, &act(true, false, true, false)),
            Err(SkipReason::FullRunning)
        );
        assert_eq!(
            decide(Incremental, &act(false, true, true, false)),
            Err(SkipReason::IncrementalRunning)
        );
        assert_eq!(
            decide(Incremental, &act(true, true, true, false)),
            Err(SkipReason::IncrementalRunning)
        );
        assert_eq!(decide(Incremental, &act(false, false, true, false)), Ok(()));
    }

    #[test]
    fn concurrent_incremental_lets_it_run_beside_a_full_but_not_beside_an_incremental() {
        assert_eq!(decide(Incremental, &act(true, false, true, true)), Ok(()));
        assert_eq!(
            decide(Incremental, &act(true, true, true, true)),
            Err(SkipReason::IncrementalRunning)
        );
    }

    #[test]
    fn no_incremental_before_a_full_succeeded() {
        for conc in [false, true] {
            assert_eq!(
                decide(Incremental, &act(false, false, false, conc)),
                Err(SkipReason::NoFullYet)
            );
        }
        // The first full still running: skipped (for the running full without the
        // concurrent flag, and for the missing full with it).
        assert_eq!(
            decide(Incremental, &act(true, false, false, true)),
            Err(SkipReason::NoFullYet)
        );
        assert_eq!(
            admission(Incremental, &act(false, false, false, false)).unwrap_err(),
            "no full backup of the routine has succeeded yet"
        );
    }
}
