//! The console channel: the seed's `🚨 [ALERT]` block when an alert fires,
//! and — new — one `✅ [RESOLVED]` line when it ends.
//!
//! phase0 prints the block at every check while the condition holds; fed
//! by the state machine, this prints it once per episode, then says when
//! the episode is over and how long it lasted. The block keeps the seed's
//! four lines first (so the chapter 0 walkthrough reads the same) and adds
//! the alert's name and summary when the rule came from a rule file.
//! Docs chapter 5, "Notifications".

use std::io::Write;

use chrono::{Local, TimeZone};
use common::{Alert, Notifier, NotifyError};

use crate::evaluation::state::Transition;
use crate::notification::{AlertEvent, TransitionNotifier};
use crate::rules::SEED_GROUP;

/// Prints alert blocks and resolution lines to stdout.
#[derive(Debug, Default, Clone, Copy)]
pub struct ConsoleNotifier;

pub(crate) fn local_time(ms: i64) -> String {
    Local
        .timestamp_millis_opt(ms)
        .single()
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| format!("{ms} ms"))
}

fn current(value: Option<f64>, sample_count: usize) -> String {
    match value {
        Some(value) => format!("{value:.2} ({sample_count} samples)"),
        None => "no data in the window".to_string(),
    }
}

/// What the console shows of one alert, whoever describes it: an
/// [`AlertEvent`] here, a routed notification's alert in
/// `receivers/console.rs`.
pub(crate) struct ConsoleAlert<'a> {
    /// The transition's time.
    pub at_ms: i64,
    /// When the episode fired.
    pub fired_at_ms: Option<i64>,
    pub metric: &'a str,
    pub series: &'a common::Labels,
    pub condition: &'a str,
    pub value: Option<f64>,
    pub sample_count: usize,
    pub alert_name: &'a str,
    /// The rule group.
    pub group: &'a str,
    pub summary: Option<&'a str>,
}

impl<'a> ConsoleAlert<'a> {
    fn of_event(event: &'a AlertEvent) -> Self {
        ConsoleAlert {
            at_ms: event.at_ms,
            fired_at_ms: event.fired_at_ms,
            metric: &event.metric,
            series: &event.series,
            condition: &event.condition,
            value: event.value,
            sample_count: event.sample_count,
            alert_name: &event.alert_name,
            group: &event.group,
            summary: event.annotation("summary"),
        }
    }

    /// The seed's block, plus the alert's name and summary for rules from
    /// a rule file.
    pub(crate) fn firing_block(&self) -> String {
        let mut block = format!(
            "\n🚨 [ALERT] {}\n   Metric:    {}{}\n   Condition: {}\n   Current:   {}\n",
            local_time(self.at_ms),
            self.metric,
            self.series,
            self.condition,
            current(self.value, self.sample_count),
        );
        if self.group != SEED_GROUP {
            block.push_str(&format!(
                "   Alert:     {} (group {})\n",
                self.alert_name, self.group
            ));
            if let Some(summary) = self.summary {
                block.push_str(&format!("   Summary:   {summary}\n"));
            }
        }
        block
    }

    /// One line: what, when, the value now, how long it fired.
    pub(crate) fn resolved_line(&self) -> String {
        let lasted = self
            .fired_at_ms
            .map(|fired| {
                format!(
                    ", firing for {}",
                    promql::format_duration(self.at_ms.saturating_sub(fired))
                )
            })
            .unwrap_or_default();
        format!(
            "✅ [RESOLVED] {} {}{} {} ({}): now {}{lasted}\n",
            local_time(self.at_ms),
            self.metric,
            self.series,
            self.condition,
            self.alert_name,
            current(self.value, self.sample_count),
        )
    }
}

/// The seed's block for a firing alert, plus the alert's name and summary
/// for rules from a rule file.
pub fn format_firing(event: &AlertEvent) -> String {
    ConsoleAlert::of_event(event).firing_block()
}

