//! Codec throughput, native vs WASM plugin, on the same data in one run; instantiate time
//! cold (compile) and warm (pooled instance + create); the zstd→AES chain at 1 MiB chunks.
//!
//! `cargo bench -p aerospike-backup-service --bench codecs` measures (64 MiB of data);
//! without `--bench` (e.g. `cargo test --all-targets`) it does a ~1 MiB smoke run.
//! Figures are recorded in docs/PERFORMANCE.md ("Plugins").

use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use abs::plugins::crypto::{self, Key, KeyMaterial};
use abs::plugins::pipeline::{AES_PLUGIN, ZSTD_PLUGIN};
use abs::plugins::registry::{DEFAULT_PLUGINS, load_component};
use abs::plugins::{CodecStream, Registry, Runtime, RuntimeConfig};

const MIB: usize = 1024 * 1024;
const CHUNK: usize = MIB;

/// JSON-like records mixed with random runs (about 45% random bytes), as in
/// WASM-PLUGINS.md, so compression ratios resemble real backups.
fn bench_data(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 4096);
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut i = 0u64;
    while out.len() < len {
        let r = next();
        out.extend_from_slice(
            format!(
                "{{\"id\":{i},\"name\":\"user-{}\",\"score\":{},\"tags\":[\"a\",\"b\"],\"blob\":\"",
                r % 10_000,
                r % 977
            )
            .as_bytes(),
        );
        for _ in 0..(40 + r % 60) / 8 {
            out.extend_from_slice(&next().to_le_bytes());
        }
        out.extend_from_slice(b"\"}\n");
        i += 1;
    }
    out.truncate(len);
    out
}

struct Row {
    name: String,
    native_mbs: Option<f64>,
    wasm_mbs: f64,
}

fn mbs(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / MIB as f64 / d.as_secs_f64().max(1e-9)
}

/// CPU time of the calling thread (Linux `schedstat`, ns). Every codec call runs on the
/// calling thread (synchronous wasmtime), so this is the cost per core, and it is far less
/// disturbed than wall time when other processes share the cores.
fn thread_cpu() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .next()
                .and_then(|n| n.parse::<u64>().ok())
        })
        .map(Duration::from_nanos)
        .unwrap_or_default()
}

/// A stopwatch over thread CPU time (wall time where schedstat is missing).
struct Watch(Instant, Duration);

impl Watch {
    fn start() -> Watch {
        Watch(Instant::now(), thread_cpu())
    }

    fn elapsed(&self) -> Duration {
        let cpu = thread_cpu();
        if cpu.is_zero() {
            self.0.elapsed()
        } else {
            cpu - self.1
        }
    }
}

/// Best of `reps` runs (least disturbed by the other processes on the machine).
fn best(reps: usize, mut f: impl FnMut() -> Duration) -> Duration {
    (0..reps).map(|_| f()).min().unwrap_or_default()
}

fn run_stream(s: Box<dyn CodecStream>, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    run_stream_into(s, data, &mut out);
    out
}

/// [`run_stream`] into a reused buffer (no page faults on fresh output memory, which at
/// AES speeds cost as much as the cipher and vary from run to run).
fn run_stream_into(mut s: Box<dyn CodecStream>, data: &[u8], out: &mut Vec<u8>) {
    out.clear();
    for c in data.chunks(CHUNK) {
        out.extend(s.push(c).expect("push"));
    }
    out.extend(s.finish().expect("finish"));
}

fn native_zstd_compress(data: &[u8], level: i32) -> Vec<u8> {
    let mut enc = zstd::stream::write::Encoder::new(Vec::with_capacity(data.len()), level).unwrap();
    for c in data.chunks(CHUNK) {
        enc.write_all(c).unwrap();
    }
    enc.finish().unwrap()
}

/// asbackup's CTR layout done natively: E(N) header, then CTR from N+1.
fn native_aes_ctr(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    native_aes_ctr_into(key, data, &mut out);
    out
}

/// [`native_aes_ctr`] into a reused buffer (see [`run_stream_into`]).
fn native_aes_ctr_into(key: &[u8], data: &[u8], out: &mut Vec<u8>) {
    let n = [7u8; 16];
    out.clear();
    out.extend(crypto::aes_encrypt_block(key, &n).unwrap());
    let mut counter = u128::from_be_bytes(n)
        .wrapping_add(1)
        .to_be_bytes()
        .to_vec();
    let mut offset = 0u64;
    for c in data.chunks(CHUNK) {
        let mut buf = c.to_vec();
        crypto::aes_ctr_apply(key, &counter, offset, &mut buf).unwrap();
        offset += c.len() as u64;
        out.extend(buf);
    }
    counter.clear();
}

