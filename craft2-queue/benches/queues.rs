//! Push + consume throughput, every queue in one group: phase0's
//! `Mutex<VecDeque>`, crossbeam, the log under each fsync policy, and NATS
//! JetStream when `NATS_URL` names a server. Producers (1 or 4) push in
//! batches of 1, 100 or 1,000 while one consumer drains and acks, as the
//! platform's storage consumer does. Elements are metrics, so criterion's
//! "thrpt" is metrics/s. Chapter 2, "Measured".
//!
//! `cargo bench -p craft2-queue --bench queues` (add `NATS_URL=nats://…`
//! for the NATS rows).

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Labels, Metric, MetricQueue, QueueError};
use craft2_queue::{CrossbeamQueue, FsyncPolicy, Log, LogConfig, LogQueue, NatsConfig, NatsQueue};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use phase0::queue::MutexQueue;

/// A metric-sized record: a name, two labels, a value and a timestamp
/// (~60 bytes framed in the log).
fn sample(producer: usize, i: usize) -> Metric {
    Metric::new("cpu_usage", i as f64, 1_764_000_000_000 + i as i64).with_labels(
        Labels::from_pairs([
            ("host", format!("server-{:02}", (producer * 7 + i) % 50)),
            ("region", "eu-west".to_string()),
        ]),
    )
}

/// Pushes `per_producer` metrics from each of `producers` threads in
/// batches of `batch` while this thread consumes and acks them all.
fn run(
    queue: &Arc<dyn MetricQueue>,
    producers: usize,
    per_producer: usize,
    batch: usize,
    data: &[Vec<Metric>],
) {
    let handles: Vec<_> = (0..producers)
        .map(|p| {
            let queue = queue.clone();
            let mine = data[p].clone();
            std::thread::spawn(move || {
                for chunk in mine.chunks(batch) {
                    loop {
                        match queue.push(chunk.to_vec()) {
                            Ok(()) => break,
                            Err(QueueError::Full { .. }) => std::thread::yield_now(),
                            Err(e) => panic!("push: {e}"),
                        }
                    }
                }
            })
        })
        .collect();
    let mut remaining = producers * per_producer;
    let deadline = Instant::now() + Duration::from_secs(120);
    while remaining > 0 {
        assert!(
            Instant::now() < deadline,
            "consumer stalled with {remaining} left"
        );
        if let Some(d) = queue
            .consume(1000, Duration::from_millis(100))
            .expect("consume")
        {
            remaining -= d.metrics.len();
            queue.ack(d.ack).expect("ack");
        }
    }
    for h in handles {
        h.join().expect("producer");
    }
}

type Make = Box<dyn Fn() -> Arc<dyn MetricQueue>>;

fn backends(dirs: &mut Vec<tempfile::TempDir>) -> Vec<(&'static str, Make)> {
    let mut out: Vec<(&'static str, Make)> = vec![
        ("phase0", Box::new(|| Arc::new(MutexQueue::new(10_000_000)))),
        (
            "crossbeam",
            Box::new(|| Arc::new(CrossbeamQueue::new(10_000_000))),
        ),
    ];
    for (name, fsync) in [
        ("log-never", FsyncPolicy::Never),
        (
            "log-group-10ms",
            FsyncPolicy::Interval(Duration::from_millis(10)),
        ),
        ("log-every-batch", FsyncPolicy::EveryBatch),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().to_path_buf();
        dirs.push(dir);
        let counter = std::sync::atomic::AtomicUsize::new(0);
        out.push((
            name,
            Box::new(move || {
                // A fresh log per benchmark so earlier rows do not grow it.
                let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let (log, _) = Log::open(LogConfig {
                    fsync,
                    ..LogConfig::new(path.join(n.to_string()))
                })
                .expect("open log");
                Arc::new(LogQueue::new(log, 10_000_000).expect("log queue"))
            }),
        ));
    }
    if let Ok(url) = std::env::var("NATS_URL") {
        let counter = std::sync::atomic::AtomicUsize::new(0);
        out.push((
            "nats",
            Box::new(move || {
                let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let stream = format!("BENCH_{}_{n}", std::process::id());
                let config = NatsConfig {
                    subject_prefix: stream.to_lowercase(),
                    stream,
                    capacity: 10_000_000,
                    ..NatsConfig::new(url.clone())
                };
                Arc::new(NatsQueue::connect(config).expect("connect to NATS_URL"))
            }),
        ));
    }
    out
}

fn push_consume(c: &mut Criterion) {
    let mut dirs = Vec::new();
    let backends = backends(&mut dirs);
    let mut group = c.benchmark_group("queue/push_consume");
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));
    for producers in [1usize, 4] {
        for batch in [1usize, 100, 1000] {
            for (name, make) in &backends {
                // Slow configurations get fewer messages so a row takes
                // seconds, not minutes; throughput is per metric either way.
                let per_producer = match (*name, batch) {
                    ("log-every-batch", 1) | ("nats", 1) => 200,
                    ("log-every-batch", 100) | ("nats", 100) => 5_000,
                    _ => 20_000,
                };
                let data: Vec<Vec<Metric>> = (0..producers)
                    .map(|p| (0..per_producer).map(|i| sample(p, i)).collect())
                    .collect();
                group.throughput(Throughput::Elements((producers * per_producer) as u64));
                let queue = make();
                group.bench_with_input(
                    BenchmarkId::new(*name, format!("{producers}p_batch{batch}")),
                    &batch,
                    |b, &batch| b.iter(|| run(&queue, producers, per_producer, batch, &data)),
                );
            }
        }
    }
    group.finish();
}

criterion_group!(benches, push_consume);
criterion_main!(benches);
