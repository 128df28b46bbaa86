//! Pure validation of a whole configuration: no I/O but the existence of the files a cluster's
//! `tls` names, every error reported with its dotted path.
//!
//! One file per section: `service.rs` (`service:`, the HTTP and HTTPS listeners),
//! `cluster.rs`, `storage.rs`, `policy.rs`, `routine.rs`, `notifications.rs`. Here: the error
//! type, the walk over the sections, entity names, and the checks several sections share.

mod cluster;
mod notifications;
mod policy;
mod routine;
mod service;
mod storage;
#[cfg(test)]
mod tests;

pub use policy::retry_policy_error;
pub use routine::{PartitionSpec, parse_partition_list};
pub use service::parse_cidr;

use super::limits;
use super::model::*;
use std::fmt;

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
    service::service(&mut e, cfg);
    for (name, c) in &cfg.aerospike_clusters {
        check_name(&mut e, "aerospike-clusters", name);
        cluster::cluster(&mut e, cfg, &format!("aerospike-clusters.{name}"), c);
    }
    for (name, s) in &cfg.storage {
        check_name(&mut e, "storage", name);
        storage::storage(&mut e, cfg, &format!("storage.{name}"), s);
    }
    for (name, p) in &cfg.backup_policies {
        check_name(&mut e, "backup-policies", name);
        policy::policy(&mut e, &format!("backup-policies.{name}"), p);
    }
    for (name, r) in &cfg.backup_routines {
        check_name(&mut e, "backup-routines", name);
        routine::routine(&mut e, cfg, &format!("backup-routines.{name}"), r);
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
        notifications::notifications(&mut e, cfg, n);
    }
    if e.0.is_empty() { Ok(()) } else { Err(e.0) }
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
    cluster::cluster(&mut e, cfg, path, c);
    e.0
}

/// The problems of a storage given inline (a restore request's `source`).
pub fn inline_storage(cfg: &Config, path: &str, s: &Storage) -> Vec<ConfigError> {
    let mut e = Errors::default();
    storage::storage(&mut e, cfg, path, s);
    e.0
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
