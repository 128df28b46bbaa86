//! Property tests of the `.asb` decoder against hostile input: random bytes and mutated
//! asbackup files (`tests/data/golden`) never panic, every error names a line that exists
//! in the input, and chunk boundaries never change the outcome. The long run (≥ 1 M inputs,
//! with a check that no allocation is sized by a length field) is the `asb_fuzz` bench.

use std::path::Path;

use proptest::prelude::*;

use super::{AsbDecoder, AsbItem, ChunkReader, DecodeError};

/// Decodes everything, stopping at the first error.
fn decode(bytes: &[u8]) -> (Vec<AsbItem>, Option<DecodeError>) {
    let mut items = Vec::new();
    let mut dec = AsbDecoder::new(bytes);
    loop {
        match dec.next_item() {
            Ok(Some(item)) => items.push(item),
            Ok(None) => return (items, None),
            Err(e) => return (items, Some(e)),
        }
    }
}

/// The same, fed in chunks of the given sizes (cycled).
fn decode_chunked(bytes: &[u8], sizes: &[usize]) -> (Vec<AsbItem>, Option<DecodeError>) {
    let mut chunks = Vec::new();
    let mut pos = 0;
    let mut i = 0;
    while pos < bytes.len() {
        let n = sizes[i % sizes.len()].clamp(1, bytes.len() - pos);
        chunks.push(Ok(bytes[pos..pos + n].to_vec()));
        pos += n;
        i += 1;
    }
    let mut items = Vec::new();
    let mut dec = AsbDecoder::new(ChunkReader::new(chunks.into_iter()));
    loop {
        match dec.next_item() {
            Ok(Some(item)) => items.push(item),
            Ok(None) => return (items, None),
            Err(e) => return (items, Some(e)),
        }
    }
}

/// What every outcome must satisfy: an error names a line of the input and says why.
fn check_outcome(bytes: &[u8], outcome: &(Vec<AsbItem>, Option<DecodeError>)) {
    if let Some(e) = &outcome.1 {
        let lines = bytes.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
        assert!(
            (1..=lines).contains(&e.line()),
            "error line {} outside 1..={lines}: {e}",
            e.line()
        );
        let text = e.to_string();
        assert!(
            text.starts_with(&format!("line {}: ", e.line())) && text.len() > 10,
            "{text}"
        );
    }
}

fn same(a: &(Vec<AsbItem>, Option<DecodeError>), b: &(Vec<AsbItem>, Option<DecodeError>)) {
    assert_eq!(a.0, b.0);
    assert_eq!(
        a.1.as_ref().map(ToString::to_string),
        b.1.as_ref().map(ToString::to_string)
    );
}

