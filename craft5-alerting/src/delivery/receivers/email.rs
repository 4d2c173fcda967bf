//! Email over SMTP (lettre): one plain-text message per notification.
//!
//! The subject is the notification's title (`[FIRING:2] HighCpu`); the
//! body lists each alert with its summary, labels, start (and end) and
//! value, and links to the alerts. The `Message-ID` is derived from the
//! notification's id, so a message re-sent after a crash carries the same
//! id and mail clients that thread or de-duplicate by it show it once;
//! the `Date` is the notification's creation time, not the retry's.
//!
//! `smarthost` is `host:port`. `require_tls` (default true, as in
//! Alertmanager) upgrades with STARTTLS and refuses a server that cannot;
//! `require_tls: false` speaks plain SMTP (a local relay, the test server).
//! SMTP's own codes sort failures: 5xx is permanent (a bad address), the
//! rest is retried. Docs chapter 5, "Receivers".

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{Message, SmtpTransport, Transport};
use serde::Deserialize;

use super::webhook::rfc3339;
use super::{DeliveryError, Globals, Integration, Notification, Status, send_resolved_or};

/// `email_configs: [{ to, from, smarthost, require_tls, auth_username,
/// auth_password, send_resolved }]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// Recipients, comma-separated.
    pub to: Option<String>,
    /// The sender; default `global.smtp_from`.
    pub from: Option<String>,
    /// `host:port`; default `global.smtp_smarthost`.
    pub smarthost: Option<String>,
    /// STARTTLS required (default true).
    pub require_tls: Option<bool>,
    /// SMTP AUTH user.
    pub auth_username: Option<String>,
    /// SMTP AUTH password.
    pub auth_password: Option<String>,
    /// Send resolved alerts (default false, as in Alertmanager).
    pub send_resolved: Option<bool>,
}

impl EmailConfig {
    /// The integration.
    ///
    /// # Errors
    /// Every problem with the config.
    pub fn build(&self, globals: &Globals) -> Result<Arc<dyn Integration>, Vec<String>> {
        let mut problems = Vec::new();
        let to: Vec<Mailbox> = match self.to.as_deref().map(str::trim) {
            None | Some("") => {
                problems.push("missing `to`".into());
                Vec::new()
            }
            Some(list) => list
                .split(',')
                .filter_map(|address| match address.trim().parse::<Mailbox>() {
                    Ok(mailbox) => Some(mailbox),
                    Err(e) => {
                        problems.push(format!("`to` address {:?}: {e}", address.trim()));
                        None
                    }
                })
                .collect(),
        };
        let from = match self.from.as_deref().or(globals.smtp_from.as_deref()) {
            None => {
                problems.push("missing `from` (or `global.smtp_from`)".into());
                None
            }
            Some(from) => match from.trim().parse::<Mailbox>() {
                Ok(mailbox) => Some(mailbox),
                Err(e) => {
                    problems.push(format!("`from` address {from:?}: {e}"));
                    None
                }
            },
        };
        let smarthost = self
            .smarthost
            .as_deref()
            .or(globals.smtp_smarthost.as_deref());
        let server = match smarthost.map(str::trim) {
            None | Some("") => {
                problems.push(
                    "missing `smarthost` (or `global.smtp_smarthost`), e.g. mail.example.com:587"
                        .into(),
                );
                None
            }
            Some(text) => match text.rsplit_once(':').map(|(h, p)| (h, p.parse::<u16>())) {
                Some((host, Ok(port))) if !host.is_empty() => Some((host.to_string(), port)),
                _ => {
                    problems.push(format!("`smarthost` {text:?} is not host:port"));
                    None
                }
            },
        };
        let credentials = match (&self.auth_username, &self.auth_password) {
            (Some(user), Some(password)) => Some(Credentials::new(user.clone(), password.clone())),
            (None, None) => None,
            _ => {
                problems.push("`auth_username` and `auth_password` go together".into());
                None
            }
        };
        let (Some(from), Some((host, port))) = (from, server) else {
            return Err(problems);
        };
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Arc::new(EmailIntegration {
            to,
            from,
            host,
            port,
            require_tls: self.require_tls.unwrap_or(true),
            credentials,
            timeout: globals.http_timeout,
            send_resolved: send_resolved_or(self.send_resolved, false),
        }))
    }
}

/// Sends plain-text email.
#[derive(Debug)]
pub struct EmailIntegration {
    to: Vec<Mailbox>,
    from: Mailbox,
    host: String,
    port: u16,
    require_tls: bool,
    credentials: Option<Credentials>,
    timeout: Duration,
    send_resolved: bool,
}

/// The plain-text body for one notification.
pub fn body(notification: &Notification) -> String {
    let mut text = format!("{}\n", notification.title());
    for (heading, status) in [("Firing", Status::Firing), ("Resolved", Status::Resolved)] {
        let alerts: Vec<_> = notification
            .alerts
            .iter()
            .filter(|a| a.status == status)
            .collect();
        if alerts.is_empty() {
            continue;
        }
        text.push_str(&format!("\n{heading} ({}):\n", alerts.len()));
        for alert in alerts {
            text.push_str(&format!("\n- {} {}\n", alert.alert_name, alert.labels));
            if let Some(summary) = alert.annotations.get("summary") {
                text.push_str(&format!("  Summary: {summary}\n"));
            }
            text.push_str(&format!("  Condition: {}\n", alert.condition));
            if let Some(value) = alert.value {
                text.push_str(&format!("  Value: {value}\n"));
            }
            text.push_str(&format!("  Started: {}\n", rfc3339(alert.starts_at_ms)));
            if let Some(ends) = alert.ends_at_ms {
                text.push_str(&format!("  Ended: {}\n", rfc3339(ends)));
            }
        }
    }
    text.push_str(&format!("\nAlerts: {}\n", notification.external_url));
    text
}

impl EmailIntegration {
    fn message(&self, notification: &Notification) -> Result<Message, DeliveryError> {
        let millis = u64::try_from(notification.created_at_ms).unwrap_or(0);
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(notification.title())
            .message_id(Some(format!(
                "<{}@systems-craft.alerting>",
                notification.id
            )))
            .date(UNIX_EPOCH + Duration::from_millis(millis))
            .header(ContentType::TEXT_PLAIN);
        for to in &self.to {
            builder = builder.to(to.clone());
        }
        builder
            .body(body(notification))
            .map_err(|e| DeliveryError::Permanent(format!("cannot build the message: {e}")))
    }

    fn transport(&self) -> Result<SmtpTransport, DeliveryError> {
        let builder = if self.require_tls {
            SmtpTransport::starttls_relay(&self.host)
                .map_err(|e| DeliveryError::Permanent(format!("smtp {}: {e}", self.host)))?
        } else {
            SmtpTransport::builder_dangerous(self.host.clone())
        };
        let mut builder = builder.port(self.port).timeout(Some(self.timeout));
        if let Some(credentials) = &self.credentials {
            builder = builder.credentials(credentials.clone());
        }
        Ok(builder.build())
    }
}

impl Integration for EmailIntegration {
    fn kind(&self) -> &'static str {
        "email"
    }

    fn send_resolved(&self) -> bool {
        self.send_resolved
    }

    fn send(&self, notification: &Notification) -> Result<(), DeliveryError> {
        let message = self.message(notification)?;
        let transport = self.transport()?;
        transport.send(&message).map(|_| ()).map_err(|e| {
            let text = format!("smtp {}:{}: {e}", self.host, self.port);
            if e.is_permanent() {
                DeliveryError::Permanent(text)
            } else {
                DeliveryError::Retryable(text)
            }
        })
    }
}
