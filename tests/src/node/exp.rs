//! Filter expressions: the msgpack wire form (`[op, args...]`) parsed once per command into
//! a tree, then evaluated per record with the server's three-valued logic (true, false,
//! unknown; unknown filters a record out).

use super::store::{CITRUSLEAF_EPOCH_SECS, Digest, Record};
use super::wire::{self, Cur, Val};

const EQ: i64 = 1;
const NE: i64 = 2;
const GT: i64 = 3;
const GE: i64 = 4;
const LT: i64 = 5;
const LE: i64 = 6;
const AND: i64 = 16;
const OR: i64 = 17;
const NOT: i64 = 18;
const XOR: i64 = 19;
const ADD: i64 = 20;
const SUB: i64 = 21;
const MUL: i64 = 22;
const DIV: i64 = 23;
const MOD: i64 = 26;
const ABS: i64 = 27;
const TO_INT: i64 = 30;
const TO_FLOAT: i64 = 31;
const MIN: i64 = 50;
const MAX: i64 = 51;
const DIGEST_MODULO: i64 = 64;
const LAST_UPDATE: i64 = 66;
const SINCE_UPDATE: i64 = 67;
const VOID_TIME: i64 = 68;
const TTL: i64 = 69;
const SET_NAME: i64 = 70;
const KEY_EXISTS: i64 = 71;
const IS_TOMBSTONE: i64 = 72;
const RECORD_SIZE: i64 = 74;
const KEY: i64 = 80;
const BIN: i64 = 81;
const BIN_TYPE: i64 = 82;
const COND: i64 = 123;
const VAR: i64 = 124;
const LET: i64 = 125;

/// A parsed expression.
#[derive(Debug, Clone)]
pub enum Exp {
    Lit(Val),
    Cmp(i64, Box<Exp>, Box<Exp>),
    And(Vec<Exp>),
    Or(Vec<Exp>),
    Not(Box<Exp>),
    Xor(Vec<Exp>),
    Arith(i64, Vec<Exp>),
    DigestModulo(i64),
    Meta(i64),
    Key(i64),
    Bin(i64, Vec<u8>),
    BinType(Vec<u8>),
    Cond(Vec<Exp>),
    Let(Vec<(Vec<u8>, Exp)>, Box<Exp>),
    Var(Vec<u8>),
}

/// Why an expression could not be used; the node answers PARAMETER_ERROR (4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported(pub String);

/// Parses packed expression bytes.
pub fn parse(bytes: &[u8]) -> Result<Exp, Unsupported> {
    let v = wire::unpack(&mut Cur::new(bytes), 0)
        .ok_or_else(|| Unsupported("malformed expression msgpack".into()))?;
    from_val(&v)
}

fn name(v: &Val) -> Result<Vec<u8>, Unsupported> {
    match v {
        Val::Str(s) => Ok(s.clone()),
        other => Err(Unsupported(format!("expected a name, got {other:?}"))),
    }
}

fn int(v: &Val) -> Result<i64, Unsupported> {
    match v {
        Val::Int(i) => Ok(*i),
        other => Err(Unsupported(format!("expected an integer, got {other:?}"))),
    }
}

fn from_val(v: &Val) -> Result<Exp, Unsupported> {
    let Val::List(items) = v else {
        return Ok(Exp::Lit(v.clone()));
    };
    let Some((head, args)) = items.split_first() else {
        return Ok(Exp::Lit(Val::List(Vec::new())));
    };
    let op = match head {
        Val::Int(op) => *op,
        // A list literal (no opcode in front).
        _ => return Ok(Exp::Lit(v.clone())),
    };
    let subs = || args.iter().map(from_val).collect::<Result<Vec<_>, _>>();
    let arg = |i: usize| {
        args.get(i)
            .ok_or_else(|| Unsupported(format!("op {op}: missing operand {i}")))
    };
    Ok(match op {
        EQ..=LE => Exp::Cmp(
            op,
            Box::new(from_val(arg(0)?)?),
            Box::new(from_val(arg(1)?)?),
        ),
        AND => Exp::And(subs()?),
        OR => Exp::Or(subs()?),
        NOT => Exp::Not(Box::new(from_val(arg(0)?)?)),
        XOR => Exp::Xor(subs()?),
        ADD | SUB | MUL | DIV | MOD | ABS | TO_INT | TO_FLOAT | MIN | MAX => {
            Exp::Arith(op, subs()?)
        }
        DIGEST_MODULO => {
            let m = int(arg(0)?)?;
            if m <= 0 {
                return Err(Unsupported("digest_modulo needs a positive divisor".into()));
            }
            Exp::DigestModulo(m)
        }
        LAST_UPDATE | SINCE_UPDATE | VOID_TIME | TTL | SET_NAME | KEY_EXISTS | IS_TOMBSTONE
        | RECORD_SIZE => Exp::Meta(op),
        KEY => Exp::Key(int(arg(0)?)?),
        BIN => Exp::Bin(int(arg(0)?)?, name(arg(1)?)?),
        BIN_TYPE => Exp::BinType(name(arg(0)?)?),
        COND => Exp::Cond(subs()?),
        VAR => Exp::Var(name(arg(0)?)?),
        LET => {
            let (scope, defs) = args
                .split_last()
                .ok_or_else(|| Unsupported("let without a scope".into()))?;
            let mut out = Vec::new();
            for pair in defs.chunks(2) {
                if pair.len() != 2 {
                    return Err(Unsupported("let with an odd definition list".into()));
                }
                out.push((name(&pair[0])?, from_val(&pair[1])?));
            }
            Exp::Let(out, Box::new(from_val(scope)?))
        }
        other => {
            return Err(Unsupported(format!(
                "expression op {other} is not implemented"
            )));
        }
    })
}

