//! Single-record commands (get, exists, put, operate, touch, delete) against the store,
//! with the server's record-exists actions, generation checks, TTL rules and result codes.
//! Batch rows run through the same function.

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
}

pub fn execute(store: &Store, req: &Request<'_>) -> Reply {
    let Some(ns) = store.ns(req.ns) else {
        return Reply::code(rc::INVALID_NAMESPACE);
    };
    let now_ms = store.clock.now_ms();
    let now_cl = store.clock.now_cl_secs();
    let part = ns.part(&req.digest);
    if req.info2 & wire::INFO2_WRITE == 0 {
        let p = store::read(part);
        let Some(r) = p.get(&req.digest).filter(|r| !r.is_expired(now_cl)) else {
            return Reply::code(rc::KEY_NOT_FOUND);
        };
        if let Some(f) = req.filter {
            let cx = Ctx {
                rec: r,
                digest: &req.digest,
                now_ms,
            };
            if !exp::passes(f, &cx) {
                return Reply::code(rc::FILTERED_OUT);
            }
        }
        return read_reply(r, req, now_ms);
    }
    if req.fail_writes != 0 {
        return Reply::code(req.fail_writes);
    }

    let mut p = store::write(part);
    if p.get(&req.digest).is_some_and(|r| r.is_expired(now_cl)) {
        p.remove(&req.digest);
    }
    let existing = p.get(&req.digest);
    if let (Some(r), Some(f)) = (existing, req.filter) {
        let cx = Ctx {
            rec: r,
            digest: &req.digest,
            now_ms,
        };
        if !exp::passes(f, &cx) {
            return Reply::code(rc::FILTERED_OUT);
        }
    }
    if let Some(r) = existing {
        let gen_ok = if req.info2 & wire::INFO2_GENERATION != 0 {
            u32::from(r.generation) == req.generation
        } else if req.info2 & wire::INFO2_GENERATION_GT != 0 {
            req.generation > u32::from(r.generation)
        } else {
            true
        };
        if !gen_ok {
            return Reply::code(rc::GENERATION);
        }
        if let (Some(k), Some(stored)) = (req.key, r.key.as_deref())
            && k != stored
        {
            return Reply::code(rc::KEY_MISMATCH);
        }
    }
    if req.info2 & wire::INFO2_DELETE != 0 {
        return match p.remove(&req.digest) {
            Some(_) => Reply::code(rc::OK),
            None => Reply::code(rc::KEY_NOT_FOUND),
        };
    }
    match existing {
        Some(_) if req.info2 & wire::INFO2_CREATE_ONLY != 0 => {
            return Reply::code(rc::KEY_EXISTS);
        }
        None if req.info3 & (wire::INFO3_UPDATE_ONLY | wire::INFO3_REPLACE_ONLY) != 0 => {
            return Reply::code(rc::KEY_NOT_FOUND);
        }
        _ => {}
    }
    let void_time = match req.ttl {
        0 => default_void_time(ns.default_ttl, now_cl),
        u32::MAX => 0,
        0xFFFF_FFFE => existing.map_or(default_void_time(ns.default_ttl, now_cl), |r| r.void_time),
        t if t > MAX_TTL_SECS => return Reply::code(rc::PARAMETER),
        t => now_cl + t,
    };
    let replace = req.info3 & (wire::INFO3_CREATE_OR_REPLACE | wire::INFO3_REPLACE_ONLY) != 0;
    let mut bins = match existing {
        Some(r) if !replace => Bins::from_record(r),
        _ => Bins::default(),
    };
    let respond_all = req.info2 & wire::INFO2_RESPOND_ALL_OPS != 0;
    let mut reply = Reply::default();
    let mut delete_record = false;
    let mut touched = false;
    for op in req.ops {
        if op.name.len() > 15 {
            return Reply::code(rc::BIN_NAME_TOO_LONG);
        }
        match op.op {
            wire::OP_WRITE if op.ptype == wire::PT_MAP => {
                bins.set(op.name, op.ptype, wire::normalize_map(op.data));
            }
            wire::OP_WRITE => bins.set(op.name, op.ptype, op.data.to_vec()),
            wire::OP_INCR => match (bins.get(op.name), op.ptype) {
                (None, _) => bins.set(op.name, op.ptype, op.data.to_vec()),
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
                _ => return Reply::code(rc::BIN_TYPE),
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
                _ => return Reply::code(rc::BIN_TYPE),
            },
            wire::OP_TOUCH => {
                if existing.is_none() {
                    return Reply::code(rc::KEY_NOT_FOUND);
                }
                touched = true;
            }
            wire::OP_DELETE => delete_record = true,
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
            _ => return Reply::code(rc::UNSUPPORTED_FEATURE),
        }
        if respond_all {
            reply.push(wire::PT_NULL, op.name, &[]);
        }
    }
    if delete_record {
        p.remove(&req.digest);
        return reply;
    }
    if bins.0.is_empty() && !touched {
        // A record left with no bins is deleted, as on the server.
        p.remove(&req.digest);
        return reply;
    }
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
