//! Host implementation of the WIT `crypto` import: AES block / CTR / GCM with AES-NI
//! (RustCrypto detects it at run time) over opaque key handles, plus the CSPRNG.
//!
//! Why in the host: wasm has no AES-NI, so AES in a guest runs ~30x slower, and the raw key
//! must never enter the sandbox (DESIGN §4). Guests only ever hold a table index.

use std::fmt;
use std::sync::Arc;

use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit, KeyIvInit, StreamCipher, StreamCipherSeek};
use aes_gcm::aead::{Aead, Payload};
use rand::{RngCore, SeedableRng};

/// Secret key bytes. Never printed; zeroed on drop.
pub struct KeyMaterial(Vec<u8>);

impl KeyMaterial {
    /// Wraps raw key bytes (16, 24 or 32 bytes for AES).
    pub fn new(bytes: Vec<u8>) -> Self {
        KeyMaterial(bytes)
    }

    /// Number of key bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The raw bytes, for the host's own crypto only.
    pub(crate) fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("**redacted**")
    }
}

impl Drop for KeyMaterial {
    fn drop(&mut self) {
        // Best effort: no `unsafe` volatile writes (workspace lint), black_box keeps the
        // stores from being optimised away in practice.
        for b in self.0.iter_mut() {
            *b = 0;
        }
        std::hint::black_box(&self.0);
    }
}

/// A shareable handle to key material, as resolved by [`crate::plugins::keys`].
pub type Key = Arc<KeyMaterial>;

/// What a guest holds behind a `crypto.key` resource: a reference to host memory.
#[derive(Debug, Clone)]
pub struct KeyHandle(pub(crate) Key);

/// Errors of the crypto import (mirror of WIT `crypto-error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("invalid length")]
    InvalidLength,
    #[error("authentication failed")]
    AuthenticationFailed,
}

enum BlockCipher {
    A128(aes::Aes128),
    A192(aes::Aes192),
    A256(aes::Aes256),
}

impl BlockCipher {
    fn new(key: &[u8]) -> Result<Self, CryptoError> {
        Ok(match key.len() {
            16 => BlockCipher::A128(
                aes::Aes128::new_from_slice(key).map_err(|_| CryptoError::InvalidLength)?,
            ),
            24 => BlockCipher::A192(
                aes::Aes192::new_from_slice(key).map_err(|_| CryptoError::InvalidLength)?,
            ),
            32 => BlockCipher::A256(
                aes::Aes256::new_from_slice(key).map_err(|_| CryptoError::InvalidLength)?,
            ),
            _ => return Err(CryptoError::InvalidLength),
        })
    }
}

fn one_block(block: &[u8]) -> Result<aes::Block, CryptoError> {
    if block.len() != 16 {
        return Err(CryptoError::InvalidLength);
    }
    Ok(*aes::Block::from_slice(block))
}

/// AES-ECB encryption of exactly one 16-byte block.
pub fn aes_encrypt_block(key: &[u8], block: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let mut b = one_block(block)?;
    match BlockCipher::new(key)? {
        BlockCipher::A128(c) => c.encrypt_block(&mut b),
        BlockCipher::A192(c) => c.encrypt_block(&mut b),
        BlockCipher::A256(c) => c.encrypt_block(&mut b),
    }
    Ok(b.to_vec())
}

/// AES-ECB decryption of exactly one 16-byte block.
pub fn aes_decrypt_block(key: &[u8], block: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let mut b = one_block(block)?;
    match BlockCipher::new(key)? {
        BlockCipher::A128(c) => c.decrypt_block(&mut b),
        BlockCipher::A192(c) => c.decrypt_block(&mut b),
        BlockCipher::A256(c) => c.decrypt_block(&mut b),
    }
    Ok(b.to_vec())
}

/// An AES-CTR keystream (128-bit big-endian counter) positioned at byte `offset` of the
/// stream whose first block is AES(key, counter); the AES size follows the key length.
fn ctr_at(key: &[u8], counter: &[u8], offset: u64) -> Result<Box<dyn StreamCipher>, CryptoError> {
    fn seeked<C>(
        key: &[u8],
        counter: &[u8],
        offset: u64,
    ) -> Result<Box<dyn StreamCipher>, CryptoError>
    where
        C: KeyIvInit + StreamCipher + StreamCipherSeek + 'static,
    {
        let mut c = C::new_from_slices(key, counter).map_err(|_| CryptoError::InvalidLength)?;
        // The 128-bit counter wraps modulo 2^128 (ctr's Ctr128BE flavour), as OpenSSL CTR128.
        c.try_seek(offset).map_err(|_| CryptoError::InvalidLength)?;
        Ok(Box::new(c))
    }
    if counter.len() != 16 {
        return Err(CryptoError::InvalidLength);
    }
    match key.len() {
        16 => seeked::<ctr::Ctr128BE<aes::Aes128>>(key, counter, offset),
        24 => seeked::<ctr::Ctr128BE<aes::Aes192>>(key, counter, offset),
        32 => seeked::<ctr::Ctr128BE<aes::Aes256>>(key, counter, offset),
        _ => Err(CryptoError::InvalidLength),
    }
}

