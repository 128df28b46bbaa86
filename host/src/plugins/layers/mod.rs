//! Policy around any [`Storage`](super::Storage): retry, concurrency limit, metrics. Plugins
//! stay simple; these wrappers apply to every backend alike (OpenDAL layers, restic
//! `retry`/`sema`). Typical stack, outermost first: metrics → retry → concurrency → request
//! limit (when the backend declares one) → plugin,
//! so metrics see each logical call once and every retry attempt waits for a permit.

mod concurrency;
mod metered;
mod retry;

pub use concurrency::{ConcurrencyLimit, RequestLimit};
pub use metered::{MeteredCodecStream, MeteredStorage};
pub use retry::{RetryPolicy, RetryStorage};

use std::sync::Arc;

use super::metrics::PluginMetrics;
use super::storage::Storage;

/// Wraps `inner` in the standard stack: metrics, retry, concurrency limit, and the
/// backend's own bound on requests in flight when it declares one.
pub fn standard_stack(
    inner: Arc<dyn Storage>,
    policy: RetryPolicy,
    max_concurrency: usize,
    metrics: Option<PluginMetrics>,
) -> Arc<dyn Storage> {
    // The backend's bound (`max-async-connections`) limits calls in flight, not open
    // transfers: as a cap on open uploads it would let a writer that holds one wait forever
    // for the permit its own marker delete needs.
    let inner: Arc<dyn Storage> = match inner.capabilities().max_concurrency {
        Some(cap) => Arc::new(RequestLimit::new(inner, cap as usize)),
        None => inner,
    };
    let limited: Arc<dyn Storage> = Arc::new(ConcurrencyLimit::new(inner, max_concurrency));
    let retried: Arc<dyn Storage> = Arc::new(RetryStorage::new(limited, policy));
    match metrics {
        Some(m) => Arc::new(MeteredStorage::new(retried, m)),
        None => retried,
    }
}
