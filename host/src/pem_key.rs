//! Private keys read from PEM files, for TLS to a cluster and for the HTTPS listener: plain
//! PKCS#8, PKCS#1 and SEC1 keys, encrypted PKCS#8, and the legacy OpenSSL encryption
//! (`Proc-Type: 4,ENCRYPTED` with `DEK-Info`) that `openssl ... -traditional`, older tools
//! and Go's `x509.EncryptPEMBlock` write. ABS accepts the legacy form (its own tests use it),
//! so a drop-in must too, even though the format is weak (one MD5 round derives the key).
//!
//! Errors name the config fields given by the caller and the file, never a password.

use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockCipher, BlockDecryptMut, KeyInit, KeyIvInit};
use md5::{Digest, Md5};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer, PrivateSec1KeyDer};

/// The config fields a key comes from, for error messages (`tls.key-file`,
/// `service.https.key-file-password`, ...).
#[derive(Debug, Clone, Copy)]
pub struct KeyFields<'a> {
    pub key: &'a str,
    pub password: &'a str,
}

/// Reads the private key at `path`, opening it with `password` when it is encrypted.
///
/// # Errors
/// A file that cannot be read or holds no key, an encrypted key without a password or with
/// a wrong one, or a cipher this reader does not know.
pub fn read(
    path: &str,
    fields: KeyFields<'_>,
    password: Option<&str>,
) -> Result<PrivateKeyDer<'static>, String> {
    read_with(path, fields, || Ok(password.map(str::to_string)))
}

/// As [`read`], asking `password` for the password only when the key is encrypted (so a
/// password source that cannot be read does not matter for a plain key).
///
/// # Errors
/// As [`read`], and the password source's own error.
pub fn read_with(
    path: &str,
    fields: KeyFields<'_>,
    password: impl FnOnce() -> Result<Option<String>, String>,
) -> Result<PrivateKeyDer<'static>, String> {
    let field = fields.key;
    let bytes = std::fs::read(path).map_err(|e| format!("{field} \"{path}\": {e}"))?;
    let text = String::from_utf8_lossy(&bytes);
    let needs_password = || {
        format!(
            "{field} \"{path}\": the key is encrypted and {} is not set",
            fields.password
        )
    };
    let wrong_password = || {
        format!(
            "{field} \"{path}\": cannot decrypt the key with {} (wrong password?)",
            fields.password
        )
    };
    if let Some(block) = pem_block(&text, "ENCRYPTED PRIVATE KEY") {
        let password = password()?.ok_or_else(needs_password)?;
        let (_, der) = pkcs8::der::pem::decode_vec(block.as_bytes())
            .map_err(|e| format!("{field} \"{path}\": not a PEM file: {e}"))?;
        let info = pkcs8::EncryptedPrivateKeyInfo::try_from(der.as_slice())
            .map_err(|e| format!("{field} \"{path}\": not an encrypted PKCS#8 key: {e}"))?;
        // A wrong password, most likely; the library's detail says no more.
        let doc = info
            .decrypt(password.as_bytes())
            .map_err(|_| wrong_password())?;
        return Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            doc.as_bytes().to_vec(),
        )));
    }
    if let Some(legacy) = LegacyBlock::find(&text) {
        let legacy = legacy.map_err(|m| format!("{field} \"{path}\": {m}"))?;
        let password = password()?.ok_or_else(needs_password)?;
        let der = legacy
            .decrypt(password.as_bytes())
            .map_err(|m| format!("{field} \"{path}\": {m}"))?
            .ok_or_else(wrong_password)?;
        return Ok(match legacy.label {
            "RSA PRIVATE KEY" => PrivateKeyDer::Pkcs1(PrivatePkcs1KeyDer::from(der)),
            "EC PRIVATE KEY" => PrivateKeyDer::Sec1(PrivateSec1KeyDer::from(der)),
            _ => PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der)),
        });
    }
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => {
            format!("{field} \"{path}\": no private key in the file")
        }
        e => format!("{field} \"{path}\": not a PEM key file: {e}"),
    })
}

/// The whole `-----BEGIN <label>----- ... -----END <label>-----` block, if the text has one.
fn pem_block<'t>(text: &'t str, label: &str) -> Option<&'t str> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)?;
    let stop = text[start..].find(&end)? + start + end.len();
    Some(&text[start..stop])
}

/// A key block carrying `Proc-Type: 4,ENCRYPTED` (RFC 1421 headers, as OpenSSL writes them).
struct LegacyBlock {
    label: &'static str,
    cipher: LegacyCipher,
    iv: Vec<u8>,
    body: Vec<u8>,
}

#[derive(Clone, Copy)]
enum LegacyCipher {
    Aes128,
    Aes192,
    Aes256,
    DesEde3,
    Des,
}

