//! The configuration model: one type per ABS v3 entity, in the YAML/JSON shape ABS uses.
//!
//! Every struct is kebab-case and rejects unknown keys. Optional settings are `Option`s so a
//! saved file stays as small as the one the operator wrote; defaults live in accessor methods
//! named after the field, each documented with the ABS default.

use super::given::{Given, Spelled};
use super::serde_util::{config_enum, number, opt_number, opt_number_list};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use utoipa::ToSchema;

/// What `GET` responses show instead of a secret (as ABS 3.7 does).
pub const REDACTED: &str = "[secret]";

/// A credential: a password, key or token. Its `Debug`/`Display` never show the value; the API
/// shows [`REDACTED`]; only the config file writer sees the real string.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = String)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself. Call only where the value is used, never to log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `secrets:<resource>:<key>` references name a Secret Agent entry; they are not secret.
    pub fn is_agent_reference(&self) -> bool {
        self.0.starts_with("secrets:")
    }

    fn redact(&mut self) {
        if !self.is_agent_reference() && !self.0.is_empty() {
            self.0 = REDACTED.to_string();
        }
    }

    /// A `PUT` that sends [`REDACTED`] back keeps the stored value.
    fn keep_from(&mut self, old: Option<&Secret>) {
        if self.0 == REDACTED
            && let Some(old) = old
        {
            self.0 = old.0.clone();
        }
    }

    fn is_placeholder(&self) -> bool {
        self.0 == REDACTED
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("**redacted**")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("**redacted**")
    }
}

/// The whole service configuration (the file given with `-c`, and `GET/PUT /v1/config`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Config {
    /// HTTP server, logging and backup-naming settings of the service itself.
    #[serde(default, skip_serializing_if = "Given::is_absent")]
    #[schema(value_type = ServiceConfig)]
    pub service: Given<ServiceConfig>,
    /// Aerospike clusters to back up or restore to, by name.
    #[serde(default, skip_serializing_if = "Given::is_absent")]
    #[schema(value_type = BTreeMap<String, AerospikeCluster>)]
    pub aerospike_clusters: Given<BTreeMap<String, AerospikeCluster>>,
    /// Storage locations for backups, by name.
    #[serde(default, skip_serializing_if = "Given::is_absent")]
    #[schema(value_type = BTreeMap<String, Storage>)]
    pub storage: Given<BTreeMap<String, Storage>>,
    /// Backup policies (how to back up), by name.
    #[serde(default, skip_serializing_if = "Given::is_absent")]
    #[schema(value_type = BTreeMap<String, BackupPolicy>)]
    pub backup_policies: Given<BTreeMap<String, BackupPolicy>>,
    /// Backup routines (what, where and when), by name.
    #[serde(default, skip_serializing_if = "Given::is_absent")]
    #[schema(value_type = BTreeMap<String, BackupRoutine>)]
    pub backup_routines: Given<BTreeMap<String, BackupRoutine>>,
    /// Aerospike Secret Agents, by name. The v2 key `secret-agent` is accepted.
    #[serde(
        default,
        alias = "secret-agent",
        skip_serializing_if = "Given::is_absent"
    )]
    #[schema(value_type = BTreeMap<String, SecretAgent>)]
    pub secret_agents: Given<BTreeMap<String, SecretAgent>>,
    /// Our extension: third-party WASM plugins by name (a `.wasm` file and its sha256).
    #[serde(default, skip_serializing_if = "Given::is_absent")]
    #[schema(value_type = BTreeMap<String, PluginDefinition>)]
    pub plugins: Given<BTreeMap<String, PluginDefinition>>,
    /// Our extension: webhooks told when backups, restores and verifies end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notifications: Option<NotificationsConfig>,
}

// ---------------------------------------------------------------------------------------------
// service

/// `service:` settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ServiceConfig {
    /// The HTTP listener.
    #[serde(default, skip_serializing_if = "Given::is_absent")]
    #[schema(value_type = HttpServerConfig)]
    pub http: Given<HttpServerConfig>,
    /// An HTTPS listener beside (or, with `http.disabled`, instead of) the HTTP one (ABS 3.7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub https: Option<HttpsServerConfig>,
    /// Logging.
    #[serde(default, skip_serializing_if = "Given::is_absent")]
    #[schema(value_type = LoggerConfig)]
    pub logger: Given<LoggerConfig>,
    /// Backup folder naming and scheduling time zone (ABS 3.4+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<BackupServiceConfig>,
    /// Ours: show secrets as configured in the API's configuration answers (`GET /v1/config`,
    /// `/v1/config/clusters`, `/v1/config/storage`) instead of `"[secret]"`, for clients that
    /// compare the answer with the file they wrote, as the Kubernetes operator does. Anyone who
    /// may read the API then reads the passwords (docs/SECURITY.md). Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reveal_secrets_in_api: Option<bool>,
}

impl ServiceConfig {
    /// Whether configuration answers carry secrets as configured. Default false.
    pub fn reveal_secrets_in_api(&self) -> bool {
        self.reveal_secrets_in_api.unwrap_or(false)
    }
}

/// `service.http:` the REST listener.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct HttpServerConfig {
    /// Address to listen on. Default `0.0.0.0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Port to listen on. Default 8080.
    #[serde(
        default,
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub port: Option<u16>,
    /// Prefix for every route, system routes included. Default `/`; must start with `/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_path: Option<String>,
    /// Time to read request headers, in ms. Default 5000.
    #[serde(
        default,
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout: Option<u64>,
    /// Time to read a whole request, in ms. Default 30000.
    #[serde(
        default,
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub read_timeout: Option<u64>,
    /// Time to produce a response, in ms. Default 60000.
    #[serde(
        default,
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub write_timeout: Option<u64>,
    /// Keep-alive idle time, in ms. Default 120000.
    #[serde(
        default,
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub idle_timeout: Option<u64>,
    /// Do not start the HTTP listener at all. Default false.
    #[serde(default, skip_serializing_if = "Given::is_absent")]
    #[schema(value_type = bool)]
    pub disabled: Given<bool>,
    /// Bearer-token authentication of API callers (ours; off when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<ApiAuthConfig>,
    /// Per-client-IP rate limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<RateLimiterConfig>,
}

impl HttpServerConfig {
    pub fn address(&self) -> &str {
        self.address.as_deref().unwrap_or("0.0.0.0")
    }
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(8080)
    }
    /// The context path normalised to start and end with `/`.
    pub fn context_path(&self) -> String {
        let p = self.context_path.as_deref().unwrap_or("/").trim();
        let mut s = String::from("/");
        s.push_str(p.trim_matches('/'));
        if !s.ends_with('/') {
            s.push('/');
        }
        s
    }
    pub fn header_timeout_ms(&self) -> u64 {
        self.timeout.unwrap_or(5_000)
    }
    pub fn read_timeout_ms(&self) -> u64 {
        self.read_timeout.unwrap_or(30_000)
    }
    pub fn write_timeout_ms(&self) -> u64 {
        self.write_timeout.unwrap_or(60_000)
    }
    pub fn idle_timeout_ms(&self) -> u64 {
        self.idle_timeout.unwrap_or(120_000)
    }
    pub fn rate(&self) -> RateLimiterConfig {
        self.rate.clone().unwrap_or_default()
    }
}

