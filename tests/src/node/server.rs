//! Network side of a node: accept loop, framing, and the AS_MSG, batch, scan and admin
//! command handlers.
//!
//! Length: the command handlers share the connection state and the reply writer; the
//! record store and the info answers live in their own modules.

use std::io;
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use super::exec::{self, Request};
use super::exp::{self, Ctx, Exp};
use super::store::{self, Digest, PARTITIONS};
use super::tls::Stream;
use super::wire::{
    self, BATCH_MSG_GEN, BATCH_MSG_INFO, BATCH_MSG_INFO4, BATCH_MSG_REPEAT, BATCH_MSG_TTL, Cur,
    Msg, Op, ReplyHeader, rc,
};
use super::{NodeShared, info};

/// Reply frames are flushed at about this size, so big scans stream.
const CHUNK: usize = 128 * 1024;
/// Largest request accepted (the clients' own limit is 120 MiB).
const MAX_REQUEST: u64 = 128 << 20;

const UDF_UNSUPPORTED: &[u8] = b"UDF execution is not supported by the test node";

const ADMIN_AUTHENTICATE: u8 = 0;
const ADMIN_LOGIN: u8 = 20;
const ADMIN_USER: u8 = 0;
const ADMIN_CREDENTIAL: u8 = 3;
const ADMIN_CLEAR_PASSWORD: u8 = 4;
const ADMIN_SESSION_TOKEN: u8 = 5;
const ADMIN_SESSION_TTL: u8 = 6;
const SECURITY_NOT_ENABLED: u8 = 52;

/// The bcrypt hash every client sends for a password (fixed salt, cost 10).
pub fn hash_password(password: &str) -> io::Result<String> {
    const SALT: [u8; 16] = [
        244, 107, 11, 190, 207, 254, 141, 27, 6, 103, 216, 79, 109, 193, 216, 169,
    ];
    bcrypt::hash_with_salt(password, 10, SALT)
        .map(|h| h.format_for_version(bcrypt::Version::TwoA))
        .map_err(io::Error::other)
}

/// Runs one node until `shutdown` flips; called on the node's own thread. With `tls`, every
/// accepted connection must complete a TLS handshake first (a failed one is counted and
/// closed, as a server does).
pub fn run(
    node: Arc<NodeShared>,
    listener: std::net::TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("aerospike-test-node-worker")
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("aerospike-test-node: cannot start runtime: {e}");
            return;
        }
    };
    rt.block_on(async move {
        let listener = match TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("aerospike-test-node: cannot listen: {e}");
                return;
            }
        };
        let acceptor = tls.map(TlsAcceptor::from);
        loop {
            tokio::select! {
                _ = shutdown.changed() => break,
                accepted = listener.accept() => {
                    let Ok((sock, _)) = accepted else { continue };
                    let _ = sock.set_nodelay(true);
                    let node = node.clone();
                    let mut stop = shutdown.clone();
                    let acceptor = acceptor.clone();
                    tokio::spawn(async move {
                        node.connections.fetch_add(1, Ordering::Relaxed);
                        tokio::select! {
                            _ = stop.changed() => {}
                            _ = accept_and_serve(&node, sock, acceptor) => {}
                        }
                        node.connections.fetch_sub(1, Ordering::Relaxed);
                    });
                }
            }
        }
    });
    // Dropping the runtime here (not inside async code) ends every connection task.
    rt.shutdown_timeout(Duration::from_millis(100));
}

async fn wait_while_paused(node: &NodeShared) {
    while node.faults.is_paused() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn accept_and_serve(
    node: &NodeShared,
    sock: TcpStream,
    acceptor: Option<TlsAcceptor>,
) -> io::Result<()> {
    let stream = match acceptor {
        None => Stream::Plain(sock),
        Some(a) => match a.accept(sock).await {
            Ok(tls) => Stream::Tls(Box::new(tls)),
            Err(e) => {
                node.stats
                    .tls_handshake_failures
                    .fetch_add(1, Ordering::Relaxed);
                return Err(e);
            }
        },
    };
    serve(node, stream).await
}

/// Per-connection state.
struct Conn {
    sock: Stream,
    authenticated: bool,
    /// Subject CN of the client certificate (mutual TLS), the user of a PKI login.
    peer_cn: Option<String>,
}

impl Conn {
    /// Writes and flushes: a TLS stream holds written bytes until flushed.
    async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.sock.write_all(bytes).await?;
        self.sock.flush().await
    }
}

