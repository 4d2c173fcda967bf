//! PagerDuty Events API v2: a `trigger` while any alert of the group
//! fires, a `resolve` when all have ended, both with the same `dedup_key`.
//!
//! ```json
//! {"routing_key":"…","event_action":"trigger","dedup_key":"…",
//!  "payload":{"summary":"[FIRING:1] HighCpu","source":"…","severity":"critical",
//!    "custom_details":{"firing":"…","resolved":"…","num_firing":1,"num_resolved":0}},
//!  "client":"Systems Craft","client_url":"…"}
//! ```
//!
//! The `dedup_key` is stable per receiver and alert group, so PagerDuty
//! itself de-duplicates: a retried trigger, a repeat (`repeat_interval`)
//! or a trigger resent after a crash updates the open incident rather
//! than paging anew, and the resolve closes exactly that incident. This is
//! the one receiver where "at least once" delivery costs no duplicate page.
//! The endpoint is configurable (`url`, or `global.pagerduty_url`) so
//! tests post to a local server. Docs chapter 5, "Receivers".

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};

use super::http::HttpClient;
use super::{
    DeliveryError, Globals, Integration, Notification, Status, check_url, send_resolved_or,
};

/// PagerDuty limits `summary` to 1024 characters.
pub const MAX_SUMMARY_CHARS: usize = 1024;

/// The severities PagerDuty accepts.
pub const SEVERITIES: [&str; 4] = ["critical", "error", "warning", "info"];

/// `pagerduty_configs: [{ routing_key, url, severity, source, send_resolved }]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagerDutyConfig {
    /// The integration key of the PagerDuty service.
    pub routing_key: Option<String>,
    /// The Events API endpoint; default `global.pagerduty_url`.
    pub url: Option<String>,
    /// A fixed severity; by default the alerts' `severity` label when it is
    /// one of PagerDuty's, else `critical`.
    pub severity: Option<String>,
    /// The `source` field; default the external URL.
    pub source: Option<String>,
    /// Send resolves (default true).
    pub send_resolved: Option<bool>,
}

impl PagerDutyConfig {
    /// The integration.
    ///
    /// # Errors
    /// Every problem with the config.
    pub fn build(&self, globals: &Globals) -> Result<Arc<dyn Integration>, Vec<String>> {
        let mut problems = Vec::new();
        let url = check_url(
            "url",
            Some(self.url.as_deref().unwrap_or(&globals.pagerduty_url)),
            &mut problems,
        );
        let routing_key = match self.routing_key.as_deref().map(str::trim) {
            Some(key) if !key.is_empty() => key.to_string(),
            _ => {
                problems.push("missing `routing_key` (the service's integration key)".into());
                String::new()
            }
        };
        if let Some(severity) = &self.severity
            && !SEVERITIES.contains(&severity.as_str())
        {
            problems.push(format!(
                "severity {severity:?} is not one of {}",
                SEVERITIES.join(", ")
            ));
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Arc::new(PagerDutyIntegration {
            url,
            routing_key,
            severity: self.severity.clone(),
            source: self.source.clone(),
            send_resolved: send_resolved_or(self.send_resolved, true),
            client: HttpClient::new(globals.http_timeout),
        }))
    }
}

/// Sends Events API v2 events.
#[derive(Debug)]
pub struct PagerDutyIntegration {
    url: String,
    routing_key: String,
    severity: Option<String>,
    source: Option<String>,
    send_resolved: bool,
    client: HttpClient,
}

fn truncate(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(limit.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

fn severity(notification: &Notification, fixed: Option<&str>) -> String {
    if let Some(fixed) = fixed {
        return fixed.to_string();
    }
    notification
        .common_labels()
        .get("severity")
        .filter(|s| SEVERITIES.contains(s))
        .unwrap_or("critical")
        .to_string()
}

fn describe(notification: &Notification, status: Status) -> String {
    notification
        .alerts
        .iter()
        .filter(|a| a.status == status)
        .map(|a| {
            a.annotations
                .get("summary")
                .cloned()
                .unwrap_or_else(|| a.labels.to_string())
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The event for one notification.
pub fn payload(
    notification: &Notification,
    routing_key: &str,
    fixed_severity: Option<&str>,
    source: Option<&str>,
) -> Value {
    let action = match notification.status() {
        Status::Firing => "trigger",
        Status::Resolved => "resolve",
    };
    let mut event = json!({
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": notification.dedup_key(),
    });
    if action == "trigger" {
        event["payload"] = json!({
            "summary": truncate(&notification.title(), MAX_SUMMARY_CHARS),
            "source": source.unwrap_or(&notification.external_url),
            "severity": severity(notification, fixed_severity),
            "custom_details": {
                "firing": describe(notification, Status::Firing),
                "resolved": describe(notification, Status::Resolved),
                "num_firing": notification.firing().count(),
                "num_resolved": notification.resolved().count(),
            },
        });
        event["client"] = json!("Systems Craft");
        event["client_url"] = json!(notification.external_url);
    }
    event
}

impl Integration for PagerDutyIntegration {
    fn kind(&self) -> &'static str {
        "pagerduty"
    }

    fn send_resolved(&self) -> bool {
        self.send_resolved
    }

    fn send(&self, notification: &Notification) -> Result<(), DeliveryError> {
        let body = payload(
            notification,
            &self.routing_key,
            self.severity.as_deref(),
            self.source.as_deref(),
        );
        self.client.post_json(&self.url, &body, &[])
    }
}
