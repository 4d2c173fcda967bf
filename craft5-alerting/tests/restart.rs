//! Restarts: the state file brings back pending and firing alerts, so a
//! restart neither pages again nor restarts a `for` timer; a corrupt state
//! file stops the engine from starting.

mod support;

use std::path::Path;
use std::sync::Arc;

use common::{AlertEngine, ManualClock};
use craft5_alerting::{
    AlertState, EngineError, EngineOptions, StoreError, StreamingAlertEngine, Transition,
};
use support::{Recorder, T0, rules, sample};

const RULES: &str = r#"
groups:
  - name: node
    rules:
      - alert: SlowHot
        expr: avg_over_time(cpu_usage[60s]) > 80
        for: 60s
      - alert: FastHot
        expr: avg_over_time(temp[60s]) > 80
      - alert: Sticky
        expr: avg_over_time(load[10s]) > 80
        keep_firing_for: 5m
"#;

fn start(
    state: &Path,
    clock: &Arc<ManualClock>,
) -> Result<(StreamingAlertEngine, Arc<Recorder>), EngineError> {
    let recorder = Recorder::shared();
    let options = EngineOptions::new(clock.clone())
        .with_state_file(state)
        .with_transition_notifier(recorder.clone());
    let engine = StreamingAlertEngine::new(rules(RULES), Vec::new(), options)?;
    Ok((engine, recorder))
}

#[test]
fn restart_mid_pending_keeps_the_for_timer() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("alerts.json");
    let clock = Arc::new(ManualClock::new(T0));
    let (engine, _) = start(&state, &clock).unwrap();
    let outcome = engine.ingest(&[sample("cpu_usage", "a", 90.0, T0)]);
    assert_eq!(outcome.events[0].transition, Transition::Pending);
    drop(engine);

    // Back 30 s later, halfway through `for`.
    clock.set(T0 + 30_000);
    let (engine, recorder) = start(&state, &clock).unwrap();
    let alerts = engine.alerts();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].status.state, AlertState::Pending);
    assert_eq!(
        alerts[0].status.active_at_ms,
        Some(T0),
        "active_at survived"
    );
    // The window is empty after the restart, but cold: no cancellation.
    engine.evaluate(T0 + 40_000);
    assert_eq!(engine.alerts()[0].status.state, AlertState::Pending);
    // A hot sample at T0 + 60 s fires: `for` counted from T0, not from the
    // restart.
    engine.ingest(&[sample("cpu_usage", "a", 90.0, T0 + 60_000)]);
    let events = recorder.take();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].transition, Transition::Firing);
    assert_eq!(events[0].active_at_ms, Some(T0));
    assert_eq!(events[0].at_ms, T0 + 60_000);
}

#[test]
fn restart_mid_firing_does_not_page_again() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("alerts.json");
    let clock = Arc::new(ManualClock::new(T0));
    let (engine, recorder) = start(&state, &clock).unwrap();
    engine.ingest(&[sample("temp", "a", 90.0, T0)]);
    assert_eq!(recorder.take()[0].transition, Transition::Firing);
    drop(engine);

    clock.set(T0 + 10_000);
    let (engine, recorder) = start(&state, &clock).unwrap();
    assert_eq!(engine.alerts()[0].status.fired_at_ms, Some(T0));
    // Still hot after the restart: already firing, nobody is paged.
    engine.ingest(&[sample("temp", "a", 95.0, T0 + 11_000)]);
    assert!(recorder.take().is_empty(), "no second Firing notification");
    assert_eq!(engine.evaluate(T0 + 12_000).fired.len(), 1);
    // A cool sample in the cold window (started at T0 + 10 s, 60 s range)
    // does not clear it: the window has not seen a full minute yet.
    engine.ingest(&[sample("temp", "a", 0.0, T0 + 20_000)]);
    assert!(recorder.take().is_empty());
    // Once the window has had its minute, the data decides: resolved, once.
    engine.evaluate(T0 + 70_000);
    let events = recorder.take();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].transition, Transition::Resolved);
    assert_eq!(events[0].fired_at_ms, Some(T0));
}

