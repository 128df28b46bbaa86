//! Throughput of a partition scan through the official Rust client against the test node.
//!
//! `cargo bench -p testkit --bench node_scan` (cargo passes `--bench`) scans 1M small
//! records; without `--bench` (e.g. `cargo test --all-targets`) it is a 1k-record smoke run.
//! Node and client share this process, so the CPU figure covers both.

use std::time::Instant;

use aerospike::query::{PartitionFilter, Statement};
use aerospike::{Bins, Client, ClientPolicy, QueryPolicy};
use futures::StreamExt;
use testkit::AerospikeNode;
use testkit::fixtures::{self, FixtureSpec, Shape};

/// User + system CPU seconds of this process, from /proc (Linux only; 0 elsewhere).
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which is in parentheses): utime is the 12th, stime the 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|u| u.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|s| s.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

async fn scan(client: &Client, parallel: usize, bins: Bins) -> usize {
    let per = 4096 / parallel;
    let mut tasks = Vec::new();
    for i in 0..parallel {
        let pf = PartitionFilter::by_range(
            i * per,
            if i + 1 == parallel {
                4096 - i * per
            } else {
                per
            },
        );
        let rs = client
            .query(
                &QueryPolicy::default(),
                pf,
                Statement::new("test", "", bins.clone()),
            )
            .await
            .expect("query");
        tasks.push(tokio::spawn(async move {
            let mut s = rs.into_stream();
            let mut n = 0usize;
            while let Some(r) = s.next().await {
                r.expect("record");
                n += 1;
            }
            n
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("scan task");
    }
    total
}

/// Scans every partition over a raw socket and only walks the reply framing, to measure the
/// node alone (no client-side record decoding). Returns the record count.
fn raw_scan(port: u16) -> std::io::Result<usize> {
    use std::io::{Read, Write};
    fn field(out: &mut Vec<u8>, ty: u8, data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32 + 1).to_be_bytes());
        out.push(ty);
        out.extend_from_slice(data);
    }
    let mut msg = vec![22u8, 1, 0, 4, 0, 0]; // header size, info1 READ, info3 PARTITION_DONE
    msg.extend_from_slice(&[0; 12]); // generation, ttl, timeout
    msg.extend_from_slice(&4u16.to_be_bytes()); // fields
    msg.extend_from_slice(&0u16.to_be_bytes()); // ops
    field(&mut msg, 0, b"test");
    field(&mut msg, 9, &0u32.to_be_bytes());
    field(&mut msg, 7, &1u64.to_be_bytes());
    let pids: Vec<u8> = (0..4096u16).flat_map(|p| p.to_le_bytes()).collect();
    field(&mut msg, 11, &pids);
    let mut req = ((2u64 << 56) | (3u64 << 48) | msg.len() as u64)
        .to_be_bytes()
        .to_vec();
    req.extend_from_slice(&msg);
    let mut sock = std::net::TcpStream::connect(("127.0.0.1", port))?;
    sock.write_all(&req)?;
    let mut records = 0;
    let mut body = Vec::new();
    loop {
        let mut hdr = [0u8; 8];
        sock.read_exact(&mut hdr)?;
        let size = (u64::from_be_bytes(hdr) & 0xFFFF_FFFF_FFFF) as usize;
        body.resize(size, 0);
        sock.read_exact(&mut body)?;
        let mut pos = 0;
        while pos + 22 <= body.len() {
            let info3 = body[pos + 3];
            let n_fields = u16::from_be_bytes([body[pos + 18], body[pos + 19]]);
            let n_ops = u16::from_be_bytes([body[pos + 20], body[pos + 21]]);
            pos += 22;
            for _ in 0..(n_fields + n_ops) {
                let len = u32::from_be_bytes(body[pos..pos + 4].try_into().unwrap_or_default());
                pos += 4 + len as usize;
            }
            if info3 & 1 != 0 {
                return Ok(records);
            }
            if info3 & 4 == 0 {
                records += 1;
            }
        }
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let records = if full { 1_000_000 } else { 1_000 };
    let node = AerospikeNode::start().expect("node");
    let t = Instant::now();
    fixtures::fill(
        &node,
        &FixtureSpec {
            records,
            sets: vec![],
            shape: Shape::Small,
            ..FixtureSpec::default()
        },
    );
    println!(
        "node_scan: loaded {records} small records in {:.2}s",
        t.elapsed().as_secs_f64()
    );
    let rss = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .map(str::to_string)
        })
        .unwrap_or_default();
    println!("node_scan: after load {rss}");
    let client = Client::new(&ClientPolicy::default(), &node.hosts())
        .await
        .expect("client");
    let runs = if full { 3 } else { 1 };
    for (label, parallel, bins) in [
        ("P1 Bins::All", 1, Bins::All),
        ("P4 Bins::All", 4, Bins::All),
        ("P1 Bins::None", 1, Bins::None),
    ] {
        for run in 0..runs {
            let cpu0 = cpu_seconds();
            let t = Instant::now();
            let n = scan(&client, parallel, bins.clone()).await;
            let secs = t.elapsed().as_secs_f64();
            let cpu = cpu_seconds() - cpu0;
            assert_eq!(n, records, "every record exactly once");
            println!(
                "node_scan: {label} run {run}: {n} records in {secs:.3}s = {:.0} records/s; \
                 process CPU {cpu:.2}s ({:.2} CPU-s per 1M records)",
                n as f64 / secs,
                cpu * 1e6 / n as f64
            );
        }
    }
    client.close().await.expect("close");
    for run in 0..runs {
        let cpu0 = cpu_seconds();
        let t = Instant::now();
        let port = node.port();
        let n = tokio::task::spawn_blocking(move || raw_scan(port))
            .await
            .expect("raw scan task")
            .expect("raw scan");
        let secs = t.elapsed().as_secs_f64();
        let cpu = cpu_seconds() - cpu0;
        assert_eq!(n, records, "every record exactly once");
        println!(
            "node_scan: node only (raw socket, bins, no decoding) run {run}: {n} records in \
             {secs:.3}s = {:.0} records/s; process CPU {cpu:.2}s",
            n as f64 / secs
        );
    }
}
