//! `storage:` one storage kind per entry (local, S3, Azure, GCS, a storage plugin), read
//! through a shadow struct so ABS's single-key form works in YAML and JSON alike.

use super::super::given::Given;
use super::super::serde_util::opt_number;
use super::{Secret, SecretAgent, empty_object};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// `storage.<name>:` exactly one storage kind, named by its key.
// Read and written through `StorageRepr`: serde_yaml would otherwise expect YAML tags
// (`!s3-storage`) for an enum, while ABS files use a single key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(
    rename_all = "kebab-case",
    try_from = "StorageRepr",
    into = "StorageRepr"
)]
pub enum Storage {
    /// A directory on the service's machine.
    LocalStorage(LocalStorage),
    /// An S3 (or S3-compatible) bucket.
    S3Storage(S3Storage),
    /// An Azure Blob container.
    AzureStorage(AzureStorage),
    /// A Google Cloud Storage bucket.
    GcpStorage(GcpStorage),
    /// Our extension: any storage plugin with its own options.
    PluginStorage(PluginStorage),
}

/// The on-the-wire shape of [`Storage`]: one optional field per kind.
#[derive(Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct StorageRepr {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    local_storage: Option<LocalStorage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    s3_storage: Option<S3Storage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    azure_storage: Option<AzureStorage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gcp_storage: Option<GcpStorage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    plugin_storage: Option<PluginStorage>,
}

impl TryFrom<StorageRepr> for Storage {
    type Error = String;

    fn try_from(r: StorageRepr) -> Result<Self, String> {
        let mut found = Vec::new();
        if let Some(s) = r.local_storage {
            found.push(Storage::LocalStorage(s));
        }
        if let Some(s) = r.s3_storage {
            found.push(Storage::S3Storage(s));
        }
        if let Some(s) = r.azure_storage {
            found.push(Storage::AzureStorage(s));
        }
        if let Some(s) = r.gcp_storage {
            found.push(Storage::GcpStorage(s));
        }
        if let Some(s) = r.plugin_storage {
            found.push(Storage::PluginStorage(s));
        }
        match found.len() {
            1 => Ok(found.remove(0)),
            0 => Err("exactly one of local-storage, s3-storage, azure-storage, gcp-storage, plugin-storage is required".into()),
            _ => Err(format!(
                "only one storage type may be set, found {}",
                found.iter().map(Storage::kind).collect::<Vec<_>>().join(" and ")
            )),
        }
    }
}

impl From<Storage> for StorageRepr {
    fn from(s: Storage) -> Self {
        let mut r = StorageRepr::default();
        match s {
            Storage::LocalStorage(s) => r.local_storage = Some(s),
            Storage::S3Storage(s) => r.s3_storage = Some(s),
            Storage::AzureStorage(s) => r.azure_storage = Some(s),
            Storage::GcpStorage(s) => r.gcp_storage = Some(s),
            Storage::PluginStorage(s) => r.plugin_storage = Some(s),
        }
        r
    }
}

impl Storage {
    /// The config key of this storage kind, e.g. `s3-storage`.
    pub fn kind(&self) -> &'static str {
        match self {
            Storage::LocalStorage(_) => "local-storage",
            Storage::S3Storage(_) => "s3-storage",
            Storage::AzureStorage(_) => "azure-storage",
            Storage::GcpStorage(_) => "gcp-storage",
            Storage::PluginStorage(_) => "plugin-storage",
        }
    }

    /// The Secret Agent this storage names, if any.
    pub fn secret_agent_name(&self) -> Option<&str> {
        match self {
            Storage::S3Storage(s) => s.secret_agent_name.as_deref(),
            Storage::AzureStorage(s) => s.secret_agent_name.as_deref(),
            Storage::GcpStorage(s) => s.secret_agent_name.as_deref(),
            Storage::LocalStorage(_) | Storage::PluginStorage(_) => None,
        }
    }
}

/// `local-storage:`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct LocalStorage {
    /// Root directory of the backups (required). Relative paths resolve against the working dir.
    pub path: String,
}

/// `s3-storage:`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct S3Storage {
    /// Bucket (required).
    pub bucket: String,
    /// Region (required).
    pub s3_region: String,
    /// Root prefix inside the bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Profile in the shared AWS config files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_profile: Option<String>,
    /// Endpoint of an S3-compatible service; empty means AWS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_endpoint_override: Option<String>,
    /// Log level of the S3 client. Default FATAL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_log_level: Option<String>,
    /// Static access key id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    /// Static secret access key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_access_key: Option<Secret>,
    /// The session token of temporary keys the host obtained at job start (web identity);
    /// held in the job's resolved copy only, never read from or written to a config.
    #[serde(skip)]
    pub session_token: Option<Secret>,
    /// Part size of multipart uploads, bytes. Default 50 MB (`min_part_size` accepted).
    #[serde(
        default,
        alias = "min_part_size",
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub min_part_size: Option<u64>,
    /// Concurrent requests to S3 (`max_async_connections` accepted).
    #[serde(
        default,
        alias = "max_async_connections",
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_async_connections: Option<u32>,
    /// Storage class of written objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<StorageClass>,
    /// Inline Secret Agent for this storage's secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_agent: Option<SecretAgent>,
    /// Name of a configured Secret Agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_agent_name: Option<String>,
}

