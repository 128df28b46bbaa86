//! Azure AD (Microsoft Entra ID) client-secret credentials → an OAuth2 access token for
//! Azure Storage (the client-credentials grant), obtained in the host: the client secret never
//! enters the storage plugin, which only sees the short-lived bearer token.
//!
//! The token endpoint is `<authority>/<tenant-id>/oauth2/v2.0/token`; the authority is the
//! storage's `authority-host`, else `AZURE_AUTHORITY_HOST` (the Azure SDKs' variable, for
//! sovereign clouds), else `https://login.microsoftonline.com`. Tokens are cached per
//! (authority, tenant, client, secret digest) and fetched again when less than five minutes
//! remain.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::Deserialize;

const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";
const SCOPE: &str = "https://storage.azure.com/.default";
const MIN_LEFT: Duration = Duration::from_secs(300);
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_ANSWER: usize = 1 << 20;

/// Keyed by authority, tenant, client and a digest of the secret: a changed secret is
/// exchanged again at once instead of riding on the token of the old one.
type Cache = Mutex<HashMap<(String, String, String, [u8; 32]), (String, Instant)>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// The authority a storage uses: its own setting, the environment's, or Azure's public cloud.
pub fn authority(configured: Option<&str>) -> String {
    configured
        .map(str::to_string)
        .or_else(|| std::env::var("AZURE_AUTHORITY_HOST").ok())
        .filter(|a| !a.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_AUTHORITY.to_string())
        .trim_end_matches('/')
        .to_string()
}

/// An access token for the application `client_id` of `tenant_id`.
///
/// # Errors
/// The endpoint cannot be reached, or refuses the credentials; messages name the tenant,
/// client and endpoint, and carry AAD's error code, never the secret or a token.
pub async fn access_token(
    authority: &str,
    tenant_id: &str,
    client_id: &str,
    client_secret: &str,
) -> Result<String, String> {
    use sha2::Digest as _;
    let id = (
        authority.to_string(),
        tenant_id.to_string(),
        client_id.to_string(),
        sha2::Sha256::digest(client_secret.as_bytes()).into(),
    );
    if let Some((token, until)) = cache().lock().unwrap_or_else(|p| p.into_inner()).get(&id)
        && until.saturating_duration_since(Instant::now()) > MIN_LEFT
    {
        return Ok(token.clone());
    }
    if tenant_id.is_empty() || tenant_id.contains(['/', '?', '#']) {
        return Err("tenant-id must be a tenant ID or domain name".into());
    }
    let url = format!("{authority}/{tenant_id}/oauth2/v2.0/token");
    let body = crate::outbound::form(&[
        ("grant_type", "client_credentials"),
        ("client_id", client_id),
        ("client_secret", client_secret),
        ("scope", SCOPE),
    ]);
    let answer = crate::outbound::fetch(
        http::Method::POST,
        &url,
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("accept", "application/json"),
        ],
        body,
        MAX_ANSWER,
        EXCHANGE_TIMEOUT,
    )
    .await
    .map_err(|e| format!("token endpoint {url}: {e}"))?;
    #[derive(Deserialize)]
    struct Token {
        access_token: String,
        #[serde(default)]
        expires_in: Option<serde_json::Value>,
    }
    #[derive(Deserialize)]
    struct Refusal {
        #[serde(default)]
        error: String,
    }
    if answer.status != 200 {
        // AAD's `error` code ("invalid_client", "unauthorized_client"...) says what is wrong
        // without echoing anything secret; its description can quote the request.
        let code = serde_json::from_slice::<Refusal>(&answer.body)
            .map(|r| r.error)
            .unwrap_or_default();
        return Err(format!(
            "token endpoint {url} refused client {client_id} of tenant {tenant_id}: HTTP {}{}",
            answer.status,
            if code.is_empty() {
                String::new()
            } else {
                format!(" ({code})")
            }
        ));
    }
    let t: Token = serde_json::from_slice(&answer.body)
        .map_err(|_| format!("token endpoint {url}: the answer holds no access_token"))?;
    // v2 endpoints answer a number, v1 a string.
    let secs = match &t.expires_in {
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        Some(serde_json::Value::String(s)) => s.parse().ok(),
        _ => None,
    }
    .unwrap_or(3600);
    cache().lock().unwrap_or_else(|p| p.into_inner()).insert(
        id,
        (
            t.access_token.clone(),
            Instant::now() + Duration::from_secs(secs),
        ),
    );
    Ok(t.access_token)
}

#[cfg(test)]
mod tests {
    use super::authority;

    #[test]
    fn the_configured_authority_wins_and_loses_its_slash() {
        assert_eq!(
            authority(Some("https://login.example/")),
            "https://login.example"
        );
    }
}
