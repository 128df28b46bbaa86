//! Restore requests and the restore policy, in ABS's JSON shape (`reference/ABS-API.md`
//! §1.5), with the checks that need no I/O. They are request bodies, not part of the saved
//! configuration, but reuse its types (clusters, storage, encryption, secret agents).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::limits;
use super::model::{
    AerospikeCluster, CompressionPolicy, EncryptionMode, EncryptionPolicy, RetryPolicy,
    SecretAgent, Storage,
};
use super::serde_util::opt_number;

/// `policy.namespace`: restore the records of `source` into `destination`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RestoreNamespace {
    pub source: String,
    pub destination: String,
}

/// dto.RestorePolicy: how records are written back.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RestorePolicy {
    /// Files read (and written) in parallel. Default 8.
    #[serde(
        default,
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub parallel: Option<u32>,
    /// Restore no records (only UDFs and indexes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_records: Option<bool>,
    /// Restore no secondary indexes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_indexes: Option<bool>,
    /// Restore no UDF modules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_udfs: Option<bool>,
    /// Ours: check each file against the backup's `checksums.yaml` before writing any of its
    /// records (one more read of each file). Default true; false restores faster and trusts
    /// the stored bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_checksums: Option<bool>,
    /// Socket timeout of writes, ms. Default 600000.
    #[serde(
        default,
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub socket_timeout: Option<u64>,
    /// Total timeout of a write, ms; 0 = none. Default 0.
    #[serde(
        default,
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub total_timeout: Option<u64>,
    /// Write records one by one instead of in batches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_batch_writes: Option<bool>,
    /// Batches in flight per job. Default 128.
    #[serde(
        default,
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_async_batches: Option<u32>,
    /// Records per batch. Default 128 (16 when batch writes are disabled).
    #[serde(
        default,
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub batch_size: Option<u32>,
    /// Namespace remapping.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<RestoreNamespace>,
    /// Only these sets (empty = all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub set_list: Vec<String>,
    /// Only these bins (empty = all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bin_list: Vec<String>,
    /// Replace existing records (bins not in the backup are dropped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace: Option<bool>,
    /// Only create records; existing ones are left as they are (counted `existed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unique: Option<bool>,
    /// Write whatever the server's generation (default: only when the backup's is higher).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_generation: Option<bool>,
    /// Read bandwidth, MiB/s; 0 = unlimited.
    #[serde(
        default,
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub bandwidth: Option<u64>,
    /// Records written per second; 0 = unlimited.
    #[serde(
        default,
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub tps: Option<u64>,
    /// How the backup was encrypted (the key to decrypt with).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<EncryptionPolicy>,
    /// How the backup was compressed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<CompressionPolicy>,
    /// Retries of writes that fail with a retryable result. Default 5 retries, 2000 ms
    /// apart, times 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_policy: Option<RetryPolicy>,
    /// Seconds added to the TTL of every expirable record.
    #[serde(
        default,
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub extra_ttl: Option<u64>,
}

/// The restore retry policy with ABS's restore defaults filled in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WriteRetry {
    pub max_retries: u32,
    pub base_ms: u64,
    pub multiplier: f64,
}

impl RestorePolicy {
    pub fn parallel(&self) -> u32 {
        self.parallel.unwrap_or(8).max(1)
    }

    pub fn batch_writes(&self) -> bool {
        !self.disable_batch_writes.unwrap_or(false)
    }

    pub fn batch_size(&self) -> u32 {
        self.batch_size
            .unwrap_or(if self.batch_writes() { 128 } else { 16 })
            .max(1)
    }

    pub fn max_async_batches(&self) -> u32 {
        self.max_async_batches.unwrap_or(128).max(1)
    }

    pub fn socket_timeout_ms(&self) -> u64 {
        self.socket_timeout.unwrap_or(600_000)
    }

    pub fn retry(&self) -> WriteRetry {
        let p = self.retry_policy.clone().unwrap_or_default();
        WriteRetry {
            max_retries: p.max_retries.unwrap_or(5),
            base_ms: p.base_timeout.unwrap_or(2_000),
            multiplier: p.multiplier.unwrap_or(2.0),
        }
    }

