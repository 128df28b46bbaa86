//! `storage-s3`: objects in an Amazon S3 bucket, or any S3-compatible service (MinIO, Ceph,
//! moto) named by `s3-endpoint-override`.
//!
//! Transport is `wasi:http` through the SDK's [`http`] client: the host resolves DNS, does
//! TLS and admits only [`Storage::allowed_hosts`]. Requests are written as the S3 API
//! reference writes them ([`sign`]: sub-resources such as `?uploads` without a value) and
//! signed with AWS Signature V4 in the `Authorization` header by `aws-sigv4` (the AWS SDKs'
//! signer, pure Rust, no I/O), with credentials that the host resolved (static keys from the
//! config or the Secret Agent, or its environment / profile file) and passes as secrets.
//! `rusty-s3` is used only for its bucket URL rules and its response parsers.
//!
//! Uploads are S3 multipart uploads with exactly one S3 part per `write-part`: the upload
//! is created on the first part, a re-sent part replaces the earlier one (S3 keeps the
//! latest part of a number), `finish` completes it and `abort` aborts it, which frees the
//! stored parts. Zero parts publish an empty object with a plain PUT.

use aerospike_backup_plugin::http::backend::{
    BodyDownload, ERROR_EXCERPT, HttpBackend, KeyPrefix, MAX_DOCUMENT, StorageClasses, check_url,
    info_from_headers, object_store_capabilities, secret,
};
use aerospike_backup_plugin::http::text::{percent_encode, rfc3339_ms};
use aerospike_backup_plugin::http::{self, Method, Request};
use aerospike_backup_plugin::{
    Capabilities, Error, ListPage, ObjectInfo, Plugin, Result, Storage, Upload, export_plugin,
};
use rusty_s3::actions::{CreateMultipartUpload, ListObjectsV2};
use rusty_s3::{Bucket, UrlStyle};
use schemars::JsonSchema;
use serde::Deserialize;

mod sign;
mod xml;

use sign::{Payload, Signer};

/// S3 limits: every part but the last ≥ 5 MiB, ≤ 5 GiB, at most 10 000 parts.
const S3_MIN_PART: u64 = 5 * 1024 * 1024;
const S3_MAX_PART: u64 = 5 * 1024 * 1024 * 1024;
const S3_MAX_PARTS: u32 = 10_000;

/// The options; the schema in `plugin-info` is derived from it.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[schemars(title = "storage-s3 options")]
pub struct Options {
    /// Bucket name.
    bucket: String,
    /// AWS region, e.g. eu-west-1.
    s3_region: String,
    /// Key prefix inside the bucket.
    #[serde(default)]
    path: Option<String>,
    /// S3-compatible endpoint URL (MinIO...); empty means AWS.
    #[serde(default)]
    s3_endpoint_override: Option<String>,
    /// Multipart part size in bytes (at least 5 MiB).
    #[serde(default)]
    min_part_size: Option<u64>,
    /// Upper bound of concurrent uploads.
    #[serde(default)]
    max_async_connections: Option<u32>,
    /// e.g. STANDARD, STANDARD_IA, GLACIER_IR: the class of every object, or of the data
    /// files (`.asb`) when `metadata-storage-class` is given.
    #[serde(default)]
    storage_class: Option<String>,
    /// The class of every object that is not a data file (metadata, checksums, sidecars):
    /// ABS's `storage-class.metadata`, for classes read back quickly.
    #[serde(default)]
    metadata_storage_class: Option<String>,
}

impl Options {
    /// The override, with the ABS rule that an empty string means AWS.
    fn endpoint(&self) -> Option<&str> {
        self.s3_endpoint_override
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }
}

/// The plugin type exported below.
#[derive(Debug)]
pub struct S3Storage {
    conn: S3Ref,
    min_part_size: u64,
    max_concurrency: Option<u32>,
    authority: String,
}

impl Plugin for S3Storage {
    const NAME: &'static str = "storage-s3";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    type Options = Options;

