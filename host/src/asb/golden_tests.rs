//! Interoperability tests against backups written by Aerospike's own asbackup 4.5.8
//! (`tests/data/golden/`, see its README): every folder decodes to exactly the records of
//! `expected.json`, the compressed and encrypted ones after unwrapping their containers here
//! with independent native code (BACKUP-FORMAT.md §3–4), and our encoder reproduces
//! asbackup's files byte for byte.
//!
//! The golden data is kept in the repository, `tests/data/golden/` (its README says where it
//! comes from); `ABS_GOLDEN_DIR` points the tests at another copy.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use aerospike::{IndexMap, Value};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};

use super::convert::{decode_cdt, encode_cdt};
use super::decode::{AsbDecoder, AsbItem};
use super::encode::{AsbEncoder, EncoderOptions};
use super::{AsbRecord, Bin, BinValue, BlobKind, IndexType, IndexValueType, UserKey};

/// The absolute expiry every long-TTL golden record has (README: 2036-10-05 12:06:21 UTC).
const GOLDEN_VOID_TIME: u32 = 844_517_181;

fn golden_dir() -> PathBuf {
    let dir = match std::env::var_os("ABS_GOLDEN_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/golden"),
    };
    assert!(
        dir.join("expected.json").is_file(),
        "golden asbackup files not found at {}",
        dir.display()
    );
    dir
}

fn read(rel: &str) -> Vec<u8> {
    let path = golden_dir().join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn decode(bytes: &[u8]) -> Vec<AsbItem> {
    AsbDecoder::new(bytes)
        .collect::<Result<Vec<_>, _>>()
        .unwrap_or_else(|e| panic!("decoding golden file: {e}"))
}

fn records(items: &[AsbItem]) -> Vec<&AsbRecord> {
    items
        .iter()
        .filter_map(|i| match i {
            AsbItem::Record(r) => Some(r),
            _ => None,
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// expected.json

/// A JSON object with its key order kept (serde_json's `Map` sorts without `preserve_order`);
/// bin order matters for byte-identical output.
struct Ordered(Vec<(String, serde_json::Value)>);

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Ordered;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    out.push(entry);
                }
                Ok(Ordered(out))
            }
        }
        d.deserialize_map(V)
    }
}

#[derive(serde::Deserialize)]
struct ExpectedFile {
    namespace: String,
    set: String,
    sindex: ExpectedSindex,
    udf: ExpectedUdf,
    records: Vec<ExpectedRecordJson>,
}

#[derive(serde::Deserialize)]
struct ExpectedSindex {
    name: String,
    set: String,
    bin: String,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(serde::Deserialize)]
struct ExpectedUdf {
    name: String,
    source: String,
}

#[derive(serde::Deserialize)]
struct ExpectedRecordJson {
    key: Option<i64>,
    digest: String,
    ttl: String,
    bins: Ordered,
}

struct Expected {
    file: ExpectedFile,
    /// digest → the record as asbackup must have written it.
    by_digest: HashMap<[u8; 20], AsbRecord>,
    /// digest → bin name → the typed value, for semantic comparison of lists and maps.
    values: HashMap<[u8; 20], BTreeMap<String, Value>>,
}

fn expected() -> Expected {
    let file: ExpectedFile = serde_json::from_slice(&read("expected.json")).unwrap();
    let mut by_digest = HashMap::new();
    let mut values = HashMap::new();
    for r in &file.records {
        let digest: [u8; 20] = STANDARD.decode(&r.digest).unwrap().try_into().unwrap();
        let mut bins = Vec::new();
        let mut typed = BTreeMap::new();
        for (name, v) in &r.bins.0 {
            let value = json_value(v);
            bins.push(Bin::new(name.clone(), expected_bin_value(v, &value)));
            typed.insert(name.clone(), value);
        }
        let record = AsbRecord {
            key: r.key.map(UserKey::Int),
            namespace: file.namespace.clone(),
            digest,
            set: Some(file.set.clone()),
            generation: 1,
            void_time: match r.ttl.as_str() {
                "never" => 0,
                "long" => GOLDEN_VOID_TIME,
                other => panic!("unknown ttl class {other}"),
            },
            bins,
        };
        by_digest.insert(digest, record);
        values.insert(digest, typed);
    }
    assert_eq!(by_digest.len(), 200);
    Expected {
        file,
        by_digest,
        values,
    }
}

