//! Records transcripts of a real Aerospike server for the test node's drift check
//! (`tests/data/transcripts/*.json`, replayed by the `transcripts` integration test; see
//! docs/TEST-NODE.md).
//!
//! `cargo run -p testkit --bin record-transcripts -- --host 127.0.0.1:3000 --out
//! tests/data/transcripts`
//!
//! Before each transcript the recorder empties what it uses, and waits until that is visible:
//! it truncates the sets `transcript` and `transcript-b`, deletes its record in no set, drops
//! the secondary indexes named `transcript_*` and the UDF modules `transcript*`. It leaves
//! everything else alone, so the server may be shared; streams then keep only the records of
//! the transcript's sets (`only_sets`) and the index and module lists only its own entries.
//!
//! Length: one recording function per transcript, in the order the transcripts are listed;
//! kept in one file so a new transcript is added beside the others.

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

use base64::Engine as _;
use clap::Parser;

use testkit::transcript::*;

#[derive(Debug, Parser)]
#[command(name = "record-transcripts")]
struct Args {
    /// The server, host:port.
    #[arg(long, default_value = "127.0.0.1:3000")]
    host: String,
    /// Where the JSON files go.
    #[arg(long, default_value = "tests/data/transcripts")]
    out: PathBuf,
    /// Record only these transcripts (records, scans, info, sindex, udf).
    #[arg(long)]
    only: Vec<String>,
}

const NS: &str = "test";
const SET: &str = "transcript";
const SET_B: &str = "transcript-b";
/// The key of the one record the transcripts write in no set.
const NO_SET_KEY: &str = "transcript-no-set";
/// Header timeout of single-record commands, as a client's total timeout.
const TIMEOUT_MS: u32 = 1000;
/// Socket timeout of scans (header slot and field), as the engine sends it.
const SCAN_TIMEOUT_MS: u32 = 10_000;
/// Scan task ids: a random start per run, then counting up. Each scan needs an id the server
/// has not seen lately: it answers 4 to a scan whose id belongs to a job it still lists, and
/// it keeps finished jobs listed for a while (so ids must not repeat across runs either).
static NEXT_TASK: AtomicU64 = AtomicU64::new(0);

fn task_id() -> u64 {
    NEXT_TASK.fetch_add(1, Ordering::Relaxed)
}

