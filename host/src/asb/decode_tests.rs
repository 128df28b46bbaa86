//! Unit tests of `decode.rs`, kept beside it so the module reads as code.

use super::*;
use crate::asb::encode::{AsbEncoder, EncoderOptions};

fn decode_all(bytes: &[u8]) -> Result<Vec<AsbItem>> {
    AsbDecoder::new(bytes).collect()
}

fn err_of(bytes: &[u8]) -> DecodeError {
    decode_all(bytes).expect_err("decoding should fail")
}

const DOC_EXAMPLE: &[u8] = b"Version 3.1\n# namespace test\n# first-file\n\
    * i test  idx_name N 1 name S\n* u L my.lua 5 a\nb\nc\n\
    + k I 42\n+ n test\n+ d 0p6Ojs2nNjEqD6vH3uHZFaJZz6Q=\n+ s users\n+ g 3\n+ t 500000000\n\
    + b 4\n- S name 3 Ann\n- I age 33\n- B pic 4 AQID\n- N a\\ b\n";

#[test]
fn decodes_the_documented_example() {
    let items = decode_all(DOC_EXAMPLE).unwrap();
    assert_eq!(items.len(), 5);
    assert_eq!(items[0], AsbItem::Namespace("test".into()));
    assert_eq!(items[1], AsbItem::FirstFile);
    let AsbItem::SecondaryIndex(idx) = &items[2] else {
        panic!("{:?}", items[2])
    };
    assert_eq!(idx.set, None);
    assert_eq!(idx.name, "idx_name");
    assert_eq!(idx.index_type, IndexType::Default);
    assert_eq!(idx.value_type, IndexValueType::String);
    assert_eq!(idx.context, None);
    assert_eq!(
        items[3],
        AsbItem::Udf(Udf {
            name: "my.lua".into(),
            content: b"a\nb\nc".to_vec()
        })
    );
    let AsbItem::Record(rec) = &items[4] else {
        panic!("{:?}", items[4])
    };
    assert_eq!(rec.key, Some(UserKey::Int(42)));
    assert_eq!(rec.set.as_deref(), Some("users"));
    assert_eq!(rec.generation, 3);
    assert_eq!(rec.void_time, 500_000_000);
    assert_eq!(rec.digest[0], 0xd2);
    let bins: Vec<_> = rec
        .bins
        .iter()
        .map(|b| (b.name.as_str(), &b.value))
        .collect();
    assert_eq!(
        bins,
        vec![
            ("name", &BinValue::String(b"Ann".to_vec())),
            ("age", &BinValue::Int(33)),
            ("pic", &BinValue::Blob(BlobKind::Generic, vec![1, 2, 3])),
            ("a b", &BinValue::Nil),
        ]
    );
}

/// The 3.3 sidecar: a set index as backup-go's set-index branch wrote it (`S`, an
/// empty bin token, `E`) and an 8.1 expression index, which has no bin either; both
/// are written back byte for byte.
#[test]
fn set_and_expression_indexes_of_the_3_3_sidecar_round_trip() {
    let text: &[u8] = b"Version 3.3\n# namespace test\n\
        * i test testSet set_sidx S 1  E\n* e test testSet exp_sidx N 1  N k1ECo2FnZQ==\n";
    let items = decode_all(text).unwrap();
    let AsbItem::SecondaryIndex(set) = &items[1] else {
        panic!("{items:?}")
    };
    assert_eq!(set.index_type, IndexType::Set);
    assert_eq!(set.value_type, IndexValueType::Empty);
    assert_eq!(
        (set.bin.as_str(), set.set.as_deref()),
        ("", Some("testSet"))
    );
    assert!(!set.asrestore_reads());
    let AsbItem::SecondaryIndex(exp) = &items[2] else {
        panic!("{items:?}")
    };
    assert_eq!(exp.expression.as_deref(), Some("k1ECo2FnZQ=="));
    assert!(exp.bin.is_empty() && !exp.asrestore_reads());
    let mut enc = crate::asb::AsbEncoder::new(Vec::new(), Default::default());
    enc.write_header_version("test", crate::asb::ASB_EXTENDED_VERSION)
        .unwrap();
    enc.write_sindex(set).unwrap();
    enc.write_sindex(exp).unwrap();
    assert_eq!(enc.into_inner(), text);
}

