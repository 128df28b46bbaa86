//! Jobs with their secrets from the Secret Agent test double: a backup and a restore whose
//! cluster password and AES key come from the agent (TCP and unix socket), rotation picked up
//! by the next job, misconfigurations that fail naming what is wrong without a secret, and a
//! DEBUG-level run whose logs, job status and metrics hold no secret.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use abs::api::{self, AppState};
use abs::config::{Config, ConfigStore, Format, RestoreRequest};
use abs::jobs::backup::{EngineContext, ManualClock};
use abs::jobs::registry::{JobOutcome, JobRegistry, Trigger};
use abs::jobs::restore_jobs::{RestoreJobs, RestoreStatus, StartError};
use abs::metrics::Metrics;
use abs::storage::layout::BackupKind;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use testkit::secret_agent::{DoubleConfig, SecretAgentDouble};
use testkit::{AerospikeNode, NodeConfig};
use tower::ServiceExt;

use crate::backup::{key_pem, plugins, seed};
use crate::restore::wipe;

const USER: &str = "backup";
const PASSWORD: &str = "Pw-7f3e91c2-agent-only";
const RECORDS: usize = 300;

fn secured_node() -> AerospikeNode {
    AerospikeNode::start_with(NodeConfig {
        user: Some((USER.into(), PASSWORD.into())),
        ..NodeConfig::default()
    })
    .unwrap()
}

/// The golden RSA key as the agent holds it, and a line of it that must never be shown.
fn key_text() -> (Vec<u8>, String) {
    let pem = std::fs::read(key_pem()).unwrap();
    let line = String::from_utf8_lossy(&pem)
        .lines()
        .nth(1)
        .expect("a PEM body line")
        .to_string();
    (pem, line)
}

/// `agent` is the YAML flow body of the `sa` agent; `password` the credential fields.
fn config(node: &AerospikeNode, dir: &Path, agent: &str, password: &str) -> Config {
    let yaml = format!(
        r#"
secret-agents:
  sa: {{{agent}}}
aerospike-clusters:
  c:
    seed-nodes: [{{host-name: 127.0.0.1, port: {port}}}]
    credentials: {{user: {USER}, {password}, secret-agent-name: sa}}
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
        port = node.port(),
        path = dir.display(),
    );
    abs::config::parse::<Config>(&yaml, Format::Yaml).expect("test config parses")
}

fn tcp_agent(double: &SecretAgentDouble) -> String {
    format!(
        "connection-type: tcp, address: 127.0.0.1, port: {}, timeout: 3000",
        double.port()
    )
}

struct Harness {
    jobs: JobRegistry,
    restores: RestoreJobs,
    store: Arc<ConfigStore>,
    metrics: Arc<Metrics>,
    _dir: tempfile::TempDir,
}

