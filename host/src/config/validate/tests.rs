//! Tests of the whole validation, through [`validate`].

use super::*;

fn base() -> Config {
    serde_yaml::from_str(
        r#"
aerospike-clusters:
  c: {seed-nodes: [{host-name: localhost, port: 3000}]}
storage:
  s: {local-storage: {path: ./b}}
backup-policies:
  p: {parallel: 2}
backup-routines:
  r: {interval-cron: "@daily", source-cluster: c, storage: s, backup-policy: p, namespaces: [test]}
"#,
    )
    .unwrap()
}

fn errors(cfg: &Config) -> Vec<String> {
    validate(cfg)
        .err()
        .unwrap_or_default()
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn base_is_valid() {
    assert_eq!(errors(&base()), Vec::<String>::new());
}

#[test]
fn reports_every_error_with_its_path() {
    let mut c = base();
    let r = c.backup_routines.get_mut("r").unwrap();
    r.storage = "s4".into();
    r.source_cluster = "nope".into();
    r.interval_cron = "* * *".into();
    c.backup_policies.get_mut("p").unwrap().parallel = Some(0);
    let errs = errors(&c);
    assert!(errs.contains(&"backup-routines.r.storage: unknown storage \"s4\"".to_string()));
    assert!(
        errs.contains(&"backup-routines.r.source-cluster: unknown cluster \"nope\"".to_string())
    );
    assert!(
        errs.iter()
            .any(|e| e.starts_with("backup-routines.r.interval-cron: expected 6 or 7"))
    );
    assert!(errs.contains(&"backup-policies.p.parallel: must be between 1 and 4096".to_string()));
    assert_eq!(errs.len(), 4, "{errs:?}");
}

#[test]
fn cluster_tls_names_each_bad_field() {
    let mut c = base();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, "x").unwrap();
    let cl = c.aerospike_clusters.get_mut("c").unwrap();
    cl.tls = Some(TlsConfig {
        ca_file: Some(ca.display().to_string()),
        ca_path: Some("/nonexistent/ca-dir".into()),
        cert_file: Some("/nonexistent/cert.pem".into()),
        protocols: Some("TLSv1.2 SSLv9".into()),
        cipher_suite: Some("ECDHE-RSA-AES128-GCM-SHA256:NOPE".into()),
        ..Default::default()
    });
    cl.credentials = Some(Credentials {
        auth_mode: Some(AuthMode::Pki.into()),
        ..Default::default()
    });
    let errs = errors(&c);
    let has = |prefix: &str| errs.iter().any(|e| e.starts_with(prefix));
    assert!(
        has("aerospike-clusters.c.tls.ca-path: \"/nonexistent/ca-dir\" does not exist"),
        "{errs:?}"
    );
    assert!(
        has("aerospike-clusters.c.tls.cert-file: \"/nonexistent/cert.pem\" does not exist"),
        "{errs:?}"
    );
    assert!(
        has("aerospike-clusters.c.tls.key-file: is required with cert-file"),
        "{errs:?}"
    );
    assert!(
        has("aerospike-clusters.c.tls.protocols: unknown protocol \"SSLv9\""),
        "{errs:?}"
    );
    assert!(
        has("aerospike-clusters.c.tls.cipher-suite: unknown or unsupported cipher suite \"NOPE\""),
        "{errs:?}"
    );
    assert!(!has("aerospike-clusters.c.tls.ca-file"), "{errs:?}");
    assert!(
        !has("aerospike-clusters.c.credentials.auth-mode"),
        "{errs:?}"
    );
    assert_eq!(errs.len(), 5, "{errs:?}");
    let cl = c.aerospike_clusters.get_mut("c").unwrap();
    cl.tls = None;
    assert_eq!(
        errors(&c),
        vec![
            "aerospike-clusters.c.credentials.auth-mode: PKI needs mutual TLS: set tls.cert-file and tls.key-file"
        ]
    );
}

#[test]
fn password_sources_are_exclusive() {
    let mut c = base();
    c.aerospike_clusters.get_mut("c").unwrap().credentials = Some(Credentials {
        user: Some("u".into()),
        password: Some(Secret::new("p")),
        password_path: Some("/f".into()),
        ..Default::default()
    });
    assert_eq!(
        errors(&c),
        vec![
            "aerospike-clusters.c.credentials: only one of password, password-path and password-key-secret may be set"
        ]
    );
}