async fn serve(node: &NodeShared, sock: Stream) -> io::Result<()> {
    let mut conn = Conn {
        peer_cn: sock.peer_common_name(),
        sock,
        authenticated: node.cluster.credential.is_none(),
    };
    let mut body = Vec::new();
    loop {
        let mut hdr = [0u8; 8];
        conn.sock.read_exact(&mut hdr).await?;
        wait_while_paused(node).await;
        let v = u64::from_be_bytes(hdr);
        let msg_type = ((v >> 48) & 0xff) as u8;
        let size = v & 0xFFFF_FFFF_FFFF;
        if size > MAX_REQUEST {
            return Err(io::Error::other("request too large"));
        }
        body.resize(size as usize, 0);
        conn.sock.read_exact(&mut body).await?;
        match msg_type {
            wire::TYPE_INFO => {
                node.stats.info.fetch_add(1, Ordering::Relaxed);
                let answer = info::answer(node, &body);
                let mut out = Vec::with_capacity(answer.len() + 8);
                wire::proto_header(&mut out, wire::TYPE_INFO, answer.len());
                out.extend_from_slice(&answer);
                conn.write_all(&out).await?;
            }
            wire::TYPE_ADMIN => admin(node, &mut conn, &body).await?,
            wire::TYPE_MSG => handle_msg(node, &mut conn, &body).await?,
            // Compression is Enterprise-only: a Community server answers a compressed
            // request with ENTERPRISE_ONLY.
            wire::TYPE_COMPRESSED if !enterprise(node) => {
                send(&mut conn, error_message(rc::ENTERPRISE_ONLY), false).await?;
            }
            wire::TYPE_COMPRESSED => {
                let inner = wire::inflate(&body)
                    .ok_or_else(|| io::Error::other("bad compressed request"))?;
                if inner.len() < 8 || inner[1] != wire::TYPE_MSG {
                    return Err(io::Error::other("unexpected compressed payload"));
                }
                handle_msg(node, &mut conn, &inner[8..]).await?;
            }
            _ => return Err(io::Error::other("unknown proto type")),
        }
    }
}

/// Writes reply frames, compressing them if the client asked for it.
async fn send(conn: &mut Conn, frames: Vec<u8>, compress: bool) -> io::Result<()> {
    if compress {
        conn.write_all(&wire::deflate(&frames)).await
    } else {
        conn.write_all(&frames).await
    }
}

/// Whether the node plays an Enterprise server (a user is configured), with the features
/// only Enterprise has: compression, `racks:`.
pub fn enterprise(node: &NodeShared) -> bool {
    node.cluster.config.user.is_some()
}

/// The message a server ends a failed scan or query with: the result code and no LAST flag
/// (clients stop at any error).
fn error_message(result: u8) -> Vec<u8> {
    wire::simple_reply(
        ReplyHeader {
            result,
            ..ReplyHeader::default()
        },
        &[],
    )
}

fn last_message(result: u8) -> Vec<u8> {
    wire::simple_reply(
        ReplyHeader {
            info3: wire::INFO3_LAST,
            result,
            ..ReplyHeader::default()
        },
        &[],
    )
}

