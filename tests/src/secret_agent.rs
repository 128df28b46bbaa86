//! A Secret Agent test double: speaks the Aerospike Secret Agent's protocol (8-byte header with
//! the magic `0x51dec1cc` and a big-endian body length, a JSON request
//! `{"Resource", "SecretKey"}`, a JSON answer with `SecretValue` or `Error`) over TCP, TLS or a
//! unix socket, from a table that tests can change while it runs (rotation).
//!
//! It answers one request per connection, as the real agent's clients use it, and records
//! which references were asked for, so tests can tell that a job asked at the time they expect.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

/// First word of every message of the protocol.
pub const MAGIC: u32 = 0x51de_c1cc;
/// Requests larger than this are refused (a request is two short names).
const MAX_REQUEST_BYTES: u32 = 64 * 1024;

/// How the double answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Answers from the table.
    Normal,
    /// Accepts the connection and never answers (client timeouts).
    Silent,
    /// Answers with the wrong magic.
    BadMagic,
}

#[derive(Debug, Default)]
struct State {
    /// (resource, key) → value as stored (encoded by the double when base64 is on).
    secrets: HashMap<(String, String), Vec<u8>>,
    asked: Vec<(String, String)>,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    base64: bool,
    mode: Mutex<Mode>,
    stop: AtomicBool,
}

/// A running double; stops when dropped.
#[derive(Debug)]
pub struct SecretAgentDouble {
    shared: Arc<Shared>,
    addr: Option<SocketAddr>,
    socket: Option<PathBuf>,
}

/// Where and how the double listens.
#[derive(Debug, Clone, Default)]
pub struct DoubleConfig {
    /// Serve on this unix socket instead of TCP.
    pub unix_socket: Option<PathBuf>,
    /// Serve TLS with this certificate chain and key (PEM files).
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Send values base64-encoded (the agent's `is-base64` deployments).
    pub base64: bool,
}

impl SecretAgentDouble {
    /// A plain TCP double on a free loopback port.
    pub fn start() -> io::Result<Self> {
        Self::start_with(DoubleConfig::default())
    }

    pub fn start_with(config: DoubleConfig) -> io::Result<Self> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            base64: config.base64,
            mode: Mutex::new(Mode::Normal),
            stop: AtomicBool::new(false),
        });
        let tls = match &config.tls {
            Some((cert, key)) => Some(server_config(cert, key)?),
            None => None,
        };
        if let Some(path) = &config.unix_socket {
            let _ = std::fs::remove_file(path);
            let listener = UnixListener::bind(path)?;
            listener.set_nonblocking(true)?;
            let s = shared.clone();
            std::thread::spawn(move || {
                accept_loop(&s, || {
                    listener.accept().map(|(c, _)| Box::new(c) as Box<dyn Conn>)
                })
            });
            return Ok(SecretAgentDouble {
                shared,
                addr: None,
                socket: Some(path.clone()),
            });
        }
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let s = shared.clone();
        std::thread::spawn(move || {
            accept_loop(&s, || {
                let (c, _) = listener.accept()?;
                Ok(match &tls {
                    None => Box::new(c) as Box<dyn Conn>,
                    Some(cfg) => {
                        c.set_nonblocking(false)?;
                        let conn =
                            rustls::ServerConnection::new(cfg.clone()).map_err(io::Error::other)?;
                        Box::new(rustls::StreamOwned::new(conn, c)) as Box<dyn Conn>
                    }
                })
            })
        });
        Ok(SecretAgentDouble {
            shared,
            addr: Some(addr),
            socket: None,
        })
    }

    /// TCP address (None for a unix-socket double).
    pub fn addr(&self) -> Option<SocketAddr> {
        self.addr
    }
    pub fn port(&self) -> u16 {
        self.addr.map_or(0, |a| a.port())
    }
    pub fn socket_path(&self) -> Option<&Path> {
        self.socket.as_deref()
    }

    /// Sets (or rotates) a secret; `resource` may be empty.
    pub fn set(&self, resource: &str, key: &str, value: &[u8]) {
        let stored = if self.shared.base64 {
            B64.encode(value).into_bytes()
        } else {
            value.to_vec()
        };
        lock(&self.shared.state)
            .secrets
            .insert((resource.into(), key.into()), stored);
    }

    pub fn remove(&self, resource: &str, key: &str) {
        lock(&self.shared.state)
            .secrets
            .remove(&(resource.to_string(), key.to_string()));
    }

    pub fn set_mode(&self, mode: Mode) {
        *lock(&self.shared.mode) = mode;
    }

    /// The (resource, key) pairs asked for so far, in order.
    pub fn asked(&self) -> Vec<(String, String)> {
        lock(&self.shared.state).asked.clone()
    }
}

impl Drop for SecretAgentDouble {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(p) = &self.socket {
            let _ = std::fs::remove_file(p);
        }
    }
}

