//! The `codec` world: traits for plugin authors and the glue to the generated bindings.

use std::cell::RefCell;
use std::fmt;
use std::marker::PhantomData;

use crate::crypto::Key;
use crate::wit::codec_world::aerospike::backup_plugin::{crypto as wit_crypto, types as wit};
use crate::wit::codec_world::exports::aerospike::backup_plugin::{codec as wit_codec, plugin};
use crate::{API_VERSION, Error, Plugin, Result, options};

/// One direction of a codec over one stream (a file). See the WIT `codec` interface for
/// the full contract; in short:
///
/// - `push` gets chunks of any size (0 bytes to 16 MiB, typically 1 MiB) with meaningless
///   boundaries, and returns whatever output is ready (possibly nothing);
/// - `finish` returns the rest; it is called once, and the SDK never calls the transform
///   again after `finish` or after any error;
/// - the concatenation of all outputs is the result.
pub trait Transform: 'static {
    /// Consumes the next input chunk.
    fn push(&mut self, chunk: Vec<u8>) -> Result<Vec<u8>>;
    /// Ends the stream.
    fn finish(self) -> Result<Vec<u8>>
    where
        Self: Sized;
}

/// A codec that uses no keys: builds encoders and decoders from its typed options. Keys
/// configured for such a step never reach it. Export it with `export_plugin!(codec: C)`.
pub trait Codec: Plugin {
    /// Stream encoder (e.g. compressor).
    type Encoder: Transform;
    /// Stream decoder; must accept any output of `Encoder`, however it was chunked.
    type Decoder: Transform;

    /// Builds an encoder from options the SDK has already parsed and checked.
    fn encoder(options: &Self::Options) -> Result<Self::Encoder>;

    /// Builds a decoder (same options as the encoder that wrote the stream).
    fn decoder(options: &Self::Options) -> Result<Self::Decoder>;
}

/// A keyless codec whose encoder and decoder are the same transform (XOR, a byte map):
/// implement this instead of [`Codec`] and export it with `export_plugin!(codec: C)`.
pub trait SymmetricCodec: Plugin {
    /// The transform used in both directions.
    type Stream: Transform;

    /// Builds the transform for either direction.
    fn stream(options: &Self::Options) -> Result<Self::Stream>;
}

impl<C: SymmetricCodec> Codec for C {
    type Encoder = C::Stream;
    type Decoder = C::Stream;

    fn encoder(options: &Self::Options) -> Result<C::Stream> {
        C::stream(options)
    }

    fn decoder(options: &Self::Options) -> Result<C::Stream> {
        C::stream(options)
    }
}

/// A codec that uses keys (a cipher, a MAC). Export it with `export_plugin!(keyed_codec: C)`.
pub trait KeyedCodec: Plugin {
    /// The keys it takes: [`Key`] for exactly one, `Vec<Key>` for any number (in
    /// configuration order). The SDK refuses another count with `invalid-config`.
    type Keys: FromKeys;
    /// Stream encoder (e.g. encryptor).
    type Encoder: Transform;
    /// Stream decoder; must accept any output of `Encoder`, however it was chunked.
    type Decoder: Transform;

    /// Builds an encoder from checked options and the configured keys.
    fn encoder(options: &Self::Options, keys: Self::Keys) -> Result<Self::Encoder>;

    /// Builds a decoder (same options and keys as the encoder that wrote the stream).
    fn decoder(options: &Self::Options, keys: Self::Keys) -> Result<Self::Decoder>;
}

/// How a [`KeyedCodec`] receives its keys from the configured list.
pub trait FromKeys: Sized + 'static {
    /// Takes the keys, or says (as `invalid-config`) how many were expected.
    fn from_keys(keys: Vec<Key>) -> Result<Self>;
}

impl FromKeys for Key {
    fn from_keys(keys: Vec<Key>) -> Result<Self> {
        let n = keys.len();
        let mut keys = keys.into_iter();
        match (keys.next(), keys.next()) {
            (Some(k), None) => Ok(k),
            _ => Err(Error::invalid_config(format!(
                "expects exactly one key, got {n}"
            ))),
        }
    }
}

