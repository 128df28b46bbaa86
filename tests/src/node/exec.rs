//! Single-record commands (get, exists, put, operate, touch, delete) against the store,
//! with the server's record-exists actions, generation checks, TTL rules and result codes.
//! Batch rows run through the same function.

use super::cdt;
use super::exp::{self, Ctx, Exp};
use super::store::{self, Bins, Digest, MAX_TTL_SECS, Record, Store};
use super::wire::{self, Op, Val, rc};

/// One record command, already taken apart.
#[derive(Debug)]
pub struct Request<'a> {
    pub info1: u8,
    pub info2: u8,
    pub info3: u8,
    pub generation: u32,
    pub ttl: u32,
    pub ns: &'a [u8],
    pub set: &'a [u8],
    pub digest: Digest,
    /// Key field: particle type then bytes.
    pub key: Option<&'a [u8]>,
    pub filter: Option<&'a Exp>,
    /// The result code of a filter that did not parse (0 = none). Like the server, it is
    /// reported only once the record was found (with its generation and void time).
    pub filter_error: u8,
    pub ops: &'a [Op<'a>],
    /// Result code forced on writes by a fault plan (0 = none).
    pub fail_writes: u8,
}

/// What goes back: header values and encoded reply ops.
#[derive(Debug, Default)]
pub struct Reply {
    pub result: u8,
    pub generation: u32,
    pub void_time: u32,
    pub ops: Vec<u8>,
    pub n_ops: u16,
}

impl Reply {
    fn code(result: u8) -> Reply {
        Reply {
            result,
            ..Reply::default()
        }
    }
    fn push(&mut self, ptype: u8, name: &[u8], data: &[u8]) {
        wire::put_op(&mut self.ops, ptype, name, data);
        self.n_ops += 1;
    }
    /// The entry respond-all-ops gives a write op: its own op code, no value.
    fn push_written(&mut self, op: u8, name: &[u8]) {
        wire::put_op_code(&mut self.ops, op, wire::PT_NULL, name, &[]);
        self.n_ops += 1;
    }
    /// A failure found on an existing record: it carries the record's generation and void
    /// time, as the server's does.
    fn on_record(result: u8, r: &Record) -> Reply {
        Reply {
            result,
            generation: u32::from(r.generation),
            void_time: r.void_time,
            ..Reply::default()
        }
    }
}

/// The filter's verdict on a found record: `Err(code)` if it does not pass or did not parse.
fn filter_check(req: &Request<'_>, r: &Record, now_ms: u64) -> Result<(), u8> {
    if req.filter_error != 0 {
        return Err(req.filter_error);
    }
    if let Some(f) = req.filter {
        let cx = Ctx {
            rec: r,
            digest: &req.digest,
            now_ms,
        };
        if !exp::passes(f, &cx) {
            return Err(rc::FILTERED_OUT);
        }
    }
    Ok(())
}

