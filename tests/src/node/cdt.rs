//! List and map particles as the server stores them.
//!
//! A server does not keep a written list or map as sent: it checks the msgpack and rewrites
//! it into its canonical form (aerospike-server `cdt_untrusted_rewrite`). This module does the
//! same, so what a client reads back from the node is what it would read from a server:
//!
//! * integers, strings/blobs and ext headers are re-encoded in their shortest form
//!   (positive integers in the unsigned forms), list and map headers always;
//! * the order flags of a list or map (an ext as its first element) are kept, masked to the
//!   bits the server knows (list: ordered; map: key / key-value ordered); a flag byte that masks
//!   to zero drops the ext, and the persisted-index bit is dropped, as reads strip it;
//! * maps are stored key-sorted at every level; a key-ordered map that is not in key order,
//!   an ordered list that is not in order, duplicate map keys, keys that are not integers,
//!   strings or blobs, wildcard / infinity values and trailing bytes are refused.
//!
//! Input already in canonical form (everything a server or this node ever returned, and so
//! everything a backup holds) is stored and returned byte for byte.

use std::cmp::Ordering;

use super::wire::{PT_BLOB, PT_GEOJSON, PT_LIST, PT_MAP, PT_STRING};

/// Nesting deeper than this is refused (the server's limit is far above any real data).
const MAX_DEPTH: usize = 256;

const LIST_ORDERED: u8 = 0x01;
const MAP_KV_ORDERED: u8 = 0x03;
const MAP_K_ORDERED: u8 = 0x01;
/// The ext type the server reserves for wildcard / infinity (comparison-only values).
const CMP_EXT_TYPE: u8 = 0xff;