impl FromKeys for Vec<Key> {
    fn from_keys(keys: Vec<Key>) -> Result<Self> {
        Ok(keys)
    }
}

/// The one shape the export glue and the test helpers drive: options text and key list
/// in, a transform out. [`Keyless`] and [`WithKeys`] adapt the public traits to it.
#[doc(hidden)]
pub trait AnyCodec: 'static {
    type Plugin: Plugin;
    type Encoder: Transform;
    type Decoder: Transform;
    fn encoder(options: &str, keys: Vec<Key>) -> Result<Self::Encoder>;
    fn decoder(options: &str, keys: Vec<Key>) -> Result<Self::Decoder>;
}

/// [`AnyCodec`] view of a [`Codec`]: keys are dropped unseen.
#[doc(hidden)]
pub struct Keyless<C>(PhantomData<C>);

impl<C: Codec> AnyCodec for Keyless<C> {
    type Plugin = C;
    type Encoder = C::Encoder;
    type Decoder = C::Decoder;
    fn encoder(options: &str, _keys: Vec<Key>) -> Result<C::Encoder> {
        C::encoder(&options::load::<C>(options)?)
    }
    fn decoder(options: &str, _keys: Vec<Key>) -> Result<C::Decoder> {
        C::decoder(&options::load::<C>(options)?)
    }
}

impl<C> fmt::Debug for Keyless<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Keyless")
    }
}

/// [`AnyCodec`] view of a [`KeyedCodec`].
#[doc(hidden)]
pub struct WithKeys<C>(PhantomData<C>);

impl<C> fmt::Debug for WithKeys<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WithKeys")
    }
}

impl<C: KeyedCodec> AnyCodec for WithKeys<C> {
    type Plugin = C;
    type Encoder = C::Encoder;
    type Decoder = C::Decoder;
    fn encoder(options: &str, keys: Vec<Key>) -> Result<C::Encoder> {
        let options = options::load::<C>(options)?;
        C::encoder(&options, C::Keys::from_keys(keys)?)
    }
    fn decoder(options: &str, keys: Vec<Key>) -> Result<C::Decoder> {
        let options = options::load::<C>(options)?;
        C::decoder(&options, C::Keys::from_keys(keys)?)
    }
}

impl From<Error> for wit::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::NotFound => wit::Error::NotFound,
            Error::Denied => wit::Error::Denied,
            Error::AlreadyExists => wit::Error::AlreadyExists,
            Error::Temporary(m) => wit::Error::Temporary(m),
            Error::Unsupported(m) => wit::Error::Unsupported(m),
            Error::InvalidConfig(m) => wit::Error::InvalidConfig(m),
            Error::Other(m) => wit::Error::Other(m),
        }
    }
}

/// The type `export_plugin!(codec: C)` exports.
#[doc(hidden)]
pub struct CodecExport<C>(PhantomData<C>);

impl<C> fmt::Debug for CodecExport<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CodecExport")
    }
}

impl<C: AnyCodec> plugin::Guest for CodecExport<C> {
    fn info() -> wit::PluginInfo {
        wit::PluginInfo {
            name: <C::Plugin as Plugin>::NAME.to_owned(),
            kind: wit::PluginKind::Codec,
            version: <C::Plugin as Plugin>::VERSION.to_owned(),
            api_version: API_VERSION.to_owned(),
            options_schema: <C::Plugin as Plugin>::options_schema(),
        }
    }

    fn validate_options(options: String) -> Result<(), wit::Error> {
        options::load::<C::Plugin>(&options)
            .map(|_| ())
            .map_err(Into::into)
    }
}

impl<C: AnyCodec> wit_codec::Guest for CodecExport<C> {
    type Encoder = EncoderGlue<C>;
    type Decoder = DecoderGlue<C>;
}

