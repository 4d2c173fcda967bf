//! Rule checks per second: phase0's `PollingAlertEngine::evaluate`, which
//! re-queries every rule's window through the scan query engine, beside
//! craft 5's `StreamingAlertEngine::observe`, which updates each rule's
//! window as the samples arrive.
//!
//! The unit of work is one *rule check*: one sample seen by one rule that
//! watches its metric. For N rules (one metric each) and M samples per
//! metric, both engines do N × M checks: phase0 in one `evaluate` (N
//! queries, each scanning the whole file of N × M lines), craft 5 in one
//! `observe` of the N × M samples. Thresholds are never reached, so no
//! notification is printed. A last group puts both at 10,000 rules (the
//! seed's craft 5 target): ten rules (different thresholds) on each of
//! 1,000 metrics, one sample per metric in the window — phase0's evaluate
//! runs 10,000 queries, each scanning the 1,000-line file; craft 5's observe
//! takes the next sample of every metric through all 10,000 rules. Chapter
//! 5, "Measured".

use std::cell::Cell;
use std::sync::Arc;
use std::time::Duration;

use common::{AlertEngine, AlertRule, Condition, ManualClock, Metric, MetricStore};
use craft5_alerting::rules::file::parse_rule_file;
use craft5_alerting::{EngineOptions, StreamingAlertEngine};
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use phase0::alerting::PollingAlertEngine;
use phase0::query::ScanQueryEngine;
use phase0::storage::JsonlFileStore;

const T0: i64 = 1_764_000_000_000;
/// Samples of one metric are this far apart; every rule's 60 s window
/// holds the last 60 s of them.
const STEP_MS: i64 = 100;

fn rules(count: usize) -> Vec<AlertRule> {
    (0..count)
        .map(|i| {
            AlertRule::new(
                format!("metric_{i}"),
                Condition::Above,
                1e12,
                Duration::from_secs(60),
            )
        })
        .collect()
}

/// `per_metric` samples for each of `metrics` metrics, starting at `start`.
fn batch(metrics: usize, per_metric: usize, start: i64) -> Vec<Metric> {
    let mut batch = Vec::with_capacity(metrics * per_metric);
    for j in 0..per_metric {
        for i in 0..metrics {
            batch.push(Metric::new(
                format!("metric_{i}"),
                (i + j) as f64,
                start + j as i64 * STEP_MS,
            ));
        }
    }
    batch
}

fn polling_vs_streaming(c: &mut Criterion) {
    let mut group = c.benchmark_group("alerting/rule_checks");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    for (rule_count, per_metric) in [(10usize, 100usize), (100, 10), (100, 100)] {
        let checks = (rule_count * per_metric) as u64;
        let label = format!("{rule_count}_rules_x_{per_metric}_samples");
        group.throughput(Throughput::Elements(checks));

        // phase0: the samples are in the file; each evaluate re-reads them.
        let dir = tempfile::tempdir().expect("temp dir");
        let store: Arc<dyn MetricStore> =
            Arc::new(JsonlFileStore::open(dir.path()).expect("store"));
        store
            .append(&batch(rule_count, per_metric, T0))
            .expect("append");
        let query = Arc::new(ScanQueryEngine::new(store));
        let polling = PollingAlertEngine::new(
            rules(rule_count),
            query,
            Vec::new(),
            phase0::alerting::DEFAULT_INTERVAL,
        );
        let now = T0 + per_metric as i64 * STEP_MS;
        group.bench_function(BenchmarkId::new("phase0_polling_evaluate", &label), |b| {
            b.iter(|| polling.evaluate(now));
        });

        // craft 5: each iteration observes the next M samples of every
        // metric, so the windows slide as in steady state.
        let clock = Arc::new(ManualClock::new(T0));
        let streaming = StreamingAlertEngine::from_seed_rules(
            &rules(rule_count),
            Vec::new(),
            EngineOptions::new(clock.clone()),
        )
        .expect("engine");
        let next_start = Cell::new(T0);
        group.bench_function(BenchmarkId::new("craft5_streaming_observe", &label), |b| {
            b.iter_batched(
                || {
                    let start = next_start.get();
                    next_start.set(start + per_metric as i64 * STEP_MS);
                    clock.set(start);
                    batch(rule_count, per_metric, start)
                },
                // Returned, so criterion drops the batch outside the timing.
                |samples| {
                    streaming.observe(&samples);
                    samples
                },
                BatchSize::LargeInput,
            );
        });
    }
    group.finish();
}

/// 10,000 rules, ten per metric over 1,000 metrics (different thresholds),
/// and one sample per metric: 10,000 checks per evaluate or observe.
fn ten_thousand_rules(c: &mut Criterion) {
    let metrics = 1_000usize;
    let per_metric = 10usize;
    let checks = (metrics * per_metric) as u64;
    let mut group = c.benchmark_group("alerting/10000_rules");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(checks));

    // phase0: the seed's rules over the JSONL file, one evaluate = one
    // query per rule, each a scan of the whole file.
    let seed_rules: Vec<AlertRule> = (0..metrics)
        .flat_map(|i| {
            (0..per_metric).map(move |k| {
                AlertRule::new(
                    format!("metric_{i}"),
                    Condition::Above,
                    1e12 + k as f64,
                    Duration::from_secs(60),
                )
            })
        })
        .collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let store: Arc<dyn MetricStore> = Arc::new(JsonlFileStore::open(dir.path()).expect("store"));
    store.append(&batch(metrics, 1, T0)).expect("append");
    let polling = PollingAlertEngine::new(
        seed_rules,
        Arc::new(ScanQueryEngine::new(store)),
        Vec::new(),
        phase0::alerting::DEFAULT_INTERVAL,
    );
    group.bench_function("phase0_polling_evaluate", |b| {
        b.iter(|| polling.evaluate(T0 + STEP_MS));
    });

    // craft 5: the same 10,000 conditions as a rule file.
    let mut yaml = String::from("groups:\n  - name: many\n    rules:\n");
    for i in 0..metrics {
        for k in 0..per_metric {
            yaml.push_str(&format!(
                "      - alert: High_{i}_{k}\n        expr: avg_over_time(metric_{i}[60s]) > {}\n",
                1e12 + k as f64
            ));
        }
    }
    let rule_set = parse_rule_file(&yaml, "bench.yml").expect("rules");
    let clock = Arc::new(ManualClock::new(T0));
    let engine = StreamingAlertEngine::new(rule_set, Vec::new(), EngineOptions::new(clock.clone()))
        .expect("engine");
    let next_start = Cell::new(T0);
    group.bench_function("craft5_streaming_observe", |b| {
        b.iter_batched(
            || {
                let start = next_start.get();
                next_start.set(start + STEP_MS);
                clock.set(start);
                batch(metrics, 1, start)
            },
            |samples| {
                engine.observe(&samples);
                samples
            },
            BatchSize::LargeInput,
        );
    });
    group.finish();
}

criterion_group!(benches, polling_vs_streaming, ten_thousand_rules);
criterion_main!(benches);
