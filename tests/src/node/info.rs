//! The info protocol: `name\n` requests, `name\tvalue\n` answers.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use super::NodeShared;
use super::store::{self, PARTITIONS, SIndex, Udf};

pub const BUILD: &str = "8.1.2.0";

const FEATURES: &str = "batch-any;batch-index;blob-bits;cdt-list;cdt-map;cluster-stable;\
float;geo;sindex-exists;peers;pipelining;pquery;pscans;query-show;relaxed-sc;replicas;\
replicas-all;replicas-master;truncate-namespace;udf;lut-now;xdr";

/// Answers a whole info request body.
pub fn answer(node: &NodeShared, body: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(body);
    let mut out = String::new();
    let cmds: Vec<&str> = text.split('\n').filter(|c| !c.is_empty()).collect();
    if cmds.is_empty() {
        // A bare info request asks for the default set of values.
        for c in ["node", "build", "edition", "version", "statistics"] {
            let _ = writeln!(out, "{c}\t{}", one(node, c));
        }
    }
    for c in cmds {
        node.cluster.log_info(c);
        let _ = writeln!(out, "{c}\t{}", one(node, c));
    }
    out.into_bytes()
}

/// `a=1;b=2` style arguments.
fn args(s: &str) -> Vec<(&str, &str)> {
    s.split(';')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .collect()
}

fn arg<'a>(a: &[(&'a str, &'a str)], keys: &[&str]) -> Option<&'a str> {
    a.iter().find(|(k, _)| keys.contains(k)).map(|(_, v)| *v)
}

fn one(node: &NodeShared, cmd: &str) -> String {
    let cl = &node.cluster;
    let (name, rest) = cmd.split_once(':').unwrap_or((cmd, ""));
    match name {
        "node" => node.name.clone(),
        "build" => BUILD.into(),
        "version" => format!("{} build {BUILD}", edition(node)),
        "edition" => edition(node).into(),
        "features" => FEATURES.into(),
        "cluster-name" => cl.config.cluster_name.clone(),
        "cluster-stable" | "cluster-key" => cl.cluster_key(),
        "namespaces" => cl.ns_names().join(";"),
        "partition-generation" => cl.partition_generation.load(Ordering::Relaxed).to_string(),
        "peers-generation" | "rebalance-generation" => {
            cl.peers_generation.load(Ordering::Relaxed).to_string()
        }
        "replicas" => replicas(node, |m| format!("0,{},{}", m.len(), m.join(","))),
        "replicas-all" => replicas(node, |m| format!("{},{}", m.len(), m.join(","))),
        "replicas-master" => replicas(node, |m| m[0].clone()),
        "peers-clear-std" | "peers-clear-alt" => peers(node, false),
        "peers-tls-std" | "peers-tls-alt" => peers(node, true),
        "services" | "services-alternate" | "services-alumni" => cl
            .peers_of(node.index)
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(";"),
        // A TLS node serves TLS only: its clear service list is empty, as on a server whose
        // service stanza has only a tls-port.
        "service" | "service-clear-std" | "service-clear-alt" if cl.config.tls.is_none() => {
            format!("127.0.0.1:{}", node.port)
        }
        "service-tls-std" | "service-tls-alt" if cl.config.tls.is_some() => {
            format!("127.0.0.1:{}", node.port)
        }
        "service" | "service-clear-std" | "service-clear-alt" | "service-tls-std"
        | "service-tls-alt" => String::new(),
        "statistics" => statistics(node),
        // Rack awareness is Enterprise-only; a Community server refuses `racks:`. (A node
        // started with racks plays the Enterprise feature even without a user.)
        "racks" if super::server::enterprise(node) || cl.config.racks > 0 => racks(node),
        "racks" => "ERROR:25:enterprise only".into(),
        "rack-ids" => cl
            .ns_names()
            .iter()
            .map(|n| format!("{n}:{}", node.rack))
            .collect::<Vec<_>>()
            .join(";"),
        "get-config" => get_config(node, rest),
        "sindex-list" | "sindex" => sindex_list(node, rest),
        "sindex-create" => sindex_create(node, rest),
        "sindex-delete" => sindex_delete(node, rest),
        "sindex-stat" => {
            let a = args(rest);
            sindex_stat(
                node,
                arg(&a, &["ns", "namespace"]).unwrap_or(""),
                arg(&a, &["indexname"]).unwrap_or(""),
            )
        }
        "sindex-exists" => {
            let a = args(rest);
            let ns = arg(&a, &["ns", "namespace"]).unwrap_or("");
            let name = arg(&a, &["indexname"]).unwrap_or("");
            find_sindex(node, ns, name).is_some().to_string()
        }
        "udf-list" => udf_list(node),
        "udf-get" => udf_get(node, rest),
        "udf-put" => udf_put(node, rest),
        "udf-remove" => udf_remove(node, rest),
        "truncate" | "truncate-namespace" => truncate(node, rest),
        "truncate-undo" | "truncate-namespace-undo" | "user-agent-set" | "status" => "ok".into(),
        "best-practices" | "query-show" | "scan-show" | "xdr-min-lastshipinfo" => String::new(),
        _ => {
            if let Some(ns) = name.strip_prefix("namespace/") {
                namespace(node, ns)
            } else if name == "sets" || name.starts_with("sets/") {
                sets(node, name.strip_prefix("sets/").unwrap_or(""))
            } else if let Some((ns, idx)) =
                name.strip_prefix("sindex/").and_then(|p| p.split_once('/'))
            {
                sindex_stat(node, ns, idx)
            } else if let Some(ns) = name.strip_prefix("bins/") {
                bins(node, ns)
            } else {
                String::new()
            }
        }
    }
}

