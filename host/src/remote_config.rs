//! Remote configuration (`-r`, as ABS): the `--config` file is a storage descriptor — one
//! `local-storage`, `s3-storage`, `azure-storage` or `gcp-storage` entry whose `path` is the
//! configuration file itself — and the configuration is read from and saved to that storage
//! through the same plugins as backups.

use std::sync::Arc;

use futures::future::BoxFuture;

use crate::config::{RemoteDocument, Storage as StorageConfig};
use crate::plugins::{Registry, Storage};

use crate::storage::files::put_object;
use crate::storage::layout::read_object;
use crate::storage::wiring::open_storage;

/// Configurations larger than this are refused on read (ABS configs are a few KiB).
const MAX_CONFIG_BYTES: u64 = 16 << 20;

/// The configuration document at `key` of a storage backend.
pub struct StorageDocument {
    storage: Arc<dyn Storage>,
    key: String,
    label: String,
}

impl std::fmt::Debug for StorageDocument {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.label)
    }
}

/// Splits `a/b/config.yml` into the storage root `a/b` and the key `config.yml`.
fn split(path: &str) -> Option<(Option<String>, String)> {
    let path = path.trim_end_matches('/');
    match path.rsplit_once('/') {
        Some((dir, file)) if !file.is_empty() => {
            let root = match dir {
                "" => path.starts_with('/').then(|| "/".to_string()),
                d => Some(d.to_string()),
            };
            Some((root, file.to_string()))
        }
        None if !path.is_empty() => Some((None, path.to_string())),
        _ => None,
    }
}

/// Opens the document a descriptor (the `--config` file's text) names. Its credentials are
/// resolved as a job's are (Secret Agent, GCS and Azure AD tokens, AWS web identity).
///
/// # Errors
/// A descriptor that does not parse, has no file `path`, names a `plugin-storage`, or whose
/// storage cannot be opened; the message names the descriptor's field.
pub async fn open(descriptor: &str, plugins: &Registry) -> Result<StorageDocument, String> {
    let mut storage: StorageConfig = serde_yaml::from_str(descriptor).map_err(|e| {
        format!("remote configuration descriptor: expected one storage entry (local-storage, s3-storage, azure-storage or gcp-storage): {e}")
    })?;
    let missing = |kind: &str| format!("{kind}.path: the configuration file's path is required");
    let (label, key) = match &mut storage {
        StorageConfig::LocalStorage(l) => {
            let (dir, file) = split(&l.path).ok_or_else(|| missing("local-storage"))?;
            let label = format!("local-storage {}", l.path);
            l.path = dir.unwrap_or_else(|| ".".into());
            (label, file)
        }
        StorageConfig::S3Storage(s) => {
            let path = s.path.clone().unwrap_or_default();
            let (dir, file) = split(&path).ok_or_else(|| missing("s3-storage"))?;
            s.path = dir;
            (format!("s3://{}/{path}", s.bucket), file)
        }
        StorageConfig::AzureStorage(a) => {
            let path = a.path.clone().unwrap_or_default();
            let (dir, file) = split(&path).ok_or_else(|| missing("azure-storage"))?;
            a.path = dir;
            (
                format!("azure container {}: {path}", a.container_name),
                file,
            )
        }
        StorageConfig::GcpStorage(g) => {
            let path = g.path.clone().unwrap_or_default();
            let (dir, file) = split(&path).ok_or_else(|| missing("gcp-storage"))?;
            g.path = dir;
            (format!("gs://{}/{path}", g.bucket_name), file)
        }
        StorageConfig::PluginStorage(_) => {
            return Err(
                "remote configuration descriptor: plugin-storage is not supported here; use one of the built-in storage types".into(),
            );
        }
    };
    let storage = crate::jobs::job_secrets::resolve_storage(
        &std::collections::BTreeMap::new(),
        "remote configuration",
        &storage,
        None,
    )
    .await
    .map_err(|e| format!("remote configuration ({label}): {e}"))?;
    let storage = open_storage(plugins, &storage)
        .map_err(|e| format!("remote configuration ({label}): {e}"))?;
    Ok(StorageDocument {
        storage,
        key,
        label,
    })
}

