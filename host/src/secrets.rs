//! Client of the Aerospike Secret Agent: resolves `secrets:<resource>:<key>` references at job
//! start, so that a rotated secret is picked up by the next job and no secret is kept in the
//! configuration.
//!
//! The agent's protocol, one request per connection (as Aerospike's own clients use it): an
//! 8-byte header, the magic `0x51dec1cc` and the body length, both big-endian u32, then a JSON
//! body `{"Resource": "...", "SecretKey": "..."}`; the answer has the same header and a JSON
//! body with `SecretValue` or `Error`. With `is-base64` the value is base64 and decoded here.
//! TCP (optionally TLS, trusting `tls-ca-file`) or a unix socket; `timeout` bounds the whole
//! exchange.
//!
//! A resolved value lives in a [`SecretValue`], whose `Debug` prints nothing of it; errors name
//! the agent and the reference, never the value.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};
use tokio_rustls::TlsConnector;

use crate::config::{ConnectionType, Secret, SecretAgent};

/// First word of every message, both ways ("sidekick" in hex-speak).
pub const MAGIC: u32 = 0x51de_c1cc;
/// Largest answer body accepted: a secret is small, and the length field is untrusted.
pub const MAX_ANSWER_BYTES: u32 = 100 * 1024;
/// The agent timeout when the config gives none (ABS's default).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(1000);
// The reference syntax lives in config/ (validation checks it); re-exported here.
pub use crate::config::secret_ref::{PREFIX, SecretRef};

/// A resolved secret. Its `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(Vec<u8>);

impl SecretValue {
    pub fn new(bytes: Vec<u8>) -> Self {
        SecretValue(bytes)
    }
    /// The secret itself: call only where it is used.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
    /// The secret as text (passwords), or an error that does not show it.
    pub fn expose_str(&self) -> Result<&str, String> {
        std::str::from_utf8(&self.0).map_err(|_| "the secret is not UTF-8 text".to_string())
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue(**redacted**)")
    }
}

/// Key material resolved from `key-secret` entries for one job, by entry text.
#[derive(Debug, Clone, Default)]
pub struct ResolvedKeys(BTreeMap<String, SecretValue>);

impl ResolvedKeys {
    pub fn insert(&mut self, entry: &str, value: SecretValue) {
        self.0.insert(entry.to_string(), value);
    }
    pub fn get(&self, entry: &str) -> Option<&SecretValue> {
        self.0.get(entry)
    }
}

/// Why a secret could not be resolved. Messages name the agent and the reference only.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("secret agent {agent}: {message}")]
    Config { agent: String, message: String },
    #[error("secret agent {agent}: cannot connect to {target}: {source}")]
    Connect {
        agent: String,
        target: String,
        source: std::io::Error,
    },
    #[error("secret agent {agent}: no answer for {reference} within {timeout_ms} ms")]
    Timeout {
        agent: String,
        reference: String,
        timeout_ms: u128,
    },
    #[error("secret agent {agent}: {reference}: {message}")]
    Refused {
        agent: String,
        reference: String,
        message: String,
    },
    #[error("secret agent {agent}: {reference}: bad answer: {message}")]
    Protocol {
        agent: String,
        reference: String,
        message: String,
    },
}

#[derive(Serialize)]
struct Request<'a> {
    #[serde(rename = "Resource")]
    resource: &'a str,
    #[serde(rename = "SecretKey")]
    key: &'a str,
}

#[derive(Deserialize)]
struct Answer {
    #[serde(rename = "SecretValue", default)]
    value: Option<String>,
    #[serde(rename = "Error", default)]
    error: Option<String>,
}

#[derive(Clone)]
enum Target {
    Tcp {
        host: String,
        port: u16,
        tls: Option<TlsConnector>,
    },
    Unix(PathBuf),
}

/// A configured agent; cheap to clone, one connection per request.
#[derive(Clone)]
pub struct SecretAgentClient {
    name: String,
    target: Target,
    timeout: Duration,
    base64: bool,
}

