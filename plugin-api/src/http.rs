//! A small blocking HTTP client over `wasi:http/outgoing-handler` for storage plugins that
//! talk to an object store (S3, Azure Blob, GCS).
//!
//! The import comes from the `wasi` crate (the official WASI 0.2 bindings), so a plugin
//! using this module imports `wasi:http/outgoing-handler` and `wasi:http/types`; the host
//! links them from `wasmtime-wasi-http`. DNS, TLS and connection handling stay in the host,
//! which refuses every request whose host is not in the backend's `allowed-hosts()` (the
//! response is then [`Error::Denied`]) and plain `http://` unless the options name it.
//!
//! Bodies are streamed in the slices the host's `check-write` grants, so a request never
//! holds more than the caller's buffer; response bodies are read in bounded pieces.
//! Errors follow the retry rules: connection failures, timeouts, 429 and 5xx are
//! [`Error::Temporary`] (the host retries the call), the rest fail at once.
//!
//! On a native target (plugin unit tests) [`send`] returns [`Error::Unsupported`]: test
//! request building and response parsing natively, and the wire through the host.
//!
//! [`backend`] has what HTTP storage backends share beyond one request (sending rules and
//! error mapping, key prefixes and listing pages, held parts, downloads), [`text`] the
//! encodings, dates and XML bits of object stores.

use crate::{Error, Result};

pub mod backend;
pub mod text;

/// HTTP method of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Put,
    Post,
    Delete,
}

impl Method {
    /// The method's name as sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Put => "PUT",
            Method::Post => "POST",
            Method::Delete => "DELETE",
        }
    }
}

/// One request: method, absolute `http(s)://` URL and headers (`host` and
/// `content-length` are set by the client).
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(String, String)>,
}

impl Request {
    /// A request without extra headers.
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        Request {
            method,
            url: url.into(),
            headers: Vec::new(),
        }
    }

    /// Adds a header.
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// The parts of an `http(s)://authority/path?query` URL that a request needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlParts<'a> {
    pub https: bool,
    pub authority: &'a str,
    pub path_and_query: &'a str,
}

/// Splits an absolute URL.
///
/// # Errors
/// [`Error::InvalidConfig`] for anything but `http://` / `https://` with a host.
pub fn split_url(url: &str) -> Result<UrlParts<'_>> {
    let (https, rest) = if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else {
        return Err(Error::invalid_config(format!(
            "{url:?} is not an http(s) URL"
        )));
    };
    let (authority, path_and_query) = match rest.find(['/', '?']) {
        Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], &rest[i..]),
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains('@') {
        return Err(Error::invalid_config(format!("{url:?} has no usable host")));
    }
    Ok(UrlParts {
        https,
        authority,
        path_and_query,
    })
}

/// Timeouts a request asks the host for; the host may lower them.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: std::time::Duration,
    pub first_byte: std::time::Duration,
    pub between_bytes: std::time::Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        use std::time::Duration;
        Timeouts {
            connect: Duration::from_secs(10),
            first_byte: Duration::from_secs(60),
            between_bytes: Duration::from_secs(60),
        }
    }
}

/// Whether a status means "try again later" (throttling, server trouble).
pub fn status_is_temporary(status: u16) -> bool {
    status == 408 || status == 429 || (500..=599).contains(&status)
}

/// Maps a non-success status to the SDK error (`what` names the operation, `detail` is a
/// short excerpt of the body, which must not contain secrets).
///
/// A 404 is `not-found`, except for a listing (`what` starting with `list `): a prefix with
/// no objects lists empty, so a 404 there means the bucket or container itself is missing,
/// and the operator needs the store's own code (`NoSuchBucket`, `ContainerNotFound`), which
/// the payload-less `not-found` would drop.
pub fn status_error(what: &str, status: u16, detail: &str) -> Error {
    let msg = if detail.is_empty() {
        format!("{what}: HTTP {status}")
    } else {
        format!("{what}: HTTP {status}: {detail}")
    };
    match status {
        404 if what.starts_with("list ") => {
            Error::Other(format!("{msg} (the bucket or container does not exist)"))
        }
        404 => Error::NotFound,
        401 | 403 => Error::Other(format!("{msg} (check the credentials and permissions)")),
        409 | 412 => Error::AlreadyExists,
        s if status_is_temporary(s) => Error::Temporary(msg),
        _ => Error::Other(msg),
    }
}

