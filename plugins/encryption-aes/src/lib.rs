//! `encryption-aes`: stream encryption with the AES math done by the host (`crypto` import,
//! AES-NI; the key never enters the sandbox). This crate owns only the file formats:
//!
//! - `aes128-ctr` / `aes256-ctr`: byte-identical to asbackup / backup-go (BACKUP-FORMAT.md
//!   §4), so `asrestore` reads our files and we read theirs. See [`asbackup_ctr`].
//! - `aes-256-gcm`: authenticated, chunked frames behind a magic header that asrestore
//!   refuses instead of decrypting garbage. See [`gcm`].

pub mod asbackup_ctr;
pub mod gcm;

use aerospike_backup_plugin::crypto::Key;
use aerospike_backup_plugin::{Error, KeyedCodec, Plugin, Result, Transform, export_plugin};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// aes128-ctr/aes256-ctr: asbackup-compatible, unauthenticated; aes-256-gcm: authenticated
/// frames, not readable by asrestore. (ABS `AES128`/`AES256` map to the CTR modes in the host.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum Mode {
    #[serde(rename = "aes128-ctr")]
    Aes128Ctr,
    #[serde(rename = "aes256-ctr")]
    Aes256Ctr,
    #[serde(rename = "aes-256-gcm")]
    Aes256Gcm,
}

/// The options; the schema in `plugin-info` is derived from it.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[schemars(
    title = "encryption-aes options",
    example = Options { mode: Mode::Aes256Gcm, frame_size: None }
)]
pub struct Options {
    /// The encryption mode.
    mode: Mode,
    /// Plaintext bytes per GCM frame (aes-256-gcm only; default 1048576; the decoder reads
    /// it from the header).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = gcm::MIN_FRAME, max = gcm::MAX_FRAME))]
    frame_size: Option<u32>,
}

impl Plugin for Aes {
    const NAME: &'static str = "encryption-aes";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    type Options = Options;

    fn check_options(o: &Options) -> Result<()> {
        match (o.mode, o.frame_size) {
            (Mode::Aes256Gcm, Some(n)) if !(gcm::MIN_FRAME..=gcm::MAX_FRAME).contains(&n) => {
                Err(Error::invalid_config(format!(
                    "frame-size: {n} is outside {}..={}",
                    gcm::MIN_FRAME,
                    gcm::MAX_FRAME
                )))
            }
            (Mode::Aes128Ctr | Mode::Aes256Ctr, Some(_)) => Err(Error::invalid_config(
                "frame-size: only applies to mode aes-256-gcm",
            )),
            _ => Ok(()),
        }
    }
}

/// Takes the single key this codec needs, cut to `len` bytes (asbackup: the first 16 or
/// 32 bytes of the SHA-256 key digest).
fn take_key(keys: Vec<Key>, len: usize) -> Result<Key> {
    let mut keys = keys.into_iter();
    let (Some(key), None) = (keys.next(), keys.next()) else {
        return Err(Error::invalid_config(
            "encryption needs exactly one key (key-file, key-env or key-secret)",
        ));
    };
    if key.len() == len {
        return Ok(key);
    }
    key.truncate(len).map_err(|_| {
        Error::invalid_config(format!(
            "key: {} bytes of key material, need {len}",
            key.len()
        ))
    })
}

/// The plugin type exported below.
#[derive(Debug)]
pub struct Aes;

/// One direction of one of the modes.
#[derive(Debug)]
pub enum Stream<C, G> {
    Ctr(C),
    Gcm(G),
}

impl<C: Transform, G: Transform> Transform for Stream<C, G> {
    fn push(&mut self, chunk: Vec<u8>) -> Result<Vec<u8>> {
        match self {
            Stream::Ctr(s) => s.push(chunk),
            Stream::Gcm(s) => s.push(chunk),
        }
    }

    fn finish(self) -> Result<Vec<u8>> {
        match self {
            Stream::Ctr(s) => s.finish(),
            Stream::Gcm(s) => s.finish(),
        }
    }
}

