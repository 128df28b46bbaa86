//! `/v1/config/routines`: backup routines, plus enable/disable.

use crate::config::{BackupRoutine, ChangeError, Config};
use axum::http::StatusCode;
use axum::response::IntoResponse;

/// The `backup-routines` section.
#[derive(Debug)]
pub struct Routines;

impl entity::Section for Routines {
    type Item = BackupRoutine;
    const KEY: &'static str = "backup-routines";
    const NOUN: &'static str = "routine";

    fn items(cfg: &Config) -> &BTreeMap<String, BackupRoutine> {
        &cfg.backup_routines
    }
    fn items_mut(cfg: &mut Config) -> &mut BTreeMap<String, BackupRoutine> {
        &mut cfg.backup_routines
    }
    fn users(_cfg: &Config, _name: &str) -> Vec<String> {
        // Nothing in the config refers to a routine.
        Vec::new()
    }
}

crate::api::entity::section_routes! {
    section: Routines,
    item: BackupRoutine,
    tag: "Configuration",
    list_path: "/v1/config/routines",
    item_path: "/v1/config/routines/{name}",
    noun: "routine",
}

async fn set_disabled(
    state: &AppState,
    name: String,
    disabled: bool,
) -> Result<Response, ApiError> {
    state
        .store
        .update(|cfg| match cfg.backup_routines.get_mut(&name) {
            Some(r) => {
                r.disabled = disabled.into();
                Ok(())
            }
            None => Err(ChangeError::NotFound(format!("routine {name}"))),
        })
        .await?;
    if disabled && state.backups.cancel(&name) {
        tracing::info!(routine = %name, "Running backups of the disabled routine were cancelled.");
    }
    tracing::info!(routine = %name, disabled, "Routine {}.", if disabled { "disabled" } else { "enabled" });
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Stops scheduling a routine and cancels its running backups.
#[utoipa::path(put, path = "/v1/config/routines/{name}/disable", tag = "Configuration",
    params(("name" = String, Path, description = "Name of the routine")),
    responses((status = 204, description = "Disabled"), (status = 404, body = ErrorBody)))]
pub async fn disable(
    State(state): State<AppState>,
    Name(name): Name,
) -> Result<Response, ApiError> {
    set_disabled(&state, name, true).await
}

/// Schedules a disabled routine again.
#[utoipa::path(put, path = "/v1/config/routines/{name}/enable", tag = "Configuration",
    params(("name" = String, Path, description = "Name of the routine")),
    responses((status = 204, description = "Enabled"), (status = 404, body = ErrorBody)))]
pub async fn enable(State(state): State<AppState>, Name(name): Name) -> Result<Response, ApiError> {
    set_disabled(&state, name, false).await
}

/// CRUD plus enable/disable.
pub fn routes() -> axum::Router<AppState> {
    router()
        .route(
            "/v1/config/routines/{name}/disable",
            axum::routing::put(disable),
        )
        .route(
            "/v1/config/routines/{name}/enable",
            axum::routing::put(enable),
        )
}
