//! Streaming `.asb` encoder: writes what asbackup 4.x writes, byte for byte.
//!
//! Each record is rendered into a reusable scratch buffer and handed to the writer with one
//! `write_all`, so a writer sees whole records only, and the byte count that drives file
//! rotation ([`AsbEncoder::bytes_written`]) is exact at every record boundary.
//! With `W = Vec<u8>` the engine drains the encoder in chunks with
//! [`AsbEncoder::take_buffer`]; nothing ever holds more than one chunk plus one record.

use std::io::{self, Write};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::convert::ConvertError;
use super::raw::RawRecord;
use super::{
    ASB_VERSION, AsbRecord, BinValue, BlobKind, DIGEST_LEN, SecondaryIndex, Udf, UserKey, particle,
};

/// Encoder settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EncoderOptions {
    /// asbackup `--compact`: blob-like bins (B/J/C/P/R/H/E/Y/L/M) and bytes keys are written
    /// as raw bytes (`B! <len> <raw>`) instead of base64.
    pub compact: bool,
}

/// Writes one `.asb` stream.
///
/// Call order for a file: [`write_header`](Self::write_header), then in the one file that
/// carries them [`write_first_file`](Self::write_first_file) followed by sindexes and UDFs,
/// then records. The encoder does not enforce the order: asrestore accepts global lines
/// anywhere in a 3.1 file.
#[derive(Debug)]
pub struct AsbEncoder<W> {
    out: W,
    options: EncoderOptions,
    bytes_written: u64,
    records_written: u64,
    scratch: Vec<u8>,
}

impl<W: Write> AsbEncoder<W> {
    pub fn new(out: W, options: EncoderOptions) -> Self {
        Self {
            out,
            options,
            bytes_written: 0,
            records_written: 0,
            scratch: Vec::with_capacity(4096),
        }
    }

    /// `Version 3.1` and `# namespace <ns>`, which C writes at the top of every file.
    pub fn write_header(&mut self, namespace: &str) -> io::Result<()> {
        self.write_header_version(namespace, ASB_VERSION)
    }

    /// The header with another file version (the 3.3 sidecar of set and expression indexes).
    pub fn write_header_version(&mut self, namespace: &str, version: &str) -> io::Result<()> {
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        buf.extend_from_slice(b"Version ");
        buf.extend_from_slice(version.as_bytes());
        buf.extend_from_slice(b"\n# namespace ");
        escape_into(&mut buf, namespace.as_bytes());
        buf.push(b'\n');
        self.emit(buf)
    }

    /// `# first-file`: marks the file that carries the secondary indexes and UDFs.
    pub fn write_first_file(&mut self) -> io::Result<()> {
        self.emit_static(b"# first-file\n")
    }

    pub fn write_sindex(&mut self, index: &SecondaryIndex) -> io::Result<()> {
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        encode_sindex(&mut buf, index);
        self.emit(buf)
    }

    pub fn write_udf(&mut self, udf: &Udf) -> io::Result<()> {
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        encode_udf(&mut buf, udf);
        self.emit(buf)
    }

    /// Writes one record and returns the number of bytes it took.
    pub fn write_record(&mut self, record: &AsbRecord) -> io::Result<usize> {
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        encode_record(&mut buf, record, self.options);
        let len = buf.len();
        self.emit(buf)?;
        self.records_written += 1;
        Ok(len)
    }

    /// Writes records already rendered by [`encode_raw_record`] (whole records only).
    pub fn write_encoded(&mut self, bytes: &[u8], records: u64) -> io::Result<()> {
        self.emit_static(bytes)?;
        self.records_written += records;
        Ok(())
    }

    /// Bytes handed to the writer so far (before any compression or encryption downstream).
    pub fn bytes_written(&self) -> u64 {
        self.bytes_written
    }

    pub fn records_written(&self) -> u64 {
        self.records_written
    }

    pub fn options(&self) -> EncoderOptions {
        self.options
    }

    pub fn get_ref(&self) -> &W {
        &self.out
    }