impl RemoteDocument for StorageDocument {
    fn describe(&self) -> String {
        self.label.clone()
    }

    fn read(&self) -> BoxFuture<'_, Result<Vec<u8>, String>> {
        Box::pin(async move {
            read_object(&self.storage, &self.key, MAX_CONFIG_BYTES)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn write(&self, bytes: Vec<u8>) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            put_object(&self.storage, &self.key, bytes)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

/// A configuration read from an `http://` or `https://` URL (`-c https://...`, as ABS):
/// read-only, so every change through the API is refused with the reason.
#[derive(Debug)]
pub struct UrlDocument {
    url: String,
}

impl UrlDocument {
    /// # Errors
    /// `url` is not an http(s) URL.
    pub fn new(url: &str) -> Result<Self, String> {
        let uri: http::Uri = url.parse().map_err(|_| format!("{url:?} is not a URL"))?;
        crate::outbound::authority_of(&uri)
            .ok_or_else(|| "a configuration URL must start with http:// or https://".to_string())?;
        Ok(UrlDocument {
            url: url.to_string(),
        })
    }
}

/// The URL without user info or query: either may carry a credential (a presigned URL).
pub fn redact_url(url: &str) -> String {
    let Ok(uri) = url.parse::<http::Uri>() else {
        return "(configuration URL)".into();
    };
    let host = uri.authority().map_or("", |a| {
        a.as_str().rsplit_once('@').map_or(a.as_str(), |(_, h)| h)
    });
    format!(
        "{}://{host}{}{}",
        uri.scheme_str().unwrap_or("http"),
        uri.path(),
        if uri.query().is_some() { "?…" } else { "" }
    )
}

impl RemoteDocument for UrlDocument {
    fn describe(&self) -> String {
        redact_url(&self.url)
    }

    fn read(&self) -> BoxFuture<'_, Result<Vec<u8>, String>> {
        Box::pin(async move {
            let answer = crate::outbound::fetch(
                http::Method::GET,
                &self.url,
                &[(
                    "accept",
                    "application/yaml, application/json, text/plain, */*",
                )],
                Vec::new(),
                MAX_CONFIG_BYTES as usize,
                std::time::Duration::from_secs(30),
            )
            .await
            .map_err(|e| e.replace(&self.url, &self.describe()))?;
            if answer.status != 200 {
                return Err(format!("HTTP {}", answer.status));
            }
            Ok(answer.body.to_vec())
        })
    }

    fn write(&self, _bytes: Vec<u8>) -> BoxFuture<'_, Result<(), String>> {
        let why = self.read_only().unwrap_or_default();
        Box::pin(async move { Err(why) })
    }

    fn read_only(&self) -> Option<String> {
        Some(format!(
            "it was loaded from {}; change it there and call POST /v1/config/apply",
            self.describe()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::{redact_url, split};

    #[test]
    fn urls_lose_credentials_in_descriptions() {
        assert_eq!(
            redact_url("https://user:pw@cfg.example:8443/abs/config.yml?X-Amz-Signature=abc"),
            "https://cfg.example:8443/abs/config.yml?…"
        );
        assert_eq!(
            redact_url("http://127.0.0.1:9000/c.yml"),
            "http://127.0.0.1:9000/c.yml"
        );
    }

    #[test]
    fn descriptor_paths_split_into_root_and_file() {
        assert_eq!(split("config.yml"), Some((None, "config.yml".into())));
        assert_eq!(
            split("abs/prod/config.yml"),
            Some((Some("abs/prod".into()), "config.yml".into()))
        );
        assert_eq!(
            split("/etc/abs/abs.yml"),
            Some((Some("/etc/abs".into()), "abs.yml".into()))
        );
        assert_eq!(
            split("/abs.yml"),
            Some((Some("/".into()), "abs.yml".into()))
        );
        assert_eq!(split(""), None);
        assert_eq!(split("dir/"), Some((None, "dir".into())));
    }
}
