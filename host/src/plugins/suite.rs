//! The storage behaviour suite: the contract of WIT `storage` checked against any
//! [`Storage`], reused by `plugin check` and by the tests of every storage plugin
//! (restic's backend suite, OpenDAL's behaviour tests). It moves to `testkit` later.
//!
//! Every case works under its own key prefix, so the suite can run on a non-empty store.

use std::collections::BTreeSet;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;

use super::codec::{Codec, CodecStream};
use super::crypto::Key;
use super::error::PluginError;
use super::storage::Storage;

const MIB: usize = 1024 * 1024;

/// Knobs of a suite run.
#[derive(Debug, Clone, Default)]
pub struct SuiteOptions {
    /// Prefix for every key the suite writes (e.g. a unique run id + `/`).
    pub prefix: String,
    /// For storages backed by a local directory: its host path, so the suite can also
    /// check that aborted uploads leave no file behind on disk.
    pub local_root: Option<PathBuf>,
    /// Size of the "large object" case (default 24 MiB when 0).
    pub large_object_bytes: usize,
}

/// Outcome of one suite run.
#[derive(Debug, Default)]
pub struct SuiteReport {
    pub passed: Vec<&'static str>,
    pub failed: Vec<(&'static str, String)>,
}

impl SuiteReport {
    /// True when every case passed.
    pub fn is_success(&self) -> bool {
        self.failed.is_empty()
    }
}

impl std::fmt::Display for SuiteReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for p in &self.passed {
            writeln!(f, "  ok    {p}")?;
        }
        // A trapping plugin fails every case the same way: its wasm backtrace once.
        const BACKTRACE: &str = "wasm backtrace:";
        let mut shown = false;
        for (name, why) in &self.failed {
            match why.find(BACKTRACE) {
                Some(at) if shown => writeln!(
                    f,
                    "  FAIL  {name}: {}(backtrace as above)",
                    why[..at].trim_end_matches("error while executing at ")
                )?,
                Some(_) => {
                    shown = true;
                    writeln!(f, "  FAIL  {name}: {why}")?;
                }
                None => writeln!(f, "  FAIL  {name}: {why}")?,
            }
        }
        write!(
            f,
            "{} passed, {} failed",
            self.passed.len(),
            self.failed.len()
        )
    }
}

type CaseResult = Result<(), String>;
type CaseFuture<'a> = Pin<Box<dyn Future<Output = CaseResult> + Send + 'a>>;

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

fn err(context: &str) -> impl Fn(PluginError) -> String + '_ {
    move |e| format!("{context}: {e}")
}

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Writes `parts` as one object.
///
/// # Errors
/// The failing call, with context.
pub async fn write_object(
    s: &dyn Storage,
    key: &str,
    parts: &[&[u8]],
) -> Result<super::ObjectInfo, String> {
    let total: usize = parts.iter().map(|p| p.len()).sum();
    let mut up = s
        .begin_upload(key, Some(total as u64))
        .await
        .map_err(err("begin-upload"))?;
    for (i, p) in parts.iter().enumerate() {
        up.write_part(i as u32 + 1, Bytes::copy_from_slice(p))
            .await
            .map_err(|e| format!("write-part {}: {e}", i + 1))?;
    }
    up.finish().await.map_err(err("finish"))
}

/// Reads a byte range of an object to the end with `next(chunk)`.
///
/// # Errors
/// The failing call, or an empty chunk (forbidden by the contract).
pub async fn read_range(
    s: &dyn Storage,
    key: &str,
    offset: u64,
    len: Option<u64>,
    chunk: u32,
) -> Result<Vec<u8>, PluginError> {
    let mut d = s.open(key, offset, len).await?;
    let mut out = Vec::new();
    while let Some(c) = d.next(chunk).await? {
        if c.is_empty() {
            return Err(PluginError::Other(
                "download.next returned an empty chunk".into(),
            ));
        }
        if c.len() > chunk as usize {
            return Err(PluginError::Other(format!(
                "download.next returned {} bytes for max {chunk}",
                c.len()
            )));
        }
        out.extend(c);
    }
    // After `none`, further calls keep returning `none`.
    if d.next(chunk).await?.is_some() {
        return Err(PluginError::Other(
            "download.next returned data after none".into(),
        ));
    }
    Ok(out)
}

