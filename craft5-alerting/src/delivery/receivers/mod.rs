//! Receivers: where a notification goes. A *receiver* is a name routes
//! point at (`team-db`); it has one or more *integrations*, each a channel
//! with its own wire format — one file per kind:
//!
//! - `console.rs`: the seed's `🚨 [ALERT]` block, and a `✅ [RESOLVED]` line;
//! - `webhook.rs`: a generic JSON webhook (this project's own shape);
//! - `alertmanager.rs`: Alertmanager's webhook payload (version 4), so any
//!   tool that consumes Alertmanager webhooks consumes ours;
//! - `slack.rs`: a Slack incoming webhook (`{"text": …}`);
//! - `pagerduty.rs`: the PagerDuty Events API v2 (trigger/resolve with a
//!   `dedup_key` per alert group);
//! - `email.rs`: plain-text email over SMTP (lettre);
//! - `http.rs`: the small blocking HTTP client the webhooks share.
//!
//! phase0's only channel is stdout, called on the evaluating thread: a slow
//! channel slows alerting and a failed one loses the page. Here an
//! integration only *sends one notification*; when, how often and how many
//! times is the delivery worker's business (`delivery.rs`, from the durable
//! outbox), and grouping is routing's (`routing/`). An integration sorts its
//! failures into retryable (timeouts, 5xx, 429) and permanent (a 400 will
//! never succeed) so the worker neither gives up too early nor retries
//! forever. Docs chapter 5, "Receivers".

pub mod alertmanager;
pub mod console;
pub mod email;
pub mod http;
pub mod pagerduty;
pub mod slack;
pub mod webhook;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use common::Labels;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::evaluation::state::Transition;
use crate::notification::AlertEvent;

/// Firing or resolved, of one alert or of a whole notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The alert fires (a notification: at least one alert fires).
    Firing,
    /// It ended (a notification: every alert in it ended).
    Resolved,
}

impl Status {
    /// `firing` or `resolved`, as every payload spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Firing => "firing",
            Status::Resolved => "resolved",
        }
    }
}

/// One alert as a notification shows it. Serializable: it is written to
/// the outbox before it is sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotifiedAlert {
    /// A stable hash of `labels` (16 hex digits).
    pub fingerprint: String,
    /// Firing or resolved.
    pub status: Status,
    /// The alert name (the `alertname` label).
    pub alert_name: String,
    /// The rule's key, `group/alert`.
    pub rule: String,
    /// The alert's labels (series, rule labels, `alertname`).
    pub labels: Labels,
    /// Rendered annotations.
    pub annotations: BTreeMap<String, String>,
    /// When the episode fired (Alertmanager's `startsAt`).
    pub starts_at_ms: i64,
    /// When it resolved; `None` while firing.
    pub ends_at_ms: Option<i64>,
    /// The metric the rule watches.
    pub metric: String,
    /// The series (empty for a rule over all series).
    pub series: Labels,
    /// The condition in words.
    pub condition: String,
    /// The compared value at the last transition (`None`: no data).
    pub value: Option<f64>,
    /// How many samples it came from.
    pub sample_count: usize,
}

impl NotifiedAlert {
    /// The alert as of a Firing or Resolved event.
    pub fn from_event(event: &AlertEvent) -> Self {
        let status = match event.transition {
            Transition::Resolved => Status::Resolved,
            Transition::Firing | Transition::Pending | Transition::Cancelled => Status::Firing,
        };
        NotifiedAlert {
            fingerprint: crate::fingerprint::labels_fingerprint(&event.labels),
            status,
            alert_name: event.alert_name.clone(),
            rule: event.rule.clone(),
            labels: event.labels.clone(),
            annotations: event.annotations.iter().cloned().collect(),
            starts_at_ms: event
                .fired_at_ms
                .or(event.active_at_ms)
                .unwrap_or(event.at_ms),
            ends_at_ms: (status == Status::Resolved).then_some(event.at_ms),
            metric: event.metric.clone(),
            series: event.series.clone(),
            condition: event.condition.clone(),
            value: event.value,
            sample_count: event.sample_count,
        }
    }

    /// Which episode of which alert this is: a re-fire of the same labels
    /// is a new episode (a new `startsAt`) and pages again.
    pub fn episode(&self) -> (String, i64) {
        (self.fingerprint.clone(), self.starts_at_ms)
    }
}

