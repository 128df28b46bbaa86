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

use aerospike_backup_plugin::http::backend::{
    BodyDownload, ERROR_EXCERPT, HeldPart, HttpBackend, KeyPrefix, check_url,
    object_store_capabilities, secret,
};
use aerospike_backup_plugin::http::text::{excerpt, percent_encode, rfc3339_ms};
use aerospike_backup_plugin::http::{self, Method, Request, status_error};
use aerospike_backup_plugin::{
    Capabilities, Error, ListPage, ObjectInfo, Plugin, Result, Storage, Upload, export_plugin,
};
use schemars::JsonSchema;
use serde::Deserialize;

/// Resumable chunks (except the last) are multiples of this.
const GRID: usize = 256 * 1024;
/// Default part size (DESIGN D11).
const DEFAULT_PART: u64 = 16 * 1024 * 1024;
const MAX_PART: u64 = 1 << 30;
const MAX_PARTS: u32 = 10_000;
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
        if o.bucket_name.trim().is_empty() {
            return Err(Error::invalid_config("bucket-name: must not be empty"));
        }
        if let Some(ep) = o.endpoint.as_deref().filter(|e| !e.trim().is_empty()) {
            check_url("endpoint", ep)?;
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
    root: KeyPrefix,
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

/// A query value or path segment (`/` encoded too).
fn encode(s: &str) -> String {
    percent_encode(s, false)
}

impl HttpBackend for Conn {
    /// The `error.message` of a JSON error, or an excerpt of the body.
    fn error_summary(&self, text: &str) -> String {
        let msg = serde_json::from_str::<serde_json::Value>(text)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| text.trim().to_string());
        excerpt(&msg, ERROR_EXCERPT).to_string()
    }

    /// The bearer token, when there is one (the emulators need none).
    fn authorize(&self, req: Request, _body_len: usize) -> Result<Request> {
        Ok(match &self.token {
            Some(t) => req.header("authorization", format!("Bearer {t}")),
            None => req,
        })
    }

    /// 308: a resumable chunk was accepted and more are expected.
    fn is_success(&self, status: u16) -> bool {
        (200..300).contains(&status) || status == 308
    }
}

impl Conn {
    fn name(&self, key: &str) -> String {
        self.root.name(key)
    }

    fn object_url(&self, key: &str, query: &str) -> String {
        format!(
            "{}/storage/v1/b/{}/o/{}{query}",
            self.endpoint,
            encode(&self.bucket),
            encode(&self.name(key))
        )
    }

    fn json(&self, what: &str, req: Request, body: &[u8]) -> Result<serde_json::Value> {
        let text = self.document(what, req, &[body])?;
        serde_json::from_str(&text)
            .map_err(|e| Error::other(format!("{what}: unreadable response: {e}")))
    }
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

impl Storage for GcsStorage {
    type Upload = GcsUpload;
    type Download = BodyDownload;

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
        Ok(GcsStorage {
            conn: Conn {
                endpoint,
                bucket: o.bucket_name.trim().to_string(),
                root: KeyPrefix::from_path(o.path.as_deref()),
                token: secret(&secrets, "access-token").map(str::to_string),
                storage_class: o.storage_class,
            },
            part_size: o.min_part_size.unwrap_or(DEFAULT_PART),
            authority,
        })
    }

    fn capabilities(&self) -> Capabilities {
        object_store_capabilities(self.part_size, MAX_PART, MAX_PARTS, None)
    }

    fn allowed_hosts(&self) -> Vec<String> {
        vec![self.authority.clone()]
    }

    fn begin_upload(&self, key: &str, _size_hint: Option<u64>) -> Result<GcsUpload> {
        Ok(GcsUpload {
            session: Session {
                conn: self.conn.clone(),
                key: key.to_string(),
                uri: None,
                sent: 0,
                carry: Vec::new(),
            },
            held: HeldPart::default(),
        })
    }

    fn open(&self, key: &str, offset: u64, len: Option<u64>) -> Result<BodyDownload> {
        let media = self.conn.object_url(key, "?alt=media");
        let get = |range| Ok(Request::new(Method::Get, media).header("range", range));
        // Past the end of an existing object is an empty read: stat says it exists.
        let stat = || self.stat(key).map(drop);
        self.conn
            .open_range("get object", (offset, len), get, stat, true)
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
        let array = |field: &str| v[field].as_array().map(Vec::as_slice).unwrap_or_default();
        let objects = array("items")
            .iter()
            .filter_map(|it| Some(object_info(it["name"].as_str()?.to_string(), it)))
            .collect();
        let prefixes = array("prefixes")
            .iter()
            .filter_map(|p| Some(p.as_str()?.to_string()))
            .collect();
        let next_cursor = v["nextPageToken"]
            .as_str()
            .filter(|t| !t.is_empty())
            .map(|t| format!("t:{t}"));
        let ListPage {
            mut objects,
            mut prefixes,
            mut next_cursor,
        } = self.conn.root.list_page(objects, prefixes, next_cursor);
        objects.retain(|o| !o.key.ends_with('/'));
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
        self.conn.delete(
            "delete object",
            Request::new(Method::Delete, self.conn.object_url(key, "")),
        )
    }
}

