//! Unit tests of `encode.rs`, kept beside it so the module reads as code.

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