#[test]
fn policy_rules() {
    let mut c = base();
    let p = c.backup_policies.get_mut("p").unwrap();
    p.retention = Some(RetentionPolicy {
        full: Some(2),
        incremental: Some(3),
    });
    p.encryption = Some(EncryptionPolicy {
        mode: Some(EncryptionMode::Aes256.into()),
        key_file: None,
        key_env: None,
        key_secret: None,
    });
    p.compression = Some(CompressionPolicy {
        mode: Some(CompressionMode::Zstd.into()),
        level: Some(30),
    });
    p.pipeline = Some(vec![]);
    let errs = errors(&c);
    assert_eq!(errs.len(), 4, "{errs:?}");
    assert!(
        errs.iter()
            .any(|e| e.starts_with("backup-policies.p.retention.incremental"))
    );
    assert!(
        errs.iter()
            .any(|e| e.starts_with("backup-policies.p.encryption: exactly one"))
    );
    assert!(
        errs.iter()
            .any(|e| e.starts_with("backup-policies.p.compression.level"))
    );
    assert!(
        errs.iter()
            .any(|e| e.starts_with("backup-policies.p.pipeline: pipeline cannot"))
    );
}

#[test]
fn selectors_are_exclusive_and_partitions_parse() {
    let mut c = base();
    let r = c.backup_routines.get_mut("r").unwrap();
    r.partition_list = Some("0-100,200".into());
    *r.node_list = vec!["127.0.0.1:3000".into()];
    let errs = errors(&c);
    assert_eq!(
        errs,
        vec!["backup-routines.r: partition-list and node-list are mutually exclusive"]
    );
    assert_eq!(
        parse_partition_list("0-100, 4095").unwrap(),
        vec![
            PartitionSpec::Range {
                begin: 0,
                count: 100
            },
            PartitionSpec::Range {
                begin: 4095,
                count: 1
            }
        ]
    );
    assert!(parse_partition_list("4000-200").is_err());
    assert!(parse_partition_list("4096").is_err());
    assert!(parse_partition_list("").is_err());
    assert!(matches!(
        parse_partition_list("AAAAAAAAAAAAAAAAAAAAAAAAAAA=").unwrap()[0],
        PartitionSpec::AfterDigest(_)
    ));
}

#[test]
fn names_are_limited_to_the_safe_set() {
    // The published pattern (as a JSON Schema validator reads it) agrees with the check.
    let schema = serde_json::json!({"type": "string", "pattern": NAME_PATTERN});
    let pattern = jsonschema::validator_for(&schema).unwrap();
    for ok in [
        "a",
        "daily-1",
        "abs_cluster.v2",
        "A9",
        "-x",
        &"n".repeat(255),
    ] {
        assert_eq!(name_problem(ok), None, "{ok}");
        assert!(pattern.is_valid(&serde_json::json!(ok)), "{ok}");
    }
    for bad in [
        "",
        ".hidden",
        ".",
        "..",
        "a/b",
        "a b",
        "\u{87}\u{84}",
        "tab\t",
        "é",
        "a\n",
        &"n".repeat(256),
    ] {
        assert!(name_problem(bad).is_some(), "{bad:?}");
        assert!(!pattern.is_valid(&serde_json::json!(bad)), "{bad:?}");
    }
    let mut c = base();
    let s = c.storage.remove("s").unwrap();
    c.storage.insert("a/b".into(), s.clone());
    c.storage.insert("\u{87}".into(), s);
    let errs = errors(&c);
    assert!(
        errs.iter()
            .any(|e| e.starts_with("storage.a/b: name \"a/b\" has the character '/'")),
        "{errs:?}"
    );
    assert!(
        errs.iter().any(|e| e.starts_with("storage.\\u{87}: ")),
        "the path is printable: {errs:?}"
    );
}

#[test]
fn secret_agent_rules() {
    let mut c = base();
    c.secret_agents.insert(
        "sa".into(),
        SecretAgent {
            connection_type: ConnectionType::Tcp.into(),
            address: "".into(),
            port: None,
            timeout: None,
            tls_ca_file: None,
            is_base64: None,
        },
    );
    let errs = errors(&c);
    assert_eq!(
        errs,
        vec![
            "secret-agents.sa.address: is required",
            "secret-agents.sa.port: is required for tcp"
        ]
    );
}
