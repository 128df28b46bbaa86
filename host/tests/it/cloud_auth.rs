//! Cloud credentials the host obtains for storage plugins: Azure AD client secrets (against
//! Azurite over HTTPS with its OAuth check on) and AWS web identity (against moto's STS).

use std::io::{BufRead, BufReader, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use abs::plugins::StorageSecrets;
use base64::Engine as _;
use testkit::emulators::{self, StandIn};

use crate::cloud::{
    bucket_name, cloud_jobs, cloud_round_trip, create_container_auth, registry, run_full,
};

fn tls_file(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data/tls")
        .join(name)
}

/// An unsigned JWT of the shape Azure AD issues for Azure Storage (Azurite checks the
/// claims, not the signature).
fn storage_jwt(tenant: &str) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let now = chrono::Utc::now().timestamp();
    let claims = serde_json::json!({
        "aud": "https://storage.azure.com",
        "iss": format!("https://sts.windows.net/{tenant}/"),
        "iat": now - 60, "nbf": now - 60, "exp": now + 3600,
        "tid": tenant, "appid": "abs-app",
    });
    format!(
        "{}.{}.c2ln",
        b64.encode(br#"{"alg":"RS256","typ":"JWT"}"#),
        b64.encode(claims.to_string())
    )
}

/// A stand-in for Azure AD's token endpoint: `POST /<tenant>/oauth2/v2.0/token` with the
/// client-credentials grant for `client`/`secret` answers a storage token; anything else is
/// refused as AAD refuses it (`invalid_client`). Returns its URL and the grants made.
fn aad_endpoint(
    tenant: &'static str,
    client: &'static str,
    secret: &'static str,
) -> (String, Arc<AtomicU32>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let granted = Arc::new(AtomicU32::new(0));
    let g = granted.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let (mut len, mut first, mut line) = (0usize, String::new(), String::new());
            while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                if first.is_empty() {
                    first = line.clone();
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
                line.clear();
            }
            let mut body = vec![0u8; len];
            let _ = reader.read_exact(&mut body);
            let body = String::from_utf8_lossy(&body).to_string();
            let has = |kv: &str| body.split('&').any(|p| p == kv);
            let ok = first.starts_with(&format!("POST /{tenant}/oauth2/v2.0/token "))
                && has("grant_type=client_credentials")
                && has(&format!("client_id={client}"))
                && has(&format!("client_secret={secret}"))
                && has("scope=https%3A%2F%2Fstorage.azure.com%2F.default");
            let mut out = conn;
            let (status, answer) = if ok {
                g.fetch_add(1, Ordering::SeqCst);
                (
                    "200 OK",
                    serde_json::json!({"token_type": "Bearer", "expires_in": 3599,
                                       "access_token": storage_jwt(tenant)})
                    .to_string(),
                )
            } else {
                (
                    "401 Unauthorized",
                    r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided."}"#.to_string(),
                )
            };
            let _ = write!(
                out,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                answer.len()
            );
        }
    });
    (url, granted)
}

