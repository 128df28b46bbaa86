//! TLS settings as text: the protocol list and cipher-suite names of a cluster's `tls`
//! section and of `service.https`, and the files a `tls` section names. Validation checks
//! them here; the cluster client (`aerospike/tls.rs`) and the HTTPS listener (`api/server.rs`)
//! build their rustls configs from the same parsers, so a config that validates connects.
//!
//! The suites offered are those of the crypto provider the caller passes (the service uses
//! rustls' `ring` provider everywhere).

use std::path::Path;

use rustls::crypto::CryptoProvider;
use rustls::{SupportedCipherSuite, SupportedProtocolVersion};

use super::model::TlsConfig;

/// `tls.protocols` as asbackup and ABS write it: names separated by spaces or commas, each
/// optionally prefixed with `+` (add) or `-` (remove), `all` for every version; a list of
/// removals only starts from `all`. rustls speaks TLSv1.2 and TLSv1.3; older versions are
/// accepted in the list but never negotiated.
///
/// # Errors
/// An unknown name, or a selection with neither TLSv1.2 nor TLSv1.3.
pub fn parse_protocols(text: &str) -> Result<Vec<&'static SupportedProtocolVersion>, String> {
    // Bits: SSLv3, TLSv1, TLSv1.1, TLSv1.2, TLSv1.3.
    const ALL: u8 = 0b1_1111;
    const V12: u8 = 1 << 3;
    const V13: u8 = 1 << 4;
    let tokens: Vec<&str> = text
        .split([' ', ',', '\t'])
        .filter(|t| !t.is_empty())
        .collect();
    let mut set = if !tokens.is_empty() && tokens.iter().all(|t| t.starts_with('-')) {
        ALL
    } else {
        0
    };
    for token in &tokens {
        let (remove, name) = match token.as_bytes()[0] {
            b'+' => (false, &token[1..]),
            b'-' => (true, &token[1..]),
            _ => (false, *token),
        };
        let bits = match name.to_ascii_lowercase().as_str() {
            "all" => ALL,
            "sslv3" => 1,
            "tlsv1" | "tlsv1.0" => 1 << 1,
            "tlsv1.1" => 1 << 2,
            "tlsv1.2" => V12,
            "tlsv1.3" => V13,
            _ => {
                return Err(format!(
                    "tls.protocols: unknown protocol \"{name}\" (known: all, SSLv3, TLSv1, \
                     TLSv1.1, TLSv1.2, TLSv1.3)"
                ));
            }
        };
        if remove {
            set &= !bits;
        } else {
            set |= bits;
        }
    }
    let mut out = Vec::new();
    if set & V13 != 0 {
        out.push(&rustls::version::TLS13);
    }
    if set & V12 != 0 {
        out.push(&rustls::version::TLS12);
    }
    if out.is_empty() {
        return Err(format!(
            "tls.protocols: \"{text}\" selects no protocol this service speaks (TLSv1.2, TLSv1.3)"
        ));
    }
    Ok(out)
}

/// OpenSSL's names of the suites rustls implements (IANA names are matched as well).
const OPENSSL_NAMES: &[(&str, &str)] = &[
    (
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    ),
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    ),
    (
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    ),
    (
        "ECDHE-RSA-AES256-GCM-SHA384",
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    ),
    (
        "ECDHE-RSA-AES128-GCM-SHA256",
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    ),
    (
        "ECDHE-RSA-CHACHA20-POLY1305",
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    ),
];

/// `tls.cipher-suite`: suite names separated by `:`, `,` or spaces, in OpenSSL form
/// (`ECDHE-RSA-AES128-GCM-SHA256`) or IANA form (`TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`,
/// `TLS_AES_128_GCM_SHA256`), in order of preference.
///
/// # Errors
/// A name that is no suite rustls implements.
pub fn parse_cipher_suites(
    provider: &CryptoProvider,
    text: &str,
) -> Result<Vec<SupportedCipherSuite>, String> {
    let iana = |s: &SupportedCipherSuite| {
        // rustls names the TLS 1.3 suites TLS13_*; IANA and OpenSSL call them TLS_*.
        s.suite()
            .as_str()
            .map(|n| n.replacen("TLS13_", "TLS_", 1))
            .unwrap_or_default()
    };
    let mut out: Vec<SupportedCipherSuite> = Vec::new();
    for name in text.split([':', ',', ' ']).filter(|t| !t.is_empty()) {
        let wanted = OPENSSL_NAMES
            .iter()
            .find(|(o, _)| o.eq_ignore_ascii_case(name))
            .map_or_else(
                || name.replacen("TLS13_", "TLS_", 1),
                |(_, i)| (*i).to_string(),
            );
        let suite = provider
            .cipher_suites
            .iter()
            .find(|s| iana(s).eq_ignore_ascii_case(&wanted))
            .ok_or_else(|| {
                let known: Vec<String> = provider.cipher_suites.iter().map(iana).collect();
                format!(
                    "tls.cipher-suite: unknown or unsupported cipher suite \"{name}\" (supported: {})",
                    known.join(", ")
                )
            })?;
        if !out.iter().any(|s| s.suite() == suite.suite()) {
            out.push(*suite);
        }
    }
    Ok(out)
}