/// One line for a resolved alert: what, when, the value now, how long it
/// fired.
pub fn format_resolved(event: &AlertEvent) -> String {
    ConsoleAlert::of_event(event).resolved_line()
}

pub(crate) fn print(text: &str) -> Result<(), NotifyError> {
    // One write for the whole block so concurrent log lines cannot split it.
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| NotifyError::Delivery {
            channel: "console".into(),
            message: e.to_string(),
        })
}

impl TransitionNotifier for ConsoleNotifier {
    fn notify_transition(&self, event: &AlertEvent) -> Result<(), NotifyError> {
        match event.transition {
            Transition::Firing => print(&format_firing(event)),
            Transition::Resolved => print(&format_resolved(event)),
            Transition::Pending | Transition::Cancelled => Ok(()),
        }
    }

    fn name(&self) -> &'static str {
        "console"
    }
}

/// As the seed's notifier: the seed's block, exactly, for each `Alert`.
impl Notifier for ConsoleNotifier {
    fn notify(&self, alert: &Alert) -> Result<(), NotifyError> {
        print(&format!(
            "\n🚨 [ALERT] {}\n   Metric:    {}\n   Condition: {}\n   Current:   {:.2} ({} samples)\n",
            local_time(alert.at_ms),
            alert.rule.metric,
            alert.rule.describe_condition(),
            alert.value,
            alert.sample_count
        ))
    }

    fn name(&self) -> &'static str {
        "console"
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use common::{AlertRule, Condition, Labels};

    use super::*;

    fn event(transition: Transition, group: &str) -> AlertEvent {
        AlertEvent {
            transition,
            rule: format!("{group}/HighCpuUsage"),
            group: group.into(),
            alert_name: "HighCpuUsage".into(),
            metric: "cpu_usage".into(),
            series: Labels::from_pairs([("host", "a")]),
            labels: Labels::from_pairs([("host", "a"), ("alertname", "HighCpuUsage")]),
            annotations: vec![("summary".into(), "CPU hot on a".into())],
            condition: "avg(60s) > 80".into(),
            value: Some(92.0),
            sample_count: 10,
            at_ms: 1_764_180_000_000,
            active_at_ms: Some(1_764_180_000_000 - 90_000),
            fired_at_ms: Some(1_764_180_000_000 - 90_000),
            seed_rule: AlertRule::new("cpu_usage", Condition::Above, 80.0, Duration::from_secs(60)),
        }
    }

    #[test]
    fn firing_block_keeps_the_seed_lines_first() {
        let text = format_firing(&event(Transition::Firing, "node"));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "");
        assert!(lines[1].starts_with("🚨 [ALERT] 20"), "{text}");
        assert_eq!(lines[2], "   Metric:    cpu_usage{host=\"a\"}");
        assert_eq!(lines[3], "   Condition: avg(60s) > 80");
        assert_eq!(lines[4], "   Current:   92.00 (10 samples)");
        assert_eq!(lines[5], "   Alert:     HighCpuUsage (group node)");
        assert_eq!(lines[6], "   Summary:   CPU hot on a");
    }

    #[test]
    fn seed_rules_print_the_seed_block_only() {
        let text = format_firing(&event(Transition::Firing, SEED_GROUP));
        assert_eq!(text.lines().count(), 5, "{text}");
    }

    #[test]
    fn resolved_is_one_line_with_the_duration() {
        let mut resolved = event(Transition::Resolved, "node");
        resolved.value = Some(42.0);
        let text = format_resolved(&resolved);
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.starts_with("✅ [RESOLVED] 20"), "{text}");
        assert!(
            text.ends_with(
                "cpu_usage{host=\"a\"} avg(60s) > 80 (HighCpuUsage): now 42.00 (10 samples), firing for 1m30s\n"
            ),
            "{text}"
        );
        resolved.value = None;
        assert!(format_resolved(&resolved).contains("now no data in the window"));
    }
}
