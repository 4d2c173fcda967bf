//! Periodic rules end to end on a manual clock, over a real store
//! (phase0's JSON-lines file in a temp dir) queried through craft 4:
//! aggregation and vector matching, `for` across group evaluations,
//! resolution when a series leaves the result, query errors in
//! `/api/v1/rules`, evaluation only at the group interval, and state that
//! survives a restart without a repeated page.

mod support;

use std::sync::Arc;

/// The query slot periodic rules ask: craft 4 over `store`.
fn craft4(store: Arc<dyn MetricStore>) -> Arc<dyn common::QueryEngine> {
    Arc::new(craft4_query::engine::Craft4QueryEngine::new(
        store,
        craft4_query::eval::EngineConfig::default(),
    ))
}

use common::testkit::metric;
use common::{ManualClock, MetricStore};
use craft5_alerting::api::rules_body;
use craft5_alerting::{
    AlertState, AlertingService, EngineOptions, StreamingAlertEngine, Transition,
};
use serde_json::Value;
use support::{Recorder, RecordingIntegration, T0, describe, rules};

fn store(dir: &std::path::Path) -> Arc<dyn MetricStore> {
    Arc::new(phase0::storage::JsonlFileStore::open(dir).expect("store"))
}

/// An engine over `store` on a manual clock at `T0`, recording transitions.
fn engine(
    yaml: &str,
    store: Arc<dyn MetricStore>,
) -> (StreamingAlertEngine, Arc<ManualClock>, Arc<Recorder>) {
    let clock = Arc::new(ManualClock::new(T0));
    let recorder = Recorder::shared();
    let options = EngineOptions::new(clock.clone())
        .with_transition_notifier(recorder.clone())
        .with_query(craft4(store));
    let engine = StreamingAlertEngine::new(rules(yaml), Vec::new(), options).expect("engine");
    (engine, clock, recorder)
}

/// A service over `store` whose receiver `team` records; state in
/// `state_dir` when given.
fn service(
    rules_yaml: &str,
    team: &Arc<RecordingIntegration>,
    clock: &Arc<ManualClock>,
    store: Arc<dyn MetricStore>,
    state_dir: Option<&std::path::Path>,
) -> AlertingService {
    let mut routing = craft5_alerting::RoutingConfig::parse(
        "route:\n  receiver: team\n  group_wait: 0s\n  group_interval: 10s\n  repeat_interval: 1h\nreceivers:\n  - name: team\n",
        "am.yml",
    )
    .expect("routing");
    routing.receivers.insert_integrations(
        "team",
        vec![team.clone() as Arc<dyn craft5_alerting::Integration>],
    );
    let mut options = craft5_alerting::ServiceOptions::new(clock.clone()).with_query(craft4(store));
    options.jitter_seed = 7;
    if let Some(dir) = state_dir {
        options = options.with_state_file(dir.join("state.json"));
    }
    AlertingService::new(rules(rules_yaml), routing, options).expect("service")
}

/// One step of the pipeline at `ms`: the evaluation tick, then the
/// dispatcher and delivery.
fn step(service: &AlertingService, clock: &ManualClock, ms: i64) {
    clock.set(ms);
    service.engine().advance(ms);
    service.tick(ms).expect("tick");
}

/// Request counters every 10 s over `[from, to]`: host `a` on two
/// instances at 1.5 req/s each (3 in sum), host `b` at 0.5 req/s.
fn requests(store: &dyn MetricStore, from: i64, to: i64) {
    let mut batch = Vec::new();
    let mut t = from;
    while t <= to {
        let n = ((t - from) / 10_000) as f64;
        for (host, instance, per_step) in [("a", "1", 15.0), ("a", "2", 15.0), ("b", "1", 5.0)] {
            batch.push(metric(
                "http_requests_total",
                &[("host", host), ("instance", instance)],
                per_step * n,
                t,
            ));
        }
        t += 10_000;
    }
    store.append(&batch).expect("append");
}

const RATE_RULES: &str = r#"
groups:
  - name: http
    interval: 15s
    rules:
      - alert: HighRequestRate
        expr: sum by (host) (rate(http_requests_total[5m])) > 1
        for: 30s
        labels:
          severity: page
        annotations:
          summary: "{{ $labels.host }} serves {{ $value }} req/s"
"#;

