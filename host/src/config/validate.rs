//! Pure validation of a whole configuration: no I/O, every error reported with its path.

use super::cron::CronSchedule;
use super::limits;
use super::model::*;
use super::secret_ref::SecretRef;
use super::tls;
use std::fmt;
use std::net::IpAddr;

/// One problem in a configuration, located by its dotted path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted config path, e.g. `backup-routines.daily.storage`.
    pub path: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Collects errors while walking the config.
#[derive(Default)]
struct Errors(Vec<ConfigError>);

impl Errors {
    fn push(&mut self, path: impl Into<String>, msg: impl Into<String>) {
        self.0.push(ConfigError::new(path, msg));
    }

    /// Checks `v` against the range of `schema.field` in [`limits::RANGES`].
    fn range<T: Into<i128>>(&mut self, path: String, schema: &str, field: &str, v: Option<T>) {
        if let Some(v) = v
            && let Some(m) = limits::range(schema, field).check_int(v)
        {
            self.push(path, m);
        }
    }
}

/// Checks everything that can be checked without I/O. Returns all errors, in config order.
pub fn validate(cfg: &Config) -> Result<(), Vec<ConfigError>> {
    let mut e = Errors::default();
    service(&mut e, cfg);
    for (name, c) in &cfg.aerospike_clusters {
        check_name(&mut e, "aerospike-clusters", name);
        cluster(&mut e, cfg, &format!("aerospike-clusters.{name}"), c);
    }
    for (name, s) in &cfg.storage {
        check_name(&mut e, "storage", name);
        storage(&mut e, cfg, &format!("storage.{name}"), s);
    }
    for (name, p) in &cfg.backup_policies {
        check_name(&mut e, "backup-policies", name);
        policy(&mut e, &format!("backup-policies.{name}"), p);
    }
    for (name, r) in &cfg.backup_routines {
        check_name(&mut e, "backup-routines", name);
        routine(&mut e, cfg, &format!("backup-routines.{name}"), r);
    }
    for (name, a) in &cfg.secret_agents {
        check_name(&mut e, "secret-agents", name);
        secret_agent(&mut e, &format!("secret-agents.{name}"), a);
    }
    for (name, p) in &cfg.plugins {
        check_name(&mut e, "plugins", name);
        let path = format!("plugins.{name}");
        if p.path.trim().is_empty() {
            e.push(format!("{path}.path"), "must not be empty");
        }
        if p.sha256.len() != 64 || !p.sha256.chars().all(|c| c.is_ascii_hexdigit()) {
            e.push(
                format!("{path}.sha256"),
                "must be 64 hexadecimal characters",
            );
        }
    }
    if let Some(n) = &cfg.notifications {
        notifications(&mut e, cfg, n);
    }
    if e.0.is_empty() { Ok(()) } else { Err(e.0) }
}

/// `notifications:` (ours): each webhook's URL, selectors, format and retries.
fn notifications(e: &mut Errors, cfg: &Config, n: &NotificationsConfig) {
    e.range(
        "notifications.queue-size".into(),
        "NotificationsConfig",
        "queue-size",
        n.queue_size,
    );
    for (name, w) in &n.webhooks {
        check_name(e, "notifications.webhooks", name);
        let path = entity_path("notifications.webhooks", name);
        let references =
            w.url.is_agent_reference() || w.secret.as_ref().is_some_and(Secret::is_agent_reference);
        if !w.url.is_agent_reference() {
            let url = w.url.expose();
            // The URL is a secret: the error names the field, never the value.
            let ok = (url.starts_with("http://") || url.starts_with("https://"))
                && url.split_once("://").is_some_and(|(_, r)| !r.is_empty());
            if !ok {
                e.push(format!("{path}.url"), "must be an http:// or https:// URL");
            }
        }
        if w.secret.as_ref().is_some_and(|s| s.expose().is_empty()) {
            e.push(format!("{path}.secret"), "must not be empty");
        }
        match &w.secret_agent_name {
            Some(a) if !cfg.secret_agents.contains_key(a) => e.push(
                format!("{path}.secret-agent-name"),
                format!("secret agent {a} not found"),
            ),
            None if references => e.push(
                format!("{path}.secret-agent-name"),
                "a secrets: reference needs secret-agent-name",
            ),
            _ => {}
        }
        for (i, r) in w.routines.iter().flatten().enumerate() {
            if !cfg.backup_routines.contains_key(r) {
                e.push(
                    format!("{path}.routines[{i}]"),
                    format!("routine {r} not found"),
                );
            }
        }
        for (field, list, allowed) in [
            ("kinds", &w.kinds, &WEBHOOK_KINDS[..]),
            ("outcomes", &w.outcomes, &WEBHOOK_OUTCOMES[..]),
        ] {
            for (i, v) in list.iter().flatten().enumerate() {
                if !allowed.iter().any(|a| a.eq_ignore_ascii_case(v)) {
                    e.push(
                        format!("{path}.{field}[{i}]"),
                        format!("\"{v}\" is not one of {}", allowed.join(", ")),
                    );
                }
            }
        }
        if let Some(f) = &w.format
            && !["json", "slack"].iter().any(|a| a.eq_ignore_ascii_case(f))
        {
            e.push(format!("{path}.format"), "must be json or slack");
        }
        e.range(
            format!("{path}.timeout-seconds"),
            "WebhookConfig",
            "timeout-seconds",
            w.timeout_seconds,
        );
        if let Some(p) = &w.retry_policy {
            retry_policy(e, &format!("{path}.retry-policy"), p);
        }
    }
}