/// One message for one integration of one receiver: a flush of one alert
/// group. Serializable, written to the outbox before any send.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// Unique and stable across retries and restarts: the idempotency
    /// key webhooks receive as `Idempotency-Key`.
    pub id: String,
    /// The receiver's name.
    pub receiver: String,
    /// Which of the receiver's integrations (index in its config order).
    pub integration: usize,
    /// The integration's kind and index, e.g. `webhook[0]`, for logs and
    /// the history.
    pub integration_name: String,
    /// The alert group (Alertmanager's form: route key `:` group labels).
    pub group_key: String,
    /// The labels the group is grouped by, with their values.
    pub group_labels: Labels,
    /// The alerts, firing first, each group by fingerprint.
    pub alerts: Vec<NotifiedAlert>,
    /// When the notification was made (the flush time).
    pub created_at_ms: i64,
    /// Where people can look at the alerts (`global.external_url`).
    pub external_url: String,
    /// The route's fallback receiver, tried when this one keeps failing.
    #[serde(default)]
    pub fallback_receiver: Option<String>,
    /// Set on a copy sent to a fallback receiver: the original's id.
    #[serde(default)]
    pub fallback_of: Option<String>,
}

impl Notification {
    /// `firing` when any alert fires, else `resolved`.
    pub fn status(&self) -> Status {
        if self.alerts.iter().any(|a| a.status == Status::Firing) {
            Status::Firing
        } else {
            Status::Resolved
        }
    }

    /// The firing alerts.
    pub fn firing(&self) -> impl Iterator<Item = &NotifiedAlert> {
        self.alerts.iter().filter(|a| a.status == Status::Firing)
    }

    /// The resolved alerts.
    pub fn resolved(&self) -> impl Iterator<Item = &NotifiedAlert> {
        self.alerts.iter().filter(|a| a.status == Status::Resolved)
    }

    /// The labels every alert shares (name and value).
    pub fn common_labels(&self) -> Labels {
        let Some(first) = self.alerts.first() else {
            return Labels::empty();
        };
        Labels::from_pairs(first.labels.iter().filter(|(name, value)| {
            self.alerts
                .iter()
                .all(|a| a.labels.get(name) == Some(*value))
        }))
    }

    /// The annotations every alert shares.
    pub fn common_annotations(&self) -> BTreeMap<String, String> {
        let Some(first) = self.alerts.first() else {
            return BTreeMap::new();
        };
        first
            .annotations
            .iter()
            .filter(|(name, value)| {
                self.alerts
                    .iter()
                    .all(|a| a.annotations.get(*name) == Some(*value))
            })
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect()
    }

    /// Stable per receiver and alert group, whatever the notification: the
    /// PagerDuty `dedup_key`, so a retried or repeated trigger updates the
    /// open incident instead of opening another, and the resolve closes it.
    pub fn dedup_key(&self) -> String {
        crate::fingerprint::key_fingerprint(&[&self.receiver, &self.group_key])
    }

    /// The alert names in it, sorted and de-duplicated (for subjects and
    /// summaries).
    pub fn alert_names(&self) -> Vec<&str> {
        let names: BTreeSet<&str> = self.alerts.iter().map(|a| a.alert_name.as_str()).collect();
        names.into_iter().collect()
    }

    /// A one-line title: `[FIRING:2] HighCpu (host="a")`, Alertmanager's
    /// default title shape.
    pub fn title(&self) -> String {
        let count = match self.status() {
            Status::Firing => self.firing().count(),
            Status::Resolved => self.alerts.len(),
        };
        let labels: Vec<String> = self
            .group_labels
            .iter()
            .filter(|(name, _)| *name != "alertname")
            .map(|(name, value)| format!("{name}={value:?}"))
            .collect();
        let mut title = format!(
            "[{}:{count}] {}",
            self.status().as_str().to_uppercase(),
            self.alert_names().join(", ")
        );
        if !labels.is_empty() {
            title.push_str(&format!(" ({})", labels.join(", ")));
        }
        title
    }
}

/// Why one send failed.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum DeliveryError {
    /// Worth trying again: a timeout, a refused connection, a 5xx, a 429.
    #[error("{0}")]
    Retryable(String),
    /// Will fail the same way every time: a 4xx, a bad address.
    #[error("{0} (not retried)")]
    Permanent(String),
}

impl DeliveryError {
    /// True for [`DeliveryError::Permanent`].
    pub fn is_permanent(&self) -> bool {
        matches!(self, DeliveryError::Permanent(_))
    }
}

/// One channel of a receiver.
///
/// # Contract
/// `send` delivers one notification or says why not; it may block on I/O
/// (bounded by the integration's timeout), must not panic, and must not
/// retry on its own — retries are the delivery worker's, from the outbox.
/// Sending the same notification twice is possible (a crash after a send,
/// before its record); integrations pass the notification's id or dedup
/// key on where the channel can use it.
pub trait Integration: Send + Sync {
    /// The kind, as the config spells it (`webhook`, `slack`, …).
    fn kind(&self) -> &'static str;