fn golden(rel: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data/golden")
        .join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// One edit of a file: the kinds of damage a torn write, a bad disk or a hostile writer make.
#[derive(Debug, Clone)]
enum Mutation {
    FlipBit(usize, u8),
    SetByte(usize, u8),
    Delete(usize, usize),
    Duplicate(usize, usize),
    Truncate(usize),
    /// Inserts text that is meaningful to the format (separators, digits, tags).
    Insert(usize, &'static str),
}

const INTERESTING: &[&str] = &[
    " ",
    "\n",
    "\\",
    "!",
    "-",
    "+ ",
    "- ",
    "* ",
    "# ",
    "9",
    "99999999999",
    "18446744073709551616",
    "268435456",
    "268435457 ",
    "0",
    "-0",
    "nan",
    "inf",
    "=",
    "\r\n",
    "\u{0}",
    "\u{ff}",
    "+ b 65535\n",
    "- L l 4 ",
    "- B! b 999999 ",
    "+ k B 12 ",
    "* u L x 99999999 ",
];

fn mutation() -> impl Strategy<Value = Mutation> {
    let pos = any::<prop::sample::Index>();
    prop_oneof![
        (pos.clone(), 0u8..8).prop_map(|(i, b)| Mutation::FlipBit(i.index(usize::MAX), b)),
        (pos.clone(), any::<u8>()).prop_map(|(i, b)| Mutation::SetByte(i.index(usize::MAX), b)),
        (pos.clone(), 1usize..64).prop_map(|(i, n)| Mutation::Delete(i.index(usize::MAX), n)),
        (pos.clone(), 1usize..256).prop_map(|(i, n)| Mutation::Duplicate(i.index(usize::MAX), n)),
        pos.clone()
            .prop_map(|i| Mutation::Truncate(i.index(usize::MAX))),
        (pos, prop::sample::select(INTERESTING))
            .prop_map(|(i, s)| Mutation::Insert(i.index(usize::MAX), s)),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    if bytes.is_empty() {
        return;
    }
    let at = |i: usize| i % bytes.len();
    match *m {
        Mutation::FlipBit(i, b) => {
            let i = at(i);
            bytes[i] ^= 1 << b;
        }
        Mutation::SetByte(i, v) => {
            let i = at(i);
            bytes[i] = v;
        }
        Mutation::Delete(i, n) => {
            let i = at(i);
            let end = (i + n).min(bytes.len());
            bytes.drain(i..end);
        }
        Mutation::Duplicate(i, n) => {
            let i = at(i);
            let end = (i + n).min(bytes.len());
            let copy = bytes[i..end].to_vec();
            bytes.splice(i..i, copy);
        }
        Mutation::Truncate(i) => {
            let i = at(i);
            bytes.truncate(i);
        }
        Mutation::Insert(i, s) => {
            let i = at(i);
            bytes.splice(i..i, s.bytes());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let outcome = decode(&bytes);
        check_outcome(&bytes, &outcome);
    }

    #[test]
    fn random_bodies_after_a_valid_header_never_panic(
        version in prop::sample::select(vec!["3.0", "3.1", "3.2"]),
        body in prop::collection::vec(
            prop_oneof![
                4 => any::<u8>(),
                // Bias towards the format's own bytes, so parsing gets deep.
                6 => prop::sample::select(b"+-*# \n\\!0123456789kndsgtbIDSXBLMZNTF=".to_vec()),
            ],
            0..4096,
        ),
        sizes in prop::collection::vec(1usize..300, 1..8),
    ) {
        let mut bytes = format!("Version {version}\n").into_bytes();
        bytes.extend_from_slice(&body);
        let whole = decode(&bytes);
        check_outcome(&bytes, &whole);
        same(&whole, &decode_chunked(&bytes, &sizes));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn mutated_golden_files_never_panic_and_chunking_does_not_matter(
        file in prop::sample::select(vec![
            "plain/test_00000.asb",
            "compact/test_00000.asb",
            "parallel4/test_00001.asb",
        ]),
        window in (any::<prop::sample::Index>(), 64usize..6000),
        keep_header in any::<bool>(),
        mutations in prop::collection::vec(mutation(), 1..5),
        sizes in prop::collection::vec(1usize..5000, 1..6),
    ) {
        let full = golden(file);
        // A window of a few records keeps each case small; the header makes most of it parse.
        let start = window.0.index(full.len());
        let end = (start + window.1).min(full.len());
        let mut bytes = if keep_header { b"Version 3.1\n".to_vec() } else { Vec::new() };
        bytes.extend_from_slice(&full[start..end]);
        for m in &mutations {
            apply(&mut bytes, m);
        }
        let whole = decode(&bytes);
        check_outcome(&bytes, &whole);
        same(&whole, &decode_chunked(&bytes, &sizes));
    }
}

#[test]
fn golden_files_decode_whole_and_in_any_chunking() {
    for file in [
        "plain/test_00000.asb",
        "compact/test_00000.asb",
        "parallel4/test_00002.asb",
    ] {
        let bytes = golden(file);
        let whole = decode(&bytes);
        assert!(whole.1.is_none(), "{file}: {:?}", whole.1);
        assert!(whole.0.len() > 10, "{file}");
        for sizes in [&[1][..], &[7, 1, 300], &[4096], &[65_536]] {
            same(&whole, &decode_chunked(&bytes, sizes));
        }
    }
}

/// Lengths far beyond the input fail with the line and field, after reading only what is
/// there (the bench checks the allocations; here the outcome).
#[test]
fn huge_declared_lengths_fail_with_the_line_and_field() {
    let head = "Version 3.1\n+ n test\n+ d L6pmZZftm0PLNpleDoS7L9Q3O9w=\n+ g 1\n+ t 0\n+ b 1\n";
    let cases = [
        ("- B b 268435456 AAAA\n", "blob bin", 7),
        ("- B! b 268435455 xyz\n", "blob bin", 7),
        ("- S s 99999 abc\n", "string bin", 7),
        ("- L l 268435457 AAAA\n", "out of range", 7),
        ("- M m 18446744073709551616 A\n", "out of range", 7),
    ];
    for (bin, want, line) in cases {
        let text = format!("{head}{bin}");
        let (items, err) = decode(text.as_bytes());
        assert!(items.is_empty());
        let err = err.unwrap_or_else(|| panic!("{bin:?} decoded"));
        assert_eq!(err.line(), line, "{err}");
        assert!(err.to_string().contains(want), "{bin:?}: {err}");
    }
    // A bin count far above the bins present.
    let text = format!("{}- I a 1\n", head.replace("+ b 1", "+ b 65535"));
    let (_, err) = decode(text.as_bytes());
    let err = err.expect("missing bins");
    assert_eq!(err.line(), 8, "{err}");
    assert!(err.to_string().contains("end of stream"), "{err}");
    // A UDF claiming more content than the file holds.
    let (_, err) = decode(b"Version 3.1\n* u L a.lua 4000000000 x\n");
    assert!(err.expect("short UDF").to_string().contains("UDF"));
}

/// What the restore does next with list and map bins: the msgpack reader must refuse
/// damaged particles with an error too, never panic.
mod cdt {
    use proptest::prelude::*;

    use crate::asb::convert::decode_cdt;

    /// Canonical particles of every shape the golden files hold, to mutate.
    const SEEDS: &[&[u8]] = &[
        &[0x94, 0xc7, 0x00, 0x01, 0x01, 0x02, 0x03],
        &[0x82, 0xc7, 0x00, 0x01, 0xc0, 0xa2, 0x03, b'a', 0x01],
        &[
            0x92, 0x82, 0xc7, 0x00, 0x03, 0xc0, 0x01, 0x02, 0x92, 0xc7, 0x00, 0x01, 0x05,
        ],
        &[
            0x93, 0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0, 0xd4, 0x07, 0x09, 0xc4, 0x02, 0x04, 0xff,
        ],
        &[
            0xdc, 0x00, 0x02, 0xdd, 0x00, 0x00, 0x00, 0x01, 0xc3, 0xde, 0x00, 0x00,
        ],
    ];

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

        #[test]
        fn random_particles_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_cdt(&bytes);
        }

        #[test]
        fn mutated_particles_never_panic(
            seed in prop::sample::select(SEEDS),
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..4),
        ) {
            let mut bytes = seed.to_vec();
            for (at, byte, kind) in edits {
                if bytes.is_empty() {
                    break;
                }
                let i = at.index(bytes.len());
                match kind {
                    0 => bytes[i] = byte,
                    1 => { bytes.remove(i); }
                    _ => bytes.insert(i, byte),
                }
            }
            let _ = decode_cdt(&bytes);
        }
    }

    #[test]
    fn hostile_counts_and_nesting_are_refused() {
        assert!(decode_cdt(&[0xdd, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(decode_cdt(&[0xdf, 0xff, 0xff, 0xff, 0xff, 0x01]).is_err());
        assert!(decode_cdt(&vec![0x91; 100_000]).is_err());
    }
}
