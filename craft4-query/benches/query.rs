//! Query latency, each question one criterion group so the ratio is read
//! off one run (docs chapter 4, "Measured"):
//!
//! - `threads (a|b|c)`: the issue's three queries over the reference
//!   dataset (1,000 series × 24 h in craft 3's `Db`, blocks, reopened
//!   cold) through `Craft4QueryEngine::api`, on a rayon pool of one thread
//!   and on rayon's default pool (one thread per core): what parallel
//!   decoding and evaluation buy;
//! - `seed question`: the seed's `samples(name, range)` — every
//!   `cpu_usage` sample of a day — by phase0's scan engine over its JSONL
//!   file and by craft 4 over craft 3, on 100 series × 24 h (864,000
//!   samples; phase0 re-reads all ~95 MB of it per question, which is why
//!   the data is smaller here);
//! - `cache (c)`: query (c) through the result cache, every step a miss
//!   (the cache emptied before each run) and every step a hit;
//! - `fusion (c)`: query (c) with the aggregation fused with `rate` (the
//!   default) and unfused (`rate(…) * 1`, which holds every series' rate
//!   at every step before summing): what folding windows straight into
//!   the accumulators buys.
//!
//! ```text
//! cargo bench -p craft4-query --bench query
//! cargo bench -p craft4-query --bench query -- 'threads'
//! ```

mod support;

use std::hint::black_box;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use common::{Labels, Metric, MetricStore, QueryEngine, TimeRange};
use craft4_query::api::{ApiCall, ApiEndpoint};
use craft4_query::cache::CacheConfig;
use craft4_query::engine::Craft4QueryEngine;
use craft4_query::eval::EngineConfig;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use fixtures::dataset::{Dataset, DatasetSpec};

/// The issue's queries over `spec`'s dataset: label, API call.
fn questions(spec: &DatasetSpec) -> Vec<(&'static str, ApiCall)> {
    let (first, last) = support::bounds(spec);
    let end = (first + 24 * 3_600_000).min(last + spec.interval_ms);
    let range = |query: String, step: &str| ApiCall {
        endpoint: ApiEndpoint::QueryRange,
        params: vec![
            ("query".into(), query),
            ("start".into(), support::seconds(first)),
            ("end".into(), support::seconds(end)),
            ("step".into(), step.into()),
        ],
    };
    let host = support::first_host(spec);
    vec![
        (
            "(a) one series, 24 h, step 60 s",
            range(format!("cpu_usage{{host=\"{host}\"}}"), "60"),
        ),
        (
            "(b) avg(avg_over_time(cpu_usage[24h]))",
            ApiCall {
                endpoint: ApiEndpoint::Query,
                params: vec![
                    ("query".into(), "avg(avg_over_time(cpu_usage[24h]))".into()),
                    ("time".into(), support::seconds(last)),
                ],
            },
        ),
        (
            "(c) sum by (host) (rate(x[5m])), 24 h, step 5 m",
            range(
                "sum by (host) (rate(http_requests_total[5m]))".into(),
                "300",
            ),
        ),
    ]
}

