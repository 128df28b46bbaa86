//! Backups checked without restoring them (issue 27): `checksums.yaml` written with every
//! backup, `POST /v1/backups/verify/{routine}/{timestamp}` reading every file, and the
//! corruption matrix (a flipped byte, a truncated file, a deleted file, two files swapped,
//! a damaged encrypted file), each found with the file named.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use abs::api::{self, AppState};
use abs::config::{Config, ConfigStore, Format};
use abs::jobs::backup::{EngineContext, ManualClock};
use abs::jobs::integrity::{CHECKSUMS_FILE, ChecksumsSidecar};
use abs::jobs::registry::{JobOutcome, JobRegistry};
use abs::metrics::Metrics;
use abs::storage::layout::BackupKind;
use axum::http::StatusCode;
use serde_json::Value;
use sha2::Digest as _;
use testkit::AerospikeNode;

use crate::api_config::call;
use crate::backup::{key_pem, plugins, seed};

const T0: i64 = 1_800_000_000_000;
const RECORDS: usize = 3000;

struct Fixture {
    app: axum::Router,
    metrics: Arc<Metrics>,
    /// The namespace folder on disk.
    folder: PathBuf,
    /// Its key in the storage (the backup's `key`).
    key: String,
    ts: i64,
    _dir: tempfile::TempDir,
    node: AerospikeNode,
}

/// A full backup of `RECORDS` records with `policy` (flow YAML body), several data files.
async fn backed_up(policy: &str) -> Fixture {
    let node = AerospikeNode::start().unwrap();
    seed(&node, RECORDS);
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        r#"
aerospike-clusters:
  c: {{seed-nodes: [{{host-name: 127.0.0.1, port: {port}}}]}}
storage:
  s: {{local-storage: {{path: "{path}"}}}}
backup-policies:
  p: {{parallel: 3, {policy}}}
backup-routines:
  r: {{interval-cron: "@daily", source-cluster: c, storage: s, backup-policy: p, namespaces: [test]}}
"#,
        port = node.port(),
        path = dir.path().display(),
    );
    let cfg = abs::config::parse::<Config>(&yaml, Format::Yaml).unwrap();
    let store = Arc::new(ConfigStore::in_memory(cfg));
    let clock = Arc::new(ManualClock::at_ms(T0));
    let ctx = Arc::new(EngineContext::new(plugins(), clock));
    let metrics = Arc::new(Metrics::new());
    let jobs = JobRegistry::with_context(store.clone(), Some(metrics.clone()), ctx);
    let mut state = AppState::new(store, metrics.clone());
    state.set_jobs(jobs.clone());
    let app = api::router(state);
    let (s, b) = call(&app, "POST", "/v1/backups/full/r", None).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{b}");
    let report = match jobs.wait("r", BackupKind::Full).await {
        Some(JobOutcome::Success(r)) => r,
        other => panic!("backup failed: {other:?}"),
    };
    let key = report.namespaces[0].key.clone().unwrap();
    Fixture {
        app,
        metrics,
        folder: dir.path().join(&key),
        key,
        ts: report.timestamp_ms,
        _dir: dir,
        node,
    }
}

impl Fixture {
    /// The `.asb` files of the folder, sorted by name.
    fn data_files(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = std::fs::read_dir(&self.folder)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "asb"))
            .collect();
        out.sort();
        out
    }

    fn checksums(&self) -> ChecksumsSidecar {
        serde_yaml::from_slice(&std::fs::read(self.folder.join(CHECKSUMS_FILE)).unwrap()).unwrap()
    }

    /// Runs a verify through the API to its end: the final status.
    async fn verify(&self) -> Value {
        verify_through(&self.app, "r", self.ts).await
    }

    /// The verify's problems as `file-name: problem` lines.
    async fn problems(&self) -> Vec<String> {
        let st = self.verify().await;
        assert_eq!(st["status"], "problems", "{st}");
        st["report"]["problems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let file = p["file"].as_str().unwrap();
                let name = file.rsplit('/').next().unwrap();
                format!("{name}: {}", p["problem"].as_str().unwrap())
            })
            .collect()
    }
}

