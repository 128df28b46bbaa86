//! `storage.<name>`: each storage kind's required fields, URLs and credentials.

use super::{Errors, agent_refs, check_url, required};
use crate::config::model::*;

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

pub(super) fn storage(e: &mut Errors, cfg: &Config, path: &str, s: &Storage) {
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
