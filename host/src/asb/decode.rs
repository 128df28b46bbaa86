//! Streaming `.asb` decoder: reads what asbackup (3.0/3.1 files, base64 or compact values)
//! and backup-go (3.1, and 3.2 metadata files with expression indexes) write.
//!
//! It pulls from any [`BufRead`] and yields one [`AsbItem`] at a time, so memory is bounded by
//! the largest single record. For push-based input (chunks arriving from the codec chain)
//! wrap an iterator of chunks in a [`ChunkReader`]. Every error names the line it was found
//! on (1-based; values with embedded newlines count their lines) and what was wrong.
//!
//! Length: one decoder for one grammar (header, meta lines, global sections, records and their
//! bins); its states share the line reader and error type, so the file stays whole. Tests are
//! in `decode_tests.rs`.

use std::fmt;
use std::io::{self, BufRead, Read};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::{
    AsbRecord, Bin, BinValue, BlobKind, DIGEST_LEN, IndexType, IndexValueType, SecondaryIndex, Udf,
    UserKey,
};

/// Longest escaped name token (namespace, set, bin, index, UDF name) we accept. C allows 999
/// bytes; the slack covers escapes while still bounding memory on corrupt input.
const MAX_TOKEN_LEN: usize = 4096;

/// Largest single length-prefixed value. Server records are at most 128 MiB (`max-record-size`
/// in 7.1+, 8 MiB by default); base64 inflates by 4/3. Above this the length is corrupt.
const MAX_VALUE_LEN: u64 = 256 * 1024 * 1024;

/// Meta lines are limited to 1000 bytes by C.
const MAX_META_LEN: usize = 1000;

/// A file version the decoder understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AsbVersion {
    /// Legacy: no escaping in tokens, no global (`*`) lines.
    V3_0,
    V3_1,
    /// backup-go metadata files with expression indexes (`* e`).
    V3_2,
    /// Set indexes (`S` index type, `E` value type), as backup-go's set-index branch
    /// wrote them; our sidecar of the index lines asrestore cannot read.
    V3_3,
}

/// One unit of an `.asb` stream.
#[derive(Debug, Clone, PartialEq)]
pub enum AsbItem {
    /// `# namespace <ns>`.
    Namespace(String),
    /// `# first-file`.
    FirstFile,
    SecondaryIndex(SecondaryIndex),
    Udf(Udf),
    Record(AsbRecord),
}

/// Why a stream could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("line {line}: {message}")]
    Syntax { line: u64, message: String },
    #[error("line {line}: read failed: {source}")]
    Io {
        line: u64,
        #[source]
        source: io::Error,
    },
}

impl DecodeError {
    /// The 1-based line the problem was found on.
    pub fn line(&self) -> u64 {
        match self {
            DecodeError::Syntax { line, .. } | DecodeError::Io { line, .. } => *line,
        }
    }
}

type Result<T> = std::result::Result<T, DecodeError>;

/// Pulls items out of one `.asb` stream.
#[derive(Debug)]
pub struct AsbDecoder<R> {
    src: Source<R>,
    version: Option<AsbVersion>,
    /// Set after an error or the end: a broken stream is not resumed mid-record.
    done: bool,
}

impl<R: BufRead> AsbDecoder<R> {
    pub fn new(reader: R) -> Self {
        Self {
            src: Source {
                inner: reader,
                line: 1,
            },
            version: None,
            done: false,
        }
    }

    /// The file version, once the header was read.
    pub fn version(&self) -> Option<AsbVersion> {
        self.version
    }

    /// The line the decoder is at (1-based).
    pub fn line(&self) -> u64 {
        self.src.line
    }

    pub fn into_inner(self) -> R {
        self.src.inner
    }

    /// The next item, `Ok(None)` at a clean end of stream.
    pub fn next_item(&mut self) -> Result<Option<AsbItem>> {
        if self.done {
            return Ok(None);
        }
        let result = self.read_item();
        if !matches!(result, Ok(Some(_))) {
            self.done = true;
        }
        result
    }

