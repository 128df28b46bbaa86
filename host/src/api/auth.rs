//! Authentication of API callers (`service.http.auth`, ours: ABS has none): bearer tokens and,
//! over mutual TLS, client certificates.
//!
//! Tokens are known by their SHA-256 only; a presented token is hashed and compared with
//! every configured digest in constant time, so neither the comparison nor the number of
//! tokens tried tells a caller how close a guess was. Tokens held in a file or by the Secret
//! Agent are read, hashed at once and dropped; this happens at start and again at each config
//! change (the first request after a change rebuilds the table), so a token rotated in the
//! agent takes effect with `POST /v1/config/apply`.
//!
//! A client certificate is known by the SHA-256 of its DER encoding, the fingerprint
//! `openssl x509 -fingerprint -sha256` prints. The TLS listener verifies the chain against
//! `service.https.client-ca-file` and hands the fingerprint to each request of the connection
//! as a [`ClientCertificate`] extension; plain HTTP requests never carry one.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::AppState;
use super::error::ApiError;
use crate::config::{ApiAuthConfig, Config, ConfigStore, SecretAgent};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Admin,
    ReadOnly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A bearer token's SHA-256.
    Token,
    /// A client certificate's SHA-256 fingerprint.
    Certificate,
}

#[derive(Clone)]
struct Caller {
    name: String,
    kind: Kind,
    digest: [u8; 32],
    role: Role,
}

/// The verified client certificate of a mutual-TLS connection, by its SHA-256 fingerprint.
/// Set by the HTTPS listener on every request of the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientCertificate {
    sha256: [u8; 32],
}

impl ClientCertificate {
    /// The certificate as the client presented it (DER).
    pub fn from_der(der: &[u8]) -> Self {
        ClientCertificate {
            sha256: Sha256::digest(der).into(),
        }
    }
}

// The fingerprint syntax lives in config/ (validation checks it); re-exported here.
pub use crate::config::tls::parse_fingerprint;

/// The configured callers, ready to check requests against.
#[derive(Clone)]
pub struct Authenticator {
    callers: Vec<Caller>,
    protect_metrics: bool,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.callers.iter().map(|t| t.name.as_str()).collect();
        f.debug_struct("Authenticator")
            .field("callers", &names)
            .finish_non_exhaustive()
    }
}

