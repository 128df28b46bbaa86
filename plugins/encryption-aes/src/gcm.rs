//! `aes-256-gcm`: our authenticated format (not readable by asrestore, on purpose).
//!
//! ```text
//! header (20 bytes)   "ABSGCM" 0x00 0x01 | frame size: u32 BE | nonce prefix: 8 random bytes
//! frame i (i = 0..)   AES-256-GCM(key, nonce = prefix || i as u32 BE,
//!                                 aad = header || final flag (1 byte), plaintext)
//!                     = ciphertext || 16-byte tag
//! ```
//! Every frame but the last holds exactly `frame size` plaintext bytes; the last holds
//! 0..=frame size and is sealed with final flag 1 (the others with 0). So a reader detects
//! a modified header, reordered or dropped frames, and truncation at a frame boundary;
//! nothing is released from a frame before its tag verifies. The leading "ABS" + NUL makes
//! asbackup/asrestore fail at once instead of decrypting garbage.

use aerospike_backup_plugin::crypto::{self, GCM_NONCE, GCM_TAG, Key};
use aerospike_backup_plugin::{Error, Result, Transform};

/// Format magic: name, NUL, format version 1.
pub const MAGIC: [u8; 8] = *b"ABSGCM\x00\x01";
/// Header length: magic + frame size + nonce prefix.
pub const HEADER_LEN: usize = 8 + 4 + 8;
/// Default plaintext bytes per frame (one host chunk).
pub const DEFAULT_FRAME: u32 = 1 << 20;
/// Smallest frame size accepted (per-frame overhead is 16 bytes and one host call).
pub const MIN_FRAME: u32 = 4096;
/// Largest frame size accepted; bounds decoder memory against a hostile header.
pub const MAX_FRAME: u32 = 16 << 20;

fn nonce(prefix: &[u8; 8], index: u32) -> [u8; GCM_NONCE] {
    let mut n = [0u8; GCM_NONCE];
    n[..8].copy_from_slice(prefix);
    n[8..].copy_from_slice(&index.to_be_bytes());
    n
}

fn aad(header: &[u8; HEADER_LEN], last: bool) -> [u8; HEADER_LEN + 1] {
    let mut a = [0u8; HEADER_LEN + 1];
    a[..HEADER_LEN].copy_from_slice(header);
    a[HEADER_LEN] = u8::from(last);
    a
}

/// Frame counter with the overflow check (2^32 frames of ≥4 KiB = 16 TiB per file).
fn next_index(index: &mut u32) -> Result<u32> {
    let i = *index;
    *index = i
        .checked_add(1)
        .ok_or_else(|| Error::other("aes-256-gcm: too many frames"))?;
    Ok(i)
}

/// Encrypts a stream into frames.
#[derive(Debug)]
pub struct GcmEncoder {
    key: Key,
    header: [u8; HEADER_LEN],
    header_sent: bool,
    frame: usize,
    pending: Vec<u8>,
    index: u32,
}

impl GcmEncoder {
    /// A new stream; the nonce prefix comes from the host CSPRNG.
    pub fn new(key: Key, frame_size: u32) -> Result<Self> {
        let prefix: [u8; 8] = crypto::random_bytes(8)
            .try_into()
            .map_err(|_| Error::other("host returned a short random nonce prefix"))?;
        let mut header = [0u8; HEADER_LEN];
        header[..8].copy_from_slice(&MAGIC);
        header[8..12].copy_from_slice(&frame_size.to_be_bytes());
        header[12..].copy_from_slice(&prefix);
        Ok(GcmEncoder {
            key,
            header,
            header_sent: false,
            frame: frame_size as usize,
            pending: Vec::new(),
            index: 0,
        })
    }

    fn start_output(&mut self) -> Vec<u8> {
        if self.header_sent {
            Vec::new()
        } else {
            self.header_sent = true;
            self.header.to_vec()
        }
    }