#[test]
fn accepts_the_read_only_and_go_forms() {
    let text = b"Version 3.2\n# namespace test\n\
        * e test s expidx N 1 bin N kwEA\n* i test s ctxidx L 1 l S kgOnYQ==\n\
        + k X 4 YWJj\n+ n test\n+ d AAAAAAAAAAAAAAAAAAAAAAAAAAA=\n+ g 1\n+ t 0\n+ b 7\n\
        - X s 4 YWJj\n- D nan NaN\n- D pinf +Inf\n- D ninf -Inf\n- D minus_nan -nan\n\
        - D inf2 INFINITY\n- D e 1e+300\n";
    let items = decode_all(text).unwrap();
    let AsbItem::SecondaryIndex(e) = &items[1] else {
        panic!()
    };
    assert_eq!(e.expression.as_deref(), Some("kwEA"));
    assert_eq!(e.context, None);
    let AsbItem::SecondaryIndex(c) = &items[2] else {
        panic!()
    };
    assert_eq!(c.context.as_deref(), Some("kgOnYQ=="));
    assert_eq!(c.index_type, IndexType::List);
    let AsbItem::Record(rec) = &items[3] else {
        panic!()
    };
    assert_eq!(rec.key, Some(UserKey::String(b"abc".to_vec())));
    assert_eq!(rec.set, None);
    let doubles: Vec<f64> = rec.bins[1..]
        .iter()
        .map(|b| match b.value {
            BinValue::Double(d) => d,
            ref other => panic!("{other:?}"),
        })
        .collect();
    assert!(doubles[0].is_nan());
    assert_eq!(doubles[1], f64::INFINITY);
    assert_eq!(doubles[2], f64::NEG_INFINITY);
    assert!(doubles[3].is_nan() && doubles[3].is_sign_negative());
    assert_eq!(doubles[4], f64::INFINITY);
    assert_eq!(doubles[5], 1e300);
    assert_eq!(rec.bins[0].value, BinValue::String(b"abc".to_vec()));
}

#[test]
fn go_float_keys_in_positional_notation_are_read() {
    // backup-go writes float keys with `'f', -1`: 1e300 becomes 301 digits.
    let digits = format!("1{}", "0".repeat(300));
    let text = format!(
        "Version 3.1\n+ k D {digits}\n+ n t\n+ d AAAAAAAAAAAAAAAAAAAAAAAAAAA=\n+ g 1\n+ t 0\n+ b 0\n"
    );
    let items = decode_all(text.as_bytes()).unwrap();
    let AsbItem::Record(rec) = &items[0] else {
        panic!()
    };
    assert_eq!(rec.key, Some(UserKey::Double(1e300)));
}

#[test]
fn version_3_0_does_not_unescape_and_rejects_globals() {
    let text = b"Version 3.0\n# namespace a\\b\n+ n a\\b\n+ d AAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\
        + g 0\n+ t 0\n+ b 1\n- I x\\y 1\n";
    let items = decode_all(text).unwrap();
    assert_eq!(items[0], AsbItem::Namespace("a\\b".into()));
    let AsbItem::Record(rec) = &items[1] else {
        panic!()
    };
    assert_eq!(rec.namespace, "a\\b");
    assert_eq!(rec.bins[0].name, "x\\y");
    let err = err_of(b"Version 3.0\n* u L a 1 x\n");
    assert_eq!(err.line(), 2);
    assert!(err.to_string().contains("3.1"), "{err}");
}

