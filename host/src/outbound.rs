//! Outbound HTTP(S) from the host: one trust store and one small client for every request the
//! service itself sends to an HTTP endpoint — storage plugins' requests (through the
//! `wasi:http` gate), OAuth2 token exchanges (GCS, Azure AD, AWS STS) and a configuration
//! read from a URL (`-c https://...`).
//!
//! Trusted roots: the Mozilla set (webpki-roots), plus the PEM bundle that `SSL_CERT_FILE`
//! names — the variable OpenSSL and Go honour, so a private CA in front of MinIO or Azure
//! Stack is trusted the way ABS trusts it — plus anchors added at run time
//! ([`trust_pem_file`]).

use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;

/// Anchors added with [`trust_pem_file`], and the client config built from everything.
struct Trust {
    extra: Vec<CertificateDer<'static>>,
    config: Option<Arc<rustls::ClientConfig>>,
}

static TRUST: RwLock<Trust> = RwLock::new(Trust {
    extra: Vec::new(),
    config: None,
});

fn pem_certificates(path: &Path) -> std::io::Result<Vec<CertificateDer<'static>>> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| std::io::Error::other(format!("{}: {e}", path.display())))?
        .collect::<Result<_, _>>()
        .map_err(|e| std::io::Error::other(format!("{}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(std::io::Error::other(format!(
            "{}: no PEM certificate in the file",
            path.display()
        )));
    }
    Ok(certs)
}

/// Trusts the CA certificates of a PEM file for every later outbound connection.
///
/// # Errors
/// The file cannot be read or holds no certificate.
pub fn trust_pem_file(path: &Path) -> std::io::Result<usize> {
    let certs = pem_certificates(path)?;
    let n = certs.len();
    let mut t = TRUST.write().unwrap_or_else(|p| p.into_inner());
    t.extra.extend(certs);
    t.config = None;
    Ok(n)
}

/// The TLS client configuration of outbound connections (built once, rebuilt after
/// [`trust_pem_file`]).
pub fn tls_config() -> Arc<rustls::ClientConfig> {
    if let Some(c) = &TRUST.read().unwrap_or_else(|p| p.into_inner()).config {
        return c.clone();
    }
    let mut t = TRUST.write().unwrap_or_else(|p| p.into_inner());
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(file) = std::env::var_os("SSL_CERT_FILE").filter(|f| !f.is_empty()) {
        match pem_certificates(Path::new(&file)) {
            Ok(certs) => {
                let (added, _) = roots.add_parsable_certificates(certs);
                tracing::debug!(added, file = ?file, "trusting the CA bundle of SSL_CERT_FILE");
            }
            Err(e) => tracing::warn!(error = %e, "SSL_CERT_FILE is not usable; ignoring it"),
        }
    }
    roots.add_parsable_certificates(t.extra.iter().cloned());
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("ring supports the default protocol versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let config = Arc::new(config);
    t.config = Some(config.clone());
    config
}

/// An I/O stream to an HTTP server, plain or TLS.
pub(crate) trait Stream:
    tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin
{
}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> Stream for T {}

/// Why a connection could not be made.
#[derive(Debug)]
pub(crate) enum ConnectError {
    Timeout,
    Connect(std::io::Error),
    Tls(std::io::Error),
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::Timeout => f.write_str("connection timed out"),
            ConnectError::Connect(e) => write!(f, "cannot connect: {e}"),
            ConnectError::Tls(e) => write!(f, "TLS: {e}"),
        }
    }
}

/// The rustls server name of `host:port` (IP literals, bracketed IPv6 included).
fn server_name(authority: &str) -> Result<ServerName<'static>, std::io::Error> {
    if let Ok(addr) = authority.parse::<std::net::SocketAddr>() {
        return Ok(ServerName::from(addr.ip()));
    }
    let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
    ServerName::try_from(host.to_string())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
}

