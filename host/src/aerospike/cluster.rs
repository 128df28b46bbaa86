//! Cluster access for both directions: connections (with retry), the info queries a job
//! needs (namespaces, racks, node ranges, configs, estimates, sindexes, UDFs), and the
//! per-cluster cap on concurrent scans.
//!
//! A job connects with the cluster's config snapshot and closes the client when it ends; the
//! `max-parallel-scans` semaphore outlives jobs, so every job on a cluster shares it (D18).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aerospike::{AdminPolicy, AuthMode as ClientAuthMode, Client, ClientPolicy};
use base64::Engine as _;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::config::{AerospikeCluster, AuthMode, RetryPolicy};

use crate::aerospike::scan::ScanRange;
use crate::asb::{IndexType, IndexValueType, SecondaryIndex, Udf};
use crate::error::EngineError;

/// Permits when a cluster sets no `max-parallel-scans`: effectively unlimited, but a
/// semaphore all the same so every scan takes the same path.
const UNLIMITED_SCANS: usize = 1 << 16;

/// Builds the client policy from a cluster config: credentials, TLS, timeouts, peers.
///
/// # Errors
/// [`EngineError::Cluster`] for a `tls` section that cannot be used (files, protocols,
/// suites; see [`crate::aerospike::tls`]), PKI without mutual TLS, Secret Agent references not
/// resolved by [`crate::jobs::job_secrets`], or a password file that cannot be read; the message
/// never holds a secret.
pub fn client_policy(name: &str, cluster: &AerospikeCluster) -> Result<ClientPolicy, EngineError> {
    let fail = |m: String| EngineError::Cluster {
        cluster: name.to_string(),
        message: m,
    };
    let tls_policy = crate::aerospike::tls::cluster_client_config(cluster)
        .map_err(fail)?
        .map(aerospike::TlsPolicy::new);
    let mut cp = ClientPolicy {
        tls_policy,
        ..ClientPolicy::default()
    };
    let timeout = u32::try_from(cluster.conn_timeout_ms()).unwrap_or(u32::MAX);
    cp.timeout = timeout;
    cp.connect_timeout = timeout;
    cp.use_services_alternate = cluster.use_services_alternate.unwrap_or(false);
    if let Some(racks) = &cluster.prefer_racks {
        cp.rack_ids = Some(racks.iter().map(|r| *r as usize).collect());
    }
    if let Some(c) = &cluster.credentials {
        if c.password_key_secret.is_some()
            || c.password.as_ref().is_some_and(|p| p.is_agent_reference())
        {
            // Jobs resolve these first (jobs::job_secrets); an unresolved one here is a
            // caller that skipped that step.
            return Err(fail(
                "credentials name a Secret Agent but were not resolved before connecting".into(),
            ));
        }
        let mode = c.auth_mode.map_or(AuthMode::Internal, |m| *m);
        if mode == AuthMode::Pki {
            // The server takes the user from the client certificate: no user, no password.
            if cluster.tls.as_ref().is_none_or(|t| t.cert_file.is_none()) {
                return Err(fail(
                    "credentials.auth-mode PKI needs mutual TLS: set tls.cert-file and tls.key-file"
                        .into(),
                ));
            }
            cp.auth_mode = ClientAuthMode::Pki;
        } else if let Some(user) = c.user.clone().filter(|u| !u.is_empty()) {
            // password-path takes precedence over password (ABS).
            let password = match (&c.password_path, &c.password) {
                (Some(path), _) => std::fs::read_to_string(path)
                    .map_err(|e| fail(format!("cannot read password-path \"{path}\": {e}")))?
                    .trim_end_matches(['\r', '\n'])
                    .to_string(),
                (None, Some(p)) => p.expose().to_string(),
                (None, None) => String::new(),
            };
            cp.auth_mode = match mode {
                AuthMode::External => ClientAuthMode::External(user, password),
                AuthMode::ExternalInsecure => ClientAuthMode::ExternalInsecure(user, password),
                _ => ClientAuthMode::Internal(user, password),
            };
        }
    }
    Ok(cp)
}

