//! Transcripts of a real Aerospike server: requests as sent (hex) and replies reduced to what
//! must match (DESIGN: the test node must not drift from the server).
//!
//! `record-transcripts` (a testkit binary) sends requests of the kinds the backup engine and
//! the official clients send to a real server and writes `tests/data/transcripts/*.json`; the
//! integration test `transcripts` replays them against a fresh [`crate::AerospikeNode`] and
//! compares the normalized replies. Both sides normalize with [`normalize`], so only what the
//! comparison keeps has to match. This module does not use the test node's own wire code, so
//! a bug there cannot hide itself.
//!
//! Normalized reply lines:
//! * AS_MSG: one line per message, `rc=<code> [info1=..] [info2=..] [info3=LAST|PARTITION_DONE]
//!   gen=<generation> ttl=<0|+> [idx=<batch index>] <fields> <bins>`; void time only as zero
//!   or not. Runs of record messages (everything but PARTITION_DONE and LAST) are sorted, so
//!   records compare as a multiset while the control messages keep their place. A reply that
//!   came compressed starts with `[compressed]`.
//! * info: `<command>\t<value>` per answered command, the value reduced by the exchange's
//!   [`Check`].
//!
//! Length: the transcript format, its checks and its replay belong together (a check is
//! written and read here); tests are at the end.

use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

// The protocol's numbers, as the test node knows them (the recorder's requests are checked
// by the real server they are recorded against, so sharing them hides nothing).
pub use crate::node::wire::{
    BATCH_MSG_GEN, BATCH_MSG_INFO, BATCH_MSG_REPEAT, BATCH_MSG_TTL, FIELD_BATCH_INDEX,
    FIELD_DIGEST, FIELD_DIGEST_ARRAY, FIELD_FILTER_EXP, FIELD_KEY, FIELD_MAX_RECORDS,
    FIELD_NAMESPACE, FIELD_PID_ARRAY, FIELD_RECORDS_PER_SECOND, FIELD_SET, INFO1_BATCH,
    INFO1_COMPRESS_RESPONSE, INFO1_GET_ALL, INFO1_NOBINDATA, INFO1_READ, INFO2_CREATE_ONLY,
    INFO2_DELETE, INFO2_GENERATION, INFO2_RESPOND_ALL_OPS, INFO2_WRITE, INFO3_CREATE_OR_REPLACE,
    INFO3_LAST, INFO3_PARTITION_DONE, INFO3_REPLACE_ONLY, INFO3_UPDATE_ONLY, OP_APPEND, OP_INCR,
    OP_READ, OP_TOUCH, OP_WRITE, PROTO_VERSION, PT_BLOB, PT_BOOL, PT_FLOAT, PT_GEOJSON, PT_HLL,
    PT_INTEGER, PT_LIST, PT_MAP, PT_NULL, PT_STRING, TYPE_COMPRESSED, TYPE_INFO, TYPE_MSG,
};
/// The scan's task id (the node's name for field 7 is its query id).
pub const FIELD_TASK_ID: u8 = crate::node::wire::FIELD_QUERY_ID;
pub const FIELD_SOCKET_TIMEOUT: u8 = 9;

/// How long one reply may take before the exchange is recorded as timed out.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest reply frame read.
const MAX_FRAME: u64 = 64 << 20;

// ------------------------------------------------------------------------------------------
// transcript files
// ------------------------------------------------------------------------------------------

/// What reply a request gets: one info frame, one AS_MSG message, or messages up to `LAST`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Info,
    Record,
    Stream,
}

/// How much of a reply is compared.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Check {
    /// Everything normalization keeps (records as a multiset between control messages).
    #[default]
    Exact,
    /// Streams: each run of records only by its count.
    Count,
    /// Info: the value as a set of `;`-separated items; with `keys`, only the items that
    /// contain one of them (the recording server may hold other users' indexes and modules).
    Items,
    /// Info: the `k=v` pairs (separated by `;` or `:`) named in `keys` (value compared) and
    /// `present` (only there); every other key is ignored.
    Keys,
    /// Info: every run of digits reads `#`.
    Shape,
    /// Info: an `ERROR:<code>:...` / `error=...` answer only up to its code; others exact.
    ErrorCode,
}

fn is_default_check(c: &Check) -> bool {
    *c == Check::Exact
}

/// One request and its normalized reply.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Exchange {
    pub name: String,
    pub kind: Kind,
    #[serde(default, skip_serializing_if = "is_default_check")]
    pub check: Check,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub present: Vec<String>,
    /// Info requests: the command text (the request bytes hold the same).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<String>,
    /// The whole request frame (proto header included), hex ([`hex_compact`]).
    pub request: String,
    pub reply: Vec<String>,
}

/// A recorded sequence of exchanges, replayed in order on one connection (a new one after
/// the server closed it).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Transcript {
    pub about: String,
    /// `build` and `edition` of the recorded server, and its setup.
    pub server: String,
    /// Streams keep only the records of these sets (none: all records), so records other
    /// users of the recording server kept in the namespace do not count.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub only_sets: Vec<String>,
    pub exchanges: Vec<Exchange>,
}

impl Transcript {
    /// # Errors
    /// An unreadable or malformed file.
    pub fn load(path: &Path) -> io::Result<Transcript> {
        let text = std::fs::read_to_string(path)?;
        serde_json::from_str(&text)
            .map_err(|e| io::Error::other(format!("{}: {e}", path.display())))
    }

    /// Pretty JSON with a trailing newline.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }
}

/// Every `*.json` transcript in `dir`, sorted by file name.
///
/// # Errors
/// An unreadable directory or file.
pub fn load_dir(dir: &Path) -> io::Result<Vec<(String, Transcript)>> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let name = p
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            Transcript::load(&p).map(|t| (name, t))
        })
        .collect()
}

