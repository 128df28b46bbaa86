//! ABS cloud storage configs → storage plugin options and secrets.
//!
//! Credentials are resolved here, in the host, and reach the plugin only as `secrets` (never
//! in options, logs or errors): literal values, `env:VAR`, `file:PATH`, and for S3 the AWS
//! credential chain that the service's own environment provides (`AWS_ACCESS_KEY_ID` /
//! `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`, then web identity (`AWS_WEB_IDENTITY_TOKEN_FILE`
//! and `AWS_ROLE_ARN`, exchanged at job start by [`web_identity_keys`]), then the shared
//! credentials file and the shared config file with `s3-profile`, `AWS_PROFILE` or `default`).

use std::path::PathBuf;

use serde_json::{Map, Value, json};

use crate::config::{AzureStorage, GcpStorage, S3Storage, Secret};
use crate::plugins::StorageSecrets;

use crate::error::EngineError;

/// The value of a secret field: literal, `env:VAR` or `file:PATH` (trimmed). `field` names
/// the config field in errors; the value itself is never part of one.
///
/// # Errors
/// A missing variable or unreadable file, or a Secret Agent reference (not supported yet).
pub fn resolve_secret(secret: &Secret, field: &str) -> Result<String, EngineError> {
    let raw = secret.expose();
    if secret.is_agent_reference() {
        return Err(EngineError::Config(format!(
            "{field}: Secret Agent references are not supported yet"
        )));
    }
    if let Some(var) = raw.strip_prefix("env:") {
        return std::env::var(var).map_err(|_| {
            EngineError::Config(format!("{field}: environment variable {var} is not set"))
        });
    }
    if let Some(path) = raw.strip_prefix("file:") {
        return std::fs::read_to_string(path)
            .map(|s| s.trim().to_string())
            .map_err(|e| EngineError::Config(format!("{field}: cannot read {path}: {e}")));
    }
    Ok(raw.to_string())
}

/// AWS keys found by the host.
#[derive(Clone, PartialEq, Eq)]
pub struct AwsKeys {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for AwsKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AwsKeys({}, **redacted**)", self.access_key_id)
    }
}

/// Where the AWS chain looks, taken from the process (tests pass their own).
#[derive(Debug, Clone, Default)]
pub struct AwsEnvironment {
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    pub profile: Option<String>,
    pub credentials_file: Option<PathBuf>,
    /// `AWS_CONFIG_FILE`, default `~/.aws/config`: the AWS CLI writes keys here too
    /// (`aws configure --profile`), under `[profile <name>]`.
    pub config_file: Option<PathBuf>,
    /// `AWS_WEB_IDENTITY_TOKEN_FILE`: an OIDC token (EKS service accounts) to exchange for
    /// temporary keys of `AWS_ROLE_ARN`.
    pub web_identity_token_file: Option<PathBuf>,
    pub role_arn: Option<String>,
    pub role_session_name: Option<String>,
    /// `AWS_ENDPOINT_URL_STS`, else `AWS_ENDPOINT_URL`; default the region's STS endpoint.
    pub sts_endpoint: Option<String>,
}

impl AwsEnvironment {
    /// The service's own environment.
    pub fn from_process() -> Self {
        let var = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
        AwsEnvironment {
            access_key_id: var("AWS_ACCESS_KEY_ID"),
            secret_access_key: var("AWS_SECRET_ACCESS_KEY"),
            session_token: var("AWS_SESSION_TOKEN"),
            profile: var("AWS_PROFILE"),
            credentials_file: var("AWS_SHARED_CREDENTIALS_FILE")
                .map(PathBuf::from)
                .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".aws/credentials"))),
            config_file: var("AWS_CONFIG_FILE")
                .map(PathBuf::from)
                .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".aws/config"))),
            web_identity_token_file: var("AWS_WEB_IDENTITY_TOKEN_FILE").map(PathBuf::from),
            role_arn: var("AWS_ROLE_ARN"),
            role_session_name: var("AWS_ROLE_SESSION_NAME"),
            sts_endpoint: var("AWS_ENDPOINT_URL_STS").or_else(|| var("AWS_ENDPOINT_URL")),
        }
    }
}

