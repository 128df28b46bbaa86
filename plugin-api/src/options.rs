//! Parsing the options JSON document into a plugin's own type, and its JSON Schema.
//!
//! The SDK does this for you (see [`Plugin`]); [`load`] is public so tests can parse options
//! exactly as the service will.

use serde::de::DeserializeOwned;

use crate::{Error, Plugin, Result};

/// Options type of a plugin that takes any JSON object and reads it itself (schema
/// `{"type": "object"}`). Prefer a struct of your own: it documents and checks each option.
pub type Object = serde_json::Map<String, serde_json::Value>;

/// Parses and checks `options` as the SDK does before it makes an encoder, decoder or
/// backend: [`parse`] into [`Plugin::Options`], then [`Plugin::check_options`].
pub fn load<P: Plugin + ?Sized>(options: &str) -> Result<P::Options> {
    let parsed = parse::<P::Options>(options)?;
    P::check_options(&parsed)?;
    Ok(parsed)
}

/// The JSON Schema (draft 2020-12) of `T` as JSON text, as `plugin-info` reports it.
/// Doc comments become `description`s, `#[serde(default)]` values `default`s (when the
/// field type is `Serialize`), `#[schemars(range(..))]` `minimum`/`maximum`, and
/// `deny_unknown_fields` `additionalProperties: false`.
pub fn schema_of<T: schemars::JsonSchema>() -> String {
    let schema = schemars::SchemaGenerator::default().into_root_schema_for::<T>();
    schema.to_value().to_string()
}

/// Parses `options` (a JSON object as text) into `T`, reporting failures as
/// [`Error::InvalidConfig`] naming the offending option (e.g. `level: invalid type ...`).
///
/// Blank text counts as `{}` so a step configured without options gets its defaults.
/// Use `#[serde(deny_unknown_fields, rename_all = "kebab-case")]` on `T` so that
/// misspelt options are rejected instead of silently ignored.
pub fn parse<T: DeserializeOwned>(options: &str) -> Result<T> {
    let text = if options.trim().is_empty() {
        "{}"
    } else {
        options
    };
    let de = &mut serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path.is_empty() || path == "." {
            Error::InvalidConfig(inner.to_string())
        } else {
            Error::InvalidConfig(format!("{path}: {inner}"))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    /// Options shaped like a real codec's: a ranged default, a bool, a required enum.
    #[derive(Debug, Deserialize, schemars::JsonSchema)]
    #[serde(deny_unknown_fields, rename_all = "kebab-case")]
    struct Typed {
        /// Level.
        #[serde(default = "three")]
        #[schemars(range(min = 1, max = 9))]
        level: u8,
        #[serde(default)]
        with_checksum: bool,
        mode: Mode,
    }

    #[derive(Debug, Deserialize, schemars::JsonSchema)]
    #[serde(rename_all = "kebab-case")]
    enum Mode {
        Fast,
        Small,
    }

    fn three() -> u8 {
        3
    }

    struct TypedPlugin;

    impl Plugin for TypedPlugin {
        const NAME: &'static str = "typed";
        const VERSION: &'static str = "0.0.0";
        type Options = Typed;
        fn check_options(o: &Typed) -> Result<()> {
            if !(1..=9).contains(&o.level) {
                return Err(Error::invalid_config("level: must be 1..=9"));
            }
            Ok(())
        }
    }

    #[test]
    fn the_derived_schema_accepts_exactly_what_the_plugin_accepts() {
        let schema: serde_json::Value =
            serde_json::from_str(&TypedPlugin::options_schema()).unwrap();
        assert_eq!(schema["type"], "object");
        assert_eq!(schema["additionalProperties"], false);
        assert_eq!(schema["properties"]["level"]["default"], 3);
        assert_eq!(schema["required"], json!(["mode"]));
        let validator = jsonschema::validator_for(&schema).unwrap();
        let docs = [
            json!({"mode": "fast"}),
            json!({"mode": "small", "level": 9, "with-checksum": true}),
            json!({"mode": "fast", "level": 1}),
            json!({}),
            json!({"mode": "medium"}),
            json!({"mode": "fast", "level": 0}),
            json!({"mode": "fast", "level": 10}),
            json!({"mode": "fast", "level": "3"}),
            json!({"mode": "fast", "level": 3.5}),
            json!({"mode": "fast", "with_checksum": true}),
            json!({"mode": "fast", "with-checksum": 1}),
            json!({"mode": "fast", "extra": 1}),
            json!([]),
            json!(null),
        ];
        let mut accepted = 0;
        for doc in docs {
            let by_schema = validator.is_valid(&doc);
            let by_plugin = load::<TypedPlugin>(&doc.to_string());
            assert_eq!(
                by_schema,
                by_plugin.is_ok(),
                "{doc}: schema says {by_schema}, plugin says {by_plugin:?}"
            );
            accepted += usize::from(by_schema);
        }
        assert_eq!(accepted, 3);
        let tried = crate::testing::check_options_schema::<TypedPlugin>().unwrap();
        assert!(tried.is_empty(), "`mode` has no default: {tried:?}");
    }

    #[test]
    fn check_options_runs_after_parsing() {
        let Err(Error::InvalidConfig(msg)) = load::<TypedPlugin>(r#"{"mode": "fast", "level": 0}"#)
        else {
            panic!("expected invalid-config");
        };
        assert_eq!(msg, "level: must be 1..=9");
        let o = load::<TypedPlugin>(r#"{"mode": "small", "with-checksum": true}"#).unwrap();
        assert_eq!(o.level, 3);
        assert!(o.with_checksum && matches!(o.mode, Mode::Small));
        assert!(matches!(
            load::<TypedPlugin>(r#"{"mode": "fast"}"#).unwrap().mode,
            Mode::Fast
        ));
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "kebab-case")]
    struct Opts {
        #[serde(default)]
        level: i32,
    }

    #[test]
    fn blank_means_defaults() {
        assert_eq!(parse::<Opts>("  ").unwrap().level, 0);
        assert_eq!(parse::<Opts>(r#"{"level": 5}"#).unwrap().level, 5);
    }

    #[test]
    fn errors_name_the_option() {
        let Err(Error::InvalidConfig(msg)) = parse::<Opts>(r#"{"level": "x"}"#) else {
            panic!("expected invalid-config");
        };
        assert!(msg.starts_with("level: "), "{msg}");
        let Err(Error::InvalidConfig(msg)) = parse::<Opts>(r#"{"levle": 1}"#) else {
            panic!("expected invalid-config");
        };
        assert!(msg.contains("levle"), "{msg}");
    }
}
