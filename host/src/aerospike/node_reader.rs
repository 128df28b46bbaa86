//! A small reader of partition-scan replies straight off a node's socket (issue #12).
//!
//! The `aerospike` crate decodes every record it scans into a `Value` tree, dropping the list
//! and map order flags the server keeps in its msgpack particles, and it does not make its
//! node connections public. So the backup scan stream alone is read here: this module opens
//! its own connections to the nodes the crate discovered (address and credentials from the
//! crate's `Node`), logs in like the client does, sends the same partition-scan request the
//! client sends (`AS_MSG` with info1 READ, info3 PARTITION_DONE; fields namespace, set, socket
//! timeout, task id, filter expression, partition ids, resume digests), and hands each record
//! over as borrowed wire fields and raw bin particles. Cluster discovery, tending, the
//! partition map, info commands and everything else stay with the crate.
//!
//! Wire layout (proto v2): an 8-byte header `version | type | 48-bit size`; type 3 frames hold
//! any number of 22-byte message headers, each followed by its fields (`u32 len | u8 type |
//! data`) and ops (`u32 len | op | particle type | version | name len | name | data`); type 4
//! frames are one zlib-compressed type 3 frame after an 8-byte uncompressed size.
//!
//! With TLS, connections are wrapped with the client's own rustls config and verify the
//! node's TLS name as the crate does (the host's `tls_name`, else the cluster name).

use std::io::Read as _;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use aerospike::{AuthMode, ClientPolicy, Node};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

pub use crate::asb::raw::{RawBin, RawBins, RawRecord};

/// Proto version 2, as every current server speaks it.
const PROTO_VERSION: u8 = 2;
const TYPE_ADMIN: u8 = 2;
const TYPE_MSG: u8 = 3;
const TYPE_COMPRESSED: u8 = 4;
/// Size of the `AS_MSG` header after the proto header.
const MSG_HEADER: usize = 22;
/// Largest reply frame accepted: servers send scan replies in frames of about 128 KiB, and
/// a single record is at most 8 MiB; anything far beyond is a broken stream.
const MAX_FRAME: usize = 128 << 20;

const INFO1_READ: u8 = 1;
const INFO1_NOBINDATA: u8 = 1 << 5;
const INFO1_COMPRESS_RESPONSE: u8 = 1 << 7;
const INFO3_LAST: u8 = 1;
const INFO3_PARTITION_DONE: u8 = 1 << 2;

const FIELD_NAMESPACE: u8 = 0;
const FIELD_SET: u8 = 1;
const FIELD_KEY: u8 = 2;
const FIELD_DIGEST: u8 = 4;
const FIELD_TASK_ID: u8 = 7;
const FIELD_SOCKET_TIMEOUT: u8 = 9;
const FIELD_PID_ARRAY: u8 = 11;
const FIELD_DIGEST_ARRAY: u8 = 12;
const FIELD_FILTER_EXP: u8 = 43;
const OP_READ: u8 = 1;

const RC_KEY_NOT_FOUND: u8 = 2;
const RC_PARTITION_UNAVAILABLE: u8 = 11;
const RC_FILTERED_OUT: u8 = 27;
const RC_SECURITY_NOT_ENABLED: u8 = 52;

// Admin (login) protocol.
const ADMIN_LOGIN: u8 = 20;
const ADMIN_USER: u8 = 0;
const ADMIN_CREDENTIAL: u8 = 3;
const ADMIN_CLEAR_PASSWORD: u8 = 4;
const ADMIN_HEADER: usize = 16;
/// The salt and cost every Aerospike client hashes passwords with (`$2a$10$` +
/// `7EqJtq98hPqEX7fNZaFWoO`), so the server compares hashes, never clear text.
const PASSWORD_SALT: [u8; 16] = [
    244, 107, 11, 190, 207, 254, 141, 27, 6, 103, 216, 79, 109, 193, 216, 169,
];
const PASSWORD_HASH_COST: u32 = 10;

