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

/// A rule evaluator.
///
/// # Contract
/// - [`evaluate`](Self::evaluate) looks at each rule's window
///   `[now_ms - window, now_ms]`, both ends inclusive, averaging every sample
///   of the rule's metric (all series) in it. A window with no sample never
///   fires. The condition is strict (`>` fires above, not at, the threshold).
/// - It returns the alerts whose condition holds at `now_ms` and notifies
///   them per the engine's policy (phase0: every evaluation, no dedup).
///   Notifier failures are logged and counted, not returned: one bad channel
///   must not stop the other rules.
/// - The pipeline calls `evaluate` every [`interval`](Self::interval) and
///   [`observe`](Self::observe) after each batch is stored.
pub trait AlertEngine: Send + Sync {
    /// The rules, for the startup log and the API.
    fn rules(&self) -> Vec<AlertRule>;

    /// How often the pipeline calls [`evaluate`](Self::evaluate).
    fn interval(&self) -> Duration;

    /// Evaluates every rule at `now_ms`.
    ///
    /// # Errors
    /// [`AlertError::Query`] for the first rule whose window could not be
    /// read; other rules are still evaluated and notified.
    fn evaluate(&self, now_ms: i64) -> Result<Vec<Alert>, AlertError>;

    /// Sees each batch right after it is stored. Polling engines (phase0)
    /// ignore it, which is the bottleneck craft 5 removes.
    fn observe(&self, metrics: &[Metric]) {
        let _ = metrics;
    }

    /// A short name for logs.
    fn name(&self) -> &'static str;
}