/// `service.http.auth:` who may call the API (ours; ABS has no API authentication). With it,
/// every request but `/health`, `/ready` (and `/metrics` unless `protect-metrics`) needs
/// `Authorization: Bearer <token>` of one of `tokens`, or, over mutual TLS, a client
/// certificate named by one of them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ApiAuthConfig {
    /// The accepted tokens and client certificates (at least one).
    pub tokens: Vec<ApiToken>,
    /// Require a token for `/metrics` too. Default false.
    #[serde(default, skip_serializing_if = "Given::is_absent")]
    #[schema(value_type = bool)]
    pub protect_metrics: Given<bool>,
}

/// One accepted caller: a bearer token known by its SHA-256 (the token itself is never
/// stored), a file or a Secret Agent entry that holds the token, or a client certificate
/// (mutual TLS) known by its SHA-256 fingerprint. Exactly one of the four.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ApiToken {
    /// A label for logs (never the token).
    pub name: String,
    /// Lowercase hex SHA-256 of the token (`printf %s TOKEN | sha256sum`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// A file holding the token itself (trimmed), read at start and at each config change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<String>,
    /// Secret Agent entry holding the token (`<resource>:<key>`, `<key>` or `secrets:...`),
    /// asked at start and at each config change; needs `secret-agent-name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_secret: Option<String>,
    /// The configured Secret Agent that `token-secret` is asked of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_agent_name: Option<String>,
    /// SHA-256 fingerprint of a client certificate (`openssl x509 -noout -fingerprint
    /// -sha256`; colons and case do not matter). Needs `service.https.client-ca-file`;
    /// such a caller is known over HTTPS only, without a bearer token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert_sha256: Option<String>,
    /// `admin` (default: everything) or `read-only` (GET and HEAD only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

/// `service.https:` the REST API over TLS (ABS 3.7 keys). It serves the same routes as
/// `service.http`; its context path, timeouts and rate limit are its own when given, else
/// `service.http`'s.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct HttpsServerConfig {
    /// Do not start the HTTPS listener. Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    /// Address to listen on. Default `0.0.0.0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Port to listen on. Default 8443.
    #[serde(
        default,
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub port: Option<u16>,
    /// Prefix for every route. Default: `service.http`'s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_path: Option<String>,
    /// Time to read request headers, in ms. Default: `service.http`'s.
    #[serde(
        default,
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout: Option<u64>,
    /// Time to read a whole request, in ms. Default: `service.http`'s.
    #[serde(
        default,
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub read_timeout: Option<u64>,
    /// Time to produce a response, in ms. Default: `service.http`'s.
    #[serde(
        default,
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub write_timeout: Option<u64>,
    /// Keep-alive idle time, in ms. Default: `service.http`'s.
    #[serde(
        default,
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub idle_timeout: Option<u64>,
    /// Per-client-IP rate limit. Default: `service.http`'s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<RateLimiterConfig>,
    /// The server certificate chain, PEM (required unless `disabled`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<String>,
    /// The certificate's private key, PEM: PKCS#8, PKCS#1 or SEC1, encrypted PKCS#8, or a
    /// legacy encrypted PEM key (`Proc-Type`/`DEK-Info`). Required unless `disabled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<String>,
    /// Passphrase of an encrypted `key-file`: the password itself, `env:VAR`, `file:PATH`,
    /// or `secrets:<resource>:<key>` asked of the listener's Secret Agent at start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file_password: Option<Secret>,
    /// The Secret Agent for `key-file-password`, inline (or name one with `secret-agent-name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_agent: Option<SecretAgent>,
    /// The configured Secret Agent for `key-file-password`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_agent_name: Option<String>,
    /// Lowest TLS version accepted: `1.2` (default) or `1.3` (ABS); `TLS1.2`/`TLS1.3` too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_version: Option<String>,
    /// TLS 1.2 cipher suites allowed, by IANA name (`TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`).
    /// TLS 1.3 suites are always all on, as in ABS. Default: every suite rustls offers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cipher_suites: Option<Vec<String>>,
    /// CA certificates (PEM) that client certificates must chain to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ca_file: Option<String>,
    /// Client certificates: `none`, `request` (asked for and, when given, verified against
    /// `client-ca-file`) or `require-and-verify`. Default: `require-and-verify` when
    /// `client-ca-file` is set, else `none`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_auth: Option<String>,
}

/// How the HTTPS listener treats client certificates (`service.https.client-auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    None,
    Request,
    RequireAndVerify,
}

impl HttpsServerConfig {
    pub fn address(&self) -> &str {
        self.address.as_deref().unwrap_or("0.0.0.0")
    }
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(8443)
    }
    pub fn disabled(&self) -> bool {
        self.disabled.unwrap_or(false)
    }
    /// Whether TLS 1.3 is the lowest version accepted.
    pub fn tls13_only(&self) -> bool {
        self.min_version
            .as_deref()
            .is_some_and(|v| parse_min_version(v) == Some(13))
    }
    /// The client certificate mode; `None` for an unknown value (validation names it).
    pub fn client_auth(&self) -> Option<ClientAuth> {
        match self
            .client_auth
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("") if self.client_ca_file.is_some() => Some(ClientAuth::RequireAndVerify),
            None | Some("") | Some("none") => Some(ClientAuth::None),
            Some("request") => Some(ClientAuth::Request),
            Some("require-and-verify") => Some(ClientAuth::RequireAndVerify),
            Some(_) => None,
        }
    }
    /// Whether clients are asked for certificates (and `client-cert-sha256` callers can be
    /// known).
    pub fn asks_client_certificates(&self) -> bool {
        self.client_ca_file.is_some()
            && matches!(
                self.client_auth(),
                Some(ClientAuth::Request | ClientAuth::RequireAndVerify)
            )
    }
    /// The `service.http` settings this listener serves with: its own context path,
    /// timeouts and rate limit where given, `http`'s otherwise.
    pub fn listener(&self, http: &HttpServerConfig) -> HttpServerConfig {
        HttpServerConfig {
            address: Some(self.address().to_string()),
            port: Some(self.port()),
            context_path: self.context_path.clone().or(http.context_path.clone()),
            timeout: self.timeout.or(http.timeout),
            read_timeout: self.read_timeout.or(http.read_timeout),
            write_timeout: self.write_timeout.or(http.write_timeout),
            idle_timeout: self.idle_timeout.or(http.idle_timeout),
            disabled: Given::from(false),
            auth: http.auth.clone(),
            rate: self.rate.clone().or(http.rate.clone()),
        }
    }
}

/// `1.2`, `TLS1.2`, `TLSv1.2` (any case) → 12; the same for 1.3 → 13.
pub fn parse_min_version(v: &str) -> Option<u8> {
    let v = v.trim().to_ascii_uppercase();
    let v = v
        .strip_prefix("TLSV")
        .or_else(|| v.strip_prefix("TLS"))
        .unwrap_or(&v);
    match v {
        "1.2" => Some(12),
        "1.3" => Some(13),
        _ => None,
    }
}

