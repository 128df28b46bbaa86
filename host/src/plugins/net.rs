//! Which network destinations a storage plugin may reach (DESIGN §4).
//!
//! A backend declares the hosts its options imply (`allowed-hosts()`); the host admits a
//! request only if its authority matches one of them, and only over HTTPS unless the options
//! themselves name that authority with an `http://` URL (an emulator or a MinIO on a
//! private network). Everything else is refused before a byte leaves the process.

use std::time::Duration;

/// Bounds every request of a storage plugin, whatever the plugin asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetLimits {
    pub connect_timeout: Duration,
    pub first_byte_timeout: Duration,
    pub between_bytes_timeout: Duration,
}

impl Default for NetLimits {
    fn default() -> Self {
        NetLimits {
            connect_timeout: Duration::from_secs(30),
            first_byte_timeout: Duration::from_secs(120),
            between_bytes_timeout: Duration::from_secs(120),
        }
    }
}

/// The destinations one backend may reach.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetPolicy {
    /// `host`, `host:port` or `*.suffix[:port]`, lowercase.
    hosts: Vec<String>,
    /// Authorities (`host:port`, lowercase, port explicit) that the options name with
    /// `http://`: the only ones reachable without TLS.
    plain_http: Vec<String>,
}

/// Why a request was refused (logged; the plugin only sees "denied").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    HostNotAllowed(String),
    PlainHttp(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::HostNotAllowed(a) => write!(f, "{a} is not among the backend's allowed hosts"),
            Refusal::PlainHttp(a) => write!(
                f,
                "plain http to {a} refused: the storage options do not name it with http://"
            ),
        }
    }
}

impl NetPolicy {
    /// No network at all (storage-local, and every backend before `allowed-hosts()`).
    pub fn deny_all() -> Self {
        NetPolicy::default()
    }

    /// The policy of a backend: its declared hosts, plus plain http for the authorities
    /// that `options` (the JSON document) names as `http://` URLs.
    pub fn new(allowed_hosts: &[String], options: &serde_json::Value) -> Self {
        let mut plain_http = Vec::new();
        collect_http_authorities(options, &mut plain_http);
        NetPolicy {
            hosts: allowed_hosts
                .iter()
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect(),
            plain_http,
        }
    }

    /// Whether a request to `authority` (as in the URL, `host[:port]`) may go out.
    ///
    /// # Errors
    /// The reason it may not.
    pub fn check(&self, https: bool, authority: &str) -> Result<(), Refusal> {
        let Some((host, port)) = split_authority(authority, https) else {
            return Err(Refusal::HostNotAllowed(authority.to_string()));
        };
        let full = format!("{host}:{port}");
        if !self
            .hosts
            .iter()
            .any(|p| pattern_matches(p, &host, port, https))
        {
            return Err(Refusal::HostNotAllowed(full));
        }
        if !https && !self.plain_http.contains(&full) {
            return Err(Refusal::PlainHttp(full));
        }
        Ok(())
    }
}

/// `host[:port]` → (lowercase host, port with the scheme's default). IPv6 literals keep
/// their brackets.
fn split_authority(authority: &str, https: bool) -> Option<(String, u16)> {
    let a = authority.trim().to_ascii_lowercase();
    if a.is_empty() || a.contains('@') || a.contains('/') {
        return None;
    }
    let default = if https { 443 } else { 80 };
    let (host, port) = if a.starts_with('[') {
        let end = a.find(']')?;
        let rest = &a[end + 1..];
        let port = match rest.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if rest.is_empty() => default,
            None => return None,
        };
        (a[..=end].to_string(), port)
    } else {
        match a.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p.parse().ok()?),
            None => (a.clone(), default),
        }
    };
    (!host.is_empty()).then_some((host, port))
}

/// A pattern without a port admits the scheme's default port only: a backend that talks
/// to `s3.amazonaws.com` has no business on its port 22.
fn pattern_matches(pattern: &str, host: &str, port: u16, https: bool) -> bool {
    let Some((p_host, p_port)) = split_authority(pattern, https) else {
        return false;
    };
    if p_port != port {
        return false;
    }
    match p_host.strip_prefix("*.") {
        Some(suffix) => host.strip_suffix(suffix).is_some_and(|label| {
            label.len() > 1 && label.ends_with('.') && !label[..label.len() - 1].contains('.')
        }),
        None => p_host == host,
    }
}

fn collect_http_authorities(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) => {
            if let Some(rest) = s.trim().strip_prefix("http://") {
                let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
                if let Some((h, p)) = split_authority(authority, false) {
                    out.push(format!("{h}:{p}"));
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| collect_http_authorities(x, out)),
        serde_json::Value::Object(m) => m.values().for_each(|x| collect_http_authorities(x, out)),
        _ => {}
    }
}

/// The current OAuth2 bearer token of a backend, renewed by the host (GCS service-account
/// keys, Azure AD client secrets). A plugin gets a token once, at `create`; a job can outlive
/// it, so the host puts the current one on every request that carries a bearer token.
#[derive(Clone)]
pub struct BearerSource(
    std::sync::Arc<
        dyn Fn() -> futures::future::BoxFuture<'static, Result<String, String>> + Send + Sync,
    >,
);

