//! Upstream ABS's storage integration cases (`test/integration/storage_s3_test.go`,
//! `storage_azure_test.go`, `storage_gcp_test.go`, `secret_agent_test.go`), ported call for
//! call onto our stand-ins, and run through the service binary as upstream runs ABS: write a
//! configuration, start the service, `POST /v1/backups/schedule/<routine>`, wait for the
//! backup in `GET /v1/backups/full/<routine>`, check its record count. The binary also gives
//! each case an environment of its own (AWS keys, shared credentials files), which tests in
//! one process could not have. Where upstream stops at the backup, we restore it through
//! `POST /v1/restore/full` (zstd + AES256) and compare the records.
//!
//! Stand-ins: s3s-fs instead of MinIO (it checks the key id and every signature, so a key
//! that did not arrive fails), Azurite, fake-gcs-server with a test token endpoint, and the
//! Secret Agent double. Upstream's cases that need real clouds (IAM roles, Azure AD,
//! application default credentials) are not cases there either; Azure AD is covered in
//! `cloud_auth`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use testkit::AerospikeNode;
use testkit::emulators::{self, S3S_FS_ACCESS_KEY, S3S_FS_SECRET_KEY};
use testkit::secret_agent::SecretAgentDouble;

use crate::cli::{BIN, Service, free_port, get};
use crate::cloud::{agent_section, azurite_with_container, empty_node};
use crate::cloud_forms::{account_sas, gcs_with_bucket, service_account_key};
use crate::cloud_s3s::s3s_with_bucket;

/// Records seeded, as upstream's `seedRecords([]int{10, 20, 30})`.
const RECORDS: usize = 3;

/// One request over a fresh connection: status and body.
fn call(port: u16, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("the service listens");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let body = body.unwrap_or("");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, body.to_string())
}

/// The service under test, with its configuration, log and port.
struct Abs {
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
    _svc: Service,
}

impl Abs {
    /// Starts the service with cluster `c` on `node`, the storage entry `s` (`storage_yaml`:
    /// the lines under `s:`, optionally followed by top-level sections), a ZSTD + AES256
    /// policy and the routine `r`, in an environment holding no AWS settings but `envs`.
    fn start(node: &AerospikeNode, storage_yaml: &str, envs: &[(&str, &str)]) -> Abs {
        Abs::start_with_policy(node, storage_yaml, envs, None)
    }

