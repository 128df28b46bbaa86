//! Secret Agent references resolved at job start (backup and restore), never at config load,
//! so a rotated secret is picked up by the next job.
//!
//! Each function returns a resolved copy of a config section (cluster, storage) whose secret
//! fields hold plain values, and [`ResolvedKeys`] for `key-secret` entries, so that
//! [`crate::aerospike::cluster`], [`crate::storage::cloud`] and the key loader only ever see plain values. The
//! resolved copies live in memory for the job; their `Debug` is redacted like every
//! [`Secret`]. Errors name the field, the reference and the agent, never a value.

use std::collections::BTreeMap;

use crate::config::{
    AerospikeCluster, BackupPolicy, Config, EncryptionPolicy, Secret, SecretAgent,
    Storage as StorageConfig,
};
use crate::secrets::{self, ResolvedKeys, SecretAgentClient, SecretError};

use crate::error::EngineError;
use crate::jobs::context::ResolvedRoutine;

/// The agent an entity uses: its inline `secret-agent`, else its `secret-agent-name`, else
/// `default` (the routine's or the restore request's agent).
///
/// # Errors
/// A name not configured in `secret-agents`, or an agent that cannot be set up.
pub fn pick_agent(
    agents: &BTreeMap<String, SecretAgent>,
    inline: Option<&SecretAgent>,
    name: Option<&str>,
    default: Option<&SecretAgentClient>,
) -> Result<Option<SecretAgentClient>, SecretError> {
    if inline.is_none() && name.is_none() {
        return Ok(default.cloned());
    }
    secrets::agent_for(agents, inline, name, None)
}

/// The cluster config with its password taken from the agent when it names one
/// (`password-key-secret`, or a `secrets:` reference in `password`); `password-path` keeps
/// precedence (ABS), so nothing is asked then.
///
/// # Errors
/// [`EngineError::Cluster`] naming the field, the reference and the agent.
pub async fn resolve_cluster(
    agents: &BTreeMap<String, SecretAgent>,
    name: &str,
    cluster: &AerospikeCluster,
    default: Option<&SecretAgentClient>,
) -> Result<AerospikeCluster, EngineError> {
    let mut out = cluster.clone();
    // The password of an encrypted client key, from the agent the credentials name (else
    // the default one).
    let key_password = out
        .tls
        .as_ref()
        .and_then(|t| t.key_file_password.clone())
        .filter(Secret::is_agent_reference);
    if let Some(reference) = key_password {
        let fail = |e: String| EngineError::Cluster {
            cluster: name.to_string(),
            message: format!("tls.key-file-password: {e}"),
        };
        let (inline, named) = out.credentials.as_ref().map_or((None, None), |c| {
            (c.secret_agent.clone(), c.secret_agent_name.clone())
        });
        let agent = pick_agent(agents, inline.as_ref(), named.as_deref(), default)
            .map_err(|e| fail(format!("secret-agent: {e}")))?;
        let value = secrets::resolve_field(agent.as_ref(), "tls.key-file-password", &reference)
            .await
            .map_err(|e| fail(e.to_string()))?;
        let text = value.expose_str().map_err(|m| fail(m.to_string()))?;
        if let Some(t) = out.tls.as_mut() {
            t.key_file_password = Some(Secret::new(text));
        }
    }
    let Some(c) = out.credentials.as_mut() else {
        return Ok(out);
    };
    let fail = |field: &str, e: SecretError| EngineError::Cluster {
        cluster: name.to_string(),
        message: format!("credentials.{field}: {e}"),
    };
    // password-path wins (ABS); else password-key-secret, else a `secrets:` password.
    let ask = match (&c.password_path, &c.password_key_secret, &c.password) {
        (Some(_), _, _) => None,
        (None, Some(entry), _) => Some(("password-key-secret", entry.clone())),
        (None, None, Some(p)) if p.is_agent_reference() => {
            Some(("password", p.expose().to_string()))
        }
        _ => None,
    };
    if let Some((field, entry)) = ask {
        let agent = pick_agent(
            agents,
            c.secret_agent.as_ref(),
            c.secret_agent_name.as_deref(),
            default,
        )
        .map_err(|e| fail("secret-agent", e))?;
        // Both forms name an agent entry; `resolve_entry` takes them with or without `secrets:`.
        let value = secrets::resolve_entry(agent.as_ref(), field, &entry)
            .await
            .map_err(|e| fail(field, e))?;
        let text = value.expose_str().map_err(|m| EngineError::Cluster {
            cluster: name.to_string(),
            message: format!("credentials: the password from the secret agent: {m}"),
        })?;
        c.password = Some(Secret::new(text));
    }
    if c.password_path.is_some() {
        // password-path wins; a reference left in password is never asked for.
        c.password = None;
    }
    // Resolved (or not needed): what is left is plain.
    c.password_key_secret = None;
    c.secret_agent = None;
    c.secret_agent_name = None;
    Ok(out)
}

