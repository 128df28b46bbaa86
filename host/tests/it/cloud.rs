//! Cloud storage plugins against real protocol stand-ins started on free ports (moto for
//! S3), and the network sandbox of storage plugins.
//!
//! Length: one test per storage behaviour and stand-in; the stand-ins are started by `testkit`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};

use abs::plugins::pipeline::S3_STORAGE_PLUGIN;
use abs::plugins::suite::{self, SuiteOptions, run_storage_suite};
use abs::plugins::{PluginError, Registry, Runtime, RuntimeConfig, Storage, StorageSecrets};
use bytes::Bytes;
use testkit::emulators::{self, StandIn};

pub(crate) fn registry() -> &'static Registry {
    static REG: OnceLock<Registry> = OnceLock::new();
    REG.get_or_init(|| {
        let rt = Runtime::new(RuntimeConfig {
            cache_dir: Some(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("plugin-cwasm")),
            max_instances: 32,
            ..RuntimeConfig::default()
        })
        .expect("runtime");
        Registry::with_defaults(&rt).expect("default plugins load")
    })
}

/// A bucket name no other test of this run uses (tests share nothing but may share moto).
pub(crate) fn bucket_name(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "abs-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub(crate) fn moto_with_bucket(tag: &str) -> (StandIn, String) {
    let moto = emulators::moto().expect("the moto S3 stand-in must be installed (scripts/test)");
    let bucket = bucket_name(tag);
    moto.create_bucket(&bucket).expect("create bucket");
    (moto, bucket)
}

pub(crate) fn test_keys() -> StorageSecrets {
    StorageSecrets(vec![
        ("access-key-id".into(), "AKIDTEST".into()),
        ("secret-access-key".into(), "test-secret-not-real".into()),
    ])
}