fn edition(node: &NodeShared) -> &'static str {
    if node.cluster.config.user.is_some() {
        "Aerospike Enterprise Edition"
    } else {
        "Aerospike Community Edition"
    }
}

/// Partition bitmaps, one per copy (master first), as `replicas` reports them.
fn replica_bitmaps(node: &NodeShared) -> Vec<String> {
    let n = node.cluster.node_count();
    let rank = node.cluster.live_rank(node.index);
    (0..node.cluster.replication_factor())
        .map(|r| {
            let mut bitmap = vec![0u8; PARTITIONS / 8];
            for p in 0..PARTITIONS {
                if Some((p + r) % n) == rank {
                    bitmap[p >> 3] |= 0x80 >> (p & 7);
                }
            }
            B64.encode(&bitmap)
        })
        .collect()
}

fn replicas(node: &NodeShared, fmt: impl Fn(&[String]) -> String) -> String {
    let maps = replica_bitmaps(node);
    node.cluster
        .ns_names()
        .iter()
        .map(|ns| format!("{ns}:{}", fmt(&maps)))
        .collect::<Vec<_>>()
        .join(";")
}

/// `peers-clear-*` (`tls` false) or `peers-tls-*`: `generation,default port,[[node,tls
/// name,[address:port]],...]`. Only the kind the node serves lists peers.
fn peers(node: &NodeShared, tls: bool) -> String {
    let cl = &node.cluster;
    let generation = cl.peers_generation.load(Ordering::Relaxed);
    let tls_name = match (&cl.config.tls, tls) {
        (None, false) => "",
        (Some(t), true) => t.tls_name.as_str(),
        _ => return format!("{generation},,[]"),
    };
    let list: Vec<String> = cl
        .live_nodes()
        .into_iter()
        .filter(|(i, _, _)| *i != node.index)
        .map(|(_, name, port)| format!("[{name},{tls_name},[127.0.0.1:{port}]]"))
        .collect();
    let default_port = if tls { 4333 } else { 3000 };
    format!("{generation},{default_port},[{}]", list.join(","))
}

fn statistics(node: &NodeShared) -> String {
    let cl = &node.cluster;
    let objects: usize = cl.ns_names().iter().map(|n| cl.store.count(n)).sum();
    format!(
        "cluster_size={};cluster_key={};cluster_integrity=true;cluster_is_member=true;\
         objects={objects};uptime={};client_connections={}",
        cl.node_count(),
        cl.cluster_key(),
        cl.started.elapsed().as_secs(),
        node.connections.load(Ordering::Relaxed),
    )
}

