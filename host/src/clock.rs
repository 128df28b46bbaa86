//! Where "now" comes from: the system clock in the service, a manual one in tests, so
//! schedules, retention and backup names can be checked at chosen instants.

use std::fmt;
use std::sync::Mutex;

use chrono::{DateTime, TimeZone, Utc};

/// Where "now" comes from; tests inject a fixed clock (D17).
pub trait Clock: Send + Sync + fmt::Debug {
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that moves only when told to.
#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn at_ms(ms: i64) -> Self {
        ManualClock(Mutex::new(
            Utc.timestamp_millis_opt(ms).single().unwrap_or_default(),
        ))
    }

    pub fn set_ms(&self, ms: i64) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) =
            Utc.timestamp_millis_opt(ms).single().unwrap_or_default();
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}
