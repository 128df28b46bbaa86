//! [`Secret`]: a credential that never prints, and the redaction of every secret of a
//! configuration for the API (and the restoring of redacted values a client sends back).

use super::{AerospikeCluster, Config, Storage, WebhookConfig};
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
    use crate::config::model::Credentials;

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
}