#[test]
fn errors_name_the_line_and_the_problem() {
    let cases: &[(&[u8], u64, &str)] = &[
        (b"", 1, "empty stream"),
        (b"Version 4.0\n", 1, "unsupported file version"),
        (b"Versio 3.1\n", 1, "Version"),
        (b"Version 3.1\n# nope\n", 2, "invalid meta data line"),
        (b"Version 3.1\n+ n t\n+ d AAAA\n", 3, "invalid digest"),
        (
            b"Version 3.1\n+ n t\n+ g 1\n",
            3,
            "expected the digest line (`+ d`), found `+ g`",
        ),
        (
            b"Version 3.1\n+ n t\n+ d AAAAAAAAAAAAAAAAAAAAAAAAAAA=\n+ g 70000\n",
            4,
            "generation 70000 is out of range",
        ),
        (
            b"Version 3.1\n+ n t\n+ d AAAAAAAAAAAAAAAAAAAAAAAAAAA=\n+ g 1\n+ t 0\n+ b 2\n\
              - S s 3 a\nb\n- I i 99999999999999999999\n",
            9,
            "expected a 64-bit decimal integer",
        ),
        (
            b"Version 3.1\n+ n t\n+ d AAAAAAAAAAAAAAAAAAAAAAAAAAA=\n+ g 1\n+ t 0\n+ b 1\n\
              - S s 10 abc",
            7,
            "7 of 10 bytes missing",
        ),
        (
            b"Version 3.1\n+ n t\n+ d AAAAAAAAAAAAAAAAAAAAAAAAAAA=\n+ g 1\n+ t 0\n+ b 1\n\
              - B b 3 AQI\n",
            7,
            "not valid base64",
        ),
        (
            b"Version 3.1\n+ n t\n+ d AAAAAAAAAAAAAAAAAAAAAAAAAAA=\n+ g 1\n+ t 0\n+ b 1\n\
              - U u 1 x\n",
            7,
            "LDT",
        ),
        (
            b"Version 3.1\n+ n t\n+ d AAAAAAAAAAAAAAAAAAAAAAAAAAA=\n+ g 1\n+ t 0\n+ b 1\n\
              - S! s 1 x\n",
            7,
            "no compact",
        ),
        (
            b"Version 3.1\n+ n t\n+ d AAAAAAAAAAAAAAAAAAAAAAAAAAA=\n+ g 1\n+ t 0\n+ b 1\n\
              - D d 1.5x\n",
            7,
            "floating-point",
        ),
        (
            b"Version 3.1\n+ n t\n+ d AAAAAAAAAAAAAAAAAAAAAAAAAAA=\n+ g 1\n+ t 0\n+ b 1\n\
              - Z z Y\n",
            7,
            "invalid boolean",
        ),
        (b"Version 3.1\n* i test s idx N 2 a S b S\n", 2, "2 paths"),
        (b"Version 3.1\n- I x 1\n", 2, "expected a record"),
        (b"Version 3.1\n* u L a 5 abc", 2, "2 of 5 bytes missing"),
    ];
    for (text, line, needle) in cases {
        let err = err_of(text);
        assert_eq!(err.line(), *line, "{err}");
        assert!(err.to_string().contains(needle), "{err} lacks {needle:?}");
        assert!(err.to_string().starts_with(&format!("line {line}: ")));
    }
}

#[test]
fn a_failed_stream_stops_instead_of_resyncing() {
    let mut dec = AsbDecoder::new(&b"Version 3.1\n+ x\n+ n t\n"[..]);
    assert!(dec.next_item().is_err());
    assert!(dec.next_item().unwrap().is_none());
}

