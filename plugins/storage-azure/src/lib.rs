//! `storage-azure`: objects as block blobs in one Azure Blob Storage container.
//!
//! Transport is `wasi:http` through the SDK's [`http`] client; the host admits only the
//! account endpoint. Requests carry a Shared Key signature (HMAC-SHA256 over the canonical
//! request, computed here with the account key the host passes as a secret).
//! `azure_storage_blobs` is not used: it brings its own tokio/reqwest transport, which does
//! not build for `wasm32-wasip2`, and its successor has no Shared Key support.
//!
//! Uploads: one `Put Block` per `write-part` (block ids carry a per-upload random tag and the
//! part number, so a re-sent part replaces its block and concurrent uploads of one key never
//! mix), `Put Block List` on `finish` makes the blob visible at once. The latest part is held
//! until the next one arrives, so a one-part object is a single `Put Blob`. Uncommitted
//! blocks are never visible; Azure discards them (after a week, or when the blob is next
//! committed, which is also why two multi-part uploads racing for one key let only the first
//! committer succeed).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aerospike_backup_plugin::http::backend::{
    BodyDownload, ERROR_EXCERPT, HeldPart, HttpBackend, KeyPrefix, StorageClasses, check_url,
    info_from_headers, object_store_capabilities, secret,
};
use aerospike_backup_plugin::http::text::{
    http_date, http_date_ms, percent_decode, percent_encode,
};
use aerospike_backup_plugin::http::{self, Method, Request};
use aerospike_backup_plugin::{
    Capabilities, Error, ListPage, ObjectInfo, Plugin, Result, Storage, Upload, export_plugin,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use schemars::JsonSchema;
use serde::Deserialize;
use sha2::Sha256;

mod text;

/// Storage service REST version the requests are written against.
const API_VERSION: &str = "2021-08-06";
/// Azure: at most 50 000 blocks of at most 4000 MiB.
const MAX_BLOCKS: u32 = 50_000;
const MAX_BLOCK: u64 = 4000 * 1024 * 1024;
/// Default block size when the config names none (DESIGN D11: 16 MiB parts).
const DEFAULT_BLOCK: u64 = 16 * 1024 * 1024;

/// The options; the schema in `plugin-info` is derived from it.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[schemars(title = "storage-azure options")]
pub struct Options {
    /// Blob service URL, e.g. https://acct.blob.core.windows.net (Azurite: http://127.0.0.1:10000/devstoreaccount1).
    endpoint: String,
    /// Container name (3-63 lowercase letters, digits or '-').
    container_name: String,
    /// Blob name prefix.
    #[serde(default)]
    path: Option<String>,
    /// For Shared Key; default: the first label of the endpoint host.
    #[serde(default)]
    account_name: Option<String>,
    /// Block size in bytes.
    #[serde(default)]
    min_part_size: Option<u64>,
    /// Access tier of written blobs: Hot, Cool, Cold or Archive; of the data files (`.asb`)
    /// only when `metadata-storage-class` is given.
    #[serde(default)]
    storage_class: Option<String>,
    /// Access tier of every blob that is not a data file (metadata, checksums, sidecars):
    /// ABS's `storage-class.metadata`.
    #[serde(default)]
    metadata_storage_class: Option<String>,
}

/// The plugin type exported below.
#[derive(Debug)]
pub struct AzureStorage {
    conn: Conn,
    block_size: u64,
    authority: String,
}

impl Plugin for AzureStorage {
    const NAME: &'static str = "storage-azure";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    type Options = Options;

    fn check_options(o: &Options) -> Result<()> {
        check_url("endpoint", &o.endpoint)?;
        let c = &o.container_name;
        if c.len() < 3
            || c.len() > 63
            || !c
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(Error::invalid_config(format!(
                "container-name: {c:?} must be 3-63 lowercase letters, digits or '-'"
            )));
        }
        if o.min_part_size.is_some_and(|s| s == 0 || s > MAX_BLOCK) {
            return Err(Error::invalid_config(format!(
                "min-part-size: must be between 1 and {MAX_BLOCK} bytes"
            )));
        }
        for (field, tier) in [
            ("storage-class", &o.storage_class),
            ("metadata-storage-class", &o.metadata_storage_class),
        ] {
            if let Some(t) = tier
                && !["Hot", "Cool", "Cold", "Archive"].contains(&t.as_str())
            {
                return Err(Error::invalid_config(format!(
                    "{field}: {t:?} is not an access tier (Hot, Cool, Cold, Archive)"
                )));
            }
        }
        Ok(())
    }
}