    fn read_item(&mut self) -> Result<Option<AsbItem>> {
        let version = match self.version {
            Some(v) => v,
            None => {
                let v = self.read_version()?;
                self.version = Some(v);
                v
            }
        };
        let escaped = version != AsbVersion::V3_0;
        let Some(first) = self.src.peek()? else {
            return Ok(None);
        };
        match first {
            b'#' => self.read_meta(escaped).map(Some),
            b'*' => {
                if version == AsbVersion::V3_0 {
                    return Err(self
                        .src
                        .err("global (`*`) lines need file version 3.1 or later"));
                }
                self.read_global().map(Some)
            }
            b'+' => self
                .read_record(escaped)
                .map(|record| Some(AsbItem::Record(record))),
            other => Err(self.src.err(format!(
                "expected a record (`+`), global (`*`) or meta (`#`) line, found {}",
                show(other)
            ))),
        }
    }

    fn read_version(&mut self) -> Result<AsbVersion> {
        if self.src.peek()?.is_none() {
            return Err(self.src.err("empty stream: expected the `Version` line"));
        }
        self.src
            .expect_bytes(b"Version ", "the `Version 3.x` header")?;
        let token = self.src.read_raw_token(8, "file version")?;
        let version = match token.as_slice() {
            b"3.0" => AsbVersion::V3_0,
            b"3.1" => AsbVersion::V3_1,
            b"3.2" => AsbVersion::V3_2,
            b"3.3" => AsbVersion::V3_3,
            other => {
                return Err(self.src.err(format!(
                    "unsupported file version {:?} (expected 3.0 to 3.3)",
                    String::from_utf8_lossy(other)
                )));
            }
        };
        self.src.expect(b'\n', "end of the version line")?;
        Ok(version)
    }

    fn read_meta(&mut self, escaped: bool) -> Result<AsbItem> {
        self.src.expect_bytes(b"# ", "`# ` of a meta line")?;
        let tag = self.src.read_raw_token(MAX_META_LEN, "meta tag")?;
        match tag.as_slice() {
            b"namespace" => {
                self.src.expect(b' ', "space after `# namespace`")?;
                let ns = self.src.read_name(escaped, "namespace")?;
                self.src.expect(b'\n', "end of the namespace line")?;
                Ok(AsbItem::Namespace(ns))
            }
            b"first-file" => {
                self.src.expect(b'\n', "end of the first-file line")?;
                Ok(AsbItem::FirstFile)
            }
            other => Err(self.src.err(format!(
                "invalid meta data line `# {}`",
                String::from_utf8_lossy(other)
            ))),
        }
    }

    fn read_global(&mut self) -> Result<AsbItem> {
        self.src.expect_bytes(b"* ", "`* ` of a global line")?;
        let tag = self.src.next_byte("global line type")?;
        match tag {
            b'i' => self.read_sindex(false).map(AsbItem::SecondaryIndex),
            b'e' => self.read_sindex(true).map(AsbItem::SecondaryIndex),
            b'u' => self.read_udf().map(AsbItem::Udf),
            other => Err(self.src.err(format!(
                "unknown global line type {} (expected i, e or u)",
                show(other)
            ))),
        }
    }

    fn read_sindex(&mut self, with_expression: bool) -> Result<SecondaryIndex> {
        let src = &mut self.src;
        src.expect(b' ', "space before the index namespace")?;
        let namespace = src.read_name(true, "index namespace")?;
        src.expect(b' ', "space before the index set")?;
        let set = src.read_name(true, "index set")?;
        src.expect(b' ', "space before the index name")?;
        let name = src.read_name(true, "index name")?;
        src.expect(b' ', "space before the index type")?;
        let itype = src.next_byte("index type")?;
        let index_type = IndexType::from_label(itype).ok_or_else(|| {
            src.err(format!(
                "invalid index type {} (expected N, L, K, V or S)",
                show(itype)
            ))
        })?;
        src.expect(b' ', "space before the path count")?;
        let npaths = src.read_uint(u64::from(u32::MAX), "index path count")?;
        if npaths != 1 {
            return Err(src.err(format!(
                "index {name:?} has {npaths} paths; only single-bin indexes exist"
            )));
        }
        src.expect(b' ', "space before the indexed bin")?;
        let bin = src.read_name(true, "indexed bin")?;
        src.expect(b' ', "space before the indexed value type")?;
        let ptype = src.next_byte("indexed value type")?;
        let value_type = IndexValueType::from_label(ptype).ok_or_else(|| {
            src.err(format!(
                "invalid indexed value type {} (expected S, N, G, B or E)",
                show(ptype)
            ))
        })?;
        // Optional trailing base64 token: the CDT context, or for `* e` the expression.
        let mut trailing = None;
        if src.peek()? == Some(b' ') {
            src.advance(b' ');
            let token = src.read_raw_token(MAX_VALUE_LEN as usize, "index context")?;
            let text = String::from_utf8(token)
                .ok()
                .filter(|t| STANDARD.decode(t).is_ok())
                .ok_or_else(|| src.err("index context/expression is not valid base64"))?;
            trailing = Some(text);
        }
        src.expect(b'\n', "end of the index line")?;
        let (context, expression) = if with_expression {
            (None, trailing)
        } else {
            (trailing, None)
        };
        if with_expression && expression.is_none() {
            return Err(src.err("expression index line (`* e`) without an expression"));
        }
        Ok(SecondaryIndex {
            namespace,
            set: Some(set).filter(|s| !s.is_empty()),
            name,
            index_type,
            bin,
            value_type,
            context,
            expression,
        })
    }

