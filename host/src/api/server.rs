//! The HTTP listener: hyper with the `service.http` timeouts and graceful shutdown.

use super::auth::ClientCertificate;
use crate::config::{HttpServerConfig, HttpsServerConfig};
use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
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

/// The TLS settings of `service.https`: certificate chain and key, lowest version, and the
/// client CA when clients must present certificates (mutual TLS).
///
/// # Errors
/// A file that cannot be read or holds no certificate or key, or a key that does not fit
/// the certificate; the message names the field.
pub fn tls_acceptor(cfg: &HttpsServerConfig) -> Result<TlsAcceptor, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cfg.cert_file)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| format!("service.https.cert-file: {}: {e}", cfg.cert_file))?;
    if certs.is_empty() {
        return Err(format!(
            "service.https.cert-file: {}: no certificate in it",
            cfg.cert_file
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&cfg.key_file)
        .map_err(|e| format!("service.https.key-file: {}: {e}", cfg.key_file))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = match cfg
        .min_version
        .as_deref()
        .map(str::to_ascii_uppercase)
        .as_deref()
    {
        Some("TLS1.3") => &[&rustls::version::TLS13],
        _ => &[&rustls::version::TLS12, &rustls::version::TLS13],
    };
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| format!("service.https.min-version: {e}"))?;
    let builder = match &cfg.client_ca_file {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            let cas = CertificateDer::pem_file_iter(ca)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("service.https.client-ca-file: {ca}: {e}"))?;
            for c in cas {
                roots
                    .add(c)
                    .map_err(|e| format!("service.https.client-ca-file: {ca}: {e}"))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .map_err(|e| format!("service.https.client-ca-file: {ca}: {e}"))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| format!("service.https.key-file: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
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
