//! Items the `export_plugin!` expansion needs; not part of the public API.

pub use wit_bindgen;

#[cfg(feature = "codec")]
pub use crate::codec::{AnyCodec, CodecExport, DecoderGlue, EncoderGlue, Keyless, WithKeys};
#[cfg(feature = "storage")]
pub use crate::storage::{BackendGlue, DownloadGlue, StorageExport, UploadGlue};

#[cfg(all(feature = "codec", target_arch = "wasm32"))]
pub use crate::wit::codec_world::export_codec_world;
#[cfg(all(feature = "storage", target_arch = "wasm32"))]
pub use crate::wit::storage_world::export_storage_world;

/// Native stand-in for the export: proves the type implements the trait, so a plugin's
/// `cargo test`/`clippy` on the host target checks what the wasm build would export.
#[cfg(feature = "codec")]
pub const fn assert_codec<C: crate::Codec>() {}
#[cfg(feature = "codec")]
pub const fn assert_keyed_codec<C: crate::KeyedCodec>() {}
#[cfg(feature = "storage")]
pub const fn assert_storage<S: crate::Storage>() {}
