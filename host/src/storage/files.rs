//! Backup files on storage. Write side: a worker's [`FileWriter`] appends encoded records,
//! runs the codec chain and rotates files at `file-limit`; [`upload_files`] sends the stored
//! bytes in parts; [`Written`] remembers every key so a failed job can remove them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::plugins::{CodecStream, Pipeline, Storage};

use crate::aerospike::scan::{EncodedBatch, RateLimiter};
use crate::asb::{AsbEncoder, EncoderOptions};
use crate::error::EngineError;
pub use crate::error::ReadError;
use crate::progress::Progress;
use crate::storage::layout::data_file_name;
use crate::storage::resume::{Checkpointer, FileProgress};

/// Plain `.asb` bytes encoded before they go through the codec chain (DESIGN §3: ~1 MiB).
pub const CHUNK_BYTES: usize = 1024 * 1024;
/// Largest part sent to storage; the runtime's default storage memory limit fits it twice.
pub const MAX_PART_BYTES: u64 = 16 * 1024 * 1024;

/// Keys a job has written (or begun), in order, so a failure can remove them newest first;
/// and the size and SHA-256 of each finished object, for the backup's `checksums.yaml`.
#[derive(Debug, Default)]
pub struct Written {
    keys: Mutex<Vec<String>>,
    sums: Mutex<Vec<(String, u64, String)>>,
}

impl Written {
    pub fn push(&self, key: String) {
        self.keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(key);
    }

    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.keys.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Notes a finished object's stored size and hex SHA-256.
    pub fn sum(&self, key: &str, size: u64, sha256: String) {
        self.sums
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((key.to_string(), size, sha256));
    }

    /// The sums of the objects directly in `folder`, by name, sorted.
    pub fn sums_in(&self, folder: &str) -> Vec<crate::storage::checksums::FileSum> {
        let sums = self.sums.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<_> = sums
            .iter()
            .filter_map(|(key, size, sha)| {
                let (dir, name) = key.rsplit_once('/')?;
                (dir == folder).then(|| crate::storage::checksums::FileSum {
                    name: name.to_string(),
                    size: *size,
                    sha256: sha.clone(),
                })
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }
}

/// What an encoder hands its uploader.
#[derive(Debug)]
pub enum FileMsg {
    /// Start object `key`.
    Begin(String),
    /// Stored (post-codec) bytes of the current object.
    Data(Vec<u8>),
    /// The current object is complete; what it holds of the scan.
    End(Box<FileProgress>),
}

/// Per-writer totals.
#[derive(Debug, Default, Clone, Copy)]
pub struct FileStats {
    pub records: u64,
    /// Stored bytes, after the codec chain.
    pub bytes: u64,
    pub files: u64,
}

struct OpenFile {
    encoder: AsbEncoder<Vec<u8>>,
    codec: Box<dyn CodecStream>,
    /// Stored bytes of this file so far.
    stored: u64,
    /// Its records' partition cursors, for the resume checkpoint.
    scan: FileProgress,
}

/// Where and how a namespace's data files are written; shared by its workers.
#[derive(Debug, Clone)]
pub struct FileSpec {
    pub namespace: String,
    /// The namespace folder.
    pub folder: String,
    /// Per-namespace file number, shared by the workers (backup-go numbering from 1).
    pub counter: Arc<AtomicU64>,
    /// Stored bytes after which a file is closed.
    pub file_limit: u64,
    pub pipeline: Arc<Pipeline>,
    pub options: EncoderOptions,
}

/// One worker's file writer: appends encoded records, runs the codec chain and rotates files
/// at `file-limit`. Runs on a blocking thread: the codecs are CPU work.
pub struct FileWriter {
    spec: FileSpec,
    worker: usize,
    chunk_bytes: usize,
    tx: mpsc::Sender<FileMsg>,
    progress: Arc<Progress>,
    current: Option<OpenFile>,
    stats: FileStats,
    /// Finished partitions that arrived while no file was open: the next file carries them.
    pending_done: Vec<u16>,
}

impl std::fmt::Debug for FileWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileWriter")
            .field("folder", &self.spec.folder)
            .field("worker", &self.worker)
            .finish_non_exhaustive()
    }
}

