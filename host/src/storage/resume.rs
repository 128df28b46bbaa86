//! Resume of a full backup across restarts (as asbackup's `--continue`, but kept by the
//! service itself).
//!
//! A full backup keeps `resume.yaml` in its folder while it runs: for each namespace, the data
//! files that are durably stored (name, size, SHA-256, records), and for the partitions still
//! to scan, the digest of the last record those files hold. The cursors move only when a file
//! is finished in storage, and they describe exactly that file's records: a worker's records
//! reach its files in scan order, each partition is scanned by one worker, and a node sends
//! a partition's records in digest order. So after a `kill -9`, the restarted service deletes
//! whatever the folder holds beyond the checkpoint and scans each unfinished partition from
//! after its cursor: no record is written twice and none is lost.
//!
//! A checkpoint is honoured only while the backup is younger than the policy's
//! `resume-max-age` and the routine still asks for the same content (its [`fingerprint`]);
//! otherwise the start-up sweep removes the folder as any incomplete backup. A user's cancel
//! or a failure removes the folder as before; only a shutdown keeps it to resume.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use crate::config::{BackupPolicy, BackupRoutine, Config};
use crate::plugins::Storage;

use crate::aerospike::scan::{PARTITIONS, ScanRange};
use crate::error::EngineError;
use crate::storage::checksums::FileSum;
use crate::storage::files::put_object;

/// The checkpoint's name, at the top of the backup folder (beside `data/`).
pub const RESUME_FILE: &str = "resume.yaml";
/// The format of [`Checkpoint`]; a checkpoint of another version is not resumed.
const CHECKPOINT_VERSION: u32 = 1;
/// Default `resume-max-age`: a backup started more than a day ago is started anew.
pub const DEFAULT_MAX_AGE_MS: u64 = 24 * 60 * 60 * 1000;
/// Largest checkpoint read back (a checkpoint lists a namespace's finished files).
const MAX_CHECKPOINT_BYTES: u64 = 64 * 1024 * 1024;
/// Finished files are noted at most this often; in between they are kept in memory and the
/// next write carries them. A crash loses at most this much finished work (those files are
/// deleted and their records scanned again), and a backup of many small files does not
/// rewrite a growing checkpoint for every one of them.
const MIN_WRITE_INTERVAL: Duration = Duration::from_secs(1);

/// `resume.yaml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Checkpoint {
    pub version: u32,
    pub routine: String,
    /// The backup's timestamp (ms) and folder name.
    pub timestamp: i64,
    pub folder: String,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
    /// [`fingerprint`] of the routine and policy the backup started with.
    pub fingerprint: String,
    pub namespaces: Vec<NamespaceCheckpoint>,
}

/// Where one namespace of the backup stands.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct NamespaceCheckpoint {
    pub namespace: String,
    pub state: NamespaceState,
    /// The next data file number.
    pub next_file: u64,
    pub records: u64,
    pub bytes: u64,
    pub sindexes: u64,
    pub udfs: u64,
    /// Files durably stored, in the order they finished.
    pub files: Vec<CommittedFile>,
    /// Partitions not finished yet, as `first-last` ranges (while scanning).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remaining: Vec<String>,
    /// Hex digest of the last record stored, per unfinished partition that has one.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub cursors: BTreeMap<u16, String>,
}

/// A namespace's phase.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NamespaceState {
    /// Nothing of it is kept: a resume starts it from the beginning.
    #[default]
    Pending,
    /// Its UDF/index file is stored and its scan runs from `remaining` and `cursors`.
    Scanning,
    /// Every record is stored.
    Scanned,
}

/// One finished file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct CommittedFile {
    pub name: String,
    pub size: u64,
    pub sha256: String,
    pub records: u64,
}

/// What one finished data file holds of the scan: its records, the last digest of each
/// partition in it, and the partitions that ended (every record of them is in this file or
/// an earlier one of the same worker).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileProgress {
    pub records: u64,
    /// The namespace's next file number when the file was closed.
    pub next_file: u64,
    pub cursors: Vec<(u16, [u8; 20])>,
    pub done: Vec<u16>,
    /// Partition → 1 + its index in `cursors` (0: none yet), so that records of many
    /// partitions interleaved cost one lookup each.
    slots: Vec<u16>,
}

impl FileProgress {
    /// A file that starts with partitions `done` already finished.
    pub fn after(done: Vec<u16>) -> Self {
        FileProgress {
            done,
            ..FileProgress::default()
        }
    }