/// `[profile]` section of an AWS shared credentials file.
fn profile_keys(text: &str, profile: &str) -> Option<AwsKeys> {
    let mut in_section = false;
    let (mut id, mut secret, mut token) = (None, None, None);
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.trim();
            in_section = name == profile || name.strip_prefix("profile ") == Some(profile);
            continue;
        }
        if !in_section {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            let v = v.trim().to_string();
            match k.trim() {
                "aws_access_key_id" => id = Some(v),
                "aws_secret_access_key" => secret = Some(v),
                "aws_session_token" => token = Some(v),
                _ => {}
            }
        }
    }
    Some(AwsKeys {
        access_key_id: id?,
        secret_access_key: secret?,
        session_token: token,
    })
}

fn aws_chain(s3: &S3Storage, env: &AwsEnvironment) -> Result<Option<AwsKeys>, EngineError> {
    if let (Some(id), Some(secret)) = (&s3.access_key_id, &s3.secret_access_key) {
        return Ok(Some(AwsKeys {
            // Resolved like the secret half: an unresolved `secrets:` reference is an error
            // here, never a key id sent to the store.
            access_key_id: resolve_secret(&Secret::new(id.clone()), "s3-storage.access-key-id")?,
            secret_access_key: resolve_secret(secret, "s3-storage.secret-access-key")?,
            // Set only on a job's resolved copy, for keys from web identity.
            session_token: s3.session_token.as_ref().map(|t| t.expose().to_string()),
        }));
    }
    if s3.s3_profile.is_none()
        && let (Some(id), Some(secret)) = (&env.access_key_id, &env.secret_access_key)
    {
        return Ok(Some(AwsKeys {
            access_key_id: id.clone(),
            secret_access_key: secret.clone(),
            session_token: env.session_token.clone(),
        }));
    }
    let profile = s3
        .s3_profile
        .clone()
        .or_else(|| env.profile.clone())
        .unwrap_or_else(|| "default".into());
    // The credentials file wins over the config file, as in the AWS SDKs.
    let from_file = [&env.credentials_file, &env.config_file]
        .into_iter()
        .flatten()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .find_map(|text| profile_keys(&text, &profile));
    match from_file {
        Some(k) => Ok(Some(k)),
        None if s3.s3_profile.is_some() => Err(EngineError::Config(format!(
            "s3-storage.s3-profile: no credentials for profile {profile:?} in the shared credentials or config file"
        ))),
        // No credentials anywhere: unsigned requests (public buckets); S3 answers 403 otherwise.
        None => Ok(None),
    }
}

type StsCache =
    std::sync::Mutex<std::collections::HashMap<(String, String), (AwsKeys, std::time::Instant)>>;