// ------------------------------------------------------------------------------------------
// hex
// ------------------------------------------------------------------------------------------

pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Hex, with every run of 16 or more consecutive little-endian u16 values (a partition id
/// array) written `{pids:<first>-<last>}`, which keeps the all-partitions scans small.
pub fn hex_compact(bytes: &[u8]) -> String {
    let at = |i: usize| {
        bytes
            .get(i..i + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let mut s = String::with_capacity(bytes.len() * 2);
    let mut i = 0;
    while i < bytes.len() {
        let mut n = 0;
        if let Some(first) = at(i) {
            while at(i + 2 * n).is_some_and(|v| Some(v) == first.checked_add(n as u16)) {
                n += 1;
            }
            if n >= 16 {
                let _ = write!(s, "{{pids:{first}-{}}}", first as usize + n - 1);
                i += 2 * n;
                continue;
            }
        }
        let _ = write!(s, "{:02x}", bytes[i]);
        i += 1;
    }
    s
}

/// Reads [`hex`] or [`hex_compact`] text.
///
/// # Errors
/// Odd length, a non-hex digit or a bad `{pids:a-b}`.
pub fn unhex(s: &str) -> io::Result<Vec<u8>> {
    let bad = || io::Error::other(format!("bad hex: {}", &s[..s.len().min(40)]));
    let mut out = Vec::with_capacity(s.len() / 2);
    let mut rest = s;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("{pids:") {
            let (range, after) = r.split_once('}').ok_or_else(bad)?;
            let (a, b) = range.split_once('-').ok_or_else(bad)?;
            let a: u16 = a.parse().map_err(|_| bad())?;
            let b: u16 = b.parse().map_err(|_| bad())?;
            for p in a..=b {
                out.extend_from_slice(&p.to_le_bytes());
            }
            rest = after;
            continue;
        }
        let pair = rest.get(..2).ok_or_else(bad)?;
        out.push(u8::from_str_radix(pair, 16).map_err(|_| bad())?);
        rest = &rest[2..];
    }
    Ok(out)
}

// ------------------------------------------------------------------------------------------
// requests
// ------------------------------------------------------------------------------------------

fn proto(msg_type: u8, body: &[u8]) -> Vec<u8> {
    let v = (u64::from(PROTO_VERSION) << 56) | (u64::from(msg_type) << 48) | body.len() as u64;
    let mut out = Vec::with_capacity(8 + body.len());
    out.extend_from_slice(&v.to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// An info request: each command on its own line.
pub fn info_request(commands: &[&str]) -> Vec<u8> {
    let mut body = String::new();
    for c in commands {
        body.push_str(c);
        body.push('\n');
    }
    proto(TYPE_INFO, body.as_bytes())
}

/// One op of an AS_MSG request.
#[derive(Debug, Clone)]
pub struct WireOp {
    pub op: u8,
    pub ptype: u8,
    pub name: Vec<u8>,
    pub data: Vec<u8>,
}

impl WireOp {
    pub fn new(op: u8, name: &str, value: &Value) -> WireOp {
        let (ptype, data) = value.particle();
        WireOp {
            op,
            ptype,
            name: name.as_bytes().to_vec(),
            data,
        }
    }
    /// A read of one bin (no value).
    pub fn read(name: &str) -> WireOp {
        WireOp {
            op: OP_READ,
            ptype: 0,
            name: name.as_bytes().to_vec(),
            data: Vec::new(),
        }
    }
    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&((4 + self.name.len() + self.data.len()) as u32).to_be_bytes());
        out.extend_from_slice(&[self.op, self.ptype, 0, self.name.len() as u8]);
        out.extend_from_slice(&self.name);
        out.extend_from_slice(&self.data);
    }
}

fn put_field(out: &mut Vec<u8>, ty: u8, data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32 + 1).to_be_bytes());
    out.push(ty);
    out.extend_from_slice(data);
}

/// An AS_MSG request: the 22-byte header, fields in the given order, ops.
#[derive(Debug, Clone, Default)]
pub struct MsgRequest {
    pub info1: u8,
    pub info2: u8,
    pub info3: u8,
    pub info4: u8,
    pub generation: u32,
    pub ttl: u32,
    pub timeout: u32,
    pub fields: Vec<(u8, Vec<u8>)>,
    pub ops: Vec<WireOp>,
}

impl MsgRequest {
    pub fn field(mut self, ty: u8, data: impl AsRef<[u8]>) -> Self {
        self.fields.push((ty, data.as_ref().to_vec()));
        self
    }
    pub fn op(mut self, op: WireOp) -> Self {
        self.ops.push(op);
        self
    }
    /// The AS_MSG body (no proto header).
    pub fn body(&self) -> Vec<u8> {
        let mut out = vec![
            22, self.info1, self.info2, self.info3, self.info4, 0, // result code
        ];
        out.extend_from_slice(&self.generation.to_be_bytes());
        out.extend_from_slice(&self.ttl.to_be_bytes());
        out.extend_from_slice(&self.timeout.to_be_bytes());
        out.extend_from_slice(&(self.fields.len() as u16).to_be_bytes());
        out.extend_from_slice(&(self.ops.len() as u16).to_be_bytes());
        for (ty, data) in &self.fields {
            put_field(&mut out, *ty, data);
        }
        for op in &self.ops {
            op.put(&mut out);
        }
        out
    }
    /// The whole request frame.
    pub fn encode(&self) -> Vec<u8> {
        proto(TYPE_MSG, &self.body())
    }
    /// The request as a compressed (type 4) frame, as clients send big requests.
    pub fn encode_compressed(&self) -> Vec<u8> {
        let inner = self.encode();
        let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        let _ = enc.write_all(&inner);
        let z = enc.finish().unwrap_or_default();
        let mut body = (inner.len() as u64).to_be_bytes().to_vec();
        body.extend_from_slice(&z);
        proto(TYPE_COMPRESSED, &body)
    }
}