/// The names an entity may have, as the OpenAPI `pattern` of names (same rule as
/// [`name_problem`]): they become folder names in storage and keys in the YAML file, so only
/// characters safe in every file system and object store are allowed.
pub const NAME_PATTERN: &str = "^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,254}$";
/// Longest entity name, in bytes.
pub const NAME_MAX: usize = 255;

/// Why `name` is not a valid entity name, or `None` when it is: 1..=255 ASCII letters, digits,
/// `-`, `_` and `.`, not starting with a dot (no hidden folders, no `.`/`..`).
pub fn name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("names must not be empty".into());
    }
    if name.len() > NAME_MAX {
        return Some(format!("names are at most {NAME_MAX} characters"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Some(format!(
            "name {:?} has the character {c:?}; names are made of letters, digits, '-', '_' and '.'",
            name
        ));
    }
    if name.starts_with('.') {
        return Some(format!("name {name:?} must not start with '.'"));
    }
    None
}

/// The config path of a named entity, printable even when the name is not.
pub fn entity_path(section: &str, name: &str) -> String {
    if name_problem(name).is_none() {
        format!("{section}.{name}")
    } else {
        format!("{section}.{}", name.escape_default())
    }
}

fn check_name(e: &mut Errors, section: &str, name: &str) {
    if let Some(m) = name_problem(name) {
        e.push(entity_path(section, name), m);
    }
}

/// The problems of a cluster given inline (a restore request's `destination`), checked as if it
/// were stored at `path` of `cfg`.
pub fn inline_cluster(cfg: &Config, path: &str, c: &AerospikeCluster) -> Vec<ConfigError> {
    let mut e = Errors::default();
    cluster(&mut e, cfg, path, c);
    e.0
}

/// The problems of a storage given inline (a restore request's `source`).
pub fn inline_storage(cfg: &Config, path: &str, s: &Storage) -> Vec<ConfigError> {
    let mut e = Errors::default();
    storage(&mut e, cfg, path, s);
    e.0
}

fn service(e: &mut Errors, cfg: &Config) {
    let s = &cfg.service;
    let h = &s.http;
    if *h.disabled && s.https.as_ref().is_none_or(|x| x.disabled()) {
        e.push(
            "service.http.disabled",
            "disabling HTTP needs a service.https listener, or the API has none",
        );
    }
    if let Some(a) = &h.auth {
        if a.tokens.is_empty() {
            e.push("service.http.auth.tokens", "at least one token is required");
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, t) in a.tokens.iter().enumerate() {
            let at = format!("service.http.auth.tokens[{i}]");
            if t.name.trim().is_empty() {
                e.push(format!("{at}.name"), "is required");
            } else if !names.insert(t.name.as_str()) {
                e.push(
                    format!("{at}.name"),
                    format!("\"{}\" is used twice", t.name),
                );
            }
            let sources = [
                t.sha256.is_some(),
                t.token_file.is_some(),
                t.token_secret.is_some(),
                t.client_cert_sha256.is_some(),
            ];
            if sources.iter().filter(|s| **s).count() != 1 {
                e.push(
                    at.clone(),
                    "exactly one of sha256, token-file, token-secret or client-cert-sha256 is required",
                );
            }
            if let Some(h) = &t.sha256
                && (h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()))
            {
                e.push(format!("{at}.sha256"), "must be 64 hex digits");
            }
            if let Some(r) = &t.token_secret
                && let Err(m) = SecretRef::parse_bare(r)
            {
                e.push(format!("{at}.token-secret"), m);
            }
            match (&t.token_secret, &t.secret_agent_name) {
                (Some(_), None) => e.push(
                    format!("{at}.secret-agent-name"),
                    "is required with token-secret",
                ),
                (None, Some(_)) => e.push(
                    format!("{at}.secret-agent-name"),
                    "applies to token-secret only",
                ),
                (Some(_), Some(n)) if !cfg.secret_agents.contains_key(n) => e.push(
                    format!("{at}.secret-agent-name"),
                    format!("unknown secret agent \"{n}\""),
                ),
                _ => {}
            }
            if let Some(f) = &t.client_cert_sha256 {
                if tls::parse_fingerprint(f).is_none() {
                    e.push(
                        format!("{at}.client-cert-sha256"),
                        "must be 64 hex digits (colons allowed)",
                    );
                }
                if s.https
                    .as_ref()
                    .is_none_or(|x| !x.asks_client_certificates())
                {
                    e.push(
                        format!("{at}.client-cert-sha256"),
                        "needs service.https.client-ca-file with client-auth request or require-and-verify (client certificates are asked for over mutual TLS only)",
                    );
                }
            }
            if let Some(r) = &t.role
                && r != "admin"
                && r != "read-only"
            {
                e.push(
                    format!("{at}.role"),
                    format!("\"{r}\": expected admin or read-only"),
                );
            }
        }
    }
    if let Some(t) = &s.https {
        https(e, cfg, t);
    }
    e.range(
        "service.http.port".into(),
        "HttpServerConfig",
        "port",
        h.port,
    );
    if let Some(cp) = &h.context_path
        && !cp.starts_with('/')
    {
        e.push("service.http.context-path", "must start with '/'");
    }
    if let Some(a) = &h.address
        && a.parse::<IpAddr>().is_err()
        && a != "localhost"
    {
        e.push(
            "service.http.address",
            format!("\"{a}\" is not an IP address"),
        );
    }
    for (field, v) in [
        ("timeout", h.timeout),
        ("read-timeout", h.read_timeout),
        ("write-timeout", h.write_timeout),
        ("idle-timeout", h.idle_timeout),
    ] {
        e.range(
            format!("service.http.{field}"),
            "HttpServerConfig",
            field,
            v,
        );
    }
    if let Some(r) = &h.rate {
        e.range(
            "service.http.rate.tps".into(),
            "RateLimiterConfig",
            "tps",
            r.tps,
        );
        e.range(
            "service.http.rate.size".into(),
            "RateLimiterConfig",
            "size",
            r.size,
        );
        for (i, w) in r.white_list.iter().enumerate() {
            if parse_cidr(w).is_none() {
                e.push(
                    format!("service.http.rate.white-list[{i}]"),
                    format!("\"{w}\" is not an IP address or CIDR block"),
                );
            }
        }
    }
    if let Some(f) = &s.logger.file_writer {
        if f.filename.trim().is_empty() {
            e.push("service.logger.file-writer.filename", "must not be empty");
        }
        for (field, v) in [
            ("maxsize", f.maxsize),
            ("maxage", f.maxage),
            ("maxbackups", f.maxbackups),
        ] {
            e.range(
                format!("service.logger.file-writer.{field}"),
                "FileLoggerConfig",
                field,
                v,
            );
        }
    }
    if let Some(b) = &s.backup
        && let Some(tz) = &b.schedule_timezone
    {
        check_timezone(e, "service.backup.schedule-timezone", tz);
    }
}

