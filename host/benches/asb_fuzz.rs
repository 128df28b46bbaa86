//! Long fuzz run of the `.asb` decoder: mutated windows of the asbackup golden files
//! (`tests/data/golden`) and random bytes, each decoded whole and again in random chunks.
//! Every input must decode or fail with an error naming a line of the input, both ways alike,
//! without a panic, and no single allocation may exceed what the input itself could fill
//! (2 × its length + 128 KiB): a length field never sizes a buffer.
//!
//! `cargo bench -p aerospike-backup-service --bench asb_fuzz` runs 1 M inputs;
//! without `--bench` (e.g. `cargo test --all-targets`) a 20 k-input smoke run.
//! `ABS_FUZZ_INPUTS=N` and `ABS_FUZZ_SEED=S` override count and seed.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use abs::asb::{AsbDecoder, AsbItem, ChunkReader, DecodeError};

/// Wraps the system allocator to remember the largest single request since the last reset.
struct Largest;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

// Counting needs a global allocator, which is `unsafe` by definition; every call is passed
// straight to `System` with the caller's own arguments.
#[allow(unsafe_code)]
// SAFETY: forwards to `System` unchanged, only recording sizes.
unsafe impl GlobalAlloc for Largest {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Largest = Largest;

/// Slack over twice the input: the decoder's fixed 64 KiB read-ahead cap plus messages.
const ALLOC_SLACK: usize = 128 * 1024;

const FILES: &[&str] = &[
    "plain/test_00000.asb",
    "compact/test_00000.asb",
    "parallel4/test_00000.asb",
    "parallel4/test_00001.asb",
    "parallel4/test_00002.asb",
    "parallel4/test_00003.asb",
];

/// Text that means something to the format: separators, tags, digits, huge lengths.
const INTERESTING: &[&[u8]] = &[
    b" ",
    b"\n",
    b"\\",
    b"!",
    b"+ ",
    b"- ",
    b"* ",
    b"# ",
    b"9",
    b"99999999999",
    b"18446744073709551616",
    b"268435456",
    b"0",
    b"-",
    b"nan",
    b"=",
    b"\r\n",
    b"\0",
    b"\xff",
    b"+ b 65535\n",
    b"- L l 4 ",
    b"- B! b 999999 ",
    b"+ k B 12 ",
    b"* u L x 99999999 ",
    b"* i test s i N 1 b N ",
];

/// xorshift64*: deterministic, no dependency, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, bytes: &mut Vec<u8>) {
    if bytes.is_empty() {
        bytes.push(rng.next() as u8);
        return;
    }
    let i = rng.below(bytes.len());
    match rng.below(7) {
        0 => bytes[i] ^= 1 << rng.below(8),
        1 => bytes[i] = rng.next() as u8,
        2 => {
            let end = (i + 1 + rng.below(64)).min(bytes.len());
            bytes.drain(i..end);
        }
        3 => {
            let end = (i + 1 + rng.below(256)).min(bytes.len());
            let copy = bytes[i..end].to_vec();
            bytes.splice(i..i, copy);
        }
        4 => bytes.truncate(i),
        5 => {
            let s = INTERESTING[rng.below(INTERESTING.len())];
            bytes.splice(i..i, s.iter().copied());
        }
        _ => {
            // Replace a number with another: where lengths and counts live.
            let run = bytes[i..].iter().take_while(|b| b.is_ascii_digit()).count();
            let digits = (rng.next() % 10_000_000_000).to_string();
            bytes.splice(i..i + run, digits.bytes());
        }
    }
}

/// A golden file and the offsets where its records start, so windows begin on a record.
struct Seed {
    bytes: Vec<u8>,
    starts: Vec<usize>,
}

fn corpus_entry(bytes: Vec<u8>) -> Seed {
    let mut starts = Vec::new();
    let mut prev_was_key = false;
    let mut at = 0;
    for line in bytes.split(|&b| b == b'\n') {
        let key = line.starts_with(b"+ k ");
        if key || (line.starts_with(b"+ n ") && !prev_was_key) {
            starts.push(at);
        }
        prev_was_key = key;
        at += line.len() + 1;
    }
    Seed { bytes, starts }
}

fn input(rng: &mut Rng, corpus: &[Seed]) -> Vec<u8> {
    if rng.below(10) == 0 {
        let n = rng.below(1024);
        return (0..n).map(|_| rng.next() as u8).collect();
    }
    let seed = &corpus[rng.below(corpus.len())];
    let file = &seed.bytes;
    let mut bytes = Vec::new();
    if rng.below(1000) == 0 {
        bytes.extend_from_slice(file);
    } else {
        if rng.below(8) != 0 {
            bytes.extend_from_slice(b"Version 3.1\n");
        }
        // Mostly whole records, so the mutations land in fields the parser reaches.
        let start = if rng.below(8) != 0 && !seed.starts.is_empty() {
            seed.starts[rng.below(seed.starts.len())]
        } else {
            rng.below(file.len())
        };
        let mut end = (start + 64 + rng.below(4096)).min(file.len());
        if rng.below(2) == 0 {
            // End on a record boundary too, so untouched records decode whole.
            end = seed
                .starts
                .iter()
                .copied()
                .find(|&s| s >= end)
                .unwrap_or(file.len());
        }
        bytes.extend_from_slice(&file[start..end]);
    }
    // Sometimes none at all: the window itself ends mid-record.
    for _ in 0..rng.below(5) {
        mutate(rng, &mut bytes);
    }
    bytes
}

