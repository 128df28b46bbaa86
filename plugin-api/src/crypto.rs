//! Host-provided AES (the WIT `crypto` import) over opaque key handles.
//!
//! In a component every call goes to the host, which runs AES-NI and holds the key bytes.
//! On a native target (plugin unit tests) the same functions run in software over keys
//! built with [`Key::from_bytes`], so a codec's format logic can be tested without a host.

use std::fmt;

use crate::Error;
use crate::wit::codec_world::aerospike::backup_plugin::crypto as host;

/// Errors of the crypto functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CryptoError {
    /// A key, block, counter or nonce has a length the operation does not accept.
    InvalidLength,
    /// AES-GCM tag mismatch: wrong key or altered data.
    AuthenticationFailed,
}

impl fmt::Display for CryptoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CryptoError::InvalidLength => {
                f.write_str("invalid key, block, counter or nonce length")
            }
            CryptoError::AuthenticationFailed => {
                f.write_str("authentication failed (wrong key or corrupted data)")
            }
        }
    }
}

impl std::error::Error for CryptoError {}

impl From<CryptoError> for Error {
    fn from(e: CryptoError) -> Self {
        Error::Other(e.to_string())
    }
}

impl From<host::CryptoError> for CryptoError {
    fn from(e: host::CryptoError) -> Self {
        match e {
            host::CryptoError::InvalidLength => CryptoError::InvalidLength,
            host::CryptoError::AuthenticationFailed => CryptoError::AuthenticationFailed,
        }
    }
}

/// AES block size in bytes.
pub const BLOCK: usize = 16;
/// AES-GCM nonce size in bytes.
pub const GCM_NONCE: usize = 12;
/// AES-GCM tag size in bytes.
pub const GCM_TAG: usize = 16;

/// A key handle. Its bytes stay in the host; the AES variant follows its length
/// (16 = AES-128, 24 = AES-192, 32 = AES-256).
pub struct Key(Inner);

enum Inner {
    Host(host::Key),
    #[cfg(not(target_arch = "wasm32"))]
    Local(Vec<u8>),
}

impl fmt::Debug for Key {
    // Never print key material, even the software test keys.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

impl Key {
    pub(crate) fn from_host(handle: host::Key) -> Self {
        Key(Inner::Host(handle))
    }

    /// A software key for native unit tests (not available in a component, where keys only
    /// come from the host).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_bytes(bytes: &[u8]) -> Self {
        Key(Inner::Local(bytes.to_vec()))
    }

    /// Length of the key material in bytes (32 for every ABS key source).
    pub fn len(&self) -> usize {
        match &self.0 {
            Inner::Host(h) => h.len() as usize,
            #[cfg(not(target_arch = "wasm32"))]
            Inner::Local(b) => b.len(),
        }
    }

    /// Always false: keys have material. (Present because `len` is.)
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The first `len` bytes of this key's material as a new key (asbackup's AES-128 key is
    /// the first 16 bytes of the SHA-256 digest). `len` must be 16, 24 or 32.
    pub fn truncate(&self, len: usize) -> Result<Key, CryptoError> {
        if !matches!(len, 16 | 24 | 32) || len > self.len() {
            return Err(CryptoError::InvalidLength);
        }
        match &self.0 {
            Inner::Host(h) => Ok(Key::from_host(h.truncate(len as u32)?)),
            #[cfg(not(target_arch = "wasm32"))]
            Inner::Local(b) => Ok(Key::from_bytes(&b[..len])),
        }
    }

    /// AES-encrypt one 16-byte block (ECB).
    pub fn encrypt_block(&self, block: &[u8; BLOCK]) -> Result<[u8; BLOCK], CryptoError> {
        let out = match &self.0 {
            Inner::Host(h) => host::aes_encrypt_block(h, block)?,
            #[cfg(not(target_arch = "wasm32"))]
            Inner::Local(b) => soft::block(b, block, true)?,
        };
        out.try_into().map_err(|_| CryptoError::InvalidLength)
    }

    /// AES-decrypt one 16-byte block (ECB).
    pub fn decrypt_block(&self, block: &[u8; BLOCK]) -> Result<[u8; BLOCK], CryptoError> {
        let out = match &self.0 {
            Inner::Host(h) => host::aes_decrypt_block(h, block)?,
            #[cfg(not(target_arch = "wasm32"))]
            Inner::Local(b) => soft::block(b, block, false)?,
        };
        out.try_into().map_err(|_| CryptoError::InvalidLength)
    }

