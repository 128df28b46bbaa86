//! The binary as an operator runs it: the README start command on the default config, the CLI
//! flags, and the Dockerfile's references (Docker itself cannot run here, DESIGN D15).
//!
//! Length: one test per command-line behaviour, each standing alone.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::repo;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_aerospike-backup-service");

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub(crate) fn get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

pub(crate) struct Service(pub(crate) Child);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn default_config_starts_without_aerospike() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // The shipped default config, on a free port so parallel runs don't collide.
    let default =
        std::fs::read_to_string(repo().join("config/aerospike-backup-service.yml")).unwrap();
    assert!(
        default.contains("port: 8080"),
        "the default listens on 8080"
    );
    let cfg = dir.path().join("abs.yml");
    std::fs::write(
        &cfg,
        default.replace("port: 8080", &format!("port: {port}")),
    )
    .unwrap();
    let child = Command::new(BIN)
        .arg("-c")
        .arg(&cfg)
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut svc = Service(child);
    let start = Instant::now();
    let health = loop {
        if let Some(r) = get(port, "/health") {
            break r;
        }
        if let Some(status) = svc.0.try_wait().unwrap() {
            let mut err = String::new();
            svc.0
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("service exited with {status}: {err}");
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no answer on /health"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        health.starts_with("HTTP/1.1 200") && health.ends_with("Ok"),
        "{health}"
    );
    let cfg_json = get(port, "/v1/config").unwrap();
    assert!(
        cfg_json.contains("\"local-storage\":{\"path\":\"./backups\"}"),
        "{cfg_json}"
    );
    // The probe of 127.0.0.1:3000 runs at start; /ready stays 200 either way.
    let ready = get(port, "/ready").unwrap();
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");
    // SIGTERM ends it cleanly.
    let pid = svc.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = svc.0.try_wait().unwrap() {
            assert!(status.success(), "exit status after SIGTERM: {status}");
            break;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut out = String::new();
    svc.0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(
        out.contains("Aerospike Backup Service is listening"),
        "{out}"
    );
    assert!(out.contains("Shutting down"), "{out}");
}

#[test]
fn cli_flags() {
    let out = Command::new(BIN).arg("--version").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));

    let out = Command::new(BIN).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--config is required"));

    let cfg = repo().join("config/aerospike-backup-service.yml");
    let out = Command::new(BIN)
        .arg("-c")
        .arg(&cfg)
        .arg("-r")
        .output()
        .unwrap();
    // With -r the file must be a storage descriptor, not a configuration.
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("expected one storage entry"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = Command::new(BIN)
        .arg("validate")
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yml");
    std::fs::write(&bad, "backup-routines:\n  r: {interval-cron: nope, source-cluster: c, storage: s, namespaces: []}\n").unwrap();
    let out = Command::new(BIN)
        .arg("validate")
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("backup-routines.r.source-cluster: unknown cluster \"c\""),
        "{err}"
    );
    assert!(err.contains("backup-routines.r.interval-cron"), "{err}");

    let out = Command::new(BIN).arg("-c").arg(&bad).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "an invalid config stops the start"
    );
}

/// What the Dockerfile refers to exists, so `docker build` has what it needs.
#[test]
fn dockerfile_matches_the_project() {
    let df = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    assert!(df.contains("cargo build --release --locked -p aerospike-backup-service"));
    assert!(df.contains("target/release/aerospike-backup-service"));
    for line in df
        .lines()
        .filter(|l| l.starts_with("COPY --chown") || l.starts_with("COPY config"))
    {
        let src = line.split_whitespace().rev().nth(1).unwrap();
        assert!(repo().join(src).exists(), "Dockerfile copies missing {src}");
    }
    assert!(df.contains("EXPOSE 8080"));
    // The image has no curl: the health check asks /health over bash's /dev/tcp.
    let health = df
        .lines()
        .skip_while(|l| !l.starts_with("HEALTHCHECK"))
        .take(2)
        .collect::<String>();
    assert!(
        health.contains("/dev/tcp/127.0.0.1/8080") && health.contains("GET /health"),
        "{health}"
    );
    let user_line = df
        .lines()
        .find(|l| l.starts_with("USER "))
        .expect("a USER line");
    assert_ne!(user_line.trim(), "USER root");
    // The toolchain of the build stage is the one the workspace requires.
    let ws = std::fs::read_to_string(repo().join("Cargo.toml")).unwrap();
    let msrv = ws.lines().find(|l| l.starts_with("rust-version")).unwrap();
    let msrv = msrv.split('"').nth(1).unwrap();
    assert!(
        df.contains(&format!("FROM rust:{msrv}")),
        "build stage should use rust {msrv}"
    );
}

