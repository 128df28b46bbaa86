//! Backups and restores over TLS to the test node with each auth mode (INTERNAL, EXTERNAL,
//! PKI over mutual TLS), the cluster password and the AES key from the Secret Agent double;
//! and the misconfigurations (a CA that did not sign the node's certificate, a wrong TLS name,
//! an expired certificate, an untrusted client certificate, a wrong password, an unknown
//! cipher suite), each failing the job with a message that names what is wrong and the
//! cluster, and holds no secret.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use abs::config::{Config, ConfigStore, Format, RestoreRequest};
use abs::jobs::backup::{EngineContext, ManualClock};
use abs::jobs::registry::{JobOutcome, JobRegistry, Trigger};
use abs::jobs::restore_jobs::{RestoreJobs, RestoreStatus};
use abs::storage::layout::BackupKind;
use testkit::node::NodeTls;
use testkit::secret_agent::SecretAgentDouble;
use testkit::{AerospikeNode, NodeConfig};

use crate::backup::{key_pem, plugins, seed};
use crate::restore::wipe;

/// The user of every mode: PKI takes it from the client certificate's CN.
const USER: &str = "abs-client";
const PASSWORD: &str = "Tls-pw-4b1d9e0a-agent-only";
/// The password of tests/data/tls/client-encrypted.key (a test key).
const KEY_PASSWORD: &str = "test-key-password";
const RECORDS: usize = 200;

fn tls_file(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data/tls")
        .join(name)
        .display()
        .to_string()
}

/// A node serving TLS with `cert` (`server` or `expired-server`), requiring a client
/// certificate from the test CA when `mutual`.
fn tls_node(cert: &str, mutual: bool) -> AerospikeNode {
    AerospikeNode::start_with(NodeConfig {
        user: Some((USER.into(), PASSWORD.into())),
        tls: Some(NodeTls {
            cert_file: PathBuf::from(tls_file(&format!("{cert}.pem"))),
            key_file: PathBuf::from(tls_file(&format!("{cert}.key"))),
            tls_name: "localhost".into(),
            client_ca_file: mutual.then(|| PathBuf::from(tls_file("ca.pem"))),
        }),
        ..NodeConfig::default()
    })
    .unwrap()
}

/// `cluster` is the YAML flow body of cluster `c` after its seed node list.
fn config(dir: &Path, agent_port: u16, cluster: &str) -> Config {
    let yaml = format!(
        r#"
secret-agents:
  sa: {{connection-type: tcp, address: 127.0.0.1, port: {agent_port}, timeout: 3000}}
aerospike-clusters:
  c: {{{cluster}}}
storage:
  s: {{local-storage: {{path: "{path}"}}}}
backup-policies:
  p:
    parallel: 2
    retry-policy: {{base-timeout: 10, multiplier: 1, max-retries: 0}}
    encryption: {{mode: AES256, key-secret: "keys:aes"}}
backup-routines:
  r:
    interval-cron: "@daily"
    source-cluster: c
    storage: s
    backup-policy: p
    secret-agent: sa
    namespaces: [test]
"#,
        path = dir.display(),
    );
    abs::config::parse::<Config>(&yaml, Format::Yaml).expect("test config parses")
}

/// The cluster body: the seed (TLS name `tls_name`, none if empty), `credentials` and `tls`
/// flow maps.
fn cluster(node: &AerospikeNode, tls_name: &str, credentials: &str, tls: &str) -> String {
    let seed_name = if tls_name.is_empty() {
        String::new()
    } else {
        format!(", tls-name: {tls_name}")
    };
    format!(
        "seed-nodes: [{{host-name: 127.0.0.1, port: {port}{seed_name}}}], \
         conn-timeout: 5000, credentials: {{{credentials}}}, tls: {{{tls}}}",
        port = node.port(),
    )
}

/// The agent-backed credentials of INTERNAL and EXTERNAL users.
fn agent_password(mode: &str) -> String {
    format!(
        "user: {USER}, password-key-secret: \"db:password\", auth-mode: {mode}, \
         secret-agent-name: sa"
    )
}

