//! Conversion between [`AsbRecord`]s and the `aerospike` crate's types.
//!
//! Backup: the Rust client always deserializes lists and maps (it has no raw-CDT scan option),
//! so [`record_from_client`] re-encodes them into the server's msgpack particle format, which
//! is what asbackup stores: minimal integer encodings, `cb` doubles, strings/blobs as msgpack
//! `str` with a leading particle-type byte, and K-ordered maps introduced by an extension
//! header pair (`c7 00 <flags>` + nil). For data written by the C, Java, Go, Python and Rust
//! clients this reproduces the stored bytes exactly (checked against asbackup's golden
//! files); what the client's decoded `Value` cannot carry is listed on [`encode_cdt`].
//!
//! Restore: [`restore_value`] hands lists and maps back to the client as their raw particle
//! (`Value::Unknown(code, bytes)`, which the client writes verbatim), so restore is lossless
//! whatever the backup's writer was. [`decode_cdt`] turns particle bytes into structured
//! `Value`s where a caller needs to look inside.

use aerospike::{FloatValue, IndexMap, Key, Value};
use std::collections::BTreeMap;

use super::{AsbRecord, Bin, BinValue, BlobKind, UserKey, particle};

/// Why a value could not be converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    #[error("the scan returned a record without its key (namespace, set, digest)")]
    MissingKey,
    #[error("generation {0} does not fit the backup format's 16 bits")]
    GenerationOutOfRange(u32),
    #[error("bin {bin:?}: {message}")]
    Bin { bin: String, message: String },
    #[error("user key: {0}")]
    UserKey(String),
    #[error("msgpack at byte {offset}: {message}")]
    Msgpack { offset: usize, message: String },
    #[error("{0}")]
    Unsupported(String),
}

// ---------------------------------------------------------------------------------------------
// Backup direction: client → AsbRecord

/// Converts a record read by a scan into the backup model; see [`record_from_client_owned`],
/// which avoids copying the bin data when the caller owns the record.
pub fn record_from_client(record: &aerospike::Record) -> Result<AsbRecord, ConvertError> {
    record_from_client_owned(record.clone())
}

/// Converts a record read by a scan into the backup model. Takes the record by value so
/// strings and blobs move into the backup record instead of being copied.
///
/// `void_time` comes from `Record::expiration()`, which is the server's absolute void time
/// (Citrusleaf epoch seconds) as sent on the wire, so it is exact — asbackup recomputes it
/// from a relative TTL and can be a second off.
pub fn record_from_client_owned(record: aerospike::Record) -> Result<AsbRecord, ConvertError> {
    let void_time = record.expiration();
    let key = record.key.ok_or(ConvertError::MissingKey)?;
    let generation = u16::try_from(record.generation)
        .map_err(|_| ConvertError::GenerationOutOfRange(record.generation))?;
    let mut bins = Vec::with_capacity(record.bins.len());
    for (name, value) in record.bins {
        match bin_value_from_value(value) {
            Ok(value) => bins.push(Bin { name, value }),
            Err(message) => return Err(ConvertError::Bin { bin: name, message }),
        }
    }
    Ok(AsbRecord {
        key: key.user_key().map(user_key_from_value).transpose()?,
        namespace: key.namespace().to_string(),
        digest: key.digest(),
        set: Some(key.set_name())
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        generation,
        void_time,
        bins,
    })
}

pub fn user_key_from_value(value: &Value) -> Result<UserKey, ConvertError> {
    match value {
        Value::Int(v) => Ok(UserKey::Int(*v)),
        Value::Float(f) => Ok(UserKey::Double(f64::from(f))),
        Value::String(s) => Ok(UserKey::String(s.as_bytes().to_vec())),
        Value::Blob(b) => Ok(UserKey::Bytes(b.clone())),
        Value::Unknown(particle::STRING, b) => Ok(UserKey::String(b.clone())),
        other => Err(ConvertError::UserKey(format!(
            "a {} cannot be a stored key",
            type_name(other)
        ))),
    }
}

