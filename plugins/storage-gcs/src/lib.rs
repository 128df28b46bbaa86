//! `storage-gcs`: objects in a Google Cloud Storage bucket through the JSON API.
//!
//! Transport is `wasi:http` through the SDK's [`http`] client; the host admits only the
//! storage endpoint (`https://storage.googleapis.com`, or `endpoint` for emulators and
//! private endpoints). The official `google-cloud-storage` crate is not used: it lists and
//! deletes over gRPC, which a component cannot carry and no stand-in serves.
//!
//! Uploads are resumable sessions. GCS wants every chunk but the last to be a multiple of
//! 256 KiB and the last one to state the total size, while the host only says "finish" after
//! the last part: so the latest part stays in memory until the next one (or `finish`)
//! arrives, and the bytes of a part beyond the 256 KiB grid are carried into the next chunk.
//! A re-sent part replaces the buffered one; nothing is visible before the final chunk.
//!
//! Auth: a bearer `access-token` secret (an OAuth2 token the host obtained), or none (the
//! emulators need none).

use aerospike_backup_plugin::http::{self, Method, Request, Timeouts, status_error};
use aerospike_backup_plugin::{
    Capabilities, Download, Error, ListPage, ObjectInfo, Plugin, Result, Storage, Upload,
    export_plugin,
};
use schemars::JsonSchema;
use serde::Deserialize;

/// Resumable chunks (except the last) are multiples of this.
const GRID: usize = 256 * 1024;
/// Default part size (DESIGN D11).
const DEFAULT_PART: u64 = 16 * 1024 * 1024;
const MAX_PART: u64 = 1 << 30;
const MAX_PARTS: u32 = 10_000;
const MAX_DOCUMENT: usize = 8 * 1024 * 1024;
const ERROR_EXCERPT: usize = 300;
const DEFAULT_ENDPOINT: &str = "https://storage.googleapis.com";

/// The options; the schema in `plugin-info` is derived from it.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[schemars(title = "storage-gcs options")]
pub struct Options {
    /// Bucket name.
    bucket_name: String,
    /// Object name prefix.
    #[serde(default)]
    path: Option<String>,
    /// JSON API endpoint; default https://storage.googleapis.com.
    #[serde(default)]
    endpoint: Option<String>,
    /// Part size in bytes, a multiple of 256 KiB.
    #[serde(default)]
    min_part_size: Option<u64>,
    /// e.g. STANDARD, NEARLINE, COLDLINE, ARCHIVE.
    #[serde(default)]
    storage_class: Option<String>,
}

impl Options {
    /// Rules beyond the type (see [`Plugin::check_options`]).
    fn check(o: &Options) -> Result<()> {
        if o.bucket_name.trim().is_empty() {
            return Err(Error::invalid_config("bucket-name: must not be empty"));
        }
        if let Some(ep) = o.endpoint.as_deref().filter(|e| !e.trim().is_empty()) {
            http::split_url(ep.trim()).map_err(|_| {
                Error::invalid_config(format!("endpoint: {ep:?} is not an http(s) URL"))
            })?;
        }
        if let Some(s) = o.min_part_size
            && (s < GRID as u64 || s % GRID as u64 != 0 || s > MAX_PART)
        {
            return Err(Error::invalid_config(format!(
                "min-part-size: must be a multiple of {GRID} bytes, at most {MAX_PART}"
            )));
        }
        Ok(())
    }
}

#[derive(Clone)]
struct Conn {
    endpoint: String,
    bucket: String,
    root: String,
    token: Option<String>,
    storage_class: Option<String>,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("root", &self.root)
            .field("token", &self.token.as_ref().map(|_| "**redacted**"))
            .finish()
    }
}

fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Conn {
    fn name(&self, key: &str) -> String {
        format!("{}{key}", self.root)
    }

    fn object_url(&self, key: &str, query: &str) -> String {
        format!(
            "{}/storage/v1/b/{}/o/{}{query}",
            self.endpoint,
            encode(&self.bucket),
            encode(&self.name(key))
        )
    }

    fn authorize(&self, req: Request) -> Request {
        match &self.token {
            Some(t) => req.header("authorization", format!("Bearer {t}")),
            None => req,
        }
    }

    fn send(&self, what: &str, req: Request, slices: &[&[u8]]) -> Result<http::Response> {
        let req = self.authorize(req);
        let mut resp = http::send_slices(&req, slices, Timeouts::default())?;
        // 308: a resumable chunk was accepted and more are expected.
        if (200..300).contains(&resp.status) || resp.status == 308 {
            return Ok(resp);
        }
        let status = resp.status;
        let text = if req.method == Method::Head {
            String::new()
        } else {
            resp.text(64 * 1024).unwrap_or_default()
        };
        Err(status_error(what, status, &error_summary(&text)))
    }

    fn json(&self, what: &str, req: Request, body: &[u8]) -> Result<serde_json::Value> {
        let mut resp = self.send(what, req, &[body])?;
        let text = resp.text(MAX_DOCUMENT)?;
        serde_json::from_str(&text)
            .map_err(|e| Error::other(format!("{what}: unreadable response: {e}")))
    }
}

fn error_summary(text: &str) -> String {
    let msg = serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| text.trim().to_string());
    let mut cut = msg.len().min(ERROR_EXCERPT);
    while !msg.is_char_boundary(cut) {
        cut -= 1;
    }
    msg[..cut].to_string()
}

/// RFC 3339 (`2026-12-02T08:01:49.11417Z`) in ms since the epoch.
fn rfc3339_ms(s: &str) -> Option<u64> {
    let s = s.trim().strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.split(':').map(|x| x.parse::<i64>().ok());
    let (h, mi, sec) = (t.next()??, t.next()??, t.next()??);
    let ms: i64 = format!("{frac:0<3}").get(..3)?.parse().ok()?;
    let yy = if m <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + day - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    u64::try_from((days * 86_400 + h * 3600 + mi * 60 + sec) * 1000 + ms).ok()
}

