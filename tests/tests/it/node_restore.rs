//! What a restore relies on, through the official Rust client: existence actions and
//! generation rules with the server's result codes (also for records that do not exist yet),
//! TTL and void-time arithmetic on the node clock, batch writes with per-row results, lists and
//! maps stored in the server's canonical form byte for byte, sindex and UDF info commands,
//! and object counts that follow every write.

use aerospike::{
    AdminPolicy, BatchOperation, BatchPolicy, BatchWritePolicy, Bin, Bins, CollectionIndexType,
    Expiration, GenerationPolicy, IndexType, Key, ReadPolicy, RecordExistsAction, ResultCode, Task,
    UdfLang, Value, WritePolicy, as_bin, operations,
};
use testkit::node::store::{self, CITRUSLEAF_EPOCH_SECS};
use testkit::node::wire::{PT_LIST, PT_MAP};
use testkit::{AerospikeNode, NodeConfig};

use crate::connect;

fn key(set: &str, k: i64) -> Key {
    Key::new("test", set, Value::from(k)).unwrap()
}

fn code(e: &aerospike::Error) -> Option<ResultCode> {
    e.server_result_code()
}

fn gen_policy(policy: GenerationPolicy, generation: u32) -> WritePolicy {
    let mut p = WritePolicy::default();
    p.generation_policy = policy;
    p.generation = generation;
    p
}

fn exists_policy(action: RecordExistsAction) -> WritePolicy {
    let mut p = WritePolicy::default();
    p.record_exists_action = action;
    p
}

fn ttl_policy(expiration: Expiration) -> WritePolicy {
    let mut p = WritePolicy::default();
    p.expiration = expiration;
    p
}

/// The stored bytes of one bin, read straight from the node's store.
fn stored_bin(node: &AerospikeNode, k: &Key, bin: &str) -> Option<(u8, Vec<u8>)> {
    let ns = node.store().ns(b"test")?;
    let digest = k.digest();
    let part = store::read(ns.part(&digest));
    let rec = part.get(&digest)?;
    rec.bin(bin.as_bytes()).map(|b| (b.ptype, b.data.to_vec()))
}

async fn info(client: &aerospike::Client, cmd: &str) -> String {
    client.info(&AdminPolicy::default(), &[cmd]).await.unwrap()[cmd].clone()
}

