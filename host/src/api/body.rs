//! Request bodies in JSON, or YAML when the content type says so, parsed with the path of the
//! offending field so a 400 can name it.

use super::error::ApiError;
use crate::config::{self, ConfigError, Format};
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::HeaderValue;
use axum::http::header::CONTENT_TYPE;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::sync::OnceLock;
use utoipa::PartialSchema;

/// Largest request body accepted; a whole config is a few KiB.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// A parsed body plus the format it came in.
#[derive(Debug)]
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + PartialSchema> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let format = body_format(req.headers().get(CONTENT_TYPE))?;
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::bad_field("", format!("cannot read the request body: {e}")))?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| ApiError::bad_field("", "the request body is not UTF-8"))?;
        if text.trim().is_empty() {
            return Err(ApiError::bad_field("", "a request body is required"));
        }
        // Serde would read a struct from a JSON array (`[null, null]` as a policy): the
        // document's shapes are checked first, so a wrong JSON type is a 400 naming the field.
        let value = match format {
            Format::Json => serde_json::from_str::<Value>(text).ok(),
            Format::Yaml => serde_yaml::from_str::<Value>(text).ok(),
        };
        if let Some(value) = value {
            let schema = serde_json::to_value(T::schema()).unwrap_or_default();
            let mut errors = Vec::new();
            check_shape(&schema, &value, "", 0, &mut errors);
            if !errors.is_empty() {
                return Err(ApiError::BadRequest(errors));
            }
        }
        config::parse::<T>(text, format)
            .map(Body)
            .map_err(|e| ApiError::BadRequest(vec![e]))
    }
}

/// The format a `Content-Type` names. Absent means JSON: ABS reads every body as JSON whatever
/// the header, so HTTP clients that write a body without one keep working. An explicit type that
/// is neither JSON nor YAML is refused with 415 rather than guessed at; that includes
/// `application/x-www-form-urlencoded`, which `curl -d` and `--data-binary` send unless told
/// otherwise (the message says how).
pub fn body_format(header: Option<&HeaderValue>) -> Result<Format, ApiError> {
    let Some(header) = header else {
        return Ok(Format::Json);
    };
    let text = header.to_str().unwrap_or("");
    let essence = text
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let (kind, subtype) = essence.split_once('/').unwrap_or((essence.as_str(), ""));
    let is = |name: &str| subtype == name || subtype.ends_with(&format!("+{name}"));
    match kind {
        "application" | "text" if is("json") => Ok(Format::Json),
        "application" | "text" if is("yaml") || is("x-yaml") => Ok(Format::Yaml),
        _ => Err(ApiError::UnsupportedMediaType(format!(
            "Content-Type \"{}\" is not supported; send application/json (or application/yaml), \
             e.g. curl -H 'Content-Type: application/json'",
            text.escape_debug()
        ))),
    }
}

/// The OpenAPI document's component schemas, where request schemas' `$ref`s point.
fn components() -> &'static Value {
    static COMPONENTS: OnceLock<Value> = OnceLock::new();
    COMPONENTS.get_or_init(|| {
        serde_json::to_value(super::openapi::document())
            .map(|d| d["components"]["schemas"].clone())
            .unwrap_or_default()
    })
}

/// Deeper than any config; a guard against recursive schemas.
const MAX_SHAPE_DEPTH: usize = 32;

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The JSON types a schema allows, `None` when it does not say (or allows anything).
fn allowed_types(schema: &Value) -> Option<Vec<&str>> {
    match schema.get("type")? {
        Value::String(t) => Some(vec![t.as_str()]),
        Value::Array(ts) => Some(ts.iter().filter_map(Value::as_str).collect()),
        _ => None,
    }
}

/// Checks only where objects and arrays may stand: an object or array where the schema wants
/// something else, or a scalar where it wants an object or array. Scalars against scalars
/// (numbers written as strings, enum spellings, aliases) are left to the parser, which
/// accepts what ABS files hold and words its own errors.
fn check_shape(
    schema: &Value,
    value: &Value,
    path: &str,
    depth: usize,
    errors: &mut Vec<ConfigError>,
) {
    if depth > MAX_SHAPE_DEPTH || errors.len() >= 10 {
        return;
    }
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        if let Some(target) = r
            .strip_prefix("#/components/schemas/")
            .and_then(|name| components().get(name))
        {
            check_shape(target, value, path, depth + 1, errors);
        }
        return;
    }
    for all in schema
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        check_shape(all, value, path, depth + 1, errors);
    }
    let alternatives = schema
        .get("oneOf")
        .or_else(|| schema.get("anyOf"))
        .and_then(Value::as_array);
    if let Some(alts) = alternatives {
        let fits = alts.iter().any(|alt| {
            let mut e = Vec::new();
            check_shape(alt, value, path, depth + 1, &mut e);
            e.is_empty()
        });
        if !fits {
            // Report against the first alternative that is not just `null`.
            let main = alts
                .iter()
                .find(|a| allowed_types(a) != Some(vec!["null"]))
                .unwrap_or(&alts[0]);
            check_shape(main, value, path, depth + 1, errors);
        }
        return;
    }
    let found = json_type(value);
    if let Some(types) = allowed_types(schema) {
        let structured = |t: &str| t == "object" || t == "array";
        let wants_structured = types.iter().any(|t| structured(t));
        let mismatch = if structured(found) || wants_structured {
            !types.contains(&found)
        } else {
            false
        };
        if mismatch {
            let field = if path.is_empty() {
                "the request body"
            } else {
                path
            };
            errors.push(ConfigError::new(
                path,
                format!(
                    "{field} must be {}, not {}",
                    types.join(" or "),
                    article(found)
                ),
            ));
            return;
        }
    }
    match value {
        Value::Object(map) => {
            let props = schema.get("properties").and_then(Value::as_object);
            let extra = schema.get("additionalProperties").filter(|a| a.is_object());
            for (key, v) in map {
                let sub = props.and_then(|p| p.get(key)).or(extra);
                if let Some(sub) = sub {
                    let p = if path.is_empty() {
                        key.clone()
                    } else {
                        format!("{path}.{key}")
                    };
                    check_shape(sub, v, &p, depth + 1, errors);
                }
            }
        }
        Value::Array(items) => {
            if let Some(sub) = schema.get("items") {
                for (i, v) in items.iter().enumerate() {
                    check_shape(sub, v, &format!("{path}[{i}]"), depth + 1, errors);
                }
            }
        }
        _ => {}
    }
}

fn article(json_type: &str) -> String {
    match json_type {
        "array" | "object" => format!("an {json_type}"),
        "null" => "null".to_string(),
        other => format!("a {other}"),
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
