//! `backup-routines:` what to back up, where to and when.

use super::super::given::Given;
use super::super::serde_util::opt_number_list;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `backup-routines.<name>:` what to back up, where to and when.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct BackupRoutine {
    /// Policy name; absent uses an all-default policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_policy: Option<String>,
    /// Cluster name (required).
    pub source_cluster: String,
    /// Storage name (required).
    pub storage: String,
    /// Secret Agent name for this routine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_agent: Option<String>,
    /// Full backup schedule: Quartz cron (6 or 7 fields) or `@daily` style (required).
    pub interval_cron: String,
    /// Incremental backup schedule; absent or empty = none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incr_interval_cron: Option<String>,
    /// Namespaces to back up (required; `[]` = all namespaces of the cluster).
    pub namespaces: Vec<String>,
    /// Sets to back up; empty = all.
    #[serde(default, skip_serializing_if = "Given::is_absent")]
    #[schema(value_type = Vec<String>)]
    pub set_list: Given<Vec<String>>,
    /// Bins to back up; empty = all.
    #[serde(default, skip_serializing_if = "Given::is_absent")]
    #[schema(value_type = Vec<String>)]
    pub bin_list: Given<Vec<String>>,
    /// Partitions: "N" or "start-count" ranges, comma-separated, within 0..=4095.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition_list: Option<String>,
    /// Only the partitions these nodes master ("host:port" or node ids).
    #[serde(default, skip_serializing_if = "Given::is_absent")]
    #[schema(value_type = Vec<String>)]
    pub node_list: Given<Vec<String>>,
    /// Only these racks (ABS 3.4+).
    #[serde(
        default,
        deserialize_with = "opt_number_list",
        skip_serializing_if = "Option::is_none"
    )]
    pub rack_list: Option<Vec<u32>>,
    /// Deprecated in ABS 3.4 (moved to the cluster): racks to prefer.
    #[serde(
        default,
        deserialize_with = "opt_number_list",
        skip_serializing_if = "Option::is_none"
    )]
    pub prefer_racks: Option<Vec<u32>>,
    /// Base64 Aerospike filter expression (ABS 3.7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter_exp: Option<String>,
    /// Not scheduled while true.
    #[serde(default, skip_serializing_if = "Given::is_absent")]
    #[schema(value_type = bool)]
    pub disabled: Given<bool>,
    /// Time zone of this routine's cron expressions (ABS 3.7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_timezone: Option<String>,
    /// Ours: when to verify the routine's newest full backup without restoring it (every
    /// file's size and SHA-256, every record decoded); absent = never. Results show in
    /// `currentBackup` (`last-verify`) and the `verify_*` metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_cron: Option<String>,
    /// Ours: storages that receive a copy of every completed backup (streamed, checked
    /// against `checksums.yaml`, retention applied to each); a failed copy never fails the
    /// backup. Shown per storage in `currentBackup` (`copies`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy_to: Option<Vec<String>>,
}

impl BackupRoutine {
    /// The verify schedule, if one is set and non-empty.
    pub fn verify_cron(&self) -> Option<&str> {
        self.verify_cron
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty())
    }

    /// The incremental schedule, if one is set and non-empty.
    pub fn incr_cron(&self) -> Option<&str> {
        self.incr_interval_cron
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }
}