/// `service.http.rate:` token bucket per client IP (IPv6 per /64).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RateLimiterConfig {
    /// Tokens added per second. Default 1024.
    #[serde(
        default,
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub tps: Option<u32>,
    /// Bucket size (burst). Default 1024.
    #[serde(
        default,
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub size: Option<u32>,
    /// Client addresses or CIDR blocks that are never limited.
    #[serde(default, skip_serializing_if = "Given::is_absent")]
    #[schema(value_type = Vec<String>)]
    pub white_list: Given<Vec<String>>,
}

impl RateLimiterConfig {
    pub fn tps(&self) -> u32 {
        self.tps.unwrap_or(1024)
    }
    pub fn size(&self) -> u32 {
        self.size.unwrap_or(1024)
    }
}

config_enum! {
    /// Log level. `WARNING` is accepted as `WARN`.
    pub enum LogLevel {
        Trace = "TRACE",
        Debug = "DEBUG",
        Info = "INFO",
        Warn = "WARN" | "WARNING",
        Error = "ERROR",
    }
}

config_enum! {
    /// Log line format.
    pub enum LogFormat {
        Plain = "PLAIN",
        Json = "JSON",
    }
}

/// `service.logger:`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct LoggerConfig {
    /// Minimum level. Default INFO.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<LogLevel>)]
    pub level: Option<Spelled<LogLevel>>,
    /// PLAIN or JSON. Default PLAIN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<LogFormat>)]
    pub format: Option<Spelled<LogFormat>>,
    /// Write to standard output. Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout_writer: Option<bool>,
    /// Also write to a rotating file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_writer: Option<FileLoggerConfig>,
}

impl LoggerConfig {
    pub fn level(&self) -> LogLevel {
        self.level.map_or(LogLevel::Info, |l| *l)
    }
    pub fn format(&self) -> LogFormat {
        self.format.map_or(LogFormat::Plain, |f| *f)
    }
    pub fn stdout_writer(&self) -> bool {
        self.stdout_writer.unwrap_or(true)
    }
}

/// `service.logger.file-writer:` a size-rotated log file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct FileLoggerConfig {
    /// Path of the log file (required).
    pub filename: String,
    /// Rotate when the file reaches this many MB. Default 100.
    #[serde(
        default,
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub maxsize: Option<u64>,
    /// Delete rotated files older than this many days; 0 keeps them. Default 0.
    #[serde(
        default,
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub maxage: Option<u64>,
    /// Keep at most this many rotated files; 0 keeps all. Default 0.
    #[serde(
        default,
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub maxbackups: Option<u64>,
    /// Gzip rotated files. Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compress: Option<bool>,
}

impl FileLoggerConfig {
    pub fn maxsize_mb(&self) -> u64 {
        self.maxsize.unwrap_or(100)
    }
}

config_enum! {
    /// Suffix format appended to backup folder names (ABS 3.4+).
    pub enum TimestampFormat {
        Iso = "ISO",
        Eu = "EU",
        Us = "US",
    }
}

/// `service.backup:`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct BackupServiceConfig {
    /// Append `_<formatted UTC time>` to backup folder names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<TimestampFormat>)]
    pub timestamp_format: Option<Spelled<TimestampFormat>>,
    /// Time zone for cron schedules: `UTC` (default), `Local` or an IANA name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_timezone: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// aerospike-clusters

/// `aerospike-clusters.<name>:` how to reach a cluster.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct AerospikeCluster {
    /// A label used in logs only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Seed nodes (at least one).
    #[serde(default)]
    pub seed_nodes: Vec<SeedNode>,
    /// Connection timeout in ms. Default 30000.
    #[serde(
        default,
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub conn_timeout: Option<u64>,
    /// Use `services-alternate` addresses for peers. Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_services_alternate: Option<bool>,
    /// Authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<Credentials>,
    /// TLS to the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
    /// Cap on concurrent scans on this cluster, shared by every routine. Default unlimited.
    #[serde(
        default,
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_parallel_scans: Option<u32>,
    /// Rack ids (0..=1000000) to prefer when reading (ABS 3.4+).
    #[serde(
        default,
        deserialize_with = "opt_number_list",
        skip_serializing_if = "Option::is_none"
    )]
    pub prefer_racks: Option<Vec<u32>>,
}

impl AerospikeCluster {
    pub fn conn_timeout_ms(&self) -> u64 {
        self.conn_timeout.unwrap_or(30_000)
    }
}

/// One seed node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct SeedNode {
    /// Host name or IP address (required).
    pub host_name: String,
    /// Port, 1..=65535 (required).
    #[serde(deserialize_with = "number")]
    pub port: u32,
    /// TLS name of the node, when TLS is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_name: Option<String>,
}

config_enum! {
    /// Cluster authentication mode.
    pub enum AuthMode {
        Internal = "INTERNAL",
        External = "EXTERNAL",
        ExternalInsecure = "EXTERNAL_INSECURE",
        Pki = "PKI",
    }
}

/// `credentials:` of a cluster.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Credentials {
    /// User name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Password, or a `secrets:<resource>:<key>` Secret Agent reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    /// File holding the password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_path: Option<String>,
    /// Secret Agent key holding the password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_key_secret: Option<String>,
    /// INTERNAL (default), EXTERNAL, EXTERNAL_INSECURE or PKI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<AuthMode>)]
    pub auth_mode: Option<Spelled<AuthMode>>,
    /// An inline Secret Agent for this cluster's secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_agent: Option<SecretAgent>,
    /// The name of a configured Secret Agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_agent_name: Option<String>,
}

/// `tls:` of a cluster.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct TlsConfig {
    /// Trusted CA certificate file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// Directory of trusted CA certificates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_path: Option<String>,
    /// Default TLS name to verify.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Allowed protocols. Default `TLSv1.2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocols: Option<String>,
    /// Cipher selection (OpenSSL cipher list syntax).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cipher_suite: Option<String>,
    /// Client key for mutual TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<String>,
    /// Password of the key file (`env:VAR`, `file:PATH` or literal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file_password: Option<Secret>,
    /// Client certificate chain for mutual TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// storage

/// `storage.<name>:` exactly one storage kind, named by its key.
// Read and written through `StorageRepr`: serde_yaml would otherwise expect YAML tags
// (`!s3-storage`) for an enum, while ABS files use a single key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(
    rename_all = "kebab-case",
    try_from = "StorageRepr",
    into = "StorageRepr"
)]
pub enum Storage {
    /// A directory on the service's machine.
    LocalStorage(LocalStorage),
    /// An S3 (or S3-compatible) bucket.
    S3Storage(S3Storage),
    /// An Azure Blob container.
    AzureStorage(AzureStorage),
    /// A Google Cloud Storage bucket.
    GcpStorage(GcpStorage),
    /// Our extension: any storage plugin with its own options.
    PluginStorage(PluginStorage),
}