    /// AES-CTR: `data` XOR keystream, where the keystream starts at 128-bit big-endian
    /// counter `counter` and `offset` is the byte position of `data[0]` in it.
    pub fn ctr_apply(
        &self,
        counter: &[u8; BLOCK],
        offset: u64,
        data: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        match &self.0 {
            Inner::Host(h) => Ok(host::aes_ctr_apply(h, counter, offset, data)?),
            #[cfg(not(target_arch = "wasm32"))]
            Inner::Local(b) => soft::ctr(b, counter, offset, data.to_vec()),
        }
    }

    /// `len` bytes of the CTR keystream from byte `offset` (same counter rule as
    /// [`Key::ctr_apply`]).
    pub fn ctr_keystream(
        &self,
        counter: &[u8; BLOCK],
        offset: u64,
        len: u32,
    ) -> Result<Vec<u8>, CryptoError> {
        match &self.0 {
            Inner::Host(h) => Ok(host::aes_ctr_keystream(h, counter, offset, len)?),
            #[cfg(not(target_arch = "wasm32"))]
            Inner::Local(b) => soft::ctr(b, counter, offset, vec![0; len as usize]),
        }
    }

    /// AES-GCM seal: returns ciphertext || 16-byte tag.
    pub fn gcm_seal(
        &self,
        nonce: &[u8; GCM_NONCE],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        match &self.0 {
            Inner::Host(h) => Ok(host::aes_gcm_seal(h, nonce, aad, plaintext)?),
            #[cfg(not(target_arch = "wasm32"))]
            Inner::Local(b) => soft::gcm(b, nonce, aad, plaintext, true),
        }
    }

    /// AES-GCM open of ciphertext || tag; [`CryptoError::AuthenticationFailed`] on mismatch.
    pub fn gcm_open(
        &self,
        nonce: &[u8; GCM_NONCE],
        aad: &[u8],
        ciphertext_and_tag: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        match &self.0 {
            Inner::Host(h) => Ok(host::aes_gcm_open(h, nonce, aad, ciphertext_and_tag)?),
            #[cfg(not(target_arch = "wasm32"))]
            Inner::Local(b) => soft::gcm(b, nonce, aad, ciphertext_and_tag, false),
        }
    }
}

/// `len` bytes (at most 1024) from the host CSPRNG, for IVs and nonces. Natively: the OS RNG.
pub fn random_bytes(len: u32) -> Vec<u8> {
    #[cfg(target_arch = "wasm32")]
    {
        host::random_bytes(len)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rand::RngCore;
        let mut v = vec![0; len as usize];
        rand::thread_rng().fill_bytes(&mut v);
        v
    }
}

/// Adds `n` to a 128-bit big-endian counter block, wrapping modulo 2^128 (the CTR counter
/// rule of asbackup and of the host's `aes-ctr-apply`).
pub fn counter_add(counter: &[u8; BLOCK], n: u128) -> [u8; BLOCK] {
    u128::from_be_bytes(*counter).wrapping_add(n).to_be_bytes()
}

