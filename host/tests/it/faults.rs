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

use serde_json::Value;
use testkit::fixtures::{self, FixtureSpec, Shape};
use testkit::{AerospikeNode, NodeConfig};

use crate::crash::{Service, files, wait_for};

/// A mount made for one test, undone (lazily, so open files do not block it) on drop.
struct Mount(PathBuf);

impl Mount {
    fn mount(args: &[&str], at: &Path) {
        let out = Command::new("mount").args(args).arg(at).output().unwrap();
        assert!(
            out.status.success(),
            "mount {args:?} {} failed (these tests need CAP_SYS_ADMIN, e.g. root): {}",
            at.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A tmpfs of `size` (mount's syntax: `512k`, `64m`) at `at`.
    fn tmpfs(at: &Path, size: &str) -> Mount {
        std::fs::create_dir_all(at).unwrap();
        Mount::mount(&["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"], at);
        Mount(at.to_path_buf())
    }

    fn remount(&self, options: &str) {
        Mount::mount(&["-o", &format!("remount,{options}")], &self.0);
    }

    /// `dir` bound onto itself read-only: writes fail with EROFS even for root.
    fn read_only(dir: &Path) -> Mount {
        Mount::mount(&["--bind", dir.to_str().unwrap()], dir);
        let m = Mount(dir.to_path_buf());
        m.remount("bind,ro");
        m
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// The service's config: REST on `port`, cluster `c` seeded with `hosts`, storage `disk` at
/// `root`, then `rest` (top-level YAML: policies, routines, plugins).
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
            "aerospike_backup_service_backup_events_total{{outcome=\"{outcome}\",routine=\"{routine}\",type=\"full\"}}"
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

#[test]
fn node_loss_mid_scan_completes_with_every_record_once_or_fails_naming_it() {
    const RECORDS: usize = 15_000;
    let mut node = AerospikeNode::start_with(NodeConfig {
        nodes: 3,
        replication_factor: 2,
        ..NodeConfig::default()
    })
    .unwrap();
    crate::backup::seed(&node, RECORDS);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let want = rt.block_on(async {
        let client = crate::backup::connect(&node).await;
        crate::backup::scan_all(&node, &client).await
    });
    assert_eq!(want.len(), RECORDS);

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("backups");
    let port = testkit::emulators::free_port().unwrap();
    let config = dir.path().join("abs.yml");
    // Throttled, one node at a time (a worker reads its partitions node by node, in the
    // order of their first partition: node 0, 1, 2): node 2 goes while node 0 is read, so
    // the job meets the loss when it turns to node 2's partitions. (Killing a node whose
    // stream is already open proves little on loopback: the socket buffers, up to 32 MB,
    // hold all it had to send, so the stream ends normally.)
    write_config(
        &config,
        port,
        &[node.port()],
        &root,
        &format!(
            "backup-policies:\n  p: {{parallel: 1, max-concurrent-nodes: 1, records-per-second: 5000}}\nbackup-routines:\n{}",
            routine("r", "p", "disk")
        ),
    );
    let svc = Service::start(dir.path(), &config, port, "service.log");
    let scans = |node: &AerospikeNode, i: usize| {
        node.stats(i)
            .scans
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    // The scan that read `want` counts too.
    let before = scans(&node, 2);
    let (s, body) = svc.call("POST", "/v1/backups/full/r", None);
    assert_eq!(s, 202, "{body}");
    wait_for("the scan is under way", || {
        let state = svc.call("GET", "/v1/backups/currentBackup/r", None).1;
        state["full"]["done-records"].as_u64().unwrap_or(0) >= 500
    });
    let state = svc.call("GET", "/v1/backups/currentBackup/r", None).1;
    let done = state["full"]["done-records"].as_u64().unwrap_or(0);
    assert!(
        done < RECORDS as u64,
        "still scanning when the node goes: {state}"
    );
    assert_eq!(scans(&node, 2), before, "node 2's turn has not come");
    let survivors = scans(&node, 0) + scans(&node, 1);
    node.stop_node(2);

    let state = wait_full(&svc, "r");
    eprintln!("after the node loss: {state}");
    let result = &state["last-full-result"];
    let backups = listed(&svc, "r");
    let folders = root.join("r/backup");
    match result["outcome"].as_str() {
        Some("success") => {
            // Resumed on the partitions' new owners: every record exactly once.
            assert_eq!(backups.len(), 1, "{backups:?}");
            assert_eq!(backups[0]["record-count"], RECORDS as u64, "{backups:?}");
            let ts: Vec<_> = std::fs::read_dir(&folders).unwrap().flatten().collect();
            assert_eq!(ts.len(), 1);
            let yaml = std::fs::read_to_string(&config).unwrap();
            let cfg = abs::config::parse::<abs::config::Config>(&yaml, abs::config::Format::Yaml)
                .unwrap();
            let store = abs::config::ConfigStore::in_memory(cfg);
            let (records, _) =
                crate::backup::decode_folder(&store, &ts[0].path().join("data/test"));
            crate::backup::assert_same_records(&crate::backup::by_digest(records), &want);
            assert_eq!(full_events(&svc, "r", "success"), 1.0);
            assert_eq!(full_events(&svc, "r", "failure"), 0.0);
        }
        Some("failure") => {
            let why = result["message"].as_str().unwrap_or_default();
            assert!(why.contains("scan"), "names the reason: {state}");
            assert_eq!(backups, Vec::<Value>::new());
            assert!(
                files(&folders)
                    .iter()
                    .all(|f| !f.ends_with("metadata.yaml")),
                "nothing complete-looking left"
            );
            assert_eq!(full_events(&svc, "r", "failure"), 1.0);
        }
        other => panic!("unexpected outcome {other:?}: {state}"),
    }
    // The job met the loss, and the survivors served the lost node's partitions.
    assert!(scans(&node, 0) + scans(&node, 1) > survivors);
    let log = std::fs::read_to_string(dir.path().join("service.log")).unwrap();
    assert!(
        log.contains("Scan interrupted"),
        "the scan met the node loss:\n{log}"
    );
    drop(svc);
}

/// The purpose-built misbehaving codec (`fixtures/guests/bad-codec`) and its sha256.
fn bad_codec() -> (PathBuf, String) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bad-codec.wasm");
    let sha = abs::plugins::registry::sha256_hex(&std::fs::read(&path).unwrap());
    (path, sha)
}

#[test]
fn codec_plugin_that_traps_loops_or_exhausts_memory_mid_file_fails_its_job_only() {
    const RECORDS: usize = 20_000;
    let node = AerospikeNode::start().unwrap();
    fill_small(&node, RECORDS);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("backups");
    let port = testkit::emulators::free_port().unwrap();
    let config = dir.path().join("abs.yml");
    let (wasm, sha) = bad_codec();
    // Each bad policy passes the first 200 kB through (a few data chunks), then misbehaves:
    // mid-file, after the backup has written data.
    let bad = |mode: &str| {
        format!(
            "{{parallel: 1, pipeline: [{{plugin: misbehaving-codec, options: {{mode: {mode}, after: 200000}}}}]}}"
        )
    };
    write_config(
        &config,
        port,
        &[node.port()],
        &root,
        &format!(
            "plugins:\n  misbehaving-codec: {{path: \"{}\", sha256: \"{sha}\"}}\n\
             backup-policies:\n  trap: {}\n  loop: {}\n  bomb: {}\n  plain: {{parallel: 1}}\n\
             backup-routines:\n{}{}{}{}",
            wasm.display(),
            bad("trap"),
            bad("loop"),
            bad("bomb"),
            routine("rtrap", "trap", "disk"),
            routine("rloop", "loop", "disk"),
            routine("rbomb", "bomb", "disk"),
            routine("ok", "plain", "disk"),
        ),
    );
    let svc = Service::start(dir.path(), &config, port, "service.log");
    // All at once: the good routine runs beside the misbehaving ones.
    for r in ["rtrap", "rloop", "rbomb", "ok"] {
        let (s, body) = svc.call("POST", &format!("/v1/backups/full/{r}"), None);
        assert_eq!(s, 202, "{r}: {body}");
    }
    let ok = wait_full(&svc, "ok");
    assert_eq!(ok["last-full-result"]["outcome"], "success", "{ok}");
    for (r, cause) in [
        ("rtrap", "trap"),
        ("rloop", "deadline"),
        ("rbomb", "memory"),
    ] {
        let state = wait_full(&svc, r);
        let result = &state["last-full-result"];
        assert_eq!(result["outcome"], "failure", "{r}: {state}");
        let why = result["message"].as_str().unwrap_or_default();
        assert!(
            why.contains("misbehaving-codec"),
            "{r}: names the plugin: {why}"
        );
        assert!(why.to_lowercase().contains(cause), "{r}: says why: {why}");
        assert_eq!(listed(&svc, r), Vec::<Value>::new(), "{r}");
        assert_eq!(
            files(&root.join(r)),
            Vec::<PathBuf>::new(),
            "{r} left files"
        );
        assert_eq!(full_events(&svc, r, "failure"), 1.0, "{r}");
        assert_eq!(full_events(&svc, r, "success"), 0.0, "{r}");
    }
    // The good routine's backup is whole, and the API keeps working.
    let backups = listed(&svc, "ok");
    assert_eq!(backups.len(), 1, "{backups:?}");
    assert_eq!(backups[0]["record-count"], RECORDS as u64);
    assert_eq!(full_events(&svc, "ok", "success"), 1.0);
    assert_eq!(metric(&svc, "aerospike_backup_service_failure_total"), 3.0);
    assert_eq!(svc.call("GET", "/health", None).0, 200);
    let state = run_full(&svc, "ok");
    assert_eq!(state["last-full-result"]["outcome"], "success", "{state}");
    assert_eq!(listed(&svc, "ok").len(), 2);
    drop(svc);
}

/// One config save refused by the filesystem: a 500 naming `reason`, the old config still
/// loaded and on disk byte for byte, no temp file left; once `fix` runs, the same request works.
fn refused_save(svc: &Service, config: &Path, reason: &str, fix: impl FnOnce()) {
    let on_disk = std::fs::read(config).unwrap();
    let (s, loaded) = svc.call("GET", "/v1/config", None);
    assert_eq!(s, 200, "{loaded}");
    let (s, body) = svc.call("POST", "/v1/config/policies/x", Some(r#"{"parallel": 2}"#));
    assert_eq!(s, 500, "{reason}: {body}");
    let error = body["error"].as_str().unwrap_or_default();
    assert!(error.contains(reason), "{body}");
    assert!(
        error.contains(&config.display().to_string()),
        "names the file: {body}"
    );
    assert_eq!(svc.call("GET", "/v1/config", None), (200, loaded));
    assert_eq!(svc.call("GET", "/v1/config/policies/x", None).0, 404);
    assert_eq!(
        std::fs::read(config).unwrap(),
        on_disk,
        "the file is unchanged"
    );
    let siblings: Vec<_> = std::fs::read_dir(config.parent().unwrap())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n.to_string_lossy().starts_with('.'))
        .collect();
    assert!(siblings.is_empty(), "temp file left: {siblings:?}");
    // The service stays up; backups and metrics still answer.
    assert_eq!(listed(svc, "r"), Vec::<Value>::new());
    assert_eq!(metric(svc, "aerospike_backup_service_failure_total"), 0.0);

    fix();
    let (s, body) = svc.call("POST", "/v1/config/policies/x", Some(r#"{"parallel": 2}"#));
    assert_eq!(s, 201, "{body}");
    assert_eq!(svc.call("GET", "/v1/config/policies/x", None).0, 200);
    let text = std::fs::read_to_string(config).unwrap();
    assert!(text.contains("\n  x:"), "{text}");
}

#[test]
fn config_save_on_a_read_only_or_full_disk_is_a_500_with_the_reason_and_changes_nothing() {
    let node = AerospikeNode::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("backups");
    let rest = format!(
        "backup-policies:\n  p: {{parallel: 1}}\nbackup-routines:\n{}",
        routine("r", "p", "disk")
    );

    // Read-only: a read-only bind mount of the config's folder (chmod would not stop root).
    let ro_dir = dir.path().join("ro");
    std::fs::create_dir_all(&ro_dir).unwrap();
    let config = ro_dir.join("abs.yml");
    let port = testkit::emulators::free_port().unwrap();
    write_config(&config, port, &[node.port()], &root, &rest);
    let svc = Service::start(dir.path(), &config, port, "ro.log");
    // The document says so, in the error shape.
    let (_, doc) = svc.call("GET", "/api-docs/openapi.json", None);
    let documented = &doc["paths"]["/v1/config/policies/{name}"]["post"]["responses"]["500"];
    assert_eq!(
        documented["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/ErrorBody",
        "{documented}"
    );
    let ro = Mount::read_only(&ro_dir);
    let probe = std::fs::write(ro_dir.join(".probe"), b"x");
    assert!(
        probe.is_err(),
        "the read-only mount refuses writes: {probe:?}"
    );
    refused_save(&svc, &config, "Read-only file system", move || drop(ro));
    drop(svc);

    // Full: the config's folder is a small tmpfs filled to the last block.
    let full_dir = dir.path().join("full");
    let disk = Mount::tmpfs(&full_dir, "64k");
    let config = full_dir.join("abs.yml");
    let port = testkit::emulators::free_port().unwrap();
    write_config(&config, port, &[node.port()], &root, &rest);
    let svc = Service::start(dir.path(), &config, port, "full.log");
    let ballast = full_dir.join("ballast");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&ballast).unwrap();
        let block = [0u8; 4096];
        while f.write_all(&block).and_then(|()| f.sync_all()).is_ok() {}
    }
    refused_save(&svc, &config, "No space left on device", || {
        std::fs::remove_file(&ballast).unwrap()
    });
    drop(svc);
    drop(disk);
}
