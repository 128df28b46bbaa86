//! Unit tests of `convert.rs`, kept beside it so the module reads as code.

use super::*;
use proptest::prelude::*;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn encodes_like_the_server_stores() {
    // Bytes as found in asbackup's golden files (README: "a3 03 73 33" is "s3", cf/d3
    // for int64 extremes, cb for floats, -0.0 as cb 80 ...).
    let list = Value::List(vec![
        Value::Int(i64::MAX),
        Value::Int(i64::MIN),
        Value::from(-0.0f64),
        Value::String("s3".into()),
        Value::Blob(vec![0x00, 0xff]),
        Value::Bool(true),
        Value::List(vec![]),
        Value::OrderedMap(IndexMap::new()),
    ]);
    let bytes = encode_cdt(&list).unwrap();
    assert_eq!(
        hex(&bytes),
        "98cf7fffffffffffffffd38000000000000000cb8000000000000000a30373\
         33a30400ffc39080"
    );
    assert_eq!(decode_cdt(&bytes).unwrap(), list);
}

#[test]
fn integers_use_the_smallest_form() {
    let cases: &[(i64, &str)] = &[
        (0, "00"),
        (127, "7f"),
        (128, "cc80"),
        (255, "ccff"),
        (256, "cd0100"),
        (65536, "ce00010000"),
        (1 << 32, "cf0000000100000000"),
        (-1, "ff"),
        (-32, "e0"),
        (-33, "d0df"),
        (-128, "d080"),
        (-129, "d1ff7f"),
        (-32769, "d2ffff7fff"),
        (-(1 << 31) - 1, "d3ffffffff7fffffff"),
    ];
    for (v, want) in cases {
        let mut out = Vec::new();
        pack_int(&mut out, *v);
        assert_eq!(hex(&out), *want, "{v}");
    }
}

#[test]
fn sorted_maps_carry_the_k_ordered_header() {
    let mut m = BTreeMap::new();
    m.insert(Value::String("b".into()), Value::Int(2));
    m.insert(Value::Int(1), Value::Int(1));
    let bytes = encode_cdt(&Value::SortedMap(m.clone())).unwrap();
    assert_eq!(hex(&bytes), "83c70001c00101a2036202");
    assert_eq!(decode_cdt(&bytes).unwrap(), Value::SortedMap(m.clone()));
    // The map variant survives, not just the content.
    assert!(matches!(decode_cdt(&bytes).unwrap(), Value::SortedMap(_)));
    // An unordered map keeps its stored order.
    let om: IndexMap<Value, Value> = [
        (Value::String("z".into()), Value::Nil),
        (Value::Int(5), Value::Nil),
    ]
    .into_iter()
    .collect();
    let bytes = encode_cdt(&Value::OrderedMap(om)).unwrap();
    assert_eq!(hex(&bytes), "82a2037ac005c0");
    let Value::OrderedMap(back) = decode_cdt(&bytes).unwrap() else {
        panic!()
    };
    assert_eq!(back.keys().next(), Some(&Value::String("z".into())));
}

#[test]
fn ordered_list_headers_are_skipped_on_decode() {
    // An ordered list as the server sends it: fixarray(3) whose first element is the
    // ext header (flags 1), then two items.
    let bytes = [0x93, 0xc7, 0x00, 0x01, 0x01, 0x02];
    assert_eq!(
        decode_cdt(&bytes).unwrap(),
        Value::List(vec![Value::Int(1), Value::Int(2)])
    );
}

#[test]
fn long_strings_use_str8_str16_and_str32() {
    for (len, head) in [
        (30, "bf03"),
        (31, "d92003"),
        (254, "d9ff03"),
        (255, "da010003"),
    ] {
        let s = "x".repeat(len);
        let bytes = encode_cdt(&Value::List(vec![Value::String(s.clone())])).unwrap();
        assert_eq!(hex(&bytes[1..1 + head.len() / 2]), head, "len {len}");
        assert_eq!(
            decode_cdt(&bytes).unwrap(),
            Value::List(vec![Value::String(s)])
        );
    }
    let big = vec![7u8; 70_000];
    let bytes = encode_cdt(&Value::List(vec![Value::Blob(big.clone())])).unwrap();
    assert_eq!(hex(&bytes[..7]), "91db0001117104");
    assert_eq!(
        decode_cdt(&bytes).unwrap(),
        Value::List(vec![Value::Blob(big)])
    );
}

