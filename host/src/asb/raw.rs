//! A record in the server's wire form, as the partition-scan reader hands it to the encoder:
//! borrowed fields and bins as raw particles, so a backup never builds a client `Value`.
//! The reader (`crate::aerospike::node_reader`) fills it; the encoder writes it out.

/// One scanned record, borrowing the reply frame.
#[derive(Debug, Clone, Copy)]
pub struct RawRecord<'a> {
    pub namespace: &'a [u8],
    /// `None` when the record is in no set.
    pub set: Option<&'a [u8]>,
    pub digest: [u8; 20],
    /// The stored user key: particle type and bytes.
    pub key: Option<(u8, &'a [u8])>,
    pub generation: u32,
    /// Seconds since the Citrusleaf epoch; 0 = never expires.
    pub void_time: u32,
    pub n_ops: u16,
    /// The op section: `n_ops` bins in wire form (see [`RawBins`]).
    pub ops: &'a [u8],
}

impl<'a> RawRecord<'a> {
    pub fn bins(&self) -> RawBins<'a> {
        RawBins {
            rest: self.ops,
            left: self.n_ops,
        }
    }
}

/// One bin as the server sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawBin<'a> {
    pub name: &'a [u8],
    pub particle_type: u8,
    pub data: &'a [u8],
}

/// The bins of a [`RawRecord`]; the op section was bounds-checked when the record was parsed.
#[derive(Debug, Clone)]
pub struct RawBins<'a> {
    rest: &'a [u8],
    left: u16,
}

impl<'a> Iterator for RawBins<'a> {
    type Item = RawBin<'a>;

    fn next(&mut self) -> Option<RawBin<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let (bin, rest) = split_op(self.rest)?;
        self.rest = rest;
        Some(bin)
    }
}

pub(crate) fn split_op(b: &[u8]) -> Option<(RawBin<'_>, &[u8])> {
    let size = u32::from_be_bytes(b.get(..4)?.try_into().ok()?) as usize;
    let op = b.get(4..4 + size)?;
    let (&[_op, particle_type, _version, name_len], rest) = op.split_first_chunk::<4>()?;
    let name = rest.get(..usize::from(name_len))?;
    let data = &rest[usize::from(name_len)..];
    Some((
        RawBin {
            name,
            particle_type,
            data,
        },
        &b[4 + size..],
    ))
}