fn tls_trusting(ca: &str) -> String {
    format!("ca-file: \"{}\"", tls_file(ca))
}

fn mutual_tls(key: &str) -> String {
    format!(
        "ca-file: \"{}\", cert-file: \"{}\", key-file: \"{}\"",
        tls_file("ca.pem"),
        tls_file("client.pem"),
        tls_file(key)
    )
}

struct Harness {
    jobs: JobRegistry,
    restores: RestoreJobs,
    _dir: tempfile::TempDir,
}

fn harness(double: &SecretAgentDouble, cluster: &str) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(ConfigStore::in_memory(config(
        dir.path(),
        double.port(),
        cluster,
    )));
    let clock = Arc::new(ManualClock::at_ms(1_800_000_000_000));
    let ctx = Arc::new(EngineContext::new(plugins(), clock));
    let jobs = JobRegistry::with_context(store.clone(), None, ctx);
    Harness {
        restores: RestoreJobs::new(store, None, jobs.clone()),
        jobs,
        _dir: dir,
    }
}

fn agent() -> SecretAgentDouble {
    let double = SecretAgentDouble::start().unwrap();
    double.set("db", "password", PASSWORD.as_bytes());
    double.set("keys", "aes", &std::fs::read(key_pem()).unwrap());
    double
}

impl Harness {
    async fn backup(&self) -> JobOutcome {
        let t = self
            .jobs
            .start("r", BackupKind::Full, abs::scheduler::rules::admission)
            .await
            .expect("trigger");
        assert_eq!(t, Trigger::Started);
        self.jobs
            .wait("r", BackupKind::Full)
            .await
            .expect("outcome")
    }