/// `host:port,host:port` from the seed nodes; with TLS `host:tls-name:port` (the name each
/// connection verifies, see [`crate::aerospike::tls::seed_tls_name`]).
pub fn seed_hosts(cluster: &AerospikeCluster) -> String {
    cluster
        .seed_nodes
        .iter()
        .map(|s| match &cluster.tls {
            Some(tls) => {
                let name =
                    crate::aerospike::tls::seed_tls_name(tls, s.tls_name.as_deref(), &s.host_name);
                format!("{}:{name}:{}", s.host_name, s.port)
            }
            None => format!("{}:{}", s.host_name, s.port),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Connects to the cluster `name`.
///
/// # Errors
/// As [`client_policy`], or the client's connection error.
pub async fn connect(name: &str, cluster: &AerospikeCluster) -> Result<Client, EngineError> {
    let policy = client_policy(name, cluster)?;
    let hosts = seed_hosts(cluster);
    if hosts.is_empty() {
        return Err(EngineError::Cluster {
            cluster: name.to_string(),
            message: "no seed nodes".into(),
        });
    }
    Client::new(&policy, &hosts).await.map_err(|e| {
        let text = e.to_string();
        let message = match crate::aerospike::tls::hint(&text) {
            Some(h) => format!("cannot connect to {hosts}: {} ({h})", text.trim_end()),
            None => format!("cannot connect to {hosts}: {text}"),
        };
        EngineError::Cluster {
            cluster: name.to_string(),
            message,
        }
    })
}

/// Connects to the routine's cluster, retrying as the policy's `retry-policy` says (ABS: the
/// cluster connection is retried; `max-retries` more attempts, the first after `base-timeout`
/// ms, each further one `multiplier` times later).
///
/// `label` names the job in the log lines (the routine of a backup).
///
/// # Errors
/// The last connection error, or [`EngineError::Cancelled`].
pub async fn connect_with_retries(
    name: &str,
    cluster: &AerospikeCluster,
    retry: &RetryPolicy,
    label: &str,
    cancel: &CancellationToken,
) -> Result<Client, EngineError> {
    let mut delay_ms = retry.base_timeout_ms() as f64;
    let mut attempt = 0;
    loop {
        let outcome = tokio::select! {
            c = connect(name, cluster) => c,
            () = cancel.cancelled() => return Err(EngineError::Cancelled),
        };
        match outcome {
            Ok(client) => return Ok(client),
            Err(e) if attempt >= retry.max_retries() => return Err(e),
            Err(e) => {
                attempt += 1;
                tracing::warn!(
                    routine = %label,
                    attempt,
                    of = retry.max_retries(),
                    retry_in_ms = delay_ms as u64,
                    error = %e,
                    "Cannot connect to the cluster; retrying."
                );
                tokio::select! {
                    () = tokio::time::sleep(std::time::Duration::from_millis(delay_ms as u64)) => {}
                    () = cancel.cancelled() => return Err(EngineError::Cancelled),
                }
                delay_ms *= retry.multiplier().max(1.0);
            }
        }
    }
}

type Slot = (Option<u32>, Arc<Semaphore>);

/// Renders `get-config` answers as `aerospike.conf` stanzas (D19, best effort): each
/// `(stanza, answer)` becomes `stanza { key value ... }`, and dotted keys nest
/// (`service.port=3000` in `network` → `network { service { port 3000 } }`). Values are
/// copied as the server reports them; a real config may need edits before use.
pub fn render_config(stanzas: &[(String, String)]) -> String {
    let mut out = String::new();
    for (name, answer) in stanzas {
        let pairs: Vec<(Vec<&str>, &str)> = answer
            .split(';')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.trim().split('.').collect(), v.trim()))
            .collect();
        render_stanza(&mut out, 0, name, &pairs);
    }
    out
}

fn render_stanza(out: &mut String, depth: usize, name: &str, pairs: &[(Vec<&str>, &str)]) {
    let pad = "    ".repeat(depth);
    out.push_str(&format!("{pad}{name} {{\n"));
    let mut nested: Vec<&str> = Vec::new();
    for (path, value) in pairs {
        match path.as_slice() {
            [key] => out.push_str(&format!("{pad}    {key} {value}\n")),
            [first, ..] if !nested.contains(first) => nested.push(first),
            _ => {}
        }
    }
    for sub in nested {
        let inner: Vec<(Vec<&str>, &str)> = pairs
            .iter()
            .filter(|(p, _)| p.len() > 1 && p[0] == sub)
            .map(|(p, v)| (p[1..].to_vec(), *v))
            .collect();
        render_stanza(out, depth + 1, sub, &inner);
    }
    out.push_str(&format!("{pad}}}\n"));
}

/// The `max-parallel-scans` semaphores, one per cluster name.
#[derive(Debug, Default)]
pub struct ScanSlots {
    /// Cluster name → (the limit the semaphore was made for, the semaphore).
    slots: Mutex<HashMap<String, Slot>>,
}

impl ScanSlots {
    /// The semaphore of `cluster`. A changed limit starts a fresh semaphore: scans holding
    /// permits of the old one finish under the old limit.
    pub fn for_cluster(&self, name: &str, cluster: &AerospikeCluster) -> Arc<Semaphore> {
        let limit = cluster.max_parallel_scans.filter(|n| *n > 0);
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        match slots.get(name) {
            Some((l, s)) if *l == limit => s.clone(),
            _ => {
                let permits = limit.map_or(UNLIMITED_SCANS, |n| n as usize);
                let s = Arc::new(Semaphore::new(permits));
                slots.insert(name.to_string(), (limit, s.clone()));
                s
            }
        }
    }
}

/// One info command on a random node; the answer's value.
pub async fn info_one(client: &Client, command: &str) -> Result<String, EngineError> {
    let map = client
        .info(&AdminPolicy::default(), &[command])
        .await
        .map_err(|e| EngineError::Cluster {
            cluster: String::new(),
            message: format!("info {command}: {e}"),
        })?;
    // Servers echo the command as sent; take the only answer if the echo differs.
    Ok(map
        .get(command)
        .or_else(|| map.values().next().filter(|_| map.len() == 1))
        .cloned()
        .unwrap_or_default())
}

/// The cluster's namespaces (`namespaces`).
pub async fn namespaces(client: &Client) -> Result<Vec<String>, EngineError> {
    let all = info_one(client, "namespaces").await?;
    Ok(all
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect())
}

/// `key=value` pairs separated by `sep`.
pub fn info_fields(text: &str, sep: char) -> impl Iterator<Item = (&str, &str)> {
    text.split(sep)
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim()))
}

