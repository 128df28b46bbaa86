//! Fault modes the engine tests rely on.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use aerospike::query::{PartitionFilter, Statement};
use aerospike::{
    Bins, ClientPolicy, Key, QueryPolicy, ReadPolicy, ResultCode, Value, WritePolicy, as_bin,
};
use futures::StreamExt;
use testkit::AerospikeNode;
use testkit::fixtures::{self, FixtureSpec};

use crate::{connect, connect_with};

#[tokio::test]
async fn fault_fail_writes_answers_the_chosen_code_and_reads_still_work() {
    let node = AerospikeNode::start().unwrap();
    let client = connect(&node).await;
    let k = Key::new("test", "f", Value::from(1)).unwrap();
    client
        .put(&WritePolicy::default(), &k, &[as_bin!("a", 1)])
        .await
        .unwrap();
    node.faults(0).fail_writes(Some(8)); // SERVER_MEM_ERROR, a typical stop-writes answer
    let e = client
        .put(&WritePolicy::default(), &k, &[as_bin!("a", 2)])
        .await
        .unwrap_err();
    assert_eq!(e.server_result_code(), Some(ResultCode::ServerMemError));
    let rec = client
        .get(&ReadPolicy::default(), &k, Bins::All)
        .await
        .unwrap();
    assert_eq!(rec.bins["a"], Value::from(1));
    node.faults(0).fail_writes(None);
    client
        .put(&WritePolicy::default(), &k, &[as_bin!("a", 3)])
        .await
        .unwrap();
}

#[tokio::test]
async fn fault_dropped_scan_connection_is_resumable_from_the_cursor() {
    let node = AerospikeNode::start().unwrap();
    fixtures::fill(
        &node,
        &FixtureSpec {
            records: 2000,
            ..FixtureSpec::default()
        },
    );
    let client = connect(&node).await;
    node.faults(0).drop_scan_after(500, 1);
    let mut seen = HashSet::new();
    let rs = client
        .query(
            &QueryPolicy::default(),
            PartitionFilter::all(),
            Statement::new("test", "", Bins::None),
        )
        .await
        .unwrap();
    let cursor = rs.clone();
    let mut stream = rs.into_stream();
    let mut errors = 0;
    while let Some(r) = stream.next().await {
        match r {
            Ok(rec) => {
                seen.insert(rec.key.unwrap().digest());
            }
            Err(_) => errors += 1,
        }
    }
    let stats = node.stats(0);
    assert_eq!(
        stats.scans_dropped.load(Ordering::Relaxed),
        1,
        "the node must cut one scan"
    );
    // The client either retried the unfinished partitions itself or reported the cut;
    // either way the cursor resumes to the full set.
    if errors > 0 || !cursor.partition_filter().is_some_and(|pf| pf.done()) {
        let pf = cursor.partition_filter().expect("resume cursor");
        let rs = client
            .query(
                &QueryPolicy::default(),
                pf,
                Statement::new("test", "", Bins::None),
            )
            .await
            .unwrap();
        let mut stream = rs.into_stream();
        while let Some(r) = stream.next().await {
            seen.insert(r.unwrap().key.unwrap().digest());
        }
    }
    assert!(
        stats.scans.load(Ordering::Relaxed) >= 2,
        "a second scan must finish the job"
    );
    assert_eq!(seen.len(), 2000);
}

#[tokio::test]
async fn fault_paused_node_times_out_then_recovers() {
    let node = AerospikeNode::start().unwrap();
    let mut cp = ClientPolicy::default();
    cp.timeout = 2000;
    let client = connect_with(&node, cp).await;
    let k = Key::new("test", "p", Value::from(1)).unwrap();
    client
        .put(&WritePolicy::default(), &k, &[as_bin!("a", 1)])
        .await
        .unwrap();
    node.faults(0).pause(true);
    let mut rp = ReadPolicy::default();
    rp.base_policy.total_timeout = 300;
    rp.base_policy.socket_timeout = 300;
    rp.base_policy.max_retries = 0;
    let t = Instant::now();
    let e = client.get(&rp, &k, Bins::All).await.unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(3), "{e}");
    node.faults(0).pause(false);
    // The paused connection may be gone; a fresh read must work.
    let mut ok = false;
    for _ in 0..20 {
        if client
            .get(&ReadPolicy::default(), &k, Bins::All)
            .await
            .is_ok()
        {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "node did not recover after resume");
}
