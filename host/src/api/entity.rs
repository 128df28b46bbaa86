//! The five CRUD operations shared by every named config section (clusters, storage, policies,
//! routines, secret agents). Each resource module declares its section with [`Section`] and
//! gets list/get/create/update/delete with ABS status codes.

use super::AppState;
use super::body::{Body, under};
use super::error::ApiError;
use crate::config::{ChangeError, Config};
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;

/// One named section of the configuration.
pub trait Section: 'static {
    /// The entity type.
    type Item: Clone + Serialize + DeserializeOwned + utoipa::PartialSchema + Send + Sync + 'static;
    /// The config key of the section, e.g. `aerospike-clusters`.
    const KEY: &'static str;
    /// How error messages name one item, e.g. `cluster`.
    const NOUN: &'static str;

    fn items(cfg: &Config) -> &BTreeMap<String, Self::Item>;
    fn items_mut(cfg: &mut Config) -> &mut BTreeMap<String, Self::Item>;

    /// What refers to the item `name` (e.g. `backup-routines.daily`), for 409 on delete.
    fn users(cfg: &Config, name: &str) -> Vec<String>;

    /// The item as the API shows it (secrets redacted).
    fn redact(item: &Self::Item) -> Self::Item {
        item.clone()
    }

    /// Puts stored secrets back where a client sent the redaction placeholder.
    fn keep_secrets(_new: &mut Self::Item, _old: Option<&Self::Item>) {}
}

/// The `{name}` of a path, with a malformed one (bytes that are not UTF-8) refused in our error
/// shape naming `name`, where axum's own rejection would be plain text.
#[derive(Debug)]
pub struct Name(pub String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Name {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        axum::extract::Path::<String>::from_request_parts(parts, state)
            .await
            .map(|p| Name(p.0))
            .map_err(|e| ApiError::bad_field("name", e.body_text()))
    }
}

pub async fn list<S: Section>(state: &AppState) -> Json<BTreeMap<String, S::Item>> {
    let cfg = state.store.current();
    Json(
        S::items(&cfg)
            .iter()
            .map(|(k, v)| (k.clone(), shown::<S>(&cfg, v)))
            .collect(),
    )
}

pub async fn get<S: Section>(state: &AppState, name: &str) -> Result<Json<S::Item>, ApiError> {
    let cfg = state.store.current();
    S::items(&cfg)
        .get(name)
        .map(|v| Json(shown::<S>(&cfg, v)))
        .ok_or_else(|| not_found::<S>(name))
}

/// An item as the API answers it: redacted unless `service.reveal-secrets-in-api` is true.
fn shown<S: Section>(cfg: &Config, item: &S::Item) -> S::Item {
    if cfg.service.reveal_secrets_in_api() {
        item.clone()
    } else {
        S::redact(item)
    }
}

fn not_found<S: Section>(name: &str) -> ApiError {
    ApiError::NotFound(format!("{} {name} not found", S::NOUN))
}

/// The body of a create or update, after the name in the path: a name outside the safe set is
/// a 400 naming the `name` parameter before the body is looked at.
fn body<S: Section>(
    name: &str,
    body: Result<Body<S::Item>, ApiError>,
) -> Result<S::Item, ApiError> {
    if let Some(problem) = crate::config::validate::name_problem(name) {
        return Err(ApiError::bad_field("name", problem));
    }
    body.map(|b| b.0)
        .map_err(|e| under(&format!("{}.{name}", S::KEY), e))
}

pub async fn create<S: Section>(
    state: &AppState,
    name: String,
    item: Result<Body<S::Item>, ApiError>,
) -> Result<Response, ApiError> {
    let item = body::<S>(&name, item)?;
    state
        .store
        .update(|cfg| {
            let items = S::items_mut(cfg);
            if items.contains_key(&name) {
                return Err(ChangeError::AlreadyExists(format!("{}.{name}", S::KEY)));
            }
            items.insert(name.clone(), item);
            Ok(())
        })
        .await?;
    tracing::info!(section = S::KEY, name = %name, "Configuration item created.");
    Ok(StatusCode::CREATED.into_response())
}

pub async fn update<S: Section>(
    state: &AppState,
    name: String,
    item: Result<Body<S::Item>, ApiError>,
) -> Result<Response, ApiError> {
    let mut item = body::<S>(&name, item)?;
    state
        .store
        .update(|cfg| {
            let items = S::items_mut(cfg);
            let Some(old) = items.get(&name) else {
                return Err(ChangeError::NotFound(format!("{} {name}", S::NOUN)));
            };
            S::keep_secrets(&mut item, Some(old));
            items.insert(name.clone(), item);
            Ok(())
        })
        .await?;
    tracing::info!(section = S::KEY, name = %name, "Configuration item updated.");
    Ok(StatusCode::OK.into_response())
}