/// The on-the-wire shape of [`Storage`]: one optional field per kind.
#[derive(Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct StorageRepr {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    local_storage: Option<LocalStorage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    s3_storage: Option<S3Storage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    azure_storage: Option<AzureStorage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gcp_storage: Option<GcpStorage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    plugin_storage: Option<PluginStorage>,
}

impl TryFrom<StorageRepr> for Storage {
    type Error = String;

    fn try_from(r: StorageRepr) -> Result<Self, String> {
        let mut found = Vec::new();
        if let Some(s) = r.local_storage {
            found.push(Storage::LocalStorage(s));
        }
        if let Some(s) = r.s3_storage {
            found.push(Storage::S3Storage(s));
        }
        if let Some(s) = r.azure_storage {
            found.push(Storage::AzureStorage(s));
        }
        if let Some(s) = r.gcp_storage {
            found.push(Storage::GcpStorage(s));
        }
        if let Some(s) = r.plugin_storage {
            found.push(Storage::PluginStorage(s));
        }
        match found.len() {
            1 => Ok(found.remove(0)),
            0 => Err("exactly one of local-storage, s3-storage, azure-storage, gcp-storage, plugin-storage is required".into()),
            _ => Err(format!(
                "only one storage type may be set, found {}",
                found.iter().map(Storage::kind).collect::<Vec<_>>().join(" and ")
            )),
        }
    }
}

impl From<Storage> for StorageRepr {
    fn from(s: Storage) -> Self {
        let mut r = StorageRepr::default();
        match s {
            Storage::LocalStorage(s) => r.local_storage = Some(s),
            Storage::S3Storage(s) => r.s3_storage = Some(s),
            Storage::AzureStorage(s) => r.azure_storage = Some(s),
            Storage::GcpStorage(s) => r.gcp_storage = Some(s),
            Storage::PluginStorage(s) => r.plugin_storage = Some(s),
        }
        r
    }
}

impl Storage {
    /// The config key of this storage kind, e.g. `s3-storage`.
    pub fn kind(&self) -> &'static str {
        match self {
            Storage::LocalStorage(_) => "local-storage",
            Storage::S3Storage(_) => "s3-storage",
            Storage::AzureStorage(_) => "azure-storage",
            Storage::GcpStorage(_) => "gcp-storage",
            Storage::PluginStorage(_) => "plugin-storage",
        }
    }

    /// The Secret Agent this storage names, if any.
    pub fn secret_agent_name(&self) -> Option<&str> {
        match self {
            Storage::S3Storage(s) => s.secret_agent_name.as_deref(),
            Storage::AzureStorage(s) => s.secret_agent_name.as_deref(),
            Storage::GcpStorage(s) => s.secret_agent_name.as_deref(),
            Storage::LocalStorage(_) | Storage::PluginStorage(_) => None,
        }
    }
}

/// `local-storage:`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct LocalStorage {
    /// Root directory of the backups (required). Relative paths resolve against the working dir.
    pub path: String,
}

/// `s3-storage:`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct S3Storage {
    /// Bucket (required).
    pub bucket: String,
    /// Region (required).
    pub s3_region: String,
    /// Root prefix inside the bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Profile in the shared AWS config files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_profile: Option<String>,
    /// Endpoint of an S3-compatible service; empty means AWS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_endpoint_override: Option<String>,
    /// Log level of the S3 client. Default FATAL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_log_level: Option<String>,
    /// Static access key id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    /// Static secret access key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_access_key: Option<Secret>,
    /// The session token of temporary keys the host obtained at job start (web identity);
    /// held in the job's resolved copy only, never read from or written to a config.
    #[serde(skip)]
    pub session_token: Option<Secret>,
    /// Part size of multipart uploads, bytes. Default 50 MB (`min_part_size` accepted).
    #[serde(
        default,
        alias = "min_part_size",
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub min_part_size: Option<u64>,
    /// Concurrent requests to S3 (`max_async_connections` accepted).
    #[serde(
        default,
        alias = "max_async_connections",
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_async_connections: Option<u32>,
    /// Storage class of written objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<StorageClass>,
    /// Inline Secret Agent for this storage's secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_agent: Option<SecretAgent>,
    /// Name of a configured Secret Agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_agent_name: Option<String>,
}

/// `azure-storage:`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct AzureStorage {
    /// Blob service endpoint URL (required).
    pub endpoint: String,
    /// Container (required).
    pub container_name: String,
    /// Root prefix inside the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Account name for Shared Key authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_name: Option<String>,
    /// Account key for Shared Key authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_key: Option<Secret>,
    /// Tenant id for AAD authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// Client id for AAD authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Client secret for AAD authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<Secret>,
    /// Azure AD authority for the client-secret grant (ours). Default: `AZURE_AUTHORITY_HOST`,
    /// else `https://login.microsoftonline.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority_host: Option<String>,
    /// The AAD access token the client secret was exchanged for at job start; held in the
    /// job's resolved copy only, never read from or written to a config.
    #[serde(skip)]
    pub bearer_token: Option<Secret>,
    /// Block size of uploads, bytes.
    #[serde(
        default,
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub min_part_size: Option<u64>,
    /// Access tier of written blobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<StorageClass>,
    /// Inline Secret Agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_agent: Option<SecretAgent>,
    /// Name of a configured Secret Agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_agent_name: Option<String>,
}

/// `gcp-storage:`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct GcpStorage {
    /// Bucket (required).
    pub bucket_name: String,
    /// Service-account JSON key file (v2 spelling `key-file` accepted).
    #[serde(default, alias = "key-file", skip_serializing_if = "Option::is_none")]
    pub key_file_path: Option<String>,
    /// Service-account JSON key itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Secret>,
    /// The OAuth access token the service-account key was exchanged for at job start; held
    /// in the job's resolved copy only, never read from or written to a config.
    #[serde(skip)]
    pub access_token: Option<Secret>,
    /// Root prefix inside the bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Alternative endpoint (emulators, private endpoints).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Chunk size of uploads, bytes.
    #[serde(
        default,
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub min_part_size: Option<u64>,
    /// Storage class of written objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<String>,
    /// Inline Secret Agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_agent: Option<SecretAgent>,
    /// Name of a configured Secret Agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_agent_name: Option<String>,
}

/// `plugin-storage:` (our extension) a storage plugin chosen by name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct PluginStorage {
    /// A default storage plugin or a name under top-level `plugins:`.
    pub plugin: String,
    /// Options, validated against the plugin's JSON Schema.
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    pub options: serde_json::Value,
    /// Credentials handed to the plugin, never logged or shown.
    #[serde(default, skip_serializing_if = "Given::is_absent")]
    #[schema(value_type = BTreeMap<String, Secret>)]
    pub secrets: Given<BTreeMap<String, Secret>>,
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(Default::default())
}

// ---------------------------------------------------------------------------------------------
// backup-policies