impl fmt::Debug for SecretAgentClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretAgentClient")
            .field("name", &self.name)
            .field("target", &self.target_text())
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl SecretAgentClient {
    /// A client for the agent configured as `name` (reads the CA file now).
    pub fn new(name: &str, agent: &SecretAgent) -> Result<Self, SecretError> {
        let config_err = |message: String| SecretError::Config {
            agent: name.to_string(),
            message,
        };
        let target = match *agent.connection_type {
            ConnectionType::Unix => {
                if agent.tls_ca_file.is_some() {
                    return Err(config_err(
                        "tls-ca-file applies to tcp connections only".into(),
                    ));
                }
                Target::Unix(PathBuf::from(&agent.address))
            }
            ConnectionType::Tcp => {
                let port = agent
                    .port
                    .and_then(|p| u16::try_from(p).ok())
                    .ok_or_else(|| config_err("a tcp agent needs a port (1-65535)".into()))?;
                let tls = match &agent.tls_ca_file {
                    Some(ca) => Some(tls_connector(ca).map_err(config_err)?),
                    None => None,
                };
                Target::Tcp {
                    host: agent.address.clone(),
                    port,
                    tls,
                }
            }
        };
        Ok(SecretAgentClient {
            name: name.to_string(),
            target,
            timeout: agent
                .timeout
                .map(Duration::from_millis)
                .unwrap_or(DEFAULT_TIMEOUT),
            base64: agent.is_base64.unwrap_or(false),
        })
    }

    fn target_text(&self) -> String {
        match &self.target {
            Target::Tcp { host, port, tls } => {
                format!("{}{host}:{port}", if tls.is_some() { "tls://" } else { "" })
            }
            Target::Unix(p) => format!("unix:{}", p.display()),
        }
    }

    /// Asks the agent for one secret.
    pub async fn fetch(&self, reference: &SecretRef) -> Result<SecretValue, SecretError> {
        match tokio::time::timeout(self.timeout, self.exchange(reference)).await {
            Ok(result) => {
                if result.is_ok() {
                    // The reference only: the value is never logged.
                    tracing::debug!(agent = %self.name, reference = %reference, "Secret resolved.");
                }
                result
            }
            Err(_) => Err(SecretError::Timeout {
                agent: self.name.clone(),
                reference: reference.to_string(),
                timeout_ms: self.timeout.as_millis(),
            }),
        }
    }

    async fn exchange(&self, reference: &SecretRef) -> Result<SecretValue, SecretError> {
        let connect_err = |source| SecretError::Connect {
            agent: self.name.clone(),
            target: self.target_text(),
            source,
        };
        let body = match &self.target {
            Target::Tcp { host, port, tls } => {
                let tcp = TcpStream::connect((host.as_str(), *port))
                    .await
                    .map_err(connect_err)?;
                match tls {
                    None => self.ask(tcp, reference).await?,
                    Some(connector) => {
                        let server = ServerName::try_from(host.clone()).map_err(|e| {
                            connect_err(std::io::Error::other(format!("TLS name {host}: {e}")))
                        })?;
                        let stream = connector.connect(server, tcp).await.map_err(connect_err)?;
                        self.ask(stream, reference).await?
                    }
                }
            }
            Target::Unix(path) => {
                let stream = UnixStream::connect(path).await.map_err(connect_err)?;
                self.ask(stream, reference).await?
            }
        };
        self.decode(reference, &body)
    }

    /// Writes the request and reads the answer body off one connection.
    async fn ask<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        mut stream: S,
        reference: &SecretRef,
    ) -> Result<Vec<u8>, SecretError> {
        let io_err = |e: std::io::Error| self.protocol(reference, e.to_string());
        let json = serde_json::to_vec(&Request {
            resource: &reference.resource,
            key: &reference.key,
        })
        .map_err(|e| self.protocol(reference, e.to_string()))?;
        let mut message = Vec::with_capacity(8 + json.len());
        message.extend_from_slice(&MAGIC.to_be_bytes());
        message.extend_from_slice(&(json.len() as u32).to_be_bytes());
        message.extend_from_slice(&json);
        stream.write_all(&message).await.map_err(io_err)?;
        stream.flush().await.map_err(io_err)?;

        let mut header = [0u8; 8];
        stream.read_exact(&mut header).await.map_err(io_err)?;
        let magic = u32::from_be_bytes(header[..4].try_into().unwrap());
        let len = u32::from_be_bytes(header[4..].try_into().unwrap());
        if magic != MAGIC {
            return Err(self.protocol(reference, format!("magic {magic:#x}, not {MAGIC:#x}")));
        }
        if len > MAX_ANSWER_BYTES {
            return Err(self.protocol(
                reference,
                format!("answer of {len} bytes exceeds {MAX_ANSWER_BYTES}"),
            ));
        }
        let mut body = vec![0u8; len as usize];
        stream.read_exact(&mut body).await.map_err(io_err)?;
        Ok(body)
    }

    fn decode(&self, reference: &SecretRef, body: &[u8]) -> Result<SecretValue, SecretError> {
        // serde_json's message may quote the input; keep it out of errors.
        let answer: Answer = serde_json::from_slice(body)
            .map_err(|_| self.protocol(reference, "not the agent's JSON answer".into()))?;
        if let Some(message) = answer.error.filter(|m| !m.is_empty()) {
            return Err(SecretError::Refused {
                agent: self.name.clone(),
                reference: reference.to_string(),
                message,
            });
        }
        let value = answer
            .value
            .ok_or_else(|| self.protocol(reference, "no SecretValue".into()))?;
        if value.is_empty() {
            return Err(self.protocol(reference, "empty secret".into()));
        }
        if self.base64 {
            B64.decode(value.trim_end()).map(SecretValue).map_err(|_| {
                self.protocol(reference, "is-base64 is set, value is not base64".into())
            })
        } else {
            Ok(SecretValue(value.into_bytes()))
        }
    }

    fn protocol(&self, reference: &SecretRef, message: String) -> SecretError {
        SecretError::Protocol {
            agent: self.name.clone(),
            reference: reference.to_string(),
            message,
        }
    }
}