/// Why a node stream failed. Messages never hold credentials.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("node {node}: {source}")]
    Io {
        node: String,
        #[source]
        source: std::io::Error,
    },
    #[error("node {node}: no reply within {timeout_ms} ms")]
    Timeout { node: String, timeout_ms: u64 },
    #[error("node {node}: malformed reply: {what}")]
    Malformed { node: String, what: String },
    #[error("node {node}: server error {code}{}", server_reason(*code))]
    Server { node: String, code: u8 },
    #[error("node {node}: login refused (result code {code}{})", login_reason(*code))]
    Login { node: String, code: u8 },
    #[error("node {node}: TLS handshake with {tls_name}: {source}")]
    Tls {
        node: String,
        tls_name: String,
        #[source]
        source: std::io::Error,
    },
}

/// Result code 4: the server cannot parse the request (a bad filter expression, say).
pub const RC_PARAMETER: u8 = 4;

/// The server's name of a scan result code worth naming, for the error text.
fn server_reason(code: u8) -> &'static str {
    match code {
        RC_PARAMETER => " (parameter error)",
        _ => "",
    }
}

/// The server's name of a login result code, for the error text.
fn login_reason(code: u8) -> &'static str {
    match code {
        60 => ": invalid user",
        62 => ": invalid password",
        65 => ": invalid credential",
        80 => ": not authenticated",
        _ => "",
    }
}

/// How our connections authenticate, from the client policy.
#[derive(Clone)]
pub enum Credentials {
    None,
    /// User and bcrypt hash of the password (internal users).
    Internal {
        user: String,
        hash: String,
    },
    /// External (LDAP) users send the clear password as well.
    External {
        user: String,
        hash: String,
        password: String,
    },
    /// PKI: the server takes the user from the TLS client certificate; the login carries
    /// no field.
    Pki,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a hash or a password.
        match self {
            Credentials::None => f.write_str("Credentials::None"),
            Credentials::Internal { user, .. } => write!(f, "Credentials::Internal({user})"),
            Credentials::External { user, .. } => write!(f, "Credentials::External({user})"),
            Credentials::Pki => f.write_str("Credentials::Pki"),
        }
    }
}

impl Credentials {
    /// The credentials of the crate's client policy; hashing takes ~0.1 s (bcrypt), so do it
    /// once per worker, not per connection.
    ///
    /// # Errors
    /// A failed hash.
    pub fn from_policy(policy: &ClientPolicy) -> Result<Credentials, String> {
        let hash = |password: &str| {
            bcrypt::hash_with_salt(password, PASSWORD_HASH_COST, PASSWORD_SALT)
                .map(|h| h.format_for_version(bcrypt::Version::TwoA))
                .map_err(|e| format!("cannot hash the password: {e}"))
        };
        Ok(match &policy.auth_mode {
            AuthMode::None => Credentials::None,
            AuthMode::Internal(user, password) => Credentials::Internal {
                user: user.clone(),
                hash: hash(password)?,
            },
            AuthMode::External(user, password) | AuthMode::ExternalInsecure(user, password) => {
                Credentials::External {
                    user: user.clone(),
                    hash: hash(password)?,
                    password: password.clone(),
                }
            }
            AuthMode::Pki => Credentials::Pki,
        })
    }
}

/// What one scan request asks a node for.
#[derive(Debug, Clone, Default)]
pub struct ScanRequest<'a> {
    pub namespace: &'a str,
    /// "" = every set.
    pub set: &'a str,
    /// `None` = all bins.
    pub bins: Option<&'a [String]>,
    /// Packed filter expression.
    pub filter: Option<&'a [u8]>,
    pub socket_timeout_ms: u32,
    pub task_id: u64,
    /// Partitions scanned from their start.
    pub partitions: &'a [u16],
    /// Partitions resumed after the given digest.
    pub resume: &'a [[u8; 20]],
    pub compress: bool,
}