/// The node names of `racks` for `namespace`, from the cluster's `racks:` answer
/// (`ns=<ns>:rack_<id>=<node>,<node>:...;ns=...`).
pub async fn rack_nodes(
    client: &Client,
    racks: &[u32],
    namespace: &str,
) -> Result<Vec<String>, EngineError> {
    let answer = info_one(client, "racks:").await?;
    // Community Edition has no racks (`ERROR:25:enterprise only`): every node is in rack 0.
    let nodes = if answer.starts_with("ERROR:25") {
        if !racks.contains(&0) {
            return Err(EngineError::Config(format!(
                "rack-list: the cluster has no racks (Community Edition: every node is in \
                 rack 0), so racks {racks:?} have no nodes"
            )));
        }
        let mut all: Vec<String> = client
            .nodes()
            .iter()
            .map(|n| n.name().to_string())
            .collect();
        all.sort();
        all
    } else {
        crate::aerospike::scan::rack_nodes(&answer, racks, namespace)
            .map_err(|m| EngineError::Config(format!("rack-list: {m}")))?
    };
    tracing::info!(
        namespace,
        ?racks,
        ?nodes,
        "rack-list: backing up the partitions these nodes master."
    );
    Ok(nodes)
}

/// The partitions of `ns` mastered by the nodes of `node-list` (D18), as scan ranges. An
/// entry names a node by id, by `host:port` as the client sees it, or by
/// `host:tls-name:port` (the TLS name must then be the node's).
pub async fn node_list_ranges(
    client: &Client,
    node_list: &[String],
    ns: &str,
) -> Result<Vec<ScanRange>, EngineError> {
    let nodes = client.nodes();
    let mut partitions = Vec::new();
    for wanted in node_list {
        let wanted = wanted.trim();
        let node = nodes
            .iter()
            .find(|n| n.name() == wanted || node_list_entry_matches(wanted, &n.host()))
            .ok_or_else(|| {
                EngineError::Config(format!("node-list: node {wanted} is not in the cluster"))
            })?;
        let answer = node
            .info(&AdminPolicy::default(), &["replicas"])
            .await
            .map_err(|e| EngineError::Cluster {
                cluster: String::new(),
                message: format!("info replicas on {wanted}: {e}"),
            })?;
        let text = answer.get("replicas").cloned().unwrap_or_default();
        partitions.extend(
            crate::aerospike::scan::mastered_partitions(&text, ns)
                .map_err(|m| EngineError::Config(format!("node-list: {m}")))?,
        );
    }
    partitions.sort_unstable();
    partitions.dedup();
    Ok(crate::aerospike::scan::ranges_of(&partitions))
}