impl FileWriter {
    pub fn new(
        spec: FileSpec,
        worker: usize,
        tx: mpsc::Sender<FileMsg>,
        progress: Arc<Progress>,
    ) -> Self {
        FileWriter {
            chunk_bytes: (CHUNK_BYTES as u64).min(spec.file_limit) as usize,
            spec,
            worker,
            tx,
            progress,
            current: None,
            stats: FileStats::default(),
            pending_done: Vec::new(),
        }
    }

    pub fn run(
        mut self,
        runtime: tokio::runtime::Handle,
        mut rx: mpsc::Receiver<EncodedBatch>,
    ) -> Result<FileStats, EngineError> {
        while let Some(batch) = runtime.block_on(rx.recv()) {
            self.write_batch(&batch)?;
        }
        self.close_file()?;
        Ok(self.stats)
    }

    /// Appends a batch, as many records at a time as the current file takes. asbackup checks
    /// the limit before each record, so a file may pass it by one record; so do we.
    fn write_batch(&mut self, batch: &EncodedBatch) -> Result<(), EngineError> {
        let ends = &batch.ends;
        let (mut i, mut start) = (0, 0usize);
        while i < ends.len() {
            if let Some(f) = &self.current
                && f.stored + f.encoder.buffered_len() as u64 >= self.spec.file_limit
            {
                self.close_file()?;
            }
            if self.current.is_none() {
                self.open_file()?;
            }
            let f = self.current.as_mut().expect("a file is open");
            let room = self.spec.file_limit - (f.stored + f.encoder.buffered_len() as u64);
            // Record i goes in; each next one while the bytes before it stay under the limit.
            let mut j = i + 1;
            while j < ends.len() && ((ends[j - 1] as usize - start) as u64) < room {
                j += 1;
            }
            let end = ends[j - 1] as usize;
            let n = (j - i) as u64;
            f.encoder
                .write_encoded(&batch.bytes[start..end], n)
                .map_err(|e| EngineError::Encode(e.to_string()))?;
            if batch.digests.len() == ends.len() {
                f.scan.note(&batch.digests[i..j]);
            }
            // Progress counted these records as the scan encoded them.
            self.stats.records += n;
            if f.encoder.buffered_len() >= self.chunk_bytes {
                self.flush_chunk()?;
            }
            (i, start) = (j, end);
        }
        // The batch's last record is in the open file: its finished partitions go with it.
        match self.current.as_mut() {
            Some(f) => f.scan.done.extend_from_slice(&batch.done),
            None => self.pending_done.extend_from_slice(&batch.done),
        }
        Ok(())
    }

    fn open_file(&mut self) -> Result<(), EngineError> {
        let k = self.spec.counter.fetch_add(1, Ordering::Relaxed);
        let key = format!(
            "{}/{}",
            self.spec.folder,
            data_file_name(self.worker, &self.spec.namespace, k)
        );
        let codec = self
            .spec
            .pipeline
            .encoder()
            .map_err(|e| EngineError::plugin("starting the codec chain", e))?;
        let mut encoder = AsbEncoder::new(
            Vec::with_capacity(self.chunk_bytes + 64 * 1024),
            self.spec.options,
        );
        encoder
            .write_header(&self.spec.namespace)
            .map_err(|e| EngineError::Encode(e.to_string()))?;
        self.send(FileMsg::Begin(key))?;
        self.current = Some(OpenFile {
            encoder,
            codec,
            stored: 0,
            scan: FileProgress::after(std::mem::take(&mut self.pending_done)),
        });
        Ok(())
    }

