//! The plugin platform through real components: default plugins (embedded, or from
//! `ABS_PLUGIN_DIR`), purpose-built bad plugins (`host/tests/fixtures/*.wasm`, source in
//! `fixtures/guests/`, rebuilt by `fixtures/build.sh`) and WAT components compiled here.
//!
//! Length: one test per plugin behaviour or bad plugin, each standing alone.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use abs::plugins::crypto::{Key, KeyMaterial};
use abs::plugins::keys::{KeySource, resolve_key};
use abs::plugins::layers::{ConcurrencyLimit, MeteredStorage, RetryPolicy, RetryStorage};
use abs::plugins::metrics::PluginMetrics;
use abs::plugins::pipeline::{AES_PLUGIN, LOCAL_STORAGE_PLUGIN, ZSTD_PLUGIN};
use abs::plugins::registry::{load_component, sha256_hex};
use abs::plugins::suite::{
    self, SuiteOptions, codec_round_trip, encode_with, run_codec_properties, run_storage_suite,
};
use abs::plugins::{
    Codec, CodecStream, CompressionSpec, EncryptionSpec, Pipeline, PluginError, Registry, Runtime,
    RuntimeConfig, StepSpec, Storage, StorageSecrets, Upload, UserPluginSpec,
    validate_plugin_options,
};
use bytes::Bytes;
use futures::future::BoxFuture;
use proptest::prelude::*;

fn golden() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/golden")
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// One `.cwasm` cache for the whole test binary (DESIGN D14).
fn cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("plugin-cwasm")
}

/// The runtime the well-behaved tests share (seeded RNG: reproducible IVs).
fn runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        Runtime::new_with_test_rng_seed(
            RuntimeConfig {
                cache_dir: Some(cache_dir()),
                max_instances: 48,
                ..RuntimeConfig::default()
            },
            42,
        )
        .expect("runtime")
    })
}

fn registry() -> &'static Registry {
    static REG: OnceLock<Registry> = OnceLock::new();
    REG.get_or_init(|| Registry::with_defaults(runtime()).expect("default plugins load"))
}

/// A runtime with tight limits for the bad plugins: short deadline, small memory.
fn strict_runtime() -> Runtime {
    Runtime::new(RuntimeConfig {
        cache_dir: Some(cache_dir()),
        codec_call_timeout: Duration::from_millis(300),
        storage_call_timeout: Duration::from_millis(300),
        chunk_size_bytes: 1024 * 1024,
        part_size_bytes: 1024 * 1024,
        max_instances: 8,
        ..RuntimeConfig::default()
    })
    .expect("strict runtime")
}

fn golden_key() -> Key {
    resolve_key(&KeySource::File(golden().join("key.pem"))).expect("golden key")
}

fn codec(name: &str) -> Arc<dyn Codec> {
    registry().codec(name).expect(name)
}

fn load_fixture(
    rt: &Runtime,
    name: &str,
) -> Result<abs::plugins::registry::LoadedPlugin, PluginError> {
    let bytes = std::fs::read(fixture(&format!("{name}.wasm")))
        .expect("fixture built by fixtures/build.sh");
    load_component(rt, name, &bytes).map(|(p, _)| p)
}

fn bad_codec(rt: &Runtime) -> Arc<dyn Codec> {
    match load_fixture(rt, "bad-codec").expect("bad-codec loads") {
        abs::plugins::registry::LoadedPlugin::Codec(c) => c,
        other => panic!("not a codec: {other:?}"),
    }
}

/// Records: `+ k` lines as asbackup writes them; compressible like a real backup.
fn asb_like(n: usize) -> Vec<u8> {
    (0..n)
        .flat_map(|i| {
            format!("+ k I {i}\n+ n test\n+ d AAAAAAAAAAAAAAAAAAAAAAAAAAA=\n- I id {i}\n")
                .into_bytes()
        })
        .collect()
}

// ---- default plugins: registry, info, options ---------------------------------------

#[test]
fn default_plugins_are_registered_with_their_info() {
    let names: Vec<&str> = registry().plugins().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        vec![
            ZSTD_PLUGIN,
            AES_PLUGIN,
            "storage-azure",
            "storage-gcs",
            LOCAL_STORAGE_PLUGIN,
            "storage-s3"
        ]
    );
    for cloud in ["storage-azure", "storage-gcs", "storage-s3"] {
        assert!(
            registry().storage(cloud).is_ok(),
            "{cloud} is a storage plugin"
        );
    }
    for p in registry().plugins() {
        let info = p.plugin.info();
        assert_eq!(info.name, p.name);
        assert!(info.api_version.starts_with("1."), "{info:?}");
        serde_json::from_str::<serde_json::Value>(&info.options_schema).expect("schema is JSON");
        assert_eq!(p.sha256.len(), 64);
    }
    assert!(matches!(
        registry().codec(LOCAL_STORAGE_PLUGIN),
        Err(PluginError::WrongKind { .. })
    ));
    assert!(matches!(
        registry().storage(ZSTD_PLUGIN),
        Err(PluginError::WrongKind { .. })
    ));
    assert!(matches!(
        registry().codec("lz5"),
        Err(PluginError::UnknownPlugin(_))
    ));
}

