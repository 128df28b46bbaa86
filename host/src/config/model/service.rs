//! `service:` the HTTP and HTTPS listeners, API authentication, rate limits, logging and
//! backup naming.

use super::super::given::{Given, Spelled};
use super::super::serde_util::{config_enum, opt_number};
use super::{Secret, SecretAgent};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

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

defaults! {
    ServiceConfig {
        /// Whether configuration answers carry secrets as configured. Default false.
        value reveal_secrets_in_api: bool = false;
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

defaults! {
    HttpServerConfig {
        text address = "0.0.0.0";
        value port: u16 = 8080;
        value header_timeout_ms(timeout): u64 = 5_000;
        value read_timeout_ms(read_timeout): u64 = 30_000;
        value write_timeout_ms(write_timeout): u64 = 60_000;
        value idle_timeout_ms(idle_timeout): u64 = 120_000;
        or_default rate: RateLimiterConfig;
    }
}

impl HttpServerConfig {
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

defaults! {
    HttpsServerConfig {
        text address = "0.0.0.0";
        value port: u16 = 8443;
        value disabled: bool = false;
    }
}

impl HttpsServerConfig {
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

defaults! {
    RateLimiterConfig {
        value tps: u32 = 1024;
        value size: u32 = 1024;
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

defaults! {
    LoggerConfig {
        spelled level: LogLevel = LogLevel::Info;
        spelled format: LogFormat = LogFormat::Plain;
        value stdout_writer: bool = true;
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

defaults! {
    FileLoggerConfig {
        value maxsize_mb(maxsize): u64 = 100;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::{ConnectionType, SecretAgent};

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