pub async fn delete<S: Section>(state: &AppState, name: String) -> Result<Response, ApiError> {
    state
        .store
        .update(|cfg| {
            if !S::items(cfg).contains_key(&name) {
                return Err(ChangeError::NotFound(format!("{} {name}", S::NOUN)));
            }
            let users = S::users(cfg, &name);
            if !users.is_empty() {
                return Err(ChangeError::InUse {
                    what: format!("{} {name}", S::NOUN),
                    users: users.join(", "),
                });
            }
            S::items_mut(cfg).remove(&name);
            Ok(())
        })
        .await?;
    tracing::info!(section = S::KEY, name = %name, "Configuration item deleted.");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Declares the REST module of a config section: handlers documented for OpenAPI, and a
/// `router()` with the five routes under `/v1/config/<segment>`.
macro_rules! section_routes {
    (
        section: $section:ty,
        item: $item:ty,
        tag: $tag:literal,
        list_path: $list_path:literal,
        item_path: $item_path:literal,
        noun: $noun:literal $(,)?
    ) => {
        use crate::api::AppState;
        use crate::api::body::Body;
        use crate::api::entity;
        use crate::api::error::{ApiError, ErrorBody};
        use axum::Json;
        use crate::api::entity::Name;
        use axum::extract::State;
        use axum::response::Response;
        use std::collections::BTreeMap;

        #[doc = concat!("Lists every ", $noun, " by name.")]
        #[utoipa::path(get, path = $list_path, tag = $tag,
            responses((status = 200, description = concat!("Every ", $noun, " by name"), body = BTreeMap<String, $item>)))]
        pub async fn list(State(state): State<AppState>) -> Json<BTreeMap<String, $item>> {
            entity::list::<$section>(&state).await
        }

        #[doc = concat!("Reads one ", $noun, ".")]
        #[utoipa::path(get, path = $item_path, tag = $tag,
            params(("name" = String, Path, description = concat!("Name of the ", $noun))),
            responses((status = 200, body = $item), (status = 404, body = ErrorBody)))]
        pub async fn get(
            State(state): State<AppState>,
            Name(name): Name,
        ) -> Result<Json<$item>, ApiError> {
            entity::get::<$section>(&state, &name).await
        }

        #[doc = concat!("Creates a ", $noun, "; the whole resulting config is validated and saved.")]
        #[utoipa::path(post, path = $item_path, tag = $tag, request_body = $item,
            params(("name" = String, Path, description = concat!("Name of the new ", $noun))),
            responses((status = 201, description = "Created"), (status = 400, body = ErrorBody),
                (status = 415, description = "Content-Type is not JSON or YAML", body = ErrorBody)))]
        pub async fn create(
            State(state): State<AppState>,
            Name(name): Name,
            body: Result<Body<$item>, ApiError>,
        ) -> Result<Response, ApiError> {
            entity::create::<$section>(&state, name, body).await
        }

        #[doc = concat!("Replaces a ", $noun, "; `\"[secret]\"` keeps a stored secret.")]
        #[utoipa::path(put, path = $item_path, tag = $tag, request_body = $item,
            params(("name" = String, Path, description = concat!("Name of the ", $noun))),
            responses((status = 200, description = "Updated"), (status = 400, body = ErrorBody),
                (status = 404, body = ErrorBody), (status = 415, description = "Content-Type is not JSON or YAML", body = ErrorBody)))]
        pub async fn update(
            State(state): State<AppState>,
            Name(name): Name,
            body: Result<Body<$item>, ApiError>,
        ) -> Result<Response, ApiError> {
            entity::update::<$section>(&state, name, body).await
        }

        #[doc = concat!("Deletes a ", $noun, " that nothing uses.")]
        #[utoipa::path(delete, path = $item_path, tag = $tag,
            params(("name" = String, Path, description = concat!("Name of the ", $noun))),
            responses((status = 204, description = "Deleted"), (status = 404, body = ErrorBody),
                (status = 409, description = "In use", body = ErrorBody)))]
        pub async fn delete(
            State(state): State<AppState>,
            Name(name): Name,
        ) -> Result<Response, ApiError> {
            entity::delete::<$section>(&state, name).await
        }

        /// The routes of this section, relative to the API root.
        pub fn router() -> axum::Router<AppState> {
            use axum::routing::get as route_get;
            axum::Router::new()
                .route($list_path, route_get(list))
                .route(
                    $item_path,
                    route_get(get).post(create).put(update).delete(delete),
                )
        }
    };
}
pub(crate) use section_routes;