/// The storage config with every `secrets:` credential replaced by the agent's value.
///
/// # Errors
/// [`EngineError::Config`] naming the storage, the field, the reference and the agent.
pub async fn resolve_storage(
    agents: &BTreeMap<String, SecretAgent>,
    label: &str,
    storage: &StorageConfig,
    default: Option<&SecretAgentClient>,
) -> Result<StorageConfig, EngineError> {
    let mut out = resolve_storage_references(agents, label, storage, default).await?;
    // A GCS service-account key is exchanged for a short-lived token here, in the host.
    if let StorageConfig::GcpStorage(g) = &mut out {
        let key = match (&g.key, &g.key_file_path) {
            (Some(k), _) => Some(k.expose().to_string()),
            (None, Some(path)) => Some(std::fs::read_to_string(path).map_err(|e| {
                EngineError::Config(format!("{label}: gcp-storage.key-file-path: {path}: {e}"))
            })?),
            (None, None) => None,
        };
        if let Some(key) = key {
            let token = crate::storage::gcp_token::access_token(&key)
                .await
                .map_err(|e| EngineError::Config(format!("{label}: gcp-storage key: {e}")))?;
            g.access_token = Some(Secret::new(token));
        }
    }
    // Azure AD client-secret credentials likewise become a bearer token here.
    if let StorageConfig::AzureStorage(a) = &mut out
        && a.account_key.is_none()
        && let Some(secret) = &a.client_secret
    {
        let (Some(tenant), Some(client)) = (&a.tenant_id, &a.client_id) else {
            return Err(EngineError::Config(format!(
                "{label}: azure-storage: client-secret needs tenant-id and client-id"
            )));
        };
        let secret = crate::storage::cloud::resolve_secret(secret, "azure-storage.client-secret")?;
        let authority = crate::storage::azure_token::authority(a.authority_host.as_deref());
        let token = crate::storage::azure_token::access_token(&authority, tenant, client, &secret)
            .await
            .map_err(|e| {
                EngineError::Config(format!("{label}: azure-storage client-secret: {e}"))
            })?;
        a.bearer_token = Some(Secret::new(token));
    }
    // AWS web identity (EKS service accounts): temporary keys from STS, in the host.
    if let StorageConfig::S3Storage(s) = &mut out
        && s.access_key_id.is_none()
        && s.s3_profile.is_none()
    {
        let env = crate::storage::cloud::AwsEnvironment::from_process();
        if let Some(keys) = crate::storage::cloud::web_identity_keys(&env, &s.s3_region)
            .await
            .map_err(|e| EngineError::Config(format!("{label}: s3-storage web identity: {e}")))?
        {
            s.access_key_id = Some(keys.access_key_id);
            s.secret_access_key = Some(Secret::new(keys.secret_access_key));
            s.session_token = keys.session_token.map(Secret::new);
        }
    }
    Ok(out)
}

