//! Generated bindings (hidden: plugin code uses the SDK types, never these).
//!
//! One module per world, behind its feature, because each embeds its world's component
//! type and a component may carry only the world it implements. In a wasm build the
//! export macros are `#[macro_export]`ed for `export_plugin!`; both worlds' macros share
//! the names of the common `plugin` interface, so a wasm build takes exactly one feature.
//! Native builds (tests, clippy) keep the macros crate-local and may enable both.

#[cfg(all(target_arch = "wasm32", feature = "codec", feature = "storage"))]
compile_error!(
    "aerospike-backup-plugin: enable exactly one of the features `codec` or `storage` for a \
     wasm plugin (default-features = false), and build plugin crates one package at a time \
     (`cargo build -p <plugin>`), since cargo unifies features across a multi-package build"
);

#[cfg(feature = "codec")]
#[allow(
    missing_debug_implementations,
    unsafe_code,
    clippy::all,
    clippy::pedantic
)]
pub mod codec_world {
    #[cfg(target_arch = "wasm32")]
    wit_bindgen::generate!({
        path: "wit",
        world: "aerospike:backup-plugin/codec-plugin@1.0.0",
        pub_export_macro: true,
        export_macro_name: "export_codec_world",
        runtime_path: "::aerospike_backup_plugin::__private::wit_bindgen::rt",
    });
    #[cfg(not(target_arch = "wasm32"))]
    wit_bindgen::generate!({
        path: "wit",
        world: "aerospike:backup-plugin/codec-plugin@1.0.0",
        export_macro_name: "export_codec_world",
        runtime_path: "::aerospike_backup_plugin::__private::wit_bindgen::rt",
    });
}

#[cfg(feature = "storage")]
#[allow(
    missing_debug_implementations,
    unsafe_code,
    clippy::all,
    clippy::pedantic
)]
pub mod storage_world {
    #[cfg(target_arch = "wasm32")]
    wit_bindgen::generate!({
        path: "wit",
        world: "aerospike:backup-plugin/storage-plugin@1.0.0",
        pub_export_macro: true,
        export_macro_name: "export_storage_world",
        runtime_path: "::aerospike_backup_plugin::__private::wit_bindgen::rt",
    });
    #[cfg(not(target_arch = "wasm32"))]
    wit_bindgen::generate!({
        path: "wit",
        world: "aerospike:backup-plugin/storage-plugin@1.0.0",
        export_macro_name: "export_storage_world",
        runtime_path: "::aerospike_backup_plugin::__private::wit_bindgen::rt",
    });
}
