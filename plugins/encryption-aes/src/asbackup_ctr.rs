//! The asbackup / backup-go AES-CTR stream (BACKUP-FORMAT.md §4):
//!
//! ```text
//! bytes 0..16   AES-ECB-encrypt(key, N)          N: 16 random bytes from the host
//! bytes 16..    data XOR AES(key, N+1) || AES(key, N+2) || ...
//! ```
//! The counter is 128-bit big-endian with carry across all 16 bytes. A reader decrypts the
//! first block to get N. No authentication: a wrong key only shows as garbage.

use aerospike_backup_plugin::crypto::{self, BLOCK, Key, counter_add};
use aerospike_backup_plugin::{Error, Result, Transform};

/// Encrypts a stream; the IV header goes out with the first output.
#[derive(Debug)]
pub struct CtrEncoder {
    key: Key,
    iv: [u8; BLOCK],
    header: Option<[u8; BLOCK]>,
    offset: u64,
}

impl CtrEncoder {
    /// A new stream with a fresh IV from the host CSPRNG (never from configuration).
    pub fn new(key: Key) -> Result<Self> {
        let iv: [u8; BLOCK] = crypto::random_bytes(BLOCK as u32)
            .try_into()
            .map_err(|_| Error::other("host returned a short random IV"))?;
        Self::with_iv(key, iv)
    }

    /// A new stream with the given IV (tests and compatibility vectors).
    pub fn with_iv(key: Key, iv: [u8; BLOCK]) -> Result<Self> {
        let header = key.encrypt_block(&iv)?;
        Ok(CtrEncoder {
            key,
            iv,
            header: Some(header),
            offset: 0,
        })
    }

    fn counter(&self) -> [u8; BLOCK] {
        counter_add(&self.iv, 1)
    }
}

impl Transform for CtrEncoder {
    fn push(&mut self, chunk: Vec<u8>) -> Result<Vec<u8>> {
        let mut out = match self.header.take() {
            Some(h) => h.to_vec(),
            None => Vec::new(),
        };
        if !chunk.is_empty() {
            let sealed = self.key.ctr_apply(&self.counter(), self.offset, &chunk)?;
            self.offset += chunk.len() as u64;
            if out.is_empty() {
                out = sealed;
            } else {
                out.extend_from_slice(&sealed);
            }
        }
        Ok(out)
    }

    fn finish(mut self) -> Result<Vec<u8>> {
        // An empty file still carries its header, as asbackup writes it.
        Ok(self.header.take().map(|h| h.to_vec()).unwrap_or_default())
    }
}

/// Decrypts a stream: reads the 16-byte header (possibly split over chunks) first.
#[derive(Debug)]
pub struct CtrDecoder {
    key: Key,
    header: Vec<u8>,
    counter: Option<[u8; BLOCK]>,
    offset: u64,
}

impl CtrDecoder {
    /// A decoder expecting the header at the start of the stream.
    pub fn new(key: Key) -> Self {
        CtrDecoder {
            key,
            header: Vec::with_capacity(BLOCK),
            counter: None,
            offset: 0,
        }
    }
}

impl Transform for CtrDecoder {
    fn push(&mut self, chunk: Vec<u8>) -> Result<Vec<u8>> {
        let mut data = &chunk[..];
        let counter = match self.counter {
            Some(c) => c,
            None => {
                let take = (BLOCK - self.header.len()).min(data.len());
                self.header.extend_from_slice(&data[..take]);
                data = &data[take..];
                let Ok(block) = <[u8; BLOCK]>::try_from(&self.header[..]) else {
                    return Ok(Vec::new());
                };
                let n = self.key.decrypt_block(&block)?;
                let c = counter_add(&n, 1);
                self.counter = Some(c);
                c
            }
        };
        if data.is_empty() {
            return Ok(Vec::new());
        }
        let out = self.key.ctr_apply(&counter, self.offset, data)?;
        self.offset += data.len() as u64;
        Ok(out)
    }

