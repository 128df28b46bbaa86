//! Credential and endpoint forms that ABS 3.x accepts, each against its stand-in with a
//! zstd+AES256 backup → restore round trip: an Azure SAS token carried in `endpoint`; a GCS
//! `endpoint` written as ABS writes it (the JSON API root, `http://host:port/storage/v1/`)
//! with no authentication, and with a service-account key inline and from the Secret Agent.
//! (S3 keys from the agent: `cloud_s3s`, where the server checks the key id.)

use std::sync::atomic::Ordering;

use abs::plugins::StorageSecrets;
use testkit::emulators::{self, StandIn};
use testkit::secret_agent::SecretAgentDouble;

use crate::cloud::{
    azure_backend, azurite_with_container, bucket_name, cloud_round_trip, hmac_sha256, registry,
    token_endpoint,
};

/// An account SAS for the Azurite development account (blob service; container and object
/// resources; read, write, delete, list, add, create), signed by the test with the account key
/// as the Azure Storage reference defines the string to sign for version 2020-08-04.
pub(crate) fn account_sas() -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let (sp, ss, srt, se, spr, sv) = (
        "rwdlac",
        "b",
        "sco",
        "2099-01-01T00:00:00Z",
        "https,http",
        "2020-08-04",
    );
    let to_sign = format!(
        "{}\n{sp}\n{ss}\n{srt}\n\n{se}\n\n{spr}\n{sv}\n",
        emulators::AZURITE_ACCOUNT
    );
    let sig = b64.encode(hmac_sha256(
        &b64.decode(emulators::AZURITE_KEY).unwrap(),
        to_sign.as_bytes(),
    ));
    let enc = |s: &str| {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect::<String>()
    };
    format!(
        "sv={sv}&ss={ss}&srt={srt}&sp={sp}&se={}&spr={}&sig={}",
        enc(se),
        enc(spr),
        enc(&sig)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_sas_token_in_the_endpoint_round_trips() {
    let (azurite, container) = azurite_with_container("sas");
    let sas = account_sas();
    let storage = format!(
        "    azure-storage: {{endpoint: \"{}/{}?{sas}\", container-name: {container}, path: abs/rt}}",
        azurite.endpoint(),
        emulators::AZURITE_ACCOUNT,
    );
    let backend = azure_backend(&azurite, &container, "abs/rt");
    cloud_round_trip("azure, SAS in the endpoint", &storage, backend).await;

    // A SAS the service refuses fails the job with Azure's answer and without the signature.
    let node = testkit::AerospikeNode::start().unwrap();
    crate::backup::seed(&node, 10);
    let forged = sas.replace("&sig=", "&sig=AAAA");
    let (_, jobs) = crate::cloud::cloud_jobs(
        &node,
        &format!(
            "    azure-storage: {{endpoint: \"{}/{}?{forged}\", container-name: {container}, path: abs/bad}}",
            azurite.endpoint(),
            emulators::AZURITE_ACCOUNT,
        ),
    );
    match crate::cloud::run_full(&jobs).await {
        abs::jobs::registry::JobOutcome::Failure(e) => {
            assert!(e.contains("403"), "{e}");
            assert!(!e.contains("sig="), "the SAS leaked into the error: {e}");
        }
        other => panic!("expected a failure, got {other:?}"),
    }
}

pub(crate) fn gcs_with_bucket(tag: &str) -> (StandIn, String) {
    let gcs = emulators::fake_gcs()
        .expect("the fake-gcs-server stand-in must be installed (scripts/test)");
    let bucket = bucket_name(tag);
    gcs.create_gcs_bucket(&bucket).unwrap();
    (gcs, bucket)
}

fn gcs_backend(gcs: &StandIn, bucket: &str) -> std::sync::Arc<dyn abs::plugins::Storage> {
    registry()
        .open_storage(
            abs::plugins::pipeline::GCS_STORAGE_PLUGIN,
            &serde_json::json!({"bucket-name": bucket, "endpoint": gcs.endpoint(), "path": "abs/rt"}),
            StorageSecrets::default(),
        )
        .expect("open gcs backend")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcs_endpoint_as_abs_writes_it_without_authentication_round_trips() {
    let (gcs, bucket) = gcs_with_bucket("absep");
    let storage = format!(
        "    gcp-storage: {{bucket-name: {bucket}, path: abs/rt, endpoint: \"{}/storage/v1/\"}}",
        gcs.endpoint()
    );
    cloud_round_trip("gcs, ABS endpoint", &storage, gcs_backend(&gcs, &bucket)).await;
}

/// A service-account key JSON whose token endpoint is the test's own, and the count of
/// grants that endpoint accepted.
pub(crate) fn service_account_key() -> (String, std::sync::Arc<std::sync::atomic::AtomicU32>) {
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
    let key = serde_json::json!({
        "type": "service_account",
        "client_email": email,
        "private_key": pem,
        "token_uri": token_uri,
    })
    .to_string();
    (key, granted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcs_key_json_inline_with_the_abs_endpoint_round_trips() {
    let (gcs, bucket) = gcs_with_bucket("inline");
    let (key, granted) = service_account_key();
    // One line of JSON in a single-quoted YAML scalar, as an operator would paste it.
    assert!(!key.contains('\''));
    let storage = format!(
        "    gcp-storage: {{bucket-name: {bucket}, path: abs/rt, endpoint: \"{}/storage/v1/\", key: '{key}'}}",
        gcs.endpoint()
    );
    cloud_round_trip("gcs, inline key", &storage, gcs_backend(&gcs, &bucket)).await;
    assert!(granted.load(Ordering::SeqCst) >= 1, "the key was exchanged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcs_key_json_from_the_secret_agent_with_the_abs_endpoint_round_trips() {
    let (gcs, bucket) = gcs_with_bucket("agent");
    let (key, granted) = service_account_key();
    let double = SecretAgentDouble::start().unwrap();
    double.set("gcp", "key", key.as_bytes());
    let storage = format!(
        "    gcp-storage: {{bucket-name: {bucket}, path: abs/rt, endpoint: \"{}/storage/v1/\", key: \"secrets:gcp:key\", secret-agent-name: sa}}{}",
        gcs.endpoint(),
        crate::cloud::agent_section(double.port())
    );
    cloud_round_trip(
        "gcs, key from the agent",
        &storage,
        gcs_backend(&gcs, &bucket),
    )
    .await;
    assert!(granted.load(Ordering::SeqCst) >= 1, "the key was exchanged");
}
