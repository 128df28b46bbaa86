//! `backup-policies.<name>`: ranges, retention, compression, encryption, pipeline.

use super::{Errors, required};
use crate::config::limits;
use crate::config::model::*;

pub(super) fn policy(e: &mut Errors, path: &str, p: &BackupPolicy) {
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

/// `retry-policy` of a backup policy; restore requests check theirs with [`retry_policy_error`].
pub(super) fn retry_policy(e: &mut Errors, path: &str, r: &RetryPolicy) {
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