/// `backup-policies.<name>:` how a backup runs. Every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct BackupPolicy {
    /// Scans run in parallel by a routine. Default 8.
    #[serde(
        default,
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub parallel: Option<u32>,
    /// Files written in parallel. Default: `parallel`.
    #[serde(
        default,
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub parallel_write: Option<u32>,
    /// Socket timeout of scans, ms. Default 600000.
    #[serde(
        default,
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub socket_timeout: Option<u64>,
    /// Total timeout of scans, ms; 0 = none. Default 0.
    #[serde(
        default,
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub total_timeout: Option<u64>,
    /// Records per second over the routine; 0 = unlimited.
    #[serde(
        default,
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub records_per_second: Option<u64>,
    /// Bandwidth of writes to storage, MiB/s; 0 = unlimited.
    #[serde(
        default,
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub bandwidth: Option<u64>,
    /// Size at which a backup file is rotated, MB. Default 250.
    #[serde(
        default,
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub file_limit: Option<u64>,
    /// Do not back up record data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_records: Option<bool>,
    /// Do not back up secondary index definitions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_indexes: Option<bool>,
    /// Do not back up UDF modules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_udfs: Option<bool>,
    /// Only back up records last updated before the backup started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed: Option<bool>,
    /// Write blobs as raw bytes instead of base64 (ABS 3.6+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compact: Option<bool>,
    /// Nodes scanned at once.
    #[serde(
        default,
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_concurrent_nodes: Option<u32>,
    /// Ask the server to compress scan responses (ABS 3.4+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_scan_compression: Option<bool>,
    /// Save each node's configuration with full backups (ABS 3.1+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub with_cluster_configuration: Option<bool>,
    /// Allow an incremental while another backup of the routine runs (ABS 3.1+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrent_incremental: Option<bool>,
    /// What an incremental covers (ABS 3.7): `differential` (default) = the changes since
    /// the routine's previous backup; `cumulative` = every change since its last full.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<IncrMode>)]
    pub incr_mode: Option<Spelled<IncrMode>>,
    /// Retries of a failed namespace backup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_policy: Option<RetryPolicy>,
    /// How many backups to keep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<RetentionPolicy>,
    /// Compression of backup files (ABS compatible).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<CompressionPolicy>,
    /// Encryption of backup files (ABS compatible).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<EncryptionPolicy>,
    /// Our extension: an explicit codec chain, exclusive with compression/encryption.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<Vec<PipelineStep>>,
    /// Ours: how long (ms) after its start a full backup cut off by a crash or restart
    /// is resumed from its checkpoint when the service comes back; older ones start anew.
    /// 0 = never resume. Default 86400000 (one day).
    #[serde(
        default,
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub resume_max_age: Option<u64>,
    /// Deprecated (ABS 2.x): use `retention`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remove_files: Option<RemoveFiles>,
    /// Deprecated (ABS 2.x): use `retry-policy.max-retries`.
    #[serde(
        default,
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_retries: Option<u32>,
    /// Deprecated (ABS 2.x): use `retry-policy.base-timeout`.
    #[serde(
        default,
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub retry_delay: Option<u64>,
}

config_enum! {
    /// What an incremental backup covers (ABS 3.7 `incr-mode`).
    pub enum IncrMode {
        /// The changes since the routine's previous backup, full or incremental.
        Differential = "differential",
        /// The changes since the routine's last full backup.
        Cumulative = "cumulative",
    }
}

impl BackupPolicy {
    /// `incr-mode`, differential when not given.
    pub fn incr_mode(&self) -> IncrMode {
        self.incr_mode.map_or(IncrMode::Differential, |m| *m)
    }

    pub fn parallel(&self) -> u32 {
        self.parallel.unwrap_or(8)
    }
    pub fn socket_timeout_ms(&self) -> u64 {
        self.socket_timeout.unwrap_or(600_000)
    }
    pub fn file_limit_mb(&self) -> u64 {
        self.file_limit.unwrap_or(250)
    }
    pub fn retry_policy(&self) -> RetryPolicy {
        self.retry_policy.clone().unwrap_or_default()
    }
}

config_enum! {
    /// ABS 2.x retention switch.
    pub enum RemoveFiles {
        KeepAll = "KeepAll",
        RemoveAll = "RemoveAll",
        RemoveIncremental = "RemoveIncremental",
    }
}

/// `retry-policy:`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RetryPolicy {
    /// First delay between attempts, ms (`baseTimeout` accepted). Default 60000.
    #[serde(
        default,
        alias = "baseTimeout",
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub base_timeout: Option<u64>,
    /// Factor applied to the delay after each attempt, >= 1. Default 1.
    #[serde(
        default,
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub multiplier: Option<f64>,
    /// Attempts after the first (`maxRetries` accepted). Default 5.
    #[serde(
        default,
        alias = "maxRetries",
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_retries: Option<u32>,
}

impl RetryPolicy {
    pub fn base_timeout_ms(&self) -> u64 {
        self.base_timeout.unwrap_or(60_000)
    }
    pub fn multiplier(&self) -> f64 {
        self.multiplier.unwrap_or(1.0)
    }
    pub fn max_retries(&self) -> u32 {
        self.max_retries.unwrap_or(5)
    }
}

/// `retention:` which backups to keep after each successful full backup.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RetentionPolicy {
    /// Keep this many newest full backups (>= 1); absent keeps all.
    #[serde(
        default,
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub full: Option<u32>,
    /// Keep incrementals of this many newest fulls (<= full); absent keeps all.
    #[serde(
        default,
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub incremental: Option<u32>,
}

config_enum! {
    /// ABS compression modes.
    pub enum CompressionMode {
        None = "NONE",
        Zstd = "ZSTD",
    }
}

/// `compression:`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct CompressionPolicy {
    /// NONE or ZSTD. Required since ABS 3.7; a config written for ABS 3.6 or older may leave it
    /// out, which means NONE there (the level is then ignored) and here, with a warning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<CompressionMode>)]
    pub mode: Option<Spelled<CompressionMode>>,
    /// zstd level -1..=22; 0 means the default (3).
    #[serde(
        default,
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub level: Option<i32>,
}

impl CompressionPolicy {
    /// The mode; NONE when the config leaves it out (ABS 3.6 and older).
    pub fn mode(&self) -> CompressionMode {
        self.mode.map_or(CompressionMode::None, |m| *m)
    }
}

config_enum! {
    /// ABS encryption modes (AES-CTR, compatible with asbackup).
    pub enum EncryptionMode {
        None = "NONE",
        Aes128 = "AES128",
        Aes256 = "AES256",
    }
}

/// `encryption:` exactly one key source when the mode is not NONE.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct EncryptionPolicy {
    /// NONE, AES128 or AES256. Required since ABS 3.7; left out (ABS 3.6 and older) it means
    /// NONE, with a warning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<EncryptionMode>)]
    pub mode: Option<Spelled<EncryptionMode>>,
    /// File holding the key (an RSA PEM as asbackup uses, or raw key material).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<String>,
    /// Environment variable holding the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_env: Option<String>,
    /// Secret Agent key holding the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_secret: Option<String>,
}