/// Runs a verify of `routine`'s backup at `ts` through the API to its end: the final status.
async fn verify_through(app: &axum::Router, routine: &str, ts: i64) -> Value {
    let (s, id) = call(
        app,
        "POST",
        &format!("/v1/backups/verify/{routine}/{ts}"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{id}");
    let id = id.as_i64().expect("a bare job id");
    for _ in 0..1500 {
        let (s, st) = call(app, "GET", &format!("/v1/backups/verify/status/{id}"), None).await;
        assert_eq!(s, StatusCode::OK, "{st}");
        if st["status"] != "running" {
            return st;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("verify did not finish");
}

/// A restore of `key` through the API to its end: the final status.
async fn restore_through(app: &axum::Router, key: &str, policy: Value) -> Value {
    let body = serde_json::json!({
        "backup-data-path": key, "destination-name": "c", "source-name": "s", "policy": policy,
    });
    let (s, id) = call(app, "POST", "/v1/restore/full", Some(body)).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{id}");
    let id = id.as_i64().unwrap();
    loop {
        let (_, st) = call(app, "GET", &format!("/v1/restore/status/{id}"), None).await;
        if st["status"] != "running" {
            return st;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

fn name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

#[tokio::test]
async fn every_backup_lists_its_files_size_and_sha256_before_its_metadata() {
    let f = backed_up("compression: {mode: ZSTD, level: 3}").await;
    let sums = f.checksums();
    assert_eq!(sums.algorithm, "sha256");
    let files = f.data_files();
    assert!(files.len() >= 3, "one file per writer at least: {files:?}");
    let listed: Vec<&str> = sums.files.iter().map(|s| s.name.as_str()).collect();
    let on_disk: Vec<String> = files.iter().map(|p| name(p)).collect();
    assert_eq!(listed, on_disk);
    for (sum, path) in sums.files.iter().zip(&files) {
        let bytes = std::fs::read(path).unwrap();
        assert_eq!(sum.size, bytes.len() as u64, "{}", sum.name);
        assert_eq!(
            sum.sha256,
            hex::encode(sha2::Sha256::digest(&bytes)),
            "{}",
            sum.name
        );
    }
    // The listing's byte-count is the total the checksums cover.
    let (_, list) = call(&f.app, "GET", "/v1/backups/full/r", None).await;
    assert_eq!(list[0]["byte-count"], sums.total_bytes(), "{list}");
    // metadata.yaml is written last: it is the newest file of the folder.
    let newest = std::fs::read_dir(&f.folder)
        .unwrap()
        .flatten()
        .max_by_key(|e| e.metadata().unwrap().modified().unwrap())
        .unwrap();
    assert!(
        ["metadata.yaml", CHECKSUMS_FILE].contains(&name(&newest.path()).as_str()),
        "{:?}",
        newest.path()
    );
}

#[tokio::test]
async fn verify_reads_every_file_and_record_of_an_intact_backup() {
    let f = backed_up(&format!(
        "compression: {{mode: ZSTD, level: 3}}, encryption: {{mode: AES256, key-file: \"{}\"}}",
        key_pem().display()
    ))
    .await;
    let st = f.verify().await;
    assert_eq!(st["status"], "ok", "{st}");
    let r = &st["report"];
    assert_eq!(r["records"], RECORDS as u64, "{st}");
    assert_eq!(r["files"], f.data_files().len() as u64);
    assert_eq!(r["checksummed-files"], r["files"]);
    assert_eq!(r["problem-count"], 0);
    assert_eq!(st["percentage-done"], 100);
    assert_eq!(r["bytes"], f.checksums().total_bytes());
    let m = f.metrics.render();
    assert!(
        m.contains("aerospike_backup_service_verify_events_total{outcome=\"ok\"} 1"),
        "{m}"
    );
    // Unknown routine, unknown time, bad job id.
    let (s, _) = call(&f.app, "POST", "/v1/backups/verify/nope/1", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, b) = call(&f.app, "POST", "/v1/backups/verify/r/12345", None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(b["field"], "timestamp", "{b}");
    let (s, _) = call(&f.app, "GET", "/v1/backups/verify/status/42", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_flipped_byte_is_found_with_the_file_named() {
    let f = backed_up("").await;
    let files = f.data_files();
    let victim = files.last().unwrap();
    let mut bytes = std::fs::read(victim).unwrap();
    // A byte inside a record's text: the plain stream may still decode.
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    std::fs::write(victim, &bytes).unwrap();
    let problems = f.problems().await;
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with(&name(victim)) && p.contains("SHA-256 differs")),
        "{problems:?}"
    );
    let m = f.metrics.render();
    assert!(
        m.contains("aerospike_backup_service_verify_failure_total{routine=\"r\"} 1"),
        "{m}"
    );
}

#[tokio::test]
async fn a_truncated_file_is_found_with_its_size() {
    let f = backed_up("compression: {mode: ZSTD, level: 3}").await;
    let victim = f.data_files()[1].clone();
    let bytes = std::fs::read(&victim).unwrap();
    std::fs::write(&victim, &bytes[..bytes.len() / 2]).unwrap();
    let problems = f.problems().await;
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with(&name(&victim)) && p.contains("truncated")),
        "{problems:?}"
    );
}

#[tokio::test]
async fn a_deleted_file_is_missing_and_its_records_too() {
    let f = backed_up("").await;
    let victim = f.data_files()[1].clone();
    std::fs::remove_file(&victim).unwrap();
    let problems = f.problems().await;
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with(&name(&victim)) && p.contains("missing")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("metadata.yaml") && p.contains("records")),
        "{problems:?}"
    );
}

#[tokio::test]
async fn two_swapped_files_are_both_found() {
    let f = backed_up("").await;
    let files = f.data_files();
    let (a, b) = (&files[1], &files[2]);
    let (da, db) = (std::fs::read(a).unwrap(), std::fs::read(b).unwrap());
    std::fs::write(a, &db).unwrap();
    std::fs::write(b, &da).unwrap();
    let problems = f.problems().await;
    for v in [a, b] {
        assert!(
            problems.iter().any(|p| p.starts_with(&name(v))),
            "{} not named: {problems:?}",
            name(v)
        );
    }
}

#[tokio::test]
async fn a_damaged_encrypted_file_is_found_and_where_decoding_stopped() {
    let f = backed_up(&format!(
        "compression: {{mode: ZSTD, level: 3}}, encryption: {{mode: AES256, key-file: \"{}\"}}",
        key_pem().display()
    ))
    .await;
    let victim = f.data_files()[1].clone();
    let mut bytes = std::fs::read(&victim).unwrap();
    let at = bytes.len() / 3;
    for b in &mut bytes[at..at + 16] {
        *b ^= 0xA5;
    }
    std::fs::write(&victim, &bytes).unwrap();
    let st = f.verify().await;
    assert_eq!(st["status"], "problems", "{st}");
    let problems = st["report"]["problems"].as_array().unwrap();
    let mine: Vec<&Value> = problems
        .iter()
        .filter(|p| p["file"].as_str().unwrap().ends_with(&name(&victim)))
        .collect();
    assert!(
        mine.iter()
            .any(|p| p["problem"].as_str().unwrap().contains("SHA-256")),
        "{st}"
    );
    // The stream itself fails to decrypt-decompress-decode, with the stored offset.
    assert!(
        mine.iter().any(|p| p["offset"].is_u64()),
        "decoding did not stop at the damage: {st}"
    );
}

#[tokio::test]
async fn a_backup_without_checksums_is_decoded_only_and_says_so() {
    let f = backed_up("").await;
    std::fs::remove_file(f.folder.join(CHECKSUMS_FILE)).unwrap();
    let st = f.verify().await;
    assert_eq!(st["status"], "ok", "{st}");
    let r = &st["report"];
    assert_eq!(r["records"], RECORDS as u64);
    assert_eq!(r["checksummed-files"], 0);
    assert_eq!(r["decode-only"].as_array().unwrap().len(), 1, "{st}");
}

/// `aerospike-backup-service verify` on a storage descriptor, no service: 0 when intact
/// (the key's mode read from the metadata), 1 with the damaged file named, 2 without a key.
#[tokio::test]
async fn the_cli_verifies_a_backup_from_a_storage_descriptor() {
    let f = backed_up(&format!(
        "compression: {{mode: ZSTD, level: 3}}, encryption: {{mode: AES256, key-file: \"{}\"}}",
        key_pem().display()
    ))
    .await;
    let desc_dir = tempfile::tempdir().unwrap();
    let desc = desc_dir.path().join("storage.yml");
    std::fs::write(
        &desc,
        format!("local-storage: {{path: \"{}\"}}\n", f._dir.path().display()),
    )
    .unwrap();
    let run = |extra: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_aerospike-backup-service"))
            .arg("verify")
            .arg("--storage")
            .arg(&desc)
            .args(extra)
            .arg(&f.key)
            .env(
                "ABS_CACHE_DIR",
                PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli-cache"),
            )
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let key = key_pem().display().to_string();
    let (code, out, err) = run(&["--key-file", &key, "--json"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["records"], RECORDS as u64, "{out}");
    assert_eq!(report["checksummed-files"], report["files"]);

    let (code, out, err) = run(&[]);
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(err.contains("encrypted") && err.contains("key"), "{err}");

    let victim = f.data_files()[0].clone();
    let mut bytes = std::fs::read(&victim).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xFF;
    std::fs::write(&victim, &bytes).unwrap();
    let (code, out, err) = run(&["--key-file", &key]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        out.contains(&name(&victim)) && out.contains("PROBLEMS FOUND"),
        "{out}"
    );
}

/// A restore checks each file against `checksums.yaml` before writing any of its records:
/// a plain file with one changed byte (which would decode and restore a wrong value) is
/// refused with the file named, and nothing of it reaches the cluster.
#[tokio::test]
async fn a_restore_refuses_a_changed_file_before_writing_any_of_its_records() {
    let f = backed_up("").await;
    let victim = f.data_files()[0].clone();
    let mut bytes = std::fs::read(&victim).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    std::fs::write(&victim, &bytes).unwrap();
    crate::restore::wipe(&f.node);
    let st = restore_through(&f.app, &f.key, serde_json::json!({"parallel": 1})).await;
    assert_eq!(st["status"], "failure", "{st}");
    let error = st["error"].as_str().unwrap();
    assert!(
        error.contains(&name(&victim))
            && error.contains("SHA-256")
            && error.contains("not restored"),
        "{error}"
    );
    // The victim is the first data file and one reader reads files in order: nothing was
    // written.
    assert_eq!(f.node.record_count("test"), 0);

    // The file back as written, but its checksums.yaml entry wrong: with the check switched
    // off (`check-checksums: false`) the stored bytes are trusted and every record restored.
    bytes[at] ^= 0x01;
    std::fs::write(&victim, &bytes).unwrap();
    let sums_path = f.folder.join(CHECKSUMS_FILE);
    let sums = std::fs::read_to_string(&sums_path).unwrap();
    let right = f
        .checksums()
        .files
        .into_iter()
        .find(|s| s.name == name(&victim))
        .unwrap()
        .sha256;
    std::fs::write(&sums_path, sums.replace(&right, &"0".repeat(64))).unwrap();
    let st = restore_through(&f.app, &f.key, serde_json::json!({"parallel": 1})).await;
    assert_eq!(st["status"], "failure", "{st}");
    let st = restore_through(
        &f.app,
        &f.key,
        serde_json::json!({"parallel": 1, "check-checksums": false}),
    )
    .await;
    assert_eq!(st["status"], "success", "{st}");
    assert_eq!(f.node.record_count("test"), RECORDS);
    std::fs::write(&sums_path, sums).unwrap();
    crate::restore::wipe(&f.node);

    // The same backup undamaged restores every record (the check passes).
    let st = restore_through(&f.app, &f.key, serde_json::json!({})).await;
    assert_eq!(st["status"], "success", "{st}");
    assert_eq!(f.node.record_count("test"), RECORDS);
}

/// `verify-cron`: at each fire the routine's newest full backup is verified; `currentBackup`
/// shows the next fire and the result, and a bad expression is refused naming the field.
#[tokio::test]
async fn verify_cron_verifies_the_newest_full_backup_and_current_backup_shows_it() {
    use abs::scheduler::{ManualTimer, Scheduler};
    // 2027-01-15T02:00:00Z; the verify fires daily at 03:00.
    let start = 1_800_000_000_000 - 1_800_000_000_000 % 86_400_000 + 2 * 3_600_000;
    let node = AerospikeNode::start().unwrap();
    seed(&node, 500);
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        r#"
aerospike-clusters:
  c: {{seed-nodes: [{{host-name: 127.0.0.1, port: {port}}}]}}
storage:
  s: {{local-storage: {{path: "{path}"}}}}
backup-policies:
  p: {{parallel: 2}}
backup-routines:
  r: {{interval-cron: "@yearly", verify-cron: "0 0 3 * * ?", source-cluster: c, storage: s, backup-policy: p, namespaces: [test]}}
"#,
        port = node.port(),
        path = dir.path().display(),
    );
    let cfg = abs::config::parse::<Config>(&yaml, Format::Yaml).unwrap();
    abs::config::validate(&cfg).unwrap();
    let store = Arc::new(ConfigStore::in_memory(cfg));
    let timer = Arc::new(ManualTimer::at_ms(start));
    let ctx = Arc::new(EngineContext::new(plugins(), timer.clone()));
    let metrics = Arc::new(Metrics::new());
    let jobs = JobRegistry::with_context(store.clone(), Some(metrics.clone()), ctx);
    let sched = Scheduler::new(
        jobs.clone(),
        store.clone(),
        timer.clone(),
        Some(metrics.clone()),
    );
    let mut state = AppState::new(store, metrics.clone());
    state.set_scheduler(sched.clone());
    let app = api::router(state);
    sched.start().await.unwrap();

    let (_, st) = call(&app, "GET", "/v1/backups/currentBackup/r", None).await;
    assert_eq!(st["next-verify"], "2027-01-15T03:00:00Z", "{st}");
    assert!(st.get("last-verify").is_none(), "{st}");
    // A full backup, then the fire.
    let (s, _) = call(&app, "POST", "/v1/backups/full/r", None).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    assert!(matches!(
        jobs.wait("r", BackupKind::Full).await,
        Some(JobOutcome::Success(_))
    ));
    timer.set_ms(start + 3_600_000);
    let mut last = Value::Null;
    for _ in 0..1500 {
        let (_, st) = call(&app, "GET", "/v1/backups/currentBackup/r", None).await;
        last = st["last-verify"].clone();
        if last["status"] == "ok" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(last["status"], "ok", "{last}");
    assert_eq!(last["report"]["records"], 500, "{last}");
    let (_, st) = call(&app, "GET", "/v1/backups/currentBackup/r", None).await;
    assert_eq!(st["next-verify"], "2027-01-16T03:00:00Z", "{st}");

    // A bad expression is refused naming the field.
    let cfg =
        abs::config::parse::<Config>(&yaml.replace("0 0 3 * * ?", "0 0 25 * * ?"), Format::Yaml)
            .unwrap();
    let text = format!("{:?}", abs::config::validate(&cfg).unwrap_err());
    assert!(text.contains("backup-routines.r.verify-cron"), "{text}");
}

/// `copy-to`: each completed backup is copied whole to the other storages, byte for byte
/// (checked against `checksums.yaml`, read back), `currentBackup` shows each copy; a copy
/// that cannot be written is tried again, reported, and leaves the backup itself complete.
#[tokio::test]
async fn copy_to_copies_every_backup_and_a_failed_copy_leaves_the_backup_whole() {
    let node = AerospikeNode::start().unwrap();
    seed(&node, 800);
    let dir = tempfile::tempdir().unwrap();
    let (primary, copy) = (dir.path().join("primary"), dir.path().join("copy"));
    // A storage that cannot be written: its root is a file.
    let blocked = dir.path().join("blocked");
    std::fs::write(&blocked, b"not a directory").unwrap();
    let yaml = format!(
        r#"
aerospike-clusters:
  c: {{seed-nodes: [{{host-name: 127.0.0.1, port: {port}}}]}}
storage:
  s: {{local-storage: {{path: "{primary}"}}}}
  s2: {{local-storage: {{path: "{copy}"}}}}
  bad: {{local-storage: {{path: "{blocked}/x"}}}}
backup-policies:
  p: {{parallel: 2, compression: {{mode: ZSTD, level: 1}}}}
backup-routines:
  r: {{interval-cron: "@yearly", source-cluster: c, storage: s, backup-policy: p, namespaces: [test], copy-to: [s2, bad]}}
"#,
        port = node.port(),
        primary = primary.display(),
        copy = copy.display(),
        blocked = blocked.display(),
    );
    let cfg = abs::config::parse::<Config>(&yaml, Format::Yaml).unwrap();
    abs::config::validate(&cfg).unwrap();
    let store = Arc::new(ConfigStore::in_memory(cfg));
    let ctx = Arc::new(EngineContext::new(
        plugins(),
        Arc::new(ManualClock::at_ms(T0)),
    ));
    let metrics = Arc::new(Metrics::new());
    let jobs = JobRegistry::with_context(store.clone(), Some(metrics.clone()), ctx);
    let mut state = AppState::new(store, metrics.clone());
    state.set_jobs(jobs.clone());
    let app = api::router(state);
    let (s, _) = call(&app, "POST", "/v1/backups/full/r", None).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let report = match jobs.wait("r", BackupKind::Full).await {
        Some(JobOutcome::Success(r)) => r,
        other => panic!("backup failed: {other:?}"),
    };
    let key = report.namespaces[0].key.clone().unwrap();

    // The copy holds every file of the backup folder, identical.
    let folder = key.split("/data/").next().unwrap();
    let files = |root: &Path| -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        let mut stack = vec![root.join(folder)];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                if e.path().is_dir() {
                    stack.push(e.path());
                } else {
                    let rel = e.path().strip_prefix(root).unwrap().display().to_string();
                    out.push((rel, std::fs::read(e.path()).unwrap()));
                }
            }
        }
        out.sort();
        out
    };
    let original = files(&primary);
    assert!(original.iter().any(|(k, _)| k.ends_with(CHECKSUMS_FILE)));
    assert_eq!(files(&copy), original);

    let (_, st) = call(&app, "GET", "/v1/backups/currentBackup/r", None).await;
    let ok = &st["copies"]["s2"];
    assert_eq!(ok["outcome"], "success", "{st}");
    assert_eq!(ok["files"], original.len() as u64, "{st}");
    assert_eq!(ok["attempts"], 1);
    let bad = &st["copies"]["bad"];
    assert_eq!(bad["outcome"], "failure", "{st}");
    assert_eq!(bad["attempts"], 3, "{st}");
    assert!(
        bad["message"].as_str().unwrap().contains("storage bad"),
        "{st}"
    );
    // The backup itself is listed whole; the copy is listed with `?storage=`, and verifies
    // on its own.
    let (_, list) = call(&app, "GET", "/v1/backups/full/r", None).await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    let (s, copied) = call(&app, "GET", "/v1/backups/full/r?storage=s2", None).await;
    assert_eq!(s, StatusCode::OK, "{copied}");
    assert_eq!(copied[0]["key"], list[0]["key"], "{copied}");
    assert_eq!(copied[0]["record-count"], 800);
    let (s, all) = call(&app, "GET", "/v1/backups/full?storage=s2", None).await;
    assert_eq!(s, StatusCode::OK, "{all}");
    assert_eq!(all["r"].as_array().unwrap().len(), 1, "{all}");
    let (s, b) = call(&app, "GET", "/v1/backups/full/r?storage=elsewhere", None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert_eq!(b["field"], "storage");
    let m = metrics.render();
    for (storage, outcome) in [("s2", "success"), ("bad", "failure")] {
        let line = format!(
            "aerospike_backup_service_copy_events_total{{outcome=\"{outcome}\",routine=\"r\",storage=\"{storage}\"}} 1"
        );
        assert!(m.contains(&line), "{line} not in\n{m}");
    }
    let desc = dir.path().join("copy.yml");
    std::fs::write(
        &desc,
        format!("local-storage: {{path: \"{}\"}}\n", copy.display()),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_aerospike-backup-service"))
        .args(["verify", "--storage"])
        .arg(&desc)
        .arg(&key)
        .env(
            "ABS_CACHE_DIR",
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli-cache"),
        )
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // copy-to naming the routine's own storage, or an unknown one, is refused.
    for (bad_list, field) in [
        ("[s]", "copy-to[0]"),
        ("[s2, nope]", "copy-to[1]"),
        ("[s2, s2]", "copy-to[1]"),
    ] {
        let cfg = abs::config::parse::<Config>(
            &yaml.replace("copy-to: [s2, bad]", &format!("copy-to: {bad_list}")),
            Format::Yaml,
        )
        .unwrap();
        let text = format!("{:?}", abs::config::validate(&cfg).unwrap_err());
        assert!(
            text.contains(&format!("backup-routines.r.{field}")),
            "{bad_list}: {text}"
        );
    }
}

/// The corruption matrix on a cloud store (moto): a changed object and a deleted one are found
/// by verify with the object named, and a restore refuses the changed one.
#[tokio::test]
async fn on_s3_a_changed_or_deleted_object_is_found_and_a_restore_refuses_it() {
    use bytes::Bytes;
    let (moto, bucket) = crate::cloud::moto_with_bucket("verify");
    let node = AerospikeNode::start().unwrap();
    seed(&node, 1500);
    let storage_yaml = format!(
        "    s3-storage: {{bucket: {bucket}, s3-region: us-east-1, path: abs/rt, s3-endpoint-override: \"{}\", access-key-id: AKIDTEST, secret-access-key: test-secret-not-real}}",
        moto.endpoint()
    );
    // zstd + AES-256, two writers.
    let (store, jobs) = crate::cloud::cloud_jobs(&node, &storage_yaml);
    let report = match crate::cloud::run_full(&jobs).await {
        JobOutcome::Success(r) => r,
        other => panic!("backup failed: {other:?}"),
    };
    let key = report.namespaces[0].key.clone().unwrap();
    let mut state = AppState::new(store, Arc::new(Metrics::new()));
    state.set_jobs(jobs);
    let app = api::router(state);
    let st = verify_through(&app, "r", report.timestamp_ms).await;
    assert_eq!(st["status"], "ok", "{st}");
    assert_eq!(st["report"]["records"], 1500, "{st}");

    // Change one stored byte of a data object, in the bucket.
    let backend = crate::cloud::s3_backend(&moto, &bucket, "abs/rt");
    let listed = abs::storage::layout::list_keys(&backend, &format!("{key}/"))
        .await
        .unwrap();
    let data: Vec<&String> = listed.iter().filter(|k| k.ends_with(".asb")).collect();
    assert!(data.len() >= 2, "{listed:?}");
    let victim = data[data.len() - 1].clone();
    let mut bytes = abs::storage::layout::read_object(&backend, &victim, u64::MAX)
        .await
        .unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x10;
    let mut up = backend.begin_upload(&victim, None).await.unwrap();
    up.write_part(1, Bytes::from(bytes)).await.unwrap();
    up.finish().await.unwrap();
    let st = verify_through(&app, "r", report.timestamp_ms).await;
    assert_eq!(st["status"], "problems", "{st}");
    let problems = st["report"]["problems"].to_string();
    assert!(
        problems.contains(victim.as_str()) && problems.contains("SHA-256"),
        "{problems}"
    );
    let enc = serde_json::json!({"encryption": {"mode": "AES256", "key-file": key_pem()}});
    crate::restore::wipe(&node);
    let st = restore_through(&app, &key, enc).await;
    assert_eq!(st["status"], "failure", "{st}");
    let error = st["error"].as_str().unwrap();
    assert!(
        error.contains(victim.as_str()) && error.contains("not restored"),
        "{error}"
    );

    // Delete another data object.
    let gone = data[0].clone();
    backend.delete(&gone).await.unwrap();
    let st = verify_through(&app, "r", report.timestamp_ms).await;
    let problems = st["report"]["problems"].to_string();
    assert!(
        problems.contains(gone.as_str()) && problems.contains("missing"),
        "{problems}"
    );
}