#[test]
fn an_aggregated_rate_fires_after_for_and_resolves_when_its_series_leaves() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    requests(store.as_ref(), T0 - 300_000, T0 + 60_000);
    let (engine, clock, recorder) = engine(RATE_RULES, store);

    engine.advance(T0);
    let events = recorder.take();
    assert!(events.is_empty(), "Pending is not notified: {events:?}");
    let alerts = engine.alerts();
    assert_eq!(alerts.len(), 1, "only host a is over 1 req/s: {alerts:?}");
    assert_eq!(alerts[0].series.to_string(), "{host=\"a\"}");
    assert_eq!(alerts[0].status.state, AlertState::Pending);

    // `for: 30s` counts across evaluations: pending at T0 and T0+15s,
    // firing at the evaluation of T0+30s.
    for ms in [T0 + 1_000, T0 + 15_000, T0 + 29_000] {
        clock.set(ms);
        engine.advance(ms);
        assert!(recorder.take().is_empty(), "not yet at {ms}");
    }
    clock.set(T0 + 30_000);
    engine.advance(T0 + 30_000);
    let fired = recorder.take();
    assert_eq!(fired.len(), 1);
    let event = &fired[0];
    assert_eq!(event.transition, Transition::Firing);
    assert_eq!(
        event.labels.to_string(),
        "{alertname=\"HighRequestRate\",host=\"a\",severity=\"page\"}",
        "result labels without __name__, plus the rule's"
    );
    let value = event.value.expect("a value");
    assert!((value - 3.0).abs() < 0.2, "{value}");
    let summary = event.annotation("summary").unwrap();
    assert!(summary.starts_with("a serves 3"), "{summary}");
    assert_eq!(event.fired_at_ms, Some(T0 + 30_000));
    assert_eq!(event.active_at_ms, Some(T0));

    // No more samples after T0+60s: five minutes later the rate has no
    // points, the series leaves the result and the alert resolves.
    clock.set(T0 + 420_000);
    engine.advance(T0 + 420_000);
    let resolved = recorder.take();
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0].transition, Transition::Resolved);
    assert_eq!(
        resolved[0].value,
        Some(value),
        "the resolution keeps the last value"
    );
}

#[test]
fn vector_matching_rules_alert_per_matched_series() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    store
        .append(&[
            metric("node_errors", &[("host", "a")], 5.0, T0 - 1_000),
            metric("node_requests", &[("host", "a")], 10.0, T0 - 1_000),
            metric("node_errors", &[("host", "b")], 1.0, T0 - 1_000),
            metric("node_requests", &[("host", "b")], 100.0, T0 - 1_000),
        ])
        .unwrap();
    let (engine, _clock, recorder) = engine(
        r#"
groups:
  - name: ratio
    interval: 10s
    rules:
      - alert: ErrorRatio
        expr: node_errors / on(host) node_requests > 0.1
        annotations:
          summary: "{{ $labels.host }} fails {{ $value }}"
"#,
        store,
    );
    engine.advance(T0);
    let events = recorder.take();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        events[0].transition,
        Transition::Firing,
        "for: 0 fires at once"
    );
    assert_eq!(events[0].series.to_string(), "{host=\"a\"}");
    assert_eq!(events[0].annotation("summary"), Some("a fails 0.5"));
}

#[test]
fn query_errors_show_in_the_rules_api_and_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    store
        .append(&[
            metric("up", &[("job", "a")], 1.0, T0 - 1_000),
            metric("down", &[("job", "a")], 1.0, T0 - 1_000),
            metric("down", &[("job", "b")], 1.0, T0 - 1_000),
        ])
        .unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let team = RecordingIntegration::new();
    let service = service(
        r#"
groups:
  - name: broken
    interval: 10s
    rules:
      - alert: ManyToMany
        expr: up > on() down
      - alert: Healthy
        expr: sum(up) > 5
      - alert: Streaming
        expr: up > 5
"#,
        &team,
        &clock,
        store,
        None,
    );
    let before = rules_body(service.engine());
    assert_eq!(
        before["data"]["groups"][0]["rules"][0]["health"], "unknown",
        "not evaluated yet"
    );
    let evaluation = common::AlertEngine::evaluate(&service, T0);
    assert_eq!(evaluation.errors.len(), 1, "{:?}", evaluation.errors);
    let message = evaluation.errors[0].to_string();
    assert!(message.contains("broken/ManyToMany"), "{message}");

    let body = rules_body(service.engine());
    let group = &body["data"]["groups"][0];
    assert_eq!(group["interval"], 10.0);
    assert_eq!(group["lastEvaluation"], "2023-11-14T22:13:20.000Z");
    assert!(group["evaluationTime"].as_f64().unwrap() >= 0.0);
    let rule = |name: &str| -> Value {
        group["rules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .cloned()
            .unwrap()
    };
    let broken = rule("ManyToMany");
    assert_eq!(broken["health"], "err");
    assert!(
        !broken["lastError"].as_str().unwrap().is_empty(),
        "{broken}"
    );
    assert_eq!(broken["lastEvaluation"], "2023-11-14T22:13:20.000Z");
    assert!(broken["evaluationTime"].is_number());
    let healthy = rule("Healthy");
    assert_eq!(
        (&healthy["health"], &healthy["lastError"]),
        (&"ok".into(), &"".into())
    );
    assert_eq!(rule("Streaming")["health"], "ok");
    let stats = service.engine().stats().periodic;
    assert_eq!((stats.evaluations, stats.failures), (2, 1));
    assert!(team.take().is_empty());
}