/// Software AES for native tests only.
#[cfg(not(target_arch = "wasm32"))]
mod soft {
    use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit, KeyIvInit, StreamCipher};
    use aes_gcm::aead::{Aead, Payload};

    use super::{BLOCK, CryptoError, GCM_NONCE, counter_add};

    /// Runs `$body` with `$cipher` bound to the AES type matching the key length.
    macro_rules! with_aes {
        ($key:expr, |$cipher:ident| $body:expr) => {
            match $key.len() {
                16 => {
                    type $cipher = aes::Aes128;
                    $body
                }
                24 => {
                    type $cipher = aes::Aes192;
                    $body
                }
                32 => {
                    type $cipher = aes::Aes256;
                    $body
                }
                _ => Err(CryptoError::InvalidLength),
            }
        };
    }

    pub(super) fn block(key: &[u8], block: &[u8], encrypt: bool) -> Result<Vec<u8>, CryptoError> {
        if block.len() != BLOCK {
            return Err(CryptoError::InvalidLength);
        }
        let mut b = aes::Block::clone_from_slice(block);
        with_aes!(key, |C| {
            let c = C::new_from_slice(key).map_err(|_| CryptoError::InvalidLength)?;
            if encrypt {
                c.encrypt_block(&mut b);
            } else {
                c.decrypt_block(&mut b);
            }
            Ok(b.to_vec())
        })
    }

    pub(super) fn ctr(
        key: &[u8],
        counter: &[u8; BLOCK],
        offset: u64,
        mut data: Vec<u8>,
    ) -> Result<Vec<u8>, CryptoError> {
        // Start at the block holding `offset` so the counter arithmetic wraps exactly as
        // the spec says, independent of the ctr crate's own seek limits.
        let iv = counter_add(counter, u128::from(offset / BLOCK as u64));
        let skip = (offset % BLOCK as u64) as usize;
        with_aes!(key, |C| {
            let mut c = ctr::Ctr128BE::<C>::new_from_slices(key, &iv)
                .map_err(|_| CryptoError::InvalidLength)?;
            let mut waste = [0u8; BLOCK];
            c.apply_keystream(&mut waste[..skip]);
            c.apply_keystream(&mut data);
            Ok(data)
        })
    }

    pub(super) fn gcm(
        key: &[u8],
        nonce: &[u8],
        aad: &[u8],
        msg: &[u8],
        seal: bool,
    ) -> Result<Vec<u8>, CryptoError> {
        if nonce.len() != GCM_NONCE {
            return Err(CryptoError::InvalidLength);
        }
        let nonce = aes_gcm::Nonce::from_slice(nonce);
        let payload = Payload { msg, aad };
        macro_rules! run {
            ($c:ty) => {{
                let c = <$c>::new_from_slice(key).map_err(|_| CryptoError::InvalidLength)?;
                if seal {
                    c.encrypt(nonce, payload)
                        .map_err(|_| CryptoError::InvalidLength)
                } else {
                    c.decrypt(nonce, payload)
                        .map_err(|_| CryptoError::AuthenticationFailed)
                }
            }};
        }
        match key.len() {
            16 => run!(aes_gcm::Aes128Gcm),
            32 => run!(aes_gcm::Aes256Gcm),
            _ => Err(CryptoError::InvalidLength),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// NIST SP 800-38A F.5.1 (CTR-AES128.Encrypt), split at awkward offsets.
    #[test]
    fn software_ctr_matches_nist_at_any_offset() {
        let key = Key::from_bytes(&hex("2b7e151628aed2a6abf7158809cf4f3c"));
        let ctr: [u8; 16] = hex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff").try_into().unwrap();
        let pt = hex(concat!(
            "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51",
            "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710"
        ));
        let ct = hex(concat!(
            "874d6191b620e3261bef6864990db6ce9806f66b7970fdff8617187bb9fffdff",
            "5ae4df3edbd5d35e5b4f09020db03eab1e031dda2fbe03d1792170a0f3009cee"
        ));
        assert_eq!(key.ctr_apply(&ctr, 0, &pt).unwrap(), ct);
        let (a, b) = pt.split_at(21);
        let mut out = key.ctr_apply(&ctr, 0, a).unwrap();
        out.extend(key.ctr_apply(&ctr, 21, b).unwrap());
        assert_eq!(out, ct);
        let ks = key.ctr_keystream(&ctr, 5, 7).unwrap();
        let expect: Vec<u8> = pt[5..12]
            .iter()
            .zip(&ct[5..12])
            .map(|(p, c)| p ^ c)
            .collect();
        assert_eq!(ks, expect);
    }

    #[test]
    fn counter_wraps_at_128_bits() {
        assert_eq!(counter_add(&[0xff; 16], 1), [0; 16]);
        let mut c = [0u8; 16];
        c[15] = 0xff;
        let mut e = [0u8; 16];
        e[14] = 1;
        assert_eq!(counter_add(&c, 1), e);
    }

    #[test]
    fn gcm_round_trip_and_tamper() {
        let key = Key::from_bytes(&[7; 32]);
        let nonce = [1; 12];
        let sealed = key.gcm_seal(&nonce, b"hdr", b"hello").unwrap();
        assert_eq!(sealed.len(), 5 + GCM_TAG);
        assert_eq!(key.gcm_open(&nonce, b"hdr", &sealed).unwrap(), b"hello");
        assert_eq!(
            key.gcm_open(&nonce, b"hdX", &sealed),
            Err(CryptoError::AuthenticationFailed)
        );
    }

    #[test]
    fn truncate_rules() {
        let key = Key::from_bytes(&[3; 32]);
        assert_eq!(key.truncate(16).unwrap().len(), 16);
        assert_eq!(key.truncate(15).unwrap_err(), CryptoError::InvalidLength);
        let short = key.truncate(16).unwrap();
        assert_eq!(short.truncate(32).unwrap_err(), CryptoError::InvalidLength);
        let block = [9u8; 16];
        let enc = short.encrypt_block(&block).unwrap();
        assert_eq!(short.decrypt_block(&enc).unwrap(), block);
    }
}
