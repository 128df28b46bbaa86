//! The `storage-plugin` world: traits for plugin authors and the glue to the bindings.

use std::cell::RefCell;
use std::fmt;
use std::marker::PhantomData;

use crate::keys::{check_key, check_prefix};
use crate::wit::storage_world::aerospike::backup_plugin::types as wit;
use crate::wit::storage_world::exports::aerospike::backup_plugin::{plugin, storage as ws};
use crate::{API_VERSION, Error, Plugin, Result, options};

/// Metadata of a stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// The object key.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// Last modification in ms since the Unix epoch, if known.
    pub modified_ms: Option<u64>,
    /// Opaque version tag, if any.
    pub etag: Option<String>,
}

/// How the host should drive a backend (see the WIT `capabilities` record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    /// Minimum size of every part except the last.
    pub min_part_size: u64,
    /// Maximum size of a part.
    pub max_part_size: u64,
    /// Highest part number (parts are numbered from 1).
    pub max_parts: u32,
    /// Whether ranged `open` skips bytes cheaply.
    pub range_reads: bool,
    /// Upper bound of useful concurrent instances, if any.
    pub max_concurrency: Option<u32>,
}

/// One page of a listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListPage {
    /// Objects in ascending key order.
    pub objects: Vec<ObjectInfo>,
    /// Sub-prefixes (each ending in `/`) of a non-recursive listing, ascending.
    pub prefixes: Vec<String>,
    /// Cursor for the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// A storage backend. Keys and prefixes reaching these methods were already checked by the
/// SDK ([`crate::keys`]): no `..`, no absolute paths.
pub trait Storage: Plugin + Sized {
    /// An object being written in parts.
    type Upload: Upload;
    /// A byte range being read.
    type Download: Download;

    /// Builds the backend from its options (already parsed and checked by the SDK) and
    /// (name, value) secrets. No I/O beyond cheap validation. Never log secrets.
    fn create(options: Self::Options, secrets: Vec<(String, String)>) -> Result<Self>;

    /// Constant for the life of the backend.
    fn capabilities(&self) -> Capabilities;

    /// Hosts this backend needs over wasi:http; empty without network access.
    fn allowed_hosts(&self) -> Vec<String> {
        Vec::new()
    }

    /// Starts an upload; nothing is visible before [`Upload::finish`].
    fn begin_upload(&self, key: &str, size_hint: Option<u64>) -> Result<Self::Upload>;

    /// Opens `len` bytes (to the end if `None`) from `offset`; [`Error::NotFound`] if absent.
    fn open(&self, key: &str, offset: u64, len: Option<u64>) -> Result<Self::Download>;

    /// One page of the objects under `prefix` (see the WIT `list` contract).
    fn list(
        &self,
        prefix: &str,
        recursive: bool,
        cursor: Option<&str>,
        max_results: u32,
    ) -> Result<ListPage>;

    /// Metadata of `key` or [`Error::NotFound`].
    fn stat(&self, key: &str) -> Result<ObjectInfo>;

    /// Deletes `key`; a missing key is success.
    fn delete(&self, key: &str) -> Result<()>;
}

/// An upload in progress. The SDK guarantees: no call after a successful `finish` or an
/// `abort` reaches the implementation (a repeated `finish` returns the first result), and
/// dropping an unfinished upload calls `abort`.
pub trait Upload: 'static {
    /// Writes part `part_number` (from 1); a repeated number replaces that part.
    fn write_part(&mut self, part_number: u32, data: Vec<u8>) -> Result<()>;
    /// Atomically publishes the parts written so far; durable when it returns.
    fn finish(&mut self) -> Result<ObjectInfo>;
    /// Discards everything written.
    fn abort(&mut self) -> Result<()>;
}

/// A download in progress.
pub trait Download: 'static {
    /// Up to `max` bytes, or `None` at the end. Never `Some(empty)`.
    fn next(&mut self, max: u32) -> Result<Option<Vec<u8>>>;
}

/// Asks the host to fsync directory `path` (relative to the preopened root; `""` is the
/// root), making renames in it durable. Natively (tests) this is a no-op.
pub fn sync_dir(path: &str) -> Result<()> {
    #[cfg(target_arch = "wasm32")]
    {
        crate::wit::storage_world::aerospike::backup_plugin::storage_host::sync_dir(path)
            .map_err(from_wit)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = path;
        Ok(())
    }
}

impl From<Error> for wit::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::NotFound => wit::Error::NotFound,
            Error::Denied => wit::Error::Denied,
            Error::AlreadyExists => wit::Error::AlreadyExists,
            Error::Temporary(m) => wit::Error::Temporary(m),
            Error::Unsupported(m) => wit::Error::Unsupported(m),
            Error::InvalidConfig(m) => wit::Error::InvalidConfig(m),
            Error::Other(m) => wit::Error::Other(m),
        }
    }
}