/// [`aes_ctr_apply`] from `input` into `output` (same length) in one pass: for data that
/// lives elsewhere (a guest's linear memory), instead of a copy and then the XOR.
pub fn aes_ctr_apply_to(
    key: &[u8],
    counter: &[u8],
    offset: u64,
    input: &[u8],
    output: &mut [u8],
) -> Result<(), CryptoError> {
    if input.len() != output.len() {
        return Err(CryptoError::InvalidLength);
    }
    ctr_at(key, counter, offset)?
        .apply_keystream_b2b(input, output)
        .map_err(|_| CryptoError::InvalidLength)
}

/// XORs `data` in place with the AES-CTR keystream that starts at byte `offset` of the
/// stream whose first block is AES(key, counter) (128-bit big-endian counter).
pub fn aes_ctr_apply(
    key: &[u8],
    counter: &[u8],
    offset: u64,
    data: &mut [u8],
) -> Result<(), CryptoError> {
    ctr_at(key, counter, offset)?
        .try_apply_keystream(data)
        .map_err(|_| CryptoError::InvalidLength)
}

type Aes192Gcm = aes_gcm::AesGcm<aes::Aes192, aes_gcm::aead::consts::U12>;

fn gcm<C: Aead + KeyInit>(
    key: &[u8],
    nonce: &[u8],
    aad: &[u8],
    data: &[u8],
    seal: bool,
) -> Result<Vec<u8>, CryptoError> {
    if nonce.len() != 12 {
        return Err(CryptoError::InvalidLength);
    }
    let c = C::new_from_slice(key).map_err(|_| CryptoError::InvalidLength)?;
    let nonce = aes_gcm::Nonce::from_slice(nonce);
    let payload = Payload { msg: data, aad };
    if seal {
        c.encrypt(nonce, payload)
            .map_err(|_| CryptoError::InvalidLength)
    } else {
        c.decrypt(nonce, payload)
            .map_err(|_| CryptoError::AuthenticationFailed)
    }
}

/// AES-GCM seal: ciphertext || 16-byte tag.
pub fn aes_gcm_seal(
    key: &[u8],
    nonce: &[u8],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    match key.len() {
        16 => gcm::<aes_gcm::Aes128Gcm>(key, nonce, aad, plaintext, true),
        24 => gcm::<Aes192Gcm>(key, nonce, aad, plaintext, true),
        32 => gcm::<aes_gcm::Aes256Gcm>(key, nonce, aad, plaintext, true),
        _ => Err(CryptoError::InvalidLength),
    }
}

/// AES-GCM open; releases no plaintext unless the tag verifies.
pub fn aes_gcm_open(
    key: &[u8],
    nonce: &[u8],
    aad: &[u8],
    sealed: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    if sealed.len() < 16 {
        return Err(CryptoError::AuthenticationFailed);
    }
    match key.len() {
        16 => gcm::<aes_gcm::Aes128Gcm>(key, nonce, aad, sealed, false),
        24 => gcm::<Aes192Gcm>(key, nonce, aad, sealed, false),
        32 => gcm::<aes_gcm::Aes256Gcm>(key, nonce, aad, sealed, false),
        _ => Err(CryptoError::InvalidLength),
    }
}

/// Largest `random-bytes` request (WIT contract).
pub const MAX_RANDOM_BYTES: u32 = 1024;

/// Most key handles one instance may hold at once; a guest calling `truncate` in a loop
/// would otherwise grow host memory without bound.
pub const MAX_KEY_HANDLES: usize = 64;

/// Source of IVs and nonces: the OS CSPRNG, or a seeded generator that only tests create.
pub enum HostRng {
    Os,
    Seeded(Box<rand::rngs::StdRng>),
}

impl fmt::Debug for HostRng {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostRng::Os => f.write_str("HostRng::Os"),
            HostRng::Seeded(_) => f.write_str("HostRng::Seeded"),
        }
    }
}

impl HostRng {
    pub(crate) fn from_seed(seed: Option<u64>) -> Self {
        match seed {
            Some(s) => HostRng::Seeded(Box::new(rand::rngs::StdRng::seed_from_u64(s))),
            None => HostRng::Os,
        }
    }

    /// Fills a fresh buffer of `len` bytes (capped at [`MAX_RANDOM_BYTES`]).
    pub fn bytes(&mut self, len: u32) -> Vec<u8> {
        let mut out = vec![0u8; len.min(MAX_RANDOM_BYTES) as usize];
        match self {
            HostRng::Os => rand::rngs::OsRng.fill_bytes(&mut out),
            HostRng::Seeded(r) => r.fill_bytes(&mut out),
        }
        out
    }
}

