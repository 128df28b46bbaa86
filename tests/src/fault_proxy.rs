//! An HTTP/1.1 proxy that sits between a storage plugin and a real stand-in (moto, Azurite,
//! fake-gcs-server) and breaks chosen requests: it answers them with an error status, or cuts
//! the connection halfway through the request body. Everything else is forwarded untouched,
//! so the plugin, the host's retry layer and the stand-in are all the real thing.
//!
//! One request per connection: the proxy asks the stand-in for `Connection: close` and closes
//! its client side after each answer, so it never has to frame a response.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// What to do with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward it.
    Pass,
    /// Answer this status (e.g. 503) without forwarding.
    Status(u16),
    /// Read half the body (or just the head), then drop the connection.
    Reset,
}

/// The request line and headers a rule sees.
#[derive(Debug, Clone)]
pub struct RequestHead {
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    /// The headers, names lowercased, in order.
    pub headers: Vec<(String, String)>,
}

impl RequestHead {
    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

type Rule = dyn Fn(&RequestHead, u64) -> Fault + Send + Sync;

/// A running proxy; stops accepting when dropped.
pub struct FaultProxy {
    port: u16,
    stop: Arc<AtomicBool>,
    seen: Arc<AtomicU64>,
    faults: Arc<AtomicU64>,
}

impl std::fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultProxy")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl FaultProxy {
    /// Starts a proxy on a free port of 127.0.0.1 in front of `upstream_port`. `rule` gets
    /// each request's head and how many requests came before it.
    ///
    /// # Errors
    /// When no port can be bound.
    pub fn start(
        upstream_port: u16,
        rule: impl Fn(&RequestHead, u64) -> Fault + Send + Sync + 'static,
    ) -> io::Result<FaultProxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(AtomicU64::new(0));
        let faults = Arc::new(AtomicU64::new(0));
        let rule: Arc<Rule> = Arc::new(rule);
        let (s, n, f) = (stop.clone(), seen.clone(), faults.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let (rule, n, f) = (rule.clone(), n.clone(), f.clone());
                        std::thread::spawn(move || {
                            let _ = serve(conn, upstream_port, &*rule, &n, &f);
                        });
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(_) => return,
                }
            }
        });
        Ok(FaultProxy {
            port,
            stop,
            seen,
            faults,
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Requests received so far.
    pub fn requests(&self) -> u64 {
        self.seen.load(Ordering::SeqCst)
    }

    /// Requests broken so far (a status answered or a connection cut).
    pub fn faults(&self) -> u64 {
        self.faults.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve(
    conn: TcpStream,
    upstream_port: u16,
    rule: &Rule,
    seen: &AtomicU64,
    faults: &AtomicU64,
) -> io::Result<()> {
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut client = conn;
    // The head, line by line, with the Connection header replaced.
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(());
    }
    let mut parts = line.split_whitespace();
    let mut head = RequestHead {
        method: parts.next().unwrap_or_default().to_string(),
        target: parts.next().unwrap_or_default().to_string(),
        headers: Vec::new(),
    };
    let mut out = line.clone().into_bytes();
    let mut length: Option<usize> = None;
    let mut chunked = false;
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        if line == "\r\n" || line == "\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some((name, value)) = line.split_once(':') {
            head.headers
                .push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().ok();
        }
        if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
            chunked = true;
        }
        if !lower.starts_with("connection:") {
            out.extend_from_slice(line.as_bytes());
        }
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    let n = seen.fetch_add(1, Ordering::SeqCst);
    let fault = rule(&head, n);
    if fault == Fault::Reset {
        faults.fetch_add(1, Ordering::SeqCst);
        // Take some of the body so the client is mid-upload, then cut.
        let mut half = vec![0u8; length.unwrap_or(0) / 2];
        let _ = reader.read_exact(&mut half);
        let _ = client.shutdown(Shutdown::Both);
        return Ok(());
    }
    let body = read_body(&mut reader, length, chunked)?;
    if let Fault::Status(code) = fault {
        faults.fetch_add(1, Ordering::SeqCst);
        let text = format!("injected {code}");
        write!(
            client,
            "HTTP/1.1 {code} Injected\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
            text.len()
        )?;
        return client.shutdown(Shutdown::Both);
    }
    let mut upstream = TcpStream::connect(("127.0.0.1", upstream_port))?;
    upstream.write_all(&out)?;
    upstream.write_all(&body)?;
    let mut answer = Vec::new();
    upstream.read_to_end(&mut answer)?;
    client.write_all(&answer)?;
    client.shutdown(Shutdown::Both)
}

/// The request body as the client framed it, re-framed with its content (chunked bodies
/// are forwarded chunked, as they came).
fn read_body(
    reader: &mut BufReader<TcpStream>,
    length: Option<usize>,
    chunked: bool,
) -> io::Result<Vec<u8>> {
    if !chunked {
        let mut body = vec![0u8; length.unwrap_or(0)];
        reader.read_exact(&mut body)?;
        return Ok(body);
    }
    let mut body = Vec::new();
    loop {
        let mut size_line = String::new();
        reader.read_line(&mut size_line)?;
        body.extend_from_slice(size_line.as_bytes());
        let size = usize::from_str_radix(size_line.trim().split(';').next().unwrap_or("0"), 16)
            .map_err(|e| io::Error::other(format!("chunk size: {e}")))?;
        if size == 0 {
            // Trailers, up to the empty line.
            loop {
                let mut t = String::new();
                reader.read_line(&mut t)?;
                body.extend_from_slice(t.as_bytes());
                if t == "\r\n" || t.is_empty() {
                    return Ok(body);
                }
            }
        }
        let mut chunk = vec![0u8; size + 2];
        reader.read_exact(&mut chunk)?;
        body.extend_from_slice(&chunk);
    }
}
