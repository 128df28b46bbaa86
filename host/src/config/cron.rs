//! Quartz cron expressions as ABS accepts them: 6 or 7 fields
//! (`sec min hour day-of-month month day-of-week [year]`) or `@yearly|@monthly|@weekly|@daily|@hourly`,
//! evaluated in UTC (DESIGN D3).
//!
//! Supported per field: `*`, `?` (day fields), numbers, names (`JAN`, `MON`), ranges `a-b`, steps
//! `*/n`, `a/n`, `a-b/n`, lists, and `L` (last day of month) in day-of-month. Day-of-week counts
//! 1 = Sunday … 7 = Saturday, as Quartz does. `W` and `#` are rejected with a clear message.

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Timelike, Utc};
use std::fmt;
use std::str::FromStr;

/// A parsed schedule.
#[derive(Clone, PartialEq, Eq)]
pub struct CronSchedule {
    source: String,
    seconds: u64,
    minutes: u64,
    hours: u32,
    /// Bit d (1..=31) set: that day of month.
    days_of_month: u32,
    last_day_of_month: bool,
    /// `*`/`?` in day-of-month: no constraint from this field.
    dom_any: bool,
    /// Bit m (1..=12).
    months: u16,
    /// Bit d (1..=7, 1 = Sunday).
    days_of_week: u8,
    dow_any: bool,
    /// Allowed years; `None` = every year.
    years: Option<Vec<(i32, i32, i32)>>,
}

impl fmt::Debug for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CronSchedule({:?})", self.source)
    }
}

impl fmt::Display for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

struct FieldSpec {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const SEC: FieldSpec = FieldSpec {
    name: "seconds",
    min: 0,
    max: 59,
    names: &[],
};
const MIN: FieldSpec = FieldSpec {
    name: "minutes",
    min: 0,
    max: 59,
    names: &[],
};
const HOUR: FieldSpec = FieldSpec {
    name: "hours",
    min: 0,
    max: 23,
    names: &[],
};
const DOM: FieldSpec = FieldSpec {
    name: "day-of-month",
    min: 1,
    max: 31,
    names: &[],
};
const MON: FieldSpec = FieldSpec {
    name: "month",
    min: 1,
    max: 12,
    names: &MONTHS,
};
const DOW: FieldSpec = FieldSpec {
    name: "day-of-week",
    min: 1,
    max: 7,
    names: &DAYS,
};
const YEAR: FieldSpec = FieldSpec {
    name: "year",
    min: 1970,
    max: 2199,
    names: &[],
};

fn parse_value(spec: &FieldSpec, s: &str) -> Result<u32, String> {
    if let Some(i) = spec.names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
        return Ok(i as u32 + spec.min);
    }
    let v: u32 = s
        .parse()
        .map_err(|_| format!("{}: \"{s}\" is not a number", spec.name))?;
    if v < spec.min || v > spec.max {
        return Err(format!(
            "{}: {v} is out of range {}-{}",
            spec.name, spec.min, spec.max
        ));
    }
    Ok(v)
}

/// Parses a field into (start, end, step) triples.
fn parse_field(spec: &FieldSpec, field: &str) -> Result<Vec<(u32, u32, u32)>, String> {
    let mut out = Vec::new();
    for part in field.split(',') {
        if part.is_empty() {
            return Err(format!("{}: empty list element", spec.name));
        }
        if part.contains('W') || part.contains('#') || (part.contains('L') && part != "L") {
            return Err(format!(
                "{}: \"{part}\" uses W, # or nL, which are not supported",
                spec.name
            ));
        }
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s
                    .parse()
                    .map_err(|_| format!("{}: bad step \"{s}\"", spec.name))?;
                if step == 0 {
                    return Err(format!("{}: step must be positive", spec.name));
                }
                (r, Some(step))
            }
            None => (part, None),
        };
        let (start, end) = if range == "*" || range == "?" {
            (spec.min, spec.max)
        } else if let Some((a, b)) = range.split_once('-') {
            let (a, b) = (parse_value(spec, a)?, parse_value(spec, b)?);
            if a > b {
                return Err(format!("{}: range {a}-{b} is reversed", spec.name));
            }
            (a, b)
        } else {
            let a = parse_value(spec, range)?;
            // Quartz reads `a/n` as "from a, every n".
            (a, if step.is_some() { spec.max } else { a })
        };
        out.push((start, end, step.unwrap_or(1)));
    }
    Ok(out)
}