/// Parses a filter expression as the server accepts one: a single packed value (no bytes
/// after it) whose result is a boolean. A literal other than a boolean, arithmetic, a metadata
/// or bin value of another type is refused like malformed msgpack (the server answers 4).
pub fn parse_filter(bytes: &[u8]) -> Result<Exp, Unsupported> {
    let mut c = Cur::new(bytes);
    let v = wire::unpack(&mut c, 0)
        .ok_or_else(|| Unsupported("malformed expression msgpack".into()))?;
    if c.remaining() != 0 {
        return Err(Unsupported("bytes after the expression".into()));
    }
    let e = from_val(&v)?;
    if !is_boolean(&e) {
        return Err(Unsupported("a filter must be a boolean expression".into()));
    }
    Ok(e)
}

/// Whether an expression yields a boolean (conditions and variables are taken on trust).
fn is_boolean(e: &Exp) -> bool {
    match e {
        Exp::Lit(v) => matches!(v, Val::Bool(_)),
        Exp::Cmp(..) | Exp::And(_) | Exp::Or(_) | Exp::Not(_) | Exp::Xor(_) => true,
        Exp::Meta(op) => matches!(*op, KEY_EXISTS | IS_TOMBSTONE),
        Exp::Bin(t, _) => particle_for_exp_type(*t) == wire::PT_BOOL,
        Exp::Cond(_) | Exp::Let(..) | Exp::Var(_) => true,
        Exp::Arith(..) | Exp::DigestModulo(_) | Exp::Key(_) | Exp::BinType(_) => false,
    }
}

/// What an expression sees of a record.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    pub rec: &'a Record,
    pub digest: &'a Digest,
    pub now_ms: u64,
}

/// Expression type codes (the client's `ExpType`) mapped to particle types.
fn particle_for_exp_type(t: i64) -> u8 {
    match t {
        1 => wire::PT_BOOL,
        2 => wire::PT_INTEGER,
        3 => wire::PT_STRING,
        4 => wire::PT_LIST,
        5 => wire::PT_MAP,
        6 => wire::PT_BLOB,
        7 => wire::PT_FLOAT,
        8 => wire::PT_GEOJSON,
        9 => wire::PT_HLL,
        _ => wire::PT_NULL,
    }
}

/// `None` is the server's "unknown".
pub type Out = Option<Val>;

fn cmp(op: i64, a: &Val, b: &Val) -> Out {
    use std::cmp::Ordering as O;
    let ord = match (a, b) {
        (Val::Int(x), Val::Int(y)) => x.cmp(y),
        (Val::Float(x), Val::Float(y)) => x.partial_cmp(y)?,
        (Val::Str(x), Val::Str(y)) | (Val::Blob(x), Val::Blob(y)) => x.cmp(y),
        (Val::Bool(x), Val::Bool(y)) => x.cmp(y),
        (x, y) if op == EQ || op == NE => {
            // Lists, maps, nil: only (in)equality is defined.
            return Some(Val::Bool((x == y) == (op == EQ)));
        }
        _ => return None,
    };
    Some(Val::Bool(match op {
        EQ => ord == O::Equal,
        NE => ord != O::Equal,
        GT => ord == O::Greater,
        GE => ord != O::Less,
        LT => ord == O::Less,
        _ => ord != O::Greater,
    }))
}