    fn read_udf(&mut self) -> Result<Udf> {
        let src = &mut self.src;
        src.expect(b' ', "space before the UDF type")?;
        let utype = src.next_byte("UDF type")?;
        if utype != b'L' {
            return Err(src.err(format!(
                "invalid UDF type {} (only L, Lua, exists)",
                show(utype)
            )));
        }
        src.expect(b' ', "space before the UDF name")?;
        let name = src.read_name(true, "UDF name")?;
        src.expect(b' ', "space before the UDF length")?;
        let len = src.read_uint(MAX_VALUE_LEN, "UDF length")?;
        src.expect(b' ', "space before the UDF content")?;
        let content = src.read_exact_vec(len, "UDF content")?;
        src.expect(b'\n', "end of the UDF line")?;
        Ok(Udf { name, content })
    }

    fn read_record(&mut self, escaped: bool) -> Result<AsbRecord> {
        let src = &mut self.src;
        let mut tag = src.record_tag()?;
        let mut key = None;
        if tag == b'k' {
            key = Some(read_key(src)?);
            src.expect(b'\n', "end of the key line")?;
            tag = src.record_tag()?;
        }
        src.expect_tag(tag, b'n', "namespace")?;
        let namespace = src.read_name(escaped, "namespace")?;
        src.expect(b'\n', "end of the namespace line")?;

        let tag = src.record_tag()?;
        src.expect_tag(tag, b'd', "digest")?;
        let digest = read_digest(src)?;
        src.expect(b'\n', "end of the digest line")?;

        let mut tag = src.record_tag()?;
        let mut set = None;
        if tag == b's' {
            set = Some(src.read_name(escaped, "set")?);
            src.expect(b'\n', "end of the set line")?;
            tag = src.record_tag()?;
        }
        src.expect_tag(tag, b'g', "generation")?;
        let generation = src.read_uint(u64::from(u16::MAX), "generation")? as u16;
        src.expect(b'\n', "end of the generation line")?;

        let tag = src.record_tag()?;
        src.expect_tag(tag, b't', "expiration")?;
        let void_time = src.read_uint(u64::from(u32::MAX), "expiration")? as u32;
        src.expect(b'\n', "end of the expiration line")?;

        let tag = src.record_tag()?;
        src.expect_tag(tag, b'b', "bin count")?;
        let count = src.read_uint(u64::from(u16::MAX), "bin count")? as usize;
        src.expect(b'\n', "end of the bin count line")?;

        // A hostile count must not reserve memory its bins never fill.
        let mut bins = Vec::with_capacity(count.min(64));
        for _ in 0..count {
            bins.push(read_bin(src, escaped)?);
        }
        Ok(AsbRecord {
            key,
            namespace,
            digest,
            set,
            generation,
            void_time,
            bins,
        })
    }
}

impl<R: BufRead> Iterator for AsbDecoder<R> {
    type Item = Result<AsbItem>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_item().transpose()
    }
}