#[test]
fn corrupt_particles_are_errors_not_panics() {
    let cases: &[(&[u8], &str)] = &[
        (&[], "truncated"),
        (&[0x92, 0x01], "truncated"),
        (&[0x91, 0xa0], "particle type"),
        (&[0x81, 0xc3, 0x01], "map key"),
        (&[0x92, 0x01, 0xd4, 0x05, 0x00], "extension type 0x05"),
        (&[0x90, 0x00], "trailing"),
        (&[0x01], "holds a integer"),
        (&[0x91, 0xcf, 0xff, 0, 0, 0, 0, 0, 0, 0], "does not fit"),
        (&[0xdd, 0xff, 0xff, 0xff, 0xff], "truncated"),
        (&[0x91, 0xc1], "never used"),
    ];
    for (bytes, needle) in cases {
        let err = decode_cdt(bytes).unwrap_err().to_string();
        assert!(err.contains(needle), "{} -> {err}", hex(bytes));
    }
    let deep: Vec<u8> = std::iter::repeat_n(0x91, 100).chain([0x90]).collect();
    assert!(
        decode_cdt(&deep)
            .unwrap_err()
            .to_string()
            .contains("deeper")
    );
}

#[test]
fn non_collections_and_bad_map_keys_are_rejected_on_encode() {
    assert!(encode_cdt(&Value::Int(1)).is_err());
    let mut m = std::collections::HashMap::new();
    m.insert(Value::Bool(true), Value::Nil);
    assert!(encode_cdt(&Value::HashMap(m)).is_err());
}

#[test]
fn hash_maps_encode_deterministically_in_key_order() {
    let m: std::collections::HashMap<Value, Value> = (0..20)
        .map(|i| (Value::String(format!("k{i:02}")), Value::Int(i)))
        .collect();
    let bytes = encode_cdt(&Value::HashMap(m.clone())).unwrap();
    let Value::OrderedMap(back) = decode_cdt(&bytes).unwrap() else {
        panic!()
    };
    let keys: Vec<_> = back.keys().cloned().collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    assert_eq!(Value::OrderedMap(back), Value::HashMap(m));
}

#[test]
fn client_records_convert_both_ways() {
    let key = Key::new("test", "people", Value::String("ann".into())).unwrap();
    let mut bins = IndexMap::new();
    bins.insert("i".to_string(), Value::Int(-5));
    bins.insert("f".to_string(), Value::from(1.5f64));
    bins.insert("s".to_string(), Value::String("a b\n".into()));
    bins.insert("b".to_string(), Value::Blob(vec![0, 1]));
    bins.insert("z".to_string(), Value::Bool(false));
    bins.insert(
        "g".to_string(),
        Value::GeoJson("{\"type\":\"Point\"}".into()),
    );
    bins.insert("h".to_string(), Value::Hll(vec![1, 2, 3]));
    bins.insert(
        "py".to_string(),
        Value::Unknown(particle::PYTHON_BLOB, vec![9]),
    );
    bins.insert(
        "l".to_string(),
        Value::List(vec![Value::Int(1), Value::String("x".into())]),
    );
    bins.insert(
        "m".to_string(),
        Value::OrderedMap([(Value::Int(1), Value::Nil)].into_iter().collect()),
    );
    let record = aerospike::Record::new(Some(key.clone()), bins.clone(), None, 7, 123_456);
    let asb = record_from_client_owned(record).unwrap();
    assert_eq!(asb.namespace, "test");
    assert_eq!(asb.set.as_deref(), Some("people"));
    assert_eq!(asb.digest, key.digest());
    assert_eq!(asb.key, Some(UserKey::String(b"ann".to_vec())));
    assert_eq!(asb.generation, 7);
    assert_eq!(asb.void_time, 123_456);
    assert_eq!(asb.bins[7].value, BinValue::Blob(BlobKind::Python, vec![9]));
    assert_eq!(
        asb.bins[8].value,
        BinValue::List(vec![0x92, 0x01, 0xa2, 0x03, b'x'])
    );

    let back_key = restore_key(&asb, None).unwrap();
    assert_eq!(back_key, key, "digest and user key survive");
    assert_eq!(
        restore_key(&asb, Some("other")).unwrap().namespace(),
        "other"
    );

    // Structured decoding gives the client's values back.
    for (bin, (name, value)) in asb.bins.iter().zip(&bins) {
        assert_eq!(&bin.name, name);
        assert_eq!(&value_from_bin_value(&bin.value).unwrap(), value, "{name}");
    }
    // The lossless restore form sends collections as raw particles.
    let restored = restore_bins(&asb).unwrap();
    assert_eq!(
        restored[8].value,
        Value::Unknown(particle::LIST, vec![0x92, 0x01, 0xa2, 0x03, b'x'])
    );
    assert_eq!(restored[0].value, Value::Int(-5));
    assert_eq!(
        restored[7].value,
        Value::Unknown(particle::PYTHON_BLOB, vec![9])
    );
}