/// The typed JSON encoding of make_data.py as a client `Value`. Maps are built with keys in
/// the server's order, as the Python client sends dicts (README, "Maps").
fn json_value(v: &serde_json::Value) -> Value {
    let obj = v.as_object().expect("typed value object");
    let (tag, inner) = obj.iter().next().expect("one tag");
    match tag.as_str() {
        "int" => Value::Int(inner.as_str().unwrap().parse().unwrap()),
        "float" => Value::from(inner.as_str().unwrap().parse::<f64>().unwrap()),
        "str" => Value::String(inner.as_str().unwrap().to_string()),
        "bytes" => Value::Blob(STANDARD.decode(inner.as_str().unwrap()).unwrap()),
        "bool" => Value::Bool(inner.as_bool().unwrap()),
        "geojson" => Value::GeoJson(inner.as_str().unwrap().to_string()),
        "list" => Value::List(inner.as_array().unwrap().iter().map(json_value).collect()),
        "map" => {
            let mut pairs: Vec<(Value, Value)> = inner
                .as_array()
                .unwrap()
                .iter()
                .map(|kv| {
                    let kv = kv.as_array().unwrap();
                    (json_value(&kv[0]), json_value(&kv[1]))
                })
                .collect();
            pairs.sort_by(|a, b| a.0.cmp(&b.0));
            Value::OrderedMap(pairs.into_iter().collect::<IndexMap<_, _>>())
        }
        other => panic!("unknown tag {other}"),
    }
}

fn expected_bin_value(json: &serde_json::Value, value: &Value) -> BinValue {
    let tag = json.as_object().unwrap().keys().next().unwrap().as_str();
    match (tag, value) {
        ("int", Value::Int(i)) => BinValue::Int(*i),
        ("float", Value::Float(f)) => BinValue::Double(f64::from(f)),
        ("str", Value::String(s)) => BinValue::String(s.as_bytes().to_vec()),
        ("bytes", Value::Blob(b)) => BinValue::Blob(BlobKind::Generic, b.clone()),
        ("bool", Value::Bool(b)) => BinValue::Bool(*b),
        ("geojson", Value::GeoJson(g)) => BinValue::GeoJson(g.as_bytes().to_vec()),
        ("list", v) => BinValue::List(encode_cdt(v).unwrap()),
        ("map", v) => BinValue::Map(encode_cdt(v).unwrap()),
        (tag, v) => panic!("{tag} vs {v:?}"),
    }
}

/// Checks decoded records against expected.json: first by meaning (lists/maps decoded and
/// compared as values, map order ignored), then exactly, which also proves that our msgpack
/// encoding of the expected values is byte-identical to what the server stored.
fn assert_records_match(decoded: &[&AsbRecord], exp: &Expected) {
    assert_eq!(decoded.len(), 200, "record count");
    let mut seen = std::collections::HashSet::new();
    for rec in decoded {
        let want = exp
            .by_digest
            .get(&rec.digest)
            .unwrap_or_else(|| panic!("unexpected digest {}", STANDARD.encode(rec.digest)));
        assert!(seen.insert(rec.digest), "duplicate record");
        let typed = &exp.values[&rec.digest];
        let names: Vec<_> = rec.bins.iter().map(|b| b.name.as_str()).collect();
        let want_names: Vec<_> = want.bins.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, want_names, "bin names of {:?}", want.key);
        for bin in &rec.bins {
            match &bin.value {
                BinValue::List(raw) | BinValue::Map(raw) => {
                    assert_eq!(
                        &decode_cdt(raw).unwrap(),
                        &typed[&bin.name],
                        "bin {} of record {:?}",
                        bin.name,
                        want.key
                    );
                }
                _ => {}
            }
        }
        assert_eq!(*rec, want, "record {:?}", want.key);
    }
}

fn assert_globals(items: &[AsbItem], exp: &Expected) {
    assert_eq!(items[0], AsbItem::Namespace("test".into()));
    assert_eq!(items[1], AsbItem::FirstFile);
    let AsbItem::SecondaryIndex(idx) = &items[2] else {
        panic!("expected the sindex line, got {:?}", items[2])
    };
    assert_eq!(idx.name, exp.file.sindex.name);
    assert_eq!(idx.set.as_deref(), Some(exp.file.sindex.set.as_str()));
    assert_eq!(idx.bin, exp.file.sindex.bin);
    assert_eq!(exp.file.sindex.kind, "numeric");
    assert_eq!(idx.value_type, IndexValueType::Numeric);
    assert_eq!(idx.index_type, IndexType::Default);
    assert_eq!(idx.context, None);
    let AsbItem::Udf(udf) = &items[3] else {
        panic!("expected the UDF line, got {:?}", items[3])
    };
    assert_eq!(udf.name, exp.file.udf.name);
    assert_eq!(udf.content, exp.file.udf.source.as_bytes());
}

