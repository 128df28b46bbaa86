//! Cron triggers: the schedules of a routine and when each fires next.
//!
//! Fire times come from our Quartz module (`config::cron`) rather than `tokio-cron-scheduler`:
//! that crate takes expression strings and parses them with its own parser, a second dialect
//! beside the one validation uses (`?`, `L`, day-of-week numbering and the year field would
//! have to agree exactly), and it waits on the system clock, which tests cannot move. We
//! fire exactly the schedules validation accepted, on an injectable clock; what is left is
//! small: the next fire strictly after a time, and a rule for missed fires.

use chrono::{DateTime, Utc};

use crate::config::BackupRoutine;
use crate::config::cron::CronSchedule;
use crate::storage::layout::BackupKind;

/// The parsed schedules of one routine; none for a disabled routine.
#[derive(Debug, Clone, Default)]
pub struct RoutineSchedules {
    pub full: Option<CronSchedule>,
    pub incremental: Option<CronSchedule>,
}

impl RoutineSchedules {
    /// Parses the routine's `interval-cron` and `incr-interval-cron`. A disabled routine has
    /// no schedule (it never fires); so has an expression that does not parse (validation
    /// rejects those before they are saved; the error is for the log).
    pub fn of(routine: &BackupRoutine) -> (Self, Vec<String>) {
        let mut out = RoutineSchedules::default();
        let mut errors = Vec::new();
        if *routine.disabled {
            return (out, errors);
        }
        let mut parse = |field: &str, expr: &str| match expr.parse::<CronSchedule>() {
            Ok(s) => Some(s),
            Err(e) => {
                errors.push(format!("{field}: {e}"));
                None
            }
        };
        out.full = parse("interval-cron", &routine.interval_cron);
        out.incremental = routine
            .incr_cron()
            .and_then(|e| parse("incr-interval-cron", e));
        (out, errors)
    }

    /// The schedule of `kind`.
    pub fn get(&self, kind: BackupKind) -> Option<&CronSchedule> {
        match kind {
            BackupKind::Full => self.full.as_ref(),
            BackupKind::Incremental => self.incremental.as_ref(),
        }
    }
}

/// The first fire when a schedule is (re)created at `now`: the next matching second
/// strictly after it, never a whole period later.
pub fn first_fire(s: &CronSchedule, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    s.next_after(now)
}

/// The fire after the one due at `fired`, the clock reading `now`. Fires missed while the
/// clock jumped (suspend, a slow start) are not caught up one by one: the next is the first
/// match after both.
pub fn next_fire(
    s: &CronSchedule,
    fired: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    s.next_after(fired.max(now))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn cron(e: &str) -> CronSchedule {
        e.parse().unwrap()
    }

    #[test]
    fn seconds_schedules_fire_at_the_next_matching_second_not_a_period_later() {
        // Full every minute and incrementals every 5 s (the issue-10 demo config).
        let now = t("2026-12-02T08:00:17.300Z");
        assert_eq!(
            first_fire(&cron("*/5 * * * * ?"), now),
            Some(t("2026-12-02T08:00:20Z"))
        );
        assert_eq!(
            first_fire(&cron("0 * * * * ?"), now),
            Some(t("2026-12-02T08:01:00Z"))
        );
        // On a matching second itself, the fire is the next one (strictly after).
        assert_eq!(
            first_fire(&cron("*/2 * * * * ?"), t("2026-12-02T08:00:18Z")),
            Some(t("2026-12-02T08:00:20Z"))
        );
    }

    #[test]
    fn next_fire_follows_the_period_and_skips_what_a_clock_jump_missed() {
        let s = cron("*/3 * * * * ?");
        let fired = t("2026-12-02T08:00:03Z");
        assert_eq!(next_fire(&s, fired, fired), Some(t("2026-12-02T08:00:06Z")));
        // Started late (the clock already at :04.5): the next is :06, not :03 again.
        assert_eq!(
            next_fire(&s, fired, t("2026-12-02T08:00:04.500Z")),
            Some(t("2026-12-02T08:00:06Z"))
        );
        // A jump of an hour: one fire after it, no catch-up burst.
        assert_eq!(
            next_fire(&s, fired, t("2026-12-02T09:00:01Z")),
            Some(t("2026-12-02T09:00:03Z"))
        );
    }

    #[test]
    fn daily_style_and_seven_field_schedules_use_utc() {
        let now = Utc.with_ymd_and_hms(2026, 12, 2, 8, 0, 0).unwrap();
        assert_eq!(
            first_fire(&cron("@daily"), now),
            Some(t("2026-12-03T00:00:00Z"))
        );
        assert_eq!(
            first_fire(&cron("0 30 1 * * ? 2027"), now),
            Some(t("2027-01-01T01:30:00Z"))
        );
        assert_eq!(first_fire(&cron("0 0 0 1 1 ? 2020"), now), None);
    }

    #[test]
    fn disabled_routines_and_empty_incremental_crons_have_no_schedule() {
        let mut r = BackupRoutine {
            interval_cron: "*/2 * * * * ?".into(),
            incr_interval_cron: Some("  ".into()),
            ..BackupRoutine::default()
        };
        let (s, errors) = RoutineSchedules::of(&r);
        assert!(errors.is_empty());
        assert!(s.full.is_some() && s.incremental.is_none());
        r.incr_interval_cron = Some("*/1 * * * * ?".into());
        assert!(RoutineSchedules::of(&r).0.incremental.is_some());
        *r.disabled = true;
        let (s, _) = RoutineSchedules::of(&r);
        assert!(s.full.is_none() && s.incremental.is_none());
        *r.disabled = false;
        r.interval_cron = "61 * * * * ?".into();
        let (s, errors) = RoutineSchedules::of(&r);
        assert!(s.full.is_none());
        assert!(errors[0].starts_with("interval-cron"), "{errors:?}");
    }
}
