//! The plumbing that storage backends over HTTP share (S3, Azure Blob, GCS are built on it):
//!
//! - [`HttpBackend`]: a backend's sending rules (authorisation, what counts as success, how
//!   its error bodies read); its provided methods send, check the status and map failures
//!   to the SDK's [`Error`] with [`status_error`](super::status_error);
//! - [`KeyPrefix`]: the `path` option, objects stored as `<path>/<key>`, and the
//!   [`ListPage`] of a listing made from the store's names;
//! - [`HeldPart`]: the latest part of an upload held back until the next one arrives (for
//!   stores whose last chunk must be sent differently);
//! - [`StorageClasses`]: a class for data files and one for everything else;
//! - [`BodyDownload`]: a [`Download`] reading a response body;
//! - small helpers: [`secret`], [`byte_range`], [`info_from_headers`], [`ignore_not_found`],
//!   [`check_url`], [`object_store_capabilities`].
//!
//! Retries are not here on purpose: a backend returns [`Error::Temporary`] for throttling,
//! server trouble and broken connections, and the host retries the call with backoff.

use super::text::http_date_ms;
use super::{Method, Request, Response, Timeouts, send_slices, split_url, status_error};
use crate::{Capabilities, Download, Error, ListPage, ObjectInfo, Result};

/// Largest XML/JSON document read from a store (a listing page of 1000 keys is ~350 KiB).
pub const MAX_DOCUMENT: usize = 8 * 1024 * 1024;
/// How much of an error body goes into an error message.
pub const ERROR_EXCERPT: usize = 300;
/// How much of an error body is read at all.
const ERROR_BODY: usize = 64 * 1024;

/// How a backend talks to its store. Implement the required [`HttpBackend::error_summary`]
/// (and [`HttpBackend::authorize`] when requests need credentials added at sending time);
/// the provided methods send.
pub trait HttpBackend {
    /// A short summary of an error body for messages: the store's error code and message,
    /// or an excerpt (at most [`ERROR_EXCERPT`] bytes; never secrets).
    fn error_summary(&self, body: &str) -> String;

    /// `req` as sent with a body of `body_len` bytes: signature, token, date headers. The
    /// default sends it as it is (a backend that signs while building requests, or that
    /// needs no credentials).
    ///
    /// # Errors
    /// A request that cannot be authorised.
    fn authorize(&self, req: Request, body_len: usize) -> Result<Request> {
        let _ = body_len;
        Ok(req)
    }

    /// Whether `status` is a success; default 2xx.
    fn is_success(&self, status: u16) -> bool {
        (200..300).contains(&status)
    }

    /// The timeouts every request asks the host for.
    fn timeouts(&self) -> Timeouts {
        Timeouts::default()
    }

    /// Authorises and sends `req` with a body of `body` (slices sent back to back),
    /// whatever the status of the answer.
    ///
    /// # Errors
    /// As [`send_slices`](super::send_slices).
    fn send_unchecked(&self, req: Request, body: &[&[u8]]) -> Result<Response> {
        let len = body.iter().map(|s| s.len()).sum();
        let req = self.authorize(req, len)?;
        send_slices(&req, body, self.timeouts())
    }

    /// The error for a response that is not a success: its status mapped by
    /// [`status_error`](super::status_error) with the summary of its body (not read for a
    /// `HEAD`, which has none). `what` names the operation.
    fn failure(&self, what: &str, method: Method, mut resp: Response) -> Error {
        let body = if method == Method::Head {
            String::new()
        } else {
            resp.text(ERROR_BODY).unwrap_or_default()
        };
        status_error(what, resp.status, &self.error_summary(&body))
    }

    /// [`HttpBackend::send_unchecked`], then anything but a success is an error
    /// ([`HttpBackend::failure`]).
    ///
    /// # Errors
    /// As [`HttpBackend::send_unchecked`], or the mapped status.
    fn send(&self, what: &str, req: Request, body: &[&[u8]]) -> Result<Response> {
        let method = req.method;
        let resp = self.send_unchecked(req, body)?;
        if self.is_success(resp.status) {
            Ok(resp)
        } else {
            Err(self.failure(what, method, resp))
        }
    }

    /// [`HttpBackend::send`], and the answer's body as text (at most [`MAX_DOCUMENT`]).
    ///
    /// # Errors
    /// As [`HttpBackend::send`], or a larger or broken body.
    fn document(&self, what: &str, req: Request, body: &[&[u8]]) -> Result<String> {
        self.send(what, req, body)?.text(MAX_DOCUMENT)
    }

