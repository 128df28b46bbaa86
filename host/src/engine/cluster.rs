//! Connections to Aerospike clusters, and the per-cluster cap on concurrent scans.
//!
//! A job connects with the cluster's config snapshot and closes the client when it ends; the
//! `max-parallel-scans` semaphore outlives jobs, so every job on a cluster shares it (D18).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aerospike::{AuthMode as ClientAuthMode, Client, ClientPolicy};
use tokio::sync::Semaphore;

use crate::config::{AerospikeCluster, AuthMode};

use super::EngineError;

/// Permits when a cluster sets no `max-parallel-scans`: effectively unlimited, but a
/// semaphore all the same so every scan takes the same path.
const UNLIMITED_SCANS: usize = 1 << 16;

/// Builds the client policy from a cluster config: credentials, timeouts, peers.
///
/// # Errors
/// [`EngineError::Cluster`] for settings this build cannot honour (TLS, Secret Agent
/// references) or a password file that cannot be read; the message never holds a secret.
pub fn client_policy(name: &str, cluster: &AerospikeCluster) -> Result<ClientPolicy, EngineError> {
    let fail = |m: String| EngineError::Cluster {
        cluster: name.to_string(),
        message: m,
    };
    if cluster.tls.is_some() {
        return Err(fail(
            "TLS connections to clusters are not supported yet".into(),
        ));
    }
    let mut cp = ClientPolicy::default();
    let timeout = u32::try_from(cluster.conn_timeout_ms()).unwrap_or(u32::MAX);
    cp.timeout = timeout;
    cp.connect_timeout = timeout;
    cp.use_services_alternate = cluster.use_services_alternate.unwrap_or(false);
    if let Some(racks) = &cluster.prefer_racks {
        cp.rack_ids = Some(racks.iter().map(|r| *r as usize).collect());
    }
    if let Some(c) = &cluster.credentials {
        if c.secret_agent.is_some()
            || c.secret_agent_name.is_some()
            || c.password_key_secret.is_some()
            || c.password.as_ref().is_some_and(|p| p.is_agent_reference())
        {
            return Err(fail(
                "credentials from a Secret Agent are not supported yet (DESIGN D20)".into(),
            ));
        }
        let mode = c.auth_mode.unwrap_or(AuthMode::Internal);
        if mode == AuthMode::Pki {
            return Err(fail(
                "auth-mode PKI needs TLS, which is not supported yet".into(),
            ));
        }
        if let Some(user) = c.user.clone().filter(|u| !u.is_empty()) {
            // password-path takes precedence over password (ABS).
            let password = match (&c.password_path, &c.password) {
                (Some(path), _) => std::fs::read_to_string(path)
                    .map_err(|e| fail(format!("cannot read password-path \"{path}\": {e}")))?
                    .trim_end_matches(['\r', '\n'])
                    .to_string(),
                (None, Some(p)) => p.expose().to_string(),
                (None, None) => String::new(),
            };
            cp.auth_mode = match mode {
                AuthMode::External => ClientAuthMode::External(user, password),
                AuthMode::ExternalInsecure => ClientAuthMode::ExternalInsecure(user, password),
                _ => ClientAuthMode::Internal(user, password),
            };
        }
    }
    Ok(cp)
}

/// `host:port,host:port` from the seed nodes.
pub fn seed_hosts(cluster: &AerospikeCluster) -> String {
    cluster
        .seed_nodes
        .iter()
        .map(|s| format!("{}:{}", s.host_name, s.port))
        .collect::<Vec<_>>()
        .join(",")
}

/// Connects to the cluster `name`.
///
/// # Errors
/// As [`client_policy`], or the client's connection error.
pub async fn connect(name: &str, cluster: &AerospikeCluster) -> Result<Client, EngineError> {
    let policy = client_policy(name, cluster)?;
    let hosts = seed_hosts(cluster);
    if hosts.is_empty() {
        return Err(EngineError::Cluster {
            cluster: name.to_string(),
            message: "no seed nodes".into(),
        });
    }
    Client::new(&policy, &hosts)
        .await
        .map_err(|e| EngineError::Cluster {
            cluster: name.to_string(),
            message: format!("cannot connect to {hosts}: {e}"),
        })
}

type Slot = (Option<u32>, Arc<Semaphore>);

/// Renders `get-config` answers as `aerospike.conf` stanzas (D19, best effort): each
/// `(stanza, answer)` becomes `stanza { key value ... }`, and dotted keys nest
/// (`service.port=3000` in `network` → `network { service { port 3000 } }`). Values are
/// copied as the server reports them; a real config may need edits before use.
pub fn render_config(stanzas: &[(String, String)]) -> String {
    let mut out = String::new();
    for (name, answer) in stanzas {
        let pairs: Vec<(Vec<&str>, &str)> = answer
            .split(';')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.trim().split('.').collect(), v.trim()))
            .collect();
        render_stanza(&mut out, 0, name, &pairs);
    }
    out
}

