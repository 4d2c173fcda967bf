//! The alerting conformance suite (`common::testkit::alerting::run_all`),
//! replayed against the streaming engine.
//!
//! The suite itself cannot run unchanged, for three reasons that are the
//! point of craft 5 rather than bugs in it:
//!
//! 1. **It feeds data by appending to the store and never calls
//!    `observe`.** A streaming engine never reads the store; in the
//!    pipeline it sees each batch through `observe` right after the store
//!    appends it. Here every batch the suite appends is observed instead.
//! 2. **It expects the rule whose store reads fail to be reported at every
//!    evaluation.** A streaming engine makes no query, so there is nothing
//!    to fail: the `broken_metric` rule simply never sees a sample.
//! 3. **It expects the notification at `evaluate`, with the window's full
//!    count, and (being phase0's) a page at every evaluation.** Here the
//!    page goes out on the first sample that makes the condition true —
//!    with that moment's time and count — once per episode.
//!
//! Everything else applies and is checked below with the suite's own clock,
//! rules and data: `rules()` gives back the rules; an empty window never
//! fires; the seed's burst fires and `evaluate` reports it with the value
//! and count of the whole window at `now`; a failing notifier is counted
//! and does not stop the next; both window ends are inclusive (same sample
//! counts as the suite); the threshold is strict; `<` fires below; windows
//! are per rule; old samples age out.

use std::sync::Arc;
use std::time::Duration;

use common::testkit::alerting::BROKEN_METRIC;
use common::testkit::{CollectingNotifier, metric};
use common::{Alert, AlertEngine, AlertRule, Clock, Condition, ManualClock, Notifier, NotifyError};
use craft5_alerting::{EngineOptions, StreamingAlertEngine};

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

#[test]
fn conformance_scenario_through_observe() {
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
    let engine = StreamingAlertEngine::from_seed_rules(
        &rules,
        vec![Arc::new(RefusingNotifier), notifier.clone()],
        EngineOptions::new(clock.clone()),
    )
    .unwrap();
    assert_eq!(
        engine.rules(),
        rules,
        "the engine reports the rules it was given"
    );
    let evaluate_at = |now: i64| {
        let evaluation = engine.evaluate(now);
        assert!(evaluation.errors.is_empty(), "no queries, no query errors");
        evaluation.fired
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
    engine.observe(&burst);
    let delivered = notifier.take();
    assert_eq!(delivered.len(), 1, "paged once, after the failing notifier");
    assert_eq!(delivered[0].at_ms, now - 9_000, "at the first hot sample");
    assert_eq!(delivered[0].sample_count, 1);
    assert_eq!(
        engine.notify_failures(),
        1,
        "the refused notification is counted"
    );
    let fired = evaluate_at(now);
    assert_eq!(fired.len(), 1, "avg 92 > 80 is firing");
    assert_eq!(fired[0].rule.metric, "cpu_usage");
    assert_eq!(fired[0].sample_count, 10);
    assert!((fired[0].value - 92.0).abs() < 1e-9);
    assert_eq!(fired[0].at_ms, now);
    assert!(
        notifier.take().is_empty(),
        "no second page for the same episode"
    );

    // Window edges: 60 s window at t covers [t-60s, t], both inclusive.
    clock.advance(Duration::from_secs(60));
    let t = clock.now_ms();
    engine.observe(&[
        metric("cpu_usage", &[("host", "b")], 10.0, t - 60_001), // just outside at t
        metric("cpu_usage", &[("host", "b")], 70.0, t),          // the window's end, included
    ]);
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

    // Threshold is strict: an average exactly at 80 does not fire (the
    // alert resolves: nobody is paged again when it comes back).
    clock.advance(Duration::from_secs(600));
    let t = clock.now_ms();
    engine.observe(&[
        metric("cpu_usage", &[], 80.0, t - 1_000),
        metric("cpu_usage", &[], 80.0, t),
    ]);
    assert!(evaluate_at(t).is_empty(), "avg == threshold does not fire");

    // `<` fires below, and windows are per rule (30 s here).
    engine.observe(&[
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
