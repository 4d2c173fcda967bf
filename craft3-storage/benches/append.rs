//! Single-thread append throughput: samples/s into the craft 3 head, with
//! phase0's JSONL store in the same group for the before/after. The input
//! is the reference dataset's shape (1,000 series: 200 hosts × 5 metrics,
//! labels `host` and `region`), time-major as scrapes arrive, appended in
//! batches of 1,000 as the storage consumer hands them over. Elements are
//! samples, so criterion's "thrpt" is samples/s. Issue goal: ≥ 5 M/s into
//! the head. Chapter 3, "Measured".
//!
//! - `head, new series`: a fresh head; the first samples create the
//!   series (registry, index) — 200 samples per series;
//! - `head, existing series`: the steady state, series already there;
//! - `head, by series ref`: the same, through `Head::append_to` with series
//!   references kept by the caller (as Prometheus' scrape cache keeps
//!   them) — the floor without the lookup;
//! - `head, existing series, choice deferred`: chunks sealed as the XOR
//!   they were appended as, the XOR-or-decimal choice left to the engine's
//!   background thread (`ChunkPolicy::defer_choice`, `Db`'s default);
//! - `craft3 db (WAL + head)`: the whole engine through the trait, as
//!   `platform --storage craft3` runs it: a WAL record per batch (written,
//!   not fsynced), then the head;
//! - `phase0 jsonl`: phase0's `JsonlFileStore`, on 2,000 samples (it opens
//!   the file per sample; the full subset would take seconds).
//!
//! `cargo bench -p craft3-storage --bench append`

use std::hint::black_box;
use std::time::Duration;

use common::{Labels, Metric, MetricStore};
use craft3_storage::db::{Db, DbConfig};
use craft3_storage::wal::{WalConfig, WalFsync};
use craft3_storage::{HeadConfig, HeadStore, Sample};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use fixtures::dataset::{Dataset, DatasetSpec};

/// Samples per series in the measured window.
const STEPS: usize = 200;
/// Metrics per `append` call.
const BATCH: usize = 1_000;
/// phase0's share.
const PHASE0_SAMPLES: usize = 2_000;

/// The first `2 * STEPS` steps of every series, time-major: the first half
/// warms a head up, the second half is measured.
fn metrics() -> Vec<Metric> {
    let Ok(dataset) = Dataset::new(DatasetSpec::default()) else {
        return Vec::new();
    };
    let labels: Vec<Labels> = dataset
        .series()
        .iter()
        .map(|info| Labels::from_pairs(info.labels()))
        .collect();
    let series = dataset.series();
    dataset
        .rows()
        .take(series.len() * STEPS * 2)
        .map(|(index, sample)| {
            Metric::new(series[index].metric, sample.value, sample.timestamp_ms)
                .with_labels(labels[index].clone())
        })
        .collect()
}

fn append_all(store: &dyn MetricStore, metrics: &[Metric]) {
    for batch in metrics.chunks(BATCH) {
        if let Err(error) = store.append(black_box(batch)) {
            eprintln!("append failed: {error}");
            return;
        }
    }
}

fn append(c: &mut Criterion) {
    let metrics = metrics();
    let (warm, measured) = metrics.split_at(metrics.len() / 2);
    let mut group = c.benchmark_group("append");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));

    group.throughput(Throughput::Elements(warm.len() as u64));
    group.bench_function("craft3 head, new series", |b| {
        b.iter_batched_ref(
            HeadStore::default,
            |store| append_all(store, warm),
            BatchSize::LargeInput,
        )
    });

    group.throughput(Throughput::Elements(measured.len() as u64));
    group.bench_function("craft3 head, existing series", |b| {
        b.iter_batched_ref(
            || {
                let store = HeadStore::default();
                append_all(&store, warm);
                store
            },
            |store| append_all(store, measured),
            BatchSize::LargeInput,
        )
    });

    // As the engine runs it: chunks sealed as XOR, the choice of codec
    // made later by the background thread (not measured here).
    let deferred = || {
        let mut config = HeadConfig::default();
        config.chunks.defer_choice = true;
        HeadStore::new(config).ok()
    };
    group.bench_function("craft3 head, existing series, choice deferred", |b| {
        b.iter_batched_ref(
            || {
                let store = deferred();
                if let Some(store) = &store {
                    append_all(store, warm);
                }
                store
            },
            |store| {
                if let Some(store) = store {
                    append_all(store, measured);
                }
            },
            BatchSize::LargeInput,
        )
    });

    let series_count = DatasetSpec::default().series_count();
    group.bench_function("craft3 head, by series ref", |b| {
        b.iter_batched_ref(
            || {
                let store = HeadStore::default();
                append_all(&store, warm);
                let refs: Vec<_> = measured
                    .iter()
                    .take(series_count)
                    .filter_map(|m| store.head().series(&m.name, &m.labels).ok())
                    .collect();
                (store, refs)
            },
            |(store, refs)| {
                if refs.is_empty() {
                    return;
                }
                for (i, metric) in measured.iter().enumerate() {
                    let sample = Sample::new(metric.timestamp_ms, metric.value);
                    if store
                        .head()
                        .append_to(&refs[i % refs.len()], black_box(sample))
                        .is_err()
                    {
                        return;
                    }
                }
            },
            BatchSize::LargeInput,
        )
    });

    // The whole engine: WAL record (one write per batch, no fsync) + head.
    group.bench_function("craft3 db (WAL + head), existing series", |b| {
        b.iter_batched_ref(
            || {
                let dir = tempfile::tempdir().ok();
                let db = dir.as_ref().and_then(|dir| {
                    Db::open(
                        dir.path(),
                        DbConfig {
                            wal: WalConfig {
                                fsync: WalFsync::Never,
                                ..WalConfig::default()
                            },
                            maintenance_interval: None,
                            ..DbConfig::default()
                        },
                    )
                    .ok()
                });
                if let Some(db) = &db {
                    append_all(db, warm);
                }
                (db, dir)
            },
            |(db, _)| {
                if let Some(db) = db {
                    append_all(db, measured);
                }
            },
            BatchSize::LargeInput,
        )
    });

    let small = &warm[..PHASE0_SAMPLES.min(warm.len())];
    group.throughput(Throughput::Elements(small.len() as u64));
    group.bench_function("phase0 jsonl", |b| {
        b.iter_batched_ref(
            || {
                let dir = tempfile::tempdir().ok();
                let store = dir
                    .as_ref()
                    .and_then(|dir| phase0::storage::JsonlFileStore::open(dir.path()).ok());
                (dir, store)
            },
            |(_, store)| {
                if let Some(store) = store {
                    append_all(store, small);
                }
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, append);
criterion_main!(benches);
