//! `bindgen!` output for the two worlds of `aerospike:backup-plugin@1.x`. Nothing outside
//! `plugins` sees these types: adapters convert them to the host traits' types.

/// World `codec-plugin`: imports the host `crypto`, exports `plugin` + `codec`.
pub(crate) mod codec {
    wasmtime::component::bindgen!({
        world: "codec-plugin",
        path: "../plugin-api/wit",
        imports: { default: trappable },
        with: {
            "aerospike:backup-plugin/crypto.key": crate::plugins::crypto::KeyHandle,
        },
    });
}

/// World `storage-plugin`: imports `storage-host`, exports `plugin` + `storage`.
pub(crate) mod storage {
    wasmtime::component::bindgen!({
        world: "storage-plugin",
        path: "../plugin-api/wit",
        imports: { default: trappable },
    });
}
