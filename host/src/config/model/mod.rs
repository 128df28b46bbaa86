//! The configuration model: one type per ABS v3 entity, in the YAML/JSON shape ABS uses.
//!
//! Every struct is kebab-case and rejects unknown keys. Optional settings are `Option`s so a
//! saved file stays as small as the one the operator wrote; defaults live in accessor methods
//! named after the field, each documented with the ABS default, most of them written as one
//! row of `defaults!`.
//!
//! One file per section of the document: `service.rs` (`service:`), `cluster.rs`
//! (`aerospike-clusters:`), `storage.rs` (`storage:`), `policy.rs` (`backup-policies:`),
//! `routine.rs` (`backup-routines:`), `notifications.rs` (`notifications:`); `secret.rs` holds
//! the [`Secret`] type and the redaction of every secret for the API. The small top-level
//! sections (`secret-agents:`, `plugins:`) and [`Config`] itself are here.

use super::given::{Given, Spelled};
use super::serde_util::{config_enum, opt_number};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// Accessors that return an `Option` field or its documented default, one row each:
///
/// - `value name: T = default;` returns `self.name.unwrap_or(default)` (a `Copy` value);
/// - `text name = "default";` returns the `&str` of an `Option<String>`;
/// - `spelled name: T = default;` returns the enum of an `Option<Spelled<T>>`;
/// - `or_default name: T;` returns a clone of the field, or `T::default()`.
///
/// `name(field)` reads `field` for a method named otherwise (`header_timeout_ms(timeout)`).
/// Doc comments above a row document its method.
macro_rules! defaults {
    ($ty:ident { $($rows:tt)* }) => {
        impl $ty {
            defaults!(@rows $($rows)*);
        }
    };
    (@rows) => {};
    (@rows $(#[$m:meta])* value $name:ident($field:ident): $t:ty = $d:expr; $($rest:tt)*) => {
        $(#[$m])*
        pub fn $name(&self) -> $t {
            self.$field.unwrap_or($d)
        }
        defaults!(@rows $($rest)*);
    };
    (@rows $(#[$m:meta])* text $name:ident($field:ident) = $d:expr; $($rest:tt)*) => {
        $(#[$m])*
        pub fn $name(&self) -> &str {
            self.$field.as_deref().unwrap_or($d)
        }
        defaults!(@rows $($rest)*);
    };
    (@rows $(#[$m:meta])* spelled $name:ident($field:ident): $t:ty = $d:expr; $($rest:tt)*) => {
        $(#[$m])*
        pub fn $name(&self) -> $t {
            self.$field.map_or($d, |v| *v)
        }
        defaults!(@rows $($rest)*);
    };
    (@rows $(#[$m:meta])* or_default $name:ident($field:ident): $t:ty; $($rest:tt)*) => {
        $(#[$m])*
        pub fn $name(&self) -> $t {
            self.$field.clone().unwrap_or_default()
        }
        defaults!(@rows $($rest)*);
    };
    // The short form: the field has the method's name.
    (@rows $(#[$m:meta])* $kind:ident $name:ident: $($rest:tt)*) => {
        defaults!(@rows $(#[$m])* $kind $name($name): $($rest)*);
    };
    (@rows $(#[$m:meta])* $kind:ident $name:ident = $($rest:tt)*) => {
        defaults!(@rows $(#[$m])* $kind $name($name) = $($rest)*);
    };
}

mod cluster;
mod notifications;
mod policy;
mod routine;
mod secret;
mod service;
mod storage;

pub use cluster::*;
pub use notifications::*;
pub use policy::*;
pub use routine::*;
pub use secret::*;
pub use service::*;
pub use storage::*;

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

/// The default of `options:` (of a plugin storage or a pipeline step): an empty object.
fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(Default::default())
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
