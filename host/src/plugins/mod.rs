//! Host side of the WASM plugin platform: wasmtime runtime, registry, codec and storage traits.
//!
//! The rest of the service sees only [`Codec`], [`CodecStream`], [`Storage`] and the
//! registry/pipeline API; wasmtime types stay inside this module (DESIGN §2).

mod bindings;
pub mod cli;
pub mod codec;
pub mod crypto;
pub mod error;
pub mod keys;
pub mod layers;
pub mod metrics;
pub mod net;
pub mod pipeline;
pub mod registry;
pub mod runtime;
pub mod stderr;
pub mod storage;
pub mod suite;
pub mod template;

pub use codec::{Codec, CodecStream, Direction};
pub use error::{PluginError, PluginResult};
pub use pipeline::{Chain, CompressionSpec, EncryptionSpec, Pipeline, StepSpec};
pub use registry::{
    PluginInfo, PluginKind, Registry, RegistryError, UserPluginSpec, validate_plugin_options,
};
pub use runtime::{Runtime, RuntimeConfig};
pub use storage::{
    Capabilities, Download, ListPage, ObjectInfo, Storage, StorageSecrets, Upload,
    WasmStoragePlugin,
};
