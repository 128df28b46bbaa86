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
mod tests {
    use super::*;
    use crate::asb::{Bin, BlobKind, IndexType, IndexValueType};

    #[test]
    fn doubles_format_like_printf_17g() {
        // Every expectation is what printf("%.17g") prints (checked with Python's `%` operator,
        // which calls the C library, and against the golden README).
        let cases: &[(f64, &str)] = &[
            (0.0, "0"),
            (-0.0, "-0"),
            (1.0, "1"),
            (100.0, "100"),
            (1e16, "10000000000000000"),
            (1e17, "1e+17"),
            (0.1, "0.10000000000000001"),
            (-1e300, "-1.0000000000000001e+300"),
            (5e-324, "4.9406564584124654e-324"),
            (1e-7, "9.9999999999999995e-08"),
            (1e-4, "0.0001"),
            (1.5e-5, "1.5e-05"),
            (f64::MAX, "1.7976931348623157e+308"),
            (2.2250738585072014e-308, "2.2250738585072014e-308"),
            (1.0 / 3.0, "0.33333333333333331"),
            (123456789.125, "123456789.125"),
            (38.1, "38.100000000000001"),
            (-2.5e-10, "-2.5000000000000002e-10"),
            (f64::NAN, "nan"),
            (-f64::NAN, "-nan"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
        ];
        for (v, want) in cases {
            assert_eq!(format_double(*v), *want, "formatting {v:e}");
        }
    }

    #[test]
    fn formatted_doubles_parse_back_to_the_same_bits() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..20_000 {
            // xorshift over all bit patterns, including subnormals
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = f64::from_bits(x);
            if v.is_nan() {
                continue;
            }
            let back: f64 = format_double(v).parse().unwrap();
            assert_eq!(back.to_bits(), v.to_bits(), "{v:e}");
        }
    }