#[test]
fn chunk_reader_decodes_across_arbitrary_chunk_boundaries() {
    let mut enc = AsbEncoder::new(Vec::new(), EncoderOptions { compact: true });
    enc.write_header("test").unwrap();
    let mut direct = decode_all(DOC_EXAMPLE).unwrap();
    direct.remove(0); // the namespace item is rewritten by our header
    for item in &direct {
        match item {
            AsbItem::FirstFile => enc.write_first_file().unwrap(),
            AsbItem::SecondaryIndex(i) => enc.write_sindex(i).unwrap(),
            AsbItem::Udf(u) => enc.write_udf(u).unwrap(),
            AsbItem::Record(r) => {
                enc.write_record(r).unwrap();
            }
            AsbItem::Namespace(_) => unreachable!(),
        }
    }
    let bytes = enc.into_inner();
    for size in [1, 2, 3, 7, 64] {
        let chunks: Vec<io::Result<Vec<u8>>> = bytes
            .chunks(size)
            .flat_map(|c| [Ok(Vec::new()), Ok(c.to_vec())])
            .collect();
        let items: Vec<_> = AsbDecoder::new(ChunkReader::new(chunks.into_iter()))
            .collect::<Result<_>>()
            .unwrap();
        assert_eq!(items[0], AsbItem::Namespace("test".into()));
        assert_eq!(&items[1..], &direct[..], "chunk size {size}");
    }
}

#[test]
fn chunk_reader_takes_bytes_chunks() {
    let chunks = DOC_EXAMPLE
        .chunks(5)
        .map(|c| Ok(bytes::Bytes::copy_from_slice(c)));
    let items: Vec<_> = AsbDecoder::new(ChunkReader::new(chunks))
        .collect::<Result<_>>()
        .unwrap();
    assert_eq!(items, decode_all(DOC_EXAMPLE).unwrap());
}

#[test]
fn chunk_reader_reports_source_errors_with_the_line() {
    let chunks = vec![
        Ok(b"Version 3.1\n".to_vec()),
        Err(io::Error::other("decrypt failed")),
    ];
    let err = AsbDecoder::new(ChunkReader::new(chunks.into_iter()))
        .next_item()
        .unwrap_err();
    assert!(matches!(err, DecodeError::Io { line: 2, .. }), "{err}");
    assert!(err.to_string().contains("decrypt failed"));
}

