//! The `codec` world: traits for plugin authors and the glue to the generated bindings.

use std::cell::RefCell;
use std::fmt;
use std::marker::PhantomData;

use crate::crypto::Key;
use crate::wit::codec_world::aerospike::backup_plugin::{crypto as wit_crypto, types as wit};
use crate::wit::codec_world::exports::aerospike::backup_plugin::{codec as wit_codec, plugin};
use crate::{API_VERSION, Error, Plugin, Result};

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

/// A codec plugin: builds encoders and decoders from options and key handles.
pub trait Codec: Plugin {
    /// Stream encoder (e.g. compressor).
    type Encoder: Transform;
    /// Stream decoder; must accept any output of `Encoder`, however it was chunked.
    type Decoder: Transform;

    /// Builds an encoder. `options` is the JSON options text; `keys` the configured key
    /// handles in order (empty when none). Invalid options: [`Error::InvalidConfig`].
    fn encoder(options: &str, keys: Vec<Key>) -> Result<Self::Encoder>;

    /// Builds a decoder (same arguments as [`Codec::encoder`]).
    fn decoder(options: &str, keys: Vec<Key>) -> Result<Self::Decoder>;
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

impl<C: Codec> plugin::Guest for CodecExport<C> {
    fn info() -> wit::PluginInfo {
        wit::PluginInfo {
            name: C::NAME.to_owned(),
            kind: wit::PluginKind::Codec,
            version: C::VERSION.to_owned(),
            api_version: API_VERSION.to_owned(),
            options_schema: C::OPTIONS_SCHEMA.to_owned(),
        }
    }

    fn validate_options(options: String) -> Result<(), wit::Error> {
        C::validate_options(&options).map_err(Into::into)
    }
}

impl<C: Codec> wit_codec::Guest for CodecExport<C> {
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
pub struct EncoderGlue<C: Codec>(Slot<C::Encoder>);

/// The `decoder` resource of `export_plugin!(codec: C)`.
#[doc(hidden)]
pub struct DecoderGlue<C: Codec>(Slot<C::Decoder>);

impl<C: Codec> fmt::Debug for EncoderGlue<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EncoderGlue({})", C::NAME)
    }
}

impl<C: Codec> fmt::Debug for DecoderGlue<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DecoderGlue({})", C::NAME)
    }
}

impl<C: Codec> wit_codec::GuestEncoder for EncoderGlue<C> {
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

impl<C: Codec> wit_codec::GuestDecoder for DecoderGlue<C> {
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
