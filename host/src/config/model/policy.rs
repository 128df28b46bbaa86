//! `backup-policies:` how a backup runs: parallelism, timeouts, retries, retention,
//! compression, encryption or an explicit codec pipeline.

use super::super::given::Spelled;
use super::super::serde_util::{config_enum, opt_number};
use super::empty_object;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `backup-policies.<name>:` how a backup runs. Every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct BackupPolicy {
    /// Scans run in parallel by a routine. Default 8.
    #[serde(
        default,
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub parallel: Option<u32>,
    /// Files written in parallel. Default: `parallel`.
    #[serde(
        default,
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub parallel_write: Option<u32>,
    /// Socket timeout of scans, ms. Default 600000.
    #[serde(
        default,
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub socket_timeout: Option<u64>,
    /// Total timeout of scans, ms; 0 = none. Default 0.
    #[serde(
        default,
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub total_timeout: Option<u64>,
    /// Records per second over the routine; 0 = unlimited.
    #[serde(
        default,
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub records_per_second: Option<u64>,
    /// Bandwidth of writes to storage, MiB/s; 0 = unlimited.
    #[serde(
        default,
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub bandwidth: Option<u64>,
    /// Size at which a backup file is rotated, MB. Default 250.
    #[serde(
        default,
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub file_limit: Option<u64>,
    /// Do not back up record data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_records: Option<bool>,
    /// Do not back up secondary index definitions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_indexes: Option<bool>,
    /// Do not back up UDF modules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_udfs: Option<bool>,
    /// Only back up records last updated before the backup started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed: Option<bool>,
    /// Write blobs as raw bytes instead of base64 (ABS 3.6+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compact: Option<bool>,
    /// Nodes scanned at once.
    #[serde(
        default,
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_concurrent_nodes: Option<u32>,
    /// Ask the server to compress scan responses (ABS 3.4+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_scan_compression: Option<bool>,
    /// Save each node's configuration with full backups (ABS 3.1+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub with_cluster_configuration: Option<bool>,
    /// Allow an incremental while another backup of the routine runs (ABS 3.1+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrent_incremental: Option<bool>,
    /// What an incremental covers (ABS 3.7): `differential` (default) = the changes since
    /// the routine's previous backup; `cumulative` = every change since its last full.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<IncrMode>)]
    pub incr_mode: Option<Spelled<IncrMode>>,
    /// Retries of a failed namespace backup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_policy: Option<RetryPolicy>,
    /// How many backups to keep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<RetentionPolicy>,
    /// Compression of backup files (ABS compatible).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<CompressionPolicy>,
    /// Encryption of backup files (ABS compatible).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<EncryptionPolicy>,
    /// Our extension: an explicit codec chain, exclusive with compression/encryption.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<Vec<PipelineStep>>,
    /// Ours: how long (ms) after its start a full backup cut off by a crash or restart
    /// is resumed from its checkpoint when the service comes back; older ones start anew.
    /// 0 = never resume. Default 86400000 (one day).
    #[serde(
        default,
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub resume_max_age: Option<u64>,
    /// Deprecated (ABS 2.x): use `retention`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remove_files: Option<RemoveFiles>,
    /// Deprecated (ABS 2.x): use `retry-policy.max-retries`.
    #[serde(
        default,
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_retries: Option<u32>,
    /// Deprecated (ABS 2.x): use `retry-policy.base-timeout`.
    #[serde(
        default,
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub retry_delay: Option<u64>,
}

config_enum! {
    /// What an incremental backup covers (ABS 3.7 `incr-mode`).
    pub enum IncrMode {
        /// The changes since the routine's previous backup, full or incremental.
        Differential = "differential",
        /// The changes since the routine's last full backup.
        Cumulative = "cumulative",
    }
}