    /// Whether resolved alerts are sent (a notification with only resolved
    /// alerts is not made for an integration that says no).
    fn send_resolved(&self) -> bool;

    /// Sends one notification.
    ///
    /// # Errors
    /// [`DeliveryError`], sorted into retryable and permanent.
    fn send(&self, notification: &Notification) -> Result<(), DeliveryError>;
}

/// Settings shared by every receiver (the config file's `global:`).
#[derive(Debug, Clone, PartialEq)]
pub struct Globals {
    /// Where notifications link to (`externalURL`).
    pub external_url: String,
    /// Default SMTP `host:port` for email receivers.
    pub smtp_smarthost: Option<String>,
    /// Default sender for email receivers.
    pub smtp_from: Option<String>,
    /// Default Slack webhook URL.
    pub slack_api_url: Option<String>,
    /// The PagerDuty Events API v2 endpoint.
    pub pagerduty_url: String,
    /// How long one HTTP or SMTP send may take.
    pub http_timeout: Duration,
}

/// PagerDuty's public Events API v2 endpoint.
pub const PAGERDUTY_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";

impl Default for Globals {
    fn default() -> Self {
        Globals {
            external_url: "http://localhost:8080".into(),
            smtp_smarthost: None,
            smtp_from: None,
            slack_api_url: None,
            pagerduty_url: PAGERDUTY_EVENTS_URL.into(),
            http_timeout: Duration::from_secs(10),
        }
    }
}

/// A receiver's integrations as the config file writes them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiverConfig {
    /// The name routes use.
    pub name: Option<String>,
    /// The console.
    #[serde(default)]
    pub console_configs: Vec<console::ConsoleConfig>,
    /// Alertmanager's webhook payload (Alertmanager's own key).
    #[serde(default)]
    pub webhook_configs: Vec<alertmanager::AlertmanagerWebhookConfig>,
    /// This project's generic JSON webhook.
    #[serde(default)]
    pub generic_webhook_configs: Vec<webhook::WebhookConfig>,
    /// Slack incoming webhooks.
    #[serde(default)]
    pub slack_configs: Vec<slack::SlackConfig>,
    /// PagerDuty Events API v2.
    #[serde(default)]
    pub pagerduty_configs: Vec<pagerduty::PagerDutyConfig>,
    /// Email over SMTP.
    #[serde(default)]
    pub email_configs: Vec<email::EmailConfig>,
}

/// A built integration and its name within the receiver (`slack[0]`).
#[derive(Clone)]
pub struct NamedIntegration {
    /// `kind[index]`.
    pub name: String,
    /// The channel.
    pub integration: Arc<dyn Integration>,
}

impl ReceiverConfig {
    /// Builds the integrations, reporting every problem as
    /// `(where, what)` — e.g. `("slack_configs[0]", "missing api_url")`.
    pub fn build(&self, globals: &Globals) -> Result<Vec<NamedIntegration>, Vec<(String, String)>> {
        let mut built: Vec<NamedIntegration> = Vec::new();
        let mut problems: Vec<(String, String)> = Vec::new();
        let mut add = |kind: &str,
                       index: usize,
                       result: Result<Arc<dyn Integration>, Vec<String>>| {
            let place = format!("{kind}_configs[{index}]");
            match result {
                Ok(integration) => built.push(NamedIntegration {
                    name: format!("{}[{index}]", integration.kind()),
                    integration,
                }),
                Err(messages) => problems.extend(messages.into_iter().map(|m| (place.clone(), m))),
            }
        };
        for (index, config) in self.console_configs.iter().enumerate() {
            add("console", index, Ok(config.build()));
        }
        for (index, config) in self.webhook_configs.iter().enumerate() {
            add("webhook", index, config.build(globals));
        }
        for (index, config) in self.generic_webhook_configs.iter().enumerate() {
            add("generic_webhook", index, config.build(globals));
        }
        for (index, config) in self.slack_configs.iter().enumerate() {
            add("slack", index, config.build(globals));
        }
        for (index, config) in self.pagerduty_configs.iter().enumerate() {
            add("pagerduty", index, config.build(globals));
        }
        for (index, config) in self.email_configs.iter().enumerate() {
            add("email", index, config.build(globals));
        }
        if problems.is_empty() {
            Ok(built)
        } else {
            Err(problems)
        }
    }
}

