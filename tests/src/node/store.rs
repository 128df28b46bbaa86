//! In-memory record storage shared by every node of a test cluster.
//!
//! Each namespace keeps 4096 partitions, each a digest-ordered `BTreeMap` behind its own
//! `RwLock`, so partition scans can resume after a digest exactly as the server does.
//! Every partition keeps per-set object and byte counters, so the object counts that info
//! commands answer cost one pass over 4096 small counters, not a walk of the store.
//! A record's bins live in one boxed byte string already in reply-op wire form, which keeps
//! a million records small and lets a scan copy bins out without re-encoding them.

use std::collections::{BTreeMap, HashMap};
use std::ops::Deref;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use super::wire::{self, Cur};

pub type Digest = [u8; 20];
pub const PARTITIONS: usize = 4096;
/// Seconds between the Unix epoch and the Citrusleaf epoch (2010-01-01).
pub const CITRUSLEAF_EPOCH_SECS: u64 = 1_262_304_000;
/// The server refuses TTLs above ten years.
pub const MAX_TTL_SECS: u32 = 10 * 365 * 24 * 3600;

/// The node's clock, in Unix milliseconds. Tests can pin or shift it so that
/// last-update-times and expiry are deterministic.
#[derive(Debug, Default)]
pub struct NodeClock {
    pinned_ms: AtomicU64,
    offset_ms: AtomicI64,
}

impl NodeClock {
    pub fn now_ms(&self) -> u64 {
        let pinned = self.pinned_ms.load(Ordering::Relaxed);
        if pinned != 0 {
            return pinned;
        }
        let real = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        real.saturating_add_signed(self.offset_ms.load(Ordering::Relaxed))
    }
    /// Freezes time at `unix_ms` (0 returns to the real clock).
    pub fn pin_ms(&self, unix_ms: u64) {
        self.pinned_ms.store(unix_ms, Ordering::Relaxed);
    }
    /// Moves time forward (or back) by `delta_ms`, pinned or not.
    pub fn advance_ms(&self, delta_ms: i64) {
        let pinned = self.pinned_ms.load(Ordering::Relaxed);
        if pinned != 0 {
            self.pinned_ms
                .store(pinned.saturating_add_signed(delta_ms), Ordering::Relaxed);
        } else {
            self.offset_ms.fetch_add(delta_ms, Ordering::Relaxed);
        }
    }
    /// Seconds since the Citrusleaf epoch, the unit of void times.
    pub fn now_cl_secs(&self) -> u32 {
        (self.now_ms() / 1000).saturating_sub(CITRUSLEAF_EPOCH_SECS) as u32
    }
}

/// One stored record.
#[derive(Debug, Clone)]
pub struct Record {
    pub set: Option<Arc<str>>,
    /// Stored user key: particle type byte then particle bytes (send-key writes only).
    pub key: Option<Box<[u8]>>,
    /// Bins as reply ops: `size u32 | op | particle type | 0 | name len | name | data`.
    pub bins: Box<[u8]>,
    pub n_bins: u16,
    pub generation: u16,
    /// Citrusleaf-epoch seconds; 0 = never expires.
    pub void_time: u32,
    /// Unix milliseconds of the last write (the server keeps ms precision).
    pub lut_ms: u64,
}

/// One bin as a borrowed view into a record.
#[derive(Debug, Clone, Copy)]
pub struct BinRef<'a> {
    pub name: &'a [u8],
    pub ptype: u8,
    pub data: &'a [u8],
    /// The whole encoded op, for copying into replies.
    pub raw: &'a [u8],
}

impl Record {
    pub fn bins(&self) -> BinIter<'_> {
        BinIter {
            c: Cur::new(&self.bins),
        }
    }
    pub fn bin(&self, name: &[u8]) -> Option<BinRef<'_>> {
        self.bins().find(|b| b.name == name)
    }
    pub fn is_expired(&self, now_cl: u32) -> bool {
        self.void_time != 0 && self.void_time <= now_cl
    }
    /// Approximate stored size, for `data_used_bytes` and `record_size()`.
    pub fn stored_size(&self) -> usize {
        self.bins.len() + self.key.as_ref().map_or(0, |k| k.len()) + 64
    }
}

