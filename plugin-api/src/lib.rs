//! Guest SDK for Aerospike Backup Service plugins.
//!
//! A plugin is a WebAssembly component (target `wasm32-wasip2`) implementing one world of the
//! WIT package `aerospike:backup-plugin@1.0.0` (the `wit/` directory of this crate):
//!
//! - a **codec** (compression, encryption, ...): implement [`Plugin`] + [`Codec`] (or
//!   [`SymmetricCodec`] when encoding and decoding are one transform, like XOR) and call
//!   `export_plugin!(codec: MyCodec);`; a codec that uses keys implements [`KeyedCodec`]
//!   instead and calls `export_plugin!(keyed_codec: MyCipher);`. Feature `codec`;
//! - a **storage** backend: implement [`Plugin`] + [`Storage`] and call
//!   `export_plugin!(storage: MyStorage);` with feature `storage`.
//!
//! Enable exactly one of the features `codec` / `storage` in a plugin crate
//! (`default-features = false`): each embeds its world's type, and a component may
//! implement only one world.
//!
//! Options are a type of the plugin ([`Plugin::Options`], serde + `schemars`): the SDK parses
//! the options JSON into it, runs [`Plugin::check_options`], hands the typed value to the
//! encoder, decoder or backend, and derives the `options-schema` of `plugin-info` from it.
//!
//! The SDK hides the generated bindings, enforces the parts of the contract that can be
//! checked mechanically (object keys, call order after `finish`/errors, idempotent
//! `finish`, abort on drop) and stamps [`API_VERSION`] into `plugin-info`.
//!
//! A storage backend that talks to an object store over HTTP(S) enables feature `http`
//! (which implies `storage`) and uses [`http`]: its component then imports
//! `wasi:http/outgoing-handler`, and the host admits only the backend's `allowed-hosts()`.
//!
//! On a native target the same code compiles for unit tests: [`crypto`] then runs in
//! software over keys made with [`crypto::Key::from_bytes`], and [`testing`] offers
//! round-trip helpers.

// Lets generated code name this crate by its public path from inside it too.
extern crate self as aerospike_backup_plugin;

mod error;
pub mod keys;
pub mod options;

#[cfg(feature = "codec")]
mod codec;
#[cfg(feature = "codec")]
pub mod crypto;
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "storage")]
mod storage;

#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

#[doc(hidden)]
pub mod wit;

#[doc(hidden)]
pub mod __private;

#[cfg(feature = "codec")]
pub use codec::{Codec, FromKeys, KeyedCodec, SymmetricCodec, Transform};
pub use error::{Error, Result};
/// The schema derive the options type uses (`#[derive(schemars::JsonSchema)]`); a plugin may
/// depend on `schemars = "1"` itself or name it through this re-export.
pub use schemars;
#[cfg(feature = "storage")]
pub use storage::{Capabilities, Download, ListPage, ObjectInfo, Storage, Upload, sync_dir};

/// Version of the WIT package this SDK implements; stamped into every `plugin-info`.
/// Kept equal to the `package` line of `wit/*.wit` (checked by a unit test).
pub const API_VERSION: &str = "1.0.0";