async fn handle_msg(node: &NodeShared, conn: &mut Conn, body: &[u8]) -> io::Result<()> {
    let Some(msg) = wire::parse_msg(body) else {
        return Err(io::Error::other("malformed AS_MSG"));
    };
    // Replies are compressed only on request, whatever form the request came in, and only
    // by an Enterprise server (Community ignores the flag).
    let compress = enterprise(node) && msg.info1 & wire::INFO1_COMPRESS_RESPONSE != 0;
    if !conn.authenticated {
        return send(conn, last_message(rc::NOT_AUTHENTICATED), false).await;
    }
    if msg.info1 & wire::INFO1_BATCH != 0 {
        return batch(node, conn, &msg, compress).await;
    }
    let is_stream = msg.field(wire::FIELD_QUERY_ID).is_some()
        || msg.field(wire::FIELD_PID_ARRAY).is_some()
        || msg.field(wire::FIELD_DIGEST_ARRAY).is_some()
        || msg.field(wire::FIELD_DIGEST).is_none();
    if is_stream {
        if msg.info2 & wire::INFO2_WRITE != 0
            || msg.field(wire::FIELD_UDF_OP).is_some()
            || msg.field(wire::FIELD_UDF_FUNCTION).is_some()
        {
            // Background query-operate and aggregation need a UDF engine the node lacks.
            return send(conn, error_message(rc::UNSUPPORTED_FEATURE), compress).await;
        }
        return scan(node, conn, &msg, compress).await;
    }
    let reply = single(node, &msg);
    send(conn, reply, compress).await
}

fn digest_of(msg: &Msg<'_>) -> Option<Digest> {
    msg.field(wire::FIELD_DIGEST)?.try_into().ok()
}

fn parse_filter(msg: &Msg<'_>) -> Result<Option<Exp>, u8> {
    parse_filter_field(msg.field(wire::FIELD_FILTER_EXP))
}

fn parse_filter_field(field: Option<&[u8]>) -> Result<Option<Exp>, u8> {
    match field {
        Some(b) => exp::parse_filter(b).map(Some).map_err(|_| rc::PARAMETER),
        None => Ok(None),
    }
}

fn single(node: &NodeShared, msg: &Msg<'_>) -> Vec<u8> {
    node.stats.single_record.fetch_add(1, Ordering::Relaxed);
    let reply_code = |code| {
        wire::simple_reply(
            ReplyHeader {
                result: code,
                ..ReplyHeader::default()
            },
            &[],
        )
    };
    let Some(digest) = digest_of(msg) else {
        return reply_code(rc::PARAMETER);
    };
    match node.copy_of(wire::partition_of(&digest)) {
        Some(0) => {}
        Some(_) => {
            node.stats.replica_served.fetch_add(1, Ordering::Relaxed);
        }
        None => {
            node.stats.misrouted.fetch_add(1, Ordering::Relaxed);
        }
    }
    if msg.field(wire::FIELD_UDF_FUNCTION).is_some() {
        let mut body = Vec::new();
        wire::put_op(&mut body, wire::PT_STRING, b"FAILURE", UDF_UNSUPPORTED);
        return wire::simple_reply(
            ReplyHeader {
                result: rc::UDF_BAD_RESPONSE,
                n_ops: 1,
                ..ReplyHeader::default()
            },
            &body,
        );
    }
    // A filter that does not parse is reported once the record was found, as the server
    // builds it only then.
    let (filter, filter_error) = match parse_filter(msg) {
        Ok(f) => (f, 0),
        Err(code) => (None, code),
    };
    let req = Request {
        info1: msg.info1,
        info2: msg.info2,
        info3: msg.info3,
        generation: msg.generation,
        ttl: msg.ttl,
        ns: msg.field(wire::FIELD_NAMESPACE).unwrap_or(&[]),
        set: msg.field(wire::FIELD_SET).unwrap_or(&[]),
        digest,
        key: msg.field(wire::FIELD_KEY),
        filter: filter.as_ref(),
        filter_error,
        ops: &msg.ops,
        fail_writes: node.faults.write_failure(),
    };
    let r = exec::execute(&node.cluster.store, &req);
    wire::simple_reply(
        ReplyHeader {
            result: r.result,
            generation: r.generation,
            void_time: r.void_time,
            n_ops: r.n_ops,
            ..ReplyHeader::default()
        },
        &r.ops,
    )
}

/// Accumulates reply messages into proto frames of about `CHUNK` bytes.
struct Frames {
    buf: Vec<u8>,
    frame_start: usize,
}