    /// Notes records `digests` (in the order they were written).
    pub fn note(&mut self, digests: &[[u8; 20]]) {
        let mut run: Option<(u16, [u8; 20])> = None;
        for d in digests {
            let p = crate::aerospike::scan::partition_of(d);
            if let Some((rp, rd)) = run
                && rp != p
            {
                self.set(rp, rd);
            }
            run = Some((p, *d));
        }
        if let Some((p, d)) = run {
            self.set(p, d);
        }
        self.records += digests.len() as u64;
    }

    fn set(&mut self, p: u16, d: [u8; 20]) {
        if self.slots.is_empty() {
            self.slots = vec![0; usize::from(PARTITIONS)];
        }
        let slot = &mut self.slots[usize::from(p % PARTITIONS)];
        match *slot {
            0 => {
                self.cursors.push((p, d));
                *slot = self.cursors.len() as u16;
            }
            i => self.cursors[usize::from(i) - 1].1 = d,
        }
    }
}

/// The content a routine's backup holds is decided by these keys; the others (schedules,
/// speed, retries, retention, file sizes) may change between a crash and the resume.
pub fn fingerprint(routine: &BackupRoutine, policy: &BackupPolicy) -> String {
    const ROUTINE_IGNORED: &[&str] = &[
        "backup-policy",
        "interval-cron",
        "incr-interval-cron",
        "verify-cron",
        "copy-to",
        "disabled",
        "schedule-timezone",
        "secret-agent",
        "prefer-racks",
    ];
    const POLICY_IGNORED: &[&str] = &[
        "parallel",
        "parallel-write",
        "socket-timeout",
        "total-timeout",
        "records-per-second",
        "bandwidth",
        "file-limit",
        "max-concurrent-nodes",
        "use-scan-compression",
        "concurrent-incremental",
        "incr-mode",
        "retry-policy",
        "retention",
        "remove-files",
        "max-retries",
        "retry-delay",
        "resume-max-age",
    ];
    let strip = |v: serde_json::Value, ignored: &[&str]| match v {
        serde_json::Value::Object(mut m) => {
            for k in ignored {
                m.remove(*k);
            }
            serde_json::Value::Object(m)
        }
        v => v,
    };
    let both = serde_json::json!({
        "routine": strip(serde_json::to_value(routine).unwrap_or_default(), ROUTINE_IGNORED),
        "policy": strip(serde_json::to_value(policy).unwrap_or_default(), POLICY_IGNORED),
    });
    // serde_json maps are sorted, so equal settings hash equally.
    hex::encode(sha2::Sha256::digest(both.to_string().as_bytes()))
}

impl Checkpoint {
    /// Why this checkpoint must not be resumed under `config` at `now`, if it must not.
    pub fn refusal(&self, config: &Config, now: DateTime<Utc>) -> Option<String> {
        if self.version != CHECKPOINT_VERSION {
            return Some(format!("checkpoint version {} is unknown", self.version));
        }
        let Some(routine) = config.backup_routines.get(&self.routine) else {
            return Some("the routine is gone".into());
        };
        let policy = routine
            .backup_policy
            .as_ref()
            .and_then(|p| config.backup_policies.get(p))
            .cloned()
            .unwrap_or_default();
        let max_age = policy.resume_max_age.unwrap_or(DEFAULT_MAX_AGE_MS);
        if max_age == 0 {
            return Some("the policy's resume-max-age is 0".into());
        }
        let age = (now - self.created).num_milliseconds().max(0) as u64;
        if age > max_age {
            return Some(format!(
                "it started {} s ago, more than resume-max-age ({} s)",
                age / 1000,
                max_age / 1000
            ));
        }
        if self.fingerprint != fingerprint(routine, &policy) {
            return Some("the routine or its policy changed what a backup holds".into());
        }
        None
    }

    pub fn namespace(&self, ns: &str) -> Option<&NamespaceCheckpoint> {
        self.namespaces.iter().find(|n| n.namespace == ns)
    }

    /// Every file the checkpoint keeps, as keys under `folder` (the backup folder).
    pub fn kept_keys(&self, folder: &str) -> Vec<String> {
        self.namespaces
            .iter()
            .filter(|n| n.state != NamespaceState::Pending)
            .flat_map(|n| {
                n.files
                    .iter()
                    .map(move |f| format!("{folder}/data/{}/{}", n.namespace, f.name))
            })
            .collect()
    }
}

impl NamespaceCheckpoint {
    /// The sums of the kept files.
    pub fn sums(&self) -> Vec<FileSum> {
        self.files
            .iter()
            .map(|f| FileSum {
                name: f.name.clone(),
                size: f.size,
                sha256: f.sha256.clone(),
            })
            .collect()
    }