    pub fn get_mut(&mut self) -> &mut W {
        &mut self.out
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    pub fn into_inner(self) -> W {
        self.out
    }

    fn emit(&mut self, buf: Vec<u8>) -> io::Result<()> {
        let result = self.out.write_all(&buf);
        if result.is_ok() {
            self.bytes_written += buf.len() as u64;
        }
        self.scratch = buf;
        result
    }

    fn emit_static(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.bytes_written += bytes.len() as u64;
        Ok(())
    }
}

impl AsbEncoder<Vec<u8>> {
    /// Encoded bytes not yet taken.
    pub fn buffered_len(&self) -> usize {
        self.out.len()
    }

    /// Takes the bytes encoded since the last call (a chunk for the codec chain), leaving an
    /// empty buffer with the same capacity hint.
    pub fn take_buffer(&mut self) -> Vec<u8> {
        let capacity = self.out.capacity();
        std::mem::replace(&mut self.out, Vec::with_capacity(capacity))
    }
}

/// A stored user key, borrowed from either record model.
#[derive(Debug, Clone, Copy)]
enum KeyRef<'a> {
    Int(i64),
    Double(f64),
    String(&'a [u8]),
    Bytes(&'a [u8]),
}

impl<'a> From<&'a UserKey> for KeyRef<'a> {
    fn from(key: &'a UserKey) -> Self {
        match key {
            UserKey::Int(v) => KeyRef::Int(*v),
            UserKey::Double(v) => KeyRef::Double(*v),
            UserKey::String(s) => KeyRef::String(s),
            UserKey::Bytes(b) => KeyRef::Bytes(b),
        }
    }
}

/// The `+` lines of a record, borrowed from either record model.
struct RecordHead<'a> {
    key: Option<KeyRef<'a>>,
    namespace: &'a [u8],
    digest: &'a [u8; DIGEST_LEN],
    /// `None` for records outside any set (no `+ s` line).
    set: Option<&'a [u8]>,
    generation: u16,
    void_time: u32,
    bins: usize,
}

/// A bin value as its line needs it, borrowed from either record model.
#[derive(Debug, Clone, Copy)]
enum BinRef<'a> {
    Nil,
    Bool(bool),
    Int(i64),
    Double(f64),
    /// `S` or `G`: length-prefixed raw text.
    Text(u8, &'a [u8]),
    /// `B J C P R H E Y L M`: base64, or raw bytes in compact mode.
    Blob(u8, &'a [u8]),
}

impl<'a> From<&'a BinValue> for BinRef<'a> {
    fn from(value: &'a BinValue) -> Self {
        match value {
            BinValue::Nil => BinRef::Nil,
            BinValue::Bool(v) => BinRef::Bool(*v),
            BinValue::Int(v) => BinRef::Int(*v),
            BinValue::Double(v) => BinRef::Double(*v),
            BinValue::String(s) => BinRef::Text(b'S', s),
            BinValue::GeoJson(s) => BinRef::Text(b'G', s),
            BinValue::Blob(kind, b) => BinRef::Blob(kind.label(), b),
            BinValue::Hll(b) => BinRef::Blob(b'Y', b),
            BinValue::List(b) => BinRef::Blob(b'L', b),
            BinValue::Map(b) => BinRef::Blob(b'M', b),
        }
    }
}

/// Renders one record block (`+ ...` lines and its `- ...` bin lines) into `buf`.
pub fn encode_record(buf: &mut Vec<u8>, record: &AsbRecord, options: EncoderOptions) {
    let head = RecordHead {
        key: record.key.as_ref().map(KeyRef::from),
        namespace: record.namespace.as_bytes(),
        digest: &record.digest,
        set: record.set.as_deref().map(str::as_bytes),
        generation: record.generation,
        void_time: record.void_time,
        bins: record.bins.len(),
    };
    write_head(buf, &head, options);
    for bin in &record.bins {
        write_bin(buf, bin.name.as_bytes(), BinRef::from(&bin.value), options);
    }
}

/// Renders a record straight from the raw scan reader's wire fields and bin particles
/// ([`RawRecord`]): lists and maps are written as the exact msgpack the server holds (order
/// flags, ext types, nesting), HLLs as stored, scalars from their particles. No value tree is
/// built. Nil particles are skipped, as no server stores them. For every value the model can
/// hold this writes the same bytes as [`encode_record`].
///
/// # Errors
/// A generation over 16 bits, a particle or stored key the format cannot carry, or a
/// particle whose size does not fit its type; `buf` is then left as it was.
pub fn encode_raw_record(
    buf: &mut Vec<u8>,
    record: &RawRecord<'_>,
    options: EncoderOptions,
) -> Result<(), ConvertError> {
    let start = buf.len();
    let result = encode_raw_record_inner(buf, record, options);
    if result.is_err() {
        buf.truncate(start);
    }
    result
}