impl Frames {
    fn new() -> Frames {
        let mut f = Frames {
            buf: Vec::with_capacity(CHUNK + 4096),
            frame_start: 0,
        };
        f.buf.extend_from_slice(&[0; 8]);
        f
    }
    fn full(&self) -> bool {
        self.buf.len() >= CHUNK
    }
    fn is_empty(&self) -> bool {
        self.buf.len() == self.frame_start + 8
    }
    /// Closes the current frame and hands back all bytes for sending.
    fn take(&mut self) -> Vec<u8> {
        wire::patch_proto(&mut self.buf, self.frame_start, wire::TYPE_MSG);
        let out = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK + 4096));
        self.buf.extend_from_slice(&[0; 8]);
        self.frame_start = 0;
        out
    }
}

// ----------------------------------------------------------------------------------------
// batch
// ----------------------------------------------------------------------------------------

/// One batch row's request, possibly repeated from the previous row.
#[derive(Clone, Default)]
struct RowHeader<'a> {
    info1: u8,
    info2: u8,
    info3: u8,
    generation: u32,
    ttl: u32,
    fields: Vec<wire::Field<'a>>,
    ops: Vec<Op<'a>>,
}

async fn batch(
    node: &NodeShared,
    conn: &mut Conn,
    msg: &Msg<'_>,
    compress: bool,
) -> io::Result<()> {
    node.stats.batches.fetch_add(1, Ordering::Relaxed);
    let Some(field) = msg.field(wire::FIELD_BATCH_INDEX) else {
        return send(conn, last_message(rc::PARAMETER), compress).await;
    };
    let parent_filter = match parse_filter(msg) {
        Ok(f) => f,
        Err(code) => return send(conn, last_message(code), compress).await,
    };
    let mut c = Cur::new(field);
    let (Some(n), Some(flags)) = (c.u32(), c.u8()) else {
        return send(conn, last_message(rc::PARAMETER), compress).await;
    };
    // Without "report all errors" the server ends the batch's LAST message with the code
    // of the last row that failed with anything but not-found or filtered-out.
    let report_all_errors = flags & BATCH_REPORT_ALL_ERRORS != 0;
    let mut batch_error = rc::OK;
    let mut frames = Frames::new();
    let mut prev: Option<RowHeader<'_>> = None;
    let fail_writes = node.faults.write_failure();
    for _ in 0..n {
        let Some(row) = parse_row(&mut c, &mut prev) else {
            return send(conn, last_message(rc::PARAMETER), compress).await;
        };
        let (index, digest, h) = row;
        let get = |t: u8| h.fields.iter().find(|f| f.ty == t).map(|f| f.data);
        let (row_filter, filter_error) = match parse_filter_field(get(wire::FIELD_FILTER_EXP)) {
            Ok(f) => (f, 0),
            Err(code) => (None, code),
        };
        if get(wire::FIELD_UDF_FUNCTION).is_some() {
            let mut body = Vec::new();
            wire::put_op(&mut body, wire::PT_STRING, b"FAILURE", UDF_UNSUPPORTED);
            push_row(&mut frames, index, rc::UDF_BAD_RESPONSE, 0, 0, &body, 1);
            continue;
        }
        let req = Request {
            info1: h.info1,
            info2: h.info2,
            info3: h.info3,
            generation: h.generation,
            ttl: h.ttl,
            ns: get(wire::FIELD_NAMESPACE).unwrap_or(&[]),
            set: get(wire::FIELD_SET).unwrap_or(&[]),
            digest,
            key: get(wire::FIELD_KEY),
            filter: row_filter.as_ref().or(parent_filter.as_ref()),
            filter_error,
            ops: &h.ops,
            fail_writes,
        };
        let r = exec::execute(&node.cluster.store, &req);
        if !report_all_errors && !matches!(r.result, rc::OK | rc::KEY_NOT_FOUND | rc::FILTERED_OUT)
        {
            batch_error = r.result;
        }
        // Failed rows carry no bins.
        let (ops, n_ops): (&[u8], u16) = if r.result == rc::OK {
            (&r.ops, r.n_ops)
        } else {
            (&[], 0)
        };
        push_row(
            &mut frames,
            index,
            r.result,
            r.generation,
            r.void_time,
            ops,
            n_ops,
        );
        if frames.full() {
            send(conn, frames.take(), compress).await?;
        }
    }
    ReplyHeader {
        info3: wire::INFO3_LAST,
        result: batch_error,
        ..ReplyHeader::default()
    }
    .write(&mut frames.buf);
    send(conn, frames.take(), compress).await
}