impl EncryptionPolicy {
    /// The mode; NONE when the config leaves it out (ABS 3.6 and older).
    pub fn mode(&self) -> EncryptionMode {
        self.mode.map_or(EncryptionMode::None, |m| *m)
    }
}

/// One codec of a `pipeline:` (our extension), applied in order on backup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct PipelineStep {
    /// A default codec plugin (`compression-zstd` or `zstd`, `encryption-aes` or `aes`) or a
    /// name under top-level `plugins:`.
    pub plugin: String,
    /// Options, validated against the plugin's JSON Schema.
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    pub options: serde_json::Value,
    /// For encryption codecs: file holding the key (as `encryption.key-file`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<String>,
    /// For encryption codecs: environment variable holding the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_env: Option<String>,
    /// For encryption codecs: Secret Agent key holding the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_secret: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// backup-routines

/// `backup-routines.<name>:` what to back up, where to and when.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct BackupRoutine {
    /// Policy name; absent uses an all-default policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_policy: Option<String>,
    /// Cluster name (required).
    pub source_cluster: String,
    /// Storage name (required).
    pub storage: String,
    /// Secret Agent name for this routine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_agent: Option<String>,
    /// Full backup schedule: Quartz cron (6 or 7 fields) or `@daily` style (required).
    pub interval_cron: String,
    /// Incremental backup schedule; absent or empty = none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incr_interval_cron: Option<String>,
    /// Namespaces to back up (required; `[]` = all namespaces of the cluster).
    pub namespaces: Vec<String>,
    /// Sets to back up; empty = all.
    #[serde(default, skip_serializing_if = "Given::is_absent")]
    #[schema(value_type = Vec<String>)]
    pub set_list: Given<Vec<String>>,
    /// Bins to back up; empty = all.
    #[serde(default, skip_serializing_if = "Given::is_absent")]
    #[schema(value_type = Vec<String>)]
    pub bin_list: Given<Vec<String>>,
    /// Partitions: "N" or "start-count" ranges, comma-separated, within 0..=4095.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition_list: Option<String>,
    /// Only the partitions these nodes master ("host:port" or node ids).
    #[serde(default, skip_serializing_if = "Given::is_absent")]
    #[schema(value_type = Vec<String>)]
    pub node_list: Given<Vec<String>>,
    /// Only these racks (ABS 3.4+).
    #[serde(
        default,
        deserialize_with = "opt_number_list",
        skip_serializing_if = "Option::is_none"
    )]
    pub rack_list: Option<Vec<u32>>,
    /// Deprecated in ABS 3.4 (moved to the cluster): racks to prefer.
    #[serde(
        default,
        deserialize_with = "opt_number_list",
        skip_serializing_if = "Option::is_none"
    )]
    pub prefer_racks: Option<Vec<u32>>,
    /// Base64 Aerospike filter expression (ABS 3.7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter_exp: Option<String>,
    /// Not scheduled while true.
    #[serde(default, skip_serializing_if = "Given::is_absent")]
    #[schema(value_type = bool)]
    pub disabled: Given<bool>,
    /// Time zone of this routine's cron expressions (ABS 3.7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_timezone: Option<String>,
    /// Ours: when to verify the routine's newest full backup without restoring it (every
    /// file's size and SHA-256, every record decoded); absent = never. Results show in
    /// `currentBackup` (`last-verify`) and the `verify_*` metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_cron: Option<String>,
    /// Ours: storages that receive a copy of every completed backup (streamed, checked
    /// against `checksums.yaml`, retention applied to each); a failed copy never fails the
    /// backup. Shown per storage in `currentBackup` (`copies`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy_to: Option<Vec<String>>,
}

impl BackupRoutine {
    /// The verify schedule, if one is set and non-empty.
    pub fn verify_cron(&self) -> Option<&str> {
        self.verify_cron
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty())
    }

    /// The incremental schedule, if one is set and non-empty.
    pub fn incr_cron(&self) -> Option<&str> {
        self.incr_interval_cron
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }
}

// ---------------------------------------------------------------------------------------------
// secret-agents and plugins

config_enum! {
    /// How to reach a Secret Agent.
    pub enum ConnectionType {
        Tcp = "tcp",
        Unix = "unix",
    }
}

/// `storage-class` of S3 and Azure storage: one class (access tier) for every object, or
/// ABS's `{data, metadata}`: `data` for the `.asb` files, `metadata` for the rest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum StorageClass {
    One(String),
    Split(SplitStorageClass),
}

/// `storage-class: {data, metadata}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct SplitStorageClass {
    /// The class of the data files; absent: the store's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// The class of metadata and sidecar files (quick to read back).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<String>,
}

impl StorageClass {
    /// The data files' class and the other files' class.
    pub fn classes(&self) -> (Option<&str>, Option<&str>) {
        match self {
            StorageClass::One(c) => (Some(c), None),
            StorageClass::Split(s) => (s.data.as_deref(), s.metadata.as_deref()),
        }
    }
}

/// `secret-agents.<name>:` an Aerospike Secret Agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct SecretAgent {
    /// tcp or unix (required).
    #[schema(value_type = ConnectionType)]
    pub connection_type: Spelled<ConnectionType>,
    /// Host, or socket path for unix (required).
    pub address: String,
    /// TCP port.
    #[serde(
        default,
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub port: Option<u32>,
    /// Request timeout, ms. Default 1000.
    #[serde(
        default,
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout: Option<u64>,
    /// CA file for TLS to the agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_ca_file: Option<String>,
    /// The agent answers in base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_base64: Option<bool>,
}

/// `plugins.<name>:` (our extension) a WASM component the operator supplies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct PluginDefinition {
    /// Path of the `.wasm` component.
    pub path: String,
    /// Hex sha256 of the file; checked at load.
    pub sha256: String,
}

// ---------------------------------------------------------------------------------------------
// notifications (ours)

/// `notifications:` (ours) webhooks called when a job ends (docs/NOTIFICATIONS.md).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct NotificationsConfig {
    /// Webhooks by name (the name labels their metrics and logs).
    #[serde(default, skip_serializing_if = "Given::is_absent")]
    #[schema(value_type = BTreeMap<String, WebhookConfig>)]
    pub webhooks: Given<BTreeMap<String, WebhookConfig>>,
    /// Deliveries waiting to be sent, at most; when full, the oldest is dropped (and
    /// counted). Default 1000.
    #[serde(
        default,
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub queue_size: Option<u32>,
}

impl NotificationsConfig {
    pub fn queue_size(&self) -> usize {
        self.queue_size.unwrap_or(1000) as usize
    }
}

