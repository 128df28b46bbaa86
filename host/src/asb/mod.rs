//! The Aerospike `.asb` backup text format (version 3.1): record model, encoder and decoder.
//!
//! The model here is independent of any client: scan workers convert client records into
//! [`AsbRecord`]s ([`convert`]), the [`encode::AsbEncoder`] turns them into bytes that
//! `asrestore` reads, and the [`decode::AsbDecoder`] reads what asbackup, backup-go and we
//! write. See `reference/BACKUP-FORMAT.md` §1 for the format itself.
//!
//! Lists and maps are carried as the server's raw msgpack particle bytes, exactly as the C tool
//! stores them, so a backup never re-interprets collection contents; [`convert`] translates
//! between those bytes and `aerospike::Value`.

pub mod convert;
pub mod decode;
pub mod encode;
pub mod raw;

#[cfg(test)]
mod golden_tests;

pub use decode::{AsbDecoder, AsbItem, ChunkReader, DecodeError};
pub use encode::{AsbEncoder, EncoderOptions, format_double};

use std::fmt;

/// Seconds between the Unix epoch and the Citrusleaf epoch (2010-01-01T00:00:00Z), the origin
/// of record void times.
pub const CITRUSLEAF_EPOCH_UNIX_SECS: i64 = 1_262_304_000;

/// Length of a record digest (RIPEMD-160).
pub const DIGEST_LEN: usize = 20;

/// Version line of the files we write; asrestore accepts only `3.0` and `3.1`.
pub const ASB_VERSION: &str = "3.1";

/// One record of a backup.
#[derive(Debug, Clone, PartialEq)]
pub struct AsbRecord {
    /// The stored user key, present only when the record was written with "send key".
    pub key: Option<UserKey>,
    pub namespace: String,
    /// RIPEMD-160 digest of set + key: the record's identity on the server.
    pub digest: [u8; DIGEST_LEN],
    /// `None` for records outside any set (no `+ s` line).
    pub set: Option<String>,
    pub generation: u16,
    /// Absolute expiry in seconds since the Citrusleaf epoch; 0 = never expires.
    pub void_time: u32,
    /// Bins in server order; `+ b` allows at most 65535.
    pub bins: Vec<Bin>,
}

impl AsbRecord {
    /// About how many bytes the record holds in memory: its values, names, key and set, plus
    /// a fixed share for the structures around them. Used to bound the bytes of records
    /// read but not yet written, whatever their size.
    pub fn approx_bytes(&self) -> usize {
        const PER_RECORD: usize = 96;
        const PER_BIN: usize = 48;
        let key = match &self.key {
            Some(UserKey::String(b) | UserKey::Bytes(b)) => b.len(),
            Some(UserKey::Int(_) | UserKey::Double(_)) => 8,
            None => 0,
        };
        let bins: usize = self
            .bins
            .iter()
            .map(|b| {
                let value = match &b.value {
                    BinValue::Nil | BinValue::Bool(_) | BinValue::Int(_) | BinValue::Double(_) => 8,
                    BinValue::String(v)
                    | BinValue::GeoJson(v)
                    | BinValue::Blob(_, v)
                    | BinValue::Hll(v)
                    | BinValue::List(v)
                    | BinValue::Map(v) => v.len(),
                };
                PER_BIN + b.name.len() + value
            })
            .sum();
        PER_RECORD + key + self.namespace.len() + self.set.as_ref().map_or(0, String::len) + bins
    }
}

/// A stored user key (`+ k` line).
#[derive(Debug, Clone)]
pub enum UserKey {
    Int(i64),
    /// Readers accept float keys (`+ k D`), although servers do not hash them.
    Double(f64),
    /// Raw bytes: the server does not require UTF-8.
    String(Vec<u8>),
    Bytes(Vec<u8>),
}

/// A named bin.
#[derive(Debug, Clone, PartialEq)]
pub struct Bin {
    pub name: String,
    pub value: BinValue,
}

impl Bin {
    pub fn new(name: impl Into<String>, value: BinValue) -> Self {
        Self {
            name: name.into(),
            value,
        }
    }
}

/// A bin value as the `.asb` format distinguishes them.
#[derive(Debug, Clone)]
pub enum BinValue {
    /// `- N`: a bin without value.
    Nil,
    /// `- Z`.
    Bool(bool),
    /// `- I`.
    Int(i64),
    /// `- D`; written with 17 significant digits so that it round-trips exactly.
    Double(f64),
    /// `- S` (or `- X` when read): raw bytes, since the server does not require UTF-8.
    String(Vec<u8>),
    /// `- G`: the GeoJSON text as the client sent it.
    GeoJson(Vec<u8>),
    /// `- B` and the language blobs `- J C P R H E`.
    Blob(BlobKind, Vec<u8>),
    /// `- Y`: HyperLogLog particle bytes.
    Hll(Vec<u8>),
    /// `- L`: the server's list particle (msgpack), stored opaquely.
    List(Vec<u8>),
    /// `- M`: the server's map particle (msgpack), stored opaquely.
    Map(Vec<u8>),
}