    fn seal(&mut self, out: &mut Vec<u8>, start: usize, end: usize, last: bool) -> Result<()> {
        let prefix: [u8; 8] = self.header[12..].try_into().expect("8-byte slice");
        let i = next_index(&mut self.index)?;
        let sealed = self.key.gcm_seal(
            &nonce(&prefix, i),
            &aad(&self.header, last),
            &self.pending[start..end],
        )?;
        out.extend_from_slice(&sealed);
        Ok(())
    }
}

impl Transform for GcmEncoder {
    fn push(&mut self, chunk: Vec<u8>) -> Result<Vec<u8>> {
        let mut out = self.start_output();
        self.pending.extend_from_slice(&chunk);
        // Keep at least one byte back: only `finish` knows which frame is the last one.
        let mut start = 0;
        while self.pending.len() - start > self.frame {
            self.seal(&mut out, start, start + self.frame, false)?;
            start += self.frame;
        }
        self.pending.drain(..start);
        Ok(out)
    }

    fn finish(mut self) -> Result<Vec<u8>> {
        let mut out = self.start_output();
        let end = self.pending.len();
        self.seal(&mut out, 0, end, true)?;
        Ok(out)
    }
}

/// Verifies and decrypts a framed stream.
#[derive(Debug)]
pub struct GcmDecoder {
    key: Key,
    header: Vec<u8>,
    /// Parsed header, frame size and nonce prefix, once all 20 bytes arrived.
    parsed: Option<([u8; HEADER_LEN], usize, [u8; 8])>,
    pending: Vec<u8>,
    index: u32,
}

impl GcmDecoder {
    /// A decoder expecting the header at the start of the stream.
    pub fn new(key: Key) -> Self {
        GcmDecoder {
            key,
            header: Vec::new(),
            parsed: None,
            pending: Vec::new(),
            index: 0,
        }
    }

    fn parse_header(&mut self) -> Result<()> {
        let header: [u8; HEADER_LEN] = self.header[..].try_into().expect("complete header");
        if header[..6] != MAGIC[..6] {
            return Err(Error::other("not an aes-256-gcm stream (bad magic)"));
        }
        if header[6..8] != MAGIC[6..8] {
            return Err(Error::Unsupported(format!(
                "aes-256-gcm format version {} (this plugin reads version 1)",
                header[7]
            )));
        }
        let frame = u32::from_be_bytes(header[8..12].try_into().expect("4 bytes"));
        if !(MIN_FRAME..=MAX_FRAME).contains(&frame) {
            return Err(Error::other(format!(
                "aes-256-gcm: invalid frame size {frame}"
            )));
        }
        let prefix: [u8; 8] = header[12..].try_into().expect("8 bytes");
        self.parsed = Some((header, frame as usize, prefix));
        Ok(())
    }

    fn open(&mut self, out: &mut Vec<u8>, start: usize, end: usize, last: bool) -> Result<()> {
        let (header, _, prefix) = self.parsed.expect("header parsed before frames");
        let i = next_index(&mut self.index)?;
        let plain = self
            .key
            .gcm_open(
                &nonce(&prefix, i),
                &aad(&header, last),
                &self.pending[start..end],
            )
            .map_err(|e| Error::other(format!("aes-256-gcm frame {i}: {e}")))?;
        out.extend_from_slice(&plain);
        Ok(())
    }
}

impl Transform for GcmDecoder {
    fn push(&mut self, chunk: Vec<u8>) -> Result<Vec<u8>> {
        let mut data = &chunk[..];
        if self.parsed.is_none() {
            let take = (HEADER_LEN - self.header.len()).min(data.len());
            self.header.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.header.len() < HEADER_LEN {
                return Ok(Vec::new());
            }
            self.parse_header()?;
        }
        self.pending.extend_from_slice(data);
        let sealed = self.parsed.map(|(_, f, _)| f + GCM_TAG).expect("parsed");
        let mut out = Vec::new();
        let mut start = 0;
        // A frame is known not to be the last only once bytes after it have arrived.
        while self.pending.len() - start > sealed {
            self.open(&mut out, start, start + sealed, false)?;
            start += sealed;
        }
        self.pending.drain(..start);
        Ok(out)
    }