    fn check_options(o: &Options) -> Result<()> {
        if o.bucket.trim().is_empty() {
            return Err(Error::invalid_config("bucket: must not be empty"));
        }
        if o.s3_region.trim().is_empty() {
            return Err(Error::invalid_config("s3-region: must not be empty"));
        }
        if let Some(ep) = o.endpoint() {
            check_url("s3-endpoint-override", ep)?;
        }
        if o.min_part_size.is_some_and(|s| s < S3_MIN_PART) {
            return Err(Error::invalid_config(format!(
                "min-part-size: S3 needs at least {S3_MIN_PART} bytes"
            )));
        }
        if o.min_part_size.is_some_and(|s| s > S3_MAX_PART) {
            return Err(Error::invalid_config(format!(
                "min-part-size: S3 accepts at most {S3_MAX_PART} bytes"
            )));
        }
        if o.max_async_connections == Some(0) {
            return Err(Error::invalid_config(
                "max-async-connections: must be at least 1",
            ));
        }
        for (field, class) in [
            ("storage-class", &o.storage_class),
            ("metadata-storage-class", &o.metadata_storage_class),
        ] {
            if let Some(c) = class
                && (c.is_empty() || !c.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'))
            {
                return Err(Error::invalid_config(format!(
                    "{field}: {c:?} is not an S3 storage class (e.g. STANDARD_IA)"
                )));
            }
        }
        Ok(())
    }
}

/// `url` with `query` appended (nothing when it is empty).
fn with_query(url: String, query: &[(&str, Option<&str>)]) -> String {
    if query.is_empty() {
        url
    } else {
        format!("{url}?{}", sign::query(query))
    }
}

impl Storage for S3Storage {
    type Upload = S3Upload;
    type Download = BodyDownload;

    fn create(o: Options, secrets: Vec<(String, String)>) -> Result<Self> {
        let (endpoint, style) = match o.endpoint() {
            // S3-compatible services are addressed path-style: MinIO and friends rarely
            // have wildcard DNS for bucket subdomains.
            Some(ep) => (ep.trim_end_matches('/').to_string(), UrlStyle::Path),
            None => (
                format!("https://s3.{}.amazonaws.com", o.s3_region.trim()),
                UrlStyle::VirtualHost,
            ),
        };
        let url: url::Url = endpoint
            .parse()
            .map_err(|e| Error::invalid_config(format!("s3-endpoint-override: {e}")))?;
        let bucket = Bucket::new(
            url,
            style,
            o.bucket.trim().to_string(),
            o.s3_region.trim().to_string(),
        )
        .map_err(|e| Error::invalid_config(format!("bucket: {e}")))?;
        let authority = http::split_url(bucket.base_url().as_str())?
            .authority
            .to_string();
        let signer = match (
            secret(&secrets, "access-key-id"),
            secret(&secrets, "secret-access-key"),
        ) {
            (Some(k), Some(s)) => Some(Signer::new(
                k,
                s,
                secret(&secrets, "session-token"),
                o.s3_region.trim(),
            )),
            (None, None) => None,
            _ => {
                return Err(Error::invalid_config(
                    "access-key-id and secret-access-key must be given together",
                ));
            }
        };
        Ok(S3Storage {
            conn: S3Ref {
                bucket,
                signer,
                root: KeyPrefix::from_path(o.path.as_deref()),
                classes: StorageClasses {
                    data: o.storage_class,
                    metadata: o.metadata_storage_class,
                },
            },
            min_part_size: o.min_part_size.unwrap_or(S3_MIN_PART),
            max_concurrency: o.max_async_connections,
            authority,
        })
    }

    fn capabilities(&self) -> Capabilities {
        let (min, max) = (self.min_part_size, S3_MAX_PART);
        object_store_capabilities(min, max, S3_MAX_PARTS, self.max_concurrency)
    }

    fn allowed_hosts(&self) -> Vec<String> {
        vec![self.authority.clone()]
    }

    fn begin_upload(&self, key: &str, _size_hint: Option<u64>) -> Result<S3Upload> {
        Ok(S3Upload {
            backend: self.conn.clone(),
            key: key.to_string(),
            upload_id: None,
            etags: Vec::new(),
        })
    }

    fn open(&self, key: &str, offset: u64, len: Option<u64>) -> Result<BodyDownload> {
        let url = self.conn.object_url(&self.conn.root.name(key), &[]);
        let get = |range| {
            let headers = [("range", range)];
            self.conn
                .request(Method::Get, &url, &headers, Payload::Signed(&[]))
        };
        // Existence still matters: a missing key is not-found even for 0 bytes. Offset at
        // or past the end of an existing object: an empty read.
        let stat = || self.stat(key).map(drop);
        self.conn
            .open_range("get object", (offset, len), get, stat, false)
    }

