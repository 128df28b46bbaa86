//! `/v1/config/policies`: backup policies.

use crate::config::{BackupPolicy, Config};

/// The `backup-policies` section.
#[derive(Debug)]
pub struct Policies;

impl entity::Section for Policies {
    type Item = BackupPolicy;
    const KEY: &'static str = "backup-policies";
    const NOUN: &'static str = "policy";

    fn items(cfg: &Config) -> &BTreeMap<String, BackupPolicy> {
        &cfg.backup_policies
    }
    fn items_mut(cfg: &mut Config) -> &mut BTreeMap<String, BackupPolicy> {
        &mut cfg.backup_policies
    }
    fn users(cfg: &Config, name: &str) -> Vec<String> {
        cfg.backup_routines
            .iter()
            .filter(|(_, r)| r.backup_policy.as_deref() == Some(name))
            .map(|(n, _)| format!("backup-routines.{n}"))
            .collect()
    }
}

crate::api::entity::section_routes! {
    section: Policies,
    item: BackupPolicy,
    tag: "Configuration",
    list_path: "/v1/config/policies",
    item_path: "/v1/config/policies/{name}",
    noun: "policy",
}
