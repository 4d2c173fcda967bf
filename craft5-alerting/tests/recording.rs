//! Recording rules on a manual clock, through real components: the
//! pipeline (`pipeline::Pipeline`: phase0's queue and server, its storage
//! consumer and its `WriteBarrier`), phase0's JSON-lines store in a temp
//! dir, craft 4 as the query slot, and the engine as slot 5, writing its
//! records back through the queue (`common::QueueWriter`).
//!
//! The pipeline's own alert loop never ticks here (the engine's interval
//! is an hour): each test calls `advance` at the times it chooses, then
//! settles the barrier, so every record is stored before it is checked.
//! Covered: naming and labels, a scalar, the evaluation time as the
//! sample's time, a record read by a later rule of the same evaluation
//! (and what happens without the barrier), stale markers, Prometheus'
//! errors (duplicate label sets, a string), a full queue counted and shown,
//! `/api/v1/rules` with both kinds and the `type` filter, a streaming
//! alert on a recorded series, the start refused over phase0's scan.

mod support;

use std::sync::Arc;
use std::time::Duration;

use common::http::Request;
use common::metric::STALE_NAN_BITS;
use common::testkit::metric;
use common::{
    InstantQuery, LabelMatcher, Labels, ManualClock, Metric, MetricQueue, MetricStore, QueryEngine,
    QueueWriter, TimeRange, WriteBarrier,
};
use craft5_alerting::api::{RuleTypeFilter, rules_body_filtered};
use craft5_alerting::{EngineOptions, StreamingAlertEngine, Transition};
use pipeline::{Components, Pipeline, PipelineOptions, RunningPipeline};
use serde_json::Value;
use support::{Recorder, T0, rules};

/// How long a test waits for the pipeline to store what was accepted.
const SETTLE: Duration = Duration::from_secs(5);

/// One platform, minus HTTP clients: a pipeline whose slot 5 is the
/// engine under test, writing records into the pipeline's own queue.
struct Rig {
    engine: Arc<StreamingAlertEngine>,
    store: Arc<dyn MetricStore>,
    query: Arc<dyn QueryEngine>,
    queue: Arc<dyn MetricQueue>,
    barrier: Arc<WriteBarrier>,
    clock: Arc<ManualClock>,
    recorder: Arc<Recorder>,
    pipeline: Option<RunningPipeline>,
    _dir: tempfile::TempDir,
}

impl Rig {
    /// `yaml`'s rules over a fresh store; `barrier` false leaves the
    /// engine without one (to show what the barrier buys).
    fn start(yaml: &str, with_barrier: bool) -> Rig {
        let dir = tempfile::tempdir().expect("temp dir");
        let store: Arc<dyn MetricStore> =
            Arc::new(phase0::storage::JsonlFileStore::open(dir.path()).expect("store"));
        let query: Arc<dyn QueryEngine> = Arc::new(craft4_query::engine::Craft4QueryEngine::new(
            store.clone(),
            craft4_query::eval::EngineConfig::default(),
        ));
        let queue: Arc<dyn MetricQueue> = Arc::new(phase0::queue::MutexQueue::new(10_000));
        let barrier = Arc::new(WriteBarrier::new());
        let clock = Arc::new(ManualClock::new(T0));
        let recorder = Recorder::shared();
        let options = EngineOptions::new(clock.clone())
            .with_interval(Duration::from_secs(3600))
            .with_transition_notifier(recorder.clone())
            .with_query(query.clone())
            .with_writer(
                Arc::new(QueueWriter::new(queue.clone())),
                with_barrier.then(|| barrier.clone()),
            );
        let engine =
            Arc::new(StreamingAlertEngine::new(rules(yaml), Vec::new(), options).expect("engine"));
        let mut components = Components::new(
            Arc::new(phase0::ingestion::SingleThreadServer::default()),
            queue.clone(),
            store.clone(),
            query.clone(),
            engine.clone(),
            clock.clone(),
        );
        components.barrier = barrier.clone();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let options = PipelineOptions {
            verbose: false,
            consume_wait: Duration::from_millis(5),
            ..Default::default()
        };
        let pipeline = Pipeline::start(components, listener, options).expect("pipeline");
        Rig {
            engine,
            store,
            query,
            queue,
            barrier,
            clock,
            recorder,
            pipeline: Some(pipeline),
            _dir: dir,
        }
    }