    fn list(
        &self,
        prefix: &str,
        recursive: bool,
        cursor: Option<&str>,
        max_results: u32,
    ) -> Result<ListPage> {
        let full_prefix = self.conn.root.name(prefix);
        let max_keys = max_results.clamp(1, 1000).to_string();
        let mut query = vec![
            ("list-type", Some("2")),
            // Keys come back percent-encoded, so any byte survives the XML.
            ("encoding-type", Some("url")),
            ("prefix", Some(full_prefix.as_str())),
            ("max-keys", Some(max_keys.as_str())),
        ];
        if !recursive {
            query.push(("delimiter", Some("/")));
        }
        if let Some(c) = cursor {
            query.push(("continuation-token", Some(c)));
        }
        let req = self.conn.request(
            Method::Get,
            &self.conn.bucket_url(&query),
            &[],
            Payload::Signed(&[]),
        )?;
        let text = self.conn.document("list objects", req, &[&[]])?;
        let parsed = ListObjectsV2::parse_response(&text)
            .map_err(|e| Error::other(format!("list objects: unreadable response: {e}")))?;
        // rusty-s3's parser decodes the keys when the answer says `EncodingType` url.
        let objects = parsed
            .contents
            .iter()
            .map(|c| ObjectInfo {
                key: c.key.clone(),
                size: c.size.unwrap_or(0),
                modified_ms: c.last_modified.as_deref().and_then(rfc3339_ms),
                etag: c.etag.as_deref().map(|e| e.trim_matches('"').to_string()),
            })
            .collect();
        let prefixes = parsed.common_prefixes.into_iter().map(|p| p.prefix);
        let mut page =
            self.conn
                .root
                .list_page(objects, prefixes.collect(), parsed.next_continuation_token);
        // A "directory marker" object (key ending in `/`) is not a valid key.
        page.objects.retain(|o| !o.key.ends_with('/'));
        Ok(page)
    }

    fn stat(&self, key: &str) -> Result<ObjectInfo> {
        let resp = self.conn.head(&self.conn.root.name(key))?;
        Ok(info_from_headers(key, &resp))
    }

    fn delete(&self, key: &str) -> Result<()> {
        let req = self.conn.request(
            Method::Delete,
            &self.conn.object_url(&self.conn.root.name(key), &[]),
            &[],
            Payload::Signed(&[]),
        )?;
        // S3 answers 204 whether or not the key existed: deleting is idempotent.
        self.conn.delete("delete object", req)
    }
}

/// What an upload needs of its backend (the SDK gives uploads no borrow of it).
#[derive(Debug, Clone)]
struct S3Ref {
    bucket: Bucket,
    signer: Option<Signer>,
    root: KeyPrefix,
    classes: StorageClasses,
}

/// Requests are signed as they are built ([`S3Ref::request`]): nothing to add at sending.
impl HttpBackend for S3Ref {
    fn error_summary(&self, body: &str) -> String {
        xml::error_summary(body, ERROR_EXCERPT)
    }
}

impl S3Ref {
    /// The URL of the bucket with `query` (path-style `endpoint/bucket/`, or the bucket's
    /// virtual host on AWS).
    fn bucket_url(&self, query: &[(&str, Option<&str>)]) -> String {
        with_query(self.bucket.base_url().as_str().to_string(), query)
    }

    /// The URL of `object_key` (already under the root) with `query`.
    fn object_url(&self, object_key: &str, query: &[(&str, Option<&str>)]) -> String {
        let base = self.bucket.base_url().as_str();
        let base = base.strip_suffix('/').unwrap_or(base);
        with_query(
            format!("{base}/{}", percent_encode(object_key, true)),
            query,
        )
    }

    /// A request signed with the storage's keys (anonymous without keys).
    fn request(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, String)],
        payload: Payload<'_>,
    ) -> Result<Request> {
        sign::request(self.signer.as_ref(), method, url, headers, payload)
    }

    fn head(&self, object_key: &str) -> Result<http::Response> {
        let req = self.request(
            Method::Head,
            &self.object_url(object_key, &[]),
            &[],
            Payload::Signed(&[]),
        )?;
        self.send("head object", req, &[&[]])
    }

    /// The upload ids of the unfinished multipart uploads of exactly `object_key`
    /// (ListMultipartUploads with the key as prefix; one page of up to 1000 is plenty for one key).
    fn open_uploads(&self, object_key: &str) -> Result<Vec<String>> {
        let req = self.request(
            Method::Get,
            &self.bucket_url(&[("uploads", None), ("prefix", Some(object_key))]),
            &[],
            Payload::Signed(&[]),
        )?;
        let mut resp = self.send_unchecked(req, &[&[]])?;
        if resp.status == 501 {
            // A server without ListMultipartUploads (s3s-fs): nothing more can be found;
            // the upload this process opened was aborted by its id already.
            return Ok(Vec::new());
        }
        if !self.is_success(resp.status) {
            return Err(self.failure("list multipart uploads", Method::Get, resp));
        }
        let text = resp.text(MAX_DOCUMENT)?;
        Ok(xml::uploads_of(&text, object_key))
    }

    fn abort_upload(&self, object_key: &str, id: &str) -> Result<()> {
        let req = self.request(
            Method::Delete,
            &self.object_url(object_key, &[("uploadId", Some(id))]),
            &[],
            Payload::Signed(&[]),
        )?;
        // Already gone (aborted by an earlier try): nothing left behind.
        self.delete("abort multipart upload", req)
    }

    /// The headers of a request that creates object `key` (its storage class: the
    /// metadata class for anything but a data file, when one is set).
    fn create_headers(&self, key: &str) -> Vec<(&'static str, String)> {
        let class = self.classes.for_key(key);
        class.map_or_else(Vec::new, |c| vec![("x-amz-storage-class", c.to_string())])
    }
}

