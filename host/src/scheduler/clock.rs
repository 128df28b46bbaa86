//! Time for the scheduler: "now" and "wake me at t", from the system or from a test.
//!
//! Cron fire times are wall-clock instants, so the system timer sleeps in slices of at most
//! [`MAX_SLEEP_SLICE`] and looks at the wall clock again: a clock step (NTP, suspend) moves
//! the wake-up with it instead of firing hours late. The manual timer moves only when a test
//! says so and wakes every sleeper whose time has come, so tests never wait real minutes.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use tokio::sync::watch;

use crate::clock::Clock;

/// Longest single sleep of the system timer before it re-reads the wall clock.
const MAX_SLEEP_SLICE: Duration = Duration::from_secs(60);

/// A boxed future that a timer returns.
pub type Sleep<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// Where the scheduler gets its time; also the engine's [`Clock`], so that backup folder
/// timestamps and fire times come from the same source.
pub trait Timer: Clock {
    /// Completes once `now() >= at`.
    fn sleep_until(&self, at: DateTime<Utc>) -> Sleep<'_>;

    /// Waits `d` of this timer's time (on-demand `delay`).
    fn sleep_for(&self, d: Duration) -> Sleep<'_> {
        let at = self.now() + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
        self.sleep_until(at)
    }
}

/// The system's wall clock.
#[derive(Debug, Default)]
pub struct SystemTimer;

impl Clock for SystemTimer {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

impl Timer for SystemTimer {
    fn sleep_until(&self, at: DateTime<Utc>) -> Sleep<'_> {
        Box::pin(async move {
            loop {
                let Ok(left) = (at - Utc::now()).to_std() else {
                    return;
                };
                if left.is_zero() {
                    return;
                }
                tokio::time::sleep(left.min(MAX_SLEEP_SLICE)).await;
            }
        })
    }
}

/// A clock that moves only when told to (tests).
#[derive(Debug)]
pub struct ManualTimer {
    now: Mutex<DateTime<Utc>>,
    moved: watch::Sender<DateTime<Utc>>,
}

impl ManualTimer {
    /// A timer standing at `ms` since the epoch.
    pub fn at_ms(ms: i64) -> Self {
        let t = Utc.timestamp_millis_opt(ms).single().unwrap_or_default();
        ManualTimer {
            now: Mutex::new(t),
            moved: watch::channel(t).0,
        }
    }

    /// Moves the clock to `ms` (backwards too) and wakes the sleepers that are due.
    pub fn set_ms(&self, ms: i64) {
        let t = Utc.timestamp_millis_opt(ms).single().unwrap_or_default();
        *self.now.lock().unwrap_or_else(|p| p.into_inner()) = t;
        self.moved.send_replace(t);
    }

    /// Moves the clock forward by `d`.
    pub fn advance(&self, d: Duration) {
        let ms = self.now().timestamp_millis() + d.as_millis() as i64;
        self.set_ms(ms);
    }
}

impl Clock for ManualTimer {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Timer for ManualTimer {
    fn sleep_until(&self, at: DateTime<Utc>) -> Sleep<'_> {
        let mut rx = self.moved.subscribe();
        Box::pin(async move {
            loop {
                if *rx.borrow_and_update() >= at {
                    return;
                }
                if rx.changed().await.is_err() {
                    return;
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn manual_sleepers_wake_only_when_their_time_comes() {
        let t = std::sync::Arc::new(ManualTimer::at_ms(10_000));
        let at = Utc.timestamp_millis_opt(12_000).unwrap();
        let t2 = t.clone();
        let sleeper = tokio::spawn(async move { t2.sleep_until(at).await });
        tokio::task::yield_now().await;
        t.set_ms(11_999);
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished());
        t.advance(Duration::from_millis(1));
        tokio::time::timeout(Duration::from_secs(5), sleeper)
            .await
            .expect("woken at 12 000")
            .unwrap();
        // A time already past returns at once.
        t.sleep_until(at).await;
    }
}
