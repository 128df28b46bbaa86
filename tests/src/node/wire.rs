//! Aerospike wire format: proto framing, the 22-byte AS_MSG header, fields, ops and the
//! Aerospike flavour of msgpack used inside lists, maps and expressions.

use std::io::{Read, Write};

pub const PROTO_VERSION: u8 = 2;
pub const TYPE_INFO: u8 = 1;
pub const TYPE_ADMIN: u8 = 2;
pub const TYPE_MSG: u8 = 3;
pub const TYPE_COMPRESSED: u8 = 4;

pub const MSG_HEADER_SIZE: usize = 22;

/// Batch-index row flags: what a row carries beyond its digest.
pub const BATCH_MSG_REPEAT: u8 = 0x1;
pub const BATCH_MSG_INFO: u8 = 0x2;
pub const BATCH_MSG_GEN: u8 = 0x4;
pub const BATCH_MSG_TTL: u8 = 0x8;
pub const BATCH_MSG_INFO4: u8 = 0x10;

pub const INFO1_READ: u8 = 1;
pub const INFO1_GET_ALL: u8 = 1 << 1;
pub const INFO1_BATCH: u8 = 1 << 3;
pub const INFO1_NOBINDATA: u8 = 1 << 5;
pub const INFO1_COMPRESS_RESPONSE: u8 = 1 << 7;

pub const INFO2_WRITE: u8 = 1;
pub const INFO2_DELETE: u8 = 1 << 1;
pub const INFO2_GENERATION: u8 = 1 << 2;
pub const INFO2_GENERATION_GT: u8 = 1 << 3;
pub const INFO2_CREATE_ONLY: u8 = 1 << 5;
pub const INFO2_RESPOND_ALL_OPS: u8 = 1 << 7;

pub const INFO3_LAST: u8 = 1;
pub const INFO3_PARTITION_DONE: u8 = 1 << 2;
pub const INFO3_UPDATE_ONLY: u8 = 1 << 3;
pub const INFO3_CREATE_OR_REPLACE: u8 = 1 << 4;
pub const INFO3_REPLACE_ONLY: u8 = 1 << 5;

pub const FIELD_NAMESPACE: u8 = 0;
pub const FIELD_SET: u8 = 1;
pub const FIELD_KEY: u8 = 2;
pub const FIELD_DIGEST: u8 = 4;
pub const FIELD_QUERY_ID: u8 = 7;
pub const FIELD_RECORDS_PER_SECOND: u8 = 10;
pub const FIELD_PID_ARRAY: u8 = 11;
pub const FIELD_DIGEST_ARRAY: u8 = 12;
pub const FIELD_MAX_RECORDS: u8 = 13;
pub const FIELD_INDEX_RANGE: u8 = 22;
pub const FIELD_UDF_FUNCTION: u8 = 31;
pub const FIELD_UDF_OP: u8 = 33;
pub const FIELD_BATCH_INDEX: u8 = 41;
pub const FIELD_FILTER_EXP: u8 = 43;

pub const OP_READ: u8 = 1;
pub const OP_WRITE: u8 = 2;
pub const OP_INCR: u8 = 5;
pub const OP_EXP_READ: u8 = 7;
pub const OP_APPEND: u8 = 9;
pub const OP_PREPEND: u8 = 10;
pub const OP_TOUCH: u8 = 11;
pub const OP_DELETE: u8 = 14;

pub const PT_NULL: u8 = 0;
pub const PT_INTEGER: u8 = 1;
pub const PT_FLOAT: u8 = 2;
pub const PT_STRING: u8 = 3;
pub const PT_BLOB: u8 = 4;
pub const PT_BOOL: u8 = 17;
pub const PT_HLL: u8 = 18;
pub const PT_MAP: u8 = 19;
pub const PT_LIST: u8 = 20;
pub const PT_GEOJSON: u8 = 23;

/// Result codes the node answers with (the server's numbering).
pub mod rc {
    pub const OK: u8 = 0;
    pub const SERVER_ERROR: u8 = 1;
    pub const KEY_NOT_FOUND: u8 = 2;
    pub const GENERATION: u8 = 3;
    pub const PARAMETER: u8 = 4;
    pub const KEY_EXISTS: u8 = 5;
    pub const PARTITION_UNAVAILABLE: u8 = 11;
    pub const BIN_TYPE: u8 = 12;
    pub const UNSUPPORTED_FEATURE: u8 = 16;
    pub const KEY_MISMATCH: u8 = 19;
    pub const INVALID_NAMESPACE: u8 = 20;
    pub const ENTERPRISE_ONLY: u8 = 25;
    pub const BIN_NAME_TOO_LONG: u8 = 21;
    pub const FILTERED_OUT: u8 = 27;
    pub const INVALID_COMMAND: u8 = 54;
    pub const INVALID_USER: u8 = 60;
    pub const INVALID_CREDENTIAL: u8 = 65;
    pub const NOT_AUTHENTICATED: u8 = 80;
    pub const UDF_BAD_RESPONSE: u8 = 100;
}