async fn resolve_storage_references(
    agents: &BTreeMap<String, SecretAgent>,
    label: &str,
    storage: &StorageConfig,
    default: Option<&SecretAgentClient>,
) -> Result<StorageConfig, EngineError> {
    // An S3 access key id may be a `secrets:` reference too (ABS resolves both halves of the
    // key pair): it is held as a secret while references are resolved, then put back.
    let mut s3_key_id = match storage {
        StorageConfig::S3Storage(s) => s.access_key_id.clone().map(Secret::new),
        _ => None,
    };
    let mut out = resolve_references(agents, label, storage, default, &mut s3_key_id).await?;
    if let StorageConfig::S3Storage(s) = &mut out {
        s.access_key_id = s3_key_id.map(|k| k.expose().to_string());
    }
    Ok(out)
}

async fn resolve_references(
    agents: &BTreeMap<String, SecretAgent>,
    label: &str,
    storage: &StorageConfig,
    default: Option<&SecretAgentClient>,
    s3_key_id: &mut Option<Secret>,
) -> Result<StorageConfig, EngineError> {
    let mut out = storage.clone();
    if let StorageConfig::PluginStorage(p) = &mut out {
        // A plugin storage has no agent of its own: its references go to the default one.
        for (k, v) in &mut p.secrets {
            if v.is_agent_reference() {
                let field = format!("secrets.{k}");
                let value = secrets::resolve_field(default, &field, v)
                    .await
                    .map_err(|e| storage_error(label, &field, &e))?;
                *v = Secret::new(plain_text(label, &field, &value)?);
            }
        }
        return Ok(out);
    }
    let (inline, name, fields): (_, _, Vec<(String, &mut Option<Secret>)>) = match &mut out {
        StorageConfig::LocalStorage(_) => return Ok(out),
        StorageConfig::S3Storage(s) => (
            s.secret_agent.take(),
            s.secret_agent_name.take(),
            vec![
                ("s3-storage.access-key-id".to_string(), s3_key_id),
                (
                    "s3-storage.secret-access-key".to_string(),
                    &mut s.secret_access_key,
                ),
            ],
        ),
        StorageConfig::AzureStorage(a) => (
            a.secret_agent.take(),
            a.secret_agent_name.take(),
            vec![
                ("azure-storage.account-key".to_string(), &mut a.account_key),
                (
                    "azure-storage.client-secret".to_string(),
                    &mut a.client_secret,
                ),
            ],
        ),
        StorageConfig::GcpStorage(g) => (
            g.secret_agent.take(),
            g.secret_agent_name.take(),
            vec![("gcp-storage.key".to_string(), &mut g.key)],
        ),
        StorageConfig::PluginStorage(_) => unreachable!("handled above"),
    };
    if !fields
        .iter()
        .any(|(_, v)| v.as_ref().is_some_and(Secret::is_agent_reference))
    {
        return Ok(out);
    }
    let agent = pick_agent(agents, inline.as_ref(), name.as_deref(), default)
        .map_err(|e| storage_error(label, "secret-agent", &e))?;
    for (field, slot) in fields {
        if let Some(v) = slot.as_ref().filter(|v| v.is_agent_reference()) {
            let value = secrets::resolve_field(agent.as_ref(), &field, v)
                .await
                .map_err(|e| storage_error(label, &field, &e))?;
            *slot = Some(Secret::new(plain_text(label, &field, &value)?));
        }
    }
    Ok(out)
}

fn storage_error(label: &str, field: &str, e: &SecretError) -> EngineError {
    EngineError::Config(format!("storage {label}: {field}: {e}"))
}

fn plain_text(label: &str, field: &str, v: &secrets::SecretValue) -> Result<String, EngineError> {
    v.expose_str()
        .map(str::to_string)
        .map_err(|m| EngineError::Config(format!("storage {label}: {field}: {m}")))
}

/// The key material of every `key-secret` a backup policy names (its `encryption` and its
/// `pipeline:` steps), asked of `agent` (the routine's).
///
/// # Errors
/// [`EngineError::Config`] naming the field, the reference and the agent.
pub async fn resolve_policy_keys(
    policy: &BackupPolicy,
    agent: Option<&SecretAgentClient>,
) -> Result<ResolvedKeys, EngineError> {
    let mut entries: Vec<(&str, &str)> = Vec::new();
    if let Some(e) = &policy.encryption
        && let Some(s) = &e.key_secret
    {
        entries.push(("encryption.key-secret", s));
    }
    for step in policy.pipeline.iter().flatten() {
        if let Some(s) = &step.key_secret {
            entries.push(("pipeline.key-secret", s));
        }
    }
    resolve_keys(&entries, agent)
        .await
        .map_err(EngineError::Config)
}

