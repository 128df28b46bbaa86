//! `aerospike-backup-service plugin new codec|storage NAME`: writes a plugin crate that builds for
//! `wasm32-wasip2` and passes `plugin check` as generated (tested in CI by
//! `scripts/plugin-template-check`). The templates live in `plugin-api/templates/`.

use std::path::{Path, PathBuf};

/// What kind of plugin to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateKind {
    /// A codec (the XOR example, as a `SymmetricCodec`).
    Codec,
    /// A storage backend (files under one directory).
    Storage,
}

/// Where the generated crate takes the SDK from (its `aerospike-backup-plugin` dependency).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SdkSource {
    /// A git repository holding the SDK (cargo finds the package in it by name).
    Git(String),
    /// A local directory: a checkout's `plugin-api/` or an unpacked `.crate` package.
    Path(PathBuf),
}

impl SdkSource {
    /// The repository this service was built from, where the SDK lives as `plugin-api/`.
    pub fn default_git() -> SdkSource {
        SdkSource::Git(env!("CARGO_PKG_REPOSITORY").to_string())
    }

    fn toml(&self) -> String {
        match self {
            SdkSource::Git(url) => format!("git = {}", toml_string(url)),
            SdkSource::Path(p) => format!("path = {}", toml_string(&p.to_string_lossy())),
        }
    }
}

/// A TOML basic string (quotes and backslashes escaped).
fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

const CODEC_FILES: &[(&str, &str)] = &[
    (
        "Cargo.toml",
        include_str!("../../../plugin-api/templates/codec/Cargo.toml"),
    ),
    (
        "src/lib.rs",
        include_str!("../../../plugin-api/templates/codec/src/lib.rs"),
    ),
    (
        ".gitignore",
        include_str!("../../../plugin-api/templates/codec/gitignore"),
    ),
];

const STORAGE_FILES: &[(&str, &str)] = &[
    (
        "Cargo.toml",
        include_str!("../../../plugin-api/templates/storage/Cargo.toml"),
    ),
    (
        "src/lib.rs",
        include_str!("../../../plugin-api/templates/storage/src/lib.rs"),
    ),
    (
        ".gitignore",
        include_str!("../../../plugin-api/templates/storage/gitignore"),
    ),
];

/// Crate names cargo or rustc reserve, which a plugin cannot take.
const RESERVED: &[&str] = &[
    "std",
    "core",
    "alloc",
    "proc-macro",
    "test",
    "self",
    "crate",
    "super",
];

/// Checks a plugin name: the registry's rule (lowercase kebab-case: letters, digits and
/// single `-` between them, starting with a letter, at most 64 characters), which also makes
/// it a valid cargo package name.
///
/// # Errors
/// Why the name is refused.
pub fn check_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && !name.contains("--")
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid {
        return Err(format!(
            "plugin name {name:?}: use lowercase kebab-case (a-z, 0-9 and single '-', starting \
             with a letter, at most 64 characters), e.g. codec-xor"
        ));
    }
    if RESERVED.contains(&name) {
        return Err(format!("plugin name {name:?} is reserved by Rust"));
    }
    Ok(())
}

/// `codec-xor` → `CodecXor`.
fn type_name(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut c = part.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// Writes the crate for plugin `name` into `dir` (created if missing; it must be empty) and
/// returns the files written, relative to `dir`.
///
/// # Errors
/// An invalid name, a non-empty `dir`, or an I/O failure, each naming what failed.
pub fn generate(
    kind: TemplateKind,
    name: &str,
    dir: &Path,
    sdk: &SdkSource,
) -> Result<Vec<PathBuf>, String> {
    check_name(name)?;
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(format!(
                    "{} exists and is not empty: choose a new directory",
                    dir.display()
                ));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot read {}: {e}", dir.display())),
    }
    let files = match kind {
        TemplateKind::Codec => CODEC_FILES,
        TemplateKind::Storage => STORAGE_FILES,
    };
    let ty = type_name(name);
    let krate = name.replace('-', "_");
    let sdk = sdk.toml();
    let mut written = Vec::new();
    for (rel, text) in files {
        let out = text
            .replace("{{name}}", name)
            .replace("{{type}}", &ty)
            .replace("{{crate}}", &krate)
            .replace("{{sdk}}", &sdk);
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        std::fs::write(&path, out).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        written.push(PathBuf::from(rel));
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_registry_rule() {
        for ok in ["xor", "codec-xor", "x2", "a-b-c9"] {
            check_name(ok).unwrap();
        }
        for bad in [
            "", "Xor", "-x", "x-", "a--b", "9x", "a_b", "a b", "é", "test", "core",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_name(&"a".repeat(65)).is_err());
        assert_eq!(type_name("codec-xor-2"), "CodecXor2");
    }

    #[test]
    fn sdk_sources_are_toml_strings() {
        assert_eq!(
            SdkSource::Path(PathBuf::from(r#"/a "b"\c"#)).toml(),
            r#"path = "/a \"b\"\\c""#
        );
        assert!(
            SdkSource::default_git()
                .toml()
                .starts_with("git = \"https://")
        );
    }
}
