//! `compression-zstd`: Zstandard streams, as asbackup / ABS `compression.mode: ZSTD` write
//! them (BACKUP-FORMAT.md §3): one zstd stream per file; the decoder also accepts
//! concatenated frames (a resumed asbackup appends a new frame).

use aerospike_backup_plugin::{Codec, Error, Plugin, Result, Transform, export_plugin};
use schemars::JsonSchema;
use serde::Deserialize;
use zstd::stream::raw::{Decoder, Encoder, InBuffer, Operation, OutBuffer};
use zstd::zstd_safe::CParameter;

mod ring;

/// Lowest and highest levels libzstd accepts (negative = faster "fast" levels).
const MIN_LEVEL: i32 = -131_072;
const MAX_LEVEL: i32 = 22;
/// Output grows in steps of this much; about one zstd block, so a 1 MiB chunk needs a
/// handful of reallocations, not hundreds.
const OUT_STEP: usize = 128 * 1024;

/// The encoder's and decoder's options; the schema in `plugin-info` is derived from it.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[schemars(title = "compression-zstd options")]
pub struct Options {
    /// zstd compression level (ABS compression.level); 3 is asbackup's default. Ignored by
    /// the decoder.
    #[serde(default = "default_level")]
    #[schemars(range(min = MIN_LEVEL, max = MAX_LEVEL))]
    level: i32,
    /// Append a 32-bit content checksum to each frame (verified on decode).
    #[serde(default)]
    checksum: bool,
}

fn default_level() -> i32 {
    3
}

/// The plugin type exported below.
#[derive(Debug)]
pub struct Zstd;

impl Plugin for Zstd {
    const NAME: &'static str = "compression-zstd";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    type Options = Options;

    fn check_options(o: &Options) -> Result<()> {
        if !(MIN_LEVEL..=MAX_LEVEL).contains(&o.level) {
            return Err(Error::invalid_config(format!(
                "level: {} is outside {MIN_LEVEL}..={MAX_LEVEL}",
                o.level
            )));
        }
        Ok(())
    }
}

impl Codec for Zstd {
    type Encoder = ZstdEncoder;
    type Decoder = ZstdDecoder;

    fn encoder(o: &Options) -> Result<ZstdEncoder> {
        if let Some(params) = ring::ring_params(o.level, o.checksum) {
            return Ok(ZstdEncoder::Ring(
                ring::RingEncoder::new(params)?,
                o.clone(),
            ));
        }
        Ok(ZstdEncoder::Buffered(buffered(o)?))
    }

    fn decoder(_: &Options) -> Result<ZstdDecoder> {
        Ok(ZstdDecoder {
            raw: Decoder::new().map_err(Error::other)?,
            mid_frame: false,
        })
    }
}

fn buffered(o: &Options) -> Result<Encoder<'static>> {
    let mut raw = Encoder::new(o.level).map_err(Error::other)?;
    raw.set_parameter(CParameter::ChecksumFlag(o.checksum))
        .map_err(Error::other)?;
    Ok(raw)
}

/// Streaming compressor: one frame for the whole stream.
pub enum ZstdEncoder {
    /// Fast levels (≤ 4): libzstd's buffer-less API over a ring of four windows
    /// (see `ring.rs`: same frames, ~15–25% less CPU).
    /// The options are kept for an empty stream (see `finish`).
    Ring(ring::RingEncoder, Options),
    /// Other levels: libzstd's buffered streaming API.
    Buffered(Encoder<'static>),
}

impl std::fmt::Debug for ZstdEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ZstdEncoder::Ring(r, _) => r.fmt(f),
            ZstdEncoder::Buffered(_) => f.write_str("ZstdEncoder::Buffered"),
        }
    }
}

impl Transform for ZstdEncoder {
    fn push(&mut self, chunk: Vec<u8>) -> Result<Vec<u8>> {
        let raw = match self {
            ZstdEncoder::Ring(r, _) => return r.push(&chunk),
            ZstdEncoder::Buffered(raw) => raw,
        };
        let mut out = Vec::new();
        let mut input = InBuffer::around(&chunk);
        while input.pos() < chunk.len() {
            run_step(&mut out, |ob| raw.run(&mut input, ob))?;
        }
        Ok(out)
    }

