//! Parsing the options JSON document into a plugin's own type.

use serde::de::DeserializeOwned;

use crate::{Error, Result};

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