    fn start_with_policy(
        node: &AerospikeNode,
        storage_yaml: &str,
        envs: &[(&str, &str)],
        encryption: Option<&str>,
    ) -> Abs {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let key = crate::backup::key_pem();
        let encryption = encryption.map_or_else(
            || format!("{{mode: AES256, key-file: \"{}\"}}", key.display()),
            str::to_string,
        );
        let (storage, rest) = storage_yaml
            .split_once("\nsecret-agents:")
            .map_or((storage_yaml, String::new()), |(s, r)| {
                (s, format!("secret-agents:{r}"))
            });
        let cfg = format!(
            r#"service: {{http: {{address: 127.0.0.1, port: {port}}}}}
aerospike-clusters:
  c: {{seed-nodes: [{{host-name: 127.0.0.1, port: {node_port}}}]}}
storage:
  s:
{storage}
backup-policies:
  p: {{parallel: 2, compression: {{mode: ZSTD, level: 3}}, encryption: {encryption}}}
backup-routines:
  r: {{interval-cron: "@yearly", source-cluster: c, storage: s, backup-policy: p, namespaces: [test]{agent}}}
{rest}
"#,
            node_port = node.port(),
            agent = if rest.is_empty() {
                ""
            } else {
                ", secret-agent: sa"
            },
        );
        let path = dir.path().join("abs.yml");
        std::fs::write(&path, cfg).unwrap();
        let log = dir.path().join("out.log");
        let mut cmd = Command::new(BIN);
        cmd.args(["-c".as_ref(), path.as_os_str()])
            .env(
                "ABS_CACHE_DIR",
                PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli-cache"),
            )
            .env_remove("ABS_PLUGIN_DIR")
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::null());
        // Only what the case gives: no keys or profiles of the machine running the tests.
        for var in [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_PROFILE",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            "AWS_ROLE_ARN",
        ] {
            cmd.env_remove(var);
        }
        let missing = dir.path().join("no-such-file");
        cmd.env("AWS_SHARED_CREDENTIALS_FILE", &missing)
            .env("AWS_CONFIG_FILE", &missing);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut svc = Service(cmd.spawn().unwrap());
        let start = Instant::now();
        while get(port, "/health").is_none() {
            if let Some(status) = svc.0.try_wait().unwrap() {
                panic!(
                    "service exited with {status}: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            assert!(start.elapsed() < Duration::from_secs(60), "no /health");
            std::thread::sleep(Duration::from_millis(100));
        }
        Abs {
            port,
            log,
            _dir: dir,
            _svc: svc,
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
        let (status, text) = call(self.port, method, path, body);
        let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, v)
    }

    /// Upstream's `triggerFullBackup`.
    fn trigger_full_backup(&self) {
        let (status, body) = self.call("POST", "/v1/backups/schedule/r", None);
        assert_eq!(status, 202, "{body}");
    }

    /// Upstream's `waitForFullBackup`: the routine's one full backup, once listed, or how
    /// the run failed.
    fn wait_for_full_backup(&self) -> Result<Value, String> {
        let start = Instant::now();
        loop {
            let (status, list) = self.call("GET", "/v1/backups/full/r", None);
            if status == 200
                && let Some(b) = list.as_array().and_then(|l| l.first())
            {
                return Ok(b.clone());
            }
            let (_, state) = self.call("GET", "/v1/backups/currentBackup/r", None);
            if state["last-full-result"]["outcome"] == "failure" {
                return Err(state["last-full-result"]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string());
            }
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "no backup listed: {status} {list}; state {state}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Upstream's `restoreByPath` with our policy: the status once the job ended.
    fn restore_by_path(&self, key: &str, policy: &str) -> Value {
        let body = format!(
            r#"{{"backup-data-path": "{key}", "destination-name": "c", "source-name": "s", "policy": {policy}}}"#
        );
        let (status, id) = self.call("POST", "/v1/restore/full", Some(&body));
        assert_eq!(status, 202, "{id}");
        let start = Instant::now();
        loop {
            let (_, st) = self.call("GET", &format!("/v1/restore/status/{id}"), None);
            if st["status"] != "running" {
                return st;
            }
            assert!(start.elapsed() < Duration::from_secs(120), "{st}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// The restore policy that reads what [`Abs::start`]'s policy wrote.
fn aes256_policy() -> String {
    format!(
        r#"{{"encryption": {{"mode": "AES256", "key-file": "{}"}}}}"#,
        crate::backup::key_pem().display()
    )
}

/// Upstream's `assertBackupToStorage`, then a restore of that backup into the emptied node:
/// the backup lists with its record count, and every record comes back.
async fn assert_backup_to_storage(what: &str, storage_yaml: &str, envs: &[(&str, &str)]) {
    let node = AerospikeNode::start().unwrap();
    crate::backup::seed(&node, RECORDS);
    let abs = Abs::start(&node, storage_yaml, envs);
    abs.trigger_full_backup();
    let backup = abs
        .wait_for_full_backup()
        .unwrap_or_else(|e| panic!("{what}: the backup failed: {e}\n{}", abs.log()));
    assert_eq!(backup["record-count"], RECORDS, "{what}: {backup}");
    assert_eq!(backup["encryption"], "AES256", "{what}: {backup}");
    assert_eq!(backup["compression"], "ZSTD", "{what}: {backup}");

    let client = crate::backup::connect(&node).await;
    let want = crate::backup::scan_all(&node, &client).await;
    empty_node(&node);
    let key = backup["key"].as_str().expect("a key");
    let st = abs.restore_by_path(key, &aes256_policy());
    assert_eq!(st["status"], "success", "{what}: {st}");
    assert_eq!(st["inserted-records"], RECORDS, "{what}: {st}");
    crate::backup::assert_same_records(&crate::backup::scan_all(&node, &client).await, &want);
}

// ---- storage_s3_test.go: TestS3 -----------------------------------------------------------

fn s3s_storage(endpoint: &str, bucket: &str, extra: &str) -> String {
    format!(
        "    s3-storage: {{bucket: {bucket}, s3-region: us-east-1, s3-endpoint-override: \"{endpoint}\"{extra}}}"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_static_credentials_literal_values() {
    let (s3s, bucket) = s3s_with_bucket("up-lit");
    let extra =
        format!(", access-key-id: {S3S_FS_ACCESS_KEY}, secret-access-key: {S3S_FS_SECRET_KEY}");
    assert_backup_to_storage(
        "s3, literal keys",
        &s3s_storage(&s3s.endpoint(), &bucket, &extra),
        &[],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_static_credentials_from_secret_agent() {
    let (s3s, bucket) = s3s_with_bucket("up-agent");
    let agent = SecretAgentDouble::start().unwrap();
    agent.set("abs", "s3-access-key", S3S_FS_ACCESS_KEY.as_bytes());
    agent.set("abs", "s3-secret-key", S3S_FS_SECRET_KEY.as_bytes());
    // The agent on the storage itself, as upstream's `SecretAgentConfig` of the storage.
    let extra = r#", access-key-id: "secrets:abs:s3-access-key", secret-access-key: "secrets:abs:s3-secret-key", secret-agent-name: sa"#;
    let storage = format!(
        "{}{}",
        s3s_storage(&s3s.endpoint(), &bucket, extra),
        agent_section(agent.port())
    );
    assert_backup_to_storage("s3, keys from the agent", &storage, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_default_credential_chain_via_environment() {
    let (s3s, bucket) = s3s_with_bucket("up-env");
    assert_backup_to_storage(
        "s3, keys from the environment",
        &s3s_storage(&s3s.endpoint(), &bucket, ""),
        &[
            ("AWS_ACCESS_KEY_ID", S3S_FS_ACCESS_KEY),
            ("AWS_SECRET_ACCESS_KEY", S3S_FS_SECRET_KEY),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_named_profile_via_shared_credentials_file() {
    let (s3s, bucket) = s3s_with_bucket("up-prof");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("credentials");
    std::fs::write(
        &file,
        format!(
            "[default]\naws_access_key_id = nobody\naws_secret_access_key = wrong\n\n[test-profile]\naws_access_key_id = {S3S_FS_ACCESS_KEY}\naws_secret_access_key = {S3S_FS_SECRET_KEY}\n"
        ),
    )
    .unwrap();
    assert_backup_to_storage(
        "s3, named profile",
        &s3s_storage(&s3s.endpoint(), &bucket, ", s3-profile: test-profile"),
        &[("AWS_SHARED_CREDENTIALS_FILE", file.to_str().unwrap())],
    )
    .await;
}

/// Ours beyond upstream: the profile written by `aws configure --profile` into the config
/// file (`[profile <name>]`), which the AWS SDK upstream uses reads as well.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_named_profile_via_aws_config_file() {
    let (s3s, bucket) = s3s_with_bucket("up-conf");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config");
    std::fs::write(
        &file,
        format!(
            "[profile backup]\nregion = us-east-1\naws_access_key_id = {S3S_FS_ACCESS_KEY}\naws_secret_access_key = {S3S_FS_SECRET_KEY}\n"
        ),
    )
    .unwrap();
    assert_backup_to_storage(
        "s3, profile in the config file",
        &s3s_storage(&s3s.endpoint(), &bucket, ", s3-profile: backup"),
        &[("AWS_CONFIG_FILE", file.to_str().unwrap())],
    )
    .await;
}

/// Ours beyond upstream: temporary keys from the environment carry their session token.
/// moto takes any key, so a proxy in front of it checks that every request carries the
/// token and is signed with the environment's key id (never a key of the machine).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_session_token_from_the_environment_is_sent_with_every_request() {
    use std::sync::{Arc, Mutex};
    use testkit::fault_proxy::{Fault, FaultProxy};
    let (moto, bucket) = crate::cloud::moto_with_bucket("up-token");
    let heads = Arc::new(Mutex::new(Vec::new()));
    let seen = heads.clone();
    let proxy = FaultProxy::start(moto.port(), move |h, _| {
        seen.lock().unwrap().push(h.clone());
        Fault::Pass
    })
    .unwrap();
    assert_backup_to_storage(
        "s3, temporary keys from the environment",
        &s3s_storage(&proxy.endpoint(), &bucket, ""),
        &[
            ("AWS_ACCESS_KEY_ID", "ASIATEMPORARY"),
            ("AWS_SECRET_ACCESS_KEY", "temporary-secret"),
            ("AWS_SESSION_TOKEN", "session-token-from-env"),
        ],
    )
    .await;
    let heads = heads.lock().unwrap();
    assert!(heads.len() > 3, "{heads:?}");
    for h in heads.iter() {
        assert_eq!(
            h.header("x-amz-security-token"),
            Some("session-token-from-env"),
            "{} {}",
            h.method,
            h.target
        );
        assert!(
            h.header("authorization")
                .is_some_and(|a| a.contains("Credential=ASIATEMPORARY/")),
            "{} {}: {:?}",
            h.method,
            h.target,
            h.header("authorization")
        );
    }
}

// ---- storage_azure_test.go: TestAzure -----------------------------------------------------

fn azurite_storage(endpoint: &str, container: &str, extra: &str) -> String {
    format!("    azure-storage: {{endpoint: \"{endpoint}\", container-name: {container}{extra}}}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_shared_key_literal_values() {
    let (azurite, container) = azurite_with_container("up-lit");
    let endpoint = format!("{}/{}", azurite.endpoint(), emulators::AZURITE_ACCOUNT);
    let extra = format!(
        ", account-name: {}, account-key: \"{}\"",
        emulators::AZURITE_ACCOUNT,
        emulators::AZURITE_KEY
    );
    assert_backup_to_storage(
        "azure, shared key",
        &azurite_storage(&endpoint, &container, &extra),
        &[],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_shared_key_account_key_from_secret_agent() {
    let (azurite, container) = azurite_with_container("up-agent");
    let agent = SecretAgentDouble::start().unwrap();
    agent.set("abs", "azure-key", emulators::AZURITE_KEY.as_bytes());
    let endpoint = format!("{}/{}", azurite.endpoint(), emulators::AZURITE_ACCOUNT);
    let extra = format!(
        ", account-name: {}, account-key: \"secrets:abs:azure-key\", secret-agent-name: sa",
        emulators::AZURITE_ACCOUNT
    );
    let storage = format!(
        "{}{}",
        azurite_storage(&endpoint, &container, &extra),
        agent_section(agent.port())
    );
    assert_backup_to_storage("azure, account key from the agent", &storage, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_sas_token_embedded_in_endpoint() {
    let (azurite, container) = azurite_with_container("up-sas");
    let endpoint = format!(
        "{}/{}?{}",
        azurite.endpoint(),
        emulators::AZURITE_ACCOUNT,
        account_sas()
    );
    assert_backup_to_storage(
        "azure, SAS in the endpoint",
        &azurite_storage(&endpoint, &container, ""),
        &[],
    )
    .await;
}

// ---- storage_gcp_test.go: TestGCP ---------------------------------------------------------

fn gcs_storage(endpoint: &str, bucket: &str, extra: &str) -> String {
    format!(
        "    gcp-storage: {{bucket-name: {bucket}, endpoint: \"{endpoint}/storage/v1/\"{extra}}}"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcp_endpoint_no_authentication() {
    let (gcs, bucket) = gcs_with_bucket("up-noauth");
    assert_backup_to_storage(
        "gcs, no authentication",
        &gcs_storage(&gcs.endpoint(), &bucket, ""),
        &[],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcp_key_file_literal() {
    let (gcs, bucket) = gcs_with_bucket("up-file");
    let (key, granted) = service_account_key();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("key.json");
    std::fs::write(&file, key).unwrap();
    let extra = format!(", key-file-path: \"{}\"", file.display());
    assert_backup_to_storage(
        "gcs, key file",
        &gcs_storage(&gcs.endpoint(), &bucket, &extra),
        &[],
    )
    .await;
    assert!(granted.load(std::sync::atomic::Ordering::SeqCst) >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcp_key_json_literal() {
    let (gcs, bucket) = gcs_with_bucket("up-json");
    let (key, granted) = service_account_key();
    let extra = format!(", key: '{key}'");
    assert_backup_to_storage(
        "gcs, key JSON",
        &gcs_storage(&gcs.endpoint(), &bucket, &extra),
        &[],
    )
    .await;
    assert!(granted.load(std::sync::atomic::Ordering::SeqCst) >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcp_key_json_from_secret_agent() {
    let (gcs, bucket) = gcs_with_bucket("up-agent");
    let (key, granted) = service_account_key();
    let agent = SecretAgentDouble::start().unwrap();
    agent.set("abs", "gcp-key", key.as_bytes());
    let storage = format!(
        "{}{}",
        gcs_storage(
            &gcs.endpoint(),
            &bucket,
            r#", key: "secrets:abs:gcp-key", secret-agent-name: sa"#,
        ),
        agent_section(agent.port())
    );
    assert_backup_to_storage("gcs, key JSON from the agent", &storage, &[]).await;
    assert!(granted.load(std::sync::atomic::Ordering::SeqCst) >= 1);
}

// ---- secret_agent_test.go: TestBackupRestoreWithSecretAgentEncryption ----------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_restore_with_secret_agent_encryption() {
    let agent = SecretAgentDouble::start().unwrap();
    let pem = std::fs::read(crate::backup::key_pem()).unwrap();
    agent.set("abs", "encryption-key", &pem);
    let node = AerospikeNode::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let storage = format!(
        "    local-storage: {{path: \"{}\"}}{}",
        dir.path().join("backups").display(),
        agent_section(agent.port())
    );
    let abs = Abs::start_with_policy(
        &node,
        &storage,
        &[],
        Some(r#"{mode: AES128, key-secret: "secrets:abs:encryption-key"}"#),
    );
    crate::backup::seed(&node, RECORDS);
    abs.trigger_full_backup();
    let backup = abs
        .wait_for_full_backup()
        .unwrap_or_else(|e| panic!("the backup failed: {e}"));
    assert_eq!(backup["record-count"], RECORDS, "{backup}");
    let client = crate::backup::connect(&node).await;
    let want = crate::backup::scan_all(&node, &client).await;
    empty_node(&node);
    let key = backup["key"].as_str().unwrap();
    let body = format!(
        r#"{{"backup-data-path": "{key}", "destination-name": "c", "source-name": "s", "secret-agent-name": "sa", "policy": {{"encryption": {{"mode": "AES128", "key-secret": "secrets:abs:encryption-key"}}}}}}"#
    );
    let (status, id) = abs.call("POST", "/v1/restore/full", Some(&body));
    assert_eq!(status, 202, "{id}");
    let start = Instant::now();
    let st = loop {
        let (_, st) = abs.call("GET", &format!("/v1/restore/status/{id}"), None);
        if st["status"] != "running" {
            break st;
        }
        assert!(start.elapsed() < Duration::from_secs(120), "{st}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(st["status"], "success", "{st}");
    assert_eq!(st["inserted-records"], RECORDS, "{st}");
    assert!(st.get("error").is_none_or(Value::is_null), "{st}");
    crate::backup::assert_same_records(&crate::backup::scan_all(&node, &client).await, &want);
}

// ---- errors that name the cause (ours; upstream answers 500 with the SDK's text) ----------

/// A storage whose store refuses the key, one whose bucket is missing and one whose
/// endpoint nobody listens on: the listing answers 502 naming the storage and the store's
/// own code; a backup fails with the same text; `/ready` names each storage the start-up
/// check could not list; the secret appears nowhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_failures_are_named_in_listings_jobs_and_readiness() {
    let (s3s, bucket) = s3s_with_bucket("up-err");
    let closed = free_port();
    let wrong_secret = "wrong-secret-must-not-leak";
    let cases = [
        (
            format!(", access-key-id: {S3S_FS_ACCESS_KEY}, secret-access-key: {wrong_secret}"),
            s3s.endpoint(),
            bucket.clone(),
            "403",
        ),
        (
            format!(", access-key-id: {S3S_FS_ACCESS_KEY}, secret-access-key: {S3S_FS_SECRET_KEY}"),
            s3s.endpoint(),
            "no-such-bucket-here".to_string(),
            "NoSuchBucket",
        ),
        (
            format!(", access-key-id: {S3S_FS_ACCESS_KEY}, secret-access-key: {wrong_secret}"),
            format!("http://127.0.0.1:{closed}"),
            bucket.clone(),
            "ConnectionRefused",
        ),
    ];
    let node = AerospikeNode::start().unwrap();
    crate::backup::seed(&node, RECORDS);
    for (extra, endpoint, bucket, code) in cases {
        let abs = Abs::start(&node, &s3s_storage(&endpoint, &bucket, &extra), &[]);
        let (status, body) = abs.call("GET", "/v1/backups/full/r", None);
        assert_eq!(status, 502, "{code}: {body}");
        let msg = body["error"].as_str().unwrap_or_default().to_string();
        assert!(msg.starts_with("storage s: "), "{code}: {msg}");
        assert!(msg.contains(code), "{code}: {msg}");
        assert_eq!(body["field"], "storage.s", "{code}: {body}");
        // Every routine's listing fails the same way (ABS fails the whole listing).
        let (status, _) = abs.call("GET", "/v1/backups/full", None);
        assert_eq!(status, 502, "{code}");

        abs.trigger_full_backup();
        let failure = abs
            .wait_for_full_backup()
            .expect_err("a backup to a failing storage fails");
        assert!(failure.starts_with("storage s: "), "{code}: {failure}");
        assert!(failure.contains(code), "{code}: {failure}");

        let start = Instant::now();
        let ready = loop {
            let (status, text) = call(abs.port, "GET", "/ready", None);
            assert_eq!(
                status, 200,
                "a storage down does not make the service unready"
            );
            if text.contains("storage s:") || start.elapsed() > Duration::from_secs(30) {
                break text;
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        assert!(
            ready.contains("storage s:") && ready.contains(code),
            "{ready}"
        );

        for text in [msg.as_str(), failure.as_str(), ready.as_str(), &abs.log()] {
            assert!(!text.contains(wrong_secret), "the secret leaked: {text}");
            assert!(
                !text.contains(S3S_FS_SECRET_KEY),
                "the secret leaked: {text}"
            );
        }
    }
}