impl KeyedCodec for Aes {
    // Any number, so a wrong count gets this codec's message naming the config keys.
    type Keys = Vec<Key>;
    type Encoder = Stream<asbackup_ctr::CtrEncoder, gcm::GcmEncoder>;
    type Decoder = Stream<asbackup_ctr::CtrDecoder, gcm::GcmDecoder>;

    fn encoder(o: &Options, keys: Vec<Key>) -> Result<Self::Encoder> {
        Ok(match o.mode {
            Mode::Aes128Ctr => Stream::Ctr(asbackup_ctr::CtrEncoder::new(take_key(keys, 16)?)?),
            Mode::Aes256Ctr => Stream::Ctr(asbackup_ctr::CtrEncoder::new(take_key(keys, 32)?)?),
            Mode::Aes256Gcm => Stream::Gcm(gcm::GcmEncoder::new(
                take_key(keys, 32)?,
                o.frame_size.unwrap_or(gcm::DEFAULT_FRAME),
            )?),
        })
    }

    fn decoder(o: &Options, keys: Vec<Key>) -> Result<Self::Decoder> {
        Ok(match o.mode {
            Mode::Aes128Ctr => Stream::Ctr(asbackup_ctr::CtrDecoder::new(take_key(keys, 16)?)),
            Mode::Aes256Ctr => Stream::Ctr(asbackup_ctr::CtrDecoder::new(take_key(keys, 32)?)),
            Mode::Aes256Gcm => Stream::Gcm(gcm::GcmDecoder::new(take_key(keys, 32)?)),
        })
    }
}

export_plugin!(keyed_codec: Aes);

#[cfg(test)]
mod tests {
    use super::*;
    use aerospike_backup_plugin::options::load;
    use aerospike_backup_plugin::testing::{
        check_options_schema, keyed_decoder, keyed_encoder, round_trip_keyed, sample_data,
    };

    fn key() -> Vec<Key> {
        vec![Key::from_bytes(&(0..32).collect::<Vec<u8>>())]
    }

    #[test]
    fn every_mode_round_trips_with_random_chunking() {
        for mode in ["aes128-ctr", "aes256-ctr", "aes-256-gcm"] {
            let opts = format!(r#"{{"mode": "{mode}"}}"#);
            for (len, seed) in [(0, 1), (1, 2), (4095, 3), (3 << 20, 4)] {
                let data = sample_data(len, seed);
                round_trip_keyed::<Aes>(&opts, key, &data, 700_000, seed).unwrap();
            }
        }
        let small_frames = r#"{"mode": "aes-256-gcm", "frame-size": 4096}"#;
        let data = sample_data(100_000, 7);
        round_trip_keyed::<Aes>(small_frames, key, &data, 5000, 7).unwrap();
    }

    #[test]
    fn keys_are_required_and_sized() {
        let opts = r#"{"mode": "aes256-ctr"}"#;
        assert!(matches!(
            keyed_encoder::<Aes>(opts, vec![]),
            Err(Error::InvalidConfig(_))
        ));
        let short = vec![Key::from_bytes(&[1; 16])];
        assert!(matches!(
            keyed_encoder::<Aes>(opts, short),
            Err(Error::InvalidConfig(_))
        ));
        let two = vec![Key::from_bytes(&[1; 32]), Key::from_bytes(&[2; 32])];
        assert!(matches!(
            keyed_decoder::<Aes>(opts, two),
            Err(Error::InvalidConfig(_))
        ));
    }

    #[test]
    fn options_are_checked() {
        assert!(load::<Aes>(r#"{"mode": "aes256-ctr"}"#).is_ok());
        assert!(load::<Aes>(r#"{"mode": "AES256"}"#).is_err());
        assert!(load::<Aes>("{}").is_err());
        assert!(load::<Aes>(r#"{"mode": "aes-256-gcm", "frame-size": 10}"#).is_err());
        assert!(load::<Aes>(r#"{"mode": "aes128-ctr", "frame-size": 8192}"#).is_err());
        // The schema's example is what `plugin check` uses without --options.
        let tried = check_options_schema::<Aes>().unwrap();
        assert_eq!(tried, [serde_json::json!({"mode": "aes-256-gcm"})]);
    }
}