/// `azure-storage:`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct AzureStorage {
    /// Blob service endpoint URL (required).
    pub endpoint: String,
    /// Container (required).
    pub container_name: String,
    /// Root prefix inside the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Account name for Shared Key authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_name: Option<String>,
    /// Account key for Shared Key authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_key: Option<Secret>,
    /// Tenant id for AAD authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// Client id for AAD authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Client secret for AAD authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<Secret>,
    /// Azure AD authority for the client-secret grant (ours). Default: `AZURE_AUTHORITY_HOST`,
    /// else `https://login.microsoftonline.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority_host: Option<String>,
    /// The AAD access token the client secret was exchanged for at job start; held in the
    /// job's resolved copy only, never read from or written to a config.
    #[serde(skip)]
    pub bearer_token: Option<Secret>,
    /// Block size of uploads, bytes.
    #[serde(
        default,
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub min_part_size: Option<u64>,
    /// Access tier of written blobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<StorageClass>,
    /// Inline Secret Agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_agent: Option<SecretAgent>,
    /// Name of a configured Secret Agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_agent_name: Option<String>,
}

/// `gcp-storage:`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct GcpStorage {
    /// Bucket (required).
    pub bucket_name: String,
    /// Service-account JSON key file (v2 spelling `key-file` accepted).
    #[serde(default, alias = "key-file", skip_serializing_if = "Option::is_none")]
    pub key_file_path: Option<String>,
    /// Service-account JSON key itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Secret>,
    /// The OAuth access token the service-account key was exchanged for at job start; held
    /// in the job's resolved copy only, never read from or written to a config.
    #[serde(skip)]
    pub access_token: Option<Secret>,
    /// Root prefix inside the bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Alternative endpoint (emulators, private endpoints).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Chunk size of uploads, bytes.
    #[serde(
        default,
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub min_part_size: Option<u64>,
    /// Storage class of written objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<String>,
    /// Inline Secret Agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_agent: Option<SecretAgent>,
    /// Name of a configured Secret Agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_agent_name: Option<String>,
}

/// `plugin-storage:` (our extension) a storage plugin chosen by name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct PluginStorage {
    /// A default storage plugin or a name under top-level `plugins:`.
    pub plugin: String,
    /// Options, validated against the plugin's JSON Schema.
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    pub options: serde_json::Value,
    /// Credentials handed to the plugin, never logged or shown.
    #[serde(default, skip_serializing_if = "Given::is_absent")]
    #[schema(value_type = BTreeMap<String, Secret>)]
    pub secrets: Given<BTreeMap<String, Secret>>,
}

/// `storage-class` of S3 and Azure storage: one class (access tier) for every object, or
/// ABS's `{data, metadata}`: `data` for the `.asb` files, `metadata` for the rest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum StorageClass {
    One(String),
    Split(SplitStorageClass),
}

/// `storage-class: {data, metadata}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct SplitStorageClass {
    /// The class of the data files; absent: the store's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// The class of metadata and sidecar files (quick to read back).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<String>,
}

impl StorageClass {
    /// The data files' class and the other files' class.
    pub fn classes(&self) -> (Option<&str>, Option<&str>) {
        match self {
            StorageClass::One(c) => (Some(c), None),
            StorageClass::Split(s) => (s.data.as_deref(), s.metadata.as_deref()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_is_tagged_by_its_key() {
        let s: Storage = serde_yaml::from_str("local-storage: {path: /x}").unwrap();
        assert_eq!(s.kind(), "local-storage");
        let e = serde_yaml::from_str::<Storage>("s4-storage: {path: /x}").unwrap_err();
        assert!(e.to_string().contains("s4-storage"), "{e}");
        let e = serde_yaml::from_str::<Storage>(
            "local-storage: {path: /x}\ngcp-storage: {bucket-name: b}",
        )
        .unwrap_err();
        assert!(e.to_string().contains("only one storage type"), "{e}");
        assert!(serde_yaml::from_str::<Storage>("{}").is_err());
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json, serde_json::json!({"local-storage": {"path": "/x"}}));
    }
}