/// Which blob particle a `- B`-like bin holds; the language kinds come from old clients'
/// native serializations and are restored under the same particle type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BlobKind {
    Generic,
    Java,
    CSharp,
    Python,
    Ruby,
    Php,
    Erlang,
}

impl BlobKind {
    pub const ALL: [BlobKind; 7] = [
        BlobKind::Generic,
        BlobKind::Java,
        BlobKind::CSharp,
        BlobKind::Python,
        BlobKind::Ruby,
        BlobKind::Php,
        BlobKind::Erlang,
    ];

    /// The bin-line type letter.
    pub const fn label(self) -> u8 {
        match self {
            BlobKind::Generic => b'B',
            BlobKind::Java => b'J',
            BlobKind::CSharp => b'C',
            BlobKind::Python => b'P',
            BlobKind::Ruby => b'R',
            BlobKind::Php => b'H',
            BlobKind::Erlang => b'E',
        }
    }

    pub const fn from_label(label: u8) -> Option<Self> {
        Some(match label {
            b'B' => BlobKind::Generic,
            b'J' => BlobKind::Java,
            b'C' => BlobKind::CSharp,
            b'P' => BlobKind::Python,
            b'R' => BlobKind::Ruby,
            b'H' => BlobKind::Php,
            b'E' => BlobKind::Erlang,
            _ => return None,
        })
    }

    /// The server particle type code.
    pub const fn particle_type(self) -> u8 {
        match self {
            BlobKind::Generic => particle::BLOB,
            BlobKind::Java => particle::JAVA_BLOB,
            BlobKind::CSharp => particle::CSHARP_BLOB,
            BlobKind::Python => particle::PYTHON_BLOB,
            BlobKind::Ruby => particle::RUBY_BLOB,
            BlobKind::Php => particle::PHP_BLOB,
            BlobKind::Erlang => particle::ERLANG_BLOB,
        }
    }

    pub const fn from_particle_type(code: u8) -> Option<Self> {
        Some(match code {
            particle::BLOB => BlobKind::Generic,
            particle::JAVA_BLOB => BlobKind::Java,
            particle::CSHARP_BLOB => BlobKind::CSharp,
            particle::PYTHON_BLOB => BlobKind::Python,
            particle::RUBY_BLOB => BlobKind::Ruby,
            particle::PHP_BLOB => BlobKind::Php,
            particle::ERLANG_BLOB => BlobKind::Erlang,
            _ => return None,
        })
    }
}

/// Server particle type codes (the wire's bin type byte).
pub mod particle {
    pub const NULL: u8 = 0;
    pub const INTEGER: u8 = 1;
    pub const FLOAT: u8 = 2;
    pub const STRING: u8 = 3;
    pub const BLOB: u8 = 4;
    pub const JAVA_BLOB: u8 = 7;
    pub const CSHARP_BLOB: u8 = 8;
    pub const PYTHON_BLOB: u8 = 9;
    pub const RUBY_BLOB: u8 = 10;
    pub const PHP_BLOB: u8 = 11;
    pub const ERLANG_BLOB: u8 = 12;
    pub const BOOL: u8 = 17;
    pub const HLL: u8 = 18;
    pub const MAP: u8 = 19;
    pub const LIST: u8 = 20;
    pub const GEOJSON: u8 = 23;
}

/// Doubles compare by bit pattern so that `-0.0` and `0.0` differ (the format preserves the
/// sign) while every NaN equals every NaN (the text form `nan` keeps no payload).
fn same_double(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits()
}

impl PartialEq for UserKey {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (UserKey::Int(a), UserKey::Int(b)) => a == b,
            (UserKey::Double(a), UserKey::Double(b)) => same_double(*a, *b),
            (UserKey::String(a), UserKey::String(b)) | (UserKey::Bytes(a), UserKey::Bytes(b)) => {
                a == b
            }
            _ => false,
        }
    }
}

impl PartialEq for BinValue {
    fn eq(&self, other: &Self) -> bool {
        use BinValue as V;
        match (self, other) {
            (V::Nil, V::Nil) => true,
            (V::Bool(a), V::Bool(b)) => a == b,
            (V::Int(a), V::Int(b)) => a == b,
            (V::Double(a), V::Double(b)) => same_double(*a, *b),
            (V::String(a), V::String(b))
            | (V::GeoJson(a), V::GeoJson(b))
            | (V::Hll(a), V::Hll(b))
            | (V::List(a), V::List(b))
            | (V::Map(a), V::Map(b)) => a == b,
            (V::Blob(ka, a), V::Blob(kb, b)) => ka == kb && a == b,
            _ => false,
        }
    }
}