fn read_key<R: BufRead>(src: &mut Source<R>) -> Result<UserKey> {
    let ktype = src.next_byte("key type")?;
    match ktype {
        b'I' => {
            src.expect(b' ', "space before the key value")?;
            Ok(UserKey::Int(src.read_int("integer key")?))
        }
        b'D' => {
            src.expect(b' ', "space before the key value")?;
            Ok(UserKey::Double(src.read_double("float key")?))
        }
        b'S' => {
            src.expect(b' ', "space before the key length")?;
            Ok(UserKey::String(src.read_len_raw("string key")?))
        }
        b'X' => {
            src.expect(b' ', "space before the key length")?;
            Ok(UserKey::String(src.read_len_base64("base64 string key")?))
        }
        b'B' => {
            let compact = src.peek()? == Some(b'!');
            if compact {
                src.advance(b'!');
            }
            src.expect(b' ', "space before the key length")?;
            let bytes = if compact {
                src.read_len_raw("bytes key")?
            } else {
                src.read_len_base64("bytes key")?
            };
            Ok(UserKey::Bytes(bytes))
        }
        other => Err(src.err(format!(
            "invalid key type {} (expected I, D, S, X or B)",
            show(other)
        ))),
    }
}

fn read_digest<R: BufRead>(src: &mut Source<R>) -> Result<[u8; DIGEST_LEN]> {
    let text = src.read_raw_token(64, "digest")?;
    let mut digest = [0u8; DIGEST_LEN];
    match STANDARD.decode_slice(&text, &mut digest) {
        Ok(DIGEST_LEN) => Ok(digest),
        _ => Err(src.err(format!(
            "invalid digest {:?}: expected base64 of 20 bytes",
            String::from_utf8_lossy(&text)
        ))),
    }
}

fn read_bin<R: BufRead>(src: &mut Source<R>, escaped: bool) -> Result<Bin> {
    src.expect_bytes(b"- ", "a bin line (`- `)")?;
    let label = src.next_byte("bin type")?;
    let compact = src.peek()? == Some(b'!');
    if compact {
        if !is_blob_label(label) {
            return Err(src.err(format!(
                "bin type {} has no compact (`!`) form",
                show(label)
            )));
        }
        src.advance(b'!');
    }
    src.expect(b' ', "space before the bin name")?;
    let name = src.read_name(escaped, "bin name")?;
    let value = match label {
        b'N' => BinValue::Nil,
        _ => {
            src.expect(b' ', "space before the bin value")?;
            read_bin_value(src, label, compact)?
        }
    };
    src.expect(b'\n', "end of the bin line")?;
    Ok(Bin { name, value })
}

const fn is_blob_label(label: u8) -> bool {
    matches!(
        label,
        b'B' | b'J' | b'C' | b'P' | b'R' | b'H' | b'E' | b'Y' | b'M' | b'L'
    )
}

fn read_bin_value<R: BufRead>(src: &mut Source<R>, label: u8, compact: bool) -> Result<BinValue> {
    let blob = |src: &mut Source<R>, what: &str| {
        if compact {
            src.read_len_raw(what)
        } else {
            src.read_len_base64(what)
        }
    };
    Ok(match label {
        b'Z' => match src.next_byte("boolean value")? {
            b'T' => BinValue::Bool(true),
            b'F' => BinValue::Bool(false),
            other => {
                return Err(src.err(format!("invalid boolean {} (expected T or F)", show(other))));
            }
        },
        b'I' => BinValue::Int(src.read_int("integer bin")?),
        b'D' => BinValue::Double(src.read_double("float bin")?),
        b'S' => BinValue::String(src.read_len_raw("string bin")?),
        b'X' => BinValue::String(src.read_len_base64("base64 string bin")?),
        b'G' => BinValue::GeoJson(src.read_len_raw("GeoJSON bin")?),
        b'Y' => BinValue::Hll(blob(src, "HLL bin")?),
        b'L' => BinValue::List(blob(src, "list bin")?),
        b'M' => BinValue::Map(blob(src, "map bin")?),
        b'U' => return Err(src.err("LDT bins (`U`) are obsolete and cannot be restored")),
        other => match BlobKind::from_label(other) {
            Some(kind) => BinValue::Blob(kind, blob(src, "blob bin")?),
            None => return Err(src.err(format!("unknown bin type {}", show(other)))),
        },
    })
}

/// A byte for an error message: printable ASCII as itself, anything else as hex.
fn show(b: u8) -> String {
    if b.is_ascii_graphic() {
        format!("`{}`", b as char)
    } else {
        format!("byte 0x{b:02x}")
    }
}