impl ScanRequest<'_> {
    /// The request as one proto frame.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            64 + self.partitions.len() * 2
                + self.resume.len() * 20
                + self.filter.map_or(0, <[u8]>::len),
        );
        out.extend_from_slice(&[0; 8]);
        let mut info1 = INFO1_READ;
        if self.bins.is_some_and(<[String]>::is_empty) {
            info1 |= INFO1_NOBINDATA;
        }
        if self.compress {
            info1 |= INFO1_COMPRESS_RESPONSE;
        }
        let ops = self.bins.map_or(0, <[String]>::len);
        let mut fields: u16 = 3; // namespace, socket timeout, task id
        fields += u16::from(!self.set.is_empty())
            + u16::from(self.filter.is_some())
            + u16::from(!self.partitions.is_empty())
            + u16::from(!self.resume.is_empty());
        out.extend_from_slice(&[MSG_HEADER as u8, info1, 0, INFO3_PARTITION_DONE, 0, 0]);
        out.extend_from_slice(&0u32.to_be_bytes()); // generation
        out.extend_from_slice(&0u32.to_be_bytes()); // record ttl
        out.extend_from_slice(&self.socket_timeout_ms.to_be_bytes());
        out.extend_from_slice(&fields.to_be_bytes());
        out.extend_from_slice(&(ops as u16).to_be_bytes());
        put_field(&mut out, FIELD_NAMESPACE, &[self.namespace.as_bytes()]);
        if !self.set.is_empty() {
            put_field(&mut out, FIELD_SET, &[self.set.as_bytes()]);
        }
        put_field(
            &mut out,
            FIELD_SOCKET_TIMEOUT,
            &[&self.socket_timeout_ms.to_be_bytes()],
        );
        put_field(&mut out, FIELD_TASK_ID, &[&self.task_id.to_be_bytes()]);
        if let Some(f) = self.filter {
            put_field(&mut out, FIELD_FILTER_EXP, &[f]);
        }
        if !self.partitions.is_empty() {
            // Partition ids go little-endian, unlike everything else.
            let ids: Vec<u8> = self
                .partitions
                .iter()
                .flat_map(|p| p.to_le_bytes())
                .collect();
            put_field(&mut out, FIELD_PID_ARRAY, &[&ids]);
        }
        if !self.resume.is_empty() {
            let digests: Vec<&[u8]> = self.resume.iter().map(|d| d.as_slice()).collect();
            put_field(&mut out, FIELD_DIGEST_ARRAY, &digests);
        }
        for name in self.bins.unwrap_or(&[]) {
            let name = name.as_bytes();
            out.extend_from_slice(&(4 + name.len() as u32).to_be_bytes());
            out.extend_from_slice(&[OP_READ, 0, 0, name.len() as u8]);
            out.extend_from_slice(name);
        }
        patch_proto(&mut out, TYPE_MSG);
        out
    }
}

fn put_field(out: &mut Vec<u8>, ty: u8, parts: &[&[u8]]) {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    out.extend_from_slice(&(len as u32 + 1).to_be_bytes());
    out.push(ty);
    for p in parts {
        out.extend_from_slice(p);
    }
}

fn patch_proto(out: &mut [u8], msg_type: u8) {
    let size = (out.len() - 8) as u64;
    let v = (u64::from(PROTO_VERSION) << 56) | (u64::from(msg_type) << 48) | size;
    out[..8].copy_from_slice(&v.to_be_bytes());
}

/// One message of a scan reply.
#[derive(Debug)]
pub enum Message<'a> {
    Record(RawRecord<'a>),
    /// The node finished (`ok`) or could not serve (`!ok`: retry elsewhere) a partition.
    PartitionDone {
        partition: u16,
        ok: bool,
    },
    /// A record the node skipped (not found, filtered out).
    Skipped,
    /// The end of the stream.
    Last,
}