/// What a secondary index covers (`itype` of a `* i` line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexType {
    /// `N`: the bin value itself.
    Default,
    /// `L`: list elements.
    List,
    /// `K`: map keys.
    MapKeys,
    /// `V`: map values.
    MapValues,
    /// `S`: a set index (server 8.1+), which indexes the records of a set and no bin.
    /// Written as backup-go's set-index branch did (file version 3.3), which asrestore
    /// cannot read; see [`SecondaryIndex::asrestore_reads`].
    Set,
}

impl IndexType {
    pub const fn label(self) -> u8 {
        match self {
            IndexType::Default => b'N',
            IndexType::List => b'L',
            IndexType::MapKeys => b'K',
            IndexType::MapValues => b'V',
            IndexType::Set => b'S',
        }
    }

    pub const fn from_label(label: u8) -> Option<Self> {
        Some(match label {
            b'N' => IndexType::Default,
            b'L' => IndexType::List,
            b'K' => IndexType::MapKeys,
            b'V' => IndexType::MapValues,
            b'S' => IndexType::Set,
            _ => return None,
        })
    }
}

/// The indexed value type (`ptype` of a `* i` line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexValueType {
    /// `S`.
    String,
    /// `N`.
    Numeric,
    /// `G`: geo2dsphere.
    Geo,
    /// `B`.
    Blob,
    /// `E`: no indexed value, for a set index (backup-go's set-index branch).
    Empty,
}

impl IndexValueType {
    pub const fn label(self) -> u8 {
        match self {
            IndexValueType::String => b'S',
            IndexValueType::Numeric => b'N',
            IndexValueType::Geo => b'G',
            IndexValueType::Blob => b'B',
            IndexValueType::Empty => b'E',
        }
    }

    pub const fn from_label(label: u8) -> Option<Self> {
        Some(match label {
            b'S' => IndexValueType::String,
            b'N' => IndexValueType::Numeric,
            b'G' => IndexValueType::Geo,
            b'B' => IndexValueType::Blob,
            b'E' => IndexValueType::Empty,
            _ => return None,
        })
    }
}

/// A secondary index definition (`* i` line; `* e` when it has an expression, as backup-go
/// writes for expression indexes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecondaryIndex {
    pub namespace: String,
    /// `None` = the index covers the whole namespace (an empty token in the file).
    pub set: Option<String>,
    pub name: String,
    pub index_type: IndexType,
    /// The indexed bin; empty for set and expression indexes.
    pub bin: String,
    pub value_type: IndexValueType,
    /// Base64 of the CDT context, kept as text: the server's `sindex-create` takes it so.
    pub context: Option<String>,
    /// Base64 of the index expression (backup-go `* e` lines, file version 3.2); asrestore
    /// cannot read such lines.
    pub expression: Option<String>,
}

/// The file version of the sidecar that holds the index lines asrestore cannot read.
pub const ASB_EXTENDED_VERSION: &str = "3.3";

impl SecondaryIndex {
    /// False for the kinds asrestore 4.5.8 rejects (set indexes, expression indexes): the
    /// backup keeps them in a sidecar it does not read, so it still restores the rest.
    pub fn asrestore_reads(&self) -> bool {
        self.index_type != IndexType::Set && self.expression.is_none()
    }
}

/// A UDF module (`* u` line). Lua is the only type the format knows.
#[derive(Clone, PartialEq, Eq)]
pub struct Udf {
    pub name: String,
    pub content: Vec<u8>,
}

impl fmt::Debug for Udf {
    // The source can be large; its size is what matters in logs and test failures.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Udf")
            .field("name", &self.name)
            .field("content_len", &self.content.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_kinds_map_labels_and_particle_types_both_ways() {
        for kind in BlobKind::ALL {
            assert_eq!(BlobKind::from_label(kind.label()), Some(kind));
            assert_eq!(
                BlobKind::from_particle_type(kind.particle_type()),
                Some(kind)
            );
        }
        assert_eq!(BlobKind::from_label(b'Y'), None);
        assert_eq!(BlobKind::from_particle_type(particle::HLL), None);
    }

    #[test]
    fn doubles_compare_by_sign_and_treat_nan_as_equal() {
        assert_ne!(BinValue::Double(0.0), BinValue::Double(-0.0));
        assert_eq!(BinValue::Double(f64::NAN), BinValue::Double(-f64::NAN));
        assert_eq!(BinValue::Double(1.5), BinValue::Double(1.5));
        assert_ne!(BinValue::Int(1), BinValue::Double(1.0));
        assert_ne!(
            BinValue::Blob(BlobKind::Java, vec![1]),
            BinValue::Blob(BlobKind::Generic, vec![1])
        );
    }
}