fn bits(ranges: &[(u32, u32, u32)]) -> u64 {
    let mut b = 0u64;
    for &(s, e, step) in ranges {
        let mut v = s;
        while v <= e {
            b |= 1 << v;
            v += step;
        }
    }
    b
}

impl FromStr for CronSchedule {
    type Err = String;

    fn from_str(expr: &str) -> Result<Self, String> {
        let trimmed = expr.trim();
        let expanded = match trimmed.to_ascii_lowercase().as_str() {
            "@yearly" | "@annually" => "0 0 0 1 1 ?",
            "@monthly" => "0 0 0 1 * ?",
            "@weekly" => "0 0 0 ? * 1",
            "@daily" | "@midnight" => "0 0 0 * * ?",
            "@hourly" => "0 0 * * * ?",
            s if s.starts_with('@') => return Err(format!("unknown cron macro \"{trimmed}\"")),
            _ => trimmed,
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        if fields.len() != 6 && fields.len() != 7 {
            return Err(format!(
                "expected 6 or 7 fields (sec min hour day-of-month month day-of-week [year]), got {}",
                fields.len()
            ));
        }
        let upper: Vec<String> = fields.iter().map(|f| f.to_ascii_uppercase()).collect();
        let dom_field = upper[3].as_str();
        let dow_field = upper[5].as_str();
        if dow_field.contains('L') {
            return Err("day-of-week: L is not supported".into());
        }
        let last_day_of_month = dom_field == "L";
        let dom_any = dom_field == "*" || dom_field == "?";
        let dow_any = dow_field == "*" || dow_field == "?";
        if dom_field == "?" && dow_field == "?" {
            return Err("'?' may be used in only one of day-of-month and day-of-week".into());
        }
        let days_of_month = if last_day_of_month {
            0
        } else {
            bits(&parse_field(&DOM, dom_field)?) as u32
        };
        let years = match upper.get(6) {
            None => None,
            Some(y) if y == "*" || y == "?" => None,
            Some(y) => Some(
                parse_field(&YEAR, y)?
                    .into_iter()
                    .map(|(a, b, s)| (a as i32, b as i32, s as i32))
                    .collect(),
            ),
        };
        Ok(CronSchedule {
            source: trimmed.to_string(),
            seconds: bits(&parse_field(&SEC, &upper[0])?),
            minutes: bits(&parse_field(&MIN, &upper[1])?),
            hours: bits(&parse_field(&HOUR, &upper[2])?) as u32,
            days_of_month,
            last_day_of_month,
            dom_any,
            months: bits(&parse_field(&MON, &upper[4])?) as u16,
            days_of_week: bits(&parse_field(&DOW, dow_field)?) as u8,
            dow_any,
            years,
        })
    }
}

fn days_in_month(year: i32, month: u32) -> u32 {
    let (ny, nm) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    NaiveDate::from_ymd_opt(ny, nm, 1)
        .and_then(|d| d.pred_opt())
        .map(|d| d.day())
        .unwrap_or(28)
}

impl CronSchedule {
    fn year_ok(&self, y: i32) -> bool {
        match &self.years {
            None => true,
            Some(r) => r
                .iter()
                .any(|&(s, e, step)| y >= s && y <= e && (y - s) % step == 0),
        }
    }

    fn day_ok(&self, d: NaiveDate) -> bool {
        let dom_match = if self.last_day_of_month {
            d.day() == days_in_month(d.year(), d.month())
        } else {
            self.days_of_month & (1 << d.day()) != 0
        };
        let dow = d.weekday().num_days_from_sunday() + 1;
        let dow_match = self.days_of_week & (1 << dow) != 0;
        // Quartz: one of the two day fields is `?`; with both restricted, either may match.
        match (self.dom_any, self.dow_any) {
            (true, true) => true,
            (true, false) => dow_match,
            (false, true) => dom_match,
            (false, false) => dom_match || dow_match,
        }
    }

