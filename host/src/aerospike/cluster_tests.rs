//! Unit tests of `cluster.rs`, kept beside it so the module reads as code.

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
        auth_mode: Some(AuthMode::External.into()),
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
fn tls_seeds_carry_their_tls_name_and_node_list_entries_match_it() {
    let mut c = cluster();
    c.seed_nodes[0].tls_name = Some("n1".into());
    c.tls = Some(crate::config::TlsConfig {
        name: Some("cl".into()),
        ..Default::default()
    });
    assert_eq!(seed_hosts(&c), "a:n1:3000,b:cl:3100");
    let host = aerospike::Host::new_tls("10.0.0.1", "n1", 4333);
    assert!(node_list_entry_matches("10.0.0.1:4333", &host));
    assert!(node_list_entry_matches("10.0.0.1:n1:4333", &host));
    assert!(!node_list_entry_matches("10.0.0.1:n2:4333", &host));
    assert!(!node_list_entry_matches("10.0.0.1:4334", &host));
    // PKI without a client certificate is refused before connecting.
    c.credentials = Some(Credentials {
        auth_mode: Some(AuthMode::Pki.into()),
        ..Default::default()
    });
    let e = client_policy("c", &c).unwrap_err().to_string();
    assert!(
        e.contains("cluster c") && e.contains("tls.cert-file"),
        "{e}"
    );
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
fn sindex_commands_follow_the_server_version() {
    let idx = SecondaryIndex {
        namespace: "test".into(),
        set: Some("s".into()),
        name: "i".into(),
        index_type: IndexType::List,
        bin: "b".into(),
        value_type: IndexValueType::Numeric,
        context: Some("kQM=".into()),
        expression: None,
    };
    assert_eq!(
        sindex_create_command(&idx, "other", false),
        "sindex-create:ns=other;set=s;indexname=i;context=kQM=;indextype=list;indexdata=b,numeric"
    );
    assert_eq!(
        sindex_create_command(&idx, "other", true),
        "sindex-create:namespace=other;set=s;indexname=i;context=kQM=;indextype=list;bin=b;type=numeric"
    );
}

#[test]
fn set_indexes_are_created_with_no_bin_or_type() {
    let idx = SecondaryIndex {
        namespace: "test".into(),
        set: Some("s".into()),
        name: "i".into(),
        index_type: IndexType::Set,
        bin: String::new(),
        value_type: IndexValueType::Empty,
        context: None,
        expression: None,
    };
    // What the 8.1.2 server takes (`bin`, `type`, `context` are refused with error 4).
    assert_eq!(
        sindex_create_command(&idx, "other", true),
        "sindex-create:namespace=other;set=s;indexname=i;indextype=set"
    );
}

#[test]
fn info_fields_split_pairs() {
    let v: Vec<_> = info_fields("a=1;b=2;junk;c=x=y", ';').collect();
    assert_eq!(v, vec![("a", "1"), ("b", "2"), ("c", "x=y")]);
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