fn push_row(
    frames: &mut Frames,
    index: u32,
    result: u8,
    generation: u32,
    void_time: u32,
    ops: &[u8],
    n_ops: u16,
) {
    ReplyHeader {
        result,
        generation,
        void_time,
        index,
        n_ops,
        ..ReplyHeader::default()
    }
    .write(&mut frames.buf);
    frames.buf.extend_from_slice(ops);
}

/// Batch flag: every row's error is reported and none ends the batch.
const BATCH_REPORT_ALL_ERRORS: u8 = 0x4;

fn parse_row<'a>(
    c: &mut Cur<'a>,
    prev: &mut Option<RowHeader<'a>>,
) -> Option<(u32, Digest, RowHeader<'a>)> {
    let index = c.u32()?;
    let digest: Digest = c.take(20)?.try_into().ok()?;
    let kind = c.u8()?;
    if kind & BATCH_MSG_REPEAT != 0 {
        return Some((index, digest, prev.clone()?));
    }
    let mut h = RowHeader::default();
    if kind & BATCH_MSG_INFO != 0 {
        h.info1 = c.u8()?;
        h.info2 = c.u8()?;
        h.info3 = c.u8()?;
        if kind & BATCH_MSG_INFO4 != 0 {
            c.u8()?;
        }
    } else {
        // The original read-only row: just the read attributes.
        h.info1 = c.u8()?;
    }
    if kind & BATCH_MSG_GEN != 0 {
        h.generation = u32::from(c.u16()?);
    }
    if kind & BATCH_MSG_TTL != 0 {
        h.ttl = c.u32()?;
    }
    let n_fields = c.u16()? as usize;
    let n_ops = c.u16()? as usize;
    let mut m = Msg::default();
    wire::parse_fields_ops(c, n_fields, n_ops, &mut m)?;
    h.fields = m.fields;
    h.ops = m.ops;
    *prev = Some(h.clone());
    Some((index, digest, h))
}

// ----------------------------------------------------------------------------------------
// scan / query
// ----------------------------------------------------------------------------------------

/// A secondary-index range from an `INDEX_RANGE` field, evaluated by scanning.
struct IndexRange {
    bin: Vec<u8>,
    ptype: u8,
    begin: Vec<u8>,
    end: Vec<u8>,
}

fn parse_index_range(b: &[u8]) -> Option<IndexRange> {
    let mut c = Cur::new(b);
    let _count = c.u8()?;
    let nlen = c.u8()? as usize;
    let bin = c.take(nlen)?.to_vec();
    let ptype = c.u8()?;
    let blen = c.u32()? as usize;
    let begin = c.take(blen)?.to_vec();
    let elen = c.u32()? as usize;
    let end = c.take(elen)?.to_vec();
    Some(IndexRange {
        bin,
        ptype,
        begin,
        end,
    })
}

impl IndexRange {
    fn matches(&self, r: &store::Record) -> bool {
        let Some(b) = r.bin(&self.bin) else {
            return false;
        };
        if b.ptype != self.ptype {
            return false;
        }
        match self.ptype {
            wire::PT_INTEGER => {
                let v = i64::from_be_bytes(b.data.try_into().unwrap_or_default());
                let lo = i64::from_be_bytes(self.begin.as_slice().try_into().unwrap_or_default());
                let hi = i64::from_be_bytes(self.end.as_slice().try_into().unwrap_or_default());
                v >= lo && v <= hi
            }
            _ => b.data == self.begin.as_slice(),
        }
    }
}

struct ScanPlan<'a> {
    set: Option<&'a [u8]>,
    filter: Option<Exp>,
    range: Option<IndexRange>,
    no_bins: bool,
    ops: &'a [Op<'a>],
    max_records: u64,
    records_per_second: u64,
}