#[derive(Debug)]
pub struct BinIter<'a> {
    c: Cur<'a>,
}

impl<'a> Iterator for BinIter<'a> {
    type Item = BinRef<'a>;
    fn next(&mut self) -> Option<BinRef<'a>> {
        let start = self.c.pos;
        let size = self.c.u32()? as usize;
        let body = self.c.take(size)?;
        let nlen = *body.get(3)? as usize;
        Some(BinRef {
            name: body.get(4..4 + nlen)?,
            ptype: body[1],
            data: body.get(4 + nlen..)?,
            raw: &self.c.buf[start..self.c.pos],
        })
    }
}

/// Owned bins being edited by a write; turned back into the compact form afterwards.
#[derive(Debug, Default, Clone)]
pub struct Bins(pub Vec<(Vec<u8>, u8, Vec<u8>)>);

impl Bins {
    pub fn from_record(r: &Record) -> Bins {
        Bins(
            r.bins()
                .map(|b| (b.name.to_vec(), b.ptype, b.data.to_vec()))
                .collect(),
        )
    }
    pub fn get(&self, name: &[u8]) -> Option<(u8, &[u8])> {
        self.0
            .iter()
            .find(|b| b.0 == name)
            .map(|b| (b.1, b.2.as_slice()))
    }
    /// Sets a bin; a null particle deletes it, as on the server, which moves its last bin
    /// into the deleted one's place.
    pub fn set(&mut self, name: &[u8], ptype: u8, data: Vec<u8>) {
        let pos = self.0.iter().position(|b| b.0 == name);
        match (pos, ptype) {
            (Some(i), wire::PT_NULL) => {
                self.0.swap_remove(i);
            }
            (None, wire::PT_NULL) => {}
            (Some(i), _) => self.0[i] = (name.to_vec(), ptype, data),
            (None, _) => self.0.push((name.to_vec(), ptype, data)),
        }
    }
    pub fn encode(&self) -> (Box<[u8]>, u16) {
        let mut out = Vec::with_capacity(self.0.iter().map(|b| 8 + b.0.len() + b.2.len()).sum());
        for (name, ptype, data) in &self.0 {
            wire::put_op(&mut out, *ptype, name, data);
        }
        (out.into_boxed_slice(), self.0.len() as u16)
    }
}

/// Objects and stored bytes of one set in one partition.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SetCount {
    pub objects: u64,
    pub bytes: u64,
}

/// One partition: its records in digest order plus counters kept on every change.
///
/// Reads go through `Deref` to the map; every change goes through `insert`, `remove` or
/// `retain`, which keep the counters true.
#[derive(Debug, Default)]
pub struct Partition {
    records: BTreeMap<Digest, Record>,
    /// Per set (`None` = no set); a handful of entries, so a vector is enough.
    counts: Vec<(Option<Arc<str>>, SetCount)>,
    /// No record here expires before this void time (0 = none expires), so a count can
    /// tell cheaply whether it must reap expired records first.
    earliest_void: u32,
}

impl Deref for Partition {
    type Target = BTreeMap<Digest, Record>;
    fn deref(&self) -> &BTreeMap<Digest, Record> {
        &self.records
    }
}

fn same_set(a: &Option<Arc<str>>, b: &Option<Arc<str>>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(x), Some(y)) => Arc::ptr_eq(x, y) || x == y,
        _ => false,
    }
}