    /// [`Storage::open`](crate::Storage::open) for a store read by ranged `GET`s: `get`
    /// makes the request for a `Range` value from [`byte_range`] (in the header the store
    /// wants). A read of zero bytes sends no `GET`, only `stat`, so a missing object still
    /// fails not-found. A range starting at or past the end (416) is an empty read, after
    /// `stat` when `stat_past_end` (a store that may answer 416 for a missing object).
    ///
    /// # Errors
    /// As [`HttpBackend::send`], `get` or `stat`.
    fn open_range(
        &self,
        what: &str,
        (offset, len): (u64, Option<u64>),
        get: impl FnOnce(String) -> Result<Request>,
        stat: impl Fn() -> Result<()>,
        stat_past_end: bool,
    ) -> Result<BodyDownload> {
        if len == Some(0) {
            stat()?;
            return Ok(BodyDownload::empty());
        }
        let req = get(byte_range(offset, len))?;
        let method = req.method;
        let resp = self.send_unchecked(req, &[])?;
        match resp.status {
            416 if stat_past_end => stat().map(|()| BodyDownload::empty()),
            416 => Ok(BodyDownload::empty()),
            s if self.is_success(s) => Ok(BodyDownload::new(resp)),
            _ => Err(self.failure(what, method, resp)),
        }
    }

    /// Sends a deletion that is done when the thing is gone: not-found is success.
    ///
    /// # Errors
    /// As [`HttpBackend::send`], but for [`Error::NotFound`].
    fn delete(&self, what: &str, req: Request) -> Result<()> {
        ignore_not_found(self.send(what, req, &[]))
    }
}

/// What an object store can do: parts of at least `min_part_size` (but the last) and at
/// most `max_part_size`, numbered 1 to `max_parts`; ranged reads; `max_concurrency`
/// concurrent uploads if it asks for a bound.
pub fn object_store_capabilities(
    min_part_size: u64,
    max_part_size: u64,
    max_parts: u32,
    max_concurrency: Option<u32>,
) -> Capabilities {
    Capabilities {
        min_part_size,
        max_part_size,
        max_parts,
        range_reads: true,
        max_concurrency,
    }
}

/// `Ok(())` for a success or [`Error::NotFound`] (deleting what is already gone).
///
/// # Errors
/// Every other error of `r`.
pub fn ignore_not_found<T>(r: Result<T>) -> Result<()> {
    match r {
        Ok(_) | Err(Error::NotFound) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The value of secret `name`, unless it is missing or empty.
pub fn secret<'a>(secrets: &'a [(String, String)], name: &str) -> Option<&'a str> {
    secrets
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// Checks that option `field` is an `http(s)://` URL (surrounding white space aside).
///
/// # Errors
/// [`Error::InvalidConfig`] naming `field` and the value as given.
pub fn check_url(field: &str, value: &str) -> Result<()> {
    split_url(value.trim())
        .map(drop)
        .map_err(|_| Error::invalid_config(format!("{field}: {value:?} is not an http(s) URL")))
}

/// The `Range` header value of a read of `len` bytes (to the end without) from `offset`;
/// `len` must not be 0 (a zero-length read sends no request).
pub fn byte_range(offset: u64, len: Option<u64>) -> String {
    match len {
        Some(n) => format!("bytes={offset}-{}", offset.saturating_add(n) - 1),
        None => format!("bytes={offset}-"),
    }
}

/// Object `key`'s metadata from the headers of a `HEAD` (or `GET`) answer: `content-length`,
/// `last-modified` (an HTTP date) and `etag` (quotes dropped).
pub fn info_from_headers(key: &str, resp: &Response) -> ObjectInfo {
    ObjectInfo {
        key: key.to_string(),
        size: resp
            .header("content-length")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0),
        modified_ms: resp.header("last-modified").and_then(http_date_ms),
        etag: resp.header("etag").map(|e| e.trim_matches('"').to_string()),
    }
}

/// Where a backend keeps its objects: the `path` option as a name prefix (empty, or ending
/// in `/`), so key `k` is stored as `<prefix>k`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPrefix(String);