#[tokio::test]
async fn restore_generation_rules_on_new_and_existing_records() {
    let node = AerospikeNode::start().unwrap();
    let client = connect(&node).await;
    let bins = [as_bin!("v", 1)];

    // A record that does not exist has generation 0.
    let e = client
        .put(
            &gen_policy(GenerationPolicy::ExpectGenGreater, 0),
            &key("g", 1),
            &bins,
        )
        .await
        .unwrap_err();
    assert_eq!(code(&e), Some(ResultCode::GenerationError));
    let e = client
        .put(
            &gen_policy(GenerationPolicy::ExpectGenEqual, 3),
            &key("g", 1),
            &bins,
        )
        .await
        .unwrap_err();
    assert_eq!(code(&e), Some(ResultCode::GenerationError));
    client
        .put(
            &gen_policy(GenerationPolicy::ExpectGenEqual, 0),
            &key("g", 1),
            &bins,
        )
        .await
        .unwrap();
    // What a restore sends by default: expect-gen-greater with the backup's generation.
    client
        .put(
            &gen_policy(GenerationPolicy::ExpectGenGreater, 7),
            &key("g", 2),
            &bins,
        )
        .await
        .unwrap();
    let rec = client
        .get(&ReadPolicy::default(), &key("g", 2), Bins::None)
        .await
        .unwrap();
    assert_eq!(
        rec.generation, 1,
        "the server assigns generations, 1 on create"
    );

    // Existing record at generation 3: a backup at generation 3 or 2 is not newer.
    for _ in 0..2 {
        client
            .put(&WritePolicy::default(), &key("g", 2), &bins)
            .await
            .unwrap();
    }
    for backup_gen in [2, 3] {
        let e = client
            .put(
                &gen_policy(GenerationPolicy::ExpectGenGreater, backup_gen),
                &key("g", 2),
                &[as_bin!("v", 9)],
            )
            .await
            .unwrap_err();
        assert_eq!(code(&e), Some(ResultCode::GenerationError), "{backup_gen}");
    }
    client
        .put(
            &gen_policy(GenerationPolicy::ExpectGenGreater, 4),
            &key("g", 2),
            &[as_bin!("v", 9)],
        )
        .await
        .unwrap();
    let rec = client
        .get(&ReadPolicy::default(), &key("g", 2), Bins::All)
        .await
        .unwrap();
    assert_eq!((rec.generation, &rec.bins["v"]), (4, &Value::from(9)));

    // The 16-bit generation wraps to 1 (0 means "no record").
    let digest = key("g", 2).digest();
    {
        let ns = node.store().ns(b"test").unwrap();
        let mut part = store::write(ns.part(&digest));
        let mut r = part.get(&digest).unwrap().clone();
        r.generation = u16::MAX;
        part.insert(digest, r);
    }
    client
        .put(&WritePolicy::default(), &key("g", 2), &bins)
        .await
        .unwrap();
    let rec = client
        .get(&ReadPolicy::default(), &key("g", 2), Bins::None)
        .await
        .unwrap();
    assert_eq!(rec.generation, 1);

    // Deletes check the generation too.
    let mut del = gen_policy(GenerationPolicy::ExpectGenEqual, 5);
    let e = client.delete(&del, &key("g", 2)).await.unwrap_err();
    assert_eq!(code(&e), Some(ResultCode::GenerationError));
    del.generation = 1;
    assert!(client.delete(&del, &key("g", 2)).await.unwrap());
}

#[tokio::test]
async fn restore_existence_actions_replace_update_create_only() {
    let node = AerospikeNode::start().unwrap();
    let client = connect(&node).await;
    let k = key("e", 1);
    client
        .put(
            &WritePolicy::default(),
            &k,
            &[as_bin!("a", 1), as_bin!("b", 2)],
        )
        .await
        .unwrap();

    // Update keeps the bins not sent; replace drops them.
    client
        .put(&WritePolicy::default(), &k, &[as_bin!("c", 3)])
        .await
        .unwrap();
    let rec = client
        .get(&ReadPolicy::default(), &k, Bins::All)
        .await
        .unwrap();
    assert_eq!(rec.bins.len(), 3);
    client
        .put(
            &exists_policy(RecordExistsAction::Replace),
            &k,
            &[as_bin!("d", 4)],
        )
        .await
        .unwrap();
    let rec = client
        .get(&ReadPolicy::default(), &k, Bins::All)
        .await
        .unwrap();
    assert_eq!(rec.bins.keys().collect::<Vec<_>>(), vec!["d"]);
    assert_eq!(rec.generation, 3);
    client
        .put(
            &exists_policy(RecordExistsAction::ReplaceOnly),
            &k,
            &[as_bin!("e", 5)],
        )
        .await
        .unwrap();

    let e = client
        .put(
            &exists_policy(RecordExistsAction::CreateOnly),
            &k,
            &[as_bin!("x", 1)],
        )
        .await
        .unwrap_err();
    assert_eq!(code(&e), Some(ResultCode::KeyExistsError));
    for action in [
        RecordExistsAction::UpdateOnly,
        RecordExistsAction::ReplaceOnly,
    ] {
        let e = client
            .put(&exists_policy(action), &key("e", 2), &[as_bin!("x", 1)])
            .await
            .unwrap_err();
        assert_eq!(code(&e), Some(ResultCode::KeyNotFoundError), "{action:?}");
    }
    client
        .put(
            &exists_policy(RecordExistsAction::CreateOnly),
            &key("e", 2),
            &[as_bin!("x", 1)],
        )
        .await
        .unwrap();

    // A replace may not delete bins (a Nil bin) or modify them.
    let e = client
        .put(
            &exists_policy(RecordExistsAction::Replace),
            &k,
            &[as_bin!("e", 1), as_bin!("gone", None)],
        )
        .await
        .unwrap_err();
    assert_eq!(code(&e), Some(ResultCode::ParameterError));
    let e = client
        .add(
            &exists_policy(RecordExistsAction::Replace),
            &k,
            &[as_bin!("e", 1)],
        )
        .await
        .unwrap_err();
    assert_eq!(code(&e), Some(ResultCode::ParameterError));

    // A write whose bins are all deletes: "not found" on a missing record, a delete of an
    // existing one.
    let e = client
        .put(&WritePolicy::default(), &key("e", 3), &[as_bin!("a", None)])
        .await
        .unwrap_err();
    assert_eq!(code(&e), Some(ResultCode::KeyNotFoundError));
    client
        .put(&WritePolicy::default(), &k, &[as_bin!("e", None)])
        .await
        .unwrap();
    assert!(!client.exists(&ReadPolicy::default(), &k).await.unwrap());

    // A record with no bins cannot be written at all.
    let e = client
        .operate(&WritePolicy::default(), &key("e", 4), &[])
        .await
        .unwrap_err();
    assert!(
        code(&e) == Some(ResultCode::ParameterError) || e.to_string().contains("operation"),
        "{e}"
    );
}