fn native_gcm_into(key: &[u8], data: &[u8], out: &mut Vec<u8>) {
    out.clear();
    for (i, c) in data.chunks(CHUNK).enumerate() {
        let mut nonce = [0u8; 12];
        nonce[4..].copy_from_slice(&(i as u64).to_be_bytes());
        out.extend(crypto::aes_gcm_seal(key, &nonce, b"", c).unwrap());
    }
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let size = if full { 64 * MIB } else { MIB };
    let reps = if full { 5 } else { 1 };
    let data = bench_data(size);
    let key_bytes = vec![0x5Au8; 32];
    let key: Key = Arc::new(KeyMaterial::new(key_bytes.clone()));

    // Instantiate: cold = compile from scratch (no cache), warm = a stream from the pool.
    // The smoke run skips the separate cold compile (seconds in a debug build).
    let zstd_wasm = DEFAULT_PLUGINS
        .iter()
        .find(|(n, _)| *n == ZSTD_PLUGIN)
        .unwrap()
        .1;
    let aes_wasm = DEFAULT_PLUGINS
        .iter()
        .find(|(n, _)| *n == AES_PLUGIN)
        .unwrap()
        .1;
    let (mut cold_zstd, mut cold_aes) = (Duration::ZERO, Duration::ZERO);
    if full {
        let cold_rt = Runtime::new(RuntimeConfig::default()).expect("runtime");
        let t = Instant::now();
        load_component(&cold_rt, ZSTD_PLUGIN, zstd_wasm).expect("compile zstd");
        cold_zstd = t.elapsed();
        let t = Instant::now();
        load_component(&cold_rt, AES_PLUGIN, aes_wasm).expect("compile aes");
        cold_aes = t.elapsed();
    }

    let cache = tempfile::tempdir().unwrap();
    let rt = Runtime::new(RuntimeConfig {
        cache_dir: Some(cache.path().to_path_buf()),
        ..RuntimeConfig::default()
    })
    .expect("runtime");
    let registry = Registry::with_defaults(&rt).expect("defaults");
    let rt2 = Runtime::new(RuntimeConfig {
        cache_dir: Some(cache.path().to_path_buf()),
        ..RuntimeConfig::default()
    })
    .expect("runtime");
    let t = Instant::now();
    load_component(&rt2, ZSTD_PLUGIN, zstd_wasm).expect("cached zstd");
    let cached_zstd = t.elapsed();

    let zstd = registry.codec(ZSTD_PLUGIN).unwrap();
    let aes = registry.codec(AES_PLUGIN).unwrap();
    let n_inst = if full { 2000 } else { 50 };
    let t = Instant::now();
    for _ in 0..n_inst {
        let mut s = zstd.encoder(r#"{"level":3}"#, &[]).unwrap();
        s.finish().unwrap();
    }
    let warm_zstd = t.elapsed() / n_inst;
    let t = Instant::now();
    for _ in 0..n_inst {
        let mut s = aes
            .encoder(r#"{"mode":"aes256-ctr"}"#, std::slice::from_ref(&key))
            .unwrap();
        s.finish().unwrap();
    }
    let warm_aes = t.elapsed() / n_inst;

    let mut rows = Vec::new();
    // zstd level 3 compress / decompress.
    let native_c = best(reps, || {
        let t = Watch::start();
        std::hint::black_box(native_zstd_compress(&data, 3));
        t.elapsed()
    });
    let mut compressed = Vec::new();
    let wasm_c = best(reps, || {
        let t = Watch::start();
        compressed = run_stream(zstd.encoder(r#"{"level":3}"#, &[]).unwrap(), &data);
        t.elapsed()
    });
    assert_eq!(
        zstd::decode_all(&compressed[..]).unwrap(),
        data,
        "plugin output is standard zstd"
    );
    rows.push(Row {
        name: format!(
            "zstd L3 compress (ratio {:.2})",
            compressed.len() as f64 / data.len() as f64
        ),
        native_mbs: Some(mbs(data.len(), native_c)),
        wasm_mbs: mbs(data.len(), wasm_c),
    });
    let native_d = best(reps, || {
        // Same shape as the plugin run: stream out in bounded chunks, count, discard.
        use std::io::Read as _;
        let t = Watch::start();
        let mut d = zstd::stream::read::Decoder::new(&compressed[..]).unwrap();
        let mut buf = vec![0u8; CHUNK];
        let mut n = 0;
        loop {
            let k = d.read(&mut buf).unwrap();
            if k == 0 {
                break;
            }
            n += k;
        }
        assert_eq!(n, data.len());
        t.elapsed()
    });
    let wasm_d = best(reps, || {
        let t = Watch::start();
        let mut s = zstd.decoder("{}", &[]).unwrap();
        let mut n = 0;
        for c in compressed.chunks(64 * 1024) {
            n += s.push(c).unwrap().len();
        }
        n += s.finish().unwrap().len();
        assert_eq!(n, data.len());
        t.elapsed()
    });
    rows.push(Row {
        name: "zstd decompress (output MB/s)".into(),
        native_mbs: Some(mbs(data.len(), native_d)),
        wasm_mbs: mbs(data.len(), wasm_d),
    });

    // AES-256-CTR (asbackup layout) and AES-256-GCM frames.
    // AES runs at ~1 GB/s: one pass over the data takes ~60 ms, and the thread CPU clock
    // advances in scheduler ticks (4 ms here), so each timing covers `passes` passes.
    let passes = if full { 8 } else { 1 };
    let mut out = Vec::with_capacity(data.len() + data.len() / CHUNK * 16 + 64);
    let native_ctr = best(reps, || {
        let t = Watch::start();
        for _ in 0..passes {
            native_aes_ctr_into(&key_bytes, &data, &mut out);
        }
        t.elapsed()
    });
    let wasm_ctr = best(reps, || {
        let t = Watch::start();
        for _ in 0..passes {
            run_stream_into(
                aes.encoder(r#"{"mode":"aes256-ctr"}"#, std::slice::from_ref(&key))
                    .unwrap(),
                &data,
                &mut out,
            );
        }
        t.elapsed()
    });
    rows.push(Row {
        name: "AES-256-CTR encrypt (host crypto)".into(),
        native_mbs: Some(mbs(passes * data.len(), native_ctr)),
        wasm_mbs: mbs(passes * data.len(), wasm_ctr),
    });
    let native_gcm_t = best(reps, || {
        let t = Watch::start();
        for _ in 0..passes {
            native_gcm_into(&key_bytes, &data, &mut out);
        }
        t.elapsed()
    });
    let wasm_gcm = best(reps, || {
        let t = Watch::start();
        for _ in 0..passes {
            run_stream_into(
                aes.encoder(r#"{"mode":"aes-256-gcm"}"#, std::slice::from_ref(&key))
                    .unwrap(),
                &data,
                &mut out,
            );
        }
        t.elapsed()
    });
    rows.push(Row {
        name: "AES-256-GCM encrypt (host crypto)".into(),
        native_mbs: Some(mbs(passes * data.len(), native_gcm_t)),
        wasm_mbs: mbs(passes * data.len(), wasm_gcm),
    });

    // The chain zstd → aes256-ctr at 1 MiB chunks.
    let native_chain = best(reps, || {
        let t = Watch::start();
        std::hint::black_box(native_aes_ctr(&key_bytes, &native_zstd_compress(&data, 3)));
        t.elapsed()
    });
    let wasm_chain = best(reps, || {
        let t = Watch::start();
        let stages = vec![
            zstd.encoder(r#"{"level":3}"#, &[]).unwrap(),
            aes.encoder(r#"{"mode":"aes256-ctr"}"#, std::slice::from_ref(&key))
                .unwrap(),
        ];
        std::hint::black_box(run_stream(
            Box::new(abs::plugins::Chain::new(stages, usize::MAX)),
            &data,
        ));
        t.elapsed()
    });
    rows.push(Row {
        name: "chain zstd L3 -> AES-256-CTR".into(),
        native_mbs: Some(mbs(data.len(), native_chain)),
        wasm_mbs: mbs(data.len(), wasm_chain),
    });

    println!(
        "codecs bench ({} MiB, 1 MiB chunks, best of {reps}, MB per CPU-second of the one thread){}",
        size / MIB,
        if full {
            ""
        } else {
            " [smoke run; pass --bench to measure]"
        }
    );
    println!(
        "{:<40} {:>12} {:>12} {:>8}",
        "operation", "native MB/s", "wasm MB/s", "ratio"
    );
    for r in &rows {
        let native = r.native_mbs.map_or("-".to_string(), |n| format!("{n:.0}"));
        let ratio = r
            .native_mbs
            .map_or("-".to_string(), |n| format!("{:.2}", r.wasm_mbs / n));
        println!(
            "{:<40} {:>12} {:>12.0} {:>8}",
            r.name, native, r.wasm_mbs, ratio
        );
    }
    if full {
        println!("instantiate cold (compile, no cache): zstd {cold_zstd:.1?}, aes {cold_aes:.1?}");
    }
    println!("load from .cwasm cache: zstd {cached_zstd:.2?}");
    println!(
        "instantiate warm (pooled instance + create + finish), avg of {n_inst}: zstd {warm_zstd:.1?}, aes {warm_aes:.1?}"
    );
}