    /// The scan ranges that finish this namespace, cut into at most `parallel` units: each
    /// unfinished partition, after its cursor when it has one.
    ///
    /// # Errors
    /// A malformed range or digest (the checkpoint was damaged).
    pub fn ranges(&self, parallel: u32) -> Result<Vec<ScanRange>, String> {
        let mut parts: Vec<(u16, Option<[u8; 20]>)> = Vec::new();
        for r in &self.remaining {
            let (a, b) = r.split_once('-').unwrap_or((r, r));
            let (a, b): (u16, u16) = (
                a.parse().map_err(|_| format!("range {r}"))?,
                b.parse().map_err(|_| format!("range {r}"))?,
            );
            if a > b || b >= PARTITIONS {
                return Err(format!("range {r}"));
            }
            parts.extend((a..=b).map(|p| (p, None)));
        }
        for (p, hex_digest) in &self.cursors {
            let bytes = hex::decode(hex_digest).map_err(|_| format!("cursor of {p}"))?;
            let d: [u8; 20] = bytes.try_into().map_err(|_| format!("cursor of {p}"))?;
            if crate::aerospike::scan::partition_of(&d) != *p {
                return Err(format!("cursor of {p} is in another partition"));
            }
            if let Some(slot) = parts.iter_mut().find(|(q, _)| q == p) {
                slot.1 = Some(d);
            }
        }
        let units = (parallel.max(1) as usize).min(parts.len().max(1));
        let per = parts.len().div_ceil(units).max(1);
        Ok(parts
            .chunks(per)
            .map(|c| ScanRange::Cursors(c.to_vec()))
            .collect())
    }
}

/// `first-last` ranges of a partition set.
fn ranges_text(unfinished: &[bool]) -> Vec<String> {
    let mut out = Vec::new();
    let mut p = 0usize;
    while p < unfinished.len() {
        if !unfinished[p] {
            p += 1;
            continue;
        }
        let start = p;
        while p < unfinished.len() && unfinished[p] {
            p += 1;
        }
        out.push(if p - 1 == start {
            start.to_string()
        } else {
            format!("{start}-{}", p - 1)
        });
    }
    out
}

/// Reads a backup folder's checkpoint; `None` when it has none.
///
/// # Errors
/// The storage failed, or the file does not parse.
pub async fn load(storage: &Arc<dyn Storage>, folder: &str) -> Result<Option<Checkpoint>, String> {
    let key = format!("{folder}/{RESUME_FILE}");
    let bytes = match crate::storage::layout::read_object(storage, &key, MAX_CHECKPOINT_BYTES).await
    {
        Ok(b) => b,
        Err(crate::plugins::PluginError::NotFound) => return Ok(None),
        Err(e) => return Err(format!("{key}: {e}")),
    };
    serde_yaml::from_slice(&bytes)
        .map(Some)
        .map_err(|e| format!("{key}: {e}"))
}

/// In-memory state of a namespace being scanned, beside its [`NamespaceCheckpoint`].
#[derive(Debug)]
struct Scanning {
    unfinished: Vec<bool>,
    cursors: BTreeMap<u16, [u8; 20]>,
}

#[derive(Debug)]
struct State {
    cp: Checkpoint,
    scanning: BTreeMap<String, Scanning>,
    last_write: Option<Instant>,
}

/// Keeps a running full backup's checkpoint in its folder.
pub struct Checkpointer {
    storage: Arc<dyn Storage>,
    key: String,
    clock: Arc<dyn crate::clock::Clock>,
    state: tokio::sync::Mutex<State>,
}

