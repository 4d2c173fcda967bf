//! The streaming engine end to end on a manual clock: every transition
//! driven by samples and by time, `for` and `keep_firing_for` through the
//! engine, per-series alerts, templates in events, the rule index, and
//! the samples it refuses.

mod support;

use std::sync::Arc;

use common::testkit::{CollectingNotifier, metric};
use common::{AlertEngine, Clock, ManualClock, Notifier, NotifyError};
use craft5_alerting::evaluation::engine::PERIODIC_NOT_EVALUATED;
use craft5_alerting::{AlertState, EngineOptions, StreamingAlertEngine, Transition};
use support::{T0, engine, rules, sample};

const CPU: &str = r#"
groups:
  - name: node
    rules:
      - alert: HighCpu
        expr: avg_over_time(cpu_usage[60s]) > 80
        for: 30s
        keep_firing_for: 20s
        labels:
          severity: page
          where: "{{ $labels.host }}"
        annotations:
          summary: "CPU on {{ $labels.host }} at {{ $value }}"
"#;

#[test]
fn pending_then_firing_on_samples_then_resolved_once() {
    let (engine, _clock, recorder) = engine(CPU);
    // Hot sample: pending at its own time (no 10 s poll).
    let outcome = engine.ingest(&[sample("cpu_usage", "a", 90.0, T0)]);
    assert_eq!(outcome.events.len(), 1);
    assert_eq!(outcome.events[0].transition, Transition::Pending);
    assert_eq!(outcome.events[0].at_ms, T0);
    assert!(recorder.take().is_empty(), "pending notifies nobody");

    // Still hot 29.999 s later: pending. At exactly 30 s: firing.
    engine.ingest(&[sample("cpu_usage", "a", 90.0, T0 + 29_999)]);
    assert!(recorder.take().is_empty());
    engine.ingest(&[sample("cpu_usage", "a", 90.0, T0 + 30_000)]);
    let events = recorder.take();
    assert_eq!(events.len(), 1);
    let firing = &events[0];
    assert_eq!(firing.transition, Transition::Firing);
    assert_eq!(firing.at_ms, T0 + 30_000);
    assert_eq!(firing.active_at_ms, Some(T0));
    assert_eq!(firing.value, Some(90.0));
    assert_eq!(firing.sample_count, 3);
    assert_eq!(firing.rule, "node/HighCpu");
    assert_eq!(firing.labels.get("alertname"), Some("HighCpu"));
    assert_eq!(firing.labels.get("severity"), Some("page"));
    assert_eq!(
        firing.labels.get("where"),
        Some("a"),
        "label templates render"
    );
    assert_eq!(
        firing.labels.get("host"),
        Some("a"),
        "series labels are kept"
    );
    assert_eq!(firing.annotation("summary"), Some("CPU on a at 90"));
    assert_eq!(firing.condition, "avg(60s) > 80");

    // Staying hot pages no more.
    for i in 1..=20 {
        engine.ingest(&[sample("cpu_usage", "a", 95.0, T0 + 30_000 + i * 1_000)]);
    }
    assert!(recorder.take().is_empty(), "one page per episode");

    // Cooling: the average drops below 80 at some sample, keep_firing_for
    // (20 s) then runs from that moment.
    let mut ts = T0 + 51_000;
    let mut first_clear = None;
    while first_clear.is_none() {
        ts += 1_000;
        engine.ingest(&[sample("cpu_usage", "a", 0.0, ts)]);
        let alert = &engine.alerts()[0];
        first_clear = alert.status.keep_firing_since_ms;
    }
    let since = first_clear.unwrap_or_default();
    assert_eq!(since, ts);
    engine.ingest(&[sample("cpu_usage", "a", 0.0, since + 19_999)]);
    assert!(
        recorder.take().is_empty(),
        "keeps firing 1 ms short of keep_firing_for"
    );
    engine.ingest(&[sample("cpu_usage", "a", 0.0, since + 20_000)]);
    let events = recorder.take();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].transition, Transition::Resolved);
    assert_eq!(events[0].at_ms, since + 20_000);
    assert_eq!(events[0].fired_at_ms, Some(T0 + 30_000));
}