fn render_stanza(out: &mut String, depth: usize, name: &str, pairs: &[(Vec<&str>, &str)]) {
    let pad = "    ".repeat(depth);
    out.push_str(&format!("{pad}{name} {{\n"));
    let mut nested: Vec<&str> = Vec::new();
    for (path, value) in pairs {
        match path.as_slice() {
            [key] => out.push_str(&format!("{pad}    {key} {value}\n")),
            [first, ..] if !nested.contains(first) => nested.push(first),
            _ => {}
        }
    }
    for sub in nested {
        let inner: Vec<(Vec<&str>, &str)> = pairs
            .iter()
            .filter(|(p, _)| p.len() > 1 && p[0] == sub)
            .map(|(p, v)| (p[1..].to_vec(), *v))
            .collect();
        render_stanza(out, depth + 1, sub, &inner);
    }
    out.push_str(&format!("{pad}}}\n"));
}

/// The `max-parallel-scans` semaphores, one per cluster name.
#[derive(Debug, Default)]
pub struct ScanSlots {
    /// Cluster name → (the limit the semaphore was made for, the semaphore).
    slots: Mutex<HashMap<String, Slot>>,
}

impl ScanSlots {
    /// The semaphore of `cluster`. A changed limit starts a fresh semaphore: scans holding
    /// permits of the old one finish under the old limit.
    pub fn for_cluster(&self, name: &str, cluster: &AerospikeCluster) -> Arc<Semaphore> {
        let limit = cluster.max_parallel_scans.filter(|n| *n > 0);
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        match slots.get(name) {
            Some((l, s)) if *l == limit => s.clone(),
            _ => {
                let permits = limit.map_or(UNLIMITED_SCANS, |n| n as usize);
                let s = Arc::new(Semaphore::new(permits));
                slots.insert(name.to_string(), (limit, s.clone()));
                s
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Credentials, Secret, SeedNode};

    fn cluster() -> AerospikeCluster {
        AerospikeCluster {
            seed_nodes: vec![
                SeedNode {
                    host_name: "a".into(),
                    port: 3000,
                    tls_name: None,
                },
                SeedNode {
                    host_name: "b".into(),
                    port: 3100,
                    tls_name: None,
                },
            ],
            ..Default::default()
        }
    }

    #[test]
    fn policy_carries_credentials_without_leaking_them() {
        let mut c = cluster();
        c.credentials = Some(Credentials {
            user: Some("admin".into()),
            password: Some(Secret::new("hunter2")),
            ..Default::default()
        });
        c.conn_timeout = Some(1234);
        let p = client_policy("c", &c).unwrap();
        assert!(
            matches!(&p.auth_mode, ClientAuthMode::Internal(u, pw) if u == "admin" && pw == "hunter2")
        );
        assert_eq!(p.timeout, 1234);
        assert!(!format!("{p:?}").contains("hunter2"));
        assert_eq!(seed_hosts(&c), "a:3000,b:3100");
    }

    #[test]
    fn password_path_wins_and_agent_references_fail_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "fromfile\n").unwrap();
        let mut c = cluster();
        c.credentials = Some(Credentials {
            user: Some("u".into()),
            password: Some(Secret::new("literal")),
            password_path: Some(path.display().to_string()),
            auth_mode: Some(AuthMode::External),
            ..Default::default()
        });
        let p = client_policy("c", &c).unwrap();
        assert!(matches!(&p.auth_mode, ClientAuthMode::External(_, pw) if pw == "fromfile"));
        c.credentials = Some(Credentials {
            user: Some("u".into()),
            password: Some(Secret::new("secrets:res:key")),
            ..Default::default()
        });
        let e = client_policy("c", &c).unwrap_err().to_string();
        assert!(e.contains("Secret Agent"), "{e}");
    }

    #[test]
    fn config_renders_as_nested_stanzas() {
        let text = render_config(&[
            ("service".into(), "cluster-name=c;proto-fd-max=15000".into()),
            (
                "network".into(),
                "service.port=3000;service.address=any;heartbeat.mode=mesh".into(),
            ),
            ("namespace test".into(), "replication-factor=2".into()),
        ]);
        assert_eq!(
            text,
            "service {\n    cluster-name c\n    proto-fd-max 15000\n}\n\
             network {\n    service {\n        port 3000\n        address any\n    }\n    \
             heartbeat {\n        mode mesh\n    }\n}\n\
             namespace test {\n    replication-factor 2\n}\n"
        );
    }

    #[test]
    fn scan_slots_are_shared_per_cluster_and_follow_limit_changes() {
        let slots = ScanSlots::default();
        let mut c = cluster();
        c.max_parallel_scans = Some(2);
        let a = slots.for_cluster("c", &c);
        let b = slots.for_cluster("c", &c);
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(a.available_permits(), 2);
        c.max_parallel_scans = Some(3);
        let d = slots.for_cluster("c", &c);
        assert_eq!(d.available_permits(), 3);
        assert!(!Arc::ptr_eq(&a, &d));
    }
}
