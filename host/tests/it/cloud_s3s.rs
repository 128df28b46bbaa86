//! The S3 plugin on a second, independent S3 server: `s3s-fs` (crates.io), written against the
//! protocol's model rather than against boto like moto, and unlike moto checking every
//! request's SigV4 signature. The storage behaviour suite, a zstd+AES256 backup → restore
//! round trip, and keys taken from the Secret Agent (both halves of the pair).

use std::sync::Arc;

use abs::plugins::pipeline::S3_STORAGE_PLUGIN;
use abs::plugins::suite::{SuiteOptions, run_storage_suite};
use abs::plugins::{PluginError, Storage, StorageSecrets};
use testkit::emulators::{self, S3S_FS_ACCESS_KEY, S3S_FS_SECRET_KEY, StandIn};
use testkit::secret_agent::SecretAgentDouble;

use crate::cloud::{bucket_name, cloud_round_trip, registry};

pub(crate) fn s3s_with_bucket(tag: &str) -> (StandIn, String) {
    let s3s = emulators::s3s_fs()
        .expect("the s3s-fs S3 stand-in must be installed (scripts/test sets ABS_S3S_FS)");
    let bucket = bucket_name(tag);
    s3s.create_bucket(&bucket).expect("create bucket");
    (s3s, bucket)
}

fn s3s_backend(s3s: &StandIn, bucket: &str, path: &str, secret: &str) -> Arc<dyn Storage> {
    registry()
        .open_storage(
            S3_STORAGE_PLUGIN,
            &serde_json::json!({
                "bucket": bucket,
                "s3-region": "us-east-1",
                "path": path,
                "s3-endpoint-override": s3s.endpoint(),
                "min-part-size": 5 * 1024 * 1024,
            }),
            StorageSecrets(vec![
                ("access-key-id".into(), S3S_FS_ACCESS_KEY.into()),
                ("secret-access-key".into(), secret.into()),
            ]),
        )
        .expect("open s3 backend")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_s3_passes_the_behaviour_suite_on_s3s_fs() {
    let (s3s, bucket) = s3s_with_bucket("suite");
    let backend = s3s_backend(&s3s, &bucket, "root/prefix", S3S_FS_SECRET_KEY);
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3s_fs_refuses_a_wrong_signature_so_its_acceptance_proves_ours() {
    let (s3s, bucket) = s3s_with_bucket("badsig");
    let backend = s3s_backend(&s3s, &bucket, "", "not-the-secret");
    let err = backend.list("", true, None, 10).await.unwrap_err();
    // A refused signature is not retried, says so, and names no secret.
    assert!(!matches!(err, PluginError::Temporary(_)), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("HTTP 403") && msg.contains("credentials"),
        "{msg}"
    );
    assert!(!msg.contains("not-the-secret"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3s_fs_backup_restores_every_record() {
    let (s3s, bucket) = s3s_with_bucket("rt");
    let storage = format!(
        "    s3-storage: {{bucket: {bucket}, s3-region: us-east-1, path: abs/rt, s3-endpoint-override: \"{}\", access-key-id: {S3S_FS_ACCESS_KEY}, secret-access-key: {S3S_FS_SECRET_KEY}}}",
        s3s.endpoint()
    );
    let backend = s3s_backend(&s3s, &bucket, "abs/rt", S3S_FS_SECRET_KEY);
    cloud_round_trip("s3s-fs", &storage, backend).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3s_fs_keys_from_the_secret_agent_both_halves_round_trip() {
    // s3s-fs checks the key id, so a `secrets:` reference sent as a literal key id fails here.
    let (s3s, bucket) = s3s_with_bucket("agent");
    let double = SecretAgentDouble::start().unwrap();
    double.set("aws", "key-id", S3S_FS_ACCESS_KEY.as_bytes());
    double.set("aws", "secret", S3S_FS_SECRET_KEY.as_bytes());
    // The storage entry, then the agent as a top-level section of the same document.
    let storage = format!(
        "    s3-storage: {{bucket: {bucket}, s3-region: us-east-1, path: abs/rt, s3-endpoint-override: \"{}\", access-key-id: \"secrets:aws:key-id\", secret-access-key: \"secrets:aws:secret\", secret-agent-name: sa}}{}",
        s3s.endpoint(),
        crate::cloud::agent_section(double.port())
    );
    let backend = s3s_backend(&s3s, &bucket, "abs/rt", S3S_FS_SECRET_KEY);
    cloud_round_trip("s3s-fs, keys from the agent", &storage, backend).await;
}