#[test]
fn default_plugins_can_come_from_a_directory() {
    // What CI does with ABS_PLUGIN_DIR: the same names, loaded from files.
    let dir = tempfile::tempdir().unwrap();
    let assets = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/plugins");
    for name in [ZSTD_PLUGIN, AES_PLUGIN] {
        std::fs::copy(
            assets.join(format!("{name}.wasm")),
            dir.path().join(format!("{name}.wasm")),
        )
        .unwrap();
    }
    let err = Registry::with_defaults_from(runtime(), Some(dir.path())).unwrap_err();
    assert!(err.to_string().contains("storage-local.wasm"), "{err}");
    for name in [
        "storage-local",
        "storage-s3",
        "storage-azure",
        "storage-gcs",
    ] {
        std::fs::copy(
            assets.join(format!("{name}.wasm")),
            dir.path().join(format!("{name}.wasm")),
        )
        .unwrap();
    }
    let reg = Registry::with_defaults_from(runtime(), Some(dir.path())).unwrap();
    for p in reg.plugins() {
        assert_eq!(
            p.source,
            abs::plugins::registry::PluginSource::PluginDir(
                dir.path().join(format!("{}.wasm", p.name))
            )
        );
    }
}

#[test]
fn options_are_checked_against_schema_and_by_the_plugin() {
    let reg = registry();
    assert_eq!(
        validate_plugin_options(reg, ZSTD_PLUGIN, &serde_json::json!({"level": 9})),
        Ok(())
    );
    let too_high =
        validate_plugin_options(reg, ZSTD_PLUGIN, &serde_json::json!({"level": 30})).unwrap_err();
    assert!(
        too_high.starts_with("level: ") && too_high.contains("22"),
        "{too_high}"
    );
    // Valid by schema, but zstd's state at level 19 exceeds the codec memory limit: caught
    // by the dry run at validation time rather than in the first backup.
    let huge =
        validate_plugin_options(reg, ZSTD_PLUGIN, &serde_json::json!({"level": 19})).unwrap_err();
    assert!(huge.contains("memory limit"), "{huge}");
    let typo =
        validate_plugin_options(reg, ZSTD_PLUGIN, &serde_json::json!({"levle": 3})).unwrap_err();
    assert!(typo.contains("levle"), "{typo}");
    let bad_mode = validate_plugin_options(reg, AES_PLUGIN, &serde_json::json!({"mode": "AES256"}))
        .unwrap_err();
    assert!(bad_mode.starts_with("mode: "), "{bad_mode}");
    let missing =
        validate_plugin_options(reg, LOCAL_STORAGE_PLUGIN, &serde_json::json!({})).unwrap_err();
    assert!(missing.contains("path"), "{missing}");
    assert_eq!(
        validate_plugin_options(reg, "nope", &serde_json::json!({})).unwrap_err(),
        "unknown plugin `nope`"
    );
    // The plugin's own check runs after the schema: gcm-only option with a ctr mode.
    let semantic = validate_plugin_options(
        reg,
        AES_PLUGIN,
        &serde_json::json!({"mode": "aes256-ctr", "frame-size": 4096}),
    );
    assert!(semantic.unwrap_err().contains("frame-size"));
}

#[test]
fn user_plugins_are_hash_checked_and_named_errors_carry_the_field() {
    let path = fixture("bad-codec.wasm");
    let sha = sha256_hex(&std::fs::read(&path).unwrap());
    let mut user = BTreeMap::new();
    user.insert(
        "my-codec".to_string(),
        UserPluginSpec {
            path: path.clone(),
            sha256: sha.to_uppercase(),
        },
    );
    let reg = Registry::from_config(runtime(), &user).expect("good user plugin loads");
    assert_eq!(reg.get("my-codec").unwrap().plugin.info().name, "bad-codec");

    let mut bad = BTreeMap::new();
    bad.insert(
        "wrong-hash".to_string(),
        UserPluginSpec {
            path: path.clone(),
            sha256: "00".repeat(32),
        },
    );
    bad.insert(
        "missing".to_string(),
        UserPluginSpec {
            path: fixture("nope.wasm"),
            sha256: sha.clone(),
        },
    );
    bad.insert(
        "zstd-clash".to_string(),
        UserPluginSpec {
            path: path.clone(),
            sha256: sha.clone(),
        },
    );
    bad.insert(
        ZSTD_PLUGIN.to_string(),
        UserPluginSpec {
            path: path.clone(),
            sha256: sha.clone(),
        },
    );
    bad.insert(
        "fs".to_string(),
        UserPluginSpec {
            path: fixture("fs-codec.wasm"),
            sha256: sha256_hex(&std::fs::read(fixture("fs-codec.wasm")).unwrap()),
        },
    );
    let errors = Registry::from_config(runtime(), &bad).unwrap_err();
    let by_name: BTreeMap<&str, (&str, String)> = errors
        .iter()
        .map(|e| (e.plugin.as_str(), (e.field, e.error.to_string())))
        .collect();
    assert_eq!(by_name.len(), 4, "{errors:?}");
    assert_eq!(by_name["wrong-hash"].0, "sha256");
    assert!(matches!(
        errors
            .iter()
            .find(|e| e.plugin == "wrong-hash")
            .unwrap()
            .error,
        PluginError::HashMismatch { .. }
    ));
    assert_eq!(by_name["missing"].0, "path");
    assert!(
        by_name[ZSTD_PLUGIN].1.contains("built-in"),
        "{:?}",
        by_name[ZSTD_PLUGIN]
    );
    assert!(
        by_name["fs"].1.contains("wasi:filesystem"),
        "{:?}",
        by_name["fs"]
    );
    assert_eq!(
        errors[0]
            .to_string()
            .split(':')
            .next()
            .unwrap()
            .split('.')
            .next(),
        Some("plugins")
    );
}

