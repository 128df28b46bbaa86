//! Bounds the number of concurrent operations on a backend. An open upload or download
//! holds its permit until it is dropped, because it holds a plugin instance (a pool slot).

use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::plugins::error::{PluginError, PluginResult};
use crate::plugins::storage::{Capabilities, Download, ListPage, ObjectInfo, Storage, Upload};

/// A storage that admits at most `limit` operations at once.
#[derive(Debug)]
pub struct ConcurrencyLimit {
    inner: Arc<dyn Storage>,
    permits: Arc<Semaphore>,
}

impl ConcurrencyLimit {
    /// Wraps `inner` with `limit` permits (at least 1).
    pub fn new(inner: Arc<dyn Storage>, limit: usize) -> Self {
        ConcurrencyLimit {
            inner,
            permits: Arc::new(Semaphore::new(limit.max(1))),
        }
    }

    /// Permits free right now (tests and diagnostics).
    pub fn available(&self) -> usize {
        self.permits.available_permits()
    }

    async fn permit(&self) -> PluginResult<OwnedSemaphorePermit> {
        self.permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| PluginError::Other("storage concurrency limiter closed".into()))
    }
}

impl Storage for ConcurrencyLimit {
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
            let permit = self.permit().await?;
            let inner = self.inner.begin_upload(&key, size_hint).await?;
            Ok(Box::new(PermitUpload {
                inner,
                _permit: permit,
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
            let permit = self.permit().await?;
            let inner = self.inner.open(&key, offset, len).await?;
            Ok(Box::new(PermitDownload {
                inner,
                _permit: permit,
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
            let _p = self.permit().await?;
            self.inner
                .list(&prefix, recursive, cursor, max_results)
                .await
        })
    }

    fn stat(&self, key: &str) -> BoxFuture<'_, PluginResult<ObjectInfo>> {
        let key = key.to_string();
        Box::pin(async move {
            let _p = self.permit().await?;
            self.inner.stat(&key).await
        })
    }

    fn delete(&self, key: &str) -> BoxFuture<'_, PluginResult<()>> {
        let key = key.to_string();
        Box::pin(async move {
            let _p = self.permit().await?;
            self.inner.delete(&key).await
        })
    }
}

struct PermitUpload {
    inner: Box<dyn Upload>,
    _permit: OwnedSemaphorePermit,
}

impl Upload for PermitUpload {
    fn write_part(&mut self, part_number: u32, data: Bytes) -> BoxFuture<'_, PluginResult<()>> {
        self.inner.write_part(part_number, data)
    }

    fn finish(&mut self) -> BoxFuture<'_, PluginResult<ObjectInfo>> {
        self.inner.finish()
    }

    fn abort(&mut self) -> BoxFuture<'_, PluginResult<()>> {
        self.inner.abort()
    }
}

struct PermitDownload {
    inner: Box<dyn Download>,
    _permit: OwnedSemaphorePermit,
}

impl Download for PermitDownload {
    fn next(&mut self, max: u32) -> BoxFuture<'_, PluginResult<Option<Vec<u8>>>> {
        self.inner.next(max)
    }
}

/// A storage that has at most `limit` plugin calls (each one HTTP request or a few) in
/// flight at once: the bound of a store's `max-async-connections` (ABS's `MaxConnsPerHost`).
/// Unlike [`ConcurrencyLimit`] it holds a permit for one call, never for an open upload or
/// download, so writers that keep uploads open while they also stat or delete (the open
/// markers) cannot wait on each other. It sits inside [`ConcurrencyLimit`]: a call takes
/// its instance slot first and a request permit last, so no request permit is ever held
/// while waiting for a slot.
#[derive(Debug)]
pub struct RequestLimit {
    inner: Arc<dyn Storage>,
    permits: Arc<Semaphore>,
}

impl RequestLimit {
    /// Wraps `inner` with `limit` permits (at least 1).
    pub fn new(inner: Arc<dyn Storage>, limit: usize) -> Self {
        RequestLimit {
            inner,
            permits: Arc::new(Semaphore::new(limit.max(1))),
        }
    }
}

async fn acquire(permits: &Arc<Semaphore>) -> PluginResult<OwnedSemaphorePermit> {
    permits
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| PluginError::Other("storage request limiter closed".into()))
}

impl Storage for RequestLimit {
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
            let inner = {
                let _p = acquire(&self.permits).await?;
                self.inner.begin_upload(&key, size_hint).await?
            };
            Ok(Box::new(RequestLimitedUpload {
                inner,
                permits: self.permits.clone(),
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
            let inner = {
                let _p = acquire(&self.permits).await?;
                self.inner.open(&key, offset, len).await?
            };
            Ok(Box::new(RequestLimitedDownload {
                inner,
                permits: self.permits.clone(),
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
            let _p = acquire(&self.permits).await?;
            self.inner
                .list(&prefix, recursive, cursor, max_results)
                .await
        })
    }

    fn stat(&self, key: &str) -> BoxFuture<'_, PluginResult<ObjectInfo>> {
        let key = key.to_string();
        Box::pin(async move {
            let _p = acquire(&self.permits).await?;
            self.inner.stat(&key).await
        })
    }

    fn delete(&self, key: &str) -> BoxFuture<'_, PluginResult<()>> {
        let key = key.to_string();
        Box::pin(async move {
            let _p = acquire(&self.permits).await?;
            self.inner.delete(&key).await
        })
    }
}

struct RequestLimitedUpload {
    inner: Box<dyn Upload>,
    permits: Arc<Semaphore>,
}

impl Upload for RequestLimitedUpload {
    fn write_part(&mut self, part_number: u32, data: Bytes) -> BoxFuture<'_, PluginResult<()>> {
        Box::pin(async move {
            let _p = acquire(&self.permits).await?;
            self.inner.write_part(part_number, data).await
        })
    }

    fn finish(&mut self) -> BoxFuture<'_, PluginResult<ObjectInfo>> {
        Box::pin(async move {
            let _p = acquire(&self.permits).await?;
            self.inner.finish().await
        })
    }

    fn abort(&mut self) -> BoxFuture<'_, PluginResult<()>> {
        Box::pin(async move {
            let _p = acquire(&self.permits).await?;
            self.inner.abort().await
        })
    }
}

struct RequestLimitedDownload {
    inner: Box<dyn Download>,
    permits: Arc<Semaphore>,
}

impl Download for RequestLimitedDownload {
    fn next(&mut self, max: u32) -> BoxFuture<'_, PluginResult<Option<Vec<u8>>>> {
        Box::pin(async move {
            let _p = acquire(&self.permits).await?;
            self.inner.next(max).await
        })
    }
}