/// The underlying reader plus the line counter.
#[derive(Debug)]
struct Source<R> {
    inner: R,
    line: u64,
}

impl<R: BufRead> Source<R> {
    fn err(&self, message: impl Into<String>) -> DecodeError {
        DecodeError::Syntax {
            line: self.line,
            message: message.into(),
        }
    }

    fn fill(&mut self) -> Result<&[u8]> {
        let line = self.line;
        loop {
            match self.inner.fill_buf() {
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => return Err(DecodeError::Io { line, source }),
            }
        }
        // Asked again outside the loop so the returned borrow is not tied to it; the data is
        // already buffered, so this second call does no I/O.
        self.inner
            .fill_buf()
            .map_err(|source| DecodeError::Io { line, source })
    }

    /// The hot path of the parser: one `fill_buf` call, no borrow kept.
    fn peek(&mut self) -> Result<Option<u8>> {
        loop {
            match self.inner.fill_buf() {
                Ok(buf) => return Ok(buf.first().copied()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(DecodeError::Io {
                        line: self.line,
                        source,
                    });
                }
            }
        }
    }

    /// Consumes one byte already seen by `peek`.
    fn advance(&mut self, seen: u8) {
        if seen == b'\n' {
            self.line += 1;
        }
        self.inner.consume(1);
    }

    fn next_byte(&mut self, what: impl fmt::Display + Copy) -> Result<u8> {
        match self.peek()? {
            Some(b) => {
                self.advance(b);
                Ok(b)
            }
            None => Err(self.err(format!("unexpected end of stream, expected {what}"))),
        }
    }

    fn expect(&mut self, want: u8, what: impl fmt::Display + Copy) -> Result<()> {
        match self.peek()? {
            Some(b) if b == want => {
                self.advance(b);
                Ok(())
            }
            Some(b) => Err(self.err(format!("expected {what}, found {}", show(b)))),
            None => Err(self.err(format!("unexpected end of stream, expected {what}"))),
        }
    }

    fn expect_bytes(&mut self, want: &[u8], what: impl fmt::Display + Copy) -> Result<()> {
        for &b in want {
            self.expect(b, what)?;
        }
        Ok(())
    }

    /// Reads `+ <tag> ` and returns the tag.
    fn record_tag(&mut self) -> Result<u8> {
        self.expect_bytes(b"+ ", "a record line (`+ `)")?;
        let tag = self.next_byte("record line type")?;
        self.expect(b' ', "space after the record line type")?;
        Ok(tag)
    }

    fn expect_tag(&self, tag: u8, want: u8, what: impl fmt::Display + Copy) -> Result<()> {
        if tag == want {
            Ok(())
        } else {
            Err(self.err(format!(
                "expected the {what} line (`+ {}`), found `+ {}`",
                want as char,
                show(tag).trim_matches('`')
            )))
        }
    }