/// `service.https` (ABS 3.7 keys).
fn https(e: &mut Errors, cfg: &Config, t: &crate::config::HttpsServerConfig) {
    let h = &cfg.service.http;
    if t.port == Some(0) {
        e.push("service.https.port", "must be 1..=65535");
    }
    if !t.disabled() && !*h.disabled && t.port() == h.port() && t.address() == h.address() {
        e.push("service.https.port", "is the port of service.http");
    }
    if let Some(a) = &t.address
        && a.parse::<IpAddr>().is_err()
        && a != "localhost"
    {
        e.push(
            "service.https.address",
            format!("\"{a}\" is not an IP address"),
        );
    }
    if let Some(cp) = &t.context_path
        && !cp.starts_with('/')
    {
        e.push(
            "service.https.context-path",
            format!("\"{cp}\" must start with /"),
        );
    }
    let given = |v: &Option<String>| v.as_deref().is_some_and(|v| !v.trim().is_empty());
    if !t.disabled() {
        for (field, v) in [("cert-file", &t.cert_file), ("key-file", &t.key_file)] {
            if !given(v) {
                e.push(format!("service.https.{field}"), "is required");
            }
        }
    }
    if t.key_file_password.is_some() && !given(&t.key_file) {
        e.push("service.https.key-file-password", "needs key-file");
    }
    if t.secret_agent.is_some() && t.secret_agent_name.is_some() {
        e.push(
            "service.https.secret-agent-name",
            "and secret-agent are mutually exclusive",
        );
    }
    if let Some(n) = &t.secret_agent_name
        && !cfg.secret_agents.contains_key(n)
    {
        e.push(
            "service.https.secret-agent-name",
            format!("unknown secret agent \"{n}\""),
        );
    }
    if let Some(p) = &t.key_file_password
        && p.is_agent_reference()
    {
        if let Err(m) = SecretRef::parse(p.expose()) {
            e.push("service.https.key-file-password", m);
        }
        if t.secret_agent.is_none() && t.secret_agent_name.is_none() {
            e.push(
                "service.https.key-file-password",
                "is a Secret Agent reference, but neither secret-agent nor secret-agent-name is set",
            );
        }
    }
    if let Some(v) = &t.min_version
        && crate::config::parse_min_version(v).is_none()
    {
        e.push(
            "service.https.min-version",
            format!("\"{v}\": expected 1.2 or 1.3"),
        );
    }
    match t.client_auth() {
        None => e.push(
            "service.https.client-auth",
            format!(
                "\"{}\": expected none, request or require-and-verify",
                t.client_auth.as_deref().unwrap_or_default()
            ),
        ),
        Some(crate::config::ClientAuth::None) => {}
        Some(_) if t.client_ca_file.is_none() => {
            e.push("service.https.client-auth", "needs client-ca-file")
        }
        Some(_) => {}
    }
    if let Some(names) = &t.cipher_suites {
        let provider = rustls::crypto::ring::default_provider();
        if let Err(m) = tls::https_cipher_suites(&provider, names) {
            e.push(
                "service.https.cipher-suites",
                m.trim_start_matches("service.https.cipher-suites: ")
                    .to_string(),
            );
        }
    }
}

fn check_timezone(e: &mut Errors, path: &str, tz: &str) {
    // Only UTC is implemented; say so rather than silently scheduling in another zone.
    if !tz.eq_ignore_ascii_case("UTC") {
        e.push(
            path,
            format!("time zone \"{tz}\" is not supported yet; use UTC"),
        );
    }
}

/// Parses `a.b.c.d`, `a.b.c.d/n`, IPv6 and IPv6/n into (network, prefix length).
pub fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l.parse::<u8>().ok()?)),
        None => (s, None),
    };
    let ip: IpAddr = addr.trim().parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len = len.unwrap_or(max);
    (len <= max).then_some((ip, len))
}

