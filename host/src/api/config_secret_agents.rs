//! `/v1/config/secret-agents`: Aerospike Secret Agents (ours; ABS has no such endpoints).

use crate::config::{Config, SecretAgent};

/// The `secret-agents` section.
#[derive(Debug)]
pub struct SecretAgents;

impl entity::Section for SecretAgents {
    type Item = SecretAgent;
    const KEY: &'static str = "secret-agents";
    const NOUN: &'static str = "secret agent";

    fn items(cfg: &Config) -> &BTreeMap<String, SecretAgent> {
        &cfg.secret_agents
    }
    fn items_mut(cfg: &mut Config) -> &mut BTreeMap<String, SecretAgent> {
        &mut cfg.secret_agents
    }
    fn users(cfg: &Config, name: &str) -> Vec<String> {
        let mut out: Vec<String> = cfg
            .backup_routines
            .iter()
            .filter(|(_, r)| r.secret_agent.as_deref() == Some(name))
            .map(|(n, _)| format!("backup-routines.{n}"))
            .collect();
        out.extend(
            cfg.aerospike_clusters
                .iter()
                .filter(|(_, c)| {
                    c.credentials
                        .as_ref()
                        .and_then(|c| c.secret_agent_name.as_deref())
                        == Some(name)
                })
                .map(|(n, _)| format!("aerospike-clusters.{n}")),
        );
        out.extend(
            cfg.storage
                .iter()
                .filter(|(_, s)| s.secret_agent_name() == Some(name))
                .map(|(n, _)| format!("storage.{n}")),
        );
        out
    }
}

crate::api::entity::section_routes! {
    section: SecretAgents,
    item: SecretAgent,
    tag: "Configuration",
    list_path: "/v1/config/secret-agents",
    item_path: "/v1/config/secret-agents/{name}",
    noun: "secret agent",
}
