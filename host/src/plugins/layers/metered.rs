//! Counts calls, errors, bytes and latency per plugin and operation.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures::future::BoxFuture;

use crate::plugins::codec::CodecStream;
use crate::plugins::error::PluginResult;
use crate::plugins::metrics::PluginMetrics;
use crate::plugins::storage::{Capabilities, Download, ListPage, ObjectInfo, Storage, Upload};

#[derive(Debug, Clone)]
struct Meter {
    metrics: PluginMetrics,
    plugin: String,
}

impl Meter {
    fn record<T>(&self, op: &str, started: Instant, r: &PluginResult<T>) {
        self.metrics
            .calls
            .with_label_values(&[&self.plugin, op])
            .inc();
        self.metrics
            .latency
            .with_label_values(&[&self.plugin, op])
            .observe(started.elapsed().as_secs_f64());
        if let Err(e) = r {
            self.metrics
                .errors
                .with_label_values(&[&self.plugin, op, e.kind_label()])
                .inc();
        }
    }

    fn bytes(&self, direction: &str, n: usize) {
        self.metrics
            .bytes
            .with_label_values(&[&self.plugin, direction])
            .inc_by(n as u64);
    }

    async fn time<T>(&self, op: &str, f: impl Future<Output = PluginResult<T>>) -> PluginResult<T> {
        let started = Instant::now();
        let r = f.await;
        self.record(op, started, &r);
        r
    }
}

/// A storage whose every call is counted and timed.
#[derive(Debug)]
pub struct MeteredStorage {
    inner: Arc<dyn Storage>,
    meter: Meter,
}

impl MeteredStorage {
    /// Wraps `inner`; the plugin label is its plugin name.
    pub fn new(inner: Arc<dyn Storage>, metrics: PluginMetrics) -> Self {
        let plugin = inner.plugin_name().to_string();
        MeteredStorage {
            inner,
            meter: Meter { metrics, plugin },
        }
    }
}

impl Storage for MeteredStorage {
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
                .meter
                .time("begin_upload", self.inner.begin_upload(&key, size_hint))
                .await?;
            Ok(Box::new(MeteredUpload {
                inner,
                meter: self.meter.clone(),
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
                .meter
                .time("open", self.inner.open(&key, offset, len))
                .await?;
            Ok(Box::new(MeteredDownload {
                inner,
                meter: self.meter.clone(),
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
            self.meter
                .time(
                    "list",
                    self.inner.list(&prefix, recursive, cursor, max_results),
                )
                .await
        })
    }

    fn stat(&self, key: &str) -> BoxFuture<'_, PluginResult<ObjectInfo>> {
        let key = key.to_string();
        Box::pin(async move { self.meter.time("stat", self.inner.stat(&key)).await })
    }

    fn delete(&self, key: &str) -> BoxFuture<'_, PluginResult<()>> {
        let key = key.to_string();
        Box::pin(async move { self.meter.time("delete", self.inner.delete(&key)).await })
    }
}

struct MeteredUpload {
    inner: Box<dyn Upload>,
    meter: Meter,
}

impl Upload for MeteredUpload {
    fn write_part(&mut self, part_number: u32, data: Bytes) -> BoxFuture<'_, PluginResult<()>> {
        let n = data.len();
        Box::pin(async move {
            let r = self
                .meter
                .time("write_part", self.inner.write_part(part_number, data))
                .await;
            if r.is_ok() {
                self.meter.bytes("in", n);
            }
            r
        })
    }

    fn finish(&mut self) -> BoxFuture<'_, PluginResult<ObjectInfo>> {
        Box::pin(async move { self.meter.time("finish", self.inner.finish()).await })
    }

    fn abort(&mut self) -> BoxFuture<'_, PluginResult<()>> {
        Box::pin(async move { self.meter.time("abort", self.inner.abort()).await })
    }
}

struct MeteredDownload {
    inner: Box<dyn Download>,
    meter: Meter,
}

impl Download for MeteredDownload {
    fn next(&mut self, max: u32) -> BoxFuture<'_, PluginResult<Option<Vec<u8>>>> {
        Box::pin(async move {
            let r = self.meter.time("next", self.inner.next(max)).await;
            if let Ok(Some(chunk)) = &r {
                self.meter.bytes("out", chunk.len());
            }
            r
        })
    }
}

/// A codec stream whose pushes are counted and timed (bytes in and out).
pub struct MeteredCodecStream {
    inner: Box<dyn CodecStream>,
    meter: Meter,
}

impl MeteredCodecStream {
    /// Wraps `inner`, labelled with `plugin`.
    pub fn new(inner: Box<dyn CodecStream>, plugin: &str, metrics: PluginMetrics) -> Self {
        MeteredCodecStream {
            inner,
            meter: Meter {
                metrics,
                plugin: plugin.to_string(),
            },
        }
    }
}

impl std::fmt::Debug for MeteredCodecStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeteredCodecStream")
            .field("plugin", &self.meter.plugin)
            .finish()
    }
}

impl CodecStream for MeteredCodecStream {
    fn push(&mut self, chunk: &[u8]) -> PluginResult<Vec<u8>> {
        let started = Instant::now();
        let r = self.inner.push(chunk);
        self.meter.record("push", started, &r);
        if let Ok(out) = &r {
            self.meter.bytes("in", chunk.len());
            self.meter.bytes("out", out.len());
        }
        r
    }

    fn finish(&mut self) -> PluginResult<Vec<u8>> {
        let started = Instant::now();
        let r = self.inner.finish();
        self.meter.record("finish", started, &r);
        if let Ok(out) = &r {
            self.meter.bytes("out", out.len());
        }
        r
    }
}