/// Re-encodes decoded items with our encoder.
fn reencode(items: &[AsbItem], options: EncoderOptions) -> Vec<u8> {
    let mut enc = AsbEncoder::new(Vec::new(), options);
    for item in items {
        match item {
            AsbItem::Namespace(ns) => enc.write_header(ns).unwrap(),
            AsbItem::FirstFile => enc.write_first_file().unwrap(),
            AsbItem::SecondaryIndex(i) => enc.write_sindex(i).unwrap(),
            AsbItem::Udf(u) => enc.write_udf(u).unwrap(),
            AsbItem::Record(r) => {
                enc.write_record(r).unwrap();
            }
        }
    }
    let written = enc.bytes_written();
    let out = enc.into_inner();
    assert_eq!(written, out.len() as u64);
    out
}

/// Compares long byte strings with a readable message at the first difference.
fn assert_same_bytes(ours: &[u8], theirs: &[u8], what: &str) {
    if ours == theirs {
        return;
    }
    let at = ours
        .iter()
        .zip(theirs)
        .position(|(a, b)| a != b)
        .unwrap_or(ours.len().min(theirs.len()));
    let from = at.saturating_sub(80);
    panic!(
        "{what}: first difference at byte {at} (ours {} bytes, asbackup {})\n ours: {:?}\n them: {:?}",
        ours.len(),
        theirs.len(),
        String::from_utf8_lossy(&ours[from..(at + 80).min(ours.len())]),
        String::from_utf8_lossy(&theirs[from..(at + 80).min(theirs.len())]),
    );
}

// ---------------------------------------------------------------------------------------------
// Containers: zstd and asbackup's AES-CTR (BACKUP-FORMAT.md §3, §4)

/// SHA-256 of the RSA key in PKCS#1 DER form (what OpenSSL's `i2d_PrivateKey` gives),
/// truncated to the AES key size. key.pem is PKCS#8, so the inner key is parsed and
/// re-encoded rather than hashed as found.
fn aes_key(len: usize) -> Vec<u8> {
    use pkcs1::der::Encode as _;
    use pkcs8::der::pem::PemLabel as _;
    use sha2::Digest as _;

    let pem = String::from_utf8(read("key.pem")).unwrap();
    let (label, doc) = pkcs8::SecretDocument::from_pem(&pem).unwrap();
    assert_eq!(label, pkcs8::PrivateKeyInfo::PEM_LABEL);
    let info = pkcs8::PrivateKeyInfo::try_from(doc.as_bytes()).unwrap();
    assert_eq!(
        info.algorithm.oid.to_string(),
        "1.2.840.113549.1.1.1",
        "an RSA key"
    );
    let rsa = pkcs1::RsaPrivateKey::try_from(info.private_key).unwrap();
    let der = rsa.to_der().unwrap();
    sha2::Sha256::digest(&der)[..len].to_vec()
}

/// First 16 bytes: AES-ECB(key, N); then AES-CTR keystream from counter N+1 (128-bit BE).
fn decrypt(data: &[u8], key: &[u8]) -> Vec<u8> {
    fn run<C>(data: &[u8], key: &[u8]) -> Vec<u8>
    where
        C: aes::cipher::BlockCipher + aes::cipher::BlockDecrypt + aes::cipher::BlockEncrypt,
        C: aes::cipher::KeyInit,
        C: aes::cipher::BlockSizeUser<BlockSize = aes::cipher::consts::U16>,
        ctr::Ctr128BE<C>: aes::cipher::KeyIvInit + aes::cipher::StreamCipher,
    {
        use aes::cipher::{KeyIvInit, StreamCipher};
        let (header, body) = data.split_at(16);
        let cipher = C::new_from_slice(key).unwrap();
        let mut block = aes::Block::clone_from_slice(header);
        cipher.decrypt_block(&mut block);
        let counter = u128::from_be_bytes(block.into()).wrapping_add(1);
        let mut out = body.to_vec();
        let mut ctr = ctr::Ctr128BE::<C>::new_from_slices(key, &counter.to_be_bytes()).unwrap();
        ctr.apply_keystream(&mut out);
        out
    }
    match key.len() {
        16 => run::<aes::Aes128>(data, key),
        32 => run::<aes::Aes256>(data, key),
        n => panic!("no AES with a {n}-byte key"),
    }
}

fn unzstd(data: &[u8]) -> Vec<u8> {
    zstd::decode_all(data).unwrap()
}

// ---------------------------------------------------------------------------------------------