    /// A token up to the next space or newline (not consumed), without unescaping.
    fn read_raw_token(&mut self, limit: usize, what: impl fmt::Display + Copy) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            let buf = self.fill()?;
            if buf.is_empty() {
                return Err(self.err(format!("unexpected end of stream in {what}")));
            }
            let end = buf
                .iter()
                .position(|&b| b == b' ' || b == b'\n')
                .unwrap_or(buf.len());
            if out.len() + end > limit {
                return Err(self.err(format!("{what} is longer than {limit} bytes")));
            }
            out.extend_from_slice(&buf[..end]);
            let found = end < buf.len();
            self.inner.consume(end);
            if found {
                return Ok(out);
            }
        }
    }

    /// A name token up to an unescaped space or newline (not consumed). In 3.1 `\x` is `x`.
    fn read_name(&mut self, escaped: bool, what: impl fmt::Display + Copy) -> Result<String> {
        if !escaped {
            let raw = self.read_raw_token(MAX_TOKEN_LEN, what)?;
            return String::from_utf8(raw)
                .map_err(|_| self.err(format!("{what} is not valid UTF-8")));
        }
        let mut out = Vec::new();
        loop {
            let Some(b) = self.peek()? else {
                return Err(self.err(format!("unexpected end of stream in {what}")));
            };
            match b {
                b' ' | b'\n' => break,
                b'\\' => {
                    self.advance(b);
                    let escaped = self.next_byte(what)?;
                    out.push(escaped);
                }
                _ => {
                    // Copy the run of plain bytes in one go.
                    let buf = self.fill()?;
                    let end = buf
                        .iter()
                        .position(|&b| matches!(b, b' ' | b'\n' | b'\\'))
                        .unwrap_or(buf.len());
                    out.extend_from_slice(&buf[..end]);
                    self.inner.consume(end);
                }
            }
            if out.len() > MAX_TOKEN_LEN {
                return Err(self.err(format!("{what} is longer than {MAX_TOKEN_LEN} bytes")));
            }
        }
        String::from_utf8(out).map_err(|_| self.err(format!("{what} is not valid UTF-8")))
    }

    /// Numbers are short: they are read into a stack buffer, not a fresh `Vec` per field.
    fn read_short_token(&mut self, what: impl fmt::Display + Copy) -> Result<([u8; 32], usize)> {
        let mut out = [0u8; 32];
        let mut len = 0;
        loop {
            let buf = self.fill()?;
            if buf.is_empty() {
                return Err(self.err(format!("unexpected end of stream in {what}")));
            }
            let end = buf
                .iter()
                .position(|&b| b == b' ' || b == b'\n')
                .unwrap_or(buf.len());
            if len + end > out.len() {
                return Err(self.err(format!("{what} is longer than {} bytes", out.len())));
            }
            out[len..len + end].copy_from_slice(&buf[..end]);
            len += end;
            let found = end < buf.len();
            self.inner.consume(end);
            if found {
                return Ok((out, len));
            }
        }
    }

    fn read_uint(&mut self, max: u64, what: impl fmt::Display + Copy) -> Result<u64> {
        let (buf, len) = self.read_short_token(what)?;
        let token = &buf[..len];
        if token.is_empty() || !token.iter().all(u8::is_ascii_digit) {
            return Err(self.err(format!(
                "invalid {what} {:?}: expected a decimal number",
                String::from_utf8_lossy(token)
            )));
        }
        let value = std::str::from_utf8(token)
            .ok()
            .and_then(|t| t.parse::<u64>().ok())
            .filter(|&v| v <= max);
        value.ok_or_else(|| {
            self.err(format!(
                "{what} {} is out of range (at most {max})",
                String::from_utf8_lossy(token)
            ))
        })
    }

    fn read_int(&mut self, what: impl fmt::Display + Copy) -> Result<i64> {
        let (buf, len) = self.read_short_token(what)?;
        let token = &buf[..len];
        let digits = token.strip_prefix(b"-").unwrap_or(token);
        let parsed = if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            None
        } else {
            std::str::from_utf8(token)
                .ok()
                .and_then(|t| t.parse::<i64>().ok())
        };
        parsed.ok_or_else(|| {
            self.err(format!(
                "invalid {what} {:?}: expected a 64-bit decimal integer",
                String::from_utf8_lossy(token)
            ))
        })
    }

    /// C writes `%.17g` (`nan`, `-nan`, `inf`), Go writes shortest form (`NaN`, `+Inf`), and
    /// for keys plain positional notation, up to ~330 characters for extreme values.
    fn read_double(&mut self, what: impl fmt::Display + Copy) -> Result<f64> {
        let token = self.read_raw_token(1024, what)?;
        parse_double(&token).ok_or_else(|| {
            self.err(format!(
                "invalid {what} {:?}: expected a decimal floating-point number",
                String::from_utf8_lossy(&token)
            ))
        })
    }

    fn read_len_raw(&mut self, what: impl fmt::Display + Copy) -> Result<Vec<u8>> {
        let len = self.read_uint(MAX_VALUE_LEN, format_args!("{what} length"))?;
        self.expect(b' ', format_args!("space before the {what} value"))?;
        self.read_exact_vec(len, what)
    }

    fn read_len_base64(&mut self, what: impl fmt::Display + Copy) -> Result<Vec<u8>> {
        let len = self.read_uint(MAX_VALUE_LEN, format_args!("{what} base64 length"))?;
        self.expect(b' ', format_args!("space before the {what} value"))?;
        let line = self.line;
        let invalid = |e: base64::DecodeError| DecodeError::Syntax {
            line,
            message: format!("{what} is not valid base64 ({e})"),
        };
        // Common case: the whole text is already buffered, so decode it in place.
        let len_usize = len as usize;
        let buf = self.fill()?;
        if buf.len() >= len_usize {
            let decoded = STANDARD.decode(&buf[..len_usize]).map_err(invalid)?;
            // Valid base64 holds no newline, so the line count is unchanged.
            self.inner.consume(len_usize);
            return Ok(decoded);
        }
        let text = self.read_exact_vec(len, what)?;
        STANDARD.decode(&text).map_err(invalid)
    }

    /// Exactly `len` raw bytes. Memory grows with the bytes actually present, so a corrupt
    /// length cannot reserve a huge buffer up front. A value cut short is reported on the
    /// line it starts on, not the line its embedded newlines reached.
    fn read_exact_vec(&mut self, len: u64, what: impl fmt::Display + Copy) -> Result<Vec<u8>> {
        let start_line = self.line;
        let mut out = Vec::with_capacity(len.min(64 * 1024) as usize);
        let mut left = len as usize;
        while left > 0 {
            let buf = self.fill()?;
            if buf.is_empty() {
                return Err(DecodeError::Syntax {
                    line: start_line,
                    message: format!(
                        "unexpected end of stream in {what}: {left} of {len} bytes missing"
                    ),
                });
            }
            let n = left.min(buf.len());
            let newlines = buf[..n].iter().filter(|&&b| b == b'\n').count();
            out.extend_from_slice(&buf[..n]);
            self.inner.consume(n);
            self.line += newlines as u64;
            left -= n;
        }
        Ok(out)
    }
}

