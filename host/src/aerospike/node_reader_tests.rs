//! Unit tests of `node_reader.rs`, kept beside it so the module reads as code.

use super::*;
use crate::asb::raw::split_op;

fn reply_header(out: &mut Vec<u8>, info3: u8, result: u8, generation: u32, fields: u16, ops: u16) {
    out.extend_from_slice(&[MSG_HEADER as u8, 0, 0, info3, 0, result]);
    out.extend_from_slice(&generation.to_be_bytes());
    out.extend_from_slice(&7u32.to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(&fields.to_be_bytes());
    out.extend_from_slice(&ops.to_be_bytes());
}

fn op(out: &mut Vec<u8>, ptype: u8, name: &[u8], data: &[u8]) {
    out.extend_from_slice(&((4 + name.len() + data.len()) as u32).to_be_bytes());
    out.extend_from_slice(&[OP_READ, ptype, 0, name.len() as u8]);
    out.extend_from_slice(name);
    out.extend_from_slice(data);
}

#[test]
fn messages_parse_records_partition_markers_and_the_end() {
    let mut f = Vec::new();
    reply_header(&mut f, 0, 0, 3, 4, 2);
    put_field(&mut f, FIELD_NAMESPACE, &[b"test"]);
    put_field(&mut f, FIELD_SET, &[b"s"]);
    put_field(&mut f, FIELD_DIGEST, &[&[9u8; 20]]);
    put_field(&mut f, FIELD_KEY, &[&[1], &42i64.to_be_bytes()]);
    op(&mut f, 20, b"l", &[0x94, 0xc7, 0, 1, 1, 2, 3]);
    op(&mut f, 1, b"i", &5i64.to_be_bytes());
    reply_header(&mut f, INFO3_PARTITION_DONE, 0, 17, 0, 0);
    reply_header(
        &mut f,
        INFO3_PARTITION_DONE,
        RC_PARTITION_UNAVAILABLE,
        18,
        0,
        0,
    );
    reply_header(&mut f, 0, RC_FILTERED_OUT, 0, 0, 0);
    reply_header(&mut f, INFO3_LAST, 0, 0, 0, 0);
    let mut pos = 0;
    let Message::Record(r) = next_message(&f, &mut pos).unwrap() else {
        panic!("record expected")
    };
    assert_eq!(r.namespace, b"test");
    assert_eq!(r.set, Some(&b"s"[..]));
    assert_eq!(r.digest, [9; 20]);
    assert_eq!(r.key, Some((1, &42i64.to_be_bytes()[..])));
    assert_eq!((r.generation, r.void_time), (3, 7));
    let bins: Vec<RawBin<'_>> = r.bins().collect();
    assert_eq!(bins.len(), 2);
    assert_eq!(bins[0].name, b"l");
    assert_eq!(bins[0].particle_type, 20);
    assert_eq!(bins[0].data, &[0x94, 0xc7, 0, 1, 1, 2, 3]);
    assert_eq!(bins[1].data, &5i64.to_be_bytes());
    assert!(matches!(
        next_message(&f, &mut pos).unwrap(),
        Message::PartitionDone {
            partition: 17,
            ok: true
        }
    ));
    assert!(matches!(
        next_message(&f, &mut pos).unwrap(),
        Message::PartitionDone {
            partition: 18,
            ok: false
        }
    ));
    assert!(matches!(
        next_message(&f, &mut pos).unwrap(),
        Message::Skipped
    ));
    assert!(matches!(next_message(&f, &mut pos).unwrap(), Message::Last));
    assert_eq!(pos, f.len());
}

#[test]
fn truncated_messages_and_server_errors_are_errors() {
    let mut f = Vec::new();
    reply_header(&mut f, 0, 0, 1, 1, 1);
    put_field(&mut f, FIELD_DIGEST, &[&[1u8; 20]]);
    op(&mut f, 1, b"i", &5i64.to_be_bytes());
    for cut in [5, MSG_HEADER + 3, MSG_HEADER + 20, f.len() - 1] {
        let e = next_message(&f[..cut], &mut 0).unwrap_err();
        assert!(e.contains("cut short"), "{cut}: {e}");
    }
    let mut e = Vec::new();
    reply_header(&mut e, INFO3_LAST, 4, 0, 0, 0);
    let err = next_message(&e, &mut 0).unwrap_err();
    assert_eq!(server_code(&err), Some(4));
}

#[test]
fn the_request_carries_every_field_the_node_reads() {
    let bins = vec!["a".to_string(), "bc".to_string()];
    let req = ScanRequest {
        namespace: "test",
        set: "s",
        bins: Some(&bins),
        filter: Some(&[0x93, 1, 2, 3]),
        socket_timeout_ms: 1000,
        task_id: 77,
        partitions: &[1, 300],
        resume: &[[5; 20]],
        compress: true,
    }
    .encode();
    assert_eq!(req[0], PROTO_VERSION);
    assert_eq!(req[1], TYPE_MSG);
    let size = (u64::from_be_bytes(req[..8].try_into().unwrap()) & 0xFFFF_FFFF_FFFF) as usize;
    assert_eq!(size, req.len() - 8);
    let m = &req[8..];
    assert_eq!(m[1], INFO1_READ | INFO1_COMPRESS_RESPONSE);
    assert_eq!(m[3], INFO3_PARTITION_DONE);
    assert_eq!(u16::from_be_bytes([m[18], m[19]]), 7);
    assert_eq!(u16::from_be_bytes([m[20], m[21]]), 2);
    // Walk the fields back.
    let mut at = MSG_HEADER;
    let mut seen = Vec::new();
    for _ in 0..7 {
        let len = u32::from_be_bytes(m[at..at + 4].try_into().unwrap()) as usize;
        seen.push((m[at + 4], m[at + 5..at + 4 + len].to_vec()));
        at += 4 + len;
    }
    let get = |t: u8| seen.iter().find(|s| s.0 == t).map(|s| s.1.clone()).unwrap();
    assert_eq!(get(FIELD_NAMESPACE), b"test");
    assert_eq!(get(FIELD_SET), b"s");
    assert_eq!(get(FIELD_PID_ARRAY), vec![1, 0, 44, 1]);
    assert_eq!(get(FIELD_DIGEST_ARRAY), vec![5; 20]);
    assert_eq!(get(FIELD_FILTER_EXP), vec![0x93, 1, 2, 3]);
    assert_eq!(get(FIELD_TASK_ID), 77u64.to_be_bytes());
    let (b1, rest) = split_op(&m[at..]).unwrap();
    let (b2, rest) = split_op(rest).unwrap();
    assert_eq!((b1.name, b2.name), (&b"a"[..], &b"bc"[..]));
    assert!(rest.is_empty());
}

#[test]
fn credentials_hash_like_the_client_and_never_print() {
    let p = ClientPolicy {
        auth_mode: AuthMode::Internal("u".into(), "secret".into()),
        ..ClientPolicy::default()
    };
    let c = Credentials::from_policy(&p).unwrap();
    let Credentials::Internal { hash, .. } = &c else {
        panic!("internal expected")
    };
    assert!(hash.starts_with("$2a$10$7EqJtq98hPqEX7fNZaFWoO"), "{hash}");
    let shown = format!("{c:?}");
    assert!(
        !shown.contains("secret") && !shown.contains(hash.as_str()),
        "{shown}"
    );
}
