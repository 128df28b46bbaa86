//! `AerospikeNode`: an in-process server speaking the Aerospike wire protocol, with one or
//! more nodes sharing one in-memory store. See `docs/TEST-NODE.md` for what it implements.

pub(crate) mod cdt;
mod exec;
pub mod exp;
pub mod geo;
mod info;
mod server;
pub mod store;
mod tls;
pub mod wire;

use std::collections::HashSet;
use std::io;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

pub use store::{Digest, NodeClock, PARTITIONS, Store, compute_digest};
pub use tls::NodeTls;

/// How to start a node (or a cluster of nodes).
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Port of the first node; 0 picks free ports. Node `i` listens on `port + i` when set.
    pub port: u16,
    pub namespaces: Vec<String>,
    /// Number of nodes; the 4096 partitions are split `partition % nodes`.
    pub nodes: usize,
    /// Number of racks the nodes are spread over (node `i` is in rack `i % racks + 1`);
    /// 0 = all in rack 0.
    pub racks: u32,
    /// Copies of each partition (capped at `nodes`): copy `r` of partition `p` lives on node
    /// `(p + r) % nodes`, so rack-aware clients have replicas to prefer. The store is shared,
    /// so every copy is always in sync.
    pub replication_factor: usize,
    /// Enables security: clients must log in as this user (INTERNAL: the password's hash;
    /// EXTERNAL: the clear password; PKI: a client certificate whose subject CN is the user).
    pub user: Option<(String, String)>,
    /// Serve TLS (only) on every node's port; see [`NodeTls`].
    pub tls: Option<NodeTls>,
    pub cluster_name: String,
    /// Namespace default TTL in seconds (0 = never expire).
    pub default_ttl: u32,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            port: 0,
            namespaces: vec!["test".into()],
            nodes: 1,
            racks: 0,
            replication_factor: 1,
            user: None,
            tls: None,
            cluster_name: "testkit".into(),
            default_ttl: 0,
        }
    }
}

/// Fault injection for one node. All switches can change while clients are connected.
#[derive(Debug, Default)]
pub struct Faults {
    /// Result code every write answers with (0 = writes work).
    fail_writes: AtomicU8,
    /// Drop a scan's connection once this many records were sent on it (0 = off).
    drop_scan_after: AtomicU64,
    /// How many more scans the drop applies to.
    drop_scan_times: AtomicU64,
    /// A paused node accepts connections but answers nothing until resumed.
    paused: AtomicBool,
}

impl Faults {
    /// Makes every write (put, operate, delete, touch, batch write rows) fail with `code`.
    pub fn fail_writes(&self, code: Option<u8>) {
        self.fail_writes.store(code.unwrap_or(0), Ordering::Relaxed);
    }
    /// Closes the connection of the next `times` scans after `records` records each.
    pub fn drop_scan_after(&self, records: u64, times: u64) {
        self.drop_scan_after.store(records, Ordering::Relaxed);
        self.drop_scan_times.store(times, Ordering::Relaxed);
    }
    pub fn pause(&self, paused: bool) {
        self.paused.store(paused, Ordering::Relaxed);
    }
    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::Relaxed)
    }
    fn write_failure(&self) -> u8 {
        self.fail_writes.load(Ordering::Relaxed)
    }
    /// The record count at which this scan must be cut, consuming one use.
    fn take_scan_drop(&self) -> Option<u64> {
        let k = self.drop_scan_after.load(Ordering::Relaxed);
        if k == 0 {
            return None;
        }
        self.drop_scan_times
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| t.checked_sub(1))
            .ok()
            .map(|_| k)
    }
}

/// Request counters of one node, for tests that check routing.
#[derive(Debug, Default)]
pub struct NodeStats {
    pub single_record: AtomicU64,
    /// Single-record commands for a partition this node holds no copy of.
    pub misrouted: AtomicU64,
    /// Single-record commands served as a replica (not the partition's master).
    pub replica_served: AtomicU64,
    pub batches: AtomicU64,
    pub scans: AtomicU64,
    pub scan_records: AtomicU64,
    /// Scans cut by [`Faults::drop_scan_after`].
    pub scans_dropped: AtomicU64,
    pub info: AtomicU64,
    pub logins: AtomicU64,
    /// LOGIN requests without a user (PKI) and with a clear password (EXTERNAL).
    pub pki_logins: AtomicU64,
    pub external_logins: AtomicU64,
    /// Connections closed because the TLS handshake failed.
    pub tls_handshake_failures: AtomicU64,
}