#[cfg(target_arch = "wasm32")]
pub use wasm::{Response, send, send_slices};

#[cfg(not(target_arch = "wasm32"))]
pub use native::{Response, send, send_slices};

#[cfg(target_arch = "wasm32")]
mod wasm {
    use super::{Request, Timeouts, split_url};
    use crate::{Error, Result};
    use wasi::http::outgoing_handler;
    use wasi::http::types::{
        ErrorCode, Fields, IncomingBody, IncomingResponse, Method as WMethod, OutgoingBody,
        OutgoingRequest, RequestOptions, Scheme,
    };
    use wasi::io::streams::{InputStream, StreamError};

    fn method(m: super::Method) -> WMethod {
        match m {
            super::Method::Get => WMethod::Get,
            super::Method::Head => WMethod::Head,
            super::Method::Put => WMethod::Put,
            super::Method::Post => WMethod::Post,
            super::Method::Delete => WMethod::Delete,
        }
    }

    fn error_code(e: &ErrorCode) -> Error {
        match e {
            ErrorCode::HttpRequestDenied => Error::Denied,
            ErrorCode::DnsTimeout
            | ErrorCode::DnsError(_)
            | ErrorCode::ConnectionRefused
            | ErrorCode::ConnectionTerminated
            | ErrorCode::ConnectionTimeout
            | ErrorCode::ConnectionReadTimeout
            | ErrorCode::ConnectionWriteTimeout
            | ErrorCode::ConnectionLimitReached
            | ErrorCode::HttpResponseTimeout
            | ErrorCode::HttpRequestBodySize(_)
            | ErrorCode::HttpResponseIncomplete
            | ErrorCode::DestinationUnavailable
            | ErrorCode::DestinationIpUnroutable => Error::Temporary(format!("http: {e:?}")),
            ErrorCode::HttpRequestUriInvalid | ErrorCode::HttpRequestMethodInvalid => {
                Error::Other(format!("http: {e:?}"))
            }
            other => Error::Temporary(format!("http: {other:?}")),
        }
    }

    fn stream_error(e: StreamError) -> Error {
        match e {
            StreamError::Closed => Error::Temporary("http: connection closed".into()),
            StreamError::LastOperationFailed(err) => {
                Error::Temporary(format!("http: {}", err.to_debug_string()))
            }
        }
    }

    /// A response whose body is read on demand.
    #[derive(Debug)]
    pub struct Response {
        pub status: u16,
        pub headers: Vec<(String, String)>,
        // Field order matters: the stream must drop before its body, the body before
        // the response that owns it.
        stream: Option<InputStream>,
        body: Option<IncomingBody>,
        _response: IncomingResponse,
        done: bool,
    }

    impl Response {
        /// The first value of header `name` (case-insensitive).
        pub fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }

        /// Up to `max` bytes of the body, or `None` at its end. Never `Some(empty)`.
        ///
        /// # Errors
        /// [`Error::Temporary`] if the connection breaks.
        pub fn read_chunk(&mut self, max: usize) -> Result<Option<Vec<u8>>> {
            if self.done {
                return Ok(None);
            }
            let Some(stream) = &self.stream else {
                return Ok(None);
            };
            let mut out = Vec::new();
            while out.len() < max {
                match stream.blocking_read((max - out.len()) as u64) {
                    Ok(bytes) if bytes.is_empty() => continue,
                    Ok(bytes) => {
                        out.extend_from_slice(&bytes);
                        // Return what arrived; the caller asks again.
                        break;
                    }
                    Err(StreamError::Closed) => {
                        self.done = true;
                        break;
                    }
                    Err(e) => return Err(stream_error(e)),
                }
            }
            if self.done {
                self.finish_body()?;
            }
            Ok(if out.is_empty() { None } else { Some(out) })
        }

        /// The whole body, refusing more than `limit` bytes (responses other than
        /// downloads are small XML/JSON documents).
        ///
        /// # Errors
        /// A broken connection, or a body larger than `limit`.
        pub fn read_all(&mut self, limit: usize) -> Result<Vec<u8>> {
            let mut all = Vec::new();
            while let Some(chunk) = self.read_chunk(64 * 1024)? {
                if all.len() + chunk.len() > limit {
                    return Err(Error::other(format!(
                        "http: response body larger than {limit} bytes"
                    )));
                }
                all.extend_from_slice(&chunk);
            }
            Ok(all)
        }