/// Writes a proto header (version, type, 48-bit size).
pub fn proto_header(out: &mut Vec<u8>, msg_type: u8, size: usize) {
    let v = (u64::from(PROTO_VERSION) << 56) | (u64::from(msg_type) << 48) | size as u64;
    out.extend_from_slice(&v.to_be_bytes());
}

/// Patches the proto header at `at` to cover everything after it.
pub fn patch_proto(out: &mut [u8], at: usize, msg_type: u8) {
    let size = out.len() - at - 8;
    let v = (u64::from(PROTO_VERSION) << 56) | (u64::from(msg_type) << 48) | size as u64;
    out[at..at + 8].copy_from_slice(&v.to_be_bytes());
}

/// Inflates a type-4 body (8-byte uncompressed size, then a zlib stream holding a whole
/// proto frame) and returns that inner frame.
pub fn inflate(body: &[u8]) -> Option<Vec<u8>> {
    if body.len() < 8 {
        return None;
    }
    let size = u64::from_be_bytes(body[..8].try_into().ok()?) as usize;
    let mut out = Vec::with_capacity(size.min(128 << 20));
    flate2::read::ZlibDecoder::new(&body[8..])
        .read_to_end(&mut out)
        .ok()?;
    Some(out)
}

/// Wraps complete proto frames into one compressed frame.
pub fn deflate(frames: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(frames);
    let z = enc.finish().unwrap_or_default();
    let mut out = Vec::with_capacity(z.len() + 16);
    proto_header(&mut out, TYPE_COMPRESSED, z.len() + 8);
    out.extend_from_slice(&(frames.len() as u64).to_be_bytes());
    out.extend_from_slice(&z);
    out
}

/// A parsed AS_MSG field, borrowing the request.
#[derive(Debug, Clone, Copy)]
pub struct Field<'a> {
    pub ty: u8,
    pub data: &'a [u8],
}

/// A parsed AS_MSG op, borrowing the request.
#[derive(Debug, Clone, Copy)]
pub struct Op<'a> {
    pub op: u8,
    pub ptype: u8,
    pub name: &'a [u8],
    pub data: &'a [u8],
}

/// The request header plus its fields and ops.
#[derive(Debug, Clone, Default)]
pub struct Msg<'a> {
    pub info1: u8,
    pub info2: u8,
    pub info3: u8,
    pub info4: u8,
    pub generation: u32,
    pub ttl: u32,
    pub timeout: u32,
    pub fields: Vec<Field<'a>>,
    pub ops: Vec<Op<'a>>,
}

impl<'a> Msg<'a> {
    pub fn field(&self, ty: u8) -> Option<&'a [u8]> {
        self.fields.iter().find(|f| f.ty == ty).map(|f| f.data)
    }
}

/// A little cursor over request bytes; every read is bounds-checked.
#[derive(Debug)]
pub struct Cur<'a> {
    pub buf: &'a [u8],
    pub pos: usize,
}

impl<'a> Cur<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Cur { buf, pos: 0 }
    }
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }
    pub fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    pub fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    pub fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_be_bytes(b.try_into().unwrap_or_default()))
    }
    pub fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .map(|b| u64::from_be_bytes(b.try_into().unwrap_or_default()))
    }
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }
}

pub fn parse_fields_ops<'a>(
    c: &mut Cur<'a>,
    n_fields: usize,
    n_ops: usize,
    msg: &mut Msg<'a>,
) -> Option<()> {
    for _ in 0..n_fields {
        let len = c.u32()? as usize;
        let data = c.take(len)?;
        let (&ty, data) = data.split_first()?;
        msg.fields.push(Field { ty, data });
    }
    for _ in 0..n_ops {
        let len = c.u32()? as usize;
        let body = c.take(len)?;
        if body.len() < 4 {
            return None;
        }
        let name_len = body[3] as usize;
        let name = body.get(4..4 + name_len)?;
        msg.ops.push(Op {
            op: body[0],
            ptype: body[1],
            name,
            data: &body[4 + name_len..],
        });
    }
    Some(())
}