impl std::fmt::Debug for Checkpointer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpointer")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl Checkpointer {
    /// A checkpointer over `cp` (new, or read back for a resume), writing to `folder`.
    pub fn new(
        storage: Arc<dyn Storage>,
        folder: &str,
        clock: Arc<dyn crate::clock::Clock>,
        cp: Checkpoint,
    ) -> Result<Self, String> {
        let mut scanning = BTreeMap::new();
        for n in &cp.namespaces {
            if n.state != NamespaceState::Scanning {
                continue;
            }
            let mut unfinished = vec![false; usize::from(PARTITIONS)];
            let mut cursors = BTreeMap::new();
            for r in n.ranges(1)? {
                if let ScanRange::Cursors(parts) = r {
                    for (p, d) in parts {
                        unfinished[usize::from(p)] = true;
                        if let Some(d) = d {
                            cursors.insert(p, d);
                        }
                    }
                }
            }
            scanning.insert(
                n.namespace.clone(),
                Scanning {
                    unfinished,
                    cursors,
                },
            );
        }
        Ok(Checkpointer {
            storage,
            key: format!("{folder}/{RESUME_FILE}"),
            clock,
            state: tokio::sync::Mutex::new(State {
                cp,
                scanning,
                last_write: None,
            }),
        })
    }

    /// The checkpoint's key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// A copy of the checkpoint as it stands.
    pub async fn snapshot(&self) -> Checkpoint {
        let mut s = self.state.lock().await;
        Self::sync(&mut s);
        s.cp.clone()
    }

    /// Writes the checkpoint now.
    ///
    /// # Errors
    /// The storage refused it.
    pub async fn write(&self) -> Result<(), EngineError> {
        let mut s = self.state.lock().await;
        self.write_locked(&mut s).await
    }

    async fn write_locked(&self, s: &mut State) -> Result<(), EngineError> {
        Self::sync(s);
        s.cp.updated = self.clock.now();
        let text = serde_yaml::to_string(&s.cp)
            .map_err(|e| EngineError::Encode(format!("{RESUME_FILE}: {e}")))?;
        put_object(&self.storage, &self.key, text.into_bytes()).await?;
        s.last_write = Some(Instant::now());
        Ok(())
    }

    /// Copies the in-memory partition state into the serialisable checkpoint.
    fn sync(s: &mut State) {
        for n in &mut s.cp.namespaces {
            if let Some(sc) = s.scanning.get(&n.namespace) {
                n.remaining = ranges_text(&sc.unfinished);
                n.cursors = sc
                    .cursors
                    .iter()
                    .map(|(p, d)| (*p, hex::encode(d)))
                    .collect();
            }
        }
    }

    fn ns_mut<'a>(s: &'a mut State, ns: &str) -> &'a mut NamespaceCheckpoint {
        if let Some(i) = s.cp.namespaces.iter().position(|n| n.namespace == ns) {
            return &mut s.cp.namespaces[i];
        }
        s.cp.namespaces.push(NamespaceCheckpoint {
            namespace: ns.to_string(),
            ..NamespaceCheckpoint::default()
        });
        s.cp.namespaces.last_mut().expect("just pushed")
    }

    /// A namespace's scan begins over `ranges`, after its UDF/index files `system` (with
    /// their counts) are stored.
    ///
    /// # Errors
    /// The storage refused the checkpoint.
    pub async fn begin_namespace(
        &self,
        ns: &str,
        ranges: &[ScanRange],
        system: Vec<FileSum>,
        (sindexes, udfs): (u64, u64),
    ) -> Result<(), EngineError> {
        let mut s = self.state.lock().await;
        let mut unfinished = vec![false; usize::from(PARTITIONS)];
        let mut cursors = BTreeMap::new();
        for r in ranges {
            match r {
                ScanRange::Partitions { begin, count } => {
                    for p in *begin..begin + count {
                        unfinished[usize::from(p)] = true;
                    }
                }
                ScanRange::AfterDigest(d) => {
                    let p = crate::aerospike::scan::partition_of(d);
                    unfinished[usize::from(p)] = true;
                    cursors.insert(p, *d);
                }
                ScanRange::Cursors(parts) => {
                    for (p, d) in parts {
                        unfinished[usize::from(*p)] = true;
                        if let Some(d) = d {
                            cursors.insert(*p, *d);
                        }
                    }
                }
            }
        }
        let n = Self::ns_mut(&mut s, ns);
        n.state = NamespaceState::Scanning;
        n.sindexes = sindexes;
        n.udfs = udfs;
        for f in system {
            n.bytes += f.size;
            n.files.push(CommittedFile {
                name: f.name,
                size: f.size,
                sha256: f.sha256,
                records: 0,
            });
        }
        s.scanning.insert(
            ns.to_string(),
            Scanning {
                unfinished,
                cursors,
            },
        );
        self.write_locked(&mut s).await
    }

    /// Notes a data file of `ns` as durably stored, with what it holds of the scan; the
    /// checkpoint is written unless it was written less than [`MIN_WRITE_INTERVAL`] ago.
    ///
    /// # Errors
    /// The storage refused the checkpoint.
    pub async fn commit_file(
        &self,
        ns: &str,
        next_file: u64,
        file: FileSum,
        progress: &FileProgress,
    ) -> Result<(), EngineError> {
        let mut s = self.state.lock().await;
        if let Some(sc) = s.scanning.get_mut(ns) {
            for (p, d) in &progress.cursors {
                sc.cursors.insert(*p, *d);
            }
            for p in &progress.done {
                sc.unfinished[usize::from(*p)] = false;
                sc.cursors.remove(p);
            }
        }
        let n = Self::ns_mut(&mut s, ns);
        n.next_file = n.next_file.max(next_file);
        n.records += progress.records;
        n.bytes += file.size;
        n.files.push(CommittedFile {
            name: file.name,
            size: file.size,
            sha256: file.sha256,
            records: progress.records,
        });
        if s.last_write
            .is_some_and(|t| t.elapsed() < MIN_WRITE_INTERVAL)
        {
            return Ok(());
        }
        self.write_locked(&mut s).await
    }

    /// Every record of `ns` is stored.
    ///
    /// # Errors
    /// The storage refused the checkpoint.
    pub async fn namespace_scanned(&self, ns: &str, next_file: u64) -> Result<(), EngineError> {
        let mut s = self.state.lock().await;
        s.scanning.remove(ns);
        let n = Self::ns_mut(&mut s, ns);
        n.state = NamespaceState::Scanned;
        n.remaining.clear();
        n.cursors.clear();
        n.next_file = n.next_file.max(next_file);
        self.write_locked(&mut s).await
    }
}