    fn finish(self) -> Result<Vec<u8>> {
        if self.counter.is_none() {
            return Err(Error::other(format!(
                "encrypted stream is truncated: {} of the 16 IV header bytes",
                self.header.len()
            )));
        }
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aerospike_backup_plugin::testing::{run_chunked, sample_data};
    use aes::cipher::{BlockEncrypt, KeyInit, KeyIvInit, StreamCipher};

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Key material as the host would hold it: a 32-byte digest whose prefix is the AES key.
    fn material(aes_key: &[u8]) -> Key {
        let mut m = aes_key.to_vec();
        m.resize(32, 0xa5);
        Key::from_bytes(&m)
    }

    /// NIST SP 800-38A F.5.1 / F.5.5: with N = (initial counter - 1) the payload must be
    /// exactly NIST's CTR ciphertext, whatever the chunking. This is a hand-checkable vector,
    /// independent of any AES library.
    #[test]
    fn payload_matches_nist_ctr_vectors() {
        let pt = hex(concat!(
            "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51",
            "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710"
        ));
        let cases = [
            (
                "2b7e151628aed2a6abf7158809cf4f3c",
                16,
                concat!(
                    "874d6191b620e3261bef6864990db6ce9806f66b7970fdff8617187bb9fffdff",
                    "5ae4df3edbd5d35e5b4f09020db03eab1e031dda2fbe03d1792170a0f3009cee"
                ),
            ),
            (
                "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4",
                32,
                concat!(
                    "601ec313775789a5b7a7f504bbf3d228f443e3ca4d62b59aca84e990cacaf5c5",
                    "2b0930daa23de94ce87017ba2d84988ddfc9c58db67aada613c2dd08457941a6"
                ),
            ),
        ];
        // NIST's first counter block is f0..feff, so N = f0..fefe.
        let n: [u8; 16] = hex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfefe").try_into().unwrap();
        for (k, len, ct) in cases {
            let key = material(&hex(k)).truncate(len).unwrap();
            for chunk in [1, 5, 16, 17, 64] {
                let enc = CtrEncoder::with_iv(key.truncate(len).unwrap(), n).unwrap();
                let out = run_chunked(enc, &pt, chunk, 3).unwrap();
                assert_eq!(out[16..], hex(ct)[..], "key {k} chunk {chunk}");
                assert_eq!(
                    key.decrypt_block(&out[..16].try_into().unwrap()).unwrap(),
                    n
                );
            }
        }
    }

    /// The whole file against an independent construction with the RustCrypto crates:
    /// E(N) || CTR(N+1), including a counter that carries across bytes.
    #[test]
    fn stream_matches_independent_asbackup_construction() {
        let raw_key = [0x42u8; 32];
        let mut n = [0u8; 16];
        n[8..].copy_from_slice(&[0xff; 8]); // N+1 carries into byte 7
        let data = sample_data(100_000, 11);
        for (len, cut) in [(16, 16usize), (32, 32)] {
            let enc = CtrEncoder::with_iv(material(&raw_key[..cut]).truncate(len).unwrap(), n);
            let ours = run_chunked(enc.unwrap(), &data, 9000, 5).unwrap();

            let mut expect = n;
            let mut body = data.clone();
            let n1 = (u128::from_be_bytes(n) + 1).to_be_bytes();
            if len == 16 {
                let c = aes::Aes128::new_from_slice(&raw_key[..16]).unwrap();
                c.encrypt_block((&mut expect).into());
                ::ctr::Ctr128BE::<aes::Aes128>::new_from_slices(&raw_key[..16], &n1)
                    .unwrap()
                    .apply_keystream(&mut body);
            } else {
                let c = aes::Aes256::new_from_slice(&raw_key).unwrap();
                c.encrypt_block((&mut expect).into());
                ::ctr::Ctr128BE::<aes::Aes256>::new_from_slices(&raw_key, &n1)
                    .unwrap()
                    .apply_keystream(&mut body);
            }
            assert_eq!(ours[..16], expect, "header, AES-{}", len * 8);
            assert_eq!(ours[16..], body[..], "payload, AES-{}", len * 8);

            // And our decoder reads it back whatever the chunking.
            let dec = CtrDecoder::new(material(&raw_key[..cut]).truncate(len).unwrap());
            assert_eq!(run_chunked(dec, &ours, 7, 1).unwrap(), data);
        }
    }

    #[test]
    fn fresh_ivs_differ_and_empty_stream_is_header_only() {
        let a = run_chunked(CtrEncoder::new(material(&[1; 16])).unwrap(), b"x", 1, 0).unwrap();
        let b = run_chunked(CtrEncoder::new(material(&[1; 16])).unwrap(), b"x", 1, 0).unwrap();
        assert_ne!(a[..16], b[..16]);
        let empty = CtrEncoder::new(material(&[1; 16]))
            .unwrap()
            .finish()
            .unwrap();
        assert_eq!(empty.len(), 16);
        let dec = CtrDecoder::new(material(&[1; 16]));
        assert_eq!(run_chunked(dec, &empty, 3, 0).unwrap(), b"");
    }

    #[test]
    fn short_header_is_an_error() {
        let dec = CtrDecoder::new(material(&[1; 16]));
        assert!(run_chunked(dec, &[0; 15], 4, 0).is_err());
        let dec = CtrDecoder::new(material(&[1; 16]));
        assert!(run_chunked(dec, &[], 4, 0).is_err());
    }
}
