//! Logging set-up from `service.logger` (level, PLAIN|JSON, stdout, size-rotated file).

use crate::config::{FileLoggerConfig, LogFormat, LogLevel, LoggerConfig};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// A log file rotated by size, keeping `maxbackups` old files for `maxage` days, as
/// lumberjack does for ABS: `name.log` → `name-<unix-millis>.log`, optionally gzipped.
#[derive(Debug)]
pub struct RotatingFile {
    path: PathBuf,
    max_bytes: u64,
    max_backups: u64,
    max_age: Option<Duration>,
    compress: bool,
    file: File,
    written: u64,
}

impl RotatingFile {
    pub fn open(cfg: &FileLoggerConfig) -> io::Result<Self> {
        let path = PathBuf::from(&cfg.filename);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let written = file.metadata()?.len();
        Ok(Self {
            path,
            max_bytes: cfg.maxsize_mb().max(1) * 1024 * 1024,
            max_backups: cfg.maxbackups.unwrap_or(0),
            max_age: cfg
                .maxage
                .filter(|d| *d > 0)
                .map(|d| Duration::from_secs(d * 86_400)),
            compress: cfg.compress.unwrap_or(false),
            file,
            written,
        })
    }

    fn backup_name(&self) -> PathBuf {
        let stem = self.path.file_stem().unwrap_or_default().to_string_lossy();
        let ext = self
            .path
            .extension()
            .map(|e| format!(".{}", e.to_string_lossy()))
            .unwrap_or_default();
        let millis = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        self.path.with_file_name(format!("{stem}-{millis}{ext}"))
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file.flush()?;
        let backup = self.backup_name();
        std::fs::rename(&self.path, &backup)?;
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.written = 0;
        if self.compress {
            gzip_and_remove(&backup)?;
        }
        self.prune()
    }

    /// Old files of this log, newest first.
    fn backups(&self) -> io::Result<Vec<(PathBuf, SystemTime)>> {
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let stem = format!(
            "{}-",
            self.path.file_stem().unwrap_or_default().to_string_lossy()
        );
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir)? {
            let e = e?;
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with(&stem) && e.path() != self.path {
                out.push((e.path(), e.metadata()?.modified()?));
            }
        }
        out.sort_by_key(|b| std::cmp::Reverse(b.1));
        Ok(out)
    }

    fn prune(&self) -> io::Result<()> {
        let now = SystemTime::now();
        for (i, (p, modified)) in self.backups()?.into_iter().enumerate() {
            let too_many = self.max_backups > 0 && i as u64 >= self.max_backups;
            let too_old = self
                .max_age
                .is_some_and(|age| now.duration_since(modified).unwrap_or_default() > age);
            if too_many || too_old {
                std::fs::remove_file(p)?;
            }
        }
        Ok(())
    }
}

fn gzip_and_remove(path: &Path) -> io::Result<()> {
    let mut name = path.as_os_str().to_owned();
    name.push(".gz");
    let mut enc =
        flate2::write::GzEncoder::new(File::create(&name)?, flate2::Compression::default());
    io::copy(&mut File::open(path)?, &mut enc)?;
    enc.finish()?.sync_all()?;
    std::fs::remove_file(path)
}

impl Write for RotatingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.written + buf.len() as u64 > self.max_bytes && self.written > 0 {
            self.rotate()?;
        }
        let n = self.file.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// A cloneable handle that tracing writes through.
#[derive(Debug, Clone)]
pub struct SharedFile(Arc<Mutex<RotatingFile>>);

impl<'a> MakeWriter<'a> for SharedFile {
    type Writer = SharedFileGuard<'a>;
    fn make_writer(&'a self) -> Self::Writer {
        SharedFileGuard(self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// One write to the shared file.
#[derive(Debug)]
pub struct SharedFileGuard<'a>(std::sync::MutexGuard<'a, RotatingFile>);

impl Write for SharedFileGuard<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

fn level_directive(l: LogLevel) -> &'static str {
    match l {
        LogLevel::Trace => "trace",
        LogLevel::Debug => "debug",
        LogLevel::Info => "info",
        LogLevel::Warn => "warn",
        LogLevel::Error => "error",
    }
}

/// Installs the global subscriber. `RUST_LOG`, when set, overrides the level.
pub fn init(cfg: &LoggerConfig) -> io::Result<()> {
    let filter = || {
        EnvFilter::try_from_default_env().unwrap_or_else(|_| {
            // Dependencies are chatty at debug; keep them at warn unless asked.
            EnvFilter::new(format!(
                "warn,aerospike_backup_service={l},abs={l}",
                l = level_directive(cfg.level())
            ))
        })
    };
    let json = cfg.format() == LogFormat::Json;
    let stdout_layer = cfg.stdout_writer().then(|| {
        let l = tracing_subscriber::fmt::layer()
            .with_ansi(std::io::IsTerminal::is_terminal(&io::stdout()))
            .with_writer(io::stdout);
        if json {
            l.json().flatten_event(true).with_filter(filter()).boxed()
        } else {
            l.with_filter(filter()).boxed()
        }
    });
    let file_layer = match &cfg.file_writer {
        Some(f) => {
            let writer = SharedFile(Arc::new(Mutex::new(RotatingFile::open(f)?)));
            let l = tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(writer);
            Some(if json {
                l.json().flatten_event(true).with_filter(filter()).boxed()
            } else {
                l.with_filter(filter()).boxed()
            })
        }
        None => None,
    };
    tracing_subscriber::registry()
        .with(stdout_layer)
        .with(file_layer)
        .try_init()
        .map_err(io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_by_size_and_keeps_maxbackups() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = FileLoggerConfig {
            filename: dir.path().join("svc.log").display().to_string(),
            maxsize: Some(1),
            maxbackups: Some(2),
            ..Default::default()
        };
        let mut f = RotatingFile::open(&cfg).unwrap();
        let line = vec![b'x'; 400 * 1024];
        for _ in 0..10 {
            f.write_all(&line).unwrap();
            // Distinct millisecond names for the rotated files.
            std::thread::sleep(Duration::from_millis(3));
        }
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 3, "current + 2 backups: {names:?}");
        assert!(std::fs::metadata(dir.path().join("svc.log")).unwrap().len() <= 1024 * 1024);
    }

    #[test]
    fn compressed_backups_are_gzip() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = FileLoggerConfig {
            filename: dir.path().join("a.log").display().to_string(),
            maxsize: Some(1),
            compress: Some(true),
            ..Default::default()
        };
        let mut f = RotatingFile::open(&cfg).unwrap();
        f.write_all(&vec![b'y'; 800 * 1024]).unwrap();
        f.write_all(&vec![b'y'; 800 * 1024]).unwrap();
        let gz: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "gz"))
            .collect();
        assert_eq!(gz.len(), 1);
        let mut out = Vec::new();
        io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(File::open(&gz[0]).unwrap()),
            &mut out,
        )
        .unwrap();
        assert_eq!(out.len(), 800 * 1024);
    }
}