/// One parsed msgpack element, borrowing the input.
#[derive(Debug)]
enum Item<'a> {
    Nil,
    Bool(bool),
    Int(i128),
    /// Raw encoding kept: the server stores floats and doubles as sent.
    Float(&'a [u8], f64),
    /// A str/bin payload (its first byte is the Aerospike particle type) and the header byte
    /// to keep when the header is already the shortest.
    Raw(u8, &'a [u8]),
    Ext(u8, &'a [u8]),
    List(u8, Vec<Item<'a>>),
    Map(u8, Vec<(Item<'a>, Item<'a>)>),
}

/// Canonical stored bytes of a list or map particle, or `None` where the server refuses the
/// value (it answers result code 1).
pub fn from_wire(ptype: u8, data: &[u8]) -> Option<Vec<u8>> {
    let mut p = Parser { buf: data, pos: 0 };
    let item = p.item(0)?;
    if p.pos != data.len() {
        return None;
    }
    match (&item, ptype) {
        (Item::List(..), PT_LIST) | (Item::Map(..), PT_MAP) => {}
        _ => return None,
    }
    let mut out = Vec::with_capacity(data.len());
    write(&mut out, &item);
    Some(out)
}

struct Parser<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Parser<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn be(&mut self, n: usize) -> Option<u64> {
        Some(
            self.take(n)?
                .iter()
                .fold(0u64, |a, b| (a << 8) | u64::from(*b)),
        )
    }
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn item(&mut self, depth: usize) -> Option<Item<'a>> {
        if depth > MAX_DEPTH {
            return None;
        }
        let b = self.u8()?;
        Some(match b {
            0x00..=0x7f => Item::Int(i128::from(b)),
            0xe0..=0xff => Item::Int(i128::from(b as i8)),
            0x80..=0x8f => self.map(usize::from(b & 0x0f), depth)?,
            0x90..=0x9f => self.list(usize::from(b & 0x0f), depth)?,
            0xa0..=0xbf => Item::Raw(b, self.take(usize::from(b & 0x1f))?),
            0xc0 => Item::Nil,
            0xc2 => Item::Bool(false),
            0xc3 => Item::Bool(true),
            0xc4 | 0xd9 => {
                let n = self.be(1)? as usize;
                Item::Raw(b, self.take(n)?)
            }
            0xc5 | 0xda => {
                let n = self.be(2)? as usize;
                Item::Raw(b, self.take(n)?)
            }
            0xc6 | 0xdb => {
                let n = self.be(4)? as usize;
                Item::Raw(b, self.take(n)?)
            }
            0xc7 => {
                let n = self.be(1)? as usize;
                self.ext(n)?
            }
            0xc8 => {
                let n = self.be(2)? as usize;
                self.ext(n)?
            }
            0xc9 => {
                let n = self.be(4)? as usize;
                self.ext(n)?
            }
            0xca => {
                let raw = self.take(4)?;
                let v = f32::from_be_bytes(raw.try_into().ok()?);
                Item::Float(&self.buf[self.pos - 5..self.pos], f64::from(v))
            }
            0xcb => {
                let raw = self.take(8)?;
                let v = f64::from_be_bytes(raw.try_into().ok()?);
                Item::Float(&self.buf[self.pos - 9..self.pos], v)
            }
            0xcc => Item::Int(i128::from(self.be(1)?)),
            0xcd => Item::Int(i128::from(self.be(2)?)),
            0xce => Item::Int(i128::from(self.be(4)?)),
            0xcf => Item::Int(i128::from(self.be(8)?)),
            0xd0 => Item::Int(i128::from(self.be(1)? as u8 as i8)),
            0xd1 => Item::Int(i128::from(self.be(2)? as u16 as i16)),
            0xd2 => Item::Int(i128::from(self.be(4)? as u32 as i32)),
            0xd3 => Item::Int(i128::from(self.be(8)? as i64)),
            0xd4 => self.ext(1)?,
            0xd5 => self.ext(2)?,
            0xd6 => self.ext(4)?,
            0xd7 => self.ext(8)?,
            0xd8 => self.ext(16)?,
            0xdc => {
                let n = self.be(2)? as usize;
                self.list(n, depth)?
            }
            0xdd => {
                let n = self.be(4)? as usize;
                self.list(n, depth)?
            }
            0xde => {
                let n = self.be(2)? as usize;
                self.map(n, depth)?
            }
            0xdf => {
                let n = self.be(4)? as usize;
                self.map(n, depth)?
            }
            // 0xc1 is reserved.
            _ => return None,
        })
    }

    fn ext(&mut self, size: usize) -> Option<Item<'a>> {
        let ty = self.u8()?;
        let data = self.take(size)?;
        // Wildcard and infinity only exist inside comparisons; the server will not store them.
        if ty == CMP_EXT_TYPE && (1..4).contains(&size) {
            return None;
        }
        Some(Item::Ext(ty, data))
    }

    fn list(&mut self, n: usize, depth: usize) -> Option<Item<'a>> {
        // Every element takes at least one byte: a count above that is a lie, refused before
        // anything is allocated for it.
        if n > self.remaining() {
            return None;
        }
        let mut flags = 0;
        let mut items = Vec::with_capacity(n);
        for i in 0..n {
            let item = self.item(depth + 1)?;
            match item {
                Item::Ext(ty, _) if i == 0 => flags = ty & LIST_ORDERED,
                other => items.push(other),
            }
        }
        if flags & LIST_ORDERED != 0
            && items
                .windows(2)
                .any(|w| cmp(&w[0], &w[1]) == Ordering::Greater)
        {
            return None;
        }
        Some(Item::List(flags, items))
    }

    fn map(&mut self, n: usize, depth: usize) -> Option<Item<'a>> {
        if n.saturating_mul(2) > self.remaining() {
            return None;
        }
        let mut flags = 0;
        let mut entries = Vec::with_capacity(n);
        for i in 0..n {
            let k = self.item(depth + 1)?;
            let v = self.item(depth + 1)?;
            match k {
                Item::Ext(ty, _) if i == 0 => flags = ty & MAP_KV_ORDERED,
                k if is_key(&k) => entries.push((k, v)),
                _ => return None,
            }
        }
        let in_order = entries
            .windows(2)
            .all(|w| cmp(&w[0].0, &w[1].0) == Ordering::Less);
        if !in_order {
            if flags & MAP_K_ORDERED != 0 {
                return None;
            }
            entries.sort_by(|a, b| cmp(&a.0, &b.0));
            if entries
                .windows(2)
                .any(|w| cmp(&w[0].0, &w[1].0) == Ordering::Equal)
            {
                return None;
            }
        }
        Some(Item::Map(flags, entries))
    }
}