/// One webhook: where job ends are posted, which ones, and how.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct WebhookConfig {
    /// The `http(s)://` URL posted to. A secret (a Slack webhook URL is its own credential):
    /// shown as `"[secret]"`, never logged (logs name the host); may be a `secrets:`
    /// reference.
    pub url: Secret,
    /// Key of the `X-Abs-Signature-256` header (HMAC-SHA256 of the body); without it no
    /// signature is sent. May be a `secrets:` reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<Secret>,
    /// The Secret Agent that `secrets:` references of `url` and `secret` are asked of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_agent_name: Option<String>,
    /// Routines whose jobs are reported. Default: every job, also restores that name no routine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routines: Option<Vec<String>>,
    /// Job kinds reported: `backup`, `restore`, `verify`. Default all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kinds: Option<Vec<String>>,
    /// Outcomes reported: `success`, `failure`, `skip`, `canceled`. Default all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcomes: Option<Vec<String>>,
    /// `json` (default: the event's fields) or `slack` (`{"text": ...}` for a Slack or
    /// Mattermost incoming webhook).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// Retries of a failed delivery (no answer, or a status other than 2xx): `base-timeout`
    /// ms before the first retry (default 1000), `multiplier` (default 2), `max-retries`
    /// (default 5). The delay is capped at 5 minutes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_policy: Option<RetryPolicy>,
    /// One attempt's time limit, seconds. Default 10.
    #[serde(
        default,
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout_seconds: Option<u64>,
}

/// The job kinds a webhook may select.
pub const WEBHOOK_KINDS: [&str; 3] = ["backup", "restore", "verify"];
/// The outcomes a webhook may select.
pub const WEBHOOK_OUTCOMES: [&str; 4] = ["success", "failure", "skip", "canceled"];

impl WebhookConfig {
    /// Whether a job end is reported here.
    pub fn wants(&self, kind: &str, outcome: &str, routine: Option<&str>) -> bool {
        let has = |list: &Option<Vec<String>>, v: &str| {
            list.as_ref()
                .is_none_or(|l| l.iter().any(|x| x.eq_ignore_ascii_case(v)))
        };
        let routine_ok = match (&self.routines, routine) {
            (None, _) => true,
            (Some(l), Some(r)) => l.iter().any(|x| x == r),
            (Some(_), None) => false,
        };
        routine_ok && has(&self.kinds, kind) && has(&self.outcomes, outcome)
    }

    /// The delay before retry `n` (1-based), as the retry policy says, capped at 5 minutes.
    pub fn retry_delay(&self, n: u32) -> std::time::Duration {
        let p = self.retry_policy.clone().unwrap_or_default();
        let base = p.base_timeout.unwrap_or(1000) as f64;
        let factor = p.multiplier.unwrap_or(2.0).max(1.0);
        let ms = (base * factor.powi(n.saturating_sub(1) as i32)).min(300_000.0);
        std::time::Duration::from_millis(ms as u64)
    }

    /// Retries after the first attempt. Default 5.
    pub fn max_retries(&self) -> u32 {
        self.retry_policy
            .as_ref()
            .and_then(|p| p.max_retries)
            .unwrap_or(5)
    }

    pub fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.timeout_seconds.unwrap_or(10))
    }

    /// Slack's `{"text": ...}` rather than the event's fields.
    pub fn slack(&self) -> bool {
        self.format
            .as_deref()
            .is_some_and(|f| f.eq_ignore_ascii_case("slack"))
    }

    fn secrets_mut(&mut self) -> Vec<(&'static str, &mut Secret)> {
        let mut v = vec![("url", &mut self.url)];
        if let Some(s) = self.secret.as_mut() {
            v.push(("secret", s));
        }
        v
    }
}

// ---------------------------------------------------------------------------------------------
// secret handling

impl Config {
    /// The configuration as the API answers it: redacted unless
    /// `service.reveal-secrets-in-api` is set.
    pub fn shown(&self) -> Config {
        if self.service.reveal_secrets_in_api() {
            self.clone()
        } else {
            self.redacted()
        }
    }

    /// A copy fit to show over the API: every secret replaced by [`REDACTED`].
    pub fn redacted(&self) -> Config {
        let mut c = self.clone();
        c.visit_secrets_mut(&mut |s| s.redact());
        c
    }

    /// Replace [`REDACTED`] placeholders sent back by a client with the stored values, matched
    /// by position (entity name and field).
    pub fn keep_secrets_from(&mut self, old: &Config) {
        if let Some(p) = self.https_key_password_mut() {
            p.keep_from(
                old.service
                    .https
                    .as_ref()
                    .and_then(|h| h.key_file_password.as_ref()),
            );
        }
        for (name, c) in &mut self.aerospike_clusters {
            c.keep_secrets_from(old.aerospike_clusters.get(name));
        }
        for (name, s) in &mut self.storage {
            s.keep_secrets_from(old.storage.get(name));
        }
        for (name, w) in self.webhooks_mut() {
            let mut old_hook = old
                .notifications
                .as_ref()
                .and_then(|n| n.webhooks.get(name))
                .cloned();
            let old_secrets = old_hook.as_mut().map(|o| o.secrets_mut());
            for (field, s) in w.secrets_mut() {
                s.keep_from(
                    old_secrets
                        .as_ref()
                        .and_then(|o| o.iter().find(|(f, _)| *f == field))
                        .map(|(_, v)| &**v),
                );
            }
        }
    }

    fn webhooks_mut(&mut self) -> impl Iterator<Item = (&String, &mut WebhookConfig)> {
        self.notifications
            .iter_mut()
            .flat_map(|n| n.webhooks.iter_mut())
    }

    /// Placeholders that could not be matched to a stored value, as config paths.
    pub fn unresolved_placeholders(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self
            .service
            .https
            .as_ref()
            .and_then(|h| h.key_file_password.as_ref())
            .is_some_and(Secret::is_placeholder)
        {
            out.push("service.https.key-file-password".to_string());
        }
        for (name, c) in &self.aerospike_clusters {
            for p in c.placeholder_fields() {
                out.push(format!("aerospike-clusters.{name}.{p}"));
            }
        }
        for (name, s) in &self.storage {
            for p in s.placeholder_fields() {
                out.push(format!("storage.{name}.{}.{p}", s.kind()));
            }
        }
        let mut c = self.clone();
        for (name, w) in c.webhooks_mut() {
            for (field, s) in w.secrets_mut() {
                if s.is_placeholder() {
                    out.push(format!("notifications.webhooks.{name}.{field}"));
                }
            }
        }
        out
    }

    fn visit_secrets_mut(&mut self, f: &mut dyn FnMut(&mut Secret)) {
        if let Some(p) = self.https_key_password_mut() {
            f(p);
        }
        for c in self.aerospike_clusters.values_mut() {
            c.visit_secrets_mut(f);
        }
        for s in self.storage.values_mut() {
            s.visit_secrets_mut(f);
        }
        for (_, w) in self.webhooks_mut() {
            for (_, s) in w.secrets_mut() {
                f(s);
            }
        }
    }

    fn https_key_password_mut(&mut self) -> Option<&mut Secret> {
        self.service
            .https
            .as_mut()
            .and_then(|h| h.key_file_password.as_mut())
    }

    /// Every secret value, for tests that assert none of them leaks.
    pub fn secret_values(&self) -> Vec<String> {
        let mut c = self.clone();
        let mut out = Vec::new();
        c.visit_secrets_mut(&mut |s| out.push(s.expose().to_string()));
        out
    }
}