type Outcome = (Vec<AsbItem>, Option<DecodeError>);

fn run<R: std::io::BufRead>(mut dec: AsbDecoder<R>) -> Outcome {
    let mut items = Vec::new();
    loop {
        match dec.next_item() {
            Ok(Some(item)) => items.push(item),
            Ok(None) => return (items, None),
            Err(e) => return (items, Some(e)),
        }
    }
}

/// Checks one input; `Err` describes what went wrong.
fn check(bytes: &[u8], rng: &mut Rng) -> Result<(bool, Option<String>), String> {
    let mut chunks = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let n = (1 + rng.below(2000)).min(bytes.len() - pos);
        chunks.push(Ok::<_, std::io::Error>(bytes[pos..pos + n].to_vec()));
        pos += n;
    }
    LARGEST.store(0, Ordering::Relaxed);
    let whole = panic::catch_unwind(|| run(AsbDecoder::new(bytes)))
        .map_err(|_| "the decoder panicked".to_string())?;
    let largest = LARGEST.load(Ordering::Relaxed);
    let bound = 2 * bytes.len() + ALLOC_SLACK;
    if largest > bound {
        return Err(format!(
            "an allocation of {largest} bytes for a {}-byte input",
            bytes.len()
        ));
    }
    let chunked = panic::catch_unwind(AssertUnwindSafe(|| {
        run(AsbDecoder::new(ChunkReader::new(chunks.into_iter())))
    }))
    .map_err(|_| "the decoder panicked on chunked input".to_string())?;
    let text = |o: &Outcome| o.1.as_ref().map(ToString::to_string);
    if whole.0 != chunked.0 || text(&whole) != text(&chunked) {
        return Err(format!(
            "chunking changed the outcome: {:?} vs {:?}",
            text(&whole),
            text(&chunked)
        ));
    }
    let Some(e) = &whole.1 else {
        return Ok((true, None));
    };
    let lines = bytes.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
    if !(1..=lines).contains(&e.line()) {
        return Err(format!("error on line {} of {lines}: {e}", e.line()));
    }
    // The reason without its details, to show which checks the run reached.
    let reason: String = e
        .to_string()
        .split_once(": ")
        .map_or("", |(_, r)| r)
        .split(|c: char| c.is_ascii_digit() || c == '"' || c == '`')
        .next()
        .unwrap_or("")
        .chars()
        .take(48)
        .collect();
    Ok((false, Some(reason)))
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    let count = env("ABS_FUZZ_INPUTS");
    let inputs = count.unwrap_or(if full { 1_000_000 } else { 20_000 });
    let seed = env("ABS_FUZZ_SEED").unwrap_or(1);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/golden");
    let corpus: Vec<Seed> = FILES
        .iter()
        .map(|f| {
            corpus_entry(
                std::fs::read(dir.join(f)).unwrap_or_else(|e| panic!("reading golden {f}: {e}")),
            )
        })
        .collect();
    // Panics are caught and reported with their input; the default hook would only repeat them.
    panic::set_hook(Box::new(|_| {}));
    let mut rng = Rng(seed.max(1));
    let started = Instant::now();
    let (mut ok, mut bytes_total) = (0u64, 0u64);
    let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
    for n in 0..inputs {
        let bytes = input(&mut rng, &corpus);
        bytes_total += bytes.len() as u64;
        match check(&bytes, &mut rng) {
            Ok((true, _)) => ok += 1,
            Ok((false, reason)) => *reasons.entry(reason.unwrap_or_default()).or_default() += 1,
            Err(problem) => {
                let _ = panic::take_hook();
                eprintln!(
                    "asb_fuzz: input {n} (seed {seed}): {problem}\ninput ({} bytes): {:?}",
                    bytes.len(),
                    String::from_utf8_lossy(&bytes[..bytes.len().min(4096)])
                );
                std::process::exit(1);
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "asb_fuzz: {inputs} inputs ({:.1} MB) in {secs:.1} s ({:.0} inputs/s), seed {seed}: \
         {ok} decoded whole, {} refused with a line and reason; no panic, chunking never \
         changed an outcome, no allocation above 2 x input + 128 KiB{}",
        bytes_total as f64 / 1e6,
        inputs as f64 / secs,
        inputs - ok,
        if full || count.is_some() {
            ""
        } else {
            " [smoke run; pass --bench for 1 M inputs]"
        }
    );
    let mut top: Vec<_> = reasons.into_iter().collect();
    top.sort_by_key(|r| std::cmp::Reverse(r.1));
    for (reason, count) in top.iter().take(12) {
        println!("  {count:>8}  {reason}");
    }
    println!("  ({} distinct reasons)", top.len());
}
