//! `storage-local`: objects are files under one directory.
//!
//! In the component that directory is the only thing on disk the plugin can reach: the
//! host preopens the configured `path` at guest path `/` (world `storage-plugin`). Natively
//! (unit tests) the root is `path` itself.
//!
//! Uploads go to a temporary file under `<root>/.abs-tmp/` and are renamed into place by
//! `finish` after an fsync of the file; the host then fsyncs the target directory (D11).
//! So a reader never sees a half-written object, and a crash leaves at most a stray temp file.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::UNIX_EPOCH;

use aerospike_backup_plugin::keys::{check_key, split_parent};
use aerospike_backup_plugin::{
    Capabilities, Download, Error, ListPage, ObjectInfo, Plugin, Result, Storage, Upload,
    export_plugin, sync_dir,
};
use schemars::JsonSchema;
use serde::Deserialize;

/// Reserved directory (at the root) for uploads in progress; never listed, never a key.
const TMP_DIR: &str = ".abs-tmp";
/// Largest part accepted: far above the host's 16 MiB default, below wasm32 limits.
const MAX_PART: u64 = 1 << 30;
/// How often `finish` retries a rename whose target directory vanished under it (a
/// concurrent delete pruned the empty directory between mkdir and rename).
const RENAME_ATTEMPTS: usize = 3;

/// The options; the schema in `plugin-info` is derived from it.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[schemars(title = "storage-local options")]
pub struct Options {
    /// Directory holding the backups (ABS `local-storage.path`); the host preopens it as the plugin's only filesystem access.
    path: String,
}

impl Options {
    /// Rules beyond the type (see [`Plugin::check_options`]).
    fn check(o: &Options) -> Result<()> {
        if o.path.trim().is_empty() {
            return Err(Error::invalid_config("path: must not be empty"));
        }
        Ok(())
    }
}

/// The plugin type exported below.
#[derive(Debug)]
pub struct LocalStorage {
    root: PathBuf,
}

impl Plugin for LocalStorage {
    const NAME: &'static str = "storage-local";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    type Options = Options;

    fn check_options(o: &Options) -> Result<()> {
        Options::check(o)
    }
}

impl LocalStorage {
    fn path_of(&self, key: &str) -> Result<PathBuf> {
        check_key(key)?;
        if key == TMP_DIR || key.starts_with(".abs-tmp/") {
            return Err(Error::Denied);
        }
        Ok(self.root.join(key))
    }

    fn info(&self, key: &str, meta: &fs::Metadata) -> ObjectInfo {
        let modified = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok());
        ObjectInfo {
            key: key.to_owned(),
            size: meta.len(),
            modified_ms: modified.map(|d| d.as_millis() as u64),
            etag: Some(format!(
                "{:x}-{:x}",
                meta.len(),
                modified.map(|d| d.as_nanos()).unwrap_or_default()
            )),
        }
    }

    /// Removes now-empty directories from `dir` (a key's parent) up to, not including, the
    /// root, so deleted backups do not leave empty prefixes behind.
    fn prune_empty_dirs(&self, mut dir: &str) {
        while !dir.is_empty() {
            if fs::remove_dir(self.root.join(dir)).is_err() {
                return; // not empty (or already gone): stop
            }
            dir = split_parent(dir).0;
        }
    }
}

impl Storage for LocalStorage {
    type Upload = LocalUpload;
    type Download = LocalDownload;