/// Temporary keys for the web identity the environment names (`AWS_WEB_IDENTITY_TOKEN_FILE`
/// and `AWS_ROLE_ARN`), from STS `AssumeRoleWithWebIdentity`: the step of the AWS chain that
/// comes after static environment keys. `None` when the environment has static keys or no
/// web identity. Keys are cached until five minutes before they expire; the token file is
/// read again for each exchange (Kubernetes rotates it).
///
/// # Errors
/// An unreadable token file, an unreachable STS, or its refusal (with STS's error code).
pub async fn web_identity_keys(
    env: &AwsEnvironment,
    region: &str,
) -> Result<Option<AwsKeys>, EngineError> {
    static CACHE: std::sync::OnceLock<StsCache> = std::sync::OnceLock::new();
    let fail = |m: String| EngineError::Config(m);
    if env.access_key_id.is_some() && env.secret_access_key.is_some() {
        return Ok(None);
    }
    let (Some(file), Some(role)) = (&env.web_identity_token_file, &env.role_arn) else {
        return Ok(None);
    };
    let endpoint = env
        .sts_endpoint
        .clone()
        .unwrap_or_else(|| format!("https://sts.{region}.amazonaws.com"));
    let endpoint = endpoint.trim_end_matches('/').to_string();
    let id = (endpoint.clone(), role.clone());
    let cache = CACHE.get_or_init(Default::default);
    if let Some((keys, until)) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(&id)
        && until.saturating_duration_since(std::time::Instant::now())
            > std::time::Duration::from_secs(300)
    {
        return Ok(Some(keys.clone()));
    }
    let token = std::fs::read_to_string(file).map_err(|e| {
        fail(format!(
            "AWS_WEB_IDENTITY_TOKEN_FILE {}: {e}",
            file.display()
        ))
    })?;
    let session = env
        .role_session_name
        .clone()
        .unwrap_or_else(|| format!("aerospike-backup-service-{}", std::process::id()));
    let body = crate::outbound::form(&[
        ("Action", "AssumeRoleWithWebIdentity"),
        ("Version", "2011-06-15"),
        ("RoleArn", role),
        ("RoleSessionName", &session),
        ("WebIdentityToken", token.trim()),
    ]);
    let answer = crate::outbound::fetch(
        http::Method::POST,
        &format!("{endpoint}/"),
        &[("content-type", "application/x-www-form-urlencoded")],
        body,
        1 << 20,
        std::time::Duration::from_secs(30),
    )
    .await
    .map_err(|e| fail(format!("STS {endpoint}: {e}")))?;
    let text = answer.text();
    let tag = |name: &str| -> Option<String> {
        let open = format!("<{name}>");
        let start = text.find(&open)? + open.len();
        let end = start + text[start..].find(&format!("</{name}>"))?;
        Some(text[start..end].trim().to_string())
    };
    if answer.status != 200 {
        return Err(fail(format!(
            "STS {endpoint} refused AssumeRoleWithWebIdentity for {role}: HTTP {} {}",
            answer.status,
            tag("Code").unwrap_or_default()
        )));
    }
    let (Some(access_key_id), Some(secret_access_key)) =
        (tag("AccessKeyId"), tag("SecretAccessKey"))
    else {
        return Err(fail(format!(
            "STS {endpoint}: the answer holds no credentials"
        )));
    };
    let keys = AwsKeys {
        access_key_id,
        secret_access_key,
        session_token: tag("SessionToken"),
    };
    let left = tag("Expiration")
        .and_then(|e| chrono::DateTime::parse_from_rfc3339(&e).ok())
        .and_then(|e| {
            (e.with_timezone(&chrono::Utc) - chrono::Utc::now())
                .to_std()
                .ok()
        })
        .unwrap_or(std::time::Duration::from_secs(900));
    cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(id, (keys.clone(), std::time::Instant::now() + left));
    tracing::info!(role = %role, endpoint = %endpoint, "obtained temporary AWS keys by web identity");
    Ok(Some(keys))
}

/// `storage-s3` options and secrets for an ABS `s3-storage`.
///
/// # Errors
/// Unresolvable secrets or profile.
pub fn s3_plugin_config(
    s3: &S3Storage,
    env: &AwsEnvironment,
) -> Result<(Value, StorageSecrets), EngineError> {
    let mut o = Map::new();
    o.insert("bucket".into(), json!(s3.bucket));
    o.insert("s3-region".into(), json!(s3.s3_region));
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            o.insert(k.into(), v);
        }
    };
    put("path", s3.path.clone().map(Value::from));
    put(
        "s3-endpoint-override",
        s3.s3_endpoint_override
            .clone()
            .filter(|e| !e.trim().is_empty())
            .map(Value::from),
    );
    put("min-part-size", s3.min_part_size.map(Value::from));
    put(
        "max-async-connections",
        s3.max_async_connections.map(Value::from),
    );
    let (data, metadata) = s3
        .storage_class
        .as_ref()
        .map_or((None, None), |c| c.classes());
    put("storage-class", data.map(Value::from));
    put("metadata-storage-class", metadata.map(Value::from));
    let mut secrets = Vec::new();
    if let Some(k) = aws_chain(s3, env)? {
        secrets.push(("access-key-id".to_string(), k.access_key_id));
        secrets.push(("secret-access-key".to_string(), k.secret_access_key));
        if let Some(t) = k.session_token {
            secrets.push(("session-token".to_string(), t));
        }
    }
    Ok((Value::Object(o), StorageSecrets(secrets)))
}