fn encode_raw_record_inner(
    buf: &mut Vec<u8>,
    record: &RawRecord<'_>,
    options: EncoderOptions,
) -> Result<(), ConvertError> {
    let generation = u16::try_from(record.generation)
        .map_err(|_| ConvertError::GenerationOutOfRange(record.generation))?;
    let key = match record.key {
        None => None,
        Some((ptype, data)) => Some(match ptype {
            particle::INTEGER => {
                KeyRef::Int(i64::from_be_bytes(be8(data).ok_or_else(|| {
                    ConvertError::UserKey("integer key is not 8 bytes".into())
                })?))
            }
            particle::FLOAT => {
                KeyRef::Double(f64::from_be_bytes(be8(data).ok_or_else(|| {
                    ConvertError::UserKey("double key is not 8 bytes".into())
                })?))
            }
            particle::STRING => KeyRef::String(data),
            particle::BLOB => KeyRef::Bytes(data),
            other => {
                return Err(ConvertError::UserKey(format!(
                    "particle type {other} cannot be a stored key"
                )));
            }
        }),
    };
    let bins = record
        .bins()
        .filter(|b| b.particle_type != particle::NULL)
        .count();
    let head = RecordHead {
        key,
        namespace: record.namespace,
        digest: &record.digest,
        set: record.set,
        generation,
        void_time: record.void_time,
        bins,
    };
    write_head(buf, &head, options);
    for bin in record.bins() {
        if bin.particle_type == particle::NULL {
            continue;
        }
        let value = raw_bin(bin.particle_type, bin.data).map_err(|message| ConvertError::Bin {
            bin: String::from_utf8_lossy(bin.name).into_owned(),
            message,
        })?;
        write_bin(buf, bin.name, value, options);
    }
    Ok(())
}

fn be8(data: &[u8]) -> Option<[u8; 8]> {
    data.try_into().ok()
}

/// A raw particle as a bin line needs it.
fn raw_bin(ptype: u8, data: &[u8]) -> Result<BinRef<'_>, String> {
    let fixed = |what: &str| format!("{what} particle of {} bytes, not 8", data.len());
    Ok(match ptype {
        particle::INTEGER => BinRef::Int(i64::from_be_bytes(
            be8(data).ok_or_else(|| fixed("integer"))?,
        )),
        particle::FLOAT => BinRef::Double(f64::from_be_bytes(
            be8(data).ok_or_else(|| fixed("double"))?,
        )),
        particle::STRING => BinRef::Text(b'S', data),
        particle::BOOL => match data {
            [b] => BinRef::Bool(*b != 0),
            _ => return Err(format!("boolean particle of {} bytes, not 1", data.len())),
        },
        // GeoJSON particles start with a flag byte and a cell count, then the cells the server
        // indexed (8 bytes each), then the text the client sent: only the text is backed up.
        particle::GEOJSON => {
            let cells = data
                .get(1..3)
                .map(|c| usize::from(u16::from_be_bytes([c[0], c[1]])))
                .ok_or("GeoJSON particle shorter than its header")?;
            let text = data
                .get(3 + cells * 8..)
                .ok_or("GeoJSON particle shorter than its cells")?;
            BinRef::Text(b'G', text)
        }
        particle::HLL => BinRef::Blob(b'Y', data),
        particle::LIST => BinRef::Blob(b'L', data),
        particle::MAP => BinRef::Blob(b'M', data),
        code => match BlobKind::from_particle_type(code) {
            Some(kind) => BinRef::Blob(kind.label(), data),
            None => {
                return Err(format!(
                    "particle type {code} has no representation in the backup format"
                ));
            }
        },
    })
}