impl BearerSource {
    /// A source that asks `f` for the token before each request (`f` caches).
    pub fn new(
        f: impl Fn() -> futures::future::BoxFuture<'static, Result<String, String>>
        + Send
        + Sync
        + 'static,
    ) -> Self {
        BearerSource(std::sync::Arc::new(f))
    }

    async fn token(&self) -> Result<String, String> {
        (self.0)().await
    }
}

impl std::fmt::Debug for BearerSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerSource(**redacted**)")
    }
}

/// The `wasi:http` hooks of one store: every outgoing request passes [`NetPolicy::check`]
/// and gets the host's timeouts as upper bounds; the transfer itself (DNS, TLS with the
/// host's trust store, hyper) is [`send`].
pub(crate) struct NetGuard {
    pub(crate) plugin: String,
    pub(crate) policy: NetPolicy,
    pub(crate) limits: NetLimits,
    pub(crate) bearer: Option<BearerSource>,
}

impl NetGuard {
    pub(crate) fn deny_all(plugin: &str) -> Self {
        NetGuard {
            plugin: plugin.to_string(),
            policy: NetPolicy::deny_all(),
            limits: NetLimits::default(),
            bearer: None,
        }
    }
}

fn bounded(asked: Option<Duration>, cap: Duration) -> Option<Duration> {
    Some(asked.map_or(cap, |d| d.min(cap)))
}

type IoFuture = Box<dyn std::future::Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>;
type SendFuture = Box<
    dyn std::future::Future<
            Output = Result<
                (http::Response<wasmtime_wasi_http::WasiBody>, IoFuture),
                wasmtime_wasi_http::Error,
            >,
        > + Send,
>;

impl wasmtime_wasi_http::WasiHttpHooks for NetGuard {
    fn send_request(
        &mut self,
        mut request: http::Request<wasmtime_wasi_http::WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: IoFuture,
    ) -> SendFuture {
        let uri = request.uri();
        let https = uri.scheme() == Some(&http::uri::Scheme::HTTPS);
        let authority = uri
            .authority()
            .map(|a| a.as_str().to_string())
            .unwrap_or_default();
        let verdict = self.policy.check(https, &authority);
        let plugin = self.plugin.clone();
        let limits = self.limits;
        let bearer = self.bearer.clone().filter(|_| {
            request
                .headers()
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("Bearer "))
        });
        Box::new(async move {
            use http_body_util::BodyExt;
            if let Err(why) = verdict {
                // The plugin sees only `denied`; the operator learns where it tried to go.
                tracing::warn!(plugin = %plugin, reason = %why, "storage plugin request refused");
                return Err(wasmtime_wasi_http::Error::HttpRequestDenied);
            }
            if let Some(bearer) = bearer {
                // The token the plugin was created with may have expired: send the current one.
                let token = bearer.token().await.map_err(|e| {
                    tracing::warn!(plugin = %plugin, error = %e, "cannot renew the storage access token");
                    wasmtime_wasi_http::Error::Connect(std::io::Error::other(format!(
                        "renewing the access token: {e}"
                    )))
                })?;
                let value = http::HeaderValue::from_str(&format!("Bearer {token}"))
                    .map_err(|_| wasmtime_wasi_http::Error::HttpRequestUriInvalid)?;
                request
                    .headers_mut()
                    .insert(http::header::AUTHORIZATION, value);
            }
            let options = wasmtime_wasi_http::RequestOptions {
                connect_timeout: bounded(
                    options.and_then(|o| o.connect_timeout),
                    limits.connect_timeout,
                ),
                first_byte_timeout: bounded(
                    options.and_then(|o| o.first_byte_timeout),
                    limits.first_byte_timeout,
                ),
                between_bytes_timeout: bounded(
                    options.and_then(|o| o.between_bytes_timeout),
                    limits.between_bytes_timeout,
                ),
            };
            let (response, io) = send(request, options).await?;
            Ok((response.map(BodyExt::boxed_unsync), io))
        })
    }
}

/// A response body that fails when no frame arrives for `gap` (the between-bytes timeout).
struct GapTimeout {
    incoming: hyper::body::Incoming,
    gap: Duration,
    timer: std::pin::Pin<Box<tokio::time::Sleep>>,
}

impl http_body::Body for GapTimeout {
    type Data = bytes::Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        use std::task::Poll;
        match std::pin::Pin::new(&mut self.incoming).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let next = tokio::time::Instant::now() + self.gap;
                self.timer.as_mut().reset(next);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(if e.is_timeout() {
                wasmtime_wasi_http::Error::HttpResponseTimeout
            } else {
                e.into()
            }))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match self.timer.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    Poll::Ready(Some(Err(wasmtime_wasi_http::Error::ConnectionReadTimeout)))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.incoming.size_hint()
    }
}