    #[test]
    fn the_integer_digit_path_agrees_with_std_formatting() {
        let mut checked = 0;
        let mut check = |v: f64| {
            if let Some(fast) = digits17_exact(v) {
                assert_eq!(fast, digits17_std(v), "{v:e}");
                checked += 1;
            }
        };
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = f64::from_bits(x & !(1 << 63));
            if v.is_finite() && v > 0.0 {
                check(v);
            }
            // Uniform in log space over the fast path's range, and short decimals.
            let unit = (x >> 11) as f64 / (1u64 << 53) as f64;
            check(10f64.powf(-7.0 + 46.0 * unit));
            check(((x >> 20) % 100_000_000) as f64 / 1000.0);
        }
        for p in -8..40 {
            check(10f64.powi(p));
            check(10f64.powi(p) * 0.5);
            check(10f64.powi(p) * 9.999_999_999_999_999);
        }
        for p in -30..130 {
            check(2f64.powi(p));
            check(2f64.powi(p) + 0.5);
        }
        for v in [
            0.1,
            0.3,
            38.1,
            1.0 / 3.0,
            123_456_789.125,
            1234567890123456.5,
            9.5e16,
        ] {
            check(v);
        }
        assert!(
            checked > 150_000,
            "the fast path is taken in its range: {checked}"
        );
    }

    #[test]
    fn escaping_covers_backslash_space_and_newline_only() {
        let mut buf = Vec::new();
        escape_into(&mut buf, b"a b\\c\nd\te");
        assert_eq!(buf, b"a\\ b\\\\c\\\nd\te");
    }

    fn sample_record() -> AsbRecord {
        AsbRecord {
            key: Some(UserKey::Int(42)),
            namespace: "test".into(),
            digest: [0xd2; 20],
            set: Some("users".into()),
            generation: 3,
            void_time: 500_000_000,
            bins: vec![
                Bin::new("name", BinValue::String(b"Ann".to_vec())),
                Bin::new("age", BinValue::Int(33)),
                Bin::new("pic", BinValue::Blob(BlobKind::Generic, vec![1, 2, 3])),
                Bin::new("a b", BinValue::Nil),
            ],
        }
    }

    #[test]
    fn record_block_matches_the_documented_example() {
        let mut buf = Vec::new();
        encode_record(&mut buf, &sample_record(), EncoderOptions::default());
        let want = "+ k I 42\n+ n test\n+ d 0tLS0tLS0tLS0tLS0tLS0tLS0tI=\n+ s users\n+ g 3\n\
                    + t 500000000\n+ b 4\n- S name 3 Ann\n- I age 33\n- B pic 4 AQID\n- N a\\ b\n";
        assert_eq!(String::from_utf8(buf).unwrap(), want);
    }

    #[test]
    fn compact_mode_writes_raw_blobs_and_bytes_keys() {
        let mut rec = sample_record();
        rec.key = Some(UserKey::Bytes(vec![0, b'\n', 0xff]));
        rec.bins = vec![
            Bin::new("pic", BinValue::Blob(BlobKind::Python, vec![1, 2, 3])),
            Bin::new("l", BinValue::List(vec![0x90])),
            Bin::new("s", BinValue::String(vec![])),
        ];
        let mut buf = Vec::new();
        encode_record(&mut buf, &rec, EncoderOptions { compact: true });
        let text = buf;
        let want: &[u8] = b"+ k B! 3 \x00\n\xff\n+ n test\n+ d 0tLS0tLS0tLS0tLS0tLS0tLS0tI=\n\
            + s users\n+ g 3\n+ t 500000000\n+ b 3\n- P! pic 3 \x01\x02\x03\n- L! l 1 \x90\n- S s 0 \n";
        assert_eq!(text, want);
    }

    #[test]
    fn every_scalar_bin_type_has_its_line_form() {
        let rec = AsbRecord {
            key: Some(UserKey::String(b"k y".to_vec())),
            namespace: "n s".into(),
            digest: [0; 20],
            set: None,
            generation: 0,
            void_time: 0,
            bins: vec![
                Bin::new("t", BinValue::Bool(true)),
                Bin::new("f", BinValue::Bool(false)),
                Bin::new("i", BinValue::Int(i64::MIN)),
                Bin::new("d", BinValue::Double(-0.0)),
                Bin::new("g", BinValue::GeoJson(b"{}".to_vec())),
                Bin::new("h", BinValue::Hll(vec![9])),
                Bin::new("m", BinValue::Map(vec![0x80])),
            ],
        };
        let mut buf = Vec::new();
        encode_record(&mut buf, &rec, EncoderOptions::default());
        let want = "+ k S 3 k y\n+ n n\\ s\n+ d AAAAAAAAAAAAAAAAAAAAAAAAAAA=\n+ g 0\n+ t 0\n+ b 7\n\
                    - Z t T\n- Z f F\n- I i -9223372036854775808\n- D d -0\n- G g 2 {}\n\
                    - Y h 4 CQ==\n- M m 4 gA==\n";
        assert_eq!(String::from_utf8(buf).unwrap(), want);
    }

    #[test]
    fn header_globals_and_byte_count_are_tracked() {
        let mut enc = AsbEncoder::new(Vec::new(), EncoderOptions::default());
        enc.write_header("test").unwrap();
        enc.write_first_file().unwrap();
        enc.write_sindex(&SecondaryIndex {
            namespace: "test".into(),
            set: None,
            name: "idx name".into(),
            index_type: IndexType::Default,
            bin: "name".into(),
            value_type: IndexValueType::String,
            context: None,
            expression: None,
        })
        .unwrap();
        enc.write_sindex(&SecondaryIndex {
            namespace: "test".into(),
            set: Some("s".into()),
            name: "ctx_idx".into(),
            index_type: IndexType::MapKeys,
            bin: "m".into(),
            value_type: IndexValueType::Numeric,
            context: Some("kgOnYQ==".into()),
            expression: None,
        })
        .unwrap();
        enc.write_udf(&Udf {
            name: "my.lua".into(),
            content: b"-- x\nreturn 1\n".to_vec(),
        })
        .unwrap();
        let header_len = enc.bytes_written();
        let rec_len = enc.write_record(&sample_record()).unwrap();
        assert_eq!(enc.bytes_written(), header_len + rec_len as u64);
        assert_eq!(enc.records_written(), 1);
        assert_eq!(enc.buffered_len() as u64, enc.bytes_written());
        let chunk = enc.take_buffer();
        assert_eq!(enc.buffered_len(), 0);
        assert_eq!(
            enc.bytes_written(),
            chunk.len() as u64,
            "the count survives draining"
        );
        let text = String::from_utf8(chunk).unwrap();
        assert!(text.starts_with(
            "Version 3.1\n# namespace test\n# first-file\n* i test  idx\\ name N 1 name S\n\
             * i test s ctx_idx K 1 m N kgOnYQ==\n* u L my.lua 14 -- x\nreturn 1\n\n+ k I 42\n"
        ));
    }

    #[test]
    fn writer_errors_propagate_and_are_not_counted() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::other("disk full"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut enc = AsbEncoder::new(Broken, EncoderOptions::default());
        assert!(enc.write_record(&sample_record()).is_err());
        assert_eq!(enc.bytes_written(), 0);
        assert_eq!(enc.records_written(), 0);
    }

    /// The raw-particle encoder must write exactly what the model path writes.
    mod raw {
        use super::*;
        use crate::asb::raw::RawRecord;
        use proptest::prelude::*;

        fn value() -> impl Strategy<Value = BinValue> {
            let bytes = || proptest::collection::vec(any::<u8>(), 0..20);
            prop_oneof![
                any::<bool>().prop_map(BinValue::Bool),
                any::<i64>().prop_map(BinValue::Int),
                any::<u64>().prop_map(|b| BinValue::Double(f64::from_bits(b))),
                bytes().prop_map(BinValue::String),
                "[a-z ]{0,8}"
                    .prop_map(|s| BinValue::GeoJson(format!("{{\"t\":\"{s}\"}}").into_bytes())),
                (proptest::sample::select(BlobKind::ALL.to_vec()), bytes())
                    .prop_map(|(k, b)| BinValue::Blob(k, b)),
                bytes().prop_map(BinValue::Hll),
                bytes().prop_map(BinValue::List),
                bytes().prop_map(BinValue::Map),
            ]
        }

        fn key() -> impl Strategy<Value = Option<UserKey>> {
            prop_oneof![
                Just(None),
                any::<i64>().prop_map(|v| Some(UserKey::Int(v))),
                any::<u64>().prop_map(|b| Some(UserKey::Double(f64::from_bits(b)))),
                proptest::collection::vec(any::<u8>(), 0..6).prop_map(|b| Some(UserKey::String(b))),
                proptest::collection::vec(any::<u8>(), 0..6).prop_map(|b| Some(UserKey::Bytes(b))),
            ]
        }

        fn record() -> impl Strategy<Value = (AsbRecord, u16)> {
            (
                key(),
                "[a-z \\\\]{0,4}",
                any::<[u8; 20]>(),
                proptest::collection::vec(("[a-z \\\\\n]{1,6}", value()), 0..6),
                any::<u16>(),
                any::<u32>(),
                0u16..3,
            )
                .prop_map(|(key, set, digest, bins, generation, void_time, cells)| {
                    let record = AsbRecord {
                        key,
                        namespace: "test ns".into(),
                        digest,
                        set: Some(set).filter(|s| !s.is_empty()),
                        generation,
                        void_time,
                        bins: bins.into_iter().map(|(n, v)| Bin::new(n, v)).collect(),
                    };
                    (record, cells)
                })
        }

        /// A bin as the server sends it; GeoJSON gets a header with `cells` index cells.
        fn particle(value: &BinValue, cells: u16) -> (u8, Vec<u8>) {
            match value {
                BinValue::Nil => (particle::NULL, Vec::new()),
                BinValue::Bool(b) => (particle::BOOL, vec![u8::from(*b)]),
                BinValue::Int(v) => (particle::INTEGER, v.to_be_bytes().to_vec()),
                BinValue::Double(v) => (particle::FLOAT, v.to_be_bytes().to_vec()),
                BinValue::String(s) => (particle::STRING, s.clone()),
                BinValue::GeoJson(s) => {
                    let mut p = vec![0];
                    p.extend_from_slice(&cells.to_be_bytes());
                    p.extend(std::iter::repeat_n(0xee, usize::from(cells) * 8));
                    p.extend_from_slice(s);
                    (particle::GEOJSON, p)
                }
                BinValue::Blob(k, b) => (k.particle_type(), b.clone()),
                BinValue::Hll(b) => (particle::HLL, b.clone()),
                BinValue::List(b) => (particle::LIST, b.clone()),
                BinValue::Map(b) => (particle::MAP, b.clone()),
            }
        }

        fn push_op(ops: &mut Vec<u8>, name: &[u8], ptype: u8, data: &[u8]) {
            ops.extend_from_slice(&((4 + name.len() + data.len()) as u32).to_be_bytes());
            ops.extend_from_slice(&[1, ptype, 0, name.len() as u8]);
            ops.extend_from_slice(name);
            ops.extend_from_slice(data);
        }

        fn key_particle(key: &UserKey) -> (u8, Vec<u8>) {
            match key {
                UserKey::Int(v) => (particle::INTEGER, v.to_be_bytes().to_vec()),
                UserKey::Double(v) => (particle::FLOAT, v.to_be_bytes().to_vec()),
                UserKey::String(s) => (particle::STRING, s.clone()),
                UserKey::Bytes(b) => (particle::BLOB, b.clone()),
            }
        }

        proptest! {
            #[test]
            fn matches_the_model_path((model, cells) in record(), compact in any::<bool>(), nil in any::<bool>()) {
                let mut ops = Vec::new();
                for bin in &model.bins {
                    let (t, d) = particle(&bin.value, cells);
                    push_op(&mut ops, bin.name.as_bytes(), t, &d);
                }
                // A nil particle (never stored by a server) is not a bin of the backup.
                if nil {
                    push_op(&mut ops, b"gone", particle::NULL, &[]);
                }
                let key = model.key.as_ref().map(key_particle);
                let raw = RawRecord {
                    namespace: model.namespace.as_bytes(),
                    set: model.set.as_deref().map(str::as_bytes),
                    digest: model.digest,
                    key: key.as_ref().map(|(t, d)| (*t, d.as_slice())),
                    generation: u32::from(model.generation),
                    void_time: model.void_time,
                    n_ops: (model.bins.len() + usize::from(nil)) as u16,
                    ops: &ops,
                };
                let options = EncoderOptions { compact };
                let mut got = b"prefix".to_vec();
                encode_raw_record(&mut got, &raw, options).unwrap();
                let mut want = b"prefix".to_vec();
                encode_record(&mut want, &model, options);
                prop_assert_eq!(got, want);
            }
        }

        fn one_bin(ptype: u8, data: &[u8], generation: u32) -> Result<Vec<u8>, ConvertError> {
            let mut ops = Vec::new();
            push_op(&mut ops, b"b", ptype, data);
            let raw = RawRecord {
                namespace: b"test",
                set: None,
                digest: [0; 20],
                key: None,
                generation,
                void_time: 0,
                n_ops: 1,
                ops: &ops,
            };
            let mut buf = b"prefix".to_vec();
            let r = encode_raw_record(&mut buf, &raw, EncoderOptions::default());
            if r.is_err() {
                assert_eq!(buf, b"prefix", "nothing half-written");
            }
            r.map(|()| buf)
        }

        #[test]
        fn lists_and_maps_are_written_as_stored() {
            // An ordered list [1, 2, 3]: the ext header with the order flag stays.
            let ordered = [0x94, 0xc7, 0x00, 0x01, 0x01, 0x02, 0x03];
            let text = one_bin(particle::LIST, &ordered, 1).unwrap();
            assert!(
                text.ends_with(b"- L b 12 lMcAAQECAw==\n"),
                "{}",
                String::from_utf8_lossy(&text)
            );
            let kv_ordered = [0x82, 0xc7, 0x00, 0x03, 0xc0, 0xa1, b'a', 0x01];
            let text = one_bin(particle::MAP, &kv_ordered, 1).unwrap();
            let b64 = STANDARD.encode(kv_ordered);
            assert!(text.ends_with(format!("- M b {} {b64}\n", b64.len()).as_bytes()));
        }

        #[test]
        fn particles_the_format_cannot_carry_are_errors() {
            for (ptype, data) in [
                (particle::INTEGER, &[1u8, 2][..]),
                (particle::FLOAT, &[0; 9][..]),
                (particle::BOOL, &[][..]),
                (particle::GEOJSON, &[0, 0][..]),
                (particle::GEOJSON, &[0, 0, 2, 1][..]),
                (99, &[1][..]),
            ] {
                let e = one_bin(ptype, data, 1).unwrap_err();
                assert!(matches!(e, ConvertError::Bin { .. }), "{ptype}: {e}");
            }
            assert_eq!(
                one_bin(particle::INTEGER, &[0; 8], 70_000).unwrap_err(),
                ConvertError::GenerationOutOfRange(70_000)
            );
        }
    }
}