    fn create(o: Options, _secrets: Vec<(String, String)>) -> Result<Self> {
        // In the sandbox the configured directory *is* the preopened `/`.
        let root = if cfg!(target_arch = "wasm32") {
            PathBuf::from("/")
        } else {
            o.path.into()
        };
        Ok(LocalStorage { root })
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            min_part_size: 1,
            max_part_size: MAX_PART,
            max_parts: u32::MAX,
            range_reads: true,
            max_concurrency: None,
        }
    }

    fn begin_upload(&self, key: &str, _size_hint: Option<u64>) -> Result<LocalUpload> {
        let dest = self.path_of(key)?;
        let tmp_dir = self.root.join(TMP_DIR);
        fs::create_dir_all(&tmp_dir)?;
        let (file, tmp) = create_temp(&tmp_dir, split_parent(key).1)?;
        Ok(LocalUpload {
            root: self.root.clone(),
            key: key.to_owned(),
            dest,
            tmp,
            file: Some(file),
            parts: Vec::new(),
        })
    }

    fn open(&self, key: &str, offset: u64, len: Option<u64>) -> Result<LocalDownload> {
        let path = self.path_of(key)?;
        let meta = fs::metadata(&path)?;
        if !meta.is_file() {
            return Err(Error::NotFound);
        }
        let mut file = File::open(&path)?;
        let start = offset.min(meta.len());
        file.seek(SeekFrom::Start(start))?;
        let available = meta.len() - start;
        Ok(LocalDownload {
            file,
            remaining: len.map_or(available, |l| l.min(available)),
        })
    }

    fn list(
        &self,
        prefix: &str,
        recursive: bool,
        cursor: Option<&str>,
        max_results: u32,
    ) -> Result<ListPage> {
        let (dir, name_prefix) = match prefix.rfind('/') {
            Some(i) => (&prefix[..=i], &prefix[i + 1..]),
            None => ("", prefix),
        };
        let mut entries = Vec::new();
        self.collect(dir, name_prefix, recursive, &mut entries)?;
        // Byte order of the full key (or prefix) string, as the contract promises.
        entries.sort_by(|a, b| a.name().cmp(b.name()));
        let mut page = ListPage::default();
        let mut rest = entries
            .into_iter()
            .filter(|e| cursor.is_none_or(|c| e.name() > c));
        for e in rest.by_ref().take(max_results as usize) {
            match e {
                Entry::Object(info) => page.objects.push(info),
                Entry::Prefix(p) => page.prefixes.push(p),
            }
        }
        if rest.next().is_some() {
            let last = match (page.objects.last(), page.prefixes.last()) {
                (Some(o), Some(p)) => o.key.as_str().max(p.as_str()),
                (Some(o), None) => o.key.as_str(),
                (None, Some(p)) => p.as_str(),
                (None, None) => unreachable!("max_results >= 1 and more entries remain"),
            };
            page.next_cursor = Some(last.to_owned());
        }
        Ok(page)
    }

    fn stat(&self, key: &str) -> Result<ObjectInfo> {
        let meta = fs::metadata(self.path_of(key)?)?;
        if !meta.is_file() {
            return Err(Error::NotFound);
        }
        Ok(self.info(key, &meta))
    }

    fn delete(&self, key: &str) -> Result<()> {
        let path = self.path_of(key)?;
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_file() => match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(e.into()),
            },
            // Missing, or a "directory" that is not an object: nothing to delete.
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        let parent = split_parent(key).0;
        sync_dir(parent)?;
        self.prune_empty_dirs(parent);
        Ok(())
    }
}

enum Entry {
    Object(ObjectInfo),
    Prefix(String),
}

impl Entry {
    fn name(&self) -> &str {
        match self {
            Entry::Object(o) => &o.key,
            Entry::Prefix(p) => p,
        }
    }
}

impl LocalStorage {
    /// Adds the entries of directory `dir` (a key prefix ending in `/`, or empty) whose
    /// names start with `name_prefix`; descends into subdirectories when `recursive`.
    fn collect(
        &self,
        dir: &str,
        name_prefix: &str,
        recursive: bool,
        out: &mut Vec<Entry>,
    ) -> Result<()> {
        let read = match fs::read_dir(self.root.join(dir)) {
            Ok(r) => r,
            // A prefix with nothing under it is an empty page, not an error.
            Err(e) if matches!(e.kind(), std::io::ErrorKind::NotFound) => return Ok(()),
            Err(e) if is_not_a_directory(&e) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        for entry in read {
            let entry = entry?;
            let Ok(name) = entry.file_name().into_string() else {
                continue; // not UTF-8: cannot be a key we wrote
            };
            if !name.starts_with(name_prefix) || (dir.is_empty() && name == TMP_DIR) {
                continue;
            }
            let kind = entry.file_type()?;
            let key = format!("{dir}{name}");
            if kind.is_file() {
                let meta = match entry.metadata() {
                    Ok(m) => m,
                    // Deleted since the directory was read (retention, the start-up sweep):
                    // it is no longer there to list.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e.into()),
                };
                out.push(Entry::Object(self.info(&key, &meta)));
            } else if kind.is_dir() {
                if recursive {
                    self.collect(&format!("{key}/"), "", true, out)?;
                } else {
                    out.push(Entry::Prefix(format!("{key}/")));
                }
            }
            // Symlinks and special files are never objects.
        }
        Ok(())
    }
}

fn is_not_a_directory(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::NotADirectory
}

/// Creates a fresh temp file; `create_new` makes the name collision-proof across
/// concurrent instances, the counter and hash only make collisions rare.
fn create_temp(tmp_dir: &Path, base: &str) -> Result<(File, PathBuf)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    for _ in 0..16 {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let salt = random_u64();
        let path = tmp_dir.join(format!("{base}.{salt:016x}.{n}"));
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(f) => return Ok((f, path)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::Temporary(
        "could not create a unique temporary file".to_owned(),
    ))
}

/// Per-call random value from std's randomly keyed hasher (seeded from wasi:random in a
/// component), so no extra dependency or import is needed for unique temp names.
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}

/// Writes all of `data` at `offset` with positioned writes. On WASI a stream write (what
/// `Write` on a `File` uses) reports every failure as EIO, so a full disk would read "I/O
/// error"; a positioned write keeps the filesystem's code (ENOSPC, EDQUOT, EROFS, ...).
#[cfg(target_os = "wasi")]
fn write_all_at(file: &File, mut data: &[u8], mut offset: u64) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    while !data.is_empty() {
        let at = i64::try_from(offset).map_err(std::io::Error::other)?;
        // SAFETY: the pointer and length describe `data`, which outlives the call; the fd is
        // the open file borrowed for the duration of the call.
        #[allow(unsafe_code)]
        let n = unsafe { libc::pwrite(file.as_raw_fd(), data.as_ptr().cast(), data.len(), at) };
        match n {
            n if n < 0 => {
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
            0 => return Err(std::io::ErrorKind::WriteZero.into()),
            n => {
                data = &data[n.unsigned_abs()..];
                offset += n.unsigned_abs() as u64;
            }
        }
    }
    Ok(())
}