fn cluster(e: &mut Errors, cfg: &Config, path: &str, c: &AerospikeCluster) {
    if c.seed_nodes.is_empty() {
        e.push(
            format!("{path}.seed-nodes"),
            "at least one seed node is required",
        );
    }
    for (i, n) in c.seed_nodes.iter().enumerate() {
        if n.host_name.trim().is_empty() {
            e.push(
                format!("{path}.seed-nodes[{i}].host-name"),
                "must not be empty",
            );
        }
        e.range(
            format!("{path}.seed-nodes[{i}].port"),
            "SeedNode",
            "port",
            Some(n.port),
        );
    }
    e.range(
        format!("{path}.conn-timeout"),
        "AerospikeCluster",
        "conn-timeout",
        c.conn_timeout,
    );
    e.range(
        format!("{path}.max-parallel-scans"),
        "AerospikeCluster",
        "max-parallel-scans",
        c.max_parallel_scans,
    );
    if let Some(racks) = &c.prefer_racks {
        check_racks(
            e,
            &format!("{path}.prefer-racks"),
            "AerospikeCluster",
            "prefer-racks",
            racks,
        );
    }
    if let Some(cr) = &c.credentials {
        let p = format!("{path}.credentials");
        let sources = [
            cr.password.is_some(),
            cr.password_path.is_some(),
            cr.password_key_secret.is_some(),
        ];
        if sources.iter().filter(|s| **s).count() > 1 {
            e.push(
                p.clone(),
                "only one of password, password-path and password-key-secret may be set",
            );
        }
        if cr.password.is_some() && cr.user.as_deref().unwrap_or("").is_empty() {
            e.push(format!("{p}.user"), "is required when a password is set");
        }
        agent_refs(
            e,
            cfg,
            &p,
            cr.secret_agent.as_ref(),
            cr.secret_agent_name.as_deref(),
        );
        if cr.auth_mode.map(|m| *m) == Some(AuthMode::Pki)
            && c.tls.as_ref().is_none_or(|t| t.cert_file.is_none())
        {
            e.push(
                format!("{p}.auth-mode"),
                "PKI needs mutual TLS: set tls.cert-file and tls.key-file",
            );
        }
    }
    if let Some(t) = &c.tls {
        cluster_tls(e, &format!("{path}.tls"), t);
    }
}

/// A cluster's `tls`: the files it names exist, cert and key come together, protocols and
/// cipher suites are known. File contents are checked when a job connects.
fn cluster_tls(e: &mut Errors, path: &str, t: &TlsConfig) {
    for (field, file) in tls::missing_files(t) {
        e.push(
            format!("{path}.{field}"),
            format!("\"{file}\" does not exist"),
        );
    }
    match (&t.cert_file, &t.key_file) {
        (Some(_), None) => e.push(format!("{path}.key-file"), "is required with cert-file"),
        (None, Some(_)) => e.push(format!("{path}.cert-file"), "is required with key-file"),
        _ => {}
    }
    if t.key_file_password.is_some() && t.key_file.is_none() {
        e.push(
            format!("{path}.key-file-password"),
            "is set but key-file is not",
        );
    }
    // The parsers name the field themselves (`tls.protocols: ...`); keep the detail only.
    let detail = |m: String| m.split_once(": ").map_or(m.clone(), |(_, d)| d.to_string());
    if let Some(p) = &t.protocols
        && let Err(m) = tls::parse_protocols(p)
    {
        e.push(format!("{path}.protocols"), detail(m));
    }
    if let Some(list) = t.cipher_suite.as_deref().filter(|s| !s.trim().is_empty())
        && let Err(m) = tls::parse_cipher_suites(&rustls::crypto::ring::default_provider(), list)
    {
        e.push(format!("{path}.cipher-suite"), detail(m));
    }
}

fn check_racks(e: &mut Errors, path: &str, schema: &str, field: &str, racks: &[u32]) {
    for (i, r) in racks.iter().enumerate() {
        e.range(format!("{path}[{i}]"), schema, field, Some(*r));
    }
}

fn agent_refs(
    e: &mut Errors,
    cfg: &Config,
    path: &str,
    inline: Option<&SecretAgent>,
    name: Option<&str>,
) {
    if inline.is_some() && name.is_some() {
        e.push(
            path,
            "only one of secret-agent and secret-agent-name may be set",
        );
    }
    if let Some(a) = inline {
        secret_agent(e, &format!("{path}.secret-agent"), a);
    }
    if let Some(n) = name
        && !cfg.secret_agents.contains_key(n)
    {
        e.push(
            format!("{path}.secret-agent-name"),
            format!("unknown secret agent \"{n}\""),
        );
    }
}

fn required(e: &mut Errors, path: String, v: &str) {
    if v.trim().is_empty() {
        e.push(path, "is required");
    }
}

/// ABS's `storage-class: {data, metadata}` for S3: any class for data; metadata only in a
/// class read back at once.
fn s3_classes(e: &mut Errors, path: &str, c: &SplitStorageClass) {
    const DATA: [&str; 11] = [
        "STANDARD",
        "REDUCED_REDUNDANCY",
        "GLACIER",
        "STANDARD_IA",
        "ONEZONE_IA",
        "INTELLIGENT_TIERING",
        "DEEP_ARCHIVE",
        "OUTPOSTS",
        "GLACIER_IR",
        "SNOW",
        "EXPRESS_ONEZONE",
    ];
    const METADATA: [&str; 3] = ["STANDARD", "INTELLIGENT_TIERING", "EXPRESS_ONEZONE"];
    for (field, value, allowed) in [
        ("data", &c.data, &DATA[..]),
        ("metadata", &c.metadata, &METADATA[..]),
    ] {
        if let Some(v) = value
            && !allowed.contains(&v.as_str())
        {
            e.push(
                format!("{path}.{field}"),
                format!("\"{v}\": expected one of {}", allowed.join(", ")),
            );
        }
    }
}