defaults! {
    BackupPolicy {
        /// `incr-mode`, differential when not given.
        spelled incr_mode: IncrMode = IncrMode::Differential;
        value parallel: u32 = 8;
        value socket_timeout_ms(socket_timeout): u64 = 600_000;
        value file_limit_mb(file_limit): u64 = 250;
        or_default retry_policy: RetryPolicy;
    }
}

config_enum! {
    /// ABS 2.x retention switch.
    pub enum RemoveFiles {
        KeepAll = "KeepAll",
        RemoveAll = "RemoveAll",
        RemoveIncremental = "RemoveIncremental",
    }
}

/// `retry-policy:`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RetryPolicy {
    /// First delay between attempts, ms (`baseTimeout` accepted). Default 60000.
    #[serde(
        default,
        alias = "baseTimeout",
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub base_timeout: Option<u64>,
    /// Factor applied to the delay after each attempt, >= 1. Default 1.
    #[serde(
        default,
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub multiplier: Option<f64>,
    /// Attempts after the first (`maxRetries` accepted). Default 5.
    #[serde(
        default,
        alias = "maxRetries",
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_retries: Option<u32>,
}

defaults! {
    RetryPolicy {
        value base_timeout_ms(base_timeout): u64 = 60_000;
        value multiplier: f64 = 1.0;
        value max_retries: u32 = 5;
    }
}

/// `retention:` which backups to keep after each successful full backup.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RetentionPolicy {
    /// Keep this many newest full backups (>= 1); absent keeps all.
    #[serde(
        default,
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub full: Option<u32>,
    /// Keep incrementals of this many newest fulls (<= full); absent keeps all.
    #[serde(
        default,
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub incremental: Option<u32>,
}

config_enum! {
    /// ABS compression modes.
    pub enum CompressionMode {
        None = "NONE",
        Zstd = "ZSTD",
    }
}

/// `compression:`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct CompressionPolicy {
    /// NONE or ZSTD. Required since ABS 3.7; a config written for ABS 3.6 or older may leave it
    /// out, which means NONE there (the level is then ignored) and here, with a warning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<CompressionMode>)]
    pub mode: Option<Spelled<CompressionMode>>,
    /// zstd level -1..=22; 0 means the default (3).
    #[serde(
        default,
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub level: Option<i32>,
}

defaults! {
    CompressionPolicy {
        /// The mode; NONE when the config leaves it out (ABS 3.6 and older).
        spelled mode: CompressionMode = CompressionMode::None;
    }
}

config_enum! {
    /// ABS encryption modes (AES-CTR, compatible with asbackup).
    pub enum EncryptionMode {
        None = "NONE",
        Aes128 = "AES128",
        Aes256 = "AES256",
    }
}

/// `encryption:` exactly one key source when the mode is not NONE.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct EncryptionPolicy {
    /// NONE, AES128 or AES256. Required since ABS 3.7; left out (ABS 3.6 and older) it means
    /// NONE, with a warning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<EncryptionMode>)]
    pub mode: Option<Spelled<EncryptionMode>>,
    /// File holding the key (an RSA PEM as asbackup uses, or raw key material).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<String>,
    /// Environment variable holding the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_env: Option<String>,
    /// Secret Agent key holding the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_secret: Option<String>,
}

defaults! {
    EncryptionPolicy {
        /// The mode; NONE when the config leaves it out (ABS 3.6 and older).
        spelled mode: EncryptionMode = EncryptionMode::None;
    }
}

/// One codec of a `pipeline:` (our extension), applied in order on backup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct PipelineStep {
    /// A default codec plugin (`compression-zstd` or `zstd`, `encryption-aes` or `aes`) or a
    /// name under top-level `plugins:`.
    pub plugin: String,
    /// Options, validated against the plugin's JSON Schema.
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    pub options: serde_json::Value,
    /// For encryption codecs: file holding the key (as `encryption.key-file`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<String>,
    /// For encryption codecs: environment variable holding the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_env: Option<String>,
    /// For encryption codecs: Secret Agent key holding the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_secret: Option<String>,
}