async fn scan(node: &NodeShared, conn: &mut Conn, msg: &Msg<'_>, compress: bool) -> io::Result<()> {
    node.stats.scans.fetch_add(1, Ordering::Relaxed);
    let store = node.cluster.store.clone();
    let Some(ns) = msg.field(wire::FIELD_NAMESPACE).and_then(|n| store.ns(n)) else {
        return send(conn, error_message(rc::INVALID_NAMESPACE), compress).await;
    };
    // A server runs only partition scans and queries: they must ask for partition-done
    // messages and name partitions (ids or resume digests); anything else is 16.
    if msg.info3 & wire::INFO3_PARTITION_DONE == 0
        || (msg.field(wire::FIELD_PID_ARRAY).is_none()
            && msg.field(wire::FIELD_DIGEST_ARRAY).is_none())
    {
        return send(conn, error_message(rc::UNSUPPORTED_FEATURE), compress).await;
    }
    let filter = match parse_filter(msg) {
        Ok(f) => f,
        Err(code) => return send(conn, error_message(code), compress).await,
    };
    let range = match msg.field(wire::FIELD_INDEX_RANGE) {
        Some(b) => match parse_index_range(b) {
            Some(r) => Some(r),
            None => return send(conn, error_message(rc::PARAMETER), compress).await,
        },
        None => None,
    };
    let plan = ScanPlan {
        set: msg.field(wire::FIELD_SET).filter(|s| !s.is_empty()),
        filter,
        range,
        no_bins: msg.info1 & wire::INFO1_NOBINDATA != 0,
        ops: &msg.ops,
        max_records: msg
            .field(wire::FIELD_MAX_RECORDS)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u64::from_be_bytes),
        records_per_second: msg
            .field(wire::FIELD_RECORDS_PER_SECOND)
            .and_then(|b| b.try_into().ok())
            .map_or(0, |b| u64::from(u32::from_be_bytes(b))),
    };
    let mut parts: Vec<(usize, Option<Digest>)> = Vec::new();
    if let Some(pids) = msg.field(wire::FIELD_PID_ARRAY) {
        parts.extend(pids.chunks_exact(2).map(|p| {
            (
                (u16::from_le_bytes([p[0], p[1]]) as usize) % PARTITIONS,
                None,
            )
        }));
    }
    if let Some(ds) = msg.field(wire::FIELD_DIGEST_ARRAY) {
        for d in ds.chunks_exact(20) {
            let d: Digest = d.try_into().unwrap_or_default();
            parts.push((wire::partition_of(&d), Some(d)));
        }
    }
    // As the server does: it answers each partition it holds no full copy of with a
    // PARTITION_DONE carrying UNAVAILABLE, and nothing for the others (the stream's end
    // finishes them). A partition is walked from its largest digest down, and a resume
    // digest continues with the next smaller one (the server's index trees are ordered so).
    let drop_after = node.faults.take_scan_drop();
    let started = Instant::now();
    let mut sent: u64 = 0;
    let mut frames = Frames::new();
    let ns_name = ns.name.as_bytes();
    'parts: for (pid, after) in parts {
        if node.copy_of(pid).is_none() {
            push_partition_done(&mut frames.buf, pid, rc::PARTITION_UNAVAILABLE);
            continue;
        }
        let mut cursor = after;
        loop {
            let mut partition_done = true;
            let mut hit_max = false;
            {
                let p = store::read(&ns.parts[pid]);
                let now_ms = store.clock.now_ms();
                let now_cl = store.clock.now_cl_secs();
                // As the server does: a partition's records in descending digest order, and
                // a resume after a digest goes on with the smaller ones.
                let upper = match cursor {
                    Some(d) => Bound::Excluded(d),
                    None => Bound::Unbounded,
                };
                for (d, r) in p.range((Bound::Unbounded, upper)).rev() {
                    cursor = Some(*d);
                    if r.is_expired(now_cl) || !in_set(r, plan.set) {
                        continue;
                    }
                    if plan.range.as_ref().is_some_and(|ir| !ir.matches(r)) {
                        continue;
                    }
                    if let Some(f) = &plan.filter
                        && !exp::passes(
                            f,
                            &Ctx {
                                rec: r,
                                digest: d,
                                now_ms,
                            },
                        )
                    {
                        continue;
                    }
                    encode_record(&mut frames.buf, ns_name, d, r, &plan, now_ms);
                    sent += 1;
                    if plan.max_records > 0 && sent >= plan.max_records {
                        hit_max = true;
                        // Done only if nothing else is left in this partition.
                        partition_done = p
                            .range((Bound::Unbounded, Bound::Excluded(*d)))
                            .next()
                            .is_none();
                        break;
                    }
                    let throttle = plan.records_per_second > 0
                        && sent.is_multiple_of(plan.records_per_second.div_ceil(10).max(1));
                    if frames.full() || throttle || drop_after.is_some_and(|k| sent >= k) {
                        partition_done = p
                            .range((Bound::Unbounded, Bound::Excluded(*d)))
                            .next()
                            .is_none();
                        break;
                    }
                }
            }
            if let Some(k) = drop_after
                && sent >= k
            {
                // Fault: send what we have, then cut the connection mid-scan.
                node.stats.scans_dropped.fetch_add(1, Ordering::Relaxed);
                node.stats.scan_records.fetch_add(sent, Ordering::Relaxed);
                send(conn, frames.take(), compress).await?;
                let _ = conn.sock.shutdown().await;
                return Err(io::Error::other("scan dropped by fault plan"));
            }
            if frames.full() || (plan.records_per_second > 0 && !frames.is_empty()) {
                send(conn, frames.take(), compress).await?;
            }
            if plan.records_per_second > 0 {
                let due = Duration::from_secs_f64(sent as f64 / plan.records_per_second as f64);
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    tokio::time::sleep(wait).await;
                }
            }
            if hit_max {
                break 'parts;
            }
            if partition_done {
                break;
            }
        }
    }
    node.stats.scan_records.fetch_add(sent, Ordering::Relaxed);
    ReplyHeader {
        info3: wire::INFO3_LAST,
        ..ReplyHeader::default()
    }
    .write(&mut frames.buf);
    send(conn, frames.take(), compress).await
}