/// README's two commands are the ones the project runs.
#[test]
fn readme_commands_are_true() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    assert!(readme.contains(
        "cargo run --release -p aerospike-backup-service -- -c config/aerospike-backup-service.yml"
    ));
    assert!(readme.contains("\nscripts/test\n"));
    let ci = std::fs::read_to_string(repo().join(".ci/run")).unwrap();
    assert!(
        ci.contains("scripts/test"),
        ".ci/run calls the README's test command"
    );
}

/// `plugin check` of a cloud storage plugin against a stand-in, secrets from the environment.
#[test]
fn plugin_check_runs_the_storage_suite_on_a_stand_in() {
    let moto = testkit::emulators::moto().expect("moto stand-in (installed by scripts/test)");
    moto.create_bucket("plugin-check-bucket").unwrap();
    let options = serde_json::json!({
        "bucket": "plugin-check-bucket", "s3-region": "us-east-1",
        "s3-endpoint-override": moto.endpoint(), "path": "checked",
    })
    .to_string();
    let wasm = repo().join("host/assets/plugins/storage-s3.wasm");
    let out = Command::new(BIN)
        .args(["plugin".as_ref(), "check".as_ref(), wasm.as_os_str()])
        .args(["--options", &options])
        .env(
            "ABS_CACHE_DIR",
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli-cache"),
        )
        .env("ABS_PLUGIN_SECRET_ACCESS_KEY_ID", "AKIDCHECK")
        .env("ABS_PLUGIN_SECRET_SECRET_ACCESS_KEY", "not-a-real-secret")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("9 passed, 0 failed"), "{stdout}");
    assert!(!stdout.contains("not-a-real-secret"), "{stdout}");
    // It says what it ran with, and leaves nothing in the bucket.
    assert!(
        stdout.contains("options: {") && stdout.contains("\"path\":\"checked\""),
        "{stdout}"
    );
    assert!(stdout.contains("cleanup:"), "{stdout}");
    let backend = crate::cloud::s3_backend(&moto, "plugin-check-bucket", "checked");
    let left = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(abs::storage::layout::list_keys(&backend, ""))
        .unwrap();
    assert_eq!(left, Vec::<String>::new(), "{stdout}");
}

/// `plugin check` of a local storage plugin on a folder of the author's: nothing is left in it.
#[test]
fn plugin_check_of_a_local_storage_leaves_its_folder_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("mine.txt"), b"the author's file").unwrap();
    let options = serde_json::json!({ "path": dir.path() }).to_string();
    let wasm = repo().join("host/assets/plugins/storage-local.wasm");
    let out = Command::new(BIN)
        .args(["plugin".as_ref(), "check".as_ref(), wasm.as_os_str()])
        .args(["--options", &options])
        .env(
            "ABS_CACHE_DIR",
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli-cache"),
        )
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut left: Vec<String> = Vec::new();
    let mut stack = vec![dir.path().to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let rel = e
                .path()
                .strip_prefix(dir.path())
                .unwrap()
                .display()
                .to_string();
            if e.path().is_dir() {
                stack.push(e.path());
            }
            left.push(rel);
        }
    }
    left.sort();
    // The plugin's own staging folder may stay (empty); nothing of the check does.
    left.retain(|p| p != ".abs-tmp");
    assert_eq!(left, ["mine.txt"], "{stdout}");
}