        /// The body as text (lossy), at most `limit` bytes.
        ///
        /// # Errors
        /// As [`Response::read_all`].
        pub fn text(&mut self, limit: usize) -> Result<String> {
            Ok(String::from_utf8_lossy(&self.read_all(limit)?).into_owned())
        }

        fn finish_body(&mut self) -> Result<()> {
            self.stream.take();
            if let Some(body) = self.body.take() {
                // Trailers: reading them surfaces an error the body ended with.
                let fut = IncomingBody::finish(body);
                fut.subscribe().block();
                if let Some(Ok(Err(e))) = fut.get() {
                    return Err(error_code(&e));
                }
            }
            Ok(())
        }
    }

    /// Sends `req` with `body` (streamed in the slices the host accepts) and waits for the
    /// response head.
    ///
    /// # Errors
    /// [`Error::Denied`] when the host refuses the destination; [`Error::Temporary`] for
    /// network failures and timeouts; [`Error::InvalidConfig`] for a malformed URL.
    pub fn send(req: &Request, body: &[u8], timeouts: Timeouts) -> Result<Response> {
        send_slices(req, &[body], timeouts)
    }

    /// [`send`] with a body made of several slices, sent back to back (saves joining a
    /// carried-over tail and a new part into one more buffer).
    ///
    /// # Errors
    /// As [`send`].
    pub fn send_slices(req: &Request, slices: &[&[u8]], timeouts: Timeouts) -> Result<Response> {
        let body_len: usize = slices.iter().map(|s| s.len()).sum();
        let url = split_url(&req.url)?;
        let mut list: Vec<(String, Vec<u8>)> = req
            .headers
            .iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), v.as_bytes().to_vec()))
            .collect();
        if body_len > 0 || matches!(req.method, super::Method::Put | super::Method::Post) {
            list.push(("content-length".into(), body_len.to_string().into_bytes()));
        }
        let fields = Fields::from_list(&list)
            .map_err(|e| Error::other(format!("http: bad header: {e:?}")))?;
        let request = OutgoingRequest::new(fields);
        let bad = |what: &str| Error::other(format!("http: invalid {what} in {:?}", req.url));
        request
            .set_method(&method(req.method))
            .map_err(|()| bad("method"))?;
        request
            .set_scheme(Some(if url.https {
                &Scheme::Https
            } else {
                &Scheme::Http
            }))
            .map_err(|()| bad("scheme"))?;
        request
            .set_authority(Some(url.authority))
            .map_err(|()| bad("host"))?;
        request
            .set_path_with_query(Some(url.path_and_query))
            .map_err(|()| bad("path"))?;
        let options = RequestOptions::new();
        let ns = |d: std::time::Duration| d.as_nanos().min(u64::MAX as u128) as u64;
        // The host may refuse to honour a value; it then applies its own bound.
        let _ = options.set_connect_timeout(Some(ns(timeouts.connect)));
        let _ = options.set_first_byte_timeout(Some(ns(timeouts.first_byte)));
        let _ = options.set_between_bytes_timeout(Some(ns(timeouts.between_bytes)));
        let outgoing = request.body().map_err(|()| bad("body"))?;
        let future =
            outgoing_handler::handle(request, Some(options)).map_err(|e| error_code(&e))?;

        // A refused request shows up as a closed body stream; the response future then
        // says why, so body write errors are only reported if the future has no error.
        let written = write_body(&outgoing, slices);
        let finished = OutgoingBody::finish(outgoing, None);
        let response = loop {
            if let Some(r) = future.get() {
                break r;
            }
            future.subscribe().block();
        };
        let response = match response {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return Err(error_code(&e)),
            Err(()) => return Err(Error::other("http: response taken twice")),
        };
        written?;
        finished.map_err(|e| error_code(&e))?;
        let headers = response
            .headers()
            .entries()
            .into_iter()
            .map(|(n, v)| (n, String::from_utf8_lossy(&v).into_owned()))
            .collect();
        let status = response.status();
        let body = response
            .consume()
            .map_err(|()| Error::other("http: response body taken twice"))?;
        let stream = body
            .stream()
            .map_err(|()| Error::other("http: response stream taken twice"))?;
        Ok(Response {
            status,
            headers,
            stream: Some(stream),
            body: Some(body),
            _response: response,
            done: false,
        })
    }

    fn write_body(outgoing: &OutgoingBody, slices: &[&[u8]]) -> Result<()> {
        let stream = outgoing
            .write()
            .map_err(|()| Error::other("http: request body taken twice"))?;
        for mut body in slices.iter().copied() {
            write_slice(&stream, &mut body)?;
        }
        // With a content-length the host closes the stream once the last byte is in, so
        // `Closed` here means "complete", not "broken".
        match stream.blocking_flush() {
            Ok(()) | Err(StreamError::Closed) => Ok(()),
            Err(e) => Err(stream_error(e)),
        }
    }

    fn write_slice(stream: &wasi::io::streams::OutputStream, body: &mut &[u8]) -> Result<()> {
        while !body.is_empty() {
            let n = match stream.check_write() {
                Ok(0) => {
                    stream.subscribe().block();
                    continue;
                }
                Ok(n) => (n as usize).min(body.len()),
                Err(e) => return Err(stream_error(e)),
            };
            stream.write(&body[..n]).map_err(stream_error)?;
            *body = &body[n..];
        }
        Ok(())
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use super::{Request, Timeouts};
    use crate::{Error, Result};

    /// Native stand-in: plugins reach the network only inside the host.
    #[derive(Debug)]
    pub struct Response {
        pub status: u16,
        pub headers: Vec<(String, String)>,
    }

    impl Response {
        /// The first value of header `name` (case-insensitive).
        pub fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }

        /// Never reached natively.
        ///
        /// # Errors
        /// Always [`Error::Unsupported`].
        pub fn read_chunk(&mut self, _max: usize) -> Result<Option<Vec<u8>>> {
            Err(unsupported())
        }

        /// Never reached natively.
        ///
        /// # Errors
        /// Always [`Error::Unsupported`].
        pub fn read_all(&mut self, _limit: usize) -> Result<Vec<u8>> {
            Err(unsupported())
        }

        /// Never reached natively.
        ///
        /// # Errors
        /// Always [`Error::Unsupported`].
        pub fn text(&mut self, _limit: usize) -> Result<String> {
            Err(unsupported())
        }
    }

    fn unsupported() -> Error {
        Error::Unsupported("wasi:http is only available inside the service (wasm32-wasip2)".into())
    }

    /// Natively there is no wasi:http: always [`Error::Unsupported`].
    ///
    /// # Errors
    /// Always.
    pub fn send(_req: &Request, _body: &[u8], _timeouts: Timeouts) -> Result<Response> {
        Err(unsupported())
    }

    /// Natively there is no wasi:http: always [`Error::Unsupported`].
    ///
    /// # Errors
    /// Always.
    pub fn send_slices(_req: &Request, _slices: &[&[u8]], _timeouts: Timeouts) -> Result<Response> {
        Err(unsupported())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_scheme_authority_path() {
        let u = split_url("https://b.s3.us-east-1.amazonaws.com/k/x?uploads").unwrap();
        assert!(u.https);
        assert_eq!(u.authority, "b.s3.us-east-1.amazonaws.com");
        assert_eq!(u.path_and_query, "/k/x?uploads");
        let u = split_url("http://127.0.0.1:9000").unwrap();
        assert!(!u.https);
        assert_eq!((u.authority, u.path_and_query), ("127.0.0.1:9000", "/"));
        let u = split_url("http://h?x=1").unwrap();
        assert_eq!((u.authority, u.path_and_query), ("h", "?x=1"));
        for bad in ["ftp://h/x", "https:///x", "h/x", "https://user@h/"] {
            assert!(split_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn statuses_map_to_retryable_or_not() {
        assert!(status_error("put", 503, "").is_temporary());
        assert!(status_error("put", 429, "slow down").is_temporary());
        assert_eq!(status_error("get", 404, ""), Error::NotFound);
        assert!(!status_error("put", 400, "bad").is_temporary());
        assert!(!status_error("put", 403, "").is_temporary());
        assert!(matches!(
            status_error("get", 404, "NoSuchKey"),
            Error::NotFound
        ));
        match status_error("list objects", 404, "NoSuchBucket: gone") {
            Error::Other(m) => assert!(m.contains("HTTP 404: NoSuchBucket"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}