/// `service.https.cipher-suites`: the TLS 1.2 suites named, in order, then every TLS 1.3
/// suite (as in ABS, the list does not restrict TLS 1.3).
///
/// # Errors
/// A name that is no suite rustls implements.
pub fn https_cipher_suites(
    provider: &CryptoProvider,
    names: &[String],
) -> Result<Vec<SupportedCipherSuite>, String> {
    let mut out = parse_cipher_suites(provider, &names.join(":"))
        .map_err(|e| e.replacen("tls.cipher-suite", "service.https.cipher-suites", 1))?;
    out.retain(|s| s.version() != &rustls::version::TLS13);
    out.extend(
        provider
            .cipher_suites
            .iter()
            .filter(|s| s.version() == &rustls::version::TLS13),
    );
    Ok(out)
}

/// `AB:CD:...` (openssl's form) or plain hex, any case, as 32 bytes.
pub fn parse_fingerprint(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    // openssl prints `sha256 Fingerprint=AB:CD:...`; a pasted prefix is tolerated.
    let text = text.rsplit_once('=').map_or(text, |(_, f)| f);
    let hex: String = text.chars().filter(|c| *c != ':').collect();
    hex::decode(hex).ok()?.try_into().ok()
}

/// Checks that the files a `tls` section names exist (config validation); contents are
/// checked when a job connects.
pub fn missing_files(tls: &TlsConfig) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let files = [
        ("ca-file", &tls.ca_file),
        ("cert-file", &tls.cert_file),
        ("key-file", &tls.key_file),
    ];
    for (field, path) in files {
        if let Some(p) = path
            && !Path::new(p).is_file()
        {
            out.push((field, p.clone()));
        }
    }
    if let Some(p) = &tls.ca_path
        && !Path::new(p).is_dir()
    {
        out.push(("ca-path", p.clone()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols_follow_the_asbackup_syntax() {
        let names = |t: &str| {
            parse_protocols(t).map(|v| {
                v.iter()
                    .map(|p| format!("{:?}", p.version))
                    .collect::<Vec<_>>()
            })
        };
        assert_eq!(names("TLSv1.2").unwrap(), ["TLSv1_2"]);
        assert_eq!(names("TLSv1.2 TLSv1.3").unwrap(), ["TLSv1_3", "TLSv1_2"]);
        assert_eq!(names("all -TLSv1.3").unwrap(), ["TLSv1_2"]);
        assert_eq!(names("-TLSv1.2").unwrap(), ["TLSv1_3"]);
        assert_eq!(names("+TLSv1.3,+TLSv1.1").unwrap(), ["TLSv1_3"]);
        let e = names("TLSv1.1").unwrap_err();
        assert!(
            e.contains("tls.protocols") && e.contains("selects no protocol"),
            "{e}"
        );
        let e = names("TLSv9").unwrap_err();
        assert!(e.contains("unknown protocol \"TLSv9\""), "{e}");
    }

    #[test]
    fn cipher_suites_take_openssl_and_iana_names() {
        let p = rustls::crypto::ring::default_provider();
        let got = parse_cipher_suites(
            &p,
            "ECDHE-RSA-AES128-GCM-SHA256:TLS_AES_256_GCM_SHA384,tls_ecdhe_rsa_with_aes_128_gcm_sha256",
        )
        .unwrap();
        let names: Vec<_> = got.iter().map(|s| s.suite().as_str().unwrap()).collect();
        assert_eq!(
            names,
            [
                "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                "TLS13_AES_256_GCM_SHA384"
            ]
        );
        let e = parse_cipher_suites(&p, "RC4-MD5").unwrap_err();
        assert!(
            e.starts_with("tls.cipher-suite:") && e.contains("RC4-MD5"),
            "{e}"
        );
    }

    #[test]
    fn fingerprints_read_as_openssl_prints_them_or_as_plain_hex() {
        use sha2::Digest as _;
        let d = sha2::Sha256::digest(b"cert");
        let plain = hex::encode(d);
        let openssl = format!(
            "sha256 Fingerprint={}",
            d.iter()
                .map(|b| format!("{b:02X}"))
                .collect::<Vec<_>>()
                .join(":")
        );
        assert_eq!(parse_fingerprint(&plain), Some(d.into()));
        assert_eq!(parse_fingerprint(&openssl), Some(d.into()));
        assert_eq!(parse_fingerprint(&plain[2..]), None);
        assert_eq!(parse_fingerprint("zz"), None);
    }
}