#[test]
fn parse_double_accepts_c_and_go_spellings_only() {
    assert_eq!(
        parse_double(b"-0").map(f64::to_bits),
        Some((-0.0f64).to_bits())
    );
    assert_eq!(parse_double(b"9.9999999999999995e-08"), Some(1e-7));
    assert_eq!(parse_double(b"1E5"), Some(1e5));
    assert_eq!(parse_double(b"-Infinity"), Some(f64::NEG_INFINITY));
    for bad in [
        &b""[..],
        b"-",
        b"--1",
        b"0x10",
        b"1,5",
        b"nanx",
        b"+-1",
        b"1 ",
    ] {
        assert_eq!(
            parse_double(bad),
            None,
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
}

mod roundtrip {
    use super::*;
    use crate::asb::encode::{AsbEncoder, EncoderOptions};
    use proptest::prelude::*;

    /// Names made to stress escaping: spaces, backslashes and newlines mixed with any char.
    fn name() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![Just(' '), Just('\\'), Just('\n'), Just('!'), any::<char>()],
            0..12,
        )
        .prop_map(|chars| chars.into_iter().collect())
    }

    fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(any::<u8>(), 0..max)
    }

    fn double() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<f64>(),
            Just(-0.0),
            Just(f64::MIN_POSITIVE),
            Just(5e-324),
            Just(f64::MAX),
            Just(f64::NEG_INFINITY),
            Just(f64::NAN),
        ]
    }

    fn bin_value() -> impl Strategy<Value = BinValue> {
        prop_oneof![
            Just(BinValue::Nil),
            any::<bool>().prop_map(BinValue::Bool),
            prop_oneof![any::<i64>(), Just(i64::MIN), Just(i64::MAX), Just(0)]
                .prop_map(BinValue::Int),
            double().prop_map(BinValue::Double),
            bytes(40).prop_map(BinValue::String),
            bytes(40).prop_map(BinValue::GeoJson),
            (proptest::sample::select(BlobKind::ALL.to_vec()), bytes(40))
                .prop_map(|(k, b)| BinValue::Blob(k, b)),
            bytes(40).prop_map(BinValue::Hll),
            bytes(40).prop_map(BinValue::List),
            bytes(40).prop_map(BinValue::Map),
        ]
    }

    fn user_key() -> impl Strategy<Value = UserKey> {
        prop_oneof![
            any::<i64>().prop_map(UserKey::Int),
            double().prop_map(UserKey::Double),
            bytes(20).prop_map(UserKey::String),
            bytes(20).prop_map(UserKey::Bytes),
        ]
    }

    fn record() -> impl Strategy<Value = AsbRecord> {
        (
            proptest::option::of(user_key()),
            name(),
            any::<[u8; 20]>(),
            proptest::option::of(name()),
            any::<u16>(),
            prop_oneof![any::<u32>(), Just(0), Just(u32::MAX)],
            proptest::collection::vec((name(), bin_value()), 0..8),
        )
            .prop_map(
                |(key, namespace, digest, set, generation, void_time, bins)| AsbRecord {
                    key,
                    namespace,
                    digest,
                    set,
                    generation,
                    void_time,
                    bins: bins.into_iter().map(|(n, v)| Bin::new(n, v)).collect(),
                },
            )
    }

    fn b64() -> impl Strategy<Value = String> {
        proptest::collection::vec(any::<u8>(), 1..12).prop_map(|b| STANDARD.encode(b))
    }

    fn sindex() -> impl Strategy<Value = SecondaryIndex> {
        (
            (
                name(),
                proptest::option::of(name().prop_filter("empty = no set", |s| !s.is_empty())),
                name(),
            ),
            proptest::sample::select(vec![
                IndexType::Default,
                IndexType::List,
                IndexType::MapKeys,
                IndexType::MapValues,
            ]),
            name(),
            proptest::sample::select(vec![
                IndexValueType::String,
                IndexValueType::Numeric,
                IndexValueType::Geo,
                IndexValueType::Blob,
            ]),
            proptest::option::of(b64()),
            proptest::option::of(b64()),
        )
            .prop_map(
                |((namespace, set, name), index_type, bin, value_type, ctx, exp)| {
                    // backup-go's `* e` lines carry the expression and no context.
                    let (context, expression) = if exp.is_some() {
                        (None, exp)
                    } else {
                        (ctx, None)
                    };
                    SecondaryIndex {
                        namespace,
                        set,
                        name,
                        index_type,
                        bin,
                        value_type,
                        context,
                        expression,
                    }
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn records_and_globals_survive_encode_then_decode(
            ns in name(),
            indexes in proptest::collection::vec(sindex(), 0..3),
            udfs in proptest::collection::vec((name(), bytes(60)), 0..3),
            recs in proptest::collection::vec(record(), 0..12),
            compact in any::<bool>(),
            chunk in 1usize..200,
        ) {
            let mut enc = AsbEncoder::new(Vec::new(), EncoderOptions { compact });
            enc.write_header(&ns).unwrap();
            enc.write_first_file().unwrap();
            let mut want = vec![AsbItem::Namespace(ns.clone()), AsbItem::FirstFile];
            for idx in indexes {
                enc.write_sindex(&idx).unwrap();
                want.push(AsbItem::SecondaryIndex(idx));
            }
            for (name, content) in udfs {
                let udf = Udf { name, content };
                enc.write_udf(&udf).unwrap();
                want.push(AsbItem::Udf(udf));
            }
            for rec in recs {
                enc.write_record(&rec).unwrap();
                want.push(AsbItem::Record(rec));
            }
            let bytes = enc.into_inner();
            let direct: Vec<AsbItem> = AsbDecoder::new(&bytes[..]).collect::<Result<_>>().unwrap();
            prop_assert_eq!(&direct, &want);
            // The same through a chunked push source.
            let chunks: Vec<io::Result<Vec<u8>>> = bytes.chunks(chunk).map(|c| Ok(c.to_vec())).collect();
            let pushed: Vec<AsbItem> = AsbDecoder::new(ChunkReader::new(chunks.into_iter()))
                .collect::<Result<_>>()
                .unwrap();
            prop_assert_eq!(&pushed, &want);
        }
    }
}
