//! Appending samples: phase0's open/append/close per metric against a
//! buffered writer kept open — the cost the seed pays on every write.
//! Craft 3 adds its engine to the same group. Chapter 0, "The storage
//! consumer".

use std::fs::OpenOptions;
use std::io::{BufWriter, Write};

use common::{Metric, MetricStore};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use phase0::storage::JsonlFileStore;

const SAMPLES: usize = 1_000;

fn samples() -> Vec<Metric> {
    (0..SAMPLES)
        .map(|i| {
            Metric::new(
                "cpu_usage",
                (i % 100) as f64 + 0.5,
                1_764_000_000_000 + i as i64 * 10_000,
            )
        })
        .collect()
}

fn append(c: &mut Criterion) {
    let metrics = samples();
    let mut group = c.benchmark_group("storage/append_1000");
    group.throughput(Throughput::Elements(SAMPLES as u64));

    group.bench_function(
        BenchmarkId::new("phase0", "open_append_close_per_metric"),
        |b| {
            let dir = tempfile::tempdir().expect("temp dir");
            let store = JsonlFileStore::open(dir.path()).expect("store");
            b.iter(|| {
                for metric in &metrics {
                    store.append(std::slice::from_ref(metric)).expect("append");
                }
            });
        },
    );

    group.bench_function(
        BenchmarkId::new("phase0", "one_append_call_per_batch"),
        |b| {
            let dir = tempfile::tempdir().expect("temp dir");
            let store = JsonlFileStore::open(dir.path()).expect("store");
            // Still one open/close per metric inside: batching the call alone
            // does not remove the cost.
            b.iter(|| store.append(&metrics).expect("append"));
        },
    );

    group.bench_function(BenchmarkId::new("buffered", "bufwriter_kept_open"), |b| {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.path().join("buffered.jsonl"))
            .expect("file");
        let mut writer = BufWriter::with_capacity(64 * 1024, file);
        b.iter(|| {
            for metric in &metrics {
                serde_json::to_writer(&mut writer, metric).expect("encode");
                writer.write_all(b"\n").expect("write");
            }
            writer.flush().expect("flush");
        });
    });
    group.finish();
}

criterion_group!(benches, append);
criterion_main!(benches);
