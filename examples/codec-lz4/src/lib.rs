//! Example codec plugin: LZ4 compression in the Aerospike Backup Service pipeline.
//!
//! Build: `cargo build --release --target wasm32-wasip2` (see docs/PLUGINS.md).
//! Use:   `pipeline: [{plugin: codec-lz4, options: {block-size: 1048576}}]`.
//!
//! Stream format (our own, simple and streamable; not the `.lz4` frame format):
//!
//! ```text
//! "ABL4" 0x01                                   magic + format version
//! { raw_len: u32 BE, packed_len: u32 BE, lz4 block of packed_len bytes }*   raw_len > 0
//! 0u32 BE                                       end marker (detects truncation)
//! ```

use aerospike_backup_plugin::{Codec, Error, Plugin, Result, Transform, export_plugin};
use schemars::JsonSchema;
use serde::Deserialize;

const MAGIC: [u8; 5] = *b"ABL4\x01";
const DEFAULT_BLOCK: u32 = 1 << 20;
const MIN_BLOCK: u32 = 4096;
/// Also the decoder's bound on a block's declared size, so a corrupt header cannot make it
/// allocate more than this.
const MAX_BLOCK: u32 = 16 << 20;

/// The options. The SDK parses the JSON into this type and derives the `options-schema`
/// of `plugin-info` from it: doc comments become descriptions, `default`s and `range`s
/// become `default`/`minimum`/`maximum`, `deny_unknown_fields` rejects misspellings.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[schemars(title = "codec-lz4 options")]
pub struct Options {
    /// Uncompressed bytes per LZ4 block.
    #[serde(default = "default_block")]
    #[schemars(range(min = MIN_BLOCK, max = MAX_BLOCK))]
    block_size: u32,
}

fn default_block() -> u32 {
    DEFAULT_BLOCK
}

/// The exported plugin.
#[derive(Debug)]
pub struct Lz4;

impl Plugin for Lz4 {
    const NAME: &'static str = "codec-lz4";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    type Options = Options;

    /// The schema says the same; this check is what runs inside the plugin.
    fn check_options(o: &Options) -> Result<()> {
        if !(MIN_BLOCK..=MAX_BLOCK).contains(&o.block_size) {
            return Err(Error::invalid_config(format!(
                "block-size: {} is outside {MIN_BLOCK}..={MAX_BLOCK}",
                o.block_size
            )));
        }
        Ok(())
    }
}

impl Codec for Lz4 {
    type Encoder = Lz4Encoder;
    type Decoder = Lz4Decoder;

    fn encoder(o: &Options) -> Result<Lz4Encoder> {
        Ok(Lz4Encoder {
            block: o.block_size as usize,
            pending: Vec::new(),
            started: false,
        })
    }

    fn decoder(_: &Options) -> Result<Lz4Decoder> {
        Ok(Lz4Decoder {
            buf: Vec::new(),
            magic_seen: false,
            ended: false,
        })
    }
}

/// Buffers input into blocks of `block` bytes and compresses each one.
#[derive(Debug)]
pub struct Lz4Encoder {
    block: usize,
    pending: Vec<u8>,
    started: bool,
}

impl Lz4Encoder {
    fn begin(&mut self) -> Vec<u8> {
        if std::mem::replace(&mut self.started, true) {
            Vec::new()
        } else {
            MAGIC.to_vec()
        }
    }
}

fn put_block(out: &mut Vec<u8>, raw: &[u8]) {
    let packed = lz4_flex::block::compress(raw);
    out.extend_from_slice(&(raw.len() as u32).to_be_bytes());
    out.extend_from_slice(&(packed.len() as u32).to_be_bytes());
    out.extend_from_slice(&packed);
}

impl Transform for Lz4Encoder {
    fn push(&mut self, chunk: Vec<u8>) -> Result<Vec<u8>> {
        let mut out = self.begin();
        self.pending.extend_from_slice(&chunk);
        let full = self.pending.len() / self.block * self.block;
        for raw in self.pending[..full].chunks(self.block) {
            put_block(&mut out, raw);
        }
        self.pending.drain(..full);
        Ok(out)
    }

    fn finish(mut self) -> Result<Vec<u8>> {
        let mut out = self.begin();
        if !self.pending.is_empty() {
            put_block(&mut out, &self.pending);
        }
        out.extend_from_slice(&0u32.to_be_bytes());
        Ok(out)
    }
}