#[tokio::test]
async fn restore_ttl_and_void_time_follow_the_node_clock() {
    let node = AerospikeNode::start_with(NodeConfig {
        default_ttl: 500,
        ..NodeConfig::default()
    })
    .unwrap();
    let client = connect(&node).await;
    let now_ms = 1_760_000_000_000u64;
    node.clock().pin_ms(now_ms);
    let now_cl = (now_ms / 1000 - CITRUSLEAF_EPOCH_SECS) as u32;
    let void_of = |k: &Key| {
        let ns = node.store().ns(b"test").unwrap();
        let d = k.digest();
        store::read(ns.part(&d)).get(&d).map(|r| r.void_time)
    };
    let bins = [as_bin!("v", 1)];

    let cases = [
        (Expiration::Seconds(100), now_cl + 100),
        (Expiration::NamespaceDefault, now_cl + 500),
        (Expiration::Never, 0),
        // "Don't update" on a new record uses the namespace default.
        (Expiration::DontUpdate, now_cl + 500),
        (
            Expiration::Seconds(10 * 365 * 86_400),
            now_cl + 10 * 365 * 86_400,
        ),
    ];
    for (i, (exp, want)) in cases.into_iter().enumerate() {
        let k = key("ttl", i as i64);
        client.put(&ttl_policy(exp), &k, &bins).await.unwrap();
        assert_eq!(void_of(&k), Some(want), "{exp:?}");
    }
    let e = client
        .put(
            &ttl_policy(Expiration::Seconds(10 * 365 * 86_400 + 1)),
            &key("ttl", 9),
            &bins,
        )
        .await
        .unwrap_err();
    assert_eq!(code(&e), Some(ResultCode::ParameterError));

    // "Don't update" keeps an existing void time; a later write with seconds moves it.
    client
        .put(&ttl_policy(Expiration::DontUpdate), &key("ttl", 0), &bins)
        .await
        .unwrap();
    assert_eq!(void_of(&key("ttl", 0)), Some(now_cl + 100));
    let rec = client
        .get(&ReadPolicy::default(), &key("ttl", 0), Bins::None)
        .await
        .unwrap();
    assert_eq!(rec.expiration(), now_cl + 100);

    // Expired records read as missing, are not counted, and a create on top is a fresh
    // create (create-only succeeds, generation restarts at 1).
    assert_eq!(node.record_count("test"), 5);
    node.clock().advance_ms(101_000);
    let e = client
        .get(&ReadPolicy::default(), &key("ttl", 0), Bins::All)
        .await
        .unwrap_err();
    assert_eq!(code(&e), Some(ResultCode::KeyNotFoundError));
    assert_eq!(node.record_count("test"), 4);
    client
        .put(
            &exists_policy(RecordExistsAction::CreateOnly),
            &key("ttl", 0),
            &bins,
        )
        .await
        .unwrap();
    let rec = client
        .get(&ReadPolicy::default(), &key("ttl", 0), Bins::None)
        .await
        .unwrap();
    assert_eq!(rec.generation, 1);
}