fn in_set(r: &store::Record, set: Option<&[u8]>) -> bool {
    match set {
        None => true,
        Some(s) => r.set.as_deref().map(str::as_bytes) == Some(s),
    }
}

fn push_partition_done(out: &mut Vec<u8>, pid: usize, result: u8) {
    ReplyHeader {
        info3: wire::INFO3_PARTITION_DONE,
        result,
        generation: pid as u32,
        ..ReplyHeader::default()
    }
    .write(out);
}

fn encode_record(
    out: &mut Vec<u8>,
    ns: &[u8],
    digest: &Digest,
    r: &store::Record,
    plan: &ScanPlan<'_>,
    now_ms: u64,
) {
    let set = r.set.as_deref().map(str::as_bytes);
    let n_fields = 2 + u16::from(set.is_some()) + u16::from(r.key.is_some());
    let header_at = out.len();
    ReplyHeader {
        // A server marks the records of a no-bin-data scan with NOBINDATA.
        info1: if plan.no_bins {
            wire::INFO1_NOBINDATA
        } else {
            0
        },
        generation: u32::from(r.generation),
        void_time: r.void_time,
        n_fields,
        ..ReplyHeader::default()
    }
    .write(out);
    // The server's order: namespace, digest, set, key.
    wire::put_field(out, wire::FIELD_NAMESPACE, ns);
    wire::put_field(out, wire::FIELD_DIGEST, digest);
    if let Some(s) = set {
        wire::put_field(out, wire::FIELD_SET, s);
    }
    if let Some(k) = &r.key {
        wire::put_field(out, wire::FIELD_KEY, k);
    }
    let n_ops = if plan.no_bins {
        0
    } else if plan.ops.is_empty() {
        out.extend_from_slice(&r.bins);
        r.n_bins
    } else {
        let mut n = 0u16;
        for op in plan.ops {
            if op.op == wire::OP_EXP_READ {
                let (pt, d) = exec::exp_read_record(op, r, digest, now_ms);
                wire::put_op(out, pt, op.name, &d);
                n += 1;
            } else if let Some(b) = r.bin(op.name) {
                out.extend_from_slice(b.raw);
                n += 1;
            }
        }
        n
    };
    out[header_at + 20..header_at + 22].copy_from_slice(&n_ops.to_be_bytes());
}