trait Conn: Read + Write + Send {}
impl<T: Read + Write + Send> Conn for T {}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Polls a non-blocking listener so the thread notices `stop`; each connection gets a thread.
fn accept_loop(shared: &Arc<Shared>, mut accept: impl FnMut() -> io::Result<Box<dyn Conn>>) {
    while !shared.stop.load(Ordering::Relaxed) {
        match accept() {
            Ok(conn) => {
                let s = shared.clone();
                std::thread::spawn(move || {
                    let _ = serve(&s, conn);
                });
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

fn serve(shared: &Shared, mut conn: Box<dyn Conn>) -> io::Result<()> {
    let mut header = [0u8; 8];
    conn.read_exact(&mut header)?;
    let magic = u32::from_be_bytes(header[..4].try_into().unwrap());
    let len = u32::from_be_bytes(header[4..].try_into().unwrap());
    if magic != MAGIC || len > MAX_REQUEST_BYTES {
        return Err(io::Error::other("not a secret agent request"));
    }
    let mut body = vec![0u8; len as usize];
    conn.read_exact(&mut body)?;
    let mode = *lock(&shared.mode);
    if mode == Mode::Silent {
        std::thread::sleep(Duration::from_secs(30));
        return Ok(());
    }
    let answer = answer(shared, &body);
    let magic = if mode == Mode::BadMagic {
        0x1234_5678
    } else {
        MAGIC
    };
    let mut out = Vec::with_capacity(8 + answer.len());
    out.extend_from_slice(&magic.to_be_bytes());
    out.extend_from_slice(&(answer.len() as u32).to_be_bytes());
    out.extend_from_slice(&answer);
    conn.write_all(&out)?;
    conn.flush()
}

/// The JSON answer for one request body.
fn answer(shared: &Shared, body: &[u8]) -> Vec<u8> {
    let error = |m: &str| {
        let mut e = b"{\"Error\":".to_vec();
        e.extend_from_slice(json_string(m.as_bytes()).as_bytes());
        e.push(b'}');
        e
    };
    let text = String::from_utf8_lossy(body);
    let (Some(resource), Some(key)) = (
        json_field(&text, "Resource"),
        json_field(&text, "SecretKey"),
    ) else {
        return error("malformed request");
    };
    let mut state = lock(&shared.state);
    state.asked.push((resource.clone(), key.clone()));
    match state.secrets.get(&(resource, key.clone())) {
        Some(value) => {
            let mut a = b"{\"SecretValue\":".to_vec();
            a.extend_from_slice(json_string(value).as_bytes());
            a.push(b'}');
            a
        }
        None => error(&format!("secret {key} not found")),
    }
}

/// The string value of `"name": "..."` in a flat JSON object (enough for two plain fields).
fn json_field(text: &str, name: &str) -> Option<String> {
    let at = text.find(&format!("\"{name}\""))? + name.len() + 2;
    let rest = text[at..].trim_start().strip_prefix(':')?.trim_start();
    let rest = rest.strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => out.push(chars.next()?),
            c => out.push(c),
        }
    }
    None
}

/// A JSON string literal of `bytes` (lossy for invalid UTF-8; test values are text).
fn json_string(bytes: &[u8]) -> String {
    let mut out = String::from("\"");
    for c in String::from_utf8_lossy(bytes).chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn server_config(cert: &Path, key: &Path) -> io::Result<Arc<rustls::ServerConfig>> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(io::Error::other)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(io::Error::other)?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(io::Error::other)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(io::Error::other)?;
    Ok(Arc::new(config))
}

/// A blocking client of the protocol, for testing the double itself.
pub fn ask_tcp(addr: SocketAddr, resource: &str, key: &str) -> io::Result<String> {
    let mut s = TcpStream::connect(addr)?;
    ask(&mut s, resource, key)
}

pub fn ask_unix(path: &Path, resource: &str, key: &str) -> io::Result<String> {
    let mut s = UnixStream::connect(path)?;
    ask(&mut s, resource, key)
}

fn ask(s: &mut (impl Read + Write), resource: &str, key: &str) -> io::Result<String> {
    let body = format!(
        "{{\"Resource\":{},\"SecretKey\":{}}}",
        json_string(resource.as_bytes()),
        json_string(key.as_bytes())
    );
    s.write_all(&MAGIC.to_be_bytes())?;
    s.write_all(&(body.len() as u32).to_be_bytes())?;
    s.write_all(body.as_bytes())?;
    let mut header = [0u8; 8];
    s.read_exact(&mut header)?;
    let len = u32::from_be_bytes(header[4..].try_into().unwrap()) as usize;
    let mut answer = vec![0u8; len.min(1 << 20)];
    s.read_exact(&mut answer)?;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_rotates_and_records_over_tcp_and_unix() {
        let tcp = SecretAgentDouble::start().unwrap();
        tcp.set("db", "password", b"one");
        let a = ask_tcp(tcp.addr().unwrap(), "db", "password").unwrap();
        assert_eq!(a, r#"{"SecretValue":"one"}"#);
        tcp.set("db", "password", b"two");
        let a = ask_tcp(tcp.addr().unwrap(), "db", "password").unwrap();
        assert_eq!(a, r#"{"SecretValue":"two"}"#);
        let a = ask_tcp(tcp.addr().unwrap(), "db", "nope").unwrap();
        assert!(a.contains("\"Error\""), "{a}");
        assert_eq!(tcp.asked().len(), 3);

        let dir = tempfile_dir();
        let path = dir.join("agent.sock");
        let unix = SecretAgentDouble::start_with(DoubleConfig {
            unix_socket: Some(path.clone()),
            base64: true,
            ..DoubleConfig::default()
        })
        .unwrap();
        unix.set("", "token", b"t0ken");
        let a = ask_unix(&path, "", "token").unwrap();
        assert_eq!(a, format!(r#"{{"SecretValue":"{}"}}"#, B64.encode("t0ken")));
    }

    fn tempfile_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("sa-double-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
