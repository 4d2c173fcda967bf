//! Slot 5, alerting: evaluates rules against the query slot and hands firing
//! alerts to notifiers.
//!
//! phase0 wakes every 10 s and re-queries every window (an alert can be
//! 10 s late and every rule costs a full scan); craft 5 evaluates on ingest
//! through [`AlertEngine::observe`] and adds a state machine, dedup and
//! routing. Story: docs chapter 0 and chapter 5.

use std::time::Duration;

use thiserror::Error;

use crate::{Alert, AlertRule, Metric, QueryError};

/// Why an evaluation failed.
#[derive(Debug, Error)]
pub enum AlertError {
    /// The query slot could not answer a rule's window.
    #[error("rule {rule}: query failed: {source}")]
    Query {
        /// The rule, as text.
        rule: String,
        /// Why.
        source: QueryError,
    },
}

/// The outcome of one evaluation: the alerts that fired and the rules that
/// could not be evaluated. One failing rule never hides another's alert.
#[derive(Debug, Default)]
pub struct Evaluation {
    /// Alerts whose condition held, in rule order.
    pub fired: Vec<Alert>,
    /// Rules whose window could not be read.
    pub errors: Vec<AlertError>,
}

/// A rule evaluator.
///
/// # Contract
/// - [`evaluate`](Self::evaluate) looks at each rule's window
///   `[now_ms - window, now_ms]`, both ends inclusive, averaging every sample
///   of the rule's metric (all series) in it. A window with no sample never
///   fires. The condition is strict (`>` fires above, not at, the threshold).
/// - It returns the alerts whose condition holds at `now_ms` and notifies
///   them per the engine's policy (phase0: every evaluation, no dedup). A
///   rule whose query fails is reported in [`Evaluation::errors`] and the
///   other rules are still evaluated and notified. Notifier failures are
///   logged and counted ([`notify_failures`](Self::notify_failures)), not
///   returned: one bad channel must not stop the others.
/// - The pipeline calls `evaluate` every [`interval`](Self::interval) and
///   [`observe`](Self::observe) after each batch is stored.
/// - An engine with an HTTP API of its own (craft 5's rules, alerts,
///   silences) contributes it as a [`RouteSet`](crate::http::RouteSet)
///   beside the engine; the trait carries no HTTP.
pub trait AlertEngine: Send + Sync {
    /// The rules, for the startup log and the API.
    fn rules(&self) -> Vec<AlertRule>;

    /// How often the pipeline calls [`evaluate`](Self::evaluate).
    fn interval(&self) -> Duration;

    /// Evaluates every rule at `now_ms`.
    fn evaluate(&self, now_ms: i64) -> Evaluation;

    /// Notifications that failed since start.
    fn notify_failures(&self) -> u64;

    /// Sees each batch right after it is stored. Polling engines (phase0)
    /// ignore it, which is the bottleneck craft 5 removes.
    fn observe(&self, metrics: &[Metric]) {
        let _ = metrics;
    }

    /// A short name for logs.
    fn name(&self) -> &'static str;
}