fn arith(op: i64, vals: Vec<Val>) -> Out {
    let ints: Option<Vec<i64>> = vals
        .iter()
        .map(|v| if let Val::Int(i) = v { Some(*i) } else { None })
        .collect();
    let floats: Option<Vec<f64>> = vals
        .iter()
        .map(|v| {
            if let Val::Float(f) = v {
                Some(*f)
            } else {
                None
            }
        })
        .collect();
    match op {
        TO_INT => match vals.first()? {
            Val::Float(f) => Some(Val::Int(*f as i64)),
            _ => None,
        },
        TO_FLOAT => match vals.first()? {
            Val::Int(i) => Some(Val::Float(*i as f64)),
            _ => None,
        },
        _ => {
            if let Some(xs) = ints {
                let (first, rest) = xs.split_first()?;
                let v = rest.iter().try_fold(*first, |acc, x| match op {
                    ADD => Some(acc.wrapping_add(*x)),
                    SUB => Some(acc.wrapping_sub(*x)),
                    MUL => Some(acc.wrapping_mul(*x)),
                    DIV => acc.checked_div(*x),
                    MOD => acc.checked_rem(*x),
                    MIN => Some(acc.min(*x)),
                    MAX => Some(acc.max(*x)),
                    _ => None,
                })?;
                Some(Val::Int(if op == ABS { v.wrapping_abs() } else { v }))
            } else if let Some(xs) = floats {
                let (first, rest) = xs.split_first()?;
                let v = rest.iter().try_fold(*first, |acc, x| match op {
                    ADD => Some(acc + x),
                    SUB => Some(acc - x),
                    MUL => Some(acc * x),
                    DIV => Some(acc / x),
                    MIN => Some(acc.min(*x)),
                    MAX => Some(acc.max(*x)),
                    _ => None,
                })?;
                Some(Val::Float(if op == ABS { v.abs() } else { v }))
            } else {
                None
            }
        }
    }
}

/// Evaluates `e` against a record. `vars` holds `let` bindings.
pub fn eval(e: &Exp, cx: &Ctx<'_>, vars: &mut Vec<(Vec<u8>, Out)>) -> Out {
    match e {
        Exp::Lit(v) => Some(v.clone()),
        Exp::Cmp(op, a, b) => {
            let a = eval(a, cx, vars)?;
            let b = eval(b, cx, vars)?;
            cmp(*op, &a, &b)
        }
        Exp::And(xs) => {
            let mut unknown = false;
            for x in xs {
                match eval(x, cx, vars) {
                    Some(Val::Bool(false)) => return Some(Val::Bool(false)),
                    Some(Val::Bool(true)) => {}
                    _ => unknown = true,
                }
            }
            (!unknown).then_some(Val::Bool(true))
        }
        Exp::Or(xs) => {
            let mut unknown = false;
            for x in xs {
                match eval(x, cx, vars) {
                    Some(Val::Bool(true)) => return Some(Val::Bool(true)),
                    Some(Val::Bool(false)) => {}
                    _ => unknown = true,
                }
            }
            (!unknown).then_some(Val::Bool(false))
        }
        Exp::Not(x) => match eval(x, cx, vars)? {
            Val::Bool(b) => Some(Val::Bool(!b)),
            _ => None,
        },
        Exp::Xor(xs) => {
            let mut acc = false;
            for x in xs {
                match eval(x, cx, vars)? {
                    Val::Bool(b) => acc ^= b,
                    _ => return None,
                }
            }
            Some(Val::Bool(acc))
        }
        Exp::Arith(op, xs) => {
            let vals = xs
                .iter()
                .map(|x| eval(x, cx, vars))
                .collect::<Option<Vec<_>>>()?;
            arith(*op, vals)
        }
        Exp::DigestModulo(m) => {
            // The server reads the digest's last four bytes as a native (little-endian) u32.
            let d = cx.digest;
            let v = u32::from_le_bytes([d[16], d[17], d[18], d[19]]);
            Some(Val::Int(i64::from(v) % m))
        }
        Exp::Meta(op) => meta(*op, cx),
        Exp::Key(t) => {
            let key = cx.rec.key.as_ref()?;
            let (&pt, data) = key.split_first()?;
            (pt == particle_for_exp_type(*t)).then(|| Val::from_particle(pt, data))
        }
        Exp::Bin(t, name) => {
            let b = cx.rec.bin(name)?;
            (b.ptype == particle_for_exp_type(*t)).then(|| Val::from_particle(b.ptype, b.data))
        }
        Exp::BinType(name) => Some(Val::Int(cx.rec.bin(name).map_or(0, |b| i64::from(b.ptype)))),
        Exp::Cond(xs) => {
            let (default, cases) = xs.split_last()?;
            for pair in cases.chunks(2) {
                if pair.len() == 2 && eval(&pair[0], cx, vars)? == Val::Bool(true) {
                    return eval(&pair[1], cx, vars);
                }
            }
            eval(default, cx, vars)
        }
        Exp::Var(n) => vars.iter().rev().find(|(k, _)| k == n)?.1.clone(),
        Exp::Let(defs, scope) => {
            let depth = vars.len();
            for (n, d) in defs {
                let v = eval(d, cx, vars);
                vars.push((n.clone(), v));
            }
            let out = eval(scope, cx, vars);
            vars.truncate(depth);
            out
        }
    }
}