/// A new checkpoint for a backup that starts now.
pub fn start(
    routine: &str,
    timestamp: i64,
    folder: &str,
    created: DateTime<Utc>,
    fingerprint: String,
) -> Checkpoint {
    Checkpoint {
        version: CHECKPOINT_VERSION,
        routine: routine.to_string(),
        timestamp,
        folder: folder.to_string(),
        created,
        updated: created,
        fingerprint,
        namespaces: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(p: u16, n: u8) -> [u8; 20] {
        let mut d = [n; 20];
        d[..4].copy_from_slice(&u32::from(p).to_le_bytes());
        d
    }

    #[test]
    fn file_progress_keeps_each_partitions_last_digest() {
        let mut fp = FileProgress::default();
        fp.note(&[digest(1, 1), digest(1, 2), digest(7, 1), digest(1, 3)]);
        fp.note(&[digest(7, 9)]);
        assert_eq!(fp.records, 5);
        assert_eq!(fp.cursors, vec![(1, digest(1, 3)), (7, digest(7, 9))]);
    }

    #[test]
    fn ranges_resume_unfinished_partitions_after_their_cursors() {
        let mut unfinished = vec![false; usize::from(PARTITIONS)];
        for p in [3, 4, 5, 9, 4095] {
            unfinished[p] = true;
        }
        let n = NamespaceCheckpoint {
            remaining: ranges_text(&unfinished),
            cursors: [(4u16, hex::encode(digest(4, 8)))].into_iter().collect(),
            ..NamespaceCheckpoint::default()
        };
        assert_eq!(n.remaining, vec!["3-5", "9", "4095"]);
        let ranges = n.ranges(2).unwrap();
        assert_eq!(
            ranges,
            vec![
                ScanRange::Cursors(vec![(3, None), (4, Some(digest(4, 8))), (5, None)]),
                ScanRange::Cursors(vec![(9, None), (4095, None)]),
            ]
        );
        // A damaged checkpoint is refused, not half-read.
        let bad = NamespaceCheckpoint {
            remaining: vec!["7-3".into()],
            ..NamespaceCheckpoint::default()
        };
        assert!(bad.ranges(1).is_err());
        let wrong_partition = NamespaceCheckpoint {
            remaining: vec!["4".into()],
            cursors: [(4u16, hex::encode(digest(5, 1)))].into_iter().collect(),
            ..NamespaceCheckpoint::default()
        };
        assert!(wrong_partition.ranges(1).is_err());
    }

    #[test]
    fn fingerprint_ignores_speed_but_not_content() {
        let routine = BackupRoutine {
            namespaces: vec!["test".into()],
            ..BackupRoutine::default()
        };
        let policy = BackupPolicy::default();
        let base = fingerprint(&routine, &policy);
        let faster = BackupPolicy {
            parallel: Some(16),
            records_per_second: Some(10),
            file_limit: Some(5),
            ..BackupPolicy::default()
        };
        assert_eq!(fingerprint(&routine, &faster), base);
        let compact = BackupPolicy {
            compact: Some(true),
            ..BackupPolicy::default()
        };
        assert_ne!(fingerprint(&routine, &compact), base);
        let other_ns = BackupRoutine {
            namespaces: vec!["bar".into()],
            ..BackupRoutine::default()
        };
        assert_ne!(fingerprint(&other_ns, &policy), base);
    }
}
