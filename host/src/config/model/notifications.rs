//! `notifications:` (ours) the webhooks told when jobs end.

use super::super::given::Given;
use super::super::serde_util::opt_number;
use super::{RetryPolicy, Secret};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// `notifications:` (ours) webhooks called when a job ends (docs/NOTIFICATIONS.md).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct NotificationsConfig {
    /// Webhooks by name (the name labels their metrics and logs).
    #[serde(default, skip_serializing_if = "Given::is_absent")]
    #[schema(value_type = BTreeMap<String, WebhookConfig>)]
    pub webhooks: Given<BTreeMap<String, WebhookConfig>>,
    /// Deliveries waiting to be sent, at most; when full, the oldest is dropped (and
    /// counted). Default 1000.
    #[serde(
        default,
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub queue_size: Option<u32>,
}

impl NotificationsConfig {
    pub fn queue_size(&self) -> usize {
        self.queue_size.unwrap_or(1000) as usize
    }
}

/// One webhook: where job ends are posted, which ones, and how.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct WebhookConfig {
    /// The `http(s)://` URL posted to. A secret (a Slack webhook URL is its own credential):
    /// shown as `"[secret]"`, never logged (logs name the host); may be a `secrets:`
    /// reference.
    pub url: Secret,
    /// Key of the `X-Abs-Signature-256` header (HMAC-SHA256 of the body); without it no
    /// signature is sent. May be a `secrets:` reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<Secret>,
    /// The Secret Agent that `secrets:` references of `url` and `secret` are asked of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_agent_name: Option<String>,
    /// Routines whose jobs are reported. Default: every job, also restores that name no routine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routines: Option<Vec<String>>,
    /// Job kinds reported: `backup`, `restore`, `verify`. Default all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kinds: Option<Vec<String>>,
    /// Outcomes reported: `success`, `failure`, `skip`, `canceled`. Default all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcomes: Option<Vec<String>>,
    /// `json` (default: the event's fields) or `slack` (`{"text": ...}` for a Slack or
    /// Mattermost incoming webhook).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// Retries of a failed delivery (no answer, or a status other than 2xx): `base-timeout`
    /// ms before the first retry (default 1000), `multiplier` (default 2), `max-retries`
    /// (default 5). The delay is capped at 5 minutes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_policy: Option<RetryPolicy>,
    /// One attempt's time limit, seconds. Default 10.
    #[serde(
        default,
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout_seconds: Option<u64>,
}

/// The job kinds a webhook may select.
pub const WEBHOOK_KINDS: [&str; 3] = ["backup", "restore", "verify"];
/// The outcomes a webhook may select.
pub const WEBHOOK_OUTCOMES: [&str; 4] = ["success", "failure", "skip", "canceled"];

impl WebhookConfig {
    /// Whether a job end is reported here.
    pub fn wants(&self, kind: &str, outcome: &str, routine: Option<&str>) -> bool {
        let has = |list: &Option<Vec<String>>, v: &str| {
            list.as_ref()
                .is_none_or(|l| l.iter().any(|x| x.eq_ignore_ascii_case(v)))
        };
        let routine_ok = match (&self.routines, routine) {
            (None, _) => true,
            (Some(l), Some(r)) => l.iter().any(|x| x == r),
            (Some(_), None) => false,
        };
        routine_ok && has(&self.kinds, kind) && has(&self.outcomes, outcome)
    }

    /// The delay before retry `n` (1-based), as the retry policy says, capped at 5 minutes.
    pub fn retry_delay(&self, n: u32) -> std::time::Duration {
        let p = self.retry_policy.clone().unwrap_or_default();
        let base = p.base_timeout.unwrap_or(1000) as f64;
        let factor = p.multiplier.unwrap_or(2.0).max(1.0);
        let ms = (base * factor.powi(n.saturating_sub(1) as i32)).min(300_000.0);
        std::time::Duration::from_millis(ms as u64)
    }

    /// Retries after the first attempt. Default 5.
    pub fn max_retries(&self) -> u32 {
        self.retry_policy
            .as_ref()
            .and_then(|p| p.max_retries)
            .unwrap_or(5)
    }

    pub fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.timeout_seconds.unwrap_or(10))
    }

    /// Slack's `{"text": ...}` rather than the event's fields.
    pub fn slack(&self) -> bool {
        self.format
            .as_deref()
            .is_some_and(|f| f.eq_ignore_ascii_case("slack"))
    }

    pub(super) fn secrets_mut(&mut self) -> Vec<(&'static str, &mut Secret)> {
        let mut v = vec![("url", &mut self.url)];
        if let Some(s) = self.secret.as_mut() {
            v.push(("secret", s));
        }
        v
    }
}