/// Parses an AS_MSG body (the bytes after the proto header).
pub fn parse_msg(body: &[u8]) -> Option<Msg<'_>> {
    let mut c = Cur::new(body);
    let hsz = c.u8()? as usize;
    if hsz < MSG_HEADER_SIZE {
        return None;
    }
    let mut m = Msg {
        info1: c.u8()?,
        info2: c.u8()?,
        info3: c.u8()?,
        info4: c.u8()?,
        ..Msg::default()
    };
    c.u8()?; // result code
    m.generation = c.u32()?;
    m.ttl = c.u32()?;
    m.timeout = c.u32()?;
    let n_fields = c.u16()? as usize;
    let n_ops = c.u16()? as usize;
    c.take(hsz - MSG_HEADER_SIZE)?;
    parse_fields_ops(&mut c, n_fields, n_ops, &mut m)?;
    Some(m)
}

/// The header of one reply message.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReplyHeader {
    pub info1: u8,
    pub info3: u8,
    pub result: u8,
    pub generation: u32,
    pub void_time: u32,
    /// Batch replies carry the row index here (the request's transaction-ttl slot).
    pub index: u32,
    pub n_fields: u16,
    pub n_ops: u16,
}

impl ReplyHeader {
    pub fn write(&self, out: &mut Vec<u8>) {
        out.push(MSG_HEADER_SIZE as u8);
        out.extend_from_slice(&[self.info1, 0, self.info3, 0, self.result]);
        out.extend_from_slice(&self.generation.to_be_bytes());
        out.extend_from_slice(&self.void_time.to_be_bytes());
        out.extend_from_slice(&self.index.to_be_bytes());
        out.extend_from_slice(&self.n_fields.to_be_bytes());
        out.extend_from_slice(&self.n_ops.to_be_bytes());
    }
}

pub fn put_field(out: &mut Vec<u8>, ty: u8, data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32 + 1).to_be_bytes());
    out.push(ty);
    out.extend_from_slice(data);
}

/// Writes one reply op (read op code, particle type, bin name, value).
pub fn put_op(out: &mut Vec<u8>, ptype: u8, name: &[u8], data: &[u8]) {
    put_op_code(out, OP_READ, ptype, name, data);
}

/// Writes one reply op with the given op code (respond-all-ops echoes a write op's code).
pub fn put_op_code(out: &mut Vec<u8>, op: u8, ptype: u8, name: &[u8], data: &[u8]) {
    out.extend_from_slice(&((4 + name.len() + data.len()) as u32).to_be_bytes());
    out.extend_from_slice(&[op, ptype, 0, name.len() as u8]);
    out.extend_from_slice(name);
    out.extend_from_slice(data);
}

/// A complete single-message reply frame.
pub fn simple_reply(h: ReplyHeader, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(30 + body.len());
    proto_header(&mut out, TYPE_MSG, MSG_HEADER_SIZE + body.len());
    h.write(&mut out);
    out.extend_from_slice(body);
    out
}

/// Partition id of a digest: its first two bytes, little-endian, modulo 4096.
pub fn partition_of(digest: &[u8; 20]) -> usize {
    (u16::from_le_bytes([digest[0], digest[1]]) & 0x0FFF) as usize
}

// ---------------------------------------------------------------------------------------
// msgpack (Aerospike flavour: strings and blobs carry a leading particle-type byte)
// ---------------------------------------------------------------------------------------

/// A decoded value: what expressions compute with and bins decode to.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Vec<u8>),
    Blob(Vec<u8>),
    Geo(Vec<u8>),
    Hll(Vec<u8>),
    List(Vec<Val>),
    Map(Vec<(Val, Val)>),
    /// msgpack ext (map order flags, infinity, wildcard): kept opaque.
    Ext,
}

impl Val {
    /// Converts a stored particle into a value.
    pub fn from_particle(ptype: u8, data: &[u8]) -> Val {
        match ptype {
            PT_INTEGER if data.len() == 8 => {
                Val::Int(i64::from_be_bytes(data.try_into().unwrap_or_default()))
            }
            PT_FLOAT if data.len() == 8 => {
                Val::Float(f64::from_be_bytes(data.try_into().unwrap_or_default()))
            }
            PT_STRING => Val::Str(data.to_vec()),
            PT_BLOB => Val::Blob(data.to_vec()),
            PT_BOOL => Val::Bool(data.first().copied().unwrap_or(0) != 0),
            PT_HLL => Val::Hll(data.to_vec()),
            PT_GEOJSON => Val::Geo(geo_json_text(data).to_vec()),
            PT_LIST | PT_MAP => {
                let mut c = Cur::new(data);
                unpack(&mut c, 0).unwrap_or(Val::Nil)
            }
            _ => Val::Nil,
        }
    }