/// Map keys the server accepts: integers, strings and blobs.
fn is_key(k: &Item<'_>) -> bool {
    match k {
        Item::Int(_) => true,
        Item::Raw(_, p) => matches!(p.first(), Some(&PT_STRING) | Some(&PT_BLOB)),
        _ => false,
    }
}

/// The server's order of msgpack types (`msgpack_type`): nil, false, true, negative
/// integers, integers, strings, lists, maps, bytes, doubles, GeoJSON, ext.
fn rank(i: &Item<'_>) -> u8 {
    match i {
        Item::Nil => 1,
        Item::Bool(false) => 2,
        Item::Bool(true) => 3,
        Item::Int(v) if *v < 0 => 4,
        Item::Int(_) => 5,
        Item::Raw(_, p) => match p.first() {
            Some(&PT_STRING) => 6,
            Some(&PT_GEOJSON) => 11,
            _ => 9,
        },
        Item::List(..) => 7,
        Item::Map(..) => 8,
        Item::Float(..) => 10,
        Item::Ext(..) => 12,
    }
}

fn cmp(a: &Item<'_>, b: &Item<'_>) -> Ordering {
    rank(a).cmp(&rank(b)).then_with(|| match (a, b) {
        (Item::Int(x), Item::Int(y)) => x.cmp(y),
        (Item::Float(_, x), Item::Float(_, y)) => x.total_cmp(y),
        (Item::Raw(_, x), Item::Raw(_, y)) => x.cmp(y),
        (Item::Ext(tx, x), Item::Ext(ty, y)) => tx.cmp(ty).then_with(|| x.cmp(y)),
        (Item::List(_, x), Item::List(_, y)) => x
            .iter()
            .zip(y)
            .map(|(p, q)| cmp(p, q))
            .find(|o| o.is_ne())
            .unwrap_or_else(|| x.len().cmp(&y.len())),
        (Item::Map(_, x), Item::Map(_, y)) => x
            .iter()
            .zip(y)
            .map(|(p, q)| cmp(&p.0, &q.0).then_with(|| cmp(&p.1, &q.1)))
            .find(|o| o.is_ne())
            .unwrap_or_else(|| x.len().cmp(&y.len())),
        _ => Ordering::Equal,
    })
}