/// Native builds (the plugin's unit tests) have the same positioned write in std.
#[cfg(not(target_os = "wasi"))]
fn write_all_at(file: &File, data: &[u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, data, offset)
}

/// An upload in progress: a temp file plus the sizes of the parts written so far.
#[derive(Debug)]
pub struct LocalUpload {
    root: PathBuf,
    key: String,
    dest: PathBuf,
    tmp: PathBuf,
    file: Option<File>,
    parts: Vec<u64>,
}

impl LocalUpload {
    fn file(&mut self) -> Result<&mut File> {
        self.file
            .as_mut()
            .ok_or_else(|| Error::other("upload is closed"))
    }

    /// Creates the missing ancestors of `dest` and returns the keys of those created, so
    /// their parents can be synced too (a new directory entry must be durable as well).
    fn make_parents(&self) -> Result<Vec<String>> {
        let mut created = Vec::new();
        let mut dir = split_parent(&self.key).0;
        while !dir.is_empty() && !self.root.join(dir).is_dir() {
            created.push(dir.to_owned());
            dir = split_parent(dir).0;
        }
        if let Some(parent) = self.dest.parent() {
            fs::create_dir_all(parent)?;
        }
        Ok(created)
    }
}

impl Upload for LocalUpload {
    fn write_part(&mut self, part_number: u32, data: Vec<u8>) -> Result<()> {
        let idx = (part_number as usize).saturating_sub(1);
        if data.len() as u64 > MAX_PART {
            return Err(Error::other(format!(
                "part {part_number} exceeds {MAX_PART} bytes"
            )));
        }
        let written = self.parts.len();
        let offset: u64 = self.parts.iter().take(idx).sum();
        if idx == written || idx + 1 == written {
            // Next part, or a retry of the latest one: cut back to where it starts.
            let file = self.file()?;
            file.set_len(offset)?;
            write_all_at(file, &data, offset)?;
            self.parts.truncate(idx);
            self.parts.push(data.len() as u64);
            Ok(())
        } else if idx < written {
            // An older part resent: it must be the same size, so later parts stay in place.
            if self.parts[idx] != data.len() as u64 {
                return Err(Error::other(format!(
                    "part {part_number} resent with {} bytes, was {}",
                    data.len(),
                    self.parts[idx]
                )));
            }
            let file = self.file()?;
            write_all_at(file, &data, offset)?;
            Ok(())
        } else {
            Err(Error::other(format!(
                "part {part_number} out of order: {written} parts written so far"
            )))
        }
    }

    fn finish(&mut self) -> Result<ObjectInfo> {
        let file = self
            .file
            .take()
            .ok_or_else(|| Error::other("upload is closed"))?;
        // Data durable before the name points at it.
        file.sync_all()?;
        drop(file);
        let mut created = Vec::new();
        let mut attempt = 0;
        loop {
            created.extend(self.make_parents()?);
            match fs::rename(&self.tmp, &self.dest) {
                Ok(()) => break,
                Err(e)
                    if e.kind() == std::io::ErrorKind::NotFound
                        && attempt + 1 < RENAME_ATTEMPTS =>
                {
                    attempt += 1;
                }
                Err(e) => {
                    let _ = fs::remove_file(&self.tmp);
                    return Err(e.into());
                }
            }
        }
        // The rename is durable once the target directory is synced; new directories
        // need their own entries synced in their parents.
        let parent = split_parent(&self.key).0;
        sync_dir(parent)?;
        created.sort();
        created.dedup();
        for dir in &created {
            sync_dir(split_parent(dir).0)?;
        }
        let meta = fs::metadata(&self.dest)?;
        let storage = LocalStorage {
            root: self.root.clone(),
        };
        Ok(storage.info(&self.key, &meta))
    }

    fn abort(&mut self) -> Result<()> {
        self.file = None;
        match fs::remove_file(&self.tmp) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// A byte range being read.
#[derive(Debug)]
pub struct LocalDownload {
    file: File,
    remaining: u64,
}

impl Download for LocalDownload {
    fn next(&mut self, max: u32) -> Result<Option<Vec<u8>>> {
        let want = self.remaining.min(u64::from(max)) as usize;
        if want == 0 {
            return Ok(None);
        }
        let mut buf = vec![0u8; want];
        let mut got = 0;
        while got < want {
            match self.file.read(&mut buf[got..]) {
                Ok(0) => break, // file shrank under us: end early, never return empty
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        if got == 0 {
            self.remaining = 0;
            return Ok(None);
        }
        buf.truncate(got);
        self.remaining -= got as u64;
        Ok(Some(buf))
    }
}

export_plugin!(storage: LocalStorage);

#[cfg(test)]
mod tests;
