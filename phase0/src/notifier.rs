//! phase0's only notifier: print the seed's alert block to stdout.
//!
//! Nothing leaves the machine, nothing is retried, nothing is deduplicated:
//! craft 5 brings webhooks, Slack, PagerDuty, email and an alert state
//! machine. Story: docs chapter 0, "The alerting engine".

use std::io::Write;

use chrono::{Local, TimeZone};
use common::{Alert, Notifier, NotifyError};

/// Prints `🚨 [ALERT] …` blocks.
#[derive(Debug, Default)]
pub struct ConsoleNotifier;

/// The seed's alert block, with the evaluation time in local time.
pub fn format_alert(alert: &Alert) -> String {
    let when = Local
        .timestamp_millis_opt(alert.at_ms)
        .single()
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| format!("{} ms", alert.at_ms));
    format!(
        "\n🚨 [ALERT] {when}\n   Metric:    {}\n   Condition: {}\n   Current:   {:.2} ({} samples)\n",
        alert.rule.metric,
        alert.rule.describe_condition(),
        alert.value,
        alert.sample_count
    )
}

impl Notifier for ConsoleNotifier {
    fn notify(&self, alert: &Alert) -> Result<(), NotifyError> {
        let block = format_alert(alert);
        // One write for the whole block so concurrent log lines cannot split it.
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(block.as_bytes())
            .and_then(|()| stdout.flush())
            .map_err(|e| NotifyError::Delivery {
                channel: "console".into(),
                message: e.to_string(),
            })
    }

    fn name(&self) -> &'static str {
        "console"
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use common::{AlertRule, Condition};

    use super::*;

    #[test]
    fn block_names_metric_condition_value_and_count() {
        let alert = Alert {
            rule: AlertRule::new("cpu_usage", Condition::Above, 80.0, Duration::from_secs(60)),
            value: 92.0,
            sample_count: 10,
            at_ms: 1_764_180_000_000,
        };
        let text = format_alert(&alert);
        assert!(text.contains("🚨 [ALERT] 20"), "{text}");
        assert!(text.contains("Metric:    cpu_usage"), "{text}");
        assert!(text.contains("Condition: avg(60s) > 80"), "{text}");
        assert!(text.contains("Current:   92.00 (10 samples)"), "{text}");
    }
}