/// Per-store crypto state: the RNG, a count of live key handles and the output buffer of
/// `aes-ctr-apply`.
#[derive(Debug)]
pub struct CryptoState {
    pub(crate) rng: HostRng,
    pub(crate) live_keys: usize,
    /// Result of the last `aes-ctr-apply`, reused by the next call once wasmtime has copied
    /// it into the guest and dropped its reference (no allocation, warm memory).
    pub(crate) ctr_out: Arc<Vec<u8>>,
}

impl CryptoState {
    pub(crate) fn new(seed: Option<u64>) -> Self {
        CryptoState {
            rng: HostRng::from_seed(seed),
            live_keys: 0,
            ctr_out: Arc::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    #[test]
    fn fips197_block_vectors() {
        // FIPS-197 appendix C.1 and C.3.
        let pt = hex("00112233445566778899aabbccddeeff");
        let k128 = hex("000102030405060708090a0b0c0d0e0f");
        let c = aes_encrypt_block(&k128, &pt).unwrap();
        assert_eq!(c, hex("69c4e0d86a7b0430d8cdb78070b4c55a"));
        assert_eq!(aes_decrypt_block(&k128, &c).unwrap(), pt);
        let k256 = hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
        assert_eq!(
            aes_encrypt_block(&k256, &pt).unwrap(),
            hex("8ea2b7ca516745bfeafc49904b496089")
        );
        assert_eq!(
            aes_encrypt_block(&k256, &pt[..15]),
            Err(CryptoError::InvalidLength)
        );
        assert_eq!(
            aes_encrypt_block(&k256[..20], &pt),
            Err(CryptoError::InvalidLength)
        );
    }

    #[test]
    fn ctr_sp800_38a_vector() {
        // NIST SP 800-38A F.5.1 (CTR-AES128.Encrypt), first two blocks.
        let key = hex("2b7e151628aed2a6abf7158809cf4f3c");
        let ctr = hex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff");
        let mut data = hex("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51");
        aes_ctr_apply(&key, &ctr, 0, &mut data).unwrap();
        assert_eq!(
            data,
            hex("874d6191b620e3261bef6864990db6ce9806f66b7970fdff8617187bb9fffdff")
        );
    }

    /// CTR keystream computed block by block with ECB, independent of the `ctr` crate.
    fn manual_keystream(key: &[u8], counter: &[u8], len: usize) -> Vec<u8> {
        let mut c = u128::from_be_bytes(counter.try_into().unwrap());
        let mut out = Vec::new();
        while out.len() < len {
            out.extend(aes_encrypt_block(key, &c.to_be_bytes()).unwrap());
            c = c.wrapping_add(1);
        }
        out.truncate(len);
        out
    }

    #[test]
    fn ctr_offset_and_wraparound_match_manual_keystream() {
        let key = [7u8; 32];
        // Counter two blocks before 2^128 wraps: carry must cross all 16 bytes.
        let counter = (u128::MAX - 1).to_be_bytes();
        let ks = manual_keystream(&key, &counter, 100);
        for offset in [0usize, 1, 15, 16, 17, 33, 50] {
            let mut data = vec![0u8; 100 - offset];
            aes_ctr_apply(&key, &counter, offset as u64, &mut data).unwrap();
            assert_eq!(data, ks[offset..], "offset {offset}");
        }
    }

    #[test]
    fn gcm_round_trip_and_tamper() {
        let key = [9u8; 32];
        let nonce = [1u8; 12];
        let sealed = aes_gcm_seal(&key, &nonce, b"aad", b"hello").unwrap();
        assert_eq!(sealed.len(), 5 + 16);
        assert_eq!(
            aes_gcm_open(&key, &nonce, b"aad", &sealed).unwrap(),
            b"hello"
        );
        let mut bad = sealed.clone();
        bad[0] ^= 1;
        assert_eq!(
            aes_gcm_open(&key, &nonce, b"aad", &bad),
            Err(CryptoError::AuthenticationFailed)
        );
        assert_eq!(
            aes_gcm_open(&key, &nonce, b"other", &sealed),
            Err(CryptoError::AuthenticationFailed)
        );
        assert_eq!(
            aes_gcm_seal(&key, &[0u8; 8], b"", b"x"),
            Err(CryptoError::InvalidLength)
        );
    }

    #[test]
    fn seeded_rng_is_reproducible_and_os_rng_is_not_constant() {
        let a = HostRng::from_seed(Some(5)).bytes(32);
        let b = HostRng::from_seed(Some(5)).bytes(32);
        assert_eq!(a, b);
        let mut os = HostRng::from_seed(None);
        assert_ne!(os.bytes(32), os.bytes(32));
        assert_eq!(os.bytes(5000).len(), MAX_RANDOM_BYTES as usize);
    }

    #[test]
    fn key_debug_is_redacted() {
        let k = KeyMaterial::new(vec![0xAB; 32]);
        assert_eq!(format!("{k:?}"), "**redacted**");
        assert_eq!(
            format!("{:?}", KeyHandle(Arc::new(k))),
            "KeyHandle(**redacted**)"
        );
    }
}