fn write_head(buf: &mut Vec<u8>, head: &RecordHead<'_>, options: EncoderOptions) {
    if let Some(key) = head.key {
        buf.extend_from_slice(b"+ k ");
        match key {
            KeyRef::Int(v) => {
                buf.extend_from_slice(b"I ");
                push_i64(buf, v);
            }
            KeyRef::Double(v) => {
                buf.extend_from_slice(b"D ");
                push_double(buf, v);
            }
            KeyRef::String(s) => {
                buf.extend_from_slice(b"S ");
                push_len_raw(buf, s);
            }
            KeyRef::Bytes(b) => push_blob_payload(buf, b'B', b, options.compact),
        }
        buf.push(b'\n');
    }
    buf.extend_from_slice(b"+ n ");
    escape_into(buf, head.namespace);
    buf.extend_from_slice(b"\n+ d ");
    push_base64(buf, head.digest);
    buf.push(b'\n');
    if let Some(set) = head.set {
        buf.extend_from_slice(b"+ s ");
        escape_into(buf, set);
        buf.push(b'\n');
    }
    buf.extend_from_slice(b"+ g ");
    push_u64(buf, u64::from(head.generation));
    buf.extend_from_slice(b"\n+ t ");
    push_u64(buf, u64::from(head.void_time));
    buf.extend_from_slice(b"\n+ b ");
    push_u64(buf, head.bins as u64);
    buf.push(b'\n');
}

fn write_bin(buf: &mut Vec<u8>, name: &[u8], value: BinRef<'_>, options: EncoderOptions) {
    buf.extend_from_slice(b"- ");
    match value {
        BinRef::Nil => {
            buf.extend_from_slice(b"N ");
            escape_into(buf, name);
        }
        BinRef::Bool(v) => {
            buf.extend_from_slice(b"Z ");
            escape_into(buf, name);
            buf.extend_from_slice(if v { b" T" } else { b" F" });
        }
        BinRef::Int(v) => {
            buf.extend_from_slice(b"I ");
            escape_into(buf, name);
            buf.push(b' ');
            push_i64(buf, v);
        }
        BinRef::Double(v) => {
            buf.extend_from_slice(b"D ");
            escape_into(buf, name);
            buf.push(b' ');
            push_double(buf, v);
        }
        BinRef::Text(label, s) => {
            buf.push(label);
            buf.push(b' ');
            escape_into(buf, name);
            buf.push(b' ');
            push_len_raw(buf, s);
        }
        BinRef::Blob(label, b) => push_blob_bin(buf, label, name, b, options),
    }
    buf.push(b'\n');
}

/// `<T>[!] <name> <len> <payload>`: the name sits between the type and the payload.
fn push_blob_bin(buf: &mut Vec<u8>, label: u8, name: &[u8], data: &[u8], options: EncoderOptions) {
    buf.push(label);
    if options.compact {
        buf.extend_from_slice(b"! ");
        escape_into(buf, name);
        buf.push(b' ');
        push_len_raw(buf, data);
    } else {
        buf.push(b' ');
        escape_into(buf, name);
        buf.push(b' ');
        push_len_base64(buf, data);
    }
}

/// `<T>[!] <len> <payload>` for keys, which have no name.
fn push_blob_payload(buf: &mut Vec<u8>, label: u8, data: &[u8], compact: bool) {
    buf.push(label);
    if compact {
        buf.extend_from_slice(b"! ");
        push_len_raw(buf, data);
    } else {
        buf.push(b' ');
        push_len_base64(buf, data);
    }
}

fn encode_sindex(buf: &mut Vec<u8>, index: &SecondaryIndex) {
    buf.extend_from_slice(if index.expression.is_some() {
        b"* e "
    } else {
        b"* i "
    });
    escape_into(buf, index.namespace.as_bytes());
    buf.push(b' ');
    if let Some(set) = &index.set {
        escape_into(buf, set.as_bytes());
    }
    buf.push(b' ');
    escape_into(buf, index.name.as_bytes());
    buf.push(b' ');
    buf.push(index.index_type.label());
    // The path count: writers only ever have one path.
    buf.extend_from_slice(b" 1 ");
    escape_into(buf, index.bin.as_bytes());
    buf.push(b' ');
    buf.push(index.value_type.label());
    // No trailing space without a context: asrestore 3.12 choked on one (tools-backup #36).
    if let Some(ctx) = &index.context {
        buf.push(b' ');
        buf.extend_from_slice(ctx.as_bytes());
    }
    if let Some(exp) = &index.expression {
        buf.push(b' ');
        buf.extend_from_slice(exp.as_bytes());
    }
    buf.push(b'\n');
}

