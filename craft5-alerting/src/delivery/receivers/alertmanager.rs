//! The Alertmanager webhook payload (version 4), so anything written for
//! Alertmanager's `webhook_configs` — a chat bridge, a ticketing hook, an
//! archive — takes our notifications unchanged:
//!
//! ```json
//! {"version":"4","groupKey":"{}:{alertname=\"HighCpu\"}","truncatedAlerts":0,
//!  "status":"firing","receiver":"team","groupLabels":{…},"commonLabels":{…},
//!  "commonAnnotations":{…},"externalURL":"http://…",
//!  "alerts":[{"status":"firing","labels":{…},"annotations":{…},
//!    "startsAt":"2023-11-14T22:13:20.000Z","endsAt":"0001-01-01T00:00:00Z",
//!    "generatorURL":"http://…/api/v1/rules","fingerprint":"…"}]}
//! ```
//!
//! A firing alert's `endsAt` is Alertmanager's zero time, as it sends it.
//! `max_alerts` truncates the list and says how many were dropped. On top
//! of Alertmanager's request, an `Idempotency-Key` header carries the
//! notification's id. Docs chapter 5, "Receivers".

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};

use super::http::HttpClient;
use super::webhook::rfc3339;
use super::{
    DeliveryError, Globals, Integration, Notification, NotifiedAlert, check_url, send_resolved_or,
};

/// The `endsAt` of a firing alert, as Alertmanager writes Go's zero time.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// `webhook_configs: [{ url, send_resolved, max_alerts }]`, Alertmanager's
/// keys.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerWebhookConfig {
    /// Where to POST.
    pub url: Option<String>,
    /// Send resolved alerts (default true, as in Alertmanager).
    pub send_resolved: Option<bool>,
    /// Most alerts per message; 0 means all.
    #[serde(default)]
    pub max_alerts: usize,
}

impl AlertmanagerWebhookConfig {
    /// The integration.
    ///
    /// # Errors
    /// Every problem with the config.
    pub fn build(&self, globals: &Globals) -> Result<Arc<dyn Integration>, Vec<String>> {
        let mut problems = Vec::new();
        let url = check_url("url", self.url.as_deref(), &mut problems);
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Arc::new(AlertmanagerWebhook {
            url,
            send_resolved: send_resolved_or(self.send_resolved, true),
            max_alerts: self.max_alerts,
            client: HttpClient::new(globals.http_timeout),
        }))
    }
}

/// POSTs Alertmanager's webhook payload.
#[derive(Debug)]
pub struct AlertmanagerWebhook {
    url: String,
    send_resolved: bool,
    max_alerts: usize,
    client: HttpClient,
}

fn alert_json(alert: &NotifiedAlert, external_url: &str) -> Value {
    json!({
        "status": alert.status.as_str(),
        "labels": alert.labels,
        "annotations": alert.annotations,
        "startsAt": rfc3339(alert.starts_at_ms),
        "endsAt": alert.ends_at_ms.map_or_else(|| ZERO_TIME.to_string(), rfc3339),
        "generatorURL": format!("{}/api/v1/rules", external_url.trim_end_matches('/')),
        "fingerprint": alert.fingerprint,
    })
}

/// The payload for one notification, keeping at most `max_alerts` alerts
/// (0: all).
pub fn payload(notification: &Notification, max_alerts: usize) -> Value {
    let total = notification.alerts.len();
    let kept = if max_alerts == 0 {
        total
    } else {
        total.min(max_alerts)
    };
    json!({
        "version": "4",
        "groupKey": notification.group_key,
        "truncatedAlerts": total - kept,
        "status": notification.status().as_str(),
        "receiver": notification.receiver,
        "groupLabels": notification.group_labels,
        "commonLabels": notification.common_labels(),
        "commonAnnotations": notification.common_annotations(),
        "externalURL": notification.external_url,
        "alerts": notification.alerts[..kept]
            .iter()
            .map(|a| alert_json(a, &notification.external_url))
            .collect::<Vec<_>>(),
    })
}

impl Integration for AlertmanagerWebhook {
    fn kind(&self) -> &'static str {
        "webhook"
    }

    fn send_resolved(&self) -> bool {
        self.send_resolved
    }

    fn send(&self, notification: &Notification) -> Result<(), DeliveryError> {
        self.client.post_json(
            &self.url,
            &payload(notification, self.max_alerts),
            &[("Idempotency-Key", notification.id.as_str())],
        )
    }
}