/// Parses the message at `*pos` of a type 3 frame body and moves `pos` past it.
///
/// # Errors
/// A truncated message (the text names what), or a server error code.
pub fn next_message<'a>(frame: &'a [u8], pos: &mut usize) -> Result<Message<'a>, String> {
    let b = frame
        .get(*pos..)
        .filter(|b| b.len() >= MSG_HEADER)
        .ok_or("message header cut short")?;
    let info3 = b[3];
    let result = b[5];
    let be32 = |at: usize| u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
    let generation = be32(6);
    let void_time = be32(10);
    let n_fields = u16::from_be_bytes([b[18], b[19]]);
    let n_ops = u16::from_be_bytes([b[20], b[21]]);
    let mut at = usize::from(b[0]).max(MSG_HEADER);
    let mut rec = RawRecord {
        namespace: &[],
        set: None,
        digest: [0; 20],
        key: None,
        generation,
        void_time,
        n_ops,
        ops: &[],
    };
    let mut has_digest = false;
    for _ in 0..n_fields {
        let len = b
            .get(at..at + 4)
            .map(|l| u32::from_be_bytes([l[0], l[1], l[2], l[3]]) as usize)
            .filter(|l| *l >= 1)
            .ok_or("field header cut short")?;
        let field = b.get(at + 4..at + 4 + len).ok_or("field cut short")?;
        let data = &field[1..];
        match field[0] {
            FIELD_NAMESPACE => rec.namespace = data,
            FIELD_SET => rec.set = Some(data).filter(|s| !s.is_empty()),
            FIELD_DIGEST => {
                rec.digest = data.try_into().map_err(|_| "digest is not 20 bytes")?;
                has_digest = true;
            }
            FIELD_KEY => {
                let (&t, v) = data.split_first().ok_or("empty key field")?;
                rec.key = Some((t, v));
            }
            _ => {}
        }
        at += 4 + len;
    }
    let ops_start = at;
    for _ in 0..n_ops {
        let len = b
            .get(at..at + 4)
            .map(|l| u32::from_be_bytes([l[0], l[1], l[2], l[3]]) as usize)
            .filter(|l| *l >= 4)
            .ok_or("bin header cut short")?;
        let name_len = usize::from(*b.get(at + 7).ok_or("bin header cut short")?);
        if name_len > len - 4 || b.len() < at + 4 + len {
            return Err("bin cut short".into());
        }
        at += 4 + len;
    }
    rec.ops = &b[ops_start..at];
    *pos += at;
    if info3 & INFO3_LAST != 0 {
        return match result {
            0 | RC_KEY_NOT_FOUND => Ok(Message::Last),
            code => Err(format!("server error {code}")),
        };
    }
    if info3 & INFO3_PARTITION_DONE != 0 {
        return Ok(Message::PartitionDone {
            partition: generation as u16,
            ok: result == 0,
        });
    }
    match result {
        0 if has_digest => Ok(Message::Record(rec)),
        0 => Err("record without a digest".into()),
        RC_KEY_NOT_FOUND | RC_FILTERED_OUT => Ok(Message::Skipped),
        RC_PARTITION_UNAVAILABLE => Ok(Message::Skipped),
        code => Err(format!("server error {code}")),
    }
}

/// Whether a [`next_message`] error text is a server result code (not a broken stream).
pub fn server_code(message: &str) -> Option<u8> {
    message.strip_prefix("server error ")?.parse().ok()
}

/// How to wrap a node connection in TLS: the client's config and the name to verify.
#[derive(Clone)]
pub struct TlsTarget {
    pub config: Arc<rustls::ClientConfig>,
    pub tls_name: String,
}

impl std::fmt::Debug for TlsTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TlsTarget({})", self.tls_name)
    }
}

impl TlsTarget {
    /// The TLS target of a node the crate discovered, as the crate connects to it: the
    /// policy's TLS config and the host's TLS name (else the cluster name, else the host).
    pub fn of_node(node: &Node) -> Option<TlsTarget> {
        let policy = node.client_policy();
        let tls = policy.tls_policy.as_ref()?;
        let host = node.host();
        let tls_name = host
            .tls_name
            .clone()
            .filter(|n| !n.is_empty())
            .or_else(|| policy.cluster_name.clone())
            .unwrap_or(host.name);
        Some(TlsTarget {
            config: tls.config.clone(),
            tls_name,
        })
    }
}