/// One row of a batch-index (field 41) request, laid out as the Rust client 3.0 and the C
/// client write them: a full header (`INFO | GEN | TTL` for writes and deletes, `INFO | TTL`
/// for reads) or `REPEAT`.
#[derive(Debug, Clone, Default)]
pub struct BatchRow {
    pub digest: [u8; 20],
    pub repeat: bool,
    pub read_attr: u8,
    pub write_attr: u8,
    pub info_attr: u8,
    /// `Some` writes the generation (write and delete rows).
    pub generation: Option<u16>,
    pub ttl: u32,
    pub fields: Vec<(u8, Vec<u8>)>,
    pub ops: Vec<WireOp>,
}

/// The batch-index field: row count, batch flags, rows.
pub fn batch_field(flags: u8, rows: &[BatchRow]) -> Vec<u8> {
    let mut out = (rows.len() as u32).to_be_bytes().to_vec();
    out.push(flags);
    for (i, r) in rows.iter().enumerate() {
        out.extend_from_slice(&(i as u32).to_be_bytes());
        out.extend_from_slice(&r.digest);
        if r.repeat {
            out.push(BATCH_MSG_REPEAT);
            continue;
        }
        let kind = BATCH_MSG_INFO
            | BATCH_MSG_TTL
            | if r.generation.is_some() {
                BATCH_MSG_GEN
            } else {
                0
            };
        out.extend_from_slice(&[kind, r.read_attr, r.write_attr, r.info_attr]);
        if let Some(g) = r.generation {
            out.extend_from_slice(&g.to_be_bytes());
        }
        out.extend_from_slice(&r.ttl.to_be_bytes());
        out.extend_from_slice(&(r.fields.len() as u16).to_be_bytes());
        out.extend_from_slice(&(r.ops.len() as u16).to_be_bytes());
        for (ty, data) in &r.fields {
            put_field(&mut out, *ty, data);
        }
        for op in &r.ops {
            op.put(&mut out);
        }
    }
    out
}

/// RIPEMD-160 of set, key particle type and key bytes: the record's digest.
pub fn digest(set: &str, key: &Value) -> [u8; 20] {
    use ripemd::{Digest as _, Ripemd160};
    let (ptype, data) = key.particle();
    let mut h = Ripemd160::new();
    h.update(set.as_bytes());
    h.update([ptype]);
    h.update(&data);
    let mut d = [0u8; 20];
    d.copy_from_slice(&h.finalize());
    d
}

/// The `KEY` field of a user key: particle type, then the bytes.
pub fn key_field(key: &Value) -> Vec<u8> {
    let (ptype, data) = key.particle();
    let mut out = vec![ptype];
    out.extend_from_slice(&data);
    out
}

/// Partition of a digest: its first two bytes little-endian, modulo 4096.
pub fn partition_of(d: &[u8; 20]) -> u16 {
    u16::from_le_bytes([d[0], d[1]]) & 0x0fff
}

/// A value as clients write it: bin particles, list / map elements, expression literals.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Nil,
    Int(i64),
    Float(f64),
    Str(String),
    Blob(Vec<u8>),
    Bool(bool),
    List(Vec<Value>),
    /// A list with the ordered flag (an ext element first), elements as given.
    OrderedList(Vec<Value>),
    Map(Vec<(Value, Value)>),
    /// A map with order flags (1 key-ordered, 3 key-value-ordered), entries as given.
    FlaggedMap(u8, Vec<(Value, Value)>),
    /// GeoJSON text (sent with a zero flags byte and no cells, as clients do).
    Geo(String),
    /// Any particle, raw.
    Raw(u8, Vec<u8>),
}

impl Value {
    pub fn s(v: &str) -> Value {
        Value::Str(v.to_string())
    }

    /// Particle type and wire bytes of a bin value.
    pub fn particle(&self) -> (u8, Vec<u8>) {
        match self {
            Value::Nil => (PT_NULL, Vec::new()),
            Value::Int(i) => (PT_INTEGER, i.to_be_bytes().to_vec()),
            Value::Float(f) => (PT_FLOAT, f.to_bits().to_be_bytes().to_vec()),
            Value::Str(s) => (PT_STRING, s.as_bytes().to_vec()),
            Value::Blob(b) => (PT_BLOB, b.clone()),
            Value::Bool(b) => (PT_BOOL, vec![u8::from(*b)]),
            Value::List(_) | Value::OrderedList(_) => {
                let mut v = Vec::new();
                self.pack(&mut v);
                (PT_LIST, v)
            }
            Value::Map(_) | Value::FlaggedMap(..) => {
                let mut v = Vec::new();
                self.pack(&mut v);
                (PT_MAP, v)
            }
            Value::Geo(g) => {
                let mut v = vec![0, 0, 0];
                v.extend_from_slice(g.as_bytes());
                (PT_GEOJSON, v)
            }
            Value::Raw(t, b) => (*t, b.clone()),
        }
    }

