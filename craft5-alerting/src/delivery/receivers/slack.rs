//! Slack incoming webhooks: `{"text": …}` with Slack's `mrkdwn`, plus the
//! channel and username overrides when configured.
//!
//! The text is a title line (`*[FIRING:2] HighCpu*`) and one line per
//! alert with its summary (or its labels when it has none), resolved
//! alerts struck through, capped at Slack's practical message size. Blocks
//! would be prettier; plain text works in every workspace, in mobile
//! notifications and in the threads of bridges that only read `text`.
//! Slack answers 200 `ok` or an error string; 4xx answers (`invalid_token`,
//! `channel_not_found`) will not get better with retries. Docs chapter 5,
//! "Receivers".

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};

use super::http::HttpClient;
use super::{
    DeliveryError, Globals, Integration, Notification, Status, check_url, send_resolved_or,
};

/// Slack truncates long messages; stay well under its limit.
pub const MAX_TEXT_CHARS: usize = 3_000;

/// `slack_configs: [{ api_url, channel, username, send_resolved }]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    /// The incoming-webhook URL; default `global.slack_api_url`.
    pub api_url: Option<String>,
    /// Override the webhook's channel (`#ops`).
    pub channel: Option<String>,
    /// Override the webhook's user name.
    pub username: Option<String>,
    /// Send resolved alerts (default false, as in Alertmanager).
    pub send_resolved: Option<bool>,
}

impl SlackConfig {
    /// The integration.
    ///
    /// # Errors
    /// Every problem with the config.
    pub fn build(&self, globals: &Globals) -> Result<Arc<dyn Integration>, Vec<String>> {
        let mut problems = Vec::new();
        let url = self.api_url.as_deref().or(globals.slack_api_url.as_deref());
        let url = check_url("api_url", url, &mut problems);
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Arc::new(SlackIntegration {
            url,
            channel: self.channel.clone(),
            username: self.username.clone(),
            send_resolved: send_resolved_or(self.send_resolved, false),
            client: HttpClient::new(globals.http_timeout),
        }))
    }
}

/// POSTs to a Slack incoming webhook.
#[derive(Debug)]
pub struct SlackIntegration {
    url: String,
    channel: Option<String>,
    username: Option<String>,
    send_resolved: bool,
    client: HttpClient,
}

/// The message text for one notification.
pub fn text(notification: &Notification) -> String {
    let mut text = format!("*{}*", notification.title());
    for alert in &notification.alerts {
        let what = alert
            .annotations
            .get("summary")
            .cloned()
            .unwrap_or_else(|| alert.labels.to_string());
        let line = match alert.status {
            Status::Firing => format!("\n• {what}"),
            Status::Resolved => format!("\n• ~{what}~ (resolved)"),
        };
        if text.chars().count() + line.chars().count() > MAX_TEXT_CHARS {
            text.push_str("\n• …");
            break;
        }
        text.push_str(&line);
    }
    text.push_str(&format!("\n<{}|Open alerts>", notification.external_url));
    text
}

/// The body for one notification.
pub fn payload(
    notification: &Notification,
    channel: Option<&str>,
    username: Option<&str>,
) -> Value {
    let mut body = json!({ "text": text(notification) });
    if let Some(channel) = channel {
        body["channel"] = json!(channel);
    }
    if let Some(username) = username {
        body["username"] = json!(username);
    }
    body
}

impl Integration for SlackIntegration {
    fn kind(&self) -> &'static str {
        "slack"
    }

    fn send_resolved(&self) -> bool {
        self.send_resolved
    }

    fn send(&self, notification: &Notification) -> Result<(), DeliveryError> {
        let body = payload(
            notification,
            self.channel.as_deref(),
            self.username.as_deref(),
        );
        self.client.post_json(&self.url, &body, &[])
    }
}
