//! Sample data and a background writer for the README's demo (`scripts/demo`): a namespace
//! with records of every particle type in a few sets, a secondary index and a UDF, and a
//! writer that keeps changing records so that each incremental backup has something to save.
//!
//! The index and the UDF go in through the info protocol, as a client would create them, so
//! the demo shows the node as the service sees it.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use crate::AerospikeNode;
use crate::fixtures::{self, FixtureSpec, Shape};

/// Sets the demo records are spread over.
pub const SETS: [&str; 3] = ["customers", "orders", "events"];
/// Records written at start.
pub const RECORDS: usize = 3_000;
const _: () = assert!(RECORDS.is_multiple_of(SETS.len()));
/// Records the writer rewrites on each tick: a few percent, so incrementals stay small. A
/// multiple of the set count, so that each window starts on the set of its first key (the
/// fixtures pick a record's set from its place in the window).
pub const RECORDS_PER_TICK: usize = 14 * SETS.len();
/// Name of the demo's secondary index (numeric, on bin `int` of set `orders`).
pub const INDEX: &str = "demo_orders_int";
/// File name of the demo's UDF.
pub const UDF: &str = "demo.lua";
const UDF_SOURCE: &str = "-- Demo UDF: returns a bin's value plus one.\n\
function bump(rec, bin)\n  return (rec[bin] or 0) + 1\nend\n";

/// What the demo loaded, for the start-up message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    pub records: usize,
    pub index: String,
    pub udf: String,
}

/// Fills `namespace` of a running node and creates the index and the UDF.
pub fn load(node: &AerospikeNode, namespace: &str) -> io::Result<Loaded> {
    let records = fixtures::fill(node, &spec(namespace, 0, RECORDS, 1));
    info(
        node.addr(),
        &format!("sindex-create:ns={namespace};set=orders;indexname={INDEX};indexdata=int,numeric"),
    )?;
    // As clients send it: `content-len` is the length of the base64 text.
    let content = B64.encode(UDF_SOURCE);
    info(
        node.addr(),
        &format!(
            "udf-put:filename={UDF};content={content};content-len={};udf-type=LUA;",
            content.len()
        ),
    )?;
    Ok(Loaded {
        records,
        index: INDEX.into(),
        udf: UDF.into(),
    })
}

fn spec(namespace: &str, first_key: i64, records: usize, seed: u64) -> FixtureSpec {
    FixtureSpec {
        namespace: namespace.into(),
        records,
        sets: SETS.iter().map(|s| s.to_string()).collect(),
        seed,
        shape: Shape::AllTypes,
        first_key,
    }
}

/// A writer thread that rewrites a window of records every `every`, moving the window each
/// time (new values, new last-update-time); it stops when the handle is dropped.
#[derive(Debug)]
pub struct Writer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    pub fn start(node: &AerospikeNode, namespace: &str, every: Duration) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let store = node.store().clone();
        let namespace = namespace.to_string();
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut tick: u64 = 0;
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(every);
                tick += 1;
                // The window walks over the keys; the seed gives each pass new values.
                let first = (tick as usize * RECORDS_PER_TICK) % RECORDS;
                let count = RECORDS_PER_TICK.min(RECORDS - first);
                fixtures::fill_store(&store, &spec(&namespace, first as i64, count, 1000 + tick));
            }
        });
        Writer {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One info request over the wire (proto version 2, type 1); an `ERROR` answer is an error.
fn info(addr: SocketAddr, command: &str) -> io::Result<String> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let body = format!("{command}\n");
    let header = (2u64 << 56) | (1u64 << 48) | body.len() as u64;
    s.write_all(&header.to_be_bytes())?;
    s.write_all(body.as_bytes())?;
    let mut head = [0u8; 8];
    s.read_exact(&mut head)?;
    let len = (u64::from_be_bytes(head) & 0xffff_ffff_ffff) as usize;
    let mut answer = vec![0u8; len.min(1 << 20)];
    s.read_exact(&mut answer)?;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    // The answer echoes the command, a tab, then the result.
    let result = answer
        .split_once('\t')
        .map_or(answer.as_str(), |(_, r)| r)
        .trim_end()
        .to_string();
    if result.starts_with("ERROR") || result.starts_with("error=") {
        return Err(io::Error::other(format!("{command}: {result}")));
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_data_has_index_udf_and_changing_records() {
        let node = AerospikeNode::start().unwrap();
        let loaded = load(&node, "test").unwrap();
        assert_eq!(loaded.records, RECORDS);
        assert_eq!(node.record_count("test"), RECORDS);
        let indexes = info(node.addr(), "sindex-list:ns=test").unwrap();
        assert!(indexes.contains(INDEX), "{indexes}");
        let udfs = info(node.addr(), "udf-list").unwrap();
        assert!(udfs.contains(UDF), "{udfs}");

        let before = node.clock().now_ms();
        let writer = Writer::start(&node, "test", Duration::from_millis(10));
        let changed = || {
            let ns = node.store().ns(b"test").unwrap();
            ns.parts
                .iter()
                .map(|p| {
                    crate::node::store::read(p)
                        .values()
                        .filter(|r| r.lut_ms > before)
                        .count()
                })
                .sum::<usize>()
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while changed() < RECORDS_PER_TICK && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        drop(writer);
        assert!(changed() >= RECORDS_PER_TICK, "the writer changed records");
        assert_eq!(
            node.record_count("test"),
            RECORDS,
            "it rewrites, never adds"
        );
    }

    #[test]
    fn an_error_answer_is_an_error() {
        let node = AerospikeNode::start().unwrap();
        let err = info(
            node.addr(),
            // A bad bin type (an unknown namespace is no error: servers answer `ok`).
            "sindex-create:ns=test;indexname=x;indexdata=b,float",
        )
        .unwrap_err();
        assert!(err.to_string().contains("ERROR:"), "{err}");
    }
}
