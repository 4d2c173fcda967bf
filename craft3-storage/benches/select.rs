//! Query latency through `MetricStore::select`: phase0's JSONL store, the
//! craft 3 head alone (`HeadStore`), and the whole engine (`Db`) with the
//! data persisted into blocks and compacted — in one group per question, so
//! the ratio is read off one run. Chapter 3, "Measured".
//!
//! The data: the reference dataset's shape at 20 hosts (100 series × 24 h
//! at 10 s = 864,000 samples; phase0 re-reads all ~95 MB of it per query,
//! which is why the dataset is not the full 1,000 series here —
//! `examples/tsdb_figures.rs` measures craft 3 alone on that).
//!
//! - `one series, 24 h`: `cpu_usage{host="<first>"}` over the whole day;
//! - `one metric, 24 h`: every `cpu_usage` series (20) over the whole day.
//!
//! `cargo bench -p craft3-storage --bench select`

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use common::{LabelMatcher, Labels, MatchOp, Metric, MetricStore, TimeRange};
use craft3_storage::HeadStore;
use craft3_storage::db::{Db, DbConfig};
use craft3_storage::wal::{WalConfig, WalFsync};
use criterion::{Criterion, criterion_group, criterion_main};
use fixtures::dataset::{Dataset, DatasetSpec};

struct Stores {
    _dirs: Vec<tempfile::TempDir>,
    stores: Vec<(&'static str, Arc<dyn MetricStore>)>,
    host: String,
    day: TimeRange,
}

fn load(store: &dyn MetricStore, metrics: &[Metric]) {
    for batch in metrics.chunks(1_000) {
        if let Err(error) = store.append(batch) {
            eprintln!("append failed: {error}");
            return;
        }
    }
}

fn stores() -> Option<Stores> {
    let spec = DatasetSpec {
        hosts: 20,
        ..DatasetSpec::default()
    };
    let dataset = Dataset::new(spec).ok()?;
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
    let (min, max) = metrics.iter().fold((i64::MAX, i64::MIN), |(lo, hi), m| {
        (lo.min(m.timestamp_ms), hi.max(m.timestamp_ms))
    });

    let phase0_dir = tempfile::tempdir().ok()?;
    let phase0 = Arc::new(phase0::storage::JsonlFileStore::open(phase0_dir.path()).ok()?);
    load(phase0.as_ref(), &metrics);

    let head = Arc::new(HeadStore::default());
    load(head.as_ref(), &metrics);

    let db_dir = tempfile::tempdir().ok()?;
    let db = Db::open(
        db_dir.path(),
        DbConfig {
            wal: WalConfig {
                fsync: WalFsync::Never,
                ..WalConfig::default()
            },
            maintenance_interval: None,
            ..DbConfig::default()
        },
    )
    .ok()?;
    load(&db, &metrics);
    db.persist_before(max + 1).ok()?;
    db.maintain().ok()?;
    Some(Stores {
        _dirs: vec![phase0_dir, db_dir],
        stores: vec![
            ("phase0 jsonl", phase0),
            ("craft3 head", head),
            ("craft3 db, blocks", Arc::new(db)),
        ],
        host: series[0].host.clone(),
        day: TimeRange::new(min, max),
    })
}

fn select(c: &mut Criterion) {
    let Some(stores) = stores() else {
        eprintln!("could not build the stores");
        return;
    };
    let Ok(host) = LabelMatcher::new("host", MatchOp::Equal, stores.host.clone()) else {
        return;
    };
    let questions = [
        (
            "one series, 24 h",
            vec![LabelMatcher::metric_name("cpu_usage"), host],
        ),
        (
            "one metric, 24 h",
            vec![LabelMatcher::metric_name("cpu_usage")],
        ),
    ];
    for (question, matchers) in &questions {
        let mut group = c.benchmark_group(format!("select {question}"));
        group
            .sample_size(10)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(3));
        for (name, store) in &stores.stores {
            group.bench_function(*name, |b| {
                b.iter(|| {
                    let got = store.select(black_box(matchers), stores.day);
                    black_box(got.map(|s| s.len()).unwrap_or(0))
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, select);
criterion_main!(benches);