impl LegacyCipher {
    fn parse(name: &str) -> Option<Self> {
        Some(match name.to_ascii_uppercase().as_str() {
            "AES-128-CBC" => Self::Aes128,
            "AES-192-CBC" => Self::Aes192,
            "AES-256-CBC" => Self::Aes256,
            "DES-EDE3-CBC" => Self::DesEde3,
            "DES-CBC" => Self::Des,
            _ => return None,
        })
    }

    /// Key and IV lengths in bytes.
    fn sizes(self) -> (usize, usize) {
        match self {
            Self::Aes128 => (16, 16),
            Self::Aes192 => (24, 16),
            Self::Aes256 => (32, 16),
            Self::DesEde3 => (24, 8),
            Self::Des => (8, 8),
        }
    }
}

impl LegacyBlock {
    /// The first legacy-encrypted key block of `text`: `None` when there is none, an error
    /// when its headers or body cannot be read.
    fn find(text: &str) -> Option<Result<Self, String>> {
        const LABELS: [&str; 3] = ["RSA PRIVATE KEY", "EC PRIVATE KEY", "PRIVATE KEY"];
        for label in LABELS {
            let Some(block) = pem_block(text, label) else {
                continue;
            };
            if !block.contains("Proc-Type: 4,ENCRYPTED") {
                continue;
            }
            return Some(Self::parse(label, block));
        }
        None
    }

    fn parse(label: &'static str, block: &str) -> Result<Self, String> {
        use base64::Engine as _;
        let mut lines = block.lines().skip(1);
        let mut dek = None;
        // Headers run to the first blank line; the base64 body follows.
        for line in lines.by_ref() {
            let line = line.trim();
            if line.is_empty() {
                break;
            }
            if let Some(v) = line.strip_prefix("DEK-Info:") {
                dek = Some(v.trim().to_string());
            }
        }
        let dek = dek.ok_or("the encrypted key has no DEK-Info header")?;
        let (name, iv_hex) = dek
            .split_once(',')
            .ok_or_else(|| format!("DEK-Info \"{dek}\" is not <cipher>,<iv>"))?;
        let cipher = LegacyCipher::parse(name.trim()).ok_or_else(|| {
            format!(
                "the key is encrypted with {name}, which is not supported (AES-128/192/256-CBC, \
                 DES-EDE3-CBC or DES-CBC are); convert it to encrypted PKCS#8 \
                 (openssl pkcs8 -topk8 -v2 aes-256-cbc)"
            )
        })?;
        let iv = hex::decode(iv_hex.trim())
            .map_err(|_| format!("DEK-Info \"{dek}\": the IV is not hex"))?;
        if iv.len() != cipher.sizes().1 {
            return Err(format!("DEK-Info \"{dek}\": the IV has the wrong length"));
        }
        let body: String = lines
            .take_while(|l| !l.starts_with("-----END"))
            .map(str::trim)
            .collect();
        let body = base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|e| format!("the encrypted key is not base64: {e}"))?;
        Ok(Self {
            label,
            cipher,
            iv,
            body,
        })
    }

    /// The key's DER, `Ok(None)` when the password does not open it.
    fn decrypt(&self, password: &[u8]) -> Result<Option<Vec<u8>>, String> {
        let (key_len, _) = self.cipher.sizes();
        let key = derive_key(password, &self.iv[..8], key_len);
        let mut buf = self.body.clone();
        let opened = match self.cipher {
            LegacyCipher::Aes128 => cbc_open::<aes::Aes128>(&key, &self.iv, &mut buf),
            LegacyCipher::Aes192 => cbc_open::<aes::Aes192>(&key, &self.iv, &mut buf),
            LegacyCipher::Aes256 => cbc_open::<aes::Aes256>(&key, &self.iv, &mut buf),
            LegacyCipher::DesEde3 => cbc_open::<des::TdesEde3>(&key, &self.iv, &mut buf),
            LegacyCipher::Des => cbc_open::<des::Des>(&key, &self.iv, &mut buf),
        };
        // The padding check alone passes for about one wrong password in 256: the plaintext
        // must also be exactly one DER SEQUENCE.
        Ok(opened
            .map(|n| buf[..n].to_vec())
            .filter(|d| is_one_sequence(d)))
    }
}

/// OpenSSL's `EVP_BytesToKey` with MD5 and one round, as the legacy PEM format derives its
/// key: D1 = MD5(password || salt), Di = MD5(Di-1 || password || salt), concatenated.
fn derive_key(password: &[u8], salt: &[u8], len: usize) -> Vec<u8> {
    let mut key = Vec::with_capacity(len + 16);
    let mut prev: Option<[u8; 16]> = None;
    while key.len() < len {
        let mut h = Md5::new();
        if let Some(p) = prev {
            h.update(p);
        }
        h.update(password);
        h.update(salt);
        let d: [u8; 16] = h.finalize().into();
        key.extend_from_slice(&d);
        prev = Some(d);
    }
    key.truncate(len);
    key
}