impl AerospikeCluster {
    /// A copy fit to show over the API.
    pub fn redacted(&self) -> Self {
        let mut c = self.clone();
        c.visit_secrets_mut(&mut |s| s.redact());
        c
    }

    fn visit_secrets_mut(&mut self, f: &mut dyn FnMut(&mut Secret)) {
        if let Some(p) = self.credentials.as_mut().and_then(|c| c.password.as_mut()) {
            f(p);
        }
        if let Some(p) = self.tls.as_mut().and_then(|t| t.key_file_password.as_mut()) {
            f(p);
        }
    }

    /// See [`Config::keep_secrets_from`].
    pub fn keep_secrets_from(&mut self, old: Option<&AerospikeCluster>) {
        if let Some(p) = self.credentials.as_mut().and_then(|c| c.password.as_mut()) {
            p.keep_from(old.and_then(|o| o.credentials.as_ref()?.password.as_ref()));
        }
        if let Some(p) = self.tls.as_mut().and_then(|t| t.key_file_password.as_mut()) {
            p.keep_from(old.and_then(|o| o.tls.as_ref()?.key_file_password.as_ref()));
        }
    }

    /// Fields still holding [`REDACTED`].
    pub fn placeholder_fields(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self
            .credentials
            .as_ref()
            .and_then(|c| c.password.as_ref())
            .is_some_and(Secret::is_placeholder)
        {
            out.push("credentials.password");
        }
        if self
            .tls
            .as_ref()
            .and_then(|t| t.key_file_password.as_ref())
            .is_some_and(Secret::is_placeholder)
        {
            out.push("tls.key-file-password");
        }
        out
    }
}

impl Storage {
    /// A copy fit to show over the API.
    pub fn redacted(&self) -> Self {
        let mut s = self.clone();
        s.visit_secrets_mut(&mut |x| x.redact());
        s
    }

    fn secrets_mut(&mut self) -> Vec<(String, &mut Secret)> {
        match self {
            Storage::LocalStorage(_) => vec![],
            Storage::S3Storage(s) => s
                .secret_access_key
                .as_mut()
                .map(|k| ("secret-access-key".to_string(), k))
                .into_iter()
                .collect(),
            Storage::AzureStorage(s) => {
                let mut v = Vec::new();
                if let Some(k) = s.account_key.as_mut() {
                    v.push(("account-key".to_string(), k));
                }
                if let Some(k) = s.client_secret.as_mut() {
                    v.push(("client-secret".to_string(), k));
                }
                v
            }
            Storage::GcpStorage(s) => s
                .key
                .as_mut()
                .map(|k| ("key".to_string(), k))
                .into_iter()
                .collect(),
            Storage::PluginStorage(s) => s
                .secrets
                .iter_mut()
                .map(|(k, v)| (format!("secrets.{k}"), v))
                .collect(),
        }
    }

    fn visit_secrets_mut(&mut self, f: &mut dyn FnMut(&mut Secret)) {
        for (_, s) in self.secrets_mut() {
            f(s);
        }
    }

    /// See [`Config::keep_secrets_from`]; only a storage of the same kind can supply values.
    pub fn keep_secrets_from(&mut self, old: Option<&Storage>) {
        let mut old = old.cloned();
        let old_values: BTreeMap<String, Secret> = match old.as_mut() {
            Some(o) if o.kind() == self.kind() => o
                .secrets_mut()
                .into_iter()
                .map(|(k, v)| (k, v.clone()))
                .collect(),
            _ => BTreeMap::new(),
        };
        for (field, s) in self.secrets_mut() {
            s.keep_from(old_values.get(&field));
        }
    }

    /// Fields still holding [`REDACTED`].
    pub fn placeholder_fields(&self) -> Vec<String> {
        let mut s = self.clone();
        s.secrets_mut()
            .into_iter()
            .filter(|(_, v)| v.is_placeholder())
            .map(|(k, _)| k)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_prints() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "**redacted** **redacted**");
        let c = Credentials {
            password: Some(s),
            ..Default::default()
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn redaction_and_placeholder_round_trip() {
        let yaml = r#"
aerospike-clusters:
  a:
    seed-nodes: [{host-name: h, port: 3000}]
    credentials: {user: u, password: pw1}
  b:
    seed-nodes: [{host-name: h, port: 3000}]
    credentials: {user: u, password: "secrets:res:key"}
storage:
  s3:
    s3-storage: {bucket: b, s3-region: r, secret-access-key: sk}
"#;
        let cfg: Config = serde_yaml::from_str(yaml).unwrap();
        let shown = cfg.redacted();
        let json = serde_json::to_string(&shown).unwrap();
        assert!(!json.contains("pw1") && !json.contains("\"sk\""));
        assert!(
            json.contains("secrets:res:key"),
            "references are not secret"
        );
        let mut back: Config = serde_json::from_str(&json).unwrap();
        assert_eq!(back.unresolved_placeholders().len(), 2);
        back.keep_secrets_from(&cfg);
        assert_eq!(back, cfg);
        assert!(back.unresolved_placeholders().is_empty());
    }

    #[test]
    fn storage_is_tagged_by_its_key() {
        let s: Storage = serde_yaml::from_str("local-storage: {path: /x}").unwrap();
        assert_eq!(s.kind(), "local-storage");
        let e = serde_yaml::from_str::<Storage>("s4-storage: {path: /x}").unwrap_err();
        assert!(e.to_string().contains("s4-storage"), "{e}");
        let e = serde_yaml::from_str::<Storage>(
            "local-storage: {path: /x}\ngcp-storage: {bucket-name: b}",
        )
        .unwrap_err();
        assert!(e.to_string().contains("only one storage type"), "{e}");
        assert!(serde_yaml::from_str::<Storage>("{}").is_err());
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json, serde_json::json!({"local-storage": {"path": "/x"}}));
    }

    #[test]
    fn enums_are_case_insensitive_and_written_as_given() {
        let a: SecretAgent =
            serde_yaml::from_str("connection-type: TCP\naddress: localhost\nport: 5000").unwrap();
        assert_eq!(*a.connection_type, ConnectionType::Tcp);
        let l: LoggerConfig = serde_yaml::from_str("level: warning\nformat: json").unwrap();
        assert_eq!(l.level.map(|l| *l), Some(LogLevel::Warn));
        assert_eq!(
            serde_json::to_value(&l).unwrap(),
            serde_json::json!({"level": "warning", "format": "json"})
        );
        let made = LoggerConfig {
            level: Some(LogLevel::Warn.into()),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&made).unwrap(),
            serde_json::json!({"level": "WARN"})
        );
        assert!(serde_yaml::from_str::<LoggerConfig>("level: LOUD").is_err());
    }

    #[test]
    fn context_path_is_normalised() {
        let mut h = HttpServerConfig::default();
        assert_eq!(h.context_path(), "/");
        h.context_path = Some("/abs".into());
        assert_eq!(h.context_path(), "/abs/");
        h.context_path = Some("/abs/v/".into());
        assert_eq!(h.context_path(), "/abs/v/");
    }
}
