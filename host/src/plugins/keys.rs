//! Resolution of ABS encryption keys into host-held key material.
//!
//! ABS names the key by `key-file`, `key-env` or `key-secret`. Whatever the encoding of the
//! RSA private key (PEM or DER, PKCS#1 or PKCS#8, optionally base64-wrapped once or twice),
//! the AES key material is SHA-256 of its PKCS#1 `RSAPrivateKey` DER, exactly as asbackup
//! and backup-go derive it (BACKUP-FORMAT.md §4, DESIGN D11). The 32-byte digest is the
//! handle's material; AES-128 uses its first 16 bytes (the guest calls `truncate(16)`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use pkcs1::der::{Decode, Encode};
use sha2::{Digest, Sha256};

use super::crypto::{Key, KeyMaterial};
use super::error::{PluginError, PluginResult};
use crate::secrets::SecretValue;

/// `rsaEncryption` (1.2.840.113549.1.1.1), the only algorithm PKCS#8 may wrap here.
const RSA_ENCRYPTION_OID: pkcs8::ObjectIdentifier =
    pkcs8::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// Where a key comes from. Paths and variable names are not secret; the contents are.
#[derive(Clone, PartialEq, Eq)]
pub enum KeySource {
    /// A file holding the RSA private key (ABS `key-file`).
    File(PathBuf),
    /// An environment variable holding the key (ABS `key-env`).
    Env(String),
    /// A secret-agent reference (ABS `key-secret`), resolved at job start into
    /// [`KeySource::Material`]; met unresolved here, it is refused.
    Secret(String),
    /// The key as the Secret Agent gave it (same encodings as a key file), held in memory.
    Material(SecretValue),
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::File(p) => write!(f, "KeySource::File({})", p.display()),
            KeySource::Env(v) => write!(f, "KeySource::Env({v})"),
            KeySource::Secret(s) => write!(f, "KeySource::Secret({s})"),
            KeySource::Material(_) => f.write_str("KeySource::Material(**redacted**)"),
        }
    }
}

/// Resolves a key source to material (the 32-byte SHA-256 digest).
///
/// # Errors
/// [`PluginError::Key`] naming the source (never its contents) when the file or variable
/// cannot be read, does not hold an RSA private key, or names a secret agent.
pub fn resolve_key(source: &KeySource) -> PluginResult<Key> {
    let bytes = match source {
        KeySource::File(path) => read_key_file(path)?,
        KeySource::Env(var) => std::env::var(var)
            .map_err(|_| {
                PluginError::Key(format!(
                    "environment variable `{var}` is not set or not UTF-8"
                ))
            })?
            .into_bytes(),
        KeySource::Secret(s) => {
            return Err(PluginError::Key(format!(
                "key-secret {s} was not resolved from a secret agent"
            )));
        }
        KeySource::Material(v) => v.expose().to_vec(),
    };
    let der = normalise_to_pkcs1_der(&bytes).map_err(|why| {
        PluginError::Key(match source {
            KeySource::File(p) => format!("{}: {why}", p.display()),
            KeySource::Env(v) => format!("environment variable `{v}`: {why}"),
            KeySource::Secret(_) => why,
            KeySource::Material(_) => format!("the key from the secret agent: {why}"),
        })
    })?;
    Ok(Arc::new(KeyMaterial::new(Sha256::digest(&der).to_vec())))
}

fn read_key_file(path: &Path) -> PluginResult<Vec<u8>> {
    std::fs::read(path)
        .map_err(|e| PluginError::Key(format!("cannot read key file {}: {e}", path.display())))
}

/// Turns any accepted encoding of an RSA private key into canonical PKCS#1 DER.
pub fn normalise_to_pkcs1_der(input: &[u8]) -> Result<Vec<u8>, String> {
    normalise(input, 0)
}

fn normalise(input: &[u8], depth: u8) -> Result<Vec<u8>, String> {
    const NOT_RSA: &str =
        "not an RSA private key (expected PEM or DER, PKCS#1 or PKCS#8, or base64 of one)";
    let trimmed = trim_ascii(input);
    if trimmed.starts_with(b"-----BEGIN") {
        let (label, der) =
            pkcs8::der::pem::decode_vec(trimmed).map_err(|e| format!("invalid PEM: {e}"))?;
        return match label {
            "RSA PRIVATE KEY" => pkcs1_from_der(&der),
            "PRIVATE KEY" => pkcs1_from_pkcs8(&der),
            other => Err(format!("PEM block `{other}` is not an RSA private key")),
        };
    }
    if let Ok(der) = pkcs1_from_der(trimmed) {
        return Ok(der);
    }
    if let Ok(der) = pkcs1_from_pkcs8(trimmed) {
        return Ok(der);
    }
    // backup-go accepts base64 of PEM or DER, even base64 twice; stop there.
    if depth < 2 {
        let compact: Vec<u8> = trimmed
            .iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        if let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(&compact) {
            return normalise(&decoded, depth + 1);
        }
    }
    Err(NOT_RSA.into())
}

fn trim_ascii(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &b[start..end]
}

fn pkcs1_from_der(der: &[u8]) -> Result<Vec<u8>, String> {
    let key =
        pkcs1::RsaPrivateKey::from_der(der).map_err(|e| format!("invalid PKCS#1 key: {e}"))?;
    // Re-encoding yields the canonical form, as OpenSSL's i2d_PrivateKey / Go's
    // x509.MarshalPKCS1PrivateKey do.
    key.to_der()
        .map_err(|e| format!("cannot encode PKCS#1: {e}"))
}