fn racks(node: &NodeShared) -> String {
    let cl = &node.cluster;
    let nodes = cl.all_nodes();
    cl.ns_names()
        .iter()
        .map(|ns| {
            let mut by_rack: std::collections::BTreeMap<u32, Vec<String>> = Default::default();
            for (_, name, _, rack) in &nodes {
                by_rack.entry(*rack).or_default().push(name.clone());
            }
            let mut s = format!("ns={ns}:");
            let parts: Vec<String> = by_rack
                .iter()
                .map(|(r, names)| format!("rack_{r}={}", names.join(",")))
                .collect();
            s.push_str(&parts.join(":"));
            s
        })
        .collect::<Vec<_>>()
        .join(";")
}

fn get_config(node: &NodeShared, rest: &str) -> String {
    let a = args(rest);
    let cl = &node.cluster;
    match arg(&a, &["context"]) {
        Some("namespace") => {
            let ns = arg(&a, &["id", "namespace"]).unwrap_or("");
            match cl.store.ns(ns.as_bytes()) {
                Some(n) => format!(
                    "replication-factor={};default-ttl={};nsup-period=0;storage-engine=memory;\
                     strong-consistency=false;allow-ttl-without-nsup=true;conflict-resolution-policy=generation",
                    cl.replication_factor(),
                    n.default_ttl
                ),
                None => format!("ERROR::namespace {ns} not found"),
            }
        }
        Some("network") => format!(
            "service.port={};service.address=127.0.0.1;fabric.port=0;heartbeat.mode=mesh",
            node.port
        ),
        Some("security") => format!("enable-security={}", cl.config.user.is_some()),
        Some("service") | None => format!(
            "cluster-name={};node-id={};proto-fd-max=15000;service-threads=2;feature-key-file=none;\
             migrate-threads=1;batch-index-threads=2;rack-id={}",
            cl.config.cluster_name, node.name, node.rack
        ),
        Some(other) => format!("ERROR::unknown context {other}"),
    }
}

fn namespace(node: &NodeShared, ns: &str) -> String {
    let cl = &node.cluster;
    let Some(n) = cl.store.ns(ns.as_bytes()) else {
        // What a server answers for a namespace it does not have.
        return "type=unknown".into();
    };
    let now = cl.store.clock.now_cl_secs();
    // Like a server node: counts cover the partitions this node holds, masters separately.
    let stats = n.set_stats(now, |p| node.copy_of(p));
    let objects: u64 = stats.values().map(|s| s.objects).sum();
    let master: u64 = stats.values().map(|s| s.master_objects).sum();
    let bytes: u64 = stats.values().map(|s| s.bytes).sum();
    format!(
        "objects={objects};master_objects={master};prole_objects={};tombstones=0;\
         data_used_bytes={bytes};current_time={now};replication-factor={};default-ttl={};\
         nsup-period=0;storage-engine=memory;strong-consistency=false;set_count={}",
        objects - master,
        cl.replication_factor(),
        n.default_ttl,
        stats.keys().filter(|k| !k.is_empty()).count()
    )
}

fn sets(node: &NodeShared, path: &str) -> String {
    let cl = &node.cluster;
    let (ns_filter, set_filter) = match path.split_once('/') {
        Some((n, s)) => (n, Some(s)),
        None => (path, None),
    };
    let now = cl.store.clock.now_cl_secs();
    let mut out = String::new();
    for n in &cl.store.namespaces {
        if !ns_filter.is_empty() && n.name != ns_filter {
            continue;
        }
        let stats = n.set_stats(now, |p| node.copy_of(p));
        let sets = store::lock(&n.sets);
        for (set, st) in &stats {
            let (objects, bytes) = (st.objects, st.bytes);
            if set.is_empty() || set_filter.is_some_and(|f| f != set) {
                continue;
            }
            let lut = sets.get(set).map_or(0, |m| m.truncate_lut_ms);
            // `sets/<ns>/<set>` names neither, as on the server.
            if set_filter.is_none() {
                let _ = write!(out, "ns={}:set={set}:", n.name);
            }
            let _ = write!(
                out,
                "objects={objects}:tombstones=0:data_used_bytes={bytes}:truncate_lut={lut}:\
                 sindexes=0:index_populating=false:truncating=false:\
                 default-read-touch-ttl-pct=0:default-ttl=0:disable-eviction=false:\
                 enable-index=false:stop-writes-count=0:stop-writes-size=0;"
            );
        }
    }
    out
}

