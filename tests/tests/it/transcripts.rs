//! The drift check: transcripts recorded against a real Aerospike server
//! (`tests/data/transcripts/*.json`, written by `record-transcripts`; docs/TEST-NODE.md) are
//! replayed against a fresh test node each, and every normalized reply must be the server's.

use std::path::Path;

use testkit::AerospikeNode;
use testkit::transcript::{self, Mismatch};

#[test]
fn the_test_node_answers_like_the_recorded_server() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/transcripts");
    let transcripts = transcript::load_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot load the transcripts in {}: {e}", dir.display()));
    assert!(
        !transcripts.is_empty(),
        "no transcripts in {}",
        dir.display()
    );
    let mut mismatches: Vec<Mismatch> = Vec::new();
    let mut exchanges = 0;
    for (name, t) in &transcripts {
        let node = AerospikeNode::start().expect("start the test node");
        let found = transcript::replay(&node.addr().to_string(), name, t)
            .unwrap_or_else(|e| panic!("transcript {name}: {e}"));
        exchanges += t.exchanges.len();
        mismatches.extend(found);
    }
    if !mismatches.is_empty() {
        let mut report = format!(
            "{} of {exchanges} recorded exchanges differ on the test node \
             (\"-\" = recorded server, \"+\" = test node):\n",
            mismatches.len()
        );
        for m in &mismatches {
            report.push_str(&m.to_string());
        }
        panic!("{report}");
    }
}
