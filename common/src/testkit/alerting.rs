//! The alerting slot's conformance suite: threshold and window semantics,
//! evaluated at chosen instants of a manual clock.

use std::sync::Arc;
use std::time::Duration;

use crate::testkit::{CollectingNotifier, metric};
use crate::{AlertEngine, AlertRule, Clock, Condition, ManualClock, MetricStore, Notifier};

/// What the suite hands the factory.
pub struct AlertingFixture {
    /// The rules to load.
    pub rules: Vec<AlertRule>,
    /// The store the suite fills; build the query slot over it.
    pub store: Arc<dyn MetricStore>,
    /// Where alerts must be delivered.
    pub notifier: Arc<dyn Notifier>,
}

/// Runs every alerting check. `store` must be empty; `make` builds the engine
/// (and whatever query engine it needs) from the fixture.
pub fn run_all(
    store: Arc<dyn MetricStore>,
    make: &dyn Fn(AlertingFixture) -> Arc<dyn AlertEngine>,
) {
    let clock = ManualClock::new(1_000_000);
    let notifier = CollectingNotifier::shared();
    let rules = vec![
        AlertRule::new("cpu_usage", Condition::Above, 80.0, Duration::from_secs(60)),
        AlertRule::new("free_disk", Condition::Below, 10.0, Duration::from_secs(30)),
    ];
    let engine = make(AlertingFixture {
        rules: rules.clone(),
        store: store.clone(),
        notifier: notifier.clone(),
    });
    assert_eq!(
        engine.rules(),
        rules,
        "the engine reports the rules it was given"
    );

    // No data: nothing fires.
    assert!(
        engine
            .evaluate(clock.now_ms())
            .expect("evaluate")
            .is_empty(),
        "an empty window never fires"
    );
    assert!(notifier.take().is_empty());

    // Ten samples at 92 inside the window: the seed's demo.
    let now = clock.now_ms();
    let burst: Vec<_> = (0..10)
        .map(|i| metric("cpu_usage", &[("host", "a")], 92.0, now - 9_000 + i * 1_000))
        .collect();
    store.append(&burst).expect("append");
    let fired = engine.evaluate(now).expect("evaluate");
    assert_eq!(fired.len(), 1, "avg 92 > 80 fires");
    assert_eq!(fired[0].rule.metric, "cpu_usage");
    assert_eq!(fired[0].sample_count, 10);
    assert!((fired[0].value - 92.0).abs() < 1e-9);
    assert_eq!(fired[0].at_ms, now);
    let delivered = notifier.take();
    assert_eq!(delivered.len(), 1, "a firing alert reaches the notifier");
    assert_eq!(delivered[0], fired[0]);

    // Window edges: 60 s window at t covers [t-60s, t], both inclusive.
    clock.advance(Duration::from_secs(60));
    let t = clock.now_ms();
    store
        .append(&[
            metric("cpu_usage", &[("host", "b")], 10.0, t - 60_001), // just outside
            metric("cpu_usage", &[("host", "b")], 70.0, t),          // the window's end, included
        ])
        .expect("append");
    // In the window now: the burst samples at or after t-60_000, and 70 at t.
    let in_window: Vec<f64> = burst
        .iter()
        .filter(|m| m.timestamp_ms >= t - 60_000)
        .map(|m| m.value)
        .chain([70.0])
        .collect();
    let fired = engine.evaluate(t).expect("evaluate");
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
    store
        .append(&[
            metric("cpu_usage", &[], 80.0, t - 1_000),
            metric("cpu_usage", &[], 80.0, t),
        ])
        .expect("append");
    assert!(
        engine.evaluate(t).expect("evaluate").is_empty(),
        "avg == threshold does not fire"
    );

    // `<` fires below, and windows are per rule (30 s here).
    store
        .append(&[
            metric("free_disk", &[], 5.0, t - 31_000),
            metric("free_disk", &[], 8.0, t - 30_000),
        ])
        .expect("append");
    let fired = engine.evaluate(t).expect("evaluate");
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
        engine
            .evaluate(clock.now_ms())
            .expect("evaluate")
            .is_empty(),
        "old samples age out"
    );
}