fn bins(node: &NodeShared, ns: &str) -> String {
    let Some(n) = node.cluster.store.ns(ns.as_bytes()) else {
        return "ERROR::namespace not found".into();
    };
    let mut names = std::collections::BTreeSet::new();
    for p in &n.parts {
        for r in store::read(p).values() {
            for b in r.bins() {
                names.insert(String::from_utf8_lossy(b.name).into_owned());
            }
        }
    }
    let mut s = format!("bin_names={},bin_names_quota=65535", names.len());
    for b in names {
        s.push(',');
        s.push_str(&b);
    }
    s
}

fn sindex_line(s: &SIndex) -> String {
    if s.itype == "set" {
        return format!(
            "ns={}:indexname={}:set={}:indextype=set",
            s.ns, s.name, s.set
        );
    }
    let or_null = |v: &str| {
        if v.is_empty() {
            "null".to_string()
        } else {
            v.to_string()
        }
    };
    format!(
        "ns={}:indexname={}:set={}:bin={}:type={}:indextype={}:context={}:exp={}:state=RW",
        s.ns,
        s.name,
        or_null(&s.set),
        or_null(&s.bin),
        s.ktype,
        s.itype,
        or_null(&s.context),
        or_null(&s.exp),
    )
}

/// `sindex-list`: the server lists bin indexes, then `;`, then set indexes, each entry
/// ending in `;`, and drops one trailing `;`. Each part checks the namespace itself, so an
/// unknown one gets the error twice.
fn sindex_list(node: &NodeShared, rest: &str) -> String {
    let a = args(rest);
    let ns = arg(&a, &["ns", "namespace"]);
    if ns.is_some_and(|n| node.cluster.store.ns(n.as_bytes()).is_none()) {
        return "ERROR:20:namespace not found on node;ERROR:20:namespace not found on node".into();
    }
    let list = store::lock(&node.cluster.store.sindexes);
    let (set_ix, bin_ix): (Vec<&SIndex>, Vec<&SIndex>) = list
        .iter()
        .filter(|s| ns.is_none_or(|n| n == s.ns))
        .partition(|s| s.itype == "set");
    let mut out = String::new();
    if matches!(arg(&a, &["b64"]), None | Some("true") | Some("false")) {
        for s in bin_ix {
            out.push_str(&sindex_line(s));
            out.push(';');
        }
    } else {
        out.push_str("ERROR:4:bad b64");
    }
    out.push(';');
    for s in set_ix {
        out.push_str(&sindex_line(s));
        out.push(';');
    }
    out.pop();
    out
}

fn find_sindex(node: &NodeShared, ns: &str, name: &str) -> Option<SIndex> {
    store::lock(&node.cluster.store.sindexes)
        .iter()
        .find(|s| s.ns == ns && s.name == name)
        .cloned()
}

/// Index statistics; the node builds indexes instantly, so `load_pct` is always 100.
fn sindex_stat(node: &NodeShared, ns: &str, name: &str) -> String {
    match find_sindex(node, ns, name) {
        Some(_) => "entries=0;load_pct=100;memory_used=0;stat_gc_recs=0".into(),
        None => "ERROR:201:no index".into(),
    }
}

const KEY_TYPES: [&str; 4] = ["numeric", "string", "blob", "geo2dsphere"];
const INDEX_TYPES: [&str; 4] = ["default", "list", "mapkeys", "mapvalues"];