fn pkcs1_from_pkcs8(der: &[u8]) -> Result<Vec<u8>, String> {
    let info =
        pkcs8::PrivateKeyInfo::from_der(der).map_err(|e| format!("invalid PKCS#8 key: {e}"))?;
    if info.algorithm.oid != RSA_ENCRYPTION_OID {
        return Err(format!(
            "PKCS#8 key is not RSA (algorithm {})",
            info.algorithm.oid
        ));
    }
    pkcs1_from_der(info.private_key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn golden_key_path() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/golden/key.pem")
    }
    /// SHA-256 of the golden key's PKCS#1 DER, computed independently with
    /// `openssl rsa -in key.pem -traditional -outform DER | sha256sum`.
    const GOLDEN_DIGEST: &str = "2816f91267a469f4f9abf7d67c2e71850283cb401dc51c163c375766ce696250";

    fn golden_pem() -> Vec<u8> {
        std::fs::read(golden_key_path()).expect("golden key.pem")
    }

    #[test]
    fn golden_pkcs8_pem_file_derives_asbackup_key() {
        let key = resolve_key(&KeySource::File(golden_key_path())).unwrap();
        assert_eq!(hex::encode(key.expose()), GOLDEN_DIGEST);
    }

    #[test]
    fn every_encoding_of_the_same_key_gives_the_same_digest() {
        let pem = golden_pem();
        let pkcs1 = normalise_to_pkcs1_der(&pem).unwrap();
        let (_, pkcs8_der) = pkcs8::der::pem::decode_vec(&pem).unwrap();
        let pkcs1_pem = pkcs1::der::pem::encode_string(
            "RSA PRIVATE KEY",
            pkcs1::der::pem::LineEnding::LF,
            &pkcs1,
        )
        .unwrap();
        let b64 = |b: &[u8]| {
            base64::engine::general_purpose::STANDARD
                .encode(b)
                .into_bytes()
        };
        let variants: Vec<(&str, Vec<u8>)> = vec![
            ("pkcs8 der", pkcs8_der.clone()),
            ("pkcs1 der", pkcs1.clone()),
            ("pkcs1 pem", pkcs1_pem.clone().into_bytes()),
            ("base64 pkcs1 der", b64(&pkcs1)),
            ("base64 pkcs8 pem", b64(&pem)),
            ("double base64 der", b64(&b64(&pkcs1))),
        ];
        for (name, v) in variants {
            let der = normalise_to_pkcs1_der(&v).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(hex::encode(Sha256::digest(&der)), GOLDEN_DIGEST, "{name}");
        }
    }

    #[test]
    #[allow(unsafe_code)]
    fn env_source_reads_the_variable() {
        let b64 = base64::engine::general_purpose::STANDARD.encode(golden_pem());
        // Unique names: nothing else in this process reads them.
        let (set, unset) = ("ABS_TEST_KEY_ENV_5F3A", "ABS_TEST_KEY_ENV_UNSET_5F3A");
        // SAFETY: set_var is unsafe in edition 2024 because of concurrent readers of the
        // environment; no other thread reads this variable.
        unsafe { std::env::set_var(set, &b64) };
        let key = resolve_key(&KeySource::Env(set.into())).unwrap();
        assert_eq!(hex::encode(key.expose()), GOLDEN_DIGEST);
        let err = resolve_key(&KeySource::Env(unset.into())).unwrap_err();
        assert!(err.to_string().contains(unset), "{err}");
    }

    #[test]
    fn material_from_the_agent_derives_like_the_file() {
        let key = resolve_key(&KeySource::Material(SecretValue::new(golden_pem()))).unwrap();
        assert_eq!(hex::encode(key.expose()), GOLDEN_DIGEST);
        let shown = format!("{:?}", KeySource::Material(SecretValue::new(golden_pem())));
        assert_eq!(shown, "KeySource::Material(**redacted**)");
    }

    #[test]
    fn bad_inputs_are_named_errors_without_contents() {
        let err = resolve_key(&KeySource::Secret("vault:k".into())).unwrap_err();
        assert_eq!(
            err.to_string(),
            "encryption key: key-secret vault:k was not resolved from a secret agent"
        );
        let err = resolve_key(&KeySource::Material(SecretValue::new(
            b"TOPSECRET".to_vec(),
        )))
        .unwrap_err()
        .to_string();
        assert!(err.contains("secret agent"), "{err}");
        assert!(!err.contains("TOPSECRET"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.pem");
        std::fs::write(&p, "TOPSECRET-not-a-key").unwrap();
        let err = resolve_key(&KeySource::File(p.clone()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("not an RSA private key"), "{err}");
        assert!(!err.contains("TOPSECRET"), "{err}");
        let err = resolve_key(&KeySource::File(dir.path().join("missing"))).unwrap_err();
        assert!(err.to_string().contains("cannot read key file"));
        let ec = "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n";
        assert!(normalise_to_pkcs1_der(ec.as_bytes()).is_err());
    }

    #[test]
    fn key_source_debug_shows_no_material() {
        assert_eq!(
            format!("{:?}", KeySource::Env("K".into())),
            "KeySource::Env(K)"
        );
    }
}