fn encode_udf(buf: &mut Vec<u8>, udf: &Udf) {
    buf.extend_from_slice(b"* u L ");
    escape_into(buf, udf.name.as_bytes());
    buf.push(b' ');
    push_len_raw(buf, &udf.content);
    buf.push(b'\n');
}

/// Backslash before each `\`, space and newline: the only escaping the format has.
pub fn escape_into(buf: &mut Vec<u8>, raw: &[u8]) {
    for &b in raw {
        if matches!(b, b'\\' | b' ' | b'\n') {
            buf.push(b'\\');
        }
        buf.push(b);
    }
}

fn push_len_raw(buf: &mut Vec<u8>, data: &[u8]) {
    push_u64(buf, data.len() as u64);
    buf.push(b' ');
    buf.extend_from_slice(data);
}

fn push_len_base64(buf: &mut Vec<u8>, data: &[u8]) {
    push_u64(buf, base64_len(data.len()) as u64);
    buf.push(b' ');
    push_base64(buf, data);
}

const fn base64_len(n: usize) -> usize {
    n.div_ceil(3) * 4
}

fn push_base64(buf: &mut Vec<u8>, data: &[u8]) {
    let start = buf.len();
    buf.resize(start + base64_len(data.len()), 0);
    let written = STANDARD
        .encode_slice(data, &mut buf[start..])
        .expect("output sized by base64_len");
    debug_assert_eq!(written, base64_len(data.len()));
}

fn push_u64(buf: &mut Vec<u8>, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    buf.extend_from_slice(&digits[i..]);
}

fn push_i64(buf: &mut Vec<u8>, v: i64) {
    if v < 0 {
        buf.push(b'-');
    }
    push_u64(buf, v.unsigned_abs());
}

/// Formats a double as C's `printf("%.17g")` does (glibc), which is what asbackup writes:
/// 17 significant digits, so every double round-trips exactly; fixed notation when the
/// decimal exponent is in `-4..17`, else `d.ddde±XX`; trailing zeros dropped; `nan`, `-nan`,
/// `inf`, `-inf` for the special values.
pub fn format_double(v: f64) -> String {
    let mut out = Vec::with_capacity(26);
    push_double(&mut out, v);
    String::from_utf8(out).expect("ASCII")
}

/// Significant digits of `%.17g`.
const PRECISION: i32 = 17;

/// [`format_double`] appended to `buf`, without allocating.
fn push_double(buf: &mut Vec<u8>, v: f64) {
    if v.is_sign_negative() {
        buf.push(b'-');
    }
    if v.is_nan() {
        buf.extend_from_slice(b"nan");
        return;
    }
    if v.is_infinite() {
        buf.extend_from_slice(b"inf");
        return;
    }
    if v == 0.0 {
        buf.push(b'0');
        return;
    }
    let (digits, exp) = digits17_exact(v.abs()).unwrap_or_else(|| digits17_std(v.abs()));
    push_g_form(buf, &digits, exp);
}