    /// Samples in as any client's: through the queue, then stored.
    fn write(&self, metrics: Vec<Metric>) {
        self.queue.push(metrics).expect("push");
        self.barrier.settle(SETTLE).expect("stored");
    }

    /// One evaluation tick at `ms`, then everything it wrote stored.
    fn evaluate(&self, ms: i64) {
        self.clock.set(ms);
        self.engine.advance(ms);
        self.barrier.settle(SETTLE).expect("stored");
    }

    /// `expr` at `ms` through the query slot, as sorted (series, value).
    fn instant(&self, expr: &str, ms: i64) -> Vec<(String, f64)> {
        let mut answer: Vec<(String, f64)> = self
            .query
            .instant(&InstantQuery {
                expr: expr.into(),
                time_ms: ms,
                max_samples: None,
                timeout: None,
            })
            .expect("query")
            .into_iter()
            .map(|s| {
                (
                    format!("{}{}", s.name.unwrap_or_default(), s.labels),
                    s.value,
                )
            })
            .collect();
        answer.sort_by(|a, b| a.0.cmp(&b.0));
        answer
    }

    /// Every stored sample of metric `name`: (labels, timestamp, value bits).
    fn stored(&self, name: &str) -> Vec<(Labels, i64, u64)> {
        let mut samples: Vec<(Labels, i64, u64)> = self
            .store
            .select(&[LabelMatcher::metric_name(name)], TimeRange::ALL)
            .expect("select")
            .into_iter()
            .flat_map(|series| {
                let labels = series.labels.clone();
                series
                    .samples
                    .into_iter()
                    .map(move |s| (labels.clone(), s.timestamp_ms, s.value.to_bits()))
            })
            .collect();
        samples.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
        samples
    }