// ---- codec round trips (proptest through the real components) -------------------------

fn chunk_sizes() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1usize..70_000, 1..6)
}

fn data() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200_000),
        (0usize..3000).prop_map(asb_like),
        Just(Vec::new()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn zstd_round_trips(data in data(), enc in chunk_sizes(), dec in chunk_sizes(), level in prop::sample::select(vec![1, 3, 9])) {
        let opts = format!(r#"{{"level":{level}}}"#);
        let encoded = codec_round_trip(codec(ZSTD_PLUGIN).as_ref(), &opts, &[], &data, &enc, &dec).map_err(TestCaseError::fail)?;
        // Standard zstd: the native library decodes what the plugin wrote.
        prop_assert_eq!(zstd::decode_all(&encoded[..]).unwrap(), data);
    }

    #[test]
    fn aes_round_trips_in_every_mode(data in data(), enc in chunk_sizes(), dec in chunk_sizes(), mode in prop::sample::select(vec!["aes128-ctr", "aes256-ctr", "aes-256-gcm"])) {
        let opts = format!(r#"{{"mode":"{mode}"}}"#);
        let encoded = codec_round_trip(codec(AES_PLUGIN).as_ref(), &opts, &[golden_key()], &data, &enc, &dec).map_err(TestCaseError::fail)?;
        if mode.ends_with("ctr") {
            prop_assert_eq!(encoded.len(), data.len() + 16);
        } else {
            prop_assert!(encoded.len() > data.len());
        }
    }

    #[test]
    fn zstd_then_aes_pipeline_round_trips(data in data(), cuts in chunk_sizes()) {
        let p = Pipeline::from_policy(
            registry(),
            Some(&CompressionSpec { mode: "ZSTD".into(), level: Some(3) }),
            Some(&EncryptionSpec { mode: "AES256".into(), key: Some(KeySource::File(golden().join("key.pem"))) }),
        ).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut enc = p.encoder().unwrap();
        let stored = encode_with(enc.as_mut(), &data, &cuts).unwrap();
        let mut dec = p.decoder().unwrap();
        let back = encode_with(dec.as_mut(), &stored, &[1 << 20]).unwrap();
        prop_assert_eq!(back, data);
    }
}

#[test]
fn codec_contract_properties_hold_for_default_codecs() {
    for (name, opts, keys) in [
        (ZSTD_PLUGIN, r#"{"level":3}"#, vec![]),
        (AES_PLUGIN, r#"{"mode":"aes256-ctr"}"#, vec![golden_key()]),
        (AES_PLUGIN, r#"{"mode":"aes-256-gcm"}"#, vec![golden_key()]),
    ] {
        let report = run_codec_properties(codec(name).as_ref(), opts, &keys);
        assert!(report.is_success(), "{name} {opts}:\n{report}");
    }
}

// ---- AES against independent computations ----------------------------------------------

/// zstd levels ≤ 4 compress from a ring of four windows (8 MiB at levels 3–4): the ring
/// wraps within the default codec memory limit and the frames are standard zstd.
#[test]
fn zstd_fast_levels_wrap_their_ring_within_the_default_limit() {
    let data = asb_like(350_000); // ~20 MiB: the ring wraps twice
    assert!(data.len() > 2 * (8 << 20));
    let zstd = codec(ZSTD_PLUGIN);
    for level in [-5, 1, 3, 4] {
        let mut s = zstd
            .encoder(&format!(r#"{{"level": {level}, "checksum": true}}"#), &[])
            .unwrap();
        let mut enc = Vec::new();
        for c in data.chunks(1 << 20) {
            enc.extend(s.push(c).unwrap());
        }
        enc.extend(s.finish().unwrap());
        assert!(zstd::decode_all(&enc[..]).unwrap() == data, "level {level}");
    }
}

#[test]
fn golden_key_file_derives_the_asbackup_key() {
    // hex_key() is SHA-256 of the PKCS#1 DER from `openssl rsa -traditional -outform DER`;
    // a stream encrypted under the resolved handle decrypts under those raw bytes.
    let resolved = golden_key();
    assert_eq!(format!("{resolved:?}"), "**redacted**");
    let raw: Key = Arc::new(KeyMaterial::new(hex_key()));
    let data = asb_like(100);
    let mut e = codec(AES_PLUGIN)
        .encoder(r#"{"mode":"aes256-ctr"}"#, &[resolved])
        .unwrap();
    let enc = encode_with(e.as_mut(), &data, &[1000]).unwrap();
    let mut d = codec(AES_PLUGIN)
        .decoder(r#"{"mode":"aes256-ctr"}"#, &[raw])
        .unwrap();
    assert_eq!(encode_with(d.as_mut(), &enc, &[1000]).unwrap(), data);
    let decoded = decode_file(
        AES_PLUGIN,
        r#"{"mode":"aes256-ctr"}"#,
        &golden().join("aes256/test_00000.asb"),
    );
    assert!(
        decoded.starts_with(b"Version 3.1\n"),
        "a wrong key would give garbage"
    );
}

fn hex_key() -> Vec<u8> {
    (0..32)
        .map(|i| {
            u8::from_str_radix(
                &"2816f91267a469f4f9abf7d67c2e71850283cb401dc51c163c375766ce696250"
                    [2 * i..2 * i + 2],
                16,
            )
            .unwrap()
        })
        .collect()
}

fn decode_file(plugin: &str, opts: &str, path: &Path) -> Vec<u8> {
    let data = std::fs::read(path).unwrap();
    let mut d = codec(plugin).decoder(opts, &[golden_key()]).unwrap();
    encode_with(d.as_mut(), &data, &[5000]).unwrap()
}

fn sorted_lines(b: &[u8]) -> Vec<&[u8]> {
    let mut v: Vec<&[u8]> = b.split(|c| *c == b'\n').collect();
    v.sort();
    v
}

#[test]
fn golden_asbackup_files_decrypt_to_the_plain_backup() {
    let plain = std::fs::read(golden().join("plain/test_00000.asb")).unwrap();
    let aes = decode_file(
        AES_PLUGIN,
        r#"{"mode":"aes256-ctr"}"#,
        &golden().join("aes256/test_00000.asb"),
    );
    assert_eq!(aes.len(), plain.len());
    // asbackup's record order differs between runs: compare the line multisets.
    assert_eq!(sorted_lines(&aes), sorted_lines(&plain));

    let p = Pipeline::from_policy(
        registry(),
        Some(&CompressionSpec {
            mode: "ZSTD".into(),
            level: None,
        }),
        Some(&EncryptionSpec {
            mode: "AES128".into(),
            key: Some(KeySource::File(golden().join("key.pem"))),
        }),
    )
    .unwrap();
    let stored = std::fs::read(golden().join("zstd-aes128/test_00000.asb")).unwrap();
    let mut dec = p.decoder().unwrap();
    let both = encode_with(dec.as_mut(), &stored, &[4096]).unwrap();
    assert_eq!(sorted_lines(&both), sorted_lines(&plain));
}

#[test]
fn aes_ctr_output_matches_an_independent_computation() {
    // Independent of the plugin: header = AES-ECB(key, N), payload = data XOR AES(N+1), ...
    // computed with the `aes` crate block by block.
    use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
    let data = asb_like(5000);
    for (mode, klen) in [("aes256-ctr", 32), ("aes128-ctr", 16)] {
        let mut enc = codec(AES_PLUGIN)
            .encoder(&format!(r#"{{"mode":"{mode}"}}"#), &[golden_key()])
            .unwrap();
        let out = encode_with(enc.as_mut(), &data, &[777, 65_536]).unwrap();
        let key = &hex_key()[..klen];
        let mut n = aes::Block::clone_from_slice(&out[..16]);
        let mut expected = Vec::with_capacity(data.len());
        let mut block_counter = match klen {
            32 => {
                let c = aes::Aes256::new_from_slice(key).unwrap();
                c.decrypt_block(&mut n);
                u128::from_be_bytes(n.into())
            }
            _ => {
                let c = aes::Aes128::new_from_slice(key).unwrap();
                c.decrypt_block(&mut n);
                u128::from_be_bytes(n.into())
            }
        };
        for chunk in data.chunks(16) {
            block_counter = block_counter.wrapping_add(1);
            let mut ks = aes::Block::from(block_counter.to_be_bytes());
            match klen {
                32 => aes::Aes256::new_from_slice(key)
                    .unwrap()
                    .encrypt_block(&mut ks),
                _ => aes::Aes128::new_from_slice(key)
                    .unwrap()
                    .encrypt_block(&mut ks),
            }
            expected.extend(chunk.iter().zip(ks.iter()).map(|(a, b)| a ^ b));
        }
        assert_eq!(&out[16..], &expected[..], "{mode}");
    }
}

#[test]
fn ivs_come_from_the_host_rng_and_differ_per_stream() {
    let c = codec(AES_PLUGIN);
    let one = |_: u8| {
        let mut e = c
            .encoder(r#"{"mode":"aes256-ctr"}"#, &[golden_key()])
            .unwrap();
        encode_with(e.as_mut(), b"same plaintext", &[100]).unwrap()
    };
    assert_ne!(one(0)[..16], one(1)[..16], "two files must not share an IV");
}

#[test]
fn codec_needing_a_key_without_one_is_invalid_config() {
    let err = codec(AES_PLUGIN)
        .encoder(r#"{"mode":"aes256-ctr"}"#, &[])
        .err()
        .unwrap();
    assert!(matches!(err, PluginError::InvalidConfig(_)), "{err}");
    let short: Key = Arc::new(KeyMaterial::new(vec![1; 8]));
    assert!(
        codec(AES_PLUGIN)
            .encoder(r#"{"mode":"aes256-ctr"}"#, &[short])
            .is_err()
    );
}

// ---- sandbox: purpose-built bad components ---------------------------------------------

/// After every violation the same runtime must still run a healthy stream.
fn engine_still_works(rt: &Runtime) {
    let c = bad_codec(rt);
    let mut s = c.encoder(r#"{"mode":"pass"}"#, &[]).unwrap();
    assert_eq!(s.push(b"still alive").unwrap(), b"still alive");
    assert!(s.finish().unwrap().is_empty());
}

#[test]
fn infinite_loop_hits_the_call_deadline() {
    let rt = strict_runtime();
    let c = bad_codec(&rt);
    let mut s = c.encoder(r#"{"mode":"loop"}"#, &[]).unwrap();
    let started = Instant::now();
    let err = s.push(b"x").unwrap_err();
    assert!(matches!(err, PluginError::Timeout { .. }), "{err}");
    assert!(err.is_permanent() && err.is_sandbox_violation());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "deadline took {:?}",
        started.elapsed()
    );
    // The trapped instance is gone for good.
    assert!(matches!(s.push(b"x"), Err(PluginError::Poisoned(_))));
    engine_still_works(&rt);
}

#[test]
fn memory_bomb_hits_the_store_limit() {
    let rt = strict_runtime();
    let c = bad_codec(&rt);
    let mut s = c.encoder(r#"{"mode":"bomb"}"#, &[]).unwrap();
    let err = s.push(b"x").unwrap_err();
    match &err {
        PluginError::MemoryLimit { limit_bytes, .. } => {
            assert_eq!(*limit_bytes, rt.config().codec_memory_limit())
        }
        other => panic!("expected a memory limit error, got {other}"),
    }
    engine_still_works(&rt);
}

#[test]
fn guest_panic_is_a_trap_error_not_a_host_panic() {
    let rt = strict_runtime();
    let c = bad_codec(&rt);
    let mut s = c.decoder(r#"{"mode":"trap"}"#, &[]).unwrap();
    let err = s.push(b"x").unwrap_err();
    assert!(matches!(err, PluginError::Trap { .. }), "{err}");
    // The guest's panic message and source line come first, from its stderr.
    let text = err.to_string();
    assert!(
        text.contains("panicked: bad-codec was told to trap (at ") && text.contains("src/lib.rs:"),
        "{text}"
    );
    engine_still_works(&rt);
}

#[test]
fn codec_importing_the_filesystem_is_rejected_at_load() {
    let err = load_fixture(runtime(), "fs-codec").unwrap_err();
    match err {
        PluginError::ForbiddenImport { import, world, .. } => {
            assert!(import.starts_with("wasi:filesystem/"), "{import}");
            assert_eq!(world, "codec");
        }
        other => panic!("expected ForbiddenImport, got {other}"),
    }
    engine_still_works(runtime());
}

#[test]
fn wat_components_with_forbidden_or_missing_interfaces_are_rejected() {
    for (iface, expect_forbidden) in [
        ("wasi:sockets/tcp@0.2.6", true),
        ("wasi:http/outgoing-handler@0.2.6", true),
        ("aerospike:backup-plugin/storage-host@1.0.0", true),
        ("wasi:cli/environment@0.2.6", false),
    ] {
        let wat = format!(
            r#"(component
                 (import "{iface}" (instance))
                 (instance $empty)
                 (export "aerospike:backup-plugin/codec@1.0.0" (instance $empty)))"#
        );
        // wasmtime's `wat` feature compiles component text directly.
        let err = load_component(runtime(), "wat-codec", wat.as_bytes()).unwrap_err();
        if expect_forbidden {
            assert!(
                matches!(&err, PluginError::ForbiddenImport { import, .. } if import == iface),
                "{iface}: {err}"
            );
        } else {
            // Allowed import, but the export does not match the world: a load error.
            assert!(matches!(err, PluginError::Load { .. }), "{iface}: {err}");
        }
    }
    assert!(matches!(
        load_component(runtime(), "empty", b"(component)"),
        Err(PluginError::Load { .. })
    ));
    assert!(matches!(
        load_component(runtime(), "junk", b"not wasm"),
        Err(PluginError::Load { .. })
    ));
}

/// A directory with a secret next to (outside) the storage root and a symlink from inside
/// the root to it.
fn root_with_secret_outside() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret.txt"), "TOP-SECRET").unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    std::os::unix::fs::symlink(dir.path(), root.join("link")).unwrap();
    std::fs::write(root.join("inside.txt"), "fine").unwrap();
    (dir, root)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_plugins_cannot_read_outside_their_root() {
    let (_dir, root) = root_with_secret_outside();
    let opts = serde_json::json!({ "path": root }).to_string();
    let escape = match load_fixture(runtime(), "escape-storage").unwrap() {
        abs::plugins::registry::LoadedPlugin::Storage(s) => s,
        other => panic!("{other:?}"),
    };
    let b = escape
        .open_backend(&opts, StorageSecrets::default())
        .unwrap();
    // Sanity: the plugin can read inside its root, so the denials below are real.
    assert_eq!(
        suite::read_range(b.as_ref(), "inside.txt", 0, None, 100)
            .await
            .unwrap(),
        b"fine"
    );
    for key in ["parent", "rooted-parent", "link/secret.txt"] {
        let r = suite::read_range(b.as_ref(), key, 0, None, 100).await;
        assert!(r.is_err(), "{key}: read outside the root returned {r:?}");
    }
    // The real storage-local: `..` keys are denied, symlinks out of the root do not resolve.
    let local = registry().storage(LOCAL_STORAGE_PLUGIN).unwrap();
    let l = local
        .open_backend(&opts, StorageSecrets::default())
        .unwrap();
    assert!(matches!(
        l.open("../secret.txt", 0, None).await,
        Err(PluginError::Denied)
    ));
    let via_link = suite::read_range(l.as_ref(), "link/secret.txt", 0, None, 100).await;
    assert!(
        via_link.as_deref() != Ok(b"TOP-SECRET".as_slice()),
        "{via_link:?}"
    );
    assert!(via_link.is_err());
}

// ---- storage-local behaviour suite and layers ------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_local_passes_the_behaviour_suite() {
    let root = tempfile::tempdir().unwrap();
    let local = registry().storage(LOCAL_STORAGE_PLUGIN).unwrap();
    let backend = local
        .open_backend(
            &serde_json::json!({ "path": root.path() }).to_string(),
            StorageSecrets::default(),
        )
        .unwrap();
    assert!(backend.allowed_hosts().is_empty());
    let report = run_storage_suite(
        backend,
        &SuiteOptions {
            prefix: "suite/".into(),
            local_root: Some(root.path().to_path_buf()),
            large_object_bytes: 20 * 1024 * 1024,
        },
    )
    .await;
    assert!(report.is_success(), "{report}");
}

/// Wraps a real backend so that the first `fail` write-part calls report `temporary`
/// (neon's UnreliableWrapper idea: a real plugin, not a mock).
#[derive(Debug)]
struct Flaky {
    inner: Arc<dyn Storage>,
    fail: Arc<std::sync::atomic::AtomicU32>,
}

struct FlakyUpload {
    inner: Box<dyn Upload>,
    fail: Arc<std::sync::atomic::AtomicU32>,
}

impl Upload for FlakyUpload {
    fn write_part(&mut self, n: u32, data: Bytes) -> BoxFuture<'_, Result<(), PluginError>> {
        Box::pin(async move {
            use std::sync::atomic::Ordering;
            if self
                .fail
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |f| f.checked_sub(1))
                .is_ok()
            {
                // Fail after the plugin saw the bytes: the retry must replace, not append.
                self.inner.write_part(n, data).await?;
                return Err(PluginError::Temporary("injected".into()));
            }
            self.inner.write_part(n, data).await
        })
    }
    fn finish(&mut self) -> BoxFuture<'_, Result<abs::plugins::ObjectInfo, PluginError>> {
        self.inner.finish()
    }
    fn abort(&mut self) -> BoxFuture<'_, Result<(), PluginError>> {
        self.inner.abort()
    }
}

impl Storage for Flaky {
    fn plugin_name(&self) -> &str {
        self.inner.plugin_name()
    }
    fn capabilities(&self) -> &abs::plugins::Capabilities {
        self.inner.capabilities()
    }
    fn allowed_hosts(&self) -> &[String] {
        self.inner.allowed_hosts()
    }
    fn begin_upload(
        &self,
        key: &str,
        hint: Option<u64>,
    ) -> BoxFuture<'_, Result<Box<dyn Upload>, PluginError>> {
        let key = key.to_string();
        Box::pin(async move {
            let inner = self.inner.begin_upload(&key, hint).await?;
            Ok(Box::new(FlakyUpload {
                inner,
                fail: self.fail.clone(),
            }) as Box<dyn Upload>)
        })
    }
    fn open(
        &self,
        key: &str,
        o: u64,
        l: Option<u64>,
    ) -> BoxFuture<'_, Result<Box<dyn abs::plugins::Download>, PluginError>> {
        self.inner.open(key, o, l)
    }
    fn list(
        &self,
        p: &str,
        r: bool,
        c: Option<String>,
        m: u32,
    ) -> BoxFuture<'_, Result<abs::plugins::ListPage, PluginError>> {
        self.inner.list(p, r, c, m)
    }
    fn stat(&self, key: &str) -> BoxFuture<'_, Result<abs::plugins::ObjectInfo, PluginError>> {
        self.inner.stat(key)
    }
    fn delete(&self, key: &str) -> BoxFuture<'_, Result<(), PluginError>> {
        self.inner.delete(key)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_layer_resends_parts_and_metrics_count_them() {
    use std::sync::atomic::{AtomicU32, Ordering};
    let root = tempfile::tempdir().unwrap();
    let local = registry().storage(LOCAL_STORAGE_PLUGIN).unwrap();
    let base = local
        .open_backend(
            &serde_json::json!({ "path": root.path() }).to_string(),
            StorageSecrets::default(),
        )
        .unwrap();
    let fail = Arc::new(AtomicU32::new(2));
    let flaky: Arc<dyn Storage> = Arc::new(Flaky {
        inner: base.clone(),
        fail: fail.clone(),
    });
    let limited = Arc::new(ConcurrencyLimit::new(flaky, 2));
    let policy = RetryPolicy {
        max_attempts: 4,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
        multiplier: 2.0,
    };
    let prom = prometheus::Registry::new();
    let metrics = PluginMetrics::register(&prom).unwrap();
    let stack: Arc<dyn Storage> = Arc::new(MeteredStorage::new(
        Arc::new(RetryStorage::new(limited.clone(), policy.clone())),
        metrics.clone(),
    ));

    let a = suite::pattern(300_000, 1);
    let b = suite::pattern(1000, 2);
    suite::write_object(stack.as_ref(), "r/obj", &[&a, &b])
        .await
        .unwrap();
    assert_eq!(
        fail.load(Ordering::SeqCst),
        0,
        "both injected failures were consumed"
    );
    let back = suite::read_range(stack.as_ref(), "r/obj", 0, None, 65_536)
        .await
        .unwrap();
    assert_eq!(
        back,
        [a.as_slice(), b.as_slice()].concat(),
        "retried parts replaced, not appended"
    );
    assert_eq!(
        limited.available(),
        2,
        "permits returned after the upload and download"
    );

    let parts = metrics
        .calls
        .with_label_values(&["storage-local", "write_part"])
        .get();
    assert_eq!(parts, 2, "metrics see logical calls, above the retry layer");
    assert_eq!(
        metrics
            .bytes
            .with_label_values(&["storage-local", "in"])
            .get(),
        301_000
    );
    assert_eq!(
        metrics
            .bytes
            .with_label_values(&["storage-local", "out"])
            .get(),
        301_000
    );

    // Codec streams are metered the same way: bytes in and out per plugin.
    let mut metered = abs::plugins::layers::MeteredCodecStream::new(
        codec(ZSTD_PLUGIN).encoder("{}", &[]).unwrap(),
        ZSTD_PLUGIN,
        metrics.clone(),
    );
    let mut out = metered.push(&asb_like(1000)).unwrap();
    out.extend(metered.finish().unwrap());
    assert_eq!(
        metrics.bytes.with_label_values(&[ZSTD_PLUGIN, "in"]).get(),
        asb_like(1000).len() as u64
    );
    assert_eq!(
        metrics.bytes.with_label_values(&[ZSTD_PLUGIN, "out"]).get(),
        out.len() as u64
    );
    assert_eq!(
        metrics
            .calls
            .with_label_values(&[ZSTD_PLUGIN, "finish"])
            .get(),
        1
    );

    // Permanent errors are not retried and are counted by kind.
    let fail_permanent: Arc<dyn Storage> = Arc::new(MeteredStorage::new(
        Arc::new(RetryStorage::new(base.clone(), policy)),
        metrics.clone(),
    ));
    assert!(matches!(
        fail_permanent.stat("missing").await,
        Err(PluginError::NotFound)
    ));
    assert_eq!(
        metrics
            .errors
            .with_label_values(&["storage-local", "stat", "not_found"])
            .get(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_limit_holds_a_permit_per_open_upload() {
    let root = tempfile::tempdir().unwrap();
    let local = registry().storage(LOCAL_STORAGE_PLUGIN).unwrap();
    let base = local
        .open_backend(
            &serde_json::json!({ "path": root.path() }).to_string(),
            StorageSecrets::default(),
        )
        .unwrap();
    let limited = Arc::new(ConcurrencyLimit::new(base, 1));
    let mut first = limited.begin_upload("c/one", None).await.unwrap();
    assert_eq!(limited.available(), 0);
    let l2 = limited.clone();
    let second = tokio::spawn(async move { l2.stat("c/one").await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !second.is_finished(),
        "stat must wait for the upload's permit"
    );
    first.write_part(1, Bytes::from_static(b"1")).await.unwrap();
    first.finish().await.unwrap();
    drop(first);
    let st = second.await.unwrap().unwrap();
    assert_eq!(st.size, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_trap_drops_only_that_instance() {
    let rt = strict_runtime();
    let (_dir, root) = root_with_secret_outside();
    let escape = match load_fixture(&rt, "escape-storage").unwrap() {
        abs::plugins::registry::LoadedPlugin::Storage(s) => s,
        other => panic!("{other:?}"),
    };
    let b = escape
        .open_backend(
            &serde_json::json!({ "path": root }).to_string(),
            StorageSecrets::default(),
        )
        .unwrap();
    // A download holds its own instance; it must survive the control instance's death.
    let mut d = b.open("inside.txt", 0, None).await.unwrap();
    let started = Instant::now();
    let err = b.stat("spin").await.unwrap_err();
    assert!(matches!(err, PluginError::Timeout { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // The control instance was replaced: the next call works.
    assert_eq!(b.stat("inside.txt").await.unwrap().size, 4);
    assert_eq!(d.next(100).await.unwrap().unwrap(), b"fine");
}

// ---- compile cache ---------------------------------------------------------------------

#[test]
fn compile_cache_is_keyed_and_tampered_artifacts_are_not_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = || RuntimeConfig {
        cache_dir: Some(dir.path().to_path_buf()),
        max_instances: 4,
        ..RuntimeConfig::default()
    };
    let wasm = std::fs::read(fixture("bad-codec.wasm")).unwrap();
    let rt1 = Runtime::new(cfg()).unwrap();
    let started = Instant::now();
    load_component(&rt1, "bad-codec", &wasm).unwrap();
    let cold = started.elapsed();
    let key = rt1.cache_key(&sha256_hex(&wasm));
    let artifact = dir.path().join(format!("{key}.cwasm"));
    assert!(artifact.exists(), "artifact written under its key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "cache dir is private");
    }
    let rt2 = Runtime::new(cfg()).unwrap();
    let started = Instant::now();
    load_component(&rt2, "bad-codec", &wasm).unwrap();
    let warm = started.elapsed();
    assert!(
        warm < cold,
        "cached load ({warm:?}) should beat compiling ({cold:?})"
    );

    // A foreign or torn artifact is never deserialized: it is recompiled and replaced.
    std::fs::write(&artifact, b"garbage that is not a cwasm").unwrap();
    let rt3 = Runtime::new(cfg()).unwrap();
    engine_still_works_with(&rt3, &wasm);
    assert_ne!(
        std::fs::read(&artifact).unwrap(),
        b"garbage that is not a cwasm"
    );
}

fn engine_still_works_with(rt: &Runtime, wasm: &[u8]) {
    match load_component(rt, "bad-codec", wasm).unwrap().0 {
        abs::plugins::registry::LoadedPlugin::Codec(c) => {
            let mut s = c.encoder("{}", &[]).unwrap();
            assert_eq!(s.push(b"ok").unwrap(), b"ok");
        }
        other => panic!("{other:?}"),
    }
}

// ---- plugin check ----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_check_passes_good_plugins_and_names_violations() {
    let assets = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/plugins");
    let out = abs::plugins::cli::plugin_check(runtime(), &assets.join("storage-local.wasm"), None)
        .await
        .unwrap();
    assert!(
        out.contains("storage behaviour suite") && out.contains("0 failed"),
        "{out}"
    );
    let out =
        abs::plugins::cli::plugin_check(runtime(), &assets.join("compression-zstd.wasm"), None)
            .await
            .unwrap();
    assert!(
        out.contains("codec round-trip properties") && out.contains("0 failed"),
        "{out}"
    );
    // A key-needing codec gets a throwaway key.
    let out = abs::plugins::cli::plugin_check(
        runtime(),
        &assets.join("encryption-aes.wasm"),
        Some(serde_json::json!({"mode": "aes-256-gcm"})),
    )
    .await
    .unwrap();
    assert!(out.contains("0 failed"), "{out}");
    // The third-party example (examples/, built only against plugin-api) passes too.
    let out =
        abs::plugins::cli::plugin_check(runtime(), &assets.join("examples/codec-lz4.wasm"), None)
            .await
            .unwrap();
    assert!(out.contains("0 failed"), "{out}");
    let err = abs::plugins::cli::plugin_check(runtime(), &fixture("fs-codec.wasm"), None)
        .await
        .unwrap_err();
    assert!(
        err.contains("FAILED") && err.contains("wasi:filesystem"),
        "{err}"
    );
    let list = abs::plugins::cli::plugin_list(registry());
    for name in [ZSTD_PLUGIN, AES_PLUGIN, LOCAL_STORAGE_PLUGIN] {
        assert!(list.contains(name), "{list}");
    }
    // Steps the pipeline can't use are named by index.
    let bad = abs::plugins::pipeline::validate_steps(
        registry(),
        &[
            StepSpec {
                plugin: ZSTD_PLUGIN.into(),
                options: serde_json::json!({"level": 3}),
                keys: vec![],
            },
            StepSpec {
                plugin: LOCAL_STORAGE_PLUGIN.into(),
                options: serde_json::json!({}),
                keys: vec![],
            },
            StepSpec {
                plugin: AES_PLUGIN.into(),
                options: serde_json::json!({"mode": "rot13"}),
                keys: vec![],
            },
        ],
    );
    assert_eq!(bad.iter().map(|(i, _)| *i).collect::<Vec<_>>(), vec![1, 2]);
}

// ---- components built with the SDK before typed options ----------------------------------

fn load_codec_file(path: &Path) -> Arc<dyn Codec> {
    let bytes = std::fs::read(path).unwrap();
    match load_component(runtime(), "codec-lz4", &bytes).unwrap().0 {
        abs::plugins::registry::LoadedPlugin::Codec(c) => c,
        other => panic!("not a codec: {other:?}"),
    }
}

/// `old-sdk-*.wasm` are the committed components as the untyped SDK built them (options as
/// text, schema as a constant). The WIT did not change, so they keep loading and working,
/// and a stream the old lz4 wrote is read by the rebuilt one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn components_built_with_the_old_sdk_keep_loading_and_working() {
    let old = load_codec_file(&fixture("old-sdk-codec-lz4.wasm"));
    assert_eq!(old.info().api_version, "1.0.0");
    let report = run_codec_properties(old.as_ref(), r#"{"block-size": 65536}"#, &[]);
    assert!(report.is_success(), "{report}");

    let current = load_codec_file(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/plugins/examples/codec-lz4.wasm"),
    );
    let data = asb_like(20_000);
    let mut enc = old.encoder("{}", &[]).unwrap();
    let written = encode_with(enc.as_mut(), &data, &[100_000]).unwrap();
    let mut dec = current.decoder("{}", &[]).unwrap();
    assert_eq!(encode_with(dec.as_mut(), &written, &[4096]).unwrap(), data);

    let bytes = std::fs::read(fixture("old-sdk-storage-local.wasm")).unwrap();
    let abs::plugins::registry::LoadedPlugin::Storage(local) =
        load_component(runtime(), "storage-local", &bytes)
            .unwrap()
            .0
    else {
        panic!("not a storage plugin");
    };
    let root = tempfile::tempdir().unwrap();
    let backend = local
        .open_backend(
            &serde_json::json!({ "path": root.path() }).to_string(),
            StorageSecrets::default(),
        )
        .unwrap();
    let report = run_storage_suite(
        backend,
        &SuiteOptions {
            prefix: "old-sdk/".into(),
            local_root: Some(root.path().to_path_buf()),
            large_object_bytes: 0,
        },
    )
    .await;
    assert!(report.is_success(), "{report}");
}
