//! The one error type of the REST API and its one mapping to HTTP.
//!
//! Bodies are JSON `{"error": "...", "field": "<config path>" | null}` (DESIGN D6: a documented
//! deviation from ABS's plain text), with every problem listed under `errors` when there are
//! several. A 5xx hides its cause from the client and logs it; a 4xx logs at debug.

use crate::config::{ChangeError, ConfigError};
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// An API failure.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Bad input: malformed body, unknown field, invalid value. 400.
    #[error("{}", join(.0))]
    BadRequest(Vec<ConfigError>),
    /// The named thing does not exist. 404.
    #[error("{0}")]
    NotFound(String),
    /// The change conflicts with the current state (entity in use). 409.
    #[error("{0}")]
    Conflict(String),
    /// The body's `Content-Type` is neither JSON nor YAML. 415.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// No valid bearer token (`service.http.auth`). 401.
    #[error("{0}")]
    Unauthorized(String),
    /// The token's role does not allow this request. 403.
    #[error("{0}")]
    Forbidden(String),
    /// The client sent too many requests. 429.
    #[error("Too Many Requests")]
    TooManyRequests,
    /// Not ready to serve (503), with the reason.
    #[error("{0}")]
    Unavailable(String),
    /// The configuration could not be saved (read-only or full disk, storage down). 500 with
    /// the reason: the operator must act on it, and an OS or storage error holds no secret.
    /// The previous configuration stays loaded and on disk.
    #[error("{0}")]
    SaveFailed(String),
    /// A storage could not be reached or refused the request (credentials, missing bucket or
    /// container): 502, with the storage's name and the store's own answer, which the
    /// operator acts on. Plugin errors never carry secrets.
    #[error("storage {storage}: {message}")]
    Storage { storage: String, message: String },
    /// Anything else; the cause is logged, not shown. 500.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

fn join(errs: &[ConfigError]) -> String {
    errs.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl ApiError {
    /// A 400 naming one field.
    pub fn bad_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::BadRequest(vec![ConfigError::new(field, message)])
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Storage { .. } => StatusCode::BAD_GATEWAY,
            ApiError::SaveFailed(_) | ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<ChangeError> for ApiError {
    fn from(e: ChangeError) -> Self {
        match e {
            ChangeError::Invalid(errs) => ApiError::BadRequest(errs),
            ChangeError::NotFound(what) => ApiError::NotFound(format!("{what} not found")),
            ChangeError::AlreadyExists(what) => {
                ApiError::bad_field(what.clone(), format!("item already exists: {what}"))
            }
            e @ (ChangeError::InUse { .. } | ChangeError::ReadOnly(_)) => {
                ApiError::Conflict(e.to_string())
            }
            ChangeError::Io(e) => ApiError::SaveFailed(format!(
                "saving the configuration failed, the previous one stays in effect: {e}"
            )),
        }
    }
}

/// The JSON body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong, in words.
    pub error: String,
    /// The config path or parameter at fault, when one is known.
    pub field: Option<String>,
    /// Every problem, when there are several.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// One located problem.
#[derive(Debug, Serialize, ToSchema)]
pub struct FieldError {
    pub field: String,
    pub error: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = match &self {
            ApiError::BadRequest(errs) => ErrorBody {
                error: self.to_string(),
                field: errs
                    .first()
                    .map(|e| e.path.clone())
                    .filter(|p| !p.is_empty()),
                errors: if errs.len() > 1 {
                    errs.iter()
                        .map(|e| FieldError {
                            field: e.path.clone(),
                            error: e.message.clone(),
                        })
                        .collect()
                } else {
                    vec![]
                },
            },
            ApiError::Internal(cause) => {
                tracing::error!(error = format!("{cause:#}"), "Request failed.");
                ErrorBody {
                    error: "internal error; see the service log".into(),
                    field: None,
                    errors: vec![],
                }
            }
            ApiError::SaveFailed(m) => {
                tracing::error!(error = %m, "Request failed.");
                ErrorBody {
                    error: m.clone(),
                    field: None,
                    errors: vec![],
                }
            }
            ApiError::Storage { storage, .. } => {
                tracing::warn!(storage = %storage, error = %self, "Storage request failed.");
                ErrorBody {
                    error: self.to_string(),
                    field: Some(format!("storage.{storage}")),
                    errors: vec![],
                }
            }
            ApiError::UnsupportedMediaType(m) => ErrorBody {
                error: m.clone(),
                field: Some("Content-Type".into()),
                errors: vec![],
            },
            ApiError::Unauthorized(m) | ApiError::Forbidden(m) => ErrorBody {
                error: m.clone(),
                field: Some("Authorization".into()),
                errors: vec![],
            },
            other => ErrorBody {
                error: other.to_string(),
                field: None,
                errors: vec![],
            },
        };
        if status.is_client_error() {
            tracing::debug!(status = status.as_u16(), error = %body.error, "Request rejected.");
        }
        (status, Json(body)).into_response()
    }
}