#[test]
fn restart_during_keep_firing_for_keeps_its_clock() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("alerts.json");
    let clock = Arc::new(ManualClock::new(T0));
    let (engine, recorder) = start(&state, &clock).unwrap();
    engine.ingest(&[sample("load", "a", 90.0, T0)]);
    // 20 s later only the cool sample is in the 10 s window: the
    // keep_firing_for clock starts — no transition, but persisted.
    engine.ingest(&[sample("load", "a", 0.0, T0 + 20_000)]);
    assert_eq!(recorder.take().len(), 1, "the Firing page only");
    drop(engine);

    clock.set(T0 + 30_000);
    let (engine, recorder) = start(&state, &clock).unwrap();
    assert_eq!(
        engine.alerts()[0].status.keep_firing_since_ms,
        Some(T0 + 20_000)
    );
    engine.evaluate(T0 + 20_000 + 300_000 - 1);
    assert!(recorder.take().is_empty());
    engine.evaluate(T0 + 20_000 + 300_000);
    let events = recorder.take();
    assert_eq!(
        events.len(),
        1,
        "resolved 5 m after the condition stopped, not after the restart"
    );
    assert_eq!(events[0].transition, Transition::Resolved);
}

#[test]
fn a_silent_restored_alert_resolves_when_its_window_has_had_time_to_fill() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("alerts.json");
    let clock = Arc::new(ManualClock::new(T0));
    let (engine, _) = start(&state, &clock).unwrap();
    engine.ingest(&[sample("temp", "gone", 90.0, T0)]);
    drop(engine);
    clock.set(T0 + 5_000);
    let (engine, recorder) = start(&state, &clock).unwrap();
    engine.evaluate(T0 + 64_999);
    assert!(recorder.take().is_empty(), "held until start + range");
    engine.evaluate(T0 + 65_000);
    assert_eq!(recorder.take()[0].transition, Transition::Resolved);
    // And the state file forgets it after the retention.
    engine.evaluate(T0 + 65_000 + 15 * 60_000);
    drop(engine);
    let (engine, _) = start(&state, &clock).unwrap();
    assert!(engine.alerts().is_empty());
}

#[test]
fn a_corrupt_state_file_stops_the_start_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("alerts.json");
    std::fs::write(&state, "{\"version\": 1, \"alerts\": [{\"rule\": ").unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let Err(error) = start(&state, &clock) else {
        panic!("a corrupt state file must refuse the start");
    };
    assert!(
        matches!(error, EngineError::State(StoreError::Corrupt { .. })),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains(&state.display().to_string()), "{message}");
    assert!(message.contains("Move the file aside"), "{message}");
}

#[test]
fn state_of_a_removed_rule_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("alerts.json");
    let clock = Arc::new(ManualClock::new(T0));
    let (engine, _) = start(&state, &clock).unwrap();
    engine.ingest(&[sample("temp", "a", 90.0, T0)]);
    drop(engine);
    let other = "groups:\n- name: other\n  rules:\n  - alert: X\n    expr: x > 1\n";
    let options = EngineOptions::new(clock.clone()).with_state_file(&state);
    let engine = StreamingAlertEngine::new(rules(other), Vec::new(), options).unwrap();
    assert!(engine.alerts().is_empty());
}

#[test]
fn a_state_file_that_cannot_be_written_is_counted_and_alerting_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("missing-dir").join("alerts.json");
    let clock = Arc::new(ManualClock::new(T0));
    let (engine, recorder) = start(&state, &clock).unwrap();
    engine.ingest(&[sample("temp", "a", 90.0, T0)]);
    assert_eq!(recorder.take().len(), 1, "paged despite the failed save");
    assert_eq!(engine.stats().persist_failures, 1);
    // Still dirty: the next batch tries again (and fails again here).
    engine.ingest(&[sample("temp", "a", 91.0, T0 + 1)]);
    assert_eq!(engine.stats().persist_failures, 2);
}