/// A node connection, in clear or TLS.
#[derive(Debug)]
enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// One connection to a node, owned by one scan worker.
#[derive(Debug)]
pub struct NodeConn {
    node: String,
    stream: Stream,
    /// Body of the last frame read (type 3, or the inflated type 4).
    frame: Vec<u8>,
    compressed: Vec<u8>,
    timeout: Option<Duration>,
}

impl NodeConn {
    /// Connects to `address` (`host:port`), over TLS when `tls` says so, and logs in when
    /// `credentials` say so.
    ///
    /// # Errors
    /// Connection failures and timeouts, a failed TLS handshake, a refused login.
    pub async fn open(
        node: &str,
        address: &str,
        connect_timeout: Duration,
        socket_timeout: Option<Duration>,
        credentials: &Credentials,
        tls: Option<&TlsTarget>,
    ) -> Result<NodeConn, ReadError> {
        let io = |source| ReadError::Io {
            node: node.to_string(),
            source,
        };
        let stream = tokio::time::timeout(connect_timeout, TcpStream::connect(address))
            .await
            .map_err(|_| ReadError::Timeout {
                node: node.to_string(),
                timeout_ms: connect_timeout.as_millis() as u64,
            })?
            .map_err(io)?;
        stream.set_nodelay(true).map_err(io)?;
        let stream = match tls {
            None => Stream::Plain(stream),
            Some(t) => {
                let tls_err = |source| ReadError::Tls {
                    node: node.to_string(),
                    tls_name: t.tls_name.clone(),
                    source,
                };
                let name = ServerName::try_from(t.tls_name.clone())
                    .map_err(|e| tls_err(std::io::Error::other(e)))?;
                let connector = tokio_rustls::TlsConnector::from(t.config.clone());
                let handshake = connector.connect(name, stream);
                let tls = tokio::time::timeout(connect_timeout, handshake)
                    .await
                    .map_err(|_| ReadError::Timeout {
                        node: node.to_string(),
                        timeout_ms: connect_timeout.as_millis() as u64,
                    })?
                    .map_err(tls_err)?;
                Stream::Tls(Box::new(tls))
            }
        };
        let mut conn = NodeConn {
            node: node.to_string(),
            stream,
            frame: Vec::with_capacity(256 * 1024),
            compressed: Vec::new(),
            timeout: socket_timeout,
        };
        conn.login(credentials, connect_timeout).await?;
        Ok(conn)
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    async fn login(
        &mut self,
        credentials: &Credentials,
        timeout: Duration,
    ) -> Result<(), ReadError> {
        let fields: Vec<(u8, &[u8])> = match credentials {
            Credentials::None => return Ok(()),
            Credentials::Internal { user, hash } => {
                vec![
                    (ADMIN_USER, user.as_bytes()),
                    (ADMIN_CREDENTIAL, hash.as_bytes()),
                ]
            }
            Credentials::External {
                user,
                hash,
                password,
            } => vec![
                (ADMIN_USER, user.as_bytes()),
                (ADMIN_CREDENTIAL, hash.as_bytes()),
                (ADMIN_CLEAR_PASSWORD, password.as_bytes()),
            ],
            Credentials::Pki => Vec::new(),
        };
        let mut out = vec![0u8; 8];
        out.extend_from_slice(&[0, 0, ADMIN_LOGIN, fields.len() as u8]);
        out.extend_from_slice(&[0; ADMIN_HEADER - 4]);
        for (id, data) in &fields {
            put_field(&mut out, *id, &[data]);
        }
        patch_proto(&mut out, TYPE_ADMIN);
        let saved = self.timeout.replace(timeout);
        let result = async {
            self.write(&out).await?;
            let (_, size) = self.read_header().await?;
            let mut body = vec![0u8; size];
            self.read_exact(&mut body).await?;
            Ok::<_, ReadError>(body)
        }
        .await;
        self.timeout = saved;
        let body = result?;
        match body.get(1).copied() {
            Some(0 | RC_SECURITY_NOT_ENABLED) => Ok(()),
            Some(code) => Err(ReadError::Login {
                node: self.node.clone(),
                code,
            }),
            None => Err(self.malformed("login reply cut short")),
        }
    }

    /// Sends a request frame.
    ///
    /// # Errors
    /// Socket failures and timeouts.
    pub async fn write(&mut self, frame: &[u8]) -> Result<(), ReadError> {
        let node = &self.node;
        let stream = &mut self.stream;
        // The flush sends what TLS buffered; a no-op on plain TCP.
        let fut = async move {
            stream.write_all(frame).await?;
            stream.flush().await
        };
        with_timeout(node, self.timeout, fut).await
    }

    /// Reads the next reply frame and returns its message bytes (inflated if compressed).
    ///
    /// # Errors
    /// Socket failures and timeouts, an unexpected frame type or size.
    pub async fn read_frame(&mut self) -> Result<&[u8], ReadError> {
        let (ty, size) = self.read_header().await?;
        match ty {
            TYPE_MSG => {
                let mut frame = std::mem::take(&mut self.frame);
                frame.resize(size, 0);
                let r = self.read_exact(&mut frame).await;
                self.frame = frame;
                r?;
            }
            TYPE_COMPRESSED => {
                let mut z = std::mem::take(&mut self.compressed);
                z.resize(size, 0);
                let r = self.read_exact(&mut z).await;
                self.compressed = z;
                r?;
                self.inflate()?;
            }
            other => return Err(self.malformed(&format!("unexpected frame type {other}"))),
        }
        Ok(&self.frame)
    }

    fn inflate(&mut self) -> Result<(), ReadError> {
        let z = &self.compressed;
        let Some(size) = z
            .get(..8)
            .map(|s| u64::from_be_bytes(s.try_into().unwrap_or_default()))
        else {
            return Err(self.malformed("compressed frame cut short"));
        };
        self.frame.clear();
        self.frame.reserve((size as usize).min(MAX_FRAME));
        let inflated = flate2::read::ZlibDecoder::new(&z[8..]).read_to_end(&mut self.frame);
        if inflated.is_err() || self.frame.len() < 8 || self.frame[1] != TYPE_MSG {
            return Err(self.malformed("compressed frame does not inflate to a message frame"));
        }
        self.frame.drain(..8);
        Ok(())
    }

    async fn read_header(&mut self) -> Result<(u8, usize), ReadError> {
        let mut hdr = [0u8; 8];
        self.read_exact(&mut hdr).await?;
        let v = u64::from_be_bytes(hdr);
        let size = (v & 0xFFFF_FFFF_FFFF) as usize;
        if hdr[0] != PROTO_VERSION || size > MAX_FRAME {
            return Err(self.malformed(&format!("proto header {hdr:02x?}")));
        }
        Ok((hdr[1], size))
    }

    async fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), ReadError> {
        let node = &self.node;
        let fut = self.stream.read_exact(buf);
        with_timeout(node, self.timeout, async { fut.await.map(|_| ()) }).await
    }

    fn malformed(&self, what: &str) -> ReadError {
        ReadError::Malformed {
            node: self.node.clone(),
            what: what.to_string(),
        }
    }
}

async fn with_timeout<F>(node: &str, timeout: Option<Duration>, fut: F) -> Result<(), ReadError>
where
    F: std::future::Future<Output = std::io::Result<()>>,
{
    let io = |source| ReadError::Io {
        node: node.to_string(),
        source,
    };
    match timeout {
        Some(t) => tokio::time::timeout(t, fut)
            .await
            .map_err(|_| ReadError::Timeout {
                node: node.to_string(),
                timeout_ms: t.as_millis() as u64,
            })?
            .map_err(io),
        None => fut.await.map_err(io),
    }
}

#[cfg(test)]
#[path = "node_reader_tests.rs"]
mod tests;
