//! Partial uploads that a killed process leaves behind.
//!
//! The storage-local plugin stages every upload in `<path>/.abs-tmp/` and renames it into
//! place when it finishes, so a `kill -9` mid-backup leaves the file it was writing there, and
//! the storage plugin interface has no call to list or abort such uploads. The host removes
//! them itself, with the rule that makes this safe while jobs run: a part last modified before
//! this process's job registry was created cannot belong to any of its jobs (the process that
//! wrote it is gone). Only regular files directly in the staging directory are touched, never
//! symlinks or subdirectories.
//!
//! Cloud backends keep their partial uploads server-side. S3's stay until aborted: the
//! backup marks each object it uploads there (`files::OPEN_MARKER_SUFFIX`) and the folder
//! sweep aborts what a marker names. Azure's uncommitted blocks and GCS resumable sessions
//! expire by themselves.

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::config::{Config, Storage};
use crate::plugins::pipeline::LOCAL_STORAGE_PLUGIN;

/// The staging directory of the storage-local plugin, relative to its `path`.
pub const LOCAL_STAGING_DIR: &str = ".abs-tmp";

/// The staging directories of every storage of `cfg` that the storage-local plugin serves, with
/// the name of (the first) storage using each. Relative paths resolve as the plugin's preopen
/// does, against the working directory.
pub fn local_staging_dirs(cfg: &Config) -> Vec<(String, PathBuf)> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for (name, s) in &cfg.storage {
        let root = match s {
            Storage::LocalStorage(l) => Some(l.path.clone()),
            Storage::PluginStorage(p) if p.plugin == LOCAL_STORAGE_PLUGIN => p
                .options
                .get("path")
                .and_then(|v| v.as_str())
                .map(str::to_string),
            _ => None,
        };
        if let Some(root) = root.filter(|r| !r.trim().is_empty()) {
            let dir = Path::new(&root).join(LOCAL_STAGING_DIR);
            if seen.insert(dir.clone()) {
                out.push((name.clone(), dir));
            }
        }
    }
    out
}

/// What a sweep of one staging directory removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Removed {
    pub files: usize,
    pub bytes: u64,
}

/// Removes the regular files directly in `dir` last modified before `before`. A missing
/// directory is nothing to do; a file that vanishes meanwhile (finished by its job) is skipped.
///
/// # Errors
/// The directory cannot be read, or a stale file cannot be removed.
pub fn remove_stale_parts(dir: &Path, before: SystemTime) -> io::Result<Removed> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Removed::default()),
        Err(e) => return Err(e),
    };
    let mut removed = Removed::default();
    for entry in entries {
        let entry = entry?;
        let meta = match entry.path().symlink_metadata() {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if !meta.is_file() || meta.modified()? >= before {
            continue;
        }
        match std::fs::remove_file(entry.path()) {
            Ok(()) => {
                removed.files += 1;
                removed.bytes += meta.len();
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn only_regular_files_older_than_the_cut_go() {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        let old = dir.path().join("daily.asb.1");
        std::fs::write(&old, b"partial").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(now - Duration::from_secs(60))
            .unwrap();
        let fresh = dir.path().join("daily.asb.2");
        std::fs::write(&fresh, b"being written").unwrap();
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        let outside = tempfile::NamedTempFile::new().unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("link")).unwrap();

        let cut = now - Duration::from_secs(1);
        let r = remove_stale_parts(dir.path(), cut).unwrap();
        assert_eq!(r, Removed { files: 1, bytes: 7 });
        assert!(!old.exists());
        assert!(fresh.exists() && sub.exists() && outside.path().exists());
        assert_eq!(
            remove_stale_parts(&dir.path().join("none"), cut).unwrap(),
            Removed::default()
        );
    }

    #[test]
    fn staging_dirs_of_local_storages_once_each() {
        let cfg: Config = serde_yaml::from_str(
            r#"
storage:
  a: {local-storage: {path: /b}}
  b: {local-storage: {path: /b}}
  c: {plugin-storage: {plugin: storage-local, options: {path: ./rel}}}
  d: {s3-storage: {bucket: x, s3-region: r}}
"#,
        )
        .unwrap();
        assert_eq!(
            local_staging_dirs(&cfg),
            vec![
                ("a".to_string(), PathBuf::from("/b/.abs-tmp")),
                ("c".to_string(), PathBuf::from("./rel/.abs-tmp")),
            ]
        );
    }
}