/// How requests are authorised.
#[derive(Clone)]
enum Auth {
    SharedKey {
        account: String,
        key: Vec<u8>,
    },
    Bearer(String),
    /// A shared access signature: its query parameters go on every request's URL.
    Sas(String),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::SharedKey { account, .. } => write!(f, "SharedKey({account}, **redacted**)"),
            Auth::Bearer(_) => f.write_str("Bearer(**redacted**)"),
            Auth::Sas(_) => f.write_str("Sas(**redacted**)"),
        }
    }
}

/// Everything a request needs; shared by the backend and its uploads.
#[derive(Debug, Clone)]
struct Conn {
    /// `https://acct.blob.core.windows.net` or `http://127.0.0.1:10000/devstoreaccount1`.
    endpoint: String,
    container: String,
    root: KeyPrefix,
    auth: Auth,
    /// Access tiers.
    tiers: StorageClasses,
}

impl Conn {
    fn blob_url(&self, key: &str, query: &str) -> String {
        let name = percent_encode(&self.root.name(key), true);
        let q = if query.is_empty() {
            String::new()
        } else {
            format!("?{query}")
        };
        format!("{}/{}/{name}{q}", self.endpoint, self.container)
    }

    fn container_url(&self, query: &str) -> String {
        format!("{}/{}?{query}", self.endpoint, self.container)
    }
}

impl HttpBackend for Conn {
    fn error_summary(&self, body: &str) -> String {
        text::error_summary(body, ERROR_EXCERPT)
    }

    /// The version and date headers, then the Shared Key signature, bearer token or SAS.
    fn authorize(&self, mut req: Request, body_len: usize) -> Result<Request> {
        req.headers
            .push(("x-ms-version".into(), API_VERSION.into()));
        req.headers
            .push(("x-ms-date".into(), http_date(SystemTime::now())));
        match &self.auth {
            Auth::SharedKey { account, key } => {
                let sig = shared_key_signature(&req, body_len, account, key)?;
                req.headers
                    .push(("authorization".into(), format!("SharedKey {account}:{sig}")));
            }
            Auth::Bearer(token) => {
                req.headers
                    .push(("authorization".into(), format!("Bearer {token}")));
            }
            Auth::Sas(sas) => {
                let sep = if req.url.contains('?') { '&' } else { '?' };
                req.url = format!("{}{sep}{sas}", req.url);
            }
        }
        Ok(req)
    }
}

/// Shared Key: HMAC-SHA256 of the canonical request with the account key, base64.
fn shared_key_signature(
    req: &Request,
    body_len: usize,
    account: &str,
    key: &[u8],
) -> Result<String> {
    let header = |name: &str| {
        req.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    };
    let url = http::split_url(&req.url)?;
    let (path, query) = url
        .path_and_query
        .split_once('?')
        .unwrap_or((url.path_and_query, ""));
    let mut ms: Vec<(String, &str)> = req
        .headers
        .iter()
        .filter(|(n, _)| n.to_ascii_lowercase().starts_with("x-ms-"))
        .map(|(n, v)| (n.to_ascii_lowercase(), v.trim()))
        .collect();
    ms.sort();
    let mut canonical_headers = String::new();
    for (n, v) in ms {
        canonical_headers.push_str(&format!("{n}:{v}\n"));
    }
    let mut resource = format!("/{account}{}", percent_decode(path));
    let mut params: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k).to_ascii_lowercase(), percent_decode(v))
        })
        .collect();
    params.sort();
    for (k, v) in params {
        resource.push_str(&format!("\n{k}:{v}"));
    }
    let length = if body_len == 0 {
        String::new()
    } else {
        body_len.to_string()
    };
    let to_sign = format!(
        "{}\n{}\n{}\n{}\n{}\n{}\n\n{}\n{}\n{}\n{}\n{}\n{canonical_headers}{resource}",
        req.method.as_str(),
        header("content-encoding"),
        header("content-language"),
        length,
        header("content-md5"),
        header("content-type"),
        header("if-modified-since"),
        header("if-match"),
        header("if-none-match"),
        header("if-unmodified-since"),
        header("range"),
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(key)
        .map_err(|e| Error::invalid_config(format!("account-key: {e}")))?;
    mac.update(to_sign.as_bytes());
    Ok(B64.encode(mac.finalize().into_bytes()))
}

