//! The OpenAPI document, generated from the handlers' annotations.

use super::{backup_files, backups, config_storage, error, restore, system, verify};
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
        verify::verify_backup, verify::verify_status, verify::verify_cancel,
        backup_files::backup_files,
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
    publish_names(&mut value);
    publish_rate_limit(&mut value);
    publish_save_failure(&mut value);
    publish_config_enums(&mut value["components"]["schemas"]);
    serde_json::from_value(value).expect("the OpenAPI document reads back")
}

/// The document as served: [`document`] plus what utoipa's model cannot carry. The listings'
/// `from` and `to` get `allowEmptyValue`: ABS reads `?to=` as no bound (Go's `Query().Get`
/// cannot tell empty from absent) and so do we, so clients and fuzzers should know an empty
/// value is accepted.
pub fn served() -> serde_json::Value {
    let mut value = serde_json::to_value(document()).expect("the OpenAPI document serializes");
    for_each_parameter(&mut value, |param| {
        if param["in"] == "query" && (param["name"] == "from" || param["name"] == "to") {
            param["allowEmptyValue"] = true.into();
        }
    });
    value
}

/// Configuration enums are read case-insensitively, with aliases (`WARNING` for `WARN`), and
/// `GET /v1/config` answers them as they were written; so their schemas are a pattern over
/// every accepted spelling in any case, not the canonical list alone.
fn publish_config_enums(schemas: &mut serde_json::Value) {
    use crate::config::{
        AuthMode, CompressionMode, ConnectionType, EncryptionMode, IncrMode, LogFormat, LogLevel,
        TimestampFormat,
    };
    let enums: [(&str, &[&str], &[&str]); 8] = [
        ("LogLevel", LogLevel::SPELLINGS, LogLevel::VARIANTS),
        ("LogFormat", LogFormat::SPELLINGS, LogFormat::VARIANTS),
        (
            "TimestampFormat",
            TimestampFormat::SPELLINGS,
            TimestampFormat::VARIANTS,
        ),
        ("AuthMode", AuthMode::SPELLINGS, AuthMode::VARIANTS),
        (
            "CompressionMode",
            CompressionMode::SPELLINGS,
            CompressionMode::VARIANTS,
        ),
        (
            "EncryptionMode",
            EncryptionMode::SPELLINGS,
            EncryptionMode::VARIANTS,
        ),
        (
            "ConnectionType",
            ConnectionType::SPELLINGS,
            ConnectionType::VARIANTS,
        ),
        ("IncrMode", IncrMode::SPELLINGS, IncrMode::VARIANTS),
    ];
    for (name, spellings, canonical) in enums {
        let Some(schema) = schemas.get_mut(name).and_then(|s| s.as_object_mut()) else {
            continue;
        };
        // `[Ww][Aa]...`: portable to every regex dialect, unlike an inline `(?i)`.
        let any_case = |word: &str| -> String {
            word.chars()
                .map(|c| {
                    if c.is_ascii_alphabetic() {
                        format!("[{}{}]", c.to_ascii_uppercase(), c.to_ascii_lowercase())
                    } else if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                        c.to_string()
                    } else {
                        format!("\\{c}")
                    }
                })
                .collect()
        };
        let alternatives: Vec<String> = spellings.iter().map(|w| any_case(w)).collect();
        schema.remove("enum");
        schema.insert("type".into(), "string".into());
        schema.insert(
            "pattern".into(),
            format!("^({})$", alternatives.join("|")).into(),
        );
        schema.insert("examples".into(), serde_json::json!(canonical));
        let doc = format!(
            "One of {} (any case; {}), answered as written.",
            canonical.join(", "),
            {
                let aliases: Vec<&str> = spellings
                    .iter()
                    .copied()
                    .filter(|w| !canonical.contains(w))
                    .collect();
                if aliases.is_empty() {
                    "no aliases".to_string()
                } else {
                    format!("also {}", aliases.join(", "))
                }
            }
        );
        schema.insert("description".into(), doc.into());
    }
}