/// Constant-time equality of two digests.
fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Authenticator {
    /// Reads `token-file`s, asks the Secret Agent for `token-secret`s and decodes digests.
    /// An entry that cannot be had is left out (it authorises nothing) and reported.
    ///
    /// The errors name the entry's field, the file or the agent and reference, never a token.
    pub async fn build(
        cfg: &ApiAuthConfig,
        agents: &BTreeMap<String, SecretAgent>,
    ) -> (Self, Vec<String>) {
        let mut callers = Vec::new();
        let mut errors = Vec::new();
        for (i, t) in cfg.tokens.iter().enumerate() {
            let at = format!("service.http.auth.tokens[{i}]");
            match Self::digest(&at, t, agents).await {
                Ok((kind, digest)) => callers.push(Caller {
                    name: t.name.clone(),
                    kind,
                    digest,
                    role: match t.role.as_deref() {
                        Some("read-only") => Role::ReadOnly,
                        _ => Role::Admin,
                    },
                }),
                Err(e) => errors.push(e),
            }
        }
        let auth = Authenticator {
            callers,
            protect_metrics: *cfg.protect_metrics,
        };
        (auth, errors)
    }

    /// [`Authenticator::build`] that fails on the first entry that cannot be had (start-up).
    ///
    /// # Errors
    /// The entries that could not be had, one per line.
    pub async fn build_all(
        cfg: &ApiAuthConfig,
        agents: &BTreeMap<String, SecretAgent>,
    ) -> Result<Self, String> {
        let (auth, errors) = Self::build(cfg, agents).await;
        if errors.is_empty() {
            Ok(auth)
        } else {
            Err(errors.join("\n"))
        }
    }

    async fn digest(
        at: &str,
        t: &crate::config::ApiToken,
        agents: &BTreeMap<String, SecretAgent>,
    ) -> Result<(Kind, [u8; 32]), String> {
        let hashed = |token: &[u8]| -> [u8; 32] { Sha256::digest(token).into() };
        if let Some(h) = &t.sha256 {
            let d = hex::decode(h.trim())
                .ok()
                .and_then(|d| d.try_into().ok())
                .ok_or_else(|| format!("{at}.sha256: must be 64 hex digits"))?;
            return Ok((Kind::Token, d));
        }
        if let Some(path) = &t.token_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("{at}.token-file: {path}: {e}"))?;
            let token = text.trim();
            if token.is_empty() {
                return Err(format!("{at}.token-file: {path} is empty"));
            }
            return Ok((Kind::Token, hashed(token.as_bytes())));
        }
        if let Some(entry) = &t.token_secret {
            let field = format!("{at}.token-secret");
            let agent =
                crate::secrets::agent_for(agents, None, t.secret_agent_name.as_deref(), None)
                    .map_err(|e| format!("{field}: {e}"))?;
            let value = crate::secrets::resolve_entry(agent.as_ref(), &field, entry)
                .await
                .map_err(|e| format!("{field}: {e}"))?;
            // Surrounding whitespace is not part of a token, as for token files.
            let token = value.expose().trim_ascii();
            if token.is_empty() {
                return Err(format!("{field}: the agent's value is empty"));
            }
            return Ok((Kind::Token, hashed(token)));
        }
        if let Some(f) = &t.client_cert_sha256 {
            let d = parse_fingerprint(f).ok_or_else(|| {
                format!("{at}.client-cert-sha256: must be 64 hex digits (colons allowed)")
            })?;
            return Ok((Kind::Certificate, d));
        }
        Err(format!(
            "{at}: one of sha256, token-file, token-secret or client-cert-sha256 is required"
        ))
    }

    /// The caller a request is: by its bearer token when it sends `Authorization`, else by
    /// its client certificate. Every configured entry of the kind is compared, whatever
    /// matched before.
    fn identify(&self, header: Option<&str>, cert: Option<&ClientCertificate>) -> Option<&Caller> {
        let (kind, digest): (Kind, [u8; 32]) = match (header, cert) {
            (Some(h), _) => (
                Kind::Token,
                Sha256::digest(h.strip_prefix("Bearer ")?.trim().as_bytes()).into(),
            ),
            (None, Some(c)) => (Kind::Certificate, c.sha256),
            (None, None) => return None,
        };
        let mut found = None;
        for c in &self.callers {
            if same(&c.digest, &digest) && c.kind == kind && found.is_none() {
                found = Some(c);
            }
        }
        found
    }
}

/// A configuration and what was built for it (`None`: the API is open).
type Built = (Arc<Config>, Option<Arc<Authenticator>>);

/// The authenticator of the current configuration, rebuilt after each change. Whether the API
/// is guarded at all is decided at start, like the listeners: a change cannot open a guarded
/// API (nor lock an open one), only change who may call it.
pub struct ApiAuth {
    store: Arc<ConfigStore>,
    /// `service.http.auth` was set at start.
    guarded: bool,
    /// The config it was built for, and what was built (`None`: the API is open).
    built: RwLock<Option<Built>>,
    /// One rebuild at a time: requests that arrive during it wait for its result.
    rebuilding: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for ApiAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let built = self.built.read().unwrap_or_else(|p| p.into_inner());
        f.debug_struct("ApiAuth")
            .field("authenticator", &built.as_ref().map(|b| &b.1))
            .finish_non_exhaustive()
    }
}

impl ApiAuth {
    pub fn new(store: Arc<ConfigStore>) -> Self {
        ApiAuth {
            guarded: store.current().service.http.auth.is_some(),
            store,
            built: RwLock::new(None),
            rebuilding: tokio::sync::Mutex::new(()),
        }
    }

    /// Sets what was built for `cfg` (the start, which refuses to go on when an entry fails).
    pub fn install(&self, cfg: Arc<Config>, auth: Option<Authenticator>) {
        *self.built.write().unwrap_or_else(|p| p.into_inner()) = Some((cfg, auth.map(Arc::new)));
    }

    fn built_for(&self, cfg: &Arc<Config>) -> Option<Option<Arc<Authenticator>>> {
        let built = self.built.read().unwrap_or_else(|p| p.into_inner());
        match &*built {
            Some((c, a)) if Arc::ptr_eq(c, cfg) => Some(a.clone()),
            _ => None,
        }
    }