/// Whether a `node-list` entry (`host:port` or `host:tls-name:port`) names `host`.
fn node_list_entry_matches(entry: &str, host: &aerospike::Host) -> bool {
    let parts: Vec<&str> = entry.split(':').collect();
    let port = host.port.to_string();
    match parts.as_slice() {
        [h, p] => *h == host.name && *p == port,
        [h, tls, p] => {
            *h == host.name && *p == port && host.tls_name.as_deref().is_none_or(|t| t == *tls)
        }
        _ => false,
    }
}

/// Each node's configuration (`get-config`), rendered as `aerospike.conf` text, in node
/// name order (`aerospike_<i>.conf`, as ABS numbers them).
pub async fn cluster_configurations(
    client: &Client,
    namespaces: &[String],
) -> Result<Vec<String>, EngineError> {
    let mut nodes = client.nodes();
    nodes.sort_by(|a, b| a.name().cmp(b.name()));
    let mut out = Vec::new();
    for node in nodes {
        let mut stanzas = Vec::new();
        let mut contexts: Vec<(String, String)> = ["service", "network", "security"]
            .iter()
            .map(|c| (c.to_string(), format!("get-config:context={c}")))
            .collect();
        contexts.extend(namespaces.iter().map(|ns| {
            (
                format!("namespace {ns}"),
                format!("get-config:context=namespace;id={ns}"),
            )
        }));
        for (stanza, cmd) in contexts {
            let answer = node
                .info(&AdminPolicy::default(), &[cmd.as_str()])
                .await
                .map_err(|e| EngineError::Cluster {
                    cluster: String::new(),
                    message: format!("info {cmd} on {}: {e}", node.name()),
                })?;
            let text = answer.get(&cmd).cloned().unwrap_or_default();
            if !text.starts_with("ERROR") && !text.is_empty() {
                stanzas.push((stanza, text));
            }
        }
        out.push(render_config(&stanzas));
    }
    Ok(out)
}

/// Records of `ns` over the cluster (sum of `master_objects`), or 0 if unknown. Only an
/// estimate for progress: failures are logged, not fatal.
pub async fn estimate_records(client: &Client, ns: &str) -> u64 {
    let cmd = format!("namespace/{ns}");
    let mut total = 0;
    for node in client.nodes() {
        match node.info(&AdminPolicy::default(), &[cmd.as_str()]).await {
            Ok(map) => {
                let text = map.get(&cmd).cloned().unwrap_or_default();
                let mut master = None;
                let mut objects = None;
                for (k, v) in info_fields(&text, ';') {
                    match k {
                        "master_objects" => master = v.parse::<u64>().ok(),
                        "objects" => objects = v.parse::<u64>().ok(),
                        _ => {}
                    }
                }
                total += master.or(objects).unwrap_or(0);
            }
            Err(e) => tracing::debug!(error = %e, "Namespace statistics unavailable."),
        }
    }
    total
}