/// Every route sits behind the per-client rate limit (`service.http.rate`), so every
/// operation can answer 429 in the error shape; and behind the optional token check, 401/403.
fn publish_rate_limit(doc: &mut serde_json::Value) {
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    let error = |description: &str| {
        serde_json::json!({
            "description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
        })
    };
    for (path, item) in paths.iter_mut() {
        // With service.http.auth, all but the probes (and, by default, /metrics) need a token.
        let guarded = !["/health", "/ready", "/metrics"].contains(&path.as_str());
        for op in item
            .as_object_mut()
            .into_iter()
            .flat_map(|o| o.values_mut())
            .filter_map(|op| op.as_object_mut())
        {
            let Some(responses) = op.get_mut("responses").and_then(|r| r.as_object_mut()) else {
                continue;
            };
            responses
                .entry("429")
                .or_insert_with(|| error("Too many requests from this client (service.http.rate)"));
            if guarded {
                responses.entry("401").or_insert_with(|| {
                    error("No valid bearer token (only when service.http.auth is set)")
                });
                responses.entry("403").or_insert_with(|| {
                    error("The token's role does not allow this request (service.http.auth)")
                });
            }
        }
    }
}

/// Every configuration change (POST, PUT, DELETE under `/v1/config`, `apply` excepted: it
/// only reads) saves the file first, so each can answer 500 naming why the save failed, and
/// 409 when the configuration came from a URL and cannot be saved at all.
fn publish_save_failure(doc: &mut serde_json::Value) {
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        if !path.starts_with("/v1/config") || path.ends_with("/apply") {
            continue;
        }
        for (method, op) in item.as_object_mut().into_iter().flat_map(|o| o.iter_mut()) {
            if !matches!(method.as_str(), "post" | "put" | "delete") {
                continue;
            }
            let Some(responses) = op.get_mut("responses").and_then(|r| r.as_object_mut()) else {
                continue;
            };
            responses.entry("500").or_insert_with(|| {
                serde_json::json!({
                    "description": "The configuration could not be saved (the error names the file and the reason); the previous one stays in effect",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
                })
            });
            responses.entry("409").or_insert_with(|| {
                serde_json::json!({
                    "description": "The configuration is read-only (it was loaded from a URL); nothing changed",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
                })
            });
        }
    }
}

/// The safe set of entity names as a string schema.
fn name_schema() -> serde_json::Value {
    serde_json::json!({
        "type": "string",
        "pattern": crate::config::validate::NAME_PATTERN,
        "minLength": 1,
        "maxLength": crate::config::validate::NAME_MAX,
    })
}

/// Calls `f` on every parameter of every operation of the document's paths.
fn for_each_parameter(doc: &mut serde_json::Value, mut f: impl FnMut(&mut serde_json::Value)) {
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for op in paths
        .values_mut()
        .filter_map(|item| item.as_object_mut())
        .flat_map(|o| o.values_mut())
    {
        for param in op
            .get_mut("parameters")
            .and_then(|p| p.as_array_mut())
            .into_iter()
            .flatten()
        {
            f(param);
        }
    }
}

/// Puts the name rule on every `{name}` path parameter and on the keys of the config's named
/// sections, so generated clients and fuzzers know which names the validator accepts.
fn publish_names(doc: &mut serde_json::Value) {
    for_each_parameter(doc, |param| {
        if param["name"] == "name" && param["in"] == "path" {
            param["schema"] = name_schema();
        }
    });
    let config = &mut doc["components"]["schemas"]["Config"]["properties"];
    for section in [
        "aerospike-clusters",
        "storage",
        "backup-policies",
        "backup-routines",
        "secret-agents",
        "plugins",
    ] {
        let prop = config
            .get_mut(section)
            .and_then(|p| p.as_object_mut())
            .unwrap_or_else(|| panic!("Config has no property {section}"));
        prop.insert("propertyNames".into(), name_schema());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every range reaches the served document, on the property (or list items) it bounds.
    #[test]
    fn every_range_is_in_the_openapi_document() {
        let doc = serde_json::to_value(document()).unwrap();
        let schemas = &doc["components"]["schemas"];
        for r in crate::config::limits::RANGES {
            let prop = &schemas[r.schema]["properties"][r.field];
            let target = if prop.get("items").is_some() {
                &prop["items"]
            } else {
                prop
            };
            assert_eq!(target["minimum"], r.min, "{r:?}: {prop}");
            assert_eq!(target["maximum"], r.max, "{r:?}: {prop}");
        }
    }
}