#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
fn from_wit(e: wit::Error) -> Error {
    match e {
        wit::Error::NotFound => Error::NotFound,
        wit::Error::Denied => Error::Denied,
        wit::Error::AlreadyExists => Error::AlreadyExists,
        wit::Error::Temporary(m) => Error::Temporary(m),
        wit::Error::Unsupported(m) => Error::Unsupported(m),
        wit::Error::InvalidConfig(m) => Error::InvalidConfig(m),
        wit::Error::Other(m) => Error::Other(m),
    }
}

fn info_to_wit(i: ObjectInfo) -> ws::ObjectInfo {
    ws::ObjectInfo {
        key: i.key,
        size: i.size,
        modified_ms: i.modified_ms,
        etag: i.etag,
    }
}

/// The type `export_plugin!(storage: S)` exports.
#[doc(hidden)]
pub struct StorageExport<S>(PhantomData<S>);

impl<S> fmt::Debug for StorageExport<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StorageExport")
    }
}

impl<S: Storage> plugin::Guest for StorageExport<S> {
    fn info() -> wit::PluginInfo {
        wit::PluginInfo {
            name: S::NAME.to_owned(),
            kind: wit::PluginKind::Storage,
            version: S::VERSION.to_owned(),
            api_version: API_VERSION.to_owned(),
            options_schema: S::options_schema(),
        }
    }

    fn validate_options(options: String) -> Result<(), wit::Error> {
        options::load::<S>(&options).map(|_| ()).map_err(Into::into)
    }
}

impl<S: Storage> ws::Guest for StorageExport<S> {
    type Backend = BackendGlue<S>;
    type Upload = UploadGlue<S::Upload>;
    type Download = DownloadGlue<S::Download>;
}

/// The `backend` resource.
#[doc(hidden)]
pub struct BackendGlue<S>(S);

impl<S: Storage> fmt::Debug for BackendGlue<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BackendGlue({})", S::NAME)
    }
}

impl<S: Storage> ws::GuestBackend for BackendGlue<S> {
    fn create(options: String, secrets: Vec<(String, String)>) -> Result<ws::Backend, wit::Error> {
        let options = options::load::<S>(&options)?;
        Ok(ws::Backend::new(BackendGlue(S::create(options, secrets)?)))
    }

    fn capabilities(&self) -> ws::Capabilities {
        let c = self.0.capabilities();
        ws::Capabilities {
            min_part_size: c.min_part_size,
            max_part_size: c.max_part_size,
            max_parts: c.max_parts,
            range_reads: c.range_reads,
            max_concurrency: c.max_concurrency,
        }
    }

    fn allowed_hosts(&self) -> Vec<String> {
        self.0.allowed_hosts()
    }

    fn begin_upload(&self, key: String, size_hint: Option<u64>) -> Result<ws::Upload, wit::Error> {
        check_key(&key)?;
        let up = self.0.begin_upload(&key, size_hint)?;
        Ok(ws::Upload::new(UploadGlue(RefCell::new(
            UploadState::Open(up),
        ))))
    }

    fn open(&self, key: String, offset: u64, len: Option<u64>) -> Result<ws::Download, wit::Error> {
        check_key(&key)?;
        let d = self.0.open(&key, offset, len)?;
        Ok(ws::Download::new(DownloadGlue(RefCell::new(Some(d)))))
    }

    fn list(
        &self,
        prefix: String,
        recursive: bool,
        cursor: Option<String>,
        max_results: u32,
    ) -> Result<ws::ListPage, wit::Error> {
        check_prefix(&prefix)?;
        let page = self
            .0
            .list(&prefix, recursive, cursor.as_deref(), max_results.max(1))?;
        Ok(ws::ListPage {
            objects: page.objects.into_iter().map(info_to_wit).collect(),
            prefixes: page.prefixes,
            next_cursor: page.next_cursor,
        })
    }

    fn stat(&self, key: String) -> Result<ws::ObjectInfo, wit::Error> {
        check_key(&key)?;
        Ok(info_to_wit(self.0.stat(&key)?))
    }

    fn delete(&self, key: String) -> Result<(), wit::Error> {
        check_key(&key)?;
        Ok(self.0.delete(&key)?)
    }
}

enum UploadState<U> {
    Open(U),
    Finished(ObjectInfo),
    Aborted,
}

/// The `upload` resource: enforces call order and abort-on-drop.
#[doc(hidden)]
pub struct UploadGlue<U: Upload>(RefCell<UploadState<U>>);

impl<U: Upload> fmt::Debug for UploadGlue<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UploadGlue")
    }
}

impl<U: Upload> ws::GuestUpload for UploadGlue<U> {
    fn write_part(&self, part_number: u32, data: Vec<u8>) -> Result<(), wit::Error> {
        if part_number == 0 {
            return Err(wit::Error::Other("part numbers start at 1".to_owned()));
        }
        match &mut *self.0.borrow_mut() {
            UploadState::Open(u) => Ok(u.write_part(part_number, data)?),
            _ => Err(wit::Error::Other(
                "upload already finished or aborted".to_owned(),
            )),
        }
    }

    fn finish(&self) -> Result<ws::ObjectInfo, wit::Error> {
        let mut state = self.0.borrow_mut();
        match &mut *state {
            UploadState::Open(u) => {
                let info = u.finish()?;
                *state = UploadState::Finished(info.clone());
                Ok(info_to_wit(info))
            }
            UploadState::Finished(info) => Ok(info_to_wit(info.clone())),
            UploadState::Aborted => Err(wit::Error::Other("upload was aborted".to_owned())),
        }
    }