    fn finish(mut self) -> Result<Vec<u8>> {
        if self.parsed.is_none() {
            return Err(Error::other(format!(
                "aes-256-gcm stream is truncated: {} of the {HEADER_LEN} header bytes",
                self.header.len()
            )));
        }
        if self.pending.len() < GCM_TAG {
            return Err(Error::other(
                "aes-256-gcm stream is truncated (no final frame)",
            ));
        }
        let mut out = Vec::new();
        let end = self.pending.len();
        self.open(&mut out, 0, end, true)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aerospike_backup_plugin::testing::{run_chunked, sample_data};

    fn key() -> Key {
        Key::from_bytes(&[9; 32])
    }

    fn encode(data: &[u8], frame: u32) -> Vec<u8> {
        run_chunked(GcmEncoder::new(key(), frame).unwrap(), data, 10_000, 1).unwrap()
    }

    fn decode(data: &[u8]) -> Result<Vec<u8>> {
        run_chunked(GcmDecoder::new(key()), data, 3_000, 2)
    }

    #[test]
    fn layout_is_as_documented() {
        let data = sample_data(3 * 4096, 1);
        let enc = encode(&data, 4096);
        assert_eq!(enc[..8], MAGIC);
        assert_eq!(enc[8..12], 4096u32.to_be_bytes());
        // Exact multiple: three full frames, the third one final.
        assert_eq!(enc.len(), HEADER_LEN + 3 * (4096 + GCM_TAG));
        assert_eq!(decode(&enc).unwrap(), data);
        // Empty input: header plus one empty final frame.
        let empty = encode(&[], 4096);
        assert_eq!(empty.len(), HEADER_LEN + GCM_TAG);
        assert_eq!(decode(&empty).unwrap(), b"");
    }

    #[test]
    fn tampering_is_detected() {
        let data = sample_data(10_000, 2);
        let enc = encode(&data, 4096);
        let frame = 4096 + GCM_TAG;
        // A flipped ciphertext bit.
        let mut bad = enc.clone();
        bad[HEADER_LEN + 100] ^= 1;
        assert!(decode(&bad).is_err());
        // Header fields are authenticated.
        let mut bad = enc.clone();
        bad[15] ^= 1;
        assert!(decode(&bad).is_err());
        // Dropping the final frame (truncation at a frame boundary).
        assert!(decode(&enc[..HEADER_LEN + 2 * frame]).is_err());
        // Swapping two frames.
        let mut swapped = enc[..HEADER_LEN].to_vec();
        swapped.extend_from_slice(&enc[HEADER_LEN + frame..HEADER_LEN + 2 * frame]);
        swapped.extend_from_slice(&enc[HEADER_LEN..HEADER_LEN + frame]);
        swapped.extend_from_slice(&enc[HEADER_LEN + 2 * frame..]);
        assert!(decode(&swapped).is_err());
        // Wrong key.
        let other = run_chunked(GcmDecoder::new(Key::from_bytes(&[8; 32])), &enc, 5000, 0);
        assert!(other.is_err());
        // A CTR stream or garbage is refused by magic.
        let Err(Error::Other(msg)) = decode(&[0u8; 64]) else {
            panic!("expected bad magic")
        };
        assert!(msg.contains("magic"), "{msg}");
        // Header only.
        assert!(decode(&enc[..HEADER_LEN]).is_err());
    }

    #[test]
    fn hostile_frame_size_is_refused() {
        let mut enc = encode(b"hello", 4096);
        enc[8..12].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(decode(&enc).is_err());
    }
}
