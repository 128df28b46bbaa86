//! Policy around any [`Storage`](super::Storage): retry, concurrency limit, metrics. Plugins
//! stay simple; these wrappers apply to every backend alike (OpenDAL layers, restic
//! `retry`/`sema`). Typical stack, outermost first: metrics → retry → concurrency → plugin,
//! so metrics see each logical call once and every retry attempt waits for a permit.

mod concurrency;
mod metered;
mod retry;

pub use concurrency::ConcurrencyLimit;
pub use metered::{MeteredCodecStream, MeteredStorage};
pub use retry::{RetryPolicy, RetryStorage};

use std::sync::Arc;

use super::metrics::PluginMetrics;
use super::storage::Storage;

/// Wraps `inner` in the standard stack: metrics, retry, concurrency limit.
pub fn standard_stack(
    inner: Arc<dyn Storage>,
    policy: RetryPolicy,
    max_concurrency: usize,
    metrics: Option<PluginMetrics>,
) -> Arc<dyn Storage> {
    let limit = match inner.capabilities().max_concurrency {
        Some(cap) => max_concurrency.min(cap as usize),
        None => max_concurrency,
    };
    let limited: Arc<dyn Storage> = Arc::new(ConcurrencyLimit::new(inner, limit));
    let retried: Arc<dyn Storage> = Arc::new(RetryStorage::new(limited, policy));
    match metrics {
        Some(m) => Arc::new(MeteredStorage::new(retried, m)),
        None => retried,
    }
}