    /// Encodes the value as a (particle type, particle bytes) pair.
    pub fn to_particle(&self) -> (u8, Vec<u8>) {
        match self {
            Val::Nil | Val::Ext => (PT_NULL, Vec::new()),
            Val::Bool(b) => (PT_BOOL, vec![u8::from(*b)]),
            Val::Int(i) => (PT_INTEGER, i.to_be_bytes().to_vec()),
            Val::Float(f) => (PT_FLOAT, f.to_be_bytes().to_vec()),
            Val::Str(s) => (PT_STRING, s.clone()),
            Val::Blob(b) => (PT_BLOB, b.clone()),
            Val::Hll(b) => (PT_HLL, b.clone()),
            Val::Geo(g) => {
                let mut v = vec![0, 0, 0];
                v.extend_from_slice(g);
                (PT_GEOJSON, v)
            }
            Val::List(_) => {
                let mut v = Vec::new();
                pack(&mut v, self);
                (PT_LIST, v)
            }
            Val::Map(_) => {
                let mut v = Vec::new();
                pack(&mut v, self);
                (PT_MAP, v)
            }
        }
    }
}

/// The JSON text of a GeoJSON particle (flags byte, cell count, cells, then text).
pub fn geo_json_text(data: &[u8]) -> &[u8] {
    if data.len() < 3 {
        return data;
    }
    let ncells = u16::from_be_bytes([data[1], data[2]]) as usize;
    data.get(3 + ncells * 8..).unwrap_or(&[])
}

fn unpack_bytes(bytes: &[u8]) -> Val {
    match bytes.split_first() {
        Some((&PT_BLOB, rest)) => Val::Blob(rest.to_vec()),
        Some((&PT_GEOJSON, rest)) => Val::Geo(rest.to_vec()),
        Some((&PT_HLL, rest)) => Val::Hll(rest.to_vec()),
        Some((&PT_STRING, rest)) => Val::Str(rest.to_vec()),
        // Raw strings (bin names in expressions) have no type byte.
        _ => Val::Str(bytes.to_vec()),
    }
}

/// Decodes one msgpack value; `depth` guards against hostile nesting.
pub fn unpack(c: &mut Cur<'_>, depth: usize) -> Option<Val> {
    if depth > 64 {
        return None;
    }
    let b = c.u8()?;
    let v = match b {
        0x00..=0x7f => Val::Int(i64::from(b)),
        0x80..=0x8f => unpack_map(c, (b & 0x0f) as usize, depth)?,
        0x90..=0x9f => unpack_list(c, (b & 0x0f) as usize, depth)?,
        0xa0..=0xbf => unpack_bytes(c.take((b & 0x1f) as usize)?),
        0xc0 => Val::Nil,
        0xc2 => Val::Bool(false),
        0xc3 => Val::Bool(true),
        0xc4 | 0xd9 => {
            let n = c.u8()? as usize;
            unpack_bytes(c.take(n)?)
        }
        0xc5 | 0xda => {
            let n = c.u16()? as usize;
            unpack_bytes(c.take(n)?)
        }
        0xc6 | 0xdb => {
            let n = c.u32()? as usize;
            unpack_bytes(c.take(n)?)
        }
        0xc7 => {
            let n = c.u8()? as usize;
            c.take(n + 1)?;
            Val::Ext
        }
        0xc8 => {
            let n = c.u16()? as usize;
            c.take(n + 1)?;
            Val::Ext
        }
        0xc9 => {
            let n = c.u32()? as usize;
            c.take(n + 1)?;
            Val::Ext
        }
        0xca => Val::Float(f64::from(f32::from_bits(c.u32()?))),
        0xcb => Val::Float(f64::from_bits(c.u64()?)),
        0xcc => Val::Int(i64::from(c.u8()?)),
        0xcd => Val::Int(i64::from(c.u16()?)),
        0xce => Val::Int(i64::from(c.u32()?)),
        0xcf => Val::Int(c.u64()? as i64),
        0xd0 => Val::Int(i64::from(c.u8()? as i8)),
        0xd1 => Val::Int(i64::from(c.u16()? as i16)),
        0xd2 => Val::Int(i64::from(c.u32()? as i32)),
        0xd3 => Val::Int(c.u64()? as i64),
        0xd4 => {
            c.take(2)?;
            Val::Ext
        }
        0xd5 => {
            c.take(3)?;
            Val::Ext
        }
        0xd6 => {
            c.take(5)?;
            Val::Ext
        }
        0xd7 => {
            c.take(9)?;
            Val::Ext
        }
        0xd8 => {
            c.take(17)?;
            Val::Ext
        }
        0xdc => {
            let n = c.u16()? as usize;
            unpack_list(c, n, depth)?
        }
        0xdd => {
            let n = c.u32()? as usize;
            unpack_list(c, n, depth)?
        }
        0xde => {
            let n = c.u16()? as usize;
            unpack_map(c, n, depth)?
        }
        0xdf => {
            let n = c.u32()? as usize;
            unpack_map(c, n, depth)?
        }
        0xe0..=0xff => Val::Int(i64::from(b as i8)),
        _ => return None,
    };
    Some(v)
}