async fn list_all(
    s: &dyn Storage,
    prefix: &str,
    recursive: bool,
    page: u32,
) -> Result<(Vec<String>, Vec<String>, usize), String> {
    let mut keys = Vec::new();
    let mut prefixes = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let p = s
            .list(prefix, recursive, cursor.clone(), page)
            .await
            .map_err(err("list"))?;
        pages += 1;
        ensure!(
            p.objects.len() + p.prefixes.len() <= page as usize,
            "page of {} entries exceeds max-results {page}",
            p.objects.len() + p.prefixes.len()
        );
        keys.extend(p.objects.into_iter().map(|o| o.key));
        prefixes.extend(p.prefixes);
        match p.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
        ensure!(pages < 10_000, "listing does not terminate");
    }
    Ok((keys, prefixes, pages))
}

fn part_size(s: &dyn Storage, wanted: usize) -> usize {
    let caps = s.capabilities();
    wanted
        .max(caps.min_part_size as usize)
        .min(caps.max_part_size.max(1) as usize)
}

fn case_write_read_stat<'a>(s: &'a dyn Storage, p: &'a str) -> CaseFuture<'a> {
    Box::pin(async move {
        let key = format!("{p}rw/a/b/object.asb");
        let ps = part_size(s, 64 * 1024);
        let a = pattern(ps, 1);
        let b = pattern(1000, 2);
        let info = write_object(s, &key, &[&a, &b]).await?;
        ensure!(info.key == key, "finish returned key {:?}", info.key);
        ensure!(
            info.size == (ps + 1000) as u64,
            "finish returned size {}",
            info.size
        );
        let all = read_range(s, &key, 0, None, 4096)
            .await
            .map_err(err("read"))?;
        ensure!(
            all == [a.as_slice(), b.as_slice()].concat(),
            "read back different bytes"
        );
        let mid = read_range(s, &key, 10, Some(100), 7)
            .await
            .map_err(err("range read"))?;
        ensure!(
            mid == all[10..110],
            "range read (10, 100) returned wrong bytes"
        );
        let tail = read_range(s, &key, (ps + 900) as u64, None, 4096)
            .await
            .map_err(err("tail read"))?;
        ensure!(tail == all[ps + 900..], "tail read returned wrong bytes");
        let past = read_range(s, &key, (ps + 5000) as u64, None, 4096)
            .await
            .map_err(err("read past end"))?;
        ensure!(
            past.is_empty(),
            "read past the end returned {} bytes",
            past.len()
        );
        let st = s.stat(&key).await.map_err(err("stat"))?;
        ensure!(
            st.size == info.size && st.key == key,
            "stat disagrees with finish: {st:?}"
        );
        // Replacing on finish is allowed (last writer wins).
        write_object(s, &key, &[b"v2"]).await?;
        let v2 = read_range(s, &key, 0, None, 4096)
            .await
            .map_err(err("read v2"))?;
        ensure!(v2 == b"v2", "replaced object reads back wrong");
        Ok(())
    })
}

fn case_empty_object<'a>(s: &'a dyn Storage, p: &'a str) -> CaseFuture<'a> {
    Box::pin(async move {
        let key = format!("{p}empty/zero");
        let info = write_object(s, &key, &[]).await?;
        ensure!(info.size == 0, "zero parts gave size {}", info.size);
        let data = read_range(s, &key, 0, None, 16)
            .await
            .map_err(err("read"))?;
        ensure!(data.is_empty(), "empty object read {} bytes", data.len());
        Ok(())
    })
}