/// The secondary indexes of `ns` (`sindex-list`).
pub async fn read_sindexes(client: &Client, ns: &str) -> Result<Vec<SecondaryIndex>, EngineError> {
    // `b64=true` makes servers report CDT contexts in base64, as the `* i` line stores them.
    let text = info_one(client, &format!("sindex-list:ns={ns};b64=true")).await?;
    let mut out = Vec::new();
    for entry in text.split(';').map(str::trim).filter(|e| !e.is_empty()) {
        let field = |name: &str| {
            info_fields(entry, ':')
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
                // 8.1 writes `context=null:exp=null` for what an index lacks; older
                // servers wrote `NULL`.
                .filter(|v| !v.is_empty() && !v.eq_ignore_ascii_case("null"))
        };
        let Some(name) = field("indexname") else {
            continue;
        };
        if field("ns").or(field("namespace")).is_some_and(|n| n != ns) {
            continue;
        }
        let indextype = field("indextype").unwrap_or_default().to_ascii_uppercase();
        // 8.1 set indexes list no bin and no type: `ns=..:indexname=..:set=..:indextype=set`.
        if indextype == "SET" {
            out.push(SecondaryIndex {
                namespace: ns.to_string(),
                set: field("set"),
                name,
                index_type: IndexType::Set,
                bin: String::new(),
                value_type: IndexValueType::Empty,
                context: None,
                expression: None,
            });
            continue;
        }
        // Expression indexes (8.1) list `bin=null` and their expression in `exp`.
        let expression = field("exp");
        let bin = match (field("bin"), &expression) {
            (Some(bin), _) => bin,
            (None, Some(_)) => String::new(),
            (None, None) => {
                // A form no server we know lists; skipped with a warning (as backup-go 0.11.1
                // skips index kinds it does not know) rather than failing the backup.
                tracing::warn!(index = %name, entry = %entry,
                    "Secondary index with neither a bin nor an expression skipped.");
                continue;
            }
        };
        let value_type = match field("type")
            .unwrap_or_default()
            .to_ascii_uppercase()
            .as_str()
        {
            "STRING" | "TEXT" => IndexValueType::String,
            "NUMERIC" | "INT SIGNED" => IndexValueType::Numeric,
            "GEO2DSPHERE" | "GEOJSON" => IndexValueType::Geo,
            "BLOB" => IndexValueType::Blob,
            other => {
                return Err(EngineError::Encode(format!(
                    "secondary index {name}: unknown type {other:?}"
                )));
            }
        };
        let index_type = match indextype.as_str() {
            "" | "NONE" | "DEFAULT" => IndexType::Default,
            "LIST" => IndexType::List,
            "MAPKEYS" => IndexType::MapKeys,
            "MAPVALUES" => IndexType::MapValues,
            other => {
                return Err(EngineError::Encode(format!(
                    "secondary index {name}: unknown index type {other:?}"
                )));
            }
        };
        out.push(SecondaryIndex {
            namespace: ns.to_string(),
            set: field("set"),
            name,
            index_type,
            bin,
            value_type,
            context: field("context"),
            expression,
        });
    }
    Ok(out)
}

/// Every registered UDF module with its source.
pub async fn read_udfs(client: &Client) -> Result<Vec<Udf>, EngineError> {
    let list = info_one(client, "udf-list").await?;
    let mut out = Vec::new();
    for entry in list.split(';').map(str::trim).filter(|e| !e.is_empty()) {
        let Some(name) = info_fields(entry, ',')
            .find(|(k, _)| *k == "filename")
            .map(|(_, v)| v.to_string())
        else {
            continue;
        };
        let cmd = format!("udf-get:filename={name}");
        let text = info_one(client, &cmd).await?;
        let content = info_fields(&text, ';')
            .find(|(k, _)| *k == "content")
            .map(|(_, v)| v.to_string())
            .ok_or_else(|| EngineError::Encode(format!("UDF {name}: no content in {cmd}")))?;
        let content = base64::engine::general_purpose::STANDARD
            .decode(content)
            .map_err(|e| EngineError::Encode(format!("UDF {name}: {e}")))?;
        out.push(Udf { name, content });
    }
    Ok(out)
}

