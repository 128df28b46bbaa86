//! Request bodies in JSON, or YAML when the content type says so, parsed with the path of the
//! offending field so a 400 can name it.

use super::error::ApiError;
use crate::config::{self, ConfigError, Format};
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use serde::de::DeserializeOwned;

/// Largest request body accepted; a whole config is a few KiB.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// A parsed body plus the format it came in.
#[derive(Debug)]
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let format = match req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
        {
            Some(ct) if ct.contains("yaml") => Format::Yaml,
            _ => Format::Json,
        };
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::bad_field("", format!("cannot read the request body: {e}")))?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| ApiError::bad_field("", "the request body is not UTF-8"))?;
        if text.trim().is_empty() {
            return Err(ApiError::bad_field("", "a request body is required"));
        }
        config::parse::<T>(text, format)
            .map(Body)
            .map_err(|e| ApiError::BadRequest(vec![e]))
    }
}

/// Prefixes the paths of body errors with the entity's place in the config, so the field named
/// in a 400 is the same whether the entity came alone or inside a whole config.
pub fn under(prefix: &str, err: ApiError) -> ApiError {
    match err {
        ApiError::BadRequest(errs) => ApiError::BadRequest(
            errs.into_iter()
                .map(|e| {
                    let path = if e.path.is_empty() {
                        prefix.to_string()
                    } else if e.path.starts_with('[') {
                        format!("{prefix}{}", e.path)
                    } else {
                        format!("{prefix}.{}", e.path)
                    };
                    ConfigError::new(path, e.message)
                })
                .collect(),
        ),
        other => other,
    }
}