fn case_part_idempotence<'a>(s: &'a dyn Storage, p: &'a str) -> CaseFuture<'a> {
    Box::pin(async move {
        let key = format!("{p}idem/obj");
        let ps = part_size(s, 16 * 1024);
        let a = pattern(ps, 3);
        let mut up = s
            .begin_upload(&key, None)
            .await
            .map_err(err("begin-upload"))?;
        up.write_part(1, Bytes::from(a.clone()))
            .await
            .map_err(err("part 1"))?;
        // The host re-sends the latest part after a temporary error: it must replace it.
        up.write_part(1, Bytes::from(a.clone()))
            .await
            .map_err(err("part 1 again"))?;
        up.write_part(2, Bytes::from_static(b"tail"))
            .await
            .map_err(err("part 2"))?;
        up.write_part(2, Bytes::from_static(b"tail"))
            .await
            .map_err(err("part 2 again"))?;
        let first = up.finish().await.map_err(err("finish"))?;
        let again = up.finish().await.map_err(err("repeated finish"))?;
        ensure!(
            first == again,
            "repeated finish returned {again:?}, first {first:?}"
        );
        let data = read_range(s, &key, 0, None, 65536)
            .await
            .map_err(err("read"))?;
        ensure!(
            data == [a.as_slice(), b"tail"].concat(),
            "re-sent parts were appended, not replaced"
        );
        Ok(())
    })
}

fn case_list_paging<'a>(s: &'a dyn Storage, p: &'a str) -> CaseFuture<'a> {
    Box::pin(async move {
        let base = format!("{p}list/");
        let mut expected = BTreeSet::new();
        for i in 0..7 {
            let k = format!("{base}f{i:02}");
            write_object(s, &k, &[b"x"]).await?;
            expected.insert(k);
        }
        for sub in ["d1/x", "d1/y", "d2/z"] {
            let k = format!("{base}{sub}");
            write_object(s, &k, &[b"y"]).await?;
            expected.insert(k);
        }
        let (keys, prefixes, pages) = list_all(s, &base, true, 3).await?;
        ensure!(
            prefixes.is_empty(),
            "recursive listing returned prefixes {prefixes:?}"
        );
        let mut sorted = keys.clone();
        sorted.sort();
        ensure!(
            keys == sorted,
            "recursive listing not in ascending order: {keys:?}"
        );
        let got: BTreeSet<String> = keys.into_iter().collect();
        ensure!(
            got == expected,
            "recursive listing returned {got:?}, expected {expected:?}"
        );
        ensure!(pages >= 4, "10 keys at 3 per page came in {pages} pages");
        let (flat, dirs, _) = list_all(s, &base, false, 2).await?;
        ensure!(
            flat.len() == 7,
            "non-recursive listing returned {} objects: {flat:?}",
            flat.len()
        );
        ensure!(
            dirs == vec![format!("{base}d1/"), format!("{base}d2/")],
            "non-recursive prefixes were {dirs:?}"
        );
        let (none, _, _) = list_all(s, &format!("{p}list-nothing/"), true, 5).await?;
        ensure!(none.is_empty(), "empty prefix listed {none:?}");
        let (partial, _, _) = list_all(s, &format!("{base}f0"), true, 100).await?;
        ensure!(
            partial.len() == 7,
            "plain-string prefix `f0` matched {partial:?}"
        );
        Ok(())
    })
}

fn case_delete<'a>(s: &'a dyn Storage, p: &'a str) -> CaseFuture<'a> {
    Box::pin(async move {
        let key = format!("{p}del/obj");
        write_object(s, &key, &[b"data"]).await?;
        s.delete(&key).await.map_err(err("delete"))?;
        match s.stat(&key).await {
            Err(PluginError::NotFound) => {}
            other => return Err(format!("stat after delete: {other:?}")),
        }
        s.delete(&key)
            .await
            .map_err(err("deleting a missing key must succeed"))?;
        Ok(())
    })
}

fn case_large_object<'a>(s: &'a dyn Storage, p: &'a str, size: usize) -> CaseFuture<'a> {
    Box::pin(async move {
        let key = format!("{p}large/obj");
        let ps = part_size(s, 4 * MIB);
        let data = pattern(size, 9);
        let parts: Vec<&[u8]> = data.chunks(ps).collect();
        ensure!(
            parts.len() >= 2,
            "large object fits one part ({ps} bytes); raise its size"
        );
        let info = write_object(s, &key, &parts).await?;
        ensure!(
            info.size == size as u64,
            "size {} after {} parts",
            info.size,
            parts.len()
        );
        let back = read_range(s, &key, 0, None, MIB as u32)
            .await
            .map_err(err("read"))?;
        ensure!(
            back.len() == data.len() && back == data,
            "large object read back different bytes"
        );
        Ok(())
    })
}