/// Converts one bin value as the client returned it. Errors are plain messages; the caller
/// adds the bin name.
pub fn bin_value_from_value(value: Value) -> Result<BinValue, String> {
    Ok(match value {
        Value::Nil => BinValue::Nil,
        Value::Bool(b) => BinValue::Bool(b),
        Value::Int(i) => BinValue::Int(i),
        // An F32 bin does not exist on the server (floats are 8 bytes); widening is exact.
        Value::Float(f) => BinValue::Double(f64::from(f)),
        Value::String(s) => BinValue::String(s.into_bytes()),
        Value::Blob(b) => BinValue::Blob(BlobKind::Generic, b),
        Value::GeoJson(s) => BinValue::GeoJson(s.into_bytes()),
        Value::Hll(b) => BinValue::Hll(b),
        list @ Value::List(_) => BinValue::List(encode_cdt(&list).map_err(|e| e.to_string())?),
        map @ (Value::HashMap(_)
        | Value::OrderedMap(_)
        | Value::SortedMap(_)
        | Value::KeyValueList(_)) => BinValue::Map(encode_cdt(&map).map_err(|e| e.to_string())?),
        Value::Unknown(code, bytes) => match code {
            particle::STRING => BinValue::String(bytes),
            particle::LIST => BinValue::List(bytes),
            particle::MAP => BinValue::Map(bytes),
            code => match BlobKind::from_particle_type(code) {
                Some(kind) => BinValue::Blob(kind, bytes),
                None => {
                    return Err(format!(
                        "particle type {code} has no representation in the backup format"
                    ));
                }
            },
        },
        // MultiResult, Infinity, Wildcard and variants of future client versions.
        other => {
            return Err(format!(
                "a {} is not a storable bin value",
                type_name(&other)
            ));
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Restore direction: AsbRecord → client

/// The key to write a backed-up record under: its digest (authoritative) plus the stored user
/// key when there is one, which a write policy with `send_key` sends along.
/// `namespace` overrides the record's own (restore namespace mapping).
pub fn restore_key(record: &AsbRecord, namespace: Option<&str>) -> Result<Key, ConvertError> {
    let user_key = record.key.as_ref().map(user_key_to_value).transpose()?;
    Ok(Key::with_digest(
        namespace.unwrap_or(&record.namespace),
        record.set.as_deref().unwrap_or(""),
        user_key,
        record.digest,
    ))
}

pub fn user_key_to_value(key: &UserKey) -> Result<Value, ConvertError> {
    Ok(match key {
        UserKey::Int(v) => Value::Int(*v),
        UserKey::Double(v) => Value::from(*v),
        UserKey::String(s) => Value::String(String::from_utf8(s.clone()).map_err(|_| {
            ConvertError::UserKey("string key is not valid UTF-8; the client cannot send it".into())
        })?),
        UserKey::Bytes(b) => Value::Blob(b.clone()),
    })
}

/// The record's bins as client bins for a restore write, losslessly (see [`restore_value`]).
pub fn restore_bins(record: &AsbRecord) -> Result<Vec<aerospike::Bin>, ConvertError> {
    record
        .bins
        .iter()
        .map(|bin| {
            restore_value(&bin.value)
                .map(|v| aerospike::Bin::new(bin.name.clone(), v))
                .map_err(|message| ConvertError::Bin {
                    bin: bin.name.clone(),
                    message,
                })
        })
        .collect()
}

/// The value to write back for a bin, byte-for-byte what the backup holds: lists and maps go
/// as raw particles (keeping list order flags and any encoding detail), language blobs under
/// their own particle type, and non-UTF-8 strings as raw string particles.
pub fn restore_value(value: &BinValue) -> Result<Value, String> {
    into_restore_value(value.clone())
}

/// [`restore_value`] of a value the caller gives up: its bytes move into the client value,
/// uncopied (the restore's hot path).
pub fn into_restore_value(value: BinValue) -> Result<Value, String> {
    Ok(match value {
        BinValue::List(raw) => Value::Unknown(particle::LIST, raw),
        BinValue::Map(raw) => Value::Unknown(particle::MAP, raw),
        BinValue::String(s) => match String::from_utf8(s) {
            Ok(text) => Value::String(text),
            Err(e) => Value::Unknown(particle::STRING, e.into_bytes()),
        },
        BinValue::Blob(kind, b) if kind != BlobKind::Generic => {
            Value::Unknown(kind.particle_type(), b)
        }
        BinValue::Blob(_, b) => Value::Blob(b),
        BinValue::Hll(b) => Value::Hll(b),
        BinValue::GeoJson(g) => {
            Value::GeoJson(String::from_utf8(g).map_err(|_| "GeoJSON text is not valid UTF-8")?)
        }
        other => structured_scalar(&other)?,
    })
}

/// The value with lists and maps decoded into `Value::List` / `OrderedMap` / `SortedMap`.
pub fn value_from_bin_value(value: &BinValue) -> Result<Value, String> {
    match value {
        BinValue::List(raw) | BinValue::Map(raw) => decode_cdt(raw).map_err(|e| e.to_string()),
        BinValue::String(s) => Ok(match std::str::from_utf8(s) {
            Ok(text) => Value::String(text.to_string()),
            Err(_) => Value::Unknown(particle::STRING, s.clone()),
        }),
        BinValue::Blob(kind, b) if *kind != BlobKind::Generic => {
            Ok(Value::Unknown(kind.particle_type(), b.clone()))
        }
        other => structured_scalar(other),
    }
}

fn structured_scalar(value: &BinValue) -> Result<Value, String> {
    Ok(match value {
        BinValue::Nil => Value::Nil,
        BinValue::Bool(b) => Value::Bool(*b),
        BinValue::Int(i) => Value::Int(*i),
        // Bits as read, so a `-nan` keeps its sign (`Value::from` would canonicalize it).
        BinValue::Double(d) => Value::Float(FloatValue::F64(d.to_bits())),
        BinValue::GeoJson(g) => Value::GeoJson(
            String::from_utf8(g.clone()).map_err(|_| "GeoJSON text is not valid UTF-8")?,
        ),
        BinValue::Hll(b) => Value::Hll(b.clone()),
        BinValue::Blob(_, b) => Value::Blob(b.clone()),
        BinValue::String(_) | BinValue::List(_) | BinValue::Map(_) => {
            unreachable!("handled by the callers")
        }
    })
}

pub(crate) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Nil => "nil",
        Value::Bool(_) => "bool",
        Value::Int(_) => "integer",
        Value::Float(_) => "float",
        Value::String(_) => "string",
        Value::Blob(_) => "blob",
        Value::List(_) => "list",
        Value::MultiResult(_) => "multi-result",
        Value::HashMap(_) | Value::OrderedMap(_) | Value::SortedMap(_) => "map",
        Value::KeyValueList(_) => "key-value list",
        Value::GeoJson(_) => "GeoJSON",
        Value::Hll(_) => "HLL",
        Value::Infinity => "infinity marker",
        Value::Wildcard => "wildcard marker",
        Value::Unknown(..) => "foreign particle",
        _ => "value of a kind this version does not know",
    }
}

// ---------------------------------------------------------------------------------------------
// CDT particle msgpack

/// Map order flag of the extension header (server `K_ORDERED`).
const MAP_FLAG_K_ORDERED: u8 = 0x01;

/// Encodes a list or map value as the server's particle bytes.
///
/// Limits of what a decoded `Value` can give back (the client drops these on read): list
/// order/persist flags (an ordered list comes back as a plain one), a map's V-ordered bit
/// (KV-ordered maps come back K-ordered), and integers stored as msgpack uint64 above
/// `i64::MAX` (the client reads them as negative). Everything else round-trips byte-exactly.
pub fn encode_cdt(value: &Value) -> Result<Vec<u8>, ConvertError> {
    let mut out = Vec::with_capacity(64);
    encode_cdt_into(&mut out, value)?;
    Ok(out)
}

/// [`encode_cdt`] appending to `out`, so a caller encoding many records reuses one buffer.
/// On error `out` may hold a partial particle; callers discard it.
pub fn encode_cdt_into(out: &mut Vec<u8>, value: &Value) -> Result<(), ConvertError> {
    match value {
        Value::List(_)
        | Value::HashMap(_)
        | Value::OrderedMap(_)
        | Value::SortedMap(_)
        | Value::KeyValueList(_) => pack(out, value, 0),
        other => Err(ConvertError::Unsupported(format!(
            "only lists and maps have a msgpack particle, not a {}",
            type_name(other)
        ))),
    }
}

/// Nesting bound shared with the server (`MSGPACK_MAX_DEPTH`), so corrupt or hostile input
/// cannot recurse without limit.
const MAX_DEPTH: usize = 64;

fn pack(out: &mut Vec<u8>, value: &Value, depth: usize) -> Result<(), ConvertError> {
    if depth > MAX_DEPTH {
        return Err(ConvertError::Unsupported(format!(
            "collections nested deeper than {MAX_DEPTH} levels"
        )));
    }
    match value {
        Value::Nil => out.push(0xc0),
        Value::Bool(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Int(i) => pack_int(out, *i),
        Value::Float(FloatValue::F64(bits)) => {
            out.push(0xcb);
            out.extend_from_slice(&bits.to_be_bytes());
        }
        Value::Float(FloatValue::F32(bits)) => {
            out.push(0xca);
            out.extend_from_slice(&bits.to_be_bytes());
        }
        Value::String(s) => pack_particle_bytes(out, particle::STRING, s.as_bytes()),
        Value::Blob(b) => pack_particle_bytes(out, particle::BLOB, b),
        Value::GeoJson(s) => pack_particle_bytes(out, particle::GEOJSON, s.as_bytes()),
        Value::Hll(b) => pack_particle_bytes(out, particle::HLL, b),
        // The client's decoder yields these for foreign particle types inside collections.
        Value::Unknown(code, b) => pack_particle_bytes(out, *code, b),
        Value::List(items) => {
            pack_container_header(out, 0x90, 0xdc, 0xdd, items.len());
            for item in items {
                pack(out, item, depth + 1)?;
            }
        }
        Value::OrderedMap(map) => {
            pack_container_header(out, 0x80, 0xde, 0xdf, map.len());
            for (k, v) in map {
                pack_map_key(out, k, depth)?;
                pack(out, v, depth + 1)?;
            }
        }
        Value::HashMap(map) => {
            // No order of its own: key order makes the bytes deterministic.
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            pack_container_header(out, 0x80, 0xde, 0xdf, entries.len());
            for (k, v) in entries {
                pack_map_key(out, k, depth)?;
                pack(out, v, depth + 1)?;
            }
        }
        Value::KeyValueList(pairs) => {
            pack_container_header(out, 0x80, 0xde, 0xdf, pairs.len());
            for (k, v) in pairs {
                pack_map_key(out, k, depth)?;
                pack(out, v, depth + 1)?;
            }
        }
        Value::SortedMap(map) => {
            // The order header is one extra pair: ext(type = flags, no payload) → nil.
            pack_container_header(out, 0x80, 0xde, 0xdf, map.len() + 1);
            out.extend_from_slice(&[0xc7, 0x00, MAP_FLAG_K_ORDERED, 0xc0]);
            for (k, v) in map {
                pack_map_key(out, k, depth)?;
                pack(out, v, depth + 1)?;
            }
        }
        Value::Infinity => out.extend_from_slice(&[0xd4, 0xff, 0x01]),
        Value::Wildcard => out.extend_from_slice(&[0xd4, 0xff, 0x00]),
        other => {
            return Err(ConvertError::Unsupported(format!(
                "a {} is not a storable value",
                type_name(other)
            )));
        }
    }
    Ok(())
}

fn pack_map_key(out: &mut Vec<u8>, key: &Value, depth: usize) -> Result<(), ConvertError> {
    match key {
        Value::Int(_) | Value::String(_) | Value::Blob(_) => pack(out, key, depth + 1),
        other => Err(ConvertError::Unsupported(format!(
            "a {} cannot be a map key",
            type_name(other)
        ))),
    }
}

fn pack_container_header(out: &mut Vec<u8>, fix: u8, m16: u8, m32: u8, len: usize) {
    if len < 16 {
        out.push(fix | len as u8);
    } else if len <= usize::from(u16::MAX) {
        out.push(m16);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(m32);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
}

/// Strings and blobs inside collections are msgpack `str` whose first byte is the particle
/// type; header sizes follow the msgpack 2.0 str family (fixstr, str8, str16, str32).
fn pack_particle_bytes(out: &mut Vec<u8>, code: u8, payload: &[u8]) {
    let len = payload.len() + 1;
    if len < 32 {
        out.push(0xa0 | len as u8);
    } else if len < 256 {
        out.extend_from_slice(&[0xd9, len as u8]);
    } else if len < 65536 {
        out.push(0xda);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
    out.push(code);
    out.extend_from_slice(payload);
}

/// Smallest encoding, unsigned forms for non-negative values (as the C client and server).
fn pack_int(out: &mut Vec<u8>, v: i64) {
    if v >= 0 {
        let u = v as u64;
        if u < 0x80 {
            out.push(u as u8);
        } else if u <= 0xff {
            out.extend_from_slice(&[0xcc, u as u8]);
        } else if u <= 0xffff {
            out.push(0xcd);
            out.extend_from_slice(&(u as u16).to_be_bytes());
        } else if u <= 0xffff_ffff {
            out.push(0xce);
            out.extend_from_slice(&(u as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&u.to_be_bytes());
        }
    } else if v >= -32 {
        out.push(v as i8 as u8);
    } else if v >= i64::from(i8::MIN) {
        out.extend_from_slice(&[0xd0, v as i8 as u8]);
    } else if v >= i64::from(i16::MIN) {
        out.push(0xd1);
        out.extend_from_slice(&(v as i16).to_be_bytes());
    } else if v >= i64::from(i32::MIN) {
        out.push(0xd2);
        out.extend_from_slice(&(v as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&v.to_be_bytes());
    }
}

/// Decodes a list or map particle into a `Value`: lists as `List`, K-ordered maps as
/// `SortedMap`, other maps as `OrderedMap` in stored order.
pub fn decode_cdt(bytes: &[u8]) -> Result<Value, ConvertError> {
    let mut reader = MsgReader { bytes, pos: 0 };
    let value = reader.value(0)?;
    if !matches!(
        value,
        Value::List(_) | Value::OrderedMap(_) | Value::SortedMap(_)
    ) {
        return Err(reader.err(format!(
            "a list or map particle holds a {}",
            type_name(&value)
        )));
    }
    if reader.pos != bytes.len() {
        return Err(reader.err(format!(
            "{} trailing bytes after the value",
            bytes.len() - reader.pos
        )));
    }
    Ok(value)
}

struct MsgReader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl MsgReader<'_> {
    fn err(&self, message: impl Into<String>) -> ConvertError {
        ConvertError::Msgpack {
            offset: self.pos,
            message: message.into(),
        }
    }

    fn take(&mut self, n: usize) -> Result<&[u8], ConvertError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| self.err(format!("truncated: {n} more bytes expected")))?;
        let slice = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn byte(&mut self) -> Result<u8, ConvertError> {
        Ok(self.take(1)?[0])
    }

    fn be<const N: usize>(&mut self) -> Result<[u8; N], ConvertError> {
        let mut buf = [0u8; N];
        buf.copy_from_slice(self.take(N)?);
        Ok(buf)
    }

    fn len16(&mut self) -> Result<usize, ConvertError> {
        Ok(usize::from(u16::from_be_bytes(self.be()?)))
    }

    fn len32(&mut self) -> Result<usize, ConvertError> {
        Ok(u32::from_be_bytes(self.be()?) as usize)
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    /// Reads an extension's header and payload, returning its type byte and payload.
    fn ext(&mut self, marker: u8) -> Result<(u8, &[u8]), ConvertError> {
        let len = match marker {
            0xd4 => 1,
            0xd5 => 2,
            0xd6 => 4,
            0xd7 => 8,
            0xd8 => 16,
            0xc7 => usize::from(self.byte()?),
            0xc8 => self.len16()?,
            0xc9 => self.len32()?,
            _ => return Err(self.err(format!("0x{marker:02x} is not an extension"))),
        };
        let ext_type = self.byte()?;
        Ok((ext_type, self.take(len)?))
    }

    fn value(&mut self, depth: usize) -> Result<Value, ConvertError> {
        if depth > MAX_DEPTH {
            return Err(self.err(format!("nested deeper than {MAX_DEPTH} levels")));
        }
        let marker = self.byte()?;
        Ok(match marker {
            0x00..=0x7f => Value::Int(i64::from(marker)),
            0xe0..=0xff => Value::Int(i64::from(marker as i8)),
            0x80..=0x8f => self.map(usize::from(marker & 0x0f), depth)?,
            0x90..=0x9f => self.list(usize::from(marker & 0x0f), depth)?,
            0xa0..=0xbf => self.particle_bytes(usize::from(marker & 0x1f))?,
            0xc0 => Value::Nil,
            0xc2 => Value::Bool(false),
            0xc3 => Value::Bool(true),
            0xc4 | 0xd9 => {
                let len = usize::from(self.byte()?);
                self.particle_bytes(len)?
            }
            0xc5 | 0xda => {
                let len = self.len16()?;
                self.particle_bytes(len)?
            }
            0xc6 | 0xdb => {
                let len = self.len32()?;
                self.particle_bytes(len)?
            }
            0xca => Value::Float(FloatValue::F32(u32::from_be_bytes(self.be()?))),
            0xcb => Value::Float(FloatValue::F64(u64::from_be_bytes(self.be()?))),
            0xcc => Value::Int(i64::from(self.byte()?)),
            0xcd => Value::Int(i64::from(u16::from_be_bytes(self.be()?))),
            0xce => Value::Int(i64::from(u32::from_be_bytes(self.be()?))),
            0xcf => {
                let u = u64::from_be_bytes(self.be()?);
                Value::Int(i64::try_from(u).map_err(|_| {
                    self.err(format!(
                        "unsigned integer {u} does not fit a 64-bit signed bin"
                    ))
                })?)
            }
            0xd0 => Value::Int(i64::from(i8::from_be_bytes(self.be()?))),
            0xd1 => Value::Int(i64::from(i16::from_be_bytes(self.be()?))),
            0xd2 => Value::Int(i64::from(i32::from_be_bytes(self.be()?))),
            0xd3 => Value::Int(i64::from_be_bytes(self.be()?)),
            0xdc => {
                let n = self.len16()?;
                self.list(n, depth)?
            }
            0xdd => {
                let n = self.len32()?;
                self.list(n, depth)?
            }
            0xde => {
                let n = self.len16()?;
                self.map(n, depth)?
            }
            0xdf => {
                let n = self.len32()?;
                self.map(n, depth)?
            }
            0xc7..=0xc9 | 0xd4..=0xd8 => {
                let at = self.pos - 1;
                match self.ext(marker)? {
                    (0xff, [0x01]) => Value::Infinity,
                    (0xff, [0x00]) => Value::Wildcard,
                    (t, _) => {
                        return Err(ConvertError::Msgpack {
                            offset: at,
                            message: format!(
                                "extension type 0x{t:02x} outside a collection header"
                            ),
                        });
                    }
                }
            }
            0xc1 => return Err(self.err("0xc1 is never used in msgpack")),
        })
    }

    fn particle_bytes(&mut self, len: usize) -> Result<Value, ConvertError> {
        if len == 0 {
            return Err(self.err("string/blob without its particle type byte"));
        }
        let code = self.byte()?;
        let payload = self.take(len - 1)?;
        Ok(match code {
            particle::STRING => match std::str::from_utf8(payload) {
                Ok(s) => Value::String(s.to_string()),
                Err(_) => Value::Unknown(code, payload.to_vec()),
            },
            particle::BLOB => Value::Blob(payload.to_vec()),
            particle::HLL => Value::Hll(payload.to_vec()),
            particle::GEOJSON => match std::str::from_utf8(payload) {
                Ok(s) => Value::GeoJson(s.to_string()),
                Err(_) => Value::Unknown(code, payload.to_vec()),
            },
            other => Value::Unknown(other, payload.to_vec()),
        })
    }

    /// A leading extension element in a list or map is its order/flags header, not data.
    fn header_flags(&mut self) -> Result<Option<u8>, ConvertError> {
        match self.peek() {
            Some(m @ (0xc7..=0xc9 | 0xd4..=0xd8)) => {
                self.pos += 1;
                let (flags, _) = self.ext(m)?;
                Ok(Some(flags))
            }
            _ => Ok(None),
        }
    }

    fn list(&mut self, mut count: usize, depth: usize) -> Result<Value, ConvertError> {
        if count > 0 && self.header_flags()?.is_some() {
            count -= 1;
        }
        // Each element takes at least one byte: never reserve more than what is left.
        let mut items = Vec::with_capacity(count.min(self.bytes.len() - self.pos));
        for _ in 0..count {
            items.push(self.value(depth + 1)?);
        }
        Ok(Value::List(items))
    }

    fn map(&mut self, mut count: usize, depth: usize) -> Result<Value, ConvertError> {
        let mut flags = 0;
        if count > 0
            && let Some(f) = self.header_flags()?
        {
            flags = f;
            // The header's value slot (nil).
            self.value(depth + 1)?;
            count -= 1;
        }
        let mut entries = Vec::with_capacity(count.min(self.bytes.len() - self.pos));
        for _ in 0..count {
            let at = self.pos;
            let key = self.value(depth + 1)?;
            if !matches!(key, Value::Int(_) | Value::String(_) | Value::Blob(_)) {
                return Err(ConvertError::Msgpack {
                    offset: at,
                    message: format!("a {} cannot be a map key", type_name(&key)),
                });
            }
            let value = self.value(depth + 1)?;
            entries.push((key, value));
        }
        Ok(if flags & MAP_FLAG_K_ORDERED != 0 {
            Value::SortedMap(entries.into_iter().collect::<BTreeMap<_, _>>())
        } else {
            Value::OrderedMap(entries.into_iter().collect::<IndexMap<_, _>>())
        })
    }
}

#[cfg(test)]
#[path = "convert_tests.rs"]
mod tests;
