//! The official Rust client (aerospike 3) against a single test node.
//!
//! Length: one test per client operation against the node, each standing alone.

use std::collections::{HashMap, HashSet};

use aerospike::expressions as exp;
use aerospike::operations;
use aerospike::query::{Filter, PartitionFilter, Statement};
use aerospike::{
    AdminPolicy, AuthMode, BatchDeletePolicy, BatchOperation, BatchPolicy, BatchReadPolicy,
    BatchWritePolicy, Bin, Bins, ClientPolicy, CollectionIndexType, Expiration, GenerationPolicy,
    IndexType, Key, QueryPolicy, ReadPolicy, RecordExistsAction, ResultCode, Task, UdfLang, Value,
    WritePolicy, as_bin,
};
use futures::StreamExt;
use testkit::fixtures::{self, FixtureSpec};
use testkit::{AerospikeNode, NodeConfig};

use crate::{connect, connect_with};

fn key(set: &str, k: i64) -> Key {
    Key::new("test", set, Value::from(k)).unwrap()
}

fn int(v: &Value) -> i64 {
    match v {
        Value::Int(i) => *i,
        other => panic!("not an integer: {other:?}"),
    }
}

fn code(e: &aerospike::Error) -> Option<ResultCode> {
    e.server_result_code()
}

#[tokio::test]
async fn rust_client_connects_and_answers_info() {
    let node = AerospikeNode::start().unwrap();
    let client = connect(&node).await;
    assert_eq!(client.node_names(), node.node_names());
    let info = client
        .info(
            &AdminPolicy::default(),
            &[
                "build",
                "namespaces",
                "edition",
                "replicas",
                "get-config:context=service",
            ],
        )
        .await
        .unwrap();
    assert_eq!(info.get("build").map(String::as_str), Some("8.1.2.0"));
    // asrestore writes with batches only when the service context has batch-index-threads > 0.
    assert!(
        info["get-config:context=service"]
            .split(';')
            .any(|kv| kv == "batch-index-threads=2"),
        "{info:?}"
    );
    assert_eq!(info.get("namespaces").map(String::as_str), Some("test"));
    assert!(info["replicas"].starts_with("test:0,1,"), "{info:?}");
    let log = node.info_log();
    for cmd in ["node", "partition-generation", "peers-clear-std"] {
        assert!(
            log.iter().any(|c| c == cmd),
            "client never asked {cmd}: {log:?}"
        );
    }
    client.close().await.unwrap();
}