/// An upload: a resumable session fed from the held latest part.
#[derive(Debug)]
pub struct GcsUpload {
    session: Session,
    /// The latest part, held until the next part or `finish` (the final chunk must state
    /// the total size).
    held: HeldPart,
}

/// A resumable upload session, opened on the first chunk.
#[derive(Debug)]
struct Session {
    conn: Conn,
    key: String,
    /// The session URI (its `upload_id` authorises the chunks).
    uri: Option<String>,
    /// Bytes the session has acknowledged.
    sent: u64,
    /// Bytes of earlier parts past the 256 KiB grid, not sent yet.
    carry: Vec<u8>,
}

impl Session {
    fn uri(&mut self) -> Result<String> {
        if let Some(s) = &self.uri {
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
        self.uri = Some(location.clone());
        Ok(location)
    }

    /// Sends `carry` + `data` from offset `sent`; `total` marks the final chunk.
    fn put_chunk(&mut self, data: &[u8], total: Option<u64>) -> Result<()> {
        let uri = self.uri()?;
        let len = (self.carry.len() + data.len()) as u64;
        let range = match (len, total) {
            (0, Some(t)) => format!("bytes */{t}"),
            (n, Some(t)) => format!("bytes {}-{}/{t}", self.sent, self.sent + n - 1),
            (n, None) => format!("bytes {}-{}/*", self.sent, self.sent + n - 1),
        };
        let carry = std::mem::take(&mut self.carry);
        let r = self.conn.send(
            "upload chunk",
            Request::new(Method::Put, uri).header("content-range", range),
            &[&carry, data],
        );
        if let Err(e) = r {
            self.carry = carry;
            return Err(e);
        }
        self.sent += len;
        Ok(())
    }

    /// Sends what of `carry` + `part` fits the 256 KiB grid and carries the rest.
    fn put_part(&mut self, part: &[u8]) -> Result<()> {
        let total = self.carry.len() + part.len();
        let send = total - total % GRID;
        let from_part = send.saturating_sub(self.carry.len());
        if send > 0 {
            self.put_chunk(&part[..from_part], None)?;
            self.carry.extend_from_slice(&part[from_part..]);
        } else {
            self.carry.extend_from_slice(part);
        }
        Ok(())
    }

    /// Sends `carry` + `last` as the final chunk, which states the total size.
    fn put_last(&mut self, last: &[u8]) -> Result<()> {
        let total = self.sent + (self.carry.len() + last.len()) as u64;
        self.put_chunk(last, Some(total))
    }
}

impl Upload for GcsUpload {
    fn write_part(&mut self, part_number: u32, data: Vec<u8>) -> Result<()> {
        // A re-sent latest part replaces the buffered copy: nothing of it went out.
        match self.held.number() {
            Some(n) if n != part_number && n + 1 != part_number => {
                return Err(Error::other(format!(
                    "part {part_number} after part {n}: parts must come in order"
                )));
            }
            None if part_number != 1 => {
                return Err(Error::other(format!("part {part_number} before part 1")));
            }
            _ => {}
        }
        let session = &mut self.session;
        self.held
            .push(part_number, data, |_, prev| session.put_part(prev))
    }

    fn finish(&mut self) -> Result<ObjectInfo> {
        // On failure the last part stays held, for a retried finish.
        self.session.put_last(self.held.data())?;
        self.held.clear();
        let conn = &self.session.conn;
        let key = self.session.key.clone();
        let v = conn.json(
            "get object metadata",
            Request::new(Method::Get, conn.object_url(&key, "")),
            &[],
        )?;
        Ok(object_info(key, &v))
    }

    fn abort(&mut self) -> Result<()> {
        self.held.clear();
        self.session.carry.clear();
        let Some(uri) = self.session.uri.take() else {
            return Ok(());
        };
        // Cancelling a session answers 499; a session already gone answers 404/410.
        let conn = &self.session.conn;
        let resp = conn.send_unchecked(Request::new(Method::Delete, uri), &[&[]])?;
        match resp.status {
            499 | 404 | 410 | 200..=299 => Ok(()),
            s => Err(status_error("cancel upload", s, "")),
        }
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
}