/// `plugin list` and `plugin check`, as a third-party author runs them.
#[test]
fn plugin_subcommands() {
    let assets = repo().join("host/assets/plugins");
    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli-cache");
    let run = |args: &[&std::ffi::OsStr]| {
        Command::new(BIN)
            .args(args)
            .env("ABS_CACHE_DIR", &cache)
            .env_remove("ABS_PLUGIN_DIR")
            .output()
            .unwrap()
    };
    let out = run(&["plugin".as_ref(), "list".as_ref()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list = String::from_utf8_lossy(&out.stdout);
    for name in ["compression-zstd", "encryption-aes", "storage-local"] {
        assert!(list.contains(name), "{list}");
    }

    let example = assets.join("examples/codec-lz4.wasm");
    let out = run(&["plugin".as_ref(), "check".as_ref(), example.as_os_str()]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains("codec-lz4"), "{report}");
    // Without --options it says which options it used and where they came from.
    assert!(
        report.contains(r#"options: {"block-size":1048576} (from the schema's defaults"#),
        "{report}"
    );

    // A codec that imports the filesystem breaks the contract: named failure, exit 1, and
    // the report on the same stream as a passing one.
    let bad = repo().join("host/tests/fixtures/fs-codec.wasm");
    let out = run(&["plugin".as_ref(), "check".as_ref(), bad.as_os_str()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("filesystem"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// A config with the lz4 example as a user plugin, pinned by `sha` at `path`, used by a policy
/// with `block-size` as its option.
fn lz4_config(dir: &Path, name: &str, path: &Path, sha: &str, block_size: u64) -> PathBuf {
    let port = free_port();
    let cfg = dir.join(format!("{name}.yml"));
    std::fs::write(
        &cfg,
        format!(
            r#"service: {{http: {{address: 127.0.0.1, port: {port}}}}}
plugins:
  codec-lz4: {{path: "{}", sha256: "{sha}"}}
aerospike-clusters:
  c: {{seed-nodes: [{{host-name: 127.0.0.1, port: 3000}}]}}
storage:
  s: {{local-storage: {{path: "{}"}}}}
backup-policies:
  p: {{pipeline: [{{plugin: codec-lz4, options: {{block-size: {block_size}}}}}]}}
backup-routines:
  r: {{interval-cron: "@daily", source-cluster: c, storage: s, backup-policy: p, namespaces: [test]}}
"#,
            path.display(),
            dir.join("backups").display()
        ),
    )
    .unwrap();
    cfg
}

#[test]
fn a_wrong_pin_a_missing_plugin_or_a_refused_option_is_an_error_for_validate_and_start() {
    let dir = tempfile::tempdir().unwrap();
    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli-cache");
    let lz4 = repo().join("host/assets/plugins/examples/codec-lz4.wasm");
    let sha = abs::plugins::registry::sha256_hex(&std::fs::read(&lz4).unwrap());
    let wrong = "0".repeat(64);
    let run = |args: &[&std::ffi::OsStr]| {
        Command::new(BIN)
            .args(args)
            .env("ABS_CACHE_DIR", &cache)
            .env_remove("ABS_PLUGIN_DIR")
            .output()
            .unwrap()
    };
    let validate = |cfg: &Path| run(&["validate".as_ref(), cfg.as_os_str()]);

    let good = lz4_config(dir.path(), "good", &lz4, &sha, 65536);
    let out = validate(&good);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let missing = dir.path().join("gone.wasm");
    for (cfg, field) in [
        (
            lz4_config(dir.path(), "pin", &lz4, &wrong, 65536),
            "plugins.codec-lz4.sha256",
        ),
        (
            lz4_config(dir.path(), "gone", &missing, &sha, 65536),
            "plugins.codec-lz4.path",
        ),
        // Below the plugin's schema minimum (4096).
        (
            lz4_config(dir.path(), "option", &lz4, &sha, 100),
            "backup-policies.p.pipeline[0]",
        ),
    ] {
        let out = validate(&cfg);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{field}: {err}");
        assert!(err.contains(field), "{field}: {err}");
        assert!(!err.contains("warning:"), "an error, not a warning: {err}");
        assert!(!String::from_utf8_lossy(&out.stdout).contains("valid"));

        // The service refuses to start on it: it exits with the same error, never listens.
        let port = free_port();
        let text = std::fs::read_to_string(&cfg).unwrap();
        let cfg_port = dir.path().join("start.yml");
        std::fs::write(
            &cfg_port,
            text.lines()
                .map(|l| {
                    if l.starts_with("service:") {
                        format!("service: {{http: {{address: 127.0.0.1, port: {port}}}}}")
                    } else {
                        l.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join("\n"),
        )
        .unwrap();
        let mut child = Command::new(BIN)
            .args(["-c".as_ref(), cfg_port.as_os_str()])
            .env("ABS_CACHE_DIR", &cache)
            .env_remove("ABS_PLUGIN_DIR")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            assert!(
                Instant::now() < deadline && get(port, "/health").is_none(),
                "{field}: the service started on a refused config"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        assert_eq!(status.code(), Some(1), "{field}: {err}");
        assert!(err.contains(field), "{field}: {err}");
    }
}

pub(crate) fn post_json(port: u16, path: &str, body: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// Starts the service with `-r -c descriptor` on `port` and waits for `/health`.
fn start_remote(descriptor: &Path, port: u16, envs: &[(&str, &str)]) -> Service {
    start_with(
        &["-r".as_ref(), "-c".as_ref(), descriptor.as_os_str()],
        port,
        envs,
        None,
    )
}

/// Starts the service with `args` on `port` and waits for `/health`.
/// The service's log (stdout) goes to `log` when given.
fn start_with(
    args: &[&std::ffi::OsStr],
    port: u16,
    envs: &[(&str, &str)],
    log: Option<&Path>,
) -> Service {
    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli-cache");
    let mut cmd = Command::new(BIN);
    let stdout = log.map_or_else(Stdio::null, |p| std::fs::File::create(p).unwrap().into());
    cmd.args(args)
        .env("ABS_CACHE_DIR", &cache)
        .env_remove("ABS_PLUGIN_DIR")
        .stdout(stdout)
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut svc = Service(cmd.spawn().unwrap());
    let start = Instant::now();
    while get(port, "/health").is_none() {
        if let Some(status) = svc.0.try_wait().unwrap() {
            let mut err = String::new();
            svc.0
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("service exited with {status}: {err}");
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no answer on /health"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    svc
}

fn remote_config_text(port: u16, backups: &Path) -> String {
    format!(
        r#"service: {{http: {{address: 127.0.0.1, port: {port}}}}}
aerospike-clusters:
  c: {{seed-nodes: [{{host-name: 127.0.0.1, port: 3000}}]}}
storage:
  s: {{local-storage: {{path: "{}"}}}}
backup-policies:
  p: {{parallel: 1}}
backup-routines:
  r: {{interval-cron: "@daily", source-cluster: c, storage: s, backup-policy: p, namespaces: [test]}}
"#,
        backups.display()
    )
}

/// `-r` with a local-storage descriptor: the configuration comes from the file it names, and
/// an API change is saved back to that file.
#[test]
fn remote_config_on_local_storage_loads_and_saves_back() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let conf = dir.path().join("remote/abs.yml");
    std::fs::create_dir_all(conf.parent().unwrap()).unwrap();
    std::fs::write(&conf, remote_config_text(port, &dir.path().join("backups"))).unwrap();
    let descriptor = dir.path().join("descriptor.yml");
    std::fs::write(
        &descriptor,
        format!("local-storage:\n  path: \"{}\"\n", conf.display()),
    )
    .unwrap();
    let _svc = start_remote(&descriptor, port, &[]);
    let cfg = get(port, "/v1/config").unwrap();
    assert!(cfg.contains("\"r\""), "{cfg}");
    let created = post_json(port, "/v1/config/policies/added", r#"{"parallel": 3}"#).unwrap();
    assert!(created.starts_with("HTTP/1.1 201"), "{created}");
    let saved = std::fs::read_to_string(&conf).unwrap();
    assert!(
        saved.contains("added"),
        "saved back to the remote file: {saved}"
    );
    assert!(
        !std::fs::read_to_string(&descriptor)
            .unwrap()
            .contains("added")
    );
}

/// `-r` with an s3-storage descriptor against moto: read from the bucket, saved back to it.
#[test]
fn remote_config_on_s3_loads_and_saves_back() {
    let moto =
        testkit::emulators::moto().expect("the moto stand-in must be installed (scripts/test)");
    let (status, _) = moto.request("PUT", "/remote-cfg", b"").unwrap();
    assert_eq!(status, 200, "create bucket");
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let text = remote_config_text(port, &dir.path().join("backups"));
    let (status, _) = moto
        .request("PUT", "/remote-cfg/abs/prod/abs.yml", text.as_bytes())
        .unwrap();
    assert_eq!(status, 200, "put the config object");
    let descriptor = dir.path().join("descriptor.yml");
    std::fs::write(
        &descriptor,
        format!(
            "s3-storage:\n  bucket: remote-cfg\n  s3-region: us-east-1\n  path: abs/prod/abs.yml\n  s3-endpoint-override: \"{}\"\n",
            moto.endpoint()
        ),
    )
    .unwrap();
    let _svc = start_remote(
        &descriptor,
        port,
        &[
            ("AWS_ACCESS_KEY_ID", "AKIDTEST"),
            ("AWS_SECRET_ACCESS_KEY", "test-secret-not-real"),
        ],
    );
    let cfg = get(port, "/v1/config").unwrap();
    assert!(cfg.contains("\"r\""), "{cfg}");
    let created = post_json(port, "/v1/config/policies/added", r#"{"parallel": 3}"#).unwrap();
    assert!(created.starts_with("HTTP/1.1 201"), "{created}");
    let (status, body) = moto
        .request("GET", "/remote-cfg/abs/prod/abs.yml", b"")
        .unwrap();
    assert_eq!(status, 200);
    let saved = String::from_utf8_lossy(&body);
    assert!(saved.contains("added"), "saved back to the bucket: {saved}");
}

/// ABS 3.5+: each configured storage is checked once at start-up; one that cannot be reached
/// is logged by name and the service runs on.
#[test]
fn an_unreachable_storage_is_logged_by_name_at_start_and_the_service_runs() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let closed = free_port();
    let cfg = dir.path().join("abs.yml");
    std::fs::write(
        &cfg,
        format!(
            r#"service: {{http: {{address: 127.0.0.1, port: {port}}}}}
storage:
  cold-bucket: {{s3-storage: {{bucket: b, s3-region: us-east-1, s3-endpoint-override: "http://127.0.0.1:{closed}", access-key-id: AKIDTEST, secret-access-key: test-secret-not-real}}}}
  here: {{local-storage: {{path: "{}"}}}}
"#,
            dir.path().join("backups").display()
        ),
    )
    .unwrap();
    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli-cache");
    let log = dir.path().join("out.log");
    let child = Command::new(BIN)
        .args(["-c".as_ref(), cfg.as_os_str()])
        .env("ABS_CACHE_DIR", &cache)
        .env_remove("ABS_PLUGIN_DIR")
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _svc = Service(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    let text = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("Storage is not reachable") || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let line = text
        .lines()
        .find(|l| l.contains("Storage is not reachable"))
        .unwrap_or_else(|| panic!("no storage warning: {text}"));
    assert!(line.contains("cold-bucket"), "{line}");
    assert!(!line.contains("test-secret-not-real"), "{line}");
    assert!(
        !text
            .lines()
            .any(|l| l.contains("not reachable") && l.contains("here")),
        "{text}"
    );
    assert!(get(port, "/health").is_some_and(|h| h.starts_with("HTTP/1.1 200")));
}

/// Serves `doc` at any path over plain HTTP (a config server), counting GETs.
fn config_server(
    doc: std::sync::Arc<std::sync::Mutex<String>>,
) -> (u16, std::sync::Arc<std::sync::atomic::AtomicU32>) {
    use std::io::{BufRead, BufReader};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let gets = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let g = gets.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                line.clear();
            }
            g.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let body = doc.lock().unwrap().clone();
            let mut out = conn;
            let _ = write!(
                out,
                "HTTP/1.1 200 OK\r\nContent-Type: application/yaml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (port, gets)
}

/// `-c http://...` (ABS): the configuration is fetched from the URL; it is read-only, so API
/// changes get 409 naming why, and `apply` fetches it again. The URL's query (a presigned
/// signature, say) never reaches the log.
#[test]
fn config_from_a_url_is_read_only_and_apply_fetches_it_again() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let doc = std::sync::Arc::new(std::sync::Mutex::new(remote_config_text(
        port,
        &dir.path().join("backups"),
    )));
    let (cfg_port, gets) = config_server(doc.clone());
    let url =
        format!("http://127.0.0.1:{cfg_port}/abs/config.yml?X-Amz-Signature=sig-not-for-logs");
    let log = dir.path().join("service.log");
    let mut svc = start_with(&["-c".as_ref(), url.as_ref()], port, &[], Some(&log));
    assert_eq!(gets.load(std::sync::atomic::Ordering::SeqCst), 1);
    let cfg = get(port, "/v1/config").unwrap();
    assert!(cfg.contains("\"r\""), "{cfg}");

    let refused = post_json(port, "/v1/config/policies/added", r#"{"parallel": 3}"#).unwrap();
    assert!(refused.starts_with("HTTP/1.1 409"), "{refused}");
    assert!(refused.contains("read-only"), "{refused}");
    assert!(!refused.contains("sig-not-for-logs"), "{refused}");
    assert!(!get(port, "/v1/config/policies").unwrap().contains("added"));

    // Changed at its source, then applied: the new policy is live.
    let doc_text = doc.lock().unwrap().clone();
    *doc.lock().unwrap() = doc_text.replace(
        "  p: {parallel: 1}",
        "  p: {parallel: 1}\n  q: {parallel: 2}",
    );
    let applied = post_json(port, "/v1/config/apply", "").unwrap();
    assert!(applied.starts_with("HTTP/1.1 200"), "{applied}");
    assert!(get(port, "/v1/config/policies").unwrap().contains("\"q\""));

    let _ = svc.0.kill();
    let _ = svc.0.wait();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains(&format!("127.0.0.1:{cfg_port}/abs/config.yml")),
        "{text}"
    );
    assert!(!text.contains("sig-not-for-logs"), "{text}");
}

/// Issue #17: a `-r` configuration whose `plugins:` pin does not match the plugin file is
/// refused like a local one: the service exits 1 naming the field and never listens.
#[test]
fn remote_config_with_a_wrong_plugin_pin_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let lz4 = repo().join("host/assets/plugins/examples/codec-lz4.wasm");
    let wrong = "0".repeat(64);
    assert_ne!(
        abs::plugins::registry::sha256_hex(&std::fs::read(&lz4).unwrap()),
        wrong
    );
    // The same file a local start refuses, stored where the descriptor points.
    let local = lz4_config(dir.path(), "pinned", &lz4, &wrong, 65536);
    let text = std::fs::read_to_string(&local).unwrap();
    let port = text
        .split("port: ")
        .nth(1)
        .and_then(|t| t.split('}').next())
        .and_then(|p| p.parse::<u16>().ok())
        .expect("the config names its port");
    let conf = dir.path().join("remote/abs.yml");
    std::fs::create_dir_all(conf.parent().unwrap()).unwrap();
    std::fs::write(&conf, &text).unwrap();
    let descriptor = dir.path().join("descriptor.yml");
    std::fs::write(
        &descriptor,
        format!("local-storage:\n  path: \"{}\"\n", conf.display()),
    )
    .unwrap();
    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli-cache");
    let mut child = Command::new(BIN)
        .args(["-r".as_ref(), "-c".as_ref(), descriptor.as_os_str()])
        .env("ABS_CACHE_DIR", &cache)
        .env_remove("ABS_PLUGIN_DIR")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline || get(port, "/health").is_some() {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the service started (or hung) on a remote config with a wrong pin");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("plugins.codec-lz4.sha256"), "{err}");
    // The file itself is left as it was.
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), text);
}

/// `plugin new codec|storage NAME` writes a standalone crate (its own workspace, the SDK from where
/// it was told, nothing of this repository), refuses bad names and non-empty directories.
/// Building it for wasm and checking it is `scripts/plugin-template-check` (CI).
#[test]
fn plugin_new_writes_a_standalone_codec_crate() {
    let dir = tempfile::tempdir().unwrap();
    let sdk = dir.path().join("sdk");
    let run = |args: &[&str]| {
        Command::new(BIN)
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let out = run(&["plugin", "new", "codec", "codec-xor", "--sdk-path", "sdk"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("target/wasm32-wasip2/release/codec_xor.wasm"),
        "{stdout}"
    );
    let krate = dir.path().join("codec-xor");
    let manifest = std::fs::read_to_string(krate.join("Cargo.toml")).unwrap();
    assert!(manifest.contains("name = \"codec-xor\""), "{manifest}");
    assert!(
        manifest.contains("\n[workspace]\n"),
        "its own workspace: {manifest}"
    );
    // The SDK path is made absolute, so the crate builds from anywhere.
    let sdk_line = format!("path = \"{}\"", sdk.display());
    assert!(manifest.contains(&sdk_line), "{manifest}");
    assert!(!manifest.contains("workspace = true") && !manifest.contains("../"));
    let lib = std::fs::read_to_string(krate.join("src/lib.rs")).unwrap();
    assert!(lib.contains("pub struct CodecXor;"), "{lib}");
    assert!(lib.contains("const NAME: &'static str = \"codec-xor\";"));
    assert!(!lib.contains("{{"), "placeholders left: {lib}");
    assert!(krate.join(".gitignore").is_file());
    let first = manifest;

    // Without --sdk-path: the service's git repository.
    let out = run(&["plugin", "new", "codec", "other", "--dir", "o"]);
    assert!(out.status.success());
    let manifest = std::fs::read_to_string(dir.path().join("o/Cargo.toml")).unwrap();
    assert!(
        manifest.contains(&format!("git = \"{}\"", env!("CARGO_PKG_REPOSITORY"))),
        "{manifest}"
    );

    // A non-empty directory is never overwritten.
    let out = run(&["plugin", "new", "codec", "codec-xor"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not empty"));
    assert_eq!(
        std::fs::read_to_string(krate.join("Cargo.toml")).unwrap(),
        first
    );
    for bad in ["Codec_Xor", "x-", "9x", "std", "a--b"] {
        let out = run(&["plugin", "new", "codec", bad]);
        assert_eq!(out.status.code(), Some(1), "{bad}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("plugin name"),
            "{bad}"
        );
        assert!(!dir.path().join(bad).exists(), "{bad}");
    }
    let out = run(&["plugin", "new", "archive", "a"]);
    assert_eq!(out.status.code(), Some(2), "codec or storage");

    let out = run(&[
        "plugin",
        "new",
        "storage",
        "store-demo",
        "--sdk-path",
        "sdk",
    ]);
    assert!(out.status.success());
    let store = dir.path().join("store-demo");
    let manifest = std::fs::read_to_string(store.join("Cargo.toml")).unwrap();
    assert!(manifest.contains(r#"features = ["storage"]"#), "{manifest}");
    let lib = std::fs::read_to_string(store.join("src/lib.rs")).unwrap();
    assert!(lib.contains("export_plugin!(storage: StoreDemo);"), "{lib}");
}

/// A panicking codec under `plugin check`: named by its registry name, the panic message and
/// source line shown, the wasm backtrace once.
#[test]
fn plugin_check_of_a_panicking_codec_says_what_and_where_once() {
    let wasm = repo().join("host/tests/fixtures/bad-codec.wasm");
    let out = Command::new(BIN)
        .args(["plugin".as_ref(), "check".as_ref(), wasm.as_os_str()])
        .args(["--options", r#"{"mode":"trap"}"#])
        .env(
            "ABS_CACHE_DIR",
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli-cache"),
        )
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("panicked: bad-codec was told to trap (at "),
        "{stdout}"
    );
    assert_eq!(stdout.matches("wasm backtrace:").count(), 1, "{stdout}");
    assert!(!stdout.contains("plugin `bad_codec`"), "{stdout}");
}

/// A `plugins:` key that differs from the name the component gives itself works (jobs use the
/// key) and `plugin list` says so, so an author who renamed one of them sees which is used.
#[test]
fn plugin_list_notes_a_key_that_differs_from_the_components_own_name() {
    let dir = tempfile::tempdir().unwrap();
    let lz4 = repo().join("host/assets/plugins/examples/codec-lz4.wasm");
    let sha = abs::plugins::registry::sha256_hex(&std::fs::read(&lz4).unwrap());
    let cfg = lz4_config(dir.path(), "renamed", &lz4, &sha, 65536);
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("codec-lz4:", "my-lz4:")
        .replace("plugin: codec-lz4", "plugin: my-lz4");
    std::fs::write(&cfg, text).unwrap();
    let out = Command::new(BIN)
        .arg("-c")
        .arg(&cfg)
        .args(["plugin", "list"])
        .env(
            "ABS_CACHE_DIR",
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli-cache"),
        )
        .env_remove("ABS_PLUGIN_DIR")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout
            .contains("the component calls itself `codec-lz4`; jobs use the plugins: key `my-lz4`"),
        "{stdout}"
    );
    // The defaults, whose names are their own, carry no such note.
    assert_eq!(stdout.matches("calls itself").count(), 1, "{stdout}");
}