    /// Aerospike msgpack: strings, blobs and GeoJSON carry their particle type first.
    pub fn pack(&self, out: &mut Vec<u8>) {
        match self {
            Value::Nil => out.push(0xc0),
            Value::Bool(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
            Value::Int(i) => pack_int(out, *i),
            Value::Float(f) => {
                out.push(0xcb);
                out.extend_from_slice(&f.to_bits().to_be_bytes());
            }
            Value::Str(s) => pack_bytes(out, PT_STRING, s.as_bytes()),
            Value::Blob(b) => pack_bytes(out, PT_BLOB, b),
            Value::Geo(g) => pack_bytes(out, PT_GEOJSON, g.as_bytes()),
            Value::Raw(t, b) => pack_bytes(out, *t, b),
            Value::List(l) => {
                pack_len(out, l.len(), 0x90, 0xdc, 0xdd);
                l.iter().for_each(|v| v.pack(out));
            }
            Value::OrderedList(l) => {
                pack_len(out, l.len() + 1, 0x90, 0xdc, 0xdd);
                out.extend_from_slice(&[0xc7, 0, 1]);
                l.iter().for_each(|v| v.pack(out));
            }
            Value::Map(m) => {
                pack_len(out, m.len(), 0x80, 0xde, 0xdf);
                for (k, v) in m {
                    k.pack(out);
                    v.pack(out);
                }
            }
            Value::FlaggedMap(flags, m) => {
                pack_len(out, m.len() + 1, 0x80, 0xde, 0xdf);
                out.extend_from_slice(&[0xc7, 0, *flags, 0xc0]);
                for (k, v) in m {
                    k.pack(out);
                    v.pack(out);
                }
            }
        }
    }

    /// Packed bytes (expressions, list and map particles).
    pub fn packed(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.pack(&mut v);
        v
    }
}

/// A raw msgpack string (no particle type byte): bin names inside expressions.
pub fn pack_name(out: &mut Vec<u8>, name: &str) {
    let b = name.as_bytes();
    if b.len() < 32 {
        out.push(0xa0 | b.len() as u8);
    } else {
        out.extend_from_slice(&[0xd9, b.len() as u8]);
    }
    out.extend_from_slice(b);
}

/// A msgpack array header.
pub fn pack_array(out: &mut Vec<u8>, n: usize) {
    pack_len(out, n, 0x90, 0xdc, 0xdd);
}

/// Integers in their shortest msgpack form, as the clients pack them.
pub fn pack_int(out: &mut Vec<u8>, i: i64) {
    if (0..128).contains(&i) {
        out.push(i as u8);
    } else if (-32..0).contains(&i) {
        out.push(i as i8 as u8);
    } else if i >= 0 {
        if i < 256 {
            out.extend_from_slice(&[0xcc, i as u8]);
        } else if i < 65_536 {
            out.push(0xcd);
            out.extend_from_slice(&(i as u16).to_be_bytes());
        } else if i <= i64::from(u32::MAX) {
            out.push(0xce);
            out.extend_from_slice(&(i as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&(i as u64).to_be_bytes());
        }
    } else if i >= -128 {
        out.extend_from_slice(&[0xd0, i as i8 as u8]);
    } else if i >= -32_768 {
        out.push(0xd1);
        out.extend_from_slice(&(i as i16).to_be_bytes());
    } else if i >= i64::from(i32::MIN) {
        out.push(0xd2);
        out.extend_from_slice(&(i as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&i.to_be_bytes());
    }
}

fn pack_len(out: &mut Vec<u8>, n: usize, fix: u8, m16: u8, m32: u8) {
    if n < 16 {
        out.push(fix | n as u8);
    } else if n < 1 << 16 {
        out.push(m16);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(m32);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

fn pack_bytes(out: &mut Vec<u8>, ptype: u8, b: &[u8]) {
    let n = b.len() + 1;
    if n < 32 {
        out.push(0xa0 | n as u8);
    } else if n < 256 {
        out.extend_from_slice(&[0xd9, n as u8]);
    } else if n < 1 << 16 {
        out.push(0xda);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
    out.push(ptype);
    out.extend_from_slice(b);
}

// ------------------------------------------------------------------------------------------
// exchanging
// ------------------------------------------------------------------------------------------

/// How a reply ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Complete,
    /// The server closed the connection (before or after some frames).
    Closed,
    TimedOut,
}

/// The frames of one reply, as read.
#[derive(Debug, Clone)]
pub struct RawReply {
    /// (proto type, body) per frame.
    pub frames: Vec<(u8, Vec<u8>)>,
    pub end: End,
}

/// One connection that reconnects after the server closed it.
#[derive(Debug)]
pub struct Session {
    addr: String,
    conn: Option<TcpStream>,
}

impl Session {
    pub fn new(addr: &str) -> Session {
        Session {
            addr: addr.to_string(),
            conn: None,
        }
    }

    fn stream(&mut self) -> io::Result<&mut TcpStream> {
        if self.conn.is_none() {
            let s = TcpStream::connect(&self.addr)?;
            s.set_nodelay(true)?;
            s.set_read_timeout(Some(READ_TIMEOUT))?;
            self.conn = Some(s);
        }
        self.conn
            .as_mut()
            .ok_or_else(|| io::Error::other("no connection"))
    }

    /// Sends one request and reads its whole reply.
    ///
    /// # Errors
    /// Connecting or sending failed (a failed read is part of the reply: [`End`]).
    pub fn exchange(&mut self, kind: Kind, request: &[u8]) -> io::Result<RawReply> {
        // A batch ends only with LAST; other streams also end with an error message.
        let batch = kind == Kind::Stream
            && request.get(1) == Some(&TYPE_MSG)
            && request.get(9).is_some_and(|i| i & INFO1_BATCH != 0);
        let s = self.stream()?;
        s.write_all(request)?;
        let reply = read_reply(s, kind, batch);
        if reply.end != End::Complete {
            self.conn = None;
        }
        Ok(reply)
    }

    /// Sends info commands and returns the answer text (for the recorder's own checks).
    ///
    /// # Errors
    /// No answer.
    pub fn info(&mut self, command: &str) -> io::Result<String> {
        let r = self.exchange(Kind::Info, &info_request(&[command]))?;
        match r.frames.first() {
            Some((TYPE_INFO, body)) if r.end == End::Complete => {
                let text = String::from_utf8_lossy(body);
                let value = text
                    .trim_end_matches('\n')
                    .split_once('\t')
                    .map_or("", |(_, v)| v);
                Ok(value.to_string())
            }
            _ => Err(io::Error::other(format!("no answer to {command}"))),
        }
    }
}

fn read_frame(s: &mut TcpStream) -> io::Result<(u8, Vec<u8>)> {
    let mut hdr = [0u8; 8];
    s.read_exact(&mut hdr)?;
    let v = u64::from_be_bytes(hdr);
    let size = v & 0xffff_ffff_ffff;
    if size > MAX_FRAME {
        return Err(io::Error::other(format!("frame of {size} bytes")));
    }
    let mut body = vec![0u8; size as usize];
    s.read_exact(&mut body)?;
    Ok((hdr[1], body))
}

/// Reads one reply: info and single-record commands get one frame; streams end with a
/// message flagged LAST or, unless a batch, with a message carrying an error code (a server
/// ends a failed scan that way, without LAST).
fn read_reply(s: &mut TcpStream, kind: Kind, batch: bool) -> RawReply {
    let mut frames = Vec::new();
    loop {
        let frame = match read_frame(s) {
            Ok(f) => f,
            Err(e) => {
                let end = match e.kind() {
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => End::TimedOut,
                    _ => End::Closed,
                };
                return RawReply { frames, end };
            }
        };
        let done = match kind {
            Kind::Info | Kind::Record => true,
            Kind::Stream => messages_of(&frame).iter().any(|m| match m {
                Ok(m) => {
                    m.info3 & INFO3_LAST != 0
                        || (!batch && m.result != 0 && m.info3 & INFO3_PARTITION_DONE == 0)
                }
                Err(_) => true,
            }),
        };
        frames.push(frame);
        if done {
            return RawReply {
                frames,
                end: End::Complete,
            };
        }
    }
}

// ------------------------------------------------------------------------------------------
// normalizing
// ------------------------------------------------------------------------------------------

/// One reply message, parsed.
#[derive(Debug, Clone)]
struct Message {
    info1: u8,
    info2: u8,
    info3: u8,
    result: u8,
    generation: u32,
    void_time: u32,
    slot: u32,
    fields: Vec<(u8, Vec<u8>)>,
    ops: Vec<(u8, u8, Vec<u8>, Vec<u8>)>,
}

impl Message {
    fn is_control(&self) -> bool {
        self.info3 & (INFO3_LAST | INFO3_PARTITION_DONE) != 0
    }

    fn set(&self) -> &[u8] {
        self.fields
            .iter()
            .find(|(t, _)| *t == FIELD_SET)
            .map_or(&[], |(_, d)| d.as_slice())
    }
}

fn inflate(body: &[u8]) -> Option<Vec<u8>> {
    let z = body.get(8..)?;
    let mut out = Vec::new();
    flate2::read::ZlibDecoder::new(z)
        .read_to_end(&mut out)
        .ok()?;
    Some(out)
}

/// The frames inside a type-3 or type-4 frame, flattened: (compressed, type 3 body).
fn msg_bodies(frame: &(u8, Vec<u8>)) -> Vec<Result<(bool, Vec<u8>), String>> {
    match frame.0 {
        TYPE_MSG => vec![Ok((false, frame.1.clone()))],
        TYPE_COMPRESSED => {
            let Some(inner) = inflate(&frame.1) else {
                return vec![Err("bad compressed frame".into())];
            };
            let mut out = Vec::new();
            let mut pos = 0;
            while pos < inner.len() {
                let Some(h) = inner.get(pos..pos + 8) else {
                    out.push(Err("truncated inner frame".into()));
                    break;
                };
                let v = u64::from_be_bytes(h.try_into().unwrap_or_default());
                let size = (v & 0xffff_ffff_ffff) as usize;
                let Some(b) = inner.get(pos + 8..pos + 8 + size) else {
                    out.push(Err("truncated inner frame".into()));
                    break;
                };
                if h[1] == TYPE_MSG {
                    out.push(Ok((true, b.to_vec())));
                } else {
                    out.push(Err(format!("inner frame of type {}", h[1])));
                }
                pos += 8 + size;
            }
            out
        }
        t => vec![Err(format!("frame of type {t}"))],
    }
}

fn messages_of(frame: &(u8, Vec<u8>)) -> Vec<Result<Message, String>> {
    let mut out = Vec::new();
    for b in msg_bodies(frame) {
        match b {
            Ok((_, body)) => out.extend(parse_messages(&body)),
            Err(e) => out.push(Err(e)),
        }
    }
    out
}

struct Cur<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cur<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

fn parse_one(c: &mut Cur<'_>) -> Option<Message> {
    let hsz = c.u8()? as usize;
    let mut m = Message {
        info1: c.u8()?,
        info2: c.u8()?,
        info3: c.u8()?,
        result: {
            c.u8()?; // info4
            c.u8()?
        },
        generation: c.u32()?,
        void_time: c.u32()?,
        slot: c.u32()?,
        fields: Vec::new(),
        ops: Vec::new(),
    };
    let n_fields = c.u16()?;
    let n_ops = c.u16()?;
    c.take(hsz.checked_sub(22)?)?;
    for _ in 0..n_fields {
        let len = c.u32()? as usize;
        let f = c.take(len)?;
        let (&ty, data) = f.split_first()?;
        m.fields.push((ty, data.to_vec()));
    }
    for _ in 0..n_ops {
        let len = c.u32()? as usize;
        let o = c.take(len)?;
        let name_len = *o.get(3)? as usize;
        let name = o.get(4..4 + name_len)?;
        m.ops
            .push((o[0], o[1], name.to_vec(), o[4 + name_len..].to_vec()));
    }
    Some(m)
}

fn parse_messages(body: &[u8]) -> Vec<Result<Message, String>> {
    let mut c = Cur { b: body, pos: 0 };
    let mut out = Vec::new();
    while c.pos < body.len() {
        match parse_one(&mut c) {
            Some(m) => out.push(Ok(m)),
            None => {
                out.push(Err(format!("malformed message at byte {}", c.pos)));
                break;
            }
        }
    }
    out
}

fn quoted(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => serde_json::to_string(s).unwrap_or_default(),
        Err(_) => format!("hex:{}", hex(b)),
    }
}

/// A particle as text: numbers and strings readable, everything else hex.
fn particle_text(ptype: u8, data: &[u8]) -> String {
    match (ptype, data.len()) {
        (PT_INTEGER, 8) => format!(
            "int:{}",
            i64::from_be_bytes(data.try_into().unwrap_or_default())
        ),
        (PT_FLOAT, 8) => format!(
            "float:{:?}",
            f64::from_bits(u64::from_be_bytes(data.try_into().unwrap_or_default()))
        ),
        (PT_BOOL, 1) => format!("bool:{}", data[0] != 0),
        (PT_STRING, _) => format!("str:{}", quoted(data)),
        (PT_BLOB, _) => format!("blob:{}", hex(data)),
        (PT_LIST, _) => format!("list:{}", hex(data)),
        (PT_MAP, _) => format!("map:{}", hex(data)),
        (PT_GEOJSON, _) => format!("geo:{}", hex(data)),
        (PT_HLL, _) => format!("hll:{}", hex(data)),
        (t, _) => format!("type{t}:{}", hex(data)),
    }
}

fn field_text(ty: u8, data: &[u8]) -> String {
    match ty {
        FIELD_NAMESPACE => format!("ns={}", quoted(data)),
        FIELD_SET => format!("set={}", quoted(data)),
        FIELD_DIGEST => format!("digest={}", hex(data)),
        FIELD_KEY => match data.split_first() {
            Some((&t, rest)) => format!("key={}", particle_text(t, rest)),
            None => "key=empty".into(),
        },
        t => format!("field{t}={}", hex(data)),
    }
}

fn info3_text(info3: u8) -> String {
    let mut names = Vec::new();
    if info3 & INFO3_LAST != 0 {
        names.push("LAST".to_string());
    }
    if info3 & INFO3_PARTITION_DONE != 0 {
        names.push("PARTITION_DONE".to_string());
    }
    let rest = info3 & !(INFO3_LAST | INFO3_PARTITION_DONE);
    if rest != 0 {
        names.push(format!("0x{rest:02x}"));
    }
    names.join("|")
}

fn message_line(m: &Message) -> String {
    let mut s = format!("rc={}", m.result);
    if m.info1 != 0 {
        let _ = write!(s, " info1=0x{:02x}", m.info1);
    }
    if m.info2 != 0 {
        let _ = write!(s, " info2=0x{:02x}", m.info2);
    }
    if m.info3 != 0 {
        let _ = write!(s, " info3={}", info3_text(m.info3));
    }
    let _ = write!(
        s,
        " gen={} ttl={}",
        m.generation,
        if m.void_time == 0 { "0" } else { "+" }
    );
    if m.slot != 0 {
        let _ = write!(s, " idx={}", m.slot);
    }
    for (ty, data) in &m.fields {
        s.push(' ');
        s.push_str(&field_text(*ty, data));
    }
    for (op, ptype, name, data) in &m.ops {
        s.push_str(" | ");
        if *op != OP_READ {
            let _ = write!(s, "op{op} ");
        }
        let _ = write!(
            s,
            "{}={}",
            String::from_utf8_lossy(name),
            particle_text(*ptype, data)
        );
    }
    s
}

/// What the exchange's check needs besides its kind.
#[derive(Debug, Clone, Copy)]
pub struct CheckSpec<'a> {
    pub kind: Kind,
    pub check: Check,
    pub keys: &'a [String],
    pub present: &'a [String],
    /// See [`Transcript::only_sets`].
    pub only_sets: &'a [String],
}

impl<'a> CheckSpec<'a> {
    pub fn of(t: &'a Transcript, e: &'a Exchange) -> Self {
        CheckSpec {
            kind: e.kind,
            check: e.check,
            keys: &e.keys,
            present: &e.present,
            only_sets: &t.only_sets,
        }
    }
}

/// Reduces a reply to the lines that must match.
pub fn normalize(spec: CheckSpec<'_>, reply: &RawReply) -> Vec<String> {
    let mut lines = match spec.kind {
        Kind::Info => normalize_info(spec, reply),
        Kind::Record | Kind::Stream => normalize_msgs(spec, reply),
    };
    match reply.end {
        End::Complete => {}
        End::Closed => lines.push("[connection closed]".into()),
        End::TimedOut => lines.push("[no reply: timed out]".into()),
    }
    lines
}

fn normalize_msgs(spec: CheckSpec<'_>, reply: &RawReply) -> Vec<String> {
    let mut lines = Vec::new();
    let mut compressed = false;
    let mut msgs: Vec<Result<Message, String>> = Vec::new();
    for f in &reply.frames {
        for b in msg_bodies(f) {
            match b {
                Ok((c, body)) => {
                    compressed |= c;
                    msgs.extend(parse_messages(&body));
                }
                Err(e) => msgs.push(Err(e)),
            }
        }
    }
    if compressed {
        lines.push("[compressed]".to_string());
    }
    // Runs of records between control messages, sorted (or counted).
    let mut run: Vec<String> = Vec::new();
    let flush = |run: &mut Vec<String>, lines: &mut Vec<String>| {
        if run.is_empty() {
            return;
        }
        if spec.check == Check::Count {
            lines.push(format!("[{} records]", run.len()));
            run.clear();
        } else {
            run.sort();
            lines.append(run);
        }
    };
    for m in msgs {
        match m {
            Ok(m) if m.is_control() => {
                flush(&mut run, &mut lines);
                lines.push(message_line(&m));
            }
            Ok(m)
                if spec.kind == Kind::Stream
                    && !spec.only_sets.is_empty()
                    && m.result == 0
                    && !spec.only_sets.iter().any(|s| s.as_bytes() == m.set()) => {}
            Ok(m) => run.push(message_line(&m)),
            Err(e) => {
                flush(&mut run, &mut lines);
                lines.push(format!("[{e}]"));
            }
        }
    }
    flush(&mut run, &mut lines);
    lines
}

fn normalize_info(spec: CheckSpec<'_>, reply: &RawReply) -> Vec<String> {
    let mut lines = Vec::new();
    for (ty, body) in &reply.frames {
        if *ty != TYPE_INFO {
            lines.push(format!("[frame of type {ty}]"));
            continue;
        }
        let text = String::from_utf8_lossy(body);
        for line in text.split('\n').filter(|l| !l.is_empty()) {
            let (name, value) = line.split_once('\t').unwrap_or((line, ""));
            normalize_value(spec, name, value, &mut lines);
        }
    }
    lines
}

fn normalize_value(spec: CheckSpec<'_>, name: &str, value: &str, lines: &mut Vec<String>) {
    match spec.check {
        Check::Exact | Check::Count => lines.push(format!("{name}\t{value}")),
        Check::Shape => lines.push(format!("{name}\t{}", shape(value))),
        Check::ErrorCode => {
            let lower = value.to_ascii_lowercase();
            let v = if lower.starts_with("error:") {
                let code: String = value[6..].chars().take_while(|c| *c != ':').collect();
                format!("ERROR:{code}:...")
            } else if lower.starts_with("error=") {
                "error=...".to_string()
            } else {
                value.to_string()
            };
            lines.push(format!("{name}\t{v}"));
        }
        Check::Items => {
            let mut items: Vec<&str> = value
                .split(';')
                .filter(|i| !i.is_empty())
                .filter(|i| {
                    spec.keys.is_empty() || spec.keys.iter().any(|k| i.contains(k.as_str()))
                })
                .collect();
            items.sort_unstable();
            if items.is_empty() {
                lines.push(format!("{name}\t"));
            }
            for i in items {
                lines.push(format!("{name}\t{i}"));
            }
        }
        Check::Keys => {
            let pairs: Vec<(&str, &str)> = value
                .split([';', ':'])
                .filter(|p| !p.is_empty())
                .map(|p| p.split_once('=').unwrap_or((p, "")))
                .collect();
            let get = |k: &str| pairs.iter().find(|(pk, _)| *pk == k).map(|(_, v)| *v);
            for k in spec.keys {
                match get(k) {
                    Some(v) => lines.push(format!("{name}\t{k}={v}")),
                    None => lines.push(format!("{name}\t{k} missing")),
                }
            }
            for k in spec.present {
                match get(k) {
                    Some(_) => lines.push(format!("{name}\t{k}=*")),
                    None => lines.push(format!("{name}\t{k} missing")),
                }
            }
        }
    }
}

/// Node ids (runs of 12 or more upper-case hex digits) read `<id>`, other digit runs `#`.
fn shape(value: &str) -> String {
    let is_hex = |c: char| c.is_ascii_digit() || ('A'..='F').contains(&c);
    let chars: Vec<char> = value.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let run = chars[i..].iter().take_while(|c| is_hex(**c)).count();
        if run >= 12 {
            out.push_str("<id>");
            i += run;
        } else if chars[i].is_ascii_digit() {
            out.push('#');
            i += chars[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

// ------------------------------------------------------------------------------------------
// replaying
// ------------------------------------------------------------------------------------------

/// One exchange whose reply differs from the recording.
#[derive(Debug, Clone)]
pub struct Mismatch {
    pub transcript: String,
    pub index: usize,
    pub exchange: String,
    pub expected: Vec<String>,
    pub actual: Vec<String>,
}

/// Replays `t` against `addr` and returns the exchanges whose normalized replies differ.
///
/// # Errors
/// A request that could not be sent, or bad hex in the file.
pub fn replay(addr: &str, name: &str, t: &Transcript) -> io::Result<Vec<Mismatch>> {
    let mut session = Session::new(addr);
    let mut out = Vec::new();
    for (i, e) in t.exchanges.iter().enumerate() {
        let request = unhex(&e.request)?;
        let reply = session.exchange(e.kind, &request)?;
        let actual = normalize(CheckSpec::of(t, e), &reply);
        if actual != e.reply {
            out.push(Mismatch {
                transcript: name.to_string(),
                index: i,
                exchange: e.name.clone(),
                expected: e.reply.clone(),
                actual,
            });
        }
    }
    Ok(out)
}

/// Whether two reply lines are about the same thing: the same record digest, the same info
/// command, or two messages that carry no digest.
fn same_subject(a: &str, b: &str) -> bool {
    let digest = |l: &str| {
        l.split(' ')
            .find_map(|t| t.strip_prefix("digest="))
            .map(str::to_string)
    };
    if a.starts_with("rc=") && b.starts_with("rc=") {
        return digest(a) == digest(b);
    }
    match (a.split_once('\t'), b.split_once('\t')) {
        (Some((x, _)), Some((y, _))) => x == y,
        _ => false,
    }
}

/// Differing lines shown per exchange.
const MAX_DIFF_LINES: usize = 12;

/// Splits a normalized line into its `key=value` tokens (bins after ` | `).
fn tokens(line: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let (head, bins) = match line.split_once(" | ") {
        Some((h, b)) => (h, Some(b)),
        None => (line, None),
    };
    for t in head.split(' ').filter(|t| !t.is_empty()) {
        let (k, v) = t.split_once('=').unwrap_or((t, ""));
        out.push((k.to_string(), v.to_string()));
    }
    for b in bins.into_iter().flat_map(|b| b.split(" | ")) {
        let (k, v) = b.split_once('=').unwrap_or((b, ""));
        out.push((format!("bin {k}"), v.to_string()));
    }
    out
}

fn field_diff(expected: &str, actual: &str) -> Vec<String> {
    let e = tokens(expected);
    let a = tokens(actual);
    let mut out = Vec::new();
    for (k, v) in &e {
        match a.iter().find(|(ak, _)| ak == k) {
            None => out.push(format!("{k}: expected {v}, missing")),
            Some((_, av)) if av != v => out.push(format!("{k}: expected {v}, got {av}")),
            Some(_) => {}
        }
    }
    for (k, v) in &a {
        if !e.iter().any(|(ek, _)| ek == k) {
            out.push(format!("{k}: unexpected {v}"));
        }
    }
    out
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "transcript {}, exchange #{} \"{}\":",
            self.transcript, self.index, self.exchange
        )?;
        // Lines only on one side (multiset difference, in order).
        let mut actual_left: Vec<Option<&String>> = self.actual.iter().map(Some).collect();
        let mut missing = Vec::new();
        for e in &self.expected {
            match actual_left.iter_mut().find(|a| a.is_some_and(|a| a == e)) {
                Some(slot) => *slot = None,
                None => missing.push(e),
            }
        }
        let extra: Vec<&String> = actual_left.into_iter().flatten().collect();
        // Pair a server line with a node line about the same thing (a record's digest, the
        // same info command, or two messages without a digest), to name what differs.
        let mut unpaired: Vec<Option<&String>> = extra.iter().copied().map(Some).collect();
        let mut shown = 0;
        for e in &missing {
            if shown >= MAX_DIFF_LINES {
                break;
            }
            shown += 1;
            writeln!(f, "  - server:    {e}")?;
            let partner = unpaired
                .iter_mut()
                .find(|a| a.is_some_and(|a| same_subject(e, a)))
                .and_then(Option::take);
            if let Some(a) = partner {
                writeln!(f, "  + test node: {a}")?;
                if e.starts_with("rc=") && a.starts_with("rc=") {
                    let diffs = field_diff(e, a);
                    if diffs.is_empty() {
                        writeln!(f, "      the same fields and bins in another order")?;
                    }
                    for d in diffs {
                        writeln!(f, "      {d}")?;
                    }
                }
            }
        }
        for a in unpaired.into_iter().flatten() {
            if shown >= MAX_DIFF_LINES {
                break;
            }
            shown += 1;
            writeln!(f, "  + test node: {a}")?;
        }
        if missing.len() + extra.len() > 0 {
            writeln!(
                f,
                "  ({} lines only from the server, {} only from the test node{})",
                missing.len(),
                extra.len(),
                if shown < missing.len().max(extra.len()) {
                    "; not all shown"
                } else {
                    ""
                }
            )?;
        }
        if missing.is_empty() && extra.is_empty() {
            writeln!(f, "  same lines in another order:")?;
            for (e, a) in self.expected.iter().zip(&self.actual) {
                writeln!(f, "    server {e}\n    node   {a}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_between_control_messages_compare_as_a_multiset() {
        let rec = |g: u32| {
            let mut b = vec![22, 0, 0, 0, 0, 0];
            b.extend_from_slice(&g.to_be_bytes());
            b.extend_from_slice(&[0; 12]);
            b
        };
        let ctl = |info3: u8| {
            let mut b = vec![22, 0, 0, info3, 0, 0];
            b.extend_from_slice(&[0; 16]);
            b
        };
        let a = [rec(2), rec(1), ctl(INFO3_LAST)].concat();
        let b = [rec(1), rec(2), ctl(INFO3_LAST)].concat();
        let spec = CheckSpec {
            kind: Kind::Stream,
            check: Check::Exact,
            keys: &[],
            present: &[],
            only_sets: &[],
        };
        let raw = |body: Vec<u8>| RawReply {
            frames: vec![(TYPE_MSG, body)],
            end: End::Complete,
        };
        assert_eq!(normalize(spec, &raw(a)), normalize(spec, &raw(b.clone())));
        let c = [rec(1), ctl(INFO3_PARTITION_DONE), rec(2), ctl(INFO3_LAST)].concat();
        assert_ne!(normalize(spec, &raw(c)), normalize(spec, &raw(b)));
    }

    #[test]
    fn hex_round_trips() {
        assert_eq!(
            unhex(&hex(&[0, 1, 0xab, 0xff])).unwrap(),
            vec![0, 1, 0xab, 0xff]
        );
        assert!(unhex("abc").is_err());
        let pids: Vec<u8> = (0u16..4096).flat_map(u16::to_le_bytes).collect();
        let req = [vec![0x0b], pids, vec![0x07]].concat();
        assert_eq!(hex_compact(&req), "0b{pids:0-4095}07");
        assert_eq!(unhex(&hex_compact(&req)).unwrap(), req);
    }

    #[test]
    fn info_checks_reduce_values() {
        let spec = |check, keys: &'static [String], present: &'static [String]| CheckSpec {
            kind: Kind::Info,
            check,
            keys,
            present,
            only_sets: &[],
        };
        let raw = RawReply {
            frames: vec![(TYPE_INFO, b"x\tERROR:4:bad thing\n".to_vec())],
            end: End::Complete,
        };
        assert_eq!(
            normalize(spec(Check::ErrorCode, &[], &[]), &raw),
            vec!["x\tERROR:4:..."]
        );
        let raw = RawReply {
            frames: vec![(TYPE_INFO, b"g\t12;b=3\n".to_vec())],
            end: End::Complete,
        };
        assert_eq!(
            normalize(spec(Check::Shape, &[], &[]), &raw),
            vec!["g\t#;b=#"]
        );
        assert_eq!(
            shape("ns=test:rack_0=BB9020011AC4202"),
            "ns=test:rack_#=<id>"
        );
    }
}