/// The 17 significant digits of `v` (> 0, finite) correctly rounded (ties to even, as glibc
/// does on the exact binary value) and the decimal exponent after rounding, computed with
/// 128-bit integers: `v = m·2^e`, digits = round(v·10^k) for k = 16 − exponent. `None` when
/// `v` is outside the range where that fits (about 1e-6 ≤ v < 1e38); the caller then uses
/// [`digits17_std`]. This is the backup hot path: std's exact float formatting costs about
/// 5× more per value.
fn digits17_exact(v: f64) -> Option<([u8; PRECISION as usize], i32)> {
    const LOW: u128 = 10u128.pow(16);
    const HIGH: u128 = 10u128.pow(17);
    let bits = v.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    if biased == 0 {
        return None; // subnormal
    }
    let m = u128::from((bits & ((1 << 52) - 1)) | (1 << 52));
    let e = biased - 1075;
    // floor(log10(v)) estimate from the binary exponent; corrected below by one either way.
    let mut exp = (f64::from(e + 52) * std::f64::consts::LOG10_2).floor() as i32;
    for _ in 0..3 {
        let k = PRECISION - 1 - exp;
        let (q, round_up) = scaled_round(m, e, k)?;
        if q >= HIGH {
            exp += 1;
            continue;
        }
        if q < LOW {
            exp -= 1;
            continue;
        }
        let mut d = q + u128::from(round_up);
        if d == HIGH {
            // 99…9.5 rounded up to 10^17: one more digit of exponent, digits 1000…
            d = LOW;
            exp += 1;
        }
        let mut digits = [b'0'; PRECISION as usize];
        let mut rest = d as u64;
        for slot in digits.iter_mut().rev() {
            *slot = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        return Some((digits, exp));
    }
    None
}

/// `m·2^e·10^k` as a truncated integer and whether correct rounding (ties to even) adds one;
/// `None` when an intermediate would not fit 128 bits.
fn scaled_round(m: u128, e: i32, k: i32) -> Option<(u128, bool)> {
    if k >= 0 {
        let n = m.checked_mul(10u128.checked_pow(k as u32)?)?;
        if e >= 0 {
            let q = n.checked_shl(e as u32).filter(|q| q >> e == n)?;
            return Some((q, false));
        }
        let shift = (-e) as u32;
        if shift >= 128 {
            return None;
        }
        let q = n >> shift;
        let r = n & ((1u128 << shift) - 1);
        let half = 1u128 << (shift - 1);
        Some((q, r > half || (r == half && q & 1 == 1)))
    } else {
        if e < 0 {
            return None; // v < 2^53 never needs k < 0
        }
        let n = m.checked_shl(e as u32).filter(|n| n >> e == m)?;
        let p = 10u128.checked_pow((-k) as u32)?;
        let (q, r) = (n / p, n % p);
        Some((q, r > p - r || (r == p - r && q & 1 == 1)))
    }
}

/// The same digits and exponent through std's exact formatting (any finite `v` > 0).
fn digits17_std(v: f64) -> ([u8; PRECISION as usize], i32) {
    use std::io::Write as _;
    // Rust's `{:e}` with a precision is correctly rounded, like glibc; its exponent is the
    // one after rounding, which is the `X` that C's %g rule tests. `d.<16 digits>e-308` fits.
    let mut sci = [0u8; 32];
    let len = {
        let mut cursor = &mut sci[..];
        write!(cursor, "{:.*e}", (PRECISION - 1) as usize, v)
            .expect("a double's `{:e}` form fits 32 bytes");
        32 - cursor.len()
    };
    let sci = &sci[..len];
    let e_at = sci
        .iter()
        .position(|&b| b == b'e')
        .expect("`{:e}` output has an exponent");
    let exp: i32 = std::str::from_utf8(&sci[e_at + 1..])
        .ok()
        .and_then(|e| e.parse().ok())
        .expect("`{:e}` exponent is an integer");
    let mut digits = [0u8; PRECISION as usize];
    let mut n = 0;
    for &d in sci[..e_at].iter().filter(|d| d.is_ascii_digit()) {
        digits[n] = d;
        n += 1;
    }
    debug_assert_eq!(n, PRECISION as usize);
    (digits, exp)
}

/// `%g` layout of 17 significant digits with decimal exponent `exp`.
fn push_g_form(buf: &mut Vec<u8>, digits: &[u8; PRECISION as usize], exp: i32) {
    if (-4..PRECISION).contains(&exp) {
        if exp >= 0 {
            let int_len = exp as usize + 1;
            buf.extend_from_slice(&digits[..int_len]);
            let frac = trim_zeros(&digits[int_len..]);
            if !frac.is_empty() {
                buf.push(b'.');
                buf.extend_from_slice(frac);
            }
        } else {
            buf.extend_from_slice(b"0.");
            buf.extend(std::iter::repeat_n(b'0', (-exp - 1) as usize));
            buf.extend_from_slice(trim_zeros(digits));
        }
    } else {
        buf.push(digits[0]);
        let frac = trim_zeros(&digits[1..]);
        if !frac.is_empty() {
            buf.push(b'.');
            buf.extend_from_slice(frac);
        }
        buf.push(b'e');
        buf.push(if exp < 0 { b'-' } else { b'+' });
        let abs = exp.unsigned_abs();
        if abs < 10 {
            buf.push(b'0');
        }
        push_u64(buf, u64::from(abs));
    }
}

fn trim_zeros(digits: &[u8]) -> &[u8] {
    let end = digits
        .iter()
        .rposition(|&d| d != b'0')
        .map_or(0, |last| last + 1);
    &digits[..end]
}

#[cfg(test)]
#[path = "encode_tests.rs"]
mod tests;