/// Holds a transform between calls. `None` once finished or failed, so that the
/// "never called again" rule of [`Transform`] holds even if a host misbehaves.
struct Slot<T>(RefCell<Option<T>>);

impl<T: Transform> Slot<T> {
    fn new(t: T) -> Self {
        Slot(RefCell::new(Some(t)))
    }

    fn push(&self, chunk: Vec<u8>) -> Result<Vec<u8>, wit::Error> {
        let mut slot = self.0.borrow_mut();
        let t = slot.as_mut().ok_or_else(used_up)?;
        let out = t.push(chunk);
        if out.is_err() {
            *slot = None;
        }
        out.map_err(Into::into)
    }

    fn finish(&self) -> Result<Vec<u8>, wit::Error> {
        let t = self.0.borrow_mut().take().ok_or_else(used_up)?;
        t.finish().map_err(Into::into)
    }
}

fn used_up() -> wit::Error {
    wit::Error::Other("codec stream already finished or failed".to_owned())
}

fn keys_from_host(keys: Vec<wit_crypto::Key>) -> Vec<Key> {
    keys.into_iter().map(Key::from_host).collect()
}

/// The `encoder` resource of `export_plugin!(codec: C)`.
#[doc(hidden)]
pub struct EncoderGlue<C: AnyCodec>(Slot<C::Encoder>);

/// The `decoder` resource of `export_plugin!(codec: C)`.
#[doc(hidden)]
pub struct DecoderGlue<C: AnyCodec>(Slot<C::Decoder>);

impl<C: AnyCodec> fmt::Debug for EncoderGlue<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EncoderGlue({})", <C::Plugin as Plugin>::NAME)
    }
}

impl<C: AnyCodec> fmt::Debug for DecoderGlue<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DecoderGlue({})", <C::Plugin as Plugin>::NAME)
    }
}

impl<C: AnyCodec> wit_codec::GuestEncoder for EncoderGlue<C> {
    fn create(
        options: String,
        keys: Vec<wit_crypto::Key>,
    ) -> Result<wit_codec::Encoder, wit::Error> {
        let enc = C::encoder(&options, keys_from_host(keys))?;
        Ok(wit_codec::Encoder::new(EncoderGlue::<C>(Slot::new(enc))))
    }

    fn push(&self, chunk: Vec<u8>) -> Result<Vec<u8>, wit::Error> {
        self.0.push(chunk)
    }

    fn finish(&self) -> Result<Vec<u8>, wit::Error> {
        self.0.finish()
    }
}

impl<C: AnyCodec> wit_codec::GuestDecoder for DecoderGlue<C> {
    fn create(
        options: String,
        keys: Vec<wit_crypto::Key>,
    ) -> Result<wit_codec::Decoder, wit::Error> {
        let dec = C::decoder(&options, keys_from_host(keys))?;
        Ok(wit_codec::Decoder::new(DecoderGlue::<C>(Slot::new(dec))))
    }

    fn push(&self, chunk: Vec<u8>) -> Result<Vec<u8>, wit::Error> {
        self.0.push(chunk)
    }

