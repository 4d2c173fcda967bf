//! `AlertEvent`: what the engine says about one transition of one alert,
//! and `TransitionNotifier`, the channels that can hear all of it.
//!
//! The seed's `common::Notifier` receives an `Alert` — a rule, a value, a
//! sample count — and nothing says whether it started or ended: the seed
//! only ever announces "firing, again". A state machine has more to say:
//! which alert (name and labels), its annotations, *resolved*. Channels
//! that understand that implement [`TransitionNotifier`]; the seed's
//! notifiers still plug in and receive firing transitions as the `Alert`
//! they know, so phase0's console notifier works unchanged. Routing,
//! grouping, escalation and the receivers consume this same event. Docs
//! chapter 5, "The state machine".

use common::{Alert, AlertRule, Condition, Labels, NotifyError};

use crate::evaluation::state::Transition;
use crate::rules::{Comparison, StreamingCondition};

/// One transition of one alert, with everything a receiver shows.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertEvent {
    /// What happened.
    pub transition: Transition,
    /// The rule's key, `group/alert`.
    pub rule: String,
    /// The group.
    pub group: String,
    /// The alert name.
    pub alert_name: String,
    /// The metric the rule watches.
    pub metric: String,
    /// The series the alert is about (empty for a rule over all series).
    pub series: Labels,
    /// The alert's labels: the series' labels, the rule's labels (which
    /// win on a clash) and `alertname`.
    pub labels: Labels,
    /// The rendered annotations, in name order.
    pub annotations: Vec<(String, String)>,
    /// The condition in words (`avg(60s) > 80`, or the expression).
    pub condition: String,
    /// The compared value at the transition; `None` when the window was
    /// empty.
    pub value: Option<f64>,
    /// How many samples the value came from.
    pub sample_count: usize,
    /// When the transition happened (ms since the epoch).
    pub at_ms: i64,
    /// When the episode's condition started holding.
    pub active_at_ms: Option<i64>,
    /// When the episode fired.
    pub fired_at_ms: Option<i64>,
    /// The rule as the seed's type says it, for the seed's notifiers.
    pub seed_rule: AlertRule,
}

impl AlertEvent {
    /// The seed's `Alert` for this event.
    pub fn to_seed_alert(&self) -> Alert {
        Alert {
            rule: self.seed_rule.clone(),
            value: self.value.unwrap_or(f64::NAN),
            sample_count: self.sample_count,
            at_ms: self.at_ms,
        }
    }

    /// The value of annotation `name`, if the rule has it.
    pub fn annotation(&self, name: &str) -> Option<&str> {
        self.annotations
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A rule in the seed's type, exact when the seed can say it, otherwise
/// as close as it gets: `>`, `>=`, `==`, `!=` read as "above", `<`, `<=` as
/// "below", the window as the range. Only the seed's notifiers see the
/// approximation; [`AlertEvent::condition`] has the exact text.
pub fn approximate_seed_rule(condition: &StreamingCondition) -> AlertRule {
    let seed_condition = match condition.comparison {
        Comparison::Less | Comparison::LessOrEqual => Condition::Below,
        Comparison::Greater
        | Comparison::GreaterOrEqual
        | Comparison::Equal
        | Comparison::NotEqual => Condition::Above,
    };
    AlertRule::new(
        condition.metric.clone(),
        seed_condition,
        condition.threshold,
        std::time::Duration::from_millis(u64::try_from(condition.range_ms).unwrap_or(0)),
    )
}

/// A channel that is told about firing *and* resolved transitions.
///
/// # Contract
/// As `common::Notifier`: may block on I/O, must not panic, returns a
/// failure rather than swallowing it so the engine can count it.
pub trait TransitionNotifier: Send + Sync {
    /// Delivers one transition ([`Transition::Firing`] or
    /// [`Transition::Resolved`]).
    ///
    /// # Errors
    /// [`NotifyError::Delivery`] when the channel refuses.
    fn notify_transition(&self, event: &AlertEvent) -> Result<(), NotifyError>;

    /// A short name for logs.
    fn name(&self) -> &'static str;
}
