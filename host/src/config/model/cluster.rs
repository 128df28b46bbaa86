//! `aerospike-clusters:` seed nodes, credentials and TLS of each cluster.

use super::super::given::Spelled;
use super::super::serde_util::{config_enum, number, opt_number, opt_number_list};
use super::{Secret, SecretAgent};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

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

defaults! {
    AerospikeCluster {
        value conn_timeout_ms(conn_timeout): u64 = 30_000;
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
