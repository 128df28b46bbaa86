//! The HTTP listener: hyper with the `service.http` timeouts and graceful shutdown.

use super::auth::ClientCertificate;
use crate::config::{ClientAuth, HttpServerConfig, HttpsServerConfig, SecretAgent};
use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// How long in-flight requests may take to finish after shutdown starts.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Applies the request-level timeouts of `service.http` to `app`.
pub fn with_timeouts(app: Router, http: &HttpServerConfig) -> Router {
    use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};
    app.layer(TimeoutLayer::with_status_code(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        Duration::from_millis(http.write_timeout_ms()),
    ))
    .layer(RequestBodyTimeoutLayer::new(Duration::from_millis(
        http.read_timeout_ms(),
    )))
}

/// A TLS handshake that takes longer than this is dropped (a client that never speaks).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The TLS settings of `service.https`: certificate chain and key (its password asked of the
/// Secret Agent when it is a `secrets:` reference), lowest version, TLS 1.2 cipher suites,
/// and the client CA and mode when clients present certificates (mutual TLS).
///
/// # Errors
/// A file that cannot be read or holds no certificate or key, a key password that cannot be
/// had or does not open the key, a key that does not fit the certificate, or an unknown
/// cipher suite; the message names the field, never the password.
pub async fn tls_acceptor(
    cfg: &HttpsServerConfig,
    agents: &BTreeMap<String, SecretAgent>,
) -> Result<TlsAcceptor, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let cert_file = cfg.cert_file.as_deref().unwrap_or_default();
    let key_file = cfg.key_file.as_deref().unwrap_or_default();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| format!("service.https.cert-file: {cert_file}: {e}"))?;
    if certs.is_empty() {
        return Err(format!(
            "service.https.cert-file: {cert_file}: no certificate in it"
        ));
    }
    let password = key_password(cfg, agents).await?;
    let key = crate::pem_key::read(
        key_file,
        crate::pem_key::KeyFields {
            key: "service.https.key-file",
            password: "service.https.key-file-password",
        },
        password.as_deref(),
    )?;
    let mut provider = rustls::crypto::ring::default_provider();
    if let Some(names) = cfg.cipher_suites.as_ref().filter(|n| !n.is_empty()) {
        provider.cipher_suites = crate::config::tls::https_cipher_suites(&provider, names)?;
    }
    let provider = Arc::new(provider);
    let versions: &[&rustls::SupportedProtocolVersion] = if cfg.tls13_only() {
        &[&rustls::version::TLS13]
    } else {
        &[&rustls::version::TLS12, &rustls::version::TLS13]
    };
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| format!("service.https.min-version: {e}"))?;
    let mode = cfg.client_auth().unwrap_or(ClientAuth::RequireAndVerify);
    let builder = match (&cfg.client_ca_file, mode) {
        (Some(ca), ClientAuth::Request | ClientAuth::RequireAndVerify) => {
            let mut roots = rustls::RootCertStore::empty();
            let cas = CertificateDer::pem_file_iter(ca)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("service.https.client-ca-file: {ca}: {e}"))?;
            for c in cas {
                roots
                    .add(c)
                    .map_err(|e| format!("service.https.client-ca-file: {ca}: {e}"))?;
            }
            let mut verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            );
            // `request`: a client without a certificate is let in; one that shows a
            // certificate must still chain to the CA (stricter than Go's RequestClientCert,
            // which does not verify it).
            if mode == ClientAuth::Request {
                verifier = verifier.allow_unauthenticated();
            }
            let verifier = verifier
                .build()
                .map_err(|e| format!("service.https.client-ca-file: {ca}: {e}"))?;
            builder.with_client_cert_verifier(verifier)
        }
        _ => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| format!("service.https.key-file: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// `service.https.key-file-password`, resolved: `None` when not set.
async fn key_password(
    cfg: &HttpsServerConfig,
    agents: &BTreeMap<String, SecretAgent>,
) -> Result<Option<String>, String> {
    const FIELD: &str = "service.https.key-file-password";
    let Some(secret) = &cfg.key_file_password else {
        return Ok(None);
    };
    if !secret.is_agent_reference() {
        return crate::aerospike::tls::password_from(FIELD, secret).map(Some);
    }
    let agent = crate::secrets::agent_for(
        agents,
        cfg.secret_agent.as_ref(),
        cfg.secret_agent_name.as_deref(),
        None,
    )
    .map_err(|e| format!("{FIELD}: {e}"))?;
    let value = crate::secrets::resolve_field(agent.as_ref(), FIELD, secret)
        .await
        .map_err(|e| format!("{FIELD}: {e}"))?;
    value
        .expose_str()
        .map(|s| Some(s.to_string()))
        .map_err(|e| format!("{FIELD}: {e}"))
}

/// The handler of one connection's requests: each carries the peer address and, over mutual
/// TLS, the client certificate (for `service.http.auth`).
fn connection_handler(
    app: Router,
    peer: SocketAddr,
    cert: Option<ClientCertificate>,
) -> impl Fn(
    hyper::Request<hyper::body::Incoming>,
) -> tower::util::Oneshot<Router, axum::http::Request<axum::body::Body>>
+ Clone
+ Send
+ 'static {
    move |mut req: hyper::Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
        if let Some(c) = cert {
            req.extensions_mut().insert(c);
        }
        app.clone().oneshot(req.map(axum::body::Body::new))
    }
}

/// Serves `app` on `listener` until `shutdown` is cancelled, then drains open requests.
/// With `tls`, each connection is a TLS one (`service.https`).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    http: &HttpServerConfig,
    tls: Option<TlsAcceptor>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        // ABS `timeout` is Go's ReadHeaderTimeout.
        .header_read_timeout(Duration::from_millis(http.header_timeout_ms()));
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            conn = listener.accept() => match conn {
                Ok(c) => c,
                Err(e) => {
                    // Usually EMFILE: back off instead of spinning.
                    tracing::warn!(error = %e, "Accepting a connection failed.");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        let app = app.clone();
        let Some(tls) = tls.clone() else {
            let svc = hyper::service::service_fn(connection_handler(app, peer, None));
            let conn = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                .into_owned();
            let conn = graceful.watch(conn);
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!(client = %peer, error = %e, "Connection ended with an error.");
                }
            });
            continue;
        };
        // The handshake runs on the connection's own task, so a slow client holds no one up.
        let watcher = graceful.watcher();
        let builder = builder.clone();
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(stream)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(client = %peer, error = %e, "TLS handshake failed.");
                    return;
                }
                Err(_) => {
                    tracing::debug!(client = %peer, "TLS handshake timed out.");
                    return;
                }
            };
            // Verified against client-ca-file by the handshake; the leaf names the caller.
            let cert = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| ClientCertificate::from_der(c));
            let svc = hyper::service::service_fn(connection_handler(app, peer, cert));
            let conn = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                .into_owned();
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(client = %peer, error = %e, "Connection ended with an error.");
            }
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(DRAIN_TIMEOUT) => {
            tracing::warn!("Open HTTP connections did not finish in time; closing them.");
        }
    }
    Ok(())
}
