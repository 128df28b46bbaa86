//! Deterministic test data: records of every particle type, in several sets, with sizes
//! drawn from a seeded RNG, written straight into a node's store (no network round trips,
//! so a million records load in seconds).
//!
//! Record `i` has integer user key `i` (stored, as with send-key) in set
//! `sets[i % sets.len()]`, so tests can address it with the client's `Key::new`.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::node::store::{self, Bins, Record};
use crate::node::wire::{self, Val};
use crate::node::{AerospikeNode, Store, compute_digest};

/// What to generate.
#[derive(Debug, Clone)]
pub struct FixtureSpec {
    pub namespace: String,
    pub records: usize,
    /// Set names cycled over; empty means records have no set.
    pub sets: Vec<String>,
    pub seed: u64,
    pub shape: Shape,
    /// First user key; records get keys `first_key..first_key + records`.
    pub first_key: i64,
}

/// Which bins each record gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Every particle type: int, float, string, blob, bool, list, map, GeoJSON, HLL bytes,
    /// with sizes that vary per record.
    AllTypes,
    /// Five small bins (int, 100-byte string, float, 32-byte blob, 3-int list), the shape
    /// used for throughput figures.
    Small,
}

impl Default for FixtureSpec {
    fn default() -> Self {
        FixtureSpec {
            namespace: "test".into(),
            records: 1000,
            sets: vec!["set_a".into(), "set_b".into(), "set_c".into()],
            seed: 42,
            shape: Shape::AllTypes,
            first_key: 0,
        }
    }
}

/// One generated record.
#[derive(Debug, Clone, PartialEq)]
pub struct FixtureRecord {
    pub user_key: i64,
    pub set: String,
    pub digest: store::Digest,
    pub bins: Vec<(String, Val)>,
}

fn text(rng: &mut StdRng, len: usize) -> Vec<u8> {
    (0..len).map(|_| rng.gen_range(b'a'..=b'z')).collect()
}