impl Partition {
    fn count_mut(&mut self, set: &Option<Arc<str>>) -> &mut SetCount {
        let i = match self.counts.iter().position(|(s, _)| same_set(s, set)) {
            Some(i) => i,
            None => {
                self.counts.push((set.clone(), SetCount::default()));
                self.counts.len() - 1
            }
        };
        &mut self.counts[i].1
    }
    fn account(&mut self, r: &Record, add: bool) {
        let size = r.stored_size() as u64;
        let c = self.count_mut(&r.set);
        if add {
            c.objects += 1;
            c.bytes += size;
        } else {
            c.objects = c.objects.saturating_sub(1);
            c.bytes = c.bytes.saturating_sub(size);
        }
    }
    pub fn insert(&mut self, digest: Digest, r: Record) -> Option<Record> {
        self.account(&r, true);
        if r.void_time != 0 && (self.earliest_void == 0 || r.void_time < self.earliest_void) {
            self.earliest_void = r.void_time;
        }
        let old = self.records.insert(digest, r);
        if let Some(o) = &old {
            self.account(o, false);
        }
        old
    }
    pub fn remove(&mut self, digest: &Digest) -> Option<Record> {
        let old = self.records.remove(digest);
        if let Some(o) = &old {
            self.account(o, false);
        }
        old
    }
    /// Keeps the records for which `keep` is true; returns how many were removed.
    pub fn retain(&mut self, mut keep: impl FnMut(&Digest, &Record) -> bool) -> usize {
        let mut removed = Vec::new();
        self.records.retain(|d, r| {
            let k = keep(d, r);
            if !k {
                removed.push((r.set.clone(), r.stored_size() as u64));
            }
            k
        });
        for (set, size) in &removed {
            let c = self.count_mut(set);
            c.objects = c.objects.saturating_sub(1);
            c.bytes = c.bytes.saturating_sub(*size);
        }
        removed.len()
    }
    /// Whether a record may have expired by `now_cl` (then a count reaps first).
    pub fn may_hold_expired(&self, now_cl: u32) -> bool {
        self.earliest_void != 0 && self.earliest_void <= now_cl
    }
    /// Drops expired records, as the server's nsup thread does, and recomputes the
    /// earliest void time.
    pub fn reap(&mut self, now_cl: u32) -> usize {
        let removed = self.retain(|_, r| !r.is_expired(now_cl));
        self.earliest_void = self
            .records
            .values()
            .map(|r| r.void_time)
            .filter(|v| *v != 0)
            .min()
            .unwrap_or(0);
        removed
    }
    /// Per-set counters (entries may be zero).
    pub fn counts(&self) -> impl Iterator<Item = (Option<&str>, SetCount)> {
        self.counts.iter().map(|(s, c)| (s.as_deref(), *c))
    }
}

/// Per-set bookkeeping: the interned name and the last truncate time.
#[derive(Debug, Default)]
pub struct SetMeta {
    pub name: Option<Arc<str>>,
    pub truncate_lut_ms: u64,
}

#[derive(Debug)]
pub struct Namespace {
    pub name: String,
    /// Seconds; 0 = records never expire by default.
    pub default_ttl: u32,
    pub parts: Vec<RwLock<Partition>>,
    pub sets: Mutex<HashMap<String, SetMeta>>,
    pub truncate_lut_ms: AtomicU64,
}

impl Namespace {
    pub fn new(name: &str, default_ttl: u32) -> Namespace {
        Namespace {
            name: name.to_string(),
            default_ttl,
            parts: (0..PARTITIONS)
                .map(|_| RwLock::new(Partition::default()))
                .collect(),
            sets: Mutex::new(HashMap::new()),
            truncate_lut_ms: AtomicU64::new(0),
        }
    }

    /// Interns a set name so records share one allocation per set.
    pub fn intern_set(&self, set: &str) -> Option<Arc<str>> {
        if set.is_empty() {
            return None;
        }
        let mut sets = lock(&self.sets);
        let meta = sets.entry(set.to_string()).or_default();
        Some(meta.name.get_or_insert_with(|| Arc::from(set)).clone())
    }

    pub fn part(&self, digest: &Digest) -> &RwLock<Partition> {
        &self.parts[wire::partition_of(digest)]
    }

    /// Removes records of `set` (all sets if `None`) last updated before `before_ms`.
    pub fn truncate(&self, set: Option<&str>, before_ms: u64) -> usize {
        match set {
            Some(s) => {
                lock(&self.sets)
                    .entry(s.to_string())
                    .or_default()
                    .truncate_lut_ms = before_ms;
            }
            None => self.truncate_lut_ms.store(before_ms, Ordering::Relaxed),
        }
        let mut removed = 0;
        for p in &self.parts {
            removed += write(p).retain(|_, r| {
                let in_set = set.is_none_or(|s| r.set.as_deref() == Some(s));
                !(in_set && r.lut_ms < before_ms)
            });
        }
        removed
    }