#[test]
fn time_alone_fires_pending_alerts_and_resolves_emptied_windows() {
    let (engine, clock, recorder) = engine(CPU);
    engine.ingest(&[sample("cpu_usage", "a", 90.0, T0)]);
    // No more samples. The tick at 29.999 s: still pending; at 30 s: fires,
    // the window (60 s) still holding the one hot sample.
    assert!(engine.evaluate(T0 + 29_999).fired.is_empty());
    let evaluation = engine.evaluate(T0 + 30_000);
    assert_eq!(evaluation.fired.len(), 1);
    assert_eq!(evaluation.fired[0].at_ms, T0 + 30_000);
    assert_eq!(
        recorder.take_summary(),
        vec![(Transition::Firing, "HighCpu".into(), "{host=\"a\"}".into())]
    );
    // The sample leaves the window at T0 + 60_001: no data, which starts
    // keep_firing_for (20 s).
    clock.set(T0 + 60_001);
    assert_eq!(engine.evaluate(T0 + 60_001).fired.len(), 1, "keeps firing");
    assert_eq!(engine.evaluate(T0 + 80_000).fired.len(), 1, "1 ms short");
    assert!(recorder.take().is_empty());
    assert!(engine.evaluate(T0 + 80_001).fired.is_empty());
    let events = recorder.take();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].transition, Transition::Resolved);
    assert_eq!(events[0].value, None, "resolved for lack of data");
    // Resolved alerts stay visible for the retention, then go.
    assert_eq!(engine.alerts()[0].status.state, AlertState::Resolved);
    engine.evaluate(T0 + 80_001 + 15 * 60_000);
    assert!(engine.alerts().is_empty());
}

#[test]
fn a_pending_alert_that_cools_is_cancelled_silently() {
    let (engine, _clock, recorder) = engine(CPU);
    engine.ingest(&[sample("cpu_usage", "a", 90.0, T0)]);
    let outcome = engine.ingest(&[sample("cpu_usage", "a", 0.0, T0 + 1_000)]);
    assert_eq!(outcome.events[0].transition, Transition::Cancelled);
    assert!(recorder.take().is_empty());
    assert!(engine.alerts().is_empty());
}

#[test]
fn each_series_is_its_own_alert() {
    let (engine, clock, recorder) = engine(CPU);
    engine.ingest(&[
        sample("cpu_usage", "a", 90.0, T0),
        sample("cpu_usage", "b", 10.0, T0),
        sample("cpu_usage", "c", 95.0, T0),
    ]);
    clock.set(T0 + 30_000);
    let fired = engine.evaluate(T0 + 30_000).fired;
    assert_eq!(fired.len(), 2, "a and c, not b: {fired:?}");
    let mut summary = recorder.take_summary();
    summary.sort_by(|a, b| a.2.cmp(&b.2));
    assert_eq!(
        summary,
        vec![
            (Transition::Firing, "HighCpu".into(), "{host=\"a\"}".into()),
            (Transition::Firing, "HighCpu".into(), "{host=\"c\"}".into()),
        ]
    );
}

#[test]
fn seed_rules_average_every_series_together_and_page_once() {
    let clock = Arc::new(ManualClock::new(T0));
    let notifier = CollectingNotifier::shared();
    let engine = StreamingAlertEngine::from_seed_rules(
        &phase0::alerting::default_rules(),
        vec![notifier.clone()],
        EngineOptions::new(clock.clone()),
    )
    .unwrap();
    assert_eq!(engine.rules(), phase0::alerting::default_rules());
    // The seed's demo: ten samples at 92, one a second.
    for i in 0..10 {
        engine.observe(&[metric("cpu_usage", &[], 92.0, T0 + i * 1_000)]);
    }
    let alerts = notifier.take();
    assert_eq!(
        alerts.len(),
        1,
        "paged once, at the first sample: {alerts:?}"
    );
    assert_eq!(
        alerts[0].at_ms, T0,
        "detected at the sample, not at the next 10 s check"
    );
    assert_eq!(alerts[0].sample_count, 1);
    assert_eq!(alerts[0].rule, phase0::alerting::default_rules()[0]);
    // Two hosts are averaged together, as phase0 does: 92 and 60 → 76.
    let engine = StreamingAlertEngine::from_seed_rules(
        &phase0::alerting::default_rules(),
        vec![notifier.clone()],
        EngineOptions::new(clock.clone()),
    )
    .unwrap();
    engine.observe(&[
        metric("cpu_usage", &[("host", "a")], 60.0, T0),
        metric("cpu_usage", &[("host", "b")], 92.0, T0),
    ]);
    assert!(notifier.take().is_empty(), "avg 76 does not fire");
    let fired = engine.evaluate(T0).fired;
    assert!(fired.is_empty());
}