fn main() {
    let args = Args::parse();
    if let Err(e) = run(&args) {
        eprintln!("record-transcripts: {e}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> io::Result<()> {
    NEXT_TASK.store(rand::random::<u64>() >> 1, Ordering::Relaxed);
    std::fs::create_dir_all(&args.out)?;
    let mut side = Session::new(&args.host);
    let server = format!(
        "{} {}, single node, namespace {NS} in memory",
        side.info("edition")?,
        side.info("build")?
    );
    type Script = fn(&mut Recorder) -> io::Result<()>;
    let scripts: [(&str, &str, &[&str], Script); 5] = [
        (
            "records",
            "Single-record writes of every particle type, reads, write policies and their \
             result codes, operate, touch, delete, batch reads and writes (batch-index, as the \
             Rust client 3.0 / C client send them).",
            &[],
            records,
        ),
        (
            "scans",
            "Partition scans as the backup engine (ScanRequest::encode) and the clients send \
             them: all partitions, subsets, digest resume, sets, bin lists, no bin data, \
             filter expressions (good and unparsable), max-records, records-per-second, \
             unknown namespace, compressed replies.",
            &[SET, SET_B],
            scans,
        ),
        (
            "info",
            "Info commands the engine and the clients read: build, edition, namespaces, \
             namespace and set statistics (key names), replicas, partition-generation, racks, \
             get-config, truncate.",
            &[],
            info,
        ),
        (
            "sindex",
            "Secondary indexes: sindex-create in both syntaxes (bin, set and expression \
             indexes), its errors, sindex-list, sindex-delete.",
            &[],
            sindex,
        ),
        (
            "udf",
            "UDF modules: udf-put, udf-list, udf-get, udf-remove and their errors.",
            &[],
            udf,
        ),
    ];
    for (name, about, only_sets, script) in scripts {
        if !args.only.is_empty() && !args.only.iter().any(|o| o == name) {
            continue;
        }
        eprintln!("recording {name}...");
        clean(&mut side)?;
        let mut r = Recorder {
            session: Session::new(&args.host),
            side: Session::new(&args.host),
            exchanges: Vec::new(),
            only_sets: only_sets.iter().map(|s| s.to_string()).collect(),
        };
        script(&mut r)?;
        let t = Transcript {
            about: about.to_string(),
            server: server.clone(),
            only_sets: r.only_sets,
            exchanges: r.exchanges,
        };
        let path = args.out.join(format!("{name}.json"));
        std::fs::write(&path, t.to_json())?;
        eprintln!("  {} exchanges -> {}", t.exchanges.len(), path.display());
    }
    clean(&mut side)?;
    Ok(())
}

// ------------------------------------------------------------------------------------------
// the recorder
// ------------------------------------------------------------------------------------------

struct Recorder {
    /// The recorded connection.
    session: Session,
    /// Unrecorded look-ups (waits, setup the replay does not need).
    side: Session,
    exchanges: Vec<Exchange>,
    only_sets: Vec<String>,
}

#[derive(Default)]
struct Opts {
    check: Check,
    keys: Vec<String>,
    present: Vec<String>,
}

fn keys(check: Check, keys: &[&str], present: &[&str]) -> Opts {
    Opts {
        check,
        keys: keys.iter().map(|s| s.to_string()).collect(),
        present: present.iter().map(|s| s.to_string()).collect(),
    }
}

fn check(check: Check) -> Opts {
    Opts {
        check,
        ..Opts::default()
    }
}

impl Recorder {
    fn record(&mut self, name: &str, kind: Kind, opts: Opts, request: Vec<u8>) -> io::Result<()> {
        let reply = self.session.exchange(kind, &request)?;
        let info = (kind == Kind::Info).then(|| {
            String::from_utf8_lossy(&request[8..])
                .trim_end_matches('\n')
                .to_string()
        });
        let e = Exchange {
            name: name.to_string(),
            kind,
            check: opts.check,
            keys: opts.keys,
            present: opts.present,
            info,
            request: hex_compact(&request),
            reply: Vec::new(),
        };
        let lines = normalize(
            CheckSpec {
                kind,
                check: e.check,
                keys: &e.keys,
                present: &e.present,
                only_sets: &self.only_sets,
            },
            &reply,
        );
        for l in &lines {
            let short: String = l.chars().take(160).collect();
            eprintln!("    {name}: {short}");
        }
        self.exchanges.push(Exchange { reply: lines, ..e });
        Ok(())
    }

    fn info(&mut self, name: &str, command: &str, opts: Opts) -> io::Result<()> {
        self.record(name, Kind::Info, opts, info_request(&[command]))
    }

    fn msg(&mut self, name: &str, req: &MsgRequest) -> io::Result<()> {
        self.record(name, Kind::Record, Opts::default(), req.encode())
    }

    fn stream(&mut self, name: &str, opts: Opts, req: &MsgRequest) -> io::Result<()> {
        self.record(name, Kind::Stream, opts, req.encode())
    }

    /// Polls an info command (unrecorded) until `done` holds.
    fn wait(&mut self, command: &str, done: impl Fn(&str) -> bool) -> io::Result<()> {
        wait_info(&mut self.side, command, done)
    }
}

fn wait_info(s: &mut Session, command: &str, done: impl Fn(&str) -> bool) -> io::Result<()> {
    let start = Instant::now();
    loop {
        let v = s.info(command)?;
        if done(&v) {
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(30) {
            return Err(io::Error::other(format!(
                "waited 30 s for {command}, last answer {v:?}"
            )));
        }
        sleep(Duration::from_millis(100));
    }
}

/// `k=v` fields of an info answer (`;` or `:` separated).
fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.split([';', ':'])
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

/// Empties what the transcripts use (see the module comment) and waits until the server
/// shows it.
fn clean(s: &mut Session) -> io::Result<()> {
    for set in [SET, SET_B] {
        let answer = s.info(&format!("truncate:namespace={NS};set={set}"))?;
        if answer != "ok" {
            return Err(io::Error::other(format!("truncate {set}: {answer}")));
        }
        wait_info(s, &format!("sets/{NS}/{set}"), |v| {
            field(v, "objects").is_none_or(|o| o == "0")
        })?;
    }
    s.exchange(Kind::Record, &delete("", &Value::s(NO_SET_KEY)).encode())?;
    let list = s.info(&format!("sindex-list:ns={NS}"))?;
    for entry in list.split(';').filter(|e| !e.is_empty()) {
        if let Some(name) = field(entry, "indexname").filter(|n| n.starts_with("transcript_")) {
            s.info(&format!("sindex-delete:namespace={NS};indexname={name}"))?;
        }
    }
    wait_info(s, &format!("sindex-list:ns={NS}"), |v| {
        !v.contains("indexname=transcript_")
    })?;
    let udfs = s.info("udf-list")?;
    for entry in udfs.split(';').filter(|e| !e.is_empty()) {
        if let Some(f) = entry
            .split(',')
            .find_map(|p| p.strip_prefix("filename="))
            .filter(|f| f.starts_with("transcript"))
        {
            s.info(&format!("udf-remove:filename={f}"))?;
        }
    }
    wait_info(s, "udf-list", |v| !v.contains("filename=transcript"))?;
    // Records written in the truncation's millisecond would count as truncated.
    sleep(Duration::from_millis(1100));
    Ok(())
}

// ------------------------------------------------------------------------------------------
// request builders (client layouts)
// ------------------------------------------------------------------------------------------

fn int(i: i64) -> Value {
    Value::Int(i)
}

/// A key of set `set`: namespace, set, digest, and the key itself when `send_key`, in the
/// order the clients write them.
fn key_fields(req: MsgRequest, set: &str, key: &Value, send_key: bool) -> MsgRequest {
    let mut req = req.field(FIELD_NAMESPACE, NS);
    if !set.is_empty() {
        req = req.field(FIELD_SET, set);
    }
    req = req.field(FIELD_DIGEST, digest(set, key));
    if send_key {
        req = req.field(FIELD_KEY, key_field(key));
    }
    req
}

fn put(set: &str, key: &Value, send_key: bool, bins: &[(&str, Value)]) -> MsgRequest {
    let mut req = key_fields(
        MsgRequest {
            info2: INFO2_WRITE,
            timeout: TIMEOUT_MS,
            ..MsgRequest::default()
        },
        set,
        key,
        send_key,
    );
    for (name, v) in bins {
        req = req.op(WireOp::new(OP_WRITE, name, v));
    }
    req
}

fn get(set: &str, key: &Value) -> MsgRequest {
    key_fields(
        MsgRequest {
            info1: INFO1_READ | INFO1_GET_ALL,
            timeout: TIMEOUT_MS,
            ..MsgRequest::default()
        },
        set,
        key,
        false,
    )
}

fn get_bins(set: &str, key: &Value, bins: &[&str]) -> MsgRequest {
    let mut req = key_fields(
        MsgRequest {
            info1: INFO1_READ,
            timeout: TIMEOUT_MS,
            ..MsgRequest::default()
        },
        set,
        key,
        false,
    );
    for b in bins {
        req = req.op(WireOp::read(b));
    }
    req
}

fn header(set: &str, key: &Value) -> MsgRequest {
    key_fields(
        MsgRequest {
            info1: INFO1_READ | INFO1_NOBINDATA,
            timeout: TIMEOUT_MS,
            ..MsgRequest::default()
        },
        set,
        key,
        false,
    )
}

fn delete(set: &str, key: &Value) -> MsgRequest {
    key_fields(
        MsgRequest {
            info2: INFO2_WRITE | INFO2_DELETE,
            timeout: TIMEOUT_MS,
            ..MsgRequest::default()
        },
        set,
        key,
        false,
    )
}

// Expressions, packed as the clients pack them: `[op, args...]`.
const EXP_EQ: i64 = 1;
const EXP_GE: i64 = 4;
const EXP_LT: i64 = 5;
const EXP_AND: i64 = 16;
const EXP_ADD: i64 = 20;
const EXP_LAST_UPDATE: i64 = 66;
const EXP_SET_NAME: i64 = 70;
const EXP_BIN: i64 = 81;
const EXP_TYPE_INT: i64 = 2;

fn exp_call(op: i64, args: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    pack_array(&mut out, args.len() + 1);
    pack_int(&mut out, op);
    for a in args {
        out.extend_from_slice(a);
    }
    out
}

fn exp_int(i: i64) -> Vec<u8> {
    let mut out = Vec::new();
    pack_int(&mut out, i);
    out
}

fn exp_int_bin(name: &str) -> Vec<u8> {
    let mut n = Vec::new();
    pack_name(&mut n, name);
    exp_call(EXP_BIN, &[exp_int(EXP_TYPE_INT), n])
}

/// A scan laid out as the backup engine's `ScanRequest::encode` lays it out: info1 READ
/// (+ NOBINDATA for an empty bin list, + COMPRESS_RESPONSE), info3 PARTITION_DONE, the socket
/// timeout in the header; fields namespace, set, socket timeout, task id, filter, partition
/// ids, resume digests; a READ op (particle type 0) per bin.
#[derive(Default)]
struct EngineScan<'a> {
    set: &'a str,
    bins: Option<&'a [&'a str]>,
    filter: Option<Vec<u8>>,
    partitions: Vec<u16>,
    resume: Vec<[u8; 20]>,
    compress: bool,
    namespace: Option<&'a str>,
}

impl EngineScan<'_> {
    fn request(&self) -> MsgRequest {
        let mut info1 = INFO1_READ;
        if self.bins.is_some_and(|b| b.is_empty()) {
            info1 |= INFO1_NOBINDATA;
        }
        if self.compress {
            info1 |= INFO1_COMPRESS_RESPONSE;
        }
        let mut req = MsgRequest {
            info1,
            info3: INFO3_PARTITION_DONE,
            timeout: SCAN_TIMEOUT_MS,
            ..MsgRequest::default()
        }
        .field(FIELD_NAMESPACE, self.namespace.unwrap_or(NS));
        if !self.set.is_empty() {
            req = req.field(FIELD_SET, self.set);
        }
        req = req
            .field(FIELD_SOCKET_TIMEOUT, SCAN_TIMEOUT_MS.to_be_bytes())
            .field(FIELD_TASK_ID, task_id().to_be_bytes());
        if let Some(f) = &self.filter {
            req = req.field(FIELD_FILTER_EXP, f);
        }
        if !self.partitions.is_empty() {
            let ids: Vec<u8> = self
                .partitions
                .iter()
                .flat_map(|p| p.to_le_bytes())
                .collect();
            req = req.field(FIELD_PID_ARRAY, ids);
        }
        if !self.resume.is_empty() {
            req = req.field(FIELD_DIGEST_ARRAY, self.resume.concat());
        }
        for b in self.bins.unwrap_or(&[]) {
            req = req.op(WireOp::read(b));
        }
        req
    }
}