fn header(out: &mut Vec<u8>, n: usize, fix: u8, m16: u8, m32: u8) {
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

fn ext_header(out: &mut Vec<u8>, size: usize, ty: u8) {
    match size {
        1 => out.push(0xd4),
        2 => out.push(0xd5),
        4 => out.push(0xd6),
        8 => out.push(0xd7),
        16 => out.push(0xd8),
        n if n < 256 => out.extend_from_slice(&[0xc7, n as u8]),
        n if n < 1 << 16 => {
            out.push(0xc8);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0xc9);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
    }
    out.push(ty);
}

fn int(out: &mut Vec<u8>, v: i128) {
    if v >= 0 {
        let u = v as u64;
        if u < 128 {
            out.push(u as u8);
        } else if u < 1 << 8 {
            out.extend_from_slice(&[0xcc, u as u8]);
        } else if u < 1 << 16 {
            out.push(0xcd);
            out.extend_from_slice(&(u as u16).to_be_bytes());
        } else if u < 1 << 32 {
            out.push(0xce);
            out.extend_from_slice(&(u as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&u.to_be_bytes());
        }
    } else {
        let i = v as i64;
        if i >= -32 {
            out.push(i as i8 as u8);
        } else if i >= -128 {
            out.extend_from_slice(&[0xd0, i as i8 as u8]);
        } else if i >= -32768 {
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
}

/// A str/bin header: kept when already the shortest for its length, else the shortest
/// str header (what the server's compaction writes).
fn raw(out: &mut Vec<u8>, head: u8, payload: &[u8]) {
    let n = payload.len();
    let shortest = match head {
        0xa0..=0xbf => true,
        0xc4 | 0xd9 => n > 0x1f,
        0xc5 | 0xda => n > 0xff,
        _ => n > 0xffff,
    };
    if shortest {
        match head {
            0xa0..=0xbf => out.push(head),
            0xc4 | 0xd9 => out.extend_from_slice(&[head, n as u8]),
            0xc5 | 0xda => {
                out.push(head);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            _ => {
                out.push(head);
                out.extend_from_slice(&(n as u32).to_be_bytes());
            }
        }
    } else if n < 32 {
        out.push(0xa0 | n as u8);
    } else if n < 256 {
        out.extend_from_slice(&[0xd9, n as u8]);
    } else {
        out.push(0xda);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    }
    out.extend_from_slice(payload);
}

fn write(out: &mut Vec<u8>, item: &Item<'_>) {
    match item {
        Item::Nil => out.push(0xc0),
        Item::Bool(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Item::Int(v) => int(out, *v),
        Item::Float(raw_bytes, _) => out.extend_from_slice(raw_bytes),
        Item::Raw(head, payload) => raw(out, *head, payload),
        Item::Ext(ty, data) => {
            ext_header(out, data.len(), *ty);
            out.extend_from_slice(data);
        }
        Item::List(flags, items) => {
            header(
                out,
                items.len() + usize::from(*flags != 0),
                0x90,
                0xdc,
                0xdd,
            );
            if *flags != 0 {
                ext_header(out, 0, *flags);
            }
            for i in items {
                write(out, i);
            }
        }
        Item::Map(flags, entries) => {
            header(
                out,
                entries.len() + usize::from(*flags != 0),
                0x80,
                0xde,
                0xdf,
            );
            if *flags != 0 {
                ext_header(out, 0, *flags);
                out.push(0xc0);
            }
            for (k, v) in entries {
                write(out, k);
                write(out, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Vec<u8> {
        let mut v = vec![0xa0 | (text.len() as u8 + 1), PT_STRING];
        v.extend_from_slice(text.as_bytes());
        v
    }

    #[test]
    fn canonical_lists_and_maps_are_kept_byte_for_byte() {
        let cases: Vec<(u8, Vec<u8>)> = vec![
            (PT_LIST, vec![0x93, 1, 2, 3]),
            // Ordered list: ext flag 1 then elements in order.
            (PT_LIST, vec![0x94, 0xc7, 0x00, 0x01, 1, 2, 3]),
            // Key-ordered and key-value-ordered maps.
            (
                PT_MAP,
                [
                    &[0x83, 0xc7, 0x00, 0x01, 0xc0][..],
                    &s("a"),
                    &[1],
                    &s("b"),
                    &[2],
                ]
                .concat(),
            ),
            (
                PT_MAP,
                [&[0x82, 0xc7, 0x00, 0x03, 0xc0][..], &s("a"), &[0x91, 7]].concat(),
            ),
            // Unordered list of an ordered list and an empty map; ext values elsewhere.
            (
                PT_LIST,
                vec![0x92, 0x93, 0xc7, 0x00, 0x01, 0x05, 0x80, 0xd4, 0x07, 0x09],
            ),
            (PT_LIST, vec![0x90]),
            (PT_MAP, vec![0x80]),
            (
                PT_LIST,
                vec![0x92, 0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0, 0xca, 0, 0, 0, 0],
            ),
            (
                PT_LIST,
                vec![
                    0x93, 0xcc, 0xff, 0xd0, 0x80, 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                    0xff,
                ],
            ),
        ];
        for (pt, bytes) in cases {
            assert_eq!(from_wire(pt, &bytes), Some(bytes.clone()), "{bytes:02x?}");
        }
    }

    #[test]
    fn unordered_maps_are_key_sorted_at_every_level() {
        let inner = [&[0x82][..], &s("z"), &[1], &s("y"), &[2]].concat();
        let outer = [&[0x82][..], &[5], &inner, &[1], &[0x90]].concat();
        let want_inner = [&[0x82][..], &s("y"), &[2], &s("z"), &[1]].concat();
        let want = [&[0x82][..], &[1], &[0x90], &[5], &want_inner].concat();
        assert_eq!(from_wire(PT_MAP, &outer), Some(want));
        // Integers sort before strings, negatives before positives.
        let mixed = [&[0x83][..], &s("a"), &[0], &[3], &[0], &[0xff], &[0]].concat();
        let sorted = [&[0x83][..], &[0xff], &[0], &[3], &[0], &s("a"), &[0]].concat();
        assert_eq!(from_wire(PT_MAP, &mixed), Some(sorted));
    }

    #[test]
    fn encodings_are_compacted_and_flags_masked() {
        // d3 00..05 -> 05; d0 ff -> ff; d9 01 03 'x' -> a2 03 'x'; dc 00 01 -> 91.
        assert_eq!(
            from_wire(
                PT_LIST,
                &[
                    0xdc, 0x00, 0x03, 0xd3, 0, 0, 0, 0, 0, 0, 0, 5, 0xd0, 0xff, 0xd9, 2, 3, b'x'
                ]
            ),
            Some(vec![0x93, 5, 0xff, 0xa2, 3, b'x'])
        );
        // Persisted-index bit dropped; a flag byte that masks to zero drops the ext.
        assert_eq!(
            from_wire(PT_LIST, &[0x93, 0xc7, 0x00, 0x11, 1, 2]),
            Some(vec![0x93, 0xc7, 0x00, 0x01, 1, 2])
        );
        assert_eq!(
            from_wire(PT_LIST, &[0x93, 0xc7, 0x00, 0x10, 2, 1]),
            Some(vec![0x92, 2, 1])
        );
        assert_eq!(
            from_wire(PT_MAP, &[0x82, 0xc7, 0x00, 0x08, 0xc0, 1, 1]),
            Some(vec![0x81, 1, 1])
        );
    }

    #[test]
    fn values_the_server_refuses_are_refused() {
        let refused: Vec<(u8, Vec<u8>)> = vec![
            (PT_LIST, vec![0x94, 0xc7, 0x00, 0x01, 3, 2, 1]), // ordered list out of order
            (
                PT_MAP,
                [
                    &[0x83, 0xc7, 0x00, 0x01, 0xc0][..],
                    &s("b"),
                    &[1],
                    &s("a"),
                    &[2],
                ]
                .concat(),
            ),
            (PT_MAP, [&[0x82][..], &s("a"), &[1], &s("a"), &[2]].concat()), // duplicate key
            (PT_MAP, vec![0x81, 0xc0, 1]),                                  // nil key
            (PT_MAP, vec![0x81, 0x90, 1]),                                  // list key
            (PT_LIST, vec![0x92, 1, 0xd4, 0xff, 0x00]),                     // wildcard
            (PT_LIST, vec![0x91, 1, 2]),                                    // trailing byte
            (PT_LIST, vec![0x92, 1]),                                       // truncated
            (PT_LIST, vec![0xdd, 0xff, 0xff, 0xff, 0xff, 1]), // count larger than the input
            (PT_MAP, vec![0x91, 1]),                          // a list sent as a map
            (PT_LIST, vec![0xc1]),
        ];
        for (pt, bytes) in refused {
            assert_eq!(from_wire(pt, &bytes), None, "{bytes:02x?}");
        }
        // Hostile nesting is refused, not a stack overflow.
        let deep = vec![0x91; 100_000];
        assert_eq!(from_wire(PT_LIST, &deep), None);
    }
}