impl KeyPrefix {
    /// From a `path` option: slashes around it dropped, one added at the end (`/a/b/` and
    /// `a/b` are `a/b/`); none, empty or `/` is no prefix.
    pub fn from_path(path: Option<&str>) -> Self {
        match path.map(|p| p.trim_matches('/')) {
            Some(p) if !p.is_empty() => KeyPrefix(format!("{p}/")),
            _ => KeyPrefix(String::new()),
        }
    }

    /// The prefix itself.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The store's name of `key`.
    pub fn name(&self, key: &str) -> String {
        format!("{}{key}", self.0)
    }

    /// The key of a store's name, if it is under the prefix.
    pub fn key_of<'a>(&self, name: &'a str) -> Option<&'a str> {
        name.strip_prefix(self.0.as_str())
    }

    /// A listing page from the store's answer: `objects` (their `key` the store's name) and
    /// `prefixes` turned into keys (names outside the prefix and the prefix itself dropped),
    /// both sorted; an empty cursor is none.
    pub fn list_page(
        &self,
        objects: Vec<ObjectInfo>,
        prefixes: Vec<String>,
        next_cursor: Option<String>,
    ) -> ListPage {
        let mut objects: Vec<ObjectInfo> = objects
            .into_iter()
            .filter_map(|o| {
                Some(ObjectInfo {
                    key: self.key_of(&o.key)?.to_string(),
                    ..o
                })
            })
            .filter(|o| !o.key.is_empty())
            .collect();
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        let mut prefixes: Vec<String> = prefixes
            .iter()
            .filter_map(|p| self.key_of(p).map(str::to_string))
            .collect();
        prefixes.sort();
        ListPage {
            objects,
            prefixes,
            next_cursor: next_cursor.filter(|c| !c.is_empty()),
        }
    }
}

/// The storage class (tier) of new objects: one for data files, another for the rest
/// (metadata, checksums, sidecars) when `metadata` is set: ABS's `storage-class` and
/// `storage-class.metadata`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StorageClasses {
    /// The class of every object, or of the data files when `metadata` is set.
    pub data: Option<String>,
    /// The class of every object that is not a data file.
    pub metadata: Option<String>,
}

impl StorageClasses {
    /// Whether `key` names a backup data file (`.asb`, `.asb33`).
    pub fn is_data_file(key: &str) -> bool {
        key.ends_with(".asb") || key.ends_with(".asb33")
    }

    /// The class of a new object `key`, if any.
    pub fn for_key(&self, key: &str) -> Option<&str> {
        match &self.metadata {
            Some(m) if !Self::is_data_file(key) => Some(m),
            _ => self.data.as_deref(),
        }
    }
}

/// The latest part of an upload, held in memory until the next part (or `finish`) arrives:
/// for stores that must send the last part differently (with the total size, or as a single
/// `put` when it is the only one), or that must not see a part twice.
#[derive(Debug, Default)]
pub struct HeldPart(Option<(u32, Vec<u8>)>);

impl HeldPart {
    /// The number of the held part.
    pub fn number(&self) -> Option<u32> {
        self.0.as_ref().map(|(n, _)| *n)
    }

    /// The held part's bytes (empty when none is held).
    pub fn data(&self) -> &[u8] {
        self.0
            .as_ref()
            .map(|(_, d)| d.as_slice())
            .unwrap_or_default()
    }

    /// Holds part `n`. A re-sent held part (same number) replaces the held copy; any other
    /// part first hands the held one to `send`, and stays out if that fails (the held part
    /// is then kept, so a re-sent part or a retried `finish` sends it again). The caller
    /// checks the part order.
    ///
    /// # Errors
    /// The error of `send`.
    pub fn push(
        &mut self,
        n: u32,
        data: Vec<u8>,
        send: impl FnOnce(u32, &[u8]) -> Result<()>,
    ) -> Result<()> {
        if self.number() != Some(n) {
            self.flush(send)?;
        }
        self.0 = Some((n, data));
        Ok(())
    }

    /// Hands the held part, if any, to `send`; it is no longer held unless `send` fails.
    ///
    /// # Errors
    /// The error of `send`.
    pub fn flush(&mut self, send: impl FnOnce(u32, &[u8]) -> Result<()>) -> Result<()> {
        if let Some((n, data)) = self.0.take()
            && let Err(e) = send(n, &data)
        {
            self.0 = Some((n, data));
            return Err(e);
        }
        Ok(())
    }

    /// Drops the held part.
    pub fn clear(&mut self) {
        self.0 = None;
    }
}