#[test]
fn groups_run_only_at_their_interval() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    store
        .append(&[metric("up", &[("job", "a")], 1.0, T0 - 1_000)])
        .unwrap();
    let (engine, clock, _recorder) = engine(
        r#"
groups:
  - name: fast
    interval: 10s
    rules:
      - alert: Up
        expr: sum(up) > 0
  - name: default-interval
    rules:
      - alert: AlsoUp
        expr: sum(up) > 0
      - alert: Streams
        expr: up > 0
"#,
        store,
    );
    // The pipeline's 1 s tick for a minute: the fast group runs at 0, 10,
    // …, 60 s (7 times), the other at Prometheus' default 1 m (twice).
    for second in 0..=60 {
        let ms = T0 + second * 1_000;
        clock.set(ms);
        engine.advance(ms);
    }
    assert_eq!(engine.stats().periodic.evaluations, 9);
    let fast = engine.group_status("fast").unwrap();
    assert_eq!(fast.last_evaluation_ms, Some(T0 + 60_000));
    assert_eq!(fast.next_due_ms, T0 + 70_000);
    let slow = engine.group_status("default-interval").unwrap();
    assert_eq!(slow.interval_ms, 60_000);
    assert_eq!(slow.last_evaluation_ms, Some(T0 + 60_000));
    assert_eq!(
        engine
            .rule_health("default-interval/AlsoUp")
            .unwrap()
            .last_evaluation_ms,
        Some(T0 + 60_000)
    );
    assert!(
        engine.rule_health("default-interval/Streams").is_none(),
        "a streaming rule has no periodic health"
    );
}

const QUEUE_RULES: &str = r#"
groups:
  - name: queues
    interval: 10s
    rules:
      - alert: QueueBacklog
        expr: sum by (queue) (queue_depth) > 100
        for: 1m
"#;

#[test]
fn state_survives_restarts_without_a_repeated_page() {
    let data = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let store = store(data.path());
    store
        .append(&[
            metric(
                "queue_depth",
                &[("queue", "q1"), ("shard", "1")],
                80.0,
                T0 - 10_000,
            ),
            metric(
                "queue_depth",
                &[("queue", "q1"), ("shard", "2")],
                80.0,
                T0 - 10_000,
            ),
        ])
        .unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let team = RecordingIntegration::new();

    let first = service(
        QUEUE_RULES,
        &team,
        &clock,
        store.clone(),
        Some(state.path()),
    );
    step(&first, &clock, T0);
    step(&first, &clock, T0 + 30_000);
    assert_eq!(first.engine().alerts()[0].status.state, AlertState::Pending);
    drop(first);

    // Restarted mid-`for`: the timer kept its start, so the alert fires
    // 1 m after T0, not 1 m after the restart.
    clock.set(T0 + 40_000);
    let second = service(
        QUEUE_RULES,
        &team,
        &clock,
        store.clone(),
        Some(state.path()),
    );
    assert_eq!(
        second.engine().alerts()[0].status.active_at_ms,
        Some(T0),
        "restored"
    );
    step(&second, &clock, T0 + 40_000);
    step(&second, &clock, T0 + 50_000);
    assert!(team.take().is_empty());
    step(&second, &clock, T0 + 60_000);
    let sent: Vec<_> = team.take().iter().map(describe).collect();
    assert_eq!(
        sent,
        vec![(
            "team".to_string(),
            "firing",
            vec!["QueueBacklog - firing".to_string()]
        )]
    );
    drop(second);

    // Restarted while firing: restored, still firing, not paged again.
    clock.set(T0 + 70_000);
    let third = service(
        QUEUE_RULES,
        &team,
        &clock,
        store.clone(),
        Some(state.path()),
    );
    step(&third, &clock, T0 + 70_000);
    step(&third, &clock, T0 + 80_000);
    assert!(team.take().is_empty(), "no repeated page after a restart");
    assert_eq!(third.engine().alerts()[0].status.state, AlertState::Firing);

    // The backlog drains: the series leaves the result, resolved is sent.
    store
        .append(&[
            metric(
                "queue_depth",
                &[("queue", "q1"), ("shard", "1")],
                5.0,
                T0 + 85_000,
            ),
            metric(
                "queue_depth",
                &[("queue", "q1"), ("shard", "2")],
                5.0,
                T0 + 85_000,
            ),
        ])
        .unwrap();
    step(&third, &clock, T0 + 90_000);
    step(&third, &clock, T0 + 100_000);
    let sent: Vec<_> = team.take().iter().map(describe).collect();
    assert_eq!(
        sent,
        vec![(
            "team".to_string(),
            "resolved",
            vec!["QueueBacklog - resolved".to_string()]
        )]
    );
}

#[test]
fn without_a_store_periodic_rules_keep_the_not_evaluated_report() {
    let (engine, _clock, _recorder) = support::engine(RATE_RULES);
    assert!(!engine.evaluates_periodic_rules());
    let body = rules_body(&engine);
    let rule = &body["data"]["groups"][0]["rules"][0];
    assert_eq!(rule["health"], "unknown");
    assert_eq!(
        rule["lastError"],
        craft5_alerting::evaluation::engine::PERIODIC_NOT_EVALUATED
    );
}