fn case_concurrent_writers<'a>(s: &'a dyn Storage, p: &'a str) -> CaseFuture<'a> {
    Box::pin(async move {
        let writes = (0..8u64).map(|i| {
            let key = format!("{p}conc/w{i}");
            async move {
                let a = pattern(10_000 + i as usize, i);
                write_object(s, &key, &[&a]).await.map(|_| (key, a))
            }
        });
        let done = futures::future::join_all(writes).await;
        for r in done {
            let (key, a) = r?;
            let back = read_range(s, &key, 0, None, 4096)
                .await
                .map_err(err("read"))?;
            ensure!(back == a, "concurrent writer {key} reads back wrong bytes");
        }
        // Two writers to one key: the object is one of them, whole, never a mix.
        let key = format!("{p}conc/same");
        let (x, y) = (pattern(30_000, 77), pattern(30_000, 78));
        let (px, py): ([&[u8]; 1], [&[u8]; 1]) = ([&x], [&y]);
        let (r1, r2) = futures::join!(write_object(s, &key, &px), write_object(s, &key, &py));
        r1?;
        r2?;
        let back = read_range(s, &key, 0, None, 4096)
            .await
            .map_err(err("read"))?;
        ensure!(
            back == x || back == y,
            "racing writers produced a mixed object"
        );
        Ok(())
    })
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

fn case_abort<'a>(s: &'a dyn Storage, p: &'a str, root: Option<&'a Path>) -> CaseFuture<'a> {
    Box::pin(async move {
        let key = format!("{p}abort/obj");
        let ps = part_size(s, 16 * 1024);
        // Plugins may keep temp data anywhere under the root (storage-local: `.abs-tmp/`),
        // so compare the whole tree before and after: cases run one at a time.
        let before: BTreeSet<PathBuf> = root
            .map(files_under)
            .unwrap_or_default()
            .into_iter()
            .collect();
        let mut up = s
            .begin_upload(&key, None)
            .await
            .map_err(err("begin-upload"))?;
        up.write_part(1, Bytes::from(pattern(ps, 5)))
            .await
            .map_err(err("part 1"))?;
        // Not visible before finish.
        match s.stat(&key).await {
            Err(PluginError::NotFound) => {}
            other => return Err(format!("unfinished upload visible to stat: {other:?}")),
        }
        up.abort().await.map_err(err("abort"))?;
        match s.stat(&key).await {
            Err(PluginError::NotFound) => {}
            other => return Err(format!("aborted upload visible to stat: {other:?}")),
        }
        // Dropping an unfinished upload is an abort too.
        let dropped_key = format!("{p}abort/dropped");
        let mut up = s
            .begin_upload(&dropped_key, None)
            .await
            .map_err(err("begin-upload"))?;
        up.write_part(1, Bytes::from_static(b"partial"))
            .await
            .map_err(err("part 1"))?;
        drop(up);
        // The drop-abort runs in the background (blocking pool): poll, bounded, for it.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let (left, _, _) = list_all(s, &format!("{p}abort/"), true, 100).await?;
            let files: Vec<PathBuf> = root
                .map(files_under)
                .unwrap_or_default()
                .into_iter()
                .filter(|f| !before.contains(f))
                .collect();
            if left.is_empty() && files.is_empty() {
                break;
            }
            ensure!(
                std::time::Instant::now() < deadline,
                "aborted uploads left objects {left:?} / files on disk {files:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        Ok(())
    })
}

