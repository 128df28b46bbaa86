//! `notifications:` (ours): each webhook's URL, selectors, format and retries.

use super::policy::retry_policy;
use super::{Errors, check_name, entity_path};
use crate::config::model::*;

/// `notifications:` (ours): each webhook's URL, selectors, format and retries.
pub(super) fn notifications(e: &mut Errors, cfg: &Config, n: &NotificationsConfig) {
    e.range(
        "notifications.queue-size".into(),
        "NotificationsConfig",
        "queue-size",
        n.queue_size,
    );
    for (name, w) in &n.webhooks {
        check_name(e, "notifications.webhooks", name);
        let path = entity_path("notifications.webhooks", name);
        let references =
            w.url.is_agent_reference() || w.secret.as_ref().is_some_and(Secret::is_agent_reference);
        if !w.url.is_agent_reference() {
            let url = w.url.expose();
            // The URL is a secret: the error names the field, never the value.
            let ok = (url.starts_with("http://") || url.starts_with("https://"))
                && url.split_once("://").is_some_and(|(_, r)| !r.is_empty());
            if !ok {
                e.push(format!("{path}.url"), "must be an http:// or https:// URL");
            }
        }
        if w.secret.as_ref().is_some_and(|s| s.expose().is_empty()) {
            e.push(format!("{path}.secret"), "must not be empty");
        }
        match &w.secret_agent_name {
            Some(a) if !cfg.secret_agents.contains_key(a) => e.push(
                format!("{path}.secret-agent-name"),
                format!("secret agent {a} not found"),
            ),
            None if references => e.push(
                format!("{path}.secret-agent-name"),
                "a secrets: reference needs secret-agent-name",
            ),
            _ => {}
        }
        for (i, r) in w.routines.iter().flatten().enumerate() {
            if !cfg.backup_routines.contains_key(r) {
                e.push(
                    format!("{path}.routines[{i}]"),
                    format!("routine {r} not found"),
                );
            }
        }
        for (field, list, allowed) in [
            ("kinds", &w.kinds, &WEBHOOK_KINDS[..]),
            ("outcomes", &w.outcomes, &WEBHOOK_OUTCOMES[..]),
        ] {
            for (i, v) in list.iter().flatten().enumerate() {
                if !allowed.iter().any(|a| a.eq_ignore_ascii_case(v)) {
                    e.push(
                        format!("{path}.{field}[{i}]"),
                        format!("\"{v}\" is not one of {}", allowed.join(", ")),
                    );
                }
            }
        }
        if let Some(f) = &w.format
            && !["json", "slack"].iter().any(|a| a.eq_ignore_ascii_case(f))
        {
            e.push(format!("{path}.format"), "must be json or slack");
        }
        e.range(
            format!("{path}.timeout-seconds"),
            "WebhookConfig",
            "timeout-seconds",
            w.timeout_seconds,
        );
        if let Some(p) = &w.retry_policy {
            retry_policy(e, &format!("{path}.retry-policy"), p);
        }
    }
}