/// A partition query as the Rust client 3.0 writes it: fields namespace, set, records per
/// second, socket timeout, task id, filter, partition ids, digests, max records; NOBINDATA
/// unless bins are asked for.
#[derive(Default)]
struct ClientScan<'a> {
    namespace: Option<&'a str>,
    set: &'a str,
    bins: Option<&'a [&'a str]>,
    all_bins: bool,
    records_per_second: u32,
    filter: Option<Vec<u8>>,
    partitions: Vec<u16>,
    digests: Vec<[u8; 20]>,
    max_records: u64,
    /// Leave out info3 PARTITION_DONE (an old-style scan).
    no_partition_done: bool,
}

impl ClientScan<'_> {
    fn request(&self) -> MsgRequest {
        let mut info1 = INFO1_READ;
        if !self.all_bins && self.bins.is_none() {
            info1 |= INFO1_NOBINDATA;
        }
        let mut req = MsgRequest {
            info1,
            info3: if self.no_partition_done {
                0
            } else {
                INFO3_PARTITION_DONE
            },
            timeout: SCAN_TIMEOUT_MS,
            ..MsgRequest::default()
        }
        .field(FIELD_NAMESPACE, self.namespace.unwrap_or(NS));
        if !self.set.is_empty() {
            req = req.field(FIELD_SET, self.set);
        }
        if self.records_per_second > 0 {
            req = req.field(
                FIELD_RECORDS_PER_SECOND,
                self.records_per_second.to_be_bytes(),
            );
        }
        req = req
            .field(FIELD_SOCKET_TIMEOUT, SCAN_TIMEOUT_MS.to_be_bytes())
            .field(FIELD_TASK_ID, task_id().to_be_bytes());
        if let Some(f) = &self.filter {
            req = req.field(FIELD_FILTER_EXP, f);
        }
        if !self.partitions.is_empty() {
            let ids: Vec<u8> = self
                .partitions
                .iter()
                .flat_map(|p| p.to_le_bytes())
                .collect();
            req = req.field(FIELD_PID_ARRAY, ids);
        }
        if !self.digests.is_empty() {
            req = req.field(FIELD_DIGEST_ARRAY, self.digests.concat());
        }
        if self.max_records > 0 {
            req = req.field(FIELD_MAX_RECORDS, self.max_records.to_be_bytes());
        }
        for b in self.bins.unwrap_or(&[]) {
            req = req.op(WireOp::read(b));
        }
        req
    }
}

fn all_partitions() -> Vec<u16> {
    (0..4096).collect()
}

/// Integer keys of `set` whose records fall into one partition, `n` of them (the first
/// partition to collect `n` keys), sorted by digest.
fn keys_in_one_partition(set: &str, n: usize) -> (u16, Vec<i64>) {
    let mut by_part: BTreeMap<u16, Vec<i64>> = BTreeMap::new();
    for k in 100_000i64.. {
        let p = partition_of(&digest(set, &int(k)));
        let v = by_part.entry(p).or_default();
        v.push(k);
        if v.len() == n {
            let mut keys = v.clone();
            keys.sort_by_key(|k| digest(set, &int(*k)));
            return (p, keys);
        }
    }
    unreachable!("the key space is unbounded")
}

// ------------------------------------------------------------------------------------------
// records
// ------------------------------------------------------------------------------------------

/// An HLL value the server made (init + add on a scratch record), or `None` if it would not.
fn server_hll(r: &mut Recorder) -> io::Result<Option<Vec<u8>>> {
    let key = Value::s("hll-scratch");
    let mut init = Vec::new();
    pack_array(&mut init, 5);
    pack_int(&mut init, 1); // add
    Value::List(vec![Value::s("a"), Value::s("b"), Value::s("c")]).pack(&mut init);
    pack_int(&mut init, 4); // index bits
    pack_int(&mut init, 4); // min-hash bits
    pack_int(&mut init, 0); // flags
    let req = key_fields(
        MsgRequest {
            info2: INFO2_WRITE,
            timeout: TIMEOUT_MS,
            ..MsgRequest::default()
        },
        SET,
        &key,
        false,
    )
    .op(WireOp {
        op: 16, // HLL modify
        ptype: PT_BLOB,
        name: b"h".to_vec(),
        data: init,
    });
    let reply = r.side.exchange(Kind::Record, &req.encode())?;
    let lines = normalize(
        CheckSpec {
            kind: Kind::Record,
            check: Check::Exact,
            keys: &[],
            present: &[],
            only_sets: &[],
        },
        &reply,
    );
    if !lines.first().is_some_and(|l| l.starts_with("rc=0 ")) {
        eprintln!("    (no HLL: {lines:?})");
        return Ok(None);
    }
    let reply = r.side.exchange(Kind::Record, &get(SET, &key).encode())?;
    let bytes = reply.frames.first().and_then(|(_, body)| {
        // One message, one op: the HLL particle is the op's data.
        let ops_at = 22;
        let n_ops = u16::from_be_bytes([*body.get(20)?, *body.get(21)?]);
        if n_ops != 1 || u16::from_be_bytes([*body.get(18)?, *body.get(19)?]) != 0 {
            return None;
        }
        let len = u32::from_be_bytes(body.get(ops_at..ops_at + 4)?.try_into().ok()?) as usize;
        let op = body.get(ops_at + 4..ops_at + 4 + len)?;
        (op[1] == PT_HLL).then(|| op[4 + op[3] as usize..].to_vec())
    });
    r.side.exchange(Kind::Record, &delete(SET, &key).encode())?;
    Ok(bytes)
}