fn object_info(key: String, v: &serde_json::Value) -> ObjectInfo {
    ObjectInfo {
        key,
        size: v["size"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .or_else(|| v["size"].as_u64())
            .unwrap_or(0),
        modified_ms: v["updated"].as_str().and_then(rfc3339_ms),
        etag: v["etag"]
            .as_str()
            .or_else(|| v["md5Hash"].as_str())
            .map(str::to_string),
    }
}

/// The plugin type exported below.
#[derive(Debug)]
pub struct GcsStorage {
    conn: Conn,
    part_size: u64,
    authority: String,
}

impl Plugin for GcsStorage {
    const NAME: &'static str = "storage-gcs";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    type Options = Options;

    fn check_options(o: &Options) -> Result<()> {
        Options::check(o)
    }
}

impl Storage for GcsStorage {
    type Upload = GcsUpload;
    type Download = GcsDownload;

    fn create(o: Options, secrets: Vec<(String, String)>) -> Result<Self> {
        let endpoint = o
            .endpoint
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .unwrap_or(DEFAULT_ENDPOINT)
            .trim_end_matches('/');
        // ABS (the Go client) takes the JSON API's root as its endpoint,
        // `http://host:port/storage/v1/`; the paths below add `/storage/v1` (and
        // `/upload/storage/v1`) themselves, so a root given that way is cut back to its base.
        let endpoint = endpoint
            .strip_suffix("/storage/v1")
            .unwrap_or(endpoint)
            .to_string();
        let authority = http::split_url(&endpoint)?.authority.to_string();
        let token = secrets
            .into_iter()
            .find(|(n, v)| n == "access-token" && !v.is_empty())
            .map(|(_, v)| v);
        let root = match o.path.as_deref().map(|p| p.trim_matches('/')) {
            Some(p) if !p.is_empty() => format!("{p}/"),
            _ => String::new(),
        };
        Ok(GcsStorage {
            conn: Conn {
                endpoint,
                bucket: o.bucket_name.trim().to_string(),
                root,
                token,
                storage_class: o.storage_class,
            },
            part_size: o.min_part_size.unwrap_or(DEFAULT_PART),
            authority,
        })
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            min_part_size: self.part_size,
            max_part_size: MAX_PART,
            max_parts: MAX_PARTS,
            range_reads: true,
            max_concurrency: None,
        }
    }

    fn allowed_hosts(&self) -> Vec<String> {
        vec![self.authority.clone()]
    }

    fn begin_upload(&self, key: &str, _size_hint: Option<u64>) -> Result<GcsUpload> {
        Ok(GcsUpload {
            conn: self.conn.clone(),
            key: key.to_string(),
            session: None,
            sent: 0,
            carry: Vec::new(),
            last: None,
        })
    }

    fn open(&self, key: &str, offset: u64, len: Option<u64>) -> Result<GcsDownload> {
        if len == Some(0) {
            self.stat(key)?;
            return Ok(GcsDownload { resp: None });
        }
        let range = match len {
            Some(n) => format!("bytes={offset}-{}", offset.saturating_add(n) - 1),
            None => format!("bytes={offset}-"),
        };
        let req = Request::new(Method::Get, self.conn.object_url(key, "?alt=media"))
            .header("range", range);
        match self.conn.send("get object", req, &[]) {
            Ok(resp) => Ok(GcsDownload { resp: Some(resp) }),
            Err(Error::Other(m)) if m.contains("HTTP 416") => {
                // Past the end of an existing object is an empty read.
                self.stat(key)?;
                Ok(GcsDownload { resp: None })
            }
            Err(e) => Err(e),
        }
    }

    fn list(
        &self,
        prefix: &str,
        recursive: bool,
        cursor: Option<&str>,
        max_results: u32,
    ) -> Result<ListPage> {
        let mut url = format!(
            "{}/storage/v1/b/{}/o?prefix={}&maxResults={}",
            self.conn.endpoint,
            encode(&self.conn.bucket),
            encode(&self.conn.name(prefix)),
            max_results.clamp(1, 1000)
        );
        if !recursive {
            url.push_str("&delimiter=%2F");
        }
        // Cursor: `t:<pageToken>` from GCS, or `s:<name>` where a page was cut short here.
        match cursor.map(|c| c.split_at(c.len().min(2))) {
            Some(("t:", token)) => url.push_str(&format!("&pageToken={}", encode(token))),
            Some(("s:", start)) => url.push_str(&format!("&startOffset={}", encode(start))),
            Some(_) => return Err(Error::other("list: cursor not made by this plugin")),
            None => {}
        }
        let v = self
            .conn
            .json("list objects", Request::new(Method::Get, url), &[])?;
        let strip = |k: &str| k.strip_prefix(&self.conn.root).map(str::to_string);
        let mut objects: Vec<ObjectInfo> = v["items"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(|it| Some(object_info(strip(it["name"].as_str()?)?, it)))
            .filter(|o| !o.key.is_empty() && !o.key.ends_with('/'))
            .collect();
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        let mut prefixes: Vec<String> = v["prefixes"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(|p| strip(p.as_str()?))
            .collect();
        prefixes.sort();
        let mut next_cursor = v["nextPageToken"]
            .as_str()
            .filter(|t| !t.is_empty())
            .map(|t| format!("t:{t}"));
        // GCS counts items and prefixes against maxResults; some servers count only items.
        // Cut such a page to size and resume after its last entry.
        let max = max_results.max(1) as usize;
        if objects.len() + prefixes.len() > max {
            let mut entries: Vec<(String, bool)> = objects
                .iter()
                .map(|o| (o.key.clone(), false))
                .chain(prefixes.iter().map(|p| (p.clone(), true)))
                .collect();
            entries.sort();
            entries.truncate(max);
            let (last, is_prefix) = entries.last().cloned().unwrap_or_default();
            objects.retain(|o| o.key <= last);
            prefixes.retain(|p| *p <= last);
            let after = if is_prefix {
                // Skip the whole "directory": '/' + 1 is '0'.
                format!("{}0", &last[..last.len() - 1])
            } else {
                format!("{last}\u{1}")
            };
            next_cursor = Some(format!("s:{}", self.conn.name(&after)));
        }
        Ok(ListPage {
            objects,
            prefixes,
            next_cursor,
        })
    }

    fn stat(&self, key: &str) -> Result<ObjectInfo> {
        let v = self.conn.json(
            "get object metadata",
            Request::new(Method::Get, self.conn.object_url(key, "")),
            &[],
        )?;
        Ok(object_info(key.to_string(), &v))
    }

    fn delete(&self, key: &str) -> Result<()> {
        match self.conn.send(
            "delete object",
            Request::new(Method::Delete, self.conn.object_url(key, "")),
            &[],
        ) {
            Ok(_) | Err(Error::NotFound) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// A resumable upload session, opened on the first part.
#[derive(Debug)]
pub struct GcsUpload {
    conn: Conn,
    key: String,
    /// The session URI (its `upload_id` authorises the chunks).
    session: Option<String>,
    /// Bytes the session has acknowledged.
    sent: u64,
    /// Bytes of earlier parts past the 256 KiB grid, not sent yet.
    carry: Vec<u8>,
    /// The latest part (number, bytes), held until the next part or `finish`.
    last: Option<(u32, Vec<u8>)>,
}

impl GcsUpload {
    fn session(&mut self) -> Result<String> {
        if let Some(s) = &self.session {
            return Ok(s.clone());
        }
        let url = format!(
            "{}/upload/storage/v1/b/{}/o?uploadType=resumable&name={}",
            self.conn.endpoint,
            encode(&self.conn.bucket),
            encode(&self.conn.name(&self.key))
        );
        let meta = match &self.conn.storage_class {
            Some(c) => serde_json::json!({ "storageClass": c }),
            None => serde_json::json!({}),
        }
        .to_string();
        let resp = self.conn.send(
            "start resumable upload",
            Request::new(Method::Post, url)
                .header("content-type", "application/json; charset=UTF-8"),
            &[meta.as_bytes()],
        )?;
        let location = resp
            .header("location")
            .ok_or_else(|| Error::Temporary("start resumable upload: no session URI".into()))?
            .to_string();
        self.session = Some(location.clone());
        Ok(location)
    }

    /// Sends `carry` + `data` from offset `sent`; `total` marks the final chunk.
    fn put_chunk(&mut self, data: &[u8], total: Option<u64>) -> Result<()> {
        let session = self.session()?;
        let len = (self.carry.len() + data.len()) as u64;
        let range = match (len, total) {
            (0, Some(t)) => format!("bytes */{t}"),
            (n, Some(t)) => format!("bytes {}-{}/{t}", self.sent, self.sent + n - 1),
            (n, None) => format!("bytes {}-{}/*", self.sent, self.sent + n - 1),
        };
        let carry = std::mem::take(&mut self.carry);
        let r = self.conn.send(
            "upload chunk",
            Request::new(Method::Put, session).header("content-range", range),
            &[&carry, data],
        );
        if let Err(e) = r {
            self.carry = carry;
            return Err(e);
        }
        self.sent += len;
        Ok(())
    }
}

impl Upload for GcsUpload {
    fn write_part(&mut self, part_number: u32, data: Vec<u8>) -> Result<()> {
        match &self.last {
            // A re-sent latest part replaces the buffered copy: nothing of it went out.
            Some((n, _)) if *n == part_number => {
                self.last = Some((part_number, data));
                return Ok(());
            }
            Some((n, _)) if *n + 1 != part_number => {
                return Err(Error::other(format!(
                    "part {part_number} after part {n}: parts must come in order"
                )));
            }
            None if part_number != 1 => {
                return Err(Error::other(format!("part {part_number} before part 1")));
            }
            _ => {}
        }
        if let Some((_, prev)) = self.last.take() {
            // Send what of carry + prev fits the 256 KiB grid; keep the rest.
            let total = self.carry.len() + prev.len();
            let send = total - total % GRID;
            let from_prev = send.saturating_sub(self.carry.len());
            if send > 0 {
                if let Err(e) = self.put_chunk(&prev[..from_prev], None) {
                    self.last = Some((part_number - 1, prev));
                    return Err(e);
                }
                self.carry.extend_from_slice(&prev[from_prev..]);
            } else {
                self.carry.extend_from_slice(&prev);
            }
        }
        self.last = Some((part_number, data));
        Ok(())
    }

    fn finish(&mut self) -> Result<ObjectInfo> {
        let last = self.last.take();
        let data = last.as_ref().map(|(_, d)| d.as_slice()).unwrap_or_default();
        let total = self.sent + (self.carry.len() + data.len()) as u64;
        if let Err(e) = self.put_chunk(data, Some(total)) {
            self.last = last;
            return Err(e);
        }
        let key = self.key.clone();
        let v = self.conn.json(
            "get object metadata",
            Request::new(Method::Get, self.conn.object_url(&key, "")),
            &[],
        )?;
        Ok(object_info(key, &v))
    }

    fn abort(&mut self) -> Result<()> {
        self.last = None;
        self.carry.clear();
        let Some(session) = self.session.take() else {
            return Ok(());
        };
        // Cancelling a session answers 499; a session already gone answers 404/410.
        let req = self.conn.authorize(Request::new(Method::Delete, session));
        let resp = http::send(&req, &[], Timeouts::default())?;
        match resp.status {
            499 | 404 | 410 | 200..=299 => Ok(()),
            s => Err(status_error("cancel upload", s, "")),
        }
    }
}

/// A ranged media download.
#[derive(Debug)]
pub struct GcsDownload {
    resp: Option<http::Response>,
}

impl Download for GcsDownload {
    fn next(&mut self, max: u32) -> Result<Option<Vec<u8>>> {
        let Some(resp) = &mut self.resp else {
            return Ok(None);
        };
        let chunk = resp.read_chunk(max.max(1) as usize)?;
        if chunk.is_none() {
            self.resp = None;
        }
        Ok(chunk)
    }
}

export_plugin!(storage: GcsStorage);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_and_names() {
        let s = aerospike_backup_plugin::testing::storage::<GcsStorage>(
            r#"{"bucket-name": "b", "path": "x/"}"#,
            vec![],
        )
        .unwrap();
        assert_eq!(s.allowed_hosts(), ["storage.googleapis.com"]);
        assert_eq!(
            s.conn.object_url("a/b c", "?alt=media"),
            "https://storage.googleapis.com/storage/v1/b/b/o/x%2Fa%2Fb%20c?alt=media"
        );
        let s = aerospike_backup_plugin::testing::storage::<GcsStorage>(
            r#"{"bucket-name": "b", "endpoint": "http://127.0.0.1:4443/"}"#,
            vec![("access-token".into(), "ya29.secret".into())],
        )
        .unwrap();
        assert_eq!(s.allowed_hosts(), ["127.0.0.1:4443"]);
        assert!(!format!("{s:?}").contains("ya29"));
        // ABS's form of an endpoint: the JSON API root, with or without the last slash.
        for ep in [
            "http://127.0.0.1:4443/storage/v1/",
            "http://127.0.0.1:4443/storage/v1",
        ] {
            let s = aerospike_backup_plugin::testing::storage::<GcsStorage>(
                &format!(r#"{{"bucket-name": "b", "endpoint": "{ep}"}}"#),
                vec![],
            )
            .unwrap();
            assert_eq!(
                s.conn.object_url("k", ""),
                "http://127.0.0.1:4443/storage/v1/b/b/o/k",
                "{ep}"
            );
        }
    }

    #[test]
    fn options_name_their_field() {
        for (o, field) in [
            (r#"{"bucket-name": ""}"#, "bucket-name"),
            (
                r#"{"bucket-name": "b", "min-part-size": 1000}"#,
                "min-part-size",
            ),
            (r#"{"bucket-name": "b", "endpoint": "gs://x"}"#, "endpoint"),
            (r#"{"bucket-name": "b", "key-file": "x"}"#, "key-file"),
        ] {
            let e = aerospike_backup_plugin::options::load::<GcsStorage>(o).unwrap_err();
            assert!(e.to_string().contains(field), "{o}: {e}");
        }
    }

    #[test]
    fn dates() {
        assert_eq!(rfc3339_ms("1970-01-01T00:00:01.5Z"), Some(1500));
        assert_eq!(
            rfc3339_ms("2026-12-02T08:01:49.11417Z"),
            Some(1_796_198_509_114)
        );
    }
}
