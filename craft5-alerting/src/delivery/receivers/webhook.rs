//! The generic JSON webhook: one POST per notification, in this project's
//! own shape — everything a receiver might show, with times both as ms
//! since the epoch and as RFC 3339, and the notification's id in the body
//! *and* in an `Idempotency-Key` header, so a receiver that stores what it
//! got can drop a retry it already has.
//!
//! ```json
//! {"id":"…","receiver":"team","status":"firing","groupKey":"…",
//!  "groupLabels":{…},"title":"[FIRING:1] HighCpu","externalURL":"…",
//!  "createdAt":"…","createdAtMs":…,
//!  "alerts":[{"status":"firing","name":"HighCpu","rule":"node/HighCpu",
//!    "labels":{…},"annotations":{…},"fingerprint":"…","startsAt":"…",
//!    "startsAtMs":…,"endsAt":null,"endsAtMs":null,"value":92.5,
//!    "metric":"cpu_usage","condition":"…"}]}
//! ```
//!
//! Extra headers (an API token) come from the config. Docs chapter 5,
//! "Receivers".

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};

use super::http::HttpClient;
use super::{
    DeliveryError, Globals, Integration, Notification, NotifiedAlert, check_url, send_resolved_or,
};

/// `generic_webhook_configs: [{ url, headers, send_resolved }]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Where to POST.
    pub url: Option<String>,
    /// Extra request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Send resolved alerts (default true).
    pub send_resolved: Option<bool>,
}

impl WebhookConfig {
    /// The integration.
    ///
    /// # Errors
    /// Every problem with the config.
    pub fn build(&self, globals: &Globals) -> Result<Arc<dyn Integration>, Vec<String>> {
        let mut problems = Vec::new();
        let url = check_url("url", self.url.as_deref(), &mut problems);
        for name in self.headers.keys() {
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                problems.push(format!("header name {name:?} is not valid"));
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Arc::new(WebhookIntegration {
            url,
            headers: self.headers.clone(),
            send_resolved: send_resolved_or(self.send_resolved, true),
            client: HttpClient::new(globals.http_timeout),
        }))
    }
}

/// POSTs the generic JSON body.
#[derive(Debug)]
pub struct WebhookIntegration {
    url: String,
    headers: BTreeMap<String, String>,
    send_resolved: bool,
    client: HttpClient,
}

/// RFC 3339 in UTC with milliseconds, the form every payload uses.
pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_else(|| "1970-01-01T00:00:00.000Z".to_string())
}

fn alert_json(alert: &NotifiedAlert) -> Value {
    json!({
        "status": alert.status.as_str(),
        "name": alert.alert_name,
        "rule": alert.rule,
        "labels": alert.labels,
        "annotations": alert.annotations,
        "fingerprint": alert.fingerprint,
        "startsAt": rfc3339(alert.starts_at_ms),
        "startsAtMs": alert.starts_at_ms,
        "endsAt": alert.ends_at_ms.map(rfc3339),
        "endsAtMs": alert.ends_at_ms,
        "value": alert.value,
        "metric": alert.metric,
        "condition": alert.condition,
    })
}

/// The body for one notification.
pub fn payload(notification: &Notification) -> Value {
    json!({
        "id": notification.id,
        "receiver": notification.receiver,
        "status": notification.status().as_str(),
        "groupKey": notification.group_key,
        "groupLabels": notification.group_labels,
        "title": notification.title(),
        "externalURL": notification.external_url,
        "createdAt": rfc3339(notification.created_at_ms),
        "createdAtMs": notification.created_at_ms,
        "alerts": notification.alerts.iter().map(alert_json).collect::<Vec<_>>(),
    })
}

impl Integration for WebhookIntegration {
    fn kind(&self) -> &'static str {
        "generic_webhook"
    }

    fn send_resolved(&self) -> bool {
        self.send_resolved
    }

    fn send(&self, notification: &Notification) -> Result<(), DeliveryError> {
        let mut headers: Vec<(&str, &str)> = vec![("Idempotency-Key", notification.id.as_str())];
        headers.extend(self.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        self.client
            .post_json(&self.url, &payload(notification), &headers)
    }
}