#[test]
fn plain_backup_decodes_to_the_expected_records() {
    let exp = expected();
    let items = decode(&read("plain/test_00000.asb"));
    assert_globals(&items, &exp);
    assert!(matches!(items[4], AsbItem::Record(_)));
    assert_records_match(&records(&items), &exp);
}

#[test]
fn compact_backup_decodes_to_the_expected_records() {
    let exp = expected();
    let bytes = read("compact/test_00000.asb");
    assert!(
        bytes.windows(5).any(|w| w == b"- B! "),
        "the compact file really is compact"
    );
    let items = decode(&bytes);
    assert_globals(&items, &exp);
    assert_records_match(&records(&items), &exp);
}

#[test]
fn parallel_backup_files_together_hold_the_expected_records() {
    let exp = expected();
    let mut all = Vec::new();
    for n in 0..4 {
        let items = decode(&read(&format!("parallel4/test_0000{n}.asb")));
        assert_eq!(items[0], AsbItem::Namespace("test".into()), "file {n}");
        let firsts = items
            .iter()
            .filter(|i| matches!(i, AsbItem::FirstFile))
            .count();
        assert_eq!(firsts, usize::from(n == 0), "first-file marker in file {n}");
        if n == 0 {
            assert_globals(&items, &exp);
        }
        all.extend(items);
    }
    assert_records_match(&records(&all), &exp);
}

#[test]
fn zstd_backup_decompresses_to_the_plain_stream() {
    let exp = expected();
    let text = unzstd(&read("zstd/test_00000.asb"));
    let items = decode(&text);
    assert_globals(&items, &exp);
    assert_records_match(&records(&items), &exp);
}

#[test]
fn aes256_backup_decrypts_to_the_plain_stream() {
    let exp = expected();
    let text = decrypt(&read("aes256/test_00000.asb"), &aes_key(32));
    assert!(text.starts_with(b"Version 3.1\n"));
    let items = decode(&text);
    assert_globals(&items, &exp);
    assert_records_match(&records(&items), &exp);
}

#[test]
fn zstd_aes128_backup_decrypts_then_decompresses() {
    let exp = expected();
    let text = unzstd(&decrypt(&read("zstd-aes128/test_00000.asb"), &aes_key(16)));
    let items = decode(&text);
    assert_globals(&items, &exp);
    assert_records_match(&records(&items), &exp);
}

#[test]
fn a_wrong_key_fails_at_the_version_line() {
    // CTR has no integrity check: a wrong key shows only as garbage at the header.
    let text = decrypt(&read("aes256/test_00000.asb"), &[7u8; 32]);
    let err = AsbDecoder::new(&text[..]).next_item().unwrap_err();
    assert_eq!(err.line(), 1, "{err}");
}

#[test]
fn our_encoder_reproduces_asbackup_files_byte_for_byte() {
    for (rel, compact) in [
        ("plain/test_00000.asb", false),
        ("compact/test_00000.asb", true),
        ("parallel4/test_00000.asb", false),
        ("parallel4/test_00001.asb", false),
        ("parallel4/test_00002.asb", false),
        ("parallel4/test_00003.asb", false),
    ] {
        let theirs = read(rel);
        let ours = reencode(&decode(&theirs), EncoderOptions { compact });
        assert_same_bytes(&ours, &theirs, rel);
    }
}

#[test]
fn records_built_from_expected_values_encode_to_asbackups_bytes() {
    // Nothing read from the backup goes into our output here except the record order (which
    // differs per asbackup run): lists and maps are re-packed from the typed values.
    let exp = expected();
    for (rel, compact) in [
        ("plain/test_00000.asb", false),
        ("compact/test_00000.asb", true),
    ] {
        let theirs = read(rel);
        let items = decode(&theirs);
        let mut enc = AsbEncoder::new(Vec::new(), EncoderOptions { compact });
        enc.write_header(&exp.file.namespace).unwrap();
        enc.write_first_file().unwrap();
        enc.write_sindex(&super::SecondaryIndex {
            namespace: exp.file.namespace.clone(),
            set: Some(exp.file.sindex.set.clone()),
            name: exp.file.sindex.name.clone(),
            index_type: IndexType::Default,
            bin: exp.file.sindex.bin.clone(),
            value_type: IndexValueType::Numeric,
            context: None,
            expression: None,
        })
        .unwrap();
        enc.write_udf(&super::Udf {
            name: exp.file.udf.name.clone(),
            content: exp.file.udf.source.clone().into_bytes(),
        })
        .unwrap();
        for rec in records(&items) {
            enc.write_record(&exp.by_digest[&rec.digest]).unwrap();
        }
        assert_same_bytes(&enc.into_inner(), &theirs, rel);
    }
}
