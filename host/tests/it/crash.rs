//! `kill -9` of the real service binary mid-backup, then a restart on the same config and
//! storage: nothing incomplete is listed, the start-up sweep removes the partial backup folder
//! and every partial upload the killed process left in `<storage>/.abs-tmp/`, and the next
//! backup succeeds (issue 15, fault matrix).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use testkit::AerospikeNode;
use testkit::fixtures::{self, FixtureSpec, Shape};

const BIN: &str = env!("CARGO_BIN_EXE_aerospike-backup-service");
/// Generous: a deadline for a wait, not a measurement (the first run compiles the plugins).
pub(crate) const PATIENCE: Duration = Duration::from_secs(180);
const RECORDS: usize = 40_000;

/// One HTTP/1.1 request; `(status, body)`, or `None` when nothing listens.
pub(crate) fn http(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let body = body.unwrap_or("");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let status = out.get(9..12)?.parse().ok()?;
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((status, body))
}

pub(crate) fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < PATIENCE, "gave up waiting: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every file (recursively) under `dir`.
pub(crate) fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

pub(crate) struct Service {
    pub(crate) child: Child,
    pub(crate) port: u16,
}

impl Service {
    pub(crate) fn start(dir: &Path, config: &Path, port: u16, log: &str) -> Service {
        let log = std::fs::File::create(dir.join(log)).unwrap();
        let child = Command::new(BIN)
            .arg("-c")
            .arg(config)
            .current_dir(dir)
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        let mut svc = Service { child, port };
        wait_for("the service answers /health", || {
            if let Some(status) = svc.child.try_wait().unwrap() {
                panic!("service exited with {status}");
            }
            http(port, "GET", "/health", None).is_some_and(|(s, _)| s == 200)
        });
        svc
    }

    pub(crate) fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> (u16, serde_json::Value) {
        let (s, b) = http(self.port, method, path, body).expect("the service answers");
        (
            s,
            serde_json::from_str(&b).unwrap_or(serde_json::Value::String(b)),
        )
    }