#[tokio::test]
async fn restore_batch_writes_report_each_rows_result_and_the_batch_succeeds() {
    let node = AerospikeNode::start().unwrap();
    let client = connect(&node).await;
    for i in 0..3 {
        for _ in 0..=i {
            client
                .put(&WritePolicy::default(), &key("bw", i), &[as_bin!("v", i)])
                .await
                .unwrap();
        }
    }
    // Stored generations: key 0 -> 1, key 1 -> 2, key 2 -> 3.
    let row = |action, gen_policy, generation| {
        let mut p = BatchWritePolicy::default();
        p.record_exists_action = action;
        p.generation_policy = gen_policy;
        p.generation = generation;
        p.expiration = Expiration::Seconds(1000);
        p
    };
    let gt = |g| {
        row(
            RecordExistsAction::Update,
            GenerationPolicy::ExpectGenGreater,
            g,
        )
    };
    let policies = [
        gt(5),                                                          // 0: newer: ok
        gt(2),                                                          // 1: same gen: 3
        row(RecordExistsAction::CreateOnly, GenerationPolicy::None, 0), // 2: exists: 5
        row(RecordExistsAction::UpdateOnly, GenerationPolicy::None, 0), // 3: missing: 2
        row(RecordExistsAction::Replace, GenerationPolicy::None, 0),    // 4: new: ok
        gt(1),                                                          // 5: new: ok
    ];
    let mut ops: Vec<BatchOperation> = policies
        .iter()
        .enumerate()
        .map(|(i, p)| {
            BatchOperation::write(
                p,
                key("bw", i as i64),
                vec![operations::put(&as_bin!("v", 100 + i as i64))],
            )
        })
        .collect();
    client
        .batch(&BatchPolicy::default(), &mut ops)
        .await
        .expect("a batch is Ok when rows fail");
    let got: Vec<Option<ResultCode>> = ops.iter().map(|o| o.result_code()).collect();
    assert_eq!(
        got,
        vec![
            Some(ResultCode::Ok),
            Some(ResultCode::GenerationError),
            Some(ResultCode::KeyExistsError),
            Some(ResultCode::KeyNotFoundError),
            Some(ResultCode::Ok),
            Some(ResultCode::Ok),
        ]
    );
    assert!(ops.iter().all(|o| !o.in_doubt()));
    let c = &client;
    let value = |i: i64| async move {
        c.get(&ReadPolicy::default(), &key("bw", i), Bins::All)
            .await
            .ok()
            .map(|r| (r.generation, r.bins["v"].clone()))
    };
    assert_eq!(value(0).await, Some((2, Value::from(100))));
    assert_eq!(
        value(1).await,
        Some((2, Value::from(1))),
        "failed row left alone"
    );
    assert_eq!(value(2).await, Some((3, Value::from(2))));
    assert_eq!(value(3).await, None);
    assert_eq!(value(4).await, Some((1, Value::from(104))));
    assert_eq!(value(5).await, Some((1, Value::from(105))));
    assert_eq!(node.record_count("test"), 5);
}