fn case_errors_mapped<'a>(s: &'a dyn Storage, p: &'a str) -> CaseFuture<'a> {
    Box::pin(async move {
        let missing = format!("{p}errors/missing");
        match s.stat(&missing).await {
            Err(PluginError::NotFound) => {}
            other => return Err(format!("stat of a missing key: {other:?}")),
        }
        match s.open(&missing, 0, None).await {
            Err(PluginError::NotFound) => {}
            Ok(_) => return Err("open of a missing key succeeded".into()),
            Err(e) => return Err(format!("open of a missing key: {e}")),
        }
        for bad in ["../escape", "/absolute", "a//b", "a/./b", "a/../../b", ""] {
            match s.begin_upload(bad, None).await {
                Err(PluginError::Denied) => {}
                Ok(_) => return Err(format!("begin-upload accepted invalid key {bad:?}")),
                Err(e) => return Err(format!("begin-upload {bad:?}: expected denied, got {e}")),
            }
            match s.open(bad, 0, None).await {
                Err(PluginError::Denied) => {}
                Ok(_) => return Err(format!("open accepted invalid key {bad:?}")),
                Err(e) => return Err(format!("open {bad:?}: expected denied, got {e}")),
            }
            match s.stat(bad).await {
                Err(PluginError::Denied) => {}
                other => return Err(format!("stat {bad:?}: expected denied, got {other:?}")),
            }
        }
        Ok(())
    })
}