#[test]
fn only_rules_naming_the_metric_do_any_work() {
    let yaml = r#"
groups:
  - name: g
    rules:
      - alert: A
        expr: max_over_time(a[1m]) > 1
      - alert: B
        expr: b{env="prod"} > 1
      - alert: C
        expr: count_over_time(b[1m]) >= 3
"#;
    let (engine, _clock, recorder) = engine(yaml);
    engine.ingest(&[
        sample("unrelated", "x", 5.0, T0),
        sample("a", "x", 5.0, T0),
        metric("b", &[("env", "dev")], 5.0, T0),
        metric("b", &[("env", "prod")], 5.0, T0),
    ]);
    let stats = engine.stats();
    assert_eq!(stats.samples, 4);
    // a → A; b{dev} → C only (B's matcher refuses it); b{prod} → B and C.
    assert_eq!(stats.rule_checks, 4);
    let mut fired: Vec<_> = recorder.take_summary().into_iter().map(|s| s.1).collect();
    fired.sort();
    assert_eq!(fired, vec!["A", "B"], "C needs three samples");
    engine.ingest(&[
        metric("b", &[("env", "prod")], 0.0, T0 + 1),
        metric("b", &[("env", "prod")], 0.0, T0 + 2),
    ]);
    let summary = recorder.take_summary();
    // B's instant value is now 0 (resolved); C counts 3 samples (fires).
    assert!(
        summary.contains(&(Transition::Resolved, "B".into(), "{env=\"prod\"}".into())),
        "{summary:?}"
    );
    assert!(
        summary.contains(&(Transition::Firing, "C".into(), "{env=\"prod\"}".into())),
        "{summary:?}"
    );
}

#[test]
fn late_future_repeated_and_non_finite_samples() {
    let (engine, clock, recorder) = engine(
        "groups:\n- name: g\n  rules:\n  - alert: Sum\n    expr: sum_over_time(x[10s]) > 100\n",
    );
    engine.ingest(&[sample("x", "a", 60.0, T0 + 10_000)]);
    // Late but inside the window: counted.
    engine.ingest(&[sample("x", "a", 50.0, T0 + 5_000)]);
    assert_eq!(recorder.take().len(), 1, "60 + 50 > 100");
    // Older than the window's start: ignored.
    engine.ingest(&[sample("x", "a", 1_000.0, T0 - 1)]);
    assert_eq!(engine.stats().too_old, 1);
    // A redelivered sample replaces, not adds.
    engine.ingest(&[sample("x", "a", 60.0, T0 + 10_000)]);
    assert_eq!(engine.alerts()[0].status.last_value, Some(110.0));
    // Far ahead of the clock: ignored, or it would expire the real data.
    engine.ingest(&[sample("x", "a", 0.0, clock.now_ms() + 11 * 60_000)]);
    assert_eq!(engine.stats().from_the_future, 1);
    assert_eq!(engine.alerts()[0].status.state, AlertState::Firing);
    recorder.take();
    // A NaN in the window makes the sum NaN, and `NaN > 100` is false: the
    // alert resolves while the NaN is in the window, as in Prometheus.
    engine.ingest(&[sample("x", "a", f64::NAN, T0 + 10_001)]);
    assert_eq!(engine.stats().not_finite, 1);
    assert_eq!(
        recorder.take_summary(),
        vec![(Transition::Resolved, "Sum".into(), "{host=\"a\"}".into())]
    );
    // Once it leaves, the finite samples decide again.
    engine.ingest(&[
        sample("x", "a", 70.0, T0 + 20_002),
        sample("x", "a", 80.0, T0 + 20_003),
    ]);
    assert_eq!(
        recorder.take_summary(),
        vec![(Transition::Firing, "Sum".into(), "{host=\"a\"}".into())]
    );
}