fn storage(e: &mut Errors, cfg: &Config, path: &str, s: &Storage) {
    let p = format!("{path}.{}", s.kind());
    match s {
        Storage::LocalStorage(l) => required(e, format!("{p}.path"), &l.path),
        Storage::S3Storage(s3) => {
            required(e, format!("{p}.bucket"), &s3.bucket);
            required(e, format!("{p}.s3-region"), &s3.s3_region);
            e.range(
                format!("{p}.min-part-size"),
                "S3Storage",
                "min-part-size",
                s3.min_part_size,
            );
            e.range(
                format!("{p}.max-async-connections"),
                "S3Storage",
                "max-async-connections",
                s3.max_async_connections,
            );
            if s3.secret_access_key.is_some() != s3.access_key_id.is_some() {
                e.push(
                    p.clone(),
                    "access-key-id and secret-access-key must be set together",
                );
            }
            if let Some(ep) = s3.s3_endpoint_override.as_deref().filter(|s| !s.is_empty()) {
                check_url(e, format!("{p}.s3-endpoint-override"), ep);
            }
            if let Some(StorageClass::Split(c)) = &s3.storage_class {
                s3_classes(e, &format!("{p}.storage-class"), c);
            }
            agent_refs(
                e,
                cfg,
                &p,
                s3.secret_agent.as_ref(),
                s3.secret_agent_name.as_deref(),
            );
        }
        Storage::AzureStorage(a) => {
            required(e, format!("{p}.endpoint"), &a.endpoint);
            if !a.endpoint.trim().is_empty() {
                check_url(e, format!("{p}.endpoint"), &a.endpoint);
            }
            required(e, format!("{p}.container-name"), &a.container_name);
            let shared = a.account_name.is_some() || a.account_key.is_some();
            let aad = a.tenant_id.is_some() || a.client_id.is_some() || a.client_secret.is_some();
            if shared && aad {
                e.push(
                    p.clone(),
                    "use either account-name/account-key or tenant-id/client-id/client-secret, not both",
                );
            }
            if a.account_key.is_some() && a.account_name.is_none() {
                e.push(format!("{p}.account-name"), "is required with account-key");
            }
            e.range(
                format!("{p}.min-part-size"),
                "AzureStorage",
                "min-part-size",
                a.min_part_size,
            );
            agent_refs(
                e,
                cfg,
                &p,
                a.secret_agent.as_ref(),
                a.secret_agent_name.as_deref(),
            );
        }
        Storage::GcpStorage(g) => {
            required(e, format!("{p}.bucket-name"), &g.bucket_name);
            if g.key.is_some() && g.key_file_path.is_some() {
                e.push(p.clone(), "only one of key and key-file-path may be set");
            }
            if let Some(ep) = &g.endpoint {
                check_url(e, format!("{p}.endpoint"), ep);
            }
            e.range(
                format!("{p}.min-part-size"),
                "GcpStorage",
                "min-part-size",
                g.min_part_size,
            );
            agent_refs(
                e,
                cfg,
                &p,
                g.secret_agent.as_ref(),
                g.secret_agent_name.as_deref(),
            );
        }
        Storage::PluginStorage(ps) => {
            required(e, format!("{p}.plugin"), &ps.plugin);
            if !ps.options.is_object() {
                e.push(format!("{p}.options"), "must be an object");
            }
        }
    }
}

fn check_url(e: &mut Errors, path: String, url: &str) {
    let ok = (url.starts_with("http://") || url.starts_with("https://"))
        && url
            .split_once("://")
            .is_some_and(|(_, rest)| !rest.is_empty());
    if !ok {
        // Without the query: an Azure endpoint may carry a SAS token there.
        let shown = url.split_once('?').map_or(url, |(u, _)| u);
        e.push(path, format!("\"{shown}\" is not an http(s) URL"));
    }
}