#[tokio::test]
async fn rust_put_get_round_trips_every_particle_type() {
    let node = AerospikeNode::start().unwrap();
    let client = connect(&node).await;
    let k = key("types", 1);
    let mut map = HashMap::new();
    map.insert(Value::from("c"), Value::from(3));
    map.insert(Value::from("a"), Value::from(1));
    map.insert(Value::from("b"), Value::from(2));
    let bins = vec![
        as_bin!("int", -42),
        as_bin!("float", 2.5),
        as_bin!("str", "hello"),
        as_bin!("blob", vec![0u8, 1, 255]),
        Bin::new("bool", Value::Bool(true)),
        Bin::new("list", Value::List(vec![Value::from(1), Value::from("x")])),
        Bin::new("map", Value::HashMap(map)),
        Bin::new(
            "geo",
            Value::GeoJson(r#"{"type":"Point","coordinates":[1.5,2.5]}"#.into()),
        ),
        Bin::new("hll", Value::Hll(vec![1, 2, 3, 4])),
    ];
    client
        .put(&WritePolicy::default(), &k, &bins)
        .await
        .unwrap();
    let rec = client
        .get(&ReadPolicy::default(), &k, Bins::All)
        .await
        .unwrap();
    assert_eq!(rec.generation, 1);
    assert_eq!(rec.expiration(), 0, "default TTL 0 means never expire");
    assert_eq!(rec.bins["int"], Value::from(-42));
    assert_eq!(rec.bins["float"], Value::from(2.5));
    assert_eq!(rec.bins["str"], Value::from("hello"));
    assert_eq!(rec.bins["blob"], Value::Blob(vec![0, 1, 255]));
    assert_eq!(rec.bins["bool"], Value::Bool(true));
    assert_eq!(
        rec.bins["list"],
        Value::List(vec![Value::from(1), Value::from("x")])
    );
    match &rec.bins["map"] {
        // Like the server: an unordered map comes back key-sorted, in wire order.
        Value::OrderedMap(m) => {
            let keys: Vec<&Value> = m.keys().collect();
            assert_eq!(
                keys,
                vec![&Value::from("a"), &Value::from("b"), &Value::from("c")]
            );
            assert_eq!(m.get(&Value::from("a")), Some(&Value::from(1)));
        }
        other => panic!("map came back as {other:?}"),
    }
    assert_eq!(
        rec.bins["geo"],
        Value::GeoJson(r#"{"type":"Point","coordinates":[1.5,2.5]}"#.into())
    );
    assert_eq!(rec.bins["hll"], Value::Hll(vec![1, 2, 3, 4]));

    let some = client
        .get(&ReadPolicy::default(), &k, ["int", "str"])
        .await
        .unwrap();
    assert_eq!(some.bins.len(), 2);
    let header = client
        .get(&ReadPolicy::default(), &k, Bins::None)
        .await
        .unwrap();
    assert!(header.bins.is_empty());
    assert_eq!(header.generation, 1);

    // A Nil bin deletes the bin.
    client
        .put(&WritePolicy::default(), &k, &[as_bin!("str", None)])
        .await
        .unwrap();
    let rec = client
        .get(&ReadPolicy::default(), &k, Bins::All)
        .await
        .unwrap();
    assert!(!rec.bins.contains_key("str"));
    assert_eq!(rec.generation, 2);
}

#[tokio::test]
async fn rust_write_policies_give_the_servers_result_codes() {
    let node = AerospikeNode::start().unwrap();
    let client = connect(&node).await;
    let wp = WritePolicy::default();
    let k = key("policies", 7);
    let missing = key("policies", 8);
    client
        .put(&wp, &k, &[as_bin!("a", 1), as_bin!("b", 2)])
        .await
        .unwrap();

    let mut create_only = WritePolicy::default();
    create_only.record_exists_action = RecordExistsAction::CreateOnly;
    let e = client
        .put(&create_only, &k, &[as_bin!("a", 1)])
        .await
        .unwrap_err();
    assert_eq!(code(&e), Some(ResultCode::KeyExistsError));

    for action in [
        RecordExistsAction::UpdateOnly,
        RecordExistsAction::ReplaceOnly,
    ] {
        let mut p = WritePolicy::default();
        p.record_exists_action = action;
        let e = client
            .put(&p, &missing, &[as_bin!("a", 1)])
            .await
            .unwrap_err();
        assert_eq!(code(&e), Some(ResultCode::KeyNotFoundError), "{action:?}");
    }

    let mut replace = WritePolicy::default();
    replace.record_exists_action = RecordExistsAction::Replace;
    client.put(&replace, &k, &[as_bin!("c", 3)]).await.unwrap();
    let rec = client
        .get(&ReadPolicy::default(), &k, Bins::All)
        .await
        .unwrap();
    assert_eq!(rec.bins.keys().collect::<Vec<_>>(), vec!["c"]);
    assert_eq!(rec.generation, 2);

    let mut gen_eq = WritePolicy::default();
    gen_eq.generation_policy = GenerationPolicy::ExpectGenEqual;
    gen_eq.generation = 1;
    let e = client
        .put(&gen_eq, &k, &[as_bin!("c", 4)])
        .await
        .unwrap_err();
    assert_eq!(code(&e), Some(ResultCode::GenerationError));
    gen_eq.generation = 2;
    client.put(&gen_eq, &k, &[as_bin!("c", 4)]).await.unwrap();

    let mut gen_gt = WritePolicy::default();
    gen_gt.generation_policy = GenerationPolicy::ExpectGenGreater;
    gen_gt.generation = 3;
    let e = client
        .put(&gen_gt, &k, &[as_bin!("c", 5)])
        .await
        .unwrap_err();
    assert_eq!(code(&e), Some(ResultCode::GenerationError));
    gen_gt.generation = 4;
    client.put(&gen_gt, &k, &[as_bin!("c", 5)]).await.unwrap();

    // send_key with a different user key for the same digest: KeyMismatch.
    let mut send_key = WritePolicy::default();
    send_key.send_key = true;
    client.put(&send_key, &k, &[as_bin!("c", 6)]).await.unwrap();
    let clash = Key::with_digest("test", "policies", Some(Value::from(99)), k.digest());
    let e = client
        .put(&send_key, &clash, &[as_bin!("c", 7)])
        .await
        .unwrap_err();
    assert_eq!(code(&e), Some(ResultCode::KeyMismatch));

    let mut too_long = WritePolicy::default();
    too_long.expiration = Expiration::Seconds(11 * 365 * 24 * 3600);
    let e = client
        .put(&too_long, &k, &[as_bin!("c", 8)])
        .await
        .unwrap_err();
    assert_eq!(code(&e), Some(ResultCode::ParameterError));

    let mut rp = ReadPolicy::default();
    rp.base_policy.filter_expression = Some(exp::eq(exp::int_bin("c"), exp::int_val(-1)));
    let e = client.get(&rp, &k, Bins::All).await.unwrap_err();
    assert_eq!(code(&e), Some(ResultCode::FilteredOut));

    let e = client
        .get(&ReadPolicy::default(), &missing, Bins::All)
        .await
        .unwrap_err();
    assert_eq!(code(&e), Some(ResultCode::KeyNotFoundError));
    assert!(
        !client
            .exists(&ReadPolicy::default(), &missing)
            .await
            .unwrap()
    );
    assert!(client.exists(&ReadPolicy::default(), &k).await.unwrap());
    assert!(!client.delete(&wp, &missing).await.unwrap());
    assert!(client.delete(&wp, &k).await.unwrap());
    assert!(!client.exists(&ReadPolicy::default(), &k).await.unwrap());
}

#[tokio::test]
async fn rust_ttl_touch_and_expiry_follow_the_node_clock() {
    let node = AerospikeNode::start().unwrap();
    let client = connect(&node).await;
    let k = key("ttl", 1);
    let mut p = WritePolicy::default();
    p.expiration = Expiration::Seconds(3600);
    client.put(&p, &k, &[as_bin!("a", 1)]).await.unwrap();
    let rec = client
        .get(&ReadPolicy::default(), &k, Bins::All)
        .await
        .unwrap();
    let ttl = rec.time_to_live().expect("has a ttl").as_secs();
    assert!((3595..=3600).contains(&ttl), "ttl {ttl}");

    let mut keep = WritePolicy::default();
    keep.expiration = Expiration::DontUpdate;
    client.put(&keep, &k, &[as_bin!("a", 2)]).await.unwrap();
    let again = client
        .get(&ReadPolicy::default(), &k, Bins::All)
        .await
        .unwrap();
    assert_eq!(again.expiration(), rec.expiration());

    client.touch(&WritePolicy::default(), &k).await.unwrap();
    let touched = client
        .get(&ReadPolicy::default(), &k, Bins::None)
        .await
        .unwrap();
    assert_eq!(touched.generation, 3);
    assert_eq!(
        touched.expiration(),
        0,
        "touch with the default policy = namespace default"
    );

    client.put(&p, &k, &[as_bin!("a", 3)]).await.unwrap();
    node.clock().advance_ms(3_601_000);
    let e = client
        .get(&ReadPolicy::default(), &k, Bins::All)
        .await
        .unwrap_err();
    assert_eq!(
        code(&e),
        Some(ResultCode::KeyNotFoundError),
        "expired records read as missing"
    );
    let e = client.touch(&WritePolicy::default(), &k).await.unwrap_err();
    assert_eq!(code(&e), Some(ResultCode::KeyNotFoundError));
}

#[tokio::test]
async fn rust_operate_add_append_and_read_last_update_time() {
    let node = AerospikeNode::start().unwrap();
    let client = connect(&node).await;
    let t = 1_760_000_000_123u64;
    node.clock().pin_ms(t);
    let k = key("ops", 1);
    let wp = WritePolicy::default();
    client
        .put(&wp, &k, &[as_bin!("n", 10), as_bin!("s", "ab")])
        .await
        .unwrap();
    client.add(&wp, &k, &[as_bin!("n", 5)]).await.unwrap();
    client.append(&wp, &k, &[as_bin!("s", "cd")]).await.unwrap();
    client.prepend(&wp, &k, &[as_bin!("s", ">")]).await.unwrap();
    let e = client.add(&wp, &k, &[as_bin!("s", 1)]).await.unwrap_err();
    assert_eq!(code(&e), Some(ResultCode::BinTypeError));

    let lut = operations::exp::read_exp("lut", exp::last_update(), Default::default());
    let rec = client
        .operate(
            &wp,
            &k,
            &[operations::get_bin("n"), operations::get_bin("s"), lut],
        )
        .await
        .unwrap();
    assert_eq!(rec.bins["n"], Value::from(15));
    assert_eq!(rec.bins["s"], Value::from(">abcd"));
    assert_eq!(rec.bins["lut"], Value::from(t as i64 * 1_000_000));
    assert_eq!(rec.generation, 4);
}

#[tokio::test]
async fn rust_batch_reads_and_writes_report_per_row_results() {
    let node = AerospikeNode::start().unwrap();
    let client = connect(&node).await;
    client
        .put(&WritePolicy::default(), &key("b", 1), &[as_bin!("v", 1)])
        .await
        .unwrap();

    let mut create_only = BatchWritePolicy::default();
    create_only.record_exists_action = RecordExistsAction::CreateOnly;
    let mut ops = vec![
        BatchOperation::write(
            &create_only,
            key("b", 1),
            vec![operations::put(&as_bin!("v", 9))],
        ),
        BatchOperation::write(
            &create_only,
            key("b", 2),
            vec![operations::put(&as_bin!("v", 2))],
        ),
        BatchOperation::write(
            &BatchWritePolicy::default(),
            key("b", 3),
            vec![operations::put(&as_bin!("v", 3))],
        ),
    ];
    client
        .batch(&BatchPolicy::default(), &mut ops)
        .await
        .unwrap();
    assert_eq!(ops[0].result_code(), Some(ResultCode::KeyExistsError));
    assert_eq!(ops[1].result_code(), Some(ResultCode::Ok));
    assert_eq!(ops[2].result_code(), Some(ResultCode::Ok));

    let rp = BatchReadPolicy::default();
    let mut reads: Vec<BatchOperation> = (1..=4)
        .map(|i| BatchOperation::read(&rp, key("b", i), Bins::All))
        .collect();
    reads.push(BatchOperation::delete(
        &BatchDeletePolicy::default(),
        key("b", 3),
    ));
    client
        .batch(&BatchPolicy::default(), &mut reads)
        .await
        .unwrap();
    let vals: Vec<Option<Value>> = reads[..4]
        .iter()
        .map(|r| r.record().and_then(|rec| rec.bins.get("v").cloned()))
        .collect();
    assert_eq!(
        vals,
        vec![
            Some(Value::from(1)),
            Some(Value::from(2)),
            Some(Value::from(3)),
            None
        ]
    );
    assert_eq!(reads[3].result_code(), Some(ResultCode::KeyNotFoundError));
    assert_eq!(reads[4].result_code(), Some(ResultCode::Ok));
    assert!(
        !client
            .exists(&ReadPolicy::default(), &key("b", 3))
            .await
            .unwrap()
    );
}

async fn scan_digests(
    client: &aerospike::Client,
    policy: &QueryPolicy,
    pf: PartitionFilter,
    stmt: Statement,
) -> (Vec<aerospike::Record>, Option<PartitionFilter>) {
    let rs = client.query(policy, pf, stmt).await.unwrap();
    let cursor = rs.clone();
    let mut stream = rs.into_stream();
    let mut out = Vec::new();
    while let Some(r) = stream.next().await {
        out.push(r.unwrap());
    }
    (out, cursor.partition_filter())
}

#[tokio::test]
async fn rust_partition_scan_last_update_window_is_exact() {
    let node = AerospikeNode::start().unwrap();
    let client = connect(&node).await;
    let wp = WritePolicy::default();
    let t1 = 1_760_000_000_000u64;
    node.clock().pin_ms(t1);
    for i in 0..100 {
        client
            .put(&wp, &key("lut", i), &[as_bin!("i", i)])
            .await
            .unwrap();
    }
    node.clock().pin_ms(t1 + 1);
    for i in 100..150 {
        client
            .put(&wp, &key("lut", i), &[as_bin!("i", i)])
            .await
            .unwrap();
    }
    node.clock().pin_ms(t1 + 2);
    for i in 150..175 {
        client
            .put(&wp, &key("lut", i), &[as_bin!("i", i)])
            .await
            .unwrap();
    }
    let window = |from_ms: u64, to_ms: u64| {
        let mut qp = QueryPolicy::default();
        qp.base_policy.filter_expression = Some(exp::and(vec![
            exp::ge(exp::last_update(), exp::int_val(from_ms as i64 * 1_000_000)),
            exp::lt(exp::last_update(), exp::int_val(to_ms as i64 * 1_000_000)),
        ]));
        qp
    };
    // Three uneven partition ranges must add up to exactly the middle batch.
    let mut seen = HashSet::new();
    for (begin, count) in [(0, 1000), (1000, 96), (1096, 3000)] {
        let (recs, _) = scan_digests(
            &client,
            &window(t1 + 1, t1 + 2),
            PartitionFilter::by_range(begin, count),
            Statement::new("test", "lut", Bins::All),
        )
        .await;
        for r in recs {
            let i = int(&r.bins["i"]);
            assert!((100..150).contains(&i), "record {i} is outside the window");
            assert!(seen.insert(r.key.unwrap().digest()), "duplicate");
        }
    }
    assert_eq!(seen.len(), 50);
    // One nanosecond later excludes the whole batch at t1+1.
    let mut qp = QueryPolicy::default();
    qp.base_policy.filter_expression = Some(exp::ge(
        exp::last_update(),
        exp::int_val((t1 + 1) as i64 * 1_000_000 + 1),
    ));
    let (recs, _) = scan_digests(
        &client,
        &qp,
        PartitionFilter::all(),
        Statement::new("test", "", Bins::None),
    )
    .await;
    assert_eq!(recs.len(), 25);
}

#[tokio::test]
async fn rust_scan_max_records_resumes_without_duplicates() {
    let node = AerospikeNode::start().unwrap();
    fixtures::fill(
        &node,
        &FixtureSpec {
            records: 3000,
            ..FixtureSpec::default()
        },
    );
    let client = connect(&node).await;
    let mut qp = QueryPolicy::default();
    qp.max_records = 1000;
    let mut pf = PartitionFilter::all();
    let mut seen = HashSet::new();
    let mut passes = 0;
    loop {
        let (recs, cursor) = scan_digests(
            &client,
            &qp,
            pf.clone(),
            Statement::new("test", "", Bins::All),
        )
        .await;
        passes += 1;
        assert!(recs.len() <= 1000);
        for r in &recs {
            assert!(
                seen.insert(r.key.as_ref().unwrap().digest()),
                "duplicate record"
            );
        }
        pf = cursor.expect("cursor");
        if pf.done() || passes > 10 {
            break;
        }
    }
    assert_eq!(seen.len(), 3000);
    assert!(
        passes >= 3,
        "max_records must split the scan, got {passes} passes"
    );
}

#[tokio::test]
async fn rust_scan_metadata_bin_selection_sets_and_digest_modulo() {
    let node = AerospikeNode::start().unwrap();
    fixtures::fill(
        &node,
        &FixtureSpec {
            records: 600,
            ..FixtureSpec::default()
        },
    );
    let client = connect(&node).await;
    let mut qp = QueryPolicy::default();
    qp.include_bin_data = false;
    let (recs, _) = scan_digests(
        &client,
        &qp,
        PartitionFilter::all(),
        Statement::new("test", "set_b", Bins::All),
    )
    .await;
    assert_eq!(recs.len(), 200);
    for r in &recs {
        assert!(r.bins.is_empty());
        let k = r.key.as_ref().unwrap();
        assert_eq!(k.set_name(), "set_b");
        let uk = int(k.user_key().expect("stored user key comes back"));
        assert_eq!(uk % 3, 1);
        assert_eq!(r.generation, 1);
    }
    let (recs, _) = scan_digests(
        &client,
        &QueryPolicy::default(),
        PartitionFilter::by_range(0, 2048),
        Statement::new("test", "set_a", Bins::from(["int", "str"])),
    )
    .await;
    assert!(!recs.is_empty());
    assert!(
        recs.iter()
            .all(|r| r.bins.len() == 2 && r.bins.contains_key("int"))
    );

    let mut total = 0;
    for m in 0..3 {
        let mut qp = QueryPolicy::default();
        qp.base_policy.filter_expression = Some(exp::eq(exp::digest_modulo(3), exp::int_val(m)));
        let (recs, _) = scan_digests(
            &client,
            &qp,
            PartitionFilter::all(),
            Statement::new("test", "", Bins::None),
        )
        .await;
        assert!(recs.len() > 100, "modulo {m} got {}", recs.len());
        total += recs.len();
    }
    assert_eq!(total, 600);
    let mut qp = QueryPolicy::default();
    qp.base_policy.filter_expression = Some(exp::and(vec![
        exp::eq(exp::set_name(), exp::string_val("set_c")),
        exp::key_exists(),
    ]));
    let (recs, _) = scan_digests(
        &client,
        &qp,
        PartitionFilter::all(),
        Statement::new("test", "", Bins::None),
    )
    .await;
    assert_eq!(recs.len(), 200);
}

#[tokio::test]
async fn rust_scan_filters_on_ttl_void_time_since_update_and_float_bins() {
    let node = AerospikeNode::start().unwrap();
    let client = connect(&node).await;
    let t = 1_760_000_000_000u64;
    node.clock().pin_ms(t);
    let mut short = WritePolicy::default();
    short.expiration = Expiration::Seconds(100);
    for i in 0..10 {
        client
            .put(&short, &key("m", i), &[as_bin!("f", i as f64 + 0.5)])
            .await
            .unwrap();
    }
    node.clock().pin_ms(t + 5_000);
    for i in 10..30 {
        client
            .put(
                &WritePolicy::default(),
                &key("m", i),
                &[as_bin!("f", i as f64 + 0.5)],
            )
            .await
            .unwrap();
    }
    let count = |e: exp::Expression| {
        let client = &client;
        async move {
            let mut qp = QueryPolicy::default();
            qp.base_policy.filter_expression = Some(e);
            scan_digests(
                client,
                &qp,
                PartitionFilter::all(),
                Statement::new("test", "m", Bins::None),
            )
            .await
            .0
            .len()
        }
    };
    // ttl() counts down with the node clock: written with 100 s, now 5 s later.
    assert_eq!(count(exp::eq(exp::ttl(), exp::int_val(95))).await, 10);
    assert_eq!(count(exp::eq(exp::ttl(), exp::int_val(-1))).await, 20);
    let void_ns = ((t / 1000 + 100) * 1_000_000_000) as i64;
    assert_eq!(
        count(exp::eq(exp::void_time(), exp::int_val(void_ns))).await,
        10
    );
    assert_eq!(
        count(exp::ge(exp::since_update(), exp::int_val(5_000))).await,
        10
    );
    assert_eq!(
        count(exp::lt(exp::float_bin("f"), exp::float_val(5.0))).await,
        5
    );
    assert_eq!(
        count(exp::not(exp::lt(exp::float_bin("f"), exp::float_val(5.0)))).await,
        25
    );
    assert_eq!(
        count(exp::or(vec![
            exp::eq(exp::float_bin("f"), exp::float_val(0.5)),
            exp::eq(exp::float_bin("f"), exp::float_val(29.5)),
        ]))
        .await,
        2
    );
}

#[tokio::test]
async fn rust_scan_records_per_second_throttles_and_by_key_resumes_after_the_digest() {
    let node = AerospikeNode::start().unwrap();
    fixtures::fill(
        &node,
        &FixtureSpec {
            records: 300,
            ..FixtureSpec::default()
        },
    );
    let client = connect(&node).await;
    let mut qp = QueryPolicy::default();
    qp.records_per_second = 600;
    let t = std::time::Instant::now();
    let (recs, _) = scan_digests(
        &client,
        &qp,
        PartitionFilter::all(),
        Statement::new("test", "", Bins::None),
    )
    .await;
    assert_eq!(recs.len(), 300);
    assert!(
        t.elapsed() >= std::time::Duration::from_millis(350),
        "{:?}",
        t.elapsed()
    );

    // by_key scans the key's partition from just after its digest.
    let rec = fixtures::generate(&FixtureSpec {
        records: 1,
        ..FixtureSpec::default()
    })
    .next()
    .unwrap();
    let k = Key::with_digest("test", &rec.set, None, rec.digest);
    let pid = k.partition_id();
    let expected = {
        let ns = node.store().ns(b"test").unwrap();
        let part = ns.parts[pid].read().unwrap();
        part.range(rec.digest..).skip(1).count()
    };
    let (recs, _) = scan_digests(
        &client,
        &QueryPolicy::default(),
        PartitionFilter::by_key(&k),
        Statement::new("test", "", Bins::None),
    )
    .await;
    assert_eq!(recs.len(), expected);
    assert!(
        recs.iter()
            .all(|r| r.key.as_ref().unwrap().digest() > rec.digest)
    );
}

#[tokio::test]
async fn rust_scan_projects_last_update_time_with_read_exp() {
    let node = AerospikeNode::start().unwrap();
    let client = connect(&node).await;
    let t = 1_760_000_000_777u64;
    node.clock().pin_ms(t);
    for i in 0..20 {
        client
            .put(
                &WritePolicy::default(),
                &key("proj", i),
                &[as_bin!("a", i), as_bin!("b", "x")],
            )
            .await
            .unwrap();
    }
    // The backup path: bins plus the LUT of each record in the scan stream (server 8.1.2+).
    let mut stmt = Statement::new("test", "proj", Bins::All);
    stmt.set_operations(vec![
        operations::get_bin("a"),
        operations::exp::read_exp("lut", exp::last_update(), Default::default()),
    ]);
    let (recs, _) = scan_digests(
        &client,
        &QueryPolicy::default(),
        PartitionFilter::all(),
        stmt,
    )
    .await;
    assert_eq!(recs.len(), 20);
    for r in recs {
        assert_eq!(r.bins.len(), 2, "{:?}", r.bins);
        assert_eq!(r.bins["lut"], Value::from(t as i64 * 1_000_000));
        assert!(matches!(r.bins["a"], Value::Int(0..20)));
    }
}

#[tokio::test]
async fn rust_secondary_index_query_and_info() {
    let node = AerospikeNode::start().unwrap();
    let client = connect(&node).await;
    for i in 0..50 {
        client
            .put(&WritePolicy::default(), &key("q", i), &[as_bin!("age", i)])
            .await
            .unwrap();
    }
    let task = client
        .create_index_on_bin(
            &AdminPolicy::default(),
            "test",
            "q",
            "age",
            "idx_age",
            IndexType::Numeric,
            CollectionIndexType::Default,
            None,
        )
        .await
        .unwrap();
    task.wait_till_complete(None).await.unwrap();
    let info = client
        .info(&AdminPolicy::default(), &["sindex-list:ns=test"])
        .await
        .unwrap();
    assert!(
        info["sindex-list:ns=test"].contains("indexname=idx_age:set=q:bin=age:type=numeric"),
        "{info:?}"
    );
    let mut stmt = Statement::new("test", "q", Bins::All);
    stmt.set_filter(Filter::range("age", 10, 19));
    let (recs, _) = scan_digests(
        &client,
        &QueryPolicy::default(),
        PartitionFilter::all(),
        stmt,
    )
    .await;
    let mut ages: Vec<i64> = recs.iter().map(|r| int(&r.bins["age"])).collect();
    ages.sort_unstable();
    assert_eq!(ages, (10..20).collect::<Vec<_>>());
    client
        .drop_index(&AdminPolicy::default(), "test", "q", "idx_age")
        .await
        .unwrap();
    let info = client
        .info(&AdminPolicy::default(), &["sindex-list:ns=test"])
        .await
        .unwrap();
    assert_eq!(info["sindex-list:ns=test"], "");
}

#[tokio::test]
async fn rust_udf_register_list_get_remove_and_truncate() {
    let node = AerospikeNode::start().unwrap();
    let client = connect(&node).await;
    let body = b"function hello(rec) return 'hi' end\n";
    let task = client
        .register_udf(&AdminPolicy::default(), body, "hello.lua", UdfLang::Lua)
        .await
        .unwrap();
    task.wait_till_complete(None).await.unwrap();
    let info = client
        .info(
            &AdminPolicy::default(),
            &["udf-list", "udf-get:filename=hello.lua"],
        )
        .await
        .unwrap();
    assert!(
        info["udf-list"].contains("filename=hello.lua,hash="),
        "{info:?}"
    );
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(body);
    assert!(info["udf-get:filename=hello.lua"].contains(&format!("content={b64}")));
    // Documented gap: UDFs are stored, never run.
    client
        .put(&WritePolicy::default(), &key("udf", 1), &[as_bin!("a", 1)])
        .await
        .unwrap();
    let e = client
        .execute_udf(
            &WritePolicy::default(),
            &key("udf", 1),
            "hello",
            "hello",
            &[],
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("not supported"), "{e}");
    assert!(
        client
            .delete(&WritePolicy::default(), &key("udf", 1))
            .await
            .unwrap()
    );
    client
        .remove_udf(&AdminPolicy::default(), "hello.lua")
        .await
        .unwrap();
    let info = client
        .info(&AdminPolicy::default(), &["udf-list"])
        .await
        .unwrap();
    assert_eq!(info["udf-list"], "");

    let wp = WritePolicy::default();
    for i in 0..20 {
        client
            .put(&wp, &key("t1", i), &[as_bin!("a", i)])
            .await
            .unwrap();
        client
            .put(&wp, &key("t2", i), &[as_bin!("a", i)])
            .await
            .unwrap();
    }
    client
        .truncate(&AdminPolicy::default(), "test", "t1", 0)
        .await
        .unwrap();
    assert_eq!(node.record_count("test"), 20);
    client
        .put(&wp, &key("t1", 1), &[as_bin!("a", 1)])
        .await
        .unwrap();
    assert!(
        client
            .exists(&ReadPolicy::default(), &key("t1", 1))
            .await
            .unwrap(),
        "later writes stay"
    );
    let future = (node.clock().now_ms() as i64 + 60_000) * 1_000_000;
    let e = client
        .truncate(&AdminPolicy::default(), "test", "", future)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("future"), "{e}");
    client
        .truncate(&AdminPolicy::default(), "test", "", 0)
        .await
        .unwrap();
    assert_eq!(node.record_count("test"), 0);
}

#[tokio::test]
async fn rust_auth_logs_in_and_rejects_a_wrong_password() {
    let node = AerospikeNode::start_with(NodeConfig {
        user: Some(("backup".into(), "s3cret".into())),
        ..NodeConfig::default()
    })
    .unwrap();
    let mut good = ClientPolicy::default();
    good.auth_mode = AuthMode::Internal("backup".into(), "s3cret".into());
    let client = connect_with(&node, good).await;
    client
        .put(&WritePolicy::default(), &key("auth", 1), &[as_bin!("a", 1)])
        .await
        .unwrap();
    assert!(
        client
            .exists(&ReadPolicy::default(), &key("auth", 1))
            .await
            .unwrap()
    );

    let mut bad = ClientPolicy::default();
    bad.auth_mode = AuthMode::Internal("backup".into(), "wrong".into());
    let Err(e) = aerospike::Client::new(&bad, &node.hosts()).await else {
        panic!("a wrong password must not connect");
    };
    let msg = e.to_string();
    assert!(
        e.result_code() == 65
            || msg.contains("65")
            || msg.contains("InvalidCredential")
            || msg.contains("credential"),
        "unexpected error: {msg} ({})",
        e.result_code()
    );
}

#[tokio::test]
async fn rust_compressed_commands_are_understood() {
    // Compression is Enterprise-only: a node with a user plays an Enterprise server.
    let node = AerospikeNode::start_with(NodeConfig {
        user: Some(("backup".into(), "s3cret".into())),
        ..Default::default()
    })
    .unwrap();
    let mut cp = ClientPolicy::default();
    cp.auth_mode = AuthMode::Internal("backup".into(), "s3cret".into());
    let client = connect_with(&node, cp).await;
    let mut wp = WritePolicy::default();
    wp.base_policy.use_compression = true;
    wp.base_policy.compression_threshold = 0;
    let big = "z".repeat(10_000);
    client
        .put(&wp, &key("zip", 1), &[as_bin!("big", big.clone())])
        .await
        .unwrap();
    let mut rp = ReadPolicy::default();
    rp.base_policy.use_compression = true;
    rp.base_policy.compression_threshold = 0;
    let rec = client.get(&rp, &key("zip", 1), Bins::All).await.unwrap();
    assert_eq!(rec.bins["big"], Value::from(big.clone()));

    // A Community node refuses a compressed request with ENTERPRISE_ONLY (25), as a
    // Community server does.
    let ce = AerospikeNode::start().unwrap();
    let ce_client = connect(&ce).await;
    let e = ce_client
        .put(&wp, &key("zip", 1), &[as_bin!("big", big)])
        .await
        .expect_err("a Community node takes no compressed request");
    assert_eq!(e.result_code(), 25, "{e}");
}