/// Parses `sindex-create` the way the server does: the old `indexdata=bin,type` form (what
/// asrestore and older clients send) or the 8.1 `bin=..;type=..` / `exp=..;type=..` form,
/// plus set indexes (`indextype=set`). Errors are the server's `ERROR:<code>:<message>`.
fn parse_sindex(rest: &str) -> Result<SIndex, String> {
    let a = args(rest);
    let name = arg(&a, &["indexname"]).ok_or("ERROR:4:missing 'indexname'")?;
    let ns = arg(&a, &["namespace", "ns"]).ok_or("ERROR:20:missing 'namespace'")?;
    let get = |k: &str| arg(&a, &[k]);
    let itype = get("indextype").unwrap_or("default").to_ascii_lowercase();
    let mut idx = SIndex {
        ns: ns.to_string(),
        set: get("set").unwrap_or("").to_string(),
        name: name.to_string(),
        bin: String::new(),
        ktype: "none".to_string(),
        itype,
        context: get("context").unwrap_or("").to_string(),
        exp: String::new(),
    };
    if idx.itype == "set" {
        for p in ["context", "indexdata", "type", "bin", "exp"] {
            if get(p).is_some() {
                return Err(format!(
                    "ERROR:4:{p} parameter is not supported for set index"
                ));
            }
        }
        if idx.set.is_empty() {
            return Err("ERROR:4:missing 'set'".into());
        }
        return Ok(idx);
    }
    if !INDEX_TYPES.contains(&idx.itype.as_str()) {
        return Err(
            "ERROR:4:bad 'indextype' - must be one of 'default', 'list', 'mapkeys', \
                    'mapvalues'"
                .into(),
        );
    }
    match (get("indexdata"), get("type")) {
        (None, None) => return Err("ERROR:4:both 'indexdata' and 'type' are missing".into()),
        (Some(_), Some(_)) => {
            return Err("ERROR:4:both 'indexdata' and 'type' are specified".into());
        }
        (None, Some(t)) => {
            idx.ktype = t.to_ascii_lowercase();
            if !KEY_TYPES.contains(&idx.ktype.as_str()) {
                return Err(
                    "ERROR:4:bad 'type' - must be one of 'numeric', 'string', 'blob', \
                            'geo2dsphere'"
                        .into(),
                );
            }
            match (get("bin"), get("exp")) {
                (Some(_), Some(_)) => {
                    return Err("ERROR:4:both 'bin' and 'exp' are specified".into());
                }
                (None, None) => return Err("ERROR:4:both 'bin' and 'exp' are missing".into()),
                (Some(b), None) => idx.bin = b.to_string(),
                (None, Some(e)) => {
                    if !idx.context.is_empty() {
                        return Err("ERROR:4:both 'context' and 'exp' are specified".into());
                    }
                    idx.exp = e.to_string();
                }
            }
        }
        (Some(data), None) => {
            let (bin, ktype) = data
                .split_once(',')
                .ok_or("ERROR:4:'indexdata' missing bin type")?;
            if bin.is_empty() {
                return Err("ERROR:4:'indexdata' missing bin name".into());
            }
            if bin.len() > 15 {
                return Err("ERROR:4:'indexdata' bin name too long".into());
            }
            idx.bin = bin.to_string();
            idx.ktype = ktype.to_ascii_lowercase();
            if !KEY_TYPES.contains(&idx.ktype.as_str()) {
                return Err(
                    "ERROR:4:bad 'indexdata' bin type - must be one of 'numeric', \
                            'string', 'blob', 'geo2dsphere'"
                        .into(),
                );
            }
        }
    }
    if idx.itype == "mapkeys" && !matches!(idx.ktype.as_str(), "numeric" | "string" | "blob") {
        return Err(
            "ERROR:4:bad 'indexdata' bin type for 'indextype' 'mapkeys' - must be one \
                    of 'numeric', 'string', 'blob'"
                .into(),
        );
    }
    Ok(idx)
}

fn sindex_create(node: &NodeShared, rest: &str) -> String {
    let idx = match parse_sindex(rest) {
        Ok(i) => i,
        Err(e) => return e,
    };
    if node.cluster.store.ns(idx.ns.as_bytes()).is_none() {
        // The server accepts the definition (it goes to its metadata store) and builds
        // nothing.
        return "ok".into();
    }
    let mut list = store::lock(&node.cluster.store.sindexes);
    if let Some(existing) = list.iter().find(|s| s.ns == idx.ns && s.name == idx.name) {
        // The same definition again is accepted, as the server does.
        return if existing.same_definition(&idx) {
            "ok".into()
        } else {
            "ERROR:200:'indexname' already exists with different definition".into()
        };
    }
    // The server keys indexes by definition: the same definition under a new name renames.
    list.retain(|s| !s.same_definition(&idx));
    list.push(idx);
    "ok".into()
}

/// Dropping an index that does not exist is not an error on the server.
fn sindex_delete(node: &NodeShared, rest: &str) -> String {
    let a = args(rest);
    let Some(name) = arg(&a, &["indexname"]) else {
        return "ERROR:4:missing 'indexname'".into();
    };
    let Some(ns) = arg(&a, &["ns", "namespace"]) else {
        return "ERROR:20:missing 'namespace'".into();
    };
    store::lock(&node.cluster.store.sindexes).retain(|s| !(s.ns == ns && s.name == name));
    "ok".into()
}