pub fn execute(store: &Store, req: &Request<'_>) -> Reply {
    let Some(ns) = store.ns(req.ns) else {
        return Reply::code(rc::INVALID_NAMESPACE);
    };
    let now_ms = store.clock.now_ms();
    let now_cl = store.clock.now_cl_secs();
    if req.info2 & wire::INFO2_WRITE == 0 {
        let p = store::read(ns.part(&req.digest));
        let Some(r) = p.get(&req.digest).filter(|r| !r.is_expired(now_cl)) else {
            return Reply::code(rc::KEY_NOT_FOUND);
        };
        if let Err(code) = filter_check(req, r, now_ms) {
            return Reply::on_record(code, r);
        }
        return read_reply(r, req, now_ms);
    }
    if req.fail_writes != 0 {
        return Reply::code(req.fail_writes);
    }
    if req.info2 & wire::INFO2_DELETE != 0 {
        return delete(ns, req, now_ms, now_cl);
    }
    // Checks on the ops alone, before the record is looked at (server `write_master_policies`).
    let (must_not_create, replace) = match write_policies(req) {
        Ok(p) => p,
        Err(code) => return Reply::code(code),
    };

    let mut p = store::write(ns.part(&req.digest));
    // An expired record is a fresh create, as on the server.
    if p.get(&req.digest).is_some_and(|r| r.is_expired(now_cl)) {
        p.remove(&req.digest);
    }
    let existing = p.get(&req.digest);
    // Failures after the record was found carry its generation and void time.
    let fail = |code: u8| match existing {
        Some(r) => Reply::on_record(code, r),
        None => Reply::code(code),
    };
    if existing.is_none() && must_not_create {
        return Reply::code(rc::KEY_NOT_FOUND);
    }
    if existing.is_some() && req.info2 & wire::INFO2_CREATE_ONLY != 0 {
        return fail(rc::KEY_EXISTS);
    }
    // A record being created has generation 0: expect-gen-equal 0 creates it,
    // expect-gen-greater needs a generation above 0.
    if !generation_ok(req, existing.map_or(0, |r| r.generation)) {
        return fail(rc::GENERATION);
    }
    if let Some(r) = existing {
        let msg_set = (!req.set.is_empty()).then_some(req.set);
        if msg_set != r.set.as_deref().map(str::as_bytes) {
            return fail(rc::PARAMETER);
        }
        if let Err(code) = filter_check(req, r, now_ms) {
            return fail(code);
        }
        if let (Some(k), Some(stored)) = (req.key, r.key.as_deref())
            && k != stored
        {
            return fail(rc::KEY_MISMATCH);
        }
    }
    let void_time = match req.ttl {
        0 => default_void_time(ns.default_ttl, now_cl),
        TTL_NEVER => 0,
        TTL_DONT_UPDATE => {
            existing.map_or(default_void_time(ns.default_ttl, now_cl), |r| r.void_time)
        }
        t if t > MAX_TTL_SECS => return fail(rc::PARAMETER),
        t => now_cl + t,
    };
    let mut bins = match existing {
        Some(r) if !replace => Bins::from_record(r),
        _ => Bins::default(),
    };
    let respond_all = req.info2 & wire::INFO2_RESPOND_ALL_OPS != 0;
    let mut reply = Reply::default();
    for op in req.ops {
        match op.op {
            wire::OP_WRITE => {
                if let Err(code) = check_particle(op.ptype, op.data) {
                    return fail(code);
                }
                match op.ptype {
                    wire::PT_MAP | wire::PT_LIST => match cdt::from_wire(op.ptype, op.data) {
                        Some(stored) => bins.set(op.name, op.ptype, stored),
                        // The server answers a list or map it cannot parse with 1.
                        None => return fail(rc::SERVER_ERROR),
                    },
                    wire::PT_GEOJSON => {
                        bins.set(op.name, op.ptype, super::geo::stored_particle(op.data))
                    }
                    _ => bins.set(op.name, op.ptype, op.data.to_vec()),
                }
            }
            wire::OP_INCR => match (bins.get(op.name), op.ptype) {
                (None, wire::PT_INTEGER | wire::PT_FLOAT) => {
                    bins.set(op.name, op.ptype, op.data.to_vec())
                }
                (Some((wire::PT_INTEGER, cur)), wire::PT_INTEGER) => {
                    let a = i64::from_be_bytes(cur.try_into().unwrap_or_default());
                    let b = i64::from_be_bytes(op.data.try_into().unwrap_or_default());
                    bins.set(
                        op.name,
                        wire::PT_INTEGER,
                        a.wrapping_add(b).to_be_bytes().to_vec(),
                    );
                }
                (Some((wire::PT_FLOAT, cur)), wire::PT_FLOAT) => {
                    let a = f64::from_be_bytes(cur.try_into().unwrap_or_default());
                    let b = f64::from_be_bytes(op.data.try_into().unwrap_or_default());
                    bins.set(op.name, wire::PT_FLOAT, (a + b).to_be_bytes().to_vec());
                }
                _ => return fail(rc::BIN_TYPE),
            },
            wire::OP_APPEND | wire::OP_PREPEND => match bins.get(op.name) {
                None => bins.set(op.name, op.ptype, op.data.to_vec()),
                Some((pt, cur))
                    if pt == op.ptype && matches!(pt, wire::PT_STRING | wire::PT_BLOB) =>
                {
                    let v = if op.op == wire::OP_APPEND {
                        [cur, op.data].concat()
                    } else {
                        [op.data, cur].concat()
                    };
                    bins.set(op.name, pt, v);
                }
                _ => return fail(rc::BIN_TYPE),
            },
            // Existence was checked above (touch implies update-only).
            wire::OP_TOUCH => {}
            // Delete-all drops the bins written so far; later ops may write new ones.
            wire::OP_DELETE => bins.0.clear(),
            wire::OP_READ => {
                if op.name.is_empty() {
                    for (n, pt, d) in &bins.0 {
                        reply.push(*pt, n, d);
                    }
                } else if let Some((pt, d)) = bins.get(op.name) {
                    let d = d.to_vec();
                    reply.push(pt, op.name, &d);
                } else if respond_all {
                    reply.push(wire::PT_NULL, op.name, &[]);
                }
                continue;
            }
            wire::OP_EXP_READ => {
                let (ptype, data) = exp_read(op, &bins, req, now_ms);
                reply.push(ptype, op.name, &data);
                continue;
            }
            _ => return fail(rc::UNSUPPORTED_FEATURE),
        }
        if respond_all {
            reply.push_written(op.op, op.name);
        }
    }
    if bins.0.is_empty() {
        // No bins left: the record is deleted, and deleting what did not exist is "not
        // found" (server `write_master_apply`).
        if existing.is_none() {
            return Reply::code(rc::KEY_NOT_FOUND);
        }
        p.remove(&req.digest);
        return reply;
    }
    // 16-bit generation; 0 means "no record", so it wraps to 1.
    let generation = match existing {
        Some(r) if r.generation == u16::MAX => 1,
        Some(r) => r.generation + 1,
        None => 1,
    };
    let key = match (req.key, existing) {
        (Some(k), _) => Some(k.to_vec().into_boxed_slice()),
        (None, Some(r)) => r.key.clone(),
        (None, None) => None,
    };
    let set = match existing {
        Some(r) => r.set.clone(),
        None => ns.intern_set(std::str::from_utf8(req.set).unwrap_or("")),
    };
    let (encoded, n_bins) = bins.encode();
    p.insert(
        req.digest,
        Record {
            set,
            key,
            bins: encoded,
            n_bins,
            generation,
            void_time,
            lut_ms: now_ms,
        },
    );
    reply.generation = u32::from(generation);
    reply.void_time = void_time;
    reply
}

