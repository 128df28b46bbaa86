//! `service:` the HTTP listener, its API tokens and rate limit, the HTTPS listener, logging.

use super::{Errors, check_timezone};
use crate::config::model::*;
use crate::config::secret_ref::SecretRef;
use crate::config::tls;
use std::net::IpAddr;

pub(super) fn service(e: &mut Errors, cfg: &Config) {
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
