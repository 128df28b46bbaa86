//! The OpenAPI document, generated from the handlers' annotations.

use super::{backups, config_storage, error, restore, system};
use super::{config, config_clusters, config_policies, config_routines, config_secret_agents};
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Aerospike Backup Service",
        description = "Backs up and restores Aerospike clusters on schedules; ABS v3 compatible REST API.",
        license(name = "Apache-2.0")
    ),
    paths(
        system::root, system::health, system::ready, system::version, system::metrics, system::api_docs,
        config::get_config, config::put_config, config::apply_config,
        config_clusters::list, config_clusters::get, config_clusters::create, config_clusters::update, config_clusters::delete,
        config_storage::list, config_storage::get, config_storage::create, config_storage::update, config_storage::delete,
        config_policies::list, config_policies::get, config_policies::create, config_policies::update, config_policies::delete,
        config_routines::list, config_routines::get, config_routines::create, config_routines::update, config_routines::delete,
        config_routines::enable, config_routines::disable,
        config_secret_agents::list, config_secret_agents::get, config_secret_agents::create,
        config_secret_agents::update, config_secret_agents::delete,
        backups::list_full, backups::list_full_routine, backups::list_incremental,
        backups::list_incremental_routine, backups::schedule, backups::start_full,
        backups::start_incremental, backups::current_backup, backups::cancel,
        restore::restore_full, restore::restore_incremental, restore::restore_timestamp,
        restore::restore_status, restore::restore_jobs, restore::restore_cancel,
        restore::retrieve_configuration,
    ),
    components(schemas(error::ErrorBody, error::FieldError)),
    tags(
        (name = "System", description = "Health, readiness, version, metrics"),
        (name = "Configuration", description = "Read and change the configuration"),
        (name = "Backup", description = "Run, follow and list backups"),
        (name = "Restore", description = "Restore backups and follow restore jobs")
    )
)]
struct ApiDoc;

/// The document served at `/api-docs/openapi.json`.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    // The validator's ranges go into the schemas from the one table both read; utoipa's
    // attributes would be a second copy of every bound.
    let mut value = serde_json::to_value(&doc).expect("the OpenAPI document serializes");
    crate::config::limits::publish(&mut value["components"]["schemas"]);
    serde_json::from_value(value).expect("the OpenAPI document reads back")
}
