//! TLS to a cluster: the rustls client config built from a cluster's `tls` section (CA file
//! and directory, client certificate and key for mutual TLS, encrypted PKCS#8 keys,
//! protocols, cipher suites), shared by the `aerospike` client and the backup scan's own
//! node connections ([`crate::aerospike::node_reader`]).
//!
//! Errors name the dotted field (`tls.ca-file`, `tls.cipher-suite`, ...) and the file, never
//! a password or key material.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

use crate::config::{AerospikeCluster, Secret, TlsConfig};

// The text parsers live in config/ (validation uses them); re-exported for this module's callers.
pub use crate::config::tls::{missing_files, parse_cipher_suites, parse_protocols};

/// The protocols when `tls.protocols` is not set (ABS: TLSv1.2).
const DEFAULT_PROTOCOLS: &str = "TLSv1.2";

/// The TLS name to verify for a seed: its own `tls-name`, else the cluster's `tls.name`,
/// else its host name (rustls checks it against the certificate's DNS or IP names).
pub fn seed_tls_name<'a>(tls: &'a TlsConfig, tls_name: Option<&'a str>, host: &'a str) -> &'a str {
    tls_name
        .filter(|n| !n.is_empty())
        .or(tls.name.as_deref().filter(|n| !n.is_empty()))
        .unwrap_or(host)
}

/// The client config of a cluster with a `tls` section; `None` without one.
///
/// # Errors
/// A message naming the field at fault (unreadable or invalid files, a key that needs a
/// password or does not match, unknown protocols or cipher suites).
pub fn cluster_client_config(
    cluster: &AerospikeCluster,
) -> Result<Option<Arc<ClientConfig>>, String> {
    cluster.tls.as_ref().map(client_config).transpose()
}

/// The rustls client config of `tls`.
///
/// # Errors
/// See [`cluster_client_config`].
pub fn client_config(tls: &TlsConfig) -> Result<Arc<ClientConfig>, String> {
    let versions = parse_protocols(tls.protocols.as_deref().unwrap_or(DEFAULT_PROTOCOLS))?;
    let mut provider = rustls::crypto::ring::default_provider();
    if let Some(list) = tls.cipher_suite.as_deref().filter(|s| !s.trim().is_empty()) {
        provider.cipher_suites = parse_cipher_suites(&provider, list)?;
        let usable = provider
            .cipher_suites
            .iter()
            .any(|s| versions.iter().any(|v| s.version() == *v));
        if !usable {
            return Err(format!(
                "tls.cipher-suite: none of \"{list}\" works with tls.protocols \"{}\"",
                tls.protocols.as_deref().unwrap_or(DEFAULT_PROTOCOLS)
            ));
        }
    }
    let roots = root_store(tls)?;
    let builder = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&versions)
        .map_err(|e| format!("tls.protocols: {e}"))?
        .with_root_certificates(roots);
    let config = match (&tls.cert_file, &tls.key_file) {
        (None, None) => builder.with_no_client_auth(),
        (Some(cert), Some(key)) => {
            let chain = read_certs("tls.cert-file", cert)?;
            let key = read_key(key, tls.key_file_password.as_ref())?;
            builder.with_client_auth_cert(chain, key).map_err(|e| {
                format!(
                    "tls.key-file \"{}\": {e}",
                    tls.key_file.as_deref().unwrap_or_default()
                )
            })?
        }
        (Some(_), None) => return Err("tls.cert-file is set but tls.key-file is not".into()),
        (None, Some(_)) => return Err("tls.key-file is set but tls.cert-file is not".into()),
    };
    Ok(Arc::new(config))
}