    fn finish(self) -> Result<Vec<u8>> {
        let mut raw = match self {
            ZstdEncoder::Ring(r, _) if r.started() => return r.finish(),
            // An empty stream: the buffered API's frame (content size 0, tiny tables), as
            // before the ring existed; initialising level-sized tables would cost ~0.4 ms.
            ZstdEncoder::Ring(_, o) => buffered(&o)?,
            ZstdEncoder::Buffered(raw) => raw,
        };
        let mut out = Vec::new();
        loop {
            let mut remaining = 0;
            run_step(&mut out, |ob| {
                remaining = raw.finish(ob, true)?;
                Ok(remaining)
            })?;
            if remaining == 0 {
                return Ok(out);
            }
        }
    }
}

/// Streaming decompressor that accepts any number of concatenated frames.
pub struct ZstdDecoder {
    raw: Decoder<'static>,
    /// True while a frame has started but not ended: end of input then means truncation.
    mid_frame: bool,
}

impl std::fmt::Debug for ZstdDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZstdDecoder")
            .field("mid_frame", &self.mid_frame)
            .finish()
    }
}

impl Transform for ZstdDecoder {
    fn push(&mut self, chunk: Vec<u8>) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut input = InBuffer::around(&chunk);
        loop {
            let before = input.pos();
            let (hint, filled) = run_step(&mut out, |ob| self.raw.run(&mut input, ob))?;
            // libzstd returns 0 exactly when a frame is complete and flushed; the next
            // bytes (if any) start a new frame.
            if hint == 0 {
                self.mid_frame = false;
            } else if input.pos() > before {
                self.mid_frame = true;
            }
            // Stop when the input is consumed and the decoder did not fill the output
            // buffer (a full buffer may mean more output is pending).
            if input.pos() == chunk.len() && !filled {
                return Ok(out);
            }
        }
    }

    fn finish(self) -> Result<Vec<u8>> {
        if self.mid_frame {
            Err(Error::other(
                "zstd stream is truncated (the last frame is incomplete)",
            ))
        } else {
            Ok(Vec::new())
        }
    }
}

