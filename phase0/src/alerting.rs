//! phase0's alerting engine: every 10 s, for each rule, query the window
//! through the query slot, average, compare, notify.
//!
//! Bottlenecks, on purpose: an alert is noticed up to one interval late
//! (chapter 0 measures the delay); every rule costs a full file scan through
//! the query engine; a condition that stays true prints again at every
//! check (dedup is an exercise). Craft 5 evaluates on ingest instead.
//! Story: docs chapter 0, "The alerting engine".

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::{
    Alert, AlertEngine, AlertError, AlertRule, Condition, Evaluation, Notifier, QueryEngine,
    TimeRange,
};

/// The seed's check interval.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);

/// The seed's three rules.
pub fn default_rules() -> Vec<AlertRule> {
    vec![
        AlertRule::new("cpu_usage", Condition::Above, 80.0, Duration::from_secs(60)),
        AlertRule::new(
            "memory_usage",
            Condition::Above,
            90.0,
            Duration::from_secs(60),
        ),
        AlertRule::new("error_rate", Condition::Above, 5.0, Duration::from_secs(30)),
    ]
}

/// Re-queries each rule's window at every check.
pub struct PollingAlertEngine {
    rules: Vec<AlertRule>,
    query: Arc<dyn QueryEngine>,
    notifiers: Vec<Arc<dyn Notifier>>,
    interval: Duration,
    notify_failures: AtomicU64,
}

impl PollingAlertEngine {
    /// An engine checking `rules` through `query` every `interval`.
    pub fn new(
        rules: Vec<AlertRule>,
        query: Arc<dyn QueryEngine>,
        notifiers: Vec<Arc<dyn Notifier>>,
        interval: Duration,
    ) -> Self {
        PollingAlertEngine {
            rules,
            query,
            notifiers,
            interval,
            notify_failures: AtomicU64::new(0),
        }
    }
}

impl AlertEngine for PollingAlertEngine {
    fn rules(&self) -> Vec<AlertRule> {
        self.rules.clone()
    }

    fn interval(&self) -> Duration {
        self.interval
    }

    fn evaluate(&self, now_ms: i64) -> Evaluation {
        let mut evaluation = Evaluation::default();
        for rule in &self.rules {
            let window = TimeRange::new(now_ms.saturating_sub(rule.window_ms()), now_ms);
            let samples = match self.query.samples(&rule.metric, window) {
                Ok(samples) => samples,
                Err(source) => {
                    evaluation.errors.push(AlertError::Query {
                        rule: rule.to_string(),
                        source,
                    });
                    continue;
                }
            };
            if samples.is_empty() {
                continue;
            }
            let average = samples.iter().map(|m| m.value).sum::<f64>() / samples.len() as f64;
            if !rule.condition.holds(average, rule.threshold) {
                continue;
            }
            let alert = Alert {
                rule: rule.clone(),
                value: average,
                sample_count: samples.len(),
                at_ms: now_ms,
            };
            for notifier in &self.notifiers {
                if let Err(e) = notifier.notify(&alert) {
                    self.notify_failures.fetch_add(1, Ordering::Relaxed);
                    common::say_err!("[Alerting] {e}");
                }
            }
            evaluation.fired.push(alert);
        }
        evaluation
    }

    fn notify_failures(&self) -> u64 {
        self.notify_failures.load(Ordering::Relaxed)
    }

    fn name(&self) -> &'static str {
        "phase0"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::ScanQueryEngine;
    use crate::storage::JsonlFileStore;

    #[test]
    fn conformance() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(JsonlFileStore::open(dir.path()).unwrap());
        common::testkit::alerting::run_all(store, &|fixture| {
            let query = Arc::new(ScanQueryEngine::new(fixture.store));
            Arc::new(PollingAlertEngine::new(
                fixture.rules,
                query,
                fixture.notifiers,
                DEFAULT_INTERVAL,
            ))
        });
    }

    #[test]
    fn seed_defaults() {
        let text: Vec<String> = default_rules().iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            vec![
                "cpu_usage avg(60s) > 80",
                "memory_usage avg(60s) > 90",
                "error_rate avg(30s) > 5"
            ]
        );
    }
}