// ----------------------------------------------------------------------------------------
// admin (login / authenticate)
// ----------------------------------------------------------------------------------------

async fn admin(node: &NodeShared, conn: &mut Conn, body: &[u8]) -> io::Result<()> {
    node.stats.logins.fetch_add(1, Ordering::Relaxed);
    let reply = |code: u8, fields: &[(u8, &[u8])]| {
        let mut out = Vec::new();
        wire::proto_header(&mut out, wire::TYPE_ADMIN, 0);
        out.extend_from_slice(&[0, code, 0, fields.len() as u8]);
        out.extend_from_slice(&[0; 12]);
        for (id, data) in fields {
            wire::put_field(&mut out, *id, data);
        }
        wire::patch_proto(&mut out, 0, wire::TYPE_ADMIN);
        out
    };
    if body.len() < 16 {
        return Err(io::Error::other("short admin message"));
    }
    let command = body[2];
    let n_fields = body[3] as usize;
    let mut c = Cur::new(&body[16..]);
    let mut fields: Vec<(u8, &[u8])> = Vec::new();
    for _ in 0..n_fields {
        let Some(len) = c.u32() else { break };
        let Some(data) = c.take(len as usize) else {
            break;
        };
        if let Some((&id, rest)) = data.split_first() {
            fields.push((id, rest));
        }
    }
    let get = |id: u8| fields.iter().find(|f| f.0 == id).map(|f| f.1);
    let Some(credential) = &node.cluster.credential else {
        return conn.write_all(&reply(SECURITY_NOT_ENABLED, &[])).await;
    };
    let (user, password) = node
        .cluster
        .config
        .user
        .as_ref()
        .map(|(u, p)| (u.as_bytes(), p.as_bytes()))
        .unwrap_or_default();
    let user_ok = Some(user) == get(ADMIN_USER);
    let out = match command {
        ADMIN_LOGIN => {
            // The mode follows from the fields, as on a server: no user = PKI (the user is
            // the client certificate's CN), a clear password = EXTERNAL (checked against
            // the user table, standing in for LDAP), else INTERNAL (the bcrypt hash).
            let code = if get(ADMIN_USER).is_none() {
                node.stats.pki_logins.fetch_add(1, Ordering::Relaxed);
                match conn.peer_cn.as_deref() {
                    None => rc::NOT_AUTHENTICATED,
                    Some(cn) if cn.as_bytes() == user => rc::OK,
                    Some(_) => rc::INVALID_USER,
                }
            } else if let Some(clear) = get(ADMIN_CLEAR_PASSWORD) {
                node.stats.external_logins.fetch_add(1, Ordering::Relaxed);
                if user_ok && clear == password {
                    rc::OK
                } else {
                    rc::INVALID_CREDENTIAL
                }
            } else if !user_ok {
                rc::INVALID_USER
            } else if get(ADMIN_CREDENTIAL) != Some(credential.as_bytes()) {
                rc::INVALID_CREDENTIAL
            } else {
                rc::OK
            };
            if code != rc::OK {
                reply(code, &[])
            } else {
                let token: [u8; 32] = rand::random();
                store::lock(&node.cluster.sessions).insert(token.to_vec());
                conn.authenticated = true;
                let ttl = 86_400u32.to_be_bytes();
                reply(
                    rc::OK,
                    &[(ADMIN_SESSION_TOKEN, &token), (ADMIN_SESSION_TTL, &ttl)],
                )
            }
        }
        ADMIN_AUTHENTICATE => {
            let by_token = get(ADMIN_SESSION_TOKEN)
                .is_some_and(|t| store::lock(&node.cluster.sessions).contains(t));
            let by_credential = user_ok && get(ADMIN_CREDENTIAL) == Some(credential.as_bytes());
            if by_token || by_credential {
                conn.authenticated = true;
                reply(rc::OK, &[])
            } else {
                reply(rc::INVALID_CREDENTIAL, &[])
            }
        }
        _ if !conn.authenticated => reply(rc::NOT_AUTHENTICATED, &[]),
        _ => reply(rc::INVALID_COMMAND, &[]),
    };
    conn.write_all(&out).await
}