    async fn backup_failure(&self) -> String {
        match self.backup().await {
            JobOutcome::Failure(e) => e,
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    /// A full backup, then a restore of it into the wiped node; the backup's path.
    async fn backup_and_restore(&self, node: &AerospikeNode) -> String {
        let path = match self.backup().await {
            JobOutcome::Success(r) => r.namespaces[0].key.clone().expect("a folder"),
            other => panic!("backup did not succeed: {other:?}"),
        };
        wipe(node);
        let req: RestoreRequest = serde_json::from_value(serde_json::json!({
            "backup-data-path": path,
            "destination-name": "c",
            "source-name": "s",
            "secret-agent-name": "sa",
            "policy": {"encryption": {"mode": "AES256", "key-secret": "keys:aes"}},
        }))
        .unwrap();
        let id = self
            .restores
            .start_request(&req, "full")
            .await
            .unwrap_or_else(|e| panic!("restore refused: {e}"));
        let v = self.restores.wait(id).await.unwrap();
        assert_eq!(v.status, RestoreStatus::Success, "{:?}", v.error);
        assert_eq!(v.counters.inserted_records, RECORDS as u64);
        assert_eq!(node.record_count("test"), RECORDS);
        path
    }
}

fn assert_no_secret(text: &str) {
    for s in [PASSWORD, KEY_PASSWORD] {
        assert!(!text.contains(s), "the error shows a secret: {text}");
    }
}

#[tokio::test]
async fn internal_user_backs_up_and_restores_over_tls() {
    let node = tls_node("server", false);
    seed(&node, RECORDS);
    let double = agent();
    let h = harness(
        &double,
        &cluster(
            &node,
            "localhost",
            &agent_password("INTERNAL"),
            &format!("{}, protocols: \"TLSv1.2 TLSv1.3\"", tls_trusting("ca.pem")),
        ),
    );
    let path = h.backup_and_restore(&node).await;
    let stats = node.stats(0);
    assert!(stats.logins.load(Ordering::Relaxed) > 0);
    assert_eq!(stats.external_logins.load(Ordering::Relaxed), 0);
    assert_eq!(stats.tls_handshake_failures.load(Ordering::Relaxed), 0);
    // The password came from the agent, at each job's start.
    assert_eq!(double.asked().len(), 4);

    // A destination trusting the wrong CA: the restore is refused, naming it and the cause.
    let req: RestoreRequest = serde_json::from_value(serde_json::json!({
        "backup-data-path": path,
        "destination": {
            "seed-nodes": [{"host-name": "127.0.0.1", "port": node.port(), "tls-name": "localhost"}],
            "credentials": {"user": USER, "password-key-secret": "db:password",
                            "secret-agent-name": "sa"},
            "tls": {"ca-file": tls_file("other-ca.pem")},
        },
        "source-name": "s",
        "secret-agent-name": "sa",
        "policy": {"encryption": {"mode": "AES256", "key-secret": "keys:aes"}},
    }))
    .unwrap();
    let e = h
        .restores
        .start_request(&req, "full")
        .await
        .expect_err("an untrusted destination must be refused")
        .to_string();
    assert!(
        e.contains("destination") && e.contains("UnknownIssuer"),
        "{e}"
    );
    assert_no_secret(&e);
}

#[tokio::test]
async fn external_user_backs_up_and_restores_over_mutual_tls_with_an_encrypted_key() {
    let node = tls_node("server", true);
    seed(&node, RECORDS);
    let double = agent();
    let pw_dir = tempfile::tempdir().unwrap();
    let pw_file = pw_dir.path().join("key-password");
    std::fs::write(&pw_file, format!("{KEY_PASSWORD}\n")).unwrap();
    // The CA from a directory, the TLS name from tls.name (the seed has none).
    let ca_dir = tempfile::tempdir().unwrap();
    std::fs::copy(tls_file("ca.pem"), ca_dir.path().join("ca.pem")).unwrap();
    let tls = format!(
        "ca-path: \"{}\", name: localhost, cert-file: \"{}\", key-file: \"{}\", \
         key-file-password: \"file:{}\", \
         cipher-suite: \"ECDHE-RSA-AES128-GCM-SHA256:TLS_AES_128_GCM_SHA256\"",
        ca_dir.path().display(),
        tls_file("client.pem"),
        tls_file("client-encrypted.key"),
        pw_file.display()
    );
    let h = harness(
        &double,
        &cluster(&node, "", &agent_password("EXTERNAL"), &tls),
    );
    h.backup_and_restore(&node).await;
    let stats = node.stats(0);
    // EXTERNAL logins send the clear password (over TLS), as LDAP users do.
    assert!(stats.external_logins.load(Ordering::Relaxed) > 0);
    assert_eq!(stats.pki_logins.load(Ordering::Relaxed), 0);
    assert_eq!(stats.tls_handshake_failures.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn pki_user_backs_up_and_restores_with_its_certificate_only() {
    let node = tls_node("server", true);
    seed(&node, RECORDS);
    let double = agent();
    // No user, no password: the node takes the user from the certificate's CN.
    // The client key's password comes from the agent too (the routine's, by default).
    double.set("tls", "keypass", KEY_PASSWORD.as_bytes());
    let tls = format!(
        "{}, key-file-password: \"secrets:tls:keypass\"",
        mutual_tls("client-encrypted.key")
    );
    let h = harness(
        &double,
        &cluster(&node, "localhost", "auth-mode: PKI", &tls),
    );
    h.backup_and_restore(&node).await;
    let stats = node.stats(0);
    assert!(stats.pki_logins.load(Ordering::Relaxed) > 0);
    assert_eq!(stats.external_logins.load(Ordering::Relaxed), 0);
    // No password: only the key's password and the AES key were asked for, by each job.
    let mut asked: Vec<String> = double
        .asked()
        .into_iter()
        .map(|(r, k)| format!("{r}:{k}"))
        .collect();
    asked.sort();
    assert_eq!(
        asked,
        ["keys:aes", "keys:aes", "tls:keypass", "tls:keypass"]
    );
}

#[tokio::test]
async fn tls_misconfigurations_fail_the_job_naming_the_problem_and_the_cluster() {
    let node = tls_node("server", true);
    seed(&node, 20);
    let double = agent();
    let run = |cluster_body: String| {
        let double = &double;
        async move {
            let e = harness(double, &cluster_body).backup_failure().await;
            eprintln!("job failed: {e}");
            e
        }
    };

    // A CA that did not sign the node's certificate.
    let e = run(cluster(
        &node,
        "localhost",
        &agent_password("INTERNAL"),
        &format!(
            "ca-file: \"{}\", cert-file: \"{}\", key-file: \"{}\"",
            tls_file("other-ca.pem"),
            tls_file("client.pem"),
            tls_file("client.key")
        ),
    ))
    .await;
    assert!(e.contains("cluster c"), "{e}");
    assert!(
        e.contains("UnknownIssuer") && e.contains("tls.ca-file"),
        "{e}"
    );
    assert_no_secret(&e);

    // A TLS name the certificate is not for.
    let e = run(cluster(
        &node,
        "not-the-node",
        &agent_password("INTERNAL"),
        &mutual_tls("client.key"),
    ))
    .await;
    assert!(e.contains("cluster c"), "{e}");
    assert!(
        e.contains("not valid for name") && e.contains("not-the-node"),
        "{e}"
    );

    // A client certificate from a CA the node does not trust: the node ends the handshake.
    let e = run(cluster(
        &node,
        "localhost",
        "auth-mode: PKI",
        &format!(
            "ca-file: \"{}\", cert-file: \"{}\", key-file: \"{}\"",
            tls_file("ca.pem"),
            tls_file("other-client.pem"),
            tls_file("other-client.key")
        ),
    ))
    .await;
    assert!(e.contains("cluster c"), "{e}");
    assert!(e.contains("tls.cert-file"), "{e}");
    assert!(node.stats(0).tls_handshake_failures.load(Ordering::Relaxed) > 0);

    // A wrong password from the agent: the server's code, no secret.
    double.set("db", "password", b"Wrong-tls-pw-00ff");
    let e = run(cluster(
        &node,
        "localhost",
        &agent_password("INTERNAL"),
        &mutual_tls("client.key"),
    ))
    .await;
    assert!(e.contains("cluster c"), "{e}");
    assert!(
        e.contains("Error 65") && e.contains("Invalid credential"),
        "{e}"
    );
    assert!(!e.contains("Wrong-tls-pw-00ff"), "{e}");
    assert_no_secret(&e);
    double.set("db", "password", PASSWORD.as_bytes());

    // A wrong key password: named, never shown.
    let e = run(cluster(
        &node,
        "localhost",
        "auth-mode: PKI",
        &format!(
            "{}, key-file-password: \"Not-{KEY_PASSWORD}\"",
            mutual_tls("client-encrypted.key")
        ),
    ))
    .await;
    assert!(
        e.contains("cluster c") && e.contains("tls.key-file-password"),
        "{e}"
    );
    assert!(!e.contains("Not-test"), "{e}");

    // An unknown cipher suite: a config error naming the field.
    let e = run(cluster(
        &node,
        "localhost",
        "auth-mode: PKI",
        &format!("{}, cipher-suite: \"RC4-MD5\"", mutual_tls("client.key")),
    ))
    .await;
    assert!(
        e.contains("cluster c") && e.contains("tls.cipher-suite") && e.contains("RC4-MD5"),
        "{e}"
    );
}

#[tokio::test]
async fn an_expired_node_certificate_fails_the_job() {
    let node = tls_node("expired-server", false);
    seed(&node, 10);
    let double = agent();
    let h = harness(
        &double,
        &cluster(
            &node,
            "localhost",
            &agent_password("INTERNAL"),
            &tls_trusting("ca.pem"),
        ),
    );
    let e = h.backup_failure().await;
    assert!(e.contains("cluster c"), "{e}");
    assert!(e.to_ascii_lowercase().contains("expired"), "{e}");
    assert_no_secret(&e);
}