    fn flush_chunk(&mut self) -> Result<(), EngineError> {
        let Some(f) = self.current.as_mut() else {
            return Ok(());
        };
        let out = if self.spec.pipeline.is_empty() {
            // Nothing to transform: the encoded buffer itself goes to storage, uncopied.
            f.encoder.take_buffer()
        } else {
            let out = f
                .codec
                .push(f.encoder.get_ref())
                .map_err(|e| EngineError::plugin("encoding", e))?;
            // The plain buffer is reused for the next chunk: no fresh pages per chunk.
            f.encoder.get_mut().clear();
            out
        };
        f.stored += out.len() as u64;
        if !out.is_empty() {
            self.emit(out)?;
        }
        Ok(())
    }

    fn close_file(&mut self) -> Result<(), EngineError> {
        if self.current.is_none() {
            return Ok(());
        }
        self.flush_chunk()?;
        let mut f = self.current.take().expect("checked above");
        let tail = f
            .codec
            .finish()
            .map_err(|e| EngineError::plugin("encoding", e))?;
        if !tail.is_empty() {
            self.emit(tail)?;
        }
        self.stats.files += 1;
        let mut scan = std::mem::take(&mut f.scan);
        scan.next_file = self.spec.counter.load(Ordering::Relaxed);
        self.send(FileMsg::End(Box::new(scan)))
    }

    fn emit(&mut self, data: Vec<u8>) -> Result<(), EngineError> {
        self.stats.bytes += data.len() as u64;
        self.progress.add_bytes(data.len() as u64);
        self.send(FileMsg::Data(data))
    }

    fn send(&self, msg: FileMsg) -> Result<(), EngineError> {
        // A closed channel means the uploader failed; it reports why.
        self.tx
            .blocking_send(msg)
            .map_err(|_| EngineError::Cancelled)
    }
}

/// An object being uploaded: key, upload, next part number, bytes not yet sent, and the
/// digest of every byte handed to it.
type OpenUpload = (
    String,
    Box<dyn crate::plugins::Upload>,
    u32,
    Vec<u8>,
    StoredDigest,
);

/// Suffix of the marker object that stands beside an object while it is being uploaded, for
/// stores whose unfinished uploads live on server-side and invisibly (S3 multipart uploads):
/// after a crash, the start-up sweep finds `<key>.abs-open` in the incomplete folder and has
/// the plugin abort what is left of `<key>` (see [`abort_leftover`]). Not `.asb`, so no restore
/// or listing takes it for data.
pub const OPEN_MARKER_SUFFIX: &str = ".abs-open";

/// The object a marker stands for, if `key` is one.
pub fn marked_object(key: &str) -> Option<&str> {
    key.strip_suffix(OPEN_MARKER_SUFFIX)
        .filter(|k| !k.is_empty() && !k.ends_with('/'))
}

/// Discards what a killed process left of the upload of `key`: an upload of the same key is
/// begun and aborted, and a plugin's `abort` removes every unfinished upload of its key
/// (storage-s3 lists and aborts the key's open multipart uploads).
///
/// # Errors
/// What the storage reports.
pub async fn abort_leftover(
    storage: &Arc<dyn Storage>,
    key: &str,
) -> Result<(), crate::plugins::PluginError> {
    let mut up = storage.begin_upload(key, None).await?;
    up.abort().await
}

/// How an uploader treats each finished object besides storing it.
#[derive(Debug, Clone, Default)]
pub struct UploadOptions {
    /// Keep an [`OPEN_MARKER_SUFFIX`] marker beside each object while it is written.
    pub mark_open: bool,
    /// Note each finished object in this checkpoint, as a file of this namespace.
    pub checkpoint: Option<(Arc<Checkpointer>, String)>,
}

