//! Query latency against file size: phase0 scans the whole file for every
//! `/query`, so the time grows with every line ever written — 1k, 100k and
//! 1M lines here. Craft 4 (over craft 3's index) adds itself to the group.
//! Chapter 0, "The query API".

use std::fs::File;
use std::io::{BufWriter, Write};
use std::sync::Arc;
use std::time::Duration;

use common::{Metric, MetricStore, QueryEngine, TimeRange};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use phase0::query::ScanQueryEngine;
use phase0::storage::{FILE_NAME, JsonlFileStore};

const NAMES: [&str; 5] = [
    "cpu_usage",
    "memory_usage",
    "disk_io",
    "network_latency",
    "error_rate",
];

/// Writes `lines` samples round-robin over five names, 10 s apart.
fn write_dataset(dir: &std::path::Path, lines: usize) {
    let file = File::create(dir.join(FILE_NAME)).expect("dataset file");
    let mut writer = BufWriter::new(file);
    for i in 0..lines {
        let metric = Metric::new(
            NAMES[i % NAMES.len()],
            (i % 100) as f64,
            1_764_000_000_000 + i as i64 * 2_000,
        );
        serde_json::to_writer(&mut writer, &metric).expect("encode");
        writer.write_all(b"\n").expect("write");
    }
    writer.flush().expect("flush");
}

fn scan(c: &mut Criterion) {
    let mut group = c.benchmark_group("query/last_5_minutes_of_one_name");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    for lines in [1_000usize, 100_000, 1_000_000] {
        let dir = tempfile::tempdir().expect("temp dir");
        write_dataset(dir.path(), lines);
        let store: Arc<dyn MetricStore> =
            Arc::new(JsonlFileStore::open(dir.path()).expect("store"));
        let engine = ScanQueryEngine::new(store);
        let end = 1_764_000_000_000 + lines as i64 * 2_000;
        let range = TimeRange::new(end - 300_000, end);
        group.throughput(Throughput::Elements(lines as u64));
        group.bench_with_input(
            BenchmarkId::new("phase0_scan", lines),
            &range,
            |b, range| {
                b.iter(|| engine.samples("cpu_usage", *range).expect("query"));
            },
        );
    }
    group.finish();
}

criterion_group!(benches, scan);
criterion_main!(benches);