/// Creates a container on an HTTPS Azurite with a Shared Key request of the test's own.
async fn create_container_https(azurite: &StandIn, container: &str) {
    let account = emulators::AZURITE_ACCOUNT;
    let (date, auth) = create_container_auth(container);
    let answer = abs::outbound::fetch(
        http::Method::PUT,
        &format!(
            "{}/{account}/{container}?restype=container",
            azurite.endpoint()
        ),
        &[
            ("x-ms-date", &date),
            ("x-ms-version", "2021-08-06"),
            ("authorization", &auth),
            ("content-length", "0"),
        ],
        Vec::new(),
        1 << 20,
        std::time::Duration::from_secs(30),
    )
    .await
    .expect("create container over https");
    assert_eq!(answer.status, 201, "create container: {}", answer.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_ad_client_secret_is_exchanged_by_the_host_and_round_trips_over_https() {
    // Azurite serves TLS with the test CA's certificate: outbound connections trust it the
    // way an operator's SSL_CERT_FILE would make them.
    abs::outbound::trust_pem_file(&tls_file("ca.pem")).unwrap();
    let azurite = emulators::azurite_https(&tls_file("server.pem"), &tls_file("server.key"))
        .expect("the Azurite stand-in must be installed (scripts/test)");
    let container = bucket_name("aad");
    create_container_https(&azurite, &container).await;
    let (aad, granted) = aad_endpoint("test-tenant", "abs-app", "client-secret-not-real");
    let endpoint = format!("{}/{}", azurite.endpoint(), emulators::AZURITE_ACCOUNT);
    let storage = format!(
        "    azure-storage: {{endpoint: \"{endpoint}\", container-name: {container}, path: abs/aad, tenant-id: test-tenant, client-id: abs-app, client-secret: client-secret-not-real, authority-host: \"{aad}\"}}"
    );
    // The test's own view of the container, with a token of its own.
    let backend = registry()
        .open_storage(
            abs::plugins::pipeline::AZURE_STORAGE_PLUGIN,
            &serde_json::json!({"endpoint": endpoint, "container-name": container, "path": "abs/aad"}),
            StorageSecrets(vec![("bearer-token".into(), storage_jwt("test-tenant"))]),
        )
        .expect("open azure backend");
    cloud_round_trip("azure with AAD", &storage, backend.clone()).await;
    // Exchanged once; the restore and listings reuse the cached token.
    assert_eq!(granted.load(Ordering::SeqCst), 1);

    // Without a token Azurite refuses the plugin: the bearer token is what let it in.
    let anonymous = registry()
        .open_storage(
            abs::plugins::pipeline::AZURE_STORAGE_PLUGIN,
            &serde_json::json!({"endpoint": endpoint, "container-name": container}),
            StorageSecrets(vec![("bearer-token".into(), "not-a-jwt".into())]),
        )
        .expect("open");
    assert!(anonymous.list("", true, None, 10).await.is_err());

    // A wrong client secret fails the job with AAD's error code, never the secret.
    let node = testkit::AerospikeNode::start().unwrap();
    crate::backup::seed(&node, 10);
    let (_, jobs) = cloud_jobs(
        &node,
        &format!(
            "    azure-storage: {{endpoint: \"{endpoint}\", container-name: {container}, tenant-id: test-tenant, client-id: abs-app, client-secret: wrong-secret-value, authority-host: \"{aad}\"}}"
        ),
    );
    match run_full(&jobs).await {
        abs::jobs::registry::JobOutcome::Failure(e) => {
            assert!(e.contains("invalid_client"), "{e}");
            assert!(e.contains("abs-app") && e.contains("test-tenant"), "{e}");
            assert!(!e.contains("wrong-secret-value"), "{e}");
        }
        other => panic!("expected a failure, got {other:?}"),
    }
    drop(azurite);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_web_identity_gets_temporary_keys_from_sts_that_write_to_the_bucket() {
    use abs::storage::cloud::{AwsEnvironment, s3_plugin_config, web_identity_keys};
    let (moto, bucket) = crate::cloud::moto_with_bucket("wi");
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(
        &token_file,
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW0ifQ.c2ln\n",
    )
    .unwrap();
    let env = AwsEnvironment {
        web_identity_token_file: Some(token_file.clone()),
        role_arn: Some("arn:aws:iam::123456789012:role/abs-backup".into()),
        role_session_name: Some("abs-test".into()),
        sts_endpoint: Some(moto.endpoint()),
        ..AwsEnvironment::default()
    };
    let keys = web_identity_keys(&env, "us-east-1")
        .await
        .unwrap()
        .expect("web identity applies");
    // STS hands out temporary keys: an ASIA id and a session token.
    assert!(
        keys.access_key_id.starts_with("ASIA"),
        "{}",
        keys.access_key_id
    );
    assert!(keys.session_token.as_deref().is_some_and(|t| !t.is_empty()));

    // The job's resolved storage carries them (and the session token) to the plugin.
    let s3 = abs::config::S3Storage {
        bucket: bucket.clone(),
        s3_region: "us-east-1".into(),
        s3_endpoint_override: Some(moto.endpoint()),
        access_key_id: Some(keys.access_key_id.clone()),
        secret_access_key: Some(abs::config::Secret::new(keys.secret_access_key.clone())),
        session_token: keys.session_token.clone().map(abs::config::Secret::new),
        ..Default::default()
    };
    let (options, secrets) = s3_plugin_config(&s3, &AwsEnvironment::default()).unwrap();
    let names: Vec<&str> = secrets.0.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["access-key-id", "secret-access-key", "session-token"]
    );
    let backend = registry()
        .open_storage(abs::plugins::pipeline::S3_STORAGE_PLUGIN, &options, secrets)
        .unwrap();
    abs::storage::files::put_object(&backend, "wi/probe.txt", b"hello".to_vec())
        .await
        .unwrap();
    assert_eq!(backend.stat("wi/probe.txt").await.unwrap().size, 5);

    // Static keys in the environment come first in the chain: no exchange.
    let with_keys = AwsEnvironment {
        access_key_id: Some("AKIDENV".into()),
        secret_access_key: Some("env-secret".into()),
        ..env.clone()
    };
    assert!(
        web_identity_keys(&with_keys, "us-east-1")
            .await
            .unwrap()
            .is_none()
    );

    // An unreachable STS fails naming the endpoint and the role, never the token.
    let closed = AwsEnvironment {
        sts_endpoint: Some(format!(
            "http://127.0.0.1:{}",
            emulators::free_port().unwrap()
        )),
        role_arn: Some("arn:aws:iam::123456789012:role/other".into()),
        ..env
    };
    let e = web_identity_keys(&closed, "us-east-1")
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("STS http://127.0.0.1:"), "{e}");
    assert!(!e.contains("eyJhbGci"), "{e}");
}

/// A token endpoint that grants any assertion a new token, `ya29.tok-<n>`, valid for 301 s:
/// just over the five minutes of slack the host keeps, so each token counts as due for
/// renewal a second after it was issued.
fn short_lived_token_endpoint() -> (String, Arc<AtomicU32>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/token", listener.local_addr().unwrap());
    let granted = Arc::new(AtomicU32::new(0));
    let g = granted.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let (mut len, mut line) = (0usize, String::new());
            while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
                line.clear();
            }
            let mut body = vec![0u8; len];
            let _ = reader.read_exact(&mut body);
            let n = g.fetch_add(1, Ordering::SeqCst) + 1;
            let answer = format!(r#"{{"access_token":"ya29.tok-{n}","expires_in":301}}"#);
            let mut out = conn;
            let _ = write!(
                out,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                answer.len()
            );
        }
    });
    (url, granted)
}