    /// Request checks that need no I/O, as `(field, message)`.
    pub fn check(&self) -> Result<(), (String, String)> {
        if self.replace.unwrap_or(false) && self.unique.unwrap_or(false) {
            return Err((
                "policy.unique".into(),
                "replace and unique are contradictory: choose one".into(),
            ));
        }
        let numbers: [(&str, Option<u64>); 8] = [
            ("parallel", self.parallel.map(u64::from)),
            ("socket-timeout", self.socket_timeout),
            ("total-timeout", self.total_timeout),
            ("max-async-batches", self.max_async_batches.map(u64::from)),
            ("batch-size", self.batch_size.map(u64::from)),
            ("bandwidth", self.bandwidth),
            ("tps", self.tps),
            ("extra-ttl", self.extra_ttl),
        ];
        for (field, v) in numbers {
            if let Some(m) = v.and_then(|v| limits::range("RestorePolicy", field).check_int(v)) {
                return Err((format!("policy.{field}"), m));
            }
        }
        if let Some((field, m)) = self
            .retry_policy
            .as_ref()
            .and_then(super::validate::retry_policy_error)
        {
            return Err((format!("policy.retry-policy.{field}"), m));
        }
        if let Some(ns) = &self.namespace
            && (ns.source.is_empty() || ns.destination.is_empty())
        {
            return Err((
                "policy.namespace".into(),
                "source and destination are both required".into(),
            ));
        }
        if let Some(e) = &self.encryption
            && e.mode() != EncryptionMode::None
        {
            let sources = [&e.key_file, &e.key_env, &e.key_secret]
                .iter()
                .filter(|s| s.is_some())
                .count();
            if sources != 1 {
                return Err((
                    "policy.encryption".into(),
                    "exactly one of key-file, key-env or key-secret is required".into(),
                ));
            }
        }
        Ok(())
    }
}

/// dto.RestoreRequest: restore one backup folder (`/v1/restore/full`, `/incremental`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RestoreRequest {
    /// The backup's namespace folder from the storage root (a BackupDetails `key`).
    #[serde(default)]
    pub backup_data_path: String,
    /// The cluster to restore into, inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<AerospikeCluster>,
    /// The cluster to restore into, by its configured name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_name: Option<String>,
    /// Where the backup is, inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Storage>,
    /// Where the backup is, by configured storage name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_agent: Option<SecretAgent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_agent_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<RestorePolicy>,
}

/// dto.RestoreTimestampRequest: restore a routine's state at `time`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RestoreTimestampRequest {
    /// The routine whose backups are restored.
    #[serde(default)]
    pub routine: String,
    /// Epoch ms: the newest full backup before it, then its incrementals before it.
    #[serde(default)]
    pub time: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<AerospikeCluster>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_name: Option<String>,
    /// Storage override (ABS 3.6+); default: the routine's storage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Storage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_agent: Option<SecretAgent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_agent_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<RestorePolicy>,
    /// Apply incrementals strictly oldest first (we always do).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_reordering: Option<bool>,
}

/// `a` XOR `b` named `fa`/`fb`: exactly one must be given.
pub fn exactly_one<A, B>(
    a: &Option<A>,
    b: &Option<B>,
    fa: &str,
    fb: &str,
) -> Result<(), (String, String)> {
    match (a.is_some(), b.is_some()) {
        (true, false) | (false, true) => Ok(()),
        (true, true) => Err((fa.into(), format!("{fa} and {fb} are exclusive"))),
        (false, false) => Err((fa.into(), format!("one of {fa} or {fb} is required"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contradictions_and_missing_keys_name_their_field() {
        let p = RestorePolicy {
            replace: Some(true),
            unique: Some(true),
            ..Default::default()
        };
        assert_eq!(p.check().unwrap_err().0, "policy.unique");
        let p = RestorePolicy {
            encryption: Some(EncryptionPolicy {
                mode: Some(EncryptionMode::Aes256.into()),
                key_file: None,
                key_env: None,
                key_secret: None,
            }),
            ..Default::default()
        };
        assert_eq!(p.check().unwrap_err().0, "policy.encryption");
        assert!(RestorePolicy::default().check().is_ok());
    }

    #[test]
    fn defaults_follow_abs() {
        let p = RestorePolicy::default();
        assert_eq!(
            (p.parallel(), p.batch_size(), p.max_async_batches()),
            (8, 128, 128)
        );
        let r = p.retry();
        assert_eq!((r.max_retries, r.base_ms), (5, 2000));
        let p = RestorePolicy {
            disable_batch_writes: Some(true),
            ..Default::default()
        };
        assert_eq!(p.batch_size(), 16);
    }

    #[test]
    fn requests_parse_in_abs_shape() {
        let r: RestoreRequest = serde_json::from_str(
            r#"{"backup-data-path":"r/backup/1000/data/test","destination-name":"c",
                "source-name":"s","policy":{"parallel":2,"no-generation":true,
                "namespace":{"source":"test","destination":"other"}}}"#,
        )
        .unwrap();
        assert_eq!(r.policy.unwrap().namespace.unwrap().destination, "other");
        assert!(serde_json::from_str::<RestoreRequest>(r#"{"bogus":1}"#).is_err());
        assert!(exactly_one(&Some(1), &None::<u8>, "a", "b").is_ok());
        assert_eq!(
            exactly_one(&None::<u8>, &None::<u8>, "a", "b")
                .unwrap_err()
                .0,
            "a"
        );
    }
}
