//! The rest of the fault matrix (issue 15 item 4), each against the real service binary, the
//! test node and local storage: a full disk under a backup, node loss mid-scan on a 3-node
//! cluster, a user codec plugin that traps / loops / exhausts its memory mid-file, and a
//! configuration file that cannot be written. Each case ends with what the routine state
//! (`GET /v1/backups/currentBackup/{routine}`), the backup list and `/metrics` show: nothing
//! lost, nothing falsely listed. (`kill -9` mid-backup is in `crash.rs`, cloud upload faults
//! in `cloud.rs`.)
//!
//! The filesystem faults are real filesystems: small tmpfs mounts and read-only bind mounts,
//! so the tests need CAP_SYS_ADMIN (CI runs as root); without it they fail saying so.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use testkit::fixtures::{self, FixtureSpec, Shape};
use testkit::{AerospikeNode, NodeConfig};

use crate::crash::{Service, files, wait_for};

/// A mount made for one test, undone (lazily, so open files do not block it) on drop.
struct Mount(PathBuf);

impl Mount {
    fn run(args: &[&str], at: &Path) -> Mount {
        let out = Command::new("mount").args(args).arg(at).output().unwrap();
        assert!(
            out.status.success(),
            "mount {args:?} {} failed (these tests need CAP_SYS_ADMIN, e.g. root): {}",
            at.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        Mount(at.to_path_buf())
    }

    /// A tmpfs of `size` (mount's syntax: `512k`, `64m`) at `at`.
    fn tmpfs(at: &Path, size: &str) -> Mount {
        std::fs::create_dir_all(at).unwrap();
        Mount::run(&["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"], at)
    }

    fn remount(&self, options: &str) {
        Mount::run(&["-o", &format!("remount,{options}")], &self.0);
    }

    /// `dir` bound onto itself read-only: writes fail with EROFS even for root.
    fn read_only(dir: &Path) -> Mount {
        let m = Mount::run(&["--bind", dir.to_str().unwrap()], dir);
        m.remount("bind,ro");
        m
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// The service's config: a cluster, storage `disk` at `root`, then `rest` (YAML at column 0:
/// more storage entries indented under `storage:` are not possible here, so `rest` holds the
/// policies and routines and any extra section).
fn write_config(path: &Path, port: u16, hosts: &[u16], root: &Path, rest: &str) {
    let seeds: Vec<String> = hosts
        .iter()
        .map(|p| format!("{{host-name: 127.0.0.1, port: {p}}}"))
        .collect();
    std::fs::write(
        path,
        format!(
            "service:\n  http: {{address: 127.0.0.1, port: {port}}}\n\
             aerospike-clusters:\n  c: {{seed-nodes: [{}]}}\n\
             storage:\n  disk: {{local-storage: {{path: \"{}\"}}}}\n{rest}",
            seeds.join(", "),
            root.display()
        ),
    )
    .unwrap();
}

fn routine(name: &str, policy: &str, storage: &str) -> String {
    format!(
        "  {name}: {{interval-cron: \"@yearly\", source-cluster: c, storage: {storage}, \
         backup-policy: {policy}, namespaces: [test]}}\n"
    )
}

/// Starts a full backup of `routine` and waits until it has ended; its routine state.
fn run_full(svc: &Service, routine: &str) -> Value {
    let (s, body) = svc.call("POST", &format!("/v1/backups/full/{routine}"), None);
    assert_eq!(s, 202, "{body}");
    wait_full(svc, routine)
}

/// Waits until no full backup of `routine` runs and its last result is known.
fn wait_full(svc: &Service, routine: &str) -> Value {
    let mut state = Value::Null;
    wait_for(&format!("the full backup of {routine} ends"), || {
        state = svc
            .call("GET", &format!("/v1/backups/currentBackup/{routine}"), None)
            .1;
        state["full"].is_null() && !state["last-full-result"].is_null()
    });
    state
}

fn listed(svc: &Service, routine: &str) -> Vec<Value> {
    let (s, body) = svc.call("GET", &format!("/v1/backups/full/{routine}"), None);
    assert_eq!(s, 200, "{body}");
    body.as_array().cloned().unwrap_or_else(|| panic!("{body}"))
}

/// The value of the sample `series` (name with labels, exactly as exposed) in `/metrics`.
fn metric(svc: &Service, series: &str) -> f64 {
    sample(svc, series).unwrap_or_else(|| panic!("no {series} in /metrics"))
}

fn sample(svc: &Service, series: &str) -> Option<f64> {
    let (s, body) = svc.call("GET", "/metrics", None);
    assert_eq!(s, 200);
    let text = body.as_str().unwrap_or_default().to_string();
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Full-backup events of `routine` with `outcome`; a labelled series appears with its first
/// event, so a missing one counts 0.
fn full_events(svc: &Service, routine: &str, outcome: &str) -> f64 {
    sample(
        svc,
        &format!(
            "aerospike_backup_service_backup_events_total{{outcome=\"{outcome}\",routine=\"{routine}\",type=\"Full\"}}"
        ),
    )
    .unwrap_or(0.0)
}

fn fill_small(node: &AerospikeNode, records: usize) {
    let spec = FixtureSpec {
        records,
        shape: Shape::Small,
        ..FixtureSpec::default()
    };
    assert_eq!(fixtures::fill(node, &spec), records);
}

#[test]
fn disk_full_fails_the_job_with_enospc_lists_nothing_and_the_service_stays_up() {
    const RECORDS: usize = 40_000;
    let node = AerospikeNode::start().unwrap();
    fill_small(&node, RECORDS);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("backups");
    // Far less than the backup needs (a few MB), more than its first files.
    let disk = Mount::tmpfs(&root, "512k");
    let port = testkit::emulators::free_port().unwrap();
    let config = dir.path().join("abs.yml");
    write_config(
        &config,
        port,
        &[node.port()],
        &root,
        &format!(
            "backup-policies:\n  p: {{parallel: 2}}\nbackup-routines:\n{}",
            routine("r", "p", "disk")
        ),
    );
    let svc = Service::start(dir.path(), &config, port, "service.log");

    let state = run_full(&svc, "r");
    let result = &state["last-full-result"];
    assert_eq!(result["outcome"], "failure", "{state}");
    let why = result["message"].as_str().unwrap_or_default();
    assert!(why.contains("No space left on device"), "{state}");
    // Nothing listed, nothing left behind: the failed job removed its files and parts.
    assert_eq!(listed(&svc, "r"), Vec::<Value>::new());
    assert!(state["last-full"].is_null(), "{state}");
    assert_eq!(files(&root), Vec::<PathBuf>::new());
    assert_eq!(full_events(&svc, "r", "failure"), 1.0);
    assert_eq!(full_events(&svc, "r", "success"), 0.0);
    assert_eq!(metric(&svc, "aerospike_backup_service_failure_total"), 1.0);
    assert_eq!(metric(&svc, "aerospike_backup_service_runs_total"), 0.0);

    // The service stays up: with room again, the next backup succeeds whole.
    assert_eq!(svc.call("GET", "/health", None).0, 200);
    disk.remount("size=256m");
    let state = run_full(&svc, "r");
    assert_eq!(state["last-full-result"]["outcome"], "success", "{state}");
    let backups = listed(&svc, "r");
    assert_eq!(backups.len(), 1, "{backups:?}");
    assert_eq!(backups[0]["record-count"], RECORDS as u64);
    assert_eq!(full_events(&svc, "r", "success"), 1.0);
    assert_eq!(metric(&svc, "aerospike_backup_service_runs_total"), 1.0);
    drop(svc);
}