/// Every receiver by name, with its integrations.
#[derive(Clone, Default)]
pub struct ReceiverSet {
    receivers: BTreeMap<String, Vec<NamedIntegration>>,
}

impl ReceiverSet {
    /// No receivers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a receiver.
    pub fn insert(&mut self, name: &str, integrations: Vec<NamedIntegration>) {
        self.receivers.insert(name.to_string(), integrations);
    }

    /// Adds a receiver from bare integrations, named `kind[index]`.
    pub fn insert_integrations(&mut self, name: &str, integrations: Vec<Arc<dyn Integration>>) {
        let named = integrations
            .into_iter()
            .enumerate()
            .map(|(index, integration)| NamedIntegration {
                name: format!("{}[{index}]", integration.kind()),
                integration,
            })
            .collect();
        self.insert(name, named);
    }

    /// The integrations of `name`; empty for an unknown name.
    pub fn integrations(&self, name: &str) -> &[NamedIntegration] {
        self.receivers.get(name).map_or(&[], Vec::as_slice)
    }

    /// One integration.
    pub fn integration(&self, name: &str, index: usize) -> Option<&NamedIntegration> {
        self.integrations(name).get(index)
    }

    /// True when a receiver of this name exists.
    pub fn contains(&self, name: &str) -> bool {
        self.receivers.contains_key(name)
    }

    /// The names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.receivers.keys().map(String::as_str)
    }
}

/// Reads an optional `send_resolved`, with the integration's default.
pub(crate) fn send_resolved_or(value: Option<bool>, default: bool) -> bool {
    value.unwrap_or(default)
}

/// Checks an http(s) URL's shape (the send finds out the rest).
pub(crate) fn check_url(field: &str, url: Option<&str>, problems: &mut Vec<String>) -> String {
    match url.map(str::trim) {
        None | Some("") => {
            problems.push(format!("missing `{field}`"));
            String::new()
        }
        Some(url) if url.starts_with("http://") || url.starts_with("https://") => url.to_string(),
        Some(url) => {
            problems.push(format!(
                "`{field}` {url:?} is not an http:// or https:// URL"
            ));
            String::new()
        }
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! A notification to send in receiver tests.

    use super::*;

    pub fn alert(host: &str, status: Status) -> NotifiedAlert {
        let labels = Labels::from_pairs([
            ("alertname", "HighCpu"),
            ("host", host),
            ("severity", "page"),
        ]);
        NotifiedAlert {
            fingerprint: crate::fingerprint::labels_fingerprint(&labels),
            status,
            alert_name: "HighCpu".into(),
            rule: "node/HighCpu".into(),
            labels,
            annotations: BTreeMap::from([
                ("summary".to_string(), format!("CPU hot on {host}")),
                ("runbook".to_string(), "https://runbooks/cpu".to_string()),
            ]),
            starts_at_ms: 1_700_000_000_000,
            ends_at_ms: (status == Status::Resolved).then_some(1_700_000_060_000),
            metric: "cpu_usage".into(),
            series: Labels::from_pairs([("host", host)]),
            condition: "avg_over_time(cpu_usage[1m]) > 80".into(),
            value: Some(92.5),
            sample_count: 6,
        }
    }

    pub fn notification(alerts: Vec<NotifiedAlert>) -> Notification {
        Notification {
            id: "0123456789abcdef".into(),
            receiver: "team".into(),
            integration: 0,
            integration_name: "webhook[0]".into(),
            group_key: "{}:{alertname=\"HighCpu\"}".into(),
            group_labels: Labels::from_pairs([("alertname", "HighCpu")]),
            alerts,
            created_at_ms: 1_700_000_030_000,
            external_url: "http://monitor.example:8080".into(),
            fallback_receiver: None,
            fallback_of: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    #[test]
    fn common_labels_titles_and_status() {
        let n = notification(vec![
            alert("a", Status::Firing),
            alert("b", Status::Resolved),
        ]);
        assert_eq!(n.status(), Status::Firing);
        assert_eq!(
            n.common_labels(),
            Labels::from_pairs([("alertname", "HighCpu"), ("severity", "page")])
        );
        assert_eq!(
            n.common_annotations().keys().collect::<Vec<_>>(),
            vec!["runbook"]
        );
        assert_eq!(n.title(), "[FIRING:1] HighCpu");
        let resolved = notification(vec![alert("b", Status::Resolved)]);
        assert_eq!(resolved.status(), Status::Resolved);
        assert_eq!(resolved.title(), "[RESOLVED:1] HighCpu");
        assert_eq!(n.dedup_key(), resolved.dedup_key(), "one key per group");
    }
}