/// Removes an object a killed job left behind. A marker first has what is left of its
/// object's upload aborted (never the object itself, which may be whole), then goes.
///
/// # Errors
/// What the storage reports; an abort that fails leaves the marker for the next try.
pub async fn remove_leftover(
    storage: &Arc<dyn Storage>,
    key: &str,
) -> Result<(), crate::plugins::PluginError> {
    if let Some(object) = marked_object(key) {
        abort_leftover(storage, object).await?;
    }
    storage.delete(key).await
}

/// Writes the objects an encoder streams, in parts of `part_size`. An object left without
/// its `End` (the encoder failed) is aborted.
pub async fn upload_files(
    storage: Arc<dyn Storage>,
    mut rx: mpsc::Receiver<FileMsg>,
    part_size: u64,
    bandwidth: Option<Arc<RateLimiter>>,
    written: Arc<Written>,
    progress: Arc<Progress>,
    options: UploadOptions,
) -> Result<(), EngineError> {
    let mark_open = options.mark_open;
    let part_size = part_size as usize;
    let mut current: Option<OpenUpload> = None;
    let result: Result<(), EngineError> = async {
        while let Some(msg) = rx.recv().await {
            match msg {
                FileMsg::Begin(key) => {
                    if mark_open {
                        let marker = format!("{key}{OPEN_MARKER_SUFFIX}");
                        put_object(&storage, &marker, Vec::new()).await?;
                    }
                    let up = storage
                        .begin_upload(&key, None)
                        .await
                        .map_err(|e| EngineError::plugin(format!("writing {key}"), e))?;
                    written.push(key.clone());
                    current = Some((
                        key,
                        up,
                        1,
                        Vec::with_capacity(part_size),
                        StoredDigest::default(),
                    ));
                }
                FileMsg::Data(data) => {
                    let Some((key, up, part, buf, digest)) = current.as_mut() else {
                        return Err(EngineError::Encode("data outside a file".into()));
                    };
                    // Hashed as stored, streaming: the checksum needs no second read.
                    digest.update(&data);
                    // Parts may exceed `part_size` by one chunk (only a minimum matters to
                    // stores); in exchange a chunk is moved, never copied, when it starts a part.
                    if buf.is_empty() {
                        *buf = data;
                    } else {
                        buf.extend_from_slice(&data);
                    }
                    if buf.len() >= part_size {
                        let full = std::mem::take(buf);
                        if let Some(b) = &bandwidth {
                            b.acquire_n(full.len() as u64).await;
                        }
                        up.write_part(*part, Bytes::from(full))
                            .await
                            .map_err(|e| EngineError::plugin(format!("writing {key}"), e))?;
                        *part += 1;
                    }
                }
                FileMsg::End(scan) => {
                    let Some((key, mut up, part, buf, digest)) = current.take() else {
                        return Err(EngineError::Encode("end outside a file".into()));
                    };
                    if !buf.is_empty() || part == 1 {
                        if let Some(b) = &bandwidth {
                            b.acquire_n(buf.len() as u64).await;
                        }
                        up.write_part(part, Bytes::from(buf))
                            .await
                            .map_err(|e| EngineError::plugin(format!("writing {key}"), e))?;
                    }
                    up.finish()
                        .await
                        .map_err(|e| EngineError::plugin(format!("finishing {key}"), e))?;
                    written.sum(&key, digest.size, digest.hex());
                    // The finished upload still holds a storage slot: let it go before the
                    // marker's delete asks for one, or `parallel` writers at this point
                    // (more than the slots) would each wait for the others.
                    drop(up);
                    if mark_open {
                        let marker = format!("{key}{OPEN_MARKER_SUFFIX}");
                        storage.delete(&marker).await.map_err(|e| {
                            EngineError::plugin(format!("removing the marker of {key}"), e)
                        })?;
                    }
                    if let Some((cp, ns)) = &options.checkpoint {
                        let name = key.rsplit_once('/').map_or(key.as_str(), |(_, n)| n);
                        let sum = crate::storage::checksums::FileSum {
                            name: name.to_string(),
                            size: digest.size,
                            sha256: digest.hex(),
                        };
                        // After the upload's slot is given back: the checkpoint's write takes
                        // one, and with more writers than slots, holding ours while waiting
                        // for another would deadlock. The checkpoint only saves work: a
                        // backup goes on without it (a resume deletes the files it omits).
                        if let Err(e) = cp.commit_file(ns, scan.next_file, sum, &scan).await {
                            tracing::warn!(key = %cp.key(), error = %e,
                                "Cannot update the backup's resume checkpoint.");
                        }
                    }
                    progress.add_file();
                }
            }
        }
        Ok(())
    }
    .await;
    if let Some((key, mut up, ..)) = current.take() {
        match up.abort().await {
            Err(e) => {
                // The marker stays: the start-up sweep tries again.
                tracing::warn!(key = %key, error = %e, "Aborting an unfinished upload failed.");
            }
            Ok(()) if mark_open => {
                let _ = storage.delete(&format!("{key}{OPEN_MARKER_SUFFIX}")).await;
            }
            Ok(()) => {}
        }
    }
    result
}