impl Storage for AzureStorage {
    type Upload = AzureUpload;
    type Download = BodyDownload;

    fn create(o: Options, secrets: Vec<(String, String)>) -> Result<Self> {
        let endpoint = o.endpoint.trim().trim_end_matches('/').to_string();
        let authority = http::split_url(&endpoint)?.authority.to_string();
        let auth = if let Some(key) = secret(&secrets, "account-key") {
            let account = o
                .account_name
                .clone()
                .or_else(|| authority.split('.').next().map(str::to_string))
                .filter(|a| !a.is_empty())
                .ok_or_else(|| Error::invalid_config("account-name: required with account-key"))?;
            let key = B64
                .decode(key.trim())
                .map_err(|_| Error::invalid_config("account-key: not base64"))?;
            Auth::SharedKey { account, key }
        } else if let Some(token) = secret(&secrets, "bearer-token") {
            // An AAD access token the host obtained for the client-secret credentials.
            Auth::Bearer(token.to_string())
        } else if let Some(sas) = secret(&secrets, "sas-token") {
            let sas = sas.trim().trim_start_matches('?');
            if !sas.contains("sig=") {
                return Err(Error::invalid_config(
                    "sas-token: not a shared access signature (no sig= parameter)",
                ));
            }
            Auth::Sas(sas.to_string())
        } else {
            return Err(Error::invalid_config(
                "account-key (Shared Key), a SAS token or an AAD token is required",
            ));
        };
        Ok(AzureStorage {
            conn: Conn {
                endpoint,
                container: o.container_name,
                root: KeyPrefix::from_path(o.path.as_deref()),
                auth,
                tiers: StorageClasses {
                    data: o.storage_class,
                    metadata: o.metadata_storage_class,
                },
            },
            block_size: o.min_part_size.unwrap_or(DEFAULT_BLOCK),
            authority,
        })
    }

    fn capabilities(&self) -> Capabilities {
        object_store_capabilities(self.block_size, MAX_BLOCK, MAX_BLOCKS, None)
    }

    fn allowed_hosts(&self) -> Vec<String> {
        vec![self.authority.clone()]
    }

    fn begin_upload(&self, key: &str, _size_hint: Option<u64>) -> Result<AzureUpload> {
        Ok(AzureUpload {
            blob: StagedBlob {
                conn: self.conn.clone(),
                key: key.to_string(),
                tag: text::random_tag(),
                parts: 0,
            },
            held: HeldPart::default(),
        })
    }

    fn open(&self, key: &str, offset: u64, len: Option<u64>) -> Result<BodyDownload> {
        let url = self.conn.blob_url(key, "");
        let get = |range| Ok(Request::new(Method::Get, url).header("x-ms-range", range));
        // Offset at or past the end of an existing blob: an empty read.
        let stat = || self.stat(key).map(drop);
        self.conn
            .open_range("get blob", (offset, len), get, stat, false)
    }

    fn list(
        &self,
        prefix: &str,
        recursive: bool,
        cursor: Option<&str>,
        max_results: u32,
    ) -> Result<ListPage> {
        let mut q = format!(
            "restype=container&comp=list&prefix={}&maxresults={}",
            percent_encode(&self.conn.root.name(prefix), false),
            max_results.clamp(1, 5000)
        );
        if !recursive {
            q.push_str("&delimiter=%2F");
        }
        if let Some(c) = cursor {
            q.push_str(&format!("&marker={}", percent_encode(c, false)));
        }
        let doc = self.conn.document(
            "list blobs",
            Request::new(Method::Get, self.conn.container_url(&q)),
            &[&[]],
        )?;
        let parsed = text::parse_listing(&doc);
        let objects = parsed
            .blobs
            .into_iter()
            .map(|b| ObjectInfo {
                key: b.name,
                size: b.size,
                modified_ms: b.modified.as_deref().and_then(http_date_ms),
                etag: b.etag.map(|e| e.trim_matches('"').to_string()),
            })
            .collect();
        Ok(self
            .conn
            .root
            .list_page(objects, parsed.prefixes, parsed.next_marker))
    }

    fn stat(&self, key: &str) -> Result<ObjectInfo> {
        let resp = self.conn.send(
            "get blob properties",
            Request::new(Method::Head, self.conn.blob_url(key, "")),
            &[&[]],
        )?;
        Ok(info_from_headers(key, &resp))
    }