/// Header TTL "never expire" (-1) and "leave the TTL as it is" (-2).
const TTL_NEVER: u32 = u32::MAX;
const TTL_DONT_UPDATE: u32 = u32::MAX - 1;
/// Longest bin name: the server's 16-byte name field holds 15 bytes and a NUL.
const MAX_BIN_NAME: usize = 15;

fn generation_ok(req: &Request<'_>, current: u16) -> bool {
    if req.info2 & wire::INFO2_GENERATION != 0 {
        req.generation == u32::from(current)
    } else if req.info2 & wire::INFO2_GENERATION_GT != 0 {
        req.generation > u32::from(current)
    } else {
        true
    }
}

/// The server's checks on a write's ops before it looks at the record: at least one op,
/// valid bin names, and no bin deletes, modify or touch ops on a replace. Returns
/// (must not create, replace).
fn write_policies(req: &Request<'_>) -> Result<(bool, bool), u8> {
    if req.ops.is_empty() {
        return Err(rc::PARAMETER);
    }
    let mut must_not_create = req.info3 & (wire::INFO3_UPDATE_ONLY | wire::INFO3_REPLACE_ONLY) != 0;
    let replace = req.info3 & (wire::INFO3_CREATE_OR_REPLACE | wire::INFO3_REPLACE_ONLY) != 0;
    for op in req.ops {
        if op.op == wire::OP_TOUCH {
            if replace {
                return Err(rc::PARAMETER);
            }
            must_not_create = true;
            continue;
        }
        if op.name.len() > MAX_BIN_NAME || op.name.contains(&0) {
            return Err(rc::BIN_NAME_TOO_LONG);
        }
        let forbidden_on_replace = match op.op {
            wire::OP_WRITE => op.ptype == wire::PT_NULL,
            wire::OP_READ | wire::OP_EXP_READ => false,
            // Modify ops (add, append, prepend, CDT/bit/HLL modify) and delete-all.
            _ => true,
        };
        if replace && forbidden_on_replace {
            return Err(rc::PARAMETER);
        }
    }
    Ok((must_not_create, replace))
}

/// Fixed-size particles must have their size; the server answers 4 otherwise.
fn check_particle(ptype: u8, data: &[u8]) -> Result<(), u8> {
    let ok = match ptype {
        wire::PT_INTEGER | wire::PT_FLOAT => data.len() == 8,
        wire::PT_BOOL => data.len() == 1,
        _ => true,
    };
    if ok { Ok(()) } else { Err(rc::PARAMETER) }
}