/// Opens a connection to `authority` (`host:port`), with TLS when `tls`.
pub(crate) async fn connect(
    authority: &str,
    tls: bool,
    timeout: Duration,
) -> Result<Box<dyn Stream>, ConnectError> {
    let tcp = match tokio::time::timeout(timeout, TcpStream::connect(authority)).await {
        Ok(s) => s.map_err(ConnectError::Connect)?,
        Err(_) => return Err(ConnectError::Timeout),
    };
    let _ = tcp.set_nodelay(true);
    if !tls {
        return Ok(Box::new(tcp));
    }
    let name = server_name(authority).map_err(ConnectError::Tls)?;
    let connector = tokio_rustls::TlsConnector::from(tls_config());
    match tokio::time::timeout(timeout, connector.connect(name, tcp)).await {
        Ok(s) => Ok(Box::new(s.map_err(ConnectError::Tls)?)),
        Err(_) => Err(ConnectError::Timeout),
    }
}

/// `host:port` and whether TLS is used, from an `http://` or `https://` URI.
pub(crate) fn authority_of(uri: &http::Uri) -> Option<(String, bool)> {
    let tls = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return None,
    };
    let a = uri.authority()?;
    let port = a.port_u16().unwrap_or(if tls { 443 } else { 80 });
    Some((format!("{}:{port}", a.host()), tls))
}

/// An answer read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Answer {
    /// The body as text (lossy), for error messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One request, answered whole: for small control-plane exchanges (tokens, a config file),
/// not data. The answer body is bounded by `max_body`; the whole exchange by `timeout`.
///
/// # Errors
/// A bad URL, a connection or TLS failure, a timeout or an oversized answer; the message
/// names the host, never a header or body value (they may carry secrets).
pub async fn fetch(
    method: http::Method,
    url: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
    max_body: usize,
    timeout: Duration,
) -> Result<Answer, String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|_| "not a valid http(s) URL".to_string())?;
    let (authority, tls) =
        authority_of(&uri).ok_or("the URL must start with http:// or https://")?;
    let exchange = async {
        let stream = connect(&authority, tls, timeout)
            .await
            .map_err(|e| format!("{authority}: {e}"))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("{authority}: {e}"))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let mut req = http::Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::HOST, authority.as_str());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| format!("{authority}: {e}"))?;
        let response = sender
            .send_request(req)
            .await
            .map_err(|e| format!("{authority}: {e}"))?;
        let status = response.status().as_u16();
        let (parts, incoming) = response.into_parts();
        let body = Limited::new(incoming, max_body)
            .collect()
            .await
            .map_err(|e| format!("{authority}: reading the answer: {e}"))?
            .to_bytes();
        Ok(Answer {
            status,
            headers: parts.headers,
            body,
        })
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| format!("{authority}: no answer within {} s", timeout.as_secs()))?
}

/// `application/x-www-form-urlencoded` value escaping.
pub fn form_escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char);
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A form body from (name, value) pairs.
pub fn form(pairs: &[(&str, &str)]) -> Vec<u8> {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", form_escape(k), form_escape(v)))
        .collect::<Vec<_>>()
        .join("&")
        .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_values_are_escaped() {
        assert_eq!(
            form_escape("urn:ietf:params:oauth:grant-type:jwt-bearer"),
            "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer"
        );
        assert_eq!(
            String::from_utf8(form(&[("a b", "c&d")])).unwrap(),
            "a%20b=c%26d"
        );
    }

    #[test]
    fn server_names_from_authorities() {
        assert_eq!(
            server_name("example.com:443").unwrap(),
            ServerName::try_from("example.com").unwrap()
        );
        assert_eq!(
            server_name("[::1]:443").unwrap(),
            ServerName::from(std::net::Ipv6Addr::LOCALHOST)
        );
        assert_eq!(
            server_name("127.0.0.1:80").unwrap(),
            ServerName::from(std::net::Ipv4Addr::LOCALHOST)
        );
    }

    #[test]
    fn authorities_get_default_ports() {
        let a = |u: &str| authority_of(&u.parse().unwrap());
        assert_eq!(
            a("https://h.example/x"),
            Some(("h.example:443".into(), true))
        );
        assert_eq!(
            a("http://h.example:9000/x"),
            Some(("h.example:9000".into(), false))
        );
        assert_eq!(a("ftp://h.example/x"), None);
    }
}