    /// Per set name ("" for no set), over the partitions `copy_of` says a node holds
    /// (`Some(0)` = master): (objects, data bytes, master objects). Read from the
    /// partitions' counters; partitions that may hold expired records are reaped first, so
    /// expired records are never counted.
    pub fn set_stats(
        &self,
        now_cl: u32,
        copy_of: impl Fn(usize) -> Option<usize>,
    ) -> BTreeMap<String, SetStats> {
        let mut out: BTreeMap<String, SetStats> = BTreeMap::new();
        for s in lock(&self.sets).keys() {
            out.entry(s.clone()).or_default();
        }
        for (pid, p) in self.parts.iter().enumerate() {
            let Some(copy) = copy_of(pid) else { continue };
            if read(p).may_hold_expired(now_cl) {
                write(p).reap(now_cl);
            }
            for (set, c) in read(p).counts() {
                let set = set.unwrap_or("");
                let e = match out.get_mut(set) {
                    Some(e) => e,
                    None => out.entry(set.to_string()).or_default(),
                };
                e.objects += c.objects;
                e.bytes += c.bytes;
                if copy == 0 {
                    e.master_objects += c.objects;
                }
            }
        }
        out
    }
}

/// Record counts of one set as one node reports them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SetStats {
    pub objects: u64,
    pub bytes: u64,
    pub master_objects: u64,
}

/// A registered UDF module.
#[derive(Debug, Clone)]
pub struct Udf {
    pub content: Vec<u8>,
    pub kind: String,
}

/// A secondary index definition (queries evaluate it by scanning).
#[derive(Debug, Clone)]
pub struct SIndex {
    pub ns: String,
    pub set: String,
    pub name: String,
    pub bin: String,
    /// "numeric", "string", "blob", "geo2dsphere" ("none" for a set index).
    pub ktype: String,
    /// "default", "list", "mapkeys", "mapvalues" or "set".
    pub itype: String,
    /// Base64 CDT context as sent ("" = none).
    pub context: String,
    /// Base64 expression of an expression index ("" = none).
    pub exp: String,
}

impl SIndex {
    /// Everything but the name: what the server keys an index by.
    pub fn same_definition(&self, other: &SIndex) -> bool {
        (
            &self.ns,
            &self.set,
            &self.bin,
            &self.ktype,
            &self.itype,
            &self.context,
            &self.exp,
        ) == (
            &other.ns,
            &other.set,
            &other.bin,
            &other.ktype,
            &other.itype,
            &other.context,
            &other.exp,
        )
    }
}

pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
pub fn read<T>(m: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(|e| e.into_inner())
}
pub fn write<T>(m: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(|e| e.into_inner())
}

/// Everything a test cluster stores.
#[derive(Debug)]
pub struct Store {
    pub namespaces: Vec<Namespace>,
    pub clock: NodeClock,
    pub udfs: Mutex<BTreeMap<String, Udf>>,
    pub sindexes: Mutex<Vec<SIndex>>,
}

impl Store {
    pub fn new(namespaces: &[(String, u32)]) -> Store {
        Store {
            namespaces: namespaces
                .iter()
                .map(|(n, ttl)| Namespace::new(n, *ttl))
                .collect(),
            clock: NodeClock::default(),
            udfs: Mutex::new(BTreeMap::new()),
            sindexes: Mutex::new(Vec::new()),
        }
    }
    pub fn ns(&self, name: &[u8]) -> Option<&Namespace> {
        self.namespaces.iter().find(|n| n.name.as_bytes() == name)
    }
    /// Total live records in a namespace, from the partition counters.
    pub fn count(&self, ns: &str) -> usize {
        let now = self.clock.now_cl_secs();
        self.ns(ns.as_bytes()).map_or(0, |n| {
            n.set_stats(now, |_| Some(0))
                .values()
                .map(|s| s.objects as usize)
                .sum()
        })
    }
}