/// `storage-azure` options and secrets for an ABS `azure-storage`: Shared Key
/// (`account-name` + `account-key`), or the AAD token the job exchanged `tenant-id` /
/// `client-id` / `client-secret` for ([`crate::storage::azure_token`]).
///
/// # Errors
/// Unresolvable secrets, AAD credentials not exchanged first, or no credentials at all.
pub fn azure_plugin_config(a: &AzureStorage) -> Result<(Value, StorageSecrets), EngineError> {
    let aad = a.client_secret.is_some() || a.tenant_id.is_some() || a.client_id.is_some();
    // ABS takes a SAS token as the query of `endpoint` (`https://acct.blob.core.windows.net/?sv=...&sig=...`):
    // the plugin gets the endpoint without it, and the token as a secret.
    let (endpoint, sas) = match a.endpoint.split_once('?') {
        Some((ep, q)) if !q.trim().is_empty() => (ep.to_string(), Some(q.trim().to_string())),
        _ => (a.endpoint.clone(), None),
    };
    let secret = match (&a.account_key, &a.bearer_token) {
        (Some(key), _) => (
            "account-key",
            resolve_secret(key, "azure-storage.account-key")?,
        ),
        (None, Some(token)) => ("bearer-token", token.expose().to_string()),
        (None, None) if !aad && sas.is_some() => ("sas-token", sas.clone().unwrap_or_default()),
        (None, None) if aad => {
            return Err(EngineError::Config(
                "azure-storage: the AAD credentials (tenant-id, client-id, client-secret) were not exchanged for a token before the storage was opened".into(),
            ));
        }
        (None, None) => {
            return Err(EngineError::Config(
                "azure-storage.account-key: is required (Shared Key), or a SAS token in the endpoint, or tenant-id, client-id and client-secret (Azure AD)".into(),
            ));
        }
    };
    let mut o = Map::new();
    o.insert("endpoint".into(), json!(endpoint));
    o.insert("container-name".into(), json!(a.container_name));
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            o.insert(k.into(), v);
        }
    };
    put("path", a.path.clone().map(Value::from));
    put("account-name", a.account_name.clone().map(Value::from));
    put("min-part-size", a.min_part_size.map(Value::from));
    let (data, metadata) = a
        .storage_class
        .as_ref()
        .map_or((None, None), |c| c.classes());
    put("storage-class", data.map(Value::from));
    put("metadata-storage-class", metadata.map(Value::from));
    Ok((
        Value::Object(o),
        StorageSecrets(vec![(secret.0.to_string(), secret.1)]),
    ))
}

/// For Azure AD credentials: the host renews the bearer token while the backend lives (a job
/// can outlive the token it started with). `None` for Shared Key.
pub fn azure_bearer_source(a: &AzureStorage) -> Option<crate::plugins::net::BearerSource> {
    if a.account_key.is_some() || a.bearer_token.is_none() {
        return None;
    }
    let tenant = a.tenant_id.clone()?;
    let client = a.client_id.clone()?;
    let secret = resolve_secret(a.client_secret.as_ref()?, "azure-storage.client-secret").ok()?;
    let authority = crate::storage::azure_token::authority(a.authority_host.as_deref());
    Some(crate::plugins::net::BearerSource::new(move || {
        let (authority, tenant, client, secret) = (
            authority.clone(),
            tenant.clone(),
            client.clone(),
            secret.clone(),
        );
        Box::pin(async move {
            crate::storage::azure_token::access_token(&authority, &tenant, &client, &secret).await
        })
    }))
}

/// For a service-account key: the host renews the bearer token while the backend lives.
/// `None` without a key.
///
/// # Errors
/// A `key-file-path` that cannot be read.
pub fn gcp_bearer_source(
    g: &GcpStorage,
) -> Result<Option<crate::plugins::net::BearerSource>, EngineError> {
    let key = match (&g.key, &g.key_file_path) {
        (Some(k), _) => k.expose().to_string(),
        (None, Some(path)) => std::fs::read_to_string(path)
            .map_err(|e| EngineError::Config(format!("gcp-storage.key-file-path: {path}: {e}")))?,
        (None, None) => return Ok(None),
    };
    Ok(Some(crate::plugins::net::BearerSource::new(move || {
        let key = key.clone();
        Box::pin(async move { crate::storage::gcp_token::access_token(&key).await })
    })))
}