fn harness(node: &AerospikeNode, agent: &str, password: &str) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(ConfigStore::in_memory(config(
        node,
        dir.path(),
        agent,
        password,
    )));
    let clock = Arc::new(ManualClock::at_ms(1_800_000_000_000));
    let ctx = Arc::new(EngineContext::new(plugins(), clock));
    let metrics = Arc::new(Metrics::new());
    let jobs = JobRegistry::with_context(store.clone(), Some(metrics.clone()), ctx);
    Harness {
        restores: RestoreJobs::new(store.clone(), Some(metrics.clone()), jobs.clone()),
        jobs,
        store,
        metrics,
        _dir: dir,
    }
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

    async fn backup_ok(&self) -> String {
        match self.backup().await {
            JobOutcome::Success(r) => r.namespaces[0].key.clone().expect("a folder"),
            other => panic!("backup did not succeed: {other:?}"),
        }
    }

    async fn backup_failure(&self) -> String {
        match self.backup().await {
            JobOutcome::Failure(e) => e,
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    fn request(&self, path: &str) -> RestoreRequest {
        serde_json::from_value(serde_json::json!({
            "backup-data-path": path,
            "destination-name": "c",
            "source-name": "s",
            "secret-agent-name": "sa",
            "policy": {"encryption": {"mode": "AES256", "key-secret": "keys:aes"}},
        }))
        .unwrap()
    }

    async fn restore(&self, path: &str) -> Result<i64, StartError> {
        self.restores
            .start_request(&self.request(path), "full")
            .await
    }

    async fn restore_ok(&self, node: &AerospikeNode, path: &str) {
        wipe(node);
        let id = self
            .restore(path)
            .await
            .unwrap_or_else(|e| panic!("restore refused: {e}"));
        let v = self.restores.wait(id).await.unwrap();
        assert_eq!(v.status, RestoreStatus::Success, "{:?}", v.error);
        assert_eq!(v.counters.inserted_records, RECORDS as u64);
        assert_eq!(node.record_count("test"), RECORDS);
    }
}

fn assert_no_secret(text: &str, secrets: &[&str], what: &str) {
    for s in secrets {
        assert!(!text.contains(s), "{what} shows a secret: {text}");
    }
}

fn asked(double: &SecretAgentDouble) -> Vec<String> {
    double
        .asked()
        .into_iter()
        .map(|(r, k)| format!("{r}:{k}"))
        .collect()
}

#[tokio::test]
async fn backup_and_restore_take_password_and_key_from_the_agent_over_tcp() {
    let node = secured_node();
    seed(&node, RECORDS);
    let double = SecretAgentDouble::start().unwrap();
    let (pem, _) = key_text();
    double.set("db", "password", PASSWORD.as_bytes());
    double.set("keys", "aes", &pem);
    let h = harness(
        &node,
        &tcp_agent(&double),
        "password-key-secret: \"db:password\"",
    );
    // Loading and validating the config asks nothing: references resolve at job start.
    h.store
        .replace((*h.store.current()).clone())
        .await
        .expect("the config validates");
    assert!(double.asked().is_empty());
    let path = h.backup_ok().await;
    assert_eq!(asked(&double), ["db:password", "keys:aes"]);
    // The files are encrypted: restoring them needs the key the agent gave.
    h.restore_ok(&node, &path).await;
    assert_eq!(
        asked(&double),
        ["db:password", "keys:aes", "db:password", "keys:aes"]
    );

    // A point-in-time restore naming no agent: the routine's agent serves the key.
    wipe(&node);
    let req: abs::config::RestoreTimestampRequest = serde_json::from_value(serde_json::json!({
        "routine": "r",
        "time": 1_900_000_000_000_i64,
        "destination-name": "c",
        "policy": {"encryption": {"mode": "AES256", "key-secret": "keys:aes"}},
    }))
    .unwrap();
    let id = h.restores.start_timestamp(&req).await.unwrap();
    let v = h.restores.wait(id).await.unwrap();
    assert_eq!(v.status, RestoreStatus::Success, "{:?}", v.error);
    assert_eq!(node.record_count("test"), RECORDS);
    assert_eq!(asked(&double).len(), 6);
}

#[tokio::test]
async fn backup_and_restore_over_a_unix_socket_with_base64_and_a_secrets_reference() {
    let node = secured_node();
    seed(&node, RECORDS);
    let sock_dir = tempfile::tempdir().unwrap();
    let sock = sock_dir.path().join("agent.sock");
    let double = SecretAgentDouble::start_with(DoubleConfig {
        unix_socket: Some(sock.clone()),
        base64: true,
        ..DoubleConfig::default()
    })
    .unwrap();
    let (pem, _) = key_text();
    double.set("db", "password", PASSWORD.as_bytes());
    double.set("keys", "aes", &pem);
    let agent = format!(
        "connection-type: unix, address: \"{}\", is-base64: true",
        sock.display()
    );
    let h = harness(&node, &agent, "password: \"secrets:db:password\"");
    let path = h.backup_ok().await;
    h.restore_ok(&node, &path).await;
    assert_eq!(
        asked(&double),
        ["db:password", "keys:aes", "db:password", "keys:aes"]
    );

    // The request's inline `secret-agent` (same socket) serves the key.
    wipe(&node);
    let mut req = serde_json::to_value(h.request(&path)).unwrap();
    let o = req.as_object_mut().unwrap();
    o.remove("secret-agent-name");
    o.insert(
        "secret-agent".into(),
        serde_json::json!({"connection-type": "unix", "address": sock.display().to_string(),
            "is-base64": true}),
    );
    let req: RestoreRequest = serde_json::from_value(req).unwrap();
    let id = h.restores.start_request(&req, "full").await.unwrap();
    let v = h.restores.wait(id).await.unwrap();
    assert_eq!(v.status, RestoreStatus::Success, "{:?}", v.error);
    assert_eq!(node.record_count("test"), RECORDS);
    assert_eq!(asked(&double).len(), 6);
}

#[tokio::test]
async fn a_rotated_secret_is_used_by_the_next_job() {
    let node = secured_node();
    seed(&node, RECORDS);
    let double = SecretAgentDouble::start().unwrap();
    let (pem, _) = key_text();
    let wrong = "Wrong-pw-55aa01";
    double.set("db", "password", wrong.as_bytes());
    double.set("keys", "aes", &pem);
    let h = harness(
        &node,
        &tcp_agent(&double),
        "password-key-secret: \"db:password\"",
    );

    // Wrong password: the job fails with the cluster's refusal, naming the cluster.
    let e = h.backup_failure().await;
    assert!(e.contains("cluster c"), "{e}");
    assert_no_secret(&e, &[wrong, PASSWORD], "the error");
    assert_eq!(asked(&double), ["db:password", "keys:aes"]);

    // Rotated in the agent, no config change: the next job asks again and succeeds.
    double.set("db", "password", PASSWORD.as_bytes());
    let path = h.backup_ok().await;
    assert_eq!(asked(&double).len(), 4);

    // Rotated back to a wrong one: the restore is refused on its destination.
    double.set("db", "password", wrong.as_bytes());
    let e = h.restore(&path).await.unwrap_err().to_string();
    assert!(e.contains("destination"), "{e}");
    assert_no_secret(&e, &[wrong, PASSWORD], "the error");
    double.set("db", "password", PASSWORD.as_bytes());
    h.restore_ok(&node, &path).await;
}

#[tokio::test]
async fn agent_down_unknown_key_and_bad_answers_fail_naming_the_reference() {
    let node = secured_node();
    seed(&node, 50);
    let (pem, pem_line) = key_text();
    let secrets = [PASSWORD, pem_line.as_str()];

    // Agent down: nothing listens on its port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let down = format!("connection-type: tcp, address: 127.0.0.1, port: {port}");
    let h = harness(&node, &down, "password-key-secret: \"db:password\"");
    let e = h.backup_failure().await;
    assert!(e.contains("secret agent sa"), "{e}");
    assert!(e.contains("password-key-secret"), "{e}");
    assert!(e.contains(&format!("127.0.0.1:{port}")), "{e}");

    // Unknown key: the password is there, the AES key is not.
    let double = SecretAgentDouble::start().unwrap();
    double.set("db", "password", PASSWORD.as_bytes());
    let h = harness(
        &node,
        &tcp_agent(&double),
        "password-key-secret: \"db:password\"",
    );
    let e = h.backup_failure().await;
    assert!(e.contains("secret agent sa"), "{e}");
    assert!(e.contains("secrets:keys:aes"), "{e}");
    assert!(e.contains("encryption.key-secret"), "{e}");
    assert_no_secret(&e, &secrets, "the error");
    // Nothing was written for the failed job.
    let listed = std::fs::read_dir(h._dir.path()).unwrap().count();
    assert_eq!(listed, 0);

    // The restore of a backup made while the key was there, once it is gone again.
    double.set("keys", "aes", &pem);
    let path = h.backup_ok().await;
    double.remove("keys", "aes");
    match h.restore(&path).await {
        Err(StartError::Request(r)) => {
            let e = r.to_string();
            assert!(e.contains("secrets:keys:aes"), "{e}");
            assert_no_secret(&e, &secrets, "the error");
        }
        other => panic!("expected a 400, got {other:?}"),
    }

    // A bad answer (wrong magic) names the reference.
    double.set_mode(testkit::secret_agent::Mode::BadMagic);
    let e = h.backup_failure().await;
    assert!(
        e.contains("secrets:db:password") && e.contains("bad answer"),
        "{e}"
    );
    assert_no_secret(&e, &secrets, "the error");

    // An unknown agent name is a config error, caught at load without asking anyone.
    let mut cfg = (*h.store.current()).clone();
    cfg.backup_routines.get_mut("r").unwrap().secret_agent = Some("nope".into());
    assert!(h.store.replace(cfg).await.is_err());
}

/// A `MakeWriter` appending to a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

async fn call(
    app: &axum::Router,
    method: &str,
    uri: &str,
    body: Option<serde_json::Value>,
) -> (StatusCode, String) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json");
    let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
    let resp = app.clone().oneshot(req.body(body).unwrap()).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test]
