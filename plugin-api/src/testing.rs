//! Native test helpers for plugin authors (not available in a component).
//!
//! They drive a codec the way the host does (random chunk boundaries, empty input), so a
//! codec's format logic is tested with `cargo test` on the host target.

#[cfg(feature = "codec")]
pub use codec_tests::*;

#[cfg(feature = "codec")]
mod codec_tests {
    use rand::{Rng, SeedableRng, rngs::StdRng};

    use crate::crypto::Key;
    use crate::{Codec, Result, Transform};

    /// Feeds `data` to `t` in chunks whose sizes are drawn from `0..=max_chunk` by a
    /// generator seeded with `seed` (so a failure is reproducible), then finishes.
    pub fn run_chunked<T: Transform>(
        mut t: T,
        data: &[u8],
        max_chunk: usize,
        seed: u64,
    ) -> Result<Vec<u8>> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut out = Vec::new();
        let mut rest = data;
        while !rest.is_empty() {
            let n = rng.gen_range(0..=max_chunk.max(1)).min(rest.len());
            let (chunk, tail) = rest.split_at(n);
            out.extend(t.push(chunk.to_vec())?);
            rest = tail;
        }
        out.extend(t.finish()?);
        Ok(out)
    }

    /// Encodes then decodes `data` with independent random chunkings and returns the
    /// encoded form; fails if the decoded bytes differ from `data`.
    /// `keys` builds the key list for each side (keys are not `Clone`, like host handles).
    pub fn round_trip<C: Codec>(
        options: &str,
        keys: impl Fn() -> Vec<Key>,
        data: &[u8],
        max_chunk: usize,
        seed: u64,
    ) -> Result<Vec<u8>> {
        let encoded = run_chunked(C::encoder(options, keys())?, data, max_chunk, seed)?;
        let decoded = run_chunked(
            C::decoder(options, keys())?,
            &encoded,
            max_chunk,
            seed.wrapping_add(1),
        )?;
        if decoded != data {
            return Err(crate::Error::other(format!(
                "round trip changed the data ({} bytes in, {} bytes out)",
                data.len(),
                decoded.len()
            )));
        }
        Ok(encoded)
    }

    /// Deterministic test data: text-like runs mixed with random bytes, like a backup.
    pub fn sample_data(len: usize, seed: u64) -> Vec<u8> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut v = Vec::with_capacity(len);
        while v.len() < len {
            if rng.gen_bool(0.5) {
                let line = format!(
                    "+ k S 10 user-{:08}\n- S name 5 alice\n",
                    rng.r#gen::<u32>()
                );
                v.extend_from_slice(line.as_bytes());
            } else {
                let n = rng.gen_range(1..64);
                v.extend((0..n).map(|_| rng.r#gen::<u8>()));
            }
        }
        v.truncate(len);
        v
    }
}