/// The trusted CAs: `ca-file` and every certificate in the files of `ca-path`; with neither,
/// the public web roots (the stand-in for a system trust store).
fn root_store(tls: &TlsConfig) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    if tls.ca_file.is_none() && tls.ca_path.is_none() {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        return Ok(roots);
    }
    if let Some(file) = &tls.ca_file {
        for cert in read_certs("tls.ca-file", file)? {
            roots
                .add(cert)
                .map_err(|e| format!("tls.ca-file \"{file}\": {e}"))?;
        }
    }
    if let Some(dir) = &tls.ca_path {
        let entries = std::fs::read_dir(dir).map_err(|e| format!("tls.ca-path \"{dir}\": {e}"))?;
        let mut found = 0;
        for entry in entries {
            let path = entry
                .map_err(|e| format!("tls.ca-path \"{dir}\": {e}"))?
                .path();
            if !path.is_file() {
                continue;
            }
            // Files that hold no certificate (keys, notes) are skipped, as OpenSSL's
            // CA directory lookup ignores them.
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            for cert in CertificateDer::pem_slice_iter(&bytes).flatten() {
                if roots.add(cert).is_ok() {
                    found += 1;
                }
            }
        }
        if found == 0 {
            return Err(format!(
                "tls.ca-path \"{dir}\": no PEM certificate in the directory"
            ));
        }
    }
    Ok(roots)
}

fn read_certs(field: &str, path: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{field} \"{path}\": {e}"))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{field} \"{path}\": not a PEM certificate file: {e}"))?;
    if certs.is_empty() {
        return Err(format!(
            "{field} \"{path}\": no PEM certificate in the file"
        ));
    }
    Ok(certs)
}

/// The client key: PEM PKCS#8, PKCS#1 or SEC1, encrypted PKCS#8, or a legacy encrypted
/// PEM key, opened with `key-file-password`.
fn read_key(path: &str, password: Option<&Secret>) -> Result<PrivateKeyDer<'static>, String> {
    crate::pem_key::read_with(
        path,
        crate::pem_key::KeyFields {
            key: "tls.key-file",
            password: "tls.key-file-password",
        },
        || password.map(key_password).transpose(),
    )
}

/// `key-file-password`: `env:VAR`, `file:PATH` or the password itself (ABS).
fn key_password(secret: &Secret) -> Result<String, String> {
    password_from("tls.key-file-password", secret)
}

/// A key password given as `env:VAR`, `file:PATH` or the password itself; `field` names
/// the config field in errors. Secret Agent references are resolved before this.
pub(crate) fn password_from(field: &str, secret: &Secret) -> Result<String, String> {
    let value = secret.expose();
    if let Some(var) = value.strip_prefix("env:") {
        return std::env::var(var)
            .map_err(|_| format!("{field}: environment variable {var} is not set"));
    }
    if let Some(path) = value.strip_prefix("file:") {
        return std::fs::read_to_string(path)
            .map(|s| s.trim_end_matches(['\r', '\n']).to_string())
            .map_err(|e| format!("{field}: cannot read \"{path}\": {e}"));
    }
    if secret.is_agent_reference() {
        return Err(format!(
            "{field}: a Secret Agent reference must be resolved before connecting (jobs::job_secrets)"
        ));
    }
    Ok(value.to_string())
}

