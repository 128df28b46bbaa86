//! `aerospike-clusters.<name>`: seed nodes, credentials, TLS.

use super::{Errors, agent_refs, check_racks};
use crate::config::model::*;
use crate::config::tls;

pub(super) fn cluster(e: &mut Errors, cfg: &Config, path: &str, c: &AerospikeCluster) {
    if c.seed_nodes.is_empty() {
        e.push(
            format!("{path}.seed-nodes"),
            "at least one seed node is required",
        );
    }
    for (i, n) in c.seed_nodes.iter().enumerate() {
        if n.host_name.trim().is_empty() {
            e.push(
                format!("{path}.seed-nodes[{i}].host-name"),
                "must not be empty",
            );
        }
        e.range(
            format!("{path}.seed-nodes[{i}].port"),
            "SeedNode",
            "port",
            Some(n.port),
        );
    }
    e.range(
        format!("{path}.conn-timeout"),
        "AerospikeCluster",
        "conn-timeout",
        c.conn_timeout,
    );
    e.range(
        format!("{path}.max-parallel-scans"),
        "AerospikeCluster",
        "max-parallel-scans",
        c.max_parallel_scans,
    );
    if let Some(racks) = &c.prefer_racks {
        check_racks(
            e,
            &format!("{path}.prefer-racks"),
            "AerospikeCluster",
            "prefer-racks",
            racks,
        );
    }
    if let Some(cr) = &c.credentials {
        let p = format!("{path}.credentials");
        let sources = [
            cr.password.is_some(),
            cr.password_path.is_some(),
            cr.password_key_secret.is_some(),
        ];
        if sources.iter().filter(|s| **s).count() > 1 {
            e.push(
                p.clone(),
                "only one of password, password-path and password-key-secret may be set",
            );
        }
        if cr.password.is_some() && cr.user.as_deref().unwrap_or("").is_empty() {
            e.push(format!("{p}.user"), "is required when a password is set");
        }
        agent_refs(
            e,
            cfg,
            &p,
            cr.secret_agent.as_ref(),
            cr.secret_agent_name.as_deref(),
        );
        if cr.auth_mode.map(|m| *m) == Some(AuthMode::Pki)
            && c.tls.as_ref().is_none_or(|t| t.cert_file.is_none())
        {
            e.push(
                format!("{p}.auth-mode"),
                "PKI needs mutual TLS: set tls.cert-file and tls.key-file",
            );
        }
    }
    if let Some(t) = &c.tls {
        cluster_tls(e, &format!("{path}.tls"), t);
    }
}

/// A cluster's `tls`: the files it names exist, cert and key come together, protocols and
/// cipher suites are known. File contents are checked when a job connects.
fn cluster_tls(e: &mut Errors, path: &str, t: &TlsConfig) {
    for (field, file) in tls::missing_files(t) {
        e.push(
            format!("{path}.{field}"),
            format!("\"{file}\" does not exist"),
        );
    }
    match (&t.cert_file, &t.key_file) {
        (Some(_), None) => e.push(format!("{path}.key-file"), "is required with cert-file"),
        (None, Some(_)) => e.push(format!("{path}.cert-file"), "is required with key-file"),
        _ => {}
    }
    if t.key_file_password.is_some() && t.key_file.is_none() {
        e.push(
            format!("{path}.key-file-password"),
            "is set but key-file is not",
        );
    }
    // The parsers name the field themselves (`tls.protocols: ...`); keep the detail only.
    let detail = |m: String| m.split_once(": ").map_or(m.clone(), |(_, d)| d.to_string());
    if let Some(p) = &t.protocols
        && let Err(m) = tls::parse_protocols(p)
    {
        e.push(format!("{path}.protocols"), detail(m));
    }
    if let Some(list) = t.cipher_suite.as_deref().filter(|s| !s.trim().is_empty())
        && let Err(m) = tls::parse_cipher_suites(&rustls::crypto::ring::default_provider(), list)
    {
        e.push(format!("{path}.cipher-suite"), detail(m));
    }
}
