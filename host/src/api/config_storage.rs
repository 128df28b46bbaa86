//! `/v1/config/storage`: storage locations.

use crate::config::{Config, Storage};

/// The `storage` section.
#[derive(Debug)]
pub struct Storages;

impl entity::Section for Storages {
    type Item = Storage;
    const KEY: &'static str = "storage";
    const NOUN: &'static str = "storage";

    fn items(cfg: &Config) -> &BTreeMap<String, Storage> {
        &cfg.storage
    }
    fn items_mut(cfg: &mut Config) -> &mut BTreeMap<String, Storage> {
        &mut cfg.storage
    }
    fn users(cfg: &Config, name: &str) -> Vec<String> {
        cfg.backup_routines
            .iter()
            .filter(|(_, r)| r.storage == name)
            .map(|(n, _)| format!("backup-routines.{n}"))
            .collect()
    }
    fn redact(item: &Storage) -> Storage {
        item.redacted()
    }
    fn keep_secrets(new: &mut Storage, old: Option<&Storage>) {
        new.keep_secrets_from(old);
    }
}

crate::api::entity::section_routes! {
    section: Storages,
    item: Storage,
    tag: "Configuration",
    list_path: "/v1/config/storage",
    item_path: "/v1/config/storage/{name}",
    noun: "storage",
}