    fn abort(&self) -> Result<(), wit::Error> {
        let mut state = self.0.borrow_mut();
        match &mut *state {
            UploadState::Open(u) => {
                let r = u.abort();
                *state = UploadState::Aborted;
                Ok(r?)
            }
            UploadState::Aborted => Ok(()),
            UploadState::Finished(_) => Err(wit::Error::Other(
                "upload already finished; delete the object".to_owned(),
            )),
        }
    }
}

impl<U: Upload> Drop for UploadGlue<U> {
    fn drop(&mut self) {
        if let UploadState::Open(u) = self.0.get_mut() {
            // Dropping an unfinished upload means abort (WIT contract); nobody is left to
            // hear an error, and leftovers are the plugin's own temp data.
            let _ = u.abort();
        }
    }
}

/// The `download` resource: fused after the end or an error.
#[doc(hidden)]
pub struct DownloadGlue<D: Download>(RefCell<Option<D>>);

impl<D: Download> fmt::Debug for DownloadGlue<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DownloadGlue")
    }
}

impl<D: Download> ws::GuestDownload for DownloadGlue<D> {
    fn next(&self, max: u32) -> Result<Option<Vec<u8>>, wit::Error> {
        let mut slot = self.0.borrow_mut();
        let Some(d) = slot.as_mut() else {
            return Ok(None);
        };
        match d.next(max.max(1)) {
            Ok(Some(bytes)) if bytes.is_empty() => {
                *slot = None;
                // An empty chunk would make a host loop or stop early: fail loudly instead
                // of risking a silently truncated restore.
                Err(wit::Error::Other(
                    "plugin bug: download returned an empty chunk".to_owned(),
                ))
            }
            Ok(Some(bytes)) => Ok(Some(bytes)),
            Ok(None) => {
                *slot = None;
                Ok(None)
            }
            Err(e) => {
                *slot = None;
                Err(e.into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;

    use super::ws::{GuestDownload, GuestUpload};
    use super::*;

    /// Records what reached the plugin's upload.
    #[derive(Default)]
    struct Log(RefCell<Vec<String>>);

    struct FakeUpload(Rc<Log>);

    impl Upload for FakeUpload {
        fn write_part(&mut self, n: u32, data: Vec<u8>) -> Result<()> {
            self.0
                .0
                .borrow_mut()
                .push(format!("part {n} {}", data.len()));
            Ok(())
        }
        fn finish(&mut self) -> Result<ObjectInfo> {
            self.0.0.borrow_mut().push("finish".into());
            Ok(ObjectInfo {
                key: "k".into(),
                size: 3,
                modified_ms: None,
                etag: None,
            })
        }
        fn abort(&mut self) -> Result<()> {
            self.0.0.borrow_mut().push("abort".into());
            Ok(())
        }
    }

    fn glue(log: &Rc<Log>) -> UploadGlue<FakeUpload> {
        UploadGlue(RefCell::new(UploadState::Open(FakeUpload(log.clone()))))
    }

    #[test]
    fn upload_finish_is_idempotent_and_closes() {
        let log = Rc::new(Log::default());
        let up = glue(&log);
        assert!(up.write_part(0, vec![1]).is_err(), "parts start at 1");
        up.write_part(1, vec![1, 2, 3]).unwrap();
        let a = up.finish().unwrap();
        let b = up.finish().unwrap();
        assert_eq!((a.key, a.size), (b.key, b.size));
        assert!(up.write_part(2, vec![]).is_err());
        assert!(up.abort().is_err());
        drop(up);
        assert_eq!(*log.0.borrow(), ["part 1 3", "finish"]);
    }

    #[test]
    fn dropping_an_open_upload_aborts_once() {
        let log = Rc::new(Log::default());
        drop(glue(&log));
        let up = glue(&log);
        up.abort().unwrap();
        up.abort().unwrap();
        assert!(up.finish().is_err());
        drop(up);
        assert_eq!(*log.0.borrow(), ["abort", "abort"]);
    }

    struct FakeDownload(Vec<Option<Vec<u8>>>);

    impl Download for FakeDownload {
        fn next(&mut self, _max: u32) -> Result<Option<Vec<u8>>> {
            Ok(self.0.remove(0))
        }
    }

    #[test]
    fn download_is_fused_and_refuses_empty_chunks() {
        let d = DownloadGlue(RefCell::new(Some(FakeDownload(vec![Some(vec![1]), None]))));
        assert_eq!(d.next(10).unwrap(), Some(vec![1]));
        assert_eq!(d.next(10).unwrap(), None);
        assert_eq!(
            d.next(10).unwrap(),
            None,
            "fused: the plugin is not called again"
        );
        let d = DownloadGlue(RefCell::new(Some(FakeDownload(vec![Some(vec![])]))));
        assert!(d.next(10).is_err());
        assert_eq!(d.next(10).unwrap(), None);
    }
}