fn unpack_list(c: &mut Cur<'_>, n: usize, depth: usize) -> Option<Val> {
    let mut v = Vec::with_capacity(n.min(c.remaining()));
    for _ in 0..n {
        let item = unpack(c, depth + 1)?;
        // A leading ext is the list-order flag, not an element.
        if !(v.is_empty() && item == Val::Ext) {
            v.push(item);
        }
    }
    Some(Val::List(v))
}

fn unpack_map(c: &mut Cur<'_>, n: usize, depth: usize) -> Option<Val> {
    let mut v = Vec::with_capacity(n.min(c.remaining()));
    for _ in 0..n {
        let k = unpack(c, depth + 1)?;
        let val = unpack(c, depth + 1)?;
        if k != Val::Ext {
            v.push((k, val));
        }
    }
    Some(Val::Map(v))
}

fn pack_len(out: &mut Vec<u8>, n: usize, fix: u8, fix_max: usize, m16: u8, m32: u8) {
    if n < fix_max {
        out.push(fix | n as u8);
    } else if n < 1 << 16 {
        out.push(m16);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(m32);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

fn pack_typed_bytes(out: &mut Vec<u8>, ptype: u8, b: &[u8]) {
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

/// Encodes a value as Aerospike msgpack.
pub fn pack(out: &mut Vec<u8>, v: &Val) {
    match v {
        Val::Nil | Val::Ext => out.push(0xc0),
        Val::Bool(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Val::Int(i) => {
            let i = *i;
            if (0..128).contains(&i) {
                out.push(i as u8);
            } else if (-32..0).contains(&i) {
                out.push(i as i8 as u8);
            } else {
                out.push(0xd3);
                out.extend_from_slice(&i.to_be_bytes());
            }
        }
        Val::Float(f) => {
            out.push(0xcb);
            out.extend_from_slice(&f.to_bits().to_be_bytes());
        }
        Val::Str(s) => pack_typed_bytes(out, PT_STRING, s),
        Val::Blob(b) => pack_typed_bytes(out, PT_BLOB, b),
        Val::Geo(g) => pack_typed_bytes(out, PT_GEOJSON, g),
        Val::Hll(h) => pack_typed_bytes(out, PT_HLL, h),
        Val::List(l) => {
            pack_len(out, l.len(), 0x90, 16, 0xdc, 0xdd);
            for i in l {
                pack(out, i);
            }
        }
        Val::Map(m) => {
            pack_len(out, m.len(), 0x80, 16, 0xde, 0xdf);
            for (k, v) in m {
                pack(out, k);
                pack(out, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msgpack_round_trips_nested_values() {
        let v = Val::List(vec![
            Val::Int(-5),
            Val::Int(300),
            Val::Int(i64::MIN),
            Val::Str(b"x".repeat(40)),
            Val::Map(vec![(Val::Str(b"k".to_vec()), Val::Float(1.5))]),
            Val::Blob(vec![1, 2, 3]),
            Val::Bool(true),
            Val::Nil,
        ]);
        let mut out = Vec::new();
        pack(&mut out, &v);
        assert_eq!(unpack(&mut Cur::new(&out), 0), Some(v));
    }

    #[test]
    fn partition_id_uses_first_two_digest_bytes_little_endian() {
        let mut d = [0u8; 20];
        d[0] = 0x34;
        d[1] = 0x12;
        assert_eq!(partition_of(&d), 0x234);
    }

    #[test]
    fn truncated_messages_are_rejected() {
        assert!(parse_msg(&[22, 0, 0]).is_none());
        let mut body = vec![22u8, 1, 0, 0, 0, 0];
        body.extend_from_slice(&[0; 12]);
        body.extend_from_slice(&1u16.to_be_bytes()); // one field...
        body.extend_from_slice(&0u16.to_be_bytes());
        body.extend_from_slice(&100u32.to_be_bytes()); // ...longer than the message
        assert!(parse_msg(&body).is_none());
    }
}