/// Parses the double forms both tools write and the C reader accepts: decimal with optional
/// exponent, and case-insensitive `nan` / `inf` / `infinity` with an optional sign.
pub fn parse_double(token: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(token).ok()?;
    let (negative, body) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let special = if body.eq_ignore_ascii_case("nan") {
        Some(f64::NAN)
    } else if body.eq_ignore_ascii_case("inf") || body.eq_ignore_ascii_case("infinity") {
        Some(f64::INFINITY)
    } else {
        None
    };
    let magnitude = match special {
        Some(v) => v,
        None => {
            // Only digits, '.', and an exponent: reject what Rust would also take (e.g. "1_0"
            // is already rejected) but C would not, like a second sign.
            let ok = body
                .bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'));
            if !ok || body.starts_with(['-', '+']) {
                return None;
            }
            body.parse::<f64>().ok()?
        }
    };
    Some(if negative { -magnitude } else { magnitude })
}

/// A [`BufRead`] over chunks pushed from elsewhere (e.g. the decrypt/decompress stage), so the
/// decoder can run on a blocking thread fed by a channel. Chunks are any owned byte buffer
/// (`Vec<u8>`, `bytes::Bytes`); they are read in place, not copied.
#[derive(Debug)]
pub struct ChunkReader<I, C> {
    chunks: I,
    current: C,
    pos: usize,
}

impl<I, C> ChunkReader<I, C>
where
    I: Iterator<Item = io::Result<C>>,
    C: AsRef<[u8]> + Default,
{
    pub fn new(chunks: I) -> Self {
        Self {
            chunks,
            current: C::default(),
            pos: 0,
        }
    }
}

impl<I, C> Read for ChunkReader<I, C>
where
    I: Iterator<Item = io::Result<C>>,
    C: AsRef<[u8]> + Default,
{
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let buf = self.fill_buf()?;
        let n = buf.len().min(out.len());
        out[..n].copy_from_slice(&buf[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<I, C> BufRead for ChunkReader<I, C>
where
    I: Iterator<Item = io::Result<C>>,
    C: AsRef<[u8]> + Default,
{
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        // Empty chunks are skipped: an empty slice means end of stream to readers.
        while self.pos >= self.current.as_ref().len() {
            match self.chunks.next() {
                Some(chunk) => {
                    self.current = chunk?;
                    self.pos = 0;
                }
                None => return Ok(&[]),
            }
        }
        Ok(&self.current.as_ref()[self.pos..])
    }

    fn consume(&mut self, amt: usize) {
        self.pos = (self.pos + amt).min(self.current.as_ref().len());
    }
}

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "decode_props.rs"]
mod props;
