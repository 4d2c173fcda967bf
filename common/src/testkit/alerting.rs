//! The alerting slot's conformance suite: threshold and window semantics,
//! evaluated at chosen instants of a manual clock.
//!
//! Written for every engine the platform can run, polling or streaming:
//! data arrives as the pipeline delivers it (appended to the store, then
//! handed to [`AlertEngine::observe`]); `evaluate` must report what holds
//! at `now` with the whole window's value and count; notifications may go
//! out at `evaluate` (phase0) or on the sample that made the condition
//! true (craft 5), once or at every check, as the engine's policy says —
//! the suite checks what every policy shares: the right alert reaches the
//! working notifier after the failing one, and the failure is counted.

use std::sync::Arc;
use std::time::Duration;

use crate::testkit::{CollectingNotifier, metric};
use crate::{
    Alert, AlertEngine, AlertRule, Clock, Condition, LabelMatcher, ManualClock, Metric,
    MetricStore, Notifier, NotifyError, Series, StorageError, TimeRange,
};

/// What the suite hands the factory.
pub struct AlertingFixture {
    /// The rules to load.
    pub rules: Vec<AlertRule>,
    /// The suite's manual clock: engines that keep time of their own must
    /// read it here.
    pub clock: Arc<dyn Clock>,
    /// The store the suite fills; build the query slot over it. Reading the
    /// metric [`BROKEN_METRIC`] from it fails, as a broken disk would.
    pub store: Arc<dyn MetricStore>,
    /// Where alerts must be delivered, in order; the first always fails.
    pub notifiers: Vec<Arc<dyn Notifier>>,
}

/// A metric whose reads fail in the fixture's store.
pub const BROKEN_METRIC: &str = "broken_metric";

/// A notifier that refuses everything.
struct RefusingNotifier;

impl Notifier for RefusingNotifier {
    fn notify(&self, _alert: &Alert) -> Result<(), NotifyError> {
        Err(NotifyError::Delivery {
            channel: "refusing".into(),
            message: "always refuses (conformance suite)".into(),
        })
    }

    fn name(&self) -> &'static str {
        "refusing"
    }
}

/// The store under test, except that selecting [`BROKEN_METRIC`] fails.
struct BrokenForOneMetric(Arc<dyn MetricStore>);

impl MetricStore for BrokenForOneMetric {
    fn append(&self, metrics: &[Metric]) -> Result<(), StorageError> {
        self.0.append(metrics)
    }

    fn select(
        &self,
        matchers: &[LabelMatcher],
        range: TimeRange,
    ) -> Result<Vec<Series>, StorageError> {
        if matchers
            .iter()
            .any(|m| m.matches_value(BROKEN_METRIC) && m.name == LabelMatcher::METRIC_NAME)
        {
            return Err(StorageError::Corrupt {
                path: "conformance".into(),
                message: format!("reading {BROKEN_METRIC} always fails"),
            });
        }
        self.0.select(matchers, range)
    }

    fn label_names(&self) -> Result<Vec<String>, StorageError> {
        self.0.label_names()
    }

    fn label_values(&self, name: &str) -> Result<Vec<String>, StorageError> {
        self.0.label_values(name)
    }

    fn flush(&self) -> Result<(), StorageError> {
        self.0.flush()
    }

    fn name(&self) -> &'static str {
        self.0.name()
    }

    fn describe(&self) -> String {
        self.0.describe()
    }
}