/// What every node of a cluster shares.
#[derive(Debug)]
pub(crate) struct ClusterShared {
    config: NodeConfig,
    store: Arc<Store>,
    /// (name, port, rack, alive) per node.
    nodes: Mutex<Vec<(String, u16, u32, bool)>>,
    partition_generation: AtomicU64,
    peers_generation: AtomicU64,
    /// bcrypt hash clients send for the configured password.
    credential: Option<String>,
    sessions: Mutex<HashSet<Vec<u8>>>,
    info_log: Mutex<Vec<String>>,
    started: Instant,
}

impl ClusterShared {
    fn ns_names(&self) -> Vec<String> {
        self.store
            .namespaces
            .iter()
            .map(|n| n.name.clone())
            .collect()
    }
    /// Live nodes: a stopped node leaves the cluster, and its partitions move to the others.
    fn node_count(&self) -> usize {
        store::lock(&self.nodes)
            .iter()
            .filter(|n| n.3)
            .count()
            .max(1)
    }
    /// A live node's position among the live nodes (what partition ownership follows).
    fn live_rank(&self, index: usize) -> Option<usize> {
        let nodes = store::lock(&self.nodes);
        if !nodes.get(index)?.3 {
            return None;
        }
        Some(nodes[..index].iter().filter(|n| n.3).count())
    }
    fn all_nodes(&self) -> Vec<(usize, String, u16, u32)> {
        store::lock(&self.nodes)
            .iter()
            .enumerate()
            .map(|(i, (n, p, r, _))| (i, n.clone(), *p, *r))
            .collect()
    }
    fn live_nodes(&self) -> Vec<(usize, String, u16)> {
        store::lock(&self.nodes)
            .iter()
            .enumerate()
            .filter(|(_, n)| n.3)
            .map(|(i, (n, p, _, _))| (i, n.clone(), *p))
            .collect()
    }
    fn peers_of(&self, index: usize) -> Vec<u16> {
        self.live_nodes()
            .into_iter()
            .filter(|(i, _, _)| *i != index)
            .map(|(_, _, p)| p)
            .collect()
    }
    fn replication_factor(&self) -> usize {
        self.config.replication_factor.clamp(1, self.node_count())
    }
    fn cluster_key(&self) -> String {
        format!("{:012X}", 0xA5_0000_0000u64 + self.node_count() as u64)
    }
    fn log_info(&self, cmd: &str) {
        let mut log = store::lock(&self.info_log);
        // Bounded: tests only look at recent commands.
        if log.len() >= 10_000 {
            log.drain(..5_000);
        }
        log.push(cmd.to_string());
    }
}

/// One node's identity and switches.
#[derive(Debug)]
pub(crate) struct NodeShared {
    index: usize,
    name: String,
    port: u16,
    rack: u32,
    cluster: Arc<ClusterShared>,
    faults: Arc<Faults>,
    stats: Arc<NodeStats>,
    connections: AtomicUsize,
}

impl NodeShared {
    /// Which copy of `partition` this node holds: 0 = master, `r` = replica r.
    fn copy_of(&self, partition: usize) -> Option<usize> {
        let rank = self.cluster.live_rank(self.index)?;
        let n = self.cluster.node_count();
        (0..self.cluster.replication_factor()).find(|r| (partition + r) % n == rank)
    }
}

struct RunningNode {
    shared: Arc<NodeShared>,
    shutdown: Option<tokio::sync::watch::Sender<bool>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for RunningNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningNode")
            .field("name", &self.shared.name)
            .field("port", &self.shared.port)
            .finish()
    }
}

impl RunningNode {
    fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(true);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A running test cluster of one or more nodes on loopback ports. Stops on drop.
///
/// Each node runs its own small tokio runtime on a dedicated thread, so the node works
/// from synchronous tests, from any async runtime, and outlives the caller's runtime.
#[derive(Debug)]
pub struct AerospikeNode {
    cluster: Arc<ClusterShared>,
    nodes: Vec<RunningNode>,
}

impl AerospikeNode {
    /// One node, namespace `test`, free port.
    pub fn start() -> io::Result<AerospikeNode> {
        Self::start_with(NodeConfig::default())
    }