/// `storage-gcs` options and secrets for an ABS `gcp-storage`. The bearer token is the one a
/// service-account key (`key`, `key-file-path`) was exchanged for at job start
/// ([`crate::storage::gcp_token`]), else `access_token` (`CLOUDSDK_AUTH_ACCESS_TOKEN`, gcloud's
/// variable for a ready token); without either, requests are unauthenticated (emulators,
/// public buckets).
///
/// # Errors
/// A key that was not exchanged first.
pub fn gcp_plugin_config(
    g: &GcpStorage,
    access_token: Option<String>,
) -> Result<(Value, StorageSecrets), EngineError> {
    // With a service-account key, the token the job exchanged it for (job_secrets).
    let access_token = match &g.access_token {
        Some(t) => Some(t.expose().to_string()),
        None if g.key.is_some() || g.key_file_path.is_some() => {
            return Err(EngineError::Config(
                "gcp-storage: the service-account key (key, key-file-path) was not exchanged for a token before the storage was opened".into(),
            ));
        }
        None => access_token,
    };
    let mut o = Map::new();
    o.insert("bucket-name".into(), json!(g.bucket_name));
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            o.insert(k.into(), v);
        }
    };
    put("path", g.path.clone().map(Value::from));
    put("endpoint", g.endpoint.clone().map(Value::from));
    put("min-part-size", g.min_part_size.map(Value::from));
    put("storage-class", g.storage_class.clone().map(Value::from));
    let secrets = access_token
        .filter(|t| !t.is_empty())
        .map(|t| vec![("access-token".to_string(), t)])
        .unwrap_or_default();
    Ok((Value::Object(o), StorageSecrets(secrets)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3() -> S3Storage {
        S3Storage {
            bucket: "b".into(),
            s3_region: "eu-west-1".into(),
            ..S3Storage::default()
        }
    }

    fn names(s: &StorageSecrets) -> Vec<(&str, &str)> {
        s.0.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
    }

    #[test]
    fn config_keys_win_and_stay_out_of_the_options() {
        let mut c = s3();
        c.access_key_id = Some("AKID".into());
        c.secret_access_key = Some(Secret::new("sekrit"));
        c.path = Some("backups".into());
        c.s3_endpoint_override = Some(String::new());
        let env = AwsEnvironment {
            access_key_id: Some("ENVKEY".into()),
            secret_access_key: Some("envsecret".into()),
            ..AwsEnvironment::default()
        };
        let (o, s) = s3_plugin_config(&c, &env).unwrap();
        assert_eq!(
            o,
            json!({"bucket": "b", "s3-region": "eu-west-1", "path": "backups"})
        );
        assert_eq!(
            names(&s),
            [("access-key-id", "AKID"), ("secret-access-key", "sekrit")]
        );
        assert!(!format!("{s:?}").contains("sekrit"));
    }

    #[test]
    fn environment_then_profile_file() {
        let env = AwsEnvironment {
            access_key_id: Some("ENVKEY".into()),
            secret_access_key: Some("envsecret".into()),
            session_token: Some("tok".into()),
            ..AwsEnvironment::default()
        };
        let (_, s) = s3_plugin_config(&s3(), &env).unwrap();
        assert_eq!(
            names(&s),
            [
                ("access-key-id", "ENVKEY"),
                ("secret-access-key", "envsecret"),
                ("session-token", "tok")
            ]
        );

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("credentials");
        std::fs::write(
            &file,
            "[default]\naws_access_key_id = D\naws_secret_access_key = DS\n\n[backup]\n# comment\naws_access_key_id=B\naws_secret_access_key=BS\n",
        )
        .unwrap();
        let env = AwsEnvironment {
            credentials_file: Some(file),
            ..AwsEnvironment::default()
        };
        let (_, s) = s3_plugin_config(&s3(), &env).unwrap();
        assert_eq!(names(&s)[0], ("access-key-id", "D"));
        let mut c = s3();
        c.s3_profile = Some("backup".into());
        let (_, s) = s3_plugin_config(&c, &env).unwrap();
        assert_eq!(names(&s)[1], ("secret-access-key", "BS"));
        c.s3_profile = Some("missing".into());
        let e = s3_plugin_config(&c, &env).unwrap_err();
        assert!(e.to_string().contains("s3-profile"), "{e}");
        let (_, s) = s3_plugin_config(&s3(), &AwsEnvironment::default()).unwrap();
        assert!(s.0.is_empty());

        // The config file (`[profile <name>]`) serves a profile the credentials file lacks.
        let config = dir.path().join("config");
        std::fs::write(
            &config,
            "[default]\nregion = eu-west-1\n\n[profile cli]\nregion = eu-west-1\naws_access_key_id = C\naws_secret_access_key = CS\n",
        )
        .unwrap();
        let env = AwsEnvironment {
            credentials_file: Some(dir.path().join("credentials")),
            config_file: Some(config),
            ..AwsEnvironment::default()
        };
        c.s3_profile = Some("cli".into());
        let (_, s) = s3_plugin_config(&c, &env).unwrap();
        assert_eq!(
            names(&s)[..2],
            [("access-key-id", "C"), ("secret-access-key", "CS")]
        );
        c.s3_profile = Some("backup".into());
        let (_, s) = s3_plugin_config(&c, &env).unwrap();
        assert_eq!(
            names(&s)[0],
            ("access-key-id", "B"),
            "the credentials file wins"
        );
    }

    #[test]
    fn azure_shared_key_or_the_exchanged_aad_token_goes_to_secrets() {
        let mut a = AzureStorage {
            endpoint: "https://acct.blob.core.windows.net".into(),
            container_name: "c".into(),
            account_name: Some("acct".into()),
            account_key: Some(Secret::new("a2V5")),
            storage_class: Some(crate::config::StorageClass::One("Cool".into())),
            ..AzureStorage::default()
        };
        let (o, s) = azure_plugin_config(&a).unwrap();
        assert_eq!(
            o,
            json!({"endpoint": "https://acct.blob.core.windows.net", "container-name": "c",
                   "account-name": "acct", "storage-class": "Cool"})
        );
        assert_eq!(names(&s), [("account-key", "a2V5")]);
        a.account_key = None;
        a.tenant_id = Some("t".into());
        let e = azure_plugin_config(&a).unwrap_err();
        assert!(e.to_string().contains("not exchanged"), "{e}");
        a.bearer_token = Some(Secret::new("tok"));
        let (_, s) = azure_plugin_config(&a).unwrap();
        assert_eq!(names(&s), [("bearer-token", "tok")]);
        a.tenant_id = None;
        a.bearer_token = None;
        let e = azure_plugin_config(&a).unwrap_err();
        assert!(e.to_string().contains("account-key"), "{e}");
    }

    #[test]
    fn gcp_options_and_token() {
        let mut g = GcpStorage {
            bucket_name: "b".into(),
            endpoint: Some("http://127.0.0.1:4443".into()),
            ..GcpStorage::default()
        };
        let (o, s) = gcp_plugin_config(&g, Some("tok".into())).unwrap();
        assert_eq!(
            o,
            json!({"bucket-name": "b", "endpoint": "http://127.0.0.1:4443"})
        );
        assert_eq!(names(&s), [("access-token", "tok")]);
        g.key_file_path = Some("sa.json".into());
        let e = gcp_plugin_config(&g, None).unwrap_err();
        assert!(e.to_string().contains("key-file-path"), "{e}");
        g.access_token = Some(Secret::new("exchanged"));
        let (_, s) = gcp_plugin_config(&g, Some("env".into())).unwrap();
        assert_eq!(names(&s), [("access-token", "exchanged")]);
    }

    #[test]
    fn secrets_from_env_and_file_name_the_field_when_missing() {
        let e = resolve_secret(&Secret::new("env:ABS_TEST_SURELY_UNSET_VAR"), "x.key").unwrap_err();
        assert!(
            e.to_string().contains("x.key") && e.to_string().contains("ABS_TEST_SURELY_UNSET_VAR")
        );
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("k");
        std::fs::write(&f, "value\n").unwrap();
        let s = Secret::new(format!("file:{}", f.display()));
        assert_eq!(resolve_secret(&s, "x").unwrap(), "value");
        assert_eq!(resolve_secret(&Secret::new("plain"), "x").unwrap(), "plain");
    }
}