/// A download reading the body of one answer (`GET` with a range); [`BodyDownload::empty`]
/// for a read that needs no request (zero bytes, or from past the end).
#[derive(Debug)]
pub struct BodyDownload(Option<Response>);

impl BodyDownload {
    /// Reads `resp`'s body.
    pub fn new(resp: Response) -> Self {
        BodyDownload(Some(resp))
    }

    /// Nothing to read.
    pub fn empty() -> Self {
        BodyDownload(None)
    }
}

impl Download for BodyDownload {
    fn next(&mut self, max: u32) -> Result<Option<Vec<u8>>> {
        let Some(resp) = &mut self.0 else {
            return Ok(None);
        };
        let chunk = resp.read_chunk(max.max(1) as usize)?;
        if chunk.is_none() {
            self.0 = None;
        }
        Ok(chunk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_and_pages() {
        assert_eq!(KeyPrefix::from_path(Some("/a/b/")).as_str(), "a/b/");
        assert_eq!(KeyPrefix::from_path(Some("/")).as_str(), "");
        assert_eq!(KeyPrefix::from_path(None).name("k"), "k");
        let p = KeyPrefix::from_path(Some("r"));
        assert_eq!(p.name("k"), "r/k");
        assert_eq!((p.key_of("r/k"), p.key_of("s/k")), (Some("k"), None));
        let info = |k: &str| ObjectInfo {
            key: k.into(),
            size: 1,
            modified_ms: None,
            etag: None,
        };
        let page = p.list_page(
            vec![info("r/b"), info("x/a"), info("r/a"), info("r/")],
            vec!["r/z/".into(), "r/y/".into(), "q/".into()],
            Some(String::new()),
        );
        let keys: Vec<&str> = page.objects.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(keys, ["a", "b"]);
        assert_eq!(page.prefixes, ["y/", "z/"]);
        assert_eq!(page.next_cursor, None);
    }

    #[test]
    fn small_helpers() {
        assert_eq!(byte_range(5, Some(10)), "bytes=5-14");
        assert_eq!(byte_range(5, None), "bytes=5-");
        let secrets = vec![("a".to_string(), String::new()), ("b".into(), "x".into())];
        assert_eq!(
            (secret(&secrets, "a"), secret(&secrets, "b")),
            (None, Some("x"))
        );
        assert!(check_url("endpoint", " http://h:1 ").is_ok());
        let e = check_url("endpoint", "gs://x").unwrap_err().to_string();
        assert!(e.contains("endpoint: \"gs://x\""), "{e}");
        assert_eq!(ignore_not_found::<()>(Err(Error::NotFound)), Ok(()));
        assert!(ignore_not_found::<()>(Err(Error::Denied)).is_err());
        let c = StorageClasses {
            data: Some("COLD".into()),
            metadata: Some("HOT".into()),
        };
        assert_eq!(c.for_key("a/b.asb"), Some("COLD"));
        assert_eq!(c.for_key("a/b.asb33"), Some("COLD"));
        assert_eq!(c.for_key("a/metadata.yaml"), Some("HOT"));
        let one = StorageClasses {
            data: Some("COLD".into()),
            metadata: None,
        };
        assert_eq!(one.for_key("a/metadata.yaml"), Some("COLD"));
    }

    #[test]
    fn a_held_part_goes_out_when_the_next_arrives_and_stays_when_that_fails() {
        let mut held = HeldPart::default();
        let mut sent = Vec::new();
        held.push(1, vec![1], |n, _| panic!("nothing held yet: {n}"))
            .unwrap();
        held.push(1, vec![1, 1], |n, _| {
            panic!("a re-sent part is replaced: {n}")
        })
        .unwrap();
        assert_eq!((held.number(), held.data()), (Some(1), &[1, 1][..]));
        let e = held.push(2, vec![2], |_, _| Err(Error::Temporary("down".into())));
        assert!(e.is_err());
        assert_eq!((held.number(), held.data()), (Some(1), &[1, 1][..]));
        held.push(2, vec![2], |n, d| {
            sent.push((n, d.to_vec()));
            Ok(())
        })
        .unwrap();
        assert_eq!(sent, [(1, vec![1, 1])]);
        held.flush(|n, _| {
            assert_eq!(n, 2);
            Ok(())
        })
        .unwrap();
        assert_eq!((held.number(), held.data()), (None, &[][..]));
        held.push(3, vec![3], |_, _| Ok(())).unwrap();
        held.clear();
        assert_eq!(held.number(), None);
    }
}