#[tokio::test]
async fn restore_lists_and_maps_are_stored_as_the_server_stores_them() {
    let node = AerospikeNode::start().unwrap();
    let client = connect(&node).await;
    let k = key("cdt", 1);
    // Raw particles as a restore sends them from an `.asb` file.
    let ordered_list = vec![0x94, 0xc7, 0x00, 0x01, 0x01, 0x02, 0x03];
    let k_ordered_map = vec![0x82, 0xc7, 0x00, 0x01, 0xc0, 0xa2, 0x03, b'a', 0x01];
    let kv_ordered_in_list = vec![
        0x92, 0x82, 0xc7, 0x00, 0x03, 0xc0, 0x01, 0x02, 0x92, 0xc7, 0x00, 0x01, 0x05,
    ];
    let empty = vec![0x90];
    let unsorted_map = vec![0x82, 0xa2, 0x03, b'b', 0x01, 0xa2, 0x03, b'a', 0x02];
    let sorted_map = vec![0x82, 0xa2, 0x03, b'a', 0x02, 0xa2, 0x03, b'b', 0x01];
    client
        .put(
            &WritePolicy::default(),
            &k,
            &[
                Bin::new("ol", Value::Unknown(PT_LIST, ordered_list.clone())),
                Bin::new("km", Value::Unknown(PT_MAP, k_ordered_map.clone())),
                Bin::new("nest", Value::Unknown(PT_LIST, kv_ordered_in_list.clone())),
                Bin::new("empty", Value::Unknown(PT_LIST, empty.clone())),
                Bin::new("um", Value::Unknown(PT_MAP, unsorted_map)),
            ],
        )
        .await
        .unwrap();
    assert_eq!(stored_bin(&node, &k, "ol"), Some((PT_LIST, ordered_list)));
    assert_eq!(stored_bin(&node, &k, "km"), Some((PT_MAP, k_ordered_map)));
    assert_eq!(
        stored_bin(&node, &k, "nest"),
        Some((PT_LIST, kv_ordered_in_list))
    );
    assert_eq!(stored_bin(&node, &k, "empty"), Some((PT_LIST, empty)));
    assert_eq!(
        stored_bin(&node, &k, "um"),
        Some((PT_MAP, sorted_map)),
        "unordered maps are stored key-sorted"
    );
    // The client reads the stored particles back (it decodes them into values).
    let rec = client
        .get(&ReadPolicy::default(), &k, Bins::All)
        .await
        .unwrap();
    assert_eq!(
        rec.bins["ol"],
        Value::List(vec![Value::from(1), Value::from(2), Value::from(3)])
    );
    assert!(
        matches!(&rec.bins["km"], Value::SortedMap(m) if m.len() == 1),
        "{:?}",
        rec.bins["km"]
    );

    // What the server refuses: an ordered list out of order (result code 1).
    let e = client
        .put(
            &WritePolicy::default(),
            &key("cdt", 2),
            &[Bin::new(
                "bad",
                Value::Unknown(PT_LIST, vec![0x93, 0xc7, 0x00, 0x01, 0x02, 0x01]),
            )],
        )
        .await
        .unwrap_err();
    assert_eq!(code(&e), Some(ResultCode::ServerError));
    assert!(
        !client
            .exists(&ReadPolicy::default(), &key("cdt", 2))
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn restore_sindex_create_in_both_syntaxes_and_udf_register() {
    let node = AerospikeNode::start().unwrap();
    let client = connect(&node).await;
    // The asrestore / pre-8.1 form and the 8.1 form the Rust client sends.
    let old = "sindex-create:ns=test;set=s1;indexname=by_age;indextype=list;indexdata=age,numeric";
    assert_eq!(info(&client, old).await, "ok");
    assert_eq!(
        info(&client, old).await,
        "ok",
        "same definition again is ok"
    );
    client
        .create_index_on_bin(
            &AdminPolicy::default(),
            "test",
            "s1",
            "name",
            "by_name",
            IndexType::String,
            CollectionIndexType::Default,
            None,
        )
        .await
        .unwrap()
        .wait_till_complete(None)
        .await
        .unwrap();
    let listing = info(&client, "sindex-list:ns=test;b64=true").await;
    assert!(
        listing.contains("indexname=by_age:set=s1:bin=age:type=numeric:indextype=list"),
        "{listing}"
    );
    assert!(
        listing.contains("indexname=by_name:set=s1:bin=name:type=string:indextype=default"),
        "{listing}"
    );
    let clash = "sindex-create:namespace=test;set=s1;indexname=by_age;bin=other;type=string";
    assert!(info(&client, clash).await.starts_with("ERROR:200:"));
    for bad in [
        "sindex-create:ns=test;indexname=x",
        "sindex-create:ns=test;indexname=x;indexdata=a,numeric;type=numeric",
        "sindex-create:ns=test;indexname=x;type=float;bin=a",
        "sindex-create:ns=test;indexname=x;indexdata=a",
        "sindex-create:ns=test;indexname=x;indextype=tree;type=numeric;bin=a",
    ] {
        assert!(info(&client, bad).await.starts_with("ERROR:4:"), "{bad}");
    }
    assert!(
        info(&client, "sindex-create:indexname=x;type=numeric;bin=a")
            .await
            .starts_with("ERROR:20:")
    );
    client
        .drop_index(&AdminPolicy::default(), "test", "s1", "by_age")
        .await
        .unwrap();
    // Dropping an index that is not there is not an error on the server.
    assert_eq!(
        info(&client, "sindex-delete:ns=test;indexname=by_age").await,
        "ok"
    );
    let listing = info(&client, "sindex-list:ns=test").await;
    assert!(!listing.contains("by_age") && listing.contains("by_name"));

    let body = b"function f(rec) return 1 end\n";
    client
        .register_udf(&AdminPolicy::default(), body, "restored.lua", UdfLang::Lua)
        .await
        .unwrap()
        .wait_till_complete(None)
        .await
        .unwrap();
    assert!(
        info(&client, "udf-list")
            .await
            .contains("filename=restored.lua")
    );
    assert_eq!(
        info(&client, "udf-put:filename=noext;content-len=4;content=YWJj").await,
        "error=invalid_filename"
    );
    assert_eq!(
        info(&client, "udf-put:filename=a.lua;content-len=8;content=YWJj").await,
        "error=invalid_content"
    );
    client
        .remove_udf(&AdminPolicy::default(), "restored.lua")
        .await
        .unwrap();
    assert_eq!(
        info(&client, "udf-remove:filename=restored.lua").await,
        "ok"
    );
    assert_eq!(info(&client, "udf-list").await, "");
}

#[tokio::test]
async fn restore_object_counts_follow_writes_deletes_and_truncates() {
    let node = AerospikeNode::start().unwrap();
    let client = connect(&node).await;
    let wp = WritePolicy::default();
    for i in 0..30 {
        let set = if i % 3 == 0 { "c1" } else { "c2" };
        client
            .put(&wp, &key(set, i), &[as_bin!("v", i)])
            .await
            .unwrap();
    }
    // Overwrites do not count twice.
    client
        .put(&wp, &key("c1", 0), &[as_bin!("v", 1)])
        .await
        .unwrap();
    assert!(client.delete(&wp, &key("c2", 1)).await.unwrap());
    let ns = info(&client, "namespace/test").await;
    assert!(ns.contains("objects=29;master_objects=29;"), "{ns}");
    // One set's statistics do not name the namespace and set, as on a server.
    let sets = info(&client, "sets/test/c1").await;
    assert!(sets.starts_with("objects=10:"), "{sets}");
    client
        .truncate(&AdminPolicy::default(), "test", "c2", 0)
        .await
        .unwrap();
    assert_eq!(node.record_count("test"), 10);
    let sets = info(&client, "sets/test").await;
    assert!(sets.contains("set=c2:objects=0:"), "{sets}");
}
