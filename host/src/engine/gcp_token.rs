//! Google service-account keys → OAuth access tokens (the JWT bearer grant, RFC 7523), in
//! the host: the key never enters the storage plugin, which only sees the short-lived token.
//!
//! The assertion is an RS256-signed JWT (`iss` = the key's `client_email`, `aud` = its
//! `token_uri`, the read-write storage scope, one hour); it is posted to `token_uri`. Tokens
//! are cached per (account, token URI) and fetched again when less than five minutes remain.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

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
    let body = format!("grant_type={}&assertion={assertion}", form_escape(GRANT));
    let answer = tokio::time::timeout(EXCHANGE_TIMEOUT, post_form(&sa.token_uri, &body))
        .await
        .map_err(|_| {
            format!(
                "token endpoint {}: no answer in {EXCHANGE_TIMEOUT:?}",
                sa.token_uri
            )
        })?
        .map_err(|e| {
            format!(
                "token endpoint {} for {}: {e}",
                sa.token_uri, sa.client_email
            )
        })?;
    #[derive(Deserialize)]
    struct Answer {
        access_token: String,
        #[serde(default)]
        expires_in: Option<u64>,
    }
    let a: Answer = serde_json::from_slice(&answer).map_err(|_| {
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

fn form_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
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

/// POSTs a form body to an `http://` or `https://` URL; returns the body of a 200 answer.
async fn post_form(url: &str, body: &str) -> Result<Vec<u8>, String> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else {
        return Err("token_uri must be an http(s) URL".into());
    };
    let (authority, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_string()), |(a, p)| (a, format!("/{p}")));
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if p.parse::<u16>().is_ok() => (h, p.parse::<u16>().unwrap_or(443)),
        _ => (authority, if tls { 443 } else { 80 }),
    };
    let tcp = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(|e| e.to_string())?;
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nAccept: application/json\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    if !tls {
        return exchange(tcp, &request).await;
    }
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name =
        rustls::pki_types::ServerName::try_from(host.to_string()).map_err(|e| e.to_string())?;
    let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    exchange(stream, &request).await
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    request: &str,
) -> Result<Vec<u8>, String> {
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    (&mut stream)
        .take(MAX_ANSWER as u64)
        .read_to_end(&mut answer)
        .await
        .map_err(|e| e.to_string())?;
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no HTTP answer")?;
    let head = String::from_utf8_lossy(&answer[..split]).to_string();
    let status = head.split_whitespace().nth(1).unwrap_or("?").to_string();
    if status != "200" {
        return Err(format!("HTTP {status}"));
    }
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return Err("chunked token answers are not supported".into());
    }
    Ok(answer[split + 4..].to_vec())
}

#[cfg(test)]
mod tests {
    use super::form_escape;

    #[test]
    fn form_values_are_escaped() {
        assert_eq!(
            form_escape("urn:ietf:params:oauth:grant-type:jwt-bearer"),
            "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer"
        );
    }
}
