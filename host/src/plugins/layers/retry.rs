//! Retry with exponential backoff, on `temporary` errors only.
//!
//! Per part: an upload keeps each part's bytes (`Bytes`, cheap to clone) until the plugin
//! acknowledges it, so a failed `write-part` is re-sent whole with the same number
//! (DESIGN D11; the WIT makes parts idempotent).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use rand::Rng;

use crate::plugins::error::PluginResult;
use crate::plugins::storage::{Capabilities, Download, ListPage, ObjectInfo, Storage, Upload};

/// How often and how patiently to retry.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in total, the first included (1 = no retry).
    pub max_attempts: u32,
    /// Wait before the second attempt.
    pub initial_backoff: Duration,
    /// Cap on any single wait.
    pub max_backoff: Duration,
    /// Growth factor between waits.
    pub multiplier: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            multiplier: 2.0,
        }
    }
}

impl RetryPolicy {
    /// Wait after failed attempt `attempt` (1-based): exponential, capped, with up to 25%
    /// jitter subtracted so that parallel writers do not retry in lockstep.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self.multiplier.powi(attempt.saturating_sub(1) as i32);
        let base = self.initial_backoff.mul_f64(exp).min(self.max_backoff);
        let jitter = rand::thread_rng().gen_range(0.0..0.25);
        base.mul_f64(1.0 - jitter)
    }

    /// Runs `op` until it succeeds, fails permanently, or attempts run out.
    ///
    /// # Errors
    /// The last error.
    pub async fn run<T, F, Fut>(&self, mut op: F) -> PluginResult<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = PluginResult<T>>,
    {
        let mut attempt = 1;
        loop {
            match op().await {
                Err(e) if e.is_temporary() && attempt < self.max_attempts.max(1) => {
                    tracing::debug!(attempt, error = %e, "Plugin call failed temporarily; retrying.");
                    tokio::time::sleep(self.backoff(attempt)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

/// A storage whose calls are retried per [`RetryPolicy`].
#[derive(Debug)]
pub struct RetryStorage {
    inner: Arc<dyn Storage>,
    policy: RetryPolicy,
}

impl RetryStorage {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Storage>, policy: RetryPolicy) -> Self {
        RetryStorage { inner, policy }
    }
}

impl Storage for RetryStorage {
    fn plugin_name(&self) -> &str {
        self.inner.plugin_name()
    }

    fn capabilities(&self) -> &Capabilities {
        self.inner.capabilities()
    }

    fn allowed_hosts(&self) -> &[String] {
        self.inner.allowed_hosts()
    }

    fn begin_upload(
        &self,
        key: &str,
        size_hint: Option<u64>,
    ) -> BoxFuture<'_, PluginResult<Box<dyn Upload>>> {
        let key = key.to_string();
        Box::pin(async move {
            let inner = self
                .policy
                .run(|| self.inner.begin_upload(&key, size_hint))
                .await?;
            Ok(Box::new(RetryUpload {
                inner,
                policy: self.policy.clone(),
            }) as Box<dyn Upload>)
        })
    }

    fn open(
        &self,
        key: &str,
        offset: u64,
        len: Option<u64>,
    ) -> BoxFuture<'_, PluginResult<Box<dyn Download>>> {
        let key = key.to_string();
        Box::pin(async move {
            let inner = self
                .policy
                .run(|| self.inner.open(&key, offset, len))
                .await?;
            Ok(Box::new(RetryDownload {
                inner,
                policy: self.policy.clone(),
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
        Box::pin(async move {
            self.policy
                .run(|| {
                    self.inner
                        .list(&prefix, recursive, cursor.clone(), max_results)
                })
                .await
        })
    }

    fn stat(&self, key: &str) -> BoxFuture<'_, PluginResult<ObjectInfo>> {
        let key = key.to_string();
        Box::pin(async move { self.policy.run(|| self.inner.stat(&key)).await })
    }

    fn delete(&self, key: &str) -> BoxFuture<'_, PluginResult<()>> {
        let key = key.to_string();
        Box::pin(async move { self.policy.run(|| self.inner.delete(&key)).await })
    }
}

struct RetryUpload {
    inner: Box<dyn Upload>,
    policy: RetryPolicy,
}

impl Upload for RetryUpload {
    fn write_part(&mut self, part_number: u32, data: Bytes) -> BoxFuture<'_, PluginResult<()>> {
        Box::pin(async move {
            let policy = self.policy.clone();
            let inner = &mut self.inner;
            let mut attempt = 1;
            loop {
                // The same bytes every attempt: the part is only released once acknowledged.
                match inner.write_part(part_number, data.clone()).await {
                    Err(e) if e.is_temporary() && attempt < policy.max_attempts.max(1) => {
                        tracing::debug!(part_number, attempt, error = %e, "Part upload failed temporarily; re-sending.");
                        tokio::time::sleep(policy.backoff(attempt)).await;
                        attempt += 1;
                    }
                    other => return other,
                }
            }
        })
    }

    fn finish(&mut self) -> BoxFuture<'_, PluginResult<ObjectInfo>> {
        Box::pin(async move {
            let policy = self.policy.clone();
            let inner = &mut self.inner;
            let mut attempt = 1;
            loop {
                match inner.finish().await {
                    Err(e) if e.is_temporary() && attempt < policy.max_attempts.max(1) => {
                        tokio::time::sleep(policy.backoff(attempt)).await;
                        attempt += 1;
                    }
                    other => return other,
                }
            }
        })
    }

    fn abort(&mut self) -> BoxFuture<'_, PluginResult<()>> {
        // Best effort by contract: one attempt, the caller logs a failure.
        self.inner.abort()
    }
}

struct RetryDownload {
    inner: Box<dyn Download>,
    policy: RetryPolicy,
}

impl Download for RetryDownload {
    fn next(&mut self, max: u32) -> BoxFuture<'_, PluginResult<Option<Vec<u8>>>> {
        Box::pin(async move {
            let policy = self.policy.clone();
            let inner = &mut self.inner;
            let mut attempt = 1;
            loop {
                match inner.next(max).await {
                    Err(e) if e.is_temporary() && attempt < policy.max_attempts.max(1) => {
                        tokio::time::sleep(policy.backoff(attempt)).await;
                        attempt += 1;
                    }
                    other => return other,
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::error::PluginError;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn fast() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(4),
            multiplier: 2.0,
        }
    }

    #[tokio::test]
    async fn retries_temporary_until_success() {
        let n = AtomicU32::new(0);
        let r = fast()
            .run(|| async {
                if n.fetch_add(1, Ordering::SeqCst) < 2 {
                    Err(PluginError::Temporary("503".into()))
                } else {
                    Ok(7)
                }
            })
            .await;
        assert_eq!(r, Ok(7));
        assert_eq!(n.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn permanent_errors_are_not_retried_and_attempts_are_bounded() {
        let n = AtomicU32::new(0);
        let r: PluginResult<()> = fast()
            .run(|| async {
                n.fetch_add(1, Ordering::SeqCst);
                Err(PluginError::Denied)
            })
            .await;
        assert_eq!(r, Err(PluginError::Denied));
        assert_eq!(n.load(Ordering::SeqCst), 1);
        let m = AtomicU32::new(0);
        let r: PluginResult<()> = fast()
            .run(|| async {
                m.fetch_add(1, Ordering::SeqCst);
                Err(PluginError::Temporary("x".into()))
            })
            .await;
        assert!(r.unwrap_err().is_temporary());
        assert_eq!(m.load(Ordering::SeqCst), 4);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
            multiplier: 2.0,
        };
        let b1 = p.backoff(1);
        assert!(
            b1 <= Duration::from_millis(100) && b1 >= Duration::from_millis(75),
            "{b1:?}"
        );
        let b3 = p.backoff(3);
        assert!(
            b3 <= Duration::from_millis(400) && b3 >= Duration::from_millis(300),
            "{b3:?}"
        );
        assert!(p.backoff(20) <= Duration::from_millis(1000));
    }
}
