//! Job notifications (`notifications.webhooks`, ours): each backup, restore and verify end
//! (and each skipped backup) is posted as JSON to the webhooks that select it, signed with
//! HMAC-SHA256 when the webhook has a `secret`, retried with exponential backoff.
//!
//! A job end only queues its deliveries (the job's task never waits on a webhook). The queue
//! is bounded by `notifications.queue-size`: when it is full the oldest delivery is dropped,
//! logged and counted, so a dead endpoint can never grow memory. A few deliveries are in
//! flight at once, so one slow endpoint does not hold the others back.
//!
//! Secrets: the URL (a Slack URL is a credential) and the signing key are resolved at each
//! delivery, sent only where they belong and never logged: logs and errors name the webhook
//! and the URL's host. The body holds what the job status already shows.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde_json::json;

use crate::config::{Config, ConfigStore, WebhookConfig};
use crate::jobs::events::{JobEnded, JobListener};
use crate::metrics::Metrics;

/// The signature header: `sha256=<hex HMAC-SHA256 of the body>`.
pub const SIGNATURE_HEADER: &str = "X-Abs-Signature-256";
/// A delivery's id, the same on every retry, so a receiver can drop duplicates.
pub const DELIVERY_HEADER: &str = "X-Abs-Delivery";
/// Deliveries in flight at once: enough that one dead endpoint (waiting out its timeouts)
/// does not stall the others, few enough to stay a background chore.
const MAX_IN_FLIGHT: usize = 4;
/// The answer of a webhook is read for its status only; a few kB is plenty.
const MAX_ANSWER_BYTES: usize = 16 * 1024;

/// One message to one webhook.
struct Delivery {
    webhook: String,
    hook: WebhookConfig,
    /// Secret agents of the config the job ended under, to resolve `secrets:` references.
    config: Arc<Config>,
    id: String,
    body: Vec<u8>,
}

struct Inner {
    store: Arc<ConfigStore>,
    metrics: Option<Arc<Metrics>>,
    queue: Mutex<VecDeque<Delivery>>,
    wake: tokio::sync::Notify,
}

/// The webhook sender; cheap to clone.
#[derive(Clone)]
pub struct Notifier {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier").finish_non_exhaustive()
    }
}

impl Notifier {
    /// Starts the sender task (on the current tokio runtime). Webhooks are read from the
    /// configuration in force when each job ends.
    pub fn start(store: Arc<ConfigStore>, metrics: Option<Arc<Metrics>>) -> Self {
        let n = Notifier {
            inner: Arc::new(Inner {
                store,
                metrics,
                queue: Mutex::new(VecDeque::new()),
                wake: tokio::sync::Notify::new(),
            }),
        };
        tokio::spawn(n.clone().run());
        n
    }

    /// The listener to give the job registries.
    pub fn listener(&self) -> JobListener {
        let this = self.clone();
        Arc::new(move |e| this.enqueue(&e))
    }

