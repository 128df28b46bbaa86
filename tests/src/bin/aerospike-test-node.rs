//! Standalone test node: serves until killed and prints its address(es).

use std::io::Write as _;

use clap::Parser;
use std::time::Duration;

use testkit::demo;
use testkit::fixtures::{self, FixtureSpec, Shape};
use testkit::node::NodeTls;
use testkit::{AerospikeNode, NodeConfig};

/// In-memory Aerospike wire-protocol server for tests and benchmarks.
#[derive(Debug, Parser)]
#[command(name = "aerospike-test-node", version)]
struct Args {
    /// Port of the first node (0 = any free port); node i listens on port + i.
    #[arg(long, default_value_t = 3000)]
    port: u16,
    /// Namespace to serve (repeatable).
    #[arg(long = "namespace")]
    namespaces: Vec<String>,
    /// Number of nodes splitting the 4096 partitions.
    #[arg(long, default_value_t = 1)]
    nodes: usize,
    /// Number of racks the nodes are spread over (0 = none).
    #[arg(long, default_value_t = 0)]
    racks: u32,
    /// Copies of each partition (node i holds copy r of partition p when (p + r) % nodes == i).
    #[arg(long, default_value_t = 1)]
    replication_factor: usize,
    /// Require clients to log in as this user.
    #[arg(long, requires = "password")]
    user: Option<String>,
    #[arg(long, requires = "user")]
    password: Option<String>,
    #[arg(long, default_value = "testkit")]
    cluster_name: String,
    /// Serve TLS only, presenting this PEM certificate chain (with --tls-key).
    #[arg(long, requires_all = ["tls_key", "tls_name"])]
    tls_cert: Option<std::path::PathBuf>,
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
    /// The TLS name clients verify (reported in peers-tls-std).
    #[arg(long, requires = "tls_cert")]
    tls_name: Option<String>,
    /// Mutual TLS: require client certificates issued by this CA (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_client_ca: Option<std::path::PathBuf>,
    /// Namespace default TTL in seconds (0 = never expire).
    #[arg(long, default_value_t = 0)]
    default_ttl: u32,
    /// Fill each namespace with this many generated records.
    #[arg(long, default_value_t = 0)]
    seed_records: usize,
    /// RNG seed for generated records.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Generate the small five-bin shape instead of every particle type.
    #[arg(long)]
    small_records: bool,
    /// The README demo: sample records of every type in three sets, a secondary index and a
    /// UDF in the first namespace, and a writer that changes records every few seconds.
    #[arg(long, conflicts_with_all = ["seed_records", "small_records"])]
    demo: bool,
}

/// How often the demo writer changes records: a few times between two incrementals.
const DEMO_WRITE_EVERY: Duration = Duration::from_secs(2);

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let namespaces = if args.namespaces.is_empty() {
        vec!["test".to_string()]
    } else {
        args.namespaces.clone()
    };
    let node = AerospikeNode::start_with(NodeConfig {
        port: args.port,
        namespaces: namespaces.clone(),
        nodes: args.nodes,
        racks: args.racks,
        replication_factor: args.replication_factor,
        user: args.user.clone().zip(args.password.clone()),
        cluster_name: args.cluster_name.clone(),
        default_ttl: args.default_ttl,
        tls: match (&args.tls_cert, &args.tls_key, &args.tls_name) {
            (Some(cert), Some(key), Some(name)) => Some(NodeTls {
                cert_file: cert.clone(),
                key_file: key.clone(),
                tls_name: name.clone(),
                client_ca_file: args.tls_client_ca.clone(),
            }),
            _ => None,
        },
    })?;
    for ns in &namespaces {
        if args.seed_records > 0 {
            fixtures::fill(
                &node,
                &FixtureSpec {
                    namespace: ns.clone(),
                    records: args.seed_records,
                    seed: args.seed,
                    shape: if args.small_records {
                        Shape::Small
                    } else {
                        Shape::AllTypes
                    },
                    ..FixtureSpec::default()
                },
            );
        }
    }
    let mut out = std::io::stdout();
    // Held for the life of the process: the writer stops when it is dropped.
    let _writer = if args.demo {
        let loaded = demo::load(&node, &namespaces[0])?;
        writeln!(
            out,
            "demo data: {} records in sets {} of namespace {}, index {}, UDF {}; \
             a writer changes {} records every {} s",
            loaded.records,
            demo::SETS.join(", "),
            namespaces[0],
            loaded.index,
            loaded.udf,
            demo::RECORDS_PER_TICK,
            DEMO_WRITE_EVERY.as_secs()
        )?;
        Some(demo::Writer::start(&node, &namespaces[0], DEMO_WRITE_EVERY))
    } else {
        None
    };
    // Scripts wait for this line, so print it last and flush.
    writeln!(out, "aerospike-test-node listening on {}", node.hosts())?;
    out.flush()?;
    loop {
        std::thread::park();
    }
}