fn policy(e: &mut Errors, path: &str, p: &BackupPolicy) {
    let bp = "BackupPolicy";
    for (field, v) in [
        ("parallel", p.parallel),
        ("parallel-write", p.parallel_write),
        ("max-concurrent-nodes", p.max_concurrent_nodes),
        ("max-retries", p.max_retries),
    ] {
        e.range(format!("{path}.{field}"), bp, field, v);
    }
    for (field, v) in [
        ("socket-timeout", p.socket_timeout),
        ("total-timeout", p.total_timeout),
        ("records-per-second", p.records_per_second),
        ("bandwidth", p.bandwidth),
        ("file-limit", p.file_limit),
        ("retry-delay", p.retry_delay),
        ("resume-max-age", p.resume_max_age),
    ] {
        e.range(format!("{path}.{field}"), bp, field, v);
    }
    if let Some(r) = &p.retry_policy {
        retry_policy(e, &format!("{path}.retry-policy"), r);
    }
    if let Some(r) = &p.retention {
        e.range(
            format!("{path}.retention.full"),
            "RetentionPolicy",
            "full",
            r.full,
        );
        e.range(
            format!("{path}.retention.incremental"),
            "RetentionPolicy",
            "incremental",
            r.incremental,
        );
        if let (Some(f), Some(i)) = (r.full, r.incremental)
            && i > f
        {
            e.push(
                format!("{path}.retention.incremental"),
                format!("must not exceed retention.full ({f})"),
            );
        }
    }
    if p.remove_files.is_some() && p.retention.is_some() {
        e.push(
            path,
            "remove-files (deprecated) and retention are both set; keep only retention",
        );
    }
    if let Some(c) = &p.compression {
        e.range(
            format!("{path}.compression.level"),
            "CompressionPolicy",
            "level",
            c.level,
        );
    }
    if let Some(enc) = &p.encryption {
        let keys = [
            enc.key_file.is_some(),
            enc.key_env.is_some(),
            enc.key_secret.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if enc.mode() != EncryptionMode::None && keys != 1 {
            e.push(
                format!("{path}.encryption"),
                "exactly one of key-file, key-env and key-secret is required",
            );
        }
    }
    if let Some(steps) = &p.pipeline {
        let compat = p
            .compression
            .as_ref()
            .is_some_and(|c| c.mode() != CompressionMode::None)
            || p.encryption
                .as_ref()
                .is_some_and(|c| c.mode() != EncryptionMode::None);
        if compat {
            e.push(
                format!("{path}.pipeline"),
                "pipeline cannot be combined with compression or encryption; move them into the pipeline",
            );
        }
        for (i, s) in steps.iter().enumerate() {
            required(e, format!("{path}.pipeline[{i}].plugin"), &s.plugin);
            if !s.options.is_object() {
                e.push(format!("{path}.pipeline[{i}].options"), "must be an object");
            }
            let keys = [&s.key_file, &s.key_env, &s.key_secret]
                .iter()
                .filter(|k| k.is_some())
                .count();
            if keys > 1 {
                e.push(
                    format!("{path}.pipeline[{i}]"),
                    "only one of key-file, key-env and key-secret may be set",
                );
            }
        }
    }
}

fn routine(e: &mut Errors, cfg: &Config, path: &str, r: &BackupRoutine) {
    let cluster = cfg.aerospike_clusters.get(&r.source_cluster);
    if r.source_cluster.is_empty() {
        e.push(format!("{path}.source-cluster"), "is required");
    } else if cluster.is_none() {
        e.push(
            format!("{path}.source-cluster"),
            format!("unknown cluster \"{}\"", r.source_cluster),
        );
    }
    if r.storage.is_empty() {
        e.push(format!("{path}.storage"), "is required");
    } else if !cfg.storage.contains_key(&r.storage) {
        e.push(
            format!("{path}.storage"),
            format!("unknown storage \"{}\"", r.storage),
        );
    }
    if let Some(p) = &r.backup_policy
        && !cfg.backup_policies.contains_key(p)
    {
        e.push(
            format!("{path}.backup-policy"),
            format!("unknown backup policy \"{p}\""),
        );
    }
    if let Some(a) = &r.secret_agent
        && !cfg.secret_agents.contains_key(a)
    {
        e.push(
            format!("{path}.secret-agent"),
            format!("unknown secret agent \"{a}\""),
        );
    }
    if r.interval_cron.trim().is_empty() {
        e.push(format!("{path}.interval-cron"), "is required");
    } else if let Err(m) = r.interval_cron.parse::<CronSchedule>() {
        e.push(format!("{path}.interval-cron"), m);
    }
    if let Some(c) = r.incr_cron()
        && let Err(m) = c.parse::<CronSchedule>()
    {
        e.push(format!("{path}.incr-interval-cron"), m);
    }
    if let Some(c) = r.verify_cron()
        && let Err(m) = c.parse::<CronSchedule>()
    {
        e.push(format!("{path}.verify-cron"), m);
    }
    for (i, name) in r.copy_to.iter().flatten().enumerate() {
        let at = format!("{path}.copy-to[{i}]");
        if !cfg.storage.contains_key(name) {
            e.push(at, format!("unknown storage \"{name}\""));
        } else if *name == r.storage {
            e.push(at, format!("\"{name}\" is the routine's own storage"));
        } else if r.copy_to.iter().flatten().take(i).any(|n| n == name) {
            e.push(at, format!("\"{name}\" is named twice"));
        }
    }
    if let Some(tz) = &r.schedule_timezone {
        check_timezone(e, &format!("{path}.schedule-timezone"), tz);
    }
    for (field, list) in [
        ("namespaces", &r.namespaces),
        ("set-list", &r.set_list),
        ("bin-list", &r.bin_list),
        ("node-list", &r.node_list),
    ] {
        for (i, v) in list.iter().enumerate() {
            if v.trim().is_empty() {
                e.push(format!("{path}.{field}[{i}]"), "must not be empty");
            }
        }
    }
    if let Some(pl) = &r.partition_list
        && let Err(m) = parse_partition_list(pl)
    {
        e.push(format!("{path}.partition-list"), m);
    }
    if let Some(racks) = &r.rack_list {
        check_racks(
            e,
            &format!("{path}.rack-list"),
            "BackupRoutine",
            "rack-list",
            racks,
        );
    }
    if let Some(racks) = &r.prefer_racks {
        check_racks(
            e,
            &format!("{path}.prefer-racks"),
            "BackupRoutine",
            "prefer-racks",
            racks,
        );
    }
    let cluster_racks =
        cluster.is_some_and(|c| c.prefer_racks.as_ref().is_some_and(|r| !r.is_empty()));
    let selectors = [
        ("partition-list", r.partition_list.is_some()),
        ("node-list", !r.node_list.is_empty()),
        (
            "rack-list",
            r.rack_list.as_ref().is_some_and(|v| !v.is_empty()),
        ),
        (
            "prefer-racks",
            r.prefer_racks.as_ref().is_some_and(|v| !v.is_empty()) || cluster_racks,
        ),
    ];
    let set: Vec<&str> = selectors.iter().filter(|s| s.1).map(|s| s.0).collect();
    if set.len() > 1 {
        e.push(
            path,
            format!("{} are mutually exclusive", set.join(" and ")),
        );
    }
    if let Some(max) = cluster.and_then(|c| c.max_parallel_scans)
        && r.set_list.len() > max as usize
    {
        e.push(
            format!("{path}.set-list"),
            format!(
                "has {} sets, more than the cluster's max-parallel-scans ({max})",
                r.set_list.len()
            ),
        );
    }
}

fn secret_agent(e: &mut Errors, path: &str, a: &SecretAgent) {
    required(e, format!("{path}.address"), &a.address);
    if *a.connection_type == ConnectionType::Tcp && a.port.is_none() {
        e.push(format!("{path}.port"), "is required for tcp");
    }
    e.range(format!("{path}.port"), "SecretAgent", "port", a.port);
    e.range(
        format!("{path}.timeout"),
        "SecretAgent",
        "timeout",
        a.timeout,
    );
}

/// `retry-policy` of a backup policy; restore requests check theirs with [`retry_policy_error`].
fn retry_policy(e: &mut Errors, path: &str, r: &RetryPolicy) {
    if let Some((field, m)) = retry_policy_error(r) {
        e.push(format!("{path}.{field}"), m);
    }
}

/// The first out-of-range field of a retry policy, as `(field, message)`.
pub fn retry_policy_error(r: &RetryPolicy) -> Option<(&'static str, String)> {
    let rp = "RetryPolicy";
    if let Some(m) = r
        .base_timeout
        .and_then(|v| limits::range(rp, "base-timeout").check_int(v))
    {
        return Some(("base-timeout", m));
    }
    if let Some(m) = r
        .multiplier
        .and_then(|v| limits::range(rp, "multiplier").check(v))
    {
        return Some(("multiplier", m));
    }
    r.max_retries
        .and_then(|v| limits::range(rp, "max-retries").check_int(v))
        .map(|m| ("max-retries", m))
}

/// One element of a routine's `partition-list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartitionSpec {
    /// Partitions `begin .. begin + count`.
    Range { begin: u16, count: u16 },
    /// Records after this digest, within its partition.
    AfterDigest([u8; 20]),
}