/// Registers a UDF module (restore). Does not wait for the module to reach every node:
/// records do not need it, and asrestore waits only when asked.
///
/// # Errors
/// What the server answers (e.g. a Lua compile error).
pub async fn register_udf(client: &Client, udf: &Udf) -> Result<(), EngineError> {
    client
        .register_udf(
            &AdminPolicy::default(),
            &udf.content,
            &udf.name,
            aerospike::UdfLang::Lua,
        )
        .await
        .map(|_| ())
        .map_err(|e| EngineError::Cluster {
            cluster: String::new(),
            message: format!("registering UDF {}: {e}", udf.name),
        })
}

/// The `sindex-create` command for `index` in `namespace`, in the form the server's
/// version takes (8.1 renamed `ns`/`indexdata` to `namespace`/`bin`+`type`).
pub fn sindex_create_command(index: &SecondaryIndex, namespace: &str, new_form: bool) -> String {
    let mut cmd = if new_form {
        format!("sindex-create:namespace={namespace}")
    } else {
        format!("sindex-create:ns={namespace}")
    };
    if let Some(set) = index.set.as_deref().filter(|s| !s.is_empty()) {
        cmd.push_str(&format!(";set={set}"));
    }
    cmd.push_str(&format!(";indexname={}", index.name));
    if index.index_type == IndexType::Set {
        // A set index takes no bin, type, context or expression (the server refuses them).
        cmd.push_str(";indextype=set");
        return cmd;
    }
    if let Some(ctx) = &index.context {
        cmd.push_str(&format!(";context={ctx}"));
    }
    if let Some(exp) = &index.expression {
        cmd.push_str(&format!(";exp={exp}"));
    }
    let itype = match index.index_type {
        IndexType::Default => None,
        IndexType::List => Some("list"),
        IndexType::MapKeys => Some("mapkeys"),
        IndexType::MapValues => Some("mapvalues"),
        IndexType::Set => Some("set"),
    };
    if let Some(t) = itype {
        cmd.push_str(&format!(";indextype={t}"));
    }
    let vtype = match index.value_type {
        IndexValueType::String => "string",
        IndexValueType::Numeric => "numeric",
        IndexValueType::Geo => "geo2dsphere",
        IndexValueType::Blob => "blob",
        // Only set indexes have no value type, and they returned above.
        IndexValueType::Empty => "none",
    };
    if index.expression.is_some() && index.bin.is_empty() {
        cmd.push_str(&format!(";type={vtype}"));
    } else if new_form {
        cmd.push_str(&format!(";bin={};type={vtype}", index.bin));
    } else {
        cmd.push_str(&format!(";indexdata={},{vtype}", index.bin));
    }
    cmd
}

/// True when the cluster's `build` is 8.1 or later (the new `sindex-create` form).
async fn server_8_1_or_later(client: &Client) -> bool {
    let build = info_one(client, "build").await.unwrap_or_default();
    let mut parts = build.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (8, 1)
}

/// Creates a secondary index (restore). An index of that name that already exists is
/// dropped and created again with the backup's definition (as backup-go does).
///
/// # Errors
/// The server's error for the create command.
pub async fn create_sindex(
    client: &Client,
    index: &SecondaryIndex,
    namespace: &str,
) -> Result<(), EngineError> {
    let cmd = sindex_create_command(index, namespace, server_8_1_or_later(client).await);
    let fail = |m: String| EngineError::Cluster {
        cluster: String::new(),
        message: format!("creating secondary index {}: {m}", index.name),
    };
    let answer = info_one(client, &cmd).await?;
    if answer.is_empty() || answer.eq_ignore_ascii_case("ok") {
        return Ok(());
    }
    let lower = answer.to_ascii_lowercase();
    if lower.contains(":200:") || lower.contains("already exists") || lower.contains("index found")
    {
        let drop_cmd = format!("sindex-delete:ns={namespace};indexname={}", index.name);
        info_one(client, &drop_cmd).await?;
        let again = info_one(client, &cmd).await?;
        if again.is_empty() || again.eq_ignore_ascii_case("ok") {
            return Ok(());
        }
        return Err(fail(again));
    }
    Err(fail(answer))
}

#[cfg(test)]
#[path = "cluster_tests.rs"]
mod tests;