/// A job can outlive the token its storage was opened with: the host puts the current token
/// on each request of the plugin, renewing it as it runs out (here a token is due a second
/// after it was issued).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcs_requests_carry_a_renewed_token_when_the_first_one_runs_out() {
    use abs::config::{GcpStorage, Storage as StorageConfig};
    let gcs = emulators::fake_gcs()
        .expect("the fake-gcs-server stand-in must be installed (scripts/test)");
    let bucket = bucket_name("renew");
    gcs.create_gcs_bucket(&bucket).unwrap();
    let seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let s = seen.clone();
    let proxy = testkit::fault_proxy::FaultProxy::start(gcs.port(), move |head, _| {
        if let Some(a) = head.header("authorization") {
            s.lock().unwrap().push(a.to_string());
        }
        testkit::fault_proxy::Fault::Pass
    })
    .unwrap();
    let (token_uri, granted) = short_lived_token_endpoint();
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("sa.json");
    std::fs::write(
        &key_file,
        serde_json::json!({
            "type": "service_account",
            "client_email": "renew@test-project.iam.gserviceaccount.com",
            "private_key": std::fs::read_to_string(tls_file("client.key")).unwrap(),
            "token_uri": token_uri,
        })
        .to_string(),
    )
    .unwrap();
    let storage = StorageConfig::GcpStorage(GcpStorage {
        bucket_name: bucket.clone(),
        endpoint: Some(proxy.endpoint()),
        key_file_path: Some(key_file.display().to_string()),
        ..GcpStorage::default()
    });
    let resolved = abs::jobs::job_secrets::resolve_storage(
        &std::collections::BTreeMap::new(),
        "test",
        &storage,
        None,
    )
    .await
    .unwrap();
    assert_eq!(granted.load(Ordering::SeqCst), 1);
    let backend = abs::storage::wiring::open_storage(registry(), &resolved).unwrap();
    abs::storage::files::put_object(&backend, "renew/a", b"first".to_vec())
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    abs::storage::files::put_object(&backend, "renew/b", b"second".to_vec())
        .await
        .unwrap();
    assert_eq!(backend.stat("renew/b").await.unwrap().size, 6);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen.first().map(String::as_str),
        Some("Bearer ya29.tok-1"),
        "{seen:?}"
    );
    let last = seen.last().unwrap();
    assert!(
        last != "Bearer ya29.tok-1" && last.starts_with("Bearer ya29.tok-"),
        "{seen:?}"
    );
    assert!(granted.load(Ordering::SeqCst) >= 2);
}
