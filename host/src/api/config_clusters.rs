//! `/v1/config/clusters`: Aerospike clusters.

use crate::config::{AerospikeCluster, Config};

/// The `aerospike-clusters` section.
#[derive(Debug)]
pub struct Clusters;

impl entity::Section for Clusters {
    type Item = AerospikeCluster;
    const KEY: &'static str = "aerospike-clusters";
    const NOUN: &'static str = "cluster";

    fn items(cfg: &Config) -> &BTreeMap<String, AerospikeCluster> {
        &cfg.aerospike_clusters
    }
    fn items_mut(cfg: &mut Config) -> &mut BTreeMap<String, AerospikeCluster> {
        &mut cfg.aerospike_clusters
    }
    fn users(cfg: &Config, name: &str) -> Vec<String> {
        cfg.backup_routines
            .iter()
            .filter(|(_, r)| r.source_cluster == name)
            .map(|(n, _)| format!("backup-routines.{n}"))
            .collect()
    }
    fn redact(item: &AerospikeCluster) -> AerospikeCluster {
        item.redacted()
    }
    fn keep_secrets(new: &mut AerospikeCluster, old: Option<&AerospikeCluster>) {
        new.keep_secrets_from(old);
    }
}

crate::api::entity::section_routes! {
    section: Clusters,
    item: AerospikeCluster,
    tag: "Configuration",
    list_path: "/v1/config/clusters",
    item_path: "/v1/config/clusters/{name}",
    noun: "cluster",
}