#[test]
fn records_without_set_or_key_and_bad_generations() {
    let key = Key::with_digest("ns", "", None, [7; 20]);
    let rec = aerospike::Record::new(Some(key), IndexMap::new(), None, 1, 0);
    let asb = record_from_client(&rec).unwrap();
    assert_eq!(asb.set, None);
    assert_eq!(asb.key, None);
    assert_eq!(restore_key(&asb, None).unwrap().set_name(), "");

    let key = Key::with_digest("ns", "", None, [7; 20]);
    let rec = aerospike::Record::new(Some(key), IndexMap::new(), None, 70_000, 0);
    assert_eq!(
        record_from_client_owned(rec),
        Err(ConvertError::GenerationOutOfRange(70_000))
    );
    let rec = aerospike::Record::new(None, IndexMap::new(), None, 1, 0);
    assert_eq!(record_from_client(&rec), Err(ConvertError::MissingKey));
}

#[test]
fn non_utf8_strings_restore_as_raw_string_particles() {
    let v = restore_value(&BinValue::String(vec![0xff, 0xfe])).unwrap();
    assert_eq!(v, Value::Unknown(particle::STRING, vec![0xff, 0xfe]));
    assert!(user_key_to_value(&UserKey::String(vec![0xff])).is_err());
}

/// Values of every element type, nested. Map keys are ints, strings and blobs only.
fn arb_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Nil),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        prop_oneof![
            any::<f64>().prop_filter("NaN payloads are not comparable", |f| !f.is_nan()),
            Just(-0.0),
            Just(f64::INFINITY),
        ]
        .prop_map(Value::from),
        any::<f32>()
            .prop_filter("NaN payloads are not comparable", |f| !f.is_nan())
            .prop_map(Value::from),
        ".{0,40}".prop_map(Value::String),
        proptest::collection::vec(any::<u8>(), 0..300).prop_map(Value::Blob),
        "[a-z ]{0,10}".prop_map(Value::GeoJson),
        proptest::collection::vec(any::<u8>(), 0..20).prop_map(Value::Hll),
    ];
    let key = prop_oneof![
        any::<i64>().prop_map(Value::Int),
        ".{0,12}".prop_map(Value::String),
        proptest::collection::vec(any::<u8>(), 0..8).prop_map(Value::Blob),
    ];
    leaf.prop_recursive(4, 64, 20, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..20).prop_map(Value::List),
            proptest::collection::vec((key.clone(), inner.clone()), 0..18)
                .prop_map(|kv| Value::OrderedMap(kv.into_iter().collect())),
            proptest::collection::vec((key.clone(), inner), 0..18)
                .prop_map(|kv| Value::SortedMap(kv.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn nested_collections_round_trip(value in arb_value()) {
        let value = match value {
            v @ (Value::List(_) | Value::OrderedMap(_) | Value::SortedMap(_)) => v,
            scalar => Value::List(vec![scalar]),
        };
        let bytes = encode_cdt(&value).unwrap();
        let back = decode_cdt(&bytes).unwrap();
        prop_assert_eq!(&back, &value);
        // Re-encoding what we decoded gives the same bytes: the encoding is canonical.
        prop_assert_eq!(encode_cdt(&back).unwrap(), bytes.clone());
        // And the whole bin path agrees.
        let bin = bin_value_from_value(value.clone()).unwrap();
        prop_assert_eq!(value_from_bin_value(&bin).unwrap(), value);
    }
}
