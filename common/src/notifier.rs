//! Notifiers: where a firing alert goes (the console for phase0; webhooks,
//! Slack, PagerDuty and email in craft 5). Story: docs chapter 0 and 5.

use std::fmt;

use thiserror::Error;

use crate::AlertRule;

/// A rule whose condition held at an evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// The rule that fired.
    pub rule: AlertRule,
    /// The window's average.
    pub value: f64,
    /// How many samples the average was taken over.
    pub sample_count: usize,
    /// When it was evaluated, ms since the epoch.
    pub at_ms: i64,
}

impl fmt::Display for Alert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: current value {:.2} ({} samples)",
            self.rule.metric,
            self.rule.describe_condition(),
            self.value,
            self.sample_count
        )
    }
}

/// Why a notification was not delivered.
#[derive(Debug, Error)]
pub enum NotifyError {
    /// The channel (stdout, HTTP endpoint, SMTP server) refused.
    #[error("notifier {channel} failed: {message}")]
    Delivery {
        /// Which notifier.
        channel: String,
        /// Why.
        message: String,
    },
}

/// Delivers alerts to one channel.
///
/// # Contract
/// `notify` may block on I/O; it must not panic; a failure is returned, not
/// swallowed, so the engine can count and retry it.
pub trait Notifier: Send + Sync {
    /// Delivers one alert.
    ///
    /// # Errors
    /// [`NotifyError::Delivery`] when the channel refuses.
    fn notify(&self, alert: &Alert) -> Result<(), NotifyError>;

    /// A short name for logs.
    fn name(&self) -> &'static str;
}