/// Runs one libzstd step writing into the spare capacity of `out`; returns the step's
/// result and whether it filled all the space it was given.
fn run_step(
    out: &mut Vec<u8>,
    step: impl FnOnce(&mut OutBuffer<'_, Vec<u8>>) -> std::io::Result<usize>,
) -> Result<(usize, bool)> {
    out.reserve(OUT_STEP);
    let start = out.len();
    let mut ob = OutBuffer::around_pos(out, start);
    let r = step(&mut ob).map_err(|e| Error::other(format!("zstd: {e}")))?;
    let filled = ob.pos() == ob.capacity();
    Ok((r, filled))
}

export_plugin!(codec: Zstd);

#[cfg(test)]
mod tests {
    use super::*;
    use aerospike_backup_plugin::options::load;
    use aerospike_backup_plugin::testing::{
        check_options_schema, decoder, encoder, round_trip, run_chunked, sample_data,
    };

    fn encode(data: &[u8], opts: &str) -> Vec<u8> {
        run_chunked(encoder::<Zstd>(opts).unwrap(), data, 70_000, 1).unwrap()
    }

    fn decode(data: &[u8], max_chunk: usize) -> Result<Vec<u8>> {
        run_chunked(decoder::<Zstd>("{}").unwrap(), data, max_chunk, 2)
    }

    #[test]
    fn round_trips_with_random_chunking() {
        for (len, seed) in [(0, 1), (1, 2), (1000, 3), (3 << 20, 4)] {
            let data = sample_data(len, seed);
            for opts in [
                "{}",
                r#"{"level": 1}"#,
                r#"{"level": 19, "checksum": true}"#,
            ] {
                round_trip::<Zstd>(opts, &data, 300_000, seed).unwrap();
            }
        }
    }

    #[test]
    fn output_is_standard_zstd() {
        let data = sample_data(500_000, 9);
        let enc = encode(&data, r#"{"level": 3}"#);
        assert_eq!(&enc[..4], &[0x28, 0xb5, 0x2f, 0xfd], "zstd frame magic");
        assert!(enc.len() < data.len());
        assert_eq!(zstd::decode_all(&enc[..]).unwrap(), data);
        // And frames from the reference (non-streaming) API decode here.
        let reference = zstd::encode_all(&data[..], 5).unwrap();
        assert_eq!(decode(&reference, 4096).unwrap(), data);
    }

    #[test]
    fn decodes_concatenated_frames() {
        let a = sample_data(100_000, 1);
        let b = sample_data(50_000, 2);
        let mut stream = encode(&a, "{}");
        stream.extend(encode(&b, "{}"));
        let mut both = a.clone();
        both.extend(&b);
        for chunk in [1, 7, 4096, 1 << 20] {
            assert_eq!(decode(&stream, chunk).unwrap(), both, "chunk {chunk}");
        }
    }

    #[test]
    fn highly_compressible_chunk_expands_fully() {
        let data = vec![b'a'; 8 << 20];
        let enc = encode(&data, "{}");
        assert!(enc.len() < 4096);
        // The whole stream in one push must come back in one piece.
        let mut d = decoder::<Zstd>("{}").unwrap();
        let out = d.push(enc).unwrap();
        assert_eq!(out.len(), data.len());
        assert!(d.finish().unwrap().is_empty());
    }

    #[test]
    fn truncated_and_corrupt_streams_fail() {
        let data = sample_data(200_000, 5);
        let enc = encode(&data, "{}");
        let err = decode(&enc[..enc.len() - 3], 10_000).unwrap_err();
        assert!(
            matches!(err, Error::Other(ref m) if m.contains("truncated")),
            "{err:?}"
        );
        let mut bad = enc.clone();
        bad[0] ^= 0xff;
        assert!(decode(&bad, 10_000).is_err());
    }

    #[test]
    fn ring_is_used_for_fast_levels_only() {
        for level in [-5, 1, 3, 4] {
            let e = encoder::<Zstd>(&format!(r#"{{"level": {level}}}"#)).unwrap();
            assert!(matches!(e, ZstdEncoder::Ring(..)), "level {level}");
        }
        for level in [5, 9, 19] {
            let e = encoder::<Zstd>(&format!(r#"{{"level": {level}}}"#)).unwrap();
            assert!(matches!(e, ZstdEncoder::Buffered(_)), "level {level}");
        }
    }

    /// Enough data to wrap the ring (4 windows = 8 MiB at level 3) several times, pushed
    /// in random chunks (partial blocks, pieces that straddle the wrap) and in chunks
    /// larger than the ring; libzstd's own decoder must give the input back.
    #[test]
    fn ring_wraps_and_round_trips() {
        let data = sample_data(40 << 20, 11);
        for (opts, max_chunk) in [
            (r#"{"level": 3}"#, 1_500_000),
            (r#"{"level": 3, "checksum": true}"#, 300_000),
            (r#"{"level": 3}"#, 16 << 20),
            (r#"{"level": 1}"#, 1 << 20),
        ] {
            let enc = run_chunked(encoder::<Zstd>(opts).unwrap(), &data, max_chunk, 7).unwrap();
            assert!(enc.len() < data.len());
            assert!(
                zstd::decode_all(&enc[..]).unwrap() == data,
                "{opts} {max_chunk}"
            );
        }
        // Exactly one window, a ring and a half, in one push.
        for len in [2 << 20, 12 << 20] {
            let mut e = encoder::<Zstd>("{}").unwrap();
            let mut enc = e.push(data[..len].to_vec()).unwrap();
            enc.extend(e.finish().unwrap());
            assert!(zstd::decode_all(&enc[..]).unwrap() == data[..len], "{len}");
        }
    }

    #[test]
    fn empty_stream_is_one_empty_frame() {
        let e = encoder::<Zstd>("{}").unwrap();
        let enc = e.finish().unwrap();
        assert_eq!(&enc[..4], &[0x28, 0xb5, 0x2f, 0xfd]);
        assert!(zstd::decode_all(&enc[..]).unwrap().is_empty());
    }

    #[test]
    fn options_are_checked() {
        assert!(load::<Zstd>(r#"{"level": 23}"#).is_err());
        assert!(load::<Zstd>(r#"{"lvl": 3}"#).is_err());
        assert!(load::<Zstd>(r#"{"level": -5}"#).is_ok());
        assert!(load::<Zstd>("").is_ok());
        let schema: serde_json::Value = serde_json::from_str(&Zstd::options_schema()).unwrap();
        assert_eq!(schema["properties"]["level"]["maximum"], MAX_LEVEL);
        assert_eq!(schema["properties"]["level"]["default"], 3);
        assert_eq!(check_options_schema::<Zstd>().unwrap().len(), 1);
    }
}