/// Collects whole blocks and decompresses them.
#[derive(Debug)]
pub struct Lz4Decoder {
    buf: Vec<u8>,
    magic_seen: bool,
    ended: bool,
}

impl Transform for Lz4Decoder {
    fn push(&mut self, chunk: Vec<u8>) -> Result<Vec<u8>> {
        self.buf.extend_from_slice(&chunk);
        let mut out = Vec::new();
        let mut pos = 0;
        if !self.magic_seen {
            if self.buf.len() < MAGIC.len() {
                return Ok(out);
            }
            if self.buf[..MAGIC.len()] != MAGIC {
                return Err(Error::other("not a codec-lz4 stream (bad magic)"));
            }
            self.magic_seen = true;
            pos = MAGIC.len();
        }
        loop {
            let rest = &self.buf[pos..];
            if self.ended {
                if !rest.is_empty() {
                    return Err(Error::other("codec-lz4: data after the end marker"));
                }
                break;
            }
            let Some(raw_len) = rest.get(..4).map(be32) else {
                break;
            };
            if raw_len == 0 {
                self.ended = true;
                pos += 4;
                continue;
            }
            let Some(packed_len) = rest.get(4..8).map(be32) else {
                break;
            };
            if raw_len > MAX_BLOCK
                || packed_len > lz4_flex::block::get_maximum_output_size(MAX_BLOCK as usize) as u32
            {
                return Err(Error::other("codec-lz4: corrupt block header"));
            }
            let Some(packed) = rest.get(8..8 + packed_len as usize) else {
                break;
            };
            let raw = lz4_flex::block::decompress(packed, raw_len as usize)
                .map_err(|e| Error::other(format!("codec-lz4: {e}")))?;
            if raw.len() != raw_len as usize {
                return Err(Error::other("codec-lz4: block size mismatch"));
            }
            out.extend_from_slice(&raw);
            pos += 8 + packed_len as usize;
        }
        self.buf.drain(..pos);
        Ok(out)
    }

    fn finish(self) -> Result<Vec<u8>> {
        if self.ended {
            Ok(Vec::new())
        } else {
            Err(Error::other(
                "codec-lz4 stream is truncated (no end marker)",
            ))
        }
    }
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

export_plugin!(codec: Lz4);

#[cfg(test)]
mod tests {
    use super::*;
    use aerospike_backup_plugin::options::load;
    use aerospike_backup_plugin::testing::{
        check_options_schema, decoder, encoder, round_trip, run_chunked, sample_data,
    };

    #[test]
    fn round_trips() {
        for (len, seed) in [(0, 1), (1, 2), (4096, 3), (2_500_000, 4)] {
            let data = sample_data(len, seed);
            let enc = round_trip::<Lz4>("{}", &data, 500_000, seed).unwrap();
            assert_eq!(enc[..5], MAGIC);
            round_trip::<Lz4>(r#"{"block-size": 4096}"#, &data, 3000, seed).unwrap();
        }
    }

    #[test]
    fn truncation_and_garbage_fail() {
        let data = sample_data(100_000, 5);
        let enc = run_chunked(encoder::<Lz4>("{}").unwrap(), &data, 9999, 1).unwrap();
        let dec = || decoder::<Lz4>("{}").unwrap();
        assert!(run_chunked(dec(), &enc[..enc.len() - 4], 1000, 1).is_err());
        assert!(run_chunked(dec(), &enc[..enc.len() - 100], 1000, 1).is_err());
        assert!(run_chunked(dec(), b"hello world", 3, 1).is_err());
        let mut extra = enc.clone();
        extra.push(0);
        assert!(run_chunked(dec(), &extra, 1000, 1).is_err());
    }

    #[test]
    fn options_are_checked() {
        assert!(load::<Lz4>(r#"{"block-size": 100}"#).is_err());
        assert!(load::<Lz4>(r#"{"block-size": 65536}"#).is_ok());
        assert!(load::<Lz4>(r#"{"block_size": 65536}"#).is_err());
        // The defaults in the derived schema are options the codec accepts.
        assert_eq!(
            check_options_schema::<Lz4>().unwrap(),
            [serde_json::json!({"block-size": DEFAULT_BLOCK})]
        );
    }
}
