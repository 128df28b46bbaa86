//! `aerospike-backup-service`: the command line.

use abs::config::{ConfigStore, LogFormat, LogLevel, PluginCheck};
use abs::plugin_check::RegistryCheck;
use abs::plugins::{Runtime, RuntimeConfig};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// Aerospike Backup Service: scheduled backups and restores of Aerospike clusters.
#[derive(Debug, Parser)]
#[command(name = "aerospike-backup-service", disable_version_flag = true)]
struct Cli {
    /// Configuration file path, or an `http(s)://` URL to read it from (read-only).
    #[arg(short = 'c', long = "config", value_name = "PATH|URL")]
    config: Option<PathBuf>,
    /// The --config file names where the real configuration is stored (remote config).
    #[arg(short = 'r', long = "remote")]
    remote: bool,
    /// Print the version and exit.
    #[arg(short = 'v', long = "version")]
    version: bool,
    /// Override `service.logger.level` (TRACE, DEBUG, INFO, WARN, ERROR).
    #[arg(long, value_name = "LEVEL")]
    log_level: Option<String>,
    /// Override `service.logger.format` (PLAIN, JSON).
    #[arg(long, value_name = "FORMAT")]
    log_format: Option<String>,
    /// At SIGTERM/SIGINT, seconds running backups get to finish before they are canceled.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    shutdown_grace: u64,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate a configuration file and exit (0 = valid).
    Validate {
        /// The file to check.
        path: PathBuf,
    },
    /// Verify a backup without restoring it and without a running service: read every file
    /// of the backup folder PATH on the storage a descriptor names, check sizes and SHA-256
    /// against checksums.yaml, decrypt, decompress and decode every record. Prints the report
    /// (JSON with --json); exits 0 when intact, 1 when problems were found, 2 when it could
    /// not run.
    Verify {
        /// A YAML file with one storage entry, as under a config's `storage:` (e.g.
        /// `local-storage: {path: /var/lib/abs}`).
        #[arg(long, value_name = "FILE")]
        storage: PathBuf,
        /// The backup folder in that storage (a backup's `key`, or a folder above it).
        path: String,
        /// Encryption mode of the backup (NONE, AES128, AES256); default: its metadata's.
        #[arg(long, value_name = "MODE")]
        encryption: Option<String>,
        /// The encryption key file (as the routine's `key-file`).
        #[arg(long, value_name = "FILE")]
        key_file: Option<PathBuf>,
        /// An environment variable holding the encryption key (as `key-env`).
        #[arg(long, value_name = "VAR")]
        key_env: Option<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Inspect WASM plugins.
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
}

#[derive(Debug, Subcommand)]
enum PluginCommand {
    /// List the embedded plugins, and those configured under `plugins:` of --config.
    List,
    /// Load a component, print its info and run the codec round-trip properties or the storage
    /// behaviour suite against it; exits 1 on any contract violation.
    Check {
        /// The `.wasm` component.
        path: PathBuf,
        /// Options (JSON) to create it with; by default, for codecs, the first `examples` entry
        /// of the plugin's options schema, else its `default`s; for storage plugins a temporary
        /// directory as `path`. The report prints the options used. A storage check works in
        /// a folder of its own under `plugin-check/` and removes everything it wrote. A storage
        /// plugin's secrets come from environment variables `ABS_PLUGIN_SECRET_<NAME>`
        /// (`..._ACCESS_KEY_ID` → `access-key-id`).
        #[arg(long, value_name = "JSON")]
        options: Option<String>,
    },
    /// Write a new plugin crate (builds for wasm32-wasip2 and passes `plugin check` as
    /// generated); see docs/PLUGINS.md.
    New {
        /// What to generate: `codec` (a XOR codec to replace with your format) or `storage`
        /// (a backend keeping objects as files under one directory).
        #[arg(value_enum)]
        kind: NewKind,
        /// The plugin's registry name, lowercase kebab-case (e.g. `codec-xor`); also the
        /// crate name, so the component is `target/wasm32-wasip2/release/codec_xor.wasm`.
        name: String,
        /// Directory to create (must not exist or be empty); default `./NAME`.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Take the SDK from this directory (a checkout's `plugin-api/` or an unpacked
        /// `aerospike-backup-plugin-*.crate`) instead of the service's git repository.
        #[arg(long, value_name = "DIR", conflicts_with = "sdk_git")]
        sdk_path: Option<PathBuf>,
        /// Take the SDK from this git repository (default: the one this service was built from).
        #[arg(long, value_name = "URL")]
        sdk_git: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum NewKind {
    Codec,
    Storage,
}

/// The plugin runtime with its on-disk compile cache (see [`RuntimeConfig::for_service`]).
fn plugin_runtime() -> Result<Runtime, String> {
    Runtime::new(RuntimeConfig::for_service())
        .or_else(|e| {
            // An unwritable cache only costs start-up time; compile in memory instead.
            eprintln!("warning: plugin compile cache unavailable ({e}); compiling in memory");
            Runtime::new(RuntimeConfig::default())
        })
        .map_err(|e| format!("cannot start the plugin runtime: {e}"))
}

/// `plugin new`: needs no plugin runtime.
fn plugin_new(
    kind: NewKind,
    name: &str,
    dir: Option<&PathBuf>,
    sdk_path: Option<&PathBuf>,
    sdk_git: Option<&String>,
) -> ExitCode {
    use abs::plugins::template::{SdkSource, TemplateKind, generate};
    let dir = dir.cloned().unwrap_or_else(|| PathBuf::from(name));
    let sdk = match (sdk_path, sdk_git) {
        // Absolute, so the crate keeps building when it is moved or built from elsewhere.
        (Some(p), _) => match std::path::absolute(p) {
            Ok(abs) => SdkSource::Path(abs),
            Err(e) => {
                eprintln!("error: --sdk-path {}: {e}", p.display());
                return ExitCode::from(2);
            }
        },
        (None, Some(url)) => SdkSource::Git(url.clone()),
        (None, None) => SdkSource::default_git(),
    };
    let kind = match kind {
        NewKind::Codec => TemplateKind::Codec,
        NewKind::Storage => TemplateKind::Storage,
    };
    match generate(kind, name, &dir, &sdk) {
        Ok(files) => {
            println!("created {}:", dir.display());
            for f in files {
                println!("  {}", f.display());
            }
            let wasm = name.replace('-', "_");
            println!(
                "next:\n  cd {}\n  cargo test\n  cargo build --release --target wasm32-wasip2\n  \
                 aerospike-backup-service plugin check target/wasm32-wasip2/release/{wasm}.wasm",
                dir.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn plugin_command(cmd: &PluginCommand, config: Option<&PathBuf>) -> ExitCode {
    if let PluginCommand::New {
        kind,
        name,
        dir,
        sdk_path,
        sdk_git,
    } = cmd
    {
        return plugin_new(
            *kind,
            name,
            dir.as_ref(),
            sdk_path.as_ref(),
            sdk_git.as_ref(),
        );
    }
    let runtime = match plugin_runtime() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cmd {
        PluginCommand::New { .. } => unreachable!("handled before the runtime starts"),
        PluginCommand::List => {
            let cfg = match config {
                Some(p) => match ConfigStore::load_file(p, None) {
                    Ok(l) => (*l.store.current()).clone(),
                    Err(e) => {
                        eprintln!("error: {e}");
                        return ExitCode::FAILURE;
                    }
                },
                None => Default::default(),
            };
            match RegistryCheck::new(runtime).registry(&cfg) {
                Ok(reg) => {
                    print!("{}", abs::plugins::cli::plugin_list(&reg));
                    ExitCode::SUCCESS
                }
                Err(errs) => {
                    for e in errs {
                        eprintln!("error: {e}");
                    }
                    ExitCode::FAILURE
                }
            }
        }
        PluginCommand::Check { path, options } => {
            let options = match options
                .as_deref()
                .map(serde_json::from_str::<serde_json::Value>)
            {
                None => None,
                Some(Ok(v)) => Some(v),
                Some(Err(e)) => {
                    eprintln!("error: --options is not JSON: {e}");
                    return ExitCode::from(2);
                }
            };
            let rt = match tokio::runtime::Runtime::new() {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("error: cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match rt.block_on(abs::plugins::cli::plugin_check(&runtime, path, options)) {
                Ok(report) => {
                    print!("{report}");
                    ExitCode::SUCCESS
                }
                // One stream for the whole report, pass or fail; the exit code tells which.
                Err(report) => {
                    print!("{report}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// `-r`: the `--config` file is a storage descriptor; the configuration is read from (and
/// saved to) the file it names, through the default storage plugins.
fn load_remote(
    runtime: &tokio::runtime::Runtime,
    descriptor_path: &std::path::Path,
    plugins: &Runtime,
    checker: Arc<dyn PluginCheck>,
) -> Result<abs::config::store::Loaded, String> {
    let descriptor = std::fs::read_to_string(descriptor_path)
        .map_err(|e| format!("cannot read {}: {e}", descriptor_path.display()))?;
    let registry = abs::plugins::Registry::with_defaults(plugins)
        .map_err(|e| format!("cannot load the storage plugins: {e}"))?;
    let doc = runtime
        .block_on(abs::remote_config::open(&descriptor, &registry))
        .map_err(|e| format!("{}: {e}", descriptor_path.display()))?;
    runtime
        .block_on(ConfigStore::load_remote(Arc::new(doc), Some(checker)))
        .map_err(|e| e.to_string())
}

/// `verify`: a backup checked from a storage descriptor, without a service.
fn verify_command(
    runtime: &Runtime,
    storage: &PathBuf,
    path: &str,
    encryption: Option<&str>,
    key_file: Option<&PathBuf>,
    key_env: Option<&str>,
    json: bool,
) -> ExitCode {
    let fail = |e: String| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    };
    let descriptor = match std::fs::read_to_string(storage) {
        Ok(t) => t,
        Err(e) => return fail(format!("--storage {}: {e}", storage.display())),
    };
    let mode = match encryption.map(str::parse::<abs::config::EncryptionMode>) {
        None => None,
        Some(Ok(m)) => Some(abs::config::Spelled::new(m)),
        Some(Err(e)) => return fail(format!("--encryption: {e}")),
    };
    let policy = (mode.is_some() || key_file.is_some() || key_env.is_some()).then(|| {
        abs::config::EncryptionPolicy {
            mode,
            key_file: key_file.map(|p| p.display().to_string()),
            key_env: key_env.map(str::to_string),
            key_secret: None,
        }
    });
    let registry = match abs::plugins::Registry::with_defaults(runtime) {
        Ok(r) => r,
        Err(e) => return fail(format!("loading the plugins: {e}")),
    };
    let tokio = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => return fail(format!("cannot start the async runtime: {e}")),
    };
    let report = match tokio.block_on(abs::jobs::integrity::verify_with_descriptor(
        &registry,
        &descriptor,
        path,
        policy,
    )) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("the report serializes")
        );
    } else {
        println!(
            "{path}: {} folder(s), {} file(s), {} record(s), {} stored byte(s); {} file(s) checked against checksums.yaml",
            report.folders, report.files, report.records, report.bytes, report.checksummed_files
        );
        for f in &report.decode_only {
            println!("{f}: no checksums.yaml (asbackup's or an older backup): decoded only");
        }
        for p in &report.problems {
            match p.offset {
                Some(o) => println!("problem: {} (at stored byte {o}): {}", p.file, p.problem),
                None => println!("problem: {}: {}", p.file, p.problem),
            }
        }
        if report.problem_count > report.problems.len() as u64 {
            println!(
                "... and {} more problem(s)",
                report.problem_count - report.problems.len() as u64
            );
        }
        println!(
            "{}",
            if report.is_ok() {
                "intact"
            } else {
                "PROBLEMS FOUND"
            }
        );
    }
    if report.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// `-c http(s)://...`: the configuration is fetched from the URL, read-only.
fn load_url(
    runtime: &tokio::runtime::Runtime,
    url: &str,
    checker: Arc<dyn PluginCheck>,
) -> Result<abs::config::store::Loaded, String> {
    let doc = abs::remote_config::UrlDocument::new(url)?;
    runtime
        .block_on(ConfigStore::load_remote(Arc::new(doc), Some(checker)))
        .map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    abs::malloc::limit_arenas();
    let cli = Cli::parse();
    if cli.version {
        let v = abs::api::system::VersionResponse::current();
        println!(
            "aerospike-backup-service {} (commit {}, built {})",
            v.version, v.commit, v.build_time
        );
        return ExitCode::SUCCESS;
    }
    if let Some(Command::Plugin { command }) = &cli.command {
        return plugin_command(command, cli.config.as_ref());
    }
    // The one plugin runtime of the process: config checks and backup jobs share it.
    let plugins = match plugin_runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(Command::Verify {
        storage,
        path,
        encryption,
        key_file,
        key_env,
        json,
    }) = &cli.command
    {
        return verify_command(
            &plugins,
            storage,
            path,
            encryption.as_deref(),
            key_file.as_ref(),
            key_env.as_deref(),
            *json,
        );
    }
    let checker = Arc::new(RegistryCheck::new(plugins.clone())) as Arc<dyn PluginCheck>;
    if let Some(Command::Validate { path }) = &cli.command {
        return match ConfigStore::load_file(path, Some(checker)) {
            Ok(loaded) => {
                for w in loaded.warnings {
                    eprintln!("warning: {w}");
                }
                println!("{}: valid", path.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        };
    }
    let grace = std::time::Duration::from_secs(cli.shutdown_grace);
    let Some(config_path) = cli.config.clone() else {
        eprintln!("error: --config is required (see --help)");
        return ExitCode::from(2);
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let url = config_path
        .to_str()
        .filter(|p| p.starts_with("http://") || p.starts_with("https://"));
    let loaded = if let Some(url) = url {
        if cli.remote {
            eprintln!("error: --remote takes a storage descriptor file, not a URL");
            return ExitCode::from(2);
        }
        load_url(&runtime, url, checker)
    } else if cli.remote {
        load_remote(&runtime, &config_path, &plugins, checker)
    } else {
        ConfigStore::load_file(&config_path, Some(checker)).map_err(|e| e.to_string())
    };
    let loaded = match loaded {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut logger = loaded.store.current().service.logger.clone();
    if let Some(l) = &cli.log_level {
        match l.parse::<LogLevel>() {
            Ok(l) => logger.level = Some(l.into()),
            Err(e) => {
                eprintln!("error: --log-level: {e}");
                return ExitCode::from(2);
            }
        }
    }
    if let Some(f) = &cli.log_format {
        match f.parse::<LogFormat>() {
            Ok(f) => logger.format = Some(f.into()),
            Err(e) => {
                eprintln!("error: --log-format: {e}");
                return ExitCode::from(2);
            }
        }
    }
    if let Err(e) = abs::logging::init(&logger) {
        eprintln!("error: cannot set up logging: {e}");
        return ExitCode::FAILURE;
    }
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    // A URL may carry a credential (user info, a presigned query): log it redacted.
    let config_label = match url {
        Some(u) => abs::remote_config::redact_url(u),
        None => config_path.display().to_string(),
    };
    runtime.block_on(async move {
        tracing::info!(
            config = %config_label,
            version = env!("CARGO_PKG_VERSION"),
            "Starting Aerospike Backup Service."
        );
        let store = Arc::new(loaded.store);
        let running = match abs::service::start_with_runtime(store, None, Some(plugins)).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "The service could not start.");
                return ExitCode::FAILURE;
            }
        };
        abs::service::shutdown_signal().await;
        tracing::info!(grace_s = grace.as_secs(), "Shutting down.");
        match running.stop(grace).await {
            Ok(report) => {
                tracing::info!(
                    running = report.running,
                    canceled = report.canceled,
                    "Stopped."
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                tracing::error!(error = %e, "The HTTP server failed.");
                ExitCode::FAILURE
            }
        }
    })
}