    fn finish(&self) -> Result<Vec<u8>, wit::Error> {
        self.0.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fails on a chunk starting with 0xff; counts calls.
    struct Picky(u32);

    impl Transform for Picky {
        fn push(&mut self, chunk: Vec<u8>) -> Result<Vec<u8>> {
            self.0 += 1;
            if chunk.first() == Some(&0xff) {
                Err(Error::other("bad"))
            } else {
                Ok(chunk)
            }
        }
        fn finish(self) -> Result<Vec<u8>> {
            Ok(self.0.to_be_bytes().to_vec())
        }
    }

    /// XOR with a configured byte: one transform both ways.
    struct Xor;
    struct XorStream(u8);

    #[derive(serde::Deserialize, schemars::JsonSchema)]
    #[serde(deny_unknown_fields)]
    struct XorOpts {
        #[serde(default)]
        byte: u8,
    }

    impl Plugin for Xor {
        const NAME: &'static str = "xor";
        const VERSION: &'static str = "0.0.0";
        type Options = XorOpts;
    }

    impl Transform for XorStream {
        fn push(&mut self, mut chunk: Vec<u8>) -> Result<Vec<u8>> {
            chunk.iter_mut().for_each(|b| *b ^= self.0);
            Ok(chunk)
        }
        fn finish(self) -> Result<Vec<u8>> {
            Ok(Vec::new())
        }
    }

    impl SymmetricCodec for Xor {
        type Stream = XorStream;
        fn stream(o: &XorOpts) -> Result<XorStream> {
            Ok(XorStream(o.byte))
        }
    }

    /// XOR with the key's length, to see which keys arrive.
    struct OneKey;

    impl Plugin for OneKey {
        const NAME: &'static str = "one-key";
        const VERSION: &'static str = "0.0.0";
        type Options = XorOpts;
    }

    impl KeyedCodec for OneKey {
        type Keys = Key;
        type Encoder = XorStream;
        type Decoder = XorStream;
        fn encoder(o: &XorOpts, key: Key) -> Result<XorStream> {
            Ok(XorStream(o.byte ^ key.len() as u8))
        }
        fn decoder(o: &XorOpts, key: Key) -> Result<XorStream> {
            Self::encoder(o, key)
        }
    }

    #[test]
    fn typed_options_reach_the_codec_and_keys_only_a_keyed_one() {
        use crate::testing::{round_trip, round_trip_keyed};
        let enc = round_trip::<Xor>(r#"{"byte": 1}"#, b"abc", 2, 1).unwrap();
        assert_eq!(enc, b"`cb");
        // Keys given to a keyless codec never reach it (they are dropped by the adapter).
        let mut e = Keyless::<Xor>::encoder("", vec![Key::from_bytes(&[0; 16])]).unwrap();
        assert_eq!(e.push(vec![5]).unwrap(), [5]);
        assert!(matches!(
            Keyless::<Xor>::encoder(r#"{"byte": 300}"#, vec![]),
            Err(Error::InvalidConfig(m)) if m.starts_with("byte: ")
        ));

        let key = || vec![Key::from_bytes(&[9; 16])];
        let enc = round_trip_keyed::<OneKey>(r#"{"byte": 1}"#, key, b"a", 1, 1).unwrap();
        assert_eq!(enc, [b'a' ^ 1 ^ 16]);
        for n in [0, 2] {
            let keys = (0..n).map(|_| Key::from_bytes(&[1; 16])).collect();
            let Err(Error::InvalidConfig(m)) = WithKeys::<OneKey>::decoder("{}", keys) else {
                panic!("{n} keys accepted");
            };
            assert_eq!(m, format!("expects exactly one key, got {n}"));
        }
    }

    #[test]
    fn stream_is_unusable_after_finish_or_error() {
        let s = Slot::new(Picky(0));
        assert_eq!(s.push(vec![1, 2]).unwrap(), [1, 2]);
        assert_eq!(s.finish().unwrap(), 1u32.to_be_bytes());
        assert!(s.push(vec![1]).is_err());
        assert!(s.finish().is_err());

        let s = Slot::new(Picky(0));
        assert!(matches!(s.push(vec![0xff]), Err(wit::Error::Other(_))));
        assert!(s.push(vec![1]).is_err(), "poisoned after an error");
        assert!(s.finish().is_err());
    }

    #[test]
    fn errors_keep_their_case_across_the_boundary() {
        assert!(
            matches!(wit::Error::from(Error::Temporary("t".into())), wit::Error::Temporary(m) if m == "t")
        );
        assert!(matches!(
            wit::Error::from(Error::InvalidConfig("c".into())),
            wit::Error::InvalidConfig(_)
        ));
        assert!(matches!(
            wit::Error::from(Error::Denied),
            wit::Error::Denied
        ));
    }
}