    /// `/api/v1/rules` with `filter`, the rules of the first group.
    fn listed(&self, filter: RuleTypeFilter) -> Vec<Value> {
        let body = rules_body_filtered(&self.engine, filter);
        body["data"]["groups"][0]["rules"]
            .as_array()
            .expect("rules")
            .clone()
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        if let Some(pipeline) = self.pipeline.take() {
            let _ = pipeline.stop();
        }
    }
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

const JOBS: &str = r#"
groups:
  - name: jobs
    interval: 10s
    rules:
      - record: job:x:sum
        expr: sum by (job) (x)
        labels: { team: sre }
      - record: answer
        expr: "6 * 7"
        labels: { kind: constant }
"#;

#[test]
fn records_are_stored_under_their_name_with_the_rule_labels_at_the_evaluation_time() {
    let rig = Rig::start(JOBS, true);
    rig.write(vec![
        metric(
            "x",
            &[("job", "a"), ("i", "1"), ("team", "app")],
            1.0,
            T0 - 5_000,
        ),
        metric(
            "x",
            &[("job", "a"), ("i", "2"), ("team", "app")],
            2.0,
            T0 - 5_000,
        ),
        metric("x", &[("job", "b"), ("i", "1")], 4.0, T0 - 5_000),
    ]);
    rig.evaluate(T0 + 300);
    let sre = |job| labels(&[("job", job), ("team", "sre")]);
    // Evaluated at the slot (T0), not the tick; the rule's team overrides.
    assert_eq!(
        rig.stored("job:x:sum"),
        vec![
            (sre("a"), T0, 3f64.to_bits()),
            (sre("b"), T0, 4f64.to_bits())
        ]
    );
    assert_eq!(
        rig.stored("answer"),
        vec![(labels(&[("kind", "constant")]), T0, 42f64.to_bits())],
        "a scalar is one series with the rule's labels only"
    );
    // Queryable like any series.
    assert_eq!(
        rig.instant("job:x:sum", T0 + 1_000),
        vec![
            ("job:x:sum{job=\"a\",team=\"sre\"}".to_string(), 3.0),
            ("job:x:sum{job=\"b\",team=\"sre\"}".to_string(), 4.0)
        ]
    );
    let listed = rig.listed(RuleTypeFilter::All);
    assert_eq!(listed[0]["type"], "recording");
    assert_eq!(listed[0]["health"], "ok");
    assert_eq!(listed[0]["lastEvaluation"], "2023-11-14T22:13:20.000Z");
    let stats = rig.engine.stats().periodic.recording;
    assert_eq!(
        (stats.evaluations, stats.samples, stats.failures),
        (2, 3, 0)
    );
}

const CHAIN: &str = r#"
groups:
  - name: chain
    interval: 10s
    rules:
      - record: job:x:sum
        expr: sum by (job) (x)
      - record: x:sum
        expr: sum(job:x:sum)
      - alert: TotalHigh
        expr: sum(job:x:sum) > 10
"#;

#[test]
fn a_later_rule_of_the_group_reads_the_earlier_record_of_the_same_evaluation() {
    let rig = Rig::start(CHAIN, true);
    rig.write(vec![metric("x", &[("job", "a")], 1.0, T0 - 1_000)]);
    rig.evaluate(T0);
    rig.write(vec![metric("x", &[("job", "a")], 100.0, T0 + 9_000)]);
    rig.evaluate(T0 + 10_000);
    let values: Vec<f64> = rig
        .stored("x:sum")
        .into_iter()
        .map(|(_, _, bits)| f64::from_bits(bits))
        .collect();
    assert_eq!(values, vec![1.0, 100.0], "x:sum follows job:x:sum at once");
    let transitions: Vec<_> = rig
        .recorder
        .take()
        .into_iter()
        .map(|e| e.transition)
        .collect();
    assert_eq!(transitions, vec![Transition::Firing], "the alert too");
    assert_eq!(rig.engine.stats().periodic.recording.settle_timeouts, 0);
}

#[test]
fn without_the_barrier_a_later_rule_reads_the_previous_evaluation() {
    // What the barrier is for, made deterministic: nobody stores the
    // queue's records until the evaluation is over (a busy storage
    // consumer), so x:sum's query finds no job:x:sum at the first
    // evaluation and the first one's at the second — one interval behind.
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn MetricStore> =
        Arc::new(phase0::storage::JsonlFileStore::open(dir.path()).unwrap());
    let queue: Arc<dyn MetricQueue> = Arc::new(phase0::queue::MutexQueue::new(100));
    let options = EngineOptions::new(Arc::new(ManualClock::new(T0)))
        .with_query(Arc::new(craft4_query::engine::Craft4QueryEngine::new(
            store.clone(),
            craft4_query::eval::EngineConfig::default(),
        )))
        .with_writer(Arc::new(QueueWriter::new(queue.clone())), None);
    let engine = StreamingAlertEngine::new(rules(CHAIN), Vec::new(), options).unwrap();
    let drain = || {
        while let Some(delivery) = queue.consume(1_000, Duration::ZERO).unwrap() {
            store.append(&delivery.metrics).unwrap();
            queue.ack(delivery.ack).unwrap();
        }
    };
    store
        .append(&[metric("x", &[("job", "a")], 1.0, T0 - 1_000)])
        .unwrap();
    engine.advance(T0);
    drain();
    store
        .append(&[metric("x", &[("job", "a")], 100.0, T0 + 9_000)])
        .unwrap();
    engine.advance(T0 + 10_000);
    drain();
    let values: Vec<(i64, f64)> = store
        .select(&[LabelMatcher::metric_name("x:sum")], TimeRange::ALL)
        .unwrap()
        .into_iter()
        .flat_map(|s| s.samples)
        .map(|s| (s.timestamp_ms, s.value))
        .collect();
    assert_eq!(values, vec![(T0 + 10_000, 1.0)], "one evaluation behind");
}

#[test]
fn a_series_that_leaves_the_result_is_marked_stale_at_the_evaluation_time() {
    let rig = Rig::start(
        "groups:\n- name: g\n  interval: 10s\n  rules:\n  - record: x:high\n    expr: x > 5\n",
        true,
    );
    rig.write(vec![
        metric("x", &[("job", "a")], 9.0, T0 - 1_000),
        metric("x", &[("job", "b")], 9.0, T0 - 1_000),
    ]);
    rig.evaluate(T0);
    rig.write(vec![metric("x", &[("job", "b")], 1.0, T0 + 5_000)]);
    rig.evaluate(T0 + 10_000);
    rig.evaluate(T0 + 20_000);
    let stale = f64::from_bits(STALE_NAN_BITS).to_bits();
    let (a, b) = (labels(&[("job", "a")]), labels(&[("job", "b")]));
    assert_eq!(
        rig.stored("x:high"),
        vec![
            (a.clone(), T0, 9f64.to_bits()),
            (b.clone(), T0, 9f64.to_bits()),
            (a.clone(), T0 + 10_000, 9f64.to_bits()),
            (b, T0 + 10_000, stale),
            (a, T0 + 20_000, 9f64.to_bits()),
        ],
        "one marker, at the first evaluation without the series"
    );
    // A reader stops seeing b at once, not 5 minutes later.
    assert_eq!(rig.instant("x:high", T0 + 15_000).len(), 1);
    assert_eq!(rig.engine.stats().periodic.recording.stale_markers, 1);
}

#[test]
fn prometheus_errors_fail_the_evaluation_and_write_nothing() {
    let rig = Rig::start(
        r#"
groups:
  - name: g
    interval: 10s
    rules:
      - record: same
        expr: '{__name__=~"x|y"}'
      - record: relabelled
        expr: x
        labels: { job: all }
      - record: text
        expr: '"a string"'
"#,
        true,
    );
    rig.write(vec![
        metric("x", &[("job", "a")], 1.0, T0 - 1_000),
        metric("x", &[("job", "b")], 1.0, T0 - 1_000),
        metric("y", &[("job", "a")], 2.0, T0 - 1_000),
    ]);
    rig.evaluate(T0);
    for name in ["same", "relabelled", "text"] {
        assert!(rig.stored(name).is_empty(), "{name} wrote nothing");
    }
    let listed = rig.listed(RuleTypeFilter::All);
    for rule in &listed {
        assert_eq!(rule["health"], "err", "{rule}");
    }
    for rule in &listed[..2] {
        let error = rule["lastError"].as_str().unwrap();
        assert!(
            error.contains(
                "vector contains metrics with the same labelset after applying rule labels"
            ),
            "{error}"
        );
    }
    let error = listed[2]["lastError"].as_str().unwrap();
    assert!(error.contains("not a vector or scalar"), "{error}");
    assert_eq!(rig.engine.stats().periodic.recording.failures, 3);
}

#[test]
fn a_write_the_full_queue_refuses_is_counted_and_shown_as_the_last_error() {
    // No pipeline: nobody drains this queue of one slot.
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn MetricStore> =
        Arc::new(phase0::storage::JsonlFileStore::open(dir.path()).unwrap());
    store
        .append(&[
            metric("x", &[("job", "a")], 1.0, T0 - 1_000),
            metric("x", &[("job", "b")], 1.0, T0 - 1_000),
        ])
        .unwrap();
    let queue: Arc<dyn MetricQueue> = Arc::new(phase0::queue::MutexQueue::new(1));
    let clock = Arc::new(ManualClock::new(T0));
    let options = EngineOptions::new(clock)
        .with_query(Arc::new(craft4_query::engine::Craft4QueryEngine::new(
            store,
            craft4_query::eval::EngineConfig::default(),
        )))
        .with_writer(Arc::new(QueueWriter::new(queue.clone())), None);
    let engine = StreamingAlertEngine::new(rules(JOBS), Vec::new(), options).unwrap();
    engine.advance(T0);
    let body = rules_body_filtered(&engine, RuleTypeFilter::Recording);
    let rule = &body["data"]["groups"][0]["rules"][0];
    assert_eq!(rule["health"], "err");
    let error = rule["lastError"].as_str().unwrap();
    assert!(
        error.contains("writing 2 samples of job:x:sum was refused: queue is full"),
        "{error}"
    );
    let stats = engine.stats().periodic.recording;
    assert_eq!(stats.refused_samples, 2);
    // The scalar (one sample) fitted in the one slot.
    assert_eq!(queue.len(), 1);
    assert_eq!(stats.samples, 1);
}

#[test]
fn the_rules_api_lists_both_kinds_in_file_order_and_filters_by_type() {
    let yaml = r#"
groups:
  - name: mixed
    interval: 10s
    rules:
      - record: job:x:sum
        expr: sum by (job) (x)
        labels: { team: sre }
      - alert: Streaming
        expr: job:x:sum > 10
      - record: x:sum
        expr: sum(job:x:sum)
"#;
    let rig = Rig::start(yaml, true);
    rig.evaluate(T0);
    let all = rig.listed(RuleTypeFilter::All);
    let kinds: Vec<(&str, &str)> = all
        .iter()
        .map(|r| (r["type"].as_str().unwrap(), r["name"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("recording", "job:x:sum"),
            ("alerting", "Streaming"),
            ("recording", "x:sum")
        ]
    );
    let record = &all[0];
    assert_eq!(record["query"], "sum by (job) (x)");
    assert_eq!(record["labels"]["team"], "sre");
    assert!(record.get("lastError").is_none(), "omitted when empty");
    assert!(all[2].get("labels").is_none(), "omitted when empty");
    assert!(record["evaluationTime"].is_number());
    assert_eq!(rig.listed(RuleTypeFilter::Alerting).len(), 1);
    assert_eq!(rig.listed(RuleTypeFilter::Recording).len(), 2);

    let service_api = |target: &str| {
        let service = craft5_alerting::AlertingService::new(
            rules(yaml),
            craft5_alerting::RoutingConfig::console_default(),
            craft5_alerting::ServiceOptions::new(rig.clock.clone()),
        )
        .unwrap();
        let response = service
            .handle_http(&Request::new("GET", target, Vec::new(), Vec::new()))
            .unwrap();
        let body: Value = serde_json::from_slice(&response.body).unwrap();
        (response.status, body)
    };
    let (status, body) = service_api("/api/v1/rules?type=record");
    assert_eq!(status, 200);
    let listed = body["data"]["groups"][0]["rules"].as_array().unwrap();
    assert!(listed.iter().all(|r| r["type"] == "recording"), "{body}");
    // Without a query slot or writer: listed, not evaluated.
    assert_eq!(listed[0]["health"], "unknown");
    assert!(
        listed[0]["lastError"]
            .as_str()
            .unwrap()
            .contains("not evaluated")
    );
    let (status, body) = service_api("/api/v1/rules?type=alert");
    assert_eq!(
        (
            status,
            body["data"]["groups"][0]["rules"].as_array().unwrap().len()
        ),
        (200, 1)
    );
    let (status, body) = service_api("/api/v1/rules?type=recording");
    assert_eq!(status, 400);
    assert_eq!(body["errorType"], "bad_data");
    assert_eq!(
        body["error"],
        "invalid parameter \"type\": not supported value \"recording\""
    );
}

#[test]
fn a_streaming_alert_on_a_recorded_series_fires_when_the_record_is_stored() {
    let rig = Rig::start(
        r#"
groups:
  - name: g
    interval: 10s
    rules:
      - record: job:x:sum
        expr: sum by (job) (x)
      - alert: JobBusy
        expr: job:x:sum > 10
"#,
        true,
    );
    rig.write(vec![
        metric("x", &[("job", "a")], 6.0, T0 - 1_000),
        metric("x", &[("job", "a"), ("i", "2")], 6.0, T0 - 1_000),
        metric("x", &[("job", "b")], 1.0, T0 - 1_000),
    ]);
    rig.evaluate(T0);
    let fired: Vec<_> = rig
        .recorder
        .take_summary()
        .into_iter()
        .filter(|(t, _, _)| *t == Transition::Firing)
        .collect();
    assert_eq!(
        fired,
        vec![(Transition::Firing, "JobBusy".into(), "{job=\"a\"}".into())],
        "on ingest of the record: the storage consumer observed it"
    );
}

#[test]
fn recording_rules_over_a_query_slot_without_a_language_refuse_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rules.yml");
    std::fs::write(&path, JOBS).unwrap();
    let store: Arc<dyn MetricStore> =
        Arc::new(phase0::storage::JsonlFileStore::open(dir.path()).unwrap());
    let scan: Arc<dyn QueryEngine> = Arc::new(phase0::query::ScanQueryEngine::new(store));
    let queue: Arc<dyn MetricQueue> = Arc::new(phase0::queue::MutexQueue::new(10));
    let args = craft5_alerting::args::AlertingArgs::default();
    let access = craft5_alerting::args::PipelineAccess {
        writer: Arc::new(QueueWriter::new(queue)),
        barrier: Arc::new(WriteBarrier::new()),
    };
    let error = match args.build(Some(&path), dir.path(), None, scan, access) {
        Ok(_) => panic!("started over phase0's scan"),
        Err(error) => error.to_string(),
    };
    assert!(
        error.starts_with("2 recording rules need an instant query each interval")
            && error.contains("--query craft4"),
        "{error}"
    );
}