/// Generates the records of `spec`, in key order.
pub fn generate(spec: &FixtureSpec) -> impl Iterator<Item = FixtureRecord> + '_ {
    let mut rng = StdRng::seed_from_u64(spec.seed);
    (0..spec.records).map(move |i| {
        let user_key = spec.first_key + i as i64;
        let set = if spec.sets.is_empty() {
            String::new()
        } else {
            spec.sets[i % spec.sets.len()].clone()
        };
        let digest = compute_digest(&set, wire::PT_INTEGER, &user_key.to_be_bytes());
        let bins = match spec.shape {
            Shape::Small => vec![
                ("id".to_string(), Val::Int(user_key)),
                ("name".to_string(), Val::Str(text(&mut rng, 100))),
                ("score".to_string(), Val::Float(rng.r#gen::<f64>() * 1000.0)),
                (
                    "raw".to_string(),
                    Val::Blob((0..32).map(|_| rng.r#gen()).collect()),
                ),
                (
                    "tags".to_string(),
                    Val::List((0..3).map(|_| Val::Int(rng.gen_range(0..1000))).collect()),
                ),
            ],
            Shape::AllTypes => {
                let slen = rng.gen_range(0..200);
                let blen = rng.gen_range(1..300);
                let items = rng.gen_range(0..8);
                let mut bins = vec![
                    ("int".to_string(), Val::Int(rng.r#gen::<i64>())),
                    ("float".to_string(), Val::Float(rng.gen_range(-1e6..1e6))),
                    ("str".to_string(), Val::Str(text(&mut rng, slen))),
                    (
                        "blob".to_string(),
                        Val::Blob((0..blen).map(|_| rng.r#gen()).collect()),
                    ),
                    ("bool".to_string(), Val::Bool(rng.r#gen())),
                    (
                        "list".to_string(),
                        Val::List(
                            (0..items)
                                .map(|j| {
                                    if j % 2 == 0 {
                                        Val::Int(rng.gen_range(-100..100))
                                    } else {
                                        Val::Str(text(&mut rng, 5))
                                    }
                                })
                                .collect(),
                        ),
                    ),
                    (
                        "map".to_string(),
                        Val::Map(
                            (0..items)
                                .map(|j| {
                                    (
                                        Val::Str(format!("k{j}").into_bytes()),
                                        Val::Int(rng.r#gen()),
                                    )
                                })
                                .collect(),
                        ),
                    ),
                ];
                if i % 4 == 0 {
                    let (lng, lat) = (rng.gen_range(-180.0..180.0), rng.gen_range(-90.0..90.0));
                    let geo = format!(r#"{{"type":"Point","coordinates":[{lng:.4},{lat:.4}]}}"#);
                    bins.push(("geo".to_string(), Val::Geo(geo.into_bytes())));
                }
                if i % 5 == 0 {
                    bins.push((
                        "hll".to_string(),
                        Val::Hll((0..64).map(|_| rng.r#gen()).collect()),
                    ));
                }
                bins
            }
        };
        FixtureRecord {
            user_key,
            set,
            digest,
            bins,
        }
    })
}

/// Writes the records of `spec` into `store` as of the store's clock (generation 1, no
/// expiry, user key stored). Returns how many were written.
pub fn fill_store(store: &Store, spec: &FixtureSpec) -> usize {
    let Some(ns) = store.ns(spec.namespace.as_bytes()) else {
        return 0;
    };
    let now_ms = store.clock.now_ms();
    let mut n = 0;
    for rec in generate(spec) {
        let mut bins = Bins::default();
        for (name, v) in &rec.bins {
            let (pt, data) = v.to_particle();
            // Lists and maps as a server stores them (shortest integers, sorted keys), so a
            // restore, which writes through the node's checks, gives back the same bytes.
            let data = match pt {
                wire::PT_LIST | wire::PT_MAP => crate::node::cdt::from_wire(pt, &data)
                    .expect("fixture lists and maps are valid"),
                _ => data,
            };
            bins.set(name.as_bytes(), pt, data);
        }
        let (encoded, n_bins) = bins.encode();
        let mut key = vec![wire::PT_INTEGER];
        key.extend_from_slice(&rec.user_key.to_be_bytes());
        let record = Record {
            set: ns.intern_set(&rec.set),
            key: Some(key.into_boxed_slice()),
            bins: encoded,
            n_bins,
            generation: 1,
            void_time: 0,
            lut_ms: now_ms,
        };
        store::write(ns.part(&rec.digest)).insert(rec.digest, record);
        n += 1;
    }
    n
}

/// Fills a running node's store.
pub fn fill(node: &AerospikeNode, spec: &FixtureSpec) -> usize {
    fill_store(node.store(), spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_records_different_seed_different_records() {
        let spec = FixtureSpec {
            records: 50,
            ..FixtureSpec::default()
        };
        let a: Vec<_> = generate(&spec).collect();
        let b: Vec<_> = generate(&spec).collect();
        assert_eq!(a, b);
        let c: Vec<_> = generate(&FixtureSpec {
            seed: 7,
            ..spec.clone()
        })
        .collect();
        assert_ne!(a[0].bins, c[0].bins);
        assert_eq!(
            a[0].digest, c[0].digest,
            "keys and digests do not depend on the seed"
        );
        assert!(a.iter().any(|r| r.bins.iter().any(|(n, _)| n == "geo")));
        assert!(a.iter().any(|r| r.bins.iter().any(|(n, _)| n == "hll")));
    }

    #[test]
    fn fill_store_counts_records_per_set() {
        let store = Store::new(&[("test".to_string(), 0)]);
        let spec = FixtureSpec {
            records: 300,
            ..FixtureSpec::default()
        };
        assert_eq!(fill_store(&store, &spec), 300);
        assert_eq!(store.count("test"), 300);
        let stats = store
            .ns(b"test")
            .unwrap()
            .set_stats(store.clock.now_cl_secs(), |_| Some(0));
        assert_eq!(stats.get("set_a").map(|s| s.objects), Some(100));
    }
}