fn records(r: &mut Recorder) -> io::Result<()> {
    let all = Value::s("all-types");
    let hll = server_hll(r)?;
    let mut bins = vec![
        ("i", int(42)),
        ("neg", int(-123_456_789_012)),
        ("max", int(i64::MAX)),
        ("f", Value::Float(3.25)),
        ("s", Value::s("héllo")),
        ("empty", Value::s("")),
        ("b", Value::Blob(vec![0, 1, 2, 0xff])),
        ("t", Value::Bool(true)),
        (
            "l",
            Value::List(vec![
                int(1),
                Value::s("a"),
                Value::Float(2.5),
                Value::List(vec![Value::Bool(false), Value::Nil]),
                int(300),
                int(-1),
                int(70_000),
            ]),
        ),
        (
            "m",
            Value::Map(vec![
                (Value::s("b"), int(2)),
                (Value::s("a"), int(1)),
                (int(3), Value::Blob(vec![9])),
            ]),
        ),
        (
            "km",
            Value::FlaggedMap(1, vec![(Value::s("a"), int(1)), (Value::s("z"), int(26))]),
        ),
        (
            "kvm",
            Value::FlaggedMap(3, vec![(int(1), Value::s("x")), (int(2), Value::s("y"))]),
        ),
        ("ol", Value::OrderedList(vec![int(1), int(2), int(3)])),
        (
            "g",
            Value::Geo(r#"{"type":"Point","coordinates":[-122.0,37.5]}"#.to_string()),
        ),
    ];
    if let Some(h) = hll {
        bins.push(("h", Value::Raw(PT_HLL, h)));
    }
    r.msg(
        "put every particle type (send-key, string key)",
        &put(SET, &all, true, &bins),
    )?;
    r.msg("get all bins", &get(SET, &all))?;
    r.msg(
        "get named bins",
        &get_bins(SET, &all, &["i", "s", "missing"]),
    )?;
    r.msg("get header only", &header(SET, &all))?;
    r.msg(
        "get all bins, compressed reply",
        &MsgRequest {
            info1: INFO1_READ | INFO1_GET_ALL | INFO1_COMPRESS_RESPONSE,
            ..get(SET, &all)
        },
    )?;
    r.record(
        "get all bins, compressed request",
        Kind::Record,
        Opts::default(),
        get(SET, &all).encode_compressed(),
    )?;
    let missing = Value::s("missing");
    r.msg("get a missing key", &get(SET, &missing))?;
    r.msg("header of a missing key", &header(SET, &missing))?;

    // Keys: digest only, integer, blob.
    r.msg(
        "put digest only (integer key, no send-key)",
        &put(SET, &int(7), false, &[("n", int(7))]),
    )?;
    r.msg("get the digest-only record", &get(SET, &int(7)))?;
    r.msg(
        "put with an integer key sent",
        &put(SET, &int(8), true, &[("n", int(8))]),
    )?;
    r.msg("get it", &get(SET, &int(8)))?;
    let blob_key = Value::Blob(vec![1, 2, 3]);
    r.msg(
        "put with a blob key sent",
        &put(SET, &blob_key, true, &[("n", int(9))]),
    )?;
    r.msg("get it", &get(SET, &blob_key))?;
    let no_set = Value::s(NO_SET_KEY);
    r.msg("put in no set", &put("", &no_set, true, &[("n", int(10))]))?;
    r.msg("get it", &get("", &no_set))?;
    r.msg("delete it", &delete("", &no_set))?;

    // TTLs.
    let ttl = Value::s("ttl");
    r.msg(
        "put with ttl 3600",
        &MsgRequest {
            ttl: 3600,
            ..put(SET, &ttl, true, &[("n", int(1))])
        },
    )?;
    r.msg("header of the ttl record", &header(SET, &ttl))?;
    r.msg(
        "put with ttl -1 (never expire)",
        &MsgRequest {
            ttl: u32::MAX,
            ..put(SET, &ttl, true, &[("n", int(2))])
        },
    )?;
    r.msg("header after ttl -1", &header(SET, &ttl))?;
    r.msg(
        "put with ttl -2 (keep)",
        &MsgRequest {
            ttl: u32::MAX - 1,
            ..put(SET, &ttl, true, &[("n", int(3))])
        },
    )?;
    r.msg(
        "put with ttl above 10 years",
        &MsgRequest {
            ttl: 10 * 365 * 86_400 + 86_400,
            ..put(SET, &ttl, true, &[("n", int(4))])
        },
    )?;

    // Write policies.
    r.msg(
        "create-only on an existing record",
        &MsgRequest {
            info2: INFO2_WRITE | INFO2_CREATE_ONLY,
            ..put(SET, &all, true, &[("i", int(1))])
        },
    )?;
    r.msg(
        "update-only on a missing record",
        &MsgRequest {
            info3: INFO3_UPDATE_ONLY,
            ..put(SET, &missing, true, &[("i", int(1))])
        },
    )?;
    r.msg(
        "replace-only on a missing record",
        &MsgRequest {
            info3: INFO3_REPLACE_ONLY,
            ..put(SET, &missing, true, &[("i", int(1))])
        },
    )?;
    r.msg(
        "expect generation 5 on generation 1",
        &MsgRequest {
            info2: INFO2_WRITE | INFO2_GENERATION,
            generation: 5,
            ..put(SET, &all, true, &[("i", int(1))])
        },
    )?;
    r.msg(
        "expect generation 1 on generation 1",
        &MsgRequest {
            info2: INFO2_WRITE | INFO2_GENERATION,
            generation: 1,
            ..put(SET, &all, true, &[("i", int(43))])
        },
    )?;
    r.msg(
        "bin name of 16 bytes",
        &put(SET, &all, true, &[("sixteen-bytes-xx", int(1))]),
    )?;
    r.msg("write without ops", &put(SET, &all, true, &[]))?;
    r.msg(
        "key-ordered map out of key order",
        &put(
            SET,
            &Value::s("bad-map"),
            true,
            &[(
                "km",
                Value::FlaggedMap(1, vec![(Value::s("z"), int(1)), (Value::s("a"), int(2))]),
            )],
        ),
    )?;
    r.msg(
        "ordered list out of order",
        &put(
            SET,
            &Value::s("bad-list"),
            true,
            &[("ol", Value::OrderedList(vec![int(3), int(1)]))],
        ),
    )?;
    r.msg(
        "replace on an existing record",
        &MsgRequest {
            info3: INFO3_CREATE_OR_REPLACE,
            ..put(SET, &int(8), true, &[("r", Value::s("replaced"))])
        },
    )?;
    r.msg("get the replaced record", &get(SET, &int(8)))?;
    r.msg(
        "write another set's name on an existing record",
        &MsgRequest {
            fields: vec![
                (FIELD_NAMESPACE, NS.as_bytes().to_vec()),
                (FIELD_SET, SET_B.as_bytes().to_vec()),
                (FIELD_DIGEST, digest(SET, &int(8)).to_vec()),
            ],
            ..put(SET, &int(8), false, &[("n", int(1))])
        },
    )?;
    r.msg(
        "send-key with another key for the digest",
        &MsgRequest {
            fields: vec![
                (FIELD_NAMESPACE, NS.as_bytes().to_vec()),
                (FIELD_SET, SET.as_bytes().to_vec()),
                (FIELD_DIGEST, digest(SET, &all).to_vec()),
                (FIELD_KEY, key_field(&Value::s("other"))),
            ],
            ..put(SET, &all, false, &[("i", int(44))])
        },
    )?;

    // Operate.
    r.msg(
        "operate: add, append, read (respond-all-ops)",
        &key_fields(
            MsgRequest {
                info1: INFO1_READ,
                info2: INFO2_WRITE | INFO2_RESPOND_ALL_OPS,
                timeout: TIMEOUT_MS,
                ..MsgRequest::default()
            },
            SET,
            &all,
            false,
        )
        .op(WireOp::new(OP_INCR, "i", &int(5)))
        .op(WireOp::new(OP_APPEND, "s", &Value::s("!")))
        .op(WireOp::read("i"))
        .op(WireOp::read("s")),
    )?;
    r.msg(
        "operate: add a float to an integer bin",
        &key_fields(
            MsgRequest {
                info2: INFO2_WRITE,
                timeout: TIMEOUT_MS,
                ..MsgRequest::default()
            },
            SET,
            &all,
            false,
        )
        .op(WireOp::new(OP_INCR, "i", &Value::Float(1.5))),
    )?;
    r.msg(
        "touch",
        &key_fields(
            MsgRequest {
                info2: INFO2_WRITE,
                timeout: TIMEOUT_MS,
                ..MsgRequest::default()
            },
            SET,
            &all,
            false,
        )
        .op(WireOp {
            op: OP_TOUCH,
            ptype: 0,
            name: Vec::new(),
            data: Vec::new(),
        }),
    )?;
    r.msg(
        "write a null bin (deletes the bin)",
        &put(SET, &all, true, &[("empty", Value::Nil)]),
    )?;
    r.msg("header after the writes", &header(SET, &all))?;
    r.msg("get after the writes", &get(SET, &all))?;

    // Filters on single records.
    let false_filter = exp_call(EXP_EQ, &[exp_int_bin("i"), exp_int(0)]);
    r.msg(
        "write with a false filter",
        &MsgRequest {
            fields: vec![
                (FIELD_NAMESPACE, NS.as_bytes().to_vec()),
                (FIELD_SET, SET.as_bytes().to_vec()),
                (FIELD_DIGEST, digest(SET, &all).to_vec()),
                (FIELD_FILTER_EXP, false_filter.clone()),
            ],
            ..put(SET, &all, false, &[("i", int(1))])
        },
    )?;
    r.msg(
        "read with a false filter",
        &get(SET, &all).field(FIELD_FILTER_EXP, &false_filter),
    )?;
    r.msg(
        "read with an unparsable filter",
        &get(SET, &all).field(FIELD_FILTER_EXP, [0xc1]),
    )?;
    r.msg(
        "read a missing key with an unparsable filter",
        &get(SET, &missing).field(FIELD_FILTER_EXP, [0xc1]),
    )?;
    r.msg(
        "delete expecting generation 9",
        &MsgRequest {
            info2: INFO2_WRITE | INFO2_DELETE | INFO2_GENERATION,
            generation: 9,
            ..delete(SET, &all)
        },
    )?;

    // Deletes.
    r.msg("delete an existing record", &delete(SET, &int(7)))?;
    r.msg("delete it again", &delete(SET, &int(7)))?;
    r.msg("get the deleted record", &get(SET, &int(7)))?;
    r.msg(
        "write in an unknown namespace",
        &MsgRequest {
            fields: vec![
                (FIELD_NAMESPACE, b"nosuchns".to_vec()),
                (FIELD_SET, SET.as_bytes().to_vec()),
                (FIELD_DIGEST, digest(SET, &all).to_vec()),
            ],
            ..put(SET, &all, false, &[("i", int(1))])
        },
    )?;

    // Batches.
    let row_fields = |set: &str, key: Option<&Value>| {
        let mut f = vec![(FIELD_NAMESPACE, NS.as_bytes().to_vec())];
        f.push((FIELD_SET, set.as_bytes().to_vec()));
        if let Some(k) = key {
            f.push((FIELD_KEY, key_field(k)));
        }
        f
    };
    let read_row = |key: &Value| BatchRow {
        digest: digest(SET, key),
        read_attr: INFO1_READ | INFO1_GET_ALL,
        fields: row_fields(SET, None),
        ..BatchRow::default()
    };
    let batch = |rows: &[BatchRow]| {
        MsgRequest {
            info1: INFO1_BATCH,
            timeout: TIMEOUT_MS,
            ..MsgRequest::default()
        }
        .field(FIELD_BATCH_INDEX, batch_field(0x8, rows))
    };
    r.stream(
        "batch read: existing, missing, existing",
        Opts::default(),
        &batch(&[read_row(&all), read_row(&missing), read_row(&int(8))]),
    )?;
    r.stream(
        "batch read of named bins, repeated header",
        Opts::default(),
        &batch(&[
            BatchRow {
                ops: vec![WireOp::read("i"), WireOp::read("t")],
                read_attr: INFO1_READ,
                ..read_row(&all)
            },
            BatchRow {
                digest: digest(SET, &ttl),
                repeat: true,
                ..BatchRow::default()
            },
        ]),
    )?;
    let write_row = |key: &Value, write_attr: u8, info_attr: u8, generation: u16| BatchRow {
        digest: digest(SET, key),
        write_attr: INFO2_WRITE | INFO2_RESPOND_ALL_OPS | write_attr,
        info_attr,
        generation: Some(generation),
        fields: row_fields(SET, Some(key)),
        ops: vec![WireOp::new(OP_WRITE, "bw", &Value::s("batch"))],
        ..BatchRow::default()
    };
    r.stream(
        "batch write: new, create-only existing, update-only missing, stale generation, \
         delete, read",
        Opts::default(),
        &batch(&[
            write_row(&Value::s("batch-new"), 0, 0, 0),
            write_row(&all, INFO2_CREATE_ONLY, 0, 0),
            write_row(&Value::s("batch-missing"), 0, INFO3_UPDATE_ONLY, 0),
            write_row(&all, INFO2_GENERATION, 0, 1),
            BatchRow {
                digest: digest(SET, &int(8)),
                write_attr: INFO2_WRITE | INFO2_RESPOND_ALL_OPS | INFO2_DELETE,
                generation: Some(0),
                fields: row_fields(SET, None),
                ..BatchRow::default()
            },
            read_row(&Value::s("batch-new")),
        ]),
    )?;
    r.msg(
        "get the batch-written record",
        &get(SET, &Value::s("batch-new")),
    )?;
    r.stream(
        "batch write reporting all errors: create-only existing, read",
        Opts::default(),
        &MsgRequest {
            info1: INFO1_BATCH,
            timeout: TIMEOUT_MS,
            ..MsgRequest::default()
        }
        .field(
            FIELD_BATCH_INDEX,
            batch_field(
                0x8 | 0x4,
                &[
                    write_row(&all, INFO2_CREATE_ONLY, 0, 0),
                    read_row(&Value::s("batch-new")),
                ],
            ),
        ),
    )?;
    r.msg("get the batch-deleted record", &get(SET, &int(8)))?;
    r.stream(
        "batch read with an unparsable row filter",
        Opts::default(),
        &batch(&[
            BatchRow {
                fields: {
                    let mut f = row_fields(SET, None);
                    f.push((FIELD_FILTER_EXP, vec![0xc1]));
                    f
                },
                ..read_row(&all)
            },
            read_row(&Value::s("batch-new")),
        ]),
    )?;
    Ok(())
}

// ------------------------------------------------------------------------------------------
// scans
// ------------------------------------------------------------------------------------------

fn scans(r: &mut Recorder) -> io::Result<()> {
    // The data set: 12 records in SET, 4 in SET_B, 5 in one partition of SET. (No records
    // in no set: the recording server may hold other users' records there.)
    for k in 1..=12 {
        let mut bins = vec![("n", int(k)), ("s", Value::Str(format!("v{k}")))];
        if k % 2 == 0 {
            bins.push(("l", Value::List(vec![int(k), int(k * 2)])));
        }
        r.msg(
            &format!("setup: put {SET} {k}"),
            &put(SET, &int(k), k % 3 != 0, &bins),
        )?;
    }
    for k in 1..=4 {
        r.msg(
            &format!("setup: put {SET_B} {k}"),
            &put(SET_B, &int(k), true, &[("n", int(100 + k))]),
        )?;
    }
    let (p, same) = keys_in_one_partition(SET, 6);
    // The first five are written; the sixth (between them in digest order or after) is not.
    for (i, k) in same.iter().take(5).enumerate() {
        r.msg(
            &format!("setup: put {SET} {k} (partition {p}, #{i} by digest)"),
            &put(
                SET,
                &int(*k),
                true,
                &[("n", int(*k)), ("p", int(i64::from(p)))],
            ),
        )?;
    }
    let same_digests: Vec<[u8; 20]> = same.iter().map(|k| digest(SET, &int(*k))).collect();
    let written: Vec<[u8; 20]> = same_digests[..5].to_vec();
    let unwritten = same_digests[5];
    let pids = all_partitions();

    // As the engine sends them.
    r.stream(
        "engine: all partitions",
        Opts::default(),
        &EngineScan {
            partitions: pids.clone(),
            ..EngineScan::default()
        }
        .request(),
    )?;
    r.stream(
        "engine: all partitions of a set",
        Opts::default(),
        &EngineScan {
            set: SET,
            partitions: pids.clone(),
            ..EngineScan::default()
        }
        .request(),
    )?;
    r.stream(
        "engine: a set that has no records",
        Opts::default(),
        &EngineScan {
            set: "nosuchset",
            partitions: pids.clone(),
            ..EngineScan::default()
        }
        .request(),
    )?;
    r.stream(
        "engine: bin list",
        Opts::default(),
        &EngineScan {
            set: SET,
            bins: Some(&["n", "l", "missing"]),
            partitions: pids.clone(),
            ..EngineScan::default()
        }
        .request(),
    )?;
    r.stream(
        "engine: no bin data",
        Opts::default(),
        &EngineScan {
            set: SET,
            bins: Some(&[]),
            partitions: pids.clone(),
            ..EngineScan::default()
        }
        .request(),
    )?;
    r.stream(
        "engine: compressed reply",
        Opts::default(),
        &EngineScan {
            set: SET,
            partitions: pids.clone(),
            compress: true,
            ..EngineScan::default()
        }
        .request(),
    )?;
    r.stream(
        "engine: resume one partition after its 2nd record",
        Opts::default(),
        &EngineScan {
            resume: vec![written[1]],
            ..EngineScan::default()
        }
        .request(),
    )?;
    r.stream(
        "engine: resume after a digest that is not stored",
        Opts::default(),
        &EngineScan {
            resume: vec![unwritten],
            ..EngineScan::default()
        }
        .request(),
    )?;
    r.stream(
        "engine: resume after the last record of its partition",
        Opts::default(),
        &EngineScan {
            resume: vec![written[4]],
            ..EngineScan::default()
        }
        .request(),
    )?;
    let some_parts: Vec<u16> = [1i64, 2, 3]
        .iter()
        .map(|k| partition_of(&digest(SET, &int(*k))))
        .collect();
    r.stream(
        "engine: some partitions plus a resumed one",
        Opts::default(),
        &EngineScan {
            set: SET,
            partitions: some_parts.clone(),
            resume: vec![written[2]],
            ..EngineScan::default()
        }
        .request(),
    )?;
    let lut_ge = |ns: i64| exp_call(EXP_GE, &[exp_call(EXP_LAST_UPDATE, &[]), exp_int(ns)]);
    r.stream(
        "engine: filter last-update >= 0",
        Opts::default(),
        &EngineScan {
            set: SET,
            partitions: pids.clone(),
            filter: Some(lut_ge(0)),
            ..EngineScan::default()
        }
        .request(),
    )?;
    r.stream(
        "engine: filter last-update >= year 2200",
        Opts::default(),
        &EngineScan {
            set: SET,
            partitions: pids.clone(),
            filter: Some(lut_ge(7_258_118_400_000_000_000)),
            ..EngineScan::default()
        }
        .request(),
    )?;
    r.stream(
        "engine: filter 1e18 <= last-update < year 2200",
        Opts::default(),
        &EngineScan {
            set: SET,
            partitions: pids.clone(),
            filter: Some(exp_call(
                EXP_AND,
                &[
                    lut_ge(1_000_000_000_000_000_000),
                    exp_call(
                        EXP_LT,
                        &[
                            exp_call(EXP_LAST_UPDATE, &[]),
                            exp_int(7_258_118_400_000_000_000),
                        ],
                    ),
                ],
            )),
            ..EngineScan::default()
        }
        .request(),
    )?;
    r.stream(
        "engine: filter set name == transcript-b (no set field)",
        Opts::default(),
        &EngineScan {
            partitions: pids.clone(),
            filter: Some(exp_call(
                EXP_EQ,
                &[exp_call(EXP_SET_NAME, &[]), Value::s(SET_B).packed()],
            )),
            ..EngineScan::default()
        }
        .request(),
    )?;
    r.stream(
        "engine: filter integer bin n >= 10",
        Opts::default(),
        &EngineScan {
            set: SET,
            partitions: pids.clone(),
            filter: Some(exp_call(EXP_GE, &[exp_int_bin("n"), exp_int(10)])),
            ..EngineScan::default()
        }
        .request(),
    )?;
    let valid = exp_call(EXP_GE, &[exp_int_bin("n"), exp_int(10)]);
    let unparsable: [(&str, Vec<u8>); 8] = [
        ("a byte msgpack never uses", vec![0xc1]),
        ("a truncated array", vec![0x93, 0x04]),
        ("an unknown op code", exp_call(999, &[exp_int(1)])),
        ("a bare integer", exp_int(5)),
        ("trailing bytes", [valid.clone(), vec![0x00]].concat()),
        (
            "a comparison missing an operand",
            exp_call(EXP_EQ, &[exp_int(1)]),
        ),
        (
            "an integer result (add)",
            exp_call(EXP_ADD, &[exp_int(1), exp_int(2)]),
        ),
        ("an empty field", Vec::new()),
    ];
    for (what, bytes) in unparsable {
        r.stream(
            &format!("engine: unparsable filter: {what}"),
            Opts::default(),
            &EngineScan {
                set: SET,
                partitions: pids.clone(),
                filter: Some(bytes),
                ..EngineScan::default()
            }
            .request(),
        )?;
    }
    r.stream(
        "engine: unknown namespace",
        Opts::default(),
        &EngineScan {
            namespace: Some("nosuchns"),
            partitions: pids.clone(),
            ..EngineScan::default()
        }
        .request(),
    )?;

    // As the Rust client sends them.
    r.stream(
        "client: all partitions, all bins",
        Opts::default(),
        &ClientScan {
            all_bins: true,
            partitions: pids.clone(),
            ..ClientScan::default()
        }
        .request(),
    )?;
    r.stream(
        "client: all partitions, no bin list (no bin data)",
        Opts::default(),
        &ClientScan {
            set: SET,
            partitions: pids.clone(),
            ..ClientScan::default()
        }
        .request(),
    )?;
    r.stream(
        "client: some partitions, including empty ones",
        Opts::default(),
        &ClientScan {
            set: SET,
            all_bins: true,
            partitions: [some_parts.clone(), vec![p, 4095]].concat(),
            ..ClientScan::default()
        }
        .request(),
    )?;
    r.stream(
        "client: max-records 2 in one partition",
        Opts::default(),
        &ClientScan {
            set: SET,
            all_bins: true,
            partitions: vec![p],
            max_records: 2,
            ..ClientScan::default()
        }
        .request(),
    )?;
    r.stream(
        "client: max-records 2, resumed in that partition",
        Opts::default(),
        &ClientScan {
            set: SET,
            all_bins: true,
            digests: vec![written[1]],
            max_records: 2,
            ..ClientScan::default()
        }
        .request(),
    )?;
    r.stream(
        "client: max-records 3 over all partitions (count only)",
        check(Check::Count),
        &ClientScan {
            set: SET,
            all_bins: true,
            partitions: pids.clone(),
            max_records: 3,
            ..ClientScan::default()
        }
        .request(),
    )?;
    r.stream(
        "client: records-per-second 20",
        Opts::default(),
        &ClientScan {
            set: SET,
            all_bins: true,
            partitions: pids.clone(),
            records_per_second: 20,
            ..ClientScan::default()
        }
        .request(),
    )?;
    r.stream(
        "client: digest resume plus partition ids",
        Opts::default(),
        &ClientScan {
            all_bins: true,
            partitions: some_parts.clone(),
            digests: vec![written[0]],
            ..ClientScan::default()
        }
        .request(),
    )?;
    r.stream(
        "client: no partition list, no PARTITION_DONE flag (old scan)",
        Opts::default(),
        &ClientScan {
            set: SET,
            all_bins: true,
            no_partition_done: true,
            ..ClientScan::default()
        }
        .request(),
    )?;
    r.stream(
        "client: partition ids without the PARTITION_DONE flag",
        Opts::default(),
        &ClientScan {
            set: SET,
            all_bins: true,
            partitions: pids.clone(),
            no_partition_done: true,
            ..ClientScan::default()
        }
        .request(),
    )?;
    r.stream(
        "client: no partition list, PARTITION_DONE flag",
        Opts::default(),
        &ClientScan {
            set: SET_B,
            all_bins: true,
            ..ClientScan::default()
        }
        .request(),
    )?;
    r.stream(
        "client: unknown namespace",
        Opts::default(),
        &ClientScan {
            namespace: Some("nosuchns"),
            partitions: pids.clone(),
            ..ClientScan::default()
        }
        .request(),
    )?;
    r.stream(
        "client: unparsable filter",
        Opts::default(),
        &ClientScan {
            set: SET,
            partitions: pids,
            filter: Some(exp_call(999, &[])),
            ..ClientScan::default()
        }
        .request(),
    )?;
    // Scans meant to succeed must have: an error there is the recording going wrong (a
    // reused task id, a busy server), not something to keep.
    let meant_to_fail = [
        "unparsable",
        "unknown namespace",
        "PARTITION_DONE flag",
        "no partition list",
    ];
    for e in &r.exchanges {
        if e.kind == Kind::Stream
            && !meant_to_fail.iter().any(|m| e.name.contains(m))
            && e.reply
                .iter()
                .any(|l| l.starts_with("rc=") && !l.starts_with("rc=0 "))
        {
            return Err(io::Error::other(format!(
                "scan {:?} failed on the server: {:?}",
                e.name,
                e.reply.last()
            )));
        }
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------
// info
// ------------------------------------------------------------------------------------------

fn info(r: &mut Recorder) -> io::Result<()> {
    r.info("build", "build", Opts::default())?;
    r.info("edition", "edition", Opts::default())?;
    r.info("version", "version", Opts::default())?;
    r.info("namespaces", "namespaces", Opts::default())?;
    r.info(
        "partition-generation",
        "partition-generation",
        check(Check::Shape),
    )?;
    r.info("replicas", "replicas", check(Check::Shape))?;
    r.info("racks", "racks:", check(Check::Shape))?;
    r.info(
        "several commands in one request",
        "build\nnamespaces",
        Opts::default(),
    )?;
    r.info(
        "namespace statistics",
        &format!("namespace/{NS}"),
        keys(
            Check::Keys,
            &[],
            &[
                "objects",
                "master_objects",
                "tombstones",
                "prole_objects",
                "data_used_bytes",
                "current_time",
                "replication-factor",
                "default-ttl",
                "nsup-period",
                "strong-consistency",
            ],
        ),
    )?;
    r.info(
        "namespace statistics of an unknown namespace",
        "namespace/nosuchns",
        Opts::default(),
    )?;
    r.info(
        "get-config namespace",
        &format!("get-config:context=namespace;id={NS}"),
        keys(
            Check::Keys,
            &["strong-consistency", "conflict-resolution-policy"],
            &[
                "replication-factor",
                "default-ttl",
                "nsup-period",
                "allow-ttl-without-nsup",
            ],
        ),
    )?;
    r.info(
        "get-config service",
        "get-config:context=service",
        keys(
            Check::Keys,
            &[],
            &[
                "cluster-name",
                "node-id",
                "proto-fd-max",
                "service-threads",
                "migrate-threads",
                "batch-index-threads",
            ],
        ),
    )?;
    r.info(
        "get-config network",
        "get-config:context=network",
        keys(Check::Keys, &[], &["service.port"]),
    )?;
    for k in 1..=3 {
        r.msg(
            &format!("put {SET} {k}"),
            &put(SET, &int(k), true, &[("n", int(k)), ("s", Value::s("x"))]),
        )?;
    }
    r.msg(
        "put another set",
        &put(SET_B, &int(1), true, &[("n", int(1))]),
    )?;
    r.info(
        "set statistics",
        &format!("sets/{NS}/{SET}"),
        keys(
            Check::Keys,
            &["ns", "set", "objects", "tombstones"],
            &[
                "data_used_bytes",
                "truncate_lut",
                "sindexes",
                "truncating",
                "default-read-touch-ttl-pct",
                "default-ttl",
                "disable-eviction",
                "enable-index",
                "stop-writes-size",
                "stop-writes-count",
                "index_populating",
            ],
        ),
    )?;
    // A truncate within about a second of the writes may leave them (seen on 8.1.2).
    sleep(Duration::from_millis(1100));
    r.info(
        "truncate a set",
        &format!("truncate:namespace={NS};set={SET}"),
        Opts::default(),
    )?;
    r.wait(&format!("sets/{NS}/{SET}"), |v| {
        field(v, "objects") == Some("0")
    })?;
    r.info(
        "set statistics after truncate",
        &format!("sets/{NS}/{SET}"),
        keys(Check::Keys, &["objects"], &["truncate_lut"]),
    )?;
    r.msg("get a truncated record", &get(SET, &int(1)))?;
    r.msg("the other set keeps its record", &header(SET_B, &int(1)))?;
    r.info(
        "truncate with a lut in the future",
        &format!("truncate:namespace={NS};set={SET};lut=9999999999000000000"),
        check(Check::ErrorCode),
    )?;
    r.info(
        "truncate an unknown namespace",
        "truncate:namespace=nosuchns;set=x",
        check(Check::ErrorCode),
    )?;
    r.info(
        "truncate with ns= instead of namespace=",
        &format!("truncate:ns={NS};set={SET_B}"),
        Opts::default(),
    )?;
    r.info(
        "truncate the other set",
        &format!("truncate:namespace={NS};set={SET_B}"),
        Opts::default(),
    )?;
    r.wait(&format!("sets/{NS}/{SET_B}"), |v| {
        field(v, "objects").is_none_or(|o| o == "0")
    })?;
    r.msg("the other set is empty too", &header(SET_B, &int(1)))?;
    Ok(())
}

// ------------------------------------------------------------------------------------------
// secondary indexes
// ------------------------------------------------------------------------------------------

/// Only the transcript's own entries of `sindex-list`.
fn own_indexes() -> Opts {
    keys(Check::Items, &["indexname=transcript_"], &[])
}

/// Only the transcript's own entries of `udf-list`.
fn own_modules() -> Opts {
    keys(Check::Items, &["filename=transcript"], &[])
}

fn sindex(r: &mut Recorder) -> io::Result<()> {
    let list = format!("sindex-list:ns={NS}");
    // Present and built (bin indexes say `state=RW` once built).
    let ok = |v: &str, names: &[&str]| {
        names.iter().all(|n| {
            v.split(';').any(|e| {
                e.contains(&format!("indexname={n}:"))
                    && (e.contains("state=RW") || !e.contains("state="))
            })
        })
    };
    r.info("list: none", &list, own_indexes())?;
    r.info(
        "create a numeric bin index (8.1 syntax)",
        &format!(
            "sindex-create:namespace={NS};set={SET};indexname=transcript_n;bin=n;type=numeric"
        ),
        Opts::default(),
    )?;
    r.info(
        "create a string bin index (old syntax)",
        &format!("sindex-create:ns={NS};set={SET};indexname=transcript_s;indexdata=s,string"),
        Opts::default(),
    )?;
    r.info(
        "create a set index",
        &format!("sindex-create:namespace={NS};set={SET};indexname=transcript_set;indextype=set"),
        Opts::default(),
    )?;
    r.info(
        "create a list index",
        &format!("sindex-create:namespace={NS};set={SET_B};indexname=transcript_l;indextype=list;bin=l;type=numeric"),
        Opts::default(),
    )?;
    r.info(
        "create a bin index on no set",
        &format!(
            "sindex-create:namespace={NS};indexname=transcript_ns;bin=transcript_bin;type=blob"
        ),
        Opts::default(),
    )?;
    r.wait(&list, |v| {
        ok(
            v,
            &[
                "transcript_n",
                "transcript_s",
                "transcript_set",
                "transcript_l",
                "transcript_ns",
            ],
        )
    })?;
    r.info("list: five", &list, own_indexes())?;
    r.info(
        "list with b64=true",
        &format!("sindex-list:ns={NS};b64=true"),
        own_indexes(),
    )?;
    r.info(
        "the same definition again",
        &format!(
            "sindex-create:namespace={NS};set={SET};indexname=transcript_n;bin=n;type=numeric"
        ),
        Opts::default(),
    )?;
    r.info(
        "the same name, another definition",
        &format!(
            "sindex-create:namespace={NS};set={SET};indexname=transcript_n;bin=other;type=numeric"
        ),
        Opts::default(),
    )?;
    r.info(
        "missing namespace",
        "sindex-create:set=x;indexname=transcript_x;bin=n;type=numeric",
        Opts::default(),
    )?;
    r.info(
        "unknown namespace",
        "sindex-create:namespace=nosuchns;indexname=transcript_x;bin=n;type=numeric",
        Opts::default(),
    )?;
    r.info(
        "bad type",
        &format!("sindex-create:namespace={NS};indexname=transcript_x;bin=n;type=float"),
        Opts::default(),
    )?;
    r.info(
        "bad indextype",
        &format!(
            "sindex-create:namespace={NS};indexname=transcript_x;indextype=bogus;bin=n;type=numeric"
        ),
        Opts::default(),
    )?;
    r.info(
        "both indexdata and type",
        &format!(
            "sindex-create:namespace={NS};indexname=transcript_x;indexdata=n,numeric;type=numeric"
        ),
        Opts::default(),
    )?;
    r.info(
        "neither bin nor type",
        &format!("sindex-create:namespace={NS};indexname=transcript_x"),
        Opts::default(),
    )?;
    r.info(
        "set index without a set",
        &format!("sindex-create:namespace={NS};indexname=transcript_x;indextype=set"),
        Opts::default(),
    )?;
    r.info(
        "set index with a bin",
        &format!(
            "sindex-create:namespace={NS};set={SET};indexname=transcript_x;indextype=set;bin=n"
        ),
        Opts::default(),
    )?;
    r.info(
        "list of an unknown namespace",
        "sindex-list:ns=nosuchns",
        Opts::default(),
    )?;
    r.info(
        "delete the string index",
        &format!("sindex-delete:namespace={NS};indexname=transcript_s"),
        Opts::default(),
    )?;
    r.info(
        "delete the set index (ns=)",
        &format!("sindex-delete:ns={NS};indexname=transcript_set"),
        Opts::default(),
    )?;
    r.wait(&list, |v| {
        !v.contains("=transcript_s:") && !v.contains("=transcript_set:")
    })?;
    r.info(
        "delete a missing index",
        &format!("sindex-delete:namespace={NS};indexname=transcript_none"),
        Opts::default(),
    )?;
    r.info(
        "delete without a namespace",
        "sindex-delete:indexname=transcript_n",
        Opts::default(),
    )?;
    r.info("list: three left", &list, own_indexes())?;
    // 8.1 expression indexes: listed with `bin=null` and their expression (backups must
    // keep them; a scan of `sindex-list` that wants a bin skips them).
    r.info(
        "create an expression index",
        &format!(
            "sindex-create:namespace={NS};set={SET};indexname=transcript_exp;exp=k1ECo2FnZQ==;type=numeric"
        ),
        Opts::default(),
    )?;
    r.info(
        "expression index with a context",
        &format!(
            "sindex-create:namespace={NS};set={SET};indexname=transcript_x;exp=k1ECo2FnZQ==;context=khAA;type=numeric"
        ),
        Opts::default(),
    )?;
    // A set has one set index: another name on the same set replaces it.
    r.info(
        "a set index again",
        &format!("sindex-create:namespace={NS};set={SET};indexname=transcript_set2;indextype=set"),
        Opts::default(),
    )?;
    r.info(
        "a second set index on the same set",
        &format!("sindex-create:namespace={NS};set={SET};indexname=transcript_set3;indextype=set"),
        Opts::default(),
    )?;
    r.wait(&list, |v| {
        ok(v, &["transcript_exp", "transcript_set3"]) && !v.contains("=transcript_set2:")
    })?;
    r.info(
        "list with an expression and a set index (b64)",
        &format!("sindex-list:ns={NS};b64=true"),
        own_indexes(),
    )?;
    for name in ["transcript_exp", "transcript_set3"] {
        r.info(
            &format!("delete {name}"),
            &format!("sindex-delete:namespace={NS};indexname={name}"),
            Opts::default(),
        )?;
    }
    r.wait(&list, |v| {
        !v.contains("=transcript_exp:") && !v.contains("=transcript_set3:")
    })?;
    Ok(())
}

// ------------------------------------------------------------------------------------------
// UDF modules
// ------------------------------------------------------------------------------------------

const LUA: &str = "-- transcript module\nfunction hello(rec)\n  return 'hello'\nend\n";

fn udf(r: &mut Recorder) -> io::Result<()> {
    let b64 = base64::engine::general_purpose::STANDARD.encode(LUA);
    let put = |name: &str, content: &str, len: usize| {
        format!("udf-put:filename={name};content={content};content-len={len};udf-type=LUA;")
    };
    r.info("list: none", "udf-list", own_modules())?;
    r.info(
        "put a module",
        &put("transcript.lua", &b64, b64.len()),
        Opts::default(),
    )?;
    r.wait("udf-list", |v| v.contains("transcript.lua"))?;
    r.info("list: one", "udf-list", own_modules())?;
    r.info("get it", "udf-get:filename=transcript.lua", Opts::default())?;
    r.info(
        "put a module without an extension",
        &put("transcript", &b64, b64.len()),
        Opts::default(),
    )?;
    r.info(
        "put with a wrong content-len",
        &put("other.lua", &b64, b64.len() + 4),
        Opts::default(),
    )?;
    r.info(
        "get a missing module",
        "udf-get:filename=nosuch.lua",
        Opts::default(),
    )?;
    r.info(
        "remove it",
        "udf-remove:filename=transcript.lua",
        Opts::default(),
    )?;
    r.wait("udf-list", |v| !v.contains("transcript.lua"))?;
    r.info(
        "remove a missing module",
        "udf-remove:filename=transcript.lua",
        Opts::default(),
    )?;
    r.info("list: none again", "udf-list", own_modules())?;
    Ok(())
}