pub(crate) fn s3_backend(moto: &StandIn, bucket: &str, path: &str) -> Arc<dyn Storage> {
    registry()
        .open_storage(
            S3_STORAGE_PLUGIN,
            &serde_json::json!({
                "bucket": bucket,
                "s3-region": "us-east-1",
                "path": path,
                "s3-endpoint-override": moto.endpoint(),
                "min-part-size": 5 * 1024 * 1024,
            }),
            test_keys(),
        )
        .expect("open s3 backend")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_s3_passes_the_behaviour_suite_on_moto() {
    let (moto, bucket) = moto_with_bucket("suite");
    let backend = s3_backend(&moto, &bucket, "root/prefix");
    assert_eq!(
        backend.allowed_hosts(),
        [format!("127.0.0.1:{}", moto.port())]
    );
    let report = run_storage_suite(
        backend,
        &SuiteOptions {
            prefix: "suite/".into(),
            local_root: None,
            large_object_bytes: 12 * 1024 * 1024,
        },
    )
    .await;
    assert!(report.is_success(), "{report}");
    // Everything went under `path` in the bucket, path-style (ABS layout root).
    let (status, body) = moto
        .request(
            "GET",
            &format!("/{bucket}?list-type=2&prefix=root/prefix/suite/"),
            b"",
        )
        .unwrap();
    assert_eq!(status, 200);
    let listing = String::from_utf8_lossy(&body);
    assert!(listing.contains("<Key>root/prefix/suite/"), "{listing}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_multipart_is_one_part_per_write_and_abort_cleans_up() {
    let (moto, bucket) = moto_with_bucket("mpu");
    let backend = s3_backend(&moto, &bucket, "");
    let part = 5 * 1024 * 1024;
    let data = suite::pattern(2 * part + 1000, 7);

    let mut up = backend
        .begin_upload("a/three-parts.bin", None)
        .await
        .unwrap();
    for (i, chunk) in data.chunks(part).enumerate() {
        up.write_part(i as u32 + 1, Bytes::copy_from_slice(chunk))
            .await
            .unwrap();
    }
    let info = up.finish().await.unwrap();
    assert_eq!(info.size, data.len() as u64);
    // S3 multipart ETags end in `-<number of parts>`: one S3 part per write-part.
    assert!(
        info.etag.as_deref().is_some_and(|e| e.ends_with("-3")),
        "{info:?}"
    );
    let back = suite::read_range(backend.as_ref(), "a/three-parts.bin", 0, None, 1 << 20)
        .await
        .unwrap();
    assert!(back == data, "read back differs");

    let mut up = backend.begin_upload("a/aborted.bin", None).await.unwrap();
    up.write_part(1, Bytes::from(vec![1u8; part]))
        .await
        .unwrap();
    up.abort().await.unwrap();
    let (status, body) = moto
        .request("GET", &format!("/{bucket}?uploads"), b"")
        .unwrap();
    assert_eq!(status, 200);
    let uploads = String::from_utf8_lossy(&body);
    assert!(
        !uploads.contains("<UploadId>"),
        "an aborted upload is still open: {uploads}"
    );
    assert!(matches!(
        backend.stat("a/aborted.bin").await,
        Err(PluginError::NotFound)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_without_credentials_is_refused_by_the_service_not_hidden() {
    // moto rejects nothing, so check the plugin side: half a key pair is a config error.
    let (moto, bucket) = moto_with_bucket("creds");
    let err = registry()
        .open_storage(
            S3_STORAGE_PLUGIN,
            &serde_json::json!({
                "bucket": bucket, "s3-region": "us-east-1",
                "s3-endpoint-override": moto.endpoint(),
            }),
            StorageSecrets(vec![("access-key-id".into(), "AKID".into())]),
        )
        .unwrap_err();
    assert!(matches!(err, PluginError::InvalidConfig(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_over_plain_http_needs_an_http_endpoint_in_the_options() {
    // The same moto, named as https: the plugin asks for TLS, which the stand-in does not
    // speak, so the request fails; named as http it works (previous tests). What the host
    // refuses outright is plain http to a host the options do not name with http://.
    let (moto, bucket) = moto_with_bucket("tls");
    let backend = registry()
        .open_storage(
            S3_STORAGE_PLUGIN,
            &serde_json::json!({
                "bucket": bucket, "s3-region": "us-east-1",
                "s3-endpoint-override": format!("https://127.0.0.1:{}", moto.port()),
            }),
            test_keys(),
        )
        .unwrap();
    let err = backend.stat("x").await.unwrap_err();
    assert!(matches!(err, PluginError::Temporary(_)), "{err}");
}

/// A one-line HTTP server that counts the connections it accepts.
struct CountingServer {
    port: u16,
    accepted: Arc<AtomicU32>,
}

impl CountingServer {
    fn start() -> CountingServer {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicU32::new(0));
        let count = accepted.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { return };
                count.fetch_add(1, Ordering::SeqCst);
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf);
                let _ = conn.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                );
            }
        });
        CountingServer { port, accepted }
    }
}

fn net_plugin_registry() -> Registry {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/net-storage.wasm");
    let wasm = std::fs::read(&path).unwrap();
    let mut reg = registry()
        .with_user_plugins(&std::collections::BTreeMap::new())
        .unwrap();
    reg.insert_file("net-storage", &path, &wasm).unwrap();
    reg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storage_plugin_reaches_only_the_hosts_its_config_implies() {
    let server = CountingServer::start();
    let own = format!("127.0.0.1:{}", server.port);
    let reg = net_plugin_registry();
    let backend = reg
        .open_storage(
            "net-storage",
            &serde_json::json!({
                "allow": [own],
                "endpoint": format!("http://{own}"),
                "targets": {
                    "own": ["http", own],
                    "other-name": ["http", format!("localhost:{}", server.port)],
                    "other-port": ["http", "127.0.0.1:9"],
                    "public": ["https", "example.com"],
                },
            }),
            StorageSecrets::default(),
        )
        .unwrap();
    let body = suite::read_range(backend.as_ref(), "own", 0, None, 1024)
        .await
        .unwrap();
    assert_eq!(body, b"ok");
    assert_eq!(server.accepted.load(Ordering::SeqCst), 1);
    for key in ["other-name", "other-port", "public"] {
        let r = suite::read_range(backend.as_ref(), key, 0, None, 1024).await;
        assert!(matches!(r, Err(PluginError::Denied)), "{key}: {r:?}");
    }
    // Refused before any connection: the server saw only the allowed request.
    assert_eq!(server.accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_is_refused_unless_the_options_name_an_http_url() {
    let server = CountingServer::start();
    let own = format!("127.0.0.1:{}", server.port);
    let reg = net_plugin_registry();
    let backend = reg
        .open_storage(
            "net-storage",
            // The host is allowed, but nothing in the options says `http://`.
            &serde_json::json!({"allow": [own], "targets": {"own": ["http", own]}}),
            StorageSecrets::default(),
        )
        .unwrap();
    let r = suite::read_range(backend.as_ref(), "own", 0, None, 1024).await;
    assert!(matches!(r, Err(PluginError::Denied)), "{r:?}");
    assert_eq!(server.accepted.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_to_s3_lands_where_abs_puts_it_and_decodes_back_record_by_record() {
    use abs::asb::{AsbDecoder, AsbItem};
    use abs::config::{Config, ConfigStore, Format};
    use abs::jobs::backup::{EngineContext, ManualClock, build_pipeline};
    use abs::jobs::registry::{JobOutcome, JobRegistry, Trigger};
    use abs::metrics::Metrics;
    use abs::storage::layout::BackupKind;
    use testkit::AerospikeNode;

    let (moto, bucket) = moto_with_bucket("e2e");
    let node = AerospikeNode::start().unwrap();
    crate::backup::seed(&node, 500);
    let yaml = format!(
        r#"
aerospike-clusters:
  c: {{seed-nodes: [{{host-name: 127.0.0.1, port: {port}}}]}}
storage:
  s:
    s3-storage:
      bucket: {bucket}
      s3-region: us-east-1
      path: abs/prod
      s3-endpoint-override: {endpoint}
      access-key-id: AKIDTEST
      secret-access-key: test-secret-not-real
      min-part-size: 5242880
backup-policies:
  p: {{parallel: 2, compression: {{mode: ZSTD, level: 3}}, encryption: {{mode: AES256, key-file: "{key}"}}}}
backup-routines:
  r: {{interval-cron: "@daily", source-cluster: c, storage: s, backup-policy: p, namespaces: [test]}}
"#,
        port = node.port(),
        endpoint = moto.endpoint(),
        key = crate::backup::key_pem().display(),
    );
    let cfg = abs::config::parse::<Config>(&yaml, Format::Yaml).expect("config parses");
    let store = Arc::new(ConfigStore::in_memory(cfg));
    let ts = 1_800_000_000_000_i64;
    let ctx = Arc::new(EngineContext::new(
        crate::backup::plugins(),
        Arc::new(ManualClock::at_ms(ts)),
    ));
    let jobs = JobRegistry::with_context(store.clone(), Some(Arc::new(Metrics::new())), ctx);
    let t = jobs
        .start("r", BackupKind::Full, abs::scheduler::rules::admission)
        .await
        .unwrap();
    assert!(!matches!(t, Trigger::Skipped(_)), "{t:?}");
    match jobs.wait("r", BackupKind::Full).await.unwrap() {
        JobOutcome::Success(_) => {}
        other => panic!("backup to S3 failed: {other:?}"),
    }

    // The objects, read back through the plugin, are where ABS puts them:
    // <path>/<routine>/backup/<ts>/data/<namespace>/..., metadata.yaml last.
    let backend = s3_backend(&moto, &bucket, "abs/prod");
    let page = backend.list("r/", true, None, 1000).await.unwrap();
    let folder = format!("r/backup/{ts}/data/test/");
    let keys: Vec<&str> = page.objects.iter().map(|o| o.key.as_str()).collect();
    assert!(
        keys.contains(&format!("{folder}metadata.yaml").as_str()),
        "{keys:?}"
    );
    let asb: Vec<&str> = keys
        .iter()
        .copied()
        .filter(|k| k.starts_with(&folder) && k.ends_with(".asb"))
        .collect();
    assert!(!asb.is_empty(), "{keys:?}");
    let (status, _) = moto
        .request(
            "GET",
            &format!("/{bucket}/abs/prod/{folder}metadata.yaml"),
            b"",
        )
        .unwrap();
    assert_ne!(status, 404, "the raw S3 key carries the configured path");

    let policy = store.current().backup_policies["p"].clone();
    let (pipeline, compression, encryption) =
        build_pipeline(&crate::backup::plugins(), &policy).unwrap();
    assert_eq!((compression, encryption), ("ZSTD", "AES256"));
    let mut records = Vec::new();
    for key in asb {
        let stored = suite::read_range(backend.as_ref(), key, 0, None, 1 << 20)
            .await
            .unwrap();
        let mut dec = pipeline.decoder().unwrap();
        let mut plain = dec.push(&stored).unwrap();
        plain.extend(dec.finish().unwrap());
        let mut d = AsbDecoder::new(&plain[..]);
        while let Some(item) = d.next_item().unwrap() {
            if let AsbItem::Record(r) = item {
                records.push(r);
            }
        }
    }
    let client = crate::backup::connect(&node).await;
    let want = crate::backup::scan_all(&node, &client).await;
    crate::backup::assert_same_records(&crate::backup::by_digest(records), &want);
}

// ---- Azure Blob on Azurite ----------------------------------------------------------------

/// HMAC-SHA256 (RFC 2104) for the test's own set-up request.
pub(crate) fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut k = [0u8; 64];
    k[..key.len()].copy_from_slice(key);
    let pad = |b: u8| k.iter().map(|x| x ^ b).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(msg)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .to_vec()
}

/// The `x-ms-date` and Shared Key `Authorization` of a Create Container request for the
/// Azurite development account, signed by the test itself (independent of the plugin).
pub(crate) fn create_container_auth(container: &str) -> (String, String) {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let account = emulators::AZURITE_ACCOUNT;
    let date = chrono::Utc::now()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    let to_sign = format!(
        "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:2021-08-06\n/{account}/{account}/{container}\nrestype:container"
    );
    let sig = b64.encode(hmac_sha256(
        &b64.decode(emulators::AZURITE_KEY).unwrap(),
        to_sign.as_bytes(),
    ));
    (date, format!("SharedKey {account}:{sig}"))
}

/// Creates a container with a Shared Key request of the test's own (Azurite refuses
/// unsigned ones), independent of the plugin under test.
pub(crate) fn create_container(azurite: &StandIn, container: &str) {
    use std::io::{Read, Write};
    let account = emulators::AZURITE_ACCOUNT;
    let (date, auth) = create_container_auth(container);
    let mut s = std::net::TcpStream::connect(("127.0.0.1", azurite.port())).unwrap();
    write!(
        s,
        "PUT /{account}/{container}?restype=container HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nx-ms-date: {date}\r\nx-ms-version: 2021-08-06\r\nAuthorization: {auth}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        azurite.port()
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 201"), "create container: {resp}");
}

pub(crate) fn azurite_with_container(tag: &str) -> (StandIn, String) {
    let azurite =
        emulators::azurite().expect("the Azurite stand-in must be installed (scripts/test)");
    let container = bucket_name(tag);
    create_container(&azurite, &container);
    (azurite, container)
}

pub(crate) fn azure_backend(azurite: &StandIn, container: &str, path: &str) -> Arc<dyn Storage> {
    registry()
        .open_storage(
            abs::plugins::pipeline::AZURE_STORAGE_PLUGIN,
            &serde_json::json!({
                "endpoint": format!("{}/{}", azurite.endpoint(), emulators::AZURITE_ACCOUNT),
                "container-name": container,
                "account-name": emulators::AZURITE_ACCOUNT,
                "path": path,
                "min-part-size": 1024 * 1024,
            }),
            StorageSecrets(vec![("account-key".into(), emulators::AZURITE_KEY.into())]),
        )
        .expect("open azure backend")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_azure_passes_the_behaviour_suite_on_azurite() {
    let (azurite, container) = azurite_with_container("suite");
    let backend = azure_backend(&azurite, &container, "root");
    assert_eq!(
        backend.allowed_hosts(),
        [format!("127.0.0.1:{}", azurite.port())]
    );
    let report = run_storage_suite(
        backend.clone(),
        &SuiteOptions {
            prefix: "suite/".into(),
            local_root: None,
            large_object_bytes: 6 * 1024 * 1024,
        },
    )
    .await;
    assert!(report.is_success(), "{report}");
    // A wrong key is refused by Azurite, and the error says so without the key.
    let bad = registry()
        .open_storage(
            abs::plugins::pipeline::AZURE_STORAGE_PLUGIN,
            &serde_json::json!({
                "endpoint": format!("{}/{}", azurite.endpoint(), emulators::AZURITE_ACCOUNT),
                "container-name": container, "account-name": emulators::AZURITE_ACCOUNT,
            }),
            StorageSecrets(vec![("account-key".into(), "d3Jvbmcta2V5".into())]),
        )
        .unwrap();
    let err = bad.stat("root/suite/x").await.unwrap_err();
    assert!(!err.to_string().contains("d3Jvbmcta2V5"), "{err}");
    assert!(!matches!(err, PluginError::NotFound), "{err}");
}

// ---- Google Cloud Storage on fake-gcs-server ----------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_gcs_passes_the_behaviour_suite_on_fake_gcs_server() {
    let gcs = emulators::fake_gcs()
        .expect("the fake-gcs-server stand-in must be installed (scripts/test)");
    let bucket = bucket_name("suite");
    gcs.create_gcs_bucket(&bucket).unwrap();
    let backend = registry()
        .open_storage(
            abs::plugins::pipeline::GCS_STORAGE_PLUGIN,
            &serde_json::json!({
                "bucket-name": bucket,
                "endpoint": gcs.endpoint(),
                "path": "root",
                "min-part-size": 1024 * 1024,
            }),
            StorageSecrets::default(),
        )
        .expect("open gcs backend");
    assert_eq!(
        backend.allowed_hosts(),
        [format!("127.0.0.1:{}", gcs.port())]
    );
    let report = run_storage_suite(
        backend,
        &SuiteOptions {
            prefix: "suite/".into(),
            local_root: None,
            large_object_bytes: 5 * 1024 * 1024 + 1000,
        },
    )
    .await;
    assert!(report.is_success(), "{report}");
}

// ---- backup → restore through each cloud stand-in -----------------------------------------

/// A routine `r` backing up `test` of `node` with ZSTD+AES256 to `storage_yaml` (the `s`
/// storage entry), on a manual clock at [`ROUND_TRIP_TS`].
pub(crate) fn cloud_jobs(
    node: &testkit::AerospikeNode,
    storage_yaml: &str,
) -> (
    Arc<abs::config::ConfigStore>,
    abs::jobs::registry::JobRegistry,
) {
    cloud_jobs_parallel(node, storage_yaml, 2)
}

/// [`cloud_jobs`] with `parallel` writers.
pub(crate) fn cloud_jobs_parallel(
    node: &testkit::AerospikeNode,
    storage_yaml: &str,
    parallel: u32,
) -> (
    Arc<abs::config::ConfigStore>,
    abs::jobs::registry::JobRegistry,
) {
    use abs::config::{Config, ConfigStore, Format};
    use abs::jobs::backup::{EngineContext, ManualClock};
    let key = crate::backup::key_pem();
    let yaml = format!(
        r#"
aerospike-clusters:
  c: {{seed-nodes: [{{host-name: 127.0.0.1, port: {port}}}]}}
storage:
  s:
{storage_yaml}
backup-policies:
  p: {{parallel: {parallel}, compression: {{mode: ZSTD, level: 3}}, encryption: {{mode: AES256, key-file: "{key}"}}}}
backup-routines:
  r: {{interval-cron: "@daily", source-cluster: c, storage: s, backup-policy: p, namespaces: [test]}}
"#,
        port = node.port(),
        key = key.display(),
    );
    let cfg = abs::config::parse::<Config>(&yaml, Format::Yaml).expect("config parses");
    let store = Arc::new(ConfigStore::in_memory(cfg));
    let ctx = Arc::new(EngineContext::new(
        crate::backup::plugins(),
        Arc::new(ManualClock::at_ms(ROUND_TRIP_TS)),
    ));
    let metrics = Some(Arc::new(abs::metrics::Metrics::new()));
    let jobs = abs::jobs::registry::JobRegistry::with_context(store.clone(), metrics, ctx);
    (store, jobs)
}

const ROUND_TRIP_TS: i64 = 1_800_000_000_000;

/// Runs one full backup of the routine and returns its outcome.
pub(crate) async fn run_full(
    jobs: &abs::jobs::registry::JobRegistry,
) -> abs::jobs::registry::JobOutcome {
    use abs::storage::layout::BackupKind;
    jobs.start("r", BackupKind::Full, abs::scheduler::rules::admission)
        .await
        .unwrap();
    jobs.wait("r", BackupKind::Full).await.unwrap()
}

/// Removes every record of the test node (a truncate that leaves no tombstones).
pub(crate) fn empty_node(node: &testkit::AerospikeNode) {
    for ns in &node.store().namespaces {
        for p in &ns.parts {
            let mut p = p.write().unwrap();
            let digests: Vec<_> = p.keys().copied().collect();
            for d in digests {
                p.remove(&d);
            }
        }
    }
    assert_eq!(node.record_count("test"), 0);
}

/// A top-level `secret-agents` section naming the agent `sa` on `port`, to append to a
/// storage entry of [`cloud_jobs`] (the storage line, then the section).
pub(crate) fn agent_section(port: u16) -> String {
    format!(
        "\nsecret-agents:\n  sa: {{connection-type: tcp, address: 127.0.0.1, port: {port}, timeout: 3000}}"
    )
}

/// A ZSTD+AES256 full backup of 300 records to `storage_yaml` (the `s` storage entry), then a
/// restore of it into the emptied node: every record comes back, and the objects sit under
/// `<routine>/backup/<ts>/data/<namespace>/` as ABS lays them out (`backend` lists them, rooted
/// at the configured path).
pub(crate) async fn cloud_round_trip(what: &str, storage_yaml: &str, backend: Arc<dyn Storage>) {
    use abs::jobs::registry::JobOutcome;
    use abs::jobs::restore_jobs::{RestoreJobs, RestoreStatus};
    use abs::metrics::Metrics;
    use testkit::AerospikeNode;

    let node = AerospikeNode::start().unwrap();
    crate::backup::seed(&node, 300);
    let key = crate::backup::key_pem();
    let ts = ROUND_TRIP_TS;
    let (store, jobs) = cloud_jobs(&node, storage_yaml);
    let report = match run_full(&jobs).await {
        JobOutcome::Success(r) => r,
        other => panic!("{what}: backup failed: {other:?}"),
    };
    let data_key = report.namespaces[0].key.clone().expect("a folder");
    assert_eq!(data_key, format!("r/backup/{ts}/data/test"), "{what}");
    let page = backend
        .list(&format!("{data_key}/"), true, None, 1000)
        .await
        .unwrap();
    let names: Vec<&str> = page.objects.iter().map(|o| o.key.as_str()).collect();
    assert!(
        names.iter().any(|k| k.ends_with("/metadata.yaml")),
        "{what}: {names:?}"
    );
    assert!(
        names.iter().any(|k| k.ends_with(".asb")),
        "{what}: {names:?}"
    );

    let client = crate::backup::connect(&node).await;
    let want = crate::backup::scan_all(&node, &client).await;
    empty_node(&node);
    let restores = RestoreJobs::new(store.clone(), Some(Arc::new(Metrics::new())), jobs.clone());
    let req = serde_json::from_value(serde_json::json!({
        "backup-data-path": data_key,
        "destination-name": "c",
        "source-name": "s",
        "policy": {"encryption": {"mode": "AES256", "key-file": key}},
    }))
    .unwrap();
    let id = restores
        .start_request(&req, "full")
        .await
        .unwrap_or_else(|e| panic!("{what}: restore refused: {e}"));
    let v = restores.wait(id).await.unwrap();
    assert_eq!(v.status, RestoreStatus::Success, "{what}: {:?}", v.error);
    assert_eq!(v.counters.inserted_records, 300, "{what}");
    crate::backup::assert_same_records(&crate::backup::scan_all(&node, &client).await, &want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_backup_restores_every_record() {
    let (moto, bucket) = moto_with_bucket("rt");
    let storage = format!(
        "    s3-storage: {{bucket: {bucket}, s3-region: us-east-1, path: abs/rt, s3-endpoint-override: \"{}\", access-key-id: AKIDTEST, secret-access-key: test-secret-not-real}}",
        moto.endpoint()
    );
    let backend = s3_backend(&moto, &bucket, "abs/rt");
    cloud_round_trip("s3", &storage, backend).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_backup_restores_every_record() {
    let (azurite, container) = azurite_with_container("rt");
    let storage = format!(
        "    azure-storage: {{endpoint: \"{}/{}\", container-name: {container}, path: abs/rt, account-name: {}, account-key: \"{}\"}}",
        azurite.endpoint(),
        emulators::AZURITE_ACCOUNT,
        emulators::AZURITE_ACCOUNT,
        emulators::AZURITE_KEY
    );
    let backend = azure_backend(&azurite, &container, "abs/rt");
    cloud_round_trip("azure", &storage, backend).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcs_backup_restores_every_record() {
    let gcs = emulators::fake_gcs()
        .expect("the fake-gcs-server stand-in must be installed (scripts/test)");
    let bucket = bucket_name("rt");
    gcs.create_gcs_bucket(&bucket).unwrap();
    let storage = format!(
        "    gcp-storage: {{bucket-name: {bucket}, path: abs/rt, endpoint: \"{}\"}}",
        gcs.endpoint()
    );
    let backend = registry()
        .open_storage(
            abs::plugins::pipeline::GCS_STORAGE_PLUGIN,
            &serde_json::json!({"bucket-name": bucket, "endpoint": gcs.endpoint(), "path": "abs/rt"}),
            StorageSecrets::default(),
        )
        .expect("open gcs backend");
    cloud_round_trip("gcs", &storage, backend).await;
}

// ---- faults between a storage plugin and its stand-in -------------------------------------

fn s3_storage_yaml(endpoint: &str, bucket: &str) -> String {
    format!(
        "    s3-storage: {{bucket: {bucket}, s3-region: us-east-1, path: abs/rt, s3-endpoint-override: \"{endpoint}\", access-key-id: AKIDTEST, secret-access-key: test-secret-not-real}}"
    )
}

/// True for the uploads of backup data files (PUT of a `.asb` object or one of its parts).
fn is_data_upload(h: &testkit::fault_proxy::RequestHead) -> bool {
    h.method == "PUT" && h.target.contains(".asb")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_503s_and_connection_resets_mid_upload_are_retried_and_nothing_is_lost() {
    use std::sync::atomic::AtomicU64;
    use testkit::fault_proxy::{Fault, FaultProxy};
    let (moto, bucket) = moto_with_bucket("faults");
    // The first data upload gets a 503, the second is cut halfway through its body.
    let uploads = Arc::new(AtomicU64::new(0));
    let seen = uploads.clone();
    let proxy = FaultProxy::start(moto.port(), move |h, _| {
        if !is_data_upload(h) {
            return Fault::Pass;
        }
        match seen.fetch_add(1, Ordering::SeqCst) {
            0 => Fault::Status(503),
            1 => Fault::Reset,
            _ => Fault::Pass,
        }
    })
    .unwrap();
    let backend = s3_backend(&moto, &bucket, "abs/rt");
    cloud_round_trip(
        "s3 with faults",
        &s3_storage_yaml(&proxy.endpoint(), &bucket),
        backend,
    )
    .await;
    assert_eq!(proxy.faults(), 2, "both faults were met");
    assert!(
        uploads.load(Ordering::SeqCst) >= 3,
        "the broken uploads were sent again"
    );
}

/// Why a request head breaks the S3 API reference's request shapes, if it does: a
/// sub-resource given a value nobody documents (`uploads=1`), a signature in the query string
/// (presigned URL), or no `Authorization` header.
fn s3_request_shape_fault(h: &testkit::fault_proxy::RequestHead) -> Option<String> {
    let query = h.target.split_once('?').map_or("", |(_, q)| q);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        // Sub-resources the plugin uses that take no value.
        if matches!(name, "uploads" | "delete" | "acl" | "tagging") && !value.is_empty() {
            return Some(format!("sub-resource {name} with a value: {pair}"));
        }
        if name.to_ascii_lowercase().starts_with("x-amz-") {
            return Some(format!("signing parameter in the query: {pair}"));
        }
    }
    match h.header("authorization") {
        Some(a) if a.starts_with("AWS4-HMAC-SHA256 Credential=AKIDTEST/") => {}
        other => return Some(format!("authorization header: {other:?}")),
    }
    for name in ["x-amz-date", "x-amz-content-sha256"] {
        if h.header(name).is_none() {
            return Some(format!("no {name} header"));
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_requests_are_shaped_as_the_api_reference_writes_them() {
    use std::sync::Mutex;
    use testkit::fault_proxy::{Fault, FaultProxy};
    let (moto, bucket) = moto_with_bucket("shape");
    let heads = Arc::new(Mutex::new(Vec::new()));
    let seen = heads.clone();
    let proxy = FaultProxy::start(moto.port(), move |h, _| {
        seen.lock().unwrap().push(h.clone());
        Fault::Pass
    })
    .unwrap();
    let backend = registry()
        .open_storage(
            S3_STORAGE_PLUGIN,
            &serde_json::json!({
                "bucket": bucket,
                "s3-region": "us-east-1",
                "path": "shape",
                "s3-endpoint-override": proxy.endpoint(),
                "storage-class": "STANDARD_IA",
            }),
            test_keys(),
        )
        .expect("open s3 backend");
    // Every call of the interface: a multipart upload of two parts, an empty object, a
    // listing, a stat, a ranged read, an aborted upload (which lists open uploads) and deletes.
    let part = 5 * 1024 * 1024;
    let mut up = backend.begin_upload("a/two.asb", None).await.unwrap();
    up.write_part(1, Bytes::from(vec![1u8; part]))
        .await
        .unwrap();
    up.write_part(2, Bytes::from_static(b"tail")).await.unwrap();
    up.finish().await.unwrap();
    backend
        .begin_upload("a/empty", None)
        .await
        .unwrap()
        .finish()
        .await
        .unwrap();
    let page = backend.list("a/", false, None, 10).await.unwrap();
    assert_eq!(page.objects.len(), 2, "{page:?}");
    assert_eq!(
        backend.stat("a/two.asb").await.unwrap().size,
        part as u64 + 4
    );
    let back = suite::read_range(backend.as_ref(), "a/two.asb", part as u64, None, 1 << 20)
        .await
        .unwrap();
    assert_eq!(back, b"tail");
    let mut up = backend.begin_upload("a/gone.asb", None).await.unwrap();
    up.write_part(1, Bytes::from_static(b"x")).await.unwrap();
    up.abort().await.unwrap();
    backend.delete("a/two.asb").await.unwrap();
    backend.delete("a/empty").await.unwrap();

    let heads = heads.lock().unwrap();
    let targets: Vec<String> = heads
        .iter()
        .map(|h| format!("{} {}", h.method, h.target))
        .collect();
    // Each kind of request was seen, and the sub-resources are bare.
    for want in [
        "POST /{b}/shape/a/two.asb?uploads",
        "PUT /{b}/shape/a/two.asb?partNumber=2&uploadId=",
        "POST /{b}/shape/a/two.asb?uploadId=",
        "PUT /{b}/shape/a/empty",
        "GET /{b}/?list-type=2",
        "HEAD /{b}/shape/a/two.asb",
        "GET /{b}/?uploads&prefix=shape%2Fa%2Fgone.asb",
        "DELETE /{b}/shape/a/gone.asb?uploadId=",
        "DELETE /{b}/shape/a/two.asb",
    ] {
        let want = want.replace("{b}", &bucket);
        assert!(
            targets.iter().any(|t| t.starts_with(&want)),
            "no request {want}: {targets:#?}"
        );
    }
    for h in heads.iter() {
        if let Some(why) = s3_request_shape_fault(h) {
            panic!("{} {}: {why}", h.method, h.target);
        }
    }
    // The storage class is a signed header of the requests that create objects.
    let creates: Vec<_> = heads
        .iter()
        .filter(|h| h.method == "POST" && h.target.ends_with("?uploads"))
        .collect();
    assert!(!creates.is_empty());
    for h in creates {
        assert_eq!(h.header("x-amz-storage-class"), Some("STANDARD_IA"));
        assert!(
            h.header("authorization")
                .is_some_and(|a| a.contains("x-amz-storage-class")),
            "{:?}",
            h.header("authorization")
        );
    }
    // The rule itself refuses what the plugin used to send.
    let presigned = testkit::fault_proxy::RequestHead {
        method: "POST".into(),
        target: "/b/k?uploads=1&X-Amz-Signature=ab".into(),
        headers: vec![],
    };
    assert!(s3_request_shape_fault(&presigned).is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_storage_class_is_sent_with_every_object_created() {
    let creations = object_creations_with_class("class", "STANDARD_IA").await;
    assert!(
        creations.iter().any(|h| h.target.contains(".asb"))
            && creations.iter().any(|h| h.target.contains("metadata.yaml")),
        "{creations:?}"
    );
    for h in creations {
        assert_eq!(
            h.header("x-amz-storage-class"),
            Some("STANDARD_IA"),
            "{} {}",
            h.method,
            h.target
        );
    }
}

/// ABS's `storage-class: {data, metadata}`: the `.asb` files in the data class, every other
/// object (metadata, checksums, sidecars) in the metadata class.
#[tokio::test]
async fn s3_storage_class_data_and_metadata_go_to_their_objects() {
    let creations =
        object_creations_with_class("split", "{data: GLACIER_IR, metadata: STANDARD}").await;
    let (mut data, mut other) = (0, 0);
    for h in creations {
        let path = h.target.split('?').next().unwrap_or_default();
        let want = if path.ends_with(".asb") {
            data += 1;
            "GLACIER_IR"
        } else {
            other += 1;
            "STANDARD"
        };
        assert_eq!(
            h.header("x-amz-storage-class"),
            Some(want),
            "{} {}",
            h.method,
            h.target
        );
    }
    assert!(data > 0 && other > 0, "{data} data objects, {other} others");
    // Metadata in a slow class is refused naming the field, as ABS does.
    let cfg = abs::config::parse::<abs::config::Config>(
        "storage:\n  s: {s3-storage: {bucket: b, s3-region: r, storage-class: {data: GLACIER, metadata: DEEP_ARCHIVE}}}\n",
        abs::config::Format::Yaml,
    )
    .unwrap();
    let text = format!("{:?}", abs::config::validate(&cfg).unwrap_err());
    assert!(
        text.contains("storage.s.s3-storage.storage-class.metadata"),
        "{text}"
    );
}

/// A zstd+AES256 round trip through moto behind a proxy, with `storage-class: <class>`
/// (flow YAML); the requests that created an object: a PutObject (a PUT that is not an
/// UploadPart) or a CreateMultipartUpload (POST ?uploads), where S3 takes the class.
async fn object_creations_with_class(
    tag: &str,
    class: &str,
) -> Vec<testkit::fault_proxy::RequestHead> {
    use std::sync::Mutex;
    use testkit::fault_proxy::{Fault, FaultProxy};
    let (moto, bucket) = moto_with_bucket(tag);
    let heads = Arc::new(Mutex::new(Vec::new()));
    let seen = heads.clone();
    let proxy = FaultProxy::start(moto.port(), move |h, _| {
        seen.lock().unwrap().push(h.clone());
        Fault::Pass
    })
    .unwrap();
    let storage = format!(
        "    s3-storage: {{bucket: {bucket}, s3-region: us-east-1, path: abs/rt, s3-endpoint-override: \"{}\", access-key-id: AKIDTEST, secret-access-key: test-secret-not-real, storage-class: {class}}}",
        proxy.endpoint()
    );
    cloud_round_trip(
        &format!("s3 with storage-class {class}"),
        &storage,
        s3_backend(&moto, &bucket, "abs/rt"),
    )
    .await;
    let heads = heads.lock().unwrap();
    heads
        .iter()
        .filter(|h| {
            (h.method == "PUT" && !h.target.contains("partNumber="))
                || (h.method == "POST" && h.target.contains("?uploads"))
        })
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_backup_with_more_writers_than_storage_slots_completes() {
    // Each writer holds an open upload (a storage slot) and, at the end of its file,
    // deletes the file's open-marker: with more writers than slots (16 per job) that
    // delete must not wait for a slot its own finished upload still holds.
    let (moto, bucket) = moto_with_bucket("wide");
    let node = testkit::AerospikeNode::start().unwrap();
    crate::backup::seed(&node, 600);
    let (_, jobs) = cloud_jobs_parallel(&node, &s3_storage_yaml(&moto.endpoint(), &bucket), 24);
    let outcome = tokio::time::timeout(std::time::Duration::from_secs(120), run_full(&jobs))
        .await
        .expect("the backup finished (no writer waits on another)");
    match outcome {
        abs::jobs::registry::JobOutcome::Success(r) => assert_eq!(r.records(), 600),
        other => panic!("{other:?}"),
    }
}

/// The most S3 requests in flight at once during a backup through a proxy that holds each
/// request 100 ms, with `max-async-connections` (ABS's bound on simultaneous S3 requests,
/// the `MaxConnsPerHost` of its model) set to `limit`.
async fn peak_s3_requests(limit: u32) -> u64 {
    use std::sync::atomic::AtomicU64;
    use testkit::fault_proxy::{Fault, FaultProxy};
    let (moto, bucket) = moto_with_bucket("conns");
    let in_flight = Arc::new(AtomicU64::new(0));
    let peak = Arc::new(AtomicU64::new(0));
    let (i, p) = (in_flight.clone(), peak.clone());
    let proxy = FaultProxy::start(moto.port(), move |_, _| {
        let now = i.fetch_add(1, Ordering::SeqCst) + 1;
        p.fetch_max(now, Ordering::SeqCst);
        std::thread::sleep(std::time::Duration::from_millis(100));
        i.fetch_sub(1, Ordering::SeqCst);
        Fault::Pass
    })
    .unwrap();
    let node = testkit::AerospikeNode::start().unwrap();
    crate::backup::seed(&node, 300);
    let storage = format!(
        "    s3-storage: {{bucket: {bucket}, s3-region: us-east-1, path: abs/conns, s3-endpoint-override: \"{}\", access-key-id: AKIDTEST, secret-access-key: test-secret-not-real, max-async-connections: {limit}}}",
        proxy.endpoint()
    );
    let (_, jobs) = cloud_jobs(&node, &storage);
    match run_full(&jobs).await {
        abs::jobs::registry::JobOutcome::Success(_) => {}
        other => panic!("limit {limit}: {other:?}"),
    }
    peak.load(Ordering::SeqCst)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_max_async_connections_bounds_the_requests_in_flight() {
    // Two writers (`parallel: 2`) overlap their requests when allowed to, so a bound of
    // one is seen to hold, not just to go unchallenged.
    assert!(
        peak_s3_requests(8).await > 1,
        "the writers never overlapped"
    );
    assert_eq!(peak_s3_requests(1).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_uploads_that_keep_failing_fail_the_job_and_nothing_is_listed() {
    use abs::jobs::registry::JobOutcome;
    use testkit::fault_proxy::{Fault, FaultProxy};
    let (moto, bucket) = moto_with_bucket("down");
    let proxy = FaultProxy::start(moto.port(), |h, _| {
        if is_data_upload(h) {
            Fault::Status(503)
        } else {
            Fault::Pass
        }
    })
    .unwrap();
    let node = testkit::AerospikeNode::start().unwrap();
    crate::backup::seed(&node, 100);
    let (_store, jobs) = cloud_jobs(&node, &s3_storage_yaml(&proxy.endpoint(), &bucket));
    match run_full(&jobs).await {
        JobOutcome::Failure(e) => {
            assert!(e.contains("503"), "the job names the cause: {e}");
            assert!(!e.contains("test-secret-not-real"), "{e}");
        }
        other => panic!("expected a failure, got {other:?}"),
    }
    assert!(proxy.faults() > 1, "each part was retried before giving up");
    // Nothing is listed, and no metadata (the completion marker) was written.
    let backend = s3_backend(&moto, &bucket, "abs/rt");
    let page = backend.list("r/", true, None, 1000).await.unwrap();
    assert!(
        !page
            .objects
            .iter()
            .any(|o| o.key.ends_with("metadata.yaml")),
        "{:?}",
        page.objects
    );
    assert!(jobs.state("r").last_full.is_none());
}

// ---- GCS with a service-account key --------------------------------------------------------

/// A token endpoint of the test's own: checks that the grant is an RS256 JWT signed by the
/// service account's key with the expected claims, then answers a token. Returns its URL and
/// the count of grants it accepted.
pub(crate) fn token_endpoint(
    public_key_der: Vec<u8>,
    email: &'static str,
) -> (String, Arc<AtomicU32>) {
    use base64::Engine as _;
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/token", listener.local_addr().unwrap());
    let granted = Arc::new(AtomicU32::new(0));
    let (g, aud) = (granted.clone(), url.clone());
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut len = 0usize;
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap() > 0 && line != "\r\n" {
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
                line.clear();
            }
            let mut body = vec![0u8; len];
            reader.read_exact(&mut body).unwrap();
            let body = String::from_utf8(body).unwrap();
            let jwt = body
                .split('&')
                .find_map(|kv| kv.strip_prefix("assertion="))
                .unwrap_or_default();
            let parts: Vec<&str> = jwt.split('.').collect();
            let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
            let ok = parts.len() == 3
                && body
                    .contains("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer")
                && ring::signature::UnparsedPublicKey::new(
                    &ring::signature::RSA_PKCS1_2048_8192_SHA256,
                    &public_key_der,
                )
                .verify(
                    format!("{}.{}", parts[0], parts[1]).as_bytes(),
                    &b64.decode(parts[2]).unwrap_or_default(),
                )
                .is_ok()
                && {
                    let claims: serde_json::Value =
                        serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
                    claims["iss"] == email
                        && claims["aud"] == aud.as_str()
                        && claims["scope"]
                            .as_str()
                            .is_some_and(|s| s.contains("devstorage"))
                };
            let mut out = conn;
            if ok {
                g.fetch_add(1, Ordering::SeqCst);
                let answer =
                    r#"{"access_token":"ya29.test-token","expires_in":3600,"token_type":"Bearer"}"#;
                let _ = write!(
                    out,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                    answer.len()
                );
            } else {
                let _ = write!(
                    out,
                    "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
            }
        }
    });
    (url, granted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcs_with_a_service_account_key_exchanges_it_for_a_token_and_round_trips() {
    use rustls::pki_types::PrivateKeyDer;
    use rustls::pki_types::pem::PemObject;
    let pem_path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/tls/client.key");
    let pem = std::fs::read_to_string(&pem_path).unwrap();
    let der = PrivateKeyDer::from_pem_slice(pem.as_bytes()).unwrap();
    let pair = ring::signature::RsaKeyPair::from_pkcs8(der.secret_der()).unwrap();
    let email = "backup@test-project.iam.gserviceaccount.com";
    let (token_uri, granted) = token_endpoint(
        ring::signature::KeyPair::public_key(&pair)
            .as_ref()
            .to_vec(),
        email,
    );
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("sa.json");
    std::fs::write(
        &key_file,
        serde_json::json!({
            "type": "service_account",
            "client_email": email,
            "private_key": pem,
            "token_uri": token_uri,
        })
        .to_string(),
    )
    .unwrap();
    let gcs = emulators::fake_gcs()
        .expect("the fake-gcs-server stand-in must be installed (scripts/test)");
    let bucket = bucket_name("sa");
    gcs.create_gcs_bucket(&bucket).unwrap();
    let storage = format!(
        "    gcp-storage: {{bucket-name: {bucket}, path: abs/rt, endpoint: \"{}\", key-file-path: \"{}\"}}",
        gcs.endpoint(),
        key_file.display()
    );
    let backend = registry()
        .open_storage(
            abs::plugins::pipeline::GCS_STORAGE_PLUGIN,
            &serde_json::json!({"bucket-name": bucket, "endpoint": gcs.endpoint(), "path": "abs/rt"}),
            StorageSecrets::default(),
        )
        .expect("open gcs backend");
    cloud_round_trip("gcs with a key", &storage, backend).await;
    // Exchanged once, then reused from the cache by the restore and listings.
    assert_eq!(granted.load(Ordering::SeqCst), 1);

    // A key the endpoint does not accept fails the job naming the account, never the key.
    let other =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/tls/server.key");
    let wrong = dir.path().join("wrong.json");
    std::fs::write(
        &wrong,
        serde_json::json!({
            "client_email": "other@test-project.iam.gserviceaccount.com",
            "private_key": std::fs::read_to_string(other).unwrap(),
            "token_uri": token_uri,
        })
        .to_string(),
    )
    .unwrap();
    let node = testkit::AerospikeNode::start().unwrap();
    crate::backup::seed(&node, 10);
    let (_, jobs) = cloud_jobs(
        &node,
        &format!(
            "    gcp-storage: {{bucket-name: {bucket}, endpoint: \"{}\", key-file-path: \"{}\"}}",
            gcs.endpoint(),
            wrong.display()
        ),
    );
    match run_full(&jobs).await {
        abs::jobs::registry::JobOutcome::Failure(e) => {
            assert!(e.contains("other@test-project"), "{e}");
            assert!(!e.contains("PRIVATE KEY"), "{e}");
        }
        other => panic!("expected a failure, got {other:?}"),
    }
}