fn threads(c: &mut Criterion) {
    let spec = DatasetSpec::default();
    let Ok(dir) = tempfile::tempdir() else {
        return;
    };
    let db = match support::load_db(dir.path(), spec) {
        Ok(db) => db,
        Err(error) => {
            eprintln!("could not load the dataset: {error}");
            return;
        }
    };
    let engine = Craft4QueryEngine::new(Arc::new(db), EngineConfig::default());
    let Ok(single) = rayon::ThreadPoolBuilder::new().num_threads(1).build() else {
        return;
    };
    let rayon_label = format!("rayon, {} threads", rayon::current_num_threads());
    for (label, call) in questions(&spec) {
        let mut group = c.benchmark_group(format!("threads {label}"));
        group
            .sample_size(10)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(3));
        group.bench_function("1 thread", |b| {
            b.iter(|| single.install(|| black_box(engine.api(black_box(&call)).is_ok())))
        });
        group.bench_function(&rayon_label, |b| {
            b.iter(|| black_box(engine.api(black_box(&call)).is_ok()))
        });
        group.finish();
    }

    // The cache, on query (c): data from 2023 is all immutable by now.
    let cached = Craft4QueryEngine::new(engine.engine().store().clone(), EngineConfig::default())
        .with_cache(CacheConfig::enabled());
    let Some((_, call)) = questions(&spec).into_iter().nth(2) else {
        return;
    };
    let mut group = c.benchmark_group("cache (c) sum by (host) (rate(x[5m])), 24 h");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    group.bench_function("miss (every step evaluated)", |b| {
        b.iter_batched(
            || cached.invalidate_all(),
            |()| black_box(cached.api(&call).is_ok()),
            BatchSize::PerIteration,
        )
    });
    group.bench_function("hit (every step cached)", |b| {
        b.iter(|| black_box(cached.api(&call).is_ok()))
    });
    group.finish();

    let unfused = ApiCall {
        endpoint: call.endpoint.clone(),
        params: call
            .params
            .iter()
            .map(|(name, value)| match name.as_str() {
                "query" => (
                    name.clone(),
                    "sum by (host) (rate(http_requests_total[5m]) * 1)".to_string(),
                ),
                _ => (name.clone(), value.clone()),
            })
            .collect(),
    };
    let mut group = c.benchmark_group("fusion (c) sum by (host) (rate(x[5m])), 24 h");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    group.bench_function("unfused (every rate held)", |b| {
        b.iter(|| black_box(engine.api(black_box(&unfused)).is_ok()))
    });
    group.bench_function("fused (rates folded as computed)", |b| {
        b.iter(|| black_box(engine.api(black_box(&call)).is_ok()))
    });
    group.finish();
}

/// phase0's JSONL file written in one go (phase0's own append reopens the
/// file per metric, minutes for this much), in its exact line format.
fn write_jsonl(dir: &std::path::Path, metrics: &[Metric]) -> std::io::Result<()> {
    let file = std::fs::File::create(dir.join(phase0::storage::FILE_NAME))?;
    let mut out = std::io::BufWriter::new(file);
    for metric in metrics {
        serde_json::to_writer(&mut out, metric)?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

fn seed_question(c: &mut Criterion) {
    let spec = DatasetSpec {
        hosts: 20,
        ..DatasetSpec::default()
    };
    let Ok(dataset) = Dataset::new(spec) else {
        return;
    };
    let series = dataset.series();
    let labels: Vec<Labels> = series
        .iter()
        .map(|info| Labels::from_pairs(info.labels()))
        .collect();
    let metrics: Vec<Metric> = dataset
        .rows()
        .map(|(index, sample)| {
            Metric::new(series[index].metric, sample.value, sample.timestamp_ms)
                .with_labels(labels[index].clone())
        })
        .collect();
    let (Ok(phase0_dir), Ok(db_dir)) = (tempfile::tempdir(), tempfile::tempdir()) else {
        return;
    };
    if let Err(error) = write_jsonl(phase0_dir.path(), &metrics) {
        eprintln!("could not write the JSONL file: {error}");
        return;
    }
    let Ok(jsonl) = phase0::storage::JsonlFileStore::open(phase0_dir.path()) else {
        return;
    };
    let jsonl: Arc<dyn MetricStore> = Arc::new(jsonl);
    let db: Arc<dyn MetricStore> = match support::load_db(db_dir.path(), spec) {
        Ok(db) => Arc::new(db),
        Err(error) => {
            eprintln!("could not load the dataset: {error}");
            return;
        }
    };
    let engines: Vec<(&str, Arc<dyn QueryEngine>)> = vec![
        (
            "phase0 scan over JSONL",
            Arc::new(phase0::query::ScanQueryEngine::new(jsonl)),
        ),
        (
            "craft4 over craft3 (blocks)",
            Arc::new(Craft4QueryEngine::new(db, EngineConfig::default())),
        ),
    ];
    let (first, last) = support::bounds(&spec);
    let day = TimeRange::new(first, last);
    let mut group = c.benchmark_group("seed question samples(cpu_usage, 24 h), 100 series");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(5));
    for (name, engine) in &engines {
        group.bench_function(*name, |b| {
            b.iter(|| {
                let answer = engine.samples(black_box("cpu_usage"), day);
                black_box(answer.map(|m| m.len()).unwrap_or(0))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, threads, seed_question);
criterion_main!(benches);