/// Runs every alerting check. `store` must be empty; `make` builds the engine
/// (and whatever query engine it needs) from the fixture.
pub fn run_all(
    store: Arc<dyn MetricStore>,
    make: &dyn Fn(AlertingFixture) -> Arc<dyn AlertEngine>,
) {
    let clock = Arc::new(ManualClock::new(1_000_000));
    let notifier = CollectingNotifier::shared();
    let rules = vec![
        AlertRule::new(
            BROKEN_METRIC,
            Condition::Above,
            0.0,
            Duration::from_secs(60),
        ),
        AlertRule::new("cpu_usage", Condition::Above, 80.0, Duration::from_secs(60)),
        AlertRule::new("free_disk", Condition::Below, 10.0, Duration::from_secs(30)),
    ];
    let engine = make(AlertingFixture {
        rules: rules.clone(),
        clock: clock.clone(),
        store: Arc::new(BrokenForOneMetric(store.clone())),
        notifiers: vec![Arc::new(RefusingNotifier), notifier.clone()],
    });
    assert_eq!(
        engine.rules(),
        rules,
        "the engine reports the rules it was given"
    );
    // An engine that queries the store meets the broken read and must
    // report it, naming the rule, without hiding the other rules' alerts;
    // one that never queries (streaming) has nothing to report.
    let evaluate_at = |now: i64| {
        let evaluation = engine.evaluate(now);
        assert!(
            evaluation.errors.len() <= 1,
            "only the broken rule may fail: {:?}",
            evaluation.errors
        );
        for error in &evaluation.errors {
            let message = error.to_string();
            assert!(
                message.contains(BROKEN_METRIC),
                "the error names the rule: {message}"
            );
        }
        evaluation.fired
    };
    // As the pipeline delivers a batch: stored, then observed.
    let deliver = |batch: &[Metric]| {
        store.append(batch).expect("append");
        engine.observe(batch);
    };

    // No data: nothing fires.
    assert!(
        evaluate_at(clock.now_ms()).is_empty(),
        "an empty window never fires"
    );
    assert!(notifier.take().is_empty());
    assert_eq!(engine.notify_failures(), 0);

    // Ten samples at 92 inside the window: the seed's demo.
    let now = clock.now_ms();
    let burst: Vec<_> = (0..10)
        .map(|i| metric("cpu_usage", &[("host", "a")], 92.0, now - 9_000 + i * 1_000))
        .collect();
    deliver(&burst);
    let fired = evaluate_at(now);
    assert_eq!(
        fired.len(),
        1,
        "avg 92 > 80 fires, though another rule's query failed"
    );
    assert_eq!(fired[0].rule.metric, "cpu_usage");
    assert_eq!(fired[0].sample_count, 10, "the whole window is counted");
    assert!((fired[0].value - 92.0).abs() < 1e-9);
    assert_eq!(fired[0].at_ms, now);
    let delivered = notifier.take();
    assert!(
        !delivered.is_empty(),
        "a firing alert reaches the notifier after a failing one"
    );
    for alert in &delivered {
        assert_eq!(alert.rule, fired[0].rule, "only the firing rule pages");
        assert!(
            alert.value > 80.0,
            "paged while the condition held: {alert:?}"
        );
        assert!(
            (now - 9_000..=now).contains(&alert.at_ms),
            "paged at a moment of the burst: {alert:?}"
        );
    }
    assert_eq!(
        engine.notify_failures(),
        delivered.len() as u64,
        "each refused notification is counted"
    );

    // Window edges: 60 s window at t covers [t-60s, t], both inclusive.
    clock.advance(Duration::from_secs(60));
    let t = clock.now_ms();
    deliver(&[
        metric("cpu_usage", &[("host", "b")], 10.0, t - 60_001), // just outside
        metric("cpu_usage", &[("host", "b")], 70.0, t),          // the window's end, included
    ]);
    // In the window now: the burst samples at or after t-60_000, and 70 at t.
    let in_window: Vec<f64> = burst
        .iter()
        .filter(|m| m.timestamp_ms >= t - 60_000)
        .map(|m| m.value)
        .chain([70.0])
        .collect();
    let fired = evaluate_at(t);
    assert_eq!(fired.len(), 1, "avg of {in_window:?} is above 80");
    assert_eq!(
        fired[0].sample_count,
        in_window.len(),
        "start of window inclusive, sample 1 ms before excluded"
    );
    notifier.take();

    // Threshold is strict: an average exactly at 80 does not fire.
    clock.advance(Duration::from_secs(600));
    let t = clock.now_ms();
    deliver(&[
        metric("cpu_usage", &[], 80.0, t - 1_000),
        metric("cpu_usage", &[], 80.0, t),
    ]);
    assert!(evaluate_at(t).is_empty(), "avg == threshold does not fire");

    // `<` fires below, and windows are per rule (30 s here).
    deliver(&[
        metric("free_disk", &[], 5.0, t - 31_000),
        metric("free_disk", &[], 8.0, t - 30_000),
    ]);
    let fired = evaluate_at(t);
    assert_eq!(fired.len(), 1, "8 < 10 fires");
    assert_eq!(fired[0].rule.metric, "free_disk");
    assert_eq!(
        fired[0].sample_count, 1,
        "the 30 s window excludes the sample at t-31s"
    );
    notifier.take();

    // Once the samples age out of the window, nothing fires.
    clock.advance(Duration::from_secs(3_600));
    assert!(
        evaluate_at(clock.now_ms()).is_empty(),
        "old samples age out"
    );
}
