//! Google service-account keys → OAuth access tokens (the JWT bearer grant, RFC 7523), in
//! the host: the key never enters the storage plugin, which only sees the short-lived token.
//!
//! The assertion is an RS256-signed JWT (`iss` = the key's `client_email`, `aud` = its
//! `token_uri`, the read-write storage scope, one hour); it is posted to `token_uri`. Tokens
//! are cached per (account, token URI) and fetched again when less than five minutes remain.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::Deserialize;

const SCOPE: &str = "https://www.googleapis.com/auth/devstorage.read_write";
const GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// A cached token is used while it has at least this long left.
const MIN_LEFT: Duration = Duration::from_secs(300);
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(30);
/// Token answers are a few hundred bytes.
const MAX_ANSWER: usize = 1 << 20;

/// The fields of a service-account JSON key that the grant needs.
#[derive(Deserialize)]
struct ServiceAccount {
    client_email: String,
    private_key: String,
    #[serde(default = "default_token_uri")]
    token_uri: String,
}

fn default_token_uri() -> String {
    "https://oauth2.googleapis.com/token".into()
}

type Cache = Mutex<HashMap<(String, String), (String, Instant)>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// An access token for the service account whose JSON key is `key_json`.
///
/// # Errors
/// A key that does not parse or sign, a token endpoint that cannot be reached or refuses the
/// grant; messages name the account and endpoint, never the key or a token.
pub async fn access_token(key_json: &str) -> Result<String, String> {
    let sa: ServiceAccount = serde_json::from_str(key_json)
        .map_err(|e| format!("the service-account key is not a JSON key file: {e}"))?;
    let id = (sa.client_email.clone(), sa.token_uri.clone());
    if let Some((token, until)) = cache().lock().unwrap_or_else(|p| p.into_inner()).get(&id)
        && until.saturating_duration_since(Instant::now()) > MIN_LEFT
    {
        return Ok(token.clone());
    }
    let now = chrono::Utc::now().timestamp();
    let assertion = assertion(&sa, now)?;
    let body = crate::outbound::form(&[("grant_type", GRANT), ("assertion", &assertion)]);
    let answer = crate::outbound::fetch(
        http::Method::POST,
        &sa.token_uri,
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("accept", "application/json"),
        ],
        body,
        MAX_ANSWER,
        EXCHANGE_TIMEOUT,
    )
    .await
    .map_err(|e| {
        format!(
            "token endpoint {} for {}: {e}",
            sa.token_uri, sa.client_email
        )
    })?;
    if answer.status != 200 {
        return Err(format!(
            "token endpoint {} refused the grant for {}: HTTP {}",
            sa.token_uri, sa.client_email, answer.status
        ));
    }
    #[derive(Deserialize)]
    struct Answer {
        access_token: String,
        #[serde(default)]
        expires_in: Option<u64>,
    }
    let a: Answer = serde_json::from_slice(&answer.body).map_err(|_| {
        format!(
            "token endpoint {} refused the grant for {}",
            sa.token_uri, sa.client_email
        )
    })?;
    let until = Instant::now() + Duration::from_secs(a.expires_in.unwrap_or(3600));
    cache()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(id, (a.access_token.clone(), until));
    Ok(a.access_token)
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The signed JWT for `sa` issued at `now` (Unix seconds).
fn assertion(sa: &ServiceAccount, now: i64) -> Result<String, String> {
    use rustls::pki_types::PrivateKeyDer;
    use rustls::pki_types::pem::PemObject;
    let header = b64url(br#"{"alg":"RS256","typ":"JWT"}"#);
    let claims = serde_json::json!({
        "iss": sa.client_email,
        "scope": SCOPE,
        "aud": sa.token_uri,
        "iat": now,
        "exp": now + 3600,
    });
    let claims = b64url(claims.to_string().as_bytes());
    let signing_input = format!("{header}.{claims}");
    let der = PrivateKeyDer::from_pem_slice(sa.private_key.as_bytes()).map_err(|_| {
        format!(
            "the private_key of {} is not a PEM private key",
            sa.client_email
        )
    })?;
    let pair = ring::signature::RsaKeyPair::from_pkcs8(der.secret_der()).map_err(|_| {
        format!(
            "the private_key of {} is not an RSA PKCS#8 key",
            sa.client_email
        )
    })?;
    let mut sig = vec![0u8; pair.public().modulus_len()];
    pair.sign(
        &ring::signature::RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        signing_input.as_bytes(),
        &mut sig,
    )
    .map_err(|_| format!("signing the grant for {} failed", sa.client_email))?;
    Ok(format!("{signing_input}.{}", b64url(&sig)))
}