async fn no_secret_in_debug_logs_job_status_or_metrics() {
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(logs.clone())
        .with_ansi(false)
        .finish();
    // Global, not thread-local: a thread-local default can miss events whose callsites other
    // tests' threads registered first. The only global subscriber in this test binary; it
    // sees every test's logs, and none may hold these secrets.
    tracing::subscriber::set_global_default(subscriber).expect("no other global subscriber");

    let node = secured_node();
    seed(&node, RECORDS);
    let double = SecretAgentDouble::start().unwrap();
    let (pem, pem_line) = key_text();
    double.set("db", "password", PASSWORD.as_bytes());
    double.set("keys", "aes", &pem);
    let h = harness(
        &node,
        &tcp_agent(&double),
        "password-key-secret: \"db:password\"",
    );
    let mut state = AppState::new(h.store.clone(), h.metrics.clone());
    state.set_jobs(h.jobs.clone());
    let restores = state.restores.clone();
    let app = api::router(state);

    let (s, _) = call(&app, "POST", "/v1/backups/full/r", None).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let outcome = h.jobs.wait("r", BackupKind::Full).await;
    let path = match outcome {
        Some(JobOutcome::Success(r)) => r.namespaces[0].key.clone().unwrap(),
        other => panic!("backup: {other:?}"),
    };
    let mut shown = Vec::new();
    for uri in [
        "/v1/backups/full/r",
        "/v1/backups/currentBackup/r",
        "/v1/config",
    ] {
        let (s, b) = call(&app, "GET", uri, None).await;
        assert_eq!(s, StatusCode::OK, "{uri}: {b}");
        shown.push((uri.to_string(), b));
    }

    wipe(&node);
    let (s, b) = call(
        &app,
        "POST",
        "/v1/restore/full",
        Some(serde_json::to_value(h.request(&path)).unwrap()),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{b}");
    let id: i64 = b.parse().unwrap();
    restores.wait(id).await.unwrap();
    let (s, b) = call(&app, "GET", &format!("/v1/restore/status/{id}"), None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(b.contains("\"success\""), "{b}");
    shown.push(("restore status".into(), b));
    let (_, b) = call(&app, "GET", "/v1/restore/jobs", None).await;
    shown.push(("restore jobs".into(), b));
    let (s, b) = call(&app, "GET", "/metrics", None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(b.contains("backup"), "{b}");
    shown.push(("metrics".into(), b));
    assert_eq!(node.record_count("test"), RECORDS);

    let secrets = [PASSWORD, pem_line.as_str()];
    for (what, text) in &shown {
        assert_no_secret(text, &secrets, what);
    }
    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    // The capture saw the jobs (so an absent secret means something).
    assert!(logs.contains("Backup started"), "{logs}");
    assert!(logs.contains("Restore started"), "{logs}");
    assert!(
        logs.contains("DEBUG")
            && logs.contains("Secret resolved. agent=sa reference=secrets:db:password"),
        "{logs}"
    );
    assert_no_secret(&logs, &secrets, "the DEBUG log");
}

#[tokio::test]
async fn storage_credentials_resolve_from_the_storages_agent_or_the_default() {
    use abs::config::{S3Storage, Secret, Storage};
    use abs::jobs::job_secrets::resolve_storage;
    use abs::secrets::SecretAgentClient;
    use abs::storage::cloud::{AwsEnvironment, s3_plugin_config};

    let double = SecretAgentDouble::start().unwrap();
    double.set("aws", "secret", b"S3-sekrit-91b2");
    let config = abs::config::parse::<Config>(
        &format!("secret-agents:\n  sa: {{{}}}\n", tcp_agent(&double)),
        Format::Yaml,
    )
    .unwrap();
    let s3 = S3Storage {
        bucket: "b".into(),
        s3_region: "eu-west-1".into(),
        access_key_id: Some("AKID".into()),
        secret_access_key: Some(Secret::new("secrets:aws:secret")),
        secret_agent_name: Some("sa".into()),
        ..S3Storage::default()
    };
    let resolved = resolve_storage(
        &config.secret_agents,
        "s",
        &Storage::S3Storage(s3.clone()),
        None,
    )
    .await
    .unwrap();
    let Storage::S3Storage(r) = &resolved else {
        panic!("{resolved:?}")
    };
    // The plugin is handed the agent's value; the config itself still holds the reference.
    let (_, secrets) = s3_plugin_config(r, &AwsEnvironment::default()).unwrap();
    assert!(
        secrets
            .0
            .iter()
            .any(|(k, v)| k == "secret-access-key" && v == "S3-sekrit-91b2")
    );
    assert!(!format!("{resolved:?}").contains("S3-sekrit"));
    assert_eq!(asked(&double), ["aws:secret"]);

    // No agent of its own: the routine's (the default) answers.
    let mut bare = s3.clone();
    bare.secret_agent_name = None;
    let agent = SecretAgentClient::new("routine-agent", &config.secret_agents["sa"]).unwrap();
    resolve_storage(
        &config.secret_agents,
        "s",
        &Storage::S3Storage(bare.clone()),
        Some(&agent),
    )
    .await
    .unwrap();
    assert_eq!(asked(&double).len(), 2);
    // Neither: the error names the storage and the field.
    let e = resolve_storage(&config.secret_agents, "s", &Storage::S3Storage(bare), None)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("storage s")
            && e.contains("s3-storage.secret-access-key")
            && e.contains("secrets:aws:secret"),
        "{e}"
    );
    // An unknown key names the reference, not a value.
    double.remove("aws", "secret");
    let e = resolve_storage(&config.secret_agents, "s", &Storage::S3Storage(s3), None)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("secret agent sa") && e.contains("secrets:aws:secret"),
        "{e}"
    );
}

#[tokio::test]
async fn backup_and_restore_with_the_agent_over_tls_and_a_wrong_ca_fails_naming_the_agent() {
    let tls = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/tls");
    let node = secured_node();
    seed(&node, RECORDS);
    let double = SecretAgentDouble::start_with(DoubleConfig {
        tls: Some((tls.join("server.pem"), tls.join("server.key"))),
        ..DoubleConfig::default()
    })
    .unwrap();
    let (pem, _) = key_text();
    double.set("db", "password", PASSWORD.as_bytes());
    double.set("keys", "aes", &pem);
    let agent = |ca: &str| {
        format!(
            "{}, tls-ca-file: \"{}\"",
            tcp_agent(&double),
            tls.join(ca).display()
        )
    };
    let h = harness(
        &node,
        &agent("ca.pem"),
        "password-key-secret: \"db:password\"",
    );
    let path = h.backup_ok().await;
    h.restore_ok(&node, &path).await;
    assert_eq!(
        asked(&double),
        ["db:password", "keys:aes", "db:password", "keys:aes"]
    );

    // An agent certificate from another CA is refused before anything is asked.
    let before = asked(&double).len();
    let h = harness(
        &node,
        &agent("other-ca.pem"),
        "password-key-secret: \"db:password\"",
    );
    let e = h.backup_failure().await;
    assert!(
        e.contains("secret agent sa") && e.contains("certificate"),
        "{e}"
    );
    assert!(!e.contains(PASSWORD), "{e}");
    assert_eq!(asked(&double).len(), before, "no secret was handed out");
}