    /// The first fire time strictly after `after`, or `None` if there is none before 2200.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let start = after.with_nanosecond(0)? + Duration::seconds(1);
        let mut date = start.date_naive();
        let mut first_day = true;
        while date.year() < 2200 {
            if !self.year_ok(date.year()) || self.months & (1 << date.month()) == 0 {
                // Jump to the first day of the next month.
                let (y, m) = if date.month() == 12 {
                    (date.year() + 1, 1)
                } else {
                    (date.year(), date.month() + 1)
                };
                date = NaiveDate::from_ymd_opt(y, m, 1)?;
                first_day = false;
                continue;
            }
            if self.day_ok(date) {
                let (h0, m0, s0) = if first_day {
                    (start.hour(), start.minute(), start.second())
                } else {
                    (0, 0, 0)
                };
                if let Some((h, m, s)) = self.time_on_day(h0, m0, s0) {
                    return Some(Utc.from_utc_datetime(&date.and_hms_opt(h, m, s)?));
                }
            }
            date = date.succ_opt()?;
            first_day = false;
        }
        None
    }

    /// Earliest (h, m, s) >= (h0, m0, s0) allowed by the time fields.
    fn time_on_day(&self, h0: u32, m0: u32, s0: u32) -> Option<(u32, u32, u32)> {
        for h in h0..24 {
            if self.hours & (1 << h) == 0 {
                continue;
            }
            let mstart = if h == h0 { m0 } else { 0 };
            for m in mstart..60 {
                if self.minutes & (1 << m) == 0 {
                    continue;
                }
                let sstart = if h == h0 && m == m0 { s0 } else { 0 };
                if let Some(s) = (sstart..60).find(|s| self.seconds & (1 << s) != 0) {
                    return Some((h, m, s));
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn next(expr: &str, after: &str) -> String {
        let c: CronSchedule = expr.parse().unwrap();
        c.next_after(at(after)).unwrap().to_rfc3339()
    }

    #[test]
    fn macros_and_six_fields() {
        assert_eq!(
            next("@daily", "2026-11-27T13:00:00Z"),
            "2026-11-28T00:00:00+00:00"
        );
        assert_eq!(
            next("@yearly", "2026-11-27T13:00:00Z"),
            "2027-01-01T00:00:00+00:00"
        );
        assert_eq!(
            next("@hourly", "2026-11-27T13:00:00Z"),
            "2026-11-27T14:00:00+00:00"
        );
        assert_eq!(
            next("*/10 * * * * *", "2026-11-27T13:00:05Z"),
            "2026-11-27T13:00:10+00:00"
        );
        assert_eq!(
            next("0 */1 * * * *", "2026-11-27T13:00:00Z"),
            "2026-11-27T13:01:00+00:00"
        );
    }

    #[test]
    fn quartz_forms() {
        // Seven fields with `?` and a start/step hour, as in the ABS docs.
        assert_eq!(
            next("0 0 0/2 * * ? *", "2026-11-27T13:00:00Z"),
            "2026-11-27T14:00:00+00:00"
        );
        // Day of week 1 = Sunday; 2026-11-29 is a Sunday.
        assert_eq!(
            next("0 30 1 ? * 1", "2026-11-27T13:00:00Z"),
            "2026-11-29T01:30:00+00:00"
        );
        assert_eq!(
            next("0 0 12 ? * MON-FRI", "2026-11-28T13:00:00Z"),
            "2026-11-30T12:00:00+00:00"
        );
        assert_eq!(
            next("0 0 0 L * ?", "2026-02-03T00:00:00Z"),
            "2026-02-28T00:00:00+00:00"
        );
        assert_eq!(
            next("0 0 0 1 JAN ? 2030", "2026-02-03T00:00:00Z"),
            "2030-01-01T00:00:00+00:00"
        );
        assert_eq!(
            next("0 0 0 29 2 ?", "2026-03-01T00:00:00Z"),
            "2028-02-29T00:00:00+00:00"
        );
    }

    #[test]
    fn rejects_bad_expressions() {
        for bad in [
            "* * * * *",
            "60 * * * * *",
            "* * 24 * * *",
            "0 0 0 ? * ?",
            "0 0 0 15W * ?",
            "0 0 0 ? * 6#3",
            "0 0 0 * * 8",
            "0 0 0 5-2 * ?",
            "@sometimes",
            "0 0 0 * * * 1800",
            "*/0 * * * * *",
        ] {
            assert!(bad.parse::<CronSchedule>().is_err(), "{bad} should fail");
        }
    }

    #[test]
    fn impossible_schedule_has_no_next() {
        let c: CronSchedule = "0 0 0 31 2 ?".parse().unwrap();
        assert_eq!(c.next_after(at("2026-01-01T00:00:00Z")), None);
    }
}