    pub fn start_with(config: NodeConfig) -> io::Result<AerospikeNode> {
        let n = config.nodes.max(1);
        let mut listeners = Vec::with_capacity(n);
        for i in 0..n {
            let port = if config.port == 0 {
                0
            } else {
                config.port + i as u16
            };
            let l = StdListener::bind(("127.0.0.1", port))?;
            l.set_nonblocking(true)?;
            listeners.push(l);
        }
        let ports: Vec<u16> = listeners
            .iter()
            .map(|l| l.local_addr().map(|a| a.port()))
            .collect::<io::Result<_>>()?;
        let ns: Vec<(String, u32)> = config
            .namespaces
            .iter()
            .map(|n| (n.clone(), config.default_ttl))
            .collect();
        let tls = config
            .tls
            .as_ref()
            .map(NodeTls::server_config)
            .transpose()?;
        let credential = match &config.user {
            Some((_, pass)) => Some(server::hash_password(pass)?),
            None => None,
        };
        let node_list = ports
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let rack = if config.racks == 0 {
                    0
                } else {
                    (i as u32 % config.racks) + 1
                };
                (format!("BB9{:04X}{:08X}", i + 1, *p as u32), *p, rack, true)
            })
            .collect();
        let cluster = Arc::new(ClusterShared {
            config: config.clone(),
            store: Arc::new(Store::new(&ns)),
            nodes: Mutex::new(node_list),
            partition_generation: AtomicU64::new(1),
            peers_generation: AtomicU64::new(1),
            credential,
            sessions: Mutex::new(HashSet::new()),
            info_log: Mutex::new(Vec::new()),
            started: Instant::now(),
        });
        let mut nodes = Vec::with_capacity(n);
        for (i, listener) in listeners.into_iter().enumerate() {
            let (name, port, rack, _) = store::lock(&cluster.nodes)[i].clone();
            let shared = Arc::new(NodeShared {
                index: i,
                name,
                port,
                rack,
                cluster: cluster.clone(),
                faults: Arc::new(Faults::default()),
                stats: Arc::new(NodeStats::default()),
                connections: AtomicUsize::new(0),
            });
            let (tx, rx) = tokio::sync::watch::channel(false);
            let s = shared.clone();
            let tls = tls.clone();
            let thread = std::thread::Builder::new()
                .name(format!("aerospike-test-node-{i}"))
                .spawn(move || server::run(s, listener, tls, rx))?;
            nodes.push(RunningNode {
                shared,
                shutdown: Some(tx),
                thread: Some(thread),
            });
        }
        Ok(AerospikeNode { cluster, nodes })
    }

    /// Address of the first node (a seed for clients).
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.nodes[0].shared.port))
    }
    pub fn port(&self) -> u16 {
        self.nodes[0].shared.port
    }
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|n| n.shared.port).collect()
    }
    /// `127.0.0.1:p1,127.0.0.1:p2,...`, the host string clients accept; with TLS
    /// `127.0.0.1:<tls name>:p1,...`.
    pub fn hosts(&self) -> String {
        let tls_name = self
            .cluster
            .config
            .tls
            .as_ref()
            .map(|t| t.tls_name.as_str());
        self.ports()
            .iter()
            .map(|p| match tls_name {
                Some(n) => format!("127.0.0.1:{n}:{p}"),
                None => format!("127.0.0.1:{p}"),
            })
            .collect::<Vec<_>>()
            .join(",")
    }
    pub fn node_names(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.shared.name.clone()).collect()
    }
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }
    pub fn store(&self) -> &Arc<Store> {
        &self.cluster.store
    }
    pub fn clock(&self) -> &NodeClock {
        &self.cluster.store.clock
    }
    pub fn faults(&self, node: usize) -> &Faults {
        &self.nodes[node].shared.faults
    }
    /// Applies `f` to the faults of every node.
    pub fn all_faults(&self, f: impl Fn(&Faults)) {
        for n in &self.nodes {
            f(&n.shared.faults);
        }
    }
    pub fn stats(&self, node: usize) -> &NodeStats {
        &self.nodes[node].shared.stats
    }
    /// The info commands received so far, oldest first.
    pub fn info_log(&self) -> Vec<String> {
        store::lock(&self.cluster.info_log).clone()
    }
    /// Number of live records in a namespace.
    pub fn record_count(&self, ns: &str) -> usize {
        self.cluster.store.count(ns)
    }
    /// Which node owns (masters) a partition.
    pub fn owner_of(&self, partition: usize) -> usize {
        let live: Vec<usize> = self.cluster.live_nodes().iter().map(|n| n.0).collect();
        live[partition % live.len()]
    }

    /// Node loss: stops node `i` (its listener and every connection close, as when the
    /// process dies) and takes it out of the cluster, so the survivors' peers and partition
    /// maps change (new generations) and its partitions are served by the others.
    pub fn stop_node(&mut self, i: usize) {
        store::lock(&self.cluster.nodes)[i].3 = false;
        self.cluster
            .partition_generation
            .fetch_add(1, Ordering::Relaxed);
        self.cluster
            .peers_generation
            .fetch_add(1, Ordering::Relaxed);
        self.nodes[i].stop();
    }
    /// The rack a node was put in.
    pub fn rack_of(&self, node: usize) -> u32 {
        self.nodes[node].shared.rack
    }
}

impl Drop for AerospikeNode {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            n.stop();
        }
    }
}