/// Writes a small object in one part.
pub async fn put_object(
    storage: &Arc<dyn Storage>,
    key: &str,
    data: Vec<u8>,
) -> Result<(), EngineError> {
    let fail = |e| EngineError::plugin(format!("writing {key}"), e);
    let mut up = storage
        .begin_upload(key, Some(data.len() as u64))
        .await
        .map_err(fail)?;
    if let Err(e) = up.write_part(1, Bytes::from(data)).await {
        let _ = up.abort().await;
        return Err(fail(e));
    }
    up.finish().await.map_err(fail)?;
    Ok(())
}

/// Deletes a failed job's objects, newest first (so `metadata.yaml` goes before data).
pub async fn remove_written(storage: &Arc<dyn Storage>, keys: Vec<String>) {
    for key in keys.into_iter().rev() {
        if let Err(e) = storage.delete(&key).await {
            tracing::warn!(key = %key, error = %e, "Could not remove a file of a failed backup.");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Read side: storage → codec chain (decrypt, decompress) → `.asb` decoder.

/// Stored bytes asked of storage per read call.
pub const READ_CHUNK_BYTES: u32 = 1024 * 1024;
/// Stored chunks between a file's download task and its decoder thread: two, so the next
/// download overlaps decoding the previous chunk; 2 MiB per file being read at most.
const READ_CHANNEL_CAPACITY: usize = 2;

/// Streams the stored bytes of `key` into a bounded channel, paced by `bandwidth` (bytes/s).
/// Ends early, without error, when the receiver is gone.
pub async fn download_file(
    storage: Arc<dyn Storage>,
    key: String,
    bandwidth: Option<Arc<RateLimiter>>,
    tx: mpsc::Sender<Result<Vec<u8>, crate::plugins::PluginError>>,
) {
    let mut dl = match storage.open(&key, 0, None).await {
        Ok(dl) => dl,
        Err(e) => {
            let _ = tx.send(Err(e)).await;
            return;
        }
    };
    loop {
        let next = dl.next(READ_CHUNK_BYTES).await;
        let end = !matches!(next, Ok(Some(_)));
        let msg = match next {
            Ok(Some(chunk)) => {
                if let Some(b) = &bandwidth {
                    b.acquire_n(chunk.len() as u64).await;
                }
                Ok(chunk)
            }
            Ok(None) => break,
            Err(e) => Err(e),
        };
        if tx.send(msg).await.is_err() || end {
            break;
        }
    }
}

/// The plain bytes of one file: stored chunks from the download channel, pushed through
/// the decoding codec chain. Runs on the decoder's blocking thread.
struct PlainChunks {
    runtime: tokio::runtime::Handle,
    rx: mpsc::Receiver<Result<Vec<u8>, crate::plugins::PluginError>>,
    codec: Box<dyn CodecStream>,
    /// Codec pass-through: the stored bytes are the plain bytes.
    passthrough: bool,
    finished: bool,
    /// Stored bytes read so far (progress).
    stored: Arc<AtomicU64>,
    /// Hashes the stored bytes as the decoder consumes them (verify).
    digest: Option<Arc<Mutex<StoredDigest>>>,
    /// The stored chunk being decoded, and how much of it went through the codecs: it is fed
    /// to them a sub-chunk at a time, so the plain bytes in hand stay a sub-chunk's
    /// expansion, not a whole compressed chunk's (tens of MiB per reader for zstd).
    stored_chunk: Vec<u8>,
    stored_pos: usize,
}

/// Size and SHA-256 of the stored bytes read so far (the bytes as written, after codecs).
#[derive(Debug, Clone, Default)]
pub struct StoredDigest {
    pub size: u64,
    pub sha256: sha2::Sha256,
}

impl StoredDigest {
    pub fn update(&mut self, bytes: &[u8]) {
        use sha2::Digest as _;
        self.size += bytes.len() as u64;
        self.sha256.update(bytes);
    }

    /// The lowercase hex digest of what was read.
    pub fn hex(&self) -> String {
        use sha2::Digest as _;
        hex::encode(self.sha256.clone().finalize())
    }
}

impl Iterator for PlainChunks {
    type Item = std::io::Result<Vec<u8>>;

    fn next(&mut self) -> Option<Self::Item> {
        let plugin_err = |e: crate::plugins::PluginError| std::io::Error::other(e);
        loop {
            if self.stored_pos < self.stored_chunk.len() {
                let end = (self.stored_pos + crate::plugins::pipeline::DECODE_SUB_CHUNK_BYTES)
                    .min(self.stored_chunk.len());
                let out = self
                    .codec
                    .push(&self.stored_chunk[self.stored_pos..end])
                    .map_err(plugin_err);
                self.stored_pos = end;
                return Some(out);
            }
            if self.finished {
                return None;
            }
            match self.runtime.block_on(self.rx.recv()) {
                Some(Ok(chunk)) => {
                    self.stored.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                    if let Some(d) = &self.digest {
                        d.lock().unwrap_or_else(|p| p.into_inner()).update(&chunk);
                    }
                    if self.passthrough {
                        return Some(Ok(chunk));
                    }
                    (self.stored_chunk, self.stored_pos) = (chunk, 0);
                }
                Some(Err(e)) => {
                    self.finished = true;
                    return Some(Err(plugin_err(e)));
                }
                None => {
                    self.finished = true;
                    if self.passthrough {
                        return None;
                    }
                    return Some(self.codec.finish().map_err(plugin_err));
                }
            }
        }
    }
}

/// A decoder over one stored file; iterate it on a blocking thread.
pub struct FileReader {
    key: String,
    decoder: crate::asb::AsbDecoder<crate::asb::ChunkReader<PlainChunks, Vec<u8>>>,
}

impl std::fmt::Debug for FileReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileReader")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl FileReader {
    /// Starts reading `key`: spawns its download task on the current runtime. Call from a
    /// blocking thread (the decoder blocks on the download channel).
    ///
    /// # Errors
    /// The codec chain does not start (e.g. a key that cannot be used).
    pub fn open(
        runtime: tokio::runtime::Handle,
        storage: Arc<dyn Storage>,
        key: String,
        pipeline: &Pipeline,
        bandwidth: Option<Arc<RateLimiter>>,
        stored: Arc<AtomicU64>,
    ) -> Result<FileReader, ReadError> {
        Self::open_with(runtime, storage, key, pipeline, bandwidth, stored, None)
    }

    /// As [`FileReader::open`], hashing the stored bytes into `digest` as they are decoded.
    ///
    /// # Errors
    /// As [`FileReader::open`].
    pub fn open_hashed(
        runtime: tokio::runtime::Handle,
        storage: Arc<dyn Storage>,
        key: String,
        pipeline: &Pipeline,
        stored: Arc<AtomicU64>,
        digest: Arc<Mutex<StoredDigest>>,
    ) -> Result<FileReader, ReadError> {
        Self::open_with(runtime, storage, key, pipeline, None, stored, Some(digest))
    }

    fn open_with(
        runtime: tokio::runtime::Handle,
        storage: Arc<dyn Storage>,
        key: String,
        pipeline: &Pipeline,
        bandwidth: Option<Arc<RateLimiter>>,
        stored: Arc<AtomicU64>,
        digest: Option<Arc<Mutex<StoredDigest>>>,
    ) -> Result<FileReader, ReadError> {
        let codec = pipeline.decoder().map_err(|source| ReadError::Plugin {
            key: key.clone(),
            source,
        })?;
        let (tx, rx) = mpsc::channel(READ_CHANNEL_CAPACITY);
        runtime.spawn(download_file(storage, key.clone(), bandwidth, tx));
        let chunks = PlainChunks {
            runtime,
            rx,
            codec,
            passthrough: pipeline.is_empty(),
            finished: false,
            stored,
            digest,
            stored_chunk: Vec::new(),
            stored_pos: 0,
        };
        Ok(FileReader {
            key,
            decoder: crate::asb::AsbDecoder::new(crate::asb::ChunkReader::new(chunks)),
        })
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    /// The next item of the file, `None` at its clean end.
    ///
    /// # Errors
    /// [`ReadError`] naming the file; a codec or storage failure surfaces through the
    /// decoder's read error (with the line reached), so both say where reading stopped.
    pub fn next_item(&mut self) -> Result<Option<crate::asb::AsbItem>, ReadError> {
        self.decoder
            .next_item()
            .map_err(|source| ReadError::Decode {
                key: self.key.clone(),
                source,
            })
    }
}

/// Reads the stored bytes of `key` from byte `from` to its end into `digest`, paced by
/// `bandwidth`.
///
/// # Errors
/// What the storage reports.
pub async fn hash_stored(
    storage: &Arc<dyn Storage>,
    key: &str,
    from: u64,
    digest: &mut StoredDigest,
    bandwidth: Option<&Arc<RateLimiter>>,
) -> Result<(), crate::plugins::PluginError> {
    let mut dl = storage.open(key, from, None).await?;
    while let Some(chunk) = dl.next(READ_CHUNK_BYTES).await? {
        if let Some(b) = bandwidth {
            b.acquire_n(chunk.len() as u64).await;
        }
        digest.update(&chunk);
    }
    Ok(())
}

/// Reads the stored bytes of `key` to its end and compares size and SHA-256 with `expected`
/// (from `checksums.yaml`). Call from a blocking thread.
///
/// # Errors
/// [`ReadError::Checksum`] on a difference; [`ReadError::Plugin`] when storage fails.
pub fn check_stored(
    runtime: &tokio::runtime::Handle,
    storage: &Arc<dyn Storage>,
    key: &str,
    expected: &crate::storage::checksums::FileSum,
    bandwidth: Option<&Arc<RateLimiter>>,
) -> Result<(), ReadError> {
    let mut digest = StoredDigest::default();
    runtime
        .block_on(hash_stored(storage, key, 0, &mut digest, bandwidth))
        .map_err(|source| ReadError::Plugin {
            key: key.to_string(),
            source,
        })?;
    let fail = |message: String| ReadError::Checksum {
        key: key.to_string(),
        message,
    };
    if digest.size != expected.size {
        return Err(fail(format!(
            "{} stored bytes where checksums.yaml records {}",
            digest.size, expected.size
        )));
    }
    if digest.hex() != expected.sha256 {
        return Err(fail("its SHA-256 differs from checksums.yaml".into()));
    }
    Ok(())
}