    /// Restores backup `key` of storage `disk` into cluster `destination` with the default
    /// policy, waits for the job to end and returns its last status.
    pub(crate) fn restore_full(&self, key: &str, destination: &str) -> serde_json::Value {
        let body = format!(
            r#"{{"backup-data-path": "{key}", "destination-name": "{destination}", "source-name": "disk", "policy": {{}}}}"#
        );
        let (s, id) = self.call("POST", "/v1/restore/full", Some(&body));
        assert_eq!(s, 202, "{id}");
        let id = id.as_i64().unwrap();
        let mut st = serde_json::Value::Null;
        wait_for("the restore ends", || {
            st = self
                .call("GET", &format!("/v1/restore/status/{id}"), None)
                .1;
            st["status"] != "running"
        });
        st
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn kill_mid_backup_then_restart_sweeps_partial_folder_and_uploads() {
    let node = AerospikeNode::start().unwrap();
    let spec = FixtureSpec {
        records: RECORDS,
        shape: Shape::Small,
        ..FixtureSpec::default()
    };
    assert_eq!(fixtures::fill(&node, &spec), RECORDS);

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("backups");
    let staging = root.join(".abs-tmp");
    let folders = root.join("r/backup");
    let port = testkit::emulators::free_port().unwrap();
    let config = dir.path().join("abs.yml");
    // One scan, 1 MB files and a records-per-second throttle: the backup finishes files
    // one after another for many seconds, so a kill lands between finished files and a
    // staged one.
    std::fs::write(
        &config,
        format!(
            "service:\n  http: {{address: 127.0.0.1, port: {port}}}\n\
             aerospike-clusters:\n  c: {{seed-nodes: [{{host-name: 127.0.0.1, port: {}}}]}}\n\
             storage:\n  disk: {{local-storage: {{path: {}}}}}\n\
             backup-policies:\n  slow: {{parallel: 1, file-limit: 1, records-per-second: 2000, resume-max-age: 0}}\n\
             backup-routines:\n  r: {{interval-cron: \"@yearly\", source-cluster: c, storage: disk, \
             backup-policy: slow, namespaces: [test]}}\n",
            node.port(),
            root.display()
        ),
    )
    .unwrap();

    let svc = Service::start(dir.path(), &config, port, "first.log");
    let (s, body) = svc.call("POST", "/v1/backups/full/r", None);
    assert_eq!(s, 202, "{body}");
    wait_for("a finished data file and a staged one", || {
        let finished = files(&folders)
            .iter()
            .any(|f| f.extension().is_some_and(|e| e == "asb"));
        finished && !files(&staging).is_empty()
    });
    let (_, state) = svc.call("GET", "/v1/backups/currentBackup/r", None);
    assert!(!state["full"].is_null(), "the backup still runs: {state}");
    let mut svc = svc;
    svc.child.kill().unwrap(); // SIGKILL
    svc.child.wait().unwrap();
    drop(svc);
    let partial: Vec<PathBuf> = files(&staging);
    assert!(!partial.is_empty(), "the killed job left a partial upload");
    assert!(
        files(&folders)
            .iter()
            .all(|f| !f.ends_with("metadata.yaml")),
        "killed before any metadata.yaml"
    );

    let svc = Service::start(dir.path(), &config, port, "second.log");
    // Never listed, before or after the sweep.
    let (s, listed) = svc.call("GET", "/v1/backups/full/r", None);
    assert_eq!(
        (s, listed.clone()),
        (200, serde_json::json!([])),
        "{listed}"
    );
    wait_for("the sweep removes the partial folder and uploads", || {
        files(&folders).is_empty() && files(&staging).is_empty()
    });
    for p in &partial {
        assert!(!p.exists(), "{} survived the restart", p.display());
    }
    let log = std::fs::read_to_string(dir.path().join("second.log")).unwrap();
    assert!(log.contains("Removed an incomplete backup"), "{log}");
    assert!(log.contains("Removed partial uploads"), "{log}");

    // The next backup, unthrottled, succeeds and is the only one.
    let (s, body) = svc.call(
        "PUT",
        "/v1/config/policies/slow",
        Some(r#"{"parallel": 1, "file-limit": 1}"#),
    );
    assert_eq!(s, 200, "{body}");
    let (s, body) = svc.call("POST", "/v1/backups/full/r", None);
    assert_eq!(s, 202, "{body}");
    let mut listed = serde_json::Value::Null;
    wait_for("the next backup is listed", || {
        listed = svc.call("GET", "/v1/backups/full/r", None).1;
        listed.as_array().is_some_and(|a| !a.is_empty())
    });
    let backups = listed.as_array().unwrap();
    assert_eq!(backups.len(), 1, "{listed}");
    assert_eq!(backups[0]["record-count"], RECORDS as u64, "{listed}");
    assert!(files(&staging).is_empty(), "{:?}", files(&staging));
    let folders_now: Vec<_> = std::fs::read_dir(&folders).unwrap().flatten().collect();
    assert_eq!(folders_now.len(), 1, "only the new backup's folder");
}

/// The same crash on S3 (moto): the killed process leaves an open multipart upload, which S3
/// keeps (and bills) forever. The marker written beside each object being uploaded lets the
/// restarted service find it: the sweep aborts the key's unfinished uploads and removes the
/// folder, and nothing is listed.
#[test]
fn kill_mid_backup_to_s3_then_restart_aborts_the_open_multipart_uploads() {
    const RECORDS: usize = 80_000;
    let node = AerospikeNode::start().unwrap();
    let spec = FixtureSpec {
        records: RECORDS,
        shape: Shape::Small,
        ..FixtureSpec::default()
    };
    assert_eq!(fixtures::fill(&node, &spec), RECORDS);
    let moto =
        testkit::emulators::moto().expect("the moto S3 stand-in must be installed (scripts/test)");
    let bucket = format!("abs-crash-{}", std::process::id());
    moto.create_bucket(&bucket).unwrap();
    let open_uploads = || {
        let (s, body) = moto
            .request("GET", &format!("/{bucket}?uploads"), b"")
            .unwrap();
        assert_eq!(s, 200, "{}", String::from_utf8_lossy(&body));
        // Data files only: small objects (markers, node configuration) pass through a
        // multipart upload for an instant, which a poll can catch and a kill then miss.
        String::from_utf8_lossy(&body)
            .split("<Upload>")
            .skip(1)
            .filter(|u| u.contains(".asb</Key>"))
            .count()
    };
    let objects = || {
        let (s, body) = moto
            .request("GET", &format!("/{bucket}?list-type=2&prefix=abs/"), b"")
            .unwrap();
        assert_eq!(s, 200);
        String::from_utf8_lossy(&body)
            .split("<Key>")
            .skip(1)
            .filter_map(|k| k.split_once("</Key>").map(|(k, _)| k.to_string()))
            .collect::<Vec<_>>()
    };

    let dir = tempfile::tempdir().unwrap();
    let port = testkit::emulators::free_port().unwrap();
    let config = dir.path().join("abs.yml");
    // 12 MB files in 5 MiB parts, throttled hard: the first file's multipart upload stays
    // open for many seconds between its first part and its completion (the last, short file
    // is created and completed at once, so a kill must not race it).
    std::fs::write(
        &config,
        format!(
            "service:\n  http: {{address: 127.0.0.1, port: {port}}}\n\
             aerospike-clusters:\n  c: {{seed-nodes: [{{host-name: 127.0.0.1, port: {}}}]}}\n\
             storage:\n  s3: {{s3-storage: {{bucket: {bucket}, s3-region: us-east-1, path: abs, \
             s3-endpoint-override: \"{}\", access-key-id: AKIDTEST, \
             secret-access-key: test-secret-not-real, min-part-size: 5242880}}}}\n\
             backup-policies:\n  slow: {{parallel: 1, file-limit: 12, records-per-second: 2000, resume-max-age: 0}}\n\
             backup-routines:\n  r: {{interval-cron: \"@yearly\", source-cluster: c, storage: s3, \
             backup-policy: slow, namespaces: [test]}}\n",
            node.port(),
            moto.endpoint()
        ),
    )
    .unwrap();

    let svc = Service::start(dir.path(), &config, port, "first.log");
    let (s, body) = svc.call("POST", "/v1/backups/full/r", None);
    assert_eq!(s, 202, "{body}");
    wait_for("an open multipart upload", || open_uploads() > 0);
    let mut svc = svc;
    svc.child.kill().unwrap(); // SIGKILL
    svc.child.wait().unwrap();
    drop(svc);
    assert!(open_uploads() > 0, "the killed job left its upload open");
    let left = objects();
    assert!(
        left.iter().any(|k| k.ends_with(".asb.abs-open")),
        "a marker names the open upload: {left:?}"
    );
    assert!(
        !left.iter().any(|k| k.ends_with("metadata.yaml")),
        "{left:?}"
    );

    let svc = Service::start(dir.path(), &config, port, "second.log");
    let (s, listed) = svc.call("GET", "/v1/backups/full/r", None);
    assert_eq!(
        (s, listed.clone()),
        (200, serde_json::json!([])),
        "{listed}"
    );
    wait_for("the sweep aborts the upload and removes the folder", || {
        open_uploads() == 0 && objects().is_empty()
    });
    let log = std::fs::read_to_string(dir.path().join("second.log")).unwrap();
    assert!(log.contains("Removed an incomplete backup"), "{log}");
}

/// Issue 27, resume: a full backup killed (`kill -9`) after some of its files were stored is
/// finished by the restarted service from its checkpoint. The files stored before the kill
/// are kept as they were, what the killed process had begun is dropped, and the backup holds
/// every record of the namespace exactly once: decoded file by file, and restored into an
/// empty node and compared record by record.
#[test]
fn kill_mid_backup_then_restart_resumes_from_the_checkpoint() {
    let node = AerospikeNode::start().unwrap();
    let spec = FixtureSpec {
        records: RECORDS,
        shape: Shape::Small,
        ..FixtureSpec::default()
    };
    assert_eq!(fixtures::fill(&node, &spec), RECORDS);
    let target = AerospikeNode::start().unwrap();

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("backups");
    let folders = root.join("r/backup");
    let port = testkit::emulators::free_port().unwrap();
    let config = dir.path().join("abs.yml");
    let write_config = |throttle: &str| {
        std::fs::write(
            &config,
            format!(
                "service:\n  http: {{address: 127.0.0.1, port: {port}}}\n\
                 aerospike-clusters:\n  c: {{seed-nodes: [{{host-name: 127.0.0.1, port: {}}}]}}\n  \
                 t: {{seed-nodes: [{{host-name: 127.0.0.1, port: {}}}]}}\n\
                 storage:\n  disk: {{local-storage: {{path: {}}}}}\n\
                 backup-policies:\n  slow: {{parallel: 2, file-limit: 1{throttle}}}\n\
                 backup-routines:\n  r: {{interval-cron: \"@yearly\", source-cluster: c, storage: disk, \
                 backup-policy: slow, namespaces: [test]}}\n",
                node.port(),
                target.port(),
                root.display()
            ),
        )
        .unwrap();
    };
    // Two scans, 1 MB files, throttled: files finish one after another for seconds.
    write_config(", records-per-second: 3000");
    let checkpoint_files = |cp: &Path| -> Vec<String> {
        let Ok(text) = std::fs::read_to_string(cp) else {
            return Vec::new();
        };
        let v: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
        v["namespaces"][0]["files"]
            .as_sequence()
            .map(|f| {
                f.iter()
                    .map(|f| f["name"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default()
    };

    let svc = Service::start(dir.path(), &config, port, "first.log");
    let (s, body) = svc.call("POST", "/v1/backups/full/r", None);
    assert_eq!(s, 202, "{body}");
    let mut folder = PathBuf::new();
    wait_for("the checkpoint lists two stored data files", || {
        let Some(cp) = files(&folders)
            .into_iter()
            .find(|f| f.ends_with("resume.yaml"))
        else {
            return false;
        };
        folder = cp.parent().unwrap().to_path_buf();
        checkpoint_files(&cp).len() >= 2
    });
    let mut svc = svc;
    svc.child.kill().unwrap(); // SIGKILL
    svc.child.wait().unwrap();
    drop(svc);
    let kept = checkpoint_files(&folder.join("resume.yaml"));
    let data = folder.join("data/test");
    let before: Vec<(String, Vec<u8>)> = kept
        .iter()
        .map(|n| (n.clone(), std::fs::read(data.join(n)).unwrap()))
        .collect();
    let records_before: usize = before.iter().map(|(_, b)| count_records(b)).sum();
    assert!(
        records_before > 0 && records_before < RECORDS,
        "killed mid-backup: {records_before} records stored"
    );

    // Back unthrottled: speed is not part of what a backup holds, so it still resumes.
    write_config("");
    let svc = Service::start(dir.path(), &config, port, "second.log");
    let mut listed = serde_json::Value::Null;
    wait_for("the resumed backup is listed", || {
        listed = svc.call("GET", "/v1/backups/full/r", None).1;
        listed.as_array().is_some_and(|a| !a.is_empty())
    });
    let backups = listed.as_array().unwrap();
    assert_eq!(backups.len(), 1, "{listed}");
    assert_eq!(backups[0]["record-count"], RECORDS as u64, "{listed}");
    let log = std::fs::read_to_string(dir.path().join("second.log")).unwrap();
    assert!(
        log.contains("Resuming a backup cut off by a restart"),
        "{log}"
    );
    assert!(!log.contains("Removed an incomplete backup"), "{log}");
    // Same folder, the stored files untouched, the checkpoint gone.
    for (name, bytes) in &before {
        assert_eq!(
            &std::fs::read(data.join(name)).unwrap(),
            bytes,
            "{name} was rewritten"
        );
    }
    assert!(!folder.join("resume.yaml").exists());
    let mut digests = std::collections::BTreeSet::new();
    let mut total = 0;
    for f in files(&data) {
        if f.extension().is_some_and(|e| e == "asb") {
            let bytes = std::fs::read(&f).unwrap();
            let mut dec = abs::asb::AsbDecoder::new(&bytes[..]);
            while let Some(item) = dec.next_item().unwrap() {
                if let abs::asb::AsbItem::Record(r) = item {
                    total += 1;
                    digests.insert(r.digest);
                }
            }
        }
    }
    assert_eq!(total, RECORDS, "records in the files");
    assert_eq!(digests.len(), RECORDS, "no record twice");

    // Restored into an empty node: the same records.
    let st = svc.restore_full(backups[0]["key"].as_str().unwrap(), "t");
    assert_eq!(st["status"], "success", "{st}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (want, got) = rt.block_on(async {
        let a = crate::backup::connect(&node).await;
        let b = crate::backup::connect(&target).await;
        (
            crate::restore::scan_all(&a, "test").await,
            crate::restore::scan_all(&b, "test").await,
        )
    });
    assert_eq!(want.len(), RECORDS);
    crate::backup::assert_same_records(&got, &want);
}

/// Records in a plain `.asb` file.
fn count_records(bytes: &[u8]) -> usize {
    let mut dec = abs::asb::AsbDecoder::new(bytes);
    let mut n = 0;
    while let Some(item) = dec.next_item().unwrap() {
        n += usize::from(matches!(item, abs::asb::AsbItem::Record(_)));
    }
    n
}