/// Parses `partition-list`: comma-separated `N`, `begin-count`, or a base64 record digest.
pub fn parse_partition_list(s: &str) -> Result<Vec<PartitionSpec>, String> {
    use base64::Engine as _;
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim) {
        if part.is_empty() {
            return Err("empty element".into());
        }
        if let Some((b, c)) = part.split_once('-') {
            let begin: u16 = b
                .parse()
                .map_err(|_| format!("\"{part}\": begin is not a number"))?;
            let count: u16 = c
                .parse()
                .map_err(|_| format!("\"{part}\": count is not a number"))?;
            if begin > 4095 || count == 0 || begin as u32 + count as u32 > 4096 {
                return Err(format!(
                    "\"{part}\": partitions must lie within 0-4095 and count must be positive"
                ));
            }
            out.push(PartitionSpec::Range { begin, count });
        } else if let Ok(n) = part.parse::<u16>() {
            if n > 4095 {
                return Err(format!("\"{part}\": partition ids are 0-4095"));
            }
            out.push(PartitionSpec::Range { begin: n, count: 1 });
        } else {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(part)
                .map_err(|_| format!("\"{part}\" is neither a partition, a range nor a digest"))?;
            let digest: [u8; 20] = bytes
                .try_into()
                .map_err(|_| format!("\"{part}\": a digest is 20 bytes"))?;
            out.push(PartitionSpec::AfterDigest(digest));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Config {
        serde_yaml::from_str(
            r#"
aerospike-clusters:
  c: {seed-nodes: [{host-name: localhost, port: 3000}]}
storage:
  s: {local-storage: {path: ./b}}
backup-policies:
  p: {parallel: 2}
backup-routines:
  r: {interval-cron: "@daily", source-cluster: c, storage: s, backup-policy: p, namespaces: [test]}
"#,
        )
        .unwrap()
    }

    fn errors(cfg: &Config) -> Vec<String> {
        validate(cfg)
            .err()
            .unwrap_or_default()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn base_is_valid() {
        assert_eq!(errors(&base()), Vec::<String>::new());
    }

    #[test]
    fn reports_every_error_with_its_path() {
        let mut c = base();
        let r = c.backup_routines.get_mut("r").unwrap();
        r.storage = "s4".into();
        r.source_cluster = "nope".into();
        r.interval_cron = "* * *".into();
        c.backup_policies.get_mut("p").unwrap().parallel = Some(0);
        let errs = errors(&c);
        assert!(errs.contains(&"backup-routines.r.storage: unknown storage \"s4\"".to_string()));
        assert!(
            errs.contains(
                &"backup-routines.r.source-cluster: unknown cluster \"nope\"".to_string()
            )
        );
        assert!(
            errs.iter()
                .any(|e| e.starts_with("backup-routines.r.interval-cron: expected 6 or 7"))
        );
        assert!(
            errs.contains(&"backup-policies.p.parallel: must be between 1 and 4096".to_string())
        );
        assert_eq!(errs.len(), 4, "{errs:?}");
    }

    #[test]
    fn cluster_tls_names_each_bad_field() {
        let mut c = base();
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "x").unwrap();
        let cl = c.aerospike_clusters.get_mut("c").unwrap();
        cl.tls = Some(TlsConfig {
            ca_file: Some(ca.display().to_string()),
            ca_path: Some("/nonexistent/ca-dir".into()),
            cert_file: Some("/nonexistent/cert.pem".into()),
            protocols: Some("TLSv1.2 SSLv9".into()),
            cipher_suite: Some("ECDHE-RSA-AES128-GCM-SHA256:NOPE".into()),
            ..Default::default()
        });
        cl.credentials = Some(Credentials {
            auth_mode: Some(AuthMode::Pki.into()),
            ..Default::default()
        });
        let errs = errors(&c);
        let has = |prefix: &str| errs.iter().any(|e| e.starts_with(prefix));
        assert!(
            has("aerospike-clusters.c.tls.ca-path: \"/nonexistent/ca-dir\" does not exist"),
            "{errs:?}"
        );
        assert!(
            has("aerospike-clusters.c.tls.cert-file: \"/nonexistent/cert.pem\" does not exist"),
            "{errs:?}"
        );
        assert!(
            has("aerospike-clusters.c.tls.key-file: is required with cert-file"),
            "{errs:?}"
        );
        assert!(
            has("aerospike-clusters.c.tls.protocols: unknown protocol \"SSLv9\""),
            "{errs:?}"
        );
        assert!(
            has(
                "aerospike-clusters.c.tls.cipher-suite: unknown or unsupported cipher suite \"NOPE\""
            ),
            "{errs:?}"
        );
        assert!(!has("aerospike-clusters.c.tls.ca-file"), "{errs:?}");
        assert!(
            !has("aerospike-clusters.c.credentials.auth-mode"),
            "{errs:?}"
        );
        assert_eq!(errs.len(), 5, "{errs:?}");
        let cl = c.aerospike_clusters.get_mut("c").unwrap();
        cl.tls = None;
        assert_eq!(
            errors(&c),
            vec![
                "aerospike-clusters.c.credentials.auth-mode: PKI needs mutual TLS: set tls.cert-file and tls.key-file"
            ]
        );
    }

    #[test]
    fn password_sources_are_exclusive() {
        let mut c = base();
        c.aerospike_clusters.get_mut("c").unwrap().credentials = Some(Credentials {
            user: Some("u".into()),
            password: Some(Secret::new("p")),
            password_path: Some("/f".into()),
            ..Default::default()
        });
        assert_eq!(
            errors(&c),
            vec![
                "aerospike-clusters.c.credentials: only one of password, password-path and password-key-secret may be set"
            ]
        );
    }

    #[test]
    fn policy_rules() {
        let mut c = base();
        let p = c.backup_policies.get_mut("p").unwrap();
        p.retention = Some(RetentionPolicy {
            full: Some(2),
            incremental: Some(3),
        });
        p.encryption = Some(EncryptionPolicy {
            mode: Some(EncryptionMode::Aes256.into()),
            key_file: None,
            key_env: None,
            key_secret: None,
        });
        p.compression = Some(CompressionPolicy {
            mode: Some(CompressionMode::Zstd.into()),
            level: Some(30),
        });
        p.pipeline = Some(vec![]);
        let errs = errors(&c);
        assert_eq!(errs.len(), 4, "{errs:?}");
        assert!(
            errs.iter()
                .any(|e| e.starts_with("backup-policies.p.retention.incremental"))
        );
        assert!(
            errs.iter()
                .any(|e| e.starts_with("backup-policies.p.encryption: exactly one"))
        );
        assert!(
            errs.iter()
                .any(|e| e.starts_with("backup-policies.p.compression.level"))
        );
        assert!(
            errs.iter()
                .any(|e| e.starts_with("backup-policies.p.pipeline: pipeline cannot"))
        );
    }

    #[test]
    fn selectors_are_exclusive_and_partitions_parse() {
        let mut c = base();
        let r = c.backup_routines.get_mut("r").unwrap();
        r.partition_list = Some("0-100,200".into());
        *r.node_list = vec!["127.0.0.1:3000".into()];
        let errs = errors(&c);
        assert_eq!(
            errs,
            vec!["backup-routines.r: partition-list and node-list are mutually exclusive"]
        );
        assert_eq!(
            parse_partition_list("0-100, 4095").unwrap(),
            vec![
                PartitionSpec::Range {
                    begin: 0,
                    count: 100
                },
                PartitionSpec::Range {
                    begin: 4095,
                    count: 1
                }
            ]
        );
        assert!(parse_partition_list("4000-200").is_err());
        assert!(parse_partition_list("4096").is_err());
        assert!(parse_partition_list("").is_err());
        assert!(matches!(
            parse_partition_list("AAAAAAAAAAAAAAAAAAAAAAAAAAA=").unwrap()[0],
            PartitionSpec::AfterDigest(_)
        ));
    }

    #[test]
    fn names_are_limited_to_the_safe_set() {
        // The published pattern (as a JSON Schema validator reads it) agrees with the check.
        let schema = serde_json::json!({"type": "string", "pattern": NAME_PATTERN});
        let pattern = jsonschema::validator_for(&schema).unwrap();
        for ok in [
            "a",
            "daily-1",
            "abs_cluster.v2",
            "A9",
            "-x",
            &"n".repeat(255),
        ] {
            assert_eq!(name_problem(ok), None, "{ok}");
            assert!(pattern.is_valid(&serde_json::json!(ok)), "{ok}");
        }
        for bad in [
            "",
            ".hidden",
            ".",
            "..",
            "a/b",
            "a b",
            "\u{87}\u{84}",
            "tab\t",
            "é",
            "a\n",
            &"n".repeat(256),
        ] {
            assert!(name_problem(bad).is_some(), "{bad:?}");
            assert!(!pattern.is_valid(&serde_json::json!(bad)), "{bad:?}");
        }
        let mut c = base();
        let s = c.storage.remove("s").unwrap();
        c.storage.insert("a/b".into(), s.clone());
        c.storage.insert("\u{87}".into(), s);
        let errs = errors(&c);
        assert!(
            errs.iter()
                .any(|e| e.starts_with("storage.a/b: name \"a/b\" has the character '/'")),
            "{errs:?}"
        );
        assert!(
            errs.iter().any(|e| e.starts_with("storage.\\u{87}: ")),
            "the path is printable: {errs:?}"
        );
    }

    #[test]
    fn secret_agent_rules() {
        let mut c = base();
        c.secret_agents.insert(
            "sa".into(),
            SecretAgent {
                connection_type: ConnectionType::Tcp.into(),
                address: "".into(),
                port: None,
                timeout: None,
                tls_ca_file: None,
                is_base64: None,
            },
        );
        let errs = errors(&c);
        assert_eq!(
            errs,
            vec![
                "secret-agents.sa.address: is required",
                "secret-agents.sa.port: is required for tcp"
            ]
        );
    }
}
