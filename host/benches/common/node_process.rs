//! The test node in a process of its own, so its CPU and memory are not the bench's: the
//! bench binary re-starts itself with `--serve-node N`, the child fills a node with `N` small
//! records, prints its port and serves until its stdin closes. Shared by the backup and
//! restore benches through `#[path]`; each declares `mod procfs` beside it.

use std::io::{BufRead, BufReader, Read, Write as _};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use testkit::AerospikeNode;
use testkit::fixtures::{self, FixtureSpec, Shape};

use crate::procfs::{cpu_seconds_of, peak_rss_mib};

/// `N` records of the small shape every bench uses.
pub fn small_records(records: usize) -> FixtureSpec {
    FixtureSpec {
        records,
        shape: Shape::Small,
        ..FixtureSpec::default()
    }
}

/// When this process was started as the node half (`--serve-node N`), serves the node and
/// returns true once the bench side has gone.
pub fn serve_if_asked() -> bool {
    let args: Vec<String> = std::env::args().collect();
    let Some(i) = args.iter().position(|a| a == "--serve-node") else {
        return false;
    };
    let records = args.get(i + 1).and_then(|n| n.parse().ok()).unwrap_or(0);
    let node = AerospikeNode::start().expect("test node");
    if records > 0 {
        let t = Instant::now();
        fixtures::fill(&node, &small_records(records));
        eprintln!(
            "loaded {records} small records into the test node in {:.2} s (node RSS {:.0} MiB)",
            t.elapsed().as_secs_f64(),
            peak_rss_mib()
        );
    }
    println!("PORT {}", node.port());
    let _ = std::io::stdout().flush();
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    true
}

/// A node process; ends with it when dropped (its stdin closes).
pub struct NodeProcess {
    child: Child,
    pub port: u16,
}

impl NodeProcess {
    pub fn spawn(records: usize) -> NodeProcess {
        let mut child = Command::new(std::env::current_exe().expect("own path"))
            .args(["--serve-node", &records.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("node process");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped"))
            .read_line(&mut line)
            .expect("node port");
        let port = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("node process said {line:?}"));
        NodeProcess { child, port }
    }

    /// CPU seconds the node process has used so far.
    pub fn cpu(&self) -> f64 {
        cpu_seconds_of(&self.child.id().to_string())
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}