/// Runs every case against `storage` and reports each outcome.
/// Deletes every object under `prefix` (what a suite run left: its cases clean up after
/// themselves only when they pass); returns how many there were.
///
/// # Errors
/// The listing or a delete failed.
pub async fn remove_prefix(storage: &dyn Storage, prefix: &str) -> Result<usize, PluginError> {
    let mut keys = Vec::new();
    let mut cursor = None;
    loop {
        let page = storage.list(prefix, true, cursor, 1000).await?;
        keys.extend(page.objects.into_iter().map(|o| o.key));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    for k in &keys {
        storage.delete(k).await?;
    }
    Ok(keys.len())
}

pub async fn run_storage_suite(storage: Arc<dyn Storage>, options: &SuiteOptions) -> SuiteReport {
    let s = storage.as_ref();
    let p = options.prefix.as_str();
    let large = if options.large_object_bytes == 0 {
        24 * MIB
    } else {
        options.large_object_bytes
    };
    let cases: Vec<(&'static str, CaseFuture<'_>)> = vec![
        (
            "write, read, range read, stat, replace",
            case_write_read_stat(s, p),
        ),
        ("empty object", case_empty_object(s, p)),
        (
            "parts are idempotent, finish is repeatable",
            case_part_idempotence(s, p),
        ),
        ("list paging, order, prefixes", case_list_paging(s, p)),
        ("delete and idempotent delete", case_delete(s, p)),
        ("large object in parts", case_large_object(s, p, large)),
        ("concurrent writers", case_concurrent_writers(s, p)),
        (
            "abort and drop leave nothing",
            case_abort(s, p, options.local_root.as_deref()),
        ),
        (
            "errors mapped (not-found, denied)",
            case_errors_mapped(s, p),
        ),
    ];
    let mut report = SuiteReport::default();
    for (name, case) in cases {
        match case.await {
            Ok(()) => report.passed.push(name),
            Err(why) => report.failed.push((name, why)),
        }
    }
    report
}

// ---- codec properties --------------------------------------------------------------

/// Encodes `data` pushed in pieces of the given sizes (cycled), then finishes.
///
/// # Errors
/// The plugin's error.
pub fn encode_with(
    stream: &mut dyn CodecStream,
    data: &[u8],
    cuts: &[usize],
) -> Result<Vec<u8>, PluginError> {
    let mut out = Vec::new();
    let mut rest = data;
    let mut i = 0;
    while !rest.is_empty() {
        let n = cuts
            .get(i % cuts.len().max(1))
            .copied()
            .unwrap_or(rest.len())
            .clamp(1, rest.len());
        let (head, tail) = rest.split_at(n);
        out.extend(stream.push(head)?);
        rest = tail;
        i += 1;
    }
    // An empty push is legal anywhere; make sure codecs accept it.
    out.extend(stream.push(&[])?);
    out.extend(stream.finish()?);
    Ok(out)
}

/// One round trip: encode with `enc_cuts`, decode with `dec_cuts`, compare.
///
/// # Errors
/// A description of the mismatch or the failing call.
pub fn codec_round_trip(
    codec: &dyn Codec,
    options: &str,
    keys: &[Key],
    data: &[u8],
    enc_cuts: &[usize],
    dec_cuts: &[usize],
) -> Result<Vec<u8>, String> {
    let mut enc = codec
        .encoder(options, keys)
        .map_err(err("encoder.create"))?;
    let encoded = encode_with(enc.as_mut(), data, enc_cuts).map_err(err("encode"))?;
    let mut dec = codec
        .decoder(options, keys)
        .map_err(err("decoder.create"))?;
    let decoded = encode_with(dec.as_mut(), &encoded, dec_cuts).map_err(err("decode"))?;
    if decoded != data {
        return Err(format!(
            "round trip of {} bytes gave {} different bytes (encoded size {})",
            data.len(),
            decoded.len(),
            encoded.len()
        ));
    }
    Ok(encoded)
}

/// The codec contract: round trips of empty, small, compressible and random data under
/// many chunkings, and a truncated stream rejected or at least not silently lengthened.
pub fn run_codec_properties(codec: &dyn Codec, options: &str, keys: &[Key]) -> SuiteReport {
    let mut report = SuiteReport::default();
    let mut case = |name: &'static str, r: Result<(), String>| match r {
        Ok(()) => report.passed.push(name),
        Err(why) => report.failed.push((name, why)),
    };
    case(
        "empty input round trip",
        codec_round_trip(codec, options, keys, &[], &[1], &[1]).map(|_| ()),
    );
    case(
        "one byte round trip",
        codec_round_trip(codec, options, keys, b"x", &[1], &[1]).map(|_| ()),
    );
    let text: Vec<u8> = (0..40_000u32)
        .flat_map(|i| format!("+ k I {i}\n- S s 5 hello\n").into_bytes())
        .collect();
    let random = pattern(MIB + 17, 11);
    for (name, data) in [("text", &text), ("random", &random)] {
        let cuts: [&[usize]; 4] = [&[MIB], &[1, 7, 4096, 65_536], &[333_333], &[usize::MAX]];
        let mut r = Ok(());
        let mut first: Option<Vec<u8>> = None;
        for (i, c) in cuts.iter().enumerate() {
            let dec_cuts: &[usize] = if i % 2 == 0 {
                &[64 * 1024]
            } else {
                &[13, 100_000]
            };
            match codec_round_trip(codec, options, keys, data, c, dec_cuts) {
                Ok(enc) => {
                    first.get_or_insert(enc);
                }
                Err(e) => {
                    r = Err(format!("{name} data, cuts {c:?}: {e}"));
                    break;
                }
            }
        }
        case(
            if name == "text" {
                "compressible data, many chunkings"
            } else {
                "random data, many chunkings"
            },
            r,
        );
    }
    // A decoder fed a cut-off stream must not return the whole input.
    let truncated = (|| {
        let mut enc = codec
            .encoder(options, keys)
            .map_err(err("encoder.create"))?;
        let encoded = encode_with(enc.as_mut(), &text, &[MIB]).map_err(err("encode"))?;
        if encoded.len() < 2 {
            return Ok(());
        }
        let cut = &encoded[..encoded.len() / 2];
        let mut dec = codec
            .decoder(options, keys)
            .map_err(err("decoder.create"))?;
        match encode_with(dec.as_mut(), cut, &[64 * 1024]) {
            Ok(out) if out == text => {
                Err("decoding half the stream returned all the data".to_string())
            }
            _ => Ok(()),
        }
    })();
    case("truncated stream is not silently complete", truncated);
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_is_deterministic_and_varied() {
        assert_eq!(pattern(100, 1), pattern(100, 1));
        assert_ne!(pattern(100, 1), pattern(100, 2));
        let p = pattern(4096, 3);
        let distinct: BTreeSet<u8> = p.iter().copied().collect();
        assert!(distinct.len() > 200);
    }
}
