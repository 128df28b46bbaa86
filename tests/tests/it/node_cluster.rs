//! Multi-node mode: three nodes split the partitions and the Rust client routes by them.

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use aerospike::query::{PartitionFilter, Statement};
use aerospike::{AdminPolicy, Bins, Key, QueryPolicy, ReadPolicy, Value, WritePolicy, as_bin};
use futures::StreamExt;
use testkit::{AerospikeNode, NodeConfig};

#[tokio::test]
async fn rust_client_discovers_three_nodes_from_one_seed_and_routes_by_partition() {
    let node = AerospikeNode::start_with(NodeConfig {
        nodes: 3,
        racks: 2,
        ..NodeConfig::default()
    })
    .unwrap();
    // Seed with only the first node: the others must come from peers-clear-std.
    let seed = format!("127.0.0.1:{}", node.port());
    let client = aerospike::Client::new(&aerospike::ClientPolicy::default(), &seed)
        .await
        .unwrap();
    let mut names = client.node_names();
    names.sort();
    let mut expected = node.node_names();
    expected.sort();
    assert_eq!(names, expected);

    let wp = WritePolicy::default();
    for i in 0..300i64 {
        let k = Key::new("test", "c", Value::from(i)).unwrap();
        client.put(&wp, &k, &[as_bin!("i", i)]).await.unwrap();
        let rec = client
            .get(&ReadPolicy::default(), &k, Bins::All)
            .await
            .unwrap();
        assert_eq!(rec.bins["i"], Value::from(i));
    }
    for n in 0..3 {
        let s = node.stats(n);
        assert!(
            s.single_record.load(Ordering::Relaxed) > 100,
            "node {n} got too few commands"
        );
        assert_eq!(
            s.misrouted.load(Ordering::Relaxed),
            0,
            "node {n} got another node's partition"
        );
    }

    // A full scan asks every node for its own partitions and sees each record once.
    let rs = client
        .query(
            &QueryPolicy::default(),
            PartitionFilter::all(),
            Statement::new("test", "c", Bins::All),
        )
        .await
        .unwrap();
    let mut stream = rs.into_stream();
    let mut seen = HashSet::new();
    while let Some(r) = stream.next().await {
        assert!(seen.insert(r.unwrap().key.unwrap().digest()));
    }
    assert_eq!(seen.len(), 300);
    for n in 0..3 {
        assert!(
            node.stats(n).scans.load(Ordering::Relaxed) >= 1,
            "node {n} was not scanned"
        );
    }

    let info = client
        .info(&AdminPolicy::default(), &["racks:"])
        .await
        .unwrap();
    let racks = &info["racks:"];
    assert!(
        racks.contains("rack_1=") && racks.contains("rack_2="),
        "{racks}"
    );
    assert_eq!(node.rack_of(0), 1);
    assert_eq!(node.rack_of(1), 2);

    // A rack-aware client (prefer-racks) loads rack-ids and still reads every record.
    let mut cp = aerospike::ClientPolicy::default();
    cp.rack_ids = Some(vec![2]);
    let rack_client = aerospike::Client::new(&cp, &node.hosts()).await.unwrap();
    let mut rp = ReadPolicy::default();
    rp.base_policy.replica = aerospike::Replica::PreferRack;
    for i in 0..30i64 {
        let k = Key::new("test", "c", Value::from(i)).unwrap();
        let rec = rack_client.get(&rp, &k, Bins::All).await.unwrap();
        assert_eq!(rec.bins["i"], Value::from(i));
    }
    assert!(node.info_log().iter().any(|c| c == "rack-ids"));
}

/// The standalone binary: starts N nodes, seeds records, prints its hosts, serves clients.
#[tokio::test]
async fn test_node_binary_serves_seeded_records_on_two_nodes() {
    use std::io::BufRead as _;
    use std::process::{Command, Stdio};

    let mut child = Command::new(env!("CARGO_BIN_EXE_aerospike-test-node"))
        .args([
            "--port",
            "0",
            "--nodes",
            "2",
            "--namespace",
            "test",
            "--namespace",
            "bar",
        ])
        .args(["--seed-records", "500", "--small-records"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let hosts = line.trim().rsplit(' ').next().unwrap().to_string();
    assert_eq!(hosts.split(',').count(), 2, "{line}");
    let client = aerospike::Client::new(&aerospike::ClientPolicy::default(), &hosts)
        .await
        .unwrap();
    assert_eq!(client.node_names().len(), 2);
    for ns in ["test", "bar"] {
        let rs = client
            .query(
                &QueryPolicy::default(),
                PartitionFilter::all(),
                Statement::new(ns, "", Bins::All),
            )
            .await
            .unwrap();
        let mut stream = rs.into_stream();
        let mut n = 0;
        while let Some(r) = stream.next().await {
            assert_eq!(r.unwrap().bins.len(), 5);
            n += 1;
        }
        assert_eq!(n, 500, "namespace {ns}");
    }
    client.close().await.unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Replication factor 2 over three racks: prefer-rack reads go to the rack-local copy, and
/// per-node object counts add up like a real cluster's (masters once, proles separately).
#[tokio::test]
async fn prefer_rack_reads_use_the_local_replica_with_replication_factor_two() {
    let node = AerospikeNode::start_with(NodeConfig {
        nodes: 3,
        racks: 3,
        replication_factor: 2,
        ..NodeConfig::default()
    })
    .unwrap();
    let client = aerospike::Client::new(&aerospike::ClientPolicy::default(), &node.hosts())
        .await
        .unwrap();
    let keys: Vec<Key> = (0..300i64)
        .map(|i| Key::new("test", "r", Value::from(i)).unwrap())
        .collect();
    for (i, k) in keys.iter().enumerate() {
        client
            .put(&WritePolicy::default(), k, &[as_bin!("i", i as i64)])
            .await
            .unwrap();
    }
    let mut masters = 0;
    for n in 0..3 {
        let info = client
            .get_node(&node.node_names()[n])
            .unwrap()
            .info(&AdminPolicy::default(), &["namespace/test"])
            .await
            .unwrap();
        let field = |name: &str| -> u64 {
            info["namespace/test"]
                .split(';')
                .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
                .unwrap()
                .parse()
                .unwrap()
        };
        masters += field("master_objects");
        assert_eq!(field("replication-factor"), 2);
        assert_eq!(
            field("objects"),
            field("master_objects") + field("prole_objects")
        );
    }
    assert_eq!(masters, 300, "master_objects over all nodes = records");

    // Node 1 is in rack 2 and holds copies of partitions p % 3 in {0, 1}.
    let mut cp = aerospike::ClientPolicy::default();
    cp.rack_ids = Some(vec![node.rack_of(1) as usize]);
    let rack_client = aerospike::Client::new(&cp, &node.hosts()).await.unwrap();
    let mut rp = ReadPolicy::default();
    rp.base_policy.replica = aerospike::Replica::PreferRack;
    let before = node.stats(1).single_record.load(Ordering::Relaxed);
    for k in &keys {
        rack_client.get(&rp, k, Bins::All).await.unwrap();
    }
    let local = keys.iter().filter(|k| k.partition_id() % 3 != 2).count() as u64;
    assert_eq!(
        node.stats(1).single_record.load(Ordering::Relaxed) - before,
        local
    );
    assert!(node.stats(1).replica_served.load(Ordering::Relaxed) > 0);
    for n in 0..3 {
        assert_eq!(node.stats(n).misrouted.load(Ordering::Relaxed), 0);
    }
}