/// A multipart upload; created on the first part.
#[derive(Debug)]
pub struct S3Upload {
    backend: S3Ref,
    key: String,
    upload_id: Option<String>,
    /// ETag of part n at index n-1.
    etags: Vec<String>,
}

impl S3Upload {
    fn object_key(&self) -> String {
        self.backend.root.name(&self.key)
    }

    fn upload_id(&mut self) -> Result<String> {
        if let Some(id) = &self.upload_id {
            return Ok(id.clone());
        }
        let key = self.object_key();
        let req = self.backend.request(
            Method::Post,
            &self.backend.object_url(&key, &[("uploads", None)]),
            &self.backend.create_headers(&key),
            Payload::Signed(&[]),
        )?;
        let mut resp = self.backend.send("create multipart upload", req, &[&[]])?;
        let text = resp.text(MAX_DOCUMENT)?;
        let parsed = CreateMultipartUpload::parse_response(&text).map_err(|e| {
            Error::other(format!("create multipart upload: unreadable response: {e}"))
        })?;
        let id = parsed.upload_id().to_string();
        self.upload_id = Some(id.clone());
        Ok(id)
    }
}

impl Upload for S3Upload {
    fn write_part(&mut self, part_number: u32, data: Vec<u8>) -> Result<()> {
        let n = u16::try_from(part_number)
            .ok()
            .filter(|n| (1..=10_000).contains(n))
            .ok_or_else(|| {
                Error::other(format!(
                    "part {part_number}: S3 allows parts 1 to {S3_MAX_PARTS}"
                ))
            })?;
        let index = part_number as usize - 1;
        if index > self.etags.len() {
            return Err(Error::other(format!(
                "part {part_number} after part {}: parts must come in order",
                self.etags.len()
            )));
        }
        let id = self.upload_id()?;
        let key = self.object_key();
        let number = n.to_string();
        let req = self.backend.request(
            Method::Put,
            &self.backend.object_url(
                &key,
                &[("partNumber", Some(&number)), ("uploadId", Some(&id))],
            ),
            &[],
            Payload::Unsigned,
        )?;
        let resp = self.backend.send("upload part", req, &[&data])?;
        let etag = resp
            .header("etag")
            .map(str::to_string)
            .ok_or_else(|| Error::Temporary("upload part: response without ETag".into()))?;
        if index == self.etags.len() {
            self.etags.push(etag);
        } else {
            // A re-sent part: S3 keeps the latest upload of a part number.
            self.etags[index] = etag;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<ObjectInfo> {
        let key = self.object_key();
        let Some(id) = self.upload_id.clone() else {
            // No part was written: an empty object.
            let req = self.backend.request(
                Method::Put,
                &self.backend.object_url(&key, &[]),
                &self.backend.create_headers(&key),
                Payload::Signed(&[]),
            )?;
            let resp = self.backend.send("put object", req, &[&[]])?;
            return Ok(ObjectInfo {
                key: self.key.clone(),
                size: 0,
                modified_ms: None,
                etag: resp.header("etag").map(|e| e.trim_matches('"').to_string()),
            });
        };
        let body = xml::complete_body(&self.etags);
        let req = self.backend.request(
            Method::Post,
            &self.backend.object_url(&key, &[("uploadId", Some(&id))]),
            &[("content-type", "application/xml".to_string())],
            Payload::Signed(body.as_bytes()),
        )?;
        let mut resp = self
            .backend
            .send("complete multipart upload", req, &[body.as_bytes()])?;
        // S3 can report a failed completion inside a 200 response.
        let text = resp.text(MAX_DOCUMENT)?;
        if let Some(err) = xml::embedded_error(&text, ERROR_EXCERPT) {
            return Err(Error::Temporary(format!(
                "complete multipart upload: {err}"
            )));
        }
        let resp = self.backend.head(&key)?;
        Ok(info_from_headers(&self.key, &resp))
    }

    /// Aborts this upload, and every other unfinished multipart upload of the same key: the
    /// WIT's "no temporary data behind" covers what a killed process left of the key, which
    /// the host discards by beginning and aborting an upload of it after a crash.
    fn abort(&mut self) -> Result<()> {
        let key = self.object_key();
        if let Some(id) = self.upload_id.clone() {
            self.backend.abort_upload(&key, &id)?;
            self.upload_id = None;
        }
        for id in self.backend.open_uploads(&key)? {
            self.backend.abort_upload(&key, &id)?;
        }
        Ok(())
    }
}

export_plugin!(storage: S3Storage);

#[cfg(test)]
mod tests;