/// The hash `udf-list` shows: SHA-1 of the module's metadata entry as the server keeps it,
/// the JSON text `{"content64": "<base64>", "type": "<type>", "name": "<file>"}`.
fn udf_hash(name: &str, u: &Udf) -> String {
    use sha1::{Digest as _, Sha1};
    let entry = format!(
        "{{\"content64\": \"{}\", \"type\": \"{}\", \"name\": \"{name}\"}}",
        B64.encode(&u.content),
        u.kind
    );
    Sha1::digest(entry.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn udf_list(node: &NodeShared) -> String {
    let udfs = store::lock(&node.cluster.store.udfs);
    udfs.iter()
        .map(|(f, u)| format!("filename={f},hash={},type={};", udf_hash(f, u), u.kind))
        .collect()
}

fn udf_get(node: &NodeShared, rest: &str) -> String {
    let a = args(rest);
    let f = arg(&a, &["filename"]).unwrap_or("");
    match store::lock(&node.cluster.store.udfs).get(f) {
        Some(u) => format!("type={};content={};", u.kind, B64.encode(&u.content)),
        None => "error=not_found".into(),
    }
}

/// Largest UDF module the server accepts (decoded).
const MAX_UDF_BYTES: usize = 1024 * 1024;

/// `udf-put:filename=F;content-len=N[;udf-type=LUA];content=<base64>` with the server's
/// checks and `error=...` answers. Lua is not compiled (see TEST-NODE.md).
fn udf_put(node: &NodeShared, rest: &str) -> String {
    let a = args(rest);
    let Some(f) = arg(&a, &["filename"]).filter(|f| !f.is_empty()) else {
        return "error=invalid_filename".into();
    };
    // The name needs an extension: a dot that is neither first nor last.
    match f.find('.') {
        Some(i) if i > 0 && i + 1 < f.len() => {}
        _ => return "error=invalid_filename".into(),
    }
    let Some(len) = arg(&a, &["content-len"]).and_then(|l| l.parse::<usize>().ok()) else {
        return "error=invalid_content_len".into();
    };
    if len % 4 != 0 {
        return "error=invalid_content_len".into();
    }
    let kind = arg(&a, &["udf-type"]).unwrap_or("LUA");
    if kind != "LUA" {
        return "error=invalid_udf_type".into();
    }
    let Some(content) = arg(&a, &["content"]).filter(|c| c.len() == len) else {
        return "error=invalid_content".into();
    };
    if len / 4 * 3 > MAX_UDF_BYTES {
        return "error=invalid_udf_content_len,>1M".into();
    }
    let Ok(bytes) = B64.decode(content) else {
        return "error=invalid_base64_content".into();
    };
    store::lock(&node.cluster.store.udfs).insert(
        f.to_string(),
        Udf {
            content: bytes,
            kind: kind.to_string(),
        },
    );
    "ok".into()
}

/// Removing a module that is not there answers `ok` too, as on the server.
fn udf_remove(node: &NodeShared, rest: &str) -> String {
    let a = args(rest);
    let Some(f) = arg(&a, &["filename"]).filter(|f| !f.is_empty()) else {
        return "error=invalid_filename".into();
    };
    store::lock(&node.cluster.store.udfs).remove(f);
    "ok".into()
}

/// `truncate` / `truncate-namespace`: the server takes only `namespace=`, and answers `ok`
/// for a namespace it does not have.
fn truncate(node: &NodeShared, rest: &str) -> String {
    let a = args(rest);
    let Some(ns) = arg(&a, &["namespace"]) else {
        return "ERROR:20:missing 'namespace'".into();
    };
    let store = &node.cluster.store;
    let Some(n) = store.ns(ns.as_bytes()) else {
        return "ok".into();
    };
    let now_ms = store.clock.now_ms();
    let before_ms = match arg(&a, &["lut"]) {
        Some(l) => match l.parse::<u64>() {
            Ok(ns_time) => ns_time / 1_000_000,
            Err(_) => return "ERROR:4:bad lut".into(),
        },
        None => now_ms + 1,
    };
    if before_ms > now_ms + 1 {
        return "ERROR:4:would truncate to the future".into();
    }
    n.truncate(arg(&a, &["set"]).filter(|s| !s.is_empty()), before_ms);
    "ok".into()
}