/// The key material of a restore policy's `encryption.key-secret`.
///
/// # Errors
/// A message naming the field, the reference and the agent.
pub async fn resolve_restore_keys(
    encryption: Option<&EncryptionPolicy>,
    agent: Option<&SecretAgentClient>,
) -> Result<ResolvedKeys, String> {
    let entries: Vec<(&str, &str)> = encryption
        .and_then(|e| e.key_secret.as_deref())
        .map(|s| ("key-secret", s))
        .into_iter()
        .collect();
    resolve_keys(&entries, agent).await
}

async fn resolve_keys(
    entries: &[(&str, &str)],
    agent: Option<&SecretAgentClient>,
) -> Result<ResolvedKeys, String> {
    let mut keys = ResolvedKeys::default();
    for (field, entry) in entries {
        if keys.get(entry).is_some() {
            continue;
        }
        let value = secrets::resolve_entry(agent, field, entry)
            .await
            .map_err(|e| format!("{field}: {e}"))?;
        keys.insert(entry, value);
    }
    Ok(keys)
}

/// Resolves a backup routine for its job: its cluster and storage with plain credentials,
/// and the key material of its policy's `key-secret`s. The routine's `secret-agent` is the
/// agent for the keys and for a cluster or storage that names none of its own.
///
/// # Errors
/// As [`resolve_cluster`], [`resolve_storage`] and [`resolve_policy_keys`].
pub async fn resolve_routine_secrets(
    config: &Config,
    r: &mut ResolvedRoutine,
) -> Result<ResolvedKeys, EngineError> {
    let agent = secrets::agent_for(
        &config.secret_agents,
        None,
        r.routine.secret_agent.as_deref(),
        None,
    )
    .map_err(|e| EngineError::Config(format!("routine {}: secret-agent: {e}", r.name)))?;
    r.cluster = resolve_cluster(
        &config.secret_agents,
        &r.cluster_name,
        &r.cluster,
        agent.as_ref(),
    )
    .await?;
    r.storage = resolve_storage(
        &config.secret_agents,
        &r.routine.storage,
        &r.storage,
        agent.as_ref(),
    )
    .await?;
    resolve_policy_keys(&r.policy, agent.as_ref()).await
}

/// The storage of routine `routine` with its secrets resolved (the routine's `secret-agent`
/// as default), for listings, sweeps and retention outside a backup job.
///
/// # Errors
/// The routine or its storage is not configured, or as [`resolve_storage`].
pub async fn routine_storage(config: &Config, routine: &str) -> Result<StorageConfig, EngineError> {
    let r = config
        .backup_routines
        .get(routine)
        .ok_or_else(|| EngineError::Config(format!("routine {routine} not found")))?;
    routine_storage_named(config, routine, &r.storage).await
}

/// Storage `name` as `routine` reaches it (its own or a `copy-to` storage): credentials
/// resolved, with the routine's Secret Agent as the default.
///
/// # Errors
/// As [`resolve_storage`]; an unknown routine or storage.
pub async fn routine_storage_named(
    config: &Config,
    routine: &str,
    name: &str,
) -> Result<StorageConfig, EngineError> {
    let r = config
        .backup_routines
        .get(routine)
        .ok_or_else(|| EngineError::Config(format!("routine {routine} not found")))?;
    let storage = config
        .storage
        .get(name)
        .ok_or_else(|| EngineError::Config(format!("storage {name} not found")))?;
    let agent = secrets::agent_for(&config.secret_agents, None, r.secret_agent.as_deref(), None)
        .map_err(|e| EngineError::Config(format!("routine {routine}: secret-agent: {e}")))?;
    resolve_storage(&config.secret_agents, name, storage, agent.as_ref()).await
}