/// What every plugin says about itself (exported as `plugin.info` / `validate-options`).
///
/// The options document is a type of yours: the SDK parses the JSON text into
/// [`Plugin::Options`] (misspelt or mistyped options fail naming the option), runs
/// [`Plugin::check_options`], and hands the typed value to your codec or backend. The JSON
/// Schema in `plugin-info` is derived from the same type, so the two cannot drift apart.
///
/// ```ignore
/// #[derive(serde::Deserialize, schemars::JsonSchema)]
/// #[serde(deny_unknown_fields, rename_all = "kebab-case")]
/// pub struct Opts {
///     /// Compression level.
///     #[serde(default = "three")]
///     #[schemars(range(min = 1, max = 9))]
///     level: u8,
/// }
/// ```
pub trait Plugin: 'static {
    /// Registry name, lowercase kebab-case, e.g. `compression-zstd`.
    const NAME: &'static str;
    /// The plugin's own semver version; usually `env!("CARGO_PKG_VERSION")`.
    const VERSION: &'static str;
    /// The options document. Use `#[serde(deny_unknown_fields, rename_all = "kebab-case")]`
    /// so that misspelt options are rejected, and `#[serde(default)]` fields for optional
    /// ones (their defaults appear in the schema, where `plugin check` finds them).
    type Options: serde::de::DeserializeOwned + schemars::JsonSchema;

    /// Rules the type cannot express (ranges, combinations). Runs after parsing, both when
    /// the service validates a configuration and before every encoder, decoder or backend
    /// is made. Name the option in the error: `Error::invalid_config("level: must be ≤ 9")`.
    fn check_options(options: &Self::Options) -> Result<()> {
        let _ = options;
        Ok(())
    }

    /// JSON Schema (draft 2020-12) of the options, as JSON text. Derived from
    /// [`Plugin::Options`]; override only to add what derive attributes cannot say.
    fn options_schema() -> String {
        options::schema_of::<Self::Options>()
    }
}

/// Exports a plugin type as the component's implementation of its world.
///
/// ```ignore
/// aerospike_backup_plugin::export_plugin!(codec: MyCodec);          // impl Codec or SymmetricCodec
/// aerospike_backup_plugin::export_plugin!(keyed_codec: MyCipher);   // impl KeyedCodec
/// aerospike_backup_plugin::export_plugin!(storage: MyStorage);      // impl Storage
/// ```
/// Use it once, at the root of a `cdylib` crate.
#[macro_export]
macro_rules! export_plugin {
    (codec: $ty:ty) => {
        $crate::__export_codec!($crate::__private::Keyless<$ty>);
        #[cfg(not(target_arch = "wasm32"))]
        const _: () = $crate::__private::assert_codec::<$ty>();
    };
    (keyed_codec: $ty:ty) => {
        $crate::__export_codec!($crate::__private::WithKeys<$ty>);
        #[cfg(not(target_arch = "wasm32"))]
        const _: () = $crate::__private::assert_keyed_codec::<$ty>();
    };
    (storage: $ty:ty) => {
        // In a module so the generated unsafe ABI glue does not trip the plugin's lints.
        #[doc(hidden)]
        #[cfg(target_arch = "wasm32")]
        #[allow(unsafe_code, missing_debug_implementations, unused_imports)]
        mod __aerospike_backup_plugin_export {
            use super::*;
            type Export = $crate::__private::StorageExport<$ty>;
            $crate::__private::export_storage_world!(Export with_types_in $crate::wit::storage_world);
        }
        #[cfg(not(target_arch = "wasm32"))]
        const _: () = $crate::__private::assert_storage::<$ty>();
    };
}

/// The codec half of [`export_plugin!`]; `$adapter` is the SDK's view of the codec.
#[doc(hidden)]
#[macro_export]
macro_rules! __export_codec {
    ($adapter:ty) => {
        // In a module so the generated unsafe ABI glue does not trip the plugin's lints.
        #[doc(hidden)]
        #[cfg(target_arch = "wasm32")]
        #[allow(unsafe_code, missing_debug_implementations, unused_imports)]
        mod __aerospike_backup_plugin_export {
            use super::*;
            type Export = $crate::__private::CodecExport<$adapter>;
            $crate::__private::export_codec_world!(Export with_types_in $crate::wit::codec_world);
        }
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn api_version_matches_the_wit_package() {
        let wit = include_str!("../wit/types.wit");
        let expected = format!("package aerospike:backup-plugin@{};", super::API_VERSION);
        assert!(
            wit.lines().any(|l| l.trim() == expected),
            "WIT package line != {expected}"
        );
    }
}
