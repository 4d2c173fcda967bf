//! The console receiver: the seed's `🚨 [ALERT]` block for each firing
//! alert of a notification and a `✅ [RESOLVED]` line for each resolved
//! one — the seed's format, now once per group flush instead of at every
//! 10 s check. The default receiver when no routing config is given, so
//! `platform` alone still prints what the seed printed. Docs chapter 5,
//! "Receivers".

use std::io::Write;
use std::sync::Arc;

use parking_lot::Mutex;
use serde::Deserialize;

use super::{DeliveryError, Integration, Notification, NotifiedAlert, Status, send_resolved_or};
use crate::console::ConsoleAlert;

/// `console_configs: [{ send_resolved: true }]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    /// Print resolved alerts (default true).
    pub send_resolved: Option<bool>,
}

impl ConsoleConfig {
    /// The integration, printing to stdout.
    pub fn build(&self) -> Arc<dyn Integration> {
        Arc::new(ConsoleIntegration {
            send_resolved: send_resolved_or(self.send_resolved, true),
            capture: None,
        })
    }
}

/// Prints notifications to stdout (or, in tests, into a buffer).
#[derive(Debug)]
pub struct ConsoleIntegration {
    send_resolved: bool,
    capture: Option<Arc<Mutex<String>>>,
}

impl ConsoleIntegration {
    /// Prints to stdout.
    pub fn stdout() -> Self {
        ConsoleIntegration {
            send_resolved: true,
            capture: None,
        }
    }

    /// Appends to `buffer` instead of printing.
    pub fn captured(buffer: Arc<Mutex<String>>) -> Self {
        ConsoleIntegration {
            send_resolved: true,
            capture: Some(buffer),
        }
    }
}

fn console_alert(alert: &NotifiedAlert) -> ConsoleAlert<'_> {
    let group = alert
        .rule
        .split_once('/')
        .map_or(alert.rule.as_str(), |(group, _)| group);
    ConsoleAlert {
        at_ms: alert.ends_at_ms.unwrap_or(alert.starts_at_ms),
        fired_at_ms: Some(alert.starts_at_ms),
        metric: &alert.metric,
        series: &alert.series,
        condition: &alert.condition,
        value: alert.value,
        sample_count: alert.sample_count,
        alert_name: &alert.alert_name,
        group,
        summary: alert.annotations.get("summary").map(String::as_str),
    }
}

/// The text for one notification: a block per firing alert, a line per
/// resolved one.
pub fn format_notification(notification: &Notification) -> String {
    let mut text = String::new();
    for alert in &notification.alerts {
        let view = console_alert(alert);
        match alert.status {
            Status::Firing => text.push_str(&view.firing_block()),
            Status::Resolved => text.push_str(&view.resolved_line()),
        }
    }
    text
}

impl Integration for ConsoleIntegration {
    fn kind(&self) -> &'static str {
        "console"
    }

    fn send_resolved(&self) -> bool {
        self.send_resolved
    }

    fn send(&self, notification: &Notification) -> Result<(), DeliveryError> {
        let text = format_notification(notification);
        match &self.capture {
            Some(buffer) => {
                buffer.lock().push_str(&text);
                Ok(())
            }
            None => {
                let mut stdout = std::io::stdout().lock();
                stdout
                    .write_all(text.as_bytes())
                    .and_then(|()| stdout.flush())
                    .map_err(|e| DeliveryError::Retryable(format!("stdout: {e}")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{alert, notification};
    use super::*;

    #[test]
    fn firing_blocks_then_resolved_lines_in_the_seed_format() {
        let buffer = Arc::new(Mutex::new(String::new()));
        let console = ConsoleIntegration::captured(buffer.clone());
        let n = notification(vec![
            alert("a", Status::Firing),
            alert("b", Status::Resolved),
        ]);
        console.send(&n).unwrap();
        let text = buffer.lock().clone();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "");
        assert!(lines[1].starts_with("🚨 [ALERT] 20"), "{text}");
        assert_eq!(lines[2], "   Metric:    cpu_usage{host=\"a\"}");
        assert_eq!(lines[3], "   Condition: avg_over_time(cpu_usage[1m]) > 80");
        assert_eq!(lines[4], "   Current:   92.50 (6 samples)");
        assert_eq!(lines[5], "   Alert:     HighCpu (group node)");
        assert_eq!(lines[6], "   Summary:   CPU hot on a");
        assert!(lines[7].starts_with("✅ [RESOLVED] 20"), "{text}");
        assert!(
            lines[7].ends_with("(HighCpu): now 92.50 (6 samples), firing for 1m"),
            "{text}"
        );
        assert_eq!(lines.len(), 8);
    }
}