    /// Queues one delivery per webhook that selects `event`.
    pub fn enqueue(&self, event: &JobEnded) {
        let config = self.inner.store.current();
        let Some(n) = &config.notifications else {
            return;
        };
        let capacity = n.queue_size().max(1);
        for (name, hook) in &n.webhooks {
            if !hook.wants(
                event.kind.as_str(),
                event.result.as_str(),
                event.routine.as_deref(),
            ) {
                continue;
            }
            let id = hex::encode(rand::random::<[u8; 16]>());
            let body = if hook.slack() {
                slack_body(event)
            } else {
                json_body(&id, event)
            };
            let delivery = Delivery {
                webhook: name.clone(),
                hook: hook.clone(),
                config: config.clone(),
                id,
                body: serde_json::to_vec(&body).expect("JSON values serialize"),
            };
            let dropped = {
                let mut q = self.lock();
                let dropped = (q.len() >= capacity).then(|| q.pop_front()).flatten();
                q.push_back(delivery);
                self.gauge(q.len());
                dropped
            };
            if let Some(d) = dropped {
                tracing::warn!(webhook = %d.webhook, delivery = %d.id,
                    "Webhook delivery dropped: the notification queue is full.");
                if let Some(m) = &self.inner.metrics {
                    m.webhook_deliveries
                        .with_label_values(&[&d.webhook, "dropped"])
                        .inc();
                }
            }
            self.inner.wake.notify_one();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Delivery>> {
        self.inner.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn gauge(&self, len: usize) {
        if let Some(m) = &self.inner.metrics {
            m.webhook_queue_length.set(len as i64);
        }
    }

    async fn run(self) {
        let slots = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
        loop {
            // A slot first, so deliveries wait in the bounded queue rather than in tasks.
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            let next = loop {
                let popped = {
                    let mut q = self.lock();
                    let d = q.pop_front();
                    self.gauge(q.len());
                    d
                };
                match popped {
                    Some(d) => break d,
                    None => self.inner.wake.notified().await,
                }
            };
            let metrics = self.inner.metrics.clone();
            tokio::spawn(async move {
                deliver(next, metrics.as_deref()).await;
                drop(slot);
            });
        }
    }
}

/// The event as the JSON body of `format: json`.
fn json_body(id: &str, e: &JobEnded) -> serde_json::Value {
    json!({
        "id": id,
        "event": "job-ended",
        "kind": e.kind.as_str(),
        "type": e.detail,
        "routine": e.routine,
        "job-id": e.job_id,
        "outcome": e.result.as_str(),
        "records": e.records,
        "bytes": e.bytes,
        "duration-ms": e.duration.as_millis() as u64,
        "error": e.error,
        "finished-at": e.finished_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    })
}

/// The event as one line of text for a Slack (or Mattermost) incoming webhook.
fn slack_body(e: &JobEnded) -> serde_json::Value {
    let icon = match e.result.as_str() {
        "success" => ":white_check_mark:",
        "failure" => ":x:",
        "skip" => ":fast_forward:",
        _ => ":no_entry_sign:",
    };
    let what = match (&e.routine, e.kind.as_str()) {
        (Some(r), "backup") => format!("{} backup of routine *{r}*", e.detail),
        (Some(r), k) => format!("{k} of routine *{r}*"),
        (None, k) => k.to_string(),
    };
    let mut text = format!(
        "{icon} {what}: {}, {} records, {} bytes in {:.1} s",
        e.result.as_str(),
        e.records,
        e.bytes,
        e.duration.as_secs_f64()
    );
    if let Some(err) = &e.error {
        text.push_str(&format!(" ({err})"));
    }
    json!({ "text": text })
}

/// `sha256=<hex>` of `body` under `key`.
pub fn signature(key: &[u8], body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    format!(
        "sha256={}",
        hex::encode(ring::hmac::sign(&key, body).as_ref())
    )
}

/// The host of a URL, the only part of it that logs show.
fn host_of(url: &str) -> String {
    url.parse::<http::Uri>()
        .ok()
        .and_then(|u| u.host().map(str::to_string))
        .unwrap_or_else(|| "(unparsable URL)".into())
}

/// The URL and signing key, from the config or the Secret Agent.
async fn resolve(d: &Delivery) -> Result<(String, Option<Vec<u8>>), String> {
    let agent = crate::secrets::agent_for(
        &d.config.secret_agents,
        None,
        d.hook.secret_agent_name.as_deref(),
        None,
    )
    .map_err(|e| e.to_string())?;
    let field = |f: &str| format!("notifications.webhooks.{}.{f}", d.webhook);
    let url = crate::secrets::resolve_field(agent.as_ref(), &field("url"), &d.hook.url)
        .await
        .map_err(|e| e.to_string())?;
    let url = url.expose_str().map_err(|e| format!("url: {e}"))?.trim();
    let key = match &d.hook.secret {
        Some(s) => Some(
            crate::secrets::resolve_field(agent.as_ref(), &field("secret"), s)
                .await
                .map_err(|e| e.to_string())?
                .expose()
                .to_vec(),
        ),
        None => None,
    };
    Ok((url.to_string(), key))
}

/// One attempt: `Ok` on a 2xx answer.
async fn attempt(d: &Delivery, url: &str, key: Option<&[u8]>) -> Result<(), String> {
    let sig = key.map(|k| signature(k, &d.body));
    let mut headers = vec![
        ("content-type", "application/json"),
        ("user-agent", "aerospike-backup-service"),
        (DELIVERY_HEADER, d.id.as_str()),
    ];
    if let Some(s) = &sig {
        headers.push((SIGNATURE_HEADER, s.as_str()));
    }
    let answer = crate::outbound::fetch(
        http::Method::POST,
        url,
        &headers,
        d.body.clone(),
        MAX_ANSWER_BYTES,
        d.hook.timeout(),
    )
    .await?;
    if (200..300).contains(&answer.status) {
        Ok(())
    } else {
        // The answer's body is not shown: a receiver may echo what it was sent.
        Err(format!("answered HTTP {}", answer.status))
    }
}

/// Sends `d`, retrying as its webhook's retry policy says.
async fn deliver(d: Delivery, metrics: Option<&Metrics>) {
    let retries = d.hook.max_retries();
    let mut host = String::from("?");
    for n in 0..=retries {
        if n > 0 {
            tokio::time::sleep(d.hook.retry_delay(n)).await;
        }
        if let Some(m) = metrics {
            m.webhook_attempts.with_label_values(&[&d.webhook]).inc();
        }
        let result = match resolve(&d).await {
            Ok((url, key)) => {
                host = host_of(&url);
                attempt(&d, &url, key.as_deref()).await
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => {
                tracing::info!(webhook = %d.webhook, host = %host, delivery = %d.id,
                    attempt = n + 1, "Webhook delivered.");
                if let Some(m) = metrics {
                    m.webhook_deliveries
                        .with_label_values(&[&d.webhook, "success"])
                        .inc();
                }
                return;
            }
            Err(e) => tracing::warn!(webhook = %d.webhook, host = %host, delivery = %d.id,
                attempt = n + 1, retries_left = retries - n, error = %e,
                "Webhook delivery failed."),
        }
    }
    tracing::error!(webhook = %d.webhook, host = %host, delivery = %d.id,
        "Webhook delivery given up after its retries.");
    if let Some(m) = metrics {
        m.webhook_deliveries
            .with_label_values(&[&d.webhook, "failure"])
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::events::{JobKind, JobResult};

    fn event() -> JobEnded {
        JobEnded {
            kind: JobKind::Backup,
            detail: "full".into(),
            routine: Some("daily".into()),
            job_id: None,
            result: JobResult::Failure,
            records: 10,
            bytes: 2048,
            duration: std::time::Duration::from_millis(1500),
            error: Some("cluster c: refused".into()),
            finished_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn the_signature_is_rfc_4231_hmac_sha256() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn bodies_carry_the_event() {
        let b = json_body("abc", &event());
        assert_eq!(b["routine"], "daily");
        assert_eq!(b["kind"], "backup");
        assert_eq!(b["type"], "full");
        assert_eq!(b["outcome"], "failure");
        assert_eq!(b["records"], 10);
        assert_eq!(b["bytes"], 2048);
        assert_eq!(b["duration-ms"], 1500);
        assert_eq!(b["error"], "cluster c: refused");
        let s = slack_body(&event());
        let text = s["text"].as_str().unwrap();
        assert!(text.starts_with(":x: full backup of routine *daily*: failure"));
        assert!(text.ends_with("(cluster c: refused)"), "{text}");
        assert_eq!(s.as_object().unwrap().len(), 1, "Slack gets text only");
    }

    #[test]
    fn logs_show_only_the_host() {
        assert_eq!(
            host_of("https://hooks.slack.com/services/T0/B0/SECRET"),
            "hooks.slack.com"
        );
    }

    #[tokio::test]
    async fn a_full_queue_drops_the_oldest_and_counts_it() {
        let yaml = r#"
notifications:
  queue-size: 2
  webhooks:
    w: {url: "http://127.0.0.1:9/hook"}
"#;
        let cfg: Config = crate::config::parse(yaml, crate::config::Format::Yaml).unwrap();
        let store = Arc::new(ConfigStore::in_memory(cfg));
        let metrics = Arc::new(Metrics::new());
        // Not started: nothing takes deliveries out of the queue.
        let n = Notifier {
            inner: Arc::new(Inner {
                store,
                metrics: Some(metrics.clone()),
                queue: Mutex::new(VecDeque::new()),
                wake: tokio::sync::Notify::new(),
            }),
        };
        for records in 1..=3 {
            n.enqueue(&JobEnded { records, ..event() });
        }
        let kept: Vec<u64> = n
            .lock()
            .iter()
            .map(|d| {
                let body: serde_json::Value = serde_json::from_slice(&d.body).unwrap();
                body["records"].as_u64().unwrap()
            })
            .collect();
        assert_eq!(kept, [2, 3], "the oldest went first");
        let dropped = metrics
            .webhook_deliveries
            .with_label_values(&["w", "dropped"])
            .get();
        assert_eq!(dropped, 1);
        assert_eq!(metrics.webhook_queue_length.get(), 2);
    }

    #[test]
    fn webhook_settings_are_checked_naming_each_field_and_round_trip() {
        let yaml = r#"
notifications:
  queue-size: 0
  webhooks:
    w:
      url: "ftp://hooks.example/secret-path"
      secret: ""
      routines: [nope]
      kinds: [backup, copy]
      outcomes: [fail]
      format: xml
      timeout-seconds: 0
      retry-policy: {multiplier: 0.5}
    s: {url: "secrets:slack:url"}
"#;
        let cfg: Config = crate::config::parse(yaml, crate::config::Format::Yaml).unwrap();
        let errors = crate::config::validate(&cfg).unwrap_err();
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        let w = "notifications.webhooks.w";
        for p in [
            "notifications.queue-size".to_string(),
            format!("{w}.url"),
            format!("{w}.secret"),
            format!("{w}.routines[0]"),
            format!("{w}.kinds[1]"),
            format!("{w}.outcomes[0]"),
            format!("{w}.format"),
            format!("{w}.timeout-seconds"),
            format!("{w}.retry-policy.multiplier"),
            "notifications.webhooks.s.secret-agent-name".to_string(),
        ] {
            assert!(paths.contains(&p.as_str()), "{p} not in {paths:?}");
        }
        // The URL is a secret: not in any error, and redacted when shown.
        assert!(!errors.iter().any(|e| e.message.contains("secret-path")));
        let shown = serde_json::to_string(&cfg.redacted()).unwrap();
        assert!(!shown.contains("secret-path"), "{shown}");
        assert!(
            shown.contains("secrets:slack:url"),
            "references are not secret"
        );
        // Unknown keys are refused with their place; what was written is what is shown.
        let bad = "notifications: {webhooks: {w: {url: \"http://h/x\", colour: red}}}";
        let e = crate::config::parse::<Config>(bad, crate::config::Format::Yaml).unwrap_err();
        assert!(e.to_string().contains("colour"), "{e}");
        let minimal = "notifications: {queue-size: 5}";
        let cfg: Config = crate::config::parse(minimal, crate::config::Format::Yaml).unwrap();
        assert_eq!(
            serde_json::to_value(&cfg).unwrap(),
            serde_json::json!({"notifications": {"queue-size": 5}})
        );
    }

    #[test]
    fn webhooks_select_by_routine_kind_and_outcome() {
        let hook = WebhookConfig {
            routines: Some(vec!["daily".into()]),
            outcomes: Some(vec!["failure".into(), "SKIP".into()]),
            ..Default::default()
        };
        assert!(hook.wants("backup", "failure", Some("daily")));
        assert!(hook.wants("verify", "skip", Some("daily")));
        assert!(!hook.wants("backup", "success", Some("daily")));
        assert!(!hook.wants("backup", "failure", Some("hourly")));
        assert!(!hook.wants("restore", "failure", None));
        let all = WebhookConfig::default();
        assert!(all.wants("restore", "success", None));
        assert_eq!(all.retry_delay(1).as_millis(), 1000);
        assert_eq!(all.retry_delay(3).as_millis(), 4000);
        assert_eq!(all.retry_delay(30).as_secs(), 300, "capped");
    }
}
