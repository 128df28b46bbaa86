//! The syntax of a Secret Agent reference, `secrets:<resource>:<key>` (or `secrets:<key>`),
//! and of the bare `<resource>:<key>` form some fields take. Validation checks references
//! with it; the Secret Agent client (`secrets.rs`) resolves what it parses.

use std::fmt;

/// Prefix of a reference in a secret field.
pub const PREFIX: &str = "secrets:";

/// A reference to one secret: `secrets:<resource>:<key>`, or `secrets:<key>` for an agent
/// whose secrets have no resource. Not secret itself: it is shown in errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRef {
    pub resource: String,
    pub key: String,
}

impl SecretRef {
    /// Parses a field value that starts with `secrets:`.
    pub fn parse(text: &str) -> Result<SecretRef, String> {
        let rest = text
            .strip_prefix(PREFIX)
            .ok_or_else(|| format!("a secret reference starts with `{PREFIX}`"))?;
        Self::parse_bare(rest).map_err(|e| format!("`{text}`: {e}"))
    }

    /// Parses `<resource>:<key>` or `<key>`: the form of `key-secret` and
    /// `password-key-secret`, which name an agent entry without the `secrets:` prefix (the
    /// prefixed form is accepted there too).
    pub fn parse_bare(text: &str) -> Result<SecretRef, String> {
        let text = text.strip_prefix(PREFIX).unwrap_or(text);
        let (resource, key) = match text.split_once(':') {
            Some((r, k)) => (r, k),
            None => ("", text),
        };
        if key.is_empty() || key.contains(':') {
            return Err("expected <resource>:<key> or <key>".into());
        }
        Ok(SecretRef {
            resource: resource.into(),
            key: key.into(),
        })
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.resource.is_empty() {
            write!(f, "{PREFIX}{}", self.key)
        } else {
            write!(f, "{PREFIX}{}:{}", self.resource, self.key)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_with_and_without_resource() {
        assert_eq!(
            SecretRef::parse("secrets:db:password").unwrap(),
            SecretRef {
                resource: "db".into(),
                key: "password".into()
            }
        );
        assert_eq!(SecretRef::parse("secrets:token").unwrap().resource, "");
        assert!(SecretRef::parse("db:password").is_err());
        assert!(SecretRef::parse("secrets:").is_err());
        assert!(SecretRef::parse("secrets:a:b:c").is_err());
        assert_eq!(
            SecretRef::parse_bare("keys:aes").unwrap().to_string(),
            "secrets:keys:aes"
        );
        assert_eq!(
            SecretRef::parse_bare("secrets:keys:aes").unwrap(),
            SecretRef::parse_bare("keys:aes").unwrap()
        );
    }
}