/// RIPEMD-160 digest of a user key as clients compute it: set name, key particle type, key bytes.
pub fn compute_digest(set: &str, ptype: u8, key: &[u8]) -> Digest {
    use ripemd::{Digest as _, Ripemd160};
    let mut h = Ripemd160::new();
    h.update(set.as_bytes());
    h.update([ptype]);
    h.update(key);
    let out = h.finalize();
    let mut d = [0u8; 20];
    d.copy_from_slice(&out);
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_encode_and_iterate() {
        let mut b = Bins::default();
        b.set(b"a", wire::PT_INTEGER, 7i64.to_be_bytes().to_vec());
        b.set(b"s", wire::PT_STRING, b"hi".to_vec());
        b.set(b"a", wire::PT_NULL, vec![]);
        let (bins, n) = b.encode();
        let r = Record {
            set: None,
            key: None,
            bins,
            n_bins: n,
            generation: 1,
            void_time: 0,
            lut_ms: 0,
        };
        let names: Vec<_> = r.bins().map(|b| b.name.to_vec()).collect();
        assert_eq!(names, vec![b"s".to_vec()]);
        assert_eq!(r.bin(b"s").map(|b| b.data), Some(&b"hi"[..]));
    }

    fn rec(ns: &Namespace, set: &str, void_time: u32) -> Record {
        let mut b = Bins::default();
        b.set(b"a", wire::PT_INTEGER, 1i64.to_be_bytes().to_vec());
        let (bins, n_bins) = b.encode();
        Record {
            set: ns.intern_set(set),
            key: None,
            bins,
            n_bins,
            generation: 1,
            void_time,
            lut_ms: 5,
        }
    }

    #[test]
    fn partition_counters_follow_inserts_removes_truncates_and_expiry() {
        let store = Store::new(&[("test".to_string(), 0)]);
        let ns = store.ns(b"test").unwrap();
        let now = store.clock.now_cl_secs();
        let d = |i: u8| [i; 20];
        for i in 0..10u8 {
            let set = if i < 6 { "s1" } else { "" };
            write(ns.part(&d(i))).insert(d(i), rec(ns, set, 0));
        }
        // Replacing a record keeps the count; expiring ones are counted until they expire.
        write(ns.part(&d(0))).insert(d(0), rec(ns, "s1", 0));
        write(ns.part(&d(20))).insert(d(20), rec(ns, "s2", now + 10));
        assert_eq!(store.count("test"), 11);
        let stats = ns.set_stats(now, |_| Some(0));
        assert_eq!(stats["s1"].objects, 6);
        assert_eq!(stats[""].objects, 4);
        assert_eq!(stats["s2"].objects, 1);
        assert_eq!(stats["s1"].bytes, 6 * rec(ns, "s1", 0).stored_size() as u64);

        write(ns.part(&d(1))).remove(&d(1));
        assert_eq!(ns.truncate(Some("s1"), 6), 5);
        assert_eq!(store.count("test"), 5);
        // The expired record is reaped by the count, as nsup would, and stays gone.
        assert_eq!(ns.set_stats(now + 10, |_| Some(0))["s2"].objects, 0);
        assert!(read(ns.part(&d(20))).get(&d(20)).is_none());
        assert_eq!(store.count("test"), 4);
    }

    #[test]
    fn digest_matches_the_clients_for_a_string_key() {
        // Aerospike's documented example: set "", integer key 1 is hashed from type 1 + 8 bytes.
        let d = compute_digest("set", wire::PT_STRING, b"key");
        assert_eq!(d.len(), 20);
        assert_ne!(d, compute_digest("set", wire::PT_STRING, b"key2"));
    }

    #[test]
    fn pinned_clock_advances() {
        let c = NodeClock::default();
        c.pin_ms(1_700_000_000_000);
        c.advance_ms(5);
        assert_eq!(c.now_ms(), 1_700_000_000_005);
        assert_eq!(
            c.now_cl_secs(),
            (1_700_000_000 - CITRUSLEAF_EPOCH_SECS) as u32
        );
    }
}