fn meta(op: i64, cx: &Ctx<'_>) -> Out {
    let r = cx.rec;
    Some(match op {
        // Unix nanoseconds, at the millisecond resolution the server keeps.
        LAST_UPDATE => Val::Int(r.lut_ms as i64 * 1_000_000),
        SINCE_UPDATE => Val::Int(cx.now_ms.saturating_sub(r.lut_ms) as i64),
        VOID_TIME => Val::Int(if r.void_time == 0 {
            -1
        } else {
            (u64::from(r.void_time) + CITRUSLEAF_EPOCH_SECS) as i64 * 1_000_000_000
        }),
        TTL => Val::Int(if r.void_time == 0 {
            -1
        } else {
            let now_cl = (cx.now_ms / 1000).saturating_sub(CITRUSLEAF_EPOCH_SECS);
            (u64::from(r.void_time).saturating_sub(now_cl)) as i64
        }),
        SET_NAME => Val::Str(r.set.as_deref().unwrap_or("").as_bytes().to_vec()),
        KEY_EXISTS => Val::Bool(r.key.is_some()),
        IS_TOMBSTONE => Val::Bool(false),
        RECORD_SIZE => Val::Int(r.stored_size() as i64),
        _ => return None,
    })
}

/// True when the filter lets the record through.
pub fn passes(e: &Exp, cx: &Ctx<'_>) -> bool {
    matches!(eval(e, cx, &mut Vec::new()), Some(Val::Bool(true)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::store::Bins;

    fn rec(lut_ms: u64) -> Record {
        let mut b = Bins::default();
        b.set(b"n", wire::PT_INTEGER, 5i64.to_be_bytes().to_vec());
        let (bins, n) = b.encode();
        Record {
            set: Some("s".into()),
            key: None,
            bins,
            n_bins: n,
            generation: 1,
            void_time: 0,
            lut_ms,
        }
    }

    fn packed(v: &Val) -> Vec<u8> {
        let mut out = Vec::new();
        wire::pack(&mut out, v);
        out
    }

    fn op(code: i64, args: Vec<Val>) -> Val {
        let mut v = vec![Val::Int(code)];
        v.extend(args);
        Val::List(v)
    }

    #[test]
    fn last_update_window_is_exact_at_the_edges() {
        let t = 1_700_000_000_123u64;
        let window = |lo: i64, hi: i64| {
            op(
                AND,
                vec![
                    op(GE, vec![op(LAST_UPDATE, vec![]), Val::Int(lo)]),
                    op(LT, vec![op(LAST_UPDATE, vec![]), Val::Int(hi)]),
                ],
            )
        };
        let r = rec(t);
        let d = [0u8; 20];
        let cx = Ctx {
            rec: &r,
            digest: &d,
            now_ms: t,
        };
        let ns = t as i64 * 1_000_000;
        assert!(passes(&parse(&packed(&window(ns, ns + 1))).unwrap(), &cx));
        assert!(!passes(
            &parse(&packed(&window(ns + 1, ns + 2))).unwrap(),
            &cx
        ));
        assert!(!passes(&parse(&packed(&window(ns - 5, ns))).unwrap(), &cx));
    }

    #[test]
    fn typed_bin_reads_and_unknowns() {
        let r = rec(1);
        let d = [0u8; 20];
        let cx = Ctx {
            rec: &r,
            digest: &d,
            now_ms: 2,
        };
        let int_bin = op(BIN, vec![Val::Int(2), Val::Str(b"n".to_vec())]);
        let str_bin = op(BIN, vec![Val::Int(3), Val::Str(b"n".to_vec())]);
        assert!(passes(
            &parse(&packed(&op(EQ, vec![int_bin, Val::Int(5)]))).unwrap(),
            &cx
        ));
        // Wrong type is unknown, and not(unknown) stays unknown.
        let e = op(NOT, vec![op(EQ, vec![str_bin, Val::Str(b"x".to_vec())])]);
        assert!(!passes(&parse(&packed(&e)).unwrap(), &cx));
        let set = op(EQ, vec![op(SET_NAME, vec![]), Val::Str(b"s".to_vec())]);
        assert!(passes(&parse(&packed(&set)).unwrap(), &cx));
    }

    #[test]
    fn unknown_ops_are_reported() {
        let e = op(7, vec![Val::Int(0), Val::Str(b"a.*".to_vec())]);
        assert!(parse(&packed(&e)).is_err());
    }
}