/// What to check for a connection error the TLS layer or the login gave, in the words of
/// the config; `None` when there is nothing to add.
pub fn hint(message: &str) -> Option<&'static str> {
    let m = message.to_ascii_lowercase();
    let hints: [(&[&str], &str); 5] = [
        (
            &["unknownissuer", "unknown issuer"],
            "the node's certificate is not signed by a CA of tls.ca-file / tls.ca-path",
        ),
        (
            &["not valid for name"],
            "the TLS name (seed-nodes tls-name, else tls.name) is not one the node's certificate is for",
        ),
        (
            &["expired"],
            "the node's certificate has expired (or is not yet valid)",
        ),
        (
            &["fatal alert"],
            "the node refused the TLS handshake: check the client certificate (tls.cert-file), \
             tls.protocols and tls.cipher-suite",
        ),
        (
            &["error 60,", "error 62,", "error 65,", "error 80,"],
            "the node refused the login: check credentials (user, password, auth-mode)",
        ),
    ];
    hints
        .iter()
        .find(|(needles, _)| needles.iter().any(|n| m.contains(n)))
        .map(|(_, h)| *h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suites_that_fit_no_protocol_are_a_config_error() {
        let tls = TlsConfig {
            protocols: Some("TLSv1.2".into()),
            cipher_suite: Some("TLS_AES_128_GCM_SHA256".into()),
            ..Default::default()
        };
        let e = client_config(&tls).unwrap_err();
        assert!(
            e.contains("tls.cipher-suite") && e.contains("TLSv1.2"),
            "{e}"
        );
    }

    #[test]
    fn key_passwords_come_from_env_file_or_literal() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pw");
        std::fs::write(&f, "from-file\n").unwrap();
        assert_eq!(
            key_password(&Secret::new(format!("file:{}", f.display()))).unwrap(),
            "from-file"
        );
        assert_eq!(key_password(&Secret::new("plain")).unwrap(), "plain");
        let e = key_password(&Secret::new("env:ABS_TLS_TEST_UNSET_VAR")).unwrap_err();
        assert!(e.contains("ABS_TLS_TEST_UNSET_VAR"), "{e}");
    }

    fn test_file(name: &str) -> String {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/data/tls")
            .join(name)
            .display()
            .to_string()
    }

    #[test]
    fn ca_path_trusts_the_certificates_of_its_files_only() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not a certificate").unwrap();
        let tls = TlsConfig {
            ca_path: Some(dir.path().display().to_string()),
            ..Default::default()
        };
        let e = client_config(&tls).unwrap_err();
        assert!(
            e.starts_with("tls.ca-path") && e.contains("no PEM certificate"),
            "{e}"
        );
        std::fs::copy(test_file("ca.pem"), dir.path().join("ca.pem")).unwrap();
        std::fs::copy(test_file("other-ca.pem"), dir.path().join("other.crt")).unwrap();
        assert_eq!(root_store(&tls).unwrap().len(), 2);
    }

    #[test]
    fn client_keys_load_plain_or_encrypted_and_never_show_the_password() {
        let mut tls = TlsConfig {
            ca_file: Some(test_file("ca.pem")),
            cert_file: Some(test_file("client.pem")),
            key_file: Some(test_file("client.key")),
            ..Default::default()
        };
        let config = client_config(&tls).unwrap();
        assert!(config.client_auth_cert_resolver.has_certs());
        tls.key_file = Some(test_file("client-encrypted.key"));
        let e = client_config(&tls).unwrap_err();
        assert!(e.contains("tls.key-file-password is not set"), "{e}");
        tls.key_file_password = Some(Secret::new("Not-the-password-77"));
        let e = client_config(&tls).unwrap_err();
        assert!(
            e.contains("cannot decrypt") && !e.contains("Not-the-password-77"),
            "{e}"
        );
        tls.key_file_password = Some(Secret::new("test-key-password"));
        client_config(&tls).unwrap();
        // A key that is not the certificate's.
        tls.key_file = Some(test_file("other-client.key"));
        tls.key_file_password = None;
        let e = client_config(&tls).unwrap_err();
        assert!(e.starts_with("tls.key-file"), "{e}");
    }

    #[test]
    fn connection_errors_get_a_hint_in_config_words() {
        assert!(
            hint("invalid peer certificate: UnknownIssuer")
                .unwrap()
                .contains("tls.ca-file")
        );
        assert!(
            hint("x Error 65, node=a: Invalid credential")
                .unwrap()
                .contains("credentials")
        );
        assert!(
            hint("received fatal alert: UnknownCA")
                .unwrap()
                .contains("tls.cert-file")
        );
        assert_eq!(hint("Connection refused"), None);
    }

    #[test]
    fn seeds_verify_their_own_name_then_the_cluster_name_then_the_host() {
        let tls = TlsConfig {
            name: Some("cluster-name".into()),
            ..Default::default()
        };
        assert_eq!(seed_tls_name(&tls, Some("n1"), "h"), "n1");
        assert_eq!(seed_tls_name(&tls, None, "h"), "cluster-name");
        assert_eq!(seed_tls_name(&TlsConfig::default(), Some(""), "h"), "h");
    }
}