/// CBC-decrypts `buf` in place and strips PKCS#7 padding: the plaintext's length, or `None`
/// when the padding is wrong (a wrong password, most likely).
fn cbc_open<C>(key: &[u8], iv: &[u8], buf: &mut [u8]) -> Option<usize>
where
    C: BlockCipher + BlockDecryptMut + KeyInit,
{
    let dec = cbc::Decryptor::<C>::new_from_slices(key, iv).ok()?;
    dec.decrypt_padded_mut::<Pkcs7>(buf).ok().map(|p| p.len())
}

/// Whether `der` is a single DER SEQUENCE whose length covers the whole buffer.
fn is_one_sequence(der: &[u8]) -> bool {
    let [0x30, first, rest @ ..] = der else {
        return false;
    };
    let (len, header) = match *first {
        n if n < 0x80 => (usize::from(n), 2),
        n @ 0x81..=0x84 => {
            let count = usize::from(n & 0x7f);
            if rest.len() < count {
                return false;
            }
            let len = rest[..count]
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            (len, 2 + count)
        }
        _ => return false,
    };
    header + len == der.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn test_file(name: &str) -> String {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/data/tls")
            .join(name)
            .display()
            .to_string()
    }

    const FIELDS: KeyFields<'static> = KeyFields {
        key: "tls.key-file",
        password: "tls.key-file-password",
    };

    /// The DER of the plain key the encrypted fixtures were made from.
    fn plain_pkcs1(name: &str) -> Vec<u8> {
        match read(&test_file(name), FIELDS, None).unwrap() {
            PrivateKeyDer::Pkcs8(k) => {
                // The plain fixture is PKCS#8; compare the RSA key inside it.
                use pkcs8::der::Decode as _;
                let info = pkcs8::PrivateKeyInfo::from_der(k.secret_pkcs8_der()).unwrap();
                info.private_key.to_vec()
            }
            PrivateKeyDer::Pkcs1(k) => k.secret_pkcs1_der().to_vec(),
            other => panic!("unexpected key kind {other:?}"),
        }
    }

    #[test]
    fn legacy_encrypted_keys_open_with_their_password_for_every_cipher() {
        let plain = plain_pkcs1("client.key");
        for name in [
            "client-legacy-aes256.key",
            "client-legacy-aes128.key",
            "client-legacy-des3.key",
        ] {
            let key = read(&test_file(name), FIELDS, Some("test-key-password"))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let PrivateKeyDer::Pkcs1(k) = key else {
                panic!("{name}: not PKCS#1");
            };
            assert_eq!(k.secret_pkcs1_der(), plain.as_slice(), "{name}");
        }
    }

    #[test]
    fn a_legacy_ec_key_opens_as_sec1() {
        let key = read(
            &test_file("ec-legacy-aes256.key"),
            FIELDS,
            Some("test-key-password"),
        )
        .unwrap();
        assert!(matches!(key, PrivateKeyDer::Sec1(_)));
    }

    #[test]
    fn a_wrong_or_missing_password_is_refused_without_showing_it() {
        let path = test_file("client-legacy-aes256.key");
        let e = read(&path, FIELDS, Some("Not-the-password-77")).unwrap_err();
        assert!(e.contains("wrong password"), "{e}");
        assert!(!e.contains("Not-the-password-77"), "{e}");
        let e = read(&path, FIELDS, None).unwrap_err();
        assert!(
            e.contains("encrypted and tls.key-file-password is not set"),
            "{e}"
        );
    }

    #[test]
    fn an_unknown_legacy_cipher_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pem");
        std::fs::write(
            &path,
            "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\
             DEK-Info: CAMELLIA-256-CBC,00112233445566778899AABBCCDDEEFF\n\nAAAA\n\
             -----END RSA PRIVATE KEY-----\n",
        )
        .unwrap();
        let e = read(path.to_str().unwrap(), FIELDS, Some("x")).unwrap_err();
        assert!(
            e.contains("CAMELLIA-256-CBC") && e.contains("not supported"),
            "{e}"
        );
    }

    #[test]
    fn key_derivation_matches_openssl() {
        // `openssl enc -aes-256-cbc -P -md md5 -S 0102030405060708 -pass pass:secret`
        let key = derive_key(b"secret", &[1, 2, 3, 4, 5, 6, 7, 8], 32);
        assert_eq!(
            hex::encode_upper(key),
            "C9E5A1BD216DBE1317E230CEF48F38EE7F0E17AD64022144BCCEC4A1AA2879AB"
        );
    }
}