#[test]
fn a_stale_marker_ends_the_series_of_a_plain_selector_rule() {
    let stale = f64::from_bits(common::metric::STALE_NAN_BITS);
    let (engine, _clock, recorder) = engine(
        "groups:\n- name: g\n  rules:\n  - alert: Up\n    expr: x > 80\n  - alert: Avg\n    expr: avg_over_time(x[1m]) > 80\n",
    );
    engine.ingest(&[sample("x", "a", 90.0, T0), sample("x", "b", 95.0, T0)]);
    assert_eq!(recorder.take().len(), 4, "both rules fire for both series");
    // Prometheus writes the marker when series a disappears: `x > 80` has
    // no value for it any more and resolves at once; the window keeps the
    // samples before the marker, as a range selector does.
    engine.ingest(&[sample("x", "a", stale, T0 + 10_000)]);
    assert_eq!(
        recorder.take_summary(),
        vec![(Transition::Resolved, "Up".into(), "{host=\"a\"}".into())]
    );
    assert_eq!(engine.stats().stale_markers, 1);
    assert_eq!(engine.stats().not_finite, 0, "a marker is not a bad value");
    // A sample after the marker brings the series back.
    engine.ingest(&[sample("x", "a", 91.0, T0 + 20_000)]);
    assert_eq!(
        recorder.take_summary(),
        vec![(Transition::Firing, "Up".into(), "{host=\"a\"}".into())]
    );
}

#[test]
fn periodic_rules_are_listed_and_reported_every_evaluation() {
    let yaml = r#"
groups:
  - name: g
    rules:
      - alert: Ratio
        expr: sum(rate(errors_total[5m])) > 1
      - alert: Hot
        expr: max_over_time(temp[1m]) >= 90
"#;
    let (engine, _clock, _recorder) = engine(yaml);
    assert_eq!(engine.rule_set().rules().count(), 2);
    assert!(engine.rules().is_empty(), "neither has the seed's form");
    for now in [T0, T0 + 1_000] {
        let evaluation = engine.evaluate(now);
        assert_eq!(evaluation.errors.len(), 1);
        let message = evaluation.errors[0].to_string();
        assert!(message.contains("g/Ratio"), "{message}");
        assert!(message.contains(PERIODIC_NOT_EVALUATED), "{message}");
    }
}

struct Refusing;

impl Notifier for Refusing {
    fn notify(&self, _alert: &common::Alert) -> Result<(), NotifyError> {
        Err(NotifyError::Delivery {
            channel: "refusing".into(),
            message: "test".into(),
        })
    }

    fn name(&self) -> &'static str {
        "refusing"
    }
}

#[test]
fn a_refusing_channel_is_counted_and_does_not_stop_the_others() {
    let clock = Arc::new(ManualClock::new(T0));
    let collecting = CollectingNotifier::shared();
    let recorder = support::Recorder::shared();
    let engine = StreamingAlertEngine::new(
        rules(CPU),
        vec![Arc::new(Refusing), collecting.clone()],
        EngineOptions::new(clock).with_transition_notifier(recorder.clone()),
    )
    .unwrap();
    engine.ingest(&[sample("cpu_usage", "a", 90.0, T0)]);
    engine.evaluate(T0 + 30_000);
    assert_eq!(engine.notify_failures(), 1);
    assert_eq!(collecting.take().len(), 1);
    assert_eq!(recorder.take().len(), 1);
    // The seed's notifiers hear firing only; resolved goes to transition
    // notifiers.
    engine.evaluate(T0 + 200_000);
    engine.evaluate(T0 + 220_000);
    assert!(collecting.take().is_empty());
    assert_eq!(recorder.take()[0].transition, Transition::Resolved);
}