/// A record delete (server `delete.c`): missing is "not found", then the generation
/// check, then the filter.
fn delete(ns: &store::Namespace, req: &Request<'_>, now_ms: u64, now_cl: u32) -> Reply {
    let mut p = store::write(ns.part(&req.digest));
    let Some(r) = p.get(&req.digest).filter(|r| !r.is_expired(now_cl)) else {
        return Reply::code(rc::KEY_NOT_FOUND);
    };
    if !generation_ok(req, r.generation) {
        return Reply::code(rc::GENERATION);
    }
    if let Err(code) = filter_check(req, r, now_ms) {
        return Reply::code(code);
    }
    p.remove(&req.digest);
    Reply::code(rc::OK)
}

fn default_void_time(default_ttl: u32, now_cl: u32) -> u32 {
    if default_ttl == 0 {
        0
    } else {
        now_cl + default_ttl
    }
}

/// Evaluates a read-expression op against the bins as they stand.
fn exp_read(op: &Op<'_>, bins: &Bins, req: &Request<'_>, now_ms: u64) -> (u8, Vec<u8>) {
    let Some(Val::List(parts)) = wire::unpack(&mut wire::Cur::new(op.data), 0) else {
        return (wire::PT_NULL, Vec::new());
    };
    let mut packed = Vec::new();
    if let Some(e) = parts.first() {
        wire::pack(&mut packed, e);
    }
    let Ok(e) = exp::parse(&packed) else {
        return (wire::PT_NULL, Vec::new());
    };
    let (encoded, n_bins) = bins.encode();
    let rec = Record {
        set: None,
        key: req.key.map(|k| k.to_vec().into_boxed_slice()),
        bins: encoded,
        n_bins,
        generation: 0,
        void_time: 0,
        lut_ms: now_ms,
    };
    let cx = Ctx {
        rec: &rec,
        digest: &req.digest,
        now_ms,
    };
    exp::eval(&e, &cx, &mut Vec::new()).map_or((wire::PT_NULL, Vec::new()), |v| v.to_particle())
}

/// Evaluates a read-expression op against a stored record (scan projections, operate).
pub fn exp_read_record(op: &Op<'_>, rec: &Record, digest: &Digest, now_ms: u64) -> (u8, Vec<u8>) {
    let Some(Val::List(parts)) = wire::unpack(&mut wire::Cur::new(op.data), 0) else {
        return (wire::PT_NULL, Vec::new());
    };
    let mut packed = Vec::new();
    if let Some(e) = parts.first() {
        wire::pack(&mut packed, e);
    }
    let Ok(e) = exp::parse(&packed) else {
        return (wire::PT_NULL, Vec::new());
    };
    let cx = Ctx {
        rec,
        digest,
        now_ms,
    };
    exp::eval(&e, &cx, &mut Vec::new()).map_or((wire::PT_NULL, Vec::new()), |v| v.to_particle())
}

fn read_reply(r: &Record, req: &Request<'_>, now_ms: u64) -> Reply {
    let mut reply = Reply {
        generation: u32::from(r.generation),
        void_time: r.void_time,
        ..Reply::default()
    };
    if req.info1 & wire::INFO1_NOBINDATA != 0 && req.ops.is_empty() {
        return reply;
    }
    if req.info1 & wire::INFO1_GET_ALL != 0 || req.ops.is_empty() {
        reply.ops.extend_from_slice(&r.bins);
        reply.n_ops = r.n_bins;
        return reply;
    }
    let respond_all = req.info2 & wire::INFO2_RESPOND_ALL_OPS != 0;
    for op in req.ops {
        match op.op {
            wire::OP_READ if op.name.is_empty() => {
                reply.ops.extend_from_slice(&r.bins);
                reply.n_ops += r.n_bins;
            }
            wire::OP_READ => match r.bin(op.name) {
                Some(b) => {
                    reply.ops.extend_from_slice(b.raw);
                    reply.n_ops += 1;
                }
                None if respond_all => reply.push(wire::PT_NULL, op.name, &[]),
                None => {}
            },
            wire::OP_EXP_READ => {
                let (pt, d) = exp_read_record(op, r, &req.digest, now_ms);
                reply.push(pt, op.name, &d);
            }
            _ => return Reply::code(rc::UNSUPPORTED_FEATURE),
        }
    }
    reply
}