/// Sends one request of a plugin: a fresh connection (TLS through [`crate::outbound`], so
/// `SSL_CERT_FILE` and added anchors are trusted), hyper's HTTP/1.1, the three timeouts.
async fn send(
    mut request: http::Request<wasmtime_wasi_http::WasiBody>,
    options: wasmtime_wasi_http::RequestOptions,
) -> Result<(http::Response<GapTimeout>, IoFuture), wasmtime_wasi_http::Error> {
    use wasmtime_wasi_http::Error;
    let (authority, tls) =
        crate::outbound::authority_of(request.uri()).ok_or(Error::HttpRequestUriInvalid)?;
    let connect_timeout = options.connect_timeout.unwrap_or(Duration::from_secs(30));
    let stream = crate::outbound::connect(&authority, tls, connect_timeout)
        .await
        .map_err(|e| match e {
            crate::outbound::ConnectError::Timeout => Error::ConnectionTimeout,
            crate::outbound::ConnectError::Connect(e) => Error::Connect(e),
            crate::outbound::ConnectError::Tls(e) => Error::Tls(e),
        })?;
    let (mut sender, conn) = tokio::time::timeout(
        connect_timeout,
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)),
    )
    .await
    .map_err(|_| Error::ConnectionTimeout)??;
    // The request line carries only the path: scheme and authority are for proxies.
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    *request.uri_mut() = http::Uri::builder()
        .path_and_query(path)
        .build()
        .map_err(|_| Error::HttpRequestUriInvalid)?;
    // hyper's connection future drives the I/O; the plugin's side of `wasi:http` awaits the
    // returned future to learn how the transfer ended.
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let _ = done_tx.send(conn.await);
    });
    let first_byte = options
        .first_byte_timeout
        .unwrap_or(Duration::from_secs(60));
    let response = tokio::time::timeout(first_byte, sender.send_request(request))
        .await
        .map_err(|_| Error::ConnectionReadTimeout)??;
    let gap = options
        .between_bytes_timeout
        .unwrap_or(Duration::from_secs(60))
        .max(Duration::from_millis(1));
    let response = response.map(|incoming| GapTimeout {
        incoming,
        gap,
        timer: Box::pin(tokio::time::sleep(gap)),
    });
    let io: IoFuture = Box::new(async move {
        match done_rx.await {
            Ok(Ok(())) | Err(_) => Ok(()),
            Ok(Err(e)) if e.is_timeout() => Err(Error::HttpResponseTimeout),
            Ok(Err(e)) => Err(e.into()),
        }
    });
    Ok((response, io))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy(hosts: &[&str], options: serde_json::Value) -> NetPolicy {
        let hosts: Vec<String> = hosts.iter().map(|h| (*h).to_string()).collect();
        NetPolicy::new(&hosts, &options)
    }

    #[test]
    fn only_declared_hosts_on_their_port_pass() {
        let p = policy(
            &["b.s3.eu-west-1.amazonaws.com", "sts.amazonaws.com:8443"],
            json!({}),
        );
        assert!(p.check(true, "b.s3.eu-west-1.amazonaws.com").is_ok());
        assert!(p.check(true, "B.S3.EU-WEST-1.amazonaws.com:443").is_ok());
        assert!(p.check(true, "sts.amazonaws.com:8443").is_ok());
        for bad in [
            "b.s3.eu-west-1.amazonaws.com:22",
            "sts.amazonaws.com",
            "evil.example.com",
            "b.s3.eu-west-1.amazonaws.com.evil.com",
            "user@b.s3.eu-west-1.amazonaws.com",
            "",
        ] {
            assert!(
                matches!(p.check(true, bad), Err(Refusal::HostNotAllowed(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn wildcards_match_one_label() {
        let p = policy(&["*.blob.core.windows.net"], json!({}));
        assert!(p.check(true, "acct.blob.core.windows.net").is_ok());
        assert!(p.check(true, "blob.core.windows.net").is_err());
        assert!(p.check(true, "a.b.blob.core.windows.net").is_err());
        assert!(p.check(true, "xblob.core.windows.net").is_err());
    }

    #[test]
    fn plain_http_only_where_the_options_say_http() {
        let opts = json!({"s3-endpoint-override": "http://127.0.0.1:9000/", "bucket": "b"});
        let p = policy(&["127.0.0.1:9000", "s3.amazonaws.com"], opts);
        assert!(p.check(false, "127.0.0.1:9000").is_ok());
        assert!(p.check(true, "127.0.0.1:9000").is_ok());
        assert_eq!(
            p.check(false, "s3.amazonaws.com"),
            Err(Refusal::PlainHttp("s3.amazonaws.com:80".into()))
        );
        assert!(matches!(
            p.check(false, "evil.com"),
            Err(Refusal::HostNotAllowed(_))
        ));
        let p = policy(&["s3.amazonaws.com:80"], json!({}));
        assert_eq!(
            p.check(false, "s3.amazonaws.com"),
            Err(Refusal::PlainHttp("s3.amazonaws.com:80".into()))
        );
    }

    #[test]
    fn deny_all_denies() {
        assert!(NetPolicy::deny_all().check(true, "localhost").is_err());
    }
}
