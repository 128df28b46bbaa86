//! Bearer-token authentication of API callers (`service.http.auth`, ours: ABS has none).
//!
//! Tokens are known by their SHA-256 only; a presented token is hashed and compared with
//! every configured digest in constant time, so neither the comparison nor the number of
//! tokens tried tells a caller how close a guess was.

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::AppState;
use super::error::ApiError;
use crate::config::ApiAuthConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Admin,
    ReadOnly,
}

#[derive(Clone)]
struct Token {
    name: String,
    digest: [u8; 32],
    role: Role,
}

/// The configured tokens, ready to check requests against.
#[derive(Clone)]
pub struct Authenticator {
    tokens: Vec<Token>,
    protect_metrics: bool,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.tokens.iter().map(|t| t.name.as_str()).collect();
        f.debug_struct("Authenticator")
            .field("tokens", &names)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// Reads `token-file`s and decodes digests.
    ///
    /// # Errors
    /// A token file that cannot be read or is empty, or a digest that is not 64 hex digits;
    /// the message names the token's field, never its value.
    pub fn from_config(cfg: &ApiAuthConfig) -> Result<Self, String> {
        let mut tokens = Vec::new();
        for (i, t) in cfg.tokens.iter().enumerate() {
            let at = format!("service.http.auth.tokens[{i}]");
            let digest: [u8; 32] = match (&t.sha256, &t.token_file) {
                (Some(h), _) => hex::decode(h.trim())
                    .ok()
                    .and_then(|d| d.try_into().ok())
                    .ok_or_else(|| format!("{at}.sha256: must be 64 hex digits"))?,
                (None, Some(path)) => {
                    let text = std::fs::read_to_string(path)
                        .map_err(|e| format!("{at}.token-file: {path}: {e}"))?;
                    let token = text.trim();
                    if token.is_empty() {
                        return Err(format!("{at}.token-file: {path} is empty"));
                    }
                    Sha256::digest(token.as_bytes()).into()
                }
                (None, None) => return Err(format!("{at}: sha256 or token-file is required")),
            };
            let role = match t.role.as_deref() {
                Some("read-only") => Role::ReadOnly,
                _ => Role::Admin,
            };
            tokens.push(Token {
                name: t.name.clone(),
                digest,
                role,
            });
        }
        Ok(Authenticator {
            tokens,
            protect_metrics: cfg.protect_metrics,
        })
    }

    /// One that refuses every protected request (a config whose tokens could not be read
    /// fails closed, never open).
    pub fn deny_all() -> Self {
        Authenticator {
            tokens: Vec::new(),
            protect_metrics: true,
        }
    }

    /// The token a request's `Authorization` header carries, if it is one of ours.
    fn identify(&self, header: Option<&str>) -> Option<&Token> {
        let presented = header?.strip_prefix("Bearer ")?.trim();
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = None;
        // Every token is compared, whatever matched before.
        for t in &self.tokens {
            let same = t
                .digest
                .iter()
                .zip(&digest)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
            if same && found.is_none() {
                found = Some(t);
            }
        }
        found
    }
}

/// Checks `Authorization` when `service.http.auth` is set (as the service started with it).
pub async fn authorize(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(auth) = state.auth.as_deref() else {
        return next.run(req).await;
    };
    let path = req.uri().path();
    let route = path
        .strip_prefix(state.context_path.trim_end_matches('/'))
        .unwrap_or(path);
    let open =
        route == "/health" || route == "/ready" || (route == "/metrics" && !auth.protect_metrics);
    if open {
        return next.run(req).await;
    }
    let header = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let Some(token) = auth.identify(header) else {
        tracing::warn!(
            method = %req.method(),
            route = %route,
            "Request refused: no valid bearer token."
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
    if token.role == Role::ReadOnly && !reads {
        tracing::warn!(
            token = %token.name,
            method = %req.method(),
            route = %route,
            "Request refused: the token is read-only."
        );
        return ApiError::Forbidden(format!(
            "token \"{}\" is read-only: only GET and HEAD are allowed",
            token.name
        ))
        .into_response();
    }
    next.run(req).await
}