/// The agent an entity uses: its inline `secret-agent`, else its `secret-agent-name`, else
/// `fallback` (e.g. the routine's `secret-agent` for its policy's `key-secret`), looked up in
/// the config's `secret-agents`. `None` when nothing names one.
///
/// # Errors
/// A name that is not configured, or an agent that cannot be set up (CA file).
pub fn agent_for(
    agents: &BTreeMap<String, SecretAgent>,
    inline: Option<&SecretAgent>,
    name: Option<&str>,
    fallback: Option<&str>,
) -> Result<Option<SecretAgentClient>, SecretError> {
    if let Some(agent) = inline {
        return SecretAgentClient::new("(inline)", agent).map(Some);
    }
    let Some(name) = name.or(fallback) else {
        return Ok(None);
    };
    let agent = agents.get(name).ok_or_else(|| SecretError::Config {
        agent: name.to_string(),
        message: "is not configured in secret-agents".into(),
    })?;
    SecretAgentClient::new(name, agent).map(Some)
}

/// The value of a secret field: the field itself, or for a `secrets:` reference what the
/// agent holds. `field` names the config path for the error when no agent is configured.
///
/// # Errors
/// A reference with no agent to ask, a malformed reference, or the agent's failure.
pub async fn resolve_field(
    agent: Option<&SecretAgentClient>,
    field: &str,
    value: &Secret,
) -> Result<SecretValue, SecretError> {
    if !value.is_agent_reference() {
        return Ok(SecretValue::new(value.expose().as_bytes().to_vec()));
    }
    let reference = SecretRef::parse(value.expose()).map_err(|message| SecretError::Config {
        agent: "-".into(),
        message: format!("{field}: {message}"),
    })?;
    fetch_with(agent, field, &reference).await
}

/// What the agent holds for a `key-secret` / `password-key-secret` entry (`<resource>:<key>`,
/// `<key>` or `secrets:...`).
///
/// # Errors
/// As [`resolve_field`].
pub async fn resolve_entry(
    agent: Option<&SecretAgentClient>,
    field: &str,
    entry: &str,
) -> Result<SecretValue, SecretError> {
    let reference = SecretRef::parse_bare(entry).map_err(|message| SecretError::Config {
        agent: "-".into(),
        message: format!("{field}: {message}"),
    })?;
    fetch_with(agent, field, &reference).await
}

async fn fetch_with(
    agent: Option<&SecretAgentClient>,
    field: &str,
    reference: &SecretRef,
) -> Result<SecretValue, SecretError> {
    match agent {
        Some(agent) => agent.fetch(reference).await,
        None => Err(SecretError::Config {
            agent: "-".into(),
            message: format!(
                "{field} refers to {reference}, but no secret agent is configured for it"
            ),
        }),
    }
}

fn tls_connector(ca_file: &str) -> Result<TlsConnector, String> {
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca_file)
        .map_err(|e| format!("tls-ca-file {ca_file}: {e}"))?;
    for cert in certs {
        let cert = cert.map_err(|e| format!("tls-ca-file {ca_file}: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("tls-ca-file {ca_file}: {e}"))?;
    }
    if roots.is_empty() {
        return Err(format!("tls-ca-file {ca_file}: no certificate in it"));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_value_never_prints() {
        let v = SecretValue::new(b"hunter2".to_vec());
        assert!(!format!("{v:?}").contains("hunter2"));
        assert_eq!(v.expose_str().unwrap(), "hunter2");
    }
}