    /// The authenticator for the configuration in force, built first if it changed. An
    /// entry that cannot be had after a change is logged and authorises nothing, so a
    /// removed or rotated token never stays valid because its source is down.
    pub async fn current(&self) -> Option<Arc<Authenticator>> {
        let cfg = self.store.current();
        if let Some(a) = self.built_for(&cfg) {
            return a;
        }
        let _one = self.rebuilding.lock().await;
        let cfg = self.store.current();
        if let Some(a) = self.built_for(&cfg) {
            return a;
        }
        let auth = match &cfg.service.http.auth {
            _ if !self.guarded => None,
            None => {
                tracing::warn!(
                    "service.http.auth was removed; the API stays guarded by the callers it had until a restart."
                );
                let built = self.built.read().unwrap_or_else(|p| p.into_inner());
                // Nothing built yet cannot happen when guarded at start; refuse all then.
                Some(built.as_ref().and_then(|b| b.1.clone()).unwrap_or_else(|| {
                    Arc::new(Authenticator {
                        callers: Vec::new(),
                        protect_metrics: true,
                    })
                }))
            }
            Some(a) => {
                let (auth, errors) = Authenticator::build(a, &cfg.secret_agents).await;
                for e in &errors {
                    tracing::error!(error = %e, "An API caller cannot be set up; its requests are refused.");
                }
                Some(Arc::new(auth))
            }
        };
        *self.built.write().unwrap_or_else(|p| p.into_inner()) = Some((cfg, auth.clone()));
        auth
    }
}

/// Checks the caller when `service.http.auth` is set.
pub async fn authorize(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let route = path
        .strip_prefix(state.context_path.trim_end_matches('/'))
        .unwrap_or(path)
        .to_string();
    // The probes never wait for a rebuild (which may wait for the Secret Agent).
    if route == "/health" || route == "/ready" {
        return next.run(req).await;
    }
    // The dashboard's static files hold no data; its API calls are checked as any other.
    if super::ui::is_ui_route(&route) && matches!(*req.method(), Method::GET | Method::HEAD) {
        return next.run(req).await;
    }
    let Some(auth) = state.auth.current().await else {
        return next.run(req).await;
    };
    if route == "/metrics" && !auth.protect_metrics {
        return next.run(req).await;
    }
    let header = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or(""));
    let cert = req.extensions().get::<ClientCertificate>();
    let Some(caller) = auth.identify(header, cert) else {
        tracing::warn!(
            method = %req.method(),
            route = %route,
            client_certificate = cert.is_some(),
            "Request refused: no valid bearer token or client certificate."
        );
        let mut resp = ApiError::Unauthorized(
            "a valid bearer token is required (Authorization: Bearer <token>)".into(),
        )
        .into_response();
        resp.headers_mut().insert(
            axum::http::header::WWW_AUTHENTICATE,
            axum::http::HeaderValue::from_static("Bearer"),
        );
        return resp;
    };
    let reads = matches!(*req.method(), Method::GET | Method::HEAD);
    if caller.role == Role::ReadOnly && !reads {
        let what = match caller.kind {
            Kind::Token => "token",
            Kind::Certificate => "client certificate",
        };
        tracing::warn!(
            caller = %caller.name,
            method = %req.method(),
            route = %route,
            "Request refused: the caller is read-only."
        );
        return ApiError::Forbidden(format!(
            "{what} \"{}\" is read-only: only GET and HEAD are allowed",
            caller.name
        ))
        .into_response();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_never_matches_a_certificate_entry_of_the_same_digest() {
        let digest: [u8; 32] = Sha256::digest(b"t").into();
        let auth = Authenticator {
            callers: vec![Caller {
                name: "c".into(),
                kind: Kind::Certificate,
                digest,
                role: Role::Admin,
            }],
            protect_metrics: false,
        };
        assert!(auth.identify(Some("Bearer t"), None).is_none());
        let cert = ClientCertificate { sha256: digest };
        assert!(auth.identify(None, Some(&cert)).is_some());
        // A presented header decides, even with a matching certificate.
        assert!(auth.identify(Some("Bearer x"), Some(&cert)).is_none());
    }
}
