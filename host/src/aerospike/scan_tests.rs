//! Unit tests of `scan.rs`, kept beside it so the module reads as code.

use super::*;

fn parts(r: &[ScanRange]) -> Vec<(u16, u16)> {
    r.iter()
        .map(|r| match r {
            ScanRange::Partitions { begin, count } => (*begin, *count),
            ScanRange::AfterDigest(_) | ScanRange::Cursors(_) => panic!("not a plain range"),
        })
        .collect()
}

#[test]
fn all_partitions_split_evenly_over_workers() {
    let r = split_ranges(None, 3).unwrap();
    assert_eq!(parts(&r), vec![(0, 1365), (1365, 1365), (2730, 1366)]);
    let total: u32 = r.iter().map(ScanRange::partition_count).sum();
    assert_eq!(total, 4096);
    assert_eq!(parts(&split_ranges(Some("10-4"), 8).unwrap()).len(), 4);
    assert_eq!(parts(&split_ranges(Some("7"), 8).unwrap()), vec![(7, 1)]);
}

#[test]
fn several_filters_are_one_unit_each() {
    let r = split_ranges(Some("0-10,100,200-5"), 2).unwrap();
    assert_eq!(parts(&r), vec![(0, 10), (100, 1), (200, 5)]);
    let d = "AAECAwQFBgcICQoLDA0ODxAREhM=";
    let r = split_ranges(Some(d), 4).unwrap();
    let ScanRange::AfterDigest(digest) = r[0] else {
        panic!("digest expected")
    };
    assert_eq!(digest[..4], [0, 1, 2, 3]);
    assert_eq!(r[0].partition_count(), 1);
    assert!(split_ranges(Some("5000"), 1).is_err());
}

#[test]
fn partition_of_matches_the_client() {
    let key = aerospike::Key::new("test", "s", aerospike::Value::from(42)).unwrap();
    assert_eq!(partition_of(&key.digest()) as usize, key.partition_id());
}

#[test]
fn mastered_partitions_read_the_replicas_bitmap() {
    use base64::Engine as _;
    let mut bits = vec![0u8; 512];
    for p in [0u16, 1, 2, 9, 4095] {
        bits[usize::from(p) / 8] |= 0x80 >> (p % 8);
    }
    let b64 = base64::engine::general_purpose::STANDARD.encode(&bits);
    let other = base64::engine::general_purpose::STANDARD.encode(vec![0xffu8; 512]);
    let answer = format!("bar:0,2,{other},{other};test:0,2,{b64},{other}");
    let parts = mastered_partitions(&answer, "test").unwrap();
    assert_eq!(parts, vec![0, 1, 2, 9, 4095]);
    assert_eq!(
        ranges_of(&parts),
        vec![
            ScanRange::Partitions { begin: 0, count: 3 },
            ScanRange::Partitions { begin: 9, count: 1 },
            ScanRange::Partitions {
                begin: 4095,
                count: 1
            },
        ]
    );
    assert_eq!(
        mastered_partitions(&format!("test:{b64}"), "test")
            .unwrap()
            .len(),
        5
    );
    assert!(mastered_partitions(&answer, "nope").is_err());
}

#[test]
fn rack_nodes_read_the_racks_answer() {
    let answer = "ns=bar:rack_1=C;ns=test:rack_1=A,B:rack_2=C";
    assert_eq!(rack_nodes(answer, &[1], "test").unwrap(), vec!["A", "B"]);
    assert_eq!(
        rack_nodes(answer, &[2, 1], "test").unwrap(),
        vec!["A", "B", "C"]
    );
    assert_eq!(rack_nodes(answer, &[1], "bar").unwrap(), vec!["C"]);
    let e = rack_nodes(answer, &[3], "test").unwrap_err();
    assert!(e.contains("rack 3"), "{e}");
    assert!(rack_nodes(answer, &[1], "nope").is_err());
}

#[test]
fn filter_expression_combines_sets_and_window() {
    assert!(filter_expression(None, &[], None, None).unwrap().is_none());
    assert!(
        filter_expression(None, &["a".into()], None, None)
            .unwrap()
            .is_none()
    );
    let two = ["a".to_string(), "b".to_string()];
    assert!(filter_expression(None, &two, None, None).unwrap().is_some());
    assert!(
        filter_expression(None, &[], Some(1), Some(2))
            .unwrap()
            .is_some()
    );
    // `eq(1, 1)` packed by the client, as ABS users paste it.
    let packed = aerospike::expressions::eq(
        aerospike::expressions::int_val(1),
        aerospike::expressions::int_val(1),
    );
    let b64 = packed.base64().unwrap();
    assert!(
        filter_expression(Some(&b64), &[], None, None)
            .unwrap()
            .is_some()
    );
    assert!(filter_expression(Some("not base64!"), &[], None, None).is_err());
}

#[tokio::test]
async fn rate_limiter_spaces_slots() {
    assert!(RateLimiter::per_second(0).is_none());
    let l = RateLimiter::per_second(1000).unwrap();
    let start = Instant::now();
    for _ in 0..5 {
        l.acquire().await;
    }
    let next = *l.next.lock().unwrap();
    // Five slots taken: the next free one is at least 5 intervals after the start.
    assert!(next >= start + Duration::from_millis(5));
    let bytes = RateLimiter::per_second(1024 * 1024).unwrap();
    let start = Instant::now();
    bytes.acquire_n(512 * 1024).await;
    let next = *bytes.next.lock().unwrap();
    assert!(
        next >= start + Duration::from_millis(500),
        "half a MiB at 1 MiB/s"
    );
}
