//! Native test helpers for plugin authors (not available in a component).
//!
//! They drive a codec the way the host does (options text parsed by the SDK, random chunk
//! boundaries, empty input), so a codec's format logic is tested with `cargo test` on the
//! host target, and [`check_options_schema`] proves the derived schema's `default`s and
//! `examples` are options the plugin accepts (what `plugin check` will use).

#[cfg(feature = "codec")]
pub use codec_tests::*;

use crate::{Error, Plugin, Result, options};

/// Checks what the service and `plugin check` read from [`Plugin::options_schema`]: it is a
/// JSON object schema; every top-level `examples` entry is accepted by the plugin
/// ([`options::load`]); so is the object of the properties' `default`s when no required
/// property lacks one. Returns the options documents it tried.
pub fn check_options_schema<P: Plugin>() -> Result<Vec<serde_json::Value>> {
    let text = P::options_schema();
    let schema: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::other(format!("options schema is not JSON: {e}")))?;
    if schema.get("type").and_then(|t| t.as_str()) != Some("object") {
        return Err(Error::other(format!(
            "options schema must describe a JSON object: {text}"
        )));
    }
    let mut tried = Vec::new();
    for example in schema
        .get("examples")
        .and_then(|e| e.as_array())
        .into_iter()
        .flatten()
    {
        options::load::<P>(&example.to_string())
            .map_err(|e| Error::other(format!("schema example {example} is refused: {e}")))?;
        tried.push(example.clone());
    }
    let defaults: serde_json::Map<String, serde_json::Value> = schema
        .get("properties")
        .and_then(|p| p.as_object())
        .into_iter()
        .flatten()
        .filter_map(|(name, prop)| Some((name.clone(), prop.get("default")?.clone())))
        .collect();
    let required_without_default = schema
        .get("required")
        .and_then(|r| r.as_array())
        .into_iter()
        .flatten()
        .filter_map(|r| r.as_str())
        .any(|r| !defaults.contains_key(r));
    if !required_without_default {
        let doc = serde_json::Value::Object(defaults);
        options::load::<P>(&doc.to_string())
            .map_err(|e| Error::other(format!("the schema's defaults {doc} are refused: {e}")))?;
        tried.push(doc);
    }
    Ok(tried)
}

#[cfg(feature = "codec")]
mod codec_tests {
    use rand::{Rng, SeedableRng, rngs::StdRng};

    use crate::codec::{AnyCodec, Keyless, WithKeys};
    use crate::crypto::Key;
    use crate::{Codec, KeyedCodec, Result, Transform};

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
    /// encoded form; fails if the decoded bytes differ from `data`. `options` is the JSON
    /// text a configuration would carry; the SDK parses and checks it as in the service.
    pub fn round_trip<C: Codec>(
        options: &str,
        data: &[u8],
        max_chunk: usize,
        seed: u64,
    ) -> Result<Vec<u8>> {
        round_trip_any::<Keyless<C>>(options, Vec::new, data, max_chunk, seed)
    }

    /// [`round_trip`] for a [`KeyedCodec`]: `keys` builds the key list for each side (keys
    /// are not `Clone`, like host handles), e.g. `|| vec![Key::from_bytes(&[7; 32])]`.
    pub fn round_trip_keyed<C: KeyedCodec>(
        options: &str,
        keys: impl Fn() -> Vec<Key>,
        data: &[u8],
        max_chunk: usize,
        seed: u64,
    ) -> Result<Vec<u8>> {
        round_trip_any::<WithKeys<C>>(options, keys, data, max_chunk, seed)
    }

    /// An encoder made as the service makes it (options text parsed and checked).
    pub fn encoder<C: Codec>(options: &str) -> Result<C::Encoder> {
        Keyless::<C>::encoder(options, Vec::new())
    }

    /// A decoder made as the service makes it.
    pub fn decoder<C: Codec>(options: &str) -> Result<C::Decoder> {
        Keyless::<C>::decoder(options, Vec::new())
    }

    /// An encoder of a keyed codec made as the service makes it.
    pub fn keyed_encoder<C: KeyedCodec>(options: &str, keys: Vec<Key>) -> Result<C::Encoder> {
        WithKeys::<C>::encoder(options, keys)
    }

    /// A decoder of a keyed codec made as the service makes it.
    pub fn keyed_decoder<C: KeyedCodec>(options: &str, keys: Vec<Key>) -> Result<C::Decoder> {
        WithKeys::<C>::decoder(options, keys)
    }

    fn round_trip_any<A: AnyCodec>(
        options: &str,
        keys: impl Fn() -> Vec<Key>,
        data: &[u8],
        max_chunk: usize,
        seed: u64,
    ) -> Result<Vec<u8>> {
        let encoded = run_chunked(A::encoder(options, keys())?, data, max_chunk, seed)?;
        let decoded = run_chunked(
            A::decoder(options, keys())?,
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

/// A storage backend made as the service makes it: `options` (JSON text) parsed and
/// checked by the SDK, then [`Storage::create`](crate::Storage::create).
#[cfg(feature = "storage")]
pub fn storage<S: crate::Storage>(options: &str, secrets: Vec<(String, String)>) -> Result<S> {
    S::create(options::load::<S>(options)?, secrets)
}