    fn delete(&self, key: &str) -> Result<()> {
        self.conn.delete(
            "delete blob",
            Request::new(Method::Delete, self.conn.blob_url(key, "")),
        )
    }
}

/// A block blob being staged.
#[derive(Debug)]
pub struct AzureUpload {
    blob: StagedBlob,
    /// The latest part, held until the next one arrives: an object of one part is then
    /// written by a single Put Blob at `finish` (atomic, and immune to a concurrent writer
    /// of the same key discarding staged blocks).
    held: HeldPart,
}

/// The blob an upload stages its blocks for.
#[derive(Debug)]
struct StagedBlob {
    conn: Conn,
    key: String,
    /// Random per upload: block ids of two concurrent uploads of one key never collide.
    tag: String,
    /// Parts staged as blocks so far (1..=parts).
    parts: u32,
}

impl StagedBlob {
    fn block_id(&self, part: u32) -> String {
        // Same length for every block of a blob, as Azure requires.
        B64.encode(format!("{}-{part:08}", self.tag))
    }

    fn stage(&mut self, part: u32, data: &[u8]) -> Result<()> {
        let q = format!(
            "comp=block&blockid={}",
            percent_encode(&self.block_id(part), false)
        );
        self.conn.send(
            "put block",
            Request::new(Method::Put, self.conn.blob_url(&self.key, &q)),
            &[data],
        )?;
        self.parts = self.parts.max(part);
        Ok(())
    }

    /// The blob's access tier: the metadata tier for anything but a data file, when set.
    fn with_tier(&self, req: Request) -> Request {
        match self.conn.tiers.for_key(&self.key) {
            Some(t) => req.header("x-ms-access-tier", t),
            None => req,
        }
    }
}

impl Upload for AzureUpload {
    fn write_part(&mut self, part_number: u32, data: Vec<u8>) -> Result<()> {
        let latest = self.held.number().unwrap_or(self.blob.parts);
        // A re-sent latest part replaces the held copy; the next one stages the held part
        // (which stays held if that fails, for a re-sent part or a retried finish).
        if self.held.number() != Some(part_number)
            && (part_number != latest + 1 || part_number > MAX_BLOCKS)
        {
            return Err(Error::other(format!(
                "part {part_number} after part {latest}: parts come in order, 1 to {MAX_BLOCKS}"
            )));
        }
        let blob = &mut self.blob;
        self.held
            .push(part_number, data, |n, prev| blob.stage(n, prev))
    }

    fn finish(&mut self) -> Result<ObjectInfo> {
        let blob = &mut self.blob;
        if blob.parts == 0 {
            // Zero or one part: one Put Blob publishes it whole.
            let req = blob.with_tier(
                Request::new(Method::Put, blob.conn.blob_url(&blob.key, ""))
                    .header("x-ms-blob-type", "BlockBlob"),
            );
            blob.conn.send("put blob", req, &[self.held.data()])?;
        } else {
            self.held.flush(|n, prev| blob.stage(n, prev))?;
            let mut body = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>");
            for n in 1..=blob.parts {
                body.push_str(&format!("<Latest>{}</Latest>", blob.block_id(n)));
            }
            body.push_str("</BlockList>");
            let req = blob.with_tier(
                Request::new(Method::Put, blob.conn.blob_url(&blob.key, "comp=blocklist"))
                    .header("content-type", "application/xml"),
            );
            blob.conn
                .send("put block list", req, &[body.as_bytes()])
                .map_err(|e| match e {
                    // Committing a blob drops every uncommitted block: a concurrent writer
                    // of the same key won the race and this upload's blocks are gone.
                    Error::Other(m) if m.contains("InvalidBlockList") => Error::Other(format!(
                        "{m} (another upload of the same blob committed first)"
                    )),
                    other => other,
                })?;
        }
        let resp = blob.conn.send(
            "get blob properties",
            Request::new(Method::Head, blob.conn.blob_url(&blob.key, "")),
            &[&[]],
        )?;
        Ok(info_from_headers(&blob.key, &resp))
    }

    fn abort(&mut self) -> Result<()> {
        // Staged blocks are invisible and Azure has no call to drop them: they expire.
        self.blob.parts = 0;
        self.held.clear();
        Ok(())
    }
}

/// Used by `text::random_tag` (no `rand` in the guest: std's hasher seeds from wasi:random).
fn now_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_nanos()
}

export_plugin!(storage: AzureStorage);

#[cfg(test)]
mod tests;
